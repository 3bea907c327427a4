/* Text in pictures through Pango and cairo (Debian's libpango1.0 and
 * libcairo2): Pango shapes any script and falls back across the installed
 * fonts (fontconfig), cairo rasterizes, including colour emoji. A picture
 * region is copied into a cairo surface, drawn on and copied back, so the
 * rest of the library keeps its plain 8-bit RGB arrays. */
#include <string.h>
#include <pango/pangocairo.h>
#include "base/dynlib.h"
#include "output/text.h"

/* Pango, cairo and GLib are opened on the first text drawn (dynlib.h):
 * libpangocairo brings the others with it. */
#define TEXT_FUNCS(X) X(cairo_create) X(cairo_destroy) X(cairo_image_surface_create) \
    X(cairo_image_surface_get_data) X(cairo_image_surface_get_stride) X(cairo_set_source_rgb) \
    X(cairo_surface_destroy) X(cairo_surface_flush) X(cairo_surface_mark_dirty) \
    X(cairo_surface_status) X(cairo_translate) X(g_error_free) X(g_free) X(g_markup_escape_text) \
    X(g_object_unref) X(g_strndup) X(g_utf8_validate) X(pango_cairo_create_layout) \
    X(pango_cairo_show_layout) X(pango_font_description_free) \
    X(pango_font_description_from_string) X(pango_font_description_set_absolute_size) \
    X(pango_layout_get_pixel_size) X(pango_layout_set_font_description) X(pango_layout_set_markup) \
    X(pango_layout_set_width) X(pango_layout_set_wrap) X(pango_parse_markup)
DYNLIB_DEFINE(g_pango, "libpangocairo-1.0.so.0", "text in figures", TEXT_FUNCS);

#define TEXT_FONT "Sans"

/* A layout of markup on cr at font size px, wrapped at max_w. */
static PangoLayout *make_layout(cairo_t *cr, const char *markup, double px, int max_w) {
    PangoLayout *layout = p_pango_cairo_create_layout(cr);
    PangoFontDescription *font = p_pango_font_description_from_string(TEXT_FONT);
    p_pango_font_description_set_absolute_size(font, px * PANGO_SCALE);
    p_pango_layout_set_font_description(layout, font);
    p_pango_font_description_free(font);
    if (max_w > 0) {
        p_pango_layout_set_width(layout, max_w * PANGO_SCALE);
        p_pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR);
    }
    p_pango_layout_set_markup(layout, markup, -1);
    return layout;
}

static cs_status check_markup(const char *markup) {
    GError *err = NULL;
    if (!p_pango_parse_markup(markup, -1, 0, NULL, NULL, NULL, &err)) {
        cs_status s = error_set(CS_ERR_ARG, "text markup: %s", err ? err->message : "invalid");
        if (err) p_g_error_free(err);
        return s;
    }
    return CS_OK;
}

cs_status text_measure(const char *markup, double px, int max_w, int *w, int *h) {
    *w = *h = 0;
    cs_status s = dynlib_open(&g_pango);
    if (s == CS_OK) s = check_markup(markup);
    if (s != CS_OK) return s;
    cairo_surface_t *surface = p_cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *cr = p_cairo_create(surface);
    PangoLayout *layout = make_layout(cr, markup, px, max_w);
    p_pango_layout_get_pixel_size(layout, w, h);
    p_g_object_unref(layout);
    p_cairo_destroy(cr);
    p_cairo_surface_destroy(surface);
    return CS_OK;
}

cs_status text_draw(uint8_t *rgb, int width, int height, int x, int y, const char *markup, double px,
                    int max_w, const uint8_t ink[3]) {
    int tw, th;
    cs_status s = text_measure(markup, px, max_w, &tw, &th);
    if (s != CS_OK) return s;
    /* The text's box, clipped to the picture. */
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + tw > width ? width : x + tw, y1 = y + th > height ? height : y + th;
    if (x1 <= x0 || y1 <= y0) return CS_OK;
    int w = x1 - x0, h = y1 - y0;
    cairo_surface_t *surface = p_cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (p_cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
        p_cairo_surface_destroy(surface);
        return error_set(CS_ERR_NOMEM, "text: no memory for a %dx%d surface", w, h);
    }
    uint8_t *data = p_cairo_image_surface_get_data(surface);
    int stride = p_cairo_image_surface_get_stride(surface);
    for (int r = 0; r < h; r++) {
        uint32_t *dst = (uint32_t *)(data + (size_t)r * stride);
        const uint8_t *src = rgb + ((size_t)(y0 + r) * width + x0) * 3;
        for (int c = 0; c < w; c++, src += 3) dst[c] = (uint32_t)src[0] << 16 | (uint32_t)src[1] << 8 | src[2];
    }
    p_cairo_surface_mark_dirty(surface);
    cairo_t *cr = p_cairo_create(surface);
    p_cairo_translate(cr, x - x0, y - y0);
    p_cairo_set_source_rgb(cr, ink[0] / 255.0, ink[1] / 255.0, ink[2] / 255.0);
    PangoLayout *layout = make_layout(cr, markup, px, max_w);
    p_pango_cairo_show_layout(cr, layout);
    p_g_object_unref(layout);
    p_cairo_destroy(cr);
    p_cairo_surface_flush(surface);
    for (int r = 0; r < h; r++) {
        const uint32_t *src = (const uint32_t *)(data + (size_t)r * stride);
        uint8_t *dst = rgb + ((size_t)(y0 + r) * width + x0) * 3;
        for (int c = 0; c < w; c++, dst += 3) {
            dst[0] = (uint8_t)(src[c] >> 16);
            dst[1] = (uint8_t)(src[c] >> 8);
            dst[2] = (uint8_t)src[c];
        }
    }
    p_cairo_surface_destroy(surface);
    return CS_OK;
}

cs_status text_append(char **buf, size_t *cap, const char *text, size_t n, int escape) {
    cs_status s = dynlib_open(&g_pango);
    if (s != CS_OK) return s;
    if (!p_g_utf8_validate(text, (gssize)n, NULL)) return error_set(CS_ERR_UTF8, "text to draw is not UTF-8");
    char *piece = escape ? p_g_markup_escape_text(text, (gssize)n) : p_g_strndup(text, n);
    size_t have = *buf ? strlen(*buf) : 0, add = strlen(piece);
    if (have + add + 1 > *cap) {
        size_t want = (have + add + 1) * 2;
        char *grown = mem_alloc(want, 1);
        if (!grown) {
            p_g_free(piece);
            return CS_ERR_NOMEM;
        }
        if (*buf) memcpy(grown, *buf, have + 1);
        else grown[0] = 0;
        cs_free(*buf);
        *buf = grown;
        *cap = want;
    }
    memcpy(*buf + have, piece, add + 1);
    p_g_free(piece);
    return CS_OK;
}
