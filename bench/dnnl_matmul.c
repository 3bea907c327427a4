/* Issue 18, target 1: would pre-packed fp32 weights beat OpenBLAS on the
 * ViT-B/16 linear layers? OpenBLAS packs the weight matrix on every call;
 * oneDNN's matmul can take weights reordered once into its own blocked layout
 * ("format any"), which is what a load-time packing would give us.
 * Per shape y[M, N] = x[M, K] w[N, K]^T, measured interleaved in one process
 * (median of RUNS after a warm-up): op_linear (OpenBLAS sgemm, weights as
 * stored) and oneDNN matmul on weights reordered once, each as GFLOP/s and as
 * the ratio of its time to FLOPs / (2048^3 sgemm peak of this run).
 * Built only where libdnnl-dev is installed (an evaluation, not a dependency).
 * Usage: bench_dnnl_matmul [RUNS]   (default 9) */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include "base/base.h"
#include "clip_surgery.h"
#include "ops/ops.h"

#define DNNL_OK(call)                                                              \
    do {                                                                           \
        dnnl_status_t st_ = (call);                                                \
        if (st_ != dnnl_success) {                                                 \
            fprintf(stderr, "%s:%d: %s failed (%d)\n", __FILE__, __LINE__, #call, (int)st_); \
            exit(1);                                                               \
        }                                                                          \
    } while (0)

typedef struct shape {
    const char *what;
    int M, N, K;
} shape;

static const shape k_shapes[] = {
    {"224 qkv", 197, 2304, 768},  {"224 out", 197, 768, 768},  {"224 fc", 197, 3072, 768},
    {"224 proj", 197, 768, 3072}, {"512 qkv", 1025, 2304, 768}, {"512 out", 1025, 768, 768},
    {"512 fc", 1025, 3072, 768},  {"512 proj", 1025, 768, 3072},
};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A oneDNN matmul whose weights were reordered once from w[N, K] (row-major,
 * i.e. the K x N matrix in "ba" order) into the layout it prefers. */
typedef struct packed {
    dnnl_primitive_t mm;
    dnnl_memory_t src, wei, dst;
} packed;

static void packed_init(packed *p, dnnl_engine_t eng, dnnl_stream_t st, int M, int N, int K,
                        float *x, const float *w, float *y) {
    dnnl_dims_t xd = {M, K}, wd = {K, N}, yd = {M, N};
    dnnl_memory_desc_t xmd, wmd_any, wmd_user, ymd;
    DNNL_OK(dnnl_memory_desc_init_by_tag(&xmd, 2, xd, dnnl_f32, dnnl_ab));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&wmd_any, 2, wd, dnnl_f32, dnnl_format_tag_any));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&wmd_user, 2, wd, dnnl_f32, dnnl_ba));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&ymd, 2, yd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    DNNL_OK(dnnl_matmul_desc_init(&md, &xmd, &wmd_any, NULL, &ymd));
    dnnl_primitive_desc_t pd;
    DNNL_OK(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t user;
    DNNL_OK(dnnl_memory_create(&user, &wmd_user, eng, (void *)w));
    DNNL_OK(dnnl_memory_create(&p->wei, wmd, eng, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t reorder;
    DNNL_OK(dnnl_reorder_primitive_desc_create(&rpd, &wmd_user, eng, wmd, eng, NULL));
    DNNL_OK(dnnl_primitive_create(&reorder, rpd));
    dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, p->wei}};
    DNNL_OK(dnnl_primitive_execute(reorder, st, 2, rargs));
    DNNL_OK(dnnl_stream_wait(st));
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(user);
    DNNL_OK(dnnl_memory_create(&p->src, &xmd, eng, x));
    DNNL_OK(dnnl_memory_create(&p->dst, &ymd, eng, y));
    DNNL_OK(dnnl_primitive_create(&p->mm, pd));
    dnnl_primitive_desc_destroy(pd);
}

static void packed_run(const packed *p, dnnl_stream_t st) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_WEIGHTS, p->wei}, {DNNL_ARG_DST, p->dst}};
    DNNL_OK(dnnl_primitive_execute(p->mm, st, 3, args));
    DNNL_OK(dnnl_stream_wait(st));
}

static void packed_free(packed *p) {
    dnnl_primitive_destroy(p->mm);
    dnnl_memory_destroy(p->src);
    dnnl_memory_destroy(p->wei);
    dnnl_memory_destroy(p->dst);
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 9;
    if (runs < 1) runs = 1;
    dnnl_engine_t eng;
    dnnl_stream_t st;
    DNNL_OK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    DNNL_OK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    double peak = cs_gemm_peak_gflops(2048, 5);
    printf("sgemm 2048^3 peak %.1f GFLOP/s; ratio = time / (FLOPs / peak), median of %d interleaved runs\n",
           peak, runs);
    printf("%-9s %5s %5s %5s %12s %7s %12s %7s %8s\n", "shape", "M", "N", "K", "openblas GF/s", "ratio",
           "onednn GF/s", "ratio", "err");
    double *ta = malloc(sizeof(double) * (size_t)runs), *tb = malloc(sizeof(double) * (size_t)runs);
    for (size_t s = 0; s < sizeof k_shapes / sizeof *k_shapes; s++) {
        const shape *sh = &k_shapes[s];
        size_t nx = (size_t)sh->M * sh->K, nw = (size_t)sh->N * sh->K, ny = (size_t)sh->M * sh->N;
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *y0 = malloc(ny * 4), *y1 = malloc(ny * 4);
        for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 7919) % 23) * 0.01f - 0.1f;
        for (size_t i = 0; i < nw; i++) w[i] = (float)((i * 104729) % 31) * 0.01f - 0.15f;
        packed p;
        packed_init(&p, eng, st, sh->M, sh->N, sh->K, x, w, y1);
        op_linear(x, sh->M, sh->K, w, NULL, sh->N, y0); /* warm-up of both */
        packed_run(&p, st);
        for (int r = 0; r < runs; r++) {
            double t0 = cs_now();
            op_linear(x, sh->M, sh->K, w, NULL, sh->N, y0);
            double t1 = cs_now();
            packed_run(&p, st);
            tb[r] = cs_now() - t1;
            ta[r] = t1 - t0;
        }
        qsort(ta, (size_t)runs, sizeof *ta, cmp_double);
        qsort(tb, (size_t)runs, sizeof *tb, cmp_double);
        double err = 0;
        for (size_t i = 0; i < ny; i++) {
            double d = y0[i] > y1[i] ? y0[i] - y1[i] : y1[i] - y0[i];
            if (d > err) err = d;
        }
        double gflop = 2.0 * sh->M * sh->N * sh->K * 1e-9, ga = gflop / ta[runs / 2], gb = gflop / tb[runs / 2];
        printf("%-9s %5d %5d %5d %12.1f %7.2f %12.1f %7.2f %8.1e\n", sh->what, sh->M, sh->N, sh->K, ga,
               peak / ga, gb, peak / gb, err);
        packed_free(&p);
        free(x);
        free(w);
        free(y0);
        free(y1);
    }
    free(ta);
    free(tb);
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    return 0;
}
