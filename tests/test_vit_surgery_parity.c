/* ViT architecture surgery and the resized position embeddings against the
 * reference outputs in ../shared/golden/tiny-vit. */
#include <stdlib.h>
#include "golden.h"
#include "model/model.h"
#include "test.h"

static void check_surgery_tokens(cs_model *m, const char *image, int R) {
    char rel[256], pre[256];
    snprintf(rel, sizeof rel, "tiny-vit/%s_cs_tokens_%d.npy", image, R);
    if (!golden_entry(rel)) return;
    snprintf(pre, sizeof pre, "inputs/%s_pre_%d.npy", image, R);
    cs_array px;
    golden_load(pre, &px);
    int T = cs_model_num_tokens(m, R), D = cs_model_config(m)->embed_dim;
    float *tokens = malloc(sizeof(float) * T * D);
    CHECK_OK(cs_encode_image(m, px.data, R, CS_VISION_SURGERY, tokens));
    golden_check_floats(rel, tokens, (int64_t)T * D);
    free(tokens);
    cs_array_free(&px);
}

/* The three golden images as one batch: each image's tokens equal its
 * golden, plain and surgery. */
static void check_batch(cs_model *m) {
    static const char *images[] = {"synthetic", "chelsea", "rocket"};
    int R = 64, T = cs_model_num_tokens(m, R), D = 64;
    float *px = malloc(sizeof(float) * 3 * 3 * R * R), *tok = malloc(sizeof(float) * 3 * T * D);
    for (int i = 0; i < 3; i++) {
        char rel[128];
        cs_array a;
        snprintf(rel, sizeof rel, "inputs/%s_pre_%d.npy", images[i], R);
        golden_load(rel, &a);
        memcpy(px + (size_t)i * 3 * R * R, a.data, a.nbytes);
        cs_array_free(&a);
    }
    for (int mode = 0; mode < 2; mode++) {
        CHECK_OK(cs_encode_images(m, px, 3, R, (cs_vision_mode)mode, tok));
        for (int i = 0; i < 3; i++) {
            char rel[128];
            snprintf(rel, sizeof rel, "tiny-vit/%s_%s_tokens_%d.npy", images[i], mode ? "cs" : "clip", R);
            if (golden_entry(rel)) golden_check_floats(rel, tok + (size_t)i * T * D, (int64_t)T * D);
        }
    }
    CHECK_STATUS(cs_encode_images(m, px, 0, R, CS_VISION_SURGERY, tok), CS_ERR_ARG);
    free(px);
    free(tok);
}

int main(void) {
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/model.safetensors"), &m));
    if (!m) return test_finish();
    static const char *images[] = {"synthetic", "chelsea", "rocket"};
    for (int r = 64; r <= 128; r *= 2) {
        for (int i = 0; i < 3; i++) check_surgery_tokens(m, images[i], r);
        int G = r / 8, W = 128;
        float *pos = malloc(sizeof(float) * (G * G + 1) * W);
        vit_position_embedding(m, G, pos);
        char rel[64];
        snprintf(rel, sizeof rel, "tiny-vit/pos_embed_%d.npy", r);
        golden_check_floats(rel, pos, (int64_t)(G * G + 1) * W);
        free(pos);
    }
    check_batch(m);
    cs_model_free(m);
    return test_finish();
}
