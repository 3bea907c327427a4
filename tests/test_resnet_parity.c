/* The CLIP ModifiedResNet, plain and with surgery, against the reference
 * outputs in ../shared/golden/tiny-rn: trunk stages, position embeddings,
 * plain tokens, embedding and similarity, surgery tokens. */
#include <stdlib.h>
#include "golden.h"
#include "model/model.h"
#include "test.h"

static const char *k_images[] = {"synthetic", "chelsea", "rocket"};

/* Normalized pixels of an image at R, or 0 when the golden set has none. */
static int load_pixels(const char *image, int R, cs_array *px) {
    char pre[256];
    snprintf(pre, sizeof pre, "inputs/%s_pre_%d.npy", image, R);
    if (!golden_entry(pre)) return 0;
    golden_load(pre, px);
    return 1;
}

static void check_plain(cs_model *m, const char *image, int R, const cs_array *classes) {
    char rel[256];
    snprintf(rel, sizeof rel, "tiny-rn/%s_clip_tokens_%d.npy", image, R);
    cs_array px;
    if (!golden_entry(rel) || !load_pixels(image, R, &px)) return;
    int T = cs_model_num_tokens(m, R), D = cs_model_config(m)->embed_dim;
    int C = (int)classes->shape[0];
    float *tokens = malloc(sizeof(float) * T * D), *sim = malloc(sizeof(float) * T * C);
    CHECK_OK(cs_encode_image(m, px.data, R, CS_VISION_PLAIN, tokens));
    golden_check_floats(rel, tokens, (int64_t)T * D);
    snprintf(rel, sizeof rel, "tiny-rn/%s_clip_embed_%d.npy", image, R);
    if (golden_entry(rel)) golden_check_floats(rel, tokens, D);
    CHECK_OK(cs_similarity(tokens, T, classes->data, C, D, sim));
    snprintf(rel, sizeof rel, "tiny-rn/%s_clip_similarity_%d.npy", image, R);
    if (golden_entry(rel)) golden_check_floats(rel, sim, (int64_t)T * C);
    free(tokens);
    free(sim);
    cs_array_free(&px);
}

static void check_surgery(cs_model *m, const char *image, int R) {
    char rel[256];
    snprintf(rel, sizeof rel, "tiny-rn/%s_cs_tokens_%d.npy", image, R);
    cs_array px;
    if (!golden_entry(rel) || !load_pixels(image, R, &px)) return;
    int T = cs_model_num_tokens(m, R), D = cs_model_config(m)->embed_dim;
    float *tokens = malloc(sizeof(float) * T * D);
    CHECK_OK(cs_encode_image(m, px.data, R, CS_VISION_SURGERY, tokens));
    golden_check_floats(rel, tokens, (int64_t)T * D);

    /* The authors' optional "normalize v, scale x8" setting has no golden:
     * it must give finite tokens that differ from the default. */
    m->surgery_normalize_v = 1;
    float *alt = malloc(sizeof(float) * T * D);
    CHECK_OK(cs_encode_image(m, px.data, R, CS_VISION_SURGERY, alt));
    m->surgery_normalize_v = 0;
    int finite = 1, differs = 0;
    for (int i = 0; i < T * D; i++) {
        finite &= isfinite(alt[i]) != 0;
        differs |= alt[i] != tokens[i];
    }
    CHECK(finite && differs);
    free(alt);
    free(tokens);
    cs_array_free(&px);
}

/* Stem and layer1..4 outputs (NCHW) of the synthetic image at 128. */
static void check_trunk(cs_model *m) {
    static const char *stages[5] = {"stem", "layer1", "layer2", "layer3", "layer4"};
    cs_array px;
    if (!load_pixels("synthetic", 128, &px)) return;
    for (int s = 0; s < 5; s++) {
        char rel[256];
        snprintf(rel, sizeof rel, "tiny-rn/inter/synthetic_128_%s.npy", stages[s]);
        cJSON *e = golden_entry(rel);
        if (!e) continue;
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        int64_t n = 1;
        cJSON *d;
        cJSON_ArrayForEach(d, shape) n *= (int64_t)d->valuedouble;
        float *out = malloc(sizeof(float) * (size_t)n);
        CHECK_OK(resnet_trunk(m, px.data, 128, s, out));
        golden_check_floats(rel, out, n);
        free(out);
    }
    cs_array_free(&px);
}

static void check_position_embedding(cs_model *m, int R) {
    char rel[64];
    snprintf(rel, sizeof rel, "tiny-rn/pos_embed_%d.npy", R);
    if (!golden_entry(rel)) return;
    int G = R / 32, E = 32 * cs_model_config(m)->vision_width;
    float *pos = malloc(sizeof(float) * (G * G + 1) * E);
    resnet_position_embedding(m, G, pos);
    golden_check_floats(rel, pos, (int64_t)(G * G + 1) * E);
    free(pos);
}

/* The same weights widened to F32 in an in-memory table: model_weight then
 * borrows them, so the batch norms fold into copies, not in place. */
static void check_f32_table(void) {
    cs_tensor_table f16, f32;
    CHECK_OK(safetensors_open(golden_path("golden/tiny-rn/model.safetensors"), &f16));
    tensors_init(&f32, "tiny-rn widened to F32");
    for (int i = 0; i < f16.n; i++) {
        const cs_tensor *x = &f16.items[i];
        int64_t n = tensor_numel(x);
        float *data = mem_alloc((size_t)(n ? n : 1), sizeof(float));
        CHECK_OK(tensor_to_f32(x, data));
        CHECK_OK(tensors_add(&f32, x->name, CS_DT_F32, x->ndim, x->shape, data,
                                (size_t)n * sizeof(float), 1));
    }
    tensors_free(&f16);
    cs_model *m;
    CHECK_OK(model_from_table(&f32, NULL, &m));
    if (!m) return;
    printf("model: F32 table\n");
    check_surgery(m, "synthetic", 128);
    cs_array classes;
    golden_load("tiny-rn/text_ensemble.npy", &classes);
    check_plain(m, "synthetic", 128, &classes);
    cs_array_free(&classes);
    cs_model_free(m);
}

/* The tiny-rn tensors with one of them renamed or reshaped: loading fails
 * with `want`, the message names the tensor, and nothing leaks. */
static void check_broken_model(const char *tensor, int rename, int64_t dim0, cs_status want) {
    cs_tensor_table t;
    CHECK_OK(safetensors_open(golden_path("golden/tiny-rn/model.safetensors"), &t));
    for (int i = 0; i < t.n; i++) {
        if (strcmp(t.items[i].name, tensor) != 0) continue;
        if (rename) t.items[i].name[0] = '_';
        if (dim0) t.items[i].shape[0] = dim0;
    }
    cs_model *m = NULL;
    CHECK_STATUS(model_from_table(&t, NULL, &m), want);
    CHECK_ERR_HAS(tensor);
    CHECK(m == NULL);
}

int main(void) {
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-rn/model.safetensors"), &m));
    if (!m) return test_finish();
    const cs_config *c = cs_model_config(m);
    CHECK(c->vision_kind == CS_VISION_RESNET && c->vision_width == 16 && c->vision_heads == 8 &&
          c->image_resolution == 128 && c->grid == 4 && c->embed_dim == 64);
    CHECK(c->resnet_layers[0] == 2 && c->resnet_layers[1] == 1 && c->resnet_layers[2] == 1 &&
          c->resnet_layers[3] == 1);
    CHECK(cs_model_num_tokens(m, 256) == 65);

    check_trunk(m);
    cs_array classes;
    golden_load("tiny-rn/text_ensemble.npy", &classes);
    for (int R = 128; R <= 256; R *= 2) {
        check_position_embedding(m, R);
        for (size_t i = 0; i < sizeof k_images / sizeof *k_images; i++) {
            check_plain(m, k_images[i], R, &classes);
            check_surgery(m, k_images[i], R);
        }
    }
    CHECK_STATUS(cs_encode_image(m, classes.data, 100, CS_VISION_PLAIN, NULL), CS_ERR_ARG);
    cs_model_free(m);

    /* The TorchScript form of the same weights (fp16 weights, fp32 norms). */
    CHECK_OK(cs_model_load(golden_path("golden/tiny-rn/model-jit.pt"), &m));
    if (m) {
        for (size_t i = 0; i < sizeof k_images / sizeof *k_images; i++) {
            check_plain(m, k_images[i], 128, &classes);
            check_surgery(m, k_images[i], 128);
        }
        cs_model_free(m);
    }
    cs_array_free(&classes);

    check_f32_table();
    check_broken_model("visual.layer2.0.downsample.0.weight", 1, 0, CS_ERR_MISSING);
    check_broken_model("visual.layer3.0.conv2.weight", 0, 63, CS_ERR_SHAPE);
    check_broken_model("visual.layer4.0.bn3.running_var", 0, 511, CS_ERR_SHAPE);
    check_broken_model("visual.attnpool.c_proj.weight", 0, 32, CS_ERR_SHAPE);
    return test_finish();
}
