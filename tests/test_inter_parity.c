/* Every stage of the forward passes against the goldens' inter/ activations
 * (tiny-vit: the patch embedding, ln_pre, each block, both paths of each
 * surgery block, ln_post, plain and surgery; both tiny sets: each text
 * block and ln_final), and tiny-rn's text features. These locate a
 * regression: the first stage out of tolerance is where it starts. Stages
 * come from the model's test hook (model_tap); a stage the golden set has
 * but the pass never produced is a failure too. */
#include <stdlib.h>
#include "golden.h"
#include "model/model.h"
#include "test.h"

typedef struct tap_run {
    const char *set;    /* "tiny-vit" */
    const char *prefix; /* "synthetic_cs_64" or "text" */
    const int32_t *ids; /* text runs: the token ids [n, 77] */
    int n_checked;
} tap_run;

/* The golden file of a stage (relative to golden/), or 0 if it has none. */
static int stage_file(const tap_run *r, const char *stage, int layer, char *rel, size_t n) {
    if (!strcmp(stage, "patch_embed") || !strcmp(stage, "ln_pre") || !strcmp(stage, "ln_post"))
        snprintf(rel, n, "%s/inter/%s_%s.npy", r->set, r->prefix, stage);
    else if (!strcmp(stage, "block"))
        snprintf(rel, n, "%s/inter/%s_block%02d.npy", r->set, r->prefix, layer);
    else if (!strcmp(stage, "block_xori") || !strcmp(stage, "block_x"))
        snprintf(rel, n, "%s/inter/%s_block%02d_%s.npy", r->set, r->prefix, layer, stage + 6);
    else if (!strcmp(stage, "text_block"))
        snprintf(rel, n, "%s/inter/text_block%02d.npy", r->set, layer);
    else if (!strcmp(stage, "text_ln_final"))
        snprintf(rel, n, "%s/inter/text_ln_final.npy", r->set);
    else
        return 0;
    return golden_entry(rel) != NULL;
}

/* Length of a prompt: up to its end token (the first largest id), as the
 * text tower runs it (causal attention: padding never reaches it). */
static int prompt_len(const int32_t *ids) {
    int best = 0;
    for (int i = 1; i < 77; i++)
        if (ids[i] > ids[best]) best = i;
    return best + 1;
}

static void on_stage(void *ctx, const char *stage, int layer, const float *x, int rows, int width) {
    tap_run *r = ctx;
    char rel[256];
    if (!stage_file(r, stage, layer, rel, sizeof rel)) return;
    int64_t n = (int64_t)rows * width;
    int64_t *index = malloc(sizeof(int64_t) * (size_t)n);
    if (!strcmp(stage, "patch_embed")) {
        /* Ours: [N, W] rows; the golden: conv1's output NCHW [1, W, g, g]. */
        for (int64_t t = 0; t < rows; t++)
            for (int c = 0; c < width; c++) index[t * width + c] = (int64_t)c * rows + t;
    } else if (!strcmp(stage, "text_block") || !strcmp(stage, "text_ln_final")) {
        /* Ours: each prompt's real tokens packed (ln_final: the end token
         * only); the golden: [T, 77, W] padded. */
        int64_t row = 0;
        for (int i = 0; row < rows; i++) {
            int len = prompt_len(r->ids + (size_t)i * 77);
            int first = !strcmp(stage, "text_ln_final") ? len - 1 : 0;
            for (int p = first; p < len; p++, row++)
                for (int c = 0; c < width; c++)
                    index[row * width + c] = ((int64_t)i * 77 + p) * width + c;
        }
    } else {
        for (int64_t i = 0; i < n; i++) index[i] = i;
    }
    golden_check_floats_at(rel, x, index, n);
    r->n_checked++;
    free(index);
}

/* Each inter/ file of a set whose name starts with `prefix`. */
static int count_files(const char *set, const char *prefix) {
    cJSON *files = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(golden_manifest(), "sets"), set),
        "files");
    char start[128];
    snprintf(start, sizeof start, "%s/inter/%s", set, prefix);
    int n = 0;
    cJSON *f;
    cJSON_ArrayForEach(f, files) n += !strncmp(f->string, start, strlen(start));
    return n;
}

static void check_image(cs_model *m, const char *image, cs_vision_mode mode, int R) {
    char prefix[64], pre[128];
    snprintf(prefix, sizeof prefix, "%s_%s_%d", image, mode ? "cs" : "clip", R);
    snprintf(pre, sizeof pre, "inputs/%s_pre_%d.npy", image, R);
    tap_run r = {"tiny-vit", prefix, NULL, 0};
    cs_array px;
    golden_load(pre, &px);
    int T = cs_model_num_tokens(m, R);
    float *tokens = malloc(sizeof(float) * (size_t)T * 64);
    m->tap = on_stage;
    m->tap_ctx = &r;
    CHECK_OK(cs_encode_image(m, px.data, R, mode, tokens));
    m->tap = NULL;
    char start[80];
    snprintf(start, sizeof start, "%s_", prefix);
    int want = count_files("tiny-vit", start);
    CHECK_MSG(r.n_checked == want && want > 0, "%s: %d stages compared, the golden set has %d", prefix,
              r.n_checked, want);
    free(tokens);
    cs_array_free(&px);
}

static void check_text(const char *set) {
    char path[128];
    snprintf(path, sizeof path, "golden/%s/model.safetensors", set);
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path(path), &m));
    if (!m) return;
    cs_array ids;
    golden_load("inputs/text_tokens.npy", &ids);
    int n = (int)ids.shape[0], D = cs_model_config(m)->embed_dim;
    tap_run r = {set, "text", ids.data, 0};
    float *feat = malloc(sizeof(float) * (size_t)n * D);
    m->tap = on_stage;
    m->tap_ctx = &r;
    CHECK_OK(cs_encode_text(m, ids.data, n, (int)ids.shape[1], feat));
    int want = count_files(set, "text_");
    CHECK_MSG(r.n_checked == want && want > 0, "%s text: %d stages compared, the golden set has %d", set,
              r.n_checked, want);
    snprintf(path, sizeof path, "%s/text_features.npy", set);
    golden_check_floats(path, feat, (int64_t)n * D);
    free(feat);
    cs_array_free(&ids);
    cs_model_free(m);
}

int main(void) {
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/model.safetensors"), &m));
    if (!m) return test_finish();
    check_image(m, "synthetic", CS_VISION_PLAIN, 64);
    check_image(m, "synthetic", CS_VISION_SURGERY, 64);
    check_image(m, "synthetic", CS_VISION_SURGERY, 128);
    cs_model_free(m);
    check_text("tiny-vit");
    check_text("tiny-rn");
    return test_finish();
}
