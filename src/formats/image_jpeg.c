/* JPEG decoding with libjpeg-turbo, matching PIL's decode of the same file:
 * libjpeg's defaults (accurate integer IDCT, fancy upsampling), RGB output
 * for colour files, grayscale replicated to RGB (which is what PIL's resize
 * then convert("RGB") gives), CMYK converted as PIL's convert("RGB") does.
 *
 * libjpeg reports fatal errors through error_exit, which must not return:
 * ours longjmps back to jpeg_run. Everything allocated across that jump
 * lives in jpeg_job (outside the frame that called setjmp) so the caller can
 * release it whatever happened. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include "../base/base.h"
#include "image.h"

/* A progressive file may repeat scans without end, each one re-running the
 * entropy decoder over the whole image; real files have a few dozen. */
#define JPEG_MAX_SCANS 1000

typedef struct jpeg_guard {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int truncated;
} jpeg_guard;

typedef struct jpeg_job {
    const char *name;
    const uint8_t *buf;
    size_t len;
    int64_t max_pixels;
    int *orientation;
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    jpeg_guard guard;
    cs_image image;
} jpeg_job;

static void on_jpeg_error(j_common_ptr cinfo) {
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    cinfo->err->format_message(cinfo, g->message);
    longjmp(g->jump, 1);
}

/* Warnings and traces are silent (the library never prints, and PIL decodes
 * through recoverable corruption too), except running out of data: PIL
 * refuses a truncated JPEG, so do we. */
static void on_jpeg_message(j_common_ptr cinfo, int level) {
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        g->truncated = 1;
        snprintf(g->message, sizeof g->message, "truncated JPEG data");
        longjmp(g->jump, 1);
    }
}

static void on_jpeg_progress(j_common_ptr cinfo) {
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_guard *g = (jpeg_guard *)cinfo->err;
        snprintf(g->message, sizeof g->message, "more than %d scans", JPEG_MAX_SCANS);
        longjmp(g->jump, 1);
    }
}

/* The orientation tag of the first APP1 "Exif" segment, 1 when none. */
static int exif_orientation_of(j_decompress_ptr cinfo) {
    static const char k_exif[6] = {'E', 'x', 'i', 'f', 0, 0};
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            memcmp(m->data, k_exif, 6) == 0)
            return cs_exif_orientation(m->data + 6, m->data_length - 6);
    }
    return 1;
}

/* PIL's CMYK to RGB: each channel is (255 - K) less C's share of it. Adobe
 * files store the channels inverted; PIL undoes that first. */
static void cmyk_row_to_rgb(const uint8_t *cmyk, int width, int inverted, uint8_t *rgb) {
    for (int x = 0; x < width; x++) {
        int v[4];
        for (int c = 0; c < 4; c++) v[c] = inverted ? 255 - cmyk[4 * x + c] : cmyk[4 * x + c];
        int not_k = 255 - v[3];
        for (int c = 0; c < 3; c++) {
            int t = v[c] * not_k + 128;
            int share = ((t >> 8) + t) >> 8; /* v * not_k / 255, rounded */
            int out = not_k - share;
            rgb[3 * x + c] = (uint8_t)(out < 0 ? 0 : out);
        }
    }
}

/* Spread a row of `width` gray bytes held at the start of rgb into RGB,
 * back to front so no byte is overwritten before it is read. */
static void gray_row_to_rgb(uint8_t *rgb, int width) {
    for (int x = width - 1; x >= 0; x--) {
        uint8_t v = rgb[x];
        rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = v;
    }
}

/* The output colour space PIL's mode implies, or -1 when unsupported. */
static int output_space_for(J_COLOR_SPACE in) {
    switch (in) {
    case JCS_GRAYSCALE: return JCS_GRAYSCALE;
    case JCS_YCbCr:
    case JCS_RGB: return JCS_RGB;
    case JCS_CMYK:
    case JCS_YCCK: return JCS_CMYK;
    default: return -1;
    }
}

static void read_all_rows(jpeg_job *job) {
    j_decompress_ptr cinfo = &job->cinfo;
    int width = (int)cinfo->output_width;
    size_t stride = (size_t)width * 3;
    JSAMPARRAY cmyk = NULL;
    if (cinfo->out_color_space == JCS_CMYK)
        cmyk = cinfo->mem->alloc_sarray((j_common_ptr)cinfo, JPOOL_IMAGE, (JDIMENSION)width * 4, 1);
    while (cinfo->output_scanline < cinfo->output_height) {
        uint8_t *row = job->image.rgb + (size_t)cinfo->output_scanline * stride;
        JSAMPROW target = cmyk ? cmyk[0] : row;
        jpeg_read_scanlines(cinfo, &target, 1);
        if (cinfo->out_color_space == JCS_GRAYSCALE) gray_row_to_rgb(row, width);
        if (cmyk) cmyk_row_to_rgb(cmyk[0], width, cinfo->saw_Adobe_marker, row);
    }
}

static cs_status jpeg_run(jpeg_job *job) {
    j_decompress_ptr cinfo = &job->cinfo;
    if (setjmp(job->guard.jump)) {
        if (job->guard.truncated) return cs_fail(CS_ERR_FORMAT, "%s: truncated JPEG data", job->name);
        return cs_fail(CS_ERR_FORMAT, "%s: corrupt JPEG: %s", job->name, job->guard.message);
    }
    jpeg_create_decompress(cinfo);
    cinfo->progress = &job->progress;
    jpeg_mem_src(cinfo, job->buf, (unsigned long)job->len);
    if (job->orientation) jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(cinfo, TRUE);
    cs_status s = cs_image_check_size(job->name, cinfo->image_width, cinfo->image_height,
                                      job->max_pixels);
    if (s != CS_OK) return s;
    int space = output_space_for(cinfo->jpeg_color_space);
    if (space < 0)
        return cs_fail(CS_ERR_UNSUPPORTED, "%s: unsupported JPEG colour space (%d components)",
                       job->name, cinfo->num_components);
    cinfo->out_color_space = (J_COLOR_SPACE)space;
    if (job->orientation) *job->orientation = exif_orientation_of(cinfo);
    jpeg_start_decompress(cinfo);
    job->image.width = (int)cinfo->output_width;
    job->image.height = (int)cinfo->output_height;
    job->image.rgb = cs_alloc((size_t)job->image.width * job->image.height, 3);
    if (!job->image.rgb) return CS_ERR_NOMEM;
    read_all_rows(job);
    /* Reads through to the end marker: a file cut after its last scan is
     * truncated for PIL as well. */
    jpeg_finish_decompress(cinfo);
    return CS_OK;
}

cs_status cs_jpeg_decode(const char *name, const uint8_t *buf, size_t len, int64_t max_pixels,
                         cs_image *out, int *orientation) {
    memset(out, 0, sizeof *out);
    jpeg_job job;
    memset(&job, 0, sizeof job);
    job.name = name;
    job.buf = buf;
    job.len = len;
    job.max_pixels = max_pixels;
    job.orientation = orientation;
    job.cinfo.err = jpeg_std_error(&job.guard.mgr);
    job.guard.mgr.error_exit = on_jpeg_error;
    job.guard.mgr.emit_message = on_jpeg_message;
    job.progress.progress_monitor = on_jpeg_progress;
    if (orientation) *orientation = 1;
    cs_status s = jpeg_run(&job);
    jpeg_destroy_decompress(&job.cinfo);
    if (s != CS_OK) {
        cs_free(job.image.rgb);
        return s;
    }
    *out = job.image;
    return CS_OK;
}
