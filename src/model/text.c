/* The CLIP text tower. Causal attention means a prompt's features at its end
 * token depend only on the tokens before it, so each prompt runs on its real
 * tokens only, all prompts packed into one ragged batch (no padding). The
 * same pass serves the per-token features of multimodal visualization: they
 * are ln_final and the projection applied at every position instead of at
 * the end token alone. */
#include <math.h>
#include <string.h>
#include "ops/ops.h"
#include "transformer.h"

int text_end_position(const int32_t *ids, int context) {
    int best = 0;
    for (int i = 1; i < context; i++)
        if (ids[i] > ids[best]) best = i;
    return best;
}

cs_status text_encode(cs_model *m, const int32_t *ids, int n, int context, int every_position,
                      float *out) {
    const cs_text *t = &m->text;
    int W = m->cfg.text_width, D = m->cfg.embed_dim;
    if (n == 0) return CS_OK;
    cs_status st = model_prepare_text(m);
    if (st != CS_OK) return st;
    int *len = ws_take(&m->ws, (size_t)n, sizeof(int));
    if (!len) {
        ws_release(&m->ws);
        return CS_ERR_NOMEM;
    }
    size_t total = 0;
    int longest = 0;
    for (int i = 0; i < n; i++) {
        len[i] = text_end_position(ids + (size_t)i * context, context) + 1;
        total += (size_t)len[i];
        if (len[i] > longest) longest = len[i];
    }
    if (total > ((size_t)1 << 30)) { /* keeps row counts within int */
        ws_release(&m->ws);
        return error_set(CS_ERR_LIMIT, "%d texts are too many for one batch", n);
    }
    block_scratch s;
    st = block_scratch_init(&s, &m->ws, (int)total, longest, n, W, t->tr.heads);
    float *x = ws_take(&m->ws, total * W, sizeof(float));
    float *eot = ws_take(&m->ws, (size_t)n * W, sizeof(float));
    if (st != CS_OK || !x || !eot) {
        ws_release(&m->ws);
        return CS_ERR_NOMEM;
    }
    for (int i = 0, row = 0; i < n; i++)
        for (int p = 0; p < len[i]; p++, row++) {
            const float *te = t->tok_emb + (size_t)ids[(size_t)i * context + p] * W;
            const float *pe = t->pos_emb + (size_t)p * W;
            float *xr = x + (size_t)row * W;
            for (int k = 0; k < W; k++) xr[k] = te[k] + pe[k];
        }
    /* fp32 attention under bf16 too: the causal attention's logits on the
     * first token are large, and rounding q and k to bf16 moved the tiny
     * golden model's text features by up to 55% (the weights' error: 0.8%) */
    static const op_attention_spec causal = {OP_ATTN_QK, 1, NULL, 0.0f, NULL, 0};
    for (int l = 0; l < m->cfg.text_layers; l++) {
        st = block_forward(&t->tr.blocks[l], W, t->tr.heads, n, len, &causal, x, &s);
        if (st != CS_OK) {
            ws_release(&m->ws);
            return st;
        }
        MODEL_TAP(m, "text_block", l, x, (int)total, W);
    }
    /* The rows that get ln_final and the projection: every position, or
     * each text's end token. */
    float *rows = x;
    int n_rows = (int)total;
    if (!every_position) {
        for (int i = 0, row = 0; i < n; row += len[i], i++)
            memcpy(eot + (size_t)i * W, x + (size_t)(row + len[i] - 1) * W, (size_t)W * sizeof(float));
        rows = eot;
        n_rows = n;
    }
    op_layer_norm(rows, n_rows, W, t->ln_final.w, t->ln_final.b, 1e-5f, rows);
    MODEL_TAP(m, "text_ln_final", -1, rows, n_rows, W);
    op_gemm(0, 0, n_rows, D, W, 1.0f, rows, W, t->proj, D, 0.0f, out, D);
    ws_release(&m->ws);
    return CS_OK;
}

/* The text tower's configuration from its tensors' names and shapes, as
 * openai/CLIP's build_model infers it. */
cs_status text_infer_config(cs_model *m) {
    cs_config *c = &m->cfg;
    const cs_tensor *tp, *pe, *te, *lf;
    cs_status s = model_require(m, "text_projection", 2, &tp);
    if (s == CS_OK) s = model_require(m, "positional_embedding", 2, &pe);
    if (s == CS_OK) s = model_require(m, "token_embedding.weight", 2, &te);
    if (s == CS_OK) s = model_require(m, "ln_final.weight", 1, &lf);
    if (s != CS_OK) return s;
    c->embed_dim = (int)tp->shape[1];
    c->context_length = (int)pe->shape[0];
    c->vocab_size = (int)te->shape[0];
    c->text_width = (int)lf->shape[0];
    c->text_heads = c->text_width / CLIP_HEAD_DIM > 0 ? c->text_width / CLIP_HEAD_DIM : 1;
    c->text_layers = model_count_blocks(&m->table, "transformer.resblocks.");
    if (c->embed_dim < 1 || c->context_length < 1 || c->vocab_size < 1 || c->text_width < 1)
        return error_set(CS_ERR_SHAPE, "%s: the text tensors have an empty dimension (embedding %d, "
                       "context %d, vocabulary %d, width %d)", m->table.path, c->embed_dim,
                       c->context_length, c->vocab_size, c->text_width);
    return model_check_block_count(m, "transformer.resblocks.", c->text_layers);
}

/* Bind the text tower's weights and the logit scale (100 when the file has
 * none). Its configuration is inferred first by text_infer_config. */
cs_status text_load(cs_model *m) {
    const cs_config *c = &m->cfg;
    int W = c->text_width;
    cs_status s = model_weight_2d(m, "token_embedding.weight", c->vocab_size, W, &m->text.tok_emb);
    if (s == CS_OK) s = model_weight_2d(m, "positional_embedding", c->context_length, W, &m->text.pos_emb);
    if (s == CS_OK) s = model_layer_norm(m, "ln_final", W, &m->text.ln_final);
    if (s == CS_OK) s = model_weight_2d(m, "text_projection", W, c->embed_dim, &m->text.proj);
    if (s == CS_OK)
        s = model_load_transformer(m, "transformer.resblocks.", W, c->text_layers, c->text_heads,
                                   &m->text.tr);
    const cs_tensor *ls = tensors_find(&m->table, "logit_scale");
    m->logit_scale = 100.0f;
    if (s == CS_OK && ls && tensor_numel(ls) == 1) {
        float v;
        if (tensor_to_f32(ls, &v) == CS_OK && isfinite(expf(v))) m->logit_scale = expf(v);
    }
    return s;
}
