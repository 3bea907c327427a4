#include <cblas.h>
#include <string.h>
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
