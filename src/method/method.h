/* Layer 5, method: feature surgery, maps, points, prompt ensembles. The
 * method never knows which vision tower produced the tokens. */
#ifndef CS_METHOD_H
#define CS_METHOD_H

#include "base/base.h"

/* Inputs of one shape per vision-tower pass in the jobs (sliding windows,
 * classify): enough rows for efficient GEMMs at 224, little memory. */
#define TOWER_BATCH 4

/* Token ids of a class's prompts: int32 [max(n_templates, 1), context],
 * zero padded (n_templates 0: the name alone). */
cs_status ensemble_prompt_ids(cs_tokenizer *tok, const char *name, const char *const *templates,
                              int n_templates, int context, int32_t *ids);

/* cs_segment's steps after the argmax (labels), for name_logits and
 * area_thresh. The area filter: o->area_thresh's classes dropped, their
 * pixels relabelled by class_logits [n, C]. The threshold: a pixel whose
 * class's probability, softmax(scale x logits) over all K values of
 * all_logits [n, K] taken at the class's logit, is below o->bg_thresh gets
 * o->bg_class. */
void segment_area_filter(const float *class_logits, size_t n_pixels, int C, const cs_segment_options *o,
                         uint8_t *labels);
void segment_threshold(const float *all_logits, int K, const float *class_logits, int C, size_t n_pixels,
                       const cs_segment_options *o, uint8_t *labels);

/* Classes first..first+n-1 and rows row0..row0+n_rows-1 of
 * cs_similarity_maps' output: maps [n_rows, out_w, n], the same values, so
 * many classes or a large image can be mapped a block at a time. */
cs_status similarity_maps_block(const float *sim, int n_tokens, int n_classes, int first, int n, int out_h,
                                int out_w, int row0, int n_rows, float *maps);

#endif
