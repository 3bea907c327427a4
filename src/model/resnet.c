/* The ModifiedResNet image tower: not yet implemented (issue 5). */
#include "model.h"

cs_status resnet_load(cs_model *m) {
    return cs_fail(CS_ERR_UNSUPPORTED, "%s: ResNet image towers are not supported yet",
                   m->table.path);
}

void resnet_free(struct cs_resnet *r) { (void)r; }

cs_status resnet_encode(cs_model *m, const float *pixels, int res, cs_vision_mode mode,
                        float *tokens) {
    return cs_fail(CS_ERR_UNSUPPORTED, "ResNet image towers are not supported yet");
}
