/* Layer 3: image decoding (JPEG through libjpeg-turbo, PNG through libpng)
 * into the mode PIL 9.4 opens the file in, plus its convert("RGB"). The
 * public entry points cs_image_load and cs_image_free are in
 * clip_surgery.h. */
#ifndef CS_IMAGE_H
#define CS_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include "clip_surgery.h"
#include "../ops/image_modes.h"

/* Used when cs_image_options.max_pixels is 0 (or no options are given). */
#define CS_IMAGE_DEFAULT_MAX_PIXELS ((int64_t)100000000)

/* cs_image_decode_memory (decoding an image held in memory) is public. */

/* Per-format decoders, called once the magic bytes are known: the pixels
 * in PIL's mode for the file. Both check width x height against max_pixels
 * from the header, before allocating. When orientation is not NULL it
 * receives the EXIF orientation tag (1..8; 1 when there is none) that the
 * file carries. On failure *out is left empty. */
cs_status image_jpeg_decode(const char *name, const uint8_t *buf, size_t len, int64_t max_pixels,
                         image_source *out, int *orientation);
/* png16_highbyte: 16-bit gray becomes "L" from the high bytes, not "I". */
cs_status image_png_decode(const char *name, const uint8_t *buf, size_t len, int64_t max_pixels,
                        int png16_highbyte, image_source *out, int *orientation);

/* CS_OK when a width x height image fits the limit; otherwise CS_ERR_LIMIT
 * (or CS_ERR_FORMAT for an empty size) with a message naming the file. */
cs_status image_check_size(const char *name, int64_t width, int64_t height,
                              int64_t max_pixels);

/* The Orientation tag (0x0112) of IFD0 of an EXIF TIFF block, 1..8; 1 when
 * the block is malformed or has no valid tag. */
int exif_orientation(const uint8_t *tiff, size_t len);

/* Turn an image upright for an EXIF orientation the way PIL's
 * ImageOps.exif_transpose does (2..8 flip or rotate; 1 leaves it). */
cs_status image_apply_orientation(const char *name, image_source *img, int orientation);

#endif
