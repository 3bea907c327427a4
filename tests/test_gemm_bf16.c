/* The bf16 linear layer (src/ops/gemm_bf16.c):
 *  - the scalar fp32 -> bf16 rounding against an independent double-based
 *    round-half-even, plus the special values;
 *  - the packed panel layout, element by element, padding included; its
 *    inverse (op_bf16_unpack) and its use in place (op_bf16_view);
 *  - for each kernel the CPU has (the portable one, everywhere; AVX512-BF16,
 *    forced; then AMX-BF16 where op_bf16_amx_supported()): the kernel's own on-the-fly rounding
 *    (through an identity weight, which makes y exactly bf16(x)), and
 *    op_linear_bf16 on many shapes (row, column and K tails, K blocks, M up
 *    to 100k) against a double-precision reference of the same
 *    bf16-rounded inputs (bound: fp32 summation error), with and without
 *    bias and accumulate, 1 and 2 threads, nested in a parallel region; the
 *    error against plain fp32 (OpenBLAS), reported;
 *  - AMX against AVX512 on the same shapes: both within the bound of the
 *    reference, so within twice it of each other; the difference reported. */
#include <float.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include "base/base.h"
#include "ops/gemm_bf16.h"
#include "ops/ops.h"
#include "test.h"

static uint32_t g_rng = 12345u;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) * (1.0 / 8388608.0) - 1.0);
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The kernel under test, for messages. */
static const char *g_path = "auto";

static float round_bf16(float f) { return op_bf16_to_float(op_bf16_from_float(f)); }

/* Round a normal float to 8 significant bits, half to even, in double. */
static double reference_round(float f) {
    int e;
    frexp(f, &e); /* f = m 2^e, 0.5 <= |m| < 1 */
    double ulp = ldexp(1.0, e - 8);
    return nearbyint((double)f / ulp) * ulp; /* default mode: half to even */
}

static void test_rounding(void) {
    CHECK(op_bf16_from_float(1.0f) == 0x3f80);
    CHECK(op_bf16_from_float(-2.0f) == 0xc000);
    CHECK(op_bf16_from_float(from_bits(0x3f808000u)) == 0x3f80); /* tie, even below */
    CHECK(op_bf16_from_float(from_bits(0x3f818000u)) == 0x3f82); /* tie, even above */
    CHECK(op_bf16_from_float(from_bits(0x3f808001u)) == 0x3f81); /* just above a tie */
    CHECK(op_bf16_from_float(from_bits(0x3f817fffu)) == 0x3f81); /* just below a tie */
    CHECK(op_bf16_from_float(FLT_MAX) == 0x7f80);                /* rounds up to inf */
    CHECK(op_bf16_from_float(INFINITY) == 0x7f80);
    CHECK(op_bf16_from_float(-INFINITY) == 0xff80);
    CHECK(op_bf16_from_float(-0.0f) == 0x8000);
    CHECK(op_bf16_from_float(from_bits(0x00000001u)) == 0x0000); /* denormals flush */
    CHECK(op_bf16_from_float(from_bits(0x807fffffu)) == 0x8000);
    CHECK(op_bf16_from_float(FLT_MIN) == 0x0080);
    uint16_t nan = op_bf16_from_float(NAN);
    CHECK((nan & 0x7f80) == 0x7f80 && (nan & 0x7f) != 0);
    CHECK(isnan(op_bf16_to_float(op_bf16_from_float(from_bits(0x7f800001u))))); /* sNaN stays NaN */
    CHECK(op_bf16_to_float(0x4049) == 3.140625f);
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        float f = frand() * ldexpf(1.0f, (int)(frand() * 60));
        if (f != 0 && round_bf16(f) != (float)reference_round(f)) bad++;
    }
    CHECK_MSG(bad == 0, "%d of 200000 random values round differently", bad);
}

/* Every stored value of a packing of w [N, K] against op_bf16_from_float,
 * the zero padding too. */
static int misplaced(const float *w, int N, int K, const op_bf16_weights *p) {
    int bad = 0, NR = OP_BF16_NR;
    for (int n = 0; n < p->panels * NR; n++)
        for (int k = 0; k < 2 * p->pairs_pad; k++) {
            size_t at = (((size_t)(n / NR) * p->pairs_pad + k / 2) * NR + n % NR) * 2 + k % 2;
            uint16_t want = n < N && k < K ? op_bf16_from_float(w[(size_t)n * K + k]) : 0;
            bad += p->data[at] != want;
        }
    return bad;
}

static void test_pack_layout(void) {
    int N = 37, K = 5, NR = OP_BF16_NR;
    float w[37 * 5];
    for (int i = 0; i < N * K; i++) w[i] = frand();
    op_bf16_weights p;
    CHECK_OK(op_bf16_pack(w, N, K, &p));
    CHECK(p.N == N && p.K == K && p.pairs == 3 && p.pairs_pad == OP_BF16_KPAD && p.panels == 2);
    size_t tile_bytes = (size_t)OP_BF16_KPAD * NR * 2 * sizeof(uint16_t); /* one padded K step */
    CHECK(op_bf16_packed_bytes(N, K) == 2 * tile_bytes);
    CHECK(op_bf16_packed_bytes(N, 2 * OP_BF16_KPAD) == 2 * tile_bytes);
    CHECK(op_bf16_packed_bytes(N, 2 * OP_BF16_KPAD + 1) == 2 * 2 * tile_bytes);
    int bad = misplaced(w, N, K, &p);
    CHECK_MSG(bad == 0, "%d packed values misplaced", bad);
    op_bf16_free(&p);
    CHECK(p.data == NULL);
    op_bf16_free(&p); /* twice is harmless */
    CHECK_STATUS(op_bf16_pack(w, 0, K, &p), CS_ERR_ARG);
    CHECK_STATUS(op_bf16_pack(NULL, N, K, &p), CS_ERR_ARG);
    CHECK(p.data == NULL);
    CHECK(op_bf16_packed_bytes(-1, 3) == 0);

    /* Whole panels with runs of 16 k take the vector path on AVX2 CPUs (8
     * rows x 8 pairs transposed in registers), the rest the scalar one:
     * both round ties, denormals, NaN and infinity alike. */
    static const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x00000001u, 0x807fffffu,
                                       0x7f7f7fffu, 0x7f800000u, 0xff800000u, 0x7fc00001u, 0x7f800001u};
    int N2 = 70, K2 = 67;
    float *w2 = malloc(sizeof(float) * N2 * K2);
    for (int i = 0; i < N2 * K2; i++) w2[i] = frand();
    for (int i = 0; i < (int)(sizeof special / sizeof *special); i++)
        for (int at = i * 37; at < N2 * K2; at += 401) memcpy(&w2[at], &special[i], sizeof *w2);
    CHECK_OK(op_bf16_pack(w2, N2, K2, &p));
    bad = misplaced(w2, N2, K2, &p);
    CHECK_MSG(bad == 0, "%d packed values misplaced (70 x 67, special values)", bad);
    op_bf16_free(&p);
    free(w2);
}

/* A BF16 file's bits packed as they are (op_bf16_pack_bits, an odd
 * address as in a file) give the bytes that widening them to fp32 and
 * packing that gives: random values, both zeros, denormals (flushed),
 * the largest finite values. */
static void test_pack_bits(void) {
    int N = 45, K = 67;
    uint16_t *h = malloc(sizeof(uint16_t) * N * K + 1);
    uint8_t *odd = malloc(sizeof(uint16_t) * N * K + 1);
    float *w = malloc(sizeof(float) * N * K);
    static const uint16_t special[] = {0x0000, 0x8000, 0x0001, 0x807f, 0x0080, 0x7f7f, 0xff7f, 0x3f80};
    for (int i = 0; i < N * K; i++) {
        h[i] = i < 8 ? special[i] : op_bf16_from_float(frand() * 4);
        w[i] = op_bf16_to_float(h[i]);
    }
    memcpy(odd + 1, h, sizeof(uint16_t) * N * K);
    op_bf16_weights a, b;
    CHECK_OK(op_bf16_pack(w, N, K, &a));
    CHECK_OK(op_bf16_pack_bits(odd + 1, N, K, &b));
    CHECK(a.N == b.N && a.K == b.K && a.pairs_pad == b.pairs_pad && a.panels == b.panels);
    CHECK_MSG(!memcmp(a.data, b.data, op_bf16_packed_bytes(N, K)), "bf16 bits pack differently from their fp32");
    op_bf16_free(&a);
    op_bf16_free(&b);
    free(h);
    free(odd);
    free(w);
}

/* Unpacking gives each weight's bf16 value back (padded shapes, an odd
 * address as in a file); a view of packed bytes uses them in place where
 * they are 64-byte aligned and copies them elsewhere, and is freed without
 * freeing what it borrowed. */
static void test_unpack_view(void) {
    int N = 45, K = 67;
    float *w = malloc(sizeof(float) * N * K), *back = malloc(sizeof(float) * N * K);
    for (int i = 0; i < N * K; i++) w[i] = frand();
    op_bf16_weights p, v;
    CHECK_OK(op_bf16_pack(w, N, K, &p));
    size_t bytes = op_bf16_packed_bytes(N, K);
    uint8_t *odd = malloc(bytes + 1);
    memcpy(odd + 1, p.data, bytes);
    op_bf16_unpack(odd + 1, N, K, back);
    int bad = 0;
    for (int i = 0; i < N * K; i++) bad += back[i] != op_bf16_to_float(op_bf16_from_float(w[i]));
    CHECK_MSG(bad == 0, "%d of %d unpacked values differ from their bf16 rounding", bad, N * K);

    CHECK_OK(op_bf16_view(p.data, N, K, &v));
    CHECK(v.borrowed && v.data == p.data && v.N == N && v.K == K && v.pairs_pad == p.pairs_pad &&
          v.panels == p.panels);
    op_bf16_free(&v);
    CHECK(v.data == NULL && p.data[0] == p.data[0]); /* p's buffer still ours (ASan: not freed) */
    CHECK_OK(op_bf16_view(odd + 1, N, K, &v));
    CHECK(!v.borrowed && (uintptr_t)v.data % 64 == 0 && !memcmp(v.data, p.data, bytes));
    op_bf16_free(&v);
    CHECK_STATUS(op_bf16_view(NULL, N, K, &v), CS_ERR_ARG);
    CHECK_STATUS(op_bf16_view(p.data, 0, K, &v), CS_ERR_ARG);
    op_bf16_free(&p);
    free(odd);
    free(w);
    free(back);
}

/* With w = I, y = bf16(x) exactly: this checks the kernel's own vector
 * rounding of the activations (ties, denormals, tails) bit for bit. */
static void test_kernel_rounding(void) {
    enum { M = 3, K = 45 }; /* odd K: the last pair has a zero partner */
    float x[M * K], w[K * K] = {0}, y[M * K];
    const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x3f808001u, 0x00000001u,
                                0x807fffffu, 0x00800000u, 0x7f7f7fffu, 0x3f817fffu};
    for (int i = 0; i < M * K; i++)
        x[i] = i < 9 ? from_bits(special[i]) : frand() * ldexpf(1.0f, (int)(frand() * 40));
    for (int k = 0; k < K; k++) w[k * K + k] = 1.0f;
    op_bf16_weights p;
    CHECK_OK(op_bf16_pack(w, K, K, &p));
    op_linear_bf16(x, M, K, &p, NULL, 0, y);
    int bad = 0;
    for (int i = 0; i < M * K; i++) bad += bits(y[i]) != bits(round_bf16(x[i])) && y[i] != round_bf16(x[i]);
    CHECK_MSG(bad == 0, "%d of %d values differ from the scalar rounding", bad, M * K);
    op_bf16_free(&p);
}

typedef struct shape {
    int M, N, K;
} shape;

typedef struct errors {
    double worst_ratio; /* max over checked elements of |err| / bound vs the bf16 reference */
    double fp32_rel;    /* max |y - y_fp32| / max |y_fp32| */
} errors;

/* Run one case and compare rows (a sample for large M; always the last
 * tile) against a double reference of the bf16-rounded inputs. */
static errors run_case(shape s, int with_bias, int accumulate, float **yout) {
    int M = s.M, N = s.N, K = s.K;
    size_t nx = (size_t)M * K, nw = (size_t)N * K, ny = (size_t)M * N;
    float *x = mem_alloc(nx, sizeof *x), *w = mem_alloc(nw, sizeof *w), *b = mem_alloc(N, sizeof *b);
    float *y0 = mem_alloc(ny, sizeof *y0), *y = mem_alloc(ny, sizeof *y), *yf = mem_alloc(ny, sizeof *yf);
    float *xr = mem_alloc(nx, sizeof *xr), *wr = mem_alloc(nw, sizeof *wr);
    for (size_t i = 0; i < nx; i++) xr[i] = round_bf16(x[i] = frand());
    for (size_t i = 0; i < nw; i++) wr[i] = round_bf16(w[i] = frand() * 0.05f);
    for (int j = 0; j < N; j++) b[j] = frand();
    for (size_t i = 0; i < ny; i++) y0[i] = frand() * 4;
    memcpy(y, y0, ny * sizeof *y);
    memcpy(yf, y0, ny * sizeof *y);
    op_bf16_weights p;
    errors e = {0, 0};
    if (op_bf16_pack(w, N, K, &p) != CS_OK) {
        CHECK_MSG(0, "pack failed: %s", cs_last_error());
        goto done;
    }
    op_linear_bf16(x, M, K, &p, with_bias ? b : NULL, accumulate, y);
    if (accumulate) op_linear_accumulate(x, M, K, w, with_bias ? b : NULL, N, yf);
    else op_linear(x, M, K, w, with_bias ? b : NULL, N, yf);
    int step = M > 64 ? 7 : 1, bad = 0;
    for (int i = 0; i < M; i++) {
        if (i % step && i < M - 16) continue;
        for (int j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double t = (double)xr[(size_t)i * K + k] * wr[(size_t)j * K + k];
                s += t;
                mag += fabs(t);
            }
            double bj = with_bias ? b[j] : 0, yj = accumulate ? y0[(size_t)i * N + j] : 0;
            s += bj + yj;
            mag += fabs(bj) + fabs(yj);
            /* fp32 accumulation: VDPBF16PS adds its two (exact) products
             * one at a time, (acc + p_odd) + p_even, so at most K + 1
             * roundings plus bias and y, each within 2^-24 of mag. The
             * AMX kernel's TDPBF16PS sums in its own order, the K blocks'
             * partial sums are then added to y: no more roundings than
             * that, so the same bound holds. */
            double bound = (K + 4) * ldexp(mag, -24) + 1e-30;
            double err = fabs(y[(size_t)i * N + j] - s);
            if (err / bound > e.worst_ratio) e.worst_ratio = err / bound;
            bad += !(err <= bound);
        }
    }
    CHECK_MSG(bad == 0, "%s: M=%d N=%d K=%d bias=%d acc=%d: %d values outside the bound", g_path,
              M, N, K, with_bias, accumulate, bad);
    double dmax = 0, ymax = 0;
    for (size_t i = 0; i < ny; i++) {
        double d = fabs((double)y[i] - yf[i]);
        if (d > dmax) dmax = d;
        if (fabs(yf[i]) > ymax) ymax = fabs(yf[i]);
    }
    e.fp32_rel = dmax / (ymax + 1e-30);
    /* Loose sanity bound: bf16 keeps 8 bits, so a few 2^-8 of the scale. */
    CHECK_MSG(e.fp32_rel < 0.03, "%s: M=%d N=%d K=%d: relative error vs fp32 %.3g", g_path, M, N, K,
              e.fp32_rel);
    op_bf16_free(&p);
done:
    if (yout) *yout = y;
    else cs_free(y);
    cs_free(x), cs_free(w), cs_free(b), cs_free(y0), cs_free(yf), cs_free(xr), cs_free(wr);
    return e;
}

/* Tails of every kind for both kernels: rows past a 14- or 32-row tile
 * (and <= 16 or > 16 of the last 32), columns past a panel, odd K, K past
 * a 16-pair tile, several K blocks (128 or 256 pairs) with a ragged last
 * one, and one long M. */
static const shape k_shapes[] = {
    {1, 64, 64},      {7, 64, 64},      {197, 64, 64},     {1025, 64, 64},   {1, 77, 77},
    {7, 77, 77},      {197, 77, 77},    {1025, 77, 77},    {1, 5, 3},        {13, 33, 129},
    {15, 31, 1},      {29, 97, 257},    {197, 768, 768},   {7, 768, 3072},   {1, 3072, 768},
    {197, 3072, 768}, {197, 768, 3072}, {1025, 768, 768},  {1025, 2304, 77}, {3, 4095, 65},
    {33, 65, 33},     {50, 100, 1100},  {70, 33, 543},     {64, 32, 32},     {100003, 40, 47},
};
#define N_SHAPES ((int)(sizeof k_shapes / sizeof k_shapes[0]))

static void test_shapes(void) {
    const shape *shapes = k_shapes;
    int n = N_SHAPES;
    double worst = 0, worst_rel = 0;
    for (int i = 0; i < n; i++)
        for (int v = 0; v < 4; v++) {
            /* The portable kernel is plain C: its large cases add time, not
             * coverage (every tail and K-block case is small). */
            if (!strcmp(g_path, "portable") && (double)shapes[i].M * shapes[i].N * shapes[i].K > 2e7) continue;
            errors e = run_case(shapes[i], v & 1, v >> 1, NULL);
            if (e.worst_ratio > worst) worst = e.worst_ratio;
            if (v == 1) {
                printf("  M=%4d N=%4d K=%4d: max |y - y_fp32| / max |y_fp32| = %.2e\n",
                       shapes[i].M, shapes[i].N, shapes[i].K, e.fp32_rel);
                if (e.fp32_rel > worst_rel) worst_rel = e.fp32_rel;
            }
        }
    printf("  %s vs the bf16-input double reference: worst |err| / bound = %.3f\n", g_path, worst);
    printf("  %s vs fp32: worst relative error %.2e\n", g_path, worst_rel);
}

/* The two kernels on the same inputs: each is within the bound of the
 * double reference (run_case checks it), so they agree to twice the
 * bound; here, that they agree to the bf16 scale at all (a layout or tile
 * mix-up gives O(1) differences) and how often they agree bit for bit. */
static void test_amx_vs_avx512(void) {
    double worst = 0;
    size_t same = 0, total = 0;
    for (int i = 0; i < N_SHAPES; i++)
        for (int v = 0; v < 4; v += 3) { /* plain, and bias + accumulate */
            shape s = k_shapes[i];
            float *ya, *yv;
            uint32_t seed = 777u + (uint32_t)i;
            op_bf16_force_path(OP_BF16_PATH_AVX512);
            g_path = "avx512";
            g_rng = seed;
            run_case(s, v & 1, v >> 1, &yv);
            op_bf16_force_path(OP_BF16_PATH_AMX);
            g_path = "amx";
            g_rng = seed;
            run_case(s, v & 1, v >> 1, &ya);
            size_t ny = (size_t)s.M * s.N;
            double dmax = 0, ymax = 0;
            for (size_t j = 0; j < ny; j++) {
                double d = fabs((double)ya[j] - yv[j]);
                if (d > dmax) dmax = d;
                if (fabs(yv[j]) > ymax) ymax = fabs(yv[j]);
                same += bits(ya[j]) == bits(yv[j]);
            }
            total += ny;
            double rel = dmax / (ymax + 1e-30);
            CHECK_MSG(rel < 1e-4, "M=%d N=%d K=%d: AMX and AVX512 differ by %.3g of max |y|", s.M,
                      s.N, s.K, rel);
            if (rel > worst) worst = rel;
            cs_free(ya), cs_free(yv);
        }
    printf("  AMX vs AVX512: worst max |diff| / max |y| = %.2e, %.1f%% of values bit-identical\n",
           worst, 100.0 * (double)same / (double)total);
}

/* The split among threads never changes the summation order: 1 and 2
 * threads, and a call nested in a parallel region, agree bit for bit. */
static void test_threads(void) {
    shape s = {197, 768, 320};
    int saved = omp_get_max_threads();
    float *y1, *y2;
    omp_set_num_threads(1);
    g_rng = 99;
    run_case(s, 1, 0, &y1);
    omp_set_num_threads(2);
    g_rng = 99;
    run_case(s, 1, 0, &y2);
    CHECK(memcmp(y1, y2, (size_t)s.M * s.N * sizeof *y1) == 0);
    /* Nested: each of two threads does its own product, serially inside. */
    float *x = mem_alloc((size_t)s.M * s.K, sizeof *x), *w = mem_alloc((size_t)s.N * s.K, sizeof *w);
    float *yy = mem_alloc((size_t)2 * s.M * s.N, sizeof *yy);
    for (size_t i = 0; i < (size_t)s.M * s.K; i++) x[i] = frand();
    for (size_t i = 0; i < (size_t)s.N * s.K; i++) w[i] = frand();
    op_bf16_weights p;
    CHECK_OK(op_bf16_pack(w, s.N, s.K, &p));
    op_linear_bf16(x, s.M, s.K, &p, NULL, 0, y1);
#pragma omp parallel for num_threads(2)
    for (int t = 0; t < 2; t++) op_linear_bf16(x, s.M, s.K, &p, NULL, 0, yy + (size_t)t * s.M * s.N);
    CHECK(memcmp(y1, yy, (size_t)s.M * s.N * sizeof *y1) == 0);
    CHECK(memcmp(y1, yy + (size_t)s.M * s.N, (size_t)s.M * s.N * sizeof *y1) == 0);
    op_bf16_free(&p);
    omp_set_num_threads(saved);
    cs_free(x), cs_free(w), cs_free(yy), cs_free(y1), cs_free(y2);
}

/* op_linear_bf16_relu is op_linear_bf16 then max(y, 0), bit for bit, the
 * accumulation included and only after the last K block (K = 543: several
 * blocks; a negative partial sum of an early block must not be clamped). */
static void test_relu(void) {
    static const shape shapes[] = {{29, 97, 257}, {70, 33, 543}, {3, 40, 6}};
    for (int i = 0; i < 3; i++)
        for (int v = 0; v < 4; v++) {
            shape s = shapes[i];
            size_t nx = (size_t)s.M * s.K, nw = (size_t)s.N * s.K, ny = (size_t)s.M * s.N;
            float *x = mem_alloc(nx, sizeof *x), *w = mem_alloc(nw, sizeof *w);
            float *b = mem_alloc(s.N, sizeof *b), *y = mem_alloc(ny, sizeof *y);
            float *yr = mem_alloc(ny, sizeof *yr);
            for (size_t j = 0; j < nx; j++) x[j] = frand();
            for (size_t j = 0; j < nw; j++) w[j] = frand() * 0.05f;
            for (int j = 0; j < s.N; j++) b[j] = frand();
            for (size_t j = 0; j < ny; j++) y[j] = yr[j] = frand();
            op_bf16_weights p;
            CHECK_OK(op_bf16_pack(w, s.N, s.K, &p));
            op_linear_bf16(x, s.M, s.K, &p, v & 1 ? b : NULL, v >> 1, y);
            op_linear_bf16_relu(x, s.M, s.K, &p, v & 1 ? b : NULL, v >> 1, yr);
            int bad = 0, zeros = 0;
            for (size_t j = 0; j < ny; j++) {
                float want = y[j] > 0.0f ? y[j] : 0.0f;
                bad += bits(yr[j]) != bits(want);
                zeros += yr[j] == 0.0f;
            }
            CHECK_MSG(bad == 0 && zeros > 0 && zeros < (int)ny, "%s relu: M=%d N=%d K=%d bias=%d "
                      "acc=%d: %d values differ from max(y, 0), %d zeros", g_path, s.M, s.N, s.K,
                      v & 1, v >> 1, bad, zeros);
            op_bf16_free(&p);
            cs_free(x), cs_free(w), cs_free(b), cs_free(y), cs_free(yr);
        }
}

static void test_kernel(int path, const char *name) {
    op_bf16_force_path(path);
    g_path = name;
    printf("%s kernel:\n", name);
    test_kernel_rounding();
    test_shapes();
    test_threads();
    test_relu();
}

int main(void) {
    test_rounding();
    test_pack_layout();
    test_pack_bits();
    test_unpack_view();
    /* The portable kernel runs on every CPU (and is what one without
     * AVX512-BF16 or AVX2 uses): the same checks. */
    test_kernel(OP_BF16_PATH_PORTABLE, "portable");
    if (op_bf16_avx2_supported()) test_kernel(OP_BF16_PATH_AVX2, "avx2");
    else printf("skipping the AVX2 kernel checks: this CPU (or OS) lacks AVX2 and FMA\n");
    if (!op_bf16_supported()) {
        printf("skipping the kernel checks: this CPU (or OS) lacks AVX512-BF16\n");
        return test_finish();
    }
    test_kernel(OP_BF16_PATH_AVX512, "avx512");
    if (op_bf16_amx_supported()) {
        test_kernel(OP_BF16_PATH_AMX, "amx");
        test_amx_vs_avx512();
    } else {
        printf("skipping the AMX checks: this CPU (or OS) lacks AMX-BF16 tiles\n");
        /* Asking for AMX without it must still compute, with AVX512. */
        test_kernel(OP_BF16_PATH_AMX, "amx (falls back to avx512)");
    }
    op_bf16_force_path(OP_BF16_PATH_AUTO);
    test_kernel_rounding(); /* the default choice works too */
    /* bench's bf16 peak runs the kernel on packed weights (small here). */
    double peak = cs_gemm_bf16_peak_gflops(128, 3);
    CHECK_MSG(peak > 0 && isfinite(peak), "bf16 peak %g", peak);
    return test_finish();
}
