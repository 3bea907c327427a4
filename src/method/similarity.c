/* Cosine similarity between image tokens and class embeddings. */
#include <string.h>
#include "base/base.h"
#include "ops/ops.h"

cs_status cs_similarity(const float *tokens, int n_tokens, const float *classes, int n_classes,
                        int dim, float *out) {
    if (n_tokens <= 0 || n_classes <= 0 || dim <= 0)
        return error_set(CS_ERR_ARG, "similarity needs tokens, classes and a dimension (got %d, %d, %d)",
                       n_tokens, n_classes, dim);
    float *norm = mem_alloc((size_t)n_tokens * dim, sizeof(float));
    if (!norm) return CS_ERR_NOMEM;
    memcpy(norm, tokens, (size_t)n_tokens * dim * sizeof(float));
    op_l2_normalize_rows(norm, n_tokens, dim);
    op_gemm(0, 1, n_tokens, n_classes, dim, 1.0f, norm, dim, classes, dim, 0.0f, out, n_classes);
    cs_free(norm);
    return CS_OK;
}
