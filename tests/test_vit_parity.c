/* Plain CLIP ViT and text tower against the reference outputs in
 * ../shared/golden/tiny-vit, for every form of the same weights: safetensors
 * (OpenAI names, F16), Hugging Face (F32), torch.save and TorchScript. */
#include <stdlib.h>
#include "golden.h"
#include "test.h"

static const char *k_images[] = {"synthetic", "chelsea"};

static void check_image(cs_model *m, const char *image, int R, const cs_array *classes) {
    char rel[256];
    snprintf(rel, sizeof rel, "tiny-vit/%s_clip_tokens_%d.npy", image, R);
    if (!golden_entry(rel)) return; /* the golden set has no such run */
    cs_array px;
    char pre[256];
    snprintf(pre, sizeof pre, "inputs/%s_pre_%d.npy", image, R);
    golden_load(pre, &px);
    int T = cs_model_num_tokens(m, R), D = cs_model_config(m)->embed_dim;
    float *tokens = malloc(sizeof(float) * T * D);
    CHECK_OK(cs_encode_image(m, px.data, R, CS_VISION_PLAIN, tokens));
    golden_check_floats(rel, tokens, (int64_t)T * D);

    snprintf(rel, sizeof rel, "tiny-vit/%s_clip_embed_%d.npy", image, R);
    if (golden_entry(rel)) golden_check_floats(rel, tokens, D);

    int C = (int)classes->shape[0];
    float *sim = malloc(sizeof(float) * T * C);
    CHECK_OK(cs_similarity(tokens, T, classes->data, C, D, sim));
    snprintf(rel, sizeof rel, "tiny-vit/%s_clip_similarity_%d.npy", image, R);
    if (golden_entry(rel)) golden_check_floats(rel, sim, (int64_t)T * C);
    free(sim);
    free(tokens);
    cs_array_free(&px);
}

static void check_model(const char *path) {
    printf("model %s\n", path);
    cs_model *m;
    CHECK_OK(cs_model_load(path, &m));
    if (!m) return;
    const cs_config *c = cs_model_config(m);
    CHECK(c->vision_kind == CS_VISION_VIT && c->vision_width == 128 && c->vision_layers == 8 &&
          c->vision_heads == 2 && c->patch_size == 8 && c->grid == 8 && c->image_resolution == 64);
    CHECK(c->embed_dim == 64 && c->context_length == 77 && c->vocab_size == 49408 &&
          c->text_width == 64 && c->text_heads == 1 && c->text_layers == 3);

    cs_array classes, ids;
    golden_load("tiny-vit/text_ensemble.npy", &classes);
    for (int r = 0; r < 2; r++)
        for (size_t i = 0; i < sizeof k_images / sizeof *k_images; i++)
            check_image(m, k_images[i], r ? 128 : 64, &classes);

    golden_load("inputs/text_tokens.npy", &ids);
    int n = (int)ids.shape[0];
    float *feat = malloc(sizeof(float) * n * c->embed_dim);
    CHECK_OK(cs_encode_text(m, ids.data, n, (int)ids.shape[1], feat));
    golden_check_floats("tiny-vit/text_features.npy", feat, (int64_t)n * c->embed_dim);
    free(feat);
    cs_array_free(&ids);
    cs_array_free(&classes);
    cs_model_free(m);
}

int main(void) {
    check_model(golden_path("golden/tiny-vit/model.safetensors"));
    check_model(golden_path("golden/tiny-vit/hf"));
    check_model(golden_path("golden/tiny-vit/model.pt"));
    check_model(golden_path("golden/tiny-vit/model-jit.pt"));
    return test_finish();
}
