#include "tensors.h"
#include "ops/gemm_bf16.h"

#include <math.h>
#include <stdlib.h>
#ifdef __F16C__
#include <immintrin.h>
#endif
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

size_t dtype_size(cs_dtype dt) {
    switch (dt) {
    case CS_DT_F32: case CS_DT_I32: return 4;
    case CS_DT_F16: case CS_DT_BF16: return 2;
    case CS_DT_F64: case CS_DT_I64: return 8;
    case CS_DT_U8: case CS_DT_BOOL: return 1;
    }
    return 0;
}

const char *dtype_name(cs_dtype dt) {
    static const char *names[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL"};
    return (unsigned)dt < sizeof names / sizeof *names ? names[dt] : "?";
}

void tensors_init(cs_tensor_table *t, const char *path) {
    memset(t, 0, sizeof *t);
    t->path = mem_strdup(path ? path : "");
}

void tensors_free(cs_tensor_table *t) {
    for (int i = 0; i < t->n; i++) cs_free(t->items[i].name);
    for (int i = 0; i < t->n_owned; i++) cs_free(t->owned[i]);
    cs_free(t->items);
    cs_free(t->owned);
    if (t->map) munmap(t->map, t->map_len);
    cs_free(t->metadata);
    cs_free(t->path);
    memset(t, 0, sizeof *t);
}

static int grow(void **arr, int *cap, int need, size_t elem) {
    if (need <= *cap) return 1;
    int ncap = *cap ? *cap * 2 : 64;
    while (ncap < need) ncap *= 2;
    void *p = mem_alloc((size_t)ncap, elem);
    if (!p) return 0;
    if (*arr) memcpy(p, *arr, (size_t)*cap * elem);
    cs_free(*arr);
    *arr = p;
    *cap = ncap;
    return 1;
}

cs_status tensors_own(cs_tensor_table *t, void *buf) {
    if (!grow((void **)&t->owned, &t->cap_owned, t->n_owned + 1, sizeof(void *))) {
        cs_free(buf);
        return CS_ERR_NOMEM;
    }
    t->owned[t->n_owned++] = buf;
    return CS_OK;
}

cs_status tensors_add(cs_tensor_table *t, const char *name, cs_dtype dtype, int ndim,
                         const int64_t *shape, const void *data, size_t nbytes, int take) {
    if (take && tensors_own(t, (void *)data) != CS_OK) return CS_ERR_NOMEM;
    if (ndim < 0 || ndim > CS_MAX_DIMS)
        return error_set(CS_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (at most %d)", t->path,
                       name, ndim, CS_MAX_DIMS);
    if (!grow((void **)&t->items, &t->cap, t->n + 1, sizeof(cs_tensor))) return CS_ERR_NOMEM;
    cs_tensor *x = &t->items[t->n];
    memset(x, 0, sizeof *x);
    x->name = mem_strdup(name);
    if (!x->name) return CS_ERR_NOMEM;
    x->dtype = dtype;
    x->ndim = ndim;
    for (int i = 0; i < ndim; i++) x->shape[i] = shape[i];
    x->data = data;
    x->nbytes = nbytes;
    t->n++;
    return CS_OK;
}

int tensor_panels_fit(const cs_tensor *x) {
    return x->ndim == 2 && x->shape[0] > 0 && x->shape[1] > 0 && x->shape[0] <= INT32_MAX &&
           x->shape[1] <= INT32_MAX && x->shape[0] % OP_BF16_NR == 0 && x->shape[1] % (2 * OP_BF16_KPAD) == 0;
}

const cs_tensor *tensors_find(const cs_tensor_table *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->items[i].name, name) == 0) return &t->items[i];
    return NULL;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

cs_status tensors_check_unique(const cs_tensor_table *t) {
    if (t->n < 2) return CS_OK;
    char **names = mem_alloc((size_t)t->n, sizeof *names);
    if (!names) return CS_ERR_NOMEM;
    for (int i = 0; i < t->n; i++) names[i] = t->items[i].name;
    qsort(names, (size_t)t->n, sizeof *names, name_cmp);
    cs_status s = CS_OK;
    for (int i = 1; i < t->n && s == CS_OK; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            s = error_set(CS_ERR_FORMAT, "%s: tensor '%s' appears twice", t->path, names[i]);
    cs_free(names);
    return s;
}

int64_t tensor_numel(const cs_tensor *x) {
    int64_t n = 1;
    for (int i = 0; i < x->ndim; i++) n *= x->shape[i];
    return n;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* fp16 -> fp32, 8 at a time with F16C where the build has it (a model's
 * weights are widened once at load; this is most of the load time). */
static void widen_f16(const uint8_t *p, float *out, int64_t n) {
    int64_t start = 0;
#ifdef __F16C__
    start = n / 8 * 8;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < start; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
#endif
    for (int64_t i = start; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        out[i] = half_to_float(h);
    }
}

cs_status tensor_to_f32(const cs_tensor *x, float *out) {
    int64_t n = tensor_numel(x);
    const uint8_t *p = x->data;
    switch (x->dtype) {
    case CS_DT_F32: memcpy(out, p, (size_t)n * 4); return CS_OK;
    case CS_DT_F16: widen_f16(p, out, n); return CS_OK;
    case CS_DT_BF16:
        if (x->bf16_panels) {
            op_bf16_unpack(p, (int)x->shape[0], (int)x->shape[1], out);
            return CS_OK;
        }
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&out[i], &bits, 4);
        }
        return CS_OK;
    case CS_DT_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        return CS_OK;
    default:
        return error_set(CS_ERR_UNSUPPORTED, "tensor '%s': dtype %s is not a float type", x->name,
                       dtype_name(x->dtype));
    }
}

static void shape_text(char *buf, size_t n, int ndim, const int64_t *dims) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, i ? ", %lld" : "%lld", (long long)dims[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* A widened tensor's file pages are not needed any more: drop them from
 * memory (the mapping is private and read-only, so a later read, e.g. by
 * cs_model_save, simply faults them back in from the file). Keeps the peak
 * RSS of an fp16 file near the fp32 weights alone. */
/* Drop the pages wholly inside [p, p + nbytes) of the file's map (nothing
 * outside it): a private read-only map re-reads them from the file if they
 * are touched again. 1 when p lies in the map. */
static int release_map_pages(const cs_tensor_table *t, const void *data, size_t nbytes) {
    const uint8_t *map = t->map, *p = data;
    if (!map || p < map || p + nbytes > map + t->map_len) return 0;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + nbytes) & ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    return 1;
}

void tensors_release(cs_tensor_table *t, const void *buf, size_t nbytes) {
    if (!buf || release_map_pages(t, buf, nbytes)) return;
    for (int i = 0; i < t->n; i++)
        if (t->items[i].data == buf) return; /* a tensor's own data (cs_model_save reads it) */
    for (int i = 0; i < t->n_owned; i++)
        if (t->owned[i] == buf) {
            cs_free(t->owned[i]);
            t->owned[i] = t->owned[--t->n_owned];
            return;
        }
}

static int is_float_dtype(cs_dtype d) {
    return d == CS_DT_F32 || d == CS_DT_F16 || d == CS_DT_BF16 || d == CS_DT_F64;
}

/* 1 where element i of x (a float dtype) is a NaN or an infinity, or
 * (F64) beyond fp32's range: all exponent bits set for the 16- and 32-bit
 * types, branch-free so the count below vectorizes. */
static inline int64_t non_finite_at(const uint8_t *p, cs_dtype dt, int64_t i) {
    uint16_t h;
    uint32_t w;
    double d;
    switch (dt) {
    case CS_DT_F32: memcpy(&w, p + 4 * i, 4); return (w & 0x7f800000u) == 0x7f800000u;
    case CS_DT_BF16: memcpy(&h, p + 2 * i, 2); return (h & 0x7f80u) == 0x7f80u;
    case CS_DT_F16: memcpy(&h, p + 2 * i, 2); return (h & 0x7c00u) == 0x7c00u;
    default: memcpy(&d, p + 8 * i, 8); return !isfinite((float)d);
    }
}

/* One loop per dtype (the switch hoisted out) so each vectorizes. */
int64_t tensor_count_non_finite(const uint8_t *p, cs_dtype dt, int64_t n) {
    int64_t bad = 0;
    switch (dt) {
#define COUNT(DT)                                                                           \
    case DT:                                                                                \
        _Pragma("omp parallel for reduction(+ : bad) schedule(static) if (n > (1 << 20))") \
        for (int64_t i = 0; i < n; i++) bad += non_finite_at(p, DT, i);                     \
        break;
    COUNT(CS_DT_F32)
    COUNT(CS_DT_BF16)
    COUNT(CS_DT_F16)
#undef COUNT
    default:
        for (int64_t i = 0; i < n; i++) bad += non_finite_at(p, dt, i);
    }
    return bad;
}

cs_status tensor_check_finite(const cs_tensor_table *t, const cs_tensor *x) {
    int64_t n = tensor_numel(x);
    int64_t bad = tensor_count_non_finite(x->data, x->dtype, n);
    if (!bad) return CS_OK;
    int64_t first = 0;
    while (!non_finite_at(x->data, x->dtype, first)) first++;
    return error_set(CS_ERR_FORMAT, "%s: tensor '%s' holds %lld non-finite values (NaN or infinity; "
                   "the first at element %lld)", t->path, x->name, (long long)bad, (long long)first);
}

cs_status tensors_bind(cs_tensor_table *t, const char *name, int ndim, const int64_t *dims,
                       const cs_tensor **out) {
    *out = NULL;
    cs_tensor *x = (cs_tensor *)tensors_find(t, name);
    if (!x)
        return error_set(CS_ERR_MISSING, "%s: required tensor '%s' is missing", t->path, name);
    if (x->used)
        return error_set(CS_ERR_FORMAT, "%s: tensor '%s' is bound twice", t->path, name);
    if (!is_float_dtype(x->dtype))
        return error_set(CS_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s, not a float type",
                       t->path, name, dtype_name(x->dtype));
    int ok = x->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = dims[i] < 0 || x->shape[i] == dims[i];
    if (!ok) {
        char got[128], want[128];
        shape_text(got, sizeof got, x->ndim, x->shape);
        shape_text(want, sizeof want, ndim, dims);
        return error_set(CS_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s", t->path,
                       name, got, want);
    }
    x->used = 1;
    *out = x;
    return CS_OK;
}

cs_status tensor_f32_view(cs_tensor_table *t, const cs_tensor *x, const float **out) {
    if (x->dtype == CS_DT_F32 && ((uintptr_t)x->data & 3) == 0) {
        *out = x->data;
        return CS_OK;
    }
    int64_t n = tensor_numel(x);
    float *buf = mem_alloc((size_t)(n ? n : 1), sizeof(float));
    if (!buf) return CS_ERR_NOMEM;
    cs_status s = tensor_to_f32(x, buf);
    if (s != CS_OK) {
        cs_free(buf);
        error_prefix("%s", t->path);
        return s;
    }
    s = tensors_own(t, buf);
    if (s == CS_OK) *out = buf;
    release_map_pages(t, x->data, x->nbytes);
    return s;
}

cs_status tensors_f32(cs_tensor_table *t, const char *name, int ndim, const int64_t *dims,
                         const float **out) {
    const cs_tensor *x;
    cs_status s = tensors_bind(t, name, ndim, dims, &x);
    if (s == CS_OK) s = tensor_check_finite(t, x);
    return s == CS_OK ? tensor_f32_view(t, x, out) : s;
}
