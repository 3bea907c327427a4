/* Writing safetensors: a JSON header (names, dtypes, shapes, offsets), padded
 * with spaces so the data starts 64-byte aligned, then the data, atomically. Float
 * tensors are stored as F32, F16 or BF16 (round to nearest even), or as the
 * bf16 kernels' packed panels. The alignment keeps every F32 tensor 4-byte
 * and every panel 64-byte aligned in a page-aligned mmap, so the model
 * loader uses them in place, without a copy. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "base/fileio.h"
#include "ops/gemm_bf16.h"
#include "tensors.h"

static uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0)); /* inf, nan */
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);                          /* overflow */
    if (e <= 0) {                                                          /* subnormal */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t half = man >> shift, rest = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rest > mid || (rest == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13), rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++; /* may carry into the exponent */
    return (uint16_t)half;
}

/* Round to nearest even; NaN stays NaN (its top mantissa bit set). */
static uint16_t float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* One tensor's data as the file stores it: bf16 panels (as they are, or
 * packed from the fp32 values), or the values narrowed to dtype. */
static cs_status write_data(FILE *f, const cs_tensor *x, cs_dtype dtype, int panels) {
    if (panels && x->bf16_panels) {
        fwrite(x->data, 1, x->nbytes, f);
        return CS_OK;
    }
    int64_t count = tensor_numel(x);
    float *v = mem_alloc((size_t)(count ? count : 1), sizeof(float));
    if (!v) return CS_ERR_NOMEM;
    cs_status s = tensor_to_f32(x, v);
    if (s == CS_OK && panels) {
        op_bf16_weights w;
        s = op_bf16_pack(v, (int)x->shape[0], (int)x->shape[1], &w);
        if (s == CS_OK) fwrite(w.data, 2, (size_t)count, f); /* no padding: tensor_panels_fit */
        op_bf16_free(&w);
    } else if (s == CS_OK && dtype != CS_DT_F32) {
        uint16_t *h = (uint16_t *)v; /* narrowed in place: h[k] never passes v[k] */
        for (int64_t k = 0; k < count; k++)
            h[k] = dtype == CS_DT_F16 ? float_to_half(v[k]) : float_to_bf16(v[k]);
        fwrite(h, 2, (size_t)count, f);
    } else if (s == CS_OK) {
        fwrite(v, sizeof(float), (size_t)count, f);
    }
    cs_free(v);
    return s;
}

/* Bytes of x in the file: BF16 panels, or its values in dtype. */
static size_t stored_bytes(const cs_tensor *x, cs_dtype dtype, int panels) {
    return (size_t)tensor_numel(x) * dtype_size(panels ? CS_DT_BF16 : dtype);
}

/* The header's entry of tensor x at [offset, offset + bytes). */
static cs_status add_entry(cJSON *root, const cs_tensor *x, cs_dtype dtype, int panels, size_t offset,
                           size_t bytes) {
    size_t len = strlen(x->name) + sizeof TENSOR_PANELS_SUFFIX;
    char *name = panels ? mem_alloc(len, 1) : NULL;
    if (panels && !name) return CS_ERR_NOMEM;
    if (panels) snprintf(name, len, "%s%s", x->name, TENSOR_PANELS_SUFFIX);
    cJSON *e = cJSON_AddObjectToObject(root, panels ? name : x->name);
    cs_free(name);
    cJSON_AddStringToObject(e, "dtype", dtype_name(panels ? CS_DT_BF16 : dtype));
    cJSON *shape = cJSON_AddArrayToObject(e, "shape");
    for (int d = 0; d < x->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)x->shape[d]));
    cJSON *off = cJSON_AddArrayToObject(e, "data_offsets");
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)offset));
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(offset + bytes)));
    return CS_OK;
}

cs_status safetensors_write(const char *path, const cs_tensor *const *tensors, int n,
                               cs_dtype dtype, const unsigned char *as_panels) {
    if (dtype != CS_DT_F32 && dtype != CS_DT_F16 && dtype != CS_DT_BF16)
        return error_set(CS_ERR_ARG, "%s: cannot write tensors as %s (F32, F16 or BF16)", path,
                       dtype_name(dtype));
    for (int i = 0; as_panels && i < n; i++)
        if (as_panels[i] && !tensor_panels_fit(tensors[i]))
            return error_set(CS_ERR_ARG, "%s: tensor '%s' cannot be stored as bf16 panels (2-D, "
                             "both sizes multiples of 32)", path, tensors[i]->name);
    /* Panels first in the data: each is a multiple of 2 KiB, so all start
     * 64-byte aligned once the data section does. The header keeps the
     * tensors' order. */
    size_t *offsets = mem_alloc((size_t)n + 1, sizeof *offsets), offset = 0;
    if (!offsets) return CS_ERR_NOMEM;
    for (int pass = 1; pass >= 0; pass--)
        for (int i = 0; i < n; i++)
            if ((as_panels && as_panels[i]) == pass) {
                offsets[i] = offset;
                offset += stored_bytes(tensors[i], dtype, pass);
            }
    cJSON *root = cJSON_CreateObject();
    cs_status s = CS_OK;
    for (int i = 0; s == CS_OK && i < n; i++) {
        int panels = as_panels && as_panels[i];
        s = add_entry(root, tensors[i], dtype, panels, offsets[i], stored_bytes(tensors[i], dtype, panels));
    }
    cs_free(offsets);
    char *header = s == CS_OK ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!header) return error_set(CS_ERR_NOMEM, "%s: cannot build the header", path);
    /* Spaces pad the header so the data section starts 64-byte aligned
     * (8 length bytes + header). */
    size_t hlen = strlen(header), padded = ((8 + hlen + 63) & ~(size_t)63) - 8;
    cs_atomic_file af;
    s = cs_atomic_open(&af, path);
    if (s != CS_OK) {
        cJSON_free(header);
        return s;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    fwrite(len8, 1, 8, af.f);
    fwrite(header, 1, hlen, af.f);
    for (size_t i = hlen; i < padded; i++) fputc(' ', af.f);
    cJSON_free(header);
    for (int pass = 1; pass >= 0; pass--)
        for (int i = 0; i < n && s == CS_OK; i++) {
            int panels = as_panels && as_panels[i];
            if (panels == pass) s = write_data(af.f, tensors[i], dtype, panels);
        }
    if (s != CS_OK) {
        cs_atomic_abort(&af);
        return s;
    }
    return cs_atomic_commit(&af);
}
