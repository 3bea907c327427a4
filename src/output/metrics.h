/* Layer 6, metrics: segmentation (confusion matrix, IoU, mIoU, pixel
 * accuracy), multi-label recognition (average precision, mAP) and the
 * explainability mIoU of thresholded maps. Proposed for the public header. */
#ifndef CS_METRICS_H
#define CS_METRICS_H

#include "base/base.h"

#define CS_IGNORE_LABEL 255

/* Add one image to a confusion matrix conf [C, C] (row = ground truth,
 * column = prediction). Pixels whose ground truth is `ignore` are skipped;
 * ground-truth labels >= C (other than ignore) are skipped too and counted
 * into *unknown (may be NULL). Predictions must be < C. */
cs_status cs_confusion_add(int64_t *conf, int C, const uint8_t *gt, const uint8_t *pred, size_t n,
                           int ignore, int64_t *unknown);

typedef struct cs_seg_scores {
    double miou;           /* mean of the defined per-class IoUs; NaN when none is */
    double pixel_accuracy; /* trace / total; NaN for an empty matrix */
    double mean_accuracy;  /* mean per-class recall over classes present in the ground truth */
    int n_defined;         /* classes with a defined IoU */
} cs_seg_scores;

/* Per-class IoU = tp / (tp + fp + fn) from conf [C, C]; a class that is
 * neither in the ground truth nor predicted has an undefined IoU (NaN) and
 * stays out of the mean (mmseg's nanmean). iou may be NULL. */
void cs_confusion_scores(const int64_t *conf, int C, double *iou, cs_seg_scores *out);

/* Average precision of scores[n] against positive[n] (0/1), all-points, as
 * scikit-learn's average_precision_score: sum over distinct score thresholds
 * (descending) of (recall step) x precision, where tied scores form one
 * threshold. A class without positives has no defined AP: *ap = NaN
 * (scikit-learn warns and returns 0 there, which would pull the mean down
 * for classes absent from a split). NaN scores: CS_ERR_ARG. */
cs_status cs_average_precision(const float *scores, const uint8_t *positive, int n, double *ap);

/* Mean over the defined (non-NaN) values of x[n]; NaN when none is.
 * *n_defined (may be NULL) gets their count. */
double cs_nanmean(const double *x, int n, int *n_defined);

/* Explainability: binary foreground/background counts of a min-max map
 * thresholded at t_k = k / 20, k = 0..20 (map >= t_k is foreground),
 * against gt == cls; pixels whose gt is `ignore` are skipped. counts[k] holds
 * {tn, fp, fn, tp} and is accumulated over a dataset. map: every stride-th
 * float, n pixels. */
#define CS_EXPLAIN_STEPS 21
void cs_explain_add(const float *map, int stride, const uint8_t *gt, size_t n, int cls, int ignore,
                    int64_t counts[CS_EXPLAIN_STEPS][4]);
double cs_explain_threshold(int k);

/* Binary mIoU (mean of the background and foreground IoUs) of one
 * threshold's counts, and the foreground IoU alone (NaN when undefined). */
double cs_binary_miou(const int64_t counts[4], double *fg_iou);

#endif
