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

/* The stems given so far, in an open-addressing table of at least twice
 * as many slots, so a check costs O(1): 10000 class names (20000 stems
 * with the gray maps') would take 2e8 comparisons against a list. */
typedef struct stem_set {
    const char **slot;
    size_t mask;
} stem_set;

static const char **stem_slot(const stem_set *set, const char *stem) {
    size_t i = hash_bytes(stem, strlen(stem)) & set->mask;
    while (set->slot[i] && strcmp(set->slot[i], stem)) i = (i + 1) & set->mask;
    return &set->slot[i];
}

cs_status cs_file_stems(const char *const *texts, int n, char **out) {
    for (int i = 0; i < n; i++) out[i] = NULL;
    size_t slots = 2;
    while (slots < 2 * (size_t)n) slots *= 2;
    stem_set set = {mem_calloc(slots, sizeof *set.slot), slots - 1};
    if (!set.slot) return CS_ERR_NOMEM;
    cs_status s = CS_OK;
    for (int i = 0; s == CS_OK && i < n; i++) {
        size_t len = strlen(texts[i]);
        if (len > STEM_MAX) len = STEM_MAX;
        size_t cap = len + 1 + SUFFIX_MAX;
        char *stem = mem_alloc(cap, 1);
        if (!stem) {
            s = CS_ERR_NOMEM;
            break;
        }
        for (size_t k = 0; k < len; k++) stem[k] = is_kept(texts[i][k], k) ? texts[i][k] : '_';
        stem[len] = 0;
        /* Each suffix makes the stem longer, so this ends within i rounds. */
        while (s == CS_OK && (!stem[0] || *stem_slot(&set, stem))) {
            size_t used = strlen(stem);
            if (used + SUFFIX_MAX > cap) {
                char *longer = mem_alloc(2 * cap, 1);
                if (longer) memcpy(longer, stem, used + 1);
                cs_free(stem);
                stem = longer;
                cap *= 2;
                if (!stem) {
                    s = CS_ERR_NOMEM;
                    break;
                }
            }
            snprintf(stem + used, cap - used, "_%d", i);
        }
        if (s != CS_OK) break;
        *stem_slot(&set, stem) = stem;
        out[i] = stem;
    }
    cs_free(set.slot);
    if (s != CS_OK)
        for (int i = 0; i < n; i++) {
            cs_free(out[i]);
            out[i] = NULL;
        }
    return s;
}
