/* The thread split and CPU check shared by the packed linear layers. */
#include "gemm_panels.h"
#include <cpuid.h>
#include <omp.h>

#define SERIAL_FLOPS 4e6 /* below this a parallel region costs more than it saves */

int op_avx512bw_os_supported(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
    /* XCR0: the OS must save SSE, AVX, opmask and both ZMM halves (bits 1, 2, 5, 6, 7). */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6) != 0xE6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & (1u << 16)) && (b & (1u << 30)); /* AVX512F, AVX512BW */
}

/* Split the output among up to T threads as a tm x tn grid of rectangles
 * (row tiles of `unit` rows x panels), choosing the grid whose largest
 * rectangle is smallest; ties go to fewer threads. Row tiles are the
 * kernel's so no thread gets a ragged tile but the last. */
static void choose_grid(int M, int N, int panels, int nr, int T, int unit, int *tm_out,
                        int *tn_out) {
    int tiles = (M + unit - 1) / unit, best_tm = 1, best_tn = 1;
    double best = -1;
    for (int t = 1; t <= T; t++)
        for (int tm = 1; tm <= t; tm++) {
            if (t % tm) continue;
            int tn = t / tm;
            if (tm > tiles || tn > panels) continue;
            int rows = (tiles + tm - 1) / tm * unit, cols = (panels + tn - 1) / tn * nr;
            double cost = (double)(rows < M ? rows : M) * (cols < N ? cols : N);
            if (best < 0 || cost < best) best = cost, best_tm = tm, best_tn = tn;
        }
    *tm_out = best_tm;
    *tn_out = best_tn;
}

static op_rect grid_rect(int M, int panels, int tm, int tn, int unit, int id) {
    int tiles = (M + unit - 1) / unit, tpm = (tiles + tm - 1) / tm, ppn = (panels + tn - 1) / tn;
    int im = id / tn, in = id % tn;
    op_rect r = {im * tpm * unit, (im + 1) * tpm * unit, in * ppn, (in + 1) * ppn};
    if (r.m1 > M) r.m1 = M;
    if (r.p1 > panels) r.p1 = panels;
    return r;
}

void op_panels_run(int M, int N, int panels, int nr, int unit, double flops, op_rect_fn fn,
                   const void *ctx) {
    int T = 1;
    if (!omp_in_parallel() && flops >= SERIAL_FLOPS) T = omp_get_max_threads();
    int tm, tn;
    choose_grid(M, N, panels, nr, T, unit, &tm, &tn);
    int parts = tm * tn;
    if (parts == 1) {
        fn(ctx, (op_rect){0, M, 0, panels});
        return;
    }
#pragma omp parallel num_threads(parts)
    {
        /* The runtime may hand out fewer threads than asked: loop so every
         * rectangle is still done. */
        int nt = omp_get_num_threads();
        for (int id = omp_get_thread_num(); id < parts; id += nt) {
            op_rect r = grid_rect(M, panels, tm, tn, unit, id);
            if (r.m0 < r.m1 && r.p0 < r.p1) fn(ctx, r);
        }
    }
}
