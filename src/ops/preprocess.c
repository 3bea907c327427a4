/* The public preprocessing steps: Pillow-exact resize of a cs_image (in the
 * file's own mode when it has one) and
 * CLIP's normalization, both matching the reference's torchvision pipeline
 * (Resize(BICUBIC) on the PIL image, ToTensor, Normalize). */
#include <string.h>
#include "../base/base.h"
#include "image_modes.h"
#include "resize_pillow.h"

/* The RGB of `in` resized: through its own mode when it has one. */
static cs_status resize_to_rgb(const cs_image *in, int out_w, int out_h, uint8_t *rgb) {
    if (!in->source) return op_resize_bicubic_u8(in->rgb, in->width, in->height, 3, rgb, out_w, out_h);
    image_source small;
    cs_status s = image_source_resize(in->source, out_w, out_h, &small);
    if (s != CS_OK) return s;
    image_source_to_rgb(&small, rgb);
    image_source_free(&small);
    return CS_OK;
}

/* out may be the input itself: the old pixels are freed once the new ones
 * exist. On failure a distinct out is left empty. */
cs_status cs_image_resize(const cs_image *in, int out_w, int out_h, cs_image *out) {
    if (out != in) memset(out, 0, sizeof *out);
    if (!in || !in->rgb || in->width < 1 || in->height < 1)
        return error_set(CS_ERR_ARG, "resize: empty input image");
    if (in->source && (in->source->width != in->width || in->source->height != in->height))
        return error_set(CS_ERR_ARG, "resize: image and its source differ in size");
    if (out_w < 1 || out_h < 1)
        return error_set(CS_ERR_ARG, "resize: bad output size %dx%d", out_w, out_h);
    size_t pixels;
    if (!size_mul((size_t)out_w, (size_t)out_h, &pixels))
        return error_set(CS_ERR_NOMEM, "resize: output size %dx%d overflows", out_w, out_h);
    uint8_t *rgb = mem_alloc(pixels, 3);
    if (!rgb) return CS_ERR_NOMEM;
    cs_status s = resize_to_rgb(in, out_w, out_h, rgb);
    if (s != CS_OK) {
        cs_free(rgb);
        return s;
    }
    if (out == in) {
        cs_free(out->rgb);
        if (out->source) image_source_free(out->source);
        cs_free(out->source);
    }
    out->width = out_w;
    out->height = out_h;
    out->rgb = rgb;
    out->source = NULL;
    return CS_OK;
}

/* CLIP's statistics, as the float32 tensors torchvision's Normalize makes. */
static const float k_clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float k_clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

void cs_image_normalize(const cs_image *img, float *out) {
    /* Every 8-bit value maps to one float per channel, so a table computes
     * each once. The float32 operations and their order are torchvision's
     * (ToTensor divides by 255, Normalize subtracts then divides), which
     * makes the result bit-identical to the reference. */
    float table[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            table[c][v] = ((float)v / 255.0f - k_clip_mean[c]) / k_clip_std[c];
    size_t plane = (size_t)img->width * img->height;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) out[c * plane + i] = table[c][img->rgb[3 * i + c]];
}
