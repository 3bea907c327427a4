/* Issue 18, target 1: the library's pre-packed fp32 linear layer
 * (op_linear_f32: oneDNN's matmul on weights written once into its blocked
 * layout, src/ops/gemm_f32.c) against op_linear (OpenBLAS sgemm, which packs
 * the weight matrix on every call) on the ViT-B/16 shapes.
 * Per shape y[M, N] = x[M, K] w[N, K]^T, measured interleaved in one process
 * (median of RUNS after a warm-up), each as GFLOP/s and as the ratio of its
 * time to FLOPs / (2048^3 sgemm peak of this run), with the largest
 * difference between the two outputs.
 * Built where the library is built with oneDNN (-DCS_ONEDNN=ON).
 * Usage: bench_dnnl_matmul [RUNS]   (default 9) */
#include <stdio.h>
#include <stdlib.h>
#include "base/base.h"
#include "clip_surgery.h"
#include "median.h"
#include "ops/gemm_f32.h"
#include "ops/ops.h"

typedef struct shape {
    const char *what;
    int M, N, K;
} shape;

static const shape k_shapes[] = {
    {"224 qkv", 197, 2304, 768},  {"224 out", 197, 768, 768},  {"224 fc", 197, 3072, 768},
    {"224 proj", 197, 768, 3072}, {"512 qkv", 1025, 2304, 768}, {"512 out", 1025, 768, 768},
    {"512 fc", 1025, 3072, 768},  {"512 proj", 1025, 768, 3072},
};

static void *must(void *p) {
    if (!p) {
        fprintf(stderr, "bench_dnnl_matmul: %s\n", cs_last_error());
        exit(1);
    }
    return p;
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 9;
    if (runs < 1) runs = 1;
    if (!op_f32_pack_available()) {
        fprintf(stderr, "bench_dnnl_matmul: the library has no oneDNN engine (configure with -DCS_ONEDNN=ON)\n");
        return 1;
    }
    double peak = cs_gemm_peak_gflops(2048, 5);
    printf("sgemm 2048^3 peak %.1f GFLOP/s; ratio = time / (FLOPs / peak), median of %d interleaved runs\n",
           peak, runs);
    printf("%-9s %5s %5s %5s %12s %7s %12s %7s %8s\n", "shape", "M", "N", "K", "openblas GF/s", "ratio",
           "onednn GF/s", "ratio", "err");
    double *ta = must(malloc(sizeof(double) * (size_t)runs)), *tb = must(malloc(sizeof(double) * (size_t)runs));
    for (size_t s = 0; s < sizeof k_shapes / sizeof *k_shapes; s++) {
        const shape *sh = &k_shapes[s];
        size_t nx = (size_t)sh->M * sh->K, nw = (size_t)sh->N * sh->K, ny = (size_t)sh->M * sh->N;
        float *x = must(malloc(nx * 4)), *w = must(malloc(nw * 4)), *y0 = must(malloc(ny * 4)),
              *y1 = must(malloc(ny * 4));
        for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 7919) % 23) * 0.01f - 0.1f;
        for (size_t i = 0; i < nw; i++) w[i] = (float)((i * 104729) % 31) * 0.01f - 0.15f;
        op_f32_weights p;
        if (op_f32_pack(w, sh->N, sh->K, &p) != CS_OK) must(NULL);
        op_linear(x, sh->M, sh->K, w, NULL, sh->N, y0); /* warm-up of both (and the primitive made) */
        if (op_linear_f32(x, sh->M, sh->K, &p, NULL, 0, y1) != CS_OK) must(NULL);
        for (int r = 0; r < runs; r++) {
            double t0 = cs_now();
            op_linear(x, sh->M, sh->K, w, NULL, sh->N, y0);
            double t1 = cs_now();
            op_linear_f32(x, sh->M, sh->K, &p, NULL, 0, y1);
            tb[r] = cs_now() - t1;
            ta[r] = t1 - t0;
        }
        double err = 0;
        for (size_t i = 0; i < ny; i++) {
            double d = y0[i] > y1[i] ? y0[i] - y1[i] : y1[i] - y0[i];
            if (d > err) err = d;
        }
        double gflop = 2.0 * sh->M * sh->N * sh->K * 1e-9;
        double ga = gflop / bench_median(ta, runs), gb = gflop / bench_median(tb, runs);
        printf("%-9s %5d %5d %5d %12.1f %7.2f %12.1f %7.2f %8.1e\n", sh->what, sh->M, sh->N, sh->K, ga,
               peak / ga, gb, peak / gb, err);
        op_f32_free(&p);
        free(x);
        free(w);
        free(y0);
        free(y1);
    }
    free(ta);
    free(tb);
    return 0;
}
