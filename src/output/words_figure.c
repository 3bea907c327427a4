/* The multimodal visualization's figure (docs/words.md), after the paper's:
 * the caption set in type with its three best tokens on red, yellow and
 * cyan, a line naming them with their cosines, and below it the image
 * with the best token's heatmap. */
#include <stdio.h>
#include <string.h>
#include "output/text.h"

/* The highlight colours of ranks 1, 2, 3 and the text on them. */
static const char *const k_fill[3] = {"#E62828", "#FFD400", "#00D8FF"};
static const char *const k_on[3] = {"#FFFFFF", "#000000", "#000000"};

/* Append `text` (n bytes) to the markup, on highlight colour k (-1: none). */
static cs_status append_span(char **m, size_t *cap, const char *text, size_t n, int k) {
    char open[96];
    cs_status s = CS_OK;
    if (k >= 0) {
        snprintf(open, sizeof open, "<span background=\"%s\" foreground=\"%s\">", k_fill[k], k_on[k]);
        s = text_append(m, cap, open, strlen(open), 0);
    }
    if (s == CS_OK) s = text_append(m, cap, text, n, 1);
    if (s == CS_OK && k >= 0) s = text_append(m, cap, "</span>", 7, 0);
    return s;
}

/* The caption with every character of a top unit on its colour (the
 * better rank wins where units share a character). */
static cs_status caption_markup(const cs_words_result *r, const char *caption, char **m, size_t *cap) {
    if (!*caption) return text_append(m, cap, "<i>(empty caption)</i>", 22, 0);
    cs_status s = CS_OK;
    const char *run = caption;
    int run_k = -2;
    int cp = 0;
    for (const char *p = caption; s == CS_OK; cp++) {
        int k = -1;
        for (int t = 2; t >= 0; t--) {
            int u = r->top[t];
            if (u >= 0 && cp >= r->units[u].start && cp < r->units[u].end) k = t;
        }
        if (k != run_k || !*p) {
            if (p > run) s = append_span(m, cap, run, (size_t)(p - run), run_k);
            run = p;
            run_k = k;
        }
        if (!*p) break;
        p++; /* to the next UTF-8 character */
        while ((*p & 0xC0) == 0x80) p++;
    }
    if (s == CS_OK && (r->truncated || r->dropped))
        s = text_append(m, cap, "<span foreground=\"#888888\"> …</span>", strlen("<span foreground=\"#888888\"> …</span>"), 0);
    return s;
}

/* Byte offset of code point cp in the UTF-8 text (its end when past it). */
static size_t byte_offset(const char *text, int cp) {
    const char *p = text;
    for (int i = 0; i < cp && *p; i++) {
        p++;
        while ((*p & 0xC0) == 0x80) p++;
    }
    return (size_t)(p - text);
}

/* How the figure names a unit: the caption's own characters where it has
 * them (a byte piece of a character shows the character, not U+FFFD). */
static cs_status append_label(char **m, size_t *cap, const cs_words_result *r, const char *caption,
                              int u) {
    const cs_words_unit *x = &r->units[u];
    if (x->start < 0) return text_append(m, cap, x->text, strlen(x->text), 1);
    size_t a = byte_offset(caption, x->start), b = byte_offset(caption, x->end);
    return text_append(m, cap, caption + a, b - a, 1);
}

/* "map: TOKEN   1 TOKEN 0.123  2 ...", the notes on truncation. */
static cs_status info_markup(const cs_words_result *r, const char *caption, int shown, char **m,
                             size_t *cap) {
    char buf[160];
    cs_status s = text_append(m, cap, "map: <b>", 8, 0);
    if (s == CS_OK) s = append_label(m, cap, r, caption, shown);
    if (s == CS_OK) s = text_append(m, cap, "</b>    ", 8, 0);
    for (int k = 0; s == CS_OK && k < 3 && r->top[k] >= 0; k++) {
        const cs_words_unit *u = &r->units[r->top[k]];
        s = append_span(m, cap, "\u2002\u2002", 6, k); /* a swatch: two en spaces */
        snprintf(buf, sizeof buf, " %d ", u->rank);
        if (s == CS_OK) s = text_append(m, cap, buf, strlen(buf), 0);
        if (s == CS_OK) s = append_label(m, cap, r, caption, r->top[k]);
        snprintf(buf, sizeof buf, " %.3f   ", u->cosine);
        if (s == CS_OK) s = text_append(m, cap, buf, strlen(buf), 0);
    }
    if (s == CS_OK && r->truncated) {
        snprintf(buf, sizeof buf, "\n<i>cut at %d tokens as CLIP does; %d tokens left out</i>", r->n_tokens,
                 r->dropped);
        s = text_append(m, cap, buf, strlen(buf), 0);
    } else if (s == CS_OK && r->dropped) {
        snprintf(buf, sizeof buf, "\n<i>%d tokens after &lt;|endoftext|&gt; left out</i>", r->dropped);
        s = text_append(m, cap, buf, strlen(buf), 0);
    }
    return s;
}

cs_status cs_words_figure(const cs_words_result *r, const char *caption, const uint8_t *rgb, int W,
                          int H, uint8_t **out, int *out_w, int *out_h) {
    *out = NULL;
    *out_w = *out_h = 0;
    if (!r || !caption || !r->maps || W != r->width || H != r->height)
        return error_set(CS_ERR_ARG, "words figure: needs a result and an image of its map size (%dx%d)",
                       r ? r->width : 0, r ? r->height : 0);
    int fig_w = W < 360 ? 360 : W;
    int margin = fig_w / 40 < 8 ? 8 : fig_w / 40;
    double px = fig_w / 28.0 < 14 ? 14 : fig_w / 28.0 > 40 ? 40 : fig_w / 28.0, small = px * 0.62;
    int shown = r->top[0] >= 0 ? r->top[0] : r->ranking[0];
    char *cap_m = NULL, *info_m = NULL;
    size_t cap_c = 0, info_c = 0;
    int cw = 0, ch = 0, iw = 0, ih = 0;
    cs_status s = caption_markup(r, caption, &cap_m, &cap_c);
    if (s == CS_OK) s = info_markup(r, caption, shown, &info_m, &info_c);
    if (s == CS_OK) s = text_measure(cap_m, px, fig_w - 2 * margin, &cw, &ch);
    if (s == CS_OK) s = text_measure(info_m, small, fig_w - 2 * margin, &iw, &ih);
    int top = margin + ch + margin / 2 + ih + margin, fig_h = top + H;
    uint8_t *fig = s == CS_OK ? mem_alloc((size_t)fig_w * fig_h, 3) : NULL;
    if (s == CS_OK && !fig) s = CS_ERR_NOMEM;
    if (s == CS_OK) {
        static const uint8_t ink[3] = {0, 0, 0}, gray[3] = {80, 80, 80};
        memset(fig, 255, (size_t)fig_w * fig_h * 3);
        s = text_draw(fig, fig_w, fig_h, margin, margin, cap_m, px, fig_w - 2 * margin, ink);
        if (s == CS_OK)
            s = text_draw(fig, fig_w, fig_h, margin, margin + ch + margin / 2, info_m, small,
                          fig_w - 2 * margin, gray);
    }
    if (s == CS_OK) {
        uint8_t *pic = mem_alloc((size_t)W * H, 3);
        if (!pic) s = CS_ERR_NOMEM;
        else {
            cs_heatmap_overlay(r->maps + shown, r->n_units, (size_t)W * H, rgb, pic);
            int left = (fig_w - W) / 2;
            for (int y = 0; y < H; y++)
                memcpy(fig + ((size_t)(top + y) * fig_w + left) * 3, pic + (size_t)y * W * 3, (size_t)W * 3);
            cs_free(pic);
        }
    }
    cs_free(cap_m);
    cs_free(info_m);
    if (s != CS_OK) {
        cs_free(fig);
        return s;
    }
    *out = fig;
    *out_w = fig_w;
    *out_h = fig_h;
    return CS_OK;
}
