/* JPEG decoding with libjpeg-turbo, matching PIL's decode of the same file:
 * libjpeg's defaults (accurate integer IDCT, fancy upsampling), mode L for
 * one component, RGB for three, CMYK for four (YCCK converted to CMYK by
 * libjpeg), the CMYK samples inverted as PIL's "CMYK;I" raw mode does for
 * every CMYK JPEG, Adobe marker or not.
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
    image_source image;
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
            return exif_orientation(m->data + 6, m->data_length - 6);
    }
    return 1;
}

/* PIL's mode for the file's colour space, and libjpeg's output space for
 * it; -1 when unsupported. */
static int output_space_for(J_COLOR_SPACE in, image_mode *mode) {
    switch (in) {
    case JCS_GRAYSCALE: *mode = IMAGE_MODE_L; return JCS_GRAYSCALE;
    case JCS_YCbCr:
    case JCS_RGB: *mode = IMAGE_MODE_RGB; return JCS_RGB;
    case JCS_CMYK:
    case JCS_YCCK: *mode = IMAGE_MODE_CMYK; return JCS_CMYK;
    default: return -1;
    }
}

static void read_all_rows(jpeg_job *job) {
    j_decompress_ptr cinfo = &job->cinfo;
    image_source *im = &job->image;
    size_t stride = (size_t)im->width * image_mode_bytes(im->mode);
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = im->pixels + (size_t)cinfo->output_scanline * stride;
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    /* PIL's "CMYK;I": Photoshop stores CMYK inverted, and PIL assumes every
     * CMYK JPEG does. */
    if (im->mode == IMAGE_MODE_CMYK)
        for (size_t i = 0; i < stride * im->height; i++) im->pixels[i] = (uint8_t)(255 - im->pixels[i]);
}

static cs_status jpeg_run(jpeg_job *job) {
    j_decompress_ptr cinfo = &job->cinfo;
    if (setjmp(job->guard.jump)) {
        if (job->guard.truncated) return error_set(CS_ERR_FORMAT, "%s: truncated JPEG data", job->name);
        return error_set(CS_ERR_FORMAT, "%s: corrupt JPEG: %s", job->name, job->guard.message);
    }
    jpeg_create_decompress(cinfo);
    cinfo->progress = &job->progress;
    jpeg_mem_src(cinfo, job->buf, (unsigned long)job->len);
    if (job->orientation) jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(cinfo, TRUE);
    cs_status s = image_check_size(job->name, cinfo->image_width, cinfo->image_height,
                                      job->max_pixels);
    if (s != CS_OK) return s;
    image_mode mode = IMAGE_MODE_RGB;
    int space = output_space_for(cinfo->jpeg_color_space, &mode);
    if (space < 0)
        return error_set(CS_ERR_UNSUPPORTED, "%s: unsupported JPEG colour space (%d components)",
                       job->name, cinfo->num_components);
    cinfo->out_color_space = (J_COLOR_SPACE)space;
    if (job->orientation) *job->orientation = exif_orientation_of(cinfo);
    jpeg_start_decompress(cinfo);
    s = image_source_alloc(&job->image, mode, (int)cinfo->output_width, (int)cinfo->output_height);
    if (s != CS_OK) return s;
    read_all_rows(job);
    /* Reads through to the end marker: a file cut after its last scan is
     * truncated for PIL as well. */
    jpeg_finish_decompress(cinfo);
    return CS_OK;
}

cs_status image_jpeg_decode(const char *name, const uint8_t *buf, size_t len, int64_t max_pixels,
                         image_source *out, int *orientation) {
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
        image_source_free(&job.image);
        return s;
    }
    *out = job.image;
    return CS_OK;
}
