/* Layer 3: a table of named tensors, what every weight-file reader produces
 * (safetensors, PyTorch archives) and what the model layer consumes.
 * Data is either borrowed (points into an mmap the table owns) or owned. */
#ifndef CS_TENSORS_H
#define CS_TENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "../base/base.h"

/* cs_dtype and CS_MAX_DIMS are public (clip_surgery.h). */
size_t dtype_size(cs_dtype dt);
const char *dtype_name(cs_dtype dt);

typedef struct cs_tensor {
    char *name;
    cs_dtype dtype;
    int ndim;
    int64_t shape[CS_MAX_DIMS];
    const void *data; /* contiguous, row-major, little-endian */
    size_t nbytes;
    int used;         /* bound by the model loader (or consumed into another entry) */
    int bf16_panels;  /* BF16 [N, K] held in the bf16 kernels' packed layout (a packed
                       * file's "<name>.bf16_panels"), not row-major: tensor_to_f32
                       * unpacks it, the bf16 kernels use it as it lies */
} cs_tensor;

typedef struct cs_tensor_table {
    char *path;         /* the file it came from, for messages */
    cs_tensor *items;
    int n, cap;
    void **owned;       /* buffers freed with the table */
    int n_owned, cap_owned;
    void *map;          /* mmap of the file, if any */
    size_t map_len;
    char *metadata;     /* optional JSON text (safetensors __metadata__, config.json) */
} cs_tensor_table;

void tensors_init(cs_tensor_table *t, const char *path);
void tensors_free(cs_tensor_table *t);

/* Append an entry; the name is copied. When `take` is non-zero the table
 * takes ownership of data (allocated with mem_alloc). */
cs_status tensors_add(cs_tensor_table *t, const char *name, cs_dtype dtype, int ndim,
                         const int64_t *shape, const void *data, size_t nbytes, int take);

/* Take ownership of a mem_alloc'ed buffer without adding an entry. */
cs_status tensors_own(cs_tensor_table *t, void *buf);
/* Give back the memory of nbytes at buf that nothing will read again (a
 * weight packed into another layout): a buffer the table owns (a widened or
 * folded copy) is freed; pages of the file's map are dropped (the file still
 * holds them); a tensor's own data, which cs_model_save reads, is kept. */
void tensors_release(cs_tensor_table *t, const void *buf, size_t nbytes);

const cs_tensor *tensors_find(const cs_tensor_table *t, const char *name);
/* CS_ERR_FORMAT naming the first name that appears twice. */
cs_status tensors_check_unique(const cs_tensor_table *t);
int64_t tensor_numel(const cs_tensor *x);

/* Bind a named float tensor with its shape checked (ndim/dims: the
 * expected shape; a dim < 0 matches any size) and mark it used; its data is
 * left as the file holds it. */
cs_status tensors_bind(cs_tensor_table *t, const char *name, int ndim, const int64_t *dims,
                       const cs_tensor **out);
/* A NaN or an infinity in a weight poisons every output downstream (and a
 * JSON writer cannot even print it): CS_ERR_FORMAT naming the tensor and
 * the first bad element, checked on the bits the file holds (F64: also
 * values beyond fp32's range). */
cs_status tensor_check_finite(const cs_tensor_table *t, const cs_tensor *x);
/* How many of the n values at p (a float dtype) are NaN or infinite. */
int64_t tensor_count_non_finite(const uint8_t *p, cs_dtype dt, int64_t n);
/* x's fp32 view (no check): borrowed when it is aligned F32, else widened
 * into a table-owned buffer, and then the file's pages of it are dropped. */
cs_status tensor_f32_view(cs_tensor_table *t, const cs_tensor *x, const float **out);

/* tensors_bind, tensor_check_finite and tensor_f32_view in one: the
 * checked fp32 view of a named tensor, for weights needed at load. */
cs_status tensors_f32(cs_tensor_table *t, const char *name, int ndim, const int64_t *dims,
                         const float **out);

/* Copy a tensor into float32 (widening F16/BF16/F64). out has numel floats. */
cs_status tensor_to_f32(const cs_tensor *x, float *out);

/* Readers. safetensors: mmap'ed, F32 data borrowed. */
cs_status safetensors_open(const char *path, cs_tensor_table *out);

/* Parse a safetensors header (the bytes after the 8-byte length) against a
 * data section of data_len bytes; entries get data pointers into `data`.
 * Exposed for the fuzz target. */
cs_status safetensors_parse_header(const char *path, const char *json, size_t json_len,
                                      const uint8_t *data, size_t data_len, cs_tensor_table *out);

/* The name suffix of a tensor stored in the bf16 kernels' packed layout. A
 * plain reader (PyTorch's, or an older clip-surgery) then finds a missing
 * weight instead of reading permuted numbers as row-major ones. Both
 * dimensions must be multiples of 32 (every CLIP release's linear layers):
 * the panels then hold no padding, and the shape [N, K] spans the bytes. */
#define TENSOR_PANELS_SUFFIX ".bf16_panels"
int tensor_panels_fit(const cs_tensor *x);

/* Write tensors (any float dtype, widened or narrowed) as a safetensors file
 * of F32, F16 or BF16 tensors, atomically. as_panels (may be NULL): 1 for
 * each tensor to store as bf16 panels under TENSOR_PANELS_SUFFIX
 * (tensor_panels_fit; those come first in the data section, each 64-byte
 * aligned in a page-aligned map, so the kernels use them in place). */
cs_status safetensors_write(const char *path, const cs_tensor *const *tensors, int n,
                               cs_dtype dtype, const unsigned char *as_panels);

/* PyTorch zip archives (torch.save state dicts, checkpoints wrapping one,
 * TorchScript archives such as OpenAI's .pt): tensors named by their
 * state-dict names, made contiguous; nothing in the file is executed.
 * TorchScript's extra int64 scalars (input_resolution, context_length,
 * vocab_size) are entries of dtype I64 and shape []. */
cs_status pytorch_open(const char *path, cs_tensor_table *out);

#endif
