/* Convolution (im2col + the one GEMM), average pooling, batch-norm folding
 * and ReLU over single images: NCHW in fp32, channels last (HWC) through
 * the bf16 kernel, whose output rows are pixels. */
#include <math.h>
#include <string.h>
#include "base/base.h"
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

size_t op_conv2d_bf16_scratch(const op_conv_shape *s) {
    if (is_pointwise(s)) return 0;
    size_t oh = (size_t)op_conv_out_size(s->h, s->k, s->stride, s->pad);
    size_t ow = (size_t)op_conv_out_size(s->w, s->k, s->stride, s->pad);
    return oh * ow * s->k * s->k * (size_t)s->cin;
}

cs_status op_conv_pack_bf16(const float *w, int cout, int cin, int k, op_bf16_weights *out) {
    if (k == 1) return op_bf16_pack(w, cout, cin, out);
    size_t taps = (size_t)k * k, K = taps * cin;
    float *t = mem_alloc((size_t)cout * K, sizeof *t);
    if (!t) {
        memset(out, 0, sizeof *out);
        return CS_ERR_NOMEM;
    }
    for (int o = 0; o < cout; o++)
        for (int c = 0; c < cin; c++)
            for (size_t tap = 0; tap < taps; tap++)
                t[o * K + tap * cin + c] = w[(o * (size_t)cin + c) * taps + tap];
    cs_status s = op_bf16_pack(t, cout, (int)K, out);
    cs_free(t);
    return s;
}

/* rows [oh * ow, k * k * cin] from x [h, w, cin]: row p holds, tap by tap
 * (ky, kx), the cin channels output position p sees there (zero in the
 * padding), one contiguous copy per tap. */
static void im2col_hwc(const op_conv_shape *s, const float *x, int oh, int ow, float *rows) {
    int k = s->k, st = s->stride, cin = s->cin;
    size_t K = (size_t)k * k * cin, run = (size_t)cin * sizeof(float);
#pragma omp parallel for schedule(static)
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            float *dst = rows + ((size_t)oy * ow + ox) * K;
            for (int ky = 0; ky < k; ky++) {
                int iy = oy * st - s->pad + ky;
                for (int kx = 0; kx < k; kx++, dst += cin) {
                    int ix = ox * st - s->pad + kx;
                    if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) memset(dst, 0, run);
                    else memcpy(dst, x + ((size_t)iy * s->w + ix) * cin, run);
                }
            }
        }
}

void op_conv2d_bf16(const op_conv_shape *s, const float *x, const op_bf16_weights *w,
                    const float *b, int accumulate, int relu, float *scratch, float *y) {
    int oh = op_conv_out_size(s->h, s->k, s->stride, s->pad);
    int ow = op_conv_out_size(s->w, s->k, s->stride, s->pad);
    const float *rows = x;
    if (!is_pointwise(s)) {
        im2col_hwc(s, x, oh, ow, scratch);
        rows = scratch;
    }
    if (relu) op_linear_bf16_relu(rows, oh * ow, s->k * s->k * s->cin, w, b, accumulate, y);
    else op_linear_bf16(rows, oh * ow, s->k * s->k * s->cin, w, b, accumulate, y);
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

void op_avg_pool_hwc(const float *x, int c, int h, int w, int k, float *y) {
    int oh = h / k, ow = w / k;
    float area = (float)(k * k);
#pragma omp parallel for schedule(static)
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            float *dst = y + ((size_t)oy * ow + ox) * c;
            for (int ch = 0; ch < c; ch++) dst[ch] = 0.0f;
            /* The taps in the order op_avg_pool sums them: the same floats. */
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    const float *src = x + ((size_t)(oy * k + ky) * w + ox * k + kx) * c;
                    for (int ch = 0; ch < c; ch++) dst[ch] += src[ch];
                }
            for (int ch = 0; ch < c; ch++) dst[ch] /= area;
        }
}

void op_hwc_to_chw(const float *x, int hw, int c, float *y) {
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++)
        for (int p = 0; p < hw; p++) y[(size_t)ch * hw + p] = x[(size_t)p * c + ch];
}

void op_chw_to_hwc(const float *x, int c, int hw, float *y) {
#pragma omp parallel for schedule(static)
    for (int p = 0; p < hw; p++)
        for (int ch = 0; ch < c; ch++) y[(size_t)p * c + ch] = x[(size_t)ch * hw + p];
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
