/* libFuzzer target: the input is data.pkl of an archive that also holds
 * storages "0" to "3" (64 bytes each), so that the pickle machine, the
 * tensor rebuilds and the walk over the object tree all see arbitrary
 * pickles (a zip fuzzed as a whole rarely keeps a valid pickle). Seeds:
 * fuzz/corpus/pickle. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "formats/pytorch.h"

#define N_STORAGES 4
#define STORAGE_BYTES 64

typedef struct image {
    uint8_t *d;
    size_t n;
} image;

static void put(image *z, const void *p, size_t n) {
    if (n) memcpy(z->d + z->n, p, n);
    z->n += n;
}

static void put_le(image *z, uint64_t v, int n) {
    for (int i = 0; i < n; i++) z->d[z->n++] = (uint8_t)(v >> (8 * i));
}

static void put_zeros(image *z, size_t n) {
    memset(z->d + z->n, 0, n);
    z->n += n;
}

/* A stored-entry zip: local headers with data, central directory, end record. */
static void write_zip(image *z, const char **names, const uint8_t **data, const size_t *lens, int n) {
    size_t offsets[N_STORAGES + 1];
    for (int i = 0; i < n; i++) {
        offsets[i] = z->n;
        put_le(z, 0x04034b50u, 4);
        put_le(z, 20, 2);
        put_zeros(z, 2 + 2 + 4); /* flags, method, time and date */
        put_le(z, crc32(0, data[i], (uInt)lens[i]), 4);
        put_le(z, lens[i], 4);
        put_le(z, lens[i], 4);
        put_le(z, strlen(names[i]), 2);
        put_le(z, 0, 2);
        put(z, names[i], strlen(names[i]));
        put(z, data[i], lens[i]);
    }
    size_t cd = z->n;
    for (int i = 0; i < n; i++) {
        put_le(z, 0x02014b50u, 4);
        put_le(z, 20, 2);
        put_le(z, 20, 2);
        put_zeros(z, 2 + 2 + 4); /* flags, method, time and date */
        put_le(z, crc32(0, data[i], (uInt)lens[i]), 4);
        put_le(z, lens[i], 4);
        put_le(z, lens[i], 4);
        put_le(z, strlen(names[i]), 2);
        put_zeros(z, 2 + 2 + 2 + 2 + 4); /* extra, comment, disk, attributes */
        put_le(z, offsets[i], 4);
        put(z, names[i], strlen(names[i]));
    }
    size_t cd_len = z->n - cd;
    put_le(z, 0x06054b50u, 4);
    put_le(z, 0, 4);
    put_le(z, (uint64_t)n, 2);
    put_le(z, (uint64_t)n, 2);
    put_le(z, cd_len, 4);
    put_le(z, cd, 4);
    put_le(z, 0, 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    if (len > (1u << 20)) return 0;
    static uint8_t storage[STORAGE_BYTES];
    const char *names[N_STORAGES + 1] = {"f/data.pkl", "f/data/0", "f/data/1", "f/data/2", "f/data/3"};
    const uint8_t *data[N_STORAGES + 1] = {buf, storage, storage, storage, storage};
    size_t lens[N_STORAGES + 1] = {len, STORAGE_BYTES, STORAGE_BYTES, STORAGE_BYTES, STORAGE_BYTES};
    for (int i = 0; i < STORAGE_BYTES; i++) storage[i] = (uint8_t)(i * 37);
    image z = {malloc(len + 1024), 0};
    if (!z.d) return 0;
    write_zip(&z, names, data, lens, N_STORAGES + 1);
    cs_tensor_table t;
    tensors_init(&t, "fuzz");
    pytorch_parse_memory("fuzz", z.d, z.n, &t);
    for (int i = 0; i < t.n; i++) {
        volatile uint8_t sink = 0;
        const uint8_t *p = t.items[i].data;
        for (size_t k = 0; k < t.items[i].nbytes; k++) sink ^= p[k];
        (void)sink;
    }
    tensors_free(&t);
    free(z.d);
    return 0;
}
