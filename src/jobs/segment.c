/* The segment and classify jobs on n inputs (4 per tower pass), and
 * eval's per-image explain scoring. */
#include <math.h>
#include <string.h>
#include "jobs.h"
#include "method/method.h"
#include "ops/ops.h"

cs_segment_options cs_segment_defaults(void) {
    return (cs_segment_options){.resolution = 0, .method = CS_METHOD_SURGERY, .window = 0, .stride = 0,
                                .short_side = 0, .max_long_side = 0, .bg_thresh = 0.0f, .logit_scale = 0.0f, .bg_class = -1,
                                .pamr_steps = 0, .name_logits = 0, .area_thresh = 0.0f};
}

/* The image's size with its short side scaled to `side`, the long side at
 * most max_long (0: unbounded): mmcv's rescale_size, operation for
 * operation (the factor first, then int(size x factor + 0.5)). */
static void short_side_size(const cs_image *img, int side, int max_long, int *w, int *h) {
    int s = img->width < img->height ? img->width : img->height, l = img->width + img->height - s;
    double f = side ? (double)side / s : 1.0;
    if (side && max_long > 0 && (double)max_long / l < f) f = (double)max_long / l;
    *w = side ? (int)(img->width * f + 0.5) : img->width;
    *h = side ? (int)(img->height * f + 0.5) : img->height;
}

static cs_status check_segment(const cs_model *m, const cs_segment_options *o, const cs_classes *cl) {
    int C = cs_classes_count(cl);
    if (C > 255) return error_set(CS_ERR_ARG, "%d classes; at most 255 fit a label PNG", C);
    cs_status s = job_method(m, o->method);
    if (s != CS_OK) return s;
    if (o->window < 0 || o->stride < 0 || o->short_side < 0 || (!o->window && (o->stride || o->short_side)))
        return error_set(CS_ERR_ARG, "a window stride and short side go with a window (got %d, %d, %d)", o->window,
                       o->stride, o->short_side);
    if (o->max_long_side < 0 || (o->max_long_side && !o->short_side))
        return error_set(CS_ERR_ARG, "a long-side bound goes with a short side (got %d, %d)", o->max_long_side,
                       o->short_side);
    if (o->window && o->stride > o->window)
        return error_set(CS_ERR_ARG, "stride %d is larger than the window %d: some pixels would be in no window",
                       o->stride, o->window);
    if (o->window && o->short_side && o->short_side < o->window)
        return error_set(CS_ERR_ARG, "short side %d is smaller than the window %d", o->short_side, o->window);
    if (o->bg_thresh > 0.0f && (o->bg_class < 0 || o->bg_class >= C))
        return error_set(CS_ERR_ARG, "a background threshold needs a background class (got %d)", o->bg_class);
    if (!(o->area_thresh >= 0.0f && o->area_thresh < 1.0f))
        return error_set(CS_ERR_ARG, "area threshold %g is outside [0, 1)", (double)o->area_thresh);
    if (o->area_thresh > 0.0f && (o->bg_class < 0 || o->bg_class >= C))
        return error_set(CS_ERR_ARG, "an area threshold needs a background class (got %d)", o->bg_class);
    if (o->pamr_steps < 0 || o->pamr_steps > 1000)
        return error_set(CS_ERR_ARG, "PAMR steps %d are outside 0..1000", o->pamr_steps);
    return CS_OK;
}

/* The pixels the tower sees [3, h, w] and the output size W x H: an image
 * resized to R x R (or its short side to short_side, for windows), or
 * pixels as given. */
static cs_status segment_input(const cs_model *m, const cs_input *in, const cs_segment_options *o, float **pixels,
                               int *h, int *w, int *H, int *W) {
    *pixels = NULL;
    if (!in || (!in->image == !in->pixels))
        return error_set(CS_ERR_ARG, "an input is an image or normalized pixels (one of them)");
    if (in->image) {
        *W = in->image->width;
        *H = in->image->height;
        *w = *h = job_resolution(m, o->resolution);
        if (o->window) short_side_size(in->image, o->short_side, o->max_long_side, w, h);
    } else {
        *w = *h = in->pixels_resolution;
        *W = in->width > 0 ? in->width : *w;
        *H = in->height > 0 ? in->height : *h;
        if (*w <= 0) return error_set(CS_ERR_ARG, "pixels need their resolution (got %d)", *w);
    }
    if (o->window && (*w < o->window || *h < o->window))
        return error_set(CS_ERR_ARG, "a %dx%d image is smaller than the %d-pixel window (give --short-side)", *w, *h,
                       o->window);
    if (in->image) return image_pixels(in->image, *w, *h, pixels);
    *pixels = mem_alloc((size_t)3 * *w, (size_t)*h * sizeof(float));
    if (!*pixels) return CS_ERR_NOMEM;
    memcpy(*pixels, in->pixels, sizeof(float) * 3 * (size_t)*w * *h);
    return CS_OK;
}

/* PAMR as NACLIP runs it: the tower's pixels bilinearly resized to the
 * output size, dilations 8 and 16. */
static cs_status refine(const float *pixels, int h, int w, int H, int W, int steps, float *logits, int C) {
    static const int dilations[2] = {8, 16};
    float *big = mem_alloc((size_t)3 * W, (size_t)H * sizeof(float));
    if (!big) return CS_ERR_NOMEM;
    for (int c = 0; c < 3; c++)
        op_resize_bilinear(pixels + (size_t)c * h * w, h, w, 1, big + (size_t)c * H * W, H, W);
    cs_status s = cs_pamr(big, H, W, dilations, 2, steps, logits, C);
    cs_free(big);
    return s;
}

/* Whole image: the b inputs' tokens into r[k].tokens, the inputs of one
 * shape (pixels[k] [3, R[k], R[k]]) through the tower in one pass. */
static cs_status segment_encode(cs_model *m, cs_vision_mode mode, int D, float *const *pixels, const int *R, int b,
                                cs_segment_result *r) {
    int done[TOWER_BATCH] = {0};
    cs_status s = CS_OK;
    for (int k = 0; k < b && s == CS_OK; k++) {
        r[k].n_tokens = cs_model_num_tokens(m, R[k]);
        r[k].tokens = mem_alloc((size_t)r[k].n_tokens, (size_t)D * sizeof(float));
        if (!r[k].tokens) s = CS_ERR_NOMEM;
    }
    for (int k = 0; k < b && s == CS_OK; k++) {
        if (done[k]) continue;
        const float *px[TOWER_BATCH];
        float *tok[TOWER_BATCH];
        int g = 0;
        for (int j = k; j < b; j++)
            if (!done[j] && R[j] == R[k]) {
                px[g] = pixels[j];
                tok[g++] = r[j].tokens;
                done[j] = 1;
            }
        s = encode_inputs(m, mode, R[k], g, px, tok);
    }
    return s;
}

/* Floats of upsampled logits per block of rows where only labels are kept:
 * 256 KB reused, instead of a whole image's logits (16 MB for a VOC image
 * and its 21 classes) in fresh pages per image, which the kernel zeroes. */
#define LABEL_BLOCK_FLOATS 65536

/* The labels of a whole-image input straight from its class grid [side^2,
 * C], a block of rows at a time: the same upsampled values and per-pixel
 * argmax as the whole logits give (argmax: cs_segment_labels' options). */
static cs_status labels_in_blocks(const float *grid, int side, int C, int H, int W,
                                  const cs_segment_options *argmax, uint8_t *labels) {
    size_t row_floats = (size_t)W * C;
    int rows = LABEL_BLOCK_FLOATS / row_floats > 0 ? (int)(LABEL_BLOCK_FLOATS / row_floats) : 1;
    float *block = mem_alloc((size_t)rows, row_floats * sizeof(float));
    cs_status s = block ? CS_OK : CS_ERR_NOMEM;
    for (int y = 0; s == CS_OK && y < H; y += rows) {
        int h = H - y < rows ? H - y : rows;
        op_resize_bilinear_window(grid, side, side, C, block, H, W, y, h, 0, W);
        s = cs_segment_labels(block, (size_t)h * W, C, argmax, labels + (size_t)y * W);
    }
    cs_free(block);
    return s;
}

/* The labels alone: the rest of r goes now, not after the last input. */
static void keep_labels_only(cs_segment_result *r) {
    uint8_t *labels = r->labels;
    r->labels = NULL;
    cs_segment_result_free(r);
    r->labels = labels;
}

/* One input's segment job from its tower input pixels [3, h, w] (and, for
 * a whole image, its tokens in r): logits (the per-class cosine grid
 * upsampled, or sliding windows), PAMR when asked, labels; with `arrays`,
 * the tokens, cosine and scores kept in r, otherwise only the labels. */
static cs_status segment_finish(cs_model *m, const cs_segment_options *o, const cs_name_set *names, int C,
                                const float *pixels, int h, int w, int arrays, cs_segment_result *r) {
    int W = r->width, H = r->height, stride = o->stride ? o->stride : (o->window / 2 > 0 ? o->window / 2 : 1);
    size_t n = (size_t)W * H;
    cs_vision_mode mode = cs_method_vision_mode(o->method);
    cs_method_defaults d = cs_method_defaults_of(o->method);
    r->n_classes = C;
    r->dim = names->dim;
    r->logit_scale = o->logit_scale > 0.0f ? o->logit_scale : d.logit_scale;
    /* Labels alone from per-pixel steps (eval's seg): no whole logits. */
    int names_apart = o->name_logits && names->n_names > names->n_classes;
    if (!arrays && !o->window && !o->pamr_steps && !names_apart && !(o->area_thresh > 0.0f) && !d.minmax) {
        int T = r->n_tokens, side = (int)lround(sqrt(T - 1.0));
        float *grid = mem_alloc((size_t)T, (size_t)C * sizeof(float));
        r->labels = mem_alloc(n, 1);
        cs_status s = grid && r->labels ? cs_segment_grid(r->tokens, T, names, grid) : CS_ERR_NOMEM;
        if (s == CS_OK) s = labels_in_blocks(grid, side, C, H, W, o, r->labels);
        cs_free(grid);
        keep_labels_only(r);
        return s;
    }
    r->logits = mem_alloc(n, (size_t)C * sizeof(float));
    r->labels = mem_alloc(n, 1);
    cs_status s = r->logits && r->labels ? CS_OK : CS_ERR_NOMEM;
    /* name_logits: every name its own class up to the labels. */
    cs_name_set run = *names;
    if (o->name_logits && names->n_names > names->n_classes) {
        run.n_classes = names->n_names;
        run.name_class = NULL;
    }
    int K = run.n_classes;
    float *lg = K == C ? r->logits : mem_alloc(n, (size_t)K * sizeof(float));
    if (s == CS_OK && !lg) s = CS_ERR_NOMEM;
    if (s == CS_OK && !o->window) {
        int T = r->n_tokens, side = (int)lround(sqrt(T - 1.0));
        r->cosine = mem_alloc((size_t)T, (size_t)C * sizeof(float));
        float *grid = K == C ? r->cosine : mem_alloc((size_t)T, (size_t)K * sizeof(float));
        s = r->cosine && grid ? cs_segment_grid(r->tokens, T, &run, grid) : CS_ERR_NOMEM;
        if (s == CS_OK) op_resize_bilinear(grid, side, side, K, lg, H, W);
        if (s == CS_OK && K != C) cs_names_to_classes(grid, side * side, names, r->cosine);
        if (grid != r->cosine) cs_free(grid);
    } else if (s == CS_OK) {
        s = cs_segment_logits_sliding(m, pixels, h, w, o->window, stride, mode, &run, H, W, lg);
    }
    if (s == CS_OK && o->pamr_steps > 0) s = refine(pixels, h, w, H, W, o->pamr_steps, lg, K);
    if (s == CS_OK && K != C) cs_names_to_classes(lg, (int)n, names, r->logits);
    /* With names or the area filter, the threshold comes last (below). */
    int after = K != C || o->area_thresh > 0.0f;
    cs_segment_options argmax = *o;
    if (after) argmax.bg_thresh = 0.0f;
    if (s == CS_OK) s = cs_segment_labels(r->logits, n, C, &argmax, r->labels);
    if (s == CS_OK && o->area_thresh > 0.0f) segment_area_filter(r->logits, n, C, o, r->labels);
    if (s == CS_OK && after && o->bg_thresh > 0.0f) segment_threshold(lg, K, r->logits, C, n, o, r->labels);
    if (lg != r->logits) cs_free(lg);
    if (s == CS_OK && arrays) {
        r->scores = mem_alloc(n, (size_t)C * sizeof(float));
        s = r->scores ? cs_segment_scores(r->logits, n, C, r->logit_scale, d.minmax, r->scores) : CS_ERR_NOMEM;
    }
    if (s == CS_OK && !arrays) keep_labels_only(r);
    return s;
}

/* The segment job on n inputs, TOWER_BATCH at a time: their tower inputs,
 * whole-image tokens (equal shapes in one pass), then each input's logits
 * and labels. On failure every result is freed. */
static cs_status segment_run(cs_model *m, cs_classes *cl, const cs_input *in, int n, const cs_segment_options *opts,
                             int arrays, cs_segment_result *out) {
    cs_segment_options o = opts ? *opts : cs_segment_defaults();
    if (n < 1) return error_set(CS_ERR_ARG, "segment needs at least one input");
    memset(out, 0, sizeof *out * (size_t)n);
    cs_status s = check_segment(m, &o, cl);
    cs_name_set names;
    if (s == CS_OK) s = classes_name_set(cl, m, NULL, &names);
    int C = cs_classes_count(cl);
    cs_vision_mode mode = cs_method_vision_mode(o.method);
    for (int i = 0; i < n && s == CS_OK; i += TOWER_BATCH) {
        int b = n - i < TOWER_BATCH ? n - i : TOWER_BATCH, h[TOWER_BATCH], w[TOWER_BATCH];
        float *pixels[TOWER_BATCH] = {NULL};
        cs_segment_result *r = out + i;
        for (int k = 0; k < b && s == CS_OK; k++)
            s = segment_input(m, &in[i + k], &o, &pixels[k], &h[k], &w[k], &r[k].height, &r[k].width);
        /* Whole-image inputs are square: h is the shape. */
        if (s == CS_OK && !o.window) s = segment_encode(m, mode, names.dim, pixels, h, b, r);
        for (int k = 0; k < b && s == CS_OK; k++)
            s = segment_finish(m, &o, &names, C, pixels[k], h[k], w[k], arrays, &r[k]);
        for (int k = 0; k < b; k++) cs_free(pixels[k]);
    }
    if (s != CS_OK)
        for (int i = 0; i < n; i++) cs_segment_result_free(&out[i]);
    return s;
}

void cs_segment_result_free(cs_segment_result *r) {
    if (!r) return;
    cs_free(r->tokens);
    cs_free(r->cosine);
    cs_free(r->logits);
    cs_free(r->scores);
    cs_free(r->labels);
    memset(r, 0, sizeof *r);
}

cs_status cs_segment_arrays(cs_model *m, cs_classes *cl, const cs_input *in, int n, const cs_segment_options *opts,
                            cs_segment_result *out) {
    return segment_run(m, cl, in, n, opts, 1, out);
}

cs_status cs_segment(cs_model *m, cs_classes *cl, const cs_image *img, int n, const cs_segment_options *opts,
                     uint8_t *labels) {
    if (n < 1) return error_set(CS_ERR_ARG, "segment needs at least one image");
    cs_input *in = mem_calloc((size_t)n, sizeof *in);
    cs_segment_result *r = mem_alloc((size_t)n, sizeof *r);
    cs_status s = in && r ? CS_OK : CS_ERR_NOMEM;
    for (int i = 0; s == CS_OK && i < n; i++) in[i].image = &img[i];
    if (s == CS_OK) s = segment_run(m, cl, in, n, opts, 0, r);
    for (int i = 0; s == CS_OK && i < n; i++) {
        size_t size = (size_t)img[i].width * img[i].height;
        memcpy(labels, r[i].labels, size);
        labels += size;
        cs_free(r[i].labels);
    }
    cs_free(in);
    cs_free(r);
    return s;
}

cs_classify_options cs_classify_defaults(void) {
    return (cs_classify_options){.resolution = 0, .method = CS_METHOD_SURGERY};
}

/* Images i..i+b-1 (b <= TOWER_BATCH) through the tower as one batch, then
 * their scores; px [b, 3, R, R] and tokens [b, T, D] are scratch. */
static cs_status classify_batch(cs_model *m, const cs_image *img, int b, int R, cs_method method,
                                const cs_name_set *names, float *px, float *tokens, float *scores) {
    int T = cs_model_num_tokens(m, R);
    size_t n_px = (size_t)3 * R * R, n_tok = (size_t)T * names->dim;
    cs_status s = CS_OK;
    for (int k = 0; k < b && s == CS_OK; k++) {
        float *one = NULL;
        s = image_pixels(&img[k], R, R, &one);
        if (s == CS_OK) memcpy(px + k * n_px, one, sizeof(float) * n_px);
        cs_free(one);
    }
    if (s == CS_OK) s = cs_encode_images(m, px, b, R, cs_method_vision_mode(method), tokens);
    for (int k = 0; k < b && s == CS_OK; k++)
        s = cs_multilabel_scores(tokens + k * n_tok, T, names, method == CS_METHOD_SURGERY,
                                 scores + (size_t)k * names->n_classes);
    return s;
}

cs_status cs_classify(cs_model *m, cs_classes *cl, const cs_image *img, int n, const cs_classify_options *opts,
                      float *scores) {
    cs_classify_options o = opts ? *opts : cs_classify_defaults();
    if (n < 1) return error_set(CS_ERR_ARG, "classify needs at least one image");
    cs_status s = job_method(m, o.method);
    if (s != CS_OK) return s;
    int R = job_resolution(m, o.resolution);
    cs_redundancy used;
    const float *redundant = NULL;
    cs_name_set names;
    s = cs_classes_embed(cl, m, NULL, NULL);
    /* One name: the empty prompt, as everywhere (the class-weighted row is zero). */
    if (s == CS_OK) s = classes_redundancy(cl, m, CS_REDUNDANT_AUTO, &used, &redundant);
    if (s == CS_OK) s = classes_name_set(cl, m, redundant, &names);
    if (s != CS_OK) return s;
    /* The images share R x R: TOWER_BATCH of them per pass. */
    int T = cs_model_num_tokens(m, R), B = n < TOWER_BATCH ? n : TOWER_BATCH;
    float *px = mem_alloc((size_t)B * 3 * R, (size_t)R * sizeof(float));
    float *tokens = mem_alloc((size_t)B * T, (size_t)names.dim * sizeof(float));
    if (!px || !tokens) s = CS_ERR_NOMEM;
    for (int i = 0; i < n && s == CS_OK; i += B) {
        int b = n - i < B ? n - i : B;
        s = classify_batch(m, img + i, b, R, o.method, &names, px, tokens, scores + (size_t)i * names.n_classes);
    }
    cs_free(px);
    cs_free(tokens);
    return s;
}

void cs_mask_classes(const uint8_t *mask, size_t n, int C, int background, uint8_t *present) {
    memset(present, 0, (size_t)C);
    for (size_t i = 0; i < n; i++)
        if (mask[i] < C) present[mask[i]] = 1;
    if (background >= 0 && background < C) present[background] = 0;
}

/* Rows of a class map scored at a time: 64 KB (a whole image's maps of
 * every class, what eval drew before, were 16 MB of fresh pages per VOC
 * image: about 5% of an explain eval's CPU time went to drawing them and
 * to the kernel zeroing those pages). */
#define SCORE_BLOCK_FLOATS 16384

cs_status cs_explain_score(const cs_explain_result *r, const uint8_t *mask, int background,
                           int64_t (*counts)[CS_EXPLAIN_STEPS][4], int64_t *pairs, int64_t *unknown) {
    int C = r->n_classes, W = r->width, H = r->height;
    if (C < 1 || W < 1 || H < 1) return error_set(CS_ERR_ARG, "explain scoring needs a result with classes and a size");
    int rows = SCORE_BLOCK_FLOATS / W > 0 ? SCORE_BLOCK_FLOATS / W : 1;
    size_t n = (size_t)W * H;
    uint8_t stack[256], *present = C <= 256 ? stack : mem_alloc((size_t)C, 1);
    float *block = mem_alloc((size_t)rows, (size_t)W * sizeof(float));
    cs_status s = present && block ? CS_OK : CS_ERR_NOMEM;
    if (s == CS_OK) cs_mask_classes(mask, n, C, background, present);
    for (int c = 0; s == CS_OK && c < C; c++) {
        if (!present[c]) continue;
        for (int y = 0; s == CS_OK && y < H; y += rows) {
            int h = H - y < rows ? H - y : rows;
            s = cs_explain_maps(r, c, 1, y, h, block);
            if (s == CS_OK) cs_explain_add(block, 1, mask + (size_t)y * W, (size_t)h * W, c, CS_IGNORE_LABEL, counts[c]);
        }
        pairs[c]++;
    }
    for (size_t i = 0; s == CS_OK && i < n; i++) *unknown += mask[i] >= C && mask[i] != CS_IGNORE_LABEL;
    if (present != stack) cs_free(present);
    cs_free(block);
    return s;
}
