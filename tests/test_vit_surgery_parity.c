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
    cs_model_free(m);
    return test_finish();
}
