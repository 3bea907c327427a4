/* Layer 3: a read-only zip reader over a memory image, enough for PyTorch
 * archives: stored entries (what PyTorch's writer emits, data aligned to 64
 * bytes) and deflated ones (an archive a user re-zipped), ZIP64 records, one
 * disk. Every offset and size is checked against the image before use. */
#ifndef CS_ZIP_H
#define CS_ZIP_H

#include <stddef.h>
#include <stdint.h>
#include "../base/base.h"

typedef struct cs_zip_entry {
    char *name;
    uint64_t data_offset; /* start of the entry's data in the image */
    uint64_t comp_size, size;
    uint32_t crc;
    uint16_t method;      /* 0 stored, 8 deflated */
} cs_zip_entry;

typedef struct cs_zip {
    const char *path;     /* for messages; not owned */
    const uint8_t *buf;   /* the whole archive; not owned */
    size_t len;
    cs_zip_entry *entries; /* sorted by name */
    int n;
} cs_zip;

/* Read the central directory of the archive image buf[0..len). `path` names
 * the archive in messages and must outlive the cs_zip. On failure z is left
 * empty (zip_close is still safe). */
cs_status zip_open(cs_zip *z, const char *path, const uint8_t *buf, size_t len);
void zip_close(cs_zip *z);

/* The entry with exactly this name, or NULL. */
const cs_zip_entry *zip_find(const cs_zip *z, const char *name);

/* The bytes of an entry, its CRC-32 checked. Stored entries point into the
 * image (*owned is NULL); deflated ones are inflated into *owned
 * (mem_alloc'ed, the caller frees it). Entries larger than max_size fail
 * with CS_ERR_LIMIT. */
cs_status zip_read(const cs_zip *z, const cs_zip_entry *e, size_t max_size,
                      const uint8_t **data, size_t *len, void **owned);
/* The first `prefix` bytes of an entry: a deflated entry is inflated whole
 * (its size and CRC checked) but only the prefix is kept, so a tensor that
 * uses 64 elements of a huge storage costs 64 elements of memory. */
cs_status zip_read_prefix(const cs_zip *z, const cs_zip_entry *e, size_t prefix,
                             const uint8_t **data, void **owned);
/* Check a stored entry's CRC-32 (one pass over its bytes). */
cs_status zip_check_stored(const cs_zip *z, const cs_zip_entry *e);

#endif
