/* The bf16 and int8 options' parity loss against the fp32 goldens (tiny
 * ViT: its image tokens, similarity, maps and text features): they are not
 * the parity path, so this test reports the figures and checks a sanity
 * bound per precision that catches a broken kernel, not rounding:
 *   bf16: cosine >= 0.999, max relative error <= 3e-2 (measured: <= 8e-3);
 *   int8: cosine >= 0.999, max relative error <= 8e-2 (measured: cosine
 *         >= 0.99964, relative error <= 3.1e-2, the largest on the text
 *         features: per-token and per-channel 8-bit steps on a model only
 *         64 wide).
 * The portable kernels run on every CPU (so both paths are tested
 * everywhere), the CPU's own kernels where it has AVX512-BF16 or AMX, and
 * AVX512-VNNI. Back in fp32 the model is on the parity path again. */
#include <stdlib.h>
#include "golden.h"
#include "ops/gemm_bf16.h"
#include "ops/gemm_int8.h"
#include "test.h"

typedef struct bound {
    const char *name;
    double min_cosine, max_relerr;
} bound;

static void report(const bound *b, const char *rel, const float *got, int64_t n) {
    cs_array g;
    golden_load(rel, &g);
    const float *ref = g.data;
    double max_err = 0, max_ref = 0, dot = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < n; i++) {
        max_err = fmax(max_err, fabs((double)got[i] - ref[i]));
        max_ref = fmax(max_ref, fabs((double)ref[i]));
        dot += (double)got[i] * ref[i];
        na += (double)got[i] * got[i];
        nb += (double)ref[i] * ref[i];
    }
    double relerr = max_err / max_ref, cosine = dot / sqrt(na * nb);
    printf("%s %-44s rel_err %.3g  cosine %.6f\n", b->name, rel, relerr, cosine);
    CHECK_MSG(g.nbytes == (size_t)n * 4 && cosine >= b->min_cosine && relerr <= b->max_relerr, "%s %s",
              b->name, rel);
    cs_array_free(&g);
}

/* The model's precision on the golden inputs; the kernel is the process-wide choice. */
static void check_precision(cs_model *m, const bound *b, const char *kernel) {
    printf("%s kernel:\n", kernel);
    cs_array px, classes, ids;
    golden_load("inputs/synthetic_pre_64.npy", &px);
    golden_load("tiny-vit/text_ensemble.npy", &classes);
    golden_load("inputs/text_tokens.npy", &ids);
    int T = cs_model_num_tokens(m, 64), D = 64, C = 3;
    float *tok = malloc(sizeof(float) * T * D), *sim = malloc(sizeof(float) * T * C);
    float *maps = malloc(sizeof(float) * 300 * 200 * C), *feat = malloc(sizeof(float) * 10 * D);
    CHECK_OK(cs_encode_image(m, px.data, 64, CS_VISION_SURGERY, tok));
    report(b, "tiny-vit/synthetic_cs_tokens_64.npy", tok, (int64_t)T * D);
    CHECK_OK(cs_feature_surgery(tok, T, classes.data, C, D, NULL, sim));
    report(b, "tiny-vit/synthetic_cs_similarity_64.npy", sim, (int64_t)T * C);
    CHECK_OK(cs_similarity_maps(sim, T, C, 200, 300, maps));
    report(b, "tiny-vit/synthetic_cs_simmap_64.npy", maps, (int64_t)300 * 200 * C);
    CHECK_OK(cs_encode_text(m, ids.data, 10, 77, feat));
    report(b, "tiny-vit/text_features.npy", feat, 10 * D);
    free(tok);
    free(sim);
    free(maps);
    free(feat);
    cs_array_free(&px);
    cs_array_free(&classes);
    cs_array_free(&ids);
}

int main(void) {
    static const bound k_bf16 = {"bf16", 0.999, 3e-2}, k_int8 = {"int8", 0.999, 8e-2};
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/model.safetensors"), &m));
    if (!m) return test_finish();
    CHECK_OK(cs_model_set_precision(m, CS_PRECISION_BF16));
    op_bf16_force_path(OP_BF16_PATH_PORTABLE);
    check_precision(m, &k_bf16, "bf16 portable");
    op_bf16_force_path(OP_BF16_PATH_AUTO);
    if (op_bf16_supported()) check_precision(m, &k_bf16, op_bf16_amx_supported() ? "AMX-BF16" : "AVX512-BF16");
    else printf("no AVX512-BF16 on this CPU: the portable kernel is the bf16 path\n");
    CHECK_OK(cs_model_set_precision(m, CS_PRECISION_INT8));
    op_int8_force_path(OP_INT8_PATH_PORTABLE);
    check_precision(m, &k_int8, "int8 portable");
    op_int8_force_path(OP_INT8_PATH_AUTO);
    if (op_int8_supported()) check_precision(m, &k_int8, "AVX512-VNNI");
    else printf("no AVX512-VNNI on this CPU: the portable kernel is the int8 path\n");
    /* Back to fp32: the parity path again, exactly. */
    CHECK_OK(cs_model_set_precision(m, CS_PRECISION_FP32));
    cs_array px;
    golden_load("inputs/synthetic_pre_64.npy", &px);
    int T = cs_model_num_tokens(m, 64);
    float *tok = malloc(sizeof(float) * T * 64);
    CHECK_OK(cs_encode_image(m, px.data, 64, CS_VISION_SURGERY, tok));
    golden_check_floats("tiny-vit/synthetic_cs_tokens_64.npy", tok, (int64_t)T * 64);
    free(tok);
    cs_array_free(&px);
    cs_model_free(m);
    return test_finish();
}
