/* The bf16 linear layer: y[M, N] (+)= x[M, K] w[N, K]^T + b with weights
 * packed once into bf16 panels, and kernels over the same panels:
 * AMX-BF16 tiles where the CPU and OS allow them (6-9x the other on the
 * ViT shapes, bench/bench_gemm_packed.c), else VDPBF16PS doing two products
 * per fp32 lane, else (AVX2 CPUs) weights widened in registers and fp32
 * FMAs, else plain C. Only the functions marked BF16_TARGET / AMX_TARGET /
 * AVX2_TARGET use those instructions; the file compiles without
 * -mavx512bf16 / -mamx-* / -mavx2 and the rest of it runs anywhere.
 *
 * AVX512 blocking (per thread, over its own rectangle of the output):
 *   rows in blocks of MC, K in blocks of KC pairs: the activations of one
 *   block are rounded into a stack buffer (row r's 32-bit pairs at r * KC),
 *   then for each weight panel (KC x NR, L1-resident while the row tiles
 *   sweep it) the MR x NR micro-kernel runs over the tiles.
 * The micro-kernel keeps MR x 2 vectors of fp32 sums in registers and per
 * pair of k broadcasts one 32-bit (two bf16) value of x per row. */
/* syscall() (for arch_prctl) is declared only with the glibc extensions,
 * which the build's gnu11 enables; say so for a strict -std=c11 too. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "gemm_bf16.h"
#include <cpuid.h>
#include <immintrin.h>
#include <limits.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "base/base.h"
#include "avx2.h"
#include "gemm_panels.h"

#define NR OP_BF16_NR
#define KPAD OP_BF16_KPAD
#define MR 14            /* 14 x 2 accumulators + 2 weight vectors + 1 broadcast <= 32 zmm */
#define KC 128           /* pairs per K block: a 128 x 32 bf16 panel slice is 16 KiB (L1) */
#define MC (8 * MR)      /* rows per block: the packed block is 56 KiB, on the stack */

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

/* ---------------------------------------------------------------- CPU check */

static int detect_bf16(void) {
    if (!op_avx512bw_os_supported()) return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return 0; /* no sub-leaf 1 */
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

static int pad_pairs(int pairs) { return (pairs + KPAD - 1) / KPAD * KPAD; }

size_t op_bf16_packed_bytes(int N, int K) {
    if (N <= 0 || K <= 0 || K > INT_MAX - 2 * KPAD) return 0;
    size_t panels = ((size_t)N + NR - 1) / NR, pairs = (size_t)pad_pairs((K + 1) / 2), n;
    if (!size_mul(panels, pairs, &n) || !size_mul(n, (size_t)NR * 2 * sizeof(uint16_t), &n))
        return 0;
    return n;
}

/* Element i of a weight source: fp32 rounded, or bf16 bits as they are
 * (denormals flushed to signed zero, as op_bf16_from_float does, so both
 * sources of one value pack the same bits). */
static inline uint16_t source_at(const void *w, int bits, size_t i) {
    if (!bits) return op_bf16_from_float(((const float *)w)[i]);
    uint16_t h;
    memcpy(&h, (const uint8_t *)w + 2 * i, 2);
    return (h & 0x7f80) ? h : (uint16_t)(h & 0x8000);
}

/* Pairs [q0, pairs_pad) of one panel: rows n0..n0+NR of w (zero past N),
 * element (n, k) at w[n * ldn + k * ldk] (fp32, or bf16 bits), k padded
 * with zeros to 2 * pairs_pad (the AMX kernel loads whole 16-pair tiles;
 * the zeros meet zeros in its activations, never garbage). Written in
 * output order (sequential stores); the NR source rows being read stay in
 * cache as k advances. */
static void pack_panel_scalar(const void *w, int bits, size_t ldn, size_t ldk, int N, int K,
                              int pairs_pad, int p, int q0, uint16_t *dst) {
    int rows = N - p * NR < NR ? N - p * NR : NR;
    size_t row0 = (size_t)p * NR * ldn;
    dst += (size_t)q0 * 2 * NR;
    for (int q = q0; q < pairs_pad; q++, dst += 2 * NR) {
        int k = 2 * q;
        if (k >= K) {
            memset(dst, 0, 2 * NR * sizeof *dst);
            continue;
        }
        for (int c = 0; c < rows; c++) {
            size_t at = row0 + c * ldn + k * ldk;
            dst[2 * c] = source_at(w, bits, at);
            dst[2 * c + 1] = k + 1 < K ? source_at(w, bits, at + ldk) : 0;
        }
        for (int c = rows; c < NR; c++) dst[2 * c] = dst[2 * c + 1] = 0;
    }
}

int op_bf16_avx2_supported(void) {
    /* libgcc's check includes the OS saving the ymm state (XGETBV). */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* op_bf16_from_float on 8 lanes, widened back to fp32 (the AVX2 kernel's
 * activations, and packing from fp32). */
AVX2_TARGET static inline __m256 round_bf16_8(__m256 v) {
    __m256i u = _mm256_castps_si256(v), hi = _mm256_set1_epi32((int)0xFFFF0000u);
    __m256i mag = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    __m256i nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7f800000));
    __m256i denormal = _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7f800000)), _mm256_setzero_si256());
    __m256i flushed = _mm256_blendv_epi8(u, _mm256_and_si256(u, _mm256_set1_epi32((int)0x80000000u)), denormal);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(flushed, 16), _mm256_set1_epi32(1));
    __m256i rounded = _mm256_add_epi32(flushed, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff)));
    __m256i quiet = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));
    return _mm256_castsi256_ps(_mm256_and_si256(_mm256_blendv_epi8(rounded, quiet, nan), hi));
}

/* Pair words 0..7 (elements 0..15) of a weight row as the panel holds
 * them: bf16 bits with denormals flushed to signed zero (source_at's rule),
 * or fp32 rounded, element 2j in the low half of word j. */
AVX2_TARGET static inline __m256i row_words(const void *w, int bits, size_t at) {
    if (bits) {
        __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + at));
        __m256i zero_exp = _mm256_cmpeq_epi16(_mm256_and_si256(h, _mm256_set1_epi16(0x7f80)), _mm256_setzero_si256());
        return _mm256_andnot_si256(_mm256_and_si256(zero_exp, _mm256_set1_epi16(0x7fff)), h);
    }
    const float *f = (const float *)w + at;
    __m256i a = _mm256_srli_epi32(_mm256_castps_si256(round_bf16_8(_mm256_loadu_ps(f))), 16);
    __m256i b = _mm256_srli_epi32(_mm256_castps_si256(round_bf16_8(_mm256_loadu_ps(f + 8))), 16);
    /* packus interleaves the 128-bit lanes: elements 0-3, 8-11 | 4-7, 12-15 */
    return _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
}

/* A whole panel (NR rows) of a row-contiguous source (ldk 1), the pairs
 * [0, K / 16 * 8) 8 x 8 words at a time: 8 rows' 8 words loaded, transposed
 * in registers, stored as 8 runs of 8 words (32 bytes) of the panel; the
 * scalar path does the rest. 7-10x faster than the scalar path alone (a
 * ViT-B/16 tower packs 85M weights in every bf16 process). Returns the
 * first pair not done. */
AVX2_TARGET static int pack_panel_avx2(const void *w, int bits, size_t ldn, int K, int p, uint16_t *dst) {
    int done = K / 16 * 8;
    size_t row0 = (size_t)p * NR * ldn;
    for (int q0 = 0; q0 < done; q0 += 8)
        for (int c0 = 0; c0 < NR; c0 += 8) {
            __m256i r[8], t[8], u[8];
            for (int i = 0; i < 8; i++) r[i] = row_words(w, bits, row0 + (size_t)(c0 + i) * ldn + 2 * (size_t)q0);
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
                u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
                u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
                u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
            }
            /* u[j] (j < 4) holds word j of rows 0-3 | word j + 4 of rows 0-3; u[j + 4] rows 4-7 */
            for (int j = 0; j < 4; j++) {
                __m256i lo = _mm256_permute2x128_si256(u[j], u[j + 4], 0x20);
                __m256i hi = _mm256_permute2x128_si256(u[j], u[j + 4], 0x31);
                _mm256_storeu_si256((__m256i *)(dst + ((size_t)(q0 + j) * NR + c0) * 2), lo);
                _mm256_storeu_si256((__m256i *)(dst + ((size_t)(q0 + j + 4) * NR + c0) * 2), hi);
            }
        }
    return done;
}

static void pack_panel(const void *w, int bits, size_t ldn, size_t ldk, int N, int K, int pairs_pad,
                       int p, uint16_t *dst) {
    int q0 = 0;
    if (ldk == 1 && N - p * NR >= NR && op_bf16_avx2_supported()) q0 = pack_panel_avx2(w, bits, ldn, K, p, dst);
    pack_panel_scalar(w, bits, ldn, ldk, N, K, pairs_pad, p, q0, dst);
}

void op_bf16_layout(int N, int K, uint16_t *data, op_bf16_weights *out) {
    out->N = N;
    out->K = K;
    out->pairs = (K + 1) / 2;
    out->pairs_pad = pad_pairs(out->pairs);
    out->panels = (N + NR - 1) / NR;
    out->data = data;
}

static cs_status pack_source(const void *w, int bits, int N, int K, op_bf16_weights *out) {
    memset(out, 0, sizeof *out);
    if (!w || N <= 0 || K <= 0) return error_set(CS_ERR_ARG, "bf16 pack: bad weights %d x %d", N, K);
    size_t bytes = op_bf16_packed_bytes(N, K);
    if (!bytes) return error_set(CS_ERR_NOMEM, "bf16 pack: %d x %d overflows", N, K);
    uint16_t *data = mem_alloc(bytes, 1);
    if (!data) return CS_ERR_NOMEM;
    op_bf16_layout(N, K, data, out);
    size_t panel_len = (size_t)out->pairs_pad * NR * 2;
    /* Load-time work (a ViT-B holds ~85M weights): use the threads unless nested. */
#pragma omp parallel for schedule(static) if (out->panels > 1 && !omp_in_parallel())
    for (int p = 0; p < out->panels; p++)
        pack_panel(w, bits, (size_t)K, 1, N, K, out->pairs_pad, p, data + p * panel_len);
    return CS_OK;
}

cs_status op_bf16_pack(const float *w, int N, int K, op_bf16_weights *out) {
    return pack_source(w, 0, N, K, out);
}

cs_status op_bf16_pack_bits(const void *w, int N, int K, op_bf16_weights *out) {
    return pack_source(w, 1, N, K, out);
}

void op_bf16_pack_strided(const float *w, size_t ldn, size_t ldk, int N, int K, uint16_t *data,
                          op_bf16_weights *out) {
    op_bf16_layout(N, K, data, out);
    size_t panel_len = (size_t)out->pairs_pad * NR * 2;
    for (int p = 0; p < out->panels; p++) pack_panel(w, 0, ldn, ldk, N, K, out->pairs_pad, p, data + p * panel_len);
}

void op_bf16_free(op_bf16_weights *w) {
    if (!w) return;
    if (!w->borrowed) cs_free(w->data);
    memset(w, 0, sizeof *w);
}

cs_status op_bf16_view(const void *panels, int N, int K, op_bf16_weights *out) {
    memset(out, 0, sizeof *out);
    size_t bytes = op_bf16_packed_bytes(N, K);
    if (!panels || N <= 0 || K <= 0 || !bytes)
        return error_set(CS_ERR_ARG, "bf16 view: bad weights %d x %d", N, K);
    /* The kernels load whole panels with aligned loads. */
    if ((uintptr_t)panels % 64 == 0) {
        op_bf16_layout(N, K, (uint16_t *)(uintptr_t)panels, out);
        out->borrowed = 1;
        return CS_OK;
    }
    uint16_t *data = mem_alloc(bytes, 1);
    if (!data) return CS_ERR_NOMEM;
    memcpy(data, panels, bytes);
    op_bf16_layout(N, K, data, out);
    return CS_OK;
}

void op_bf16_unpack(const void *panels, int N, int K, float *out) {
    op_bf16_weights w;
    op_bf16_layout(N, K, NULL, &w);
    const uint8_t *src = panels;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            size_t at = (((size_t)(n / NR) * w.pairs_pad + (size_t)(k / 2)) * NR + (size_t)(n % NR)) * 2 + (size_t)(k % 2);
            uint16_t h;
            memcpy(&h, src + 2 * at, 2); /* a file's tensor may be only byte aligned */
            out[(size_t)n * K + k] = op_bf16_to_float(h);
        }
}

/* ---------------------------------------------------------------- kernel */

/* What a K block's store does besides writing acc + bias: add what y holds
 * (accumulating, or a later K block), and clamp at zero (the last K block
 * of a call with ReLU). */
enum { STORE_LOAD = 1, STORE_RELU = 2 };

/* The store flags of the K block starting at pair q0 of a call. */
static int store_flags(int accumulate, int relu, int q0, int kc, int pairs) {
    return (accumulate || q0 > 0 ? STORE_LOAD : 0) | (relu && q0 + kc >= pairs ? STORE_RELU : 0);
}

static inline __mmask16 tail_mask(int n) { /* first n of 16 lanes, n may be <= 0 or >= 16 */
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* Round rows x[0..rows) columns [k0, k1) to bf16 pairs and store row r's
 * pairs at dst + r * KC, whole vectors (a row stride fixed at compile time
 * lets the micro-kernel address its MR rows as constant offsets from one
 * pointer, and the packing stays 16 pairs per store instead of one pair
 * per store into a pair-major tile). An odd k1 gets a zero partner (the
 * masked load zero-fills); pairs past the block's kc are never read. */
BF16_TARGET static void pack_a(const float *x, int ldx, int rows, int k0, int k1, uint32_t *dst) {
    for (int r = 0; r < rows; r++) {
        const float *src = x + (size_t)r * ldx;
        uint32_t *row = dst + (size_t)r * KC;
        for (int k = k0, q = 0; k < k1; k += 32, q += 16) {
            int left = k1 - k;
            __m512 lo = _mm512_maskz_loadu_ps(tail_mask(left), src + k);
            __m512 hi = _mm512_maskz_loadu_ps(tail_mask(left - 16), src + k + 16);
            /* cvtne2ps: round to nearest even; the second operand fills the low half. */
            _mm512_store_si512(row + q, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
}

/* acc[MR x 32] = sum over kc pairs of a (broadcast per row) * panel, then
 * c = acc + bias (+ c with STORE_LOAD) (clamped at 0 with STORE_RELU): the
 * first K block sets or adds to y and brings the bias, later blocks add.
 * mr is a constant in each copy. */
BF16_TARGET static inline __attribute__((always_inline)) void
micro_kernel(int mr, int kc, const uint32_t *a, const uint16_t *panel, float *c, int ldc, int nr,
             const float *bias, int store) {
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int q = 0; q < kc; q++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(panel + (size_t)q * 2 * NR);
        __m512bh b1 = (__m512bh)_mm512_load_si512(panel + (size_t)q * 2 * NR + NR);
        const uint32_t *aq = a + q;
#pragma GCC unroll 14
        for (int i = 0; i < mr; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)aq[i * KC]);
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
        if (store & STORE_LOAD) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        if (store & STORE_RELU) {
            v0 = _mm512_max_ps(v0, _mm512_setzero_ps());
            v1 = _mm512_max_ps(v1, _mm512_setzero_ps());
        }
        _mm512_mask_storeu_ps(ci, m0, v0);
        _mm512_mask_storeu_ps(ci + 16, m1, v1);
    }
}

typedef void (*kernel_fn)(int kc, const uint32_t *a, const uint16_t *panel, float *c, int ldc,
                          int nr, const float *bias, int store);

/* One copy per row count, so every loop over rows is unrolled with constant
 * register indices (a runtime mr would spill the accumulators). */
#define KERNEL_COPY(R)                                                                        \
    BF16_TARGET static void kernel_##R(int kc, const uint32_t *a, const uint16_t *panel,     \
                                       float *c, int ldc, int nr, const float *bias,         \
                                       int store) {                                          \
        micro_kernel(R, kc, a, panel, c, ldc, nr, bias, store);                              \
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

BF16_TARGET static void run_rect(const float *x, const op_bf16_weights *w, const float *b,
                                 int accumulate, int relu, float *y, op_rect r) {
    _Alignas(64) uint32_t abuf[MC * KC]; /* 56 KiB: fits any thread's stack, no heap */
    int N = w->N, K = w->K, pairs = w->pairs;
    for (int i0 = r.m0; i0 < r.m1; i0 += MC) {
        int mc = r.m1 - i0 < MC ? r.m1 - i0 : MC;
        for (int q0 = 0; q0 < pairs; q0 += KC) {
            int kc = pairs - q0 < KC ? pairs - q0 : KC;
            int k1 = 2 * (q0 + kc) < K ? 2 * (q0 + kc) : K;
            pack_a(x + (size_t)i0 * K, K, mc, 2 * q0, k1, abuf);
            int store = store_flags(accumulate, relu, q0, kc, pairs);
            for (int p = r.p0; p < r.p1; p++) {
                const uint16_t *panel = w->data + ((size_t)p * w->pairs_pad + q0) * NR * 2;
                int nr = N - p * NR < NR ? N - p * NR : NR;
                const float *bias = b && q0 == 0 ? b + p * NR : NULL;
                for (int t = 0; t * MR < mc; t++) {
                    int mr = mc - t * MR < MR ? mc - t * MR : MR;
                    float *c = y + (size_t)(i0 + t * MR) * N + p * NR;
                    kernels[mr](kc, abuf + (size_t)t * MR * KC, panel, c, N, nr, bias, store);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- AMX kernel
 *
 * Tiles (palette 1: eight registers of up to 16 rows x 64 bytes):
 *   A = 16 rows of x x 16 pairs (bf16), B = 16 pairs x 16 columns, taken
 *   straight from a packed panel (row stride NR * 4 bytes: one pair of the
 *   panel's 32 columns; the right half of the panel is the second B tile),
 *   C = 16 x 16 fp32. The micro-kernel is 2 x 2: tmm4, tmm5 hold A for
 *   rows 0-15 and 16-31, tmm6, tmm7 the panel's two column halves, and
 *   tmm0-3 the 32 x 32 sums, so each tile loaded feeds two TDPBF16PS.
 * Blocking (per thread): rows in blocks of AMX_MC, K in blocks of AMX_KC
 *   pairs; the block's activations are rounded into a stack buffer laid
 *   out as ready-made A tiles ([16-row group][16-pair chunk][16][16] 32-bit
 *   words, each tile 1 KiB contiguous), then each weight panel slice (AMX_KC
 *   x NR, 32 KiB) is swept by the block's 32-row tiles. The sums of one K
 *   block leave the tiles through a 32 x 32 stack buffer and are added to
 *   y with masks, which also handles the N tail, bias and accumulate
 *   exactly like the AVX512 kernel (acc + bias, then + y).
 * Row tails: the unused rows of the last A group are zero and their sums
 *   are never stored; K tails: zero pairs in both A and the padded panel.
 * Tile configuration is per thread context: every rectangle loads it on
 * the thread that runs it and releases the tiles when done, so no tile
 * state outlives a call (nor costs the OS an 8 KiB save per context switch). */

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16")))
#define TROWS 16            /* rows of an A or C tile */
#define TPAIRS 16           /* pairs in a 64-byte tile row */
#define AMX_MR 32           /* rows per micro-kernel: two A tiles */
#define AMX_KC 256          /* pairs per K block, a multiple of TPAIRS; the panel slice is 32 KiB */
#define AMX_MC 64           /* rows per block: the packed activations are 64 KiB, on the stack */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

_Static_assert(AMX_KC % TPAIRS == 0 && TPAIRS == KPAD && AMX_MC % AMX_MR == 0 && NR == 32,
               "the AMX blocking assumes whole tiles");

/* The 64-byte operand of LDTILECFG. */
typedef struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16]; /* bytes per row of each tile register */
    uint8_t rows[16];
} tile_config;

static int g_amx = 0;
static pthread_once_t g_amx_once = PTHREAD_ONCE_INIT;
static int g_force_path = OP_BF16_PATH_AUTO;

/* Runs once per process (pthread_once): the permission is per process and
 * the kernel answers every thread alike, so one request is enough. */
static void detect_amx(void) {
    unsigned a, b, c, d;
    if (!op_bf16_supported()) return; /* the kernel rounds and adds with AVX512 */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    if (!(d & (1u << 24)) || !(d & (1u << 22))) return; /* AMX-TILE, AMX-BF16 */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return; /* XTILECFG, XTILEDATA enabled by the OS */
    /* Palette 1 must offer the eight 16 x 64-byte registers used below. */
    if (__get_cpuid_max(0, NULL) < 0x1d) return;
    __get_cpuid_count(0x1d, 0, &a, &b, &c, &d);
    if (a < 1) return;
    __get_cpuid_count(0x1d, 1, &a, &b, &c, &d);
    if ((b & 0xffff) < 64 || (b >> 16) < 8 || (c & 0xffff) < 16) return;
    /* Linux (5.16+) hands tile data out on request only: without it the first
     * tile instruction kills the process with SIGILL. */
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return;
    __atomic_store_n(&g_amx, 1, __ATOMIC_RELAXED);
}

int op_bf16_amx_supported(void) {
    pthread_once(&g_amx_once, detect_amx);
    return __atomic_load_n(&g_amx, __ATOMIC_RELAXED);
}

void op_bf16_force_path(int path) { __atomic_store_n(&g_force_path, path, __ATOMIC_RELAXED); }

/* Round rows x[0..rows) columns [k0, k1) to bf16 pairs into A tiles:
 * dst[group][chunk][row % 16][16 pairs], chunks = the block's pairs
 * rounded up to 16. Pairs past k1 and rows past `rows` (to the end of the
 * last group) are zero, so whole tiles can be loaded: zero A rows give
 * sums nobody stores, zero pairs meet the panel's zero padding. */
AMX_TARGET static void amx_pack_a(const float *x, int ldx, int rows, int k0, int k1, int chunks,
                                  uint32_t *dst) {
    int padded = (rows + TROWS - 1) / TROWS * TROWS;
    for (int r = 0; r < padded; r++) {
        uint32_t *row = dst + ((size_t)(r / TROWS) * chunks * TROWS + r % TROWS) * TPAIRS;
        if (r >= rows) {
            for (int c = 0; c < chunks; c++)
                _mm512_store_si512(row + (size_t)c * TROWS * TPAIRS, _mm512_setzero_si512());
            continue;
        }
        const float *src = x + (size_t)r * ldx;
        for (int c = 0, k = k0; c < chunks; c++, k += 2 * TPAIRS) {
            int left = k1 - k;
            __m512 lo = _mm512_maskz_loadu_ps(tail_mask(left), src + k);
            __m512 hi = _mm512_maskz_loadu_ps(tail_mask(left - 16), src + k + 16);
            __m512i pairs = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); /* hi fills the upper half */
            _mm512_store_si512(row + (size_t)c * TROWS * TPAIRS, pairs);
        }
    }
}

/* sums[32 x 32] = A (two groups of 16 rows) times the panel slice, over
 * `chunks` 16-pair chunks. One copy with both row groups and one with the
 * first only (a block of <= 16 rows): tile numbers are immediates. */
AMX_TARGET static void amx_tile_2x2(int chunks, const uint32_t *a, const uint16_t *panel,
                                    float *sums) {
    const uint32_t *a1 = a + (size_t)chunks * TROWS * TPAIRS;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int c = 0; c < chunks; c++) {
        const uint16_t *bc = panel + (size_t)c * TPAIRS * NR * 2;
        _tile_loadd(6, bc, NR * 4);
        _tile_loadd(7, bc + 32, NR * 4);
        _tile_loadd(4, a + (size_t)c * TROWS * TPAIRS, TPAIRS * 4);
        _tile_loadd(5, a1 + (size_t)c * TROWS * TPAIRS, TPAIRS * 4);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, sums, NR * 4);
    _tile_stored(1, sums + 16, NR * 4);
    _tile_stored(2, sums + 16 * NR, NR * 4);
    _tile_stored(3, sums + 16 * NR + 16, NR * 4);
}

AMX_TARGET static void amx_tile_1x2(int chunks, const uint32_t *a, const uint16_t *panel,
                                    float *sums) {
    _tile_zero(0);
    _tile_zero(1);
    for (int c = 0; c < chunks; c++) {
        const uint16_t *bc = panel + (size_t)c * TPAIRS * NR * 2;
        _tile_loadd(6, bc, NR * 4);
        _tile_loadd(7, bc + 32, NR * 4);
        _tile_loadd(4, a + (size_t)c * TROWS * TPAIRS, TPAIRS * 4);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
    }
    _tile_stored(0, sums, NR * 4);
    _tile_stored(1, sums + 16, NR * 4);
}

/* c[mr x nr] = sums + bias (+ c) (clamped at 0): the same order of
 * additions as the AVX512 micro-kernel's store. */
AMX_TARGET static void amx_store(const float *sums, int mr, float *c, int ldc, int nr,
                                 const float *bias, int store) {
    __mmask16 m0 = tail_mask(nr), m1 = tail_mask(nr - 16);
    __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        __m512 v0 = _mm512_add_ps(_mm512_load_ps(sums + i * NR), bias0);
        __m512 v1 = _mm512_add_ps(_mm512_load_ps(sums + i * NR + 16), bias1);
        if (store & STORE_LOAD) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        if (store & STORE_RELU) {
            v0 = _mm512_max_ps(v0, _mm512_setzero_ps());
            v1 = _mm512_max_ps(v1, _mm512_setzero_ps());
        }
        _mm512_mask_storeu_ps(ci, m0, v0);
        _mm512_mask_storeu_ps(ci + 16, m1, v1);
    }
}

AMX_TARGET static void run_rect_amx(const float *x, const op_bf16_weights *w, const float *b,
                                    int accumulate, int relu, float *y, op_rect r) {
    _Alignas(64) uint32_t abuf[AMX_MC * AMX_KC]; /* 64 KiB of A tiles, no heap */
    _Alignas(64) float sums[AMX_MR * NR];        /* 4 KiB */
    _Alignas(64) tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = TROWS;
        cfg.colsb[t] = TPAIRS * 4;
    }
    _tile_loadconfig(&cfg);
    int N = w->N, K = w->K, pairs = w->pairs;
    for (int i0 = r.m0; i0 < r.m1; i0 += AMX_MC) {
        int mc = r.m1 - i0 < AMX_MC ? r.m1 - i0 : AMX_MC;
        for (int q0 = 0; q0 < pairs; q0 += AMX_KC) {
            int kc = pairs - q0 < AMX_KC ? pairs - q0 : AMX_KC;
            int chunks = (kc + TPAIRS - 1) / TPAIRS;
            int k1 = 2 * (q0 + kc) < K ? 2 * (q0 + kc) : K;
            amx_pack_a(x + (size_t)i0 * K, K, mc, 2 * q0, k1, chunks, abuf);
            int store = store_flags(accumulate, relu, q0, kc, pairs);
            for (int p = r.p0; p < r.p1; p++) {
                const uint16_t *panel = w->data + ((size_t)p * w->pairs_pad + q0) * NR * 2;
                int nr = N - p * NR < NR ? N - p * NR : NR;
                const float *bias = b && q0 == 0 ? b + p * NR : NULL;
                for (int t = 0; t * AMX_MR < mc; t++) {
                    int mr = mc - t * AMX_MR < AMX_MR ? mc - t * AMX_MR : AMX_MR;
                    const uint32_t *a = abuf + (size_t)2 * t * chunks * TROWS * TPAIRS;
                    if (mr > TROWS) amx_tile_2x2(chunks, a, panel, sums);
                    else amx_tile_1x2(chunks, a, panel, sums);
                    amx_store(sums, mr, y + (size_t)(i0 + t * AMX_MR) * N + p * NR, N, nr, bias,
                              store);
                }
            }
        }
    }
    _tile_release();
}

/* ---------------------------------------------------------------- AVX2 kernel
 *
 * For CPUs with AVX2 and FMA but no AVX512-BF16 (Haswell to Zen 3): the
 * same panels, each bf16 weight widened in registers (a bf16 value is the
 * high half of its fp32: a shift or a mask of the 32-bit pair gives the
 * even or the odd k of 8 columns), then fp32 FMAs, so the rate is about
 * sgemm's while the weights stay packed at half the bytes (OpenBLAS
 * re-packs fp32 weights on every call).
 * Blocking (per thread): rows in blocks of AVX2_MC, K in blocks of AVX2_KC
 * pairs; the block's activations are rounded to bf16 and kept as fp32
 * (row r at r * 2 * AVX2_KC floats) in a stack buffer; then each panel
 * slice (AVX2_KC pairs x 32 columns, 48 KiB) is swept half by half (16
 * columns) by tiles of AVX2_MR rows: 5 x 2 accumulators + 2 weight vectors
 * + 1 broadcast + the mask of the odd k = 14 of the 16 ymm registers (with
 * 6 rows GCC spilled an accumulator, whose store-to-load round trip then
 * halved the rate). K blocks of 384 pairs ran 3-8% faster than 128 on the
 * ViT-B shapes (bench_gemm_packed, Zen 3). Per pair each row adds its even
 * k's product, then its odd k's: a different summation order from the
 * other kernels (VDPBF16PS adds a pair's two products to the sum). */

#define AVX2_MR 5
#define AVX2_KC 384           /* pairs per K block: all of a ViT-B's 768 (no reload of y) */
#define AVX2_MC (4 * AVX2_MR) /* rows per block: 60 KiB of activations on the stack */

/* Rows x[0..rows) columns [k0, k1) rounded to bf16, as fp32, row r at
 * dst + r * 2 * AVX2_KC; columns past k1 up to the block's even end are zero. */
AVX2_TARGET static void avx2_pack_a(const float *x, int ldx, int rows, int k0, int k1, float *dst) {
    int n = k1 - k0, padded = (n + 1) / 2 * 2;
    for (int r = 0; r < rows; r++) {
        const float *src = x + (size_t)r * ldx + k0;
        float *row = dst + (size_t)r * 2 * AVX2_KC;
        int k = 0;
        for (; k + 8 <= n; k += 8) _mm256_storeu_ps(row + k, round_bf16_8(_mm256_loadu_ps(src + k)));
        if (k < n) {
            __m256i m = lanes_below(n - k);
            _mm256_storeu_ps(row + k, round_bf16_8(_mm256_maskload_ps(src + k, m)));
        }
        if (padded > n) row[n] = 0.0f;
    }
}

/* c[mr x 16] of one half panel: sums over kc pairs, then + bias (+ c)
 * (clamped at 0), the store rules of the other kernels; nr columns valid. */
AVX2_TARGET static inline __attribute__((always_inline)) void
avx2_micro_kernel(int mr, int kc, const float *a, const uint16_t *half, float *c, int ldc, int nr,
                  const float *bias, int store) {
    __m256 acc[AVX2_MR][2];
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
#pragma GCC unroll 5
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int q = 0; q < kc; q++) {
        const __m256i *wq = (const __m256i *)(half + (size_t)q * 2 * NR);
        __m256i w0 = _mm256_load_si256(wq), w1 = _mm256_load_si256(wq + 1);
        __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16));
        __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16));
#pragma GCC unroll 5
        for (int i = 0; i < mr; i++) {
            __m256 xe = _mm256_broadcast_ss(a + (size_t)i * 2 * AVX2_KC + 2 * q);
            acc[i][0] = _mm256_fmadd_ps(xe, e0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(xe, e1, acc[i][1]);
        }
        __m256 o0 = _mm256_castsi256_ps(_mm256_and_si256(w0, high));
        __m256 o1 = _mm256_castsi256_ps(_mm256_and_si256(w1, high));
#pragma GCC unroll 5
        for (int i = 0; i < mr; i++) {
            __m256 xo = _mm256_broadcast_ss(a + (size_t)i * 2 * AVX2_KC + 2 * q + 1);
            acc[i][0] = _mm256_fmadd_ps(xo, o0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(xo, o1, acc[i][1]);
        }
    }
    __m256i m0 = lanes_below(nr), m1 = lanes_below(nr - 8);
    __m256 bias0 = bias ? _mm256_maskload_ps(bias, m0) : _mm256_setzero_ps();
    __m256 bias1 = bias ? _mm256_maskload_ps(bias + 8, m1) : _mm256_setzero_ps();
#pragma GCC unroll 5
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        __m256 v0 = _mm256_add_ps(acc[i][0], bias0), v1 = _mm256_add_ps(acc[i][1], bias1);
        if (store & STORE_LOAD) {
            v0 = _mm256_add_ps(v0, _mm256_maskload_ps(ci, m0));
            v1 = _mm256_add_ps(v1, _mm256_maskload_ps(ci + 8, m1));
        }
        if (store & STORE_RELU) {
            v0 = _mm256_max_ps(v0, _mm256_setzero_ps());
            v1 = _mm256_max_ps(v1, _mm256_setzero_ps());
        }
        /* AMD's VMASKMOVPS store is microcoded: masked only where ragged */
        if (nr >= 16) {
            _mm256_storeu_ps(ci, v0);
            _mm256_storeu_ps(ci + 8, v1);
        } else {
            _mm256_maskstore_ps(ci, m0, v0);
            _mm256_maskstore_ps(ci + 8, m1, v1);
        }
    }
}

typedef void (*avx2_kernel_fn)(int kc, const float *a, const uint16_t *half, float *c, int ldc,
                               int nr, const float *bias, int store);

#define AVX2_KERNEL_COPY(R)                                                                      \
    AVX2_TARGET static void avx2_kernel_##R(int kc, const float *a, const uint16_t *half,        \
                                            float *c, int ldc, int nr, const float *bias,        \
                                            int store) {                                         \
        avx2_micro_kernel(R, kc, a, half, c, ldc, nr, bias, store);                              \
    }
AVX2_KERNEL_COPY(1)
AVX2_KERNEL_COPY(2)
AVX2_KERNEL_COPY(3)
AVX2_KERNEL_COPY(4)
AVX2_KERNEL_COPY(5)
static const avx2_kernel_fn avx2_kernels[AVX2_MR + 1] = {NULL,          avx2_kernel_1, avx2_kernel_2,
                                                         avx2_kernel_3, avx2_kernel_4, avx2_kernel_5};

AVX2_TARGET static void run_rect_avx2(const float *x, const op_bf16_weights *w, const float *b,
                                      int accumulate, int relu, float *y, op_rect r) {
    _Alignas(32) float abuf[AVX2_MC * 2 * AVX2_KC]; /* 60 KiB, no heap */
    int N = w->N, K = w->K, pairs = w->pairs;
    for (int i0 = r.m0; i0 < r.m1; i0 += AVX2_MC) {
        int mc = r.m1 - i0 < AVX2_MC ? r.m1 - i0 : AVX2_MC;
        for (int q0 = 0; q0 < pairs; q0 += AVX2_KC) {
            int kc = pairs - q0 < AVX2_KC ? pairs - q0 : AVX2_KC;
            int k1 = 2 * (q0 + kc) < K ? 2 * (q0 + kc) : K;
            avx2_pack_a(x + (size_t)i0 * K, K, mc, 2 * q0, k1, abuf);
            int store = store_flags(accumulate, relu, q0, kc, pairs);
            for (int p = r.p0; p < r.p1; p++)
                for (int h = 0; h < 2; h++) {
                    int nr = N - p * NR - h * 16;
                    if (nr <= 0) break;
                    const uint16_t *half = w->data + ((size_t)p * w->pairs_pad + q0) * NR * 2 + h * 32;
                    const float *bias = b && q0 == 0 ? b + p * NR + h * 16 : NULL;
                    for (int t = 0; t * AVX2_MR < mc; t++) {
                        int mr = mc - t * AVX2_MR < AVX2_MR ? mc - t * AVX2_MR : AVX2_MR;
                        float *c = y + (size_t)(i0 + t * AVX2_MR) * N + p * NR + h * 16;
                        avx2_kernels[mr](kc, abuf + (size_t)t * AVX2_MR * 2 * AVX2_KC, half, c, N, nr, bias, store);
                    }
                }
        }
    }
}

/* ---------------------------------------------------------------- portable kernel
 * Plain C over the same panels, for CPUs without AVX512-BF16 or AVX2 (and
 * for the parity tests on every CPU): x rounded to bf16 per K block as the other
 * kernels do, products of two bf16 values (exact in fp32), sums in fp32,
 * and the same bias / accumulate / ReLU rules. Slower, never different in
 * kind. */
static void run_rect_portable(const float *x, const op_bf16_weights *w, const float *b,
                              int accumulate, int relu, float *y, op_rect r) {
    int N = w->N, K = w->K, pairs = w->pairs;
    float xb[2 * KC];
    for (int i = r.m0; i < r.m1; i++) {
        const float *xi = x + (size_t)i * K;
        float *yi = y + (size_t)i * N;
        for (int q0 = 0; q0 < pairs; q0 += KC) {
            int kc = pairs - q0 < KC ? pairs - q0 : KC;
            for (int k = 0; k < 2 * kc; k++)
                xb[k] = 2 * q0 + k < K ? op_bf16_to_float(op_bf16_from_float(xi[2 * q0 + k])) : 0.0f;
            int store = store_flags(accumulate, relu, q0, kc, pairs);
            for (int p = r.p0; p < r.p1; p++) {
                const uint16_t *panel = w->data + ((size_t)p * w->pairs_pad + q0) * NR * 2;
                int nr = N - p * NR < NR ? N - p * NR : NR;
                float acc[NR] = {0};
                for (int q = 0; q < kc; q++) {
                    const uint16_t *wq = panel + (size_t)q * 2 * NR;
                    float a0 = xb[2 * q], a1 = xb[2 * q + 1];
                    for (int n = 0; n < NR; n++)
                        acc[n] += a0 * op_bf16_to_float(wq[2 * n]) + a1 * op_bf16_to_float(wq[2 * n + 1]);
                }
                float *c = yi + p * NR;
                const float *bias = b && q0 == 0 ? b + p * NR : NULL;
                for (int n = 0; n < nr; n++) {
                    float v = acc[n] + (bias ? bias[n] : 0.0f) + (store & STORE_LOAD ? c[n] : 0.0f);
                    c[n] = store & STORE_RELU && !(v > 0.0f) ? 0.0f : v;
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- threads
 * Every output element is summed by one thread in an order fixed by K
 * alone (the K blocks, then the kernel's own order), so the grid, and so
 * the thread count, never changes the result.
 * The arguments of one op_linear_bf16 call, for the rectangle runners. */
typedef struct call {
    const float *x, *b;
    const op_bf16_weights *w;
    int accumulate, relu;
    float *y;
    void (*run)(const float *, const op_bf16_weights *, const float *, int, int, float *, op_rect);
} call;

static void run_call(const void *ctx, op_rect r) {
    const call *c = ctx;
    c->run(c->x, c->w, c->b, c->accumulate, c->relu, c->y, r);
}

static void linear_bf16(const float *x, int M, int K, const op_bf16_weights *w, const float *b,
                        int accumulate, int relu, float *y) {
    if (M <= 0 || !w || !w->data || K != w->K) return;
    int forced = __atomic_load_n(&g_force_path, __ATOMIC_RELAXED);
    int avx512 = forced != OP_BF16_PATH_PORTABLE && forced != OP_BF16_PATH_AVX2 && op_bf16_supported();
    int amx = avx512 && forced != OP_BF16_PATH_AVX512 && op_bf16_amx_supported();
    int avx2 = !avx512 && forced != OP_BF16_PATH_PORTABLE && op_bf16_avx2_supported();
    call c = {x, b, w, accumulate, relu, y,
              amx ? run_rect_amx : avx512 ? run_rect : avx2 ? run_rect_avx2 : run_rect_portable};
    op_panels_run(M, w->N, w->panels, NR, amx ? AMX_MR : avx2 ? AVX2_MR : MR, 2.0 * M * w->N * K, run_call, &c);
}

void op_linear_bf16(const float *x, int M, int K, const op_bf16_weights *w, const float *b,
                    int accumulate, float *y) {
    linear_bf16(x, M, K, w, b, accumulate, 0, y);
}

void op_linear_bf16_relu(const float *x, int M, int K, const op_bf16_weights *w, const float *b,
                         int accumulate, float *y) {
    linear_bf16(x, M, K, w, b, accumulate, 1, y);
}
