#include <omp.h>
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

/* A source row interpolated at the output columns: h [n_cols, C]. */
static void row_taps(const float *row, const int *x0, const float *lx, int n_cols, int C, float *h) {
    for (int x = 0; x < n_cols; x++) {
        float lx1 = lx[x], lx0 = 1.0f - lx1;
        const float *p0 = row + (size_t)x0[2 * x] * C, *p1 = row + (size_t)x0[2 * x + 1] * C;
        for (int c = 0; c < C; c++) h[(size_t)x * C + c] = lx0 * p0[c] + lx1 * p1[c];
    }
}

/* Separable, as PyTorch's sum ly0 (lx0 p00 + lx1 p01) + ly1 (lx0 p10 + lx1
 * p11) groups it: each thread interpolates the source rows its output rows
 * need along x once (an upscale by 4 reads each one for 4 output rows),
 * then blends two such rows. The column taps are the same for every row. */
void op_resize_bilinear_window(const float *src, int in_h, int in_w, int C, float *dst, int out_h,
                               int out_w, int row0, int n_rows, int col0, int n_cols) {
    size_t row_floats = (size_t)n_cols * C;
    int threads = (size_t)n_rows * row_floats > 32768 ? omp_get_max_threads() : 1;
    int *x0 = mem_alloc((size_t)n_cols, 2 * sizeof(int));
    float *lx = mem_alloc((size_t)n_cols, sizeof(float));
    size_t n_buf;
    float *rows = size_mul((size_t)threads * 2, row_floats, &n_buf) ? mem_alloc(n_buf, sizeof(float)) : NULL;
    if (x0 && lx && rows) {
        for (int x = 0; x < n_cols; x++) source_index(col0 + x, in_w, out_w, &x0[2 * x], &x0[2 * x + 1], &lx[x]);
#pragma omp parallel num_threads(threads)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            int r0 = (int)((long)n_rows * t / nt), r1 = (int)((long)n_rows * (t + 1) / nt);
            float *h0 = rows + (size_t)2 * t * row_floats, *h1 = h0 + row_floats;
            int have0 = -1, have1 = -1; /* the source rows h0 and h1 hold */
            for (int r = r0; r < r1; r++) {
                int y0, y1;
                float ly1;
                source_index(row0 + r, in_h, out_h, &y0, &y1, &ly1);
                float ly0 = 1.0f - ly1;
                if (y0 == have1 && y0 != have0) { /* moved down a row: the lower one becomes the upper */
                    float *swap = h0;
                    h0 = h1;
                    h1 = swap;
                    have0 = have1;
                    have1 = -1;
                }
                if (y0 != have0) row_taps(src + (size_t)y0 * in_w * C, x0, lx, n_cols, C, h0);
                if (y1 != have1) row_taps(src + (size_t)y1 * in_w * C, x0, lx, n_cols, C, h1);
                have0 = y0;
                have1 = y1;
                float *o = dst + (size_t)r * row_floats;
                for (size_t i = 0; i < row_floats; i++) o[i] = ly0 * h0[i] + ly1 * h1[i];
            }
        }
    } else { /* no memory for the tables: pixel by pixel, the same sums */
#pragma omp parallel for schedule(static) if ((size_t)n_rows * row_floats > 32768)
        for (int r = 0; r < n_rows; r++) {
            int y0, y1;
            float ly1;
            source_index(row0 + r, in_h, out_h, &y0, &y1, &ly1);
            float ly0 = 1.0f - ly1;
            for (int x = 0; x < n_cols; x++) {
                int xa, xb;
                float lx1;
                source_index(col0 + x, in_w, out_w, &xa, &xb, &lx1);
                float lx0 = 1.0f - lx1;
                const float *p00 = src + ((size_t)y0 * in_w + xa) * C, *p01 = src + ((size_t)y0 * in_w + xb) * C;
                const float *p10 = src + ((size_t)y1 * in_w + xa) * C, *p11 = src + ((size_t)y1 * in_w + xb) * C;
                float *o = dst + ((size_t)r * n_cols + x) * C;
                for (int c = 0; c < C; c++)
                    o[c] = ly0 * (lx0 * p00[c] + lx1 * p01[c]) + ly1 * (lx0 * p10[c] + lx1 * p11[c]);
            }
        }
    }
    cs_free(x0);
    cs_free(lx);
    cs_free(rows);
}
