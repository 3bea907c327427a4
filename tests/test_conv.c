/* Convolution (fp32, and bf16 on bf16-exact inputs) against a direct
 * nested-loop reference on random inputs, and
 * average pooling, batch-norm folding and ReLU on hand-checked cases. */
#include <stdlib.h>
#include <string.h>
#include "ops/gemm_bf16.h"
#include "ops/ops.h"
#include "test.h"

static uint32_t g_rng = 12345;

static float rand_uniform(void) {
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) & 0xFFFFFF) / (float)0x1000000 * 2.0f - 1.0f;
}

static float *random_array(size_t n) {
    float *a = malloc((n ? n : 1) * sizeof *a);
    for (size_t i = 0; i < n; i++) a[i] = rand_uniform();
    return a;
}

/* y[o, oy, ox] = b[o] + sum over c, ky, kx of w[o, c, ky, kx] x[c, iy, ix], in double. */
static void conv_reference(const op_conv_shape *s, const float *x, const float *w, const float *b,
                           double *y) {
    int oh = op_conv_out_size(s->h, s->k, s->stride, s->pad);
    int ow = op_conv_out_size(s->w, s->k, s->stride, s->pad);
    for (int o = 0; o < s->cout; o++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                double acc = b ? b[o] : 0.0;
                for (int c = 0; c < s->cin; c++)
                    for (int ky = 0; ky < s->k; ky++)
                        for (int kx = 0; kx < s->k; kx++) {
                            int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
                            if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                            acc += (double)w[((o * s->cin + c) * s->k + ky) * s->k + kx] *
                                   x[((size_t)c * s->h + iy) * s->w + ix];
                        }
                y[((size_t)o * oh + oy) * ow + ox] = acc;
            }
}

/* Round to the nearest bf16 value, so that the bf16 path's products are exact. */
static void round_to_bf16(float *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = op_bf16_to_float(op_bf16_from_float(a[i]));
}

/* x [c, hw] -> y [hw, c] (rows = 1, the other way round: rows = hw, cols = c). */
static void transpose(const float *x, int rows, int cols, float *y) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) y[(size_t)c * rows + r] = x[(size_t)r * cols + c];
}

/* op_conv2d, or with bf16 op_conv2d_bf16 (channels last: the input and the
 * output transposed around it here) on inputs and weights that bf16 holds
 * exactly: then only the summation order differs from the reference, so
 * both paths meet the same bound (the bf16 path's patch rows and its
 * weights' tap-major packing are checked element for element, padding
 * included). */
static void check_conv(op_conv_shape s, int with_bias, int accumulate, int bf16, int relu) {
    int oh = op_conv_out_size(s.h, s.k, s.stride, s.pad);
    int ow = op_conv_out_size(s.w, s.k, s.stride, s.pad);
    size_t nx = (size_t)s.cin * s.h * s.w, nw = (size_t)s.cout * s.cin * s.k * s.k;
    size_t ny = (size_t)s.cout * oh * ow;
    float *x = random_array(nx), *w = random_array(nw), *b = random_array((size_t)s.cout);
    float *y = random_array(ny);
    float *scratch = random_array(bf16 ? op_conv2d_bf16_scratch(&s) : op_conv2d_scratch(&s));
    double *ref = malloc(ny * sizeof *ref);
    op_bf16_weights packed = {0};
    if (bf16) {
        round_to_bf16(x, nx);
        round_to_bf16(w, nw);
        CHECK_OK(op_conv_pack_bf16(w, s.cout, s.cin, s.k, &packed));
    }
    conv_reference(&s, x, w, with_bias ? b : NULL, ref);
    if (accumulate)
        for (size_t i = 0; i < ny; i++) ref[i] += y[i];
    if (relu)
        for (size_t i = 0; i < ny; i++) ref[i] = fmax(ref[i], 0.0);
    if (bf16) {
        float *xt = malloc(nx * sizeof *xt), *yt = malloc(ny * sizeof *yt);
        transpose(x, s.cin, s.h * s.w, xt);
        transpose(y, s.cout, oh * ow, yt);
        op_conv2d_bf16(&s, xt, &packed, with_bias ? b : NULL, accumulate, relu, scratch, yt);
        transpose(yt, oh * ow, s.cout, y);
        free(xt);
        free(yt);
    } else op_conv2d(&s, x, w, with_bias ? b : NULL, accumulate, relu, scratch, y);
    double max_err = 0;
    for (size_t i = 0; i < ny; i++) max_err = fmax(max_err, fabs(y[i] - ref[i]));
    CHECK_MSG(max_err < 1e-4, "conv%s cin %d %dx%d cout %d k %d stride %d pad %d bias %d acc %d "
              "relu %d: max error %g", bf16 ? " bf16" : "", s.cin, s.h, s.w, s.cout, s.k, s.stride,
              s.pad, with_bias, accumulate, relu, max_err);
    op_bf16_free(&packed);
    free(x);
    free(w);
    free(b);
    free(y);
    free(scratch);
    free(ref);
}

static void test_conv_random(void) {
    static const op_conv_shape shapes[] = {
        /* cin, h, w, cout, k, stride, pad */
        {3, 17, 13, 8, 3, 2, 1},  {5, 9, 9, 7, 1, 1, 0},   {4, 10, 12, 6, 1, 2, 0},
        {2, 8, 8, 3, 5, 1, 2},    {6, 11, 7, 4, 3, 1, 1},  {3, 16, 16, 5, 7, 2, 3},
        {1, 1, 1, 1, 1, 1, 0},    {4, 6, 6, 3, 3, 3, 0},   {16, 12, 12, 32, 3, 1, 1},
        {2, 5, 9, 3, 3, 1, 0},    {3, 7, 7, 2, 3, 2, 2},   {8, 4, 4, 16, 1, 1, 0},
        {2, 3, 3, 2, 5, 1, 2},    {5, 13, 11, 9, 4, 3, 1},
        /* fp32 in bands of output rows (at least 128 pixels per output
         * channel, as in a ResNet stem; bands of 1 to 50 rows), and a
         * wide one whole */
        {3, 64, 48, 4, 3, 1, 1},  {5, 66, 50, 2, 3, 2, 1},  {32, 40, 36, 8, 3, 1, 1},
        {64, 9, 7, 130, 3, 1, 1},
        /* many output channels on few pixels: the threads split the
         * weights' rows where the BLAS rounds rows by their neighbours
         * (op_gemm_weights_left; 2 or 3 slices, cut at multiples of 16) */
        {8, 5, 6, 200, 1, 1, 0},
        /* bf16 in bands of output rows (K = 576: bands of 16 rows, the
         * last 8; on 1 and 2 threads, whole on 3: test_conv_bf16_bands) */
        {64, 72, 8, 16, 3, 1, 1},
    };
    int threads = cs_get_threads();
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int mode = 0; mode < 3; mode++) {
            /* fp32 with and without the ReLU, on 1 to 3 threads (bands of
             * rows per thread: the last one shorter, or none). */
            for (int t = 1; t <= 3; t++) {
                cs_set_threads(t);
                for (int relu = 0; relu < 2; relu++)
                    check_conv(shapes[i], mode != 1, mode == 2, 0, relu);
            }
            cs_set_threads(threads);
            /* bf16: the portable kernel everywhere, the CPU's own (AUTO)
             * too, ReLU'd in the store in turn. */
            op_bf16_force_path(OP_BF16_PATH_PORTABLE);
            check_conv(shapes[i], mode != 1, mode == 2, 1, (int)(i + mode) % 2);
            op_bf16_force_path(OP_BF16_PATH_AUTO);
            check_conv(shapes[i], mode != 1, mode == 2, 1, (int)(i + mode + 1) % 2);
        }
    CHECK(op_conv_out_size(224, 3, 2, 1) == 112 && op_conv_out_size(7, 3, 2, 2) == 5);
    op_conv_shape pointwise = {8, 4, 4, 16, 1, 1, 0}, padded = {2, 5, 9, 3, 3, 1, 0};
    CHECK(op_conv2d_scratch(&pointwise) == 0);
    CHECK(op_conv2d_scratch(&padded) == 2 * 9 * 3 * 7);
    CHECK(op_conv2d_bf16_scratch(&pointwise) == 0);
    CHECK(op_conv2d_bf16_scratch(&padded) == 3 * 7 * 2 * 9);
}

/* A bf16 convolution in bands gives the bits of the same convolution
 * whole: each output's sum does not depend on the rows around it. The
 * shape bands where it has two bands per thread (1 and 2 threads here),
 * not on 3. */
static void test_conv_bf16_bands(void) {
    op_conv_shape s = {64, 72, 8, 16, 3, 1, 1};
    size_t nx = (size_t)s.cin * s.h * s.w, nw = (size_t)s.cout * s.cin * 9, ny = (size_t)s.cout * s.h * s.w;
    float *x = random_array(nx), *w = random_array(nw), *b = random_array((size_t)s.cout);
    float *scratch = random_array(op_conv2d_bf16_scratch(&s)), *y[3];
    op_bf16_weights packed;
    CHECK_OK(op_conv_pack_bf16(w, s.cout, s.cin, 3, &packed));
    int threads = cs_get_threads();
    for (int t = 0; t < 3; t++) {
        cs_set_threads(t + 1);
        y[t] = random_array(ny);
        op_conv2d_bf16(&s, x, &packed, b, 0, 1, scratch, y[t]);
    }
    cs_set_threads(threads);
    CHECK_MSG(!memcmp(y[0], y[2], ny * sizeof(float)) && !memcmp(y[1], y[2], ny * sizeof(float)),
              "bf16 convolution: bands and whole differ");
    op_bf16_free(&packed);
    free(x);
    free(w);
    free(b);
    free(scratch);
    for (int t = 0; t < 3; t++) free(y[t]);
}

static void test_avg_pool(void) {
    /* 1 channel 4x4 -> 2x2, and a second channel 5x5 -> 2x2 (last row and column dropped). */
    const float x4[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    float y[4];
    op_avg_pool(x4, 1, 4, 4, 2, y);
    CHECK(y[0] == 3.5f && y[1] == 5.5f && y[2] == 11.5f && y[3] == 13.5f);
    op_avg_pool(x4, 1, 4, 4, 4, y);
    CHECK(y[0] == 8.5f);
    float x5[2 * 25], y5[2 * 4];
    for (int i = 0; i < 50; i++) x5[i] = (float)i;
    op_avg_pool(x5, 2, 5, 5, 2, y5);
    /* channel 0 top-left: (0 + 1 + 5 + 6) / 4; channel 1 bottom-right: (37 + 38 + 42 + 43) / 4 */
    CHECK(y5[0] == 3.0f && y5[1] == 5.0f && y5[2] == 13.0f && y5[3] == 15.0f);
    CHECK(y5[4] == 28.0f && y5[7] == 40.0f);

    /* Channels last: the same floats, and the layout changes both ways. */
    float x5t[2 * 25], y5t[2 * 4], back[2 * 4];
    op_chw_to_hwc(x5, 2, 25, x5t);
    CHECK(x5t[0] == 0.0f && x5t[1] == 25.0f && x5t[2] == 1.0f && x5t[49] == 49.0f);
    op_avg_pool_hwc(x5t, 2, 5, 5, 2, y5t);
    op_hwc_to_chw(y5t, 4, 2, back);
    for (int i = 0; i < 8; i++) CHECK_MSG(back[i] == y5[i], "avg pool hwc [%d]: %g vs %g", i, back[i], y5[i]);
}

static void test_fold_batch_norm(void) {
    /* eps 0 keeps the numbers exact: scale 2 / sqrt(4) = 1 and 1 / sqrt(0.25) = 2. */
    float w[4] = {1, 2, 3, 4}, bias[2];
    const float gamma[2] = {2, 1}, beta[2] = {1, -1}, mean[2] = {0.5f, 2}, var[2] = {4, 0.25f};
    op_fold_batch_norm(w, 2, 2, gamma, beta, mean, var, 0.0f, bias);
    CHECK(w[0] == 1 && w[1] == 2 && w[2] == 6 && w[3] == 8);
    CHECK(bias[0] == 0.5f && bias[1] == -5.0f);

    /* Folded conv = conv, then (y - mean) / sqrt(var + eps) * gamma + beta. */
    op_conv_shape s = {3, 6, 6, 4, 3, 1, 1};
    float *x = random_array(3 * 36), *wt = random_array(4 * 27), *g = random_array(4);
    float *bt = random_array(4), *mu = random_array(4), *v = random_array(4);
    for (int o = 0; o < 4; o++) v[o] = fabsf(v[o]) + 0.1f;
    float *scratch = malloc(op_conv2d_scratch(&s) * sizeof(float));
    float plain[4 * 36], folded[4 * 36], fb[4];
    op_conv2d(&s, x, wt, NULL, 0, 0, scratch, plain);
    op_fold_batch_norm(wt, 4, 27, g, bt, mu, v, 1e-5f, fb);
    op_conv2d(&s, x, wt, fb, 0, 0, scratch, folded);
    double max_err = 0;
    for (int o = 0; o < 4; o++)
        for (int i = 0; i < 36; i++) {
            double want = (plain[o * 36 + i] - mu[o]) / sqrt(v[o] + 1e-5) * g[o] + bt[o];
            max_err = fmax(max_err, fabs(folded[o * 36 + i] - want));
        }
    CHECK_MSG(max_err < 1e-5, "folded batch norm: max error %g", max_err);
    free(x);
    free(wt);
    free(g);
    free(bt);
    free(mu);
    free(v);
    free(scratch);
}

static void test_relu(void) {
    float x[5] = {-1.5f, 0.0f, 2.0f, -0.0f, 1e-30f};
    op_relu(x, 5);
    CHECK(x[0] == 0.0f && x[1] == 0.0f && x[2] == 2.0f && x[3] == 0.0f && x[4] == 1e-30f);
}

int main(void) {
    test_conv_random();
    test_conv_bf16_bands();
    test_avg_pool();
    test_fold_batch_norm();
    test_relu();
    return test_finish();
}
