/* libFuzzer target: the SAM prompts file (a JSON list of prompt sets) and
 * the one-block layout it is unpacked into. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "clip_surgery.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    cs_sam_prompt_set *sets;
    int n;
    if (cs_sam_prompts_parse((const char *)buf, len, "fuzz", 1, &sets, &n) != CS_OK) return 0;
    /* Touch everything the parser handed out. */
    volatile float sink = 0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < sets[i].n_points; k++)
            sink += sets[i].points[2 * k] + sets[i].points[2 * k + 1] + (float)sets[i].labels[k];
        if (sets[i].name) sink += (float)strlen(sets[i].name);
        if (sets[i].mask_input) sink += (float)strlen(sets[i].mask_input);
        if (sets[i].has_box) sink += sets[i].box[3];
    }
    (void)sink;
    cs_sam_prompts_free(sets);
    return 0;
}
