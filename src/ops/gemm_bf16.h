/* Layer 2, the optional bf16 linear layer (DESIGN.md sections 5 and 6): our
 * own AVX512-BF16 kernel, since Debian's OpenBLAS does not export
 * cblas_sbgemm. Weights are rounded to bf16 and packed once at load;
 * activations are rounded on the fly; products are accumulated in fp32
 * (VDPBF16PS) and the output is fp32. Call op_linear_bf16 only where
 * op_bf16_supported() says the CPU and OS allow it; packing and the scalar
 * rounding helpers work on any CPU. Internal header. */
#ifndef CS_OPS_GEMM_BF16_H
#define CS_OPS_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>
#include "clip_surgery.h"

/* Output columns per packed weight panel (two 16-float vectors). */
#define OP_BF16_NR 32

/* w [N, K] in bf16, as panels of OP_BF16_NR rows of w (output columns).
 * Within a panel, for each pair of k (2q, 2q + 1), the NR columns' two
 * values sit side by side: element (n, k) of panel p = n / NR is at
 * data[((p * pairs + k / 2) * NR + n % NR) * 2 + k % 2]. K is padded to
 * even and N to a multiple of NR with zeros. */
typedef struct op_bf16_weights {
    int N, K;
    int pairs;      /* (K + 1) / 2 */
    int panels;     /* ceil(N / NR) */
    uint16_t *data; /* panels * pairs * NR * 2 values, 64-byte aligned */
} op_bf16_weights;

/* 1 when the CPU has AVX512F, AVX512BW and AVX512_BF16 and the OS saves
 * the ZMM and mask registers (XGETBV); cached after the first call. */
int op_bf16_supported(void);

/* fp32 -> bf16 with round to nearest even, the way VCVTNE2PS2BF16 does it:
 * NaNs stay (quiet) NaNs, denormal inputs become signed zero. */
uint16_t op_bf16_from_float(float f);
float op_bf16_to_float(uint16_t h);

/* Bytes op_bf16_pack allocates for w [N, K] (0 on overflow). */
size_t op_bf16_packed_bytes(int N, int K);

/* Round and pack w [N, K] (PyTorch's Linear layout). On failure *out is
 * zeroed and the status says why. Free with op_bf16_free. */
cs_status op_bf16_pack(const float *w, int N, int K, op_bf16_weights *out);
void op_bf16_free(op_bf16_weights *w);

/* y[M, N] = x[M, K] w[N, K]^T + b, or y += ... with accumulate (b may be
 * NULL); N and K come from w. x is rounded to bf16, sums are fp32.
 * Threads: omp_get_max_threads(), or one inside a parallel region.
 * Precondition: op_bf16_supported(). No heap allocation. */
void op_linear_bf16(const float *x, int M, int K, const op_bf16_weights *w, const float *b,
                    int accumulate, float *y);

#endif
