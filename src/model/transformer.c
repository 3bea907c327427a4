/* The residual attention block shared by the image and text transformers,
 * and the dual-path (surgery) block of the ViT. */
#include <math.h>
#include <omp.h>
#include <string.h>
#include "base/base.h"
#include "ops/ops.h"
#include "transformer.h"

cs_status block_scratch_init(block_scratch *s, cs_workspace *ws, int max_tokens, int max_seq,
                             int max_seqs, int width, int heads) {
    size_t T = (size_t)max_tokens, W = (size_t)width;
    s->max_seq = max_seq;
    s->per_sequence = 0;
    s->head_dim = width / heads;
    s->offsets = ws_take(ws, (size_t)max_seqs, sizeof(size_t));
    s->h = ws_take(ws, T * W, sizeof(float));
    s->qkv = ws_take(ws, T * 3 * W, sizeof(float));
    s->attn = ws_take(ws, T * W, sizeof(float));
    s->hidden = ws_take(ws, T * 4 * W, sizeof(float));
    s->scores = ws_take(ws, op_attention_scratch(max_seq, s->head_dim), sizeof(float));
    return s->h && s->qkv && s->attn && s->hidden && s->scores && s->offsets ? CS_OK : CS_ERR_NOMEM;
}

/* One fp32 linear layer: through oneDNN where the weight is packed for it,
 * else OpenBLAS on the weight as stored. */
static cs_status linear_f32(const float *x, int M, int K, const float *w, const op_f32_weights *w32,
                            const float *b, int N, int accumulate, float *y) {
    if (w32->pack) return op_linear_f32(x, M, K, w32, b, accumulate, y);
    if (accumulate) op_linear_accumulate(x, M, K, w, b, N, y);
    else op_linear(x, M, K, w, b, N, y);
    return CS_OK;
}

/* One linear layer of a block over the rows of n_seq sequences: y (+)= x
 * w^T + b through whichever form of the weight the block holds: packed bf16
 * or int8 (the model runs in that precision; their kernels round each row
 * alone), else fp32. In fp32 with s->per_sequence, one call per sequence,
 * so that an image in a batch gets the bits it gets alone where the BLAS
 * rounds rows by their neighbours (op_gemm_rows_independent). */
static cs_status block_linear(const block_scratch *s, int n_seq, const int *seq_len, const float *x,
                              int K, const float *w, const op_f32_weights *w32, const op_bf16_weights *w16,
                              const op_int8_weights *w8, const float *b, int N, int accumulate, float *y) {
    int M = 0;
    for (int i = 0; i < n_seq; i++) M += seq_len[i];
    if (w16->data) op_linear_bf16(x, M, K, w16, b, accumulate, y);
    else if (w8->data) op_linear_int8(x, M, K, w8, b, accumulate, y);
    else if (!s->per_sequence) return linear_f32(x, M, K, w, w32, b, N, accumulate, y);
    else
        for (int i = 0, off = 0; i < n_seq; off += seq_len[i], i++) {
            cs_status st = linear_f32(x + (size_t)off * K, seq_len[i], K, w, w32, b, N, accumulate,
                                      y + (size_t)off * N);
            if (st != CS_OK) return st;
        }
    return CS_OK;
}

#define LINEAR(b, name) (b)->name##_w, &(b)->name##32, &(b)->name##16, &(b)->name##8, (b)->name##_b

/* x += c_proj(QuickGELU(c_fc(ln_2(x)))) */
static cs_status block_mlp(const cs_block *b, int n_seq, const int *seq_len, int T, int W, float *x,
                           block_scratch *s) {
    op_layer_norm(x, T, W, b->ln_2.w, b->ln_2.b, 1e-5f, s->h);
    cs_status st = block_linear(s, n_seq, seq_len, s->h, W, LINEAR(b, fc), 4 * W, 0, s->hidden);
    if (st != CS_OK) return st;
    op_quick_gelu(s->hidden, (size_t)T * 4 * W);
    return block_linear(s, n_seq, seq_len, s->hidden, 4 * W, LINEAR(b, proj), W, 1, x);
}

/* qkv = in_proj(ln_1(x)) for all T rows. */
static cs_status block_qkv(const cs_block *b, int n_seq, const int *seq_len, int T, int W, const float *x,
                           block_scratch *s) {
    op_layer_norm(x, T, W, b->ln_1.w, b->ln_1.b, 1e-5f, s->h);
    return block_linear(s, n_seq, seq_len, s->h, W, LINEAR(b, qkv), 3 * W, 0, s->qkv);
}

/* GEM's inverse temperature for one sequence: the mean over its tokens of
 * |ln_1(x)| (the attention's input), times 1/sqrt(d). h: [T, W]. */
static float gem_inv_temp(const float *h, int T, int W, int d) {
    double sum = 0.0;
    for (int t = 0; t < T; t++) {
        double ss = 0.0;
        for (int i = 0; i < W; i++) ss += (double)h[(size_t)t * W + i] * h[(size_t)t * W + i];
        sum += sqrt(ss);
    }
    return (float)(sum / T / sqrt((double)d));
}

/* Attention over each sequence of a packed batch (qkv [T, 3W] of s->h =
 * ln_1(x) -> out [T, W]): many sequences run in parallel, one per thread
 * (op_attention then runs its heads serially); a single sequence
 * parallelizes over heads. The spec's bf16 holds where block b runs in
 * bf16 (its weights packed). */
static void attend(block_scratch *s, const cs_block *b, const float *qkv, float *out, int n_seq,
                   const int *seq_len, int W, int heads, const op_attention_spec *a) {
    size_t *offset = s->offsets;
    for (int i = 0, off = 0; i < n_seq; off += seq_len[i], i++) offset[i] = (size_t)off;
    if (n_seq == 1) {
        op_attention_spec one = *a;
        one.bf16 = a->bf16 && b->qkv16.data != NULL;
        if (a->kind == OP_ATTN_GEM) one.inv_temp = gem_inv_temp(s->h, seq_len[0], W, s->head_dim);
        op_attention(qkv, seq_len[0], W, heads, &one, s->scores, out);
        return;
    }
    size_t per_thread = op_attention_thread_scratch(s->max_seq, s->head_dim);
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n_seq; i++) {
        op_attention_spec one = *a;
        one.bf16 = a->bf16 && b->qkv16.data != NULL;
        if (a->kind == OP_ATTN_GEM) one.inv_temp = gem_inv_temp(s->h + offset[i] * W, seq_len[i], W, s->head_dim);
        op_attention(qkv + offset[i] * 3 * W, seq_len[i], W, heads, &one,
                     s->scores + (size_t)omp_get_thread_num() * per_thread, out + offset[i] * W);
    }
}

static int total_rows(int n_seq, const int *seq_len) {
    int T = 0;
    for (int i = 0; i < n_seq; i++) T += seq_len[i];
    return T;
}

cs_status block_forward(const cs_block *b, int W, int heads, int n_seq, const int *seq_len,
                        const op_attention_spec *a, float *x, block_scratch *s) {
    int T = total_rows(n_seq, seq_len);
    cs_status st = block_qkv(b, n_seq, seq_len, T, W, x, s);
    if (st != CS_OK) return st;
    attend(s, b, s->qkv, s->attn, n_seq, seq_len, W, heads, a);
    st = block_linear(s, n_seq, seq_len, s->attn, W, LINEAR(b, out), W, 1, x);
    return st == CS_OK ? block_mlp(b, n_seq, seq_len, T, W, x, s) : st;
}

cs_status block_forward_reduced(const cs_block *b, int W, int heads, int n_seq, const int *seq_len,
                                const op_attention_spec *a, float *x, block_scratch *s) {
    int T = total_rows(n_seq, seq_len);
    cs_status st = block_qkv(b, n_seq, seq_len, T, W, x, s);
    if (st != CS_OK) return st;
    attend(s, b, s->qkv, s->attn, n_seq, seq_len, W, heads, a);
    return block_linear(s, n_seq, seq_len, s->attn, W, LINEAR(b, out), W, 0, x);
}

cs_status block_forward_dual(const cs_block *b, int W, int heads, int n_seq, const int *seq_len,
                             const op_attention_spec *a_new, float *x, block_scratch *s) {
    static const op_attention_spec qk = {OP_ATTN_QK, 0, NULL, 0.0f, NULL, 1};
    int T = total_rows(n_seq, seq_len);
    cs_status st = block_qkv(b, n_seq, seq_len, T, W, x, s);
    if (st != CS_OK) return st;
    /* Both paths read the one QKV projection of the original path's ln_1;
     * their attention outputs sit one above the other, so one out-projection
     * GEMM of 2T rows updates both paths (one per path and sequence with
     * s->per_sequence). */
    attend(s, b, s->qkv, s->attn, n_seq, seq_len, W, heads, &qk);
    attend(s, b, s->qkv, s->attn + (size_t)T * W, n_seq, seq_len, W, heads, a_new);
    if (s->per_sequence) {
        st = block_linear(s, n_seq, seq_len, s->attn, W, LINEAR(b, out), W, 1, x);
        if (st == CS_OK)
            st = block_linear(s, n_seq, seq_len, s->attn + (size_t)T * W, W, LINEAR(b, out), W, 1,
                              x + (size_t)T * W);
    } else {
        int both = 2 * T;
        st = block_linear(s, 1, &both, s->attn, W, LINEAR(b, out), W, 1, x);
    }
    /* The FFN runs on the original path only. */
    return st == CS_OK ? block_mlp(b, n_seq, seq_len, T, W, x, s) : st;
}

void transformer_free_packed(cs_transformer *tr) {
    for (int l = 0; tr->blocks && l < tr->layers; l++) {
        cs_block *b = &tr->blocks[l];
        op_f32_weights *w32[4] = {&b->qkv32, &b->out32, &b->fc32, &b->proj32};
        op_bf16_weights *w16[4] = {&b->qkv16, &b->out16, &b->fc16, &b->proj16};
        op_int8_weights *w8[4] = {&b->qkv8, &b->out8, &b->fc8, &b->proj8};
        for (int j = 0; j < 4; j++) {
            op_f32_free(w32[j]);
            op_bf16_free(w16[j]);
            op_int8_free(w8[j]);
        }
    }
}

/* One linear weight packed from the file's tensor x, checked for NaN and
 * infinity first where `check` says so or the precision is int8 (a row of
 * int8 steps with a non-finite maximum is all zeros, so no NaN reaches the
 * output to tell of it): bf16 panels used in place, bf16 bits packed as
 * they are, anything else through its fp32 view, given back (pages of the
 * map dropped, a widened copy freed) as soon as it is packed. */
static cs_status pack_linear(cs_tensor_table *t, const cs_tensor *x, int N, int K, cs_precision p, int check,
                             op_bf16_weights *w16, op_int8_weights *w8) {
    cs_status s = check || p == CS_PRECISION_INT8 ? tensor_check_finite(t, x) : CS_OK;
    if (s != CS_OK) return s;
    /* A packed file's panels are used where they lie (its pages are the
     * page cache's: nothing to copy, no fresh memory to fill). */
    if (p == CS_PRECISION_BF16 && x->bf16_panels) return op_bf16_view(x->data, N, K, w16);
    if (p == CS_PRECISION_BF16 && x->dtype == CS_DT_BF16) {
        s = op_bf16_pack_bits(x->data, N, K, w16);
        tensors_release(t, x->data, x->nbytes);
        return s;
    }
    const float *w;
    s = tensor_f32_view(t, x, &w);
    if (s != CS_OK) return s;
    s = p == CS_PRECISION_BF16 ? op_bf16_pack(w, N, K, w16) : op_int8_pack(w, N, K, w8);
    tensors_release(t, w, (size_t)N * K * sizeof(float));
    return s;
}

/* One linear weight in the precision: fp32 into the oneDNN layout from its
 * fp32 view w, bf16 or int8 from the file's tensor x (a pack for oneDNN
 * from an earlier fp32 run then freed). */
static cs_status pack_one(cs_tensor_table *t, const cs_tensor *x, const float *w, int N, int K, cs_precision p,
                          int check, op_f32_weights *w32, op_bf16_weights *w16, op_int8_weights *w8) {
    if (p == CS_PRECISION_FP32) return op_f32_pack(w, N, K, w32);
    cs_status s = pack_linear(t, x, N, K, p, check, w16, w8);
    if (s == CS_OK) op_f32_free(w32);
    return s;
}

cs_status transformer_pack(cs_transformer *tr, cs_precision p, cs_tensor_table *t, int check) {
    if (p == CS_PRECISION_FP32 && !op_f32_pack_pays()) return CS_OK;
    int W = tr->width;
    cs_status s = CS_OK;
    for (int l = 0; s == CS_OK && l < tr->layers; l++) {
        cs_block *b = &tr->blocks[l];
        const float **w[4] = {&b->qkv_w, &b->out_w, &b->fc_w, &b->proj_w};
        int N[4] = {3 * W, W, 4 * W, W}, K[4] = {W, W, W, 4 * W};
        op_f32_weights *w32[4] = {&b->qkv32, &b->out32, &b->fc32, &b->proj32};
        op_bf16_weights *w16[4] = {&b->qkv16, &b->out16, &b->fc16, &b->proj16};
        op_int8_weights *w8[4] = {&b->qkv8, &b->out8, &b->fc8, &b->proj8};
        for (int j = 0; s == CS_OK && j < 4; j++) {
            /* packed by an earlier, failed call (whose tower took the fp32
             * views again at this one: given back below) */
            int done = w16[j]->data || w8[j]->data || (p == CS_PRECISION_FP32 && w32[j]->pack);
            if (!done) s = pack_one(t, b->linear[j], *w[j], N[j], K[j], p, check, w32[j], w16[j], w8[j]);
            if (s != CS_OK || !*w[j]) continue;
            tensors_release(t, *w[j], (size_t)N[j] * K[j] * sizeof(float));
            *w[j] = NULL;
        }
    }
    return s;
}
