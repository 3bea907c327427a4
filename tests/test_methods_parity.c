/* MaskCLIP, SCLIP, ClearCLIP, NACLIP and GEM against the outputs of each
 * method's own code on the tiny-vit weights (../shared/golden/methods):
 * tokens, cosine, logits, score and argmax of the chelsea image, under the
 * tolerance of that folder's manifest. */
#include <stdlib.h>
#include "golden.h"
#include "test.h"

static double g_rel_tol, g_min_cos;

/* float32 [rows, cols] -> [cols, rows]. */
static void transpose(const float *in, int rows, int cols, float *out) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) out[(size_t)c * rows + r] = in[(size_t)r * cols + c];
}

static void check_method(cs_model *m, cs_method method, const float *px, const cs_array *text) {
    const char *name = cs_method_name(method);
    cs_vision_mode mode = cs_method_vision_mode(method);
    cs_method_defaults d = cs_method_defaults_of(method);
    int R = 64, T = cs_model_num_tokens(m, R), N = T - 1, D = cs_model_config(m)->embed_dim;
    int C = (int)text->shape[0];
    float *tokens = malloc(sizeof(float) * T * D), *cosine = malloc(sizeof(float) * N * C);
    float *logits = malloc(sizeof(float) * R * R * C), *scores = malloc(sizeof(float) * R * R * C);
    float *chw = malloc(sizeof(float) * R * R * C);
    uint8_t *labels = malloc((size_t)R * R);
    char rel[128];

    CHECK_OK(cs_encode_image(m, px, R, mode, tokens));
    snprintf(rel, sizeof rel, "methods/tiny-vit/%s/chelsea_tokens_64.npy", name);
    int skip = d.drops_cls ? D : 0;
    golden_check_floats_tol(rel, tokens + skip, (int64_t)(T - (d.drops_cls ? 1 : 0)) * D, g_rel_tol, g_min_cos);

    CHECK_OK(cs_similarity(tokens + D, N, text->data, C, D, cosine));
    snprintf(rel, sizeof rel, "methods/tiny-vit/%s/chelsea_cosine_64.npy", name);
    golden_check_floats_tol(rel, cosine, (int64_t)N * C, g_rel_tol, g_min_cos);

    cs_name_set names = {.emb = text->data, .n_names = C, .dim = D, .n_classes = C};
    CHECK_OK(cs_segment_logits(m, px, R, mode, &names, R, R, logits));
    for (int i = 0; i < R * R * C; i++) logits[i] *= d.logit_scale;
    transpose(logits, R * R, C, chw);
    snprintf(rel, sizeof rel, "methods/tiny-vit/%s/chelsea_logits_64.npy", name);
    golden_check_floats_tol(rel, chw, (int64_t)R * R * C, g_rel_tol, g_min_cos);

    /* Scores from the unscaled logits, as a caller of the library has them. */
    for (int i = 0; i < R * R * C; i++) logits[i] /= d.logit_scale;
    CHECK_OK(cs_segment_scores(logits, (size_t)R * R, C, d.logit_scale, d.minmax, scores));
    transpose(scores, R * R, C, chw);
    snprintf(rel, sizeof rel, "methods/tiny-vit/%s/chelsea_score_64.npy", name);
    golden_check_floats_tol(rel, chw, (int64_t)R * R * C, g_rel_tol, g_min_cos);

    cs_segment_options o = cs_segment_defaults();
    o.method = method;
    CHECK_OK(cs_segment_labels(logits, (size_t)R * R, C, &o, labels));
    cs_array gs;
    golden_load(rel, &gs);
    snprintf(rel, sizeof rel, "methods/tiny-vit/%s/chelsea_argmax_64.npy", name);
    int64_t *wide = malloc(sizeof(int64_t) * R * R);
    for (int i = 0; i < R * R; i++) wide[i] = labels[i];
    golden_check_argmax(rel, wide, gs.data, C, R * R);
    free(wide);
    cs_array_free(&gs);

    free(tokens);
    free(cosine);
    free(logits);
    free(scores);
    free(chw);
    free(labels);
}

/* Names, and the methods that need a ViT refused on a ResNet. */
static void check_names_and_resnet(void) {
    for (int i = 0; i < CS_NUM_METHODS; i++) {
        cs_method m;
        CHECK_OK(cs_method_parse(cs_method_name((cs_method)i), &m));
        CHECK(m == (cs_method)i);
    }
    cs_method m;
    CHECK_STATUS(cs_method_parse("segclip", &m), CS_ERR_ARG);
    CHECK_ERR_HAS("segclip");
    CHECK(cs_method_name((cs_method)7) == NULL && cs_method_name((cs_method)-1) == NULL);
    CHECK(cs_method_vision_mode(CS_METHOD_SURGERY) == CS_VISION_SURGERY && cs_method_vision_mode(CS_METHOD_CLIP) == CS_VISION_PLAIN &&
          cs_method_vision_mode(CS_METHOD_NACLIP) == CS_VISION_NACLIP);
    CHECK(cs_method_defaults_of(CS_METHOD_CLEARCLIP).logit_scale == 50 && cs_method_defaults_of(CS_METHOD_GEM).minmax);

    cs_model *rn;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-rn/model.safetensors"), &rn));
    if (!rn) return;
    int R = cs_model_config(rn)->image_resolution, T = cs_model_num_tokens(rn, R);
    float *px = calloc((size_t)3 * R * R, sizeof(float)), *tok = malloc(sizeof(float) * T * cs_model_config(rn)->embed_dim);
    for (int i = CS_VISION_MASKCLIP; i <= CS_VISION_GEM; i++) {
        CHECK_STATUS(cs_encode_image(rn, px, R, (cs_vision_mode)i, tok), CS_ERR_UNSUPPORTED);
        CHECK_ERR_HAS("needs a ViT");
    }
    CHECK_STATUS(cs_encode_image(rn, px, R, (cs_vision_mode)7, tok), CS_ERR_ARG);
    free(px);
    free(tok);
    cs_model_free(rn);
}

int main(void) {
    golden_methods_tolerance(&g_rel_tol, &g_min_cos);
    check_names_and_resnet();
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/model.safetensors"), &m));
    if (!m) return test_finish();
    cs_array px, text;
    golden_load("inputs/chelsea_pre_64.npy", &px);
    golden_load("tiny-vit/text_ensemble.npy", &text);
    for (int i = CS_METHOD_MASKCLIP; i <= CS_METHOD_GEM; i++) check_method(m, (cs_method)i, px.data, &text);
    cs_array_free(&px);
    cs_array_free(&text);
    cs_model_free(m);
    return test_finish();
}
