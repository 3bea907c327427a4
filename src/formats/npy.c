#include "npy.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../base/fileio.h"

/* Files larger than this are refused before reading (4 GiB). */
#define NPY_MAX_BYTES ((size_t)4 << 30)

int64_t cs_array_numel(const cs_array *a) {
    int64_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->shape[i];
    return n;
}

void cs_array_free(cs_array *a) {
    cs_free(a->data);
    memset(a, 0, sizeof *a);
}

static const struct { const char *descr; cs_dtype dtype; } k_descr[] = {
    {"<f4", CS_DT_F32}, {"<f2", CS_DT_F16}, {"<f8", CS_DT_F64}, {"<i4", CS_DT_I32},
    {"<i8", CS_DT_I64}, {"|u1", CS_DT_U8},  {"|b1", CS_DT_BOOL},
};

/* Find the value text after 'key': in the header dict. */
static const char *dict_value(const char *h, const char *key) {
    const char *p = strstr(h, key);
    if (!p) return NULL;
    p += strlen(key);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

/* Column-major (Fortran order, what NumPy writes for a transposed array)
 * to row-major: element (i0, .., in-1) sits at sum_k i_k * prod_{j<k} d_j. */
static void from_fortran(const uint8_t *src, int ndim, const int64_t *shape, size_t esize, uint8_t *dst) {
    int64_t idx[CS_MAX_DIMS] = {0}, n = 1;
    for (int k = 0; k < ndim; k++) n *= shape[k];
    for (int64_t c = 0; c < n; c++) {
        int64_t off = 0, stride = 1;
        for (int k = 0; k < ndim; k++) {
            off += idx[k] * stride;
            stride *= shape[k];
        }
        memcpy(dst + (size_t)c * esize, src + (size_t)off * esize, esize);
        for (int k = ndim - 1; k >= 0 && ++idx[k] == shape[k]; k--) idx[k] = 0;
    }
}

cs_status npy_parse(const char *path, const uint8_t *buf, size_t len, cs_array *out) {
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return error_set(CS_ERR_FORMAT, "%s: not an .npy file (bad magic)", path);
    int major = buf[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = buf[8] | (size_t)buf[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return error_set(CS_ERR_FORMAT, "%s: truncated .npy header", path);
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        off = 12;
    } else {
        return error_set(CS_ERR_UNSUPPORTED, "%s: .npy version %d is not supported", path, major);
    }
    if (hlen > len - off) return error_set(CS_ERR_FORMAT, "%s: truncated .npy header", path);
    char header[4096];
    if (hlen >= sizeof header) return error_set(CS_ERR_FORMAT, "%s: .npy header too long", path);
    memcpy(header, buf + off, hlen);
    header[hlen] = 0;

    const char *d = dict_value(header, "'descr'");
    if (!d || *d != '\'') return error_set(CS_ERR_FORMAT, "%s: .npy header has no descr", path);
    int found = 0;
    for (size_t i = 0; i < sizeof k_descr / sizeof *k_descr; i++) {
        size_t n = strlen(k_descr[i].descr);
        if (strncmp(d + 1, k_descr[i].descr, n) == 0 && d[1 + n] == '\'') {
            out->dtype = k_descr[i].dtype;
            found = 1;
        }
    }
    if (!found) {
        const char *q = strchr(d + 1, '\'');
        int n = q && q - d - 1 <= 16 ? (int)(q - d - 1) : 16;
        return error_set(CS_ERR_UNSUPPORTED, "%s: .npy dtype '%.*s' is not supported (little-endian "
                       "f4, f2, f8, i4, i8, u1 or b1)", path, n, d + 1);
    }
    const char *fo = dict_value(header, "'fortran_order'");
    int fortran = fo && !strncmp(fo, "True", 4);
    if (!fo || (!fortran && strncmp(fo, "False", 5) != 0))
        return error_set(CS_ERR_FORMAT, "%s: .npy header has no valid fortran_order", path);
    const char *s = dict_value(header, "'shape'");
    if (!s || *s != '(') return error_set(CS_ERR_FORMAT, "%s: .npy header has no shape", path);
    s++;
    size_t esize = dtype_size(out->dtype), total = esize;
    for (;;) {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        if (!isdigit((unsigned char)*s) || out->ndim == CS_MAX_DIMS)
            return error_set(CS_ERR_FORMAT, "%s: bad .npy shape", path);
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (v > (1ull << 40) || !size_mul(total, (size_t)v, &total))
            return error_set(CS_ERR_FORMAT, "%s: .npy shape too large", path);
        out->shape[out->ndim++] = (int64_t)v;
        s = end;
    }
    size_t data_off = off + hlen;
    if (len - data_off != total)
        return error_set(CS_ERR_FORMAT, "%s: .npy data is %zu bytes, the header says %zu", path,
                       len - data_off, total);
    out->data = mem_alloc(total ? total : 1, 1);
    if (!out->data) return CS_ERR_NOMEM;
    if (fortran) from_fortran(buf + data_off, out->ndim, out->shape, esize, out->data);
    else memcpy(out->data, buf + data_off, total);
    out->nbytes = total;
    return CS_OK;
}

cs_status cs_array_check_finite(const char *path, const cs_array *a) {
    int64_t n = cs_array_numel(a);
    for (int64_t i = 0; i < n; i++) {
        double v = a->dtype == CS_DT_F32 ? ((const float *)a->data)[i]
                 : a->dtype == CS_DT_F64 ? ((const double *)a->data)[i] : 0.0;
        if (!isfinite(v))
            return error_set(CS_ERR_FORMAT, "%s: element %lld is %s (values must be finite)", path,
                           (long long)i, isnan(v) ? "NaN" : "infinite");
    }
    return CS_OK;
}

cs_status cs_npy_read(const char *path, cs_array *out) {
    char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    cs_status s = cs_read_file(path, NPY_MAX_BYTES, &buf, &len);
    if (s != CS_OK) return s;
    s = npy_parse(path, (const uint8_t *)buf, len, out);
    cs_free(buf);
    return s;
}

/* The header of the .npy file into f, with the data's size in bytes. */
static cs_status npy_header(const char *name, FILE *f, cs_dtype dtype, int ndim, const int64_t *shape,
                            size_t *total) {
    const char *descr = NULL;
    for (size_t i = 0; i < sizeof k_descr / sizeof *k_descr; i++)
        if (k_descr[i].dtype == dtype) descr = k_descr[i].descr;
    if (!descr) return error_set(CS_ERR_ARG, "%s: cannot write dtype %s", name, dtype_name(dtype));
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    *total = dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld%s", (long long)shape[i],
                      ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
        *total *= (size_t)shape[i];
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* Pad with spaces so magic + length + dict + '\n' is a multiple of 64. */
    size_t hlen = (size_t)n + 1;
    size_t pad = (64 - (10 + hlen) % 64) % 64;
    hlen += pad;
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hlen & 0xff),
                       (uint8_t)(hlen >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, (size_t)n, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    return CS_OK;
}

cs_status cs_npy_write_header(FILE *f, cs_dtype dtype, int ndim, const int64_t *shape) {
    size_t total;
    return npy_header("npy", f, dtype, ndim, shape, &total);
}

/* The whole .npy file (header, then the data) into f; the file writer and
 * the in-memory encoder share it, so both give the same bytes. */
static cs_status npy_to_stream(const char *name, FILE *f, cs_dtype dtype, int ndim,
                               const int64_t *shape, const void *data) {
    size_t total;
    cs_status s = npy_header(name, f, dtype, ndim, shape, &total);
    if (s == CS_OK && total) fwrite(data, 1, total, f);
    return s;
}

cs_status cs_npy_write(const char *path, cs_dtype dtype, int ndim, const int64_t *shape,
                       const void *data) {
    cs_atomic_file af;
    cs_status s = cs_atomic_open(&af, path);
    if (s != CS_OK) return s;
    s = npy_to_stream(path, af.f, dtype, ndim, shape, data);
    if (s != CS_OK) {
        cs_atomic_abort(&af);
        return s;
    }
    return cs_atomic_commit(&af);
}

cs_status cs_npy_encode(cs_dtype dtype, int ndim, const int64_t *shape, const void *data,
                        uint8_t **out, size_t *len) {
    char *buf = NULL;
    size_t n = 0;
    *out = NULL;
    *len = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return error_set(CS_ERR_NOMEM, "npy: cannot open a memory stream");
    cs_status s = npy_to_stream("npy", f, dtype, ndim, shape, data);
    if (fclose(f) != 0 && s == CS_OK) s = error_set(CS_ERR_NOMEM, "npy: out of memory");
    if (s != CS_OK) {
        free(buf);
        return s;
    }
    *out = (uint8_t *)buf;
    *len = n;
    return CS_OK;
}
