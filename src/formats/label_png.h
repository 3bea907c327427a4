/* Layer 3: label masks stored as PNG (segmentation ground truth): the raw
 * sample of an 8-bit grayscale PNG (index masks, Cityscapes labelIds) or the
 * palette index of a palette PNG (PASCAL VOC's SegmentationClass), never
 * converted to colours. */
#ifndef CS_LABEL_PNG_H
#define CS_LABEL_PNG_H

#include "base/base.h"

/* labels: [height, width] (free with cs_free). Other PNG kinds (RGB,
 * 16-bit, alpha) are CS_ERR_UNSUPPORTED with a message naming the file. */
cs_status cs_label_png_load(const char *path, int *width, int *height, uint8_t **labels);

#endif
