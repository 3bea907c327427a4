/* Layer 2: an image in the mode PIL opens its file in (palette, 1-bit,
 * gray + alpha, RGBA, 16-bit gray as "I", CMYK...), resized in that mode and
 * converted to RGB exactly as Pillow 9.4 does.
 *
 * The reference resizes the PIL image it opened, then converts it to RGB;
 * for most modes that differs from converting first: palettes and 1-bit
 * images resize nearest-neighbour, alpha images with premultiplied colour,
 * 16-bit gray in 32-bit integers clipped to 0..255 only at the end. */
#ifndef CS_IMAGE_MODES_H
#define CS_IMAGE_MODES_H

#include <stdint.h>
#include "clip_surgery.h"

typedef enum image_mode {
    IMAGE_MODE_1,    /* 1-bit, one byte a pixel holding 0 or 255 */
    IMAGE_MODE_L,    /* 8-bit gray */
    IMAGE_MODE_P,    /* 8-bit palette indices */
    IMAGE_MODE_LA,   /* gray, alpha */
    IMAGE_MODE_RGB,
    IMAGE_MODE_RGBA,
    IMAGE_MODE_CMYK, /* as PIL holds it (Adobe JPEGs un-inverted) */
    IMAGE_MODE_I     /* 32-bit signed integers, native byte order */
} image_mode;

/* The pixels of one image in its mode (cs_image.source points at one). */
typedef struct cs_image_source {
    image_mode mode;
    int width, height;
    uint8_t *pixels;          /* [height, width, image_mode_bytes(mode)] */
    uint8_t palette[256][3];  /* mode P: entries the file lacks are PIL's gray ramp */
} image_source;

/* Bytes a pixel of the mode takes. */
int image_mode_bytes(image_mode mode);

/* Pixels for a width x height image of the mode (palette set to the gray
 * ramp). On failure (CS_ERR_NOMEM) im is left empty. */
cs_status image_source_alloc(image_source *im, image_mode mode, int width, int height);
void image_source_free(image_source *im);

/* PIL's convert("RGB"): rgb is [height, width, 3]. Alpha is dropped without
 * compositing, "I" is clipped to 0..255, CMYK goes through PIL's formula. */
void image_source_to_rgb(const image_source *im, uint8_t *rgb);

/* PIL's Image.resize(size, BICUBIC) in the image's own mode. out must be a
 * different, empty image_source; it is allocated here. */
cs_status image_source_resize(const image_source *in, int out_w, int out_h, image_source *out);

#endif
