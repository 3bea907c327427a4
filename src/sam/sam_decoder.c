/* SAM's prompt encoder (PromptEncoder) and mask decoder (MaskDecoder with
 * its TwoWayTransformer). Tokens are rows [N, E]; images CHW [C, H, W]. */
#include <math.h>
#include <omp.h>
#include <string.h>
#include "base/workspace.h"
#include "ops/ops.h"
#include "sam.h"

static void trace(const cs_sam *m, const char *name, const float *x, size_t n) {
    if (m->trace) m->trace(m->trace_ctx, name, x, n);
}

/* The token side has a handful of rows (one point: 7), the image side G*G. */
static void linear(const float *x, int M, const sam_linear *l, float *y) {
    if (M <= OP_FEW_ROWS)
        op_linear_few_rows(x, M, l->in, l->w, l->b, l->out, y);
    else
        op_linear(x, M, l->in, l->w, l->b, l->out, y);
}

/* ---------------------------------------------------------------- prompt encoder */

/* PositionEmbeddingRandom._pe_encoding of one point (x, y) in [0, 1]:
 * p = 2 pi ((2x - 1) G[0] + (2y - 1) G[1]); [sin p, cos p]. float32 as the
 * reference computes it. */
static void fourier_pe(const cs_sam *m, float x, float y, float *out) {
    int H = m->cfg.embed_dim / 2;
    const float *g0 = m->pe_gauss, *g1 = m->pe_gauss + H;
    float cx = 2.0f * x - 1.0f, cy = 2.0f * y - 1.0f;
    for (int i = 0; i < H; i++) {
        float p = (float)(2.0 * M_PI) * (cx * g0[i] + cy * g1[i]);
        out[i] = sinf(p);
        out[H + i] = cosf(p);
    }
}

void sam_dense_pe(const cs_sam *m, float *pe) {
    int G = m->cfg.grid, E = m->cfg.embed_dim;
    float v[1024];
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) {
            fourier_pe(m, ((float)j + 0.5f) / (float)G, ((float)i + 0.5f) / (float)G, v);
            for (int c = 0; c < E; c++) pe[((size_t)c * G + i) * G + j] = v[c];
        }
}

int sam_sparse_count(const sam_prompt_frame *p) {
    /* Points without a box get one padding point (label -1). */
    int n = p->n_points + (p->n_points > 0 && !p->box ? 1 : 0);
    return n + (p->box ? 2 : 0);
}

/* A coordinate in the model frame to the PE's [0, 1]: (v + 0.5) / S. */
static float unit(float v, int S) { return (v + 0.5f) / (float)S; }

/* _embed_points and _embed_boxes: sparse [n, E]. */
static void sparse_embeddings(const cs_sam *m, const sam_prompt_frame *p, float *sparse) {
    int E = m->cfg.embed_dim, S = m->cfg.image_size, n = 0;
    for (int i = 0; i < p->n_points; i++, n++) {
        float *t = sparse + (size_t)n * E;
        fourier_pe(m, unit(p->coords[2 * i], S), unit(p->coords[2 * i + 1], S), t);
        op_add(t, m->point_emb[p->labels[i] ? 1 : 0], (size_t)E);
    }
    if (p->n_points > 0 && !p->box) /* the pad point: its PE zeroed */
        memcpy(sparse + (size_t)n++ * E, m->not_a_point, sizeof(float) * E);
    if (p->box)
        for (int corner = 0; corner < 2; corner++, n++) {
            float *t = sparse + (size_t)n * E;
            fourier_pe(m, unit(p->box[2 * corner], S), unit(p->box[2 * corner + 1], S), t);
            op_add(t, m->point_emb[2 + corner], (size_t)E);
        }
}

/* _embed_masks: mask [4G, 4G] -> dense [E, G, G] through conv 2x2/2, LN2d,
 * GELU, conv 2x2/2, LN2d, GELU, conv 1x1. Without a mask: no_mask_embed
 * at every pixel. */
static cs_status dense_embeddings(const cs_sam *m, const float *mask, float *dense) {
    int G = m->cfg.grid, E = m->cfg.embed_dim, mc = m->cfg.mask_in_chans;
    size_t GG = (size_t)G * G;
    if (!mask) {
        for (int c = 0; c < E; c++)
            for (size_t i = 0; i < GG; i++) dense[c * GG + i] = m->no_mask[c];
        return CS_OK;
    }
    op_conv_shape c0 = {1, 4 * G, 4 * G, mc / 4, 2, 2, 0}, c3 = {mc / 4, 2 * G, 2 * G, mc, 2, 2, 0},
                  c6 = {mc, G, G, E, 1, 1, 0};
    size_t n_col = op_conv2d_scratch(&c0) > op_conv2d_scratch(&c3) ? op_conv2d_scratch(&c0)
                                                                    : op_conv2d_scratch(&c3);
    float *a = mem_alloc((size_t)mc / 4 * 4 * GG, sizeof(float)), *b = mem_alloc((size_t)mc * GG, sizeof(float));
    float *col = mem_alloc(n_col, sizeof(float));
    if (!a || !b || !col) {
        cs_free(a);
        cs_free(b);
        cs_free(col);
        return CS_ERR_NOMEM;
    }
    op_conv2d(&c0, mask, m->md0_w, m->md0_b, 0, 0, col, a);
    op_layer_norm_channels(a, mc / 4, (int)(4 * GG), m->md1.w, m->md1.b, SAM_ENC_LN_EPS);
    op_gelu(a, (size_t)mc / 4 * 4 * GG);
    op_conv2d(&c3, a, m->md3_w, m->md3_b, 0, 0, col, b);
    op_layer_norm_channels(b, mc, (int)GG, m->md4.w, m->md4.b, SAM_ENC_LN_EPS);
    op_gelu(b, (size_t)mc * GG);
    op_conv2d(&c6, b, m->md6_w, m->md6_b, 0, 0, NULL, dense);
    cs_free(a);
    cs_free(b);
    cs_free(col);
    return CS_OK;
}

/* ---------------------------------------------------------------- two-way transformer */

/* Meta's decoder Attention: q, k, v projected to `inner`, split into heads,
 * softmax(q k^T / sqrt(head dim)) v, heads joined, out_proj. out [Nq, E]
 * (overwritten).
 *
 * Between the prompt tokens (Nq, a handful) and the image (Nk = G*G) the
 * projections of the image side dominate (Nk x E x inner each). When the
 * tokens are few (heads x tokens < inner, sam_cross_folds), the projection
 * is moved to the token side by associativity instead:
 *   token -> image: q_h k_h^T = (q_h Wk_h) x_k^T + q_h bk_h, and the last
 *     term is the same for every key of a row, which softmax ignores;
 *     P_h (x_v Wv_h^T + bv_h) = (P_h x_v) Wv_h^T + bv_h, P's rows sum to 1;
 *   image -> token: q_h k_h^T = x_q (k_h Wq_h)^T + bq_h k_h^T (per key);
 *     out = sum_h P_h (v_h Wo_h^T) + bo.
 * The image side then meets 2 x heads x tokens rows of E instead of two
 * [E, inner] projections: 2.3x fewer FLOPs for one point on ViT-B's
 * decoder. The same sums in another order: equal to rounding (the parity
 * tests hold either way; test_sam_units compares the two orders). */
int sam_cross_folds(const cs_sam *m, int heads, int n_tokens, int inner) {
    if (m->cross_fold >= 0) return m->cross_fold;
    return (size_t)heads * n_tokens < (size_t)inner;
}

/* The folded path's scratch: the token side, then per thread a block's
 * scores [I2T_BLOCK, R] and output rows [I2T_BLOCK, E]. 96 rows: small
 * enough for L2 with the block's keys, and no divisor of the usual 16^2
 * (tiny goldens) and 64^2 image tokens, so that the parity tests also run
 * the shorter last block. */
#define I2T_BLOCK 96

static size_t folded_keys_scratch(int heads, int Nk, int inner, int E) {
    size_t R = (size_t)heads * Nk;
    return 2 * (size_t)Nk * inner + 2 * R * E + R +
           (size_t)omp_get_max_threads() * I2T_BLOCK * (R + (size_t)E);
}

static size_t attn_scratch(const sam_attn *a, int heads, int Nq, int Nk) {
    size_t inner = (size_t)a->q.out, E = (size_t)a->q.in, few = (size_t)(Nq < Nk ? Nq : Nk);
    size_t many = (size_t)(Nq < Nk ? Nk : Nq);
    size_t plain = inner * (Nq + 2 * (size_t)Nk + Nq) + (size_t)omp_get_max_threads() * Nq * Nk;
    size_t folded = 3 * inner * few + 2 * heads * few * E + heads * few * many + heads * few;
    size_t need = plain > folded ? plain : folded;
    if (Nk < Nq) {
        size_t keys = folded_keys_scratch(heads, Nk, (int)inner, (int)E);
        if (keys > need) need = keys;
    }
    return need;
}

static void attention_plain(const sam_attn *a, int heads, const float *qin, int Nq, const float *kin,
                            int Nk, const float *vin, float *out, float *scratch) {
    int inner = a->q.out, hd = inner / heads;
    float *q = scratch, *k = q + (size_t)Nq * inner, *v = k + (size_t)Nk * inner,
          *o = v + (size_t)Nk * inner, *scores = o + (size_t)Nq * inner;
    linear(qin, Nq, &a->q, q);
    linear(kin, Nk, &a->k, k);
    linear(vin, Nk, &a->v, v);
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)Nq * Nk * hd > 65536)
    for (int h = 0; h < heads; h++) {
        float *sc = scores + (size_t)omp_get_thread_num() * Nq * Nk;
        op_gemm(0, 1, Nq, Nk, hd, scale, q + h * hd, inner, k + h * hd, inner, 0.0f, sc, Nk);
        op_softmax_rows(sc, Nq, Nk);
        op_gemm(0, 0, Nq, hd, Nk, 1.0f, sc, Nk, v + h * hd, inner, 0.0f, o + h * hd, inner);
    }
    linear(o, Nq, &a->out, out);
}

/* Part t of nt of [0, n), its bounds multiples of `align` (but the last). */
static int slice(int n, int t, int nt, int align) {
    if (t >= nt) return n;
    int at = (int)((long)n * t / nt) / align * align;
    return at < n ? at : n;
}

/* Few queries (the tokens) on many keys (the image), folded as above. The
 * heads' rows are stacked, h * Nq + i, so that each step is one GEMM. */
static void attention_few_queries(const sam_attn *a, int heads, const float *qin, int Nq,
                                  const float *kin, int Nk, const float *vin, float *out,
                                  float *scratch) {
    int inner = a->q.out, hd = inner / heads, E = a->q.in, R = heads * Nq;
    float *q = scratch, *o = q + (size_t)Nq * inner, *qk = o + (size_t)Nq * inner,
          *pv = qk + (size_t)R * E, *scores = pv + (size_t)R * E;
    float scale = 1.0f / sqrtf((float)hd);
    linear(qin, Nq, &a->q, q);
    /* Per head products of a few rows: a head per thread (OpenBLAS would
     * wake its threads for each). */
#pragma omp parallel for schedule(static)
    for (int h = 0; h < heads; h++) /* scale q_h Wk_h */
        op_gemm(0, 0, Nq, E, hd, scale, q + h * hd, inner, a->k.w + (size_t)h * hd * E, E, 0.0f,
                qk + (size_t)h * Nq * E, E);
    /* Each thread a slice of the keys for the scores, then of the rows for
     * the softmax, then of pv's columns: one-thread products on a part of
     * the image each (OpenBLAS's own split of these flat shapes ran 20-30%
     * slower), and an element's sum is the same whatever the thread count. */
#pragma omp parallel
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int k0 = slice(Nk, t, nt, 16), k1 = slice(Nk, t + 1, nt, 16);
        int r0 = slice(R, t, nt, 1), r1 = slice(R, t + 1, nt, 1);
        int e0 = slice(E, t, nt, 8), e1 = slice(E, t + 1, nt, 8);
        if (k1 > k0)
            op_gemm(0, 1, R, k1 - k0, E, 1.0f, qk, E, kin + (size_t)k0 * E, E, 0.0f, scores + k0, Nk);
#pragma omp barrier
        if (r1 > r0) op_softmax_rows(scores + (size_t)r0 * Nk, r1 - r0, Nk);
#pragma omp barrier
        if (e1 > e0) op_gemm(0, 0, R, e1 - e0, Nk, 1.0f, scores, Nk, vin + e0, E, 0.0f, pv + e0, E);
    }
#pragma omp parallel for schedule(static)
    for (int h = 0; h < heads; h++) { /* (P_h x_v) Wv_h^T + bv_h */
        op_gemm(0, 1, Nq, hd, E, 1.0f, pv + (size_t)h * Nq * E, E, a->v.w + (size_t)h * hd * E, E, 0.0f,
                o + h * hd, inner);
        for (int i = 0; i < Nq; i++) op_add(o + (size_t)i * inner + h * hd, a->v.b + h * hd, (size_t)hd);
    }
    linear(o, Nq, &a->out, out);
}

/* Many queries (the image) on few keys (the tokens), folded as above: the
 * token side once (fold_keys), then any block of image rows on its own
 * (folded_rows). The scores of a query hold the heads interleaved, column
 * j * heads + h, so that one softmax step covers every head at once
 * (op_softmax_groups: 2.5x less time than a softmax per head's row of Nk). */
typedef struct folded_keys {
    int heads, Nk, R, E;
    float *kq, *vo, *kb; /* [R, E] scale k_h Wq_h; [R, E] v_h Wo_h^T; [R] scale bq_h . k_h */
    const float *bias;   /* out_proj's bias */
} folded_keys;

static void fold_keys(const sam_attn *a, int heads, const float *kin, int Nk, const float *vin,
                      float *scratch, folded_keys *f) {
    int inner = a->q.out, hd = inner / heads, E = a->q.in, R = heads * Nk;
    float *k = scratch, *v = k + (size_t)Nk * inner;
    *f = (folded_keys){heads, Nk, R, E, v + (size_t)Nk * inner, NULL, NULL, a->out.b};
    f->vo = f->kq + (size_t)R * E;
    f->kb = f->vo + (size_t)R * E;
    float scale = 1.0f / sqrtf((float)hd);
    linear(kin, Nk, &a->k, k);
    linear(vin, Nk, &a->v, v);
#pragma omp parallel for schedule(static)
    for (int h = 0; h < heads; h++) {
        op_gemm(0, 0, Nk, E, hd, scale, k + h * hd, inner, a->q.w + (size_t)h * hd * E, E, 0.0f,
                f->kq + (size_t)h * E, heads * E);
        for (int j = 0; j < Nk; j++) {
            float dot = 0.0f;
            for (int d = 0; d < hd; d++) dot += a->q.b[h * hd + d] * k[(size_t)j * inner + h * hd + d];
            f->kb[j * heads + h] = scale * dot;
        }
        /* v_h Wo_h^T: Wo's columns of head h */
        op_gemm(0, 1, Nk, E, hd, 1.0f, v + h * hd, inner, a->out.w + h * hd, inner, 0.0f,
                f->vo + (size_t)h * E, heads * E);
    }
}

/* n image rows q [n, E] -> out [n, E]; scores [n, R] is scratch. */
static void folded_rows(const folded_keys *f, const float *q, int n, float *scores, float *out) {
    int R = f->R, E = f->E;
    for (int i = 0; i < n; i++) memcpy(scores + (size_t)i * R, f->kb, sizeof(float) * R);
    op_gemm(0, 1, n, R, E, 1.0f, q, E, f->kq, E, 1.0f, scores, R);
    op_softmax_groups(scores, n, f->Nk, f->heads);
    for (int i = 0; i < n; i++) memcpy(out + (size_t)i * E, f->bias, sizeof(float) * E);
    op_gemm(0, 0, n, E, R, 1.0f, scores, R, f->vo, E, 1.0f, out, E);
}

static void attention(const cs_sam *m, const sam_attn *a, const float *qin, int Nq, const float *kin,
                      int Nk, const float *vin, float *out, float *scratch) {
    int heads = m->cfg.dec_heads, inner = a->q.out;
    if (Nq < Nk && sam_cross_folds(m, heads, Nq, inner))
        attention_few_queries(a, heads, qin, Nq, kin, Nk, vin, out, scratch);
    else
        attention_plain(a, heads, qin, Nq, kin, Nk, vin, out, scratch);
}

/* a + b into out, n floats. */
static void add_to(const float *a, const float *b, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

typedef struct twoway {
    int Nq, Nk, E;
    float *queries, *keys;    /* [Nq, E], [Nk, E]: updated */
    const float *qpe, *kpe;   /* the initial tokens, the dense PE as rows */
    float *qa, *ka, *tmp;     /* [Nq, E], [Nk, E] = keys + kpe, [max, E] */
    float *hidden;            /* [Nq, mlp] */
    float *scratch;
} twoway;

static void norm(float *x, int rows, int E, const cs_layer_norm *ln) {
    op_layer_norm(x, rows, E, ln->w, ln->b, SAM_DEC_LN_EPS, x);
}

/* The image attends to the tokens, adds the result and normalizes
 * (norm4), and refreshes ka = keys + kpe for the next attention. Folded,
 * every block of I2T_BLOCK image rows goes through all of that while it is
 * in cache, one block per thread: the token side is a few rows, so nothing
 * is shared but the folded keys. */
static void image_attends_tokens(const cs_sam *m, const sam_dec_layer *l, twoway *t) {
    int Nq = t->Nq, Nk = t->Nk, E = t->E, heads = m->cfg.dec_heads;
    add_to(t->queries, t->qpe, (size_t)Nq * E, t->qa);
    if (!sam_cross_folds(m, heads, Nq, l->i2t.q.out)) {
        attention_plain(&l->i2t, heads, t->ka, Nk, t->qa, Nq, t->queries, t->tmp, t->scratch);
        op_add(t->keys, t->tmp, (size_t)Nk * E);
        norm(t->keys, Nk, E, &l->norm4);
        add_to(t->keys, t->kpe, (size_t)Nk * E, t->ka);
        return;
    }
    folded_keys f;
    fold_keys(&l->i2t, heads, t->qa, Nq, t->queries, t->scratch, &f);
    float *blocks = f.kb + f.R;
#pragma omp parallel for schedule(static)
    for (int r0 = 0; r0 < Nk; r0 += I2T_BLOCK) {
        int n = Nk - r0 < I2T_BLOCK ? Nk - r0 : I2T_BLOCK;
        float *scores = blocks + (size_t)omp_get_thread_num() * I2T_BLOCK * (f.R + E);
        float *out = scores + (size_t)I2T_BLOCK * f.R;
        size_t at = (size_t)r0 * E, len = (size_t)n * E;
        folded_rows(&f, t->ka + at, n, scores, out);
        op_add(t->keys + at, out, len);
        norm(t->keys + at, n, E, &l->norm4);
        add_to(t->keys + at, t->kpe + at, len, t->ka + at);
    }
}

/* TwoWayAttentionBlock. Layer 0 (skip_first_layer_pe) replaces the queries
 * with their self attention: no PE, no residual. */
static void twoway_layer(const cs_sam *m, const sam_dec_layer *l, int first, twoway *t) {
    int Nq = t->Nq, Nk = t->Nk, E = t->E;
    size_t nq = (size_t)Nq * E;
    if (first) {
        attention(m, &l->self_attn, t->queries, Nq, t->queries, Nq, t->queries, t->tmp, t->scratch);
        memcpy(t->queries, t->tmp, nq * sizeof(float));
    } else {
        add_to(t->queries, t->qpe, nq, t->qa);
        attention(m, &l->self_attn, t->qa, Nq, t->qa, Nq, t->queries, t->tmp, t->scratch);
        op_add(t->queries, t->tmp, nq);
    }
    norm(t->queries, Nq, E, &l->norm1);
    /* tokens attend to the image */
    add_to(t->queries, t->qpe, nq, t->qa);
    attention(m, &l->t2i, t->qa, Nq, t->ka, Nk, t->keys, t->tmp, t->scratch);
    op_add(t->queries, t->tmp, nq);
    norm(t->queries, Nq, E, &l->norm2);
    /* MLP (ReLU) */
    linear(t->queries, Nq, &l->lin1, t->hidden);
    op_relu(t->hidden, (size_t)Nq * l->lin1.out);
    linear(t->hidden, Nq, &l->lin2, t->tmp);
    op_add(t->queries, t->tmp, nq);
    norm(t->queries, Nq, E, &l->norm3);
    image_attends_tokens(m, l, t);
}

static void twoway_final(const cs_sam *m, twoway *t) {
    size_t nq = (size_t)t->Nq * t->E;
    add_to(t->queries, t->qpe, nq, t->qa);
    attention(m, &m->final_attn, t->qa, t->Nq, t->ka, t->Nk, t->keys, t->tmp, t->scratch);
    op_add(t->queries, t->tmp, nq);
    norm(t->queries, t->Nq, t->E, &m->norm_final);
}

/* ---------------------------------------------------------------- output */

/* The output upscaling, one row of its input at a time, each on one thread
 * while it is in cache. ConvTranspose2d(k 2, s 2) is a GEMM of the row's
 * pixels [w, cin] and the weights [cin, 4 * cout] stored sub-pixel major
 * (sam_load), so its result is [w * 4, cout]: one row of channels per
 * output pixel (sub-pixel s = 2 dy + dx of input pixel x), ready for
 * LayerNorm2d, GELU and the masks' channel sums before it is scattered.
 * The bias goes in as the GEMM's C, as in op_linear. */
static void subpixel_conv(const float *x, int w, int cin, const float *W, const float *b, int cout,
                          float *y) {
    for (int r = 0; r < 4 * w; r++) memcpy(y + (size_t)r * cout, b, sizeof(float) * cout);
    op_gemm(0, 0, w, 4 * cout, cin, 1.0f, x, cin, W, 4 * cout, 1.0f, y, 4 * cout);
}

/* First stage: src rows [G*G, E] -> ConvT, LayerNorm2d, GELU -> rows of the
 * 2G x 2G image [4*G*G, E/4] (what the second stage's GEMM reads), in
 * groups of UPSCALE_ROWS input rows: one GEMM call packs the weights
 * [E, E] once for 4 G pixels instead of G (ViT-B: 4.6 -> 4.3 ms a prompt
 * on 2 threads), and the group's output (4 x 64 KB) still fits in L2.
 * scratch: upscale_scratch floats, a part per thread. */
#define UPSCALE_ROWS 4

static void upscale_first(const cs_sam *m, const float *src, float *out, float *scratch) {
    int G = m->cfg.grid, E = m->cfg.embed_dim, C = E / 4;
#pragma omp parallel for schedule(static)
    for (int y0 = 0; y0 < G; y0 += UPSCALE_ROWS) {
        int n = G - y0 < UPSCALE_ROWS ? G - y0 : UPSCALE_ROWS;
        float *t = scratch + (size_t)omp_get_thread_num() * UPSCALE_ROWS * 4 * G * C;
        subpixel_conv(src + (size_t)y0 * G * E, n * G, E, m->up0_w, m->up0_b, C, t);
        op_layer_norm(t, 4 * G * n, C, m->up1.w, m->up1.b, SAM_ENC_LN_EPS, t);
        op_gelu(t, (size_t)4 * G * C * n);
        for (int y = y0; y < y0 + n; y++)
            for (int x = 0; x < G; x++)
                for (int s = 0; s < 4; s++)
                    memcpy(out + ((size_t)(2 * y + s / 2) * 2 * G + 2 * x + s % 2) * C,
                           t + (((size_t)(y - y0) * G + x) * 4 + s) * C, sizeof(float) * C);
    }
}

/* Second stage: rows [4*G*G, E/4] -> ConvT, GELU (the upscaled embedding,
 * [E/8] per pixel of the 4G x 4G image), and at once every mask token's
 * masks = hyper . upscaled -> masks [T, 4G, 4G]. upscaled CHW [E/8, 4G, 4G]
 * is written only when asked (tracing). */
static void upscale_second(const cs_sam *m, const float *in, const float *hyper, float *masks,
                           float *upscaled, float *scratch) {
    int W = 2 * m->cfg.grid, Cin = m->cfg.embed_dim / 4, C = m->cfg.embed_dim / 8;
    int T = m->cfg.n_mask_tokens, L = 2 * W;
    size_t LL = (size_t)L * L;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < W; y++) {
        float *t = scratch + (size_t)omp_get_thread_num() * 4 * W * (C + T), *mk = t + (size_t)4 * W * C;
        subpixel_conv(in + (size_t)y * W * Cin, W, Cin, m->up3_w, m->up3_b, C, t);
        op_gelu(t, (size_t)4 * W * C);
        op_gemm(0, 1, 4 * W, T, C, 1.0f, t, C, hyper, C, 0.0f, mk, T);
        for (int x = 0; x < W; x++)
            for (int s = 0; s < 4; s++) {
                size_t at = (size_t)(2 * y + s / 2) * L + 2 * x + s % 2, r = (size_t)x * 4 + s;
                for (int k = 0; k < T; k++) masks[k * LL + at] = mk[r * T + k];
                if (upscaled)
                    for (int c = 0; c < C; c++) upscaled[c * LL + at] = t[r * C + c];
            }
    }
}

/* Per thread: the larger of the two stages' row buffers. */
static size_t upscale_scratch(const cs_sam_config *c) {
    size_t G = (size_t)c->grid, E = (size_t)c->embed_dim;
    size_t first = UPSCALE_ROWS * 4 * G * (E / 4), second = 8 * G * (E / 8 + (size_t)c->n_mask_tokens);
    return (first > second ? first : second) * (size_t)omp_get_max_threads();
}

/* MLP with ReLU between layers: x [in] -> y [out] (vectors). */
static void mlp_vector(const sam_mlp *mlp, const float *x, float *y) {
    float a[4096], b[4096];
    const float *in = x;
    for (int i = 0; i < mlp->n; i++) {
        float *out = i == mlp->n - 1 ? y : (i % 2 ? b : a);
        linear(in, 1, &mlp->layer[i], out);
        if (i < mlp->n - 1) op_relu(out, (size_t)mlp->layer[i].out);
        in = out;
    }
}

/* ---------------------------------------------------------------- decode */

cs_status sam_decode(cs_sam *m, const float *embedding, const sam_prompt_frame *p, float *masks,
                     float *iou) {
    cs_status ready = op_gemm_ready();
    if (ready != CS_OK) return ready;
    const cs_sam_config *c = &m->cfg;
    int G = c->grid, E = c->embed_dim, T = c->n_mask_tokens, Ns = sam_sparse_count(p);
    int Nq = 1 + T + Ns, Nk = G * G, E8 = E / 8;
    size_t GG = (size_t)G * G, up = 16 * GG, rows = (size_t)(Nq > Nk ? Nq : Nk);
    size_t att = attn_scratch(&m->final_attn, c->dec_heads, Nq, Nk);
    for (int i = 0; i < c->dec_depth; i++) {
        size_t a = attn_scratch(&m->layers[i].i2t, c->dec_heads, Nk, Nq),
               b = attn_scratch(&m->layers[i].self_attn, c->dec_heads, Nq, Nq);
        if (a > att) att = a;
        if (b > att) att = b;
    }
    /* The model's workspace: a second prompt reuses the first's memory. */
    cs_workspace *ws = &m->ws;
    float *queries = ws_take(ws, (size_t)Nq * E, 4), *query_pe = ws_take(ws, (size_t)Nq * E, 4);
    float *qa = ws_take(ws, (size_t)Nq * E, 4), *hidden = ws_take(ws, (size_t)Nq * c->dec_mlp, 4);
    /* Without a mask input the dense embedding is no_mask_embed at every
     * pixel: added per channel below instead of stored (unless traced). */
    int dense_stored = p->mask || m->trace;
    float *dense = dense_stored ? ws_take(ws, GG * E, 4) : NULL, *keys = ws_take(ws, GG * E, 4);
    float *ka = ws_take(ws, GG * E, 4);
    float *tmp = ws_take(ws, rows * E, 4), *scratch = ws_take(ws, att, 4);
    float *up1 = ws_take(ws, 4 * GG * (E / 4), 4), *up_scratch = ws_take(ws, upscale_scratch(c), 4);
    float *upscaled = m->trace ? ws_take(ws, up * E8, 4) : NULL, *hyper = ws_take(ws, (size_t)T * E8, 4);
    cs_status s = queries && query_pe && qa && hidden && (dense || !dense_stored) && keys && ka && tmp &&
                  scratch && up1 && up_scratch && (upscaled || !m->trace) && hyper ? CS_OK : CS_ERR_NOMEM;
    if (s == CS_OK && dense_stored) s = dense_embeddings(m, p->mask, dense);
    if (s != CS_OK) {
        ws_release(ws);
        return s;
    }
    if (dense) trace(m, "dense", dense, GG * E);
    /* tokens = [iou_token, mask_tokens, sparse]; they are also the query PE */
    memcpy(queries, m->iou_token, sizeof(float) * E);
    memcpy(queries + E, m->mask_tokens, sizeof(float) * T * E);
    sparse_embeddings(m, p, queries + (size_t)(1 + T) * E);
    trace(m, "sparse", queries + (size_t)(1 + T) * E, (size_t)Ns * E);
    memcpy(query_pe, queries, sizeof(float) * Nq * E);
    /* src = embedding + dense, as rows [G*G, E]: a transpose in tiles of 8
     * pixels (tiles of 32 wrote 32 rows 1 KB apart, which share 4 of L1's
     * 64 sets: 1.45 -> 1.2 ms on 2 threads for ViT-B); and ka = src + PE,
     * the first attention's keys */
#pragma omp parallel for schedule(static)
    for (size_t i0 = 0; i0 < GG; i0 += 8) {
        size_t i1 = i0 + 8 < GG ? i0 + 8 : GG;
        for (int ch = 0; ch < E; ch++)
            for (size_t i = i0; i < i1; i++)
                keys[i * E + ch] = embedding[ch * GG + i] + (dense ? dense[ch * GG + i] : m->no_mask[ch]);
        add_to(keys + i0 * E, m->key_pe + i0 * E, (i1 - i0) * E, ka + i0 * E);
    }
    twoway t = {Nq, Nk, E, queries, keys, query_pe, m->key_pe, qa, ka, tmp, hidden, scratch};
    for (int i = 0; i < c->dec_depth; i++) twoway_layer(m, &m->layers[i], i == 0, &t);
    twoway_final(m, &t);
    trace(m, "hs", queries, (size_t)Nq * E);
    trace(m, "src", keys, GG * E);
    /* each mask token's hypernetwork weighs the upscaled channels */
    for (int i = 0; i < T; i++) mlp_vector(&m->hyper[i], queries + (size_t)(1 + i) * E, hyper + (size_t)i * E8);
    trace(m, "hyper_in", hyper, (size_t)T * E8);
    /* upscaling (ConvT, LN2d, GELU, ConvT, GELU) and masks = hyper . upscaled */
    upscale_first(m, keys, up1, up_scratch);
    upscale_second(m, up1, hyper, masks, upscaled, up_scratch);
    if (upscaled) trace(m, "upscaled", upscaled, up * E8);
    mlp_vector(&m->iou_head, queries, iou);
    trace(m, "masks_all", masks, (size_t)T * up);
    trace(m, "iou_all", iou, (size_t)T);
    ws_release(ws);
    return CS_OK;
}
