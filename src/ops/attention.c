#include <math.h>
#include <omp.h>
#include "ops.h"

/* One head: scores [T, T] = a_h b_h^T * scale through the GEMM (reading the
 * head's columns straight out of qkv with a row stride of 3W), masked and
 * softmaxed, then out_h = P v_h written into the head's columns. */
static void attention_head(const float *qkv, int T, int W, int d, int h, op_attention_kind kind,
                           int causal, float *scores, float *out) {
    int ld = 3 * W;
    float scale = 1.0f / sqrtf((float)d);
    const float *q = qkv + h * d, *k = qkv + W + h * d, *v = qkv + 2 * W + h * d;
    if (kind == OP_ATTN_VV) q = k = v;
    op_gemm(0, 1, T, T, d, scale, q, ld, k, ld, 0.0f, scores, T);
    if (causal)
        for (int i = 0; i < T; i++)
            for (int j = i + 1; j < T; j++) scores[(size_t)i * T + j] = -INFINITY;
    op_softmax_rows(scores, T, T);
    op_gemm(0, 0, T, d, T, 1.0f, scores, T, v, ld, 0.0f, out + h * d, W);
}

/* Heads run in parallel, each on its own slice of the scratch; inside an
 * enclosing parallel region (many short sequences) they run serially and
 * the caller parallelizes over sequences instead. Per-head GEMMs are small,
 * so threads over heads beat threads inside one GEMM. */
void op_attention(const float *qkv, int T, int W, int heads, op_attention_kind kind, int causal,
                  float *scores, float *out) {
    int d = W / heads;
    if (omp_in_parallel()) {
        for (int h = 0; h < heads; h++) attention_head(qkv, T, W, d, h, kind, causal, scores, out);
        return;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int h = 0; h < heads; h++)
        attention_head(qkv, T, W, d, h, kind, causal, scores + (size_t)omp_get_thread_num() * T * T, out);
}

size_t op_attention_scratch(int T) { return (size_t)omp_get_max_threads() * T * T; }
