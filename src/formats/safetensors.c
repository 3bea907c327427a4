/* safetensors: 8-byte little-endian header length, a JSON header mapping
 * names to {dtype, shape, data_offsets}, then the data section. The file is
 * mmap'ed; entries point into the map. Every offset, size and overlap is
 * checked before a pointer is formed. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../base/fileio.h"
#include "tensors.h"

#define SAFETENSORS_MAX_HEADER ((uint64_t)100 << 20)

static const struct { const char *name; cs_dtype dtype; } k_dtypes[] = {
    {"F32", CS_DT_F32}, {"F16", CS_DT_F16}, {"BF16", CS_DT_BF16}, {"F64", CS_DT_F64},
    {"I64", CS_DT_I64}, {"I32", CS_DT_I32}, {"U8", CS_DT_U8},    {"BOOL", CS_DT_BOOL},
};

typedef struct span { uint64_t begin, end; const char *name; } span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static cs_status parse_entry(const char *path, const cJSON *item, const uint8_t *data,
                             size_t data_len, cs_tensor_table *out, span *sp) {
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return error_set(CS_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", path, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo) ||
        cJSON_GetArraySize(jo) != 2)
        return error_set(CS_ERR_FORMAT, "%s: tensor '%s': needs dtype, shape and data_offsets",
                       path, name);
    int found = -1;
    for (int i = 0; i < (int)(sizeof k_dtypes / sizeof *k_dtypes); i++)
        if (strcmp(jd->valuestring, k_dtypes[i].name) == 0) found = i;
    if (found < 0)
        return error_set(CS_ERR_UNSUPPORTED, "%s: tensor '%s': unknown dtype '%s'", path, name,
                       jd->valuestring);
    cs_dtype dtype = k_dtypes[found].dtype;

    int ndim = cJSON_GetArraySize(js);
    if (ndim > CS_MAX_DIMS)
        return error_set(CS_ERR_FORMAT, "%s: tensor '%s': %d dimensions (at most %d)", path, name,
                       ndim, CS_MAX_DIMS);
    int64_t shape[CS_MAX_DIMS];
    size_t bytes = dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        const cJSON *d = cJSON_GetArrayItem(js, i);
        /* Reject what a double cannot hold exactly, then multiply with checks. */
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 9.0e15 ||
            d->valuedouble != (double)(int64_t)d->valuedouble)
            return error_set(CS_ERR_FORMAT, "%s: tensor '%s': bad shape", path, name);
        shape[i] = (int64_t)d->valuedouble;
        if (!size_mul(bytes, (size_t)shape[i], &bytes))
            return error_set(CS_ERR_FORMAT, "%s: tensor '%s': shape overflows", path, name);
    }
    double b0 = cJSON_GetArrayItem(jo, 0)->valuedouble, b1 = cJSON_GetArrayItem(jo, 1)->valuedouble;
    if (!cJSON_IsNumber(cJSON_GetArrayItem(jo, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(jo, 1)) ||
        !(b0 >= 0 && b0 <= 9.0e15 && b1 >= 0 && b1 <= 9.0e15) || b0 != (double)(uint64_t)b0 ||
        b1 != (double)(uint64_t)b1)
        return error_set(CS_ERR_FORMAT, "%s: tensor '%s': data_offsets [%.17g, %.17g] are not "
                       "whole byte offsets", path, name, b0, b1);
    if (b1 < b0 || b1 > (double)data_len)
        return error_set(CS_ERR_FORMAT, "%s: tensor '%s': data_offsets [%.17g, %.17g] outside the "
                       "data section of %zu bytes", path, name, b0, b1, data_len);
    uint64_t begin = (uint64_t)b0, end = (uint64_t)b1;
    if (end - begin != bytes)
        return error_set(CS_ERR_FORMAT,
                       "%s: tensor '%s': shape x dtype size is %zu bytes but data_offsets span %llu",
                       path, name, bytes, (unsigned long long)(end - begin));
    sp->begin = begin;
    sp->end = end;
    sp->name = name;
    /* Packed panels are entered under the weight's own name, marked. */
    size_t len = strlen(name), slen = strlen(TENSOR_PANELS_SUFFIX);
    int panels = len > slen && strcmp(name + len - slen, TENSOR_PANELS_SUFFIX) == 0;
    char *plain = panels ? mem_strdup(name) : NULL;
    if (panels && !plain) return CS_ERR_NOMEM;
    if (panels) plain[len - slen] = 0;
    cs_status s = tensors_add(out, panels ? plain : name, dtype, ndim, shape, data + begin, bytes, 0);
    cs_free(plain);
    if (s != CS_OK || !panels) return s;
    cs_tensor *x = &out->items[out->n - 1];
    x->bf16_panels = 1;
    if (dtype != CS_DT_BF16 || !tensor_panels_fit(x))
        return error_set(CS_ERR_FORMAT, "%s: tensor '%s': packed panels must be BF16 [N, K] with N "
                         "and K multiples of 32", path, name);
    return CS_OK;
}

cs_status safetensors_parse_header(const char *path, const char *json, size_t json_len,
                                      const uint8_t *data, size_t data_len, cs_tensor_table *out) {
    cJSON *root = cJSON_ParseWithLength(json, json_len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return error_set(CS_ERR_FORMAT, "%s: header is not a JSON object", path);
    }
    int n = cJSON_GetArraySize(root);
    span *spans = mem_alloc((size_t)n + 1, sizeof *spans);
    if (!spans) {
        cJSON_Delete(root);
        return CS_ERR_NOMEM;
    }
    int ns = 0;
    cs_status s = CS_OK;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (!out->metadata) out->metadata = cJSON_PrintUnformatted(item); /* malloc: cs_free-able */
            continue;
        }
        s = parse_entry(path, item, data, data_len, out, &spans[ns]);
        if (s != CS_OK) break;
        ns++;
    }
    /* cJSON keeps both copies of a repeated key; the format allows one. */
    if (s == CS_OK) s = tensors_check_unique(out);
    if (s == CS_OK) {
        /* Empty tensors occupy no bytes, so [x, x] overlaps nothing. */
        int nz = 0;
        for (int i = 0; i < ns; i++)
            if (spans[i].end > spans[i].begin) spans[nz++] = spans[i];
        ns = nz;
        qsort(spans, (size_t)ns, sizeof *spans, span_cmp);
        for (int i = 1; i < ns; i++)
            if (spans[i].begin < spans[i - 1].end) {
                s = error_set(CS_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section",
                            path, spans[i - 1].name, spans[i].name);
                break;
            }
    }
    cs_free(spans);
    cJSON_Delete(root);
    return s;
}

cs_status safetensors_open(const char *path, cs_tensor_table *out) {
    tensors_init(out, path);
    int fd;
    size_t size;
    cs_status s = file_open_input(path, &fd, &size);
    if (s != CS_OK) return s;
    if (size < 8) {
        close(fd);
        return error_set(CS_ERR_FORMAT, "%s: truncated: %zu bytes, too short for a safetensors header",
                       path, size);
    }
    /* Not populated: F32 weights are used in place, so a page is read (and
     * counts in the RSS) only when a forward pass first touches it; a run
     * whose class embeddings are cached never reads the text tower. No
     * read-ahead is asked for either: MADV_WILLNEED reads a cold file into
     * 4 KiB pages, which then cost a page-table entry each in every later
     * run, while the first pass's faults on the huge-page map read it in
     * 2 MiB folios (file_map_input); bench/whole_run.sh on an F32 ViT-B/16,
     * cold 530-540 ms with it, 400 without, warm 320-340 and 280-300. */
    void *map;
    s = file_map_input(path, fd, size, &map);
    if (s != CS_OK) return s;
    out->map = map;
    out->map_len = size;
    const uint8_t *p = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > SAFETENSORS_MAX_HEADER)
        return error_set(CS_ERR_FORMAT, "%s: header length %llu is over the 100 MB limit", path,
                       (unsigned long long)hlen);
    if (hlen > size - 8)
        return error_set(CS_ERR_FORMAT, "%s: truncated: header length %llu is larger than the file",
                       path, (unsigned long long)hlen);
    return safetensors_parse_header(path, (const char *)p + 8, (size_t)hlen, p + 8 + hlen,
                                       size - 8 - (size_t)hlen, out);
}
