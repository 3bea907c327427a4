/* The int8 linear layer (src/ops/gemm_int8.c):
 *  - op_int8_quantize_row against the definition (max |q| = 127 at the
 *    largest value, every q within half a step of x / scale), zero and
 *    non-finite rows;
 *  - the packed panel layout, scales and comp[] element by element;
 *  - for each kernel the CPU has (the portable one everywhere, AVX512-VNNI
 *    where op_int8_supported()): op_linear_int8 on many shapes (row, column
 *    and K tails, K up to OP_INT8_MAX_K, M up to 100k), with and without
 *    bias and accumulate, against a float64 sum of the same quantized
 *    integers followed by the documented float operations: equal bit for
 *    bit; and against fp32 (OpenBLAS) within the quantization bound
 *    sum_k (|x_k| sw / 2 + |w_k| sx / 2 + sx sw / 4) plus fp32 rounding;
 *  - AVX512-VNNI and portable outputs identical bit for bit;
 *  - 1 and 2 threads and a call nested in a parallel region identical. */
#include <float.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include "base/base.h"
#include "ops/gemm_int8.h"
#include "ops/ops.h"
#include "test.h"

static uint32_t g_rng = 4242u;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) * (1.0 / 8388608.0) - 1.0);
}

static const char *g_path = "auto";

static void test_quantize_row(void) {
    enum { K = 301 };
    float x[K];
    int8_t q[K];
    int bad = 0;
    for (int trial = 0; trial < 200; trial++) {
        float mag = ldexpf(1.0f, (int)(frand() * 40));
        for (int k = 0; k < K; k++) x[k] = frand() * mag;
        float s = op_int8_quantize_row(x, K, q);
        double amax = 0;
        int at = 0;
        for (int k = 0; k < K; k++)
            if (fabs(x[k]) > amax) amax = fabs(x[k]), at = k;
        bad += fabs(s - amax / 127) > 1e-6 * amax / 127;
        bad += abs(q[at]) != 127;
        for (int k = 0; k < K; k++) bad += !(fabs(q[k] - x[k] / (amax / 127)) <= 0.5 + 1e-4) || abs(q[k]) > 127;
    }
    CHECK_MSG(bad == 0, "%d quantized values off", bad);
    /* Round half to even: 63.5 and 64.5 steps. */
    float h[3] = {127.0f, 63.5f, -64.5f};
    CHECK(op_int8_quantize_row(h, 3, q) == 1.0f && q[0] == 127 && q[1] == 64 && q[2] == -64);
    float z[4] = {0, -0.0f, 0, 0};
    CHECK(op_int8_quantize_row(z, 4, q) == 0.0f && !q[0] && !q[1] && !q[3]);
    float n[3] = {1.0f, NAN, 2.0f};
    CHECK(isnan(op_int8_quantize_row(n, 3, q)));
    float inf[3] = {1.0f, -INFINITY, 2.0f};
    CHECK(isinf(op_int8_quantize_row(inf, 3, q)));
}

static void test_pack_layout(void) {
    int N = 37, K = 7, NR = OP_INT8_NR;
    float w[37 * 7];
    int8_t q[7];
    for (int i = 0; i < N * K; i++) w[i] = frand();
    op_int8_weights p;
    CHECK_OK(op_int8_pack(w, N, K, &p));
    CHECK(p.N == N && p.K == K && p.quads == 2 && p.panels == 2);
    int bad = 0;
    for (int n = 0; n < p.panels * NR; n++) {
        int32_t sum = 0;
        float s = n < N ? op_int8_quantize_row(w + n * K, K, q) : 0.0f;
        for (int k = 0; k < 4 * p.quads; k++) { /* every stored value, the zero padding too */
            int8_t want = n < N && k < K ? q[k] : 0;
            bad += p.data[(((size_t)(n / NR) * p.quads + k / 4) * NR + n % NR) * 4 + k % 4] != want;
            sum += want;
        }
        bad += p.scale[n] != s || p.comp[n] != 128 * sum;
    }
    CHECK_MSG(bad == 0, "%d packed values misplaced", bad);
    op_int8_free(&p);
    CHECK(p.data == NULL);
    op_int8_free(&p); /* twice is harmless */
    CHECK_STATUS(op_int8_pack(w, 0, K, &p), CS_ERR_ARG);
    CHECK_STATUS(op_int8_pack(NULL, N, K, &p), CS_ERR_ARG);
    CHECK_STATUS(op_int8_pack(w, 1, OP_INT8_MAX_K + 1, &p), CS_ERR_ARG);
    CHECK(p.data == NULL);
    CHECK(op_int8_packed_bytes(-1, 3) == 0 && op_int8_packed_bytes(3, OP_INT8_MAX_K + 1) == 0);
}

typedef struct shape {
    int M, N, K;
} shape;

/* Run one case; check rows (a sample for large M; always the last tile)
 * exactly against the integer reference and within the quantization bound
 * of fp32. Returns y (the caller frees) and the relative error vs fp32. */
static float *run_case(shape s, int with_bias, int accumulate, double *fp32_rel) {
    int M = s.M, N = s.N, K = s.K;
    size_t nx = (size_t)M * K, nw = (size_t)N * K, ny = (size_t)M * N;
    float *x = mem_alloc(nx, sizeof *x), *w = mem_alloc(nw, sizeof *w), *b = mem_alloc(N, sizeof *b);
    float *y0 = mem_alloc(ny, sizeof *y0), *y = mem_alloc(ny, sizeof *y), *yf = mem_alloc(ny, sizeof *yf);
    int8_t *qx = mem_alloc(K, 1), *qw = mem_alloc(nw, 1);
    float *sw = mem_alloc(N, sizeof *sw);
    /* Rows of different magnitudes (per-token scales matter), a few outliers. */
    for (int i = 0; i < M; i++) {
        float mag = ldexpf(1.0f, (int)(frand() * 6));
        for (int k = 0; k < K; k++) x[(size_t)i * K + k] = frand() * mag * (k % 97 == 5 ? 8.0f : 1.0f);
    }
    for (size_t i = 0; i < nw; i++) w[i] = frand() * 0.05f;
    for (int j = 0; j < N; j++) b[j] = frand();
    for (size_t i = 0; i < ny; i++) y0[i] = frand() * 4;
    memcpy(y, y0, ny * sizeof *y);
    memcpy(yf, y0, ny * sizeof *y);
    for (int j = 0; j < N; j++) sw[j] = op_int8_quantize_row(w + (size_t)j * K, K, qw + (size_t)j * K);
    op_int8_weights p;
    CHECK_OK(op_int8_pack(w, N, K, &p));
    op_linear_int8(x, M, K, &p, with_bias ? b : NULL, accumulate, y);
    if (accumulate) op_linear_accumulate(x, M, K, w, with_bias ? b : NULL, N, yf);
    else op_linear(x, M, K, w, with_bias ? b : NULL, N, yf);
    int step = M > 64 ? 7 : 1, inexact = 0, outside = 0;
    double dmax = 0, ymax = 0;
    for (int i = 0; i < M; i++) {
        if (i % step && i < M - 16) continue;
        const float *xi = x + (size_t)i * K;
        float sx = op_int8_quantize_row(xi, K, qx);
        for (int j = 0; j < N; j++) {
            double isum = 0, mag = 0, qerr = 0;
            for (int k = 0; k < K; k++) {
                isum += (double)qx[k] * qw[(size_t)j * K + k]; /* exact: < 2^53 */
                mag += fabs((double)xi[k] * w[(size_t)j * K + k]);
                qerr += fabs(xi[k]) * sw[j] / 2 + fabs(w[(size_t)j * K + k]) * sx / 2 + (double)sx * sw[j] / 4;
            }
            float want = fmaf((float)isum, sx * sw[j], with_bias ? b[j] : 0.0f);
            if (accumulate) want += y0[(size_t)i * N + j];
            float got = y[(size_t)i * N + j];
            inexact += memcmp(&got, &want, sizeof got) != 0;
            /* fp32's own rounding (K + 4 roundings of at most 2^-24 of the
             * magnitude) and the dequantization's few roundings on top. */
            double slack = (K + 8) * ldexp(mag + fabs(b[j]) + fabs(y0[(size_t)i * N + j]) + qerr, -24);
            outside += !(fabs((double)got - yf[(size_t)i * N + j]) <= qerr + slack);
        }
    }
    for (size_t i = 0; i < ny; i++) {
        dmax = fmax(dmax, fabs((double)y[i] - yf[i]));
        ymax = fmax(ymax, fabs(yf[i]));
    }
    CHECK_MSG(inexact == 0, "%s: M=%d N=%d K=%d bias=%d acc=%d: %d values differ from the integer reference",
              g_path, M, N, K, with_bias, accumulate, inexact);
    CHECK_MSG(outside == 0, "%s: M=%d N=%d K=%d bias=%d acc=%d: %d values outside the quantization bound",
              g_path, M, N, K, with_bias, accumulate, outside);
    *fp32_rel = dmax / (ymax + 1e-30);
    op_int8_free(&p);
    cs_free(x), cs_free(w), cs_free(b), cs_free(y0), cs_free(yf), cs_free(qx), cs_free(qw), cs_free(sw);
    return y;
}

/* Tails of every kind: rows past a 14-row tile and a block of tiles,
 * columns past a panel, K not a multiple of 4 or 16, the longest K, one
 * long M. */
static const shape k_shapes[] = {
    {1, 64, 64},     {7, 64, 64},       {197, 64, 64},    {1, 77, 77},      {15, 77, 77},
    {1, 5, 3},       {13, 33, 129},     {15, 31, 1},      {29, 97, 257},    {197, 768, 768},
    {7, 768, 3072},  {197, 3072, 768},  {197, 768, 3072}, {394, 768, 768},  {3, 4095, 65},
    {33, 65, 33},    {50, 100, 1100},   {70, 33, 543},    {15, 33, OP_INT8_MAX_K},
    {100003, 40, 47},
};
#define N_SHAPES ((int)(sizeof k_shapes / sizeof k_shapes[0]))

static int is_big(shape s) { return (double)s.M * s.N * s.K > 5e6; }

static void test_shapes(void) {
    double worst = 0;
    for (int i = 0; i < N_SHAPES; i++)
        for (int v = 0; v < 4; v++) {
            /* The portable kernel is plain C: its large cases add time, not coverage. */
            if (!strcmp(g_path, "portable") && is_big(k_shapes[i])) continue;
            double rel;
            cs_free(run_case(k_shapes[i], v & 1, v >> 1, &rel));
            if (v == 1) {
                printf("  M=%6d N=%4d K=%4d: max |y - y_fp32| / max |y_fp32| = %.2e\n", k_shapes[i].M,
                       k_shapes[i].N, k_shapes[i].K, rel);
                worst = fmax(worst, rel);
            }
        }
    printf("  %s vs fp32: worst relative error %.2e\n", g_path, worst);
}

/* The two kernels on the same inputs: identical bits. */
static void test_avx512_vs_portable(void) {
    size_t differ = 0, total = 0;
    for (int i = 0; i < N_SHAPES; i++) {
        if (is_big(k_shapes[i])) continue;
        for (int v = 0; v < 4; v += 3) { /* plain, and bias + accumulate */
            double rel;
            op_int8_force_path(OP_INT8_PATH_AVX512);
            g_path = "avx512";
            g_rng = 777u + (uint32_t)i;
            float *ya = run_case(k_shapes[i], v & 1, v >> 1, &rel);
            op_int8_force_path(OP_INT8_PATH_PORTABLE);
            g_path = "portable";
            g_rng = 777u + (uint32_t)i;
            float *yp = run_case(k_shapes[i], v & 1, v >> 1, &rel);
            size_t ny = (size_t)k_shapes[i].M * k_shapes[i].N;
            for (size_t j = 0; j < ny; j++) differ += memcmp(ya + j, yp + j, sizeof *ya) != 0;
            total += ny;
            cs_free(ya), cs_free(yp);
        }
    }
    CHECK_MSG(differ == 0, "AVX512-VNNI and portable differ in %zu of %zu values", differ, total);
    printf("  AVX512-VNNI vs portable: %zu values, all bit-identical: %s\n", total, differ ? "no" : "yes");
}

/* 1 and 2 threads, and a call nested in a parallel region, agree bit for bit. */
static void test_threads(void) {
    shape s = {197, 768, 320};
    int saved = omp_get_max_threads();
    double rel;
    omp_set_num_threads(1);
    g_rng = 99;
    float *y1 = run_case(s, 1, 0, &rel);
    omp_set_num_threads(2);
    g_rng = 99;
    float *y2 = run_case(s, 1, 0, &rel);
    CHECK(memcmp(y1, y2, (size_t)s.M * s.N * sizeof *y1) == 0);
    float *x = mem_alloc((size_t)s.M * s.K, sizeof *x), *w = mem_alloc((size_t)s.N * s.K, sizeof *w);
    float *yy = mem_alloc((size_t)2 * s.M * s.N, sizeof *yy);
    for (size_t i = 0; i < (size_t)s.M * s.K; i++) x[i] = frand();
    for (size_t i = 0; i < (size_t)s.N * s.K; i++) w[i] = frand();
    op_int8_weights p;
    CHECK_OK(op_int8_pack(w, s.N, s.K, &p));
    op_linear_int8(x, s.M, s.K, &p, NULL, 0, y1);
#pragma omp parallel for num_threads(2)
    for (int t = 0; t < 2; t++) op_linear_int8(x, s.M, s.K, &p, NULL, 0, yy + (size_t)t * s.M * s.N);
    CHECK(memcmp(y1, yy, (size_t)s.M * s.N * sizeof *y1) == 0);
    CHECK(memcmp(y1, yy + (size_t)s.M * s.N, (size_t)s.M * s.N * sizeof *y1) == 0);
    op_int8_free(&p);
    omp_set_num_threads(saved);
    cs_free(x), cs_free(w), cs_free(yy), cs_free(y1), cs_free(y2);
}

/* A non-finite activation makes its row's outputs non-finite, as in fp32. */
static void test_non_finite(void) {
    enum { M = 3, N = 40, K = 50 };
    float x[M * K], w[N * K], y[M * N];
    for (int i = 0; i < M * K; i++) x[i] = frand();
    for (int i = 0; i < N * K; i++) w[i] = frand();
    x[1 * K + 7] = NAN;
    x[2 * K + 3] = INFINITY;
    op_int8_weights p;
    CHECK_OK(op_int8_pack(w, N, K, &p));
    op_linear_int8(x, M, K, &p, NULL, 0, y);
    int finite0 = 1, finite12 = 0;
    for (int j = 0; j < N; j++) {
        finite0 &= isfinite(y[j]);
        finite12 += isfinite(y[N + j]) + isfinite(y[2 * N + j]);
    }
    CHECK_MSG(finite0 && finite12 == 0, "%s: non-finite rows", g_path);
    op_int8_free(&p);
}

static void test_kernel(int path, const char *name) {
    op_int8_force_path(path);
    g_path = name;
    printf("%s kernel:\n", name);
    test_shapes();
    test_threads();
    test_non_finite();
}

int main(void) {
    test_quantize_row();
    test_pack_layout();
    test_kernel(OP_INT8_PATH_PORTABLE, "portable");
    if (!op_int8_supported()) {
        printf("skipping the AVX512-VNNI checks: this CPU (or OS) lacks it\n");
        return test_finish();
    }
    test_kernel(OP_INT8_PATH_AVX512, "avx512");
    test_avx512_vs_portable();
    op_int8_force_path(OP_INT8_PATH_AUTO);
    return test_finish();
}
