/* Layer 1, base: error codes and messages, checked allocation, threads, timing.
 * The library never prints or exits: a failing function records one message
 * (thread-local) and returns a status code; the CLI decides what to do. */
#ifndef CS_BASE_H
#define CS_BASE_H

#include <stddef.h>
#include <stdint.h>
#include "clip_surgery.h"

/* Record an error message (printf-style) and return `code`, so error paths
 * read `return error_set(CS_ERR_FORMAT, "%s: bad header", path);`. */
cs_status error_set(cs_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current message with "prefix: " (adds context on the way up). */
void error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Checked allocation: on failure record CS_ERR_NOMEM and return NULL.
 * Sizes are multiplied with overflow checks. Memory is 64-byte aligned
 * (so the GEMM and vector loops see aligned rows); free with cs_free
 * (public). */
void *mem_alloc(size_t n, size_t size);
/* For results handed to the caller and made anew on every call (SAM's
 * masks and logits per prompt): ordinary pages. A huge page's first touch
 * clears 2 MB while the other threads wait; fresh huge pages for each
 * prompt's 12 MB of results cost 8-13 ms of a 30 ms prompt on two threads,
 * ordinary ones (which malloc also reuses across calls) under 1 ms. */
void *mem_alloc_result(size_t n, size_t size);
void *mem_calloc(size_t n, size_t size);
char *mem_strdup(const char *s);

/* FNV-1a of n bytes, its high bits folded in (for tables indexed by the
 * low bits). */
uint64_t hash_bytes(const void *data, size_t n);

/* Overflow-checked size arithmetic: return 0 on overflow. */
int size_mul(size_t a, size_t b, size_t *out);

#endif
