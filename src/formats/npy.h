/* Layer 3: NumPy .npy arrays (version 1/2/3 headers, little-endian, C order). */
#ifndef CS_NPY_H
#define CS_NPY_H

#include "tensors.h"

typedef struct cs_array {
    cs_dtype dtype;
    int ndim;
    int64_t shape[CS_MAX_DIMS];
    void *data;
    size_t nbytes;
} cs_array;

int64_t cs_array_numel(const cs_array *a);
void cs_array_free(cs_array *a);

/* Read an .npy file: dtypes <f4 <f2 <f8 <i4 <i8 |u1 |b1, C order. */
cs_status cs_npy_read(const char *path, cs_array *out);
/* Parse .npy bytes already in memory (exposed for tests and fuzzing). */
cs_status cs_npy_parse(const char *path, const uint8_t *buf, size_t len, cs_array *out);

/* Write an .npy file atomically. */
cs_status cs_npy_write(const char *path, cs_dtype dtype, int ndim, const int64_t *shape,
                       const void *data);

#endif
