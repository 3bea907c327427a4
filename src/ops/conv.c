/* Convolution (im2col + GEMM, whole or in bands of output rows), average
 * pooling, batch-norm folding and ReLU over single images: NCHW in fp32,
 * channels last (HWC) through the bf16 kernel, whose output rows are
 * pixels. */
#include <math.h>
#include <omp.h>
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

/* Row r = (c, ky, kx) of the patch matrix for output rows [oy0, oy1): the
 * input pixel each of those output positions sees through that kernel tap
 * (zero in the padding), (oy1 - oy0) * ow floats into dst. The convolution
 * is then weights [cout, cin * k * k] times the patch matrix. */
static void im2col_row(const op_conv_shape *s, const float *x, int r, int ow, int oy0, int oy1,
                       float *dst) {
    int k = s->k, st = s->stride;
    int c = r / (k * k), ky = r / k % k, kx = r % k;
    const float *xc = x + (size_t)c * s->h * s->w;
    int lo, hi, off = kx - s->pad;
    valid_range(off, st, s->w, ow, &lo, &hi);
    for (int oy = oy0; oy < oy1; oy++, dst += ow) {
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

/* np pixels of one output channel start at its bias (added to what is
 * there when accumulating), so the GEMM can add its product with beta = 1. */
static void seed_bias(float *row, int np, float b, int accumulate) {
    if (accumulate)
        for (int i = 0; i < np; i++) row[i] += b;
    else
        for (int i = 0; i < np; i++) row[i] = b;
}

/* One channel's pixels of a band, on the calling thread: op_relu opens a
 * parallel region per call, and a band calls this once per channel
 * (thousands of times for RN50's stem; measured 2-3% of a one-thread RN50
 * pass when op_relu was called here instead). */
static void relu_row(float *row, int np) {
    for (int i = 0; i < np; i++) row[i] = row[i] > 0.0f ? row[i] : 0.0f;
}

/* Bands: a convolution with at least BAND_PIXELS output pixels per output
 * channel (the ResNet stems': 12544 pixels at 224 for 32 or 64 channels)
 * runs in bands of output rows, each thread one band at a time, a band's
 * patches at most BAND_PATCHES floats: its patches, bias, GEMM and ReLU
 * happen while it is in the core's cache, in one parallel region, instead
 * of im2col writing the whole patch matrix (14 MB for a stem convolution at
 * 224) for the GEMM to read back, and whole-image passes for the bias and
 * the ReLU. Each band repacks the weights and is a narrower GEMM, which
 * pays only where the patch matrix is this large next to the weights
 * (RN50 at 224, one thread: the stem's 3x3 convolutions 10-20% faster,
 * layer1's 64-channel ones about even, layer2's 10% and layer3's 50%
 * slower). */
#define BAND_PIXELS 128
#define BAND_PATCHES 65536

/* Output rows per band for T threads, or 0 when the convolution does not
 * run in bands (its scratch, op_conv2d_scratch, holds T bands). */
static int band_rows(const op_conv_shape *s, int oh, int ow, int T) {
    size_t K = (size_t)s->cin * s->k * s->k;
    if (is_pointwise(s) || (size_t)oh * ow < (size_t)BAND_PIXELS * s->cout || oh < T) return 0;
    size_t rows = BAND_PATCHES / (K * (size_t)ow);
    if (rows < 1) rows = 1;
    return rows * T > (size_t)oh ? oh / T : (int)rows;
}

static void conv_bands(const op_conv_shape *s, const float *x, const float *w, const float *b,
                       int accumulate, int relu, int rows, float *scratch, float *y) {
    int oh = op_conv_out_size(s->h, s->k, s->stride, s->pad);
    int ow = op_conv_out_size(s->w, s->k, s->stride, s->pad);
    int n = oh * ow, K = s->cin * s->k * s->k, bands = (oh + rows - 1) / rows;
    float beta = b || accumulate ? 1.0f : 0.0f;
#pragma omp parallel for schedule(dynamic, 1)
    for (int band = 0; band < bands; band++) {
        int oy0 = band * rows, oy1 = oy0 + rows < oh ? oy0 + rows : oh, np = (oy1 - oy0) * ow;
        float *col = scratch + (size_t)omp_get_thread_num() * rows * ow * K;
        float *yb = y + (size_t)oy0 * ow; /* the band's pixels of channel o at yb + o * n */
        for (int r = 0; r < K; r++) im2col_row(s, x, r, ow, oy0, oy1, col + (size_t)r * np);
        for (int o = 0; b && o < s->cout; o++) seed_bias(yb + (size_t)o * n, np, b[o], accumulate);
        /* Inside a parallel region OpenBLAS runs on this thread alone. */
        op_gemm(0, 0, s->cout, np, K, 1.0f, w, K, col, np, beta, yb, n);
        for (int o = 0; relu && o < s->cout; o++) relu_row(yb + (size_t)o * n, np);
    }
}

void op_conv2d(const op_conv_shape *s, const float *x, const float *w, const float *b,
               int accumulate, int relu, float *scratch, float *y) {
    int oh = op_conv_out_size(s->h, s->k, s->stride, s->pad);
    int ow = op_conv_out_size(s->w, s->k, s->stride, s->pad);
    int n = oh * ow, K = s->cin * s->k * s->k, pw = is_pointwise(s);
    int rows = band_rows(s, oh, ow, omp_in_parallel() ? 1 : omp_get_max_threads());
    if (rows) {
        conv_bands(s, x, w, b, accumulate, relu, rows, scratch, y);
        return;
    }
    /* The patches and the bias in one parallel region, the GEMM on all
     * threads, then the ReLU. */
#pragma omp parallel
    {
        if (!pw) {
#pragma omp for schedule(static) nowait
            for (int r = 0; r < K; r++) im2col_row(s, x, r, ow, 0, oh, scratch + (size_t)r * n);
        }
        if (b) {
#pragma omp for schedule(static)
            for (int o = 0; o < s->cout; o++) seed_bias(y + (size_t)o * n, n, b[o], accumulate);
        }
    }
    float beta = b || accumulate ? 1.0f : 0.0f;
    op_gemm(0, 0, s->cout, n, K, 1.0f, w, K, pw ? x : scratch, n, beta, y, n);
    if (relu) op_relu(y, (size_t)s->cout * n);
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

/* Patch rows of output rows [oy0, oy1) from x [h, w, cin], on this thread:
 * row p (from the first of those pixels) holds, tap by tap (ky, kx), the
 * cin channels output position p sees there (zero in the padding), one
 * contiguous copy per tap; K = k * k * cin floats a row. */
static void im2col_hwc(const op_conv_shape *s, const float *x, int ow, int oy0, int oy1, float *rows) {
    int k = s->k, st = s->stride, cin = s->cin;
    size_t K = (size_t)k * k * cin, run = (size_t)cin * sizeof(float);
    for (int oy = oy0; oy < oy1; oy++)
        for (int ox = 0; ox < ow; ox++) {
            float *dst = rows + ((size_t)(oy - oy0) * ow + ox) * K;
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

static void linear_bf16(const float *rows, int M, int K, const op_bf16_weights *w, const float *b,
                        int accumulate, int relu, float *y) {
    if (relu) op_linear_bf16_relu(rows, M, K, w, b, accumulate, y);
    else op_linear_bf16(rows, M, K, w, b, accumulate, y);
}

/* Bands under bf16: a k x k convolution whose patch matrix is large runs in
 * bands of output rows, each thread one band at a time, its patches (about
 * BAND_PATCHES floats, at least BF16_BAND_PIXELS pixels) gathered and
 * multiplied while they are in the core's cache, instead of the whole patch
 * matrix (14 MB for a ResNet stem convolution at 224) written to memory and
 * read back. The weights are packed once, so a band costs no repacking (the
 * kernels sweep all panels per block of rows anyway), and an output's sum
 * does not depend on the rows around it: the same bits as unbanded. Only
 * where there are at least two bands per thread (RN50 @224: the stem and
 * the first two stages' 3x3 convolutions). */
#define BF16_BAND_PIXELS 128

static int bf16_band_rows(const op_conv_shape *s, int oh, int ow, int T) {
    size_t K = (size_t)s->cin * s->k * s->k, pixels = BAND_PATCHES / K;
    if (is_pointwise(s)) return 0;
    if (pixels < BF16_BAND_PIXELS) pixels = BF16_BAND_PIXELS;
    int rows = (int)((pixels + ow - 1) / ow);
    return oh / rows >= 2 * T ? rows : 0;
}

void op_conv2d_bf16(const op_conv_shape *s, const float *x, const op_bf16_weights *w,
                    const float *b, int accumulate, int relu, float *scratch, float *y) {
    int oh = op_conv_out_size(s->h, s->k, s->stride, s->pad);
    int ow = op_conv_out_size(s->w, s->k, s->stride, s->pad);
    int K = s->k * s->k * s->cin, T = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (is_pointwise(s)) {
        linear_bf16(x, oh * ow, K, w, b, accumulate, relu, y);
        return;
    }
    int rows = bf16_band_rows(s, oh, ow, T);
    if (rows) {
        int bands = (oh + rows - 1) / rows;
#pragma omp parallel for schedule(dynamic, 1)
        for (int band = 0; band < bands; band++) {
            int oy0 = band * rows, oy1 = oy0 + rows < oh ? oy0 + rows : oh;
            float *col = scratch + (size_t)omp_get_thread_num() * rows * ow * K;
            im2col_hwc(s, x, ow, oy0, oy1, col);
            /* Inside the parallel region the kernel runs on this thread alone. */
            linear_bf16(col, (oy1 - oy0) * ow, K, w, b, accumulate, relu, y + (size_t)oy0 * ow * w->N);
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int oy = 0; oy < oh; oy++) im2col_hwc(s, x, ow, oy, oy + 1, scratch + (size_t)oy * ow * K);
    linear_bf16(scratch, oh * ow, K, w, b, accumulate, relu, y);
}

/* dst[i] += src[i * k] for i < n. */
static inline void add_strided(float *dst, const float *src, int n, int k) {
    for (int i = 0; i < n; i++) dst[i] += src[(size_t)i * k];
}

void op_avg_pool(const float *x, int c, int h, int w, int k, float *y) {
    int oh = h / k, ow = w / k;
    float area = (float)(k * k);
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++)
        for (int oy = 0; oy < oh; oy++) {
            /* A whole output row at a time, tap by tap (so the loops over
             * the row vectorize; k = 2, the ResNets' pools, with a constant
             * stride): each output still sums its taps from 0 in (ky, kx)
             * order, the floats op_avg_pool_hwc gives. */
            float *dst = y + ((size_t)ch * oh + oy) * ow;
            memset(dst, 0, (size_t)ow * sizeof *dst);
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    const float *src = x + ((size_t)ch * h + (size_t)oy * k + ky) * w + kx;
                    if (k == 2) add_strided(dst, src, ow, 2);
                    else add_strided(dst, src, ow, k);
                }
            for (int ox = 0; ox < ow; ox++) dst[ox] /= area;
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
