/* Speed of the packed bf16 and int8 linear layers against OpenBLAS sgemm
 * on the transformer shapes: y[M, N] = x[M, K] w[N, K]^T + b.
 * Usage: bench_gemm_packed [RUNS]   (default 7; the median of RUNS after a warm-up)
 * Prints, per shape and thread count, ms and GFLOP/s of op_linear (fp32,
 * OpenBLAS), op_linear_bf16 forced onto its AVX512-BF16 kernel (on a CPU
 * without it, its AVX2 kernel) and, where the CPU has it, onto its AMX-BF16
 * kernel, and op_linear_int8 (AVX512-VNNI, activation quantization
 * included), with their speed-ups over fp32, measured interleaved in the
 * same process; then the single-core instruction peaks (FMA vs VDPBF16PS
 * vs VPDPBUSD throughput, independent accumulators). On a shared machine
 * expect a few % of noise per cell. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include "base/base.h"
#include "ops/gemm_bf16.h"
#include "ops/gemm_int8.h"
#include "ops/ops.h"
#include "median.h"

typedef struct shape {
    const char *what;
    int M, N, K;
} shape;

static const shape k_shapes[] = {
    {"ViT-B/16 224 qkv", 197, 2304, 768},   {"ViT-B/16 224 out", 197, 768, 768},
    {"ViT-B/16 224 fc", 197, 3072, 768},    {"ViT-B/16 224 proj", 197, 768, 3072},
    {"ViT-B/16 512 qkv", 1025, 2304, 768},  {"ViT-B/16 512 out", 1025, 768, 768},
    {"ViT-B/16 512 fc", 1025, 3072, 768},   {"ViT-B/16 512 proj", 1025, 768, 3072},
    {"text W=512 qkv", 1000, 1536, 512},    {"text W=512 out", 1000, 512, 512},
    {"text W=512 fc", 1000, 2048, 512},     {"text W=512 proj", 1000, 512, 2048},
};

/* The vector bf16 kernel this CPU has: AVX512-BF16, else AVX2. */
static int vector_path(void) { return op_bf16_supported() ? OP_BF16_PATH_AVX512 : OP_BF16_PATH_AVX2; }

static float frand(void) { return (float)rand() / (float)RAND_MAX - 0.5f; }

/* Time the paths on one shape; they are interleaved run by run so
 * background load on the shared machine hits them alike. tamx is not
 * written without AMX. */
static void bench_shape(const shape *s, int runs, int amx, int vnni, double *t32, double *t16,
                        double *tamx, double *t8) {
    size_t nx = (size_t)s->M * s->K, nw = (size_t)s->N * s->K, ny = (size_t)s->M * s->N;
    float *x = mem_alloc(nx, sizeof *x), *w = mem_alloc(nw, sizeof *w), *b = mem_alloc(s->N, sizeof *b);
    float *y = mem_alloc(ny, sizeof *y);
    op_bf16_weights p = {0};
    op_int8_weights p8 = {0};
    if (!x || !w || !b || !y) {
        fprintf(stderr, "bench_gemm_bf16: %s\n", cs_last_error());
        exit(1);
    }
    for (size_t i = 0; i < nx; i++) x[i] = frand();
    for (size_t i = 0; i < nw; i++) w[i] = frand() * 0.05f;
    for (int i = 0; i < s->N; i++) b[i] = frand();
    if (op_bf16_pack(w, s->N, s->K, &p) != CS_OK || op_int8_pack(w, s->N, s->K, &p8) != CS_OK) {
        fprintf(stderr, "bench_gemm_bf16: %s\n", cs_last_error());
        exit(1);
    }
    op_linear(x, s->M, s->K, w, b, s->N, y); /* warm-up: pages, caches, thread pool */
    op_bf16_force_path(vector_path());
    op_linear_bf16(x, s->M, s->K, &p, b, 0, y);
    if (amx) {
        op_bf16_force_path(OP_BF16_PATH_AMX);
        op_linear_bf16(x, s->M, s->K, &p, b, 0, y);
    }
    if (vnni) op_linear_int8(x, s->M, s->K, &p8, b, 0, y);
    for (int r = 0; r < runs; r++) {
        double t0 = cs_now();
        op_linear(x, s->M, s->K, w, b, s->N, y);
        double t1 = cs_now();
        op_bf16_force_path(vector_path());
        op_linear_bf16(x, s->M, s->K, &p, b, 0, y);
        double t2 = cs_now();
        t32[r] = t1 - t0;
        t16[r] = t2 - t1;
        if (amx) {
            op_bf16_force_path(OP_BF16_PATH_AMX);
            op_linear_bf16(x, s->M, s->K, &p, b, 0, y);
            tamx[r] = cs_now() - t2;
        }
        if (vnni) {
            double t3 = cs_now();
            op_linear_int8(x, s->M, s->K, &p8, b, 0, y);
            t8[r] = cs_now() - t3;
        }
    }
    op_bf16_force_path(OP_BF16_PATH_AUTO);
    op_bf16_free(&p);
    op_int8_free(&p8);
    cs_free(x), cs_free(w), cs_free(b), cs_free(y);
}

#define PEAK_ACC 16

__attribute__((target("avx512f"), noinline)) static float fma_loop(long n) {
    __m512 acc[PEAK_ACC], u = _mm512_set1_ps(1.0001f), v = _mm512_set1_ps(0.9999f);
    for (int i = 0; i < PEAK_ACC; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 16
        for (int i = 0; i < PEAK_ACC; i++) acc[i] = _mm512_fmadd_ps(u, v, acc[i]);
    for (int i = 1; i < PEAK_ACC; i++) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    return _mm512_reduce_add_ps(acc[0]);
}

/* 12 accumulators: with 16 of 16 ymm registers they would spill. */
#define PEAK_ACC_YMM 12

__attribute__((target("avx2,fma"), noinline)) static float fma_loop_avx2(long n) {
    __m256 acc[PEAK_ACC_YMM], u = _mm256_set1_ps(1.0001f), v = _mm256_set1_ps(0.9999f);
    for (int i = 0; i < PEAK_ACC_YMM; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < PEAK_ACC_YMM; i++) acc[i] = _mm256_fmadd_ps(u, v, acc[i]);
    for (int i = 1; i < PEAK_ACC_YMM; i++) acc[0] = _mm256_add_ps(acc[0], acc[i]);
    float lanes[8];
    _mm256_storeu_ps(lanes, acc[0]);
    return lanes[0];
}

__attribute__((target("avx512f,avx512bw,avx512bf16"), noinline)) static float dp_loop(long n) {
    __m512 acc[PEAK_ACC];
    __m512bh u = (__m512bh)_mm512_set1_epi32(0x3f803f80), v = (__m512bh)_mm512_set1_epi32(0x3c003c00);
    for (int i = 0; i < PEAK_ACC; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 16
        for (int i = 0; i < PEAK_ACC; i++) acc[i] = _mm512_dpbf16_ps(acc[i], u, v);
    for (int i = 1; i < PEAK_ACC; i++) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) static int vnni_loop(long n) {
    __m512i acc[PEAK_ACC], u = _mm512_set1_epi32(0x01010101), v = _mm512_set1_epi32(0x01ff01ff);
    for (int i = 0; i < PEAK_ACC; i++) acc[i] = _mm512_set1_epi32(i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 16
        for (int i = 0; i < PEAK_ACC; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], u, v);
    for (int i = 1; i < PEAK_ACC; i++) acc[0] = _mm512_add_epi32(acc[0], acc[i]);
    return _mm512_reduce_add_epi32(acc[0]);
}

/* GFLOP/s of one core issuing only FMA (32 flop each), only VDPBF16PS
 * (64 flop each) or only VPDPBUSD (128 integer "flop" each): the
 * instruction ceilings of the three kernels. */
static void print_peaks(void) {
    long n = 20000000;
    volatile float sink;
    int zmm = __builtin_cpu_supports("avx512f"), flop = zmm ? 32 : 16; /* per FMA */
    int acc = zmm ? PEAK_ACC : PEAK_ACC_YMM;
    double t0 = cs_now();
    sink = zmm ? fma_loop(n) : fma_loop_avx2(n);
    double t1 = cs_now();
    sink = op_bf16_supported() ? dp_loop(n / 4) : 0;
    double t2 = cs_now();
    volatile int isink = op_int8_supported() ? vnni_loop(n / 4) : 0;
    double t3 = cs_now();
    (void)sink, (void)isink;
    printf("\nOne-core instruction peaks: FMA (%s, %d accumulators) %.1f GFLOP/s", zmm ? "zmm" : "ymm", acc,
           n * acc * (double)flop / (t1 - t0) * 1e-9);
    if (op_bf16_supported())
        printf(", VDPBF16PS (%d accumulators) %.1f GFLOP/s (%.2f of FMA)\n", PEAK_ACC,
               n / 4 * PEAK_ACC * 64.0 / (t2 - t1) * 1e-9, (n / 4 * 64.0 / (t2 - t1)) / (n * 32.0 / (t1 - t0)));
    else
        printf("\n");
    if (op_int8_supported())
        printf("VPDPBUSD %.1f GOP/s (%.2f of FMA)\n", n / 4 * PEAK_ACC * 128.0 / (t3 - t2) * 1e-9,
               (n / 4 * 128.0 / (t3 - t2)) / (n * 32.0 / (t1 - t0)));
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    if (runs < 1 || runs > 1000) runs = 7;
    if (!op_bf16_supported() && !op_bf16_avx2_supported()) {
        printf("this CPU (or OS) lacks AVX512-BF16 and AVX2: nothing to compare\n");
        print_peaks();
        return 0;
    }
    int max_threads = cs_get_threads(), amx = op_bf16_amx_supported(), vnni = op_int8_supported();
    double *t32 = mem_alloc((size_t)runs, sizeof(double)), *t16 = mem_alloc((size_t)runs, sizeof(double));
    double *tamx = mem_alloc((size_t)runs, sizeof(double)), *t8 = mem_alloc((size_t)runs, sizeof(double));
    printf("y = x w^T + b, median of %d runs; fp32 = OpenBLAS sgemm via op_linear; "
           "ratios = fp32 time / bf16 or int8 time\n", runs);
    if (!op_bf16_supported()) printf("this CPU (or OS) lacks AVX512-BF16: bf16 = the AVX2 kernel\n");
    else if (!amx) printf("this CPU (or OS) lacks AMX-BF16 tiles: AVX512-BF16 only\n");
    if (!vnni) printf("this CPU (or OS) lacks AVX512-VNNI: no int8 column\n");
    printf("%-18s %5s %5s %5s %3s | %8s %7s | %8s %7s %6s | %8s %7s %6s | %8s %7s %6s\n", "shape",
           "M", "N", "K", "thr", "fp32 ms", "GFLOP/s", "bf16 ms", "GFLOP/s", "x fp32", "amx ms",
           "GFLOP/s", "x fp32", "int8 ms", "GOP/s", "x fp32");
    for (int threads = 1; threads <= 2 && threads <= max_threads; threads++) {
        cs_set_threads(threads);
        for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++) {
            const shape *s = &k_shapes[i];
            bench_shape(s, runs, amx, vnni, t32, t16, tamx, t8);
            double a = bench_median(t32, runs), c = bench_median(t16, runs);
            double gflop = 2.0 * s->M * s->N * s->K * 1e-9;
            printf("%-18s %5d %5d %5d %3d | %8.3f %7.1f | %8.3f %7.1f %5.2fx", s->what, s->M, s->N,
                   s->K, threads, a * 1e3, gflop / a, c * 1e3, gflop / c, a / c);
            if (amx) {
                double d = bench_median(tamx, runs);
                printf(" | %8.3f %7.1f %5.2fx", d * 1e3, gflop / d, a / d);
            } else
                printf(" | %8s %7s %6s", "-", "-", "-");
            if (vnni) {
                double d = bench_median(t8, runs);
                printf(" | %8.3f %7.1f %5.2fx", d * 1e3, gflop / d, a / d);
            }
            printf("\n");
        }
    }
    cs_set_threads(max_threads);
    print_peaks();
    cs_free(t32), cs_free(t16), cs_free(tamx), cs_free(t8);
    return 0;
}
