/* Layer 2, pre-packed fp32 linear layers: oneDNN's matmul on weights
 * reordered once into the layout its kernel reads ("format any"), instead
 * of OpenBLAS's sgemm, which re-packs the weight matrix on every call (at
 * 197 rows, a ViT-B/16 image at 224, that costs 10-35% of the layer).
 * Only where the library is built with oneDNN (CMake option CS_ONEDNN,
 * CS_HAVE_DNNL); elsewhere op_f32_pack_available() is 0 and the layers stay
 * on op_linear. The same fp32 products, summed in another order: results
 * differ from op_linear by fp32 rounding only. Internal header. */
#ifndef CS_OPS_GEMM_F32_H
#define CS_OPS_GEMM_F32_H

#include "clip_surgery.h"

struct f32_pack; /* gemm_f32.c: the reordered weights and their primitives */

/* w [N, K] reordered for oneDNN's matmul (pack NULL: not packed). */
typedef struct op_f32_weights {
    struct f32_pack *pack;
} op_f32_weights;

/* 1 when built with oneDNN and its CPU engine could be created. */
int op_f32_pack_available(void);

/* 1 where the models pack their fp32 linear weights: oneDNN available and
 * the CPU has AVX-512. On an AVX2-only CPU oneDNN's fp32 matmul is its
 * "gemm:jit" kernel, measured no faster than OpenBLAS on ViT-B/16's shapes
 * (the MLP's first layer at 197 rows half as fast) and with more working
 * memory (bench_dnnl_matmul; README, Performance). */
int op_f32_pack_pays(void);

/* Reorder w [N, K] (PyTorch's Linear layout) into *out. On failure *out is
 * zeroed and the status says why. Free with op_f32_free. */
cs_status op_f32_pack(const float *w, int N, int K, op_f32_weights *out);
void op_f32_free(op_f32_weights *w);

/* Bytes the packed copy of w holds. */
size_t op_f32_packed_bytes(const op_f32_weights *w);

/* y[M, N] = x[M, K] w[N, K]^T + b, or y += ... with accumulate (b may be
 * NULL); N and K come from w. The matmul primitive of each (M, bias,
 * accumulate) is made on first use and kept with w (the last few row
 * counts): the first call for a new M costs the primitive's creation.
 * Threads: oneDNN's OpenMP (omp_get_max_threads(); one inside a parallel
 * region). Fails only when a new primitive cannot be made (memory). */
cs_status op_linear_f32(const float *x, int M, int K, const op_f32_weights *w, const float *b,
                        int accumulate, float *y);

#endif
