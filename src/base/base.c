#include "base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <omp.h>

static _Thread_local char g_message[1024];

const char *cs_last_error(void) { return g_message; }

/* CS_VERSION comes from the build (CMake's project version). */
const char *cs_version(void) { return CS_VERSION; }

const char *cs_status_name(cs_status s) {
    switch (s) {
    case CS_OK: return "ok";
    case CS_ERR_IO: return "i/o error";
    case CS_ERR_FORMAT: return "bad format";
    case CS_ERR_NOMEM: return "out of memory";
    case CS_ERR_ARG: return "bad argument";
    case CS_ERR_SHAPE: return "wrong shape";
    case CS_ERR_MISSING: return "missing";
    case CS_ERR_UNSUPPORTED: return "unsupported";
    case CS_ERR_LIMIT: return "over limit";
    case CS_ERR_TOO_LONG: return "too long";
    case CS_ERR_UTF8: return "invalid UTF-8";
    }
    return "unknown error";
}

cs_status error_set(cs_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_message, sizeof g_message, fmt, ap);
    va_end(ap);
    return code;
}

void error_prefix(const char *fmt, ...) {
    char prefix[512], old[sizeof g_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_message, sizeof old);
    snprintf(g_message, sizeof g_message, "%s: %s", prefix, old);
}

uint64_t hash_bytes(const void *data, size_t n) {
    const uint8_t *p = data;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

int size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* Buffers this large (weights, activations) get transparent huge pages:
 * loading a model faults in hundreds of MB, and 2 MB pages make that and the
 * GEMM's TLB misses far cheaper. */
#define HUGE_ALLOC_BYTES ((size_t)4 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

static void *allocate(size_t n, size_t size, size_t huge_from) {
    size_t bytes;
    if (!size_mul(n, size, &bytes) || bytes > SIZE_MAX - HUGE_PAGE) {
        error_set(CS_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    /* aligned_alloc wants a multiple of the alignment; 0 bytes still gets a
     * unique pointer so callers need no special case. */
    size_t align = bytes >= huge_from ? HUGE_PAGE : 64;
    size_t rounded = (bytes + align - 1) & ~(align - 1);
    void *p = aligned_alloc(align, rounded ? rounded : align);
    if (!p) error_set(CS_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    else if (align == HUGE_PAGE) madvise(p, rounded, MADV_HUGEPAGE);
    return p;
}

void *mem_alloc(size_t n, size_t size) { return allocate(n, size, HUGE_ALLOC_BYTES); }

void *mem_alloc_result(size_t n, size_t size) { return allocate(n, size, SIZE_MAX); }

void *mem_calloc(size_t n, size_t size) {
    void *p = mem_alloc(n, size);
    if (p) memset(p, 0, n * size);
    return p;
}

void cs_free(void *p) { free(p); }

char *mem_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = mem_alloc(n, 1);
    if (d) memcpy(d, s, n);
    return d;
}

double cs_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One thread pool for the process: OpenBLAS is built on OpenMP here, so
 * setting OpenMP's thread count sets BLAS's too and they never oversubscribe. */
void cs_set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
}

int cs_get_threads(void) { return omp_get_max_threads(); }
