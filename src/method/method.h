/* Layer 5, method: feature surgery, maps, points, prompt ensembles. The
 * method never knows which vision tower produced the tokens. */
#ifndef CS_METHOD_H
#define CS_METHOD_H

#include "base/base.h"

/* Token ids of a class's prompts: int32 [max(n_templates, 1), context],
 * zero padded (n_templates 0: the name alone). */
cs_status ensemble_prompt_ids(cs_tokenizer *tok, const char *name, const char *const *templates,
                              int n_templates, int context, int32_t *ids);

#endif
