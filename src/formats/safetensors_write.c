/* Writing safetensors: a JSON header (names, dtypes, shapes, offsets), padded
 * with spaces to a multiple of 8 bytes, then the data, atomically. Float
 * tensors are stored as F32, F16 or BF16 (round to nearest even). The padding
 * keeps every F32 tensor 4-byte aligned in a page-aligned mmap, so the model
 * loader uses F32 data in place, without a copy. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include "base/fileio.h"
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

cs_status safetensors_write(const char *path, const cs_tensor *const *tensors, int n,
                               cs_dtype dtype) {
    if (dtype != CS_DT_F32 && dtype != CS_DT_F16 && dtype != CS_DT_BF16)
        return error_set(CS_ERR_ARG, "%s: cannot write tensors as %s (F32, F16 or BF16)", path,
                       dtype_name(dtype));
    size_t esize = dtype_size(dtype);
    cJSON *root = cJSON_CreateObject();
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        const cs_tensor *x = tensors[i];
        size_t bytes = (size_t)tensor_numel(x) * esize;
        cJSON *e = cJSON_AddObjectToObject(root, x->name);
        cJSON_AddStringToObject(e, "dtype", dtype_name(dtype));
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < x->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)x->shape[d]));
        cJSON *off = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(offset + bytes)));
        offset += bytes;
    }
    char *header = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!header) return error_set(CS_ERR_NOMEM, "%s: cannot build the header", path);
    size_t hlen = strlen(header), padded = (hlen + 7) & ~(size_t)7;
    cs_atomic_file af;
    cs_status s = cs_atomic_open(&af, path);
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
    for (int i = 0; i < n && s == CS_OK; i++) {
        int64_t count = tensor_numel(tensors[i]);
        float *f = mem_alloc((size_t)(count ? count : 1), sizeof(float));
        if (!f) s = CS_ERR_NOMEM;
        if (s == CS_OK) s = tensor_to_f32(tensors[i], f);
        if (s == CS_OK && dtype != CS_DT_F32) {
            uint16_t *h = (uint16_t *)f; /* narrowed in place: h[k] never passes f[k] */
            for (int64_t k = 0; k < count; k++)
                h[k] = dtype == CS_DT_F16 ? float_to_half(f[k]) : float_to_bf16(f[k]);
            fwrite(h, 2, (size_t)count, af.f);
        } else if (s == CS_OK) {
            fwrite(f, sizeof(float), (size_t)count, af.f);
        }
        cs_free(f);
    }
    if (s != CS_OK) {
        cs_atomic_abort(&af);
        return s;
    }
    return cs_atomic_commit(&af);
}
