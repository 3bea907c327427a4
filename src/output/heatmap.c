/* Heatmap pictures as the authors' demo draws them: the map scaled to 8 bits
 * (truncated), OpenCV's JET colormap, 0.4 x image + 0.6 x heatmap. */
#include "base/base.h"

/* JET as OpenCV defines it: piecewise-linear red, green and blue ramps over
 * [0, 1], sampled at the 8-bit level. */
static float ramp(float x, const float *xs, const float *ys, int n) {
    if (x <= xs[0]) return ys[0];
    for (int i = 1; i < n; i++)
        if (x <= xs[i]) return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - xs[i - 1]) / (xs[i] - xs[i - 1]);
    return ys[n - 1];
}

static void jet(uint8_t level, uint8_t rgb[3]) {
    static const float rx[] = {0, 0.35f, 0.66f, 0.89f, 1}, ry[] = {0, 0, 1, 1, 0.5f};
    static const float gx[] = {0, 0.125f, 0.375f, 0.64f, 0.91f, 1}, gy[] = {0, 0, 1, 1, 0, 0};
    static const float bx[] = {0, 0.11f, 0.34f, 0.65f, 1}, by[] = {0.5f, 1, 1, 0, 0};
    float x = level / 255.0f;
    rgb[0] = (uint8_t)(255.0f * ramp(x, rx, ry, 5) + 0.5f);
    rgb[1] = (uint8_t)(255.0f * ramp(x, gx, gy, 6) + 0.5f);
    rgb[2] = (uint8_t)(255.0f * ramp(x, bx, by, 5) + 0.5f);
}

static uint8_t to_level(float v) {
    float s = v * 255.0f;
    return s <= 0.0f ? 0 : s >= 255.0f ? 255 : (uint8_t)s;
}

void cs_map_to_gray(const float *map, int stride, size_t n, uint8_t *gray) {
    for (size_t i = 0; i < n; i++) gray[i] = to_level(map[i * (size_t)stride]);
}

void cs_heatmap_overlay(const float *map, int stride, size_t n, const uint8_t *image_rgb,
                        uint8_t *out_rgb) {
    for (size_t i = 0; i < n; i++) {
        uint8_t heat[3];
        jet(to_level(map[i * (size_t)stride]), heat);
        for (int c = 0; c < 3; c++) {
            float base = image_rgb ? 0.4f * image_rgb[3 * i + c] : 0.0f;
            float v = base + (image_rgb ? 0.6f : 1.0f) * heat[c];
            out_rgb[3 * i + c] = (uint8_t)(v > 255.0f ? 255.0f : v);
        }
    }
}
