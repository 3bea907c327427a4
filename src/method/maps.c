/* Similarity maps and point prompts (the reference's get_similarity_map and
 * similarity_map_to_points). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "method.h"
#include "ops/ops.h"

/* Side of the square token grid of n_tokens = 1 + side^2, or 0. */
static int grid_side(int n_tokens) {
    int side = (int)lround(sqrt((double)(n_tokens - 1)));
    return side > 0 && side * side == n_tokens - 1 ? side : 0;
}

/* In place min-max of x[i * stride], i < n; a constant input gives zeros
 * (the reference would divide by zero). */
static void min_max_normalize(float *x, int n, int stride) {
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        float v = x[(size_t)i * stride];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    float range = hi - lo;
    for (int i = 0; i < n; i++) {
        float *v = &x[(size_t)i * stride];
        *v = range > 0.0f ? (*v - lo) / range : 0.0f;
    }
}

cs_status similarity_maps_block(const float *sim, int n_tokens, int C, int first, int n, int out_h, int out_w,
                                int row0, int n_rows, float *maps) {
    int side = grid_side(n_tokens);
    if (!side || C <= 0 || out_h <= 0 || out_w <= 0)
        return error_set(CS_ERR_ARG, "similarity maps need 1 + side^2 tokens, classes and a size "
                       "(got %d tokens, %d classes, %dx%d)", n_tokens, C, out_w, out_h);
    if (first < 0 || n < 1 || first > C - n || row0 < 0 || n_rows < 1 || row0 > out_h - n_rows)
        return error_set(CS_ERR_ARG, "map block of classes %d+%d, rows %d+%d is outside %d classes, %d rows",
                       first, n, row0, n_rows, C, out_h);
    int N = side * side;
    float *grid = mem_alloc((size_t)N * n, sizeof(float));
    if (!grid) return CS_ERR_NOMEM;
    for (int i = 0; i < N; i++) memcpy(grid + (size_t)i * n, sim + (size_t)(1 + i) * C + first, (size_t)n * sizeof(float));
    for (int c = 0; c < n; c++) min_max_normalize(grid + c, N, n);
    op_resize_bilinear_window(grid, side, side, n, maps, out_h, out_w, row0, n_rows, 0, out_w);
    cs_free(grid);
    return CS_OK;
}

cs_status cs_similarity_maps(const float *sim, int n_tokens, int C, int out_h, int out_w,
                             float *maps) {
    return similarity_maps_block(sim, n_tokens, C, 0, C, out_h, out_w, 0, out_h, maps);
}

typedef struct ranked { float v; int idx; } ranked;

/* Ascending by value; ties by cell index, so the order is deterministic. */
static int ranked_cmp(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->idx - y->idx;
}

/* Points of one N-cell column (stride apart in `col`); writes positives then
 * negatives. Returns the number of positives (= negatives), or -1 (no memory). */
static int column_points(const float *col, int side, int stride, int image_w, int image_h, float t,
                         int32_t *pos_xy, int32_t *neg_xy) {
    int down = side / 2;
    if (down <= 0) return 0;
    int cells = down * down;
    float *full = mem_alloc((size_t)side * side, sizeof(float));
    float *small = mem_alloc((size_t)cells, sizeof(float));
    ranked *rank = mem_alloc((size_t)cells, sizeof(ranked));
    if (!full || !small || !rank) {
        cs_free(full);
        cs_free(small);
        cs_free(rank);
        return -1;
    }
    for (int i = 0; i < side * side; i++) full[i] = col[(size_t)i * stride];
    op_resize_bilinear(full, side, side, 1, small, down, down);
    min_max_normalize(small, cells, 1);
    int above = 0;
    for (int i = 0; i < cells; i++) {
        rank[i].v = small[i];
        rank[i].idx = i;
        above += small[i] >= t;
    }
    qsort(rank, (size_t)cells, sizeof *rank, ranked_cmp);
    int num = above < cells / 2 ? above : cells / 2;
    /* Cell centres scaled to the image in float32, clamped, truncated. */
    float scale_w = (float)((double)image_w / down), scale_h = (float)((double)image_h / down);
    for (int k = 0; k < num; k++) {
        for (int which = 0; which < 2; which++) {
            int idx = which ? rank[k].idx : rank[cells - num + k].idx;
            float x = ((float)(idx % down) + 0.5f) * scale_w;
            float y = ((float)(idx / down) + 0.5f) * scale_h;
            if (x > (float)(image_w - 1)) x = (float)(image_w - 1);
            if (y > (float)(image_h - 1)) y = (float)(image_h - 1);
            int32_t *dst = which ? neg_xy + 2 * k : pos_xy + 2 * k;
            dst[0] = (int32_t)x;
            dst[1] = (int32_t)y;
        }
    }
    cs_free(full);
    cs_free(small);
    cs_free(rank);
    return num;
}

static cs_status check_points_args(int n_tokens, int image_w, int image_h, int *side) {
    *side = grid_side(n_tokens);
    if (!*side || image_w <= 0 || image_h <= 0)
        return error_set(CS_ERR_ARG, "points need 1 + side^2 tokens and an image size (got %d tokens, %dx%d)",
                       n_tokens, image_w, image_h);
    return CS_OK;
}

cs_status cs_similarity_points(const float *sim, int n_tokens, int C, int cls, int image_w,
                               int image_h, float t, int32_t *points, uint8_t *labels, int *n) {
    int side;
    *n = 0;
    cs_status s = check_points_args(n_tokens, image_w, image_h, &side);
    if (s != CS_OK) return s;
    if (cls < 0 || cls >= C) return error_set(CS_ERR_ARG, "class index %d is outside 0..%d", cls, C - 1);
    int N = side * side;
    int32_t *neg = mem_alloc((size_t)N, 2 * sizeof(int32_t));
    if (!neg) return CS_ERR_NOMEM;
    int num = column_points(sim + C + cls, side, C, image_w, image_h, t, points, neg);
    if (num >= 0) {
        memcpy(points + 2 * num, neg, (size_t)num * 2 * sizeof(int32_t));
        for (int k = 0; k < 2 * num; k++) labels[k] = k < num;
        *n = 2 * num;
    }
    cs_free(neg);
    return num < 0 ? CS_ERR_NOMEM : CS_OK;
}

cs_status cs_combined_points(const float *sim, int n_tokens, int K, int image_w, int image_h,
                             float t, int32_t *points, uint8_t *labels, int *n) {
    int side;
    *n = 0;
    cs_status s = check_points_args(n_tokens, image_w, image_h, &side);
    if (s != CS_OK) return s;
    if (K <= 0) return error_set(CS_ERR_ARG, "combined points need at least one text");
    int N = side * side;
    float *norm = mem_alloc((size_t)N * K, sizeof(float));
    float *mean = mem_calloc((size_t)N, sizeof(float));
    int32_t *pos = mem_alloc((size_t)N, 2 * sizeof(int32_t));
    if (!norm || !mean || !pos) {
        s = CS_ERR_NOMEM;
        goto done;
    }
    memcpy(norm, sim + K, (size_t)N * K * sizeof(float));
    for (int k = 0; k < K; k++) min_max_normalize(norm + k, N, K);
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < K; k++) mean[i] += norm[(size_t)i * K + k];
        mean[i] /= (float)K;
    }
    /* Negatives from the mean map, then each text's positives. */
    int total = column_points(mean, side, 1, image_w, image_h, t, pos, points);
    if (total < 0) {
        s = CS_ERR_NOMEM;
        goto done;
    }
    memset(labels, 0, (size_t)total);
    for (int k = 0; k < K; k++) {
        int num = column_points(sim + K + k, side, K, image_w, image_h, t, points + 2 * total, pos);
        if (num < 0) {
            s = CS_ERR_NOMEM;
            goto done;
        }
        memset(labels + total, 1, (size_t)num);
        total += num;
    }
    *n = total;
done:
    cs_free(norm);
    cs_free(mean);
    cs_free(pos);
    return s;
}
