/* File-name stems for arbitrary texts: a class name such as "potted plant"
 * or "a/b" must never become a path outside the output folder. */
#include <stdio.h>
#include <string.h>
#include "base/base.h"

#define STEM_MAX 100
#define SUFFIX_MAX 16

static int is_kept(char ch, size_t pos) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || (ch == '.' && pos > 0);
}

static int is_taken(char *const *stems, int n, const char *stem) {
    for (int i = 0; i < n; i++)
        if (!strcmp(stems[i], stem)) return 1;
    return 0;
}

cs_status cs_file_stems(const char *const *texts, int n, char **out) {
    for (int i = 0; i < n; i++) out[i] = NULL;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(texts[i]);
        if (len > STEM_MAX) len = STEM_MAX;
        /* Room for one suffix per earlier stem it could collide with. */
        size_t cap = len + 1 + (size_t)(i + 1) * SUFFIX_MAX;
        char *stem = cs_alloc(cap, 1);
        if (!stem) {
            for (int k = 0; k < i; k++) cs_free(out[k]);
            return CS_ERR_NOMEM;
        }
        for (size_t k = 0; k < len; k++) stem[k] = is_kept(texts[i][k], k) ? texts[i][k] : '_';
        stem[len] = 0;
        /* Each suffix makes the stem longer, so this ends within i rounds. */
        while (!stem[0] || is_taken(out, i, stem)) {
            size_t used = strlen(stem);
            snprintf(stem + used, cap - used, "_%d", i);
        }
        out[i] = stem;
    }
    return CS_OK;
}
