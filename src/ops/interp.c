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
#pragma omp parallel for schedule(static)
    for (int y = 0; y < out_h; y++) {
        int y0, y1;
        float ly1;
        source_index(y, in_h, out_h, &y0, &y1, &ly1);
        float ly0 = 1.0f - ly1;
        for (int x = 0; x < out_w; x++) {
            int x0, x1;
            float lx1;
            source_index(x, in_w, out_w, &x0, &x1, &lx1);
            float lx0 = 1.0f - lx1;
            const float *p00 = src + ((size_t)y0 * in_w + x0) * C, *p01 = src + ((size_t)y0 * in_w + x1) * C;
            const float *p10 = src + ((size_t)y1 * in_w + x0) * C, *p11 = src + ((size_t)y1 * in_w + x1) * C;
            float *o = dst + ((size_t)y * out_w + x) * C;
            for (int c = 0; c < C; c++)
                o[c] = ly0 * (lx0 * p00[c] + lx1 * p01[c]) + ly1 * (lx0 * p10[c] + lx1 * p11[c]);
        }
    }
}
