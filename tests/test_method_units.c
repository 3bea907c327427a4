/* Hand-checked and randomized checks of the method layer that no golden
 * covers: the factored feature surgery against its direct definition, the
 * single-class rule, the constant-map rule, and combined ("a+b") points. */
#include <stdlib.h>
#include "test.h"

static float frand(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* The reference's definition, materializing [T, C, D] in double. */
static void surgery_direct(const float *F, int T, const float *Tc, int C, int D, double *out) {
    double *fn = malloc(sizeof(double) * T * D), *w = malloc(sizeof(double) * C);
    for (int n = 0; n < T; n++) {
        double ss = 0;
        for (int d = 0; d < D; d++) ss += (double)F[n * D + d] * F[n * D + d];
        for (int d = 0; d < D; d++) fn[n * D + d] = F[n * D + d] / sqrt(ss);
    }
    double mx = -1e30, sum = 0;
    for (int c = 0; c < C; c++) {
        double p = 0;
        for (int d = 0; d < D; d++) p += fn[d] * Tc[c * D + d];
        w[c] = 2 * p;
        mx = w[c] > mx ? w[c] : mx;
    }
    for (int c = 0; c < C; c++) sum += (w[c] = exp(w[c] - mx));
    for (int c = 0; c < C; c++) w[c] = (w[c] / sum) / (1.0 / C);
    double *feats = malloc(sizeof(double) * C);
    for (int n = 0; n < T; n++) {
        for (int c = 0; c < C; c++) out[n * C + c] = 0;
        for (int d = 0; d < D; d++) {
            double mean = 0;
            for (int c = 0; c < C; c++) mean += (feats[c] = fn[n * D + d] * Tc[c * D + d] * w[c]);
            mean /= C;
            for (int c = 0; c < C; c++) out[n * C + c] += feats[c] - mean;
        }
    }
    free(fn);
    free(w);
    free(feats);
}

static void test_surgery_factored(void) {
    unsigned seed = 7;
    int sizes[][3] = {{5, 2, 8}, {17, 20, 64}, {50, 200, 32}, {10, 7, 512}};
    for (int s = 0; s < 4; s++) {
        int T = sizes[s][0], C = sizes[s][1], D = sizes[s][2];
        float *F = malloc(sizeof(float) * T * D), *Tc = malloc(sizeof(float) * C * D);
        float *got = malloc(sizeof(float) * T * C);
        double *want = malloc(sizeof(double) * T * C), max_err = 0, max_ref = 0;
        for (int i = 0; i < T * D; i++) F[i] = frand(&seed);
        for (int i = 0; i < C * D; i++) Tc[i] = frand(&seed) * 0.2f;
        CHECK_OK(cs_feature_surgery(F, T, Tc, C, D, NULL, got));
        surgery_direct(F, T, Tc, C, D, want);
        for (int i = 0; i < T * C; i++) {
            max_err = fmax(max_err, fabs(got[i] - want[i]));
            max_ref = fmax(max_ref, fabs(want[i]));
        }
        CHECK_MSG(max_err <= 1e-5 * max_ref + 1e-7, "T=%d C=%d D=%d: max err %g of %g", T, C, D,
                  max_err, max_ref);
        free(F);
        free(Tc);
        free(got);
        free(want);
    }
}

static void test_single_class(void) {
    /* With one class the class-weighted mode is identically zero; the
     * explicit mode is the cosine with (T - R). */
    float F[2 * 2] = {3, 4, 1, 0}, Tc[2] = {1, 0}, R[2] = {0, 1}, out[2];
    CHECK_OK(cs_feature_surgery(F, 2, Tc, 1, 2, NULL, out));
    CHECK(out[0] == 0.0f && out[1] == 0.0f);
    CHECK_OK(cs_feature_surgery(F, 2, Tc, 1, 2, R, out));
    CHECK_NEAR(out[0], 0.6 - 0.8, 1e-6); /* (0.6, 0.8) . (1, -1) */
    CHECK_NEAR(out[1], 1.0, 1e-6);
    CHECK_STATUS(cs_feature_surgery(F, 0, Tc, 1, 2, NULL, out), CS_ERR_ARG);
}

static void test_maps_constant(void) {
    /* 1 + 2x2 tokens, 2 classes; class 1 is constant: zeros, never NaN. */
    float sim[5 * 2] = {9, 9, 0, 5, 1, 5, 2, 5, 3, 5}, maps[2 * 2 * 2];
    CHECK_OK(cs_similarity_maps(sim, 5, 2, 2, 2, maps));
    float want0[4] = {0, 1.0f / 3, 2.0f / 3, 1};
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(maps[i * 2], want0[i], 1e-6);
        CHECK(maps[i * 2 + 1] == 0.0f);
    }
    CHECK_STATUS(cs_similarity_maps(sim, 4, 2, 2, 2, maps), CS_ERR_ARG);
}

static void test_points_hand(void) {
    /* A 4x4 grid downsampled to 2x2 (exact 2x2 averages at these
     * positions): cells 0..3 get means 0, 1, 2, 3 -> normalized 0, 1/3, 2/3, 1.
     * t = 0.5: two cells at or above, cells//2 = 2, so 2 positives (ascending:
     * cell 2 then 3) and 2 negatives (cell 0 then 1). Image 8x8: cell centres
     * at 2 and 6. */
    float sim[17];
    sim[0] = 0;
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) sim[1 + y * 4 + x] = (float)((y / 2) * 2 + x / 2);
    int32_t pts[32];
    uint8_t labels[16];
    int n;
    CHECK_OK(cs_similarity_points(sim, 17, 1, 0, 8, 8, 0.5f, pts, labels, &n));
    int32_t want[8] = {2, 6, 6, 6, 2, 2, 6, 2};
    uint8_t want_l[4] = {1, 1, 0, 0};
    CHECK(n == 4 && !memcmp(pts, want, sizeof want) && !memcmp(labels, want_l, 4));

    /* Combined "a+b": text a is the map above, text b its mirror (x -> 3-x).
     * Mean of the min-maxed maps: cells (0,1,2,3) -> (1/6, 1/6, 5/6, 5/6) ->
     * normalized (0, 0, 1, 1); t = 0.5 -> 2 negatives: cells 0, 1 (ties by
     * index) = (2,2), (6,2). Then a's positives (2,6), (6,6); then b's:
     * b's cells are (1, 0, 3, 2) -> positives ascending: cell 3 (6,6), cell 2 (2,6). */
    float sim2[17 * 2];
    sim2[0] = sim2[1] = 0;
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) {
            sim2[2 * (1 + y * 4 + x)] = (float)((y / 2) * 2 + x / 2);
            sim2[2 * (1 + y * 4 + x) + 1] = (float)((y / 2) * 2 + (3 - x) / 2);
        }
    CHECK_OK(cs_combined_points(sim2, 17, 2, 8, 8, 0.5f, pts, labels, &n));
    int32_t want2[12] = {2, 2, 6, 2, 2, 6, 6, 6, 6, 6, 2, 6};
    uint8_t want_l2[6] = {0, 0, 1, 1, 1, 1};
    CHECK_MSG(n == 6 && !memcmp(pts, want2, sizeof want2) && !memcmp(labels, want_l2, 6),
              "n=%d first=(%d,%d)", n, pts[0], pts[1]);
}

int main(void) {
    test_surgery_factored();
    test_single_class();
    test_maps_constant();
    test_points_hand();
    return test_finish();
}
