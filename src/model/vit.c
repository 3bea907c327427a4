/* The CLIP ViT image tower, plain and with architecture surgery. */
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

cs_status vit_encode(cs_model *m, const float *pixels, int batch, int R, cs_vision_mode mode,
                     float *tokens) {
    const cs_config *c = &m->cfg;
    const cs_vit *v = &m->vit;
    int P = c->patch_size, G = R / P, N = G * G, T = N + 1, W = c->vision_width, BT = batch * T;
    int first_dual = mode == CS_VISION_SURGERY ? c->vision_layers - m->surgery_blocks : c->vision_layers;
    if (first_dual < 0) first_dual = 0;

    /* The images are a packed batch of `batch` sequences of T tokens. x holds
     * the original path's BT rows, then the surgery path's BT rows (used
     * from the first dual block on); the block scratch holds 2BT rows of
     * attention output for the dual blocks. */
    block_scratch s;
    cs_status st = block_scratch_init(&s, &m->ws, 2 * BT, T, batch, W);
    float *patches = ws_take(&m->ws, (size_t)N * 3 * P * P, sizeof(float));
    float *x = ws_take(&m->ws, (size_t)2 * BT * W, sizeof(float));
    float *pos = ws_take(&m->ws, (size_t)T * W, sizeof(float));
    int *len = ws_take(&m->ws, (size_t)batch, sizeof(int));
    if (st != CS_OK || !patches || !x || !pos || !len) {
        ws_release(&m->ws);
        return CS_ERR_NOMEM;
    }
    float *x_new = x + (size_t)BT * W;
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

    for (int l = 0; l < c->vision_layers; l++) {
        const cs_block *b = &v->tr.blocks[l];
        if (l < first_dual) {
            block_forward(b, W, v->tr.heads, batch, len, 0, x, &s);
            MODEL_TAP(m, "block", l, x, BT, W);
            continue;
        }
        if (l == first_dual) memcpy(x_new, x, (size_t)BT * W * sizeof(float));
        block_forward_dual(b, W, v->tr.heads, batch, len, x, &s);
        MODEL_TAP(m, "block_xori", l, x, BT, W);
        MODEL_TAP(m, "block_x", l, x_new, BT, W);
    }
    /* Surgery output: each image's class token from the original path, its
     * patch tokens from the new one. */
    if (first_dual < c->vision_layers)
        for (int i = 0; i < batch; i++)
            memcpy(x + ((size_t)i * T + 1) * W, x_new + ((size_t)i * T + 1) * W, (size_t)N * W * sizeof(float));
    op_layer_norm(x, BT, W, v->ln_post.w, v->ln_post.b, 1e-5f, x);
    MODEL_TAP(m, "ln_post", -1, x, BT, W);
    op_gemm(0, 0, BT, c->embed_dim, W, 1.0f, x, W, v->proj, c->embed_dim, 0.0f, tokens, c->embed_dim);
    ws_release(&m->ws);
    return CS_OK;
}
