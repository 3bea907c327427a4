/* Layer 1: a reusable scratch arena, so a forward pass allocates nothing
 * after its first call. Buffers are taken in order and all released at once;
 * a take that does not fit is served by a separate allocation ("spill") and
 * the arena grows to the high-water mark on release, so the next pass of
 * the same shapes fits. */
#ifndef CS_WORKSPACE_H
#define CS_WORKSPACE_H

#include "base.h"

typedef struct cs_workspace {
    uint8_t *base;
    size_t cap, used, peak;
    void **spill;
    int n_spill, cap_spill;
} cs_workspace;

/* n elements of `size` bytes, 64-byte aligned; NULL only when out of memory. */
void *ws_take(cs_workspace *w, size_t n, size_t size);
/* Release every buffer taken since the last release. */
void ws_release(cs_workspace *w);
void ws_free(cs_workspace *w);

#endif
