/* Layer 2, the optional bf16 linear layer (DESIGN.md sections 5 and 6): our
 * own kernels, since Debian's OpenBLAS does not export cblas_sbgemm.
 * Weights are rounded to bf16 and packed once at load; activations are
 * rounded on the fly; products are accumulated in fp32 and the output is
 * fp32. Four kernels share the packed layout, chosen at run time: AMX-BF16
 * tiles (TDPBF16PS) where the CPU has them and the OS grants the process
 * the tile state, else AVX512-BF16 (VDPBF16PS), else AVX2 with FMA (each
 * weight widened to fp32 in registers), else a portable C kernel (any CPU;
 * slow); all the same numbers up to the summation order.
 * Internal header. */
#ifndef CS_OPS_GEMM_BF16_H
#define CS_OPS_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>
#include "clip_surgery.h"

/* Output columns per packed weight panel (two 16-float vectors). */
#define OP_BF16_NR 32

/* Pairs of k per stored panel are padded to a multiple of this: an AMX
 * tile holds 16 pairs (rows of B), and whole tiles are loaded. */
#define OP_BF16_KPAD 16

/* w [N, K] in bf16, as panels of OP_BF16_NR rows of w (output columns).
 * Within a panel, for each pair of k (2q, 2q + 1), the NR columns' two
 * values sit side by side: element (n, k) of panel p = n / NR is at
 * data[((p * pairs_pad + k / 2) * NR + n % NR) * 2 + k % 2]. K is padded
 * to 2 * pairs_pad and N to a multiple of NR with zeros. */
typedef struct op_bf16_weights {
    int N, K;
    int pairs;      /* (K + 1) / 2 */
    int pairs_pad;  /* pairs rounded up to OP_BF16_KPAD: the panel length */
    int panels;     /* ceil(N / NR) */
    uint16_t *data; /* panels * pairs_pad * NR * 2 values, 64-byte aligned */
    int borrowed;   /* data lies in a weight file's map (op_bf16_view): not freed */
} op_bf16_weights;

/* 1 when the CPU has AVX512F, AVX512BW and AVX512_BF16 and the OS saves
 * the ZMM and mask registers (XGETBV); cached after the first call. */
int op_bf16_supported(void);

/* 1 when op_linear_bf16 can use AMX-BF16: op_bf16_supported(), CPUID's
 * AMX-TILE and AMX-BF16, the OS enabling tile state (XCR0) and granting
 * this process the tile data (arch_prctl ARCH_REQ_XCOMP_PERM, asked once,
 * the first call). Cached. */
int op_bf16_amx_supported(void);

/* 1 when the CPU has AVX2 and FMA and the OS saves the ymm registers: the
 * AVX2 kernel, and the vector path of packing, run. */
int op_bf16_avx2_supported(void);

/* For tests and benchmarks only: which kernel op_linear_bf16 uses.
 * AUTO (the default) takes AMX where op_bf16_amx_supported(), else
 * AVX512 where op_bf16_supported(), else AVX2 where
 * op_bf16_avx2_supported(), else the portable kernel; AVX512 forces the
 * VDPBF16PS kernel; AMX asks for the tile kernel; AVX2 for the AVX2 kernel
 * even where AVX512-BF16 is there; each falls back where unsupported.
 * PORTABLE forces the C kernel on any CPU. Process
 * wide; set it while no other thread is inside op_linear_bf16. */
enum {
    OP_BF16_PATH_AUTO = 0,
    OP_BF16_PATH_AVX512 = 1,
    OP_BF16_PATH_AMX = 2,
    OP_BF16_PATH_PORTABLE = 3,
    OP_BF16_PATH_AVX2 = 4
};
void op_bf16_force_path(int path);

/* fp32 -> bf16 with round to nearest even, the way VCVTNE2PS2BF16 does it:
 * NaNs stay (quiet) NaNs, denormal inputs become signed zero. */
uint16_t op_bf16_from_float(float f);
float op_bf16_to_float(uint16_t h);

/* Bytes op_bf16_pack allocates for w [N, K] (0 on overflow). */
size_t op_bf16_packed_bytes(int N, int K);

/* Round and pack w [N, K] (PyTorch's Linear layout). On failure *out is
 * zeroed and the status says why. Free with op_bf16_free. */
cs_status op_bf16_pack(const float *w, int N, int K, op_bf16_weights *out);
/* The same from bf16 bits (a BF16 weight file's tensor, w only 2-byte
 * aligned or less): the bits op_bf16_pack gives for their fp32 widening,
 * with no fp32 copy. */
cs_status op_bf16_pack_bits(const void *w, int N, int K, op_bf16_weights *out);
void op_bf16_free(op_bf16_weights *w);

/* *out over N x K weights already in the packed layout (a packed weight
 * file's tensor, op_bf16_packed_bytes(N, K) bytes at panels): used in
 * place where panels is 64-byte aligned (out->borrowed), else copied into
 * an aligned buffer. */
cs_status op_bf16_view(const void *panels, int N, int K, op_bf16_weights *out);

/* The inverse of packing: out[n * K + k] (fp32) from N x K packed at panels
 * (any alignment). */
void op_bf16_unpack(const void *panels, int N, int K, float *out);

/* *out describes N x K packed in data (op_bf16_packed_bytes(N, K) bytes),
 * as op_bf16_pack lays it out. */
void op_bf16_layout(int N, int K, uint16_t *data, op_bf16_weights *out);

/* Pack an N x K operand whose element (n, k) is w[n * ldn + k * ldk] into
 * the caller's data (op_bf16_packed_bytes(N, K) bytes, 64-byte aligned),
 * on this thread, no allocation: for operands that change every call
 * (attention's keys, and its values transposed). */
void op_bf16_pack_strided(const float *w, size_t ldn, size_t ldk, int N, int K, uint16_t *data,
                          op_bf16_weights *out);

/* y[M, N] = x[M, K] w[N, K]^T + b, or y += ... with accumulate (b may be
 * NULL); N and K come from w. x is rounded to bf16, sums are fp32.
 * Threads: omp_get_max_threads(), or one inside a parallel region; the
 * result does not depend on the thread count (but the two kernels sum in
 * different orders, so AMX and AVX512 differ in the last bits).
 * No heap allocation. */
void op_linear_bf16(const float *x, int M, int K, const op_bf16_weights *w, const float *b,
                    int accumulate, float *y);

/* The same, then y = max(y, 0) (after the accumulation), in the kernel's
 * store: a convolution and the ReLU after it in one pass over y. */
void op_linear_bf16_relu(const float *x, int M, int K, const op_bf16_weights *w, const float *b,
                         int accumulate, float *y);

#endif
