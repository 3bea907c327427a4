/* Metrics against hand-computed cases: a 3x3 confusion matrix with ignored
 * and unknown pixels, average precision with ties and without positives,
 * and the explainability threshold counts. */
#include "clip_surgery.h"
#include "test.h"

static void test_confusion(void) {
    /* Pixel 6 is void (255), pixel 8 has the unknown label 7. */
    const uint8_t gt[9] = {0, 0, 1, 1, 2, 2, 255, 1, 7};
    const uint8_t pred[9] = {0, 1, 1, 1, 2, 0, 2, 2, 0};
    int64_t conf[9] = {0}, unknown = 0;
    CHECK_OK(cs_confusion_add(conf, 3, gt, pred, 9, CS_IGNORE_LABEL, &unknown));
    const int64_t want[9] = {1, 1, 0, 0, 2, 1, 1, 0, 1};
    for (int i = 0; i < 9; i++) CHECK_MSG(conf[i] == want[i], "conf[%d] = %lld", i, (long long)conf[i]);
    CHECK(unknown == 1);
    double iou[3];
    cs_seg_scores s;
    cs_confusion_scores(conf, 3, iou, &s);
    CHECK_NEAR(iou[0], 1.0 / 3, 1e-12);
    CHECK_NEAR(iou[1], 2.0 / 4, 1e-12);
    CHECK_NEAR(iou[2], 1.0 / 3, 1e-12);
    CHECK_NEAR(s.miou, 7.0 / 18, 1e-12);
    CHECK_NEAR(s.pixel_accuracy, 4.0 / 7, 1e-12);
    CHECK_NEAR(s.mean_accuracy, 5.0 / 9, 1e-12);
    CHECK(s.n_defined == 3);
    /* The same pixels with a fourth class that never occurs: its IoU is
     * undefined and stays out of the mean. */
    int64_t conf4[16] = {0};
    CHECK_OK(cs_confusion_add(conf4, 4, gt, pred, 9, CS_IGNORE_LABEL, NULL));
    double iou4[4];
    cs_confusion_scores(conf4, 4, iou4, &s);
    CHECK(isnan(iou4[3]));
    CHECK_NEAR(s.miou, 7.0 / 18, 1e-12);
    CHECK(s.n_defined == 3);
    const uint8_t bad_pred[1] = {3};
    CHECK_STATUS(cs_confusion_add(conf, 3, gt, bad_pred, 1, CS_IGNORE_LABEL, NULL), CS_ERR_ARG);
}

static void test_average_precision(void) {
    double ap;
    /* Ties form one threshold: points (R, P) = (1/3, 1), (2/3, 1/2), (1, 3/5). */
    const float s1[5] = {0.9f, 0.8f, 0.8f, 0.8f, 0.3f};
    const uint8_t y1[5] = {1, 0, 1, 0, 1};
    CHECK_OK(cs_average_precision(s1, y1, 5, &ap));
    CHECK_NEAR(ap, (1.0 + 0.5 + 0.6) / 3, 1e-12);
    /* scikit-learn's documented tie case: a constant score gives the
     * prevalence wherever the positive sits. */
    const float s2[3] = {0.5f, 0.5f, 0.5f};
    const uint8_t y2a[3] = {1, 0, 0}, y2b[3] = {0, 0, 1};
    CHECK_OK(cs_average_precision(s2, y2a, 3, &ap));
    CHECK_NEAR(ap, 1.0 / 3, 1e-12);
    CHECK_OK(cs_average_precision(s2, y2b, 3, &ap));
    CHECK_NEAR(ap, 1.0 / 3, 1e-12);
    /* scikit-learn's docstring example: y [0 0 1 1], scores [.1 .4 .35 .8] -> 0.8333. */
    const float s3[4] = {0.1f, 0.4f, 0.35f, 0.8f};
    const uint8_t y3[4] = {0, 0, 1, 1};
    CHECK_OK(cs_average_precision(s3, y3, 4, &ap));
    CHECK_NEAR(ap, 5.0 / 6, 1e-12);
    /* No positives: undefined (NaN), left out of the mean. */
    const uint8_t none[3] = {0, 0, 0};
    CHECK_OK(cs_average_precision(s2, none, 3, &ap));
    CHECK(isnan(ap));
    double aps[3] = {0.5, NAN, 1.0};
    int k;
    CHECK_NEAR(cs_nanmean(aps, 3, &k), 0.75, 1e-12);
    CHECK(k == 2);
    CHECK(isnan(cs_nanmean(aps + 1, 1, &k)) && k == 0);
    const float bad[2] = {0.1f, NAN};
    CHECK_STATUS(cs_average_precision(bad, y3, 2, &ap), CS_ERR_ARG);
}

static void test_explain_counts(void) {
    const float map[4] = {0.0f, 0.5f, 1.0f, 0.2f};
    const uint8_t gt[4] = {1, 1, 0, 255};
    int64_t counts[CS_EXPLAIN_STEPS][4] = {{0}};
    cs_explain_add(map, 1, gt, 4, 1, CS_IGNORE_LABEL, counts);
    /* t = 0.5: pixel 0 missed, pixel 1 found, pixel 2 a false alarm. */
    CHECK(counts[10][0] == 0 && counts[10][1] == 1 && counts[10][2] == 1 && counts[10][3] == 1);
    double fg;
    CHECK_NEAR(cs_binary_miou(counts[10], &fg), (0.0 + 1.0 / 3) / 2, 1e-12);
    CHECK_NEAR(fg, 1.0 / 3, 1e-12);
    /* t = 0: everything is foreground. */
    CHECK(counts[0][3] == 2 && counts[0][1] == 1 && counts[0][0] == 0 && counts[0][2] == 0);
    CHECK_NEAR(cs_binary_miou(counts[0], &fg), (0.0 + 2.0 / 3) / 2, 1e-12);
    /* t = 1: only the map's maximum, a background pixel. */
    CHECK(counts[20][1] == 1 && counts[20][2] == 2 && counts[20][3] == 0);
    CHECK_NEAR(cs_explain_threshold(20), 1.0, 0);
    CHECK_NEAR(cs_explain_threshold(1), 0.05, 1e-15);
}

int main(void) {
    test_confusion();
    test_average_precision();
    test_explain_counts();
    return test_finish();
}
