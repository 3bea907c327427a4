/* The method layer stage by stage against ../shared/golden, each stage fed
 * the GOLDEN output of the stage before it: feature surgery (both modes) from
 * the golden tokens and class embeddings, maps and points from the golden
 * similarities. Runs for every model set (the method does not know the
 * tower). */
#include <stdlib.h>
#include "golden.h"
#include "test.h"

static const struct { const char *name; int w, h; } k_images[] = {
    {"synthetic", 300, 200}, {"chelsea", 451, 300}, {"rocket", 640, 427}};

static void check_surgery(const char *set, const char *image, int R, const cs_array *classes,
                          const cs_array *empty) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s_cs_tokens_%d.npy", set, image, R);
    if (!golden_entry(rel)) return;
    cs_array tok;
    golden_load(rel, &tok);
    int T = (int)tok.shape[1], D = (int)tok.shape[2], C = (int)classes->shape[0];
    float *sim = malloc(sizeof(float) * T * C);
    for (int mode = 0; mode < 2; mode++) {
        snprintf(rel, sizeof rel, "%s/%s_cs_similarity%s_%d.npy", set, image, mode ? "_redundant" : "", R);
        if (!golden_entry(rel)) continue;
        CHECK_OK(cs_feature_surgery(tok.data, T, classes->data, C, D, mode ? empty->data : NULL, sim));
        golden_check_floats(rel, sim, (int64_t)T * C);
    }
    free(sim);
    cs_array_free(&tok);
}

static void check_maps(const char *set, const char *image, int w, int h, int R) {
    static const char *kinds[] = {"cs", "cs", "clip"};
    static const char *suffix[] = {"", "_redundant", ""};
    for (int k = 0; k < 3; k++) {
        char rel[256], src[256];
        snprintf(rel, sizeof rel, "%s/%s_%s_simmap%s_%d.npy", set, image, kinds[k], suffix[k], R);
        snprintf(src, sizeof src, "%s/%s_%s_similarity%s_%d.npy", set, image, kinds[k], suffix[k], R);
        if (!golden_entry(rel)) continue;
        cs_array sim;
        golden_load(src, &sim);
        int T = (int)sim.shape[1], C = (int)sim.shape[2];
        float *maps = malloc(sizeof(float) * w * h * C);
        CHECK_OK(cs_similarity_maps(sim.data, T, C, h, w, maps));
        golden_check_floats(rel, maps, (int64_t)w * h * C);
        free(maps);
        cs_array_free(&sim);
    }
}

static void check_points(const char *set, const char *image, int w, int h, int R) {
    for (int mode = 0; mode < 2; mode++) {
        char src[256];
        snprintf(src, sizeof src, "%s/%s_cs_similarity%s_%d.npy", set, image, mode ? "_redundant" : "", R);
        if (!golden_entry(src)) continue;
        cs_array sim;
        golden_load(src, &sim);
        int T = (int)sim.shape[1], C = (int)sim.shape[2];
        for (int c = 0; c < C; c++) {
            char prel[256], lrel[256];
            snprintf(prel, sizeof prel, "%s/%s_points%s_%d_c%d.npy", set, image, mode ? "_redundant" : "", R, c);
            snprintf(lrel, sizeof lrel, "%s/%s_labels%s_%d_c%d.npy", set, image, mode ? "_redundant" : "", R, c);
            if (!golden_entry(prel)) continue;
            int32_t *pts = malloc(sizeof(int32_t) * 2 * T);
            uint8_t *labels = malloc((size_t)T);
            int n = -1;
            CHECK_OK(cs_similarity_points(sim.data, T, C, c, w, h, 0.8f, pts, labels, &n));
            golden_check_exact(prel, pts, (size_t)n * 2 * sizeof(int32_t));
            golden_check_exact(lrel, labels, (size_t)n);
            free(pts);
            free(labels);
        }
        cs_array_free(&sim);
    }
}

static void check_set(const char *set, int res, int res2) {
    char rel[128];
    cs_array classes, empty;
    snprintf(rel, sizeof rel, "%s/text_ensemble.npy", set);
    golden_load(rel, &classes);
    snprintf(rel, sizeof rel, "%s/text_ensemble_empty.npy", set);
    golden_load(rel, &empty);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 3; i++) {
            int R = r ? res2 : res;
            check_surgery(set, k_images[i].name, R, &classes, &empty);
            check_maps(set, k_images[i].name, k_images[i].w, k_images[i].h, R);
            check_points(set, k_images[i].name, k_images[i].w, k_images[i].h, R);
        }
    cs_array_free(&classes);
    cs_array_free(&empty);
}

int main(void) {
    check_set("tiny-vit", 64, 128);
    check_set("tiny-rn", 128, 256);
    return test_finish();
}
