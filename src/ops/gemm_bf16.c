/* The bf16 linear layer: y[M, N] (+)= x[M, K] w[N, K]^T + b with weights
 * packed once into bf16 panels and VDPBF16PS doing two products per fp32
 * lane. Only the functions marked BF16_TARGET use AVX512-BF16 instructions;
 * the file compiles without -mavx512bf16 and the rest of it runs anywhere.
 *
 * Blocking (per thread, over its own rectangle of the output):
 *   rows in blocks of MC, K in blocks of KC pairs: the activations of one
 *   block are rounded and packed ([tile][pair][MR] 32-bit pairs) into a
 *   stack buffer, then for each weight panel (KC x NR, L1-resident while
 *   the row tiles sweep it) the MR x NR micro-kernel runs over the tiles.
 * The micro-kernel keeps MR x 2 vectors of fp32 sums in registers and per
 * pair of k broadcasts one 32-bit (two bf16) value of x per row. */
#include "gemm_bf16.h"
#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <string.h>
#include "base/base.h"

#define NR OP_BF16_NR
#define MR 14            /* 14 x 2 accumulators + 2 weight vectors + 1 broadcast <= 32 zmm */
#define KC 128           /* pairs per K block: a 128 x 32 bf16 panel slice is 16 KiB (L1) */
#define MC (8 * MR)      /* rows per block: the packed block is 56 KiB, on the stack */
#define SERIAL_FLOPS 4e6 /* below this a parallel region costs more than it saves */

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

/* ---------------------------------------------------------------- CPU check */

static int detect_bf16(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
    /* XCR0: the OS must save SSE, AVX, opmask and both ZMM halves (bits 1, 2, 5, 6, 7). */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6) != 0xE6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    unsigned max_sub = a;
    if (!(b & (1u << 16)) || !(b & (1u << 30))) return 0; /* AVX512F, AVX512BW */
    if (max_sub < 1) return 0;
    __get_cpuid_count(7, 1, &a, &b, &c, &d);
    return (a >> 5) & 1; /* AVX512_BF16 */
}

int op_bf16_supported(void) {
    static int cached = -1; /* benign race: every thread computes the same value */
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        v = detect_bf16();
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* ---------------------------------------------------------------- rounding */

uint16_t op_bf16_from_float(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    if ((u & 0x7f800000u) == 0) u &= 0x80000000u; /* denormal -> signed zero, like the hardware */
    u += 0x7fffu + ((u >> 16) & 1u);              /* round half to even; overflow gives inf */
    return (uint16_t)(u >> 16);
}

float op_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---------------------------------------------------------------- packing */

size_t op_bf16_packed_bytes(int N, int K) {
    if (N <= 0 || K <= 0) return 0;
    size_t panels = ((size_t)N + NR - 1) / NR, pairs = ((size_t)K + 1) / 2, n;
    if (!cs_mul_size(panels, pairs, &n) || !cs_mul_size(n, (size_t)NR * 2 * sizeof(uint16_t), &n))
        return 0;
    return n;
}

/* One panel: rows n0..n0+NR of w (zero past N), k padded to even. Written
 * in output order (sequential stores); the NR source rows being read stay
 * in cache as k advances. */
static void pack_panel(const float *w, int N, int K, int pairs, int p, uint16_t *dst) {
    int rows = N - p * NR < NR ? N - p * NR : NR;
    const float *src = w + (size_t)p * NR * K;
    for (int q = 0; q < pairs; q++, dst += 2 * NR) {
        int k = 2 * q;
        for (int c = 0; c < rows; c++) {
            dst[2 * c] = op_bf16_from_float(src[(size_t)c * K + k]);
            dst[2 * c + 1] = k + 1 < K ? op_bf16_from_float(src[(size_t)c * K + k + 1]) : 0;
        }
        for (int c = rows; c < NR; c++) dst[2 * c] = dst[2 * c + 1] = 0;
    }
}

cs_status op_bf16_pack(const float *w, int N, int K, op_bf16_weights *out) {
    memset(out, 0, sizeof *out);
    if (!w || N <= 0 || K <= 0) return cs_fail(CS_ERR_ARG, "bf16 pack: bad weights %d x %d", N, K);
    size_t bytes = op_bf16_packed_bytes(N, K);
    if (!bytes) return cs_fail(CS_ERR_NOMEM, "bf16 pack: %d x %d overflows", N, K);
    uint16_t *data = cs_alloc(bytes, 1);
    if (!data) return CS_ERR_NOMEM;
    int pairs = (K + 1) / 2, panels = (N + NR - 1) / NR;
    size_t panel_len = (size_t)pairs * NR * 2;
    /* Load-time work (a ViT-B holds ~85M weights): use the threads unless nested. */
#pragma omp parallel for schedule(static) if (panels > 1 && !omp_in_parallel())
    for (int p = 0; p < panels; p++) pack_panel(w, N, K, pairs, p, data + p * panel_len);
    out->N = N;
    out->K = K;
    out->pairs = pairs;
    out->panels = panels;
    out->data = data;
    return CS_OK;
}

void op_bf16_free(op_bf16_weights *w) {
    if (!w) return;
    cs_free(w->data);
    memset(w, 0, sizeof *w);
}

/* ---------------------------------------------------------------- kernel */

static inline __mmask16 tail_mask(int n) { /* first n of 16 lanes, n may be <= 0 or >= 16 */
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* Round rows x[0..rows) columns [k0, k1) to bf16 pairs and store them as
 * [tile][pair][MR] 32-bit words (tile = MR rows, pair stride MR) so the
 * micro-kernel broadcasts consecutive words. kc = pairs in the block; an
 * odd k1 gets a zero partner (the masked load zero-fills). Rows past
 * `rows` in the last tile are left unwritten: no kernel reads them. */
BF16_TARGET static void pack_a(const float *x, int ldx, int rows, int k0, int k1, int kc,
                               uint32_t *dst) {
    _Alignas(64) uint32_t tmp[16];
    for (int r = 0; r < rows; r++) {
        const float *src = x + (size_t)r * ldx;
        uint32_t *tile = dst + (size_t)(r / MR) * kc * MR + r % MR;
        for (int k = k0, q = 0; k < k1; k += 32, q += 16) {
            int left = k1 - k;
            __m512 lo = _mm512_maskz_loadu_ps(tail_mask(left), src + k);
            __m512 hi = _mm512_maskz_loadu_ps(tail_mask(left - 16), src + k + 16);
            /* cvtne2ps: round to nearest even; the second operand fills the low half. */
            _mm512_store_si512(tmp, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
            int n = kc - q < 16 ? kc - q : 16;
            for (int i = 0; i < n; i++) tile[(size_t)(q + i) * MR] = tmp[i];
        }
    }
}

/* acc[MR x 32] = sum over kc pairs of a (broadcast per row) * panel, then
 * c = acc (+ c if load_c) (+ bias): the first K block sets or adds to y
 * and brings the bias, later blocks add. mr is a constant in each copy. */
BF16_TARGET static inline __attribute__((always_inline)) void
micro_kernel(int mr, int kc, const uint32_t *a, const uint16_t *panel, float *c, int ldc, int nr,
             const float *bias, int load_c) {
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int q = 0; q < kc; q++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(panel + (size_t)q * 2 * NR);
        __m512bh b1 = (__m512bh)_mm512_load_si512(panel + (size_t)q * 2 * NR + NR);
        const uint32_t *aq = a + (size_t)q * MR;
#pragma GCC unroll 14
        for (int i = 0; i < mr; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)aq[i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
    }
    __mmask16 m0 = tail_mask(nr), m1 = tail_mask(nr - 16);
    __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        __m512 v0 = _mm512_add_ps(acc[i][0], bias0), v1 = _mm512_add_ps(acc[i][1], bias1);
        if (load_c) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        _mm512_mask_storeu_ps(ci, m0, v0);
        _mm512_mask_storeu_ps(ci + 16, m1, v1);
    }
}

typedef void (*kernel_fn)(int kc, const uint32_t *a, const uint16_t *panel, float *c, int ldc,
                          int nr, const float *bias, int load_c);

/* One copy per row count, so every loop over rows is unrolled with constant
 * register indices (a runtime mr would spill the accumulators). */
#define KERNEL_COPY(R)                                                                        \
    BF16_TARGET static void kernel_##R(int kc, const uint32_t *a, const uint16_t *panel,     \
                                       float *c, int ldc, int nr, const float *bias,         \
                                       int load_c) {                                         \
        micro_kernel(R, kc, a, panel, c, ldc, nr, bias, load_c);                             \
    }
KERNEL_COPY(1)
KERNEL_COPY(2)
KERNEL_COPY(3)
KERNEL_COPY(4)
KERNEL_COPY(5)
KERNEL_COPY(6)
KERNEL_COPY(7)
KERNEL_COPY(8)
KERNEL_COPY(9)
KERNEL_COPY(10)
KERNEL_COPY(11)
KERNEL_COPY(12)
KERNEL_COPY(13)
KERNEL_COPY(14)
static const kernel_fn kernels[MR + 1] = {NULL,       kernel_1,  kernel_2,  kernel_3,  kernel_4,
                                          kernel_5,   kernel_6,  kernel_7,  kernel_8,  kernel_9,
                                          kernel_10,  kernel_11, kernel_12, kernel_13, kernel_14};

/* A rectangle of the output: rows [m0, m1), panels [p0, p1). */
typedef struct rect {
    int m0, m1, p0, p1;
} rect;

BF16_TARGET static void run_rect(const float *x, const op_bf16_weights *w, const float *b,
                                 int accumulate, float *y, rect r) {
    _Alignas(64) uint32_t abuf[MC * KC]; /* 56 KiB: fits any thread's stack, no heap */
    int N = w->N, K = w->K, pairs = w->pairs;
    for (int i0 = r.m0; i0 < r.m1; i0 += MC) {
        int mc = r.m1 - i0 < MC ? r.m1 - i0 : MC;
        for (int q0 = 0; q0 < pairs; q0 += KC) {
            int kc = pairs - q0 < KC ? pairs - q0 : KC;
            int k1 = 2 * (q0 + kc) < K ? 2 * (q0 + kc) : K;
            pack_a(x + (size_t)i0 * K, K, mc, 2 * q0, k1, kc, abuf);
            int load_c = accumulate || q0 > 0;
            for (int p = r.p0; p < r.p1; p++) {
                const uint16_t *panel = w->data + ((size_t)p * pairs + q0) * NR * 2;
                int nr = N - p * NR < NR ? N - p * NR : NR;
                const float *bias = b && q0 == 0 ? b + p * NR : NULL;
                for (int t = 0; t * MR < mc; t++) {
                    int mr = mc - t * MR < MR ? mc - t * MR : MR;
                    float *c = y + (size_t)(i0 + t * MR) * N + p * NR;
                    kernels[mr](kc, abuf + (size_t)t * kc * MR, panel, c, N, nr, bias, load_c);
                }
            }
        }
    }
}

/* Split the output among up to T threads as a tm x tn grid of rectangles
 * (row tiles x panels), choosing the grid whose largest rectangle is
 * smallest; ties go to fewer threads. */
static void choose_grid(int M, int N, int panels, int T, int *tm_out, int *tn_out) {
    int tiles = (M + MR - 1) / MR, best_tm = 1, best_tn = 1;
    double best = -1;
    for (int t = 1; t <= T; t++)
        for (int tm = 1; tm <= t; tm++) {
            if (t % tm) continue;
            int tn = t / tm;
            if (tm > tiles || tn > panels) continue;
            int rows = (tiles + tm - 1) / tm * MR, cols = (panels + tn - 1) / tn * NR;
            double cost = (double)(rows < M ? rows : M) * (cols < N ? cols : N);
            if (best < 0 || cost < best) best = cost, best_tm = tm, best_tn = tn;
        }
    *tm_out = best_tm;
    *tn_out = best_tn;
}

static rect grid_rect(int M, int panels, int tm, int tn, int id) {
    int tiles = (M + MR - 1) / MR, tpm = (tiles + tm - 1) / tm, ppn = (panels + tn - 1) / tn;
    int im = id / tn, in = id % tn;
    rect r = {im * tpm * MR, (im + 1) * tpm * MR, in * ppn, (in + 1) * ppn};
    if (r.m1 > M) r.m1 = M;
    if (r.p1 > panels) r.p1 = panels;
    return r;
}

void op_linear_bf16(const float *x, int M, int K, const op_bf16_weights *w, const float *b,
                    int accumulate, float *y) {
    if (M <= 0 || !w || !w->data || K != w->K) return;
    int T = 1;
    if (!omp_in_parallel() && 2.0 * M * w->N * K >= SERIAL_FLOPS) T = omp_get_max_threads();
    int tm, tn;
    choose_grid(M, w->N, w->panels, T, &tm, &tn);
    int parts = tm * tn;
    if (parts == 1) {
        run_rect(x, w, b, accumulate, y, (rect){0, M, 0, w->panels});
        return;
    }
#pragma omp parallel num_threads(parts)
    {
        /* The runtime may hand out fewer threads than asked: loop so every
         * rectangle is still done. */
        int nt = omp_get_num_threads();
        for (int id = omp_get_thread_num(); id < parts; id += nt) {
            rect r = grid_rect(M, w->panels, tm, tn, id);
            if (r.m0 < r.m1 && r.p0 < r.p1) run_rect(x, w, b, accumulate, y, r);
        }
    }
}
