/* Colour pictures of labels with a legend: a swatch and the class name per
 * class present, names set by Pango (any script) in flow layout. */
#include <string.h>
#include "output/text.h"

#define LEGEND_FONT_PX 14.0
#define ENTRY_HEIGHT 22
#define SWATCH 14
#define TEXT_X 22
#define ENTRY_GAP 12

void cs_label_color(int label, uint8_t rgb[3]) {
    rgb[0] = rgb[1] = rgb[2] = 0;
    for (int bit = 7; label; bit--, label >>= 3)
        for (int ch = 0; ch < 3; ch++) rgb[ch] |= (uint8_t)(((label >> ch) & 1) << bit);
}

/* A class name as markup (escaped); NULL when out of memory. */
static char *name_markup(const char *name) {
    char *m = NULL;
    size_t cap = 0;
    if (text_append(&m, &cap, name, strlen(name), 1) != CS_OK) {
        cs_free(m);
        return NULL;
    }
    return m;
}

static int entry_width(const char *markup) {
    int w = 0, h = 0;
    if (markup) text_measure(markup, LEGEND_FONT_PX, 0, &w, &h);
    return TEXT_X + w + ENTRY_GAP;
}

static void classes_present(const uint8_t *labels, size_t n, int C, uint8_t *present) {
    memset(present, 0, 256);
    for (size_t i = 0; i < n; i++) present[labels[i]] = 1;
    for (int c = C; c < 256; c++) present[c] = 0;
}

static void fill(uint8_t *rgb, int W, int x0, int y0, int w, int h, const uint8_t color[3]) {
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w && x < W; x++) memcpy(rgb + ((size_t)y * W + x) * 3, color, 3);
}

/* Walk the legend's entries in flow layout; draw them when rgb is not NULL.
 * Returns the strip's height. */
static int layout_legend(int W, const uint8_t *present, const char *const *names, int C, uint8_t *rgb,
                         int top) {
    int x = 0, y = 0, any = 0;
    for (int c = 0; c < C; c++) {
        if (!present[c]) continue;
        char *markup = name_markup(names[c]);
        int w = entry_width(markup);
        if (x > 0 && x + w > W) {
            x = 0;
            y += ENTRY_HEIGHT;
        }
        if (rgb) {
            static const uint8_t ink[3] = {0, 0, 0};
            uint8_t color[3];
            cs_label_color(c, color);
            fill(rgb, W, x + 4, top + y + 4, SWATCH, SWATCH, color);
            if (markup) text_draw(rgb, W, top + y + ENTRY_HEIGHT, x + TEXT_X, top + y + 2, markup,
                                  LEGEND_FONT_PX, 0, ink);
        }
        cs_free(markup);
        x += w;
        any = 1;
    }
    return any ? y + ENTRY_HEIGHT : 0;
}

int cs_legend_height(int W, const uint8_t *labels, size_t n, const char *const *names, int C) {
    uint8_t present[256];
    classes_present(labels, n, C, present);
    return layout_legend(W, present, names, C, NULL, 0);
}

void cs_colorize_labels(const uint8_t *labels, int W, int H, const char *const *names, int C,
                        uint8_t *rgb) {
    for (size_t i = 0; i < (size_t)W * H; i++) cs_label_color(labels[i], rgb + 3 * i);
    uint8_t present[256];
    classes_present(labels, (size_t)W * H, C, present);
    int strip = layout_legend(W, present, names, C, NULL, 0);
    memset(rgb + (size_t)W * H * 3, 255, (size_t)W * strip * 3);
    layout_legend(W, present, names, C, rgb, H);
}
