/* Layer 5, method: open-vocabulary segmentation and multi-label scores
 * (DESIGN.md section 4). Proposed for the public header; see each comment. */
#ifndef CS_SEGMENT_H
#define CS_SEGMENT_H

#include "base/base.h"

/* Class names and the classes they belong to: a class with synonyms scores
 * with its best name (the class-name files of SCLIP and NACLIP). */
typedef struct cs_name_set {
    const float *emb;      /* [n_names, dim] name embeddings (normalized prompt ensembles) */
    int n_names, dim;
    const int *name_class; /* [n_names] class of each name, each class named at least once;
                              NULL: name i is class i */
    int n_classes;
} cs_name_set;

/* Check a name set: sizes positive, every name's class in range and every
 * class named. */
cs_status cs_name_set_check(const cs_name_set *names);

/* Reduce per-name scores [rows, n_names] to per-class scores [rows, n_classes]
 * by the maximum over each class's names. */
void cs_names_to_classes(const float *name_scores, int rows, const cs_name_set *names,
                         float *class_scores);

/* Segmentation logits on the token grid: the raw cosine similarity of image
 * tokens 1..N (normalized) with the names, no feature surgery and no
 * min-max (as the authors segment), each class its best name.
 * tokens: [1 + side^2, dim]; grid: [side, side, n_classes]. */
cs_status cs_segment_grid(const float *tokens, int n_tokens, const cs_name_set *names, float *grid);

/* Logits of one R x R input (normalized pixels [3, R, R]) at out_h x out_w:
 * the vision tower (surgery or plain), cs_segment_grid, bilinear upsampling
 * (align_corners = false). logits: [out_h, out_w, n_classes]. */
cs_status cs_segment_logits(cs_model *m, const float *pixels, int R, cs_vision_mode mode,
                            const cs_name_set *names, int out_h, int out_w, float *logits);

/* The sliding-window protocol of training-free segmentation (SCLIP, NACLIP):
 * windows of crop x crop at the given stride over normalized pixels [3, h, w]
 * (h, w >= crop; the last window of a row or column is moved back to end at
 * the border), each window's logits upsampled to crop x crop, averaged where
 * windows overlap, then upsampled bilinearly to out_h x out_w (the original
 * image). logits: [out_h, out_w, n_classes]. */
cs_status cs_segment_logits_sliding(cs_model *m, const float *pixels, int h, int w, int crop,
                                    int stride, cs_vision_mode mode, const cs_name_set *names,
                                    int out_h, int out_w, float *logits);

typedef struct cs_segment_options {
    float bg_thresh;   /* > 0: background by probability (see cs_segment_labels) */
    float logit_scale; /* <= 0: the common training-free protocol's 40 */
    int bg_class;      /* the label low-confidence pixels get */
} cs_segment_options;

/* Per-pixel labels from logits [n_pixels, n_classes] (n_classes <= 255):
 * the argmax (the first class on ties); with bg_thresh > 0, a pixel whose
 * largest softmax(logit_scale x logits) probability is below bg_thresh gets
 * bg_class. The softmax runs over classes (each its best name); SCLIP's code
 * takes it over all names before the per-class maximum, which only changes
 * which pixels fall under the threshold. opts NULL: argmax alone. */
cs_status cs_segment_labels(const float *logits, size_t n_pixels, int n_classes,
                            const cs_segment_options *opts, uint8_t *labels);

/* Multi-label scores [n_classes] from image tokens [n_tokens, dim] (only
 * token 0 is used). surgery: row 0 of the class-weighted feature surgery over
 * all names (the authors' protocol; pass surgery tokens). Otherwise plain
 * CLIP's baseline: softmax(100 x cos) over classes of token 0 (pass plain
 * tokens). Each class its best name (before the softmax). */
cs_status cs_multilabel_scores(const float *tokens, int n_tokens, const cs_name_set *names,
                               int surgery, float *scores);

#endif
