/* Prompt ensembles through the tokenizer: the prompt ids against
 * inputs/ensemble_tokens.npy (exact), the class embeddings against
 * text_ensemble.npy and the empty class against text_ensemble_empty.npy. */
#include <stdlib.h>
#include "golden.h"
#include "method/method.h"
#include "test.h"

static const char *k_classes[] = {"cat", "bench", "potted plant", ""};

static void check_prompt_ids(cs_tokenizer *tok) {
    int L = 77, nt = CS_NUM_DEFAULT_TEMPLATES;
    int32_t *ids = calloc((size_t)4 * nt * L, sizeof(int32_t));
    for (int c = 0; c < 4; c++)
        CHECK_OK(ensemble_prompt_ids(tok, k_classes[c], cs_default_templates, nt, L,
                                     ids + (size_t)c * nt * L));
    golden_check_exact("inputs/ensemble_tokens.npy", ids, sizeof(int32_t) * 4 * nt * L);
    free(ids);
}

static void check_model(const char *set, cs_tokenizer *tok) {
    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s/model.safetensors", set);
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path(rel), &m));
    if (!m) return;
    int D = cs_model_config(m)->embed_dim;
    float *emb = malloc(sizeof(float) * 4 * D);
    CHECK_OK(cs_class_embeddings(m, tok, k_classes, 4, cs_default_templates,
                                 CS_NUM_DEFAULT_TEMPLATES, emb));
    snprintf(rel, sizeof rel, "%s/text_ensemble.npy", set);
    golden_check_floats(rel, emb, 3 * D);
    snprintf(rel, sizeof rel, "%s/text_ensemble_empty.npy", set);
    golden_check_floats(rel, emb + 3 * D, D);
    free(emb);
    cs_model_free(m);
}

int main(void) {
    cs_tokenizer *tok;
    CHECK_OK(cs_tokenizer_load(golden_path("clip/bpe_simple_vocab_16e6.txt.gz"), &tok));
    if (!tok) return test_finish();
    check_prompt_ids(tok);
    check_model("tiny-vit", tok);
    check_model("tiny-rn", tok);
    cs_tokenizer_free(tok);
    return test_finish();
}
