/* Zip reader: end-of-central-directory record (ZIP64 when present), the
 * central directory, each entry's local header for where its data starts.
 * Nothing is trusted: every record is checked to lie inside the image and
 * every entry's data to lie before the central directory. */
#include "zip.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define EOCD_SIZE 22
#define EOCD64_SIZE 56
#define LOCATOR64_SIZE 20
#define CENTRAL_SIZE 46
#define LOCAL_SIZE 30
#define MAX_COMMENT 65535
#define ZIP64_EXTRA_ID 0x0001
/* Deflate cannot expand data by more than about 1032:1; an entry claiming
 * more is refused before anything is allocated for it (and inflating never
 * runs past the declared size, so the time is bounded by the input too). */
#define MAX_INFLATE_RATIO 1032u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* [off, off + n) lies inside [0, limit). */
static int in_range(uint64_t off, uint64_t n, uint64_t limit) {
    return off <= limit && n <= limit - off;
}

/* The directory's location as the end records give it. */
typedef struct zip_directory {
    uint64_t offset, size, count;
    uint64_t end; /* where the central directory must end: the first end record */
} zip_directory;

/* The last end-of-central-directory record whose comment fits the image. */
static int find_eocd(const uint8_t *buf, size_t len, size_t *pos) {
    if (len < EOCD_SIZE) return 0;
    size_t last = len - EOCD_SIZE;
    size_t first = last > MAX_COMMENT ? last - MAX_COMMENT : 0;
    for (size_t i = last + 1; i-- > first;) {
        if (rd32(buf + i) == SIG_EOCD && rd16(buf + i + 20) <= len - EOCD_SIZE - i) {
            *pos = i;
            return 1;
        }
    }
    return 0;
}

static cs_status read_zip64_end(const cs_zip *z, size_t locator, zip_directory *dir) {
    const uint8_t *l = z->buf + locator;
    uint64_t rec = rd64(l + 8);
    if (rd32(l + 4) != 0 || rd32(l + 16) > 1)
        return error_set(CS_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", z->path);
    if (!in_range(rec, EOCD64_SIZE, locator) || rd32(z->buf + rec) != SIG_EOCD64)
        return error_set(CS_ERR_FORMAT, "%s: ZIP64 end record offset %llu is out of range", z->path,
                       (unsigned long long)rec);
    const uint8_t *r = z->buf + rec;
    if (rd32(r + 16) != 0 || rd32(r + 20) != 0 || rd64(r + 24) != rd64(r + 32))
        return error_set(CS_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", z->path);
    dir->count = rd64(r + 32);
    dir->size = rd64(r + 40);
    dir->offset = rd64(r + 48);
    dir->end = rec;
    return CS_OK;
}

static cs_status read_end_records(const cs_zip *z, zip_directory *dir) {
    size_t eocd;
    if (!find_eocd(z->buf, z->len, &eocd)) {
        if (z->len >= 4 && rd32(z->buf) == SIG_LOCAL)
            return error_set(CS_ERR_FORMAT,
                           "%s: truncated zip archive: no end of central directory record", z->path);
        return error_set(CS_ERR_FORMAT, "%s: not a zip archive (a PyTorch file is one)", z->path);
    }
    const uint8_t *e = z->buf + eocd;
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0 || rd16(e + 8) != rd16(e + 10))
        return error_set(CS_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", z->path);
    if (eocd >= LOCATOR64_SIZE && rd32(z->buf + eocd - LOCATOR64_SIZE) == SIG_LOCATOR64)
        return read_zip64_end(z, eocd - LOCATOR64_SIZE, dir);
    dir->count = rd16(e + 10);
    dir->size = rd32(e + 12);
    dir->offset = rd32(e + 16);
    dir->end = eocd;
    return CS_OK;
}

/* The ZIP64 extended-information extra field holds, in this order, the
 * fields whose 32-bit slots are saturated. */
static cs_status apply_zip64_extra(const cs_zip *z, const uint8_t *extra, size_t n,
                                   uint64_t *size, uint64_t *comp, uint64_t *local) {
    uint64_t *fields[3] = {size, comp, local};
    size_t i = 0;
    while (i + 4 <= n) {
        uint16_t id = rd16(extra + i), flen = rd16(extra + i + 2);
        if (flen > n - i - 4) break;
        if (id == ZIP64_EXTRA_ID) {
            const uint8_t *p = extra + i + 4, *end = p + flen;
            for (int k = 0; k < 3; k++) {
                if (*fields[k] != 0xffffffffu) continue;
                if (end - p < 8)
                    return error_set(CS_ERR_FORMAT, "%s: ZIP64 extra field too short", z->path);
                *fields[k] = rd64(p);
                p += 8;
            }
            return CS_OK;
        }
        i += 4 + (size_t)flen;
    }
    if (*size == 0xffffffffu || *comp == 0xffffffffu || *local == 0xffffffffu)
        return error_set(CS_ERR_FORMAT, "%s: entry needs a ZIP64 extra field and has none", z->path);
    return CS_OK;
}

/* Parse the central-directory record at *pos (advanced past it) into e. */
static cs_status read_central_entry(const cs_zip *z, const zip_directory *dir, uint64_t *pos,
                                    cs_zip_entry *e) {
    uint64_t dir_end = dir->offset + dir->size;
    if (!in_range(*pos, CENTRAL_SIZE, dir_end) || rd32(z->buf + *pos) != SIG_CENTRAL)
        return error_set(CS_ERR_FORMAT, "%s: central directory record at offset %llu is damaged",
                       z->path, (unsigned long long)*pos);
    const uint8_t *c = z->buf + *pos;
    uint16_t flags = rd16(c + 8), nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
    if (!in_range(*pos + CENTRAL_SIZE, (uint64_t)nlen + xlen + clen, dir_end))
        return error_set(CS_ERR_FORMAT, "%s: central directory record at offset %llu overruns the directory",
                       z->path, (unsigned long long)*pos);
    const char *name = (const char *)c + CENTRAL_SIZE;
    if (memchr(name, 0, nlen))
        return error_set(CS_ERR_FORMAT, "%s: entry name contains a NUL byte", z->path);
    e->name = mem_alloc((size_t)nlen + 1, 1);
    if (!e->name) return CS_ERR_NOMEM;
    memcpy(e->name, name, nlen);
    e->name[nlen] = 0;
    e->method = rd16(c + 10);
    e->crc = rd32(c + 16);
    e->comp_size = rd32(c + 20);
    e->size = rd32(c + 24);
    uint64_t local = rd32(c + 42);
    *pos += CENTRAL_SIZE + (uint64_t)nlen + xlen + clen;

    cs_status s = apply_zip64_extra(z, c + CENTRAL_SIZE + nlen, xlen, &e->size, &e->comp_size, &local);
    if (s != CS_OK) return s;
    if (flags & 1)
        return error_set(CS_ERR_UNSUPPORTED, "%s: entry '%s' is encrypted", z->path, e->name);
    if (e->method != 0 && e->method != 8)
        return error_set(CS_ERR_UNSUPPORTED, "%s: entry '%s' uses compression method %u (only stored and deflated are supported)",
                       z->path, e->name, e->method);
    if (e->method == 0 && e->comp_size != e->size)
        return error_set(CS_ERR_FORMAT, "%s: stored entry '%s' has different sizes (%llu and %llu)",
                       z->path, e->name, (unsigned long long)e->comp_size, (unsigned long long)e->size);
    /* The local header may carry its own extra field (PyTorch pads there to
     * align the data), so the data offset comes from it, not the directory. */
    if (!in_range(local, LOCAL_SIZE, dir->offset) || rd32(z->buf + local) != SIG_LOCAL)
        return error_set(CS_ERR_FORMAT, "%s: entry '%s': local header offset %llu is out of range",
                       z->path, e->name, (unsigned long long)local);
    const uint8_t *l = z->buf + local;
    e->data_offset = local + LOCAL_SIZE + rd16(l + 26) + rd16(l + 28);
    if (!in_range(e->data_offset, e->comp_size, dir->offset))
        return error_set(CS_ERR_FORMAT, "%s: entry '%s': data (offset %llu, %llu bytes) lies outside the archive",
                       z->path, e->name, (unsigned long long)e->data_offset,
                       (unsigned long long)e->comp_size);
    return CS_OK;
}

static int entry_cmp(const void *a, const void *b) {
    return strcmp(((const cs_zip_entry *)a)->name, ((const cs_zip_entry *)b)->name);
}

static cs_status read_directory(cs_zip *z, const zip_directory *dir) {
    if (!in_range(dir->offset, dir->size, dir->end))
        return error_set(CS_ERR_FORMAT,
                       "%s: central directory (offset %llu, %llu bytes) lies outside the archive (%zu bytes)",
                       z->path, (unsigned long long)dir->offset, (unsigned long long)dir->size, z->len);
    if (dir->count > dir->size / CENTRAL_SIZE || dir->count > INT_MAX)
        return error_set(CS_ERR_FORMAT, "%s: central directory of %llu bytes cannot hold %llu entries",
                       z->path, (unsigned long long)dir->size, (unsigned long long)dir->count);
    z->entries = mem_calloc(dir->count ? (size_t)dir->count : 1, sizeof *z->entries);
    if (!z->entries) return CS_ERR_NOMEM;
    uint64_t pos = dir->offset;
    for (uint64_t i = 0; i < dir->count; i++) {
        z->n++;
        cs_status s = read_central_entry(z, dir, &pos, &z->entries[i]);
        if (s != CS_OK) return s;
    }
    qsort(z->entries, (size_t)z->n, sizeof *z->entries, entry_cmp);
    for (int i = 1; i < z->n; i++)
        if (strcmp(z->entries[i - 1].name, z->entries[i].name) == 0)
            return error_set(CS_ERR_FORMAT, "%s: entry '%s' appears twice", z->path, z->entries[i].name);
    return CS_OK;
}

cs_status zip_open(cs_zip *z, const char *path, const uint8_t *buf, size_t len) {
    memset(z, 0, sizeof *z);
    z->path = path;
    z->buf = buf;
    z->len = len;
    zip_directory dir = {0};
    cs_status s = read_end_records(z, &dir);
    if (s == CS_OK) s = read_directory(z, &dir);
    if (s != CS_OK) zip_close(z);
    return s;
}

void zip_close(cs_zip *z) {
    for (int i = 0; i < z->n; i++) cs_free(z->entries[i].name);
    cs_free(z->entries);
    z->entries = NULL;
    z->n = 0;
}

const cs_zip_entry *zip_find(const cs_zip *z, const char *name) {
    cs_zip_entry key = {.name = (char *)name};
    if (z->n == 0) return NULL;
    return bsearch(&key, z->entries, (size_t)z->n, sizeof *z->entries, entry_cmp);
}

/* Inflate the whole raw-deflate stream, keeping its first `keep` bytes in
 * out and passing the rest through a small scratch buffer: memory grows
 * with what the caller uses, never with what the entry claims, while the
 * size and CRC-32 are still checked over all of it. Output past the
 * declared size stops the stream at once (a bomb cannot run on). */
static cs_status inflate_entry(const cs_zip *z, const cs_zip_entry *e, uint8_t *out, size_t keep) {
    const uInt slice = 1u << 30;
    uint8_t scratch[1 << 16];
    z_stream st;
    memset(&st, 0, sizeof st);
    if (inflateInit2(&st, -MAX_WBITS) != Z_OK)
        return error_set(CS_ERR_NOMEM, "%s: cannot initialize zlib", z->path);
    const uint8_t *in = z->buf + e->data_offset;
    uint64_t in_left = e->comp_size, produced = 0;
    uLong crc = crc32(0L, Z_NULL, 0);
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (st.avail_in == 0 && in_left) {
            st.next_in = (Bytef *)in;
            st.avail_in = in_left < slice ? (uInt)in_left : slice;
            in += st.avail_in;
            in_left -= st.avail_in;
        }
        uint8_t *dst = scratch;
        size_t room = sizeof scratch;
        if (produced < keep) {
            dst = out + produced;
            room = keep - produced < slice ? keep - produced : slice;
        }
        st.next_out = dst;
        st.avail_out = (uInt)room;
        rc = inflate(&st, Z_NO_FLUSH);
        size_t got = room - st.avail_out;
        crc = crc32_z(crc, dst, got);
        produced += got;
        if (produced > e->size) break;
        if (rc == Z_BUF_ERROR && in_left) rc = Z_OK;
    }
    inflateEnd(&st);
    if (rc != Z_STREAM_END || produced != e->size)
        return error_set(CS_ERR_FORMAT, "%s: entry '%s': deflated data is corrupt or does not match its size",
                       z->path, e->name);
    if (crc != e->crc)
        return error_set(CS_ERR_FORMAT, "%s: entry '%s': CRC-32 mismatch", z->path, e->name);
    return CS_OK;
}

cs_status zip_check_stored(const cs_zip *z, const cs_zip_entry *e) {
    if (e->method != 0) return CS_OK;
    if (crc32_z(0, z->buf + e->data_offset, (size_t)e->size) != e->crc)
        return error_set(CS_ERR_FORMAT, "%s: entry '%s': CRC-32 mismatch (the stored data was altered)",
                       z->path, e->name);
    return CS_OK;
}

cs_status zip_read_prefix(const cs_zip *z, const cs_zip_entry *e, size_t prefix,
                             const uint8_t **data, void **owned) {
    *data = NULL;
    *owned = NULL;
    if (prefix > e->size)
        return error_set(CS_ERR_FORMAT, "%s: entry '%s' is %llu bytes, fewer than the %zu needed",
                       z->path, e->name, (unsigned long long)e->size, prefix);
    if (e->method == 0) {
        cs_status s = zip_check_stored(z, e);
        if (s == CS_OK) *data = z->buf + e->data_offset;
        return s;
    }
    if (e->size / MAX_INFLATE_RATIO > e->comp_size)
        return error_set(CS_ERR_FORMAT, "%s: entry '%s' claims %llu bytes from %llu deflated ones",
                       z->path, e->name, (unsigned long long)e->size,
                       (unsigned long long)e->comp_size);
    uint8_t *out = mem_alloc(prefix ? prefix : 1, 1);
    if (!out) return CS_ERR_NOMEM;
    cs_status s = inflate_entry(z, e, out, prefix);
    if (s != CS_OK) {
        cs_free(out);
        return s;
    }
    *data = out;
    *owned = out;
    return CS_OK;
}

cs_status zip_read(const cs_zip *z, const cs_zip_entry *e, size_t max_size,
                      const uint8_t **data, size_t *len, void **owned) {
    *data = NULL;
    *len = 0;
    *owned = NULL;
    if (e->size > max_size)
        return error_set(CS_ERR_LIMIT, "%s: entry '%s' is %llu bytes, over the %zu-byte limit", z->path,
                       e->name, (unsigned long long)e->size, max_size);
    cs_status s = zip_read_prefix(z, e, (size_t)e->size, data, owned);
    if (s == CS_OK) *len = (size_t)e->size;
    return s;
}
