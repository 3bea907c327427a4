/* Point prompts drawn as SAM's demo shows them (show_points: marker '*',
 * green positives, red negatives, white edges). */
#include <math.h>
#include "base/base.h"

#define STAR_TIPS 5
#define STAR_INNER 0.381966 /* inner / outer radius of a regular pentagram */

static const uint8_t k_positive[3] = {0, 128, 0}; /* matplotlib's "green" */
static const uint8_t k_negative[3] = {255, 0, 0};
static const uint8_t k_edge[3] = {255, 255, 255};

typedef struct star {
    double x[2 * STAR_TIPS], y[2 * STAR_TIPS]; /* vertices, tips and notches alternating */
} star;

/* A star pointing up, centred on (cx, cy). */
static star make_star(double cx, double cy, double radius) {
    star s;
    for (int k = 0; k < 2 * STAR_TIPS; k++) {
        double angle = -M_PI / 2 + k * M_PI / STAR_TIPS;
        double r = k % 2 ? radius * STAR_INNER : radius;
        s.x[k] = cx + r * cos(angle);
        s.y[k] = cy + r * sin(angle);
    }
    return s;
}

/* Even-odd rule: a ray to the right crosses the outline an odd number of times. */
static int star_contains(const star *s, double px, double py) {
    int inside = 0;
    for (int k = 0, j = 2 * STAR_TIPS - 1; k < 2 * STAR_TIPS; j = k++)
        if ((s->y[k] > py) != (s->y[j] > py) &&
            px < s->x[j] + (py - s->y[j]) * (s->x[k] - s->x[j]) / (s->y[k] - s->y[j]))
            inside = !inside;
    return inside;
}

/* Colour the pixels whose centres fall inside the star. */
static void fill_star(uint8_t *rgb, int width, int height, double cx, double cy, double radius,
                      const uint8_t color[3]) {
    star s = make_star(cx, cy, radius);
    int x0 = (int)floor(cx - radius), x1 = (int)ceil(cx + radius);
    int y0 = (int)floor(cy - radius), y1 = (int)ceil(cy + radius);
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < height; y++)
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < width; x++)
            if (star_contains(&s, x + 0.5, y + 0.5)) {
                uint8_t *p = rgb + ((size_t)y * width + x) * 3;
                p[0] = color[0];
                p[1] = color[1];
                p[2] = color[2];
            }
}

cs_status cs_draw_points(uint8_t *rgb, int width, int height, const int32_t *points,
                         const uint8_t *labels, int n) {
    if (!rgb || width <= 0 || height <= 0 || n < 0 || (n > 0 && (!points || !labels)))
        return error_set(CS_ERR_ARG, "cs_draw_points: no image or no points");
    for (int i = 0; i < n; i++)
        if (points[2 * i] < 0 || points[2 * i] >= width || points[2 * i + 1] < 0 ||
            points[2 * i + 1] >= height)
            return error_set(CS_ERR_ARG, "cs_draw_points: point %d (%d, %d) is outside the %dx%d image",
                           i, points[2 * i], points[2 * i + 1], width, height);
    int shorter = width < height ? width : height;
    double radius = fmax(4.0, 0.03 * shorter), edge = fmax(1.0, radius / 6);
    for (int i = 0; i < n; i++) {
        /* The centre of the point's pixel. */
        double cx = points[2 * i] + 0.5, cy = points[2 * i + 1] + 0.5;
        fill_star(rgb, width, height, cx, cy, radius + edge, k_edge);
        fill_star(rgb, width, height, cx, cy, radius, labels[i] ? k_positive : k_negative);
    }
    return CS_OK;
}
