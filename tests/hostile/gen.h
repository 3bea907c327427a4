/* Builders for the hostile-input corpus (tests/test_hostile.c): small
 * writers for safetensors headers, zip archives, pickles, .npy files and
 * image headers, so every hostile file is made at test time from a few
 * lines of code (or from the golden tiny models) instead of being kept as
 * binary blobs. */
#ifndef CS_HOSTILE_GEN_H
#define CS_HOSTILE_GEN_H

#include <stddef.h>
#include <stdint.h>

/* A growing byte buffer. */
typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

void b_put(buf *b, const void *data, size_t n);
void b_byte(buf *b, int c);
void b_u16(buf *b, uint16_t v);
void b_u32(buf *b, uint32_t v);
void b_u64(buf *b, uint64_t v);
void b_str(buf *b, const char *s);
void b_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void b_free(buf *b);

/* The folder the corpus is written into. */
extern char g_data[512];
const char *data_path(const char *name);
void put(const char *name, const void *data, size_t n);
void put_text(const char *name, const char *text);
void put_fifo(const char *name);
uint8_t *slurp(const char *path, size_t *n);

/* ---- pickles (protocol 2), enough for state dicts of tensors */
void pk_begin(buf *b);                 /* PROTO 2 */
void pk_end(buf *b);                   /* STOP */
void pk_global(buf *b, const char *module, const char *name);
void pk_unicode(buf *b, const char *s);
void pk_int(buf *b, int64_t v);
void pk_op(buf *b, int op);
/* A _rebuild_tensor_v2 call for a float tensor viewing storage `key`. */
void pk_tensor(buf *b, const char *key, int64_t storage_numel, int64_t offset, int ndim,
               const int64_t *size, const int64_t *stride);
/* The same for a storage class of torch ("HalfStorage", ...). */
void pk_tensor_of(buf *b, const char *storage, const char *key, int64_t storage_numel, int64_t offset, int ndim,
                  const int64_t *size, const int64_t *stride);

/* ---- zip archives */
typedef struct zentry {
    const char *name;
    const void *data;
    size_t len;
    int deflate; /* 0 stored, 1 deflated */
} zentry;
/* Build an archive; offsets[i] receives the local header offset of entry i
 * (may be NULL); *central the central directory's offset. */
void zip_build(buf *out, const zentry *e, int n, size_t *offsets, size_t *central);

/* A PyTorch archive whose data.pkl is `pkl` and whose storages are
 * data/<key> entries. */
void pt_build(buf *out, const buf *pkl, const zentry *storages, int n_storages);

/* ---- safetensors: 8-byte length + header + `data_len` zero bytes */
void st_raw(const char *name, const char *header, size_t data_len);

/* ---- .npy: a v1 header with `dict`, then raw bytes */
void npy_raw(const char *name, const char *dict, const void *data, size_t n);

#endif
