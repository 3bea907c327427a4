#include "gen.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

char g_data[512];

static void die(const char *what) {
    fprintf(stderr, "test_hostile: %s\n", what);
    exit(1);
}

void b_put(buf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) die("out of memory");
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

void b_byte(buf *b, int c) {
    uint8_t x = (uint8_t)c;
    b_put(b, &x, 1);
}

void b_u16(buf *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    b_put(b, x, 2);
}

void b_u32(buf *b, uint32_t v) {
    b_u16(b, (uint16_t)v);
    b_u16(b, (uint16_t)(v >> 16));
}

void b_u64(buf *b, uint64_t v) {
    b_u32(b, (uint32_t)v);
    b_u32(b, (uint32_t)(v >> 32));
}

void b_str(buf *b, const char *s) { b_put(b, s, strlen(s)); }

void b_printf(buf *b, const char *fmt, ...) {
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) die("b_printf: too long");
    b_put(b, tmp, (size_t)n);
}

void b_free(buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

const char *data_path(const char *name) {
    static char paths[8][1024];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", g_data, name);
    return paths[slot];
}

void put(const char *name, const void *data, size_t n) {
    FILE *f = fopen(data_path(name), "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) die("cannot write a corpus file");
}

void put_text(const char *name, const char *text) { put(name, text, strlen(text)); }

void put_fifo(const char *name) {
    if (mkfifo(data_path(name), 0644) != 0) die("mkfifo failed");
}

uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    buf b = {0};
    uint8_t chunk[1 << 16];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) b_put(&b, chunk, got);
    fclose(f);
    *n = b.n;
    return b.p;
}

/* ------------------------------------------------------------- pickles */

void pk_begin(buf *b) {
    b_byte(b, 0x80);
    b_byte(b, 2);
}

void pk_end(buf *b) { b_byte(b, '.'); }

void pk_global(buf *b, const char *module, const char *name) {
    b_byte(b, 'c');
    b_printf(b, "%s\n%s\n", module, name);
}

void pk_unicode(buf *b, const char *s) {
    b_byte(b, 'X');
    b_u32(b, (uint32_t)strlen(s));
    b_str(b, s);
}

void pk_int(buf *b, int64_t v) {
    if (v >= 0 && v < 256) {
        b_byte(b, 'K');
        b_byte(b, (int)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        b_byte(b, 'J');
        b_u32(b, (uint32_t)(int32_t)v);
    } else {
        b_byte(b, 0x8a); /* LONG1 */
        b_byte(b, 8);
        b_u64(b, (uint64_t)v);
    }
}

void pk_op(buf *b, int op) { b_byte(b, op); }

void pk_tensor(buf *b, const char *key, int64_t storage_numel, int64_t offset, int ndim,
               const int64_t *size, const int64_t *stride) {
    pk_tensor_of(b, "FloatStorage", key, storage_numel, offset, ndim, size, stride);
}

void pk_tensor_of(buf *b, const char *storage, const char *key, int64_t storage_numel, int64_t offset, int ndim,
                  const int64_t *size, const int64_t *stride) {
    pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    pk_op(b, '(');
    /* persistent id: ('storage', torch.<storage>, key, 'cpu', numel) */
    pk_op(b, '(');
    pk_unicode(b, "storage");
    pk_global(b, "torch", storage);
    pk_unicode(b, key);
    pk_unicode(b, "cpu");
    pk_int(b, storage_numel);
    pk_op(b, 't');
    pk_op(b, 'Q');
    pk_int(b, offset);
    pk_op(b, '(');
    for (int i = 0; i < ndim; i++) pk_int(b, size[i]);
    pk_op(b, 't');
    pk_op(b, '(');
    for (int i = 0; i < ndim; i++) pk_int(b, stride[i]);
    pk_op(b, 't');
    pk_op(b, 0x89); /* False */
    pk_global(b, "collections", "OrderedDict");
    pk_op(b, ')');
    pk_op(b, 'R');
    pk_op(b, 't');
    pk_op(b, 'R');
}

/* ------------------------------------------------------------- zip */

static void deflate_raw(const void *data, size_t n, buf *out) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, n > (1 << 20) ? 1 : 9, Z_DEFLATED, -MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK) die("zlib");
    size_t cap = deflateBound(&zs, (uLong)n) + 64;
    out->p = malloc(cap);
    out->cap = cap;
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)n;
    zs.next_out = out->p;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) die("deflate");
    out->n = cap - zs.avail_out;
    deflateEnd(&zs);
}

void zip_build(buf *out, const zentry *e, int n, size_t *offsets, size_t *central) {
    size_t *local = calloc((size_t)n, sizeof *local);
    uint32_t *crc = calloc((size_t)n, sizeof *crc);
    size_t *comp = calloc((size_t)n, sizeof *comp);
    for (int i = 0; i < n; i++) {
        buf packed = {0};
        if (e[i].deflate) deflate_raw(e[i].data, e[i].len, &packed);
        else b_put(&packed, e[i].data, e[i].len);
        crc[i] = (uint32_t)crc32_z(0, e[i].data, e[i].len);
        comp[i] = packed.n;
        local[i] = out->n;
        if (offsets) offsets[i] = out->n;
        b_u32(out, 0x04034b50u);
        b_u16(out, 20);
        b_u16(out, 0);
        b_u16(out, e[i].deflate ? 8 : 0);
        b_u32(out, 0);
        b_u32(out, crc[i]);
        b_u32(out, (uint32_t)comp[i]);
        b_u32(out, (uint32_t)e[i].len);
        b_u16(out, (uint16_t)strlen(e[i].name));
        b_u16(out, 0);
        b_str(out, e[i].name);
        b_put(out, packed.p, packed.n);
        b_free(&packed);
    }
    size_t cd = out->n;
    if (central) *central = cd;
    for (int i = 0; i < n; i++) {
        b_u32(out, 0x02014b50u);
        b_u16(out, 20);
        b_u16(out, 20);
        b_u16(out, 0);
        b_u16(out, e[i].deflate ? 8 : 0);
        b_u32(out, 0);
        b_u32(out, crc[i]);
        b_u32(out, (uint32_t)comp[i]);
        b_u32(out, (uint32_t)e[i].len);
        b_u16(out, (uint16_t)strlen(e[i].name));
        b_u16(out, 0);
        b_u16(out, 0);
        b_u16(out, 0);
        b_u16(out, 0);
        b_u32(out, 0);
        b_u32(out, (uint32_t)local[i]);
        b_str(out, e[i].name);
    }
    size_t cd_size = out->n - cd;
    b_u32(out, 0x06054b50u);
    b_u16(out, 0);
    b_u16(out, 0);
    b_u16(out, (uint16_t)n);
    b_u16(out, (uint16_t)n);
    b_u32(out, (uint32_t)cd_size);
    b_u32(out, (uint32_t)cd);
    b_u16(out, 0);
    free(local);
    free(crc);
    free(comp);
}

void pt_build(buf *out, const buf *pkl, const zentry *storages, int n_storages) {
    zentry e[17];
    char names[16][64];
    if (n_storages > 16) die("pt_build: too many storages");
    e[0] = (zentry){"archive/data.pkl", pkl->p, pkl->n, 0};
    for (int i = 0; i < n_storages; i++) {
        snprintf(names[i], sizeof names[i], "archive/data/%s", storages[i].name);
        e[i + 1] = storages[i];
        e[i + 1].name = names[i];
    }
    zip_build(out, e, n_storages + 1, NULL, NULL);
}

/* ------------------------------------------------------------- safetensors, npy */

void st_raw(const char *name, const char *header, size_t data_len) {
    buf b = {0};
    b_u64(&b, strlen(header));
    b_str(&b, header);
    uint8_t *zeros = calloc(1, data_len + 1);
    b_put(&b, zeros, data_len);
    free(zeros);
    put(name, b.p, b.n);
    b_free(&b);
}

void npy_raw(const char *name, const char *dict, const void *data, size_t n) {
    buf b = {0};
    b_put(&b, "\x93NUMPY\x01\x00", 8);
    size_t hlen = strlen(dict) + 1;
    size_t pad = (64 - (10 + hlen) % 64) % 64;
    b_u16(&b, (uint16_t)(hlen + pad));
    b_str(&b, dict);
    for (size_t i = 0; i < pad; i++) b_byte(&b, ' ');
    b_byte(&b, '\n');
    b_put(&b, data, n);
    put(name, b.p, b.n);
    b_free(&b);
}
