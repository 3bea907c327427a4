/* The bf16 option's parity loss against the fp32 goldens (tiny ViT): it is
 * not the parity path, so this test reports the figures and checks only a
 * sanity bound (cosine >= 0.999, max relative error <= 3e-2) that catches a
 * broken kernel, not rounding. Skipped on CPUs without AVX512-BF16. */
#include <stdlib.h>
#include "golden.h"
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

int main(void) {
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/model.safetensors"), &m));
    if (!m) return test_finish();
    cs_status s = cs_model_set_precision(m, CS_PRECISION_BF16);
    if (s == CS_ERR_UNSUPPORTED) {
        printf("SKIP: %s\n", cs_last_error());
        cs_model_free(m);
        return 77;
    }
    CHECK_OK(s);
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
    /* Back to fp32: the parity path again, exactly. */
    CHECK_OK(cs_model_set_precision(m, CS_PRECISION_FP32));
    CHECK_OK(cs_encode_image(m, px.data, 64, CS_VISION_SURGERY, tok));
    golden_check_floats("tiny-vit/synthetic_cs_tokens_64.npy", tok, (int64_t)T * D);
    free(tok);
    free(sim);
    free(maps);
    free(feat);
    cs_array_free(&px);
    cs_array_free(&classes);
    cs_array_free(&ids);
    cs_model_free(m);
    return test_finish();
}
