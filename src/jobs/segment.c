/* The segment and classify jobs on one decoded image, and eval's
 * per-image explain scoring. */
#include <string.h>
#include "jobs.h"

cs_segment_options cs_segment_defaults(void) {
    return (cs_segment_options){.resolution = 0, .method = CS_METHOD_SURGERY, .window = 0, .stride = 0,
                                .short_side = 0, .bg_thresh = 0.0f, .logit_scale = 40.0f, .bg_class = -1};
}

/* The image's size with its short side scaled to `side` (rounded). */
static void short_side_size(const cs_image *img, int side, int *w, int *h) {
    int s = img->width < img->height ? img->width : img->height;
    *w = side ? (int)((double)img->width * side / s + 0.5) : img->width;
    *h = side ? (int)((double)img->height * side / s + 0.5) : img->height;
}

static cs_status check_segment(const cs_segment_options *o, const cs_classes *cl) {
    int C = cs_classes_count(cl);
    if (C > 255) return cs_fail(CS_ERR_ARG, "%d classes; at most 255 fit a label PNG", C);
    if (o->method != CS_METHOD_SURGERY && o->method != CS_METHOD_CLIP)
        return cs_fail(CS_ERR_ARG, "unknown method %d (surgery or clip)", (int)o->method);
    if (o->window < 0 || o->stride < 0 || o->short_side < 0 || (!o->window && (o->stride || o->short_side)))
        return cs_fail(CS_ERR_ARG, "a window stride and short side go with a window (got %d, %d, %d)", o->window,
                       o->stride, o->short_side);
    if (o->window && o->stride > o->window)
        return cs_fail(CS_ERR_ARG, "stride %d is larger than the window %d: some pixels would be in no window",
                       o->stride, o->window);
    if (o->window && o->short_side && o->short_side < o->window)
        return cs_fail(CS_ERR_ARG, "short side %d is smaller than the window %d", o->short_side, o->window);
    if (o->bg_thresh > 0.0f && (o->bg_class < 0 || o->bg_class >= C))
        return cs_fail(CS_ERR_ARG, "a background threshold needs a background class (got %d)", o->bg_class);
    return CS_OK;
}

cs_status cs_segment(cs_model *m, cs_classes *cl, const cs_image *img, const cs_segment_options *opts,
                     uint8_t *labels) {
    cs_segment_options o = opts ? *opts : cs_segment_defaults();
    cs_status s = check_segment(&o, cl);
    if (s != CS_OK) return s;
    int W = img->width, H = img->height, R = job_resolution(m, o.resolution), w = R, h = R;
    int stride = o.stride ? o.stride : (o.window / 2 > 0 ? o.window / 2 : 1);
    if (o.window) short_side_size(img, o.short_side, &w, &h);
    if (o.window && (w < o.window || h < o.window))
        return cs_fail(CS_ERR_ARG, "a %dx%d image is smaller than the %d-pixel window (give --short-side)", w, h,
                       o.window);
    cs_name_set names;
    s = classes_name_set(cl, m, NULL, &names);
    if (s != CS_OK) return s;
    float *pixels = NULL, *logits = cs_alloc((size_t)W * H, (size_t)names.n_classes * sizeof(float));
    if (!logits) return CS_ERR_NOMEM;
    s = image_pixels(img, w, h, &pixels);
    cs_vision_mode mode = o.method == CS_METHOD_SURGERY ? CS_VISION_SURGERY : CS_VISION_PLAIN;
    if (s == CS_OK)
        s = o.window ? cs_segment_logits_sliding(m, pixels, h, w, o.window, stride, mode, &names, H, W, logits)
                     : cs_segment_logits(m, pixels, R, mode, &names, H, W, logits);
    if (s == CS_OK) s = cs_segment_labels(logits, (size_t)W * H, names.n_classes, &o, labels);
    cs_free(pixels);
    cs_free(logits);
    return s;
}

cs_classify_options cs_classify_defaults(void) {
    return (cs_classify_options){.resolution = 0, .method = CS_METHOD_SURGERY};
}

cs_status cs_classify(cs_model *m, cs_classes *cl, const cs_image *img, const cs_classify_options *opts,
                      float *scores) {
    cs_classify_options o = opts ? *opts : cs_classify_defaults();
    if (o.method != CS_METHOD_SURGERY && o.method != CS_METHOD_CLIP)
        return cs_fail(CS_ERR_ARG, "unknown method %d (surgery or clip)", (int)o.method);
    int surgery = o.method == CS_METHOD_SURGERY, R = job_resolution(m, o.resolution);
    cs_redundancy used;
    const float *redundant = NULL;
    cs_name_set names;
    cs_status s = cs_classes_embed(cl, m, NULL, NULL);
    /* One name: the empty prompt, as everywhere (the class-weighted row is zero). */
    if (s == CS_OK) s = classes_redundancy(cl, m, CS_REDUNDANT_AUTO, &used, &redundant);
    if (s == CS_OK) s = classes_name_set(cl, m, redundant, &names);
    if (s != CS_OK) return s;
    int T = cs_model_num_tokens(m, R);
    float *pixels = NULL, *tokens = cs_alloc((size_t)T, (size_t)names.dim * sizeof(float));
    if (!tokens) return CS_ERR_NOMEM;
    s = image_pixels(img, R, R, &pixels);
    if (s == CS_OK) s = cs_encode_image(m, pixels, R, surgery ? CS_VISION_SURGERY : CS_VISION_PLAIN, tokens);
    if (s == CS_OK) s = cs_multilabel_scores(tokens, T, &names, surgery, scores);
    cs_free(pixels);
    cs_free(tokens);
    return s;
}

void cs_mask_classes(const uint8_t *mask, size_t n, int C, int background, uint8_t *present) {
    memset(present, 0, (size_t)C);
    for (size_t i = 0; i < n; i++)
        if (mask[i] < C) present[mask[i]] = 1;
    if (background >= 0 && background < C) present[background] = 0;
}

void cs_explain_score(const float *maps, int C, const uint8_t *mask, size_t n, int background,
                      int64_t (*counts)[CS_EXPLAIN_STEPS][4], int64_t *pairs, int64_t *unknown) {
    uint8_t stack[256], *present = C <= 256 ? stack : cs_alloc((size_t)C, 1);
    if (!present) return; /* out of memory: the image adds nothing */
    cs_mask_classes(mask, n, C, background, present);
    for (int c = 0; c < C; c++) {
        if (!present[c]) continue;
        cs_explain_add(maps + c, C, mask, n, c, CS_IGNORE_LABEL, counts[c]);
        pairs[c]++;
    }
    for (size_t i = 0; i < n; i++) *unknown += mask[i] >= C && mask[i] != CS_IGNORE_LABEL;
    if (present != stack) cs_free(present);
}
