/* Speed of the fp32 attention core (op_attention, 12 heads of 64 as in
 * ViT-B and its text tower) with its tile products through OpenBLAS
 * (op_gemm) and through the AVX2 tile kernel, interleaved run by run in one
 * process, at the token counts the models use: 77 (the text tower, causal),
 * 197 (ViT-B/16 at 224), 1025 (at 512) and 4096 (SAM's global attention).
 * Usage: bench_attention [RUNS]   (default 31; the median of RUNS after a warm-up)
 * Prints ms, GFLOP/s (the two products' multiply-adds x 2) and the time
 * against FLOPs / the sgemm peak measured in the same run (2048^3, median of
 * 5), the speed-up of the kernel, and the peak RSS. Without AVX2 both
 * columns are OpenBLAS. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include "base/base.h"
#include "clip_surgery.h"
#include "ops/ops.h"
#include "median.h"

enum { WIDTH = 768, HEADS = 12 };

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 31;
    if (runs < 1 || runs > 10000) {
        fprintf(stderr, "usage: bench_attention [RUNS]   (1..10000, default 31)\n");
        return 2;
    }
    static const struct {
        int T, causal;
    } cases[] = {{77, 1}, {197, 0}, {1025, 0}, {4096, 0}};
    double peak = cs_gemm_peak_gflops(2048, 5);
    printf("sgemm peak (2048^3, median of 5): %.1f GFLOP/s\n", peak);
    printf("%6s %6s %14s %9s %14s %9s %8s\n", "tokens", "causal", "OpenBLAS ms", "x peak", "tile kernel ms",
           "x peak", "speed-up");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int T = cases[c].T;
        size_t nq = (size_t)T * 3 * WIDTH;
        float *qkv = mem_alloc(nq, sizeof(float)), *out = mem_alloc((size_t)T * WIDTH, sizeof(float));
        float *scratch = mem_alloc(op_attention_scratch(T, WIDTH / HEADS), sizeof(float));
        double *t[2] = {mem_alloc((size_t)runs, sizeof(double)), mem_alloc((size_t)runs, sizeof(double))};
        if (!qkv || !out || !scratch || !t[0] || !t[1]) {
            fprintf(stderr, "bench_attention: %s\n", cs_last_error());
            return 1;
        }
        for (size_t i = 0; i < nq; i++) qkv[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
        op_attention_spec spec = {OP_ATTN_QK, cases[c].causal, NULL, 0.0f, NULL, 0};
        for (int r = -1; r < runs; r++) /* run -1: the warm-up */
            for (int path = 0; path < 2; path++) {
                op_attention_tile_kernel(path);
                double t0 = 1e3 * cs_now();
                op_attention(qkv, T, WIDTH, HEADS, &spec, scratch, out);
                if (r >= 0) t[path][r] = 1e3 * cs_now() - t0;
            }
        op_attention_tile_kernel(-1);
        /* q k^T and P v: T x T x W multiply-adds each, half of them when causal */
        double gflop = 4.0 * T * T * WIDTH * (cases[c].causal ? 0.5 : 1.0) * 1e-9;
        double ms[2] = {bench_median(t[0], runs), bench_median(t[1], runs)};
        printf("%6d %6d %14.3f %9.2f %14.3f %9.2f %8.2f\n", T, cases[c].causal, ms[0], ms[0] / (gflop / peak * 1e3),
               ms[1], ms[1] / (gflop / peak * 1e3), ms[0] / ms[1]);
        cs_free(qkv);
        cs_free(out);
        cs_free(scratch);
        cs_free(t[0]);
        cs_free(t[1]);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS %ld MB\n", ru.ru_maxrss / 1024);
    return 0;
}
