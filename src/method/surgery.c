/* Feature surgery (DESIGN.md section 4). The reference forms the
 * [T, C, D] product F[n,d] T[c,d] w[c], subtracts its mean over classes and
 * sums over d. The sum and the class mean commute, so
 *   s[n,c] = w[c] cos[n,c] - mean_c' (w[c'] cos[n,c'])
 * with cos = F T^T: one GEMM and O(T C) work, nothing materialized. */
#include <string.h>
#include "method.h"
#include "ops/ops.h"

/* w = p / mean(p), p = softmax(2 * cos[0, :]) over classes. */
static void class_weights(const float *cos0, int C, float *w) {
    for (int c = 0; c < C; c++) w[c] = 2.0f * cos0[c];
    op_softmax_rows(w, 1, C);
    float mean = 0.0f;
    for (int c = 0; c < C; c++) mean += w[c];
    mean /= (float)C;
    for (int c = 0; c < C; c++) w[c] /= mean;
}

cs_status cs_feature_surgery(const float *tokens, int T, const float *classes, int C, int D,
                             const float *redundant, float *out) {
    if (T <= 0 || C <= 0 || D <= 0)
        return error_set(CS_ERR_ARG, "feature surgery needs tokens, classes and a dimension (got %d, %d, %d)",
                       T, C, D);
    if (!redundant) {
        cs_status s = cs_similarity(tokens, T, classes, C, D, out);
        if (s != CS_OK) return s;
        float *w = mem_alloc((size_t)C, sizeof(float));
        if (!w) return CS_ERR_NOMEM;
        class_weights(out, C, w);
        for (int n = 0; n < T; n++) {
            float *row = out + (size_t)n * C, mean = 0.0f;
            for (int c = 0; c < C; c++) {
                row[c] *= w[c];
                mean += row[c];
            }
            mean /= (float)C;
            for (int c = 0; c < C; c++) row[c] -= mean;
        }
        cs_free(w);
        return CS_OK;
    }
    float *diff = mem_alloc((size_t)C * D, sizeof(float));
    if (!diff) return CS_ERR_NOMEM;
    for (int c = 0; c < C; c++)
        for (int d = 0; d < D; d++) diff[(size_t)c * D + d] = classes[(size_t)c * D + d] - redundant[d];
    cs_status s = cs_similarity(tokens, T, diff, C, D, out);
    cs_free(diff);
    return s;
}
