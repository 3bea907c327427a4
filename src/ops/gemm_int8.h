/* Layer 2, the optional int8 linear layer (DESIGN.md sections 5 and 6):
 * weights quantized per output channel (row of w) to symmetric int8,
 * scale = max |w_row| / 127, packed once at load; activations quantized at
 * run time per row of x (per token) the same way; integer products summed
 * in int32, then dequantized with x_scale[row] * w_scale[col] into fp32
 * plus the bias. Two kernels share the packed layout: AVX512-VNNI
 * (VPDPBUSD, 64 byte products per instruction) where the CPU has it, else
 * a portable C kernel. Both compute the same integer sums and the same
 * float operations on them, so their outputs are identical bit for bit.
 * Internal header. */
#ifndef CS_OPS_GEMM_INT8_H
#define CS_OPS_GEMM_INT8_H

#include <stddef.h>
#include <stdint.h>
#include "clip_surgery.h"

/* Output columns per packed weight panel (two vectors of 16 int32 sums). */
#define OP_INT8_NR 32

/* The longest row (K) the kernels take: one tile of activations (14 rows
 * of K bytes) lives on the stack, no heap per call. */
#define OP_INT8_MAX_K 8192

/* w [N, K] in int8, as panels of OP_INT8_NR rows of w (output columns).
 * Within a panel, for each quad of k (4q .. 4q + 3), the NR columns' four
 * values sit side by side (one 32-bit lane of VPDPBUSD per column):
 * element (n, k) of panel p = n / NR is at
 * data[((p * quads + k / 4) * NR + n % NR) * 4 + k % 4]. K is padded to
 * 4 * quads and N to a multiple of NR with zeros. scale[n] is row n's
 * scale and comp[n] = 128 * sum_k q(n, k): the kernel feeds VPDPBUSD
 * activations shifted to unsigned (q + 128), so it subtracts this. Both
 * are padded to panels * NR with zeros. One allocation, owned by data. */
typedef struct op_int8_weights {
    int N, K;
    int quads;   /* (K + 3) / 4: the panel length */
    int panels;  /* ceil(N / NR) */
    int8_t *data;
    float *scale;
    int32_t *comp;
} op_int8_weights;

/* 1 when the CPU has AVX512F, AVX512BW and AVX512_VNNI and the OS saves
 * the ZMM and mask registers; cached after the first call. */
int op_int8_supported(void);

/* For tests and benchmarks only: which kernel op_linear_int8 uses. AUTO
 * (the default) takes AVX512-VNNI where op_int8_supported(), else the
 * portable kernel; AVX512 asks for VNNI (falls back where unsupported);
 * PORTABLE forces the C kernel on any CPU. Process wide; set it while no
 * other thread is inside op_linear_int8. */
enum { OP_INT8_PATH_AUTO = 0, OP_INT8_PATH_AVX512 = 1, OP_INT8_PATH_PORTABLE = 2 };
void op_int8_force_path(int path);

/* Symmetric quantization of one row: returns the scale s = max |x| / 127
 * and sets q[k] = round-half-even(x[k] * (127 / max |x|)) clamped to
 * [-127, 127] (all zero, scale 0, for a zero row). A row holding inf or
 * NaN gets a non-finite scale, so its outputs are not finite either. The
 * kernels quantize activations exactly like this. */
float op_int8_quantize_row(const float *x, int K, int8_t *q);

/* Bytes op_int8_pack allocates for w [N, K] (0 on overflow). */
size_t op_int8_packed_bytes(int N, int K);

/* Quantize and pack w [N, K] (PyTorch's Linear layout, K <= OP_INT8_MAX_K).
 * On failure *out is zeroed and the status says why. Free with
 * op_int8_free. */
cs_status op_int8_pack(const float *w, int N, int K, op_int8_weights *out);
void op_int8_free(op_int8_weights *w);

/* y[M, N] = x[M, K] w[N, K]^T + b, or y += ... with accumulate (b may be
 * NULL); N and K come from w. Element (i, n) is
 * fmaf((float)sum_k qx(i, k) qw(n, k), sx[i] * sw[n], b[n]) (+ y[i, n]),
 * the sum exact in int32 (|sum| <= 127 * 127 * K < 2^31).
 * Threads: omp_get_max_threads(), or one inside a parallel region; the
 * result depends on neither the thread count nor the kernel.
 * No heap allocation. */
void op_linear_int8(const float *x, int M, int K, const op_int8_weights *w, const float *b,
                    int accumulate, float *y);

#endif
