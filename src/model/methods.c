/* The jobs' methods by name, the tower mode each runs, and each method's own
 * dense-prediction settings (docs/methods.md names the line of the authors'
 * code each comes from). */
#include <string.h>
#include "base/base.h"

static const char *const k_names[CS_NUM_METHODS] = {"surgery",   "clip",   "maskclip", "sclip",
                                                    "clearclip", "naclip", "gem"};

const char *cs_method_name(cs_method method) {
    return (int)method >= 0 && (int)method < CS_NUM_METHODS ? k_names[method] : NULL;
}

cs_status cs_method_parse(const char *name, cs_method *out) {
    for (int i = 0; name && i < CS_NUM_METHODS; i++)
        if (!strcmp(name, k_names[i])) {
            *out = (cs_method)i;
            return CS_OK;
        }
    return error_set(CS_ERR_ARG, "method '%s' is not one of surgery, clip, maskclip, sclip, clearclip, "
                               "naclip, gem", name ? name : "");
}

/* The later methods share their values with the tower modes; surgery and
 * plain CLIP are swapped (each enum's default is 0). */
cs_vision_mode cs_method_vision_mode(cs_method method) {
    return method == CS_METHOD_SURGERY ? CS_VISION_SURGERY
           : method == CS_METHOD_CLIP  ? CS_VISION_PLAIN
                                       : (cs_vision_mode)method;
}

cs_method_defaults cs_method_defaults_of(cs_method method) {
    cs_method_defaults d = {40.0f, 0, 0, 1};
    switch (method) {
    case CS_METHOD_SURGERY:
    case CS_METHOD_CLIP: d.needs_vit = 0; break; /* the common training-free protocol's 40 */
    case CS_METHOD_MASKCLIP:
    case CS_METHOD_CLEARCLIP: /* ClearCLIPSegmentation: logit_scale=50, open_clip's 'tok' pool */
        d.logit_scale = 50.0f;
        d.drops_cls = 1;
        break;
    case CS_METHOD_SCLIP:  /* CLIPForSegmentation: logit_scale=40 */
    case CS_METHOD_NACLIP: /* NACLIP: logit_scale=40 */
        break;
    case CS_METHOD_GEM: /* GEMWrapper.forward: no scale, min-max per class */
        d.logit_scale = 1.0f;
        d.minmax = 1;
        break;
    }
    return d;
}
