/* Heatmap pictures exactly as the authors' demo draws them:
 *   vis = (map * 255).astype('uint8')             # float32, truncated
 *   vis = cv2.applyColorMap(vis, COLORMAP_JET)     # OpenCV's 256-entry table
 *   vis = cv2_img * 0.4 + vis * 0.6                # float64
 *   vis.astype('uint8')                            # truncated
 * with the channels in RGB order instead of OpenCV's BGR. */
#include <math.h>
#include "base/base.h"

/* OpenCV builds its JET table from a 256-entry base map per channel, on
 * breakpoints linspace(0, 1, 256). Each channel of that base map is a
 * trapezoid over the level i: min(4i - rise, fall - 4i) / 255, clamped to
 * [0, 1], so every ramp value is (k + 0.5) / 255 for an integer k. Stored as
 * float32, as OpenCV's arrays are. */
static float jet_anchor(int channel, int i) {
    static const double rise[3] = {382.5, 127.5, -127.5}, fall[3] = {1147.5, 892.5, 637.5};
    double v = fmin(4.0 * i - rise[channel], fall[channel] - 4.0 * i);
    return (float)(fmin(fmax(v, 0.0), 255.0) / 255.0);
}

/* OpenCV's linspace(0, 1, 256) in float32: x0 + i * step. */
static float jet_breakpoint(int i) { return 0.0f + (float)i * (1.0f / 255.0f); }

/* The table entry of one level: OpenCV's interp1 samples the base map at the
 * breakpoints themselves, but as float32 arithmetic on the bracketing pair
 * (i - 1, i), y[lo] + (x - x[lo]) * (y[hi] - y[lo]) / (x[hi] - x[lo]), so the
 * result can land one float below the anchor (level 159's blue is
 * 1.49999988 / 255, not 1.5 / 255). Then convertTo(CV_8U, 255.): float32
 * product, rounded half to even (cvRound), saturated. These roundings decide
 * every entry, since each anchor times 255 is a half-integer. */
static uint8_t jet_entry(int channel, int level) {
    float y = jet_anchor(channel, 0);
    if (level > 0) {
        float x = jet_breakpoint(level), x_lo = jet_breakpoint(level - 1);
        float y_lo = jet_anchor(channel, level - 1), y_hi = jet_anchor(channel, level);
        float dx = x - x_lo;
        y = y_lo + dx * (y_hi - y_lo) / dx; /* not simplified: its roundings are the point */
    }
    float scaled = y * 255.0f;
    long v = lrintf(scaled);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void cs_jet_table(uint8_t lut[256][3]) {
    /* OpenCV's planes are (blue, green, red); ours red, green, blue. */
    for (int level = 0; level < 256; level++)
        for (int c = 0; c < 3; c++) lut[level][c] = jet_entry(c, level);
}

/* (map * 255).astype('uint8') on float32; out-of-range values saturate
 * (a min-max map has none) and NaN gives 0. */
static uint8_t to_level(float v) {
    float s = v * 255.0f;
    return !(s > 0.0f) ? 0 : s >= 255.0f ? 255 : (uint8_t)s;
}

void cs_map_to_gray(const float *map, int stride, size_t n, uint8_t *gray) {
    for (size_t i = 0; i < n; i++) gray[i] = to_level(map[i * (size_t)stride]);
}

void cs_heatmap_overlay(const float *map, int stride, size_t n, const uint8_t *image_rgb,
                        uint8_t *out_rgb) {
    uint8_t lut[256][3];
    cs_jet_table(lut);
    /* numpy rounds each product to float64 before the sum. Tables of the
     * products keep a compiler from fusing them into one multiply-add, whose
     * single rounding could change a truncated result. */
    double image_part[256], heat_part[256];
    for (int v = 0; v < 256; v++) {
        image_part[v] = image_rgb ? (double)v * 0.4 : 0.0;
        heat_part[v] = image_rgb ? (double)v * 0.6 : (double)v;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *heat = lut[to_level(map[i * (size_t)stride])];
        for (int c = 0; c < 3; c++) {
            double v = image_part[image_rgb ? image_rgb[3 * i + c] : 0] + heat_part[heat[c]];
            out_rgb[3 * i + c] = (uint8_t)(v >= 255.0 ? 255 : v);
        }
    }
}
