/* Image input: format detection by magic bytes, the size limit, and the
 * public cs_image_load / cs_image_free. The decoders are image_jpeg.c and
 * image_png.c. */
#include "image.h"

#include <string.h>
#include "../base/base.h"
#include "../base/fileio.h"

/* Other formats a user may hand us, recognized only to say what they are. */
static const struct {
    const char *magic;
    size_t len;
    const char *format;
} k_other_formats[] = {
    {"GIF8", 4, "GIF"}, {"BM", 2, "BMP"}, {"II*\0", 4, "TIFF"}, {"MM\0*", 4, "TIFF"},
    {"RIFF", 4, "RIFF (e.g. WebP)"}, {"\0\0\0\x0cjP  ", 8, "JPEG 2000"},
};

static int has_prefix(const uint8_t *buf, size_t len, const char *magic, size_t n) {
    return len >= n && memcmp(buf, magic, n) == 0;
}

cs_status image_check_size(const char *name, int64_t width, int64_t height,
                              int64_t max_pixels) {
    if (width < 1 || height < 1)
        return error_set(CS_ERR_FORMAT, "%s: image has no pixels (%lldx%lld)", name,
                       (long long)width, (long long)height);
    if (width > max_pixels / height)
        return error_set(CS_ERR_LIMIT, "%s: image is %lldx%lld, more than the limit of %lld pixels",
                       name, (long long)width, (long long)height, (long long)max_pixels);
    return CS_OK;
}

static cs_status decode_by_magic(const char *name, const uint8_t *buf, size_t len,
                                 int64_t max_pixels, int png16_highbyte, image_source *out,
                                 int *orientation) {
    if (len == 0) return error_set(CS_ERR_FORMAT, "%s: empty file", name);
    if (has_prefix(buf, len, "\x89PNG\r\n\x1a\n", 8))
        return image_png_decode(name, buf, len, max_pixels, png16_highbyte, out, orientation);
    if (has_prefix(buf, len, "\xff\xd8\xff", 3))
        return image_jpeg_decode(name, buf, len, max_pixels, out, orientation);
    for (size_t i = 0; i < sizeof k_other_formats / sizeof k_other_formats[0]; i++)
        if (has_prefix(buf, len, k_other_formats[i].magic, k_other_formats[i].len))
            return error_set(CS_ERR_UNSUPPORTED, "%s: %s images are not supported (JPEG or PNG only)",
                           name, k_other_formats[i].format);
    return error_set(CS_ERR_FORMAT, "%s: not a JPEG or PNG image", name);
}

/* The RGB view of a decoded image, keeping the source where resizing it
 * differs from resizing its RGB. RGB needs nothing more, and neither does
 * gray: its RGB channels are equal, so resizing them is resizing the gray. */
static cs_status image_from_source(const char *name, image_source *src, cs_image *out) {
    out->width = src->width;
    out->height = src->height;
    if (src->mode == IMAGE_MODE_RGB) {
        out->rgb = src->pixels;
        src->pixels = NULL;
        return CS_OK;
    }
    out->rgb = mem_alloc((size_t)src->width * src->height, 3);
    if (out->rgb && src->mode != IMAGE_MODE_L) out->source = mem_calloc(1, sizeof *src);
    if (!out->rgb || (src->mode != IMAGE_MODE_L && !out->source)) {
        error_prefix("%s", name);
        return CS_ERR_NOMEM;
    }
    image_source_to_rgb(src, out->rgb);
    if (out->source) {
        *out->source = *src;
        src->pixels = NULL;
    }
    return CS_OK;
}

cs_status cs_image_decode_memory(const char *name, const uint8_t *buf, size_t len,
                                 const cs_image_options *opts, cs_image *out) {
    memset(out, 0, sizeof *out);
    int64_t max_pixels = opts && opts->max_pixels ? opts->max_pixels : CS_IMAGE_DEFAULT_MAX_PIXELS;
    if (max_pixels < 0)
        return error_set(CS_ERR_ARG, "%s: negative pixel limit %lld", name, (long long)max_pixels);
    int want_orientation = opts && opts->exif_rotate;
    int orientation = 1;
    image_source src = {0};
    cs_status s = decode_by_magic(name, buf, len, max_pixels, opts && opts->png16_highbyte, &src,
                                  want_orientation ? &orientation : NULL);
    if (s != CS_OK) return s;
    if (want_orientation) s = image_apply_orientation(name, &src, orientation);
    if (s == CS_OK) s = image_from_source(name, &src, out);
    image_source_free(&src);
    if (s != CS_OK) cs_image_free(out);
    return s;
}

/* The largest file worth reading for a given pixel limit: raw 16-bit RGBA
 * samples plus room for metadata (an APNG's later frames count as metadata:
 * only the first is decoded). Anything bigger is refused unread. */
static size_t max_file_bytes(int64_t max_pixels) {
    const uint64_t metadata = (uint64_t)64 << 20;
    uint64_t cap = (uint64_t)max_pixels <= (UINT64_MAX - metadata) / 8
                       ? (uint64_t)max_pixels * 8 + metadata
                       : UINT64_MAX;
    return cap > SIZE_MAX ? SIZE_MAX : (size_t)cap;
}

cs_status cs_image_load(const char *path, const cs_image_options *opts, cs_image *out) {
    memset(out, 0, sizeof *out);
    int64_t max_pixels = opts && opts->max_pixels > 0 ? opts->max_pixels : CS_IMAGE_DEFAULT_MAX_PIXELS;
    char *data;
    size_t len;
    cs_status s = cs_read_file(path, max_file_bytes(max_pixels), &data, &len);
    if (s != CS_OK) return s;
    s = cs_image_decode_memory(path, (const uint8_t *)data, len, opts, out);
    cs_free(data);
    return s;
}

void cs_image_free(cs_image *img) {
    if (!img) return;
    cs_free(img->rgb);
    if (img->source) image_source_free(img->source);
    cs_free(img->source);
    memset(img, 0, sizeof *img);
}
