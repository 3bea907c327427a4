/* The bf16 option's parity loss against the fp32 goldens (tiny ViT): it is
 * not the parity path, so this test reports the figures and checks only a
 * sanity bound (cosine >= 0.999, max relative error <= 3e-2) that catches a
 * broken kernel, not rounding. The portable kernel runs on every CPU (so
 * the bf16 path is tested everywhere), the CPU's own kernel where it has
 * AVX512-BF16 or AMX. */
#include <stdlib.h>
#include "golden.h"
#include "ops/gemm_bf16.h"
#include "test.h"

static void report(const char *rel, const float *got, int64_t n) {
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
    printf("bf16 %-44s rel_err %.3g  cosine %.6f\n", rel, relerr, cosine);
    CHECK_MSG(g.nbytes == (size_t)n * 4 && cosine >= 0.999 && relerr <= 3e-2, "%s", rel);
    cs_array_free(&g);
}

/* The bf16 path on the golden inputs; the kernel is the process-wide choice. */
static void check_bf16(cs_model *m, const char *kernel) {
    printf("%s kernel:\n", kernel);
    cs_array px, classes, ids;
    golden_load("inputs/synthetic_pre_64.npy", &px);
    golden_load("tiny-vit/text_ensemble.npy", &classes);
    golden_load("inputs/text_tokens.npy", &ids);
    int T = cs_model_num_tokens(m, 64), D = 64, C = 3;
    float *tok = malloc(sizeof(float) * T * D), *sim = malloc(sizeof(float) * T * C);
    float *maps = malloc(sizeof(float) * 300 * 200 * C), *feat = malloc(sizeof(float) * 10 * D);
    CHECK_OK(cs_encode_image(m, px.data, 64, CS_VISION_SURGERY, tok));
    report("tiny-vit/synthetic_cs_tokens_64.npy", tok, (int64_t)T * D);
    CHECK_OK(cs_feature_surgery(tok, T, classes.data, C, D, NULL, sim));
    report("tiny-vit/synthetic_cs_similarity_64.npy", sim, (int64_t)T * C);
    CHECK_OK(cs_similarity_maps(sim, T, C, 200, 300, maps));
    report("tiny-vit/synthetic_cs_simmap_64.npy", maps, (int64_t)300 * 200 * C);
    CHECK_OK(cs_encode_text(m, ids.data, 10, 77, feat));
    report("tiny-vit/text_features.npy", feat, 10 * D);
    free(tok);
    free(sim);
    free(maps);
    free(feat);
    cs_array_free(&px);
    cs_array_free(&classes);
    cs_array_free(&ids);
}

int main(void) {
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/model.safetensors"), &m));
    if (!m) return test_finish();
    CHECK_OK(cs_model_set_precision(m, CS_PRECISION_BF16));
    /* The portable kernel on every CPU; the CPU's own where it has one. */
    op_bf16_force_path(OP_BF16_PATH_PORTABLE);
    check_bf16(m, "portable");
    op_bf16_force_path(OP_BF16_PATH_AUTO);
    if (op_bf16_supported()) check_bf16(m, op_bf16_amx_supported() ? "AMX-BF16" : "AVX512-BF16");
    else printf("no AVX512-BF16 on this CPU: the portable kernel is the bf16 path\n");
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
