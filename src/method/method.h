/* Layer 5, method: feature surgery, maps, points, prompt ensembles. The
 * method never knows which vision tower produced the tokens. */
#ifndef CS_METHOD_H
#define CS_METHOD_H

#include "base/base.h"

/* Token ids of a class's prompts: int32 [max(n_templates, 1), context],
 * zero padded (n_templates 0: the name alone). */
cs_status ensemble_prompt_ids(cs_tokenizer *tok, const char *name, const char *const *templates,
                              int n_templates, int context, int32_t *ids);

/* cs_segment's threshold with name_logits: a pixel whose largest
 * softmax(scale x logits) over all K names [n_pixels, K] is below
 * o->bg_thresh gets o->bg_class (labels from the argmax already). */
void segment_threshold_names(const float *name_logits, size_t n_pixels, int K, const cs_segment_options *o,
                             uint8_t *labels);

#endif
