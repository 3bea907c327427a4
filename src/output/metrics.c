/* Segmentation, multi-label and explainability metrics. */
#include "base/base.h"
#include <math.h>
#include <stdlib.h>

cs_status cs_confusion_add(int64_t *conf, int C, const uint8_t *gt, const uint8_t *pred, size_t n,
                           int ignore, int64_t *unknown) {
    if (C <= 0 || C > 256) return error_set(CS_ERR_ARG, "a confusion matrix needs 1..256 classes (got %d)", C);
    for (size_t i = 0; i < n; i++)
        if (pred[i] >= C) return error_set(CS_ERR_ARG, "predicted label %d at pixel %zu is outside 0..%d",
                                         pred[i], i, C - 1);
    int64_t skipped = 0;
    for (size_t i = 0; i < n; i++) {
        if (gt[i] == ignore) continue;
        if (gt[i] >= C) {
            skipped++;
            continue;
        }
        conf[(size_t)gt[i] * C + pred[i]]++;
    }
    if (unknown) *unknown += skipped;
    return CS_OK;
}

double cs_nanmean(const double *x, int n, int *n_defined) {
    double sum = 0.0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) {
            sum += x[i];
            k++;
        }
    if (n_defined) *n_defined = k;
    return k ? sum / k : NAN;
}

void cs_confusion_scores(const int64_t *conf, int C, double *iou, cs_seg_scores *out) {
    double iou_sum = 0.0, recall_sum = 0.0;
    int n_iou = 0, n_recall = 0;
    int64_t total = 0, correct = 0;
    for (int c = 0; c < C; c++) {
        int64_t tp = conf[(size_t)c * C + c], gt = 0, pred = 0;
        for (int k = 0; k < C; k++) {
            gt += conf[(size_t)c * C + k];
            pred += conf[(size_t)k * C + c];
        }
        int64_t uni = gt + pred - tp;
        double x = uni ? (double)tp / (double)uni : NAN;
        if (iou) iou[c] = x;
        if (uni) {
            iou_sum += x;
            n_iou++;
        }
        if (gt) {
            recall_sum += (double)tp / (double)gt;
            n_recall++;
        }
        total += gt;
        correct += tp;
    }
    out->miou = n_iou ? iou_sum / n_iou : NAN;
    out->n_defined = n_iou;
    out->mean_accuracy = n_recall ? recall_sum / n_recall : NAN;
    out->pixel_accuracy = total ? (double)correct / (double)total : NAN;
}

typedef struct scored { float score; uint8_t positive; } scored;

/* Descending by score; the order within ties does not matter (a tie is one
 * threshold). */
static int scored_desc(const void *a, const void *b) {
    float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

cs_status cs_average_precision(const float *scores, const uint8_t *positive, int n, double *ap) {
    *ap = NAN;
    if (n < 0) return error_set(CS_ERR_ARG, "average precision of %d samples", n);
    int64_t n_pos = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(scores[i])) return error_set(CS_ERR_ARG, "score %d is NaN", i);
        n_pos += positive[i] != 0;
    }
    if (n_pos == 0) return CS_OK;
    scored *s = mem_alloc((size_t)n, sizeof *s);
    if (!s) return CS_ERR_NOMEM;
    for (int i = 0; i < n; i++) s[i] = (scored){scores[i], positive[i] != 0};
    qsort(s, (size_t)n, sizeof *s, scored_desc);
    /* One precision/recall point at the end of each run of equal scores. */
    int64_t tp = 0;
    double sum = 0.0, last_recall = 0.0;
    for (int i = 0; i < n; i++) {
        tp += s[i].positive;
        if (i + 1 < n && s[i + 1].score == s[i].score) continue;
        double recall = (double)tp / (double)n_pos, precision = (double)tp / (double)(i + 1);
        sum += (recall - last_recall) * precision;
        last_recall = recall;
    }
    cs_free(s);
    *ap = sum;
    return CS_OK;
}

double cs_explain_threshold(int k) { return (double)k / (CS_EXPLAIN_STEPS - 1); }

void cs_explain_add(const float *map, int stride, const uint8_t *gt, size_t n, int cls, int ignore,
                    int64_t counts[CS_EXPLAIN_STEPS][4]) {
    float t[CS_EXPLAIN_STEPS];
    for (int k = 0; k < CS_EXPLAIN_STEPS; k++) t[k] = (float)cs_explain_threshold(k);
    for (size_t i = 0; i < n; i++) {
        if (gt[i] == ignore) continue;
        int truth = gt[i] == cls;
        float v = map[i * (size_t)stride];
        for (int k = 0; k < CS_EXPLAIN_STEPS; k++) counts[k][2 * truth + (v >= t[k])]++;
    }
}

double cs_binary_miou(const int64_t c[4], double *fg_iou) {
    int64_t tn = c[0], fp = c[1], fn = c[2], tp = c[3];
    double iou[2] = {tn + fp + fn ? (double)tn / (double)(tn + fp + fn) : NAN,
                     tp + fp + fn ? (double)tp / (double)(tp + fp + fn) : NAN};
    if (fg_iou) *fg_iou = iou[1];
    return cs_nanmean(iou, 2, NULL);
}
