/* The CLIP ViT image tower, plain and with architecture surgery. */
#include <math.h>
#include <string.h>
#include "ops/ops.h"
#include "transformer.h"

/* Patches of the [3, R, R] image as rows [N, 3*P*P] in conv1's (c, ky, kx)
 * order, so the patch embedding is one GEMM. */
static void im2col_patches(const float *pixels, int R, int P, float *patches) {
    int G = R / P;
    for (int gy = 0; gy < G; gy++)
        for (int gx = 0; gx < G; gx++) {
            float *row = patches + ((size_t)gy * G + gx) * 3 * P * P;
            for (int c = 0; c < 3; c++)
                for (int ky = 0; ky < P; ky++)
                    memcpy(row + (c * P + ky) * P,
                           pixels + ((size_t)c * R + gy * P + ky) * R + gx * P, P * sizeof(float));
        }
}

/* Position embedding for a G x G grid: the native one, or its patch rows
 * bilinearly resized (align_corners=False) with the class row kept, as the
 * reference does for other input sizes. out: [1 + G*G, W]. */
void vit_position_embedding(const cs_model *m, int G, float *out) {
    const cs_vit *v = &m->vit;
    int native = m->cfg.grid, W = m->cfg.vision_width;
    if (G == native) {
        memcpy(out, v->pos_emb, ((size_t)G * G + 1) * W * sizeof(float));
        return;
    }
    memcpy(out, v->pos_emb, (size_t)W * sizeof(float));
    op_resize_bilinear(v->pos_emb + W, native, native, W, out + W, G, G);
}

/* NACLIP's Gaussian window (its default sigma) and GEM's depth 7 (the last
 * 6 blocks), as their authors run them. */
#define NACLIP_SIGMA 5.0
#define GEM_BLOCKS 6

void vit_naclip_window(double sigma, vit_window *w) {
    int G = w->G, R = 2 * G - 1;
    for (int dy = 1 - G; dy < G; dy++)
        for (int dx = 1 - G; dx < G; dx++)
            w->gauss[(dy + G - 1) * R + dx + G - 1] =
                (float)exp(-((double)dy * dy + (double)dx * dx) / (2.0 * sigma * sigma));
}

void vit_naclip_bias(const void *window, int head, int q0, int nq, int k0, int nk, float *s, int lds) {
    const vit_window *w = window;
    int G = w->G, R = 2 * G - 1;
    for (int i = 0; i < nq; i++) {
        int pi = q0 + i - 1; /* patch index; -1 is the class token */
        if (pi < 0) continue;
        const float *row = w->gauss + (pi / G + G - 1) * R + pi % G + G - 1;
        float *si = s + (size_t)i * lds;
        for (int j = k0 ? 0 : 1; j < nk; j++) {
            int pj = k0 + j - 1;
            si[j] += row[-(pj / G) * R - pj % G];
        }
    }
}

/* How many of the last blocks a method changes. */
static int method_blocks(const cs_model *m, cs_vision_mode mode) {
    int n = mode == CS_VISION_PLAIN ? 0 : mode == CS_VISION_SURGERY ? m->surgery_blocks
                                        : mode == CS_VISION_GEM     ? GEM_BLOCKS : 1;
    return n < m->cfg.vision_layers ? n : m->cfg.vision_layers;
}

/* One changed block of a method (DESIGN.md section 4 and the methods'
 * papers): the dual path of surgery and GEM, SCLIP's full block with its
 * correlative self-attention, the reduced block (no residual, no FFN) of
 * MaskCLIP, ClearCLIP and NACLIP. */
static cs_status method_block(const cs_block *b, int W, int heads, int batch, const int *len,
                              cs_vision_mode mode, const vit_window *window, float *x, block_scratch *s) {
    op_attention_spec a = {OP_ATTN_VV, 0, NULL, 0.0f, NULL, 1};
    switch (mode) {
    case CS_VISION_GEM: a.kind = OP_ATTN_GEM; /* fall through */
    case CS_VISION_SURGERY: return block_forward_dual(b, W, heads, batch, len, &a, x, s);
    case CS_VISION_SCLIP: a.kind = OP_ATTN_CSA; return block_forward(b, W, heads, batch, len, &a, x, s);
    case CS_VISION_MASKCLIP: a.kind = OP_ATTN_SELF; break;
    case CS_VISION_CLEARCLIP: a.kind = OP_ATTN_QQ; break;
    case CS_VISION_NACLIP: a.kind = OP_ATTN_KK, a.bias = vit_naclip_bias, a.bias_ctx = window; break;
    default: a.kind = OP_ATTN_QK; return block_forward(b, W, heads, batch, len, &a, x, s);
    }
    return block_forward_reduced(b, W, heads, batch, len, &a, x, s);
}

static int is_dual(cs_vision_mode mode) { return mode == CS_VISION_SURGERY || mode == CS_VISION_GEM; }

cs_status vit_encode(cs_model *m, const float *pixels, int batch, int R, cs_vision_mode mode,
                     float *tokens) {
    const cs_config *c = &m->cfg;
    const cs_vit *v = &m->vit;
    int P = c->patch_size, G = R / P, N = G * G, T = N + 1, W = c->vision_width, BT = batch * T;
    int first = c->vision_layers - method_blocks(m, mode);

    /* The images are a packed batch of `batch` sequences of T tokens. x holds
     * the original path's BT rows, then the second path's BT rows (dual-path
     * methods, from their first block on); the block scratch holds 2BT rows
     * of attention output for the dual blocks. */
    cs_status st = model_prepare_vision(m);
    if (st != CS_OK) return st;
    block_scratch s;
    st = block_scratch_init(&s, &m->ws, 2 * BT, T, batch, W, v->tr.heads);
    /* Each image of a batch gets the bits it gets alone, also where the BLAS
     * rounds a row by its neighbours. */
    s.per_sequence = !op_gemm_rows_independent();
    float *patches = ws_take(&m->ws, (size_t)N * 3 * P * P, sizeof(float));
    float *x = ws_take(&m->ws, (size_t)2 * BT * W, sizeof(float));
    float *pos = ws_take(&m->ws, (size_t)T * W, sizeof(float));
    int *len = ws_take(&m->ws, (size_t)batch, sizeof(int));
    vit_window window = {G, NULL};
    if (mode == CS_VISION_NACLIP) window.gauss = ws_take(&m->ws, (size_t)(2 * G - 1) * (2 * G - 1), sizeof(float));
    if (st != CS_OK || !patches || !x || !pos || !len || (mode == CS_VISION_NACLIP && !window.gauss)) {
        /* The arena counted every request, also the failed ones: the whole
         * need, so the message says what the input would cost. */
        double need_mb = (double)m->ws.used / (1 << 20);
        ws_release(&m->ws);
        return error_set(CS_ERR_NOMEM, "%d image%s at %dx%d (%d tokens each) need %.0f MB of working "
                       "memory, which could not be allocated: use a smaller resolution",
                       batch, batch == 1 ? "" : "s", R, R, T, need_mb);
    }
    float *x_new = x + (size_t)BT * W;
    if (window.gauss) vit_naclip_window(NACLIP_SIGMA, &window);
    vit_position_embedding(m, G, pos);
    for (int i = 0; i < batch; i++) {
        float *xi = x + (size_t)i * T * W;
        len[i] = T;
        im2col_patches(pixels + (size_t)i * 3 * R * R, R, P, patches);
        memcpy(xi, v->class_emb, (size_t)W * sizeof(float));
        op_linear(patches, N, 3 * P * P, v->conv1_w, NULL, W, xi + W);
        MODEL_TAP(m, "patch_embed", i, xi + W, N, W);
        op_add(xi, pos, (size_t)T * W);
    }
    op_layer_norm(x, BT, W, v->ln_pre.w, v->ln_pre.b, 1e-5f, x);
    MODEL_TAP(m, "ln_pre", -1, x, BT, W);

    static const op_attention_spec qk = {OP_ATTN_QK, 0, NULL, 0.0f, NULL, 1};
    for (int l = 0; l < c->vision_layers; l++) {
        const cs_block *b = &v->tr.blocks[l];
        if (l < first) {
            st = block_forward(b, W, v->tr.heads, batch, len, &qk, x, &s);
            if (st != CS_OK) break;
            MODEL_TAP(m, "block", l, x, BT, W);
            continue;
        }
        if (l == first && is_dual(mode)) memcpy(x_new, x, (size_t)BT * W * sizeof(float));
        st = method_block(b, W, v->tr.heads, batch, len, mode, &window, x, &s);
        if (st != CS_OK) break;
        if (is_dual(mode)) {
            MODEL_TAP(m, "block_xori", l, x, BT, W);
            MODEL_TAP(m, "block_x", l, x_new, BT, W);
        } else {
            MODEL_TAP(m, "block", l, x, BT, W);
        }
    }
    if (st != CS_OK) {
        ws_release(&m->ws);
        return st;
    }
    /* Dual-path output: surgery takes each image's class token from the
     * original path and its patch tokens from the new one; GEM takes every
     * token from its path. */
    if (is_dual(mode) && first < c->vision_layers) {
        int from = mode == CS_VISION_GEM ? 0 : 1;
        for (int i = 0; i < batch; i++)
            memcpy(x + ((size_t)i * T + from) * W, x_new + ((size_t)i * T + from) * W,
                   (size_t)(T - from) * W * sizeof(float));
    }
    op_layer_norm(x, BT, W, v->ln_post.w, v->ln_post.b, 1e-5f, x);
    MODEL_TAP(m, "ln_post", -1, x, BT, W);
    int D = c->embed_dim, images = s.per_sequence ? batch : 1, rows = BT / images;
    for (int i = 0; i < images; i++)
        op_gemm(0, 0, rows, D, W, 1.0f, x + (size_t)i * rows * W, W, v->proj, D, 0.0f,
                tokens + (size_t)i * rows * D, D);
    ws_release(&m->ws);
    return model_tower_check_output(m, &m->vit.lazy, tokens, (size_t)BT * D);
}

/* The ViT's configuration from its tensors' names and shapes, as openai/CLIP's
 * build_model infers it (64-dimensional heads unless a config.json says
 * otherwise). */
cs_status vit_infer_config(cs_model *m) {
    cs_config *c = &m->cfg;
    const cs_tensor *conv, *pe;
    cs_status s = model_require(m, "visual.conv1.weight", 4, &conv);
    if (s == CS_OK) s = model_require(m, "visual.positional_embedding", 2, &pe);
    if (s != CS_OK) return s;
    c->vision_kind = CS_VISION_VIT;
    c->vision_width = (int)conv->shape[0];
    c->patch_size = (int)conv->shape[3];
    c->vision_layers = model_count_blocks(&m->table, "visual.transformer.resblocks.");
    if ((s = model_check_block_count(m, "visual.transformer.resblocks.", c->vision_layers)) != CS_OK) return s;
    c->vision_heads = c->vision_width / CLIP_HEAD_DIM > 0 ? c->vision_width / CLIP_HEAD_DIM : 1;
    c->grid = (int)lround(sqrt((double)(pe->shape[0] - 1)));
    int64_t resolution = (int64_t)c->patch_size * c->grid;
    c->image_resolution = resolution <= 8192 ? (int)resolution : 0;
    if (conv->shape[1] != 3 || conv->shape[2] != conv->shape[3] || c->patch_size <= 0 ||
        c->vision_width < 1 || pe->shape[0] < 2 || pe->shape[1] != c->vision_width ||
        (int64_t)c->grid * c->grid + 1 != pe->shape[0] || c->image_resolution == 0 ||
        c->vision_layers == 0)
        return error_set(CS_ERR_SHAPE, "%s: the ViT tensors do not describe a CLIP ViT "
                       "(conv1 [W, 3, P, P], positional_embedding [1 + G*G, W], blocks)",
                       m->table.path);
    return CS_OK;
}

/* Bind the ViT's weights (its configuration inferred by vit_infer_config). */
cs_status vit_load(cs_model *m) {
    const cs_config *c = &m->cfg;
    int W = c->vision_width, P = c->patch_size, T = c->grid * c->grid + 1;
    int64_t conv_dims[4] = {W, 3, P, P};
    cs_status s = model_weight(m, "visual.conv1.weight", 4, conv_dims, &m->vit.conv1_w);
    if (s == CS_OK) s = model_weight_1d(m, "visual.class_embedding", W, &m->vit.class_emb);
    if (s == CS_OK) s = model_weight_2d(m, "visual.positional_embedding", T, W, &m->vit.pos_emb);
    if (s == CS_OK) s = model_layer_norm(m, "visual.ln_pre", W, &m->vit.ln_pre);
    if (s == CS_OK) s = model_layer_norm(m, "visual.ln_post", W, &m->vit.ln_post);
    if (s == CS_OK) s = model_weight_2d(m, "visual.proj", W, c->embed_dim, &m->vit.proj);
    if (s == CS_OK)
        s = model_load_transformer(m, "visual.transformer.resblocks.", W, c->vision_layers,
                                   c->vision_heads, &m->vit.tr);
    return s;
}
