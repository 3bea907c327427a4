/* Colour pictures of labels with a legend: swatches and class names drawn
 * with a 3x5 pixel font (each glyph five octal digits, one per row, the
 * high bit on the left), scaled 2x. */
#include "base/base.h"
#include <ctype.h>
#include <string.h>

#define GLYPH_SCALE 2
#define GLYPH_ADVANCE (4 * GLYPH_SCALE)
#define ENTRY_HEIGHT 20
#define SWATCH 14
#define TEXT_X 22
#define ENTRY_GAP 12

static const char *const k_letters[26] = {
    "25755", "65656", "34443", "65556", "74647", "74644", "34553", "55755", "72227",
    "11152", "55655", "44447", "57755", "65555", "25552", "65644", "25563", "65655",
    "34216", "72222", "55557", "55552", "55775", "55255", "55222", "71247"};
static const char *const k_digits[10] = {"75557", "26227", "61247", "61216", "55711",
                                         "74616", "34757", "71222", "75757", "75716"};

static const char *glyph(char ch) {
    unsigned char c = (unsigned char)tolower((unsigned char)ch);
    if (c >= 'a' && c <= 'z') return k_letters[c - 'a'];
    if (c >= '0' && c <= '9') return k_digits[c - '0'];
    switch (c) {
    case ' ': return "00000";
    case '-': return "00700";
    case '_': return "00007";
    case '.': return "00002";
    case '/': return "11244";
    case '(': return "24442";
    case ')': return "21112";
    default: return "61202"; /* '?' */
    }
}

void cs_label_color(int label, uint8_t rgb[3]) {
    rgb[0] = rgb[1] = rgb[2] = 0;
    for (int bit = 7; label; bit--, label >>= 3)
        for (int ch = 0; ch < 3; ch++) rgb[ch] |= (uint8_t)(((label >> ch) & 1) << bit);
}

static int entry_width(const char *name) { return TEXT_X + (int)strlen(name) * GLYPH_ADVANCE + ENTRY_GAP; }

static void classes_present(const uint8_t *labels, size_t n, int C, uint8_t *present) {
    memset(present, 0, 256);
    for (size_t i = 0; i < n; i++) present[labels[i]] = 1;
    for (int c = C; c < 256; c++) present[c] = 0;
}

static void fill(uint8_t *rgb, int W, int x0, int y0, int w, int h, const uint8_t color[3]) {
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w && x < W; x++) memcpy(rgb + ((size_t)y * W + x) * 3, color, 3);
}

static void draw_text(uint8_t *rgb, int W, int x0, int y0, const char *text) {
    static const uint8_t ink[3] = {0, 0, 0};
    for (; *text; text++, x0 += GLYPH_ADVANCE) {
        const char *g = glyph(*text);
        for (int row = 0; row < 5; row++)
            for (int col = 0; col < 3; col++)
                if (((g[row] - '0') >> (2 - col)) & 1)
                    fill(rgb, W, x0 + col * GLYPH_SCALE, y0 + row * GLYPH_SCALE, GLYPH_SCALE, GLYPH_SCALE, ink);
    }
}

/* Walk the legend's entries in flow layout; draw them when rgb is not NULL.
 * Returns the strip's height. */
static int layout_legend(int W, const uint8_t *present, const char *const *names, int C, uint8_t *rgb,
                         int top) {
    int x = 0, y = 0, any = 0;
    for (int c = 0; c < C; c++) {
        if (!present[c]) continue;
        int w = entry_width(names[c]);
        if (x > 0 && x + w > W) {
            x = 0;
            y += ENTRY_HEIGHT;
        }
        if (rgb) {
            uint8_t color[3];
            cs_label_color(c, color);
            fill(rgb, W, x + 4, top + y + 3, SWATCH, SWATCH, color);
            draw_text(rgb, W, x + TEXT_X, top + y + 5, names[c]);
        }
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
