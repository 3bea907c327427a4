#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "gemm_bf16.h"
#include "ops.h"

/* Set after the first product: OpenBLAS holds its buffers from then on
 * (op_gemm_ready). */
static int g_blas_ran;

void op_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    __atomic_store_n(&g_blas_ran, 1, __ATOMIC_RELAXED);
}

/* The threads that split a product's weight rows among themselves, each a
 * one-thread product on its slice, or 1 where the BLAS runs the product on
 * its own threads. Where the BLAS's kernels round a row by its neighbours
 * (OpenBLAS's Haswell/Zen sgemm, op_gemm_rows_independent), its own split
 * of the flat shapes of one image (few rows or pixels against the weights)
 * spins on its threads' hand-offs; elsewhere it was not measured, so it
 * stays with the BLAS. A call inside a parallel region stays on its thread. */
static int split_threads(int other, int max_other, int weight_rows) {
    int T = omp_in_parallel() ? 1 : omp_get_max_threads();
    return T > 1 && other <= max_other && weight_rows >= 64 * T && !op_gemm_rows_independent() ? T : 1;
}

/* Thread t's weight rows [*n0, *n1) of N, cut at multiples of 16 (whole
 * register tiles of the kernel). */
static void split_rows(int N, int t, int nt, int *n0, int *n1) {
    *n0 = (int)((long)N * t / nt) / 16 * 16;
    *n1 = t + 1 == nt ? N : (int)((long)N * (t + 1) / nt) / 16 * 16;
}

/* x[M, K] w[N, K]^T (+ beta y) into y, split over w's rows (the columns of
 * y) up to 512 rows of x: ViT-B/16 @224 on two threads went 1.30-1.41x ->
 * 1.12-1.22x FLOPs / sgemm peak (bench, alternated three times on an AVX2
 * EPYC); at 1025 rows (@512) it gained nothing, so larger M stay with the
 * BLAS. */
static void linear_product(int M, int N, int K, const float *x, const float *w, float beta, float *y) {
    int T = split_threads(M, 512, N);
    if (T > 1) {
#pragma omp parallel num_threads(T)
        {
            int n0, n1;
            split_rows(N, omp_get_thread_num(), omp_get_num_threads(), &n0, &n1);
            if (n1 > n0) op_gemm(0, 1, M, n1 - n0, K, 1.0f, x, K, w + (size_t)n0 * K, K, beta, y + n0, N);
        }
        return;
    }
    op_gemm(0, 1, M, N, K, 1.0f, x, K, w, K, beta, y, N);
}

/* Split over w's rows (the rows of y) up to 256 pixels: a ResNet's last two
 * stages at 224 (49 and 196 pixels; per call 5-20% faster, the 49-pixel
 * ones most). A pass on two threads, split against not alternated in one
 * process on an AVX2 EPYC: RN50 @224 0.90-0.98x the time, RN101 0.92-0.98x,
 * RN50x4 @288 0.97-0.99x. At 784 pixels the split gained nothing, at 3136
 * it lost, so those stay with the BLAS. */
void op_gemm_weights_left(int N, int P, int K, const float *w, const float *x, float beta, float *y) {
    int T = split_threads(P, 256, N);
    if (T > 1) {
#pragma omp parallel num_threads(T)
        {
            int n0, n1;
            split_rows(N, omp_get_thread_num(), omp_get_num_threads(), &n0, &n1);
            if (n1 > n0)
                op_gemm(0, 0, n1 - n0, P, K, 1.0f, w + (size_t)n0 * K, K, x, P, beta, y + (size_t)n0 * P, P);
        }
        return;
    }
    op_gemm(0, 0, N, P, K, 1.0f, w, K, x, P, beta, y, P);
}

void op_linear(const float *x, int M, int K, const float *w, const float *b, int N, float *y) {
    float beta = 0.0f;
    if (b) {
        for (int i = 0; i < M; i++) memcpy(y + (size_t)i * N, b, (size_t)N * sizeof *y);
        beta = 1.0f;
    }
    linear_product(M, N, K, x, w, beta, y);
}

void op_linear_accumulate(const float *x, int M, int K, const float *w, const float *b, int N,
                          float *y) {
    if (b)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) y[(size_t)i * N + j] += b[j];
    linear_product(M, N, K, x, w, 1.0f, y);
}

/* Eight floats as one value; GCC and Clang compile the arithmetic to one
 * AVX register op where there is one, to two SSE ops or scalars elsewhere. */
typedef float lanes8 __attribute__((vector_size(32)));

static lanes8 load8(const float *p) {
    lanes8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static float sum8(lanes8 v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

/* Outputs o and o + 1 (or o alone when last) of every row. */
static void few_rows_pair(const float *x, int M, int K, const float *w, const float *b, int N, int o,
                          float *y) {
    int two = o + 1 < N, K8 = K & ~7;
    const float *w0 = w + (size_t)o * K, *w1 = two ? w0 + K : w0;
    lanes8 a0[OP_FEW_ROWS] = {0}, a1[OP_FEW_ROWS] = {0};
    for (int k = 0; k < K8; k += 8) {
        lanes8 v0 = load8(w0 + k), v1 = load8(w1 + k);
        for (int i = 0; i < M; i++) {
            lanes8 xv = load8(x + (size_t)i * K + k);
            a0[i] += xv * v0;
            a1[i] += xv * v1;
        }
    }
    for (int i = 0; i < M; i++) {
        float s0 = sum8(a0[i]), s1 = sum8(a1[i]);
        for (int k = K8; k < K; k++) {
            s0 += x[(size_t)i * K + k] * w0[k];
            s1 += x[(size_t)i * K + k] * w1[k];
        }
        y[(size_t)i * N + o] = (b ? b[o] : 0.0f) + s0;
        if (two) y[(size_t)i * N + o + 1] = (b ? b[o + 1] : 0.0f) + s1;
    }
}

void op_linear_few_rows(const float *x, int M, int K, const float *w, const float *b, int N, float *y) {
    for (int i0 = 0; i0 < M; i0 += OP_FEW_ROWS) { /* more rows: in groups, each a pass over w */
        int m = M - i0 < OP_FEW_ROWS ? M - i0 : OP_FEW_ROWS;
        const float *xi = x + (size_t)i0 * K;
        float *yi = y + (size_t)i0 * N;
#pragma omp parallel for schedule(static) if ((size_t)N * K >= 65536)
        for (int o = 0; o < N; o += 2) few_rows_pair(xi, m, K, w, b, N, o, yi);
    }
}

/* Whether the BLAS rounds each row of a product the same whatever rows come
 * with it. OpenBLAS's SkylakeX sgemm does; its Haswell/Zen kernels (AVX2
 * machines) do not: a row of x w^T computed among 4 x 13 rows differs in
 * the last bits from the same row computed among 13. Tried once per
 * process on two small shapes (a fraction of a millisecond). */
static pthread_once_t g_rows_once = PTHREAD_ONCE_INIT;
static int g_rows_independent;

static int rows_agree(int T, int K, int N) {
    enum { BATCH = 4 };
    size_t nx = (size_t)BATCH * T * K, nw = (size_t)N * K, ny = (size_t)BATCH * T * N;
    float *x = mem_alloc(nx, sizeof(float)), *w = mem_alloc(nw, sizeof(float));
    float *all = mem_alloc(ny, sizeof(float)), *one = mem_alloc((size_t)T * N, sizeof(float));
    int same = 0; /* unknown (no memory): split, which is right either way */
    if (x && w && all && one) {
        uint32_t r = 12345;
        for (size_t i = 0; i < nx; i++) x[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) * 0x1p-24f - 0.5f;
        for (size_t i = 0; i < nw; i++) w[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) * 0x1p-24f - 0.5f;
        op_gemm(0, 1, BATCH * T, N, K, 1.0f, x, K, w, K, 0.0f, all, N);
        same = 1;
        for (int b = 0; b < BATCH && same; b++) {
            op_gemm(0, 1, T, N, K, 1.0f, x + (size_t)b * T * K, K, w, K, 0.0f, one, N);
            same = !memcmp(one, all + (size_t)b * T * N, sizeof(float) * (size_t)T * N);
        }
    }
    cs_free(x);
    cs_free(w);
    cs_free(all);
    cs_free(one);
    return same;
}

static void probe_rows(void) { g_rows_independent = rows_agree(13, 64, 48) && rows_agree(50, 256, 96); }

int op_gemm_rows_independent(void) {
    pthread_once(&g_rows_once, probe_rows);
    return g_rows_independent;
}

/* OpenBLAS takes a buffer of about 128 MB per thread at its first product
 * and, when malloc refuses it, retries forever (OpenBLAS 0.3.21: a process
 * under `ulimit -v` hangs in blas_memory_alloc; OpenMathLib/OpenBLAS#5289,
 * fixed in 0.3.30). Before the first product, then, the address space left
 * under RLIMIT_AS must hold those buffers; once a product has run they are
 * held and nothing needs checking. */
#define BLAS_BUFFER_BYTES ((size_t)130 << 20)

static size_t address_space_used(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

cs_status op_gemm_ready(void) {
    struct rlimit lim;
    if (__atomic_load_n(&g_blas_ran, __ATOMIC_RELAXED) || getrlimit(RLIMIT_AS, &lim) != 0 ||
        lim.rlim_cur == RLIM_INFINITY)
        return CS_OK;
    size_t used = address_space_used(), need = BLAS_BUFFER_BYTES * (size_t)omp_get_max_threads();
    size_t left = lim.rlim_cur > used ? (size_t)lim.rlim_cur - used : 0;
    if (left < need)
        return error_set(CS_ERR_NOMEM, "the address-space limit (ulimit -v) leaves %zu MB, and OpenBLAS needs "
                         "%zu MB for its buffers (about 128 MB a thread): raise the limit or use fewer threads",
                         left >> 20, need >> 20);
    return CS_OK;
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
