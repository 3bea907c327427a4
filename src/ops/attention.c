#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include "avx2.h"
#include "gemm_bf16.h"
#include "ops.h"

/* The fused attention's tiles: a query tile's BQ x BK scores (64 KB) and its
 * BQ x d accumulator stay in the core's L2 while the key tiles stream past,
 * so the T x T score matrix never reaches memory and the scratch grows with
 * T, not T^2. BK covers a 224 ViT's 197 tokens in one tile, where the online
 * softmax reduces to the plain one. */
enum { BQ = 64, BK = 256 };

/* One head's operands: q and k rows of stride ldqk, v rows of stride ldv;
 * bf16: the scratch where fused_head packs k and v for the bf16 kernel, or
 * NULL for fp32. */
typedef struct head_operands {
    const float *q, *k, *v;
    int ldqk, ldv;
    float *bf16;
} head_operands;

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

/* Floats of the bf16 scratch: a scaled query tile, the keys packed as
 * weights [T, d] and the values packed per key tile as weights [d, BK]
 * (so that a tile's product with the scores is one kernel call); 16 more
 * to align the packs to 64 bytes, as the kernel's loads need. */
static size_t bf16_floats(int T, int d) {
    size_t tiles = (size_t)(T + BK - 1) / BK;
    return 16 + round16((size_t)BQ * d) + round16(op_bf16_packed_bytes(T, d) / sizeof(float)) +
           tiles * round16(op_bf16_packed_bytes(d, T < BK ? T : BK) / sizeof(float));
}

/* The packed key tile k0.. (nk keys): its panels of the packed keys. */
static op_bf16_weights key_tile(const op_bf16_weights *keys, int k0, int nk) {
    op_bf16_weights t;
    op_bf16_layout(nk, keys->K, keys->data + (size_t)(k0 / OP_BF16_NR) * keys->pairs_pad * OP_BF16_NR * 2, &t);
    return t;
}

/* ---------------------------------------------------------------- fp32 tile products
 * A tile's two fp32 products are small (at most 64 x 256 x d and 64 x d x
 * 256). Through OpenBLAS, on the AVX2 CPUs whose kernels are its Haswell /
 * Zen ones, a quarter of the attention's time went to copying and scaling
 * their operands for each call (perf at 1025 tokens: itcopy, oncopy,
 * incopy, beta 26%). There one small kernel does both instead: c[mr x 16]
 * = alpha a b or c += a b, a's rows broadcast (the query tile, copied
 * together; the scores), b in panels of 16 columns (the keys and the
 * values, packed once per head). 6 rows x 2 vectors = 12 accumulators + 2
 * of b + 1 broadcast fit the 16 ymm registers. Each sum runs over k in
 * order, whatever the tile: the result does not depend on the threads.
 * Elsewhere (AVX-512: OpenBLAS's own kernels are twice as wide) the
 * products stay with op_gemm. */
enum { TILE_MR = 6, TILE_NR = 16 };

static int g_tile_kernel = -1; /* op_attention_tile_kernel */

void op_attention_tile_kernel(int use) { __atomic_store_n(&g_tile_kernel, use, __ATOMIC_RELAXED); }

static int tile_kernel_pays(void) {
    int forced = __atomic_load_n(&g_tile_kernel, __ATOMIC_RELAXED);
    return op_bf16_avx2_supported() && (forced < 0 ? !__builtin_cpu_supports("avx512f") : forced);
}

/* c[mr x nr] = alpha a b (accumulate 0) or c += a b (1): a [mr x kc] at
 * row stride lda, b [kc x 16] packed (rows of 16 floats), nr <= 16 columns
 * of c stored. */
AVX2_TARGET static inline __attribute__((always_inline)) void
tile_kernel(int mr, int kc, float alpha, const float *a, int lda, const float *b, float *c, int ldc, int nr,
            int accumulate) {
    __m256 acc[TILE_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int q = 0; q < kc; q++) {
        __m256 b0 = _mm256_load_ps(b + (size_t)q * TILE_NR), b1 = _mm256_load_ps(b + (size_t)q * TILE_NR + 8);
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            __m256 x = _mm256_broadcast_ss(a + (size_t)i * lda + q);
            acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
        }
    }
    /* Masked stores only for a ragged last panel: AMD's VMASKMOVPS store is
     * microcoded, and 12 of them cost a third of a 64-deep score tile. */
    __m256 scale = _mm256_set1_ps(alpha);
    if (nr == TILE_NR) {
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            float *ci = c + (size_t)i * ldc;
            if (accumulate) {
                _mm256_storeu_ps(ci, _mm256_add_ps(_mm256_loadu_ps(ci), acc[i][0]));
                _mm256_storeu_ps(ci + 8, _mm256_add_ps(_mm256_loadu_ps(ci + 8), acc[i][1]));
            } else {
                _mm256_storeu_ps(ci, _mm256_mul_ps(acc[i][0], scale));
                _mm256_storeu_ps(ci + 8, _mm256_mul_ps(acc[i][1], scale));
            }
        }
        return;
    }
    __m256i m0 = lanes_below(nr), m1 = lanes_below(nr - 8);
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        __m256 v0, v1;
        if (accumulate) {
            v0 = _mm256_add_ps(_mm256_maskload_ps(ci, m0), acc[i][0]);
            v1 = _mm256_add_ps(_mm256_maskload_ps(ci + 8, m1), acc[i][1]);
        } else {
            v0 = _mm256_mul_ps(acc[i][0], scale);
            v1 = _mm256_mul_ps(acc[i][1], scale);
        }
        _mm256_maskstore_ps(ci, m0, v0);
        _mm256_maskstore_ps(ci + 8, m1, v1);
    }
}

typedef void (*tile_kernel_fn)(int kc, float alpha, const float *a, int lda, const float *b, float *c,
                               int ldc, int nr, int accumulate);

#define TILE_KERNEL_COPY(R)                                                                        \
    AVX2_TARGET static void tile_kernel_##R(int kc, float alpha, const float *a, int lda,          \
                                            const float *b, float *c, int ldc, int nr,             \
                                            int accumulate) {                                      \
        tile_kernel(R, kc, alpha, a, lda, b, c, ldc, nr, accumulate);                              \
    }
TILE_KERNEL_COPY(1)
TILE_KERNEL_COPY(2)
TILE_KERNEL_COPY(3)
TILE_KERNEL_COPY(4)
TILE_KERNEL_COPY(5)
TILE_KERNEL_COPY(6)
static const tile_kernel_fn tile_kernels[TILE_MR + 1] = {NULL,          tile_kernel_1, tile_kernel_2, tile_kernel_3,
                                                         tile_kernel_4, tile_kernel_5, tile_kernel_6};

static int round16i(int n) { return (n + TILE_NR - 1) / TILE_NR * TILE_NR; }

/* Keys k [T, d] (row stride ld) as panels of 16 keys, each [d, 16] (16
 * keys transposed; keys past T zero): panel p at out + p * d * 16. */
static void pack_key_panels(const float *k, int ld, int T, int d, float *out) {
    for (int j0 = 0; j0 < T; j0 += TILE_NR)
        for (int c = 0; c < d; c++) {
            float *row = out + (size_t)j0 * d + (size_t)c * TILE_NR;
            for (int j = 0; j < TILE_NR; j++) row[j] = j0 + j < T ? k[(size_t)(j0 + j) * ld + c] : 0.0f;
        }
}

/* Values v [T, d] (row stride ld) as panels of 16 columns, each [T, 16]
 * (columns past d zero): panel p at out + p * T * 16. Read in place, the
 * values' rows (3W floats apart, a multiple of 1 KiB) fall into a few L1
 * sets and evict each other. */
static void pack_value_panels(const float *v, int ld, int T, int d, float *out) {
    for (int c0 = 0; c0 < d; c0 += TILE_NR)
        for (int j = 0; j < T; j++) {
            float *row = out + (size_t)c0 * T + (size_t)j * TILE_NR;
            for (int c = 0; c < TILE_NR; c++) row[c] = c0 + c < d ? v[(size_t)j * ld + c0 + c] : 0.0f;
        }
}

/* s [nq, nk] = scale q [nq, d] (row stride ldq) times the nk keys whose
 * panels start at panels. */
static void tile_scores(const float *q, int ldq, int nq, int d, const float *panels, int nk, float scale,
                        float *s) {
    for (int j0 = 0; j0 < nk; j0 += TILE_NR) {
        const float *panel = panels + (size_t)j0 * d;
        int nr = nk - j0 < TILE_NR ? nk - j0 : TILE_NR;
        for (int i0 = 0; i0 < nq; i0 += TILE_MR) {
            int mr = nq - i0 < TILE_MR ? nq - i0 : TILE_MR;
            tile_kernels[mr](d, scale, q + (size_t)i0 * ldq, ldq, panel, s + (size_t)i0 * nk + j0, nk, nr, 0);
        }
    }
}

/* acc [nq, d] += s [nq, nk] times keys k0.. of the value panels (T rows each). */
static void tile_values(const float *s, int nq, int nk, const float *panels, int T, int k0, int d, float *acc) {
    for (int c0 = 0; c0 < d; c0 += TILE_NR) {
        const float *panel = panels + (size_t)c0 * T + (size_t)k0 * TILE_NR;
        int nr = d - c0 < TILE_NR ? d - c0 : TILE_NR;
        for (int i0 = 0; i0 < nq; i0 += TILE_MR) {
            int mr = nq - i0 < TILE_MR ? nq - i0 : TILE_MR;
            tile_kernels[mr](nk, 1.0f, s + (size_t)i0 * nk, nk, panel, acc + (size_t)i0 * d + c0, d, nr, 1);
        }
    }
}

/* Row i of a score tile after the bias and the mask: its first n entries
 * (the keys it may see) become exp(s - new max), the rest 0; the running
 * max m, sum l and accumulator row acc (d floats) are rescaled to the new
 * max (the online softmax). */
static void online_softmax_row(float *s, int n, int nk, float *m, float *l, float *acc, int d) {
    float mx = *m;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    if (mx == -INFINITY) { /* nothing visible yet: all masked */
        memset(s, 0, (size_t)nk * sizeof *s);
        return;
    }
    for (int j = 0; j < n; j++) s[j] -= mx;
    op_exp_inplace(s, (size_t)n);
    if (n < nk) memset(s + n, 0, (size_t)(nk - n) * sizeof *s);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) sum += s[j];
    if (mx != *m) {
        float c = expf(*m - mx); /* 0 on the first visible tile */
        for (int j = 0; j < d; j++) acc[j] *= c;
        *l *= c;
        *m = mx;
    }
    *l += sum;
}

/* out (+)= softmax(scale q k^T + bias, causally masked) v for one head of T
 * tokens (flash-attention style): per query tile, each key tile's scores are
 * one small GEMM, softmaxed online into a running max and sum, and their
 * product with the key tile's v is accumulated; out = acc / sum at the end.
 * tile: fused_tile_floats(T, d) floats. With o->bf16 both products run through
 * the bf16 kernel (inputs rounded to bf16, fp32 sums): k and v are packed
 * once per head, the query tile is scaled and the scores rounded as they
 * go in. */
static void fused_head(const head_operands *o, int T, int d, float scale, const op_attention_spec *a,
                       int head, int accumulate, float *out, int ldo, float *tile) {
    float *s = tile, *acc = s + BQ * BK, *m = acc + (size_t)BQ * d, *l = m + BQ;
    float *q_tile = o->bf16 ? (float *)(((uintptr_t)o->bf16 + 63) & ~(uintptr_t)63) : NULL;
    /* (the panels 32-byte aligned for the kernel's loads) */
    float *panels = (float *)(((uintptr_t)(l + BQ) + 31) & ~(uintptr_t)31);
    float *key_panels = !q_tile && tile_kernel_pays() ? panels : NULL;
    float *value_panels = panels + (size_t)round16i(T) * d, *q_pack = value_panels + (size_t)round16i(d) * T;
    if (key_panels) {
        pack_key_panels(o->k, o->ldqk, T, d, key_panels);
        pack_value_panels(o->v, o->ldv, T, d, value_panels);
    }
    op_bf16_weights keys = {0}, values = {0};
    uint16_t *value_tiles = NULL;
    size_t value_tile_len = 0;
    if (q_tile) {
        uint16_t *packed = (uint16_t *)(q_tile + round16((size_t)BQ * d));
        op_bf16_pack_strided(o->k, (size_t)o->ldqk, 1, T, d, packed, &keys);
        value_tiles = packed + round16(op_bf16_packed_bytes(T, d) / sizeof(float)) * 2;
        value_tile_len = round16(op_bf16_packed_bytes(d, T < BK ? T : BK) / sizeof(float)) * 2;
        for (int k0 = 0; k0 < T; k0 += BK)
            op_bf16_pack_strided(o->v + (size_t)k0 * o->ldv, 1, (size_t)o->ldv, d, T - k0 < BK ? T - k0 : BK,
                                 value_tiles + (size_t)(k0 / BK) * value_tile_len, &values);
    }
    for (int q0 = 0; q0 < T; q0 += BQ) {
        int nq = T - q0 < BQ ? T - q0 : BQ, kend = a->causal ? q0 + nq : T;
        for (int i = 0; i < nq; i++) m[i] = -INFINITY, l[i] = 0.0f;
        memset(acc, 0, (size_t)nq * d * sizeof *acc);
        if (key_panels) /* the query tile's rows together (3W floats apart they share few L1 sets) */
            for (int i = 0; i < nq; i++)
                memcpy(q_pack + (size_t)i * d, o->q + (size_t)(q0 + i) * o->ldqk, (size_t)d * sizeof(float));
        if (q_tile)
            for (int i = 0; i < nq; i++)
                for (int j = 0; j < d; j++) q_tile[(size_t)i * d + j] = scale * o->q[(size_t)(q0 + i) * o->ldqk + j];
        for (int k0 = 0; k0 < kend; k0 += BK) {
            int nk = kend - k0 < BK ? kend - k0 : BK;
            if (q_tile) {
                op_bf16_weights kt = key_tile(&keys, k0, nk);
                op_linear_bf16(q_tile, nq, d, &kt, NULL, 0, s);
            } else if (key_panels) {
                tile_scores(q_pack, d, nq, d, key_panels + (size_t)k0 * d, nk, scale, s);
            } else {
                op_gemm(0, 1, nq, nk, d, scale, o->q + (size_t)q0 * o->ldqk, o->ldqk,
                        o->k + (size_t)k0 * o->ldqk, o->ldqk, 0.0f, s, nk);
            }
            if (a->bias) a->bias(a->bias_ctx, head, q0, nq, k0, nk, s, nk);
            for (int i = 0; i < nq; i++) {
                int n = a->causal ? q0 + i + 1 - k0 : nk; /* keys k0 + j <= q0 + i */
                n = n < 0 ? 0 : n > nk ? nk : n;
                online_softmax_row(s + (size_t)i * nk, n, nk, m + i, l + i, acc + (size_t)i * d, d);
            }
            if (q_tile) {
                op_bf16_layout(d, nk, value_tiles + (size_t)(k0 / BK) * value_tile_len, &values);
                op_linear_bf16(s, nq, nk, &values, NULL, 1, acc);
            } else if (key_panels) {
                tile_values(s, nq, nk, value_panels, T, k0, d, acc);
            } else {
                op_gemm(0, 0, nq, d, nk, 1.0f, s, nk, o->v + (size_t)k0 * o->ldv, o->ldv, 1.0f, acc, d);
            }
        }
        for (int i = 0; i < nq; i++) {
            float inv = 1.0f / l[i], *dst = out + (size_t)(q0 + i) * ldo;
            const float *src = acc + (size_t)i * d;
            if (accumulate)
                for (int j = 0; j < d; j++) dst[j] += src[j] * inv;
            else
                for (int j = 0; j < d; j++) dst[j] = src[j] * inv;
        }
    }
}

/* The score tile, the accumulator, the running max and sum, and the AVX2
 * tile kernel's key and value panels and query tile (8 floats to align). */
static size_t fused_tile_floats(int T, int d) {
    return (size_t)BQ * BK + (size_t)BQ * d + 2 * BQ + 8 + (size_t)round16i(T) * d + (size_t)round16i(d) * T +
           (size_t)BQ * d;
}

/* z [T, d] (row stride ld) copied into zn and each row L2-normalized. */
static void normalized_copy(const float *z, int ld, int T, int d, float *zn) {
    for (int t = 0; t < T; t++) memcpy(zn + (size_t)t * d, z + (size_t)t * ld, (size_t)d * sizeof(float));
    op_l2_normalize_rows(zn, T, d);
}

/* GEM's self-self attention of one head (one iteration, as its default):
 * for z in v, k, q: zn = normalize(z), z1 = normalize(softmax(t zn zn^T) zn),
 * out += softmax(t z1 z1^T) v; then out /= 3. The sum runs in GEM's order
 * (v, k, q). zn, z1: [T, d] scratch. */
static void gem_head(const float *q, const float *k, const float *v, int ld, int T, int d, float t,
                     int head, float *zn, float *z1, float *tile, float *out, int ldo) {
    static const op_attention_spec plain = {OP_ATTN_QK, 0, NULL, 0.0f, NULL, 0};
    const float *z[3] = {v, k, q};
    for (int i = 0; i < 3; i++) {
        normalized_copy(z[i], ld, T, d, zn);
        fused_head(&(head_operands){zn, zn, zn, d, d, NULL}, T, d, t, &plain, head, 0, z1, d, tile);
        op_l2_normalize_rows(z1, T, d);
        fused_head(&(head_operands){z1, z1, v, d, ld, NULL}, T, d, t, &plain, head, i > 0, out, ldo, tile);
    }
    for (int r = 0; r < T; r++)
        for (int c = 0; c < d; c++) out[(size_t)r * ldo + c] /= 3.0f;
}

/* One head: out_h = P v_h, written into the head's columns, with P the
 * attention of the spec's kind. scratch: op_attention_thread_scratch floats. */
static void attention_head(const float *qkv, int T, int W, int d, int h, const op_attention_spec *a,
                           float *scratch, float *out) {
    int ld = 3 * W;
    float scale = 1.0f / sqrtf((float)d);
    const float *q = qkv + h * d, *k = qkv + W + h * d, *v = qkv + 2 * W + h * d;
    float *o = out + h * d, *zn = scratch + fused_tile_floats(T, d), *z1 = zn + (size_t)T * d;
    float *b16 = a->bf16 ? zn : NULL; /* GEM's buffers, which the bf16 kinds do not use */
    switch (a->kind) {
    case OP_ATTN_SELF: /* softmax of a mask that is 0 on the diagonal, -inf elsewhere */
        for (int t = 0; t < T; t++) memcpy(o + (size_t)t * W, v + (size_t)t * ld, (size_t)d * sizeof(float));
        return;
    case OP_ATTN_GEM: gem_head(q, k, v, ld, T, d, a->inv_temp, h, zn, z1, scratch, o, W); return;
    case OP_ATTN_CSA:
        fused_head(&(head_operands){q, q, v, ld, ld, b16}, T, d, scale, a, h, 0, o, W, scratch);
        fused_head(&(head_operands){k, k, v, ld, ld, b16}, T, d, scale, a, h, 1, o, W, scratch);
        return;
    case OP_ATTN_VV: q = k = v; break;
    case OP_ATTN_QQ: k = q; break;
    case OP_ATTN_KK: q = k; break;
    case OP_ATTN_QK: break;
    }
    fused_head(&(head_operands){q, k, v, ld, ld, b16}, T, d, scale, a, h, 0, o, W, scratch);
}

/* Heads run in parallel, each on its own slice of the scratch; inside an
 * enclosing parallel region (many short sequences) they run serially and
 * the caller parallelizes over sequences instead. Per-head GEMMs are small,
 * so threads over heads beat threads inside one GEMM. */
void op_attention(const float *qkv, int T, int W, int heads, const op_attention_spec *a,
                  float *scratch, float *out) {
    int d = W / heads;
    if (omp_in_parallel()) {
        for (int h = 0; h < heads; h++) attention_head(qkv, T, W, d, h, a, scratch, out);
        return;
    }
    size_t per_thread = op_attention_thread_scratch(T, d);
#pragma omp parallel for schedule(dynamic, 1)
    for (int h = 0; h < heads; h++)
        attention_head(qkv, T, W, d, h, a, scratch + (size_t)omp_get_thread_num() * per_thread, out);
}

/* The fused kernel's tiles, and GEM's two [T, d] buffers or the bf16
 * packs: linear in T. */
size_t op_attention_thread_scratch(int T, int d) {
    size_t gem = round16((size_t)2 * T * d), b16 = bf16_floats(T, d);
    return fused_tile_floats(T, d) + (gem > b16 ? gem : b16);
}

size_t op_attention_scratch(int T, int d) {
    return (size_t)omp_get_max_threads() * op_attention_thread_scratch(T, d);
}
