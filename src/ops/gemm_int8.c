/* The int8 linear layer: y[M, N] (+)= x[M, K] w[N, K]^T + b with weights
 * quantized per output channel and packed once, activations quantized per
 * row at run time (gemm_int8.h says what is computed). Only the functions
 * marked VNNI_TARGET use AVX-512; the file compiles without -mavx512vnni
 * and the rest of it runs anywhere.
 *
 * AVX512-VNNI blocking (per thread, over its own rectangle of the output):
 *   rows in blocks of up to 16 tiles of MR rows, as many as fit 128 KiB of
 *   packed activations at this K: each row is quantized, shifted to
 *   unsigned (q + 128) and stored as [tile][quad][MR] 32-bit words (four
 *   k per word), on the stack; then for each weight panel (K x NR bytes, a
 *   quarter of the bf16 panel: 24 KiB at K = 768, L1-resident while the
 *   block's tiles sweep it) the MR x NR micro-kernel runs over the tiles
 *   with the whole K in its registers, so no partial sums ever leave it.
 * VPDPBUSD multiplies unsigned by signed bytes and adds four products to
 * each int32 lane: sum (q + 128) w = sum q w + 128 sum w, and the second
 * term is the panel's comp[], subtracted at the end. */
#include "gemm_int8.h"
#include <cpuid.h>
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>
#include "base/base.h"
#include "gemm_panels.h"

#define NR OP_INT8_NR
#define MR 14                   /* 14 x 2 accumulators + 2 weight vectors + 1 broadcast <= 32 zmm */
#define ABUF_WORDS (32 * 1024)  /* 128 KiB of packed activations per thread, on the stack */
#define MAX_TILES 16            /* row tiles per block */

_Static_assert((OP_INT8_MAX_K + 3) / 4 * MR <= ABUF_WORDS, "one tile of the longest K must fit");

#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

/* ---------------------------------------------------------------- CPU check */

static int detect_vnni(void) {
    if (!op_avx512bw_os_supported()) return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c >> 11) & 1; /* AVX512_VNNI */
}

int op_int8_supported(void) {
    static int cached = -1; /* benign race: every thread computes the same value */
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        v = detect_vnni();
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

static int g_force_path = OP_INT8_PATH_AUTO;

void op_int8_force_path(int path) { __atomic_store_n(&g_force_path, path, __ATOMIC_RELAXED); }

/* ---------------------------------------------------------------- quantization */

static uint32_t abs_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u & 0x7fffffffu;
}

/* max |x| through the bits of |x|: as integers they order like the values,
 * with NaN above inf, so a NaN anywhere wins (the vector code does the same
 * with VPMAXUD, whatever the order). */
static float row_absmax(const float *x, int K) {
    uint32_t m = 0;
    for (int k = 0; k < K; k++) m = abs_bits(x[k]) > m ? abs_bits(x[k]) : m;
    float f;
    memcpy(&f, &m, sizeof f);
    return f;
}

/* The reciprocal the values are multiplied by: 0 for a non-finite maximum
 * (inf * 0 is NaN, which the scale carries instead) and for one below
 * FLT_MIN (zero, or so small that 127 / max would overflow): such a row
 * quantizes to zeros. */
static float row_inverse(float amax) { return amax >= FLT_MIN && amax <= FLT_MAX ? 127.0f / amax : 0.0f; }

/* One value as CVTPS2DQ (round half to even) then a clamp to +-127 do it.
 * v = x * (127 / max |x|) is never beyond +-127.0001 nor infinite, so the
 * vector instruction's out-of-range answer (INT_MIN) meets only NaN, which
 * the clamp makes -127. */
static int quantize_value(float v) {
    if (!(v > -127.0f)) return -127; /* NaN too */
    if (v >= 127.0f) return 127;
    return (int)nearbyintf(v);
}

float op_int8_quantize_row(const float *x, int K, int8_t *q) {
    float amax = row_absmax(x, K), inv = row_inverse(amax);
    for (int k = 0; k < K; k++) q[k] = (int8_t)quantize_value(x[k] * inv);
    return amax / 127.0f;
}

/* ---------------------------------------------------------------- packing */

static size_t data_bytes(int N, int K) { /* a multiple of 64: the scales follow aligned */
    size_t panels = ((size_t)N + NR - 1) / NR, quads = ((size_t)K + 3) / 4;
    return panels * quads * NR * 4;
}

size_t op_int8_packed_bytes(int N, int K) {
    if (N <= 0 || K <= 0 || K > OP_INT8_MAX_K) return 0;
    size_t panels = ((size_t)N + NR - 1) / NR, n;
    if (!size_mul(panels, (size_t)NR * (sizeof(float) + sizeof(int32_t)), &n)) return 0;
    size_t d = data_bytes(N, K);
    return d + n < d ? 0 : d + n;
}

/* One panel: rows n0..n0+NR of w quantized (zero past N), k padded with
 * zeros to 4 * quads, in output order; its scales and comp[]. */
static void pack_panel(const float *w, int N, int K, int quads, int p, int8_t *dst, float *scale,
                       int32_t *comp) {
    int8_t q[OP_INT8_MAX_K];
    memset(dst, 0, (size_t)quads * NR * 4);
    for (int c = 0; c < NR; c++) {
        int n = p * NR + c;
        scale[c] = 0.0f;
        comp[c] = 0;
        if (n >= N) continue;
        scale[c] = op_int8_quantize_row(w + (size_t)n * K, K, q);
        int32_t sum = 0;
        for (int k = 0; k < K; k++) {
            dst[((size_t)(k / 4) * NR + c) * 4 + k % 4] = q[k];
            sum += q[k];
        }
        comp[c] = 128 * sum;
    }
}

cs_status op_int8_pack(const float *w, int N, int K, op_int8_weights *out) {
    memset(out, 0, sizeof *out);
    if (!w || N <= 0 || K <= 0) return error_set(CS_ERR_ARG, "int8 pack: bad weights %d x %d", N, K);
    if (K > OP_INT8_MAX_K)
        return error_set(CS_ERR_ARG, "int8 pack: rows of %d exceed the kernel's %d", K, OP_INT8_MAX_K);
    size_t bytes = op_int8_packed_bytes(N, K);
    if (!bytes) return error_set(CS_ERR_NOMEM, "int8 pack: %d x %d overflows", N, K);
    int8_t *data = mem_alloc(bytes, 1);
    if (!data) return CS_ERR_NOMEM;
    int quads = (K + 3) / 4, panels = (N + NR - 1) / NR;
    float *scale = (float *)(data + data_bytes(N, K));
    int32_t *comp = (int32_t *)(scale + (size_t)panels * NR);
    /* Load-time work (a ViT-B holds ~85M weights): use the threads unless nested. */
#pragma omp parallel for schedule(static) if (panels > 1 && !omp_in_parallel())
    for (int p = 0; p < panels; p++)
        pack_panel(w, N, K, quads, p, data + (size_t)p * quads * NR * 4, scale + p * NR, comp + p * NR);
    *out = (op_int8_weights){N, K, quads, panels, data, scale, comp};
    return CS_OK;
}

void op_int8_free(op_int8_weights *w) {
    if (!w) return;
    cs_free(w->data);
    memset(w, 0, sizeof *w);
}

/* ---------------------------------------------------------------- AVX512-VNNI kernel */

static inline __mmask16 tail_mask(int n) { /* first n of 16 lanes, n may be <= 0 or >= 16 */
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* Quantize rows x[0..rows) as op_int8_quantize_row does, shifted to
 * unsigned, into [tile][quad][MR] 32-bit words; scales into xs[]. Lanes
 * past K hold 128 (q = 0) and meet the panel's zero padding. Rows past
 * `rows` in the last tile are left unwritten: no kernel reads them. */
VNNI_TARGET static void pack_a(const float *x, int K, int rows, int quads, uint32_t *dst,
                               float *xs) {
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    const __m512i shift = _mm512_set1_epi32(128), absmask = _mm512_set1_epi32(0x7fffffff);
    for (int r = 0; r < rows; r++) {
        const float *src = x + (size_t)r * K;
        __m512i m = _mm512_setzero_si512();
        for (int k = 0; k < K; k += 16)
            m = _mm512_max_epu32(m, _mm512_and_si512(_mm512_maskz_loadu_epi32(tail_mask(K - k), src + k), absmask));
        uint32_t mb = _mm512_reduce_max_epu32(m);
        float amax;
        memcpy(&amax, &mb, sizeof amax);
        xs[r] = amax / 127.0f;
        __m512 inv = _mm512_set1_ps(row_inverse(amax));
        uint32_t *tile = dst + (size_t)(r / MR) * quads * MR + r % MR;
        for (int k = 0, q = 0; k < K; k += 16, q += 4) {
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail_mask(K - k), src + k), inv);
            __m512i i = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(v), lo), hi);
            _Alignas(16) uint32_t words[4];
            _mm_store_si128((__m128i *)words, _mm512_cvtepi32_epi8(_mm512_add_epi32(i, shift)));
            int n = quads - q < 4 ? quads - q : 4;
            for (int j = 0; j < n; j++) tile[(size_t)(q + j) * MR] = words[j];
        }
    }
}

/* c[mr x nr] = fma(sums - comp, xs * scale, bias) (+ c). */
VNNI_TARGET static void store_tile(int32_t (*sums)[NR], int mr, const float *xs, const float *scale,
                                   const int32_t *comp, const float *bias, float *c, int ldc,
                                   int nr, int load_c) {
    __mmask16 m0 = tail_mask(nr), m1 = tail_mask(nr - 16);
    __m512i comp0 = _mm512_load_si512(comp), comp1 = _mm512_load_si512(comp + 16);
    __m512 sc0 = _mm512_load_ps(scale), sc1 = _mm512_load_ps(scale + 16);
    __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        __m512 x = _mm512_set1_ps(xs[i]);
        __m512 v0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_load_si512(sums[i]), comp0)),
                                    _mm512_mul_ps(x, sc0), bias0);
        __m512 v1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_load_si512(sums[i] + 16), comp1)),
                                    _mm512_mul_ps(x, sc1), bias1);
        if (load_c) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        _mm512_mask_storeu_ps(ci, m0, v0);
        _mm512_mask_storeu_ps(ci + 16, m1, v1);
    }
}

/* One tile: acc[mr x 32] = sum over all quads of a (broadcast per row) *
 * panel, then c = fma(acc - comp, xs * scale, bias) (+ c). mr is a
 * constant in each copy. */
VNNI_TARGET static inline __attribute__((always_inline)) void
micro_kernel(int mr, int quads, const uint32_t *a, const int8_t *panel, const float *xs,
             const float *scale, const int32_t *comp, const float *bias, float *c, int ldc, int nr,
             int load_c) {
    __m512i acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
    for (int q = 0; q < quads; q++) {
        __m512i b0 = _mm512_load_si512(panel + (size_t)q * 4 * NR);
        __m512i b1 = _mm512_load_si512(panel + (size_t)q * 4 * NR + 64);
        const uint32_t *aq = a + (size_t)q * MR;
#pragma GCC unroll 14
        for (int i = 0; i < mr; i++) {
            __m512i ai = _mm512_set1_epi32((int)aq[i]);
            acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], ai, b1);
        }
    }
    /* The sums leave the registers before the epilogue: with its constants
     * live across the loop GCC would spill accumulators inside it. */
    _Alignas(64) int32_t sums[MR][NR];
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        _mm512_store_si512(sums[i], acc[i][0]);
        _mm512_store_si512(sums[i] + 16, acc[i][1]);
    }
    store_tile(sums, mr, xs, scale, comp, bias, c, ldc, nr, load_c);
}

typedef void (*kernel_fn)(int quads, const uint32_t *a, const int8_t *panel, const float *xs,
                          const float *scale, const int32_t *comp, const float *bias, float *c,
                          int ldc, int nr, int load_c);

/* One copy per row count, so every loop over rows is unrolled with constant
 * register indices (a runtime mr would spill the accumulators). */
#define KERNEL_COPY(R)                                                                          \
    VNNI_TARGET static void kernel_##R(int quads, const uint32_t *a, const int8_t *panel,      \
                                       const float *xs, const float *scale, const int32_t *comp, \
                                       const float *bias, float *c, int ldc, int nr, int load_c) { \
        micro_kernel(R, quads, a, panel, xs, scale, comp, bias, c, ldc, nr, load_c);           \
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

/* The arguments of one op_linear_int8 call, for the rectangle runners. */
typedef struct call {
    const float *x, *b;
    const op_int8_weights *w;
    int accumulate;
    float *y;
} call;

VNNI_TARGET static void run_rect(const void *ctx, op_rect r) {
    const call *cl = ctx;
    const op_int8_weights *w = cl->w;
    _Alignas(64) uint32_t abuf[ABUF_WORDS];
    float xs[MAX_TILES * MR];
    int N = w->N, K = w->K, quads = w->quads;
    int tiles = ABUF_WORDS / (quads * MR) < MAX_TILES ? ABUF_WORDS / (quads * MR) : MAX_TILES;
    for (int i0 = r.m0; i0 < r.m1; i0 += tiles * MR) {
        int mc = r.m1 - i0 < tiles * MR ? r.m1 - i0 : tiles * MR;
        pack_a(cl->x + (size_t)i0 * K, K, mc, quads, abuf, xs);
        for (int p = r.p0; p < r.p1; p++) {
            const int8_t *panel = w->data + (size_t)p * quads * NR * 4;
            int nr = N - p * NR < NR ? N - p * NR : NR;
            const float *bias = cl->b ? cl->b + p * NR : NULL;
            for (int t = 0; t * MR < mc; t++) {
                int mr = mc - t * MR < MR ? mc - t * MR : MR;
                kernels[mr](quads, abuf + (size_t)t * quads * MR, panel, xs + t * MR,
                            w->scale + p * NR, w->comp + p * NR, bias,
                            cl->y + (size_t)(i0 + t * MR) * N + p * NR, N, nr, cl->accumulate);
            }
        }
    }
}

/* ---------------------------------------------------------------- portable kernel
 * Plain C over the same panels, for CPUs without AVX512-VNNI (and for the
 * parity tests on every CPU): signed products summed in int32 (exact, so
 * the same sums as the +128 trick gives), then the same float operations
 * (fmaf is the fused multiply-add VFMADD does). */
static void run_rect_portable(const void *ctx, op_rect r) {
    const call *cl = ctx;
    const op_int8_weights *w = cl->w;
    int N = w->N, K = w->K, quads = w->quads;
    int8_t q[4 * ((OP_INT8_MAX_K + 3) / 4)];
    for (int i = r.m0; i < r.m1; i++) {
        float xs = op_int8_quantize_row(cl->x + (size_t)i * K, K, q);
        for (int k = K; k < 4 * quads; k++) q[k] = 0;
        float *yi = cl->y + (size_t)i * N;
        for (int p = r.p0; p < r.p1; p++) {
            const int8_t *panel = w->data + (size_t)p * quads * NR * 4;
            int32_t acc[NR] = {0};
            for (int qd = 0; qd < quads; qd++)
                for (int n = 0; n < NR; n++)
                    for (int j = 0; j < 4; j++) acc[n] += q[4 * qd + j] * panel[((size_t)qd * NR + n) * 4 + j];
            int nr = N - p * NR < NR ? N - p * NR : NR;
            for (int n = 0; n < nr; n++) {
                int col = p * NR + n;
                float v = fmaf((float)acc[n], xs * w->scale[col], cl->b ? cl->b[col] : 0.0f);
                yi[col] = cl->accumulate ? v + yi[col] : v;
            }
        }
    }
}

/* ---------------------------------------------------------------- threads
 * Every output element is one integer sum over the whole K and the same
 * float operations, whoever computes it: the grid, the thread count and
 * the kernel never change the result. */
void op_linear_int8(const float *x, int M, int K, const op_int8_weights *w, const float *b,
                    int accumulate, float *y) {
    if (M <= 0 || !w || !w->data || K != w->K) return;
    int forced = __atomic_load_n(&g_force_path, __ATOMIC_RELAXED);
    int portable = forced == OP_INT8_PATH_PORTABLE || !op_int8_supported();
    call c = {x, b, w, accumulate, y};
    op_panels_run(M, w->N, w->panels, NR, MR, 2.0 * M * w->N * K, portable ? run_rect_portable : run_rect, &c);
}
