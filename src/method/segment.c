/* Open-vocabulary segmentation and multi-label scores (DESIGN.md section 4):
 * raw cosine similarity of the surgery tokens for segmentation, row 0 of the
 * class-weighted feature surgery for multi-label recognition. */
#include "base/base.h"
#include <math.h>
#include <string.h>
#include "method/method.h"
#include "ops/ops.h"

static int name_class(const cs_name_set *s, int i) { return s->name_class ? s->name_class[i] : i; }

cs_status cs_name_set_check(const cs_name_set *s) {
    if (!s || !s->emb || s->n_names <= 0 || s->dim <= 0 || s->n_classes <= 0)
        return error_set(CS_ERR_ARG, "a name set needs embeddings, names, a dimension and classes");
    if (!s->name_class && s->n_names != s->n_classes)
        return error_set(CS_ERR_ARG, "%d names without a class map must be %d classes", s->n_names,
                       s->n_classes);
    int *named = mem_calloc((size_t)s->n_classes, sizeof(int));
    if (!named) return CS_ERR_NOMEM;
    cs_status st = CS_OK;
    for (int i = 0; i < s->n_names && st == CS_OK; i++) {
        int c = name_class(s, i);
        if (c < 0 || c >= s->n_classes) st = error_set(CS_ERR_ARG, "name %d belongs to class %d, outside 0..%d",
                                                     i, c, s->n_classes - 1);
        else named[c] = 1;
    }
    for (int c = 0; c < s->n_classes && st == CS_OK; c++)
        if (!named[c]) st = error_set(CS_ERR_ARG, "class %d has no name", c);
    cs_free(named);
    return st;
}

void cs_names_to_classes(const float *name_scores, int rows, const cs_name_set *s, float *class_scores) {
    int C = s->n_classes, K = s->n_names;
    for (int r = 0; r < rows; r++) {
        const float *in = name_scores + (size_t)r * K;
        float *out = class_scores + (size_t)r * C;
        for (int c = 0; c < C; c++) out[c] = -INFINITY;
        for (int i = 0; i < K; i++) {
            int c = name_class(s, i);
            if (in[i] > out[c]) out[c] = in[i];
        }
    }
}

static int grid_side(int n_tokens) {
    int side = (int)lround(sqrt((double)(n_tokens - 1)));
    return side > 0 && side * side == n_tokens - 1 ? side : 0;
}

cs_status cs_segment_grid(const float *tokens, int n_tokens, const cs_name_set *s, float *grid) {
    cs_status st = cs_name_set_check(s);
    if (st != CS_OK) return st;
    int side = grid_side(n_tokens), N = side * side;
    if (!side) return error_set(CS_ERR_ARG, "segmentation needs 1 + side^2 tokens (got %d)", n_tokens);
    float *sim = mem_alloc((size_t)N * s->n_names, sizeof(float));
    if (!sim) return CS_ERR_NOMEM;
    st = cs_similarity(tokens + s->dim, N, s->emb, s->n_names, s->dim, sim);
    if (st == CS_OK) cs_names_to_classes(sim, N, s, grid);
    cs_free(sim);
    return st;
}

/* Tokens of one R x R input, then its grid logits [side, side, C]; *side out. */
static cs_status window_grid(cs_model *m, const float *pixels, int R, cs_vision_mode mode,
                             const cs_name_set *s, float **grid, int *side) {
    int T = cs_model_num_tokens(m, R);
    *side = grid_side(T);
    *grid = NULL;
    if (!*side) return error_set(CS_ERR_ARG, "resolution %d gives no square token grid", R);
    float *tokens = mem_alloc((size_t)T, (size_t)s->dim * sizeof(float));
    *grid = mem_alloc((size_t)T, (size_t)s->n_classes * sizeof(float));
    cs_status st = tokens && *grid ? CS_OK : CS_ERR_NOMEM;
    if (st == CS_OK) st = cs_encode_image(m, pixels, R, mode, tokens);
    if (st == CS_OK) st = cs_segment_grid(tokens, T, s, *grid);
    cs_free(tokens);
    return st;
}

cs_status cs_segment_logits(cs_model *m, const float *pixels, int R, cs_vision_mode mode,
                            const cs_name_set *s, int out_h, int out_w, float *logits) {
    if (out_h <= 0 || out_w <= 0) return error_set(CS_ERR_ARG, "segmentation size %dx%d is empty", out_w, out_h);
    cs_status st = cs_name_set_check(s);
    if (st != CS_OK) return st;
    float *grid;
    int side;
    st = window_grid(m, pixels, R, mode, s, &grid, &side);
    if (st == CS_OK) op_resize_bilinear(grid, side, side, s->n_classes, logits, out_h, out_w);
    cs_free(grid);
    return st;
}

/* Start of window i of n along an axis of `size` (mmseg's slide_inference:
 * the last window is moved back so that it ends at the border). */
static int window_start(int i, int size, int crop, int stride) {
    int start = i * stride;
    return start + crop > size ? size - crop : start;
}

static int window_count(int size, int crop, int stride) { return (size - crop + stride - 1) / stride + 1; }

/* Copy the crop x crop window at (y0, x0) of pixels [3, h, w]. */
static void crop_pixels(const float *pixels, int h, int w, int y0, int x0, int crop, float *out) {
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < crop; y++)
            memcpy(out + ((size_t)c * crop + y) * crop, pixels + ((size_t)c * h + y0 + y) * w + x0,
                   (size_t)crop * sizeof(float));
}

/* logits[y0.., x0..] += window; count[...] += 1. */
static void accumulate_window(const float *win, int crop, int C, int y0, int x0, int w, float *logits,
                              int *count) {
    for (int y = 0; y < crop; y++) {
        for (int x = 0; x < crop; x++) {
            size_t p = (size_t)(y0 + y) * w + x0 + x;
            const float *src = win + ((size_t)y * crop + x) * C;
            for (int c = 0; c < C; c++) logits[p * C + c] += src[c];
            count[p]++;
        }
    }
}

/* The n crops in px [n, 3, crop, crop] (windows at y0[k], x0[k]) through
 * the tower as one batch, each window's logits upsampled to crop x crop and
 * added to sum, count; tokens [n, T, D], grid [T, C] and win [crop, crop, C]
 * are scratch. */
static cs_status window_batch(cs_model *m, const float *px, int n, int crop, cs_vision_mode mode,
                              const cs_name_set *s, const int *y0, const int *x0, int w, float *tokens, float *grid,
                              float *win, float *sum, int *count) {
    int T = cs_model_num_tokens(m, crop), side = grid_side(T);
    cs_status st = cs_encode_images(m, px, n, crop, mode, tokens);
    for (int k = 0; k < n && st == CS_OK; k++) {
        st = cs_segment_grid(tokens + (size_t)k * T * s->dim, T, s, grid);
        if (st != CS_OK) break;
        op_resize_bilinear(grid, side, side, s->n_classes, win, crop, crop);
        accumulate_window(win, crop, s->n_classes, y0[k], x0[k], w, sum, count);
    }
    return st;
}

cs_status cs_segment_logits_sliding(cs_model *m, const float *pixels, int h, int w, int crop,
                                    int stride, cs_vision_mode mode, const cs_name_set *s,
                                    int out_h, int out_w, float *logits) {
    /* A stride above the crop would leave pixels no window covers. */
    if (crop <= 0 || stride <= 0 || stride > crop || h < crop || w < crop || out_h <= 0 || out_w <= 0)
        return error_set(CS_ERR_ARG, "sliding windows need 0 < crop <= %dx%d, 0 < stride <= crop and an "
                       "output size (got crop %d, stride %d, %dx%d)", w, h, crop, stride, out_w, out_h);
    cs_status st = cs_name_set_check(s);
    if (st != CS_OK) return st;
    int C = s->n_classes, T = cs_model_num_tokens(m, crop);
    if (!grid_side(T)) return error_set(CS_ERR_ARG, "resolution %d gives no square token grid", crop);
    size_t n_px = (size_t)3 * crop * crop;
    float *px = mem_alloc(TOWER_BATCH * n_px, sizeof(float));
    float *tokens = mem_alloc((size_t)TOWER_BATCH * T, (size_t)s->dim * sizeof(float));
    float *grid = mem_alloc((size_t)T, (size_t)C * sizeof(float));
    float *win_logits = mem_alloc((size_t)crop * crop, (size_t)C * sizeof(float));
    float *sum = mem_calloc((size_t)h * w, (size_t)C * sizeof(float));
    int *count = mem_calloc((size_t)h * w, sizeof(int));
    if (!px || !tokens || !grid || !win_logits || !sum || !count) st = CS_ERR_NOMEM;
    int rows = window_count(h, crop, stride), cols = window_count(w, crop, stride), n = 0;
    int y0[TOWER_BATCH], x0[TOWER_BATCH];
    /* Windows in row-major order, TOWER_BATCH at a time; the sums are
     * taken in that order, as one window at a time takes them. */
    for (int i = 0; i < rows * cols && st == CS_OK; i++) {
        y0[n] = window_start(i / cols, h, crop, stride);
        x0[n] = window_start(i % cols, w, crop, stride);
        crop_pixels(pixels, h, w, y0[n], x0[n], crop, px + n * n_px);
        if (++n == TOWER_BATCH || i == rows * cols - 1) {
            st = window_batch(m, px, n, crop, mode, s, y0, x0, w, tokens, grid, win_logits, sum, count);
            n = 0;
        }
    }
    if (st == CS_OK) {
        for (size_t p = 0; p < (size_t)h * w; p++)
            for (int c = 0; c < C; c++) sum[p * C + c] /= (float)count[p];
        op_resize_bilinear(sum, h, w, C, logits, out_h, out_w);
    }
    cs_free(px);
    cs_free(tokens);
    cs_free(grid);
    cs_free(sum);
    cs_free(win_logits);
    cs_free(count);
    return st;
}

/* Largest softmax(scale x row) probability: 1 / sum exp(scale (x - max)). */
static float max_probability(const float *row, int C, float scale, float max) {
    double sum = 0.0;
    for (int c = 0; c < C; c++) sum += exp((double)scale * ((double)row[c] - max));
    return (float)(1.0 / sum);
}

/* Per class c: (x - min) / (max - min) over the pixels (GEMWrapper.min_max). */
static void minmax_classes(const float *logits, size_t n, int C, float *out) {
    for (int c = 0; c < C; c++) {
        float lo = INFINITY, hi = -INFINITY;
        for (size_t p = 0; p < n; p++) {
            float v = logits[p * C + c];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        for (size_t p = 0; p < n; p++) out[p * C + c] = hi > lo ? (logits[p * C + c] - lo) / (hi - lo) : 0.0f;
    }
}

cs_status cs_segment_scores(const float *logits, size_t n_pixels, int C, float logit_scale, int minmax,
                            float *scores) {
    if (C <= 0 || n_pixels == 0) return error_set(CS_ERR_ARG, "scores need pixels and classes (got %zu, %d)",
                                                n_pixels, C);
    if (minmax) {
        minmax_classes(logits, n_pixels, C, scores);
        return CS_OK;
    }
    for (size_t i = 0; i < n_pixels * C; i++) scores[i] = logit_scale * logits[i];
    op_softmax_rows(scores, (int)n_pixels, C);
    return CS_OK;
}

/* The threshold's logit scale: the option, else the method's; GEM has no
 * probability of its own: its threshold takes the common 40. */
static float threshold_scale(const cs_segment_options *o) {
    cs_method_defaults d = cs_method_defaults_of(o ? o->method : CS_METHOD_SURGERY);
    return o && o->logit_scale > 0.0f ? o->logit_scale : d.minmax ? 40.0f : d.logit_scale;
}

void segment_threshold(const float *all_logits, int K, const float *class_logits, int C, size_t n_pixels,
                       const cs_segment_options *o, uint8_t *labels) {
    float scale = threshold_scale(o);
    for (size_t p = 0; p < n_pixels; p++) {
        float x = class_logits[p * C + labels[p]];
        if (max_probability(all_logits + p * K, K, scale, x) < o->bg_thresh) labels[p] = (uint8_t)o->bg_class;
    }
}

void segment_area_filter(const float *class_logits, size_t n_pixels, int C, const cs_segment_options *o,
                         uint8_t *labels) {
    size_t area[256] = {0}, foreground = 0;
    for (size_t p = 0; p < n_pixels; p++) area[labels[p]]++;
    for (int c = 0; c < C; c++) foreground += c == o->bg_class ? 0 : area[c];
    uint8_t keep[256];
    for (int c = 0; c < C; c++) keep[c] = c == o->bg_class || (double)area[c] > o->area_thresh * (double)foreground;
    for (size_t p = 0; p < n_pixels; p++) {
        if (keep[labels[p]]) continue;
        const float *row = class_logits + p * C;
        int best = o->bg_class;
        for (int c = 0; c < C; c++)
            if (keep[c] && row[c] > row[best]) best = c;
        labels[p] = (uint8_t)best;
    }
}

cs_status cs_segment_labels(const float *logits, size_t n_pixels, int C, const cs_segment_options *o,
                            uint8_t *labels) {
    if (C <= 0 || C > 255) return error_set(CS_ERR_ARG, "segmentation labels need 1..255 classes (got %d)", C);
    int threshold = o && o->bg_thresh > 0.0f;
    if (threshold && (o->bg_class < 0 || o->bg_class >= C))
        return error_set(CS_ERR_ARG, "background class %d is outside 0..%d", o->bg_class, C - 1);
    if (o && !cs_method_name(o->method)) return error_set(CS_ERR_ARG, "unknown method %d", (int)o->method);
    cs_method_defaults d = cs_method_defaults_of(o ? o->method : CS_METHOD_SURGERY);
    float scale = threshold_scale(o);
    float *map = NULL;
    if (d.minmax) {
        if (!(map = mem_alloc(n_pixels, (size_t)C * sizeof(float)))) return CS_ERR_NOMEM;
        minmax_classes(logits, n_pixels, C, map);
    }
    for (size_t p = 0; p < n_pixels; p++) {
        const float *row = logits + p * C, *rank = map ? map + p * C : row;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (rank[c] > rank[best]) best = c;
        if (threshold && max_probability(row, C, scale, row[best]) < o->bg_thresh) best = o->bg_class;
        labels[p] = (uint8_t)best;
    }
    cs_free(map);
    return CS_OK;
}

cs_status cs_multilabel_scores(const float *tokens, int n_tokens, const cs_name_set *s, int surgery,
                               float *scores) {
    cs_status st = cs_name_set_check(s);
    if (st != CS_OK) return st;
    if (n_tokens < 1) return error_set(CS_ERR_ARG, "multi-label scores need the class token");
    float *row = mem_alloc((size_t)s->n_names, sizeof(float));
    if (!row) return CS_ERR_NOMEM;
    /* Row 0 of feature surgery depends on token 0 alone. */
    st = surgery ? cs_feature_surgery(tokens, 1, s->emb, s->n_names, s->dim, s->redundant, row)
                 : cs_similarity(tokens, 1, s->emb, s->n_names, s->dim, row);
    if (st == CS_OK) cs_names_to_classes(row, 1, s, scores);
    if (st == CS_OK && !surgery) {
        for (int c = 0; c < s->n_classes; c++) scores[c] *= 100.0f;
        op_softmax_rows(scores, 1, s->n_classes);
    }
    cs_free(row);
    return st;
}
