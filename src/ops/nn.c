#include <math.h>
#include "ops.h"

/* exp and erf over 16 (AVX-512) or 8 (AVX2) floats at a time through
 * glibc's libmvec, the vector functions GCC itself calls under -ffast-math
 * (which we do not use: the causal mask needs infinities). Elsewhere the
 * scalar ones. */
#if defined(__AVX512F__)
#include <immintrin.h>
typedef __m512 vec;
__m512 _ZGVeN16v_expf(__m512 x);
__m512 _ZGVeN16v_erff(__m512 x);
#define VEC_WIDTH 16
#define vec_load _mm512_loadu_ps
#define vec_store _mm512_storeu_ps
#define vec_set1 _mm512_set1_ps
#define vec_mul _mm512_mul_ps
#define vec_add _mm512_add_ps
#define vec_exp _ZGVeN16v_expf
#define vec_erf _ZGVeN16v_erff
#elif defined(__AVX2__)
/* 8 wide: on an AVX2-only CPU glibc's scalar erff took 40 ns a value
 * against 1.6 for this one, expf 7-12 ns against 1.1 (one core, 2^16
 * values in [-6, 2]). */
#include <immintrin.h>
typedef __m256 vec;
__m256 _ZGVdN8v_expf(__m256 x);
__m256 _ZGVdN8v_erff(__m256 x);
#define VEC_WIDTH 8
#define vec_load _mm256_loadu_ps
#define vec_store _mm256_storeu_ps
#define vec_set1 _mm256_set1_ps
#define vec_mul _mm256_mul_ps
#define vec_add _mm256_add_ps
#define vec_exp _ZGVdN8v_expf
#define vec_erf _ZGVdN8v_erff
#endif

#ifdef VEC_WIDTH
static void exp_block(float *x) { vec_store(x, vec_exp(vec_load(x))); }
/* x * 0.5 * (1 + erf(x / sqrt 2)) */
static void gelu_block(float *x) {
    vec v = vec_load(x), e = vec_erf(vec_mul(v, vec_set1((float)M_SQRT1_2)));
    vec_store(x, vec_mul(vec_mul(v, vec_set1(0.5f)), vec_add(vec_set1(1.0f), e)));
}
#else
#define VEC_WIDTH 1
static void exp_block(float *x) { x[0] = expf(x[0]); }
static void gelu_block(float *x) { x[0] = x[0] * 0.5f * (1.0f + erff(x[0] * (float)M_SQRT1_2)); }
#endif

void op_exp_inplace(float *x, size_t n) {
    size_t i = 0;
    for (; i + VEC_WIDTH <= n; i += VEC_WIDTH) exp_block(x + i);
    for (; i < n; i++) x[i] = expf(x[i]);
}

/* Small inputs (a few decoder tokens) stay on one thread: waking the team
 * costs more than the work, and much more on a busy machine. */
#define PARALLEL_MIN 32768

void op_layer_norm(const float *x, int rows, int dim, const float *w, const float *b, float eps,
                   float *y) {
#pragma omp parallel for schedule(static) if ((size_t)rows * dim > PARALLEL_MIN)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *yr = y + (size_t)r * dim;
        /* Two passes in float: mean, then the variance about it (as PyTorch). */
        float mean = 0.0f;
#pragma omp simd reduction(+ : mean)
        for (int i = 0; i < dim; i++) mean += xr[i];
        mean /= (float)dim;
        float var = 0.0f;
#pragma omp simd reduction(+ : var)
        for (int i = 0; i < dim; i++) {
            float d = xr[i] - mean;
            var += d * d;
        }
        var /= (float)dim;
        float inv = 1.0f / sqrtf(var + eps);
        for (int i = 0; i < dim; i++) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
    }
}

/* In chunks that stay in L1: e = exp(-1.702 x), then x / (1 + e). */
void op_quick_gelu(float *x, size_t n) {
    enum { CHUNK = 1024 };
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < chunks; c++) {
        float e[CHUNK], *xc = x + c * CHUNK;
        size_t len = n - c * CHUNK < CHUNK ? n - c * CHUNK : CHUNK;
        for (size_t i = 0; i < len; i++) e[i] = -1.702f * xc[i];
        op_exp_inplace(e, len);
        for (size_t i = 0; i < len; i++) xc[i] = xc[i] / (1.0f + e[i]);
    }
}

void op_gelu(float *x, size_t n) {
    size_t blocks = n / VEC_WIDTH;
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (size_t k = 0; k < blocks; k++) gelu_block(x + k * VEC_WIDTH);
    for (size_t i = blocks * VEC_WIDTH; i < n; i++) x[i] = x[i] * 0.5f * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

/* Pixel by pixel, with the channel sums of a block of pixels accumulated
 * row by row so the reads stay contiguous. */
void op_layer_norm_channels(float *x, int C, int HW, const float *w, const float *b, float eps) {
    enum { BLOCK = 256 };
    int blocks = (HW + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)C * HW > PARALLEL_MIN)
    for (int blk = 0; blk < blocks; blk++) {
        int p0 = blk * BLOCK, n = HW - p0 < BLOCK ? HW - p0 : BLOCK;
        float mean[BLOCK], var[BLOCK];
        for (int i = 0; i < n; i++) mean[i] = var[i] = 0.0f;
        for (int c = 0; c < C; c++)
            for (int i = 0; i < n; i++) mean[i] += x[(size_t)c * HW + p0 + i];
        for (int i = 0; i < n; i++) mean[i] /= (float)C;
        for (int c = 0; c < C; c++)
            for (int i = 0; i < n; i++) {
                float d = x[(size_t)c * HW + p0 + i] - mean[i];
                var[i] += d * d;
            }
        for (int i = 0; i < n; i++) var[i] = 1.0f / sqrtf(var[i] / (float)C + eps);
        for (int c = 0; c < C; c++)
            for (int i = 0; i < n; i++) {
                float *v = &x[(size_t)c * HW + p0 + i];
                *v = (*v - mean[i]) * var[i] * w[c] + b[c];
            }
    }
}

/* A row's max and sum. OpenMP SIMD reductions vectorize them without
 * -ffast-math (which would also drop the infinities of masks); below 16
 * floats plain loops are faster, as the vector reduction's masked setup and
 * horizontal step cost more than the row (the SAM decoder's rows of 7 keys:
 * 2.6x faster softmax). */
#define SHORT_ROW 16

static float row_max(const float *x, int n) {
    float m = -INFINITY;
    if (n < SHORT_ROW) {
        for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
        return m;
    }
#pragma omp simd reduction(max : m)
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static float row_sum(const float *x, int n) {
    float sum = 0.0f;
    if (n < SHORT_ROW) {
        for (int i = 0; i < n; i++) sum += x[i];
        return sum;
    }
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < n; i++) sum += x[i];
    return sum;
}

/* Short rows (the decoder's image tokens over a few prompt tokens per head)
 * go in blocks of about 256 floats, so that exp runs over long spans of the
 * vector function. */
void op_softmax_rows(float *x, int rows, int cols) {
    int per_block = cols < 256 ? 256 / cols : 1, blocks = (rows + per_block - 1) / per_block;
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PARALLEL_MIN)
    for (int blk = 0; blk < blocks; blk++) {
        int r0 = blk * per_block, r1 = r0 + per_block < rows ? r0 + per_block : rows;
        for (int r = r0; r < r1; r++) {
            float *xr = x + (size_t)r * cols, m = row_max(xr, cols);
            for (int i = 0; i < cols; i++) xr[i] -= m;
        }
        op_exp_inplace(x + (size_t)r0 * cols, (size_t)(r1 - r0) * cols);
        for (int r = r0; r < r1; r++) {
            float *xr = x + (size_t)r * cols, inv = 1.0f / row_sum(xr, cols);
            for (int i = 0; i < cols; i++) xr[i] *= inv;
        }
    }
}

/* Per row: the running max and sum of each group are lanes of one vector
 * (the inner loops run over groups, contiguous), in the order of n as
 * op_softmax_rows sums a short row. */
void op_softmax_groups(float *x, int rows, int n, int groups) {
    enum { MAX_GROUPS = 64 };
    size_t row = (size_t)n * groups;
#pragma omp parallel for schedule(static) if ((size_t)rows * row > PARALLEL_MIN)
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * row, acc[MAX_GROUPS];
        for (int g0 = 0; g0 < groups; g0 += MAX_GROUPS) {
            int G = groups - g0 < MAX_GROUPS ? groups - g0 : MAX_GROUPS;
            for (int g = 0; g < G; g++) acc[g] = -INFINITY;
            for (int j = 0; j < n; j++)
                for (int g = 0; g < G; g++) {
                    float v = xr[(size_t)j * groups + g0 + g];
                    acc[g] = v > acc[g] ? v : acc[g];
                }
            for (int j = 0; j < n; j++)
                for (int g = 0; g < G; g++) xr[(size_t)j * groups + g0 + g] -= acc[g];
        }
        op_exp_inplace(xr, row);
        for (int g0 = 0; g0 < groups; g0 += MAX_GROUPS) {
            int G = groups - g0 < MAX_GROUPS ? groups - g0 : MAX_GROUPS;
            for (int g = 0; g < G; g++) acc[g] = 0.0f;
            for (int j = 0; j < n; j++)
                for (int g = 0; g < G; g++) acc[g] += xr[(size_t)j * groups + g0 + g];
            for (int g = 0; g < G; g++) acc[g] = 1.0f / acc[g];
            for (int j = 0; j < n; j++)
                for (int g = 0; g < G; g++) xr[(size_t)j * groups + g0 + g] *= acc[g];
        }
    }
}

void op_l2_normalize_rows(float *x, int rows, int dim) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * dim;
        double ss = 0.0;
        for (int i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        if (ss > 0) {
            float inv = (float)(1.0 / sqrt(ss));
            for (int i = 0; i < dim; i++) xr[i] *= inv;
        }
    }
}

void op_add(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}
