/* PNG decoding with libpng into 8-bit RGB. 8-bit RGB and grayscale decode as
 * PIL does; palettes are expanded, alpha (and tRNS transparency) dropped and
 * 16-bit samples keep their high byte: the deviation DESIGN.md section 4
 * documents. Gamma, colour profiles and sBIT are ignored, as PIL does.
 *
 * libpng reports fatal errors through a callback that must not return: ours
 * longjmps back to png_run. Everything allocated across that jump lives in
 * png_job, outside the frame that called setjmp. */
#include <png.h>
#include <stdio.h>
#include <string.h>
#include "../base/base.h"
#include "../base/fileio.h"
#include "image.h"

typedef struct png_job {
    const char *name;
    const uint8_t *buf;
    size_t len, pos;
    int64_t max_pixels;
    int *orientation;
    png_structp png;
    png_infop info;
    png_bytepp rows;
    char message[256];
    int labels;        /* read raw 8-bit samples / palette indices, one channel */
    int width, height;
    uint8_t *pixels;   /* [height, width, 3], or [height, width] with labels */
} png_job;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_job *job = png_get_error_ptr(png);
    snprintf(job->message, sizeof job->message, "%s", msg);
    png_longjmp(png, 1);
}

/* The library never prints; libpng's warnings are about recoverable oddities. */
static void on_png_warning(png_structp png, png_const_charp msg) {}

static void read_from_buffer(png_structp png, png_bytep dst, size_t n) {
    png_job *job = png_get_io_ptr(png);
    if (n > job->len - job->pos) png_error(png, "truncated PNG data");
    memcpy(dst, job->buf + job->pos, n);
    job->pos += n;
}

/* Ask libpng for 8-bit RGB whatever the file holds. */
static void request_rgb8(png_structp png, int bit_depth, int color_type) {
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_strip_16(png);
    /* Also removes the alpha channel that palette expansion makes from tRNS. */
    png_set_strip_alpha(png);
    if (!(color_type & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
}

static int exif_orientation_of(png_job *job) {
    png_uint_32 n = 0;
    png_bytep exif = NULL;
    if (png_get_eXIf_1(job->png, job->info, &n, &exif) && exif) return cs_exif_orientation(exif, n);
    return 1;
}

static cs_status png_run(png_job *job) {
    if (setjmp(png_jmpbuf(job->png)))
        return cs_fail(CS_ERR_FORMAT, "%s: corrupt PNG: %s", job->name, job->message);
    png_set_read_fn(job->png, job, read_from_buffer);
    /* check_header_size has applied our pixel limit; libpng's own per-side
     * cap (a million) would refuse some images within it. */
    png_set_user_limits(job->png, 0x7fffffff, 0x7fffffff);
    /* PIL refuses a file whose chunks before the image data fail their CRC,
     * ancillary ones included; libpng would only warn about those. */
    png_set_crc_action(job->png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_read_info(job->png, job->info);
    png_uint_32 width, height;
    int bit_depth, color_type, channels = job->labels ? 1 : 3;
    png_get_IHDR(job->png, job->info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
    if (job->orientation) *job->orientation = exif_orientation_of(job);
    if (job->labels) {
        if ((color_type != PNG_COLOR_TYPE_GRAY && color_type != PNG_COLOR_TYPE_PALETTE) || bit_depth > 8)
            return cs_fail(CS_ERR_UNSUPPORTED, "%s: a label mask must be an 8-bit grayscale or palette "
                           "PNG (colour type %d, %d bits)", job->name, color_type, bit_depth);
        /* Samples below 8 bits: one byte each, the value unscaled. */
        if (bit_depth < 8) png_set_packing(job->png);
        png_set_interlace_handling(job->png);
    } else {
        request_rgb8(job->png, bit_depth, color_type);
    }
    png_read_update_info(job->png, job->info);
    if (png_get_rowbytes(job->png, job->info) != (size_t)width * channels)
        return cs_fail(CS_ERR_UNSUPPORTED, "%s: PNG layout (colour type %d, %d bits) not handled",
                       job->name, color_type, bit_depth);
    job->width = (int)width;
    job->height = (int)height;
    job->pixels = cs_alloc((size_t)width * height, (size_t)channels);
    job->rows = cs_alloc(height, sizeof(png_bytep));
    if (!job->pixels || !job->rows) return CS_ERR_NOMEM;
    for (png_uint_32 y = 0; y < height; y++) job->rows[y] = job->pixels + (size_t)y * width * channels;
    png_read_image(job->png, job->rows);
    return CS_OK;
}

/* IHDR must be the first chunk, so the size is known from bytes 16..23
 * before libpng reads (and allocates for) anything else. A file without it
 * there is left for libpng to reject. */
static cs_status check_header_size(const char *name, const uint8_t *buf, size_t len,
                                   int64_t max_pixels) {
    if (len < 24 || memcmp(buf + 12, "IHDR", 4) != 0) return CS_OK;
    uint32_t width = png_get_uint_32(buf + 16), height = png_get_uint_32(buf + 20);
    return cs_image_check_size(name, width, height, max_pixels);
}

/* Decode into job->pixels (RGB, or labels when job->labels is set). */
static cs_status png_decode(png_job *job) {
    cs_status s = check_header_size(job->name, job->buf, job->len, job->max_pixels);
    if (s != CS_OK) return s;
    job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, on_png_error, on_png_warning);
    if (job->png) job->info = png_create_info_struct(job->png);
    s = job->info ? png_run(job) : cs_fail(CS_ERR_NOMEM, "%s: cannot set up libpng", job->name);
    png_destroy_read_struct(job->png ? &job->png : NULL, job->info ? &job->info : NULL, NULL);
    cs_free(job->rows);
    if (s != CS_OK) {
        cs_free(job->pixels);
        job->pixels = NULL;
    }
    return s;
}

cs_status cs_png_decode(const char *name, const uint8_t *buf, size_t len, int64_t max_pixels,
                        cs_image *out, int *orientation) {
    memset(out, 0, sizeof *out);
    if (orientation) *orientation = 1;
    png_job job = {.name = name, .buf = buf, .len = len, .max_pixels = max_pixels,
                   .orientation = orientation};
    cs_status s = png_decode(&job);
    if (s == CS_OK) *out = (cs_image){job.width, job.height, job.pixels};
    return s;
}

cs_status cs_label_png_load(const char *path, int *width, int *height, uint8_t **labels) {
    *labels = NULL;
    *width = *height = 0;
    char *data;
    size_t len;
    cs_status s = cs_read_file(path, 0, &data, &len);
    if (s != CS_OK) return s;
    png_job job = {.name = path, .buf = (const uint8_t *)data, .len = len,
                   .max_pixels = CS_IMAGE_DEFAULT_MAX_PIXELS, .labels = 1};
    if (len < 8 || png_sig_cmp((png_const_bytep)data, 0, 8))
        s = cs_fail(CS_ERR_FORMAT, "%s: not a PNG file", path);
    else
        s = png_decode(&job);
    cs_free(data);
    if (s == CS_OK) {
        *labels = job.pixels;
        *width = job.width;
        *height = job.height;
    }
    return s;
}
