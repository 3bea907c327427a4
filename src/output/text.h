/* Layer 6, outputs: text set by Pango (any script; fonts found by
 * fontconfig, so CJK and emoji render wherever such fonts are installed)
 * and drawn by cairo into our 8-bit RGB pictures. Text is Pango markup
 * (text_escape makes plain text safe for it). */
#ifndef CS_OUTPUT_TEXT_H
#define CS_OUTPUT_TEXT_H

#include "base/base.h"

/* Pixel size of markup set at font size px (pixels), wrapped at max_w
 * pixels (0: one line per paragraph). */
cs_status text_measure(const char *markup, double px, int max_w, int *w, int *h);

/* Draw markup onto rgb [height, width, 3] with its top-left corner at
 * (x, y), clipped to the picture; ink is the default text colour. */
cs_status text_draw(uint8_t *rgb, int width, int height, int x, int y, const char *markup, double px,
                    int max_w, const uint8_t ink[3]);

/* text (n bytes of UTF-8) escaped for markup, appended to a growing
 * string (*buf of *cap bytes, NUL-terminated). */
cs_status text_append(char **buf, size_t *cap, const char *text, size_t n, int escape);

#endif
