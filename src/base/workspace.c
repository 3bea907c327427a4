#include "workspace.h"

#include <string.h>

void *ws_take(cs_workspace *w, size_t n, size_t size) {
    size_t bytes;
    if (!size_mul(n, size, &bytes) || bytes > SIZE_MAX - 64) {
        error_set(CS_ERR_NOMEM, "workspace request of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    bytes = (bytes + 63) & ~(size_t)63;
    w->peak = w->used + bytes > w->peak ? w->used + bytes : w->peak;
    if (w->used + bytes <= w->cap) {
        void *p = w->base + w->used;
        w->used += bytes;
        return p;
    }
    w->used += bytes; /* counted, so the arena grows to fit next time */
    if (w->n_spill == w->cap_spill) {
        int cap = w->cap_spill ? 2 * w->cap_spill : 16;
        void **grown = mem_alloc((size_t)cap, sizeof *grown);
        if (!grown) return NULL;
        if (w->spill) memcpy(grown, w->spill, sizeof *grown * (size_t)w->n_spill);
        cs_free(w->spill);
        w->spill = grown;
        w->cap_spill = cap;
    }
    void *p = mem_alloc(bytes, 1);
    if (p) w->spill[w->n_spill++] = p;
    return p;
}

void ws_release(cs_workspace *w) {
    for (int i = 0; i < w->n_spill; i++) cs_free(w->spill[i]);
    w->n_spill = 0;
    if (w->peak > w->cap) {
        /* Grow once to the high-water mark; a failure only means spilling
         * again next time. */
        cs_free(w->base);
        w->base = mem_alloc(w->peak, 1);
        w->cap = w->base ? w->peak : 0;
    }
    w->used = 0;
}

void ws_free(cs_workspace *w) {
    ws_release(w);
    cs_free(w->base);
    cs_free(w->spill);
    memset(w, 0, sizeof *w);
}
