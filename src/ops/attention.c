#include <math.h>
#include <omp.h>
#include <string.h>
#include "ops.h"

/* scores [T, T] = scale a b^T (+ bias) (causally masked), softmaxed. a and
 * b are one head's columns read straight out of qkv (row stride ld). */
static void softmax_scores(const float *a, const float *b, int ld, int T, int d, float scale,
                           const float *bias, int causal, float *scores) {
    op_gemm(0, 1, T, T, d, scale, a, ld, b, ld, 0.0f, scores, T);
    if (bias) op_add(scores, bias, (size_t)T * T);
    if (causal)
        for (int i = 0; i < T; i++)
            for (int j = i + 1; j < T; j++) scores[(size_t)i * T + j] = -INFINITY;
    op_softmax_rows(scores, T, T);
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
                     float *scores, float *zn, float *z1, float *out, int ldo) {
    const float *z[3] = {v, k, q};
    for (int i = 0; i < 3; i++) {
        normalized_copy(z[i], ld, T, d, zn);
        softmax_scores(zn, zn, d, T, d, t, NULL, 0, scores);
        op_gemm(0, 0, T, d, T, 1.0f, scores, T, zn, d, 0.0f, z1, d);
        op_l2_normalize_rows(z1, T, d);
        softmax_scores(z1, z1, d, T, d, t, NULL, 0, scores);
        op_gemm(0, 0, T, d, T, 1.0f, scores, T, v, ld, i ? 1.0f : 0.0f, out, ldo);
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
    float *o = out + h * d;
    switch (a->kind) {
    case OP_ATTN_SELF: /* softmax of a mask that is 0 on the diagonal, -inf elsewhere */
        for (int t = 0; t < T; t++) memcpy(o + (size_t)t * W, v + (size_t)t * ld, (size_t)d * sizeof(float));
        return;
    case OP_ATTN_GEM:
        gem_head(q, k, v, ld, T, d, a->inv_temp, scratch, scratch + (size_t)T * T,
                 scratch + (size_t)T * T + (size_t)T * d, o, W);
        return;
    case OP_ATTN_CSA:
        softmax_scores(q, q, ld, T, d, scale, a->bias, a->causal, scratch);
        op_gemm(0, 0, T, d, T, 1.0f, scratch, T, v, ld, 0.0f, o, W);
        softmax_scores(k, k, ld, T, d, scale, a->bias, a->causal, scratch);
        op_gemm(0, 0, T, d, T, 1.0f, scratch, T, v, ld, 1.0f, o, W);
        return;
    case OP_ATTN_VV: q = k = v; break;
    case OP_ATTN_QQ: k = q; break;
    case OP_ATTN_KK: q = k; break;
    case OP_ATTN_QK: break;
    }
    softmax_scores(q, k, ld, T, d, scale, a->bias, a->causal, scratch);
    op_gemm(0, 0, T, d, T, 1.0f, scratch, T, v, ld, 0.0f, o, W);
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

/* A T x T score matrix, and GEM's two [T, d] buffers. */
size_t op_attention_thread_scratch(int T, int d) { return (size_t)T * T + (size_t)2 * T * d; }

size_t op_attention_scratch(int T, int d) {
    return (size_t)omp_get_max_threads() * op_attention_thread_scratch(T, d);
}
