#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "gemm_bf16.h"
#include "ops.h"

void op_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void op_linear(const float *x, int M, int K, const float *w, const float *b, int N, float *y) {
    float beta = 0.0f;
    if (b) {
        for (int i = 0; i < M; i++) memcpy(y + (size_t)i * N, b, (size_t)N * sizeof *y);
        beta = 1.0f;
    }
    op_gemm(0, 1, M, N, K, 1.0f, x, K, w, K, beta, y, N);
}

void op_linear_accumulate(const float *x, int M, int K, const float *w, const float *b, int N,
                          float *y) {
    if (b)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) y[(size_t)i * N + j] += b[j];
    op_gemm(0, 1, M, N, K, 1.0f, x, K, w, K, 1.0f, y, N);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* c = a b (sgemm), or c = a w^T through the bf16 kernel with w = b packed
 * (the same FLOPs: w^T of a square matrix is as good as b). */
static void peak_run(int n, const float *a, const float *b, const op_bf16_weights *w, float *c) {
    if (w) op_linear_bf16(a, n, n, w, NULL, 0, c);
    else op_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
}

/* The median rate of `runs` n^3 products after a warm-up, GFLOP/s; bf16:
 * through op_linear_bf16 with the weights packed beforehand (as the model's
 * are), else sgemm. 0 when out of memory. */
static double peak_gflops(int n, int runs, int bf16) {
    size_t nn = (size_t)n * n;
    float *a = mem_alloc(nn, sizeof(float)), *b = mem_alloc(nn, sizeof(float)), *c = mem_alloc(nn, sizeof(float));
    double *t = mem_alloc((size_t)runs, sizeof(double)), peak = 0;
    op_bf16_weights w = {0};
    int ok = a && b && c && t && runs > 0;
    if (ok)
        for (size_t i = 0; i < nn; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    if (ok && bf16) ok = op_bf16_pack(b, n, n, &w) == CS_OK;
    if (ok) {
        const op_bf16_weights *wp = bf16 ? &w : NULL;
        peak_run(n, a, b, wp, c); /* warm-up */
        for (int r = 0; r < runs; r++) {
            double t0 = cs_now();
            peak_run(n, a, b, wp, c);
            t[r] = cs_now() - t0;
        }
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        peak = 2.0 * n * n * (double)n / t[runs / 2] * 1e-9;
    }
    op_bf16_free(&w);
    cs_free(a);
    cs_free(b);
    cs_free(c);
    cs_free(t);
    return peak;
}

double cs_gemm_peak_gflops(int n, int runs) { return peak_gflops(n, runs, 0); }

double cs_gemm_bf16_peak_gflops(int n, int runs) { return peak_gflops(n, runs, 1); }
