/* What the AVX2 kernels share (the bf16 kernel in gemm_bf16.c, the fp32
 * attention tiles in attention.c): the target attribute that lets one
 * function use AVX2 and FMA in a file compiled for any x86-64, and the lane
 * mask of a ragged vector. Callers check op_bf16_avx2_supported() first.
 * Internal header. */
#ifndef CS_OPS_AVX2_H
#define CS_OPS_AVX2_H

#include <immintrin.h>

#define AVX2_TARGET __attribute__((target("avx2,fma")))

/* Lanes 0..n-1 of 8 set (n may be <= 0 or >= 8). */
AVX2_TARGET static inline __m256i lanes_below(int n) {
    int c = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#endif
