/* PIL's image modes: convert("RGB") and Image.resize(BICUBIC) of each, with
 * Pillow 9.4's arithmetic (libImaging Convert.c and Resample.c, Image.py's
 * resize), so the pixels match bit for bit. */
#include "image_modes.h"

#include <string.h>
#include "../base/base.h"
#include "resize_pillow.h"

int image_mode_bytes(image_mode mode) {
    switch (mode) {
    case IMAGE_MODE_LA: return 2;
    case IMAGE_MODE_RGB: return 3;
    case IMAGE_MODE_RGBA:
    case IMAGE_MODE_CMYK:
    case IMAGE_MODE_I: return 4;
    default: return 1;
    }
}

cs_status image_source_alloc(image_source *im, image_mode mode, int width, int height) {
    memset(im, 0, sizeof *im);
    size_t pixels;
    if (width < 1 || height < 1 || !size_mul((size_t)width, (size_t)height, &pixels))
        return error_set(CS_ERR_NOMEM, "image of %dx%d pixels", width, height);
    im->pixels = mem_alloc(pixels, (size_t)image_mode_bytes(mode));
    if (!im->pixels) return CS_ERR_NOMEM;
    im->mode = mode;
    im->width = width;
    im->height = height;
    /* A new PIL palette is the gray ramp; a file's PLTE overwrites its start. */
    for (int i = 0; i < 256; i++) im->palette[i][0] = im->palette[i][1] = im->palette[i][2] = (uint8_t)i;
    return CS_OK;
}

void image_source_free(image_source *im) {
    cs_free(im->pixels);
    memset(im, 0, sizeof *im);
}

/* a * b / 255 rounded, as PIL's MULDIV255 computes it. */
static unsigned muldiv255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

static uint8_t clip8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* PIL's cmyk2rgb: each channel is (255 - K) less C's share of it. */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb) {
    int not_k = 255 - cmyk[3];
    for (int c = 0; c < 3; c++) rgb[c] = clip8(not_k - (int)muldiv255(cmyk[c], (unsigned)not_k));
}

void image_source_to_rgb(const image_source *im, uint8_t *rgb) {
    size_t n = (size_t)im->width * im->height;
    const uint8_t *p = im->pixels;
    for (size_t i = 0; i < n; i++, rgb += 3) {
        switch (im->mode) {
        case IMAGE_MODE_1: rgb[0] = rgb[1] = rgb[2] = p[i] ? 255 : 0; break;
        case IMAGE_MODE_L: rgb[0] = rgb[1] = rgb[2] = p[i]; break;
        case IMAGE_MODE_P: memcpy(rgb, im->palette[p[i]], 3); break;
        case IMAGE_MODE_LA: rgb[0] = rgb[1] = rgb[2] = p[2 * i]; break;
        case IMAGE_MODE_RGB: memcpy(rgb, p + 3 * i, 3); break;
        case IMAGE_MODE_RGBA: memcpy(rgb, p + 4 * i, 3); break;
        case IMAGE_MODE_CMYK: cmyk_to_rgb(p + 4 * i, rgb); break;
        case IMAGE_MODE_I: {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            rgb[0] = rgb[1] = rgb[2] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
            break;
        }
        }
    }
}

/* PIL's RGBA -> RGBa (or LA -> La): colour times alpha / 255, rounded.
 * `channels` counts the alpha, which is the last. */
static void premultiply(uint8_t *px, size_t n, int channels) {
    for (size_t i = 0; i < n; i++, px += channels)
        for (int c = 0; c < channels - 1; c++) px[c] = (uint8_t)muldiv255(px[c], px[channels - 1]);
}

/* PIL's RGBa -> RGBA: 255 * colour / alpha truncated and clipped; alpha 0
 * and 255 leave the colour as it is. */
static void unpremultiply(uint8_t *px, size_t n, int channels) {
    for (size_t i = 0; i < n; i++, px += channels) {
        int a = px[channels - 1];
        if (a == 0 || a == 255) continue;
        for (int c = 0; c < channels - 1; c++) px[c] = clip8(255 * px[c] / a);
    }
}

/* Image.resize with BICUBIC: a copy at the same size; nearest neighbour for
 * P and 1 (indices cannot be interpolated); LA and RGBA premultiplied,
 * resampled, unpremultiplied; every other mode resampled as it is. */
cs_status image_source_resize(const image_source *in, int out_w, int out_h, image_source *out) {
    cs_status s = image_source_alloc(out, in->mode, out_w, out_h);
    if (s != CS_OK) return s;
    memcpy(out->palette, in->palette, sizeof out->palette);
    int bytes = image_mode_bytes(in->mode);
    size_t n_in = (size_t)in->width * in->height;
    if (out_w == in->width && out_h == in->height) {
        memcpy(out->pixels, in->pixels, n_in * bytes);
        return CS_OK;
    }
    switch (in->mode) {
    case IMAGE_MODE_1:
    case IMAGE_MODE_P:
        s = op_resize_nearest_u8(in->pixels, in->width, in->height, out->pixels, out_w, out_h);
        break;
    case IMAGE_MODE_I:
        s = op_resize_bicubic_i32((const int32_t *)(const void *)in->pixels, in->width, in->height,
                                  (int32_t *)(void *)out->pixels, out_w, out_h);
        break;
    case IMAGE_MODE_LA:
    case IMAGE_MODE_RGBA: {
        uint8_t *pre = mem_alloc(n_in, (size_t)bytes);
        if (!pre) {
            s = CS_ERR_NOMEM;
            break;
        }
        memcpy(pre, in->pixels, n_in * bytes);
        premultiply(pre, n_in, bytes);
        s = op_resize_bicubic_u8(pre, in->width, in->height, bytes, out->pixels, out_w, out_h);
        if (s == CS_OK) unpremultiply(out->pixels, (size_t)out_w * out_h, bytes);
        cs_free(pre);
        break;
    }
    default:
        s = op_resize_bicubic_u8(in->pixels, in->width, in->height, bytes, out->pixels, out_w, out_h);
        break;
    }
    if (s != CS_OK) image_source_free(out);
    return s;
}
