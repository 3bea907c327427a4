/* Text in pictures (Pango + cairo): every script the figures need has a
 * font here (no boxes), text lands in the picture, the segmentation legend
 * sets its names with it, and bad text is refused rather than drawn. */
#include <stdlib.h>
/* glib has a g_test_failed of its own: renamed while its headers are read. */
#define g_test_failed glib_g_test_failed
#include <pango/pangocairo.h>
#undef g_test_failed
#include "output/text.h"
#include "test.h"

/* Glyphs Pango could not find in any installed font (drawn as boxes). */
static int unknown_glyphs(const char *text) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *cr = cairo_create(s);
    PangoLayout *layout = pango_cairo_create_layout(cr);
    PangoFontDescription *font = pango_font_description_from_string("Sans 14");
    pango_layout_set_font_description(layout, font);
    pango_layout_set_text(layout, text, -1);
    int n = pango_layout_get_unknown_glyphs_count(layout);
    pango_font_description_free(font);
    g_object_unref(layout);
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    return n;
}

static int count_dark(const uint8_t *rgb, size_t n) {
    int dark = 0;
    for (size_t i = 0; i < n; i++) dark += rgb[3 * i] < 80 && rgb[3 * i + 1] < 80 && rgb[3 * i + 2] < 80;
    return dark;
}

static void test_fonts(void) {
    static const char *texts[] = {"a photo of a cat", "Zürich café", "猫と犬", "고양이", "кошка",
                                  "🐱🐶", "a cat 🐱 猫"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        CHECK_MSG(unknown_glyphs(texts[i]) == 0, "'%s' has %d glyphs no installed font has (install "
                  "the fonts .ci/deps lists)", texts[i], unknown_glyphs(texts[i]));
}

static void test_draw(void) {
    int w, h;
    CHECK_OK(text_measure("猫と犬", 20, 0, &w, &h));
    CHECK(w > 30 && h >= 20);
    int wrapped_w, wrapped_h;
    CHECK_OK(text_measure("a b c d e f g h i j k l m n o p", 20, 60, &wrapped_w, &wrapped_h));
    CHECK(wrapped_w <= 60 && wrapped_h > 2 * h);
    uint8_t *rgb = malloc(100 * 40 * 3);
    memset(rgb, 255, 100 * 40 * 3);
    static const uint8_t ink[3] = {0, 0, 0};
    CHECK_OK(text_draw(rgb, 100, 40, 5, 5, "<b>Cat</b>", 20, 0, ink));
    CHECK(count_dark(rgb, 100 * 40) > 20);
    /* Partly outside: clipped, nothing written out of bounds (ASan). */
    CHECK_OK(text_draw(rgb, 100, 40, 80, 30, "a long line of text", 20, 0, ink));
    CHECK_OK(text_draw(rgb, 100, 40, -50, -10, "a long line of text", 20, 0, ink));
    CHECK_STATUS(text_draw(rgb, 100, 40, 0, 0, "<b>unclosed", 20, 0, ink), CS_ERR_ARG);
    char *m = NULL;
    size_t cap = 0;
    CHECK_OK(text_append(&m, &cap, "a < b & c", 9, 1));
    CHECK(m && !strcmp(m, "a &lt; b &amp; c"));
    CHECK_STATUS(text_append(&m, &cap, "\xff", 1, 1), CS_ERR_UTF8);
    cs_free(m);
    free(rgb);
}

/* The legend: a strip with ink for each present class; a name that is not
 * UTF-8 keeps its swatch. */
static void test_legend(void) {
    enum { W = 200, H = 10 };
    uint8_t labels[W * H];
    for (int i = 0; i < W * H; i++) labels[i] = (uint8_t)(i % W < 100 ? 1 : 2);
    const char *names[] = {"background", "猫 cat", "bad \xff name"};
    int strip = cs_legend_height(W, labels, W * H, names, 3);
    CHECK(strip >= 22);
    uint8_t *rgb = malloc((size_t)W * (H + strip) * 3);
    cs_colorize_labels(labels, W, H, names, 3, rgb);
    CHECK(count_dark(rgb + (size_t)W * H * 3, (size_t)W * strip) > 20);
    uint8_t c2[3];
    cs_label_color(2, c2);
    int swatch2 = 0;
    for (size_t i = (size_t)W * H; i < (size_t)W * (H + strip); i++)
        swatch2 += !memcmp(rgb + 3 * i, c2, 3);
    CHECK(swatch2 == 14 * 14);
    free(rgb);
}

int main(void) {
    test_fonts();
    test_draw();
    test_legend();
    return test_finish();
}
