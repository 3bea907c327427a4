/* Layer 3: PyTorch zip archives (internal entry points; pytorch_open is
 * declared in tensors.h). */
#ifndef CS_PYTORCH_H
#define CS_PYTORCH_H

#include <stddef.h>
#include <stdint.h>
#include "tensors.h"

/* Read the archive image buf[0..len) into `out` (already initialized with
 * tensors_init). `name` names the archive in messages. Tensors stored
 * contiguously and aligned are borrowed from buf, which must outlive the
 * table; the rest are owned by it. Exposed for the fuzz target. */
cs_status pytorch_parse_memory(const char *name, const uint8_t *buf, size_t len,
                                  cs_tensor_table *out);

#endif
