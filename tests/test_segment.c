/* Segmentation and multi-label scores on hand-made tokens and embeddings:
 * grid logits (raw cosine, each class its best name), argmax with the
 * background threshold, and the two multi-label scores. */
#include "clip_surgery.h"
#include "test.h"

/* Three names in 3-D: class 0 "x", class 1 "y" with the synonym "z". */
static const float k_names[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
static const int k_name_class[3] = {0, 1, 1};

static cs_name_set name_set(void) {
    return (cs_name_set){.emb = k_names, .n_names = 3, .dim = 3, .name_class = k_name_class, .n_classes = 2};
}

static void test_grid_and_synonyms(void) {
    /* Token 0 (class token) is ignored; a 2x2 grid follows. Token lengths
     * differ to show that tokens are normalized. */
    const float tokens[15] = {9, 9, 9, 2, 0, 0, 0, 0, 3, 0, 0.5f, 0, 1, 1, 0};
    float grid[8];
    cs_name_set s = name_set();
    CHECK_OK(cs_segment_grid(tokens, 5, &s, grid));
    const float want[8] = {1, 0, 0, 1, 0, 1, 0.70710678f, 0.70710678f};
    for (int i = 0; i < 8; i++) CHECK_NEAR(grid[i], want[i], 1e-6);
    uint8_t labels[4];
    CHECK_OK(cs_segment_labels(grid, 4, 2, NULL, labels));
    /* The synonym "z" wins class 1 for cell 1; a tie goes to the first class. */
    CHECK(labels[0] == 0 && labels[1] == 1 && labels[2] == 1 && labels[3] == 0);
    CHECK_STATUS(cs_segment_grid(tokens, 4, &s, grid), CS_ERR_ARG);
    const int orphan[3] = {0, 0, 0};
    s.name_class = orphan;
    CHECK_STATUS(cs_segment_grid(tokens, 5, &s, grid), CS_ERR_ARG);
    CHECK_ERR_HAS("class 1 has no name");
}

static void test_background_threshold(void) {
    /* Pixel 0: softmax(40 x [0.50, 0.49]) max = 1 / (1 + e^-0.4) = 0.599;
     * pixel 1: [0.9, 0.1] is confident; pixel 2 as pixel 0 with scale 10:
     * 1 / (1 + e^-0.1) = 0.525. */
    const float logits[6] = {0.50f, 0.49f, 0.9f, 0.1f, 0.49f, 0.50f};
    uint8_t labels[3];
    cs_segment_options o = {.bg_thresh = 0.6f, .logit_scale = 0.0f, .bg_class = 1};
    CHECK_OK(cs_segment_labels(logits, 3, 2, &o, labels));
    CHECK(labels[0] == 1 && labels[1] == 0 && labels[2] == 1);
    o.bg_thresh = 0.59f;
    o.bg_class = 0;
    CHECK_OK(cs_segment_labels(logits, 3, 2, &o, labels));
    CHECK(labels[0] == 0 && labels[1] == 0 && labels[2] == 1);
    o.logit_scale = 10.0f;
    o.bg_thresh = 0.53f;
    CHECK_OK(cs_segment_labels(logits, 3, 2, &o, labels));
    CHECK(labels[0] == 0 && labels[1] == 0 && labels[2] == 0);
    o.bg_class = 2;
    CHECK_STATUS(cs_segment_labels(logits, 3, 2, &o, labels), CS_ERR_ARG);
}

static void test_multilabel(void) {
    const float tokens[3] = {0.6f, 0.8f, 0.0f};
    cs_name_set s = name_set();
    float scores[2], sim[3];
    CHECK_OK(cs_multilabel_scores(tokens, 1, &s, 0, scores));
    /* Plain CLIP: softmax(100 x [0.6, max(0.8, 0)]). */
    CHECK_NEAR(scores[1], 1.0 / (1.0 + exp(-20.0)), 1e-6);
    CHECK_NEAR(scores[0] + scores[1], 1.0, 1e-6);
    CHECK_OK(cs_multilabel_scores(tokens, 1, &s, 1, scores));
    CHECK_OK(cs_feature_surgery(tokens, 1, k_names, 3, 3, NULL, sim));
    CHECK_NEAR(scores[0], sim[0], 1e-7);
    CHECK_NEAR(scores[1], sim[1] > sim[2] ? sim[1] : sim[2], 1e-7);
}

int main(void) {
    test_grid_and_synonyms();
    test_background_threshold();
    test_multilabel();
    return test_finish();
}
