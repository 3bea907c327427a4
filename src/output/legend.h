/* Layer 6: colour pictures of segmentation labels with a legend strip. */
#ifndef CS_LEGEND_H
#define CS_LEGEND_H

#include "base/base.h"

/* The PASCAL VOC colour of a label (bit-interleaved palette; 255 is the
 * palette's light void colour). */
void cs_label_color(int label, uint8_t rgb[3]);

/* Height of the legend strip that cs_colorize_labels draws below a W-wide
 * picture: one swatch and name per class present in labels [n]. */
int cs_legend_height(int W, const uint8_t *labels, size_t n, const char *const *names, int C);

/* rgb [(H + legend height) x W x 3]: each pixel its label's colour, then the
 * legend strip (swatches and names in a small built-in font, upper case). */
void cs_colorize_labels(const uint8_t *labels, int W, int H, const char *const *names, int C,
                        uint8_t *rgb);

#endif
