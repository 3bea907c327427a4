/* Layer 3: NumPy .npy arrays (version 1/2/3 headers, little-endian, C order). */
#ifndef CS_NPY_H
#define CS_NPY_H

#include "tensors.h"

/* cs_array, cs_npy_read, cs_npy_write and cs_array_check_finite are public
 * (clip_surgery.h). */

/* Parse .npy bytes already in memory (exposed for tests and fuzzing). */
cs_status npy_parse(const char *path, const uint8_t *buf, size_t len, cs_array *out);

#endif
