/* SAM's image encoder (ImageEncoderViT): patch embedding, absolute position
 * embedding, transformer blocks with windowed or global attention and
 * decomposed relative positions, and the convolutional neck.
 * Tokens stay [G*G, D] (row-major over the grid, channels last). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include "base/workspace.h"
#include "ops/ops.h"
#include "sam.h"

static void trace(const cs_sam *m, const char *name, const float *x, size_t n) {
    if (m->trace) m->trace(m->trace_ctx, name, x, n);
}

/* y = x w^T + b (accumulate: y +=), through the bf16 kernel when the layer
 * has a packed copy. */
static void linear_to(const float *x, int M, const sam_linear *l, int accumulate, float *y) {
    if (l->w16.data) op_linear_bf16(x, M, l->in, &l->w16, l->b, accumulate, y);
    else if (accumulate) op_linear_accumulate(x, M, l->in, l->w, l->b, l->out, y);
    else op_linear(x, M, l->in, l->w, l->b, l->out, y);
}

static void linear(const float *x, int M, const sam_linear *l, float *y) { linear_to(x, M, l, 0, y); }

/* Non-overlapping P x P patches of pixels [3, S, S] as rows [G*G, 3*P*P],
 * each in the conv weight's (channel, ky, kx) order: the 16x16/16
 * convolution becomes one GEMM. */
static void patchify(const float *px, int S, int P, float *out) {
    int G = S / P, K = 3 * P * P;
#pragma omp parallel for schedule(static)
    for (int gy = 0; gy < G; gy++)
        for (int gx = 0; gx < G; gx++) {
            float *row = out + ((size_t)gy * G + gx) * K;
            for (int c = 0; c < 3; c++)
                for (int ky = 0; ky < P; ky++)
                    memcpy(row + (c * P + ky) * P, px + ((size_t)c * S + gy * P + ky) * S + gx * P,
                           sizeof(float) * P);
        }
}

/* Meta's Attention with add_decomposed_rel_pos on one sequence (a window,
 * or the whole grid) of T = side^2 tokens, through the project's fused
 * attention (op_attention: no T x T score matrix is stored):
 * logits = (q * scale) k^T + rel_h[(i,j), kh] + rel_w[(i,j), kw], where
 * rel_h[(i,j), kh] = q(i,j) . rel_pos_h[i - kh + side - 1] (q unscaled),
 * and likewise for w. q . table^T is one GEMM per head and table
 * ([T, 2 side - 1]); the bias callback picks the terms out by index. */
typedef struct rel_pos_bias {
    const float *rh, *rw; /* [heads][T][R] */
    int side, T, R;
} rel_pos_bias;

static void add_rel_pos(const void *ctx, int head, int q0, int nq, int k0, int nk, float *s, int lds) {
    const rel_pos_bias *b = ctx;
    int side = b->side;
    float w_terms[2 * SAM_MAX_GRID]; /* the row's w terms in key order kw = 0.. */
    for (int i = 0; i < nq; i++) {
        int row = q0 + i, qi = row / side, qj = row % side;
        const float *a = b->rh + ((size_t)head * b->T + row) * b->R + qi + side - 1;
        const float *c = b->rw + ((size_t)head * b->T + row) * b->R + qj + side - 1;
        for (int kw = 0; kw < side; kw++) w_terms[kw] = c[-kw];
        float *si = s + (size_t)i * lds;
        for (int j = 0; j < nk;) { /* one run of keys along a grid row */
            int ki = (k0 + j) / side, kj = (k0 + j) % side, n = side - kj < nk - j ? side - kj : nk - j;
            float h = a[-ki];
            float *run = si + j;
            const float *w = w_terms + kj;
            for (int t = 0; t < n; t++) run[t] = (run[t] + h) + w[t];
            j += n;
        }
    }
}

/* Floats of one sequence's attention: the relative-position tables of every
 * head and op_attention's scratch (all threads' for a single sequence, one
 * thread's when the windows run in parallel). */
static size_t sequence_scratch(int side, int D, int heads, int threads) {
    size_t T = (size_t)side * side, R = (size_t)(2 * side - 1);
    size_t att = threads > 1 ? op_attention_scratch((int)T, D / heads) : op_attention_thread_scratch((int)T, D / heads);
    return 2 * (size_t)heads * T * R + att;
}

/* One sequence: qkv [T, 3D] -> out [T, D] (before the projection). */
static void sequence_attention(const float *qkv, int side, int D, int heads, const float *rel_h,
                               const float *rel_w, int bf16, float *scratch, float *out) {
    int T = side * side, hd = D / heads, R = 2 * side - 1;
    float *rh = scratch, *rw = rh + (size_t)heads * T * R, *att = rw + (size_t)heads * T * R;
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int h = 0; h < heads; h++) {
        op_gemm(0, 1, T, R, hd, 1.0f, qkv + h * hd, 3 * D, rel_h, hd, 0.0f, rh + (size_t)h * T * R, R);
        op_gemm(0, 1, T, R, hd, 1.0f, qkv + h * hd, 3 * D, rel_w, hd, 0.0f, rw + (size_t)h * T * R, R);
    }
    rel_pos_bias bias = {rh, rw, side, T, R};
    op_attention_spec spec = {OP_ATTN_QK, 0, add_rel_pos, 0.0f, &bias, bf16};
    op_attention(qkv, T, D, heads, &spec, att, out);
}

/* n_seq sequences (windows) of side^2 tokens each: windows in parallel,
 * each thread with its own part of scratch (attention_scratch floats); a
 * single sequence (global attention) runs its heads in parallel. */
static size_t attention_scratch(int n_seq, int side, int D, int heads) {
    int threads = omp_get_max_threads();
    return n_seq > 1 ? (size_t)threads * sequence_scratch(side, D, heads, 1)
                     : sequence_scratch(side, D, heads, threads);
}

static void attention(const float *qkv, int n_seq, int side, int D, int heads, const float *rel_h,
                      const float *rel_w, int bf16, float *scratch, float *out) {
    size_t T = (size_t)side * side;
    if (n_seq == 1) {
        sequence_attention(qkv, side, D, heads, rel_h, rel_w, bf16, scratch, out);
        return;
    }
    size_t per = sequence_scratch(side, D, heads, 1);
#pragma omp parallel for schedule(dynamic, 1)
    for (int w = 0; w < n_seq; w++)
        sequence_attention(qkv + w * T * 3 * D, side, D, heads, rel_h, rel_w, bf16,
                           scratch + (size_t)omp_get_thread_num() * per, out + w * T * D);
}

/* window_partition of rows [G, G, C], padded to Hp = ceil(G/ws)*ws and cut
 * into (Hp/ws)^2 windows [ws*ws, C], row-major; a padding row gets pad.
 * Meta pads the normalized tokens with zeros and projects them to qkv; the
 * encoder projects only the real tokens and pads qkv with what a zero row
 * projects to, the bias. */
static void window_partition(const float *x, int G, int C, int ws, const float *pad, float *win) {
    int nw = (G + ws - 1) / ws;
#pragma omp parallel for schedule(static)
    for (int wy = 0; wy < nw; wy++)
        for (int wx = 0; wx < nw; wx++)
            for (int i = 0; i < ws; i++)
                for (int j = 0; j < ws; j++) {
                    int y = wy * ws + i, xx = wx * ws + j;
                    float *dst = win + (((size_t)(wy * nw + wx) * ws + i) * ws + j) * C;
                    memcpy(dst, y < G && xx < G ? x + ((size_t)y * G + xx) * C : pad, sizeof(float) * C);
                }
}

/* window_unpartition then the crop to G x G: windows [n, ws*ws, C] -> rows
 * [G*G, C]. Rows are independent through the output projection, so it
 * runs after the crop, on the real tokens only. */
static void window_unpartition(const float *win, int G, int C, int ws, float *x) {
    int nw = (G + ws - 1) / ws;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < G; y++)
        for (int xx = 0; xx < G; xx++)
            memcpy(x + ((size_t)y * G + xx) * C,
                   win + (((size_t)((y / ws) * nw + xx / ws) * ws + y % ws) * ws + xx % ws) * C,
                   sizeof(float) * C);
}

/* Scratch floats of any block: the normalized tokens; then either qkv and
 * the attention's output (padded windows) and a spare area (the real
 * tokens' qkv before the partition, the attention's own scratch, the
 * traced projection: one at a time), or the MLP's hidden layer. Sized for
 * the threads of the caller, once per image: fresh pages cost a fault and
 * a clear each (more than a GEMM's worth of time on a VM), so nothing is
 * allocated per block. */
static size_t block_spare(const cs_sam_config *c, int side) {
    size_t GG = (size_t)c->grid * c->grid, D = (size_t)c->enc_width;
    int nw = (c->grid + side - 1) / side;
    size_t T = (size_t)nw * nw * side * side, a = attention_scratch(nw * nw, side, (int)D, c->enc_heads);
    size_t spare = 3 * GG * D > T * D ? 3 * GG * D : T * D;
    return spare > a ? spare : a;
}

size_t sam_block_scratch(const cs_sam_config *c) {
    size_t GG = (size_t)c->grid * c->grid, D = (size_t)c->enc_width, attn = 0;
    for (int global = 0; global < 2; global++) {
        int side = global || !c->window ? c->grid : c->window, nw = (c->grid + side - 1) / side;
        size_t T = (size_t)nw * nw * side * side, a = 4 * T * D + block_spare(c, side);
        if (a > attn) attn = a;
    }
    size_t mlp = GG * c->enc_mlp;
    return GG * D + (attn > mlp ? attn : mlp);
}

/* x [G*G, D] += attn(norm1(x)); x += mlp(norm2(x)). */
void sam_encoder_block(cs_sam *m, int index, float *x, float *scratch) {
    const cs_sam_config *c = &m->cfg;
    const sam_enc_block *k = &m->blocks[index];
    int G = c->grid, D = c->enc_width, ws = k->window ? k->window : G;
    int nw = (G + ws - 1) / ws, n_seq = nw * nw, GG = G * G;
    size_t T = (size_t)n_seq * ws * ws; /* tokens incl. the padding */
    float *h = scratch, *qkv = h + (size_t)GG * D, *att = qkv + T * 3 * D, *spare = att + T * D;
    op_layer_norm(x, GG, D, k->norm1.w, k->norm1.b, SAM_ENC_LN_EPS, h);
    if (k->window) {
        linear(h, GG, &k->qkv, spare);
        window_partition(spare, G, 3 * D, ws, k->qkv.b, qkv);
    } else
        linear(h, GG, &k->qkv, qkv);
    attention(qkv, n_seq, ws, D, c->enc_heads, k->rel_h, k->rel_w, m->precision == CS_PRECISION_BF16,
              spare, att);
    if (m->trace) { /* Meta's attention output: projected, windows and padding included */
        char name[32];
        snprintf(name, sizeof name, "block%02d_attn", index);
        linear(att, (int)T, &k->proj, spare);
        trace(m, name, spare, T * D);
    }
    const float *out = att;
    if (k->window) {
        window_unpartition(att, G, D, ws, h);
        out = h;
    }
    linear_to(out, GG, &k->proj, 1, x);
    /* MLP: lin1, exact GELU, lin2 added into x. */
    float *hid = h + (size_t)GG * D;
    op_layer_norm(x, GG, D, k->norm2.w, k->norm2.b, SAM_ENC_LN_EPS, h);
    linear(h, GG, &k->lin1, hid);
    op_gelu(hid, (size_t)GG * c->enc_mlp);
    linear_to(hid, GG, &k->lin2, 1, x);
    if (m->trace) {
        char name[32];
        snprintf(name, sizeof name, "block%02d", index);
        trace(m, name, x, (size_t)GG * D);
    }
}

/* Neck: 1x1 conv D -> E (no bias), LayerNorm2d, 3x3 conv pad 1 (no bias),
 * LayerNorm2d. x [G*G, D] tokens -> out [E, G, G]; scratch of neck_scratch
 * floats. */
static op_conv_shape neck_conv(const cs_sam_config *c) {
    return (op_conv_shape){c->embed_dim, c->grid, c->grid, c->embed_dim, 3, 1, 1};
}

static size_t neck_scratch(const cs_sam_config *c) {
    op_conv_shape cs = neck_conv(c);
    return (size_t)c->embed_dim * c->grid * c->grid + op_conv2d_scratch(&cs);
}

static void neck(cs_sam *m, const float *x, float *scratch, float *out) {
    const cs_sam_config *c = &m->cfg;
    int G = c->grid, D = c->enc_width, E = c->embed_dim;
    op_conv_shape cs = neck_conv(c);
    float *a = scratch, *col = a + (size_t)E * G * G;
    /* CHW [E, G*G] = W [E, D] x^T: the 1x1 conv and the transpose in one GEMM. */
    op_gemm(0, 1, E, G * G, D, 1.0f, m->neck0_w, D, x, D, 0.0f, a, G * G);
    trace(m, "neck0", a, (size_t)E * G * G);
    op_layer_norm_channels(a, E, G * G, m->neck1.w, m->neck1.b, SAM_ENC_LN_EPS);
    trace(m, "neck1", a, (size_t)E * G * G);
    op_conv2d(&cs, a, m->neck2_w, NULL, 0, 0, col, out);
    trace(m, "neck2", out, (size_t)E * G * G);
    op_layer_norm_channels(out, E, G * G, m->neck3.w, m->neck3.b, SAM_ENC_LN_EPS);
}

cs_status sam_image_encoder(cs_sam *m, const float *pixels, float *embedding) {
    cs_status ready = op_gemm_ready();
    if (ready != CS_OK) return ready;
    const cs_sam_config *c = &m->cfg;
    int G = c->grid, D = c->enc_width, P = c->patch_size;
    /* one scratch for the patches, the blocks and the neck in turn, from
     * the model's workspace: a second image reuses the first's pages */
    size_t tokens = (size_t)G * G, need = tokens * 3 * P * P;
    if (sam_block_scratch(c) > need) need = sam_block_scratch(c);
    if (neck_scratch(c) > need) need = neck_scratch(c);
    float *x = ws_take(&m->ws, tokens * D, sizeof(float)), *scratch = ws_take(&m->ws, need, sizeof(float));
    cs_status s = x && scratch ? CS_OK : CS_ERR_NOMEM;
    if (s == CS_OK) {
        patchify(pixels, c->image_size, P, scratch);
        op_linear(scratch, (int)tokens, 3 * P * P, m->patch.w, m->patch.b, D, x);
        trace(m, "patch_embed", x, tokens * D);
        op_add(x, m->pos, tokens * D);
        for (int i = 0; i < c->enc_depth; i++) sam_encoder_block(m, i, x, scratch);
        neck(m, x, scratch, embedding);
    }
    ws_release(&m->ws);
    return s;
}

/* bf16 copies of the encoder blocks' four linear layers (where the time
 * goes); the fp32 weights stay for fp32 and the rest of the model. */
static void free_bf16(cs_sam *m) {
    for (int i = 0; m->blocks && i < m->cfg.enc_depth; i++) {
        sam_enc_block *k = &m->blocks[i];
        op_bf16_free(&k->qkv.w16);
        op_bf16_free(&k->proj.w16);
        op_bf16_free(&k->lin1.w16);
        op_bf16_free(&k->lin2.w16);
    }
}

void sam_free_bf16(cs_sam *m) { free_bf16(m); }

cs_status cs_sam_set_precision(cs_sam *m, cs_precision p) {
    if (p == CS_PRECISION_INT8) return error_set(CS_ERR_ARG, "SAM's encoder runs in fp32 or bf16, not int8");
    if (p != CS_PRECISION_FP32 && p != CS_PRECISION_BF16)
        return error_set(CS_ERR_ARG, "unknown precision %d", (int)p);
    if (p == m->precision) return CS_OK;
    free_bf16(m);
    m->precision = CS_PRECISION_FP32;
    if (p == CS_PRECISION_FP32) return CS_OK;
    cs_status s = CS_OK;
    for (int i = 0; s == CS_OK && i < m->cfg.enc_depth; i++) {
        sam_enc_block *k = &m->blocks[i];
        sam_linear *l[4] = {&k->qkv, &k->proj, &k->lin1, &k->lin2};
        for (int j = 0; s == CS_OK && j < 4; j++) s = op_bf16_pack(l[j]->w, l[j]->out, l[j]->in, &l[j]->w16);
    }
    if (s != CS_OK) {
        free_bf16(m);
        return s;
    }
    m->precision = CS_PRECISION_BF16;
    return CS_OK;
}
