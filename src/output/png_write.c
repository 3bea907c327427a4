/* PNG writing (libpng), atomically: temporary file, then rename. */
#include <png.h>
#include <setjmp.h>
#include "base/fileio.h"

cs_status cs_png_write(const char *path, int width, int height, int channels, const uint8_t *pixels) {
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3))
        return cs_fail(CS_ERR_ARG, "%s: cannot write a %dx%d PNG with %d channels", path, width,
                       height, channels);
    cs_atomic_file af;
    cs_status s = cs_atomic_open(&af, path);
    if (s != CS_OK) return s;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        cs_atomic_abort(&af);
        return cs_fail(CS_ERR_NOMEM, "%s: cannot start the PNG encoder", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        cs_atomic_abort(&af);
        return cs_fail(CS_ERR_IO, "%s: PNG encoding failed", path);
    }
    png_init_io(png, af.f);
    /* Heatmaps are written every run and read by people: fast deflate
     * (zlib level 1, one filter) costs little size and most of the time. */
    png_set_compression_level(png, 1);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * width * channels));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return cs_atomic_commit(&af);
}
