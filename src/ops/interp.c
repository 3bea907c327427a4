#include "base/base.h"
#include "ops.h"

/* Source coordinate of PyTorch's bilinear (align_corners=False): scale is
 * in/out computed in float, src = (dst + 0.5) * scale - 0.5 clamped at 0;
 * the upper neighbour is clamped to the last index. */
static void source_index(int dst, int in, int out, int *i0, int *i1, float *l1) {
    float scale = (float)in / (float)out;
    float src = ((float)dst + 0.5f) * scale - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int i = (int)src;
    *i0 = i;
    *i1 = i < in - 1 ? i + 1 : i;
    *l1 = src - (float)i;
}

void op_resize_bilinear(const float *src, int in_h, int in_w, int C, float *dst, int out_h,
                        int out_w) {
    op_resize_bilinear_window(src, in_h, in_w, C, dst, out_h, out_w, 0, out_h, 0, out_w);
}

/* The column taps are the same for every row: computed once per call. */
void op_resize_bilinear_window(const float *src, int in_h, int in_w, int C, float *dst, int out_h,
                               int out_w, int row0, int n_rows, int col0, int n_cols) {
    int *x0 = mem_alloc((size_t)n_cols, 2 * sizeof(int));
    float *lx = mem_alloc((size_t)n_cols, sizeof(float));
    if (!x0 || !lx) { /* no memory for the table: the taps row by row */
        cs_free(x0);
        cs_free(lx);
        x0 = NULL;
        lx = NULL;
    }
    for (int x = 0; x0 && x < n_cols; x++)
        source_index(col0 + x, in_w, out_w, &x0[2 * x], &x0[2 * x + 1], &lx[x]);
#pragma omp parallel for schedule(static) if ((size_t)n_rows * n_cols * C > 32768)
    for (int r = 0; r < n_rows; r++) {
        int y = row0 + r, y0, y1;
        float ly1;
        source_index(y, in_h, out_h, &y0, &y1, &ly1);
        float ly0 = 1.0f - ly1;
        for (int x = 0; x < n_cols; x++) {
            int xa, xb;
            float lx1;
            if (x0) {
                xa = x0[2 * x];
                xb = x0[2 * x + 1];
                lx1 = lx[x];
            } else {
                source_index(col0 + x, in_w, out_w, &xa, &xb, &lx1);
            }
            float lx0 = 1.0f - lx1;
            const float *p00 = src + ((size_t)y0 * in_w + xa) * C, *p01 = src + ((size_t)y0 * in_w + xb) * C;
            const float *p10 = src + ((size_t)y1 * in_w + xa) * C, *p11 = src + ((size_t)y1 * in_w + xb) * C;
            float *o = dst + ((size_t)r * n_cols + x) * C;
            for (int c = 0; c < C; c++)
                o[c] = ly0 * (lx0 * p00[c] + lx1 * p01[c]) + ly1 * (lx0 * p10[c] + lx1 * p11[c]);
        }
    }
    cs_free(x0);
    cs_free(lx);
}
