/* Convolution (im2col + the one GEMM), average pooling, batch-norm folding
 * and ReLU over single images in NCHW layout. */
#include <math.h>
#include <string.h>
#include "gemm_bf16.h"
#include "ops.h"

int op_conv_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

static int is_pointwise(const op_conv_shape *s) { return s->k == 1 && s->stride == 1 && s->pad == 0; }

size_t op_conv2d_scratch(const op_conv_shape *s) {
    if (is_pointwise(s)) return 0;
    size_t oh = (size_t)op_conv_out_size(s->h, s->k, s->stride, s->pad);
    size_t ow = (size_t)op_conv_out_size(s->w, s->k, s->stride, s->pad);
    return (size_t)s->cin * s->k * s->k * oh * ow;
}

/* The output columns [lo, hi] whose input column ox * stride + off lies in
 * 0..in-1 (hi < lo when none does). */
static void valid_range(int off, int stride, int in, int out, int *lo, int *hi) {
    *lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int last = in - 1 - off;
    *hi = last < 0 ? -1 : last / stride;
    if (*hi > out - 1) *hi = out - 1;
}

/* col [cin * k * k, oh * ow]: row (c, ky, kx) holds the input pixel each
 * output position sees through that kernel tap (zero in the padding), so
 * the convolution is weights [cout, cin * k * k] times col. */
static void im2col(const op_conv_shape *s, const float *x, int oh, int ow, float *col) {
    int k = s->k, st = s->stride, rows = s->cin * k * k;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        int c = r / (k * k), ky = r / k % k, kx = r % k;
        const float *xc = x + (size_t)c * s->h * s->w;
        float *dst = col + (size_t)r * oh * ow;
        int lo, hi;
        int off = kx - s->pad;
        valid_range(off, st, s->w, ow, &lo, &hi);
        for (int oy = 0; oy < oh; oy++, dst += ow) {
            int iy = oy * st - s->pad + ky;
            if (iy < 0 || iy >= s->h || hi < lo) {
                memset(dst, 0, (size_t)ow * sizeof *dst);
                continue;
            }
            const float *src = xc + (size_t)iy * s->w;
            if (lo > 0) memset(dst, 0, (size_t)lo * sizeof *dst);
            if (st == 1)
                memcpy(dst + lo, src + lo + off, (size_t)(hi - lo + 1) * sizeof *dst);
            else
                for (int ox = lo; ox <= hi; ox++) dst[ox] = src[ox * st + off];
            if (hi < ow - 1) memset(dst + hi + 1, 0, (size_t)(ow - 1 - hi) * sizeof *dst);
        }
    }
}

/* Start each output channel's row at its bias (added to what is there when
 * accumulating), so the GEMM can add its product with beta = 1. */
static void seed_bias(float *y, int cout, size_t n, const float *b, int accumulate) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < cout; o++) {
        float *row = y + (size_t)o * n;
        if (accumulate)
            for (size_t i = 0; i < n; i++) row[i] += b[o];
        else
            for (size_t i = 0; i < n; i++) row[i] = b[o];
    }
}

void op_conv2d(const op_conv_shape *s, const float *x, const float *w, const float *b,
               int accumulate, float *scratch, float *y) {
    int oh = op_conv_out_size(s->h, s->k, s->stride, s->pad);
    int ow = op_conv_out_size(s->w, s->k, s->stride, s->pad);
    int n = oh * ow, K = s->cin * s->k * s->k;
    const float *col = x;
    if (!is_pointwise(s)) {
        im2col(s, x, oh, ow, scratch);
        col = scratch;
    }
    if (b) seed_bias(y, s->cout, (size_t)n, b, accumulate);
    float beta = b || accumulate ? 1.0f : 0.0f;
    op_gemm(0, 0, s->cout, n, K, 1.0f, w, K, col, n, beta, y, n);
}

/* Positions per block of the bf16 path's transposes: a tap's inputs for 16
 * neighbouring positions are near-contiguous to read, and the 16 rows (or
 * channels) written advance in step. */
#define CONV_BLOCK 16

size_t op_conv2d_bf16_scratch(const op_conv_shape *s) {
    size_t oh = (size_t)op_conv_out_size(s->h, s->k, s->stride, s->pad);
    size_t ow = (size_t)op_conv_out_size(s->w, s->k, s->stride, s->pad);
    return oh * ow * ((size_t)s->cin * s->k * s->k + (size_t)s->cout);
}

/* rows [oh * ow, cin * k * k]: row p holds what output position p sees
 * through each tap (c, ky, kx), zero in the padding; im2col transposed. */
static void im2col_rows(const op_conv_shape *s, const float *x, int oh, int ow, float *rows) {
    int k = s->k, st = s->stride, K = s->cin * k * k, n = oh * ow;
    int blocks = (n + CONV_BLOCK - 1) / CONV_BLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < blocks; blk++) {
        int p0 = blk * CONV_BLOCK, np = n - p0 < CONV_BLOCK ? n - p0 : CONV_BLOCK;
        int oy[CONV_BLOCK], ox[CONV_BLOCK];
        for (int i = 0; i < np; i++) oy[i] = (p0 + i) / ow, ox[i] = (p0 + i) % ow;
        float *dst = rows + (size_t)p0 * K;
        for (int r = 0; r < K; r++) {
            int c = r / (k * k), ky = r / k % k, kx = r % k;
            const float *xc = x + (size_t)c * s->h * s->w;
            for (int i = 0; i < np; i++) {
                int iy = oy[i] * st - s->pad + ky, ix = ox[i] * st - s->pad + kx;
                int inside = iy >= 0 && iy < s->h && ix >= 0 && ix < s->w;
                dst[(size_t)i * K + r] = inside ? xc[(size_t)iy * s->w + ix] : 0.0f;
            }
        }
    }
}

/* y [cout, n] = t^T (or += with accumulate) for t [n, cout]. */
static void rows_to_channels(const float *t, int n, int cout, int accumulate, float *y) {
    int blocks = (cout + CONV_BLOCK - 1) / CONV_BLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < blocks; blk++) {
        int o0 = blk * CONV_BLOCK, no = cout - o0 < CONV_BLOCK ? cout - o0 : CONV_BLOCK;
        for (int p = 0; p < n; p++) {
            const float *src = t + (size_t)p * cout + o0;
            float *dst = y + (size_t)o0 * n + p;
            if (accumulate)
                for (int i = 0; i < no; i++) dst[(size_t)i * n] += src[i];
            else
                for (int i = 0; i < no; i++) dst[(size_t)i * n] = src[i];
        }
    }
}

void op_conv2d_bf16(const op_conv_shape *s, const float *x, const op_bf16_weights *w,
                    const float *b, int accumulate, float *scratch, float *y) {
    int oh = op_conv_out_size(s->h, s->k, s->stride, s->pad);
    int ow = op_conv_out_size(s->w, s->k, s->stride, s->pad);
    int n = oh * ow, K = s->cin * s->k * s->k;
    float *rows = scratch, *t = scratch + (size_t)n * K;
    im2col_rows(s, x, oh, ow, rows);
    op_linear_bf16(rows, n, K, w, b, 0, t);
    rows_to_channels(t, n, s->cout, accumulate, y);
}

void op_avg_pool(const float *x, int c, int h, int w, int k, float *y) {
    int oh = h / k, ow = w / k;
    float area = (float)(k * k);
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        const float *xc = x + (size_t)ch * h * w;
        float *yc = y + (size_t)ch * oh * ow;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float sum = 0.0f;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) sum += xc[(size_t)(oy * k + ky) * w + ox * k + kx];
                yc[(size_t)oy * ow + ox] = sum / area;
            }
    }
}

void op_fold_batch_norm(float *w, int cout, int n, const float *gamma, const float *beta,
                        const float *mean, const float *var, float eps, float *bias) {
    for (int o = 0; o < cout; o++) {
        /* In double: the folded weights then round once. */
        double scale = (double)gamma[o] / sqrt((double)var[o] + (double)eps);
        float *row = w + (size_t)o * n;
        for (int i = 0; i < n; i++) row[i] = (float)(row[i] * scale);
        bias[o] = (float)((double)beta[o] - (double)mean[o] * scale);
    }
}

void op_relu(float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
