/* Label masks from PNG files, as indices (see label_png.h). libpng's errors
 * longjmp back to label_run; what is allocated across the jump lives in
 * label_job. */
#include "base/base.h"
#include <png.h>
#include <stdio.h>
#include <string.h>
#include "base/fileio.h"

#define LABEL_MAX_PIXELS ((int64_t)100000000)

typedef struct label_job {
    const char *path;
    const uint8_t *buf;
    size_t len, pos;
    png_structp png;
    png_infop info;
    png_bytepp rows;
    uint8_t *labels;
    int width, height;
    char message[256];
} label_job;

static void on_error(png_structp png, png_const_charp msg) {
    label_job *job = png_get_error_ptr(png);
    snprintf(job->message, sizeof job->message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {}

static void read_bytes(png_structp png, png_bytep dst, size_t n) {
    label_job *job = png_get_io_ptr(png);
    if (n > job->len - job->pos) png_error(png, "truncated PNG data");
    memcpy(dst, job->buf + job->pos, n);
    job->pos += n;
}

static cs_status label_run(label_job *job) {
    if (setjmp(png_jmpbuf(job->png)))
        return cs_fail(CS_ERR_FORMAT, "%s: corrupt PNG mask: %s", job->path, job->message);
    png_set_read_fn(job->png, job, read_bytes);
    png_read_info(job->png, job->info);
    png_uint_32 w, h;
    int depth, type;
    png_get_IHDR(job->png, job->info, &w, &h, &depth, &type, NULL, NULL, NULL);
    if ((type != PNG_COLOR_TYPE_GRAY && type != PNG_COLOR_TYPE_PALETTE) || depth > 8)
        return cs_fail(CS_ERR_UNSUPPORTED, "%s: a label mask must be an 8-bit grayscale or palette PNG "
                       "(colour type %d, %d bits)", job->path, type, depth);
    if ((int64_t)w * h > LABEL_MAX_PIXELS)
        return cs_fail(CS_ERR_LIMIT, "%s: mask of %ux%u pixels is over the limit", job->path, w, h);
    /* Samples below 8 bits: one byte each, the value unscaled. */
    if (depth < 8) png_set_packing(job->png);
    png_set_interlace_handling(job->png);
    png_read_update_info(job->png, job->info);
    if (png_get_rowbytes(job->png, job->info) != w)
        return cs_fail(CS_ERR_UNSUPPORTED, "%s: PNG mask layout not handled", job->path);
    job->labels = cs_alloc((size_t)w, h);
    job->rows = cs_alloc(h, sizeof(png_bytep));
    if (!job->labels || !job->rows) return CS_ERR_NOMEM;
    for (png_uint_32 y = 0; y < h; y++) job->rows[y] = job->labels + (size_t)y * w;
    png_read_image(job->png, job->rows);
    job->width = (int)w;
    job->height = (int)h;
    return CS_OK;
}

cs_status cs_label_png_load(const char *path, int *width, int *height, uint8_t **labels) {
    *labels = NULL;
    *width = *height = 0;
    char *data;
    size_t len;
    cs_status s = cs_read_file(path, 0, &data, &len);
    if (s != CS_OK) return s;
    label_job job;
    memset(&job, 0, sizeof job);
    job.path = path;
    job.buf = (const uint8_t *)data;
    job.len = len;
    if (len < 8 || png_sig_cmp((png_const_bytep)data, 0, 8))
        s = cs_fail(CS_ERR_FORMAT, "%s: not a PNG file", path);
    else {
        job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, on_error, on_warning);
        if (job.png) job.info = png_create_info_struct(job.png);
        s = job.info ? label_run(&job) : cs_fail(CS_ERR_NOMEM, "%s: cannot set up libpng", path);
        png_destroy_read_struct(job.png ? &job.png : NULL, job.info ? &job.info : NULL, NULL);
    }
    cs_free(job.rows);
    cs_free(data);
    if (s != CS_OK) {
        cs_free(job.labels);
        return s;
    }
    *labels = job.labels;
    *width = job.width;
    *height = job.height;
    return CS_OK;
}
