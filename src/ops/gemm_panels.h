/* What the packed-weight linear layers (gemm_bf16.c, gemm_int8.c) share:
 * the CPU check for AVX-512 with byte/word instructions, and the split of
 * an output [M, N] among threads as rectangles of row tiles x weight
 * panels. Internal header. */
#ifndef CS_OPS_GEMM_PANELS_H
#define CS_OPS_GEMM_PANELS_H

/* 1 when the CPU has AVX512F and AVX512BW and the OS saves the ZMM and
 * mask registers (XGETBV). */
int op_avx512bw_os_supported(void);

/* A rectangle of the output: rows [m0, m1), panels [p0, p1). */
typedef struct op_rect {
    int m0, m1, p0, p1;
} op_rect;

typedef void (*op_rect_fn)(const void *ctx, op_rect r);

/* Compute y[M, N] (N in `panels` panels of nr columns) by calling fn on
 * rectangles that tile it: one call when flops is small or inside a
 * parallel region, else up to omp_get_max_threads() rectangles run in
 * parallel, rows split in whole tiles of `unit` rows. The split only
 * decides who computes an element, never how, so as long as fn's sums do
 * not depend on the rectangle the result does not depend on the threads. */
void op_panels_run(int M, int N, int panels, int nr, int unit, double flops, op_rect_fn fn,
                   const void *ctx);

#endif
