/* EXIF orientation: reading the tag from a TIFF block and turning the image
 * upright as PIL's ImageOps.exif_transpose does (in the image's own mode,
 * before anything is converted). Used only on request: the reference
 * ignores the tag. */
#include <string.h>
#include "../base/base.h"
#include "image.h"

#define TIFF_TAG_ORIENTATION 0x0112
#define TIFF_TYPE_SHORT 3

static unsigned read_u16(const uint8_t *p, int big_endian) {
    return big_endian ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
}

static uint32_t read_u32(const uint8_t *p, int big_endian) {
    return big_endian ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                      : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int exif_orientation(const uint8_t *tiff, size_t len) {
    if (len < 8) return 1;
    int big_endian;
    if (memcmp(tiff, "II*\0", 4) == 0)
        big_endian = 0;
    else if (memcmp(tiff, "MM\0*", 4) == 0)
        big_endian = 1;
    else
        return 1;
    uint32_t ifd = read_u32(tiff + 4, big_endian);
    if (ifd > len - 2) return 1;
    unsigned entries = read_u16(tiff + ifd, big_endian);
    const uint8_t *e = tiff + ifd + 2;
    size_t room = (len - ifd - 2) / 12;
    for (unsigned i = 0; i < entries && i < room; i++, e += 12) {
        if (read_u16(e, big_endian) != TIFF_TAG_ORIENTATION) continue;
        if (read_u16(e + 2, big_endian) != TIFF_TYPE_SHORT || read_u32(e + 4, big_endian) < 1)
            return 1;
        unsigned v = read_u16(e + 8, big_endian);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

/* Where output pixel (x, y) of an upright image of out_w x out_h comes from
 * in the stored w x h image, for each of PIL's transposes. */
static void source_of(int orientation, int x, int y, int w, int h, int *sx, int *sy) {
    switch (orientation) {
    case 2: *sx = w - 1 - x; *sy = y; break;         /* mirror left-right */
    case 3: *sx = w - 1 - x; *sy = h - 1 - y; break; /* rotate 180 */
    case 4: *sx = x; *sy = h - 1 - y; break;         /* mirror top-bottom */
    case 5: *sx = y; *sy = x; break;                 /* transpose */
    case 6: *sx = y; *sy = h - 1 - x; break;         /* rotate 90 clockwise */
    case 7: *sx = w - 1 - y; *sy = h - 1 - x; break; /* transverse */
    case 8: *sx = w - 1 - y; *sy = x; break;         /* rotate 90 anticlockwise */
    default: *sx = x; *sy = y; break;
    }
}

cs_status image_apply_orientation(const char *name, image_source *img, int orientation) {
    if (orientation < 2 || orientation > 8) return CS_OK;
    int w = img->width, h = img->height;
    int swap = orientation >= 5;
    int out_w = swap ? h : w, out_h = swap ? w : h;
    size_t bytes = (size_t)image_mode_bytes(img->mode);
    uint8_t *px = mem_alloc((size_t)w * h, bytes);
    if (!px) {
        error_prefix("%s", name);
        return CS_ERR_NOMEM;
    }
    for (int y = 0; y < out_h; y++)
        for (int x = 0; x < out_w; x++) {
            int sx, sy;
            source_of(orientation, x, y, w, h, &sx, &sy);
            memcpy(px + ((size_t)y * out_w + x) * bytes, img->pixels + ((size_t)sy * w + sx) * bytes,
                   bytes);
        }
    cs_free(img->pixels);
    img->pixels = px;
    img->width = out_w;
    img->height = out_h;
    return CS_OK;
}
