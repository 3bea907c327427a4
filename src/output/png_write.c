/* PNG writing (libpng): atomically into a file (temporary file, then
 * rename), or into memory (the server's data URLs); one encoder serves both,
 * so both give the same bytes. */
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <zlib.h>
#include "base/fileio.h"

static cs_status check_args(const char *name, int width, int height, int channels) {
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3))
        return error_set(CS_ERR_ARG, "%s: cannot write a %dx%d PNG with %d channels", name, width,
                       height, channels);
    return CS_OK;
}

static cs_status png_to_stream(const char *name, FILE *f, int width, int height, int channels,
                               const uint8_t *pixels) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return error_set(CS_ERR_NOMEM, "%s: cannot start the PNG encoder", name);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return error_set(CS_ERR_IO, "%s: PNG encoding failed", name);
    }
    png_init_io(png, f);
    /* Heatmaps are written every run and read by people: fast deflate
     * (zlib level 1, one filter) costs little size and most of the time.
     * RGB pictures (overlays on photos) deflate as runs only (Z_RLE): the
     * overlays of the four shared images (400x600 to 640x427) 11-21%
     * faster and 8-12% smaller than level 1's string matching (rocket.jpg's
     * 11.7 -> 10.0 ms, most of a whole run's PNG time); gray maps and
     * labels, smooth or flat, keep it (RLE made rocket's map 42% larger). */
    png_set_compression_level(png, 1);
    if (channels == 3) png_set_compression_strategy(png, Z_RLE);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * width * channels));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return CS_OK;
}

cs_status cs_png_write(const char *path, int width, int height, int channels, const uint8_t *pixels) {
    cs_status s = check_args(path, width, height, channels);
    if (s != CS_OK) return s;
    cs_atomic_file af;
    if ((s = cs_atomic_open(&af, path)) != CS_OK) return s;
    if ((s = png_to_stream(path, af.f, width, height, channels, pixels)) != CS_OK) {
        cs_atomic_abort(&af);
        return s;
    }
    return cs_atomic_commit(&af);
}

cs_status cs_png_encode(int width, int height, int channels, const uint8_t *pixels, uint8_t **out,
                        size_t *len) {
    *out = NULL;
    *len = 0;
    cs_status s = check_args("png", width, height, channels);
    if (s != CS_OK) return s;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return error_set(CS_ERR_NOMEM, "png: cannot open a memory stream");
    s = png_to_stream("png", f, width, height, channels, pixels);
    if (fclose(f) != 0 && s == CS_OK) s = error_set(CS_ERR_NOMEM, "png: out of memory");
    if (s != CS_OK) {
        free(buf);
        return s;
    }
    *out = (uint8_t *)buf;
    *len = n;
    return CS_OK;
}
