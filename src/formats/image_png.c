/* PNG decoding with libpng into the mode PIL 9.4 opens the file in
 * (PngImagePlugin's table): 1-bit gray "1", 2/4/8-bit gray "L", 16-bit gray
 * "I" (or "L" from the high bytes on request), palettes "P" with their
 * PLTE, gray + alpha "LA" (16-bit: "RGBA"), RGB and RGBA (16-bit: the high
 * bytes). A tRNS chunk changes no pixel and no mode, as in PIL. Gamma,
 * colour profiles and sBIT are ignored, as PIL does. An APNG decodes to its
 * default image, which is the first frame PIL shows.
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
    int labels;         /* read raw 8-bit samples / palette indices, as mode L */
    int png16_highbyte; /* 16-bit gray as L from the high bytes */
    image_source image;
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

/* PIL's mode for a PNG layout, with the libpng transforms that deliver its
 * samples. Returns the bytes libpng delivers per pixel: the mode's, except
 * for "I", whose 16-bit samples are widened after reading. */
static int request_mode(png_structp png, int bit_depth, int color_type, int png16_highbyte,
                        image_mode *mode) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY:
        if (bit_depth == 16 && !png16_highbyte) {
            *mode = IMAGE_MODE_I;
            png_set_interlace_handling(png);
            return 2;
        }
        *mode = bit_depth == 1 ? IMAGE_MODE_1 : IMAGE_MODE_L;
        break;
    case PNG_COLOR_TYPE_PALETTE: *mode = IMAGE_MODE_P; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        /* PIL has no 16-bit LA: it reads those files as RGBA. */
        *mode = bit_depth == 16 ? IMAGE_MODE_RGBA : IMAGE_MODE_LA;
        if (bit_depth == 16) png_set_gray_to_rgb(png);
        break;
    case PNG_COLOR_TYPE_RGB: *mode = IMAGE_MODE_RGB; break;
    default: *mode = IMAGE_MODE_RGBA; break;
    }
    /* Packed indices one to a byte; packed gray scaled to 0..255 (1-bit to
     * 0 and 255, which is how PIL holds mode "1"). */
    if (color_type == PNG_COLOR_TYPE_PALETTE && bit_depth < 8) png_set_packing(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_strip_16(png);
    png_set_interlace_handling(png);
    return image_mode_bytes(*mode);
}

/* Mode "I": each row holds width big-endian 16-bit samples at its start;
 * widen them in place, back to front, to native int32. */
static void widen_rows_16(image_source *im) {
    for (int y = 0; y < im->height; y++) {
        uint8_t *row = im->pixels + (size_t)y * im->width * 4;
        for (int x = im->width - 1; x >= 0; x--) {
            int32_t v = row[2 * x] << 8 | row[2 * x + 1];
            memcpy(row + 4 * (size_t)x, &v, 4);
        }
    }
}

/* The PLTE entries over the start of PIL's gray-ramp palette. */
static void copy_palette(png_job *job) {
    png_colorp pal = NULL;
    int n = 0;
    if (!png_get_PLTE(job->png, job->info, &pal, &n) || !pal) return;
    for (int i = 0; i < n && i < 256; i++) {
        job->image.palette[i][0] = pal[i].red;
        job->image.palette[i][1] = pal[i].green;
        job->image.palette[i][2] = pal[i].blue;
    }
}

static int exif_orientation_of(png_job *job) {
    png_uint_32 n = 0;
    png_bytep exif = NULL;
    if (png_get_eXIf_1(job->png, job->info, &n, &exif) && exif) return exif_orientation(exif, n);
    return 1;
}

static cs_status png_run(png_job *job) {
    if (setjmp(png_jmpbuf(job->png)))
        return error_set(CS_ERR_FORMAT, "%s: corrupt PNG: %s", job->name, job->message);
    png_set_read_fn(job->png, job, read_from_buffer);
    /* check_header_size has applied our pixel limit; libpng's own per-side
     * cap (a million) would refuse some images within it. */
    png_set_user_limits(job->png, 0x7fffffff, 0x7fffffff);
    /* PIL refuses a file whose chunks before the image data fail their CRC,
     * ancillary ones included; libpng would only warn about those. */
    png_set_crc_action(job->png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_read_info(job->png, job->info);
    png_uint_32 width, height;
    int bit_depth, color_type, delivered = 1;
    image_mode mode = IMAGE_MODE_L;
    png_get_IHDR(job->png, job->info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
    if (job->orientation) *job->orientation = exif_orientation_of(job);
    if (job->labels) {
        if ((color_type != PNG_COLOR_TYPE_GRAY && color_type != PNG_COLOR_TYPE_PALETTE) || bit_depth > 8)
            return error_set(CS_ERR_UNSUPPORTED, "%s: a label mask must be an 8-bit grayscale or palette "
                           "PNG (colour type %d, %d bits)", job->name, color_type, bit_depth);
        /* Samples below 8 bits: one byte each, the value unscaled. */
        if (bit_depth < 8) png_set_packing(job->png);
        png_set_interlace_handling(job->png);
    } else {
        delivered = request_mode(job->png, bit_depth, color_type, job->png16_highbyte, &mode);
    }
    png_read_update_info(job->png, job->info);
    if (png_get_rowbytes(job->png, job->info) != (size_t)width * delivered)
        return error_set(CS_ERR_UNSUPPORTED, "%s: PNG layout (colour type %d, %d bits) not handled",
                       job->name, color_type, bit_depth);
    if (image_source_alloc(&job->image, mode, (int)width, (int)height) != CS_OK) return CS_ERR_NOMEM;
    if (mode == IMAGE_MODE_P) copy_palette(job);
    size_t stride = (size_t)width * image_mode_bytes(mode);
    job->rows = mem_alloc(height, sizeof(png_bytep));
    if (!job->rows) return CS_ERR_NOMEM;
    for (png_uint_32 y = 0; y < height; y++) job->rows[y] = job->image.pixels + (size_t)y * stride;
    png_read_image(job->png, job->rows);
    if (mode == IMAGE_MODE_I) widen_rows_16(&job->image);
    return CS_OK;
}

/* IHDR must be the first chunk, so the size is known from bytes 16..23
 * before libpng reads (and allocates for) anything else. A file without it
 * there is left for libpng to reject. */
static cs_status check_header_size(const char *name, const uint8_t *buf, size_t len,
                                   int64_t max_pixels) {
    if (len < 24 || memcmp(buf + 12, "IHDR", 4) != 0) return CS_OK;
    uint32_t width = png_get_uint_32(buf + 16), height = png_get_uint_32(buf + 20);
    return image_check_size(name, width, height, max_pixels);
}

/* Decode into job->image (left empty on failure). */
static cs_status png_decode(png_job *job) {
    cs_status s = check_header_size(job->name, job->buf, job->len, job->max_pixels);
    if (s != CS_OK) return s;
    job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, on_png_error, on_png_warning);
    if (job->png) job->info = png_create_info_struct(job->png);
    s = job->info ? png_run(job) : error_set(CS_ERR_NOMEM, "%s: cannot set up libpng", job->name);
    png_destroy_read_struct(job->png ? &job->png : NULL, job->info ? &job->info : NULL, NULL);
    cs_free(job->rows);
    if (s != CS_OK) image_source_free(&job->image);
    return s;
}

cs_status image_png_decode(const char *name, const uint8_t *buf, size_t len, int64_t max_pixels,
                        int png16_highbyte, image_source *out, int *orientation) {
    memset(out, 0, sizeof *out);
    if (orientation) *orientation = 1;
    png_job job = {.name = name, .buf = buf, .len = len, .max_pixels = max_pixels,
                   .orientation = orientation, .png16_highbyte = png16_highbyte};
    cs_status s = png_decode(&job);
    if (s == CS_OK) *out = job.image;
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
        s = error_set(CS_ERR_FORMAT, "%s: not a PNG file", path);
    else
        s = png_decode(&job);
    cs_free(data);
    if (s == CS_OK) {
        *labels = job.image.pixels;
        *width = job.image.width;
        *height = job.image.height;
    }
    return s;
}
