/* PyTorch archives built byte by byte: views into shared storages
 * (transposed, offset, scalar, empty), deflated entries, ZIP64 end records,
 * checkpoint wrappers and `module.` prefixes, TorchScript module trees; then
 * hostile files, each asserting the exact status and that the message names
 * the file and the problem. Needs no golden data. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "formats/tensors.h"
#include "test.h"

static char g_dir[256];

/* ---------------------------------------------------------------- byte buffers */

typedef struct buf {
    uint8_t *d;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n) {
    if (n == 0) return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->d = realloc(b->d, b->cap);
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void put8(buf *b, int v) {
    uint8_t c = (uint8_t)v;
    put(b, &c, 1);
}

static void put_le(buf *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) put8(b, (int)(v >> (8 * i)) & 0xff);
}

static void put_str(buf *b, const char *s) { put(b, s, strlen(s)); }

/* A string literal that may hold NUL bytes. */
#define PUT_LIT(b, lit) put((b), (lit), sizeof(lit) - 1)

/* ---------------------------------------------------------------- pickles */

static void pk_text(buf *b, const char *s) { /* BINUNICODE */
    put8(b, 'X');
    put_le(b, strlen(s), 4);
    put_str(b, s);
}

static void pk_int(buf *b, int v) { /* BININT */
    put8(b, 'J');
    put_le(b, (uint32_t)v, 4);
}

static void pk_global(buf *b, const char *module, const char *name) {
    put8(b, 'c');
    put_str(b, module);
    put8(b, '\n');
    put_str(b, name);
    put8(b, '\n');
}

static void pk_ints(buf *b, int n, const int *v) {
    put8(b, '(');
    for (int i = 0; i < n; i++) pk_int(b, v[i]);
    put8(b, 't');
}

/* _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, False, OrderedDict()) */
static void pk_tensor(buf *b, const char *type, const char *key, int numel, int offset, int ndim,
                      const int *size, const int *stride) {
    pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    put8(b, '(');
    put8(b, '(');
    pk_text(b, "storage");
    pk_global(b, "torch", type);
    pk_text(b, key);
    pk_text(b, "cpu");
    pk_int(b, numel);
    put8(b, 't');
    put8(b, 'Q');
    pk_int(b, offset);
    pk_ints(b, ndim, size);
    pk_ints(b, ndim, stride);
    put8(b, 0x89);
    pk_global(b, "collections", "OrderedDict");
    put8(b, ')');
    put8(b, 'R');
    put8(b, 't');
    put8(b, 'R');
}

static void pk_float_tensor(buf *b, const char *key, int numel, int offset, int ndim, const int *size,
                            const int *stride) {
    pk_tensor(b, "FloatStorage", key, numel, offset, ndim, size, stride);
}

static void pk_begin_dict(buf *b) {
    put8(b, 0x80);
    put8(b, 2);
    put8(b, '}');
    put8(b, '(');
}

static void pk_end_dict(buf *b) {
    put8(b, 'u');
    put8(b, '.');
}

/* ---------------------------------------------------------------- zip archives */

typedef struct entry {
    const char *name;
    const void *data;
    size_t len;
} entry;

enum { STORED = 0, DEFLATED = 1, ZIP64 = 2 };

static buf deflate_raw(const void *data, size_t len) {
    buf out = {0};
    out.cap = compressBound((uLong)len) + 64;
    out.d = malloc(out.cap);
    z_stream s;
    memset(&s, 0, sizeof s);
    deflateInit2(&s, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    s.next_in = (Bytef *)data;
    s.avail_in = (uInt)len;
    s.next_out = out.d;
    s.avail_out = (uInt)out.cap;
    CHECK(deflate(&s, Z_FINISH) == Z_STREAM_END);
    out.n = s.total_out;
    deflateEnd(&s);
    return out;
}

/* A zip of the entries, stored or deflated, with classic or ZIP64 end
 * records (the latter with the classic fields saturated). */
static buf make_zip(const entry *e, int n, int flags) {
    buf z = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        buf packed = {0};
        if (flags & DEFLATED) packed = deflate_raw(e[i].data, e[i].len);
        else put(&packed, e[i].data, e[i].len);
        uint32_t crc = (uint32_t)crc32(0, e[i].data, (uInt)e[i].len);
        size_t local = z.n, nlen = strlen(e[i].name);
        put_le(&z, 0x04034b50u, 4);
        put_le(&z, 20, 2);
        put_le(&z, 0, 2);
        put_le(&z, flags & DEFLATED ? 8 : 0, 2);
        put_le(&z, 0, 4);
        put_le(&z, crc, 4);
        put_le(&z, packed.n, 4);
        put_le(&z, e[i].len, 4);
        put_le(&z, nlen, 2);
        put_le(&z, 0, 2);
        put_str(&z, e[i].name);
        put(&z, packed.d, packed.n);

        put_le(&cd, 0x02014b50u, 4);
        put_le(&cd, 20, 2);
        put_le(&cd, 20, 2);
        put_le(&cd, 0, 2);
        put_le(&cd, flags & DEFLATED ? 8 : 0, 2);
        put_le(&cd, 0, 4);
        put_le(&cd, crc, 4);
        put_le(&cd, packed.n, 4);
        put_le(&cd, e[i].len, 4);
        put_le(&cd, nlen, 2);
        put_le(&cd, 0, 8); /* extra, comment, disk, internal attributes */
        put_le(&cd, 0, 4); /* external attributes */
        put_le(&cd, local, 4);
        put_str(&cd, e[i].name);
        free(packed.d);
    }
    size_t cd_offset = z.n;
    put(&z, cd.d, cd.n);
    if (flags & ZIP64) {
        size_t rec = z.n;
        put_le(&z, 0x06064b50u, 4);
        put_le(&z, 44, 8);
        put_le(&z, 45, 2);
        put_le(&z, 45, 2);
        put_le(&z, 0, 8);
        put_le(&z, (uint64_t)n, 8);
        put_le(&z, (uint64_t)n, 8);
        put_le(&z, cd.n, 8);
        put_le(&z, cd_offset, 8);
        put_le(&z, 0x07064b50u, 4);
        put_le(&z, 0, 4);
        put_le(&z, rec, 8);
        put_le(&z, 1, 4);
    }
    put_le(&z, 0x06054b50u, 4);
    put_le(&z, 0, 4);
    put_le(&z, flags & ZIP64 ? 0xffff : n, 2);
    put_le(&z, flags & ZIP64 ? 0xffff : n, 2);
    put_le(&z, flags & ZIP64 ? 0xffffffffu : cd.n, 4);
    put_le(&z, flags & ZIP64 ? 0xffffffffu : cd_offset, 4);
    put_le(&z, 0, 2);
    free(cd.d);
    return z;
}

static const char *write_file(const char *name, const buf *b) {
    static char path[4][512];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(path[slot], sizeof path[slot], "%s/%s", g_dir, name);
    FILE *f = fopen(path[slot], "wb");
    CHECK(f && fwrite(b->d, 1, b->n, f) == b->n);
    if (f) fclose(f);
    return path[slot];
}

/* An archive "arch/" holding data.pkl and storage "0" (floats 0, 1, ..., 5). */
static const char *write_archive(const char *name, const buf *pkl, int flags) {
    static const float storage[6] = {0, 1, 2, 3, 4, 5};
    entry e[2] = {{"arch/data.pkl", pkl->d, pkl->n}, {"arch/data/0", storage, sizeof storage}};
    buf z = make_zip(e, 2, flags);
    const char *path = write_file(name, &z);
    free(z.d);
    return path;
}

static void expect_open_error(const char *path, cs_status want, const char *problem) {
    cs_tensor_table t;
    CHECK_STATUS(pytorch_open(path, &t), want);
    CHECK_ERR_HAS(path);
    CHECK_ERR_HAS(problem);
    CHECK(t.n == 0);
    tensors_free(&t);
}

static void expect_pickle_error(const char *name, const buf *pkl, cs_status want, const char *problem) {
    expect_open_error(write_archive(name, pkl, STORED), want, problem);
}

static int has_floats(const cs_tensor_table *t, const char *name, int ndim, const int64_t *shape,
                      int n, const float *want) {
    const cs_tensor *x = tensors_find(t, name);
    if (!x || x->dtype != CS_DT_F32 || x->ndim != ndim || tensor_numel(x) != n ||
        x->nbytes != (size_t)n * 4)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (x->shape[i] != shape[i]) return 0;
    return n == 0 || memcmp(x->data, want, (size_t)n * 4) == 0;
}

/* ---------------------------------------------------------------- views */

static buf views_pickle(void) {
    buf p = {0};
    pk_begin_dict(&p);
    pk_text(&p, "full");
    pk_float_tensor(&p, "0", 6, 0, 1, (int[]){6}, (int[]){1});
    pk_text(&p, "transposed");
    pk_float_tensor(&p, "0", 6, 0, 2, (int[]){3, 2}, (int[]){1, 3});
    pk_text(&p, "offset");
    pk_float_tensor(&p, "0", 6, 1, 1, (int[]){2}, (int[]){2});
    pk_text(&p, "scalar");
    pk_float_tensor(&p, "0", 6, 5, 0, NULL, NULL);
    pk_text(&p, "empty");
    pk_float_tensor(&p, "0", 6, 0, 2, (int[]){0, 4}, (int[]){4, 1});
    pk_end_dict(&p);
    return p;
}

static void check_views(const char *path) {
    cs_tensor_table t;
    CHECK_OK(pytorch_open(path, &t));
    CHECK(t.n == 5);
    CHECK(has_floats(&t, "full", 1, (int64_t[]){6}, 6, (float[]){0, 1, 2, 3, 4, 5}));
    CHECK(has_floats(&t, "transposed", 2, (int64_t[]){3, 2}, 6, (float[]){0, 3, 1, 4, 2, 5}));
    CHECK(has_floats(&t, "offset", 1, (int64_t[]){2}, 2, (float[]){1, 3}));
    CHECK(has_floats(&t, "scalar", 0, NULL, 1, (float[]){5}));
    CHECK(has_floats(&t, "empty", 2, (int64_t[]){0, 4}, 0, NULL));
    tensors_free(&t);
}

static void test_views(void) {
    buf p = views_pickle();
    check_views(write_archive("views-stored.pt", &p, STORED));
    check_views(write_archive("views-deflated.pt", &p, DEFLATED));
    check_views(write_archive("views-zip64.pt", &p, DEFLATED | ZIP64));
    free(p.d);
}

/* ---------------------------------------------------------------- wrappers and modules */

static void test_checkpoint(void) {
    buf p = {0};
    pk_begin_dict(&p);
    pk_text(&p, "epoch");
    pk_int(&p, 3);
    pk_text(&p, "state_dict");
    pk_global(&p, "collections", "OrderedDict");
    put8(&p, ')');
    put8(&p, 'R');
    put8(&p, '(');
    pk_text(&p, "module.visual.proj");
    pk_float_tensor(&p, "0", 6, 0, 2, (int[]){2, 3}, (int[]){3, 1});
    pk_text(&p, "module.logit_scale");
    pk_float_tensor(&p, "0", 6, 4, 0, NULL, NULL);
    put8(&p, 'u');
    put8(&p, '}'); /* OrderedDict's BUILD state: _metadata, ignored */
    pk_text(&p, "_metadata");
    put8(&p, '}');
    put8(&p, 's');
    put8(&p, 'b');
    pk_end_dict(&p);
    cs_tensor_table t;
    CHECK_OK(pytorch_open(write_archive("checkpoint.pt", &p, STORED), &t));
    CHECK(t.n == 2);
    CHECK(has_floats(&t, "visual.proj", 2, (int64_t[]){2, 3}, 6, (float[]){0, 1, 2, 3, 4, 5}));
    CHECK(has_floats(&t, "logit_scale", 0, NULL, 1, (float[]){4}));
    tensors_free(&t);
    free(p.d);
}

/* __torch__ classes: NEWOBJ then BUILD with the attribute dict. */
static void pk_module(buf *b, const char *cls) {
    pk_global(b, "__torch__.clip.model", cls);
    put8(b, ')');
    put8(b, 0x81);
    put8(b, '}');
    put8(b, '(');
    pk_text(b, "training");
    put8(b, 0x89);
}

static void pk_end_module(buf *b) {
    put8(b, 'u');
    put8(b, 'b');
}

static void test_torchscript(void) {
    buf p = {0};
    put8(&p, 0x80);
    put8(&p, 2);
    pk_module(&p, "CLIP");
    pk_text(&p, "visual");
    pk_module(&p, "VisionTransformer");
    pk_text(&p, "conv1");
    pk_module(&p, "Conv2d");
    pk_text(&p, "weight");
    pk_tensor(&p, "HalfStorage", "0", 12, 0, 2, (int[]){3, 4}, (int[]){4, 1});
    pk_text(&p, "bias");
    put8(&p, 'N');
    pk_end_module(&p);
    pk_end_module(&p);
    pk_text(&p, "input_resolution");
    pk_int(&p, 224);
    pk_text(&p, "layers");
    pk_int(&p, 12);
    pk_end_module(&p);
    put8(&p, '.');
    cs_tensor_table t;
    CHECK_OK(pytorch_open(write_archive("torchscript.pt", &p, STORED), &t));
    CHECK(t.n == 2);
    const cs_tensor *w = tensors_find(&t, "visual.conv1.weight");
    CHECK(w && w->dtype == CS_DT_F16 && w->ndim == 2 && w->shape[1] == 4 && w->nbytes == 24);
    const cs_tensor *r = tensors_find(&t, "input_resolution");
    CHECK(r && r->dtype == CS_DT_I64 && r->ndim == 0 && *(const int64_t *)r->data == 224);
    CHECK(tensors_find(&t, "layers") == NULL);
    tensors_free(&t);
    free(p.d);
}

/* ---------------------------------------------------------------- hostile pickles */

static void test_forbidden_globals(void) {
    buf p = {0};
    PUT_LIT(&p, "\x80\x02" "cos\nsystem\n" "X\x02\0\0\0ls" "\x85" "R.");
    expect_pickle_error("os-system.pt", &p, CS_ERR_UNSUPPORTED, "global 'os.system' is not allowed");
    free(p.d);

    p = (buf){0};
    PUT_LIT(&p, "\x80\x04" "\x8c\x08" "builtins" "\x8c\x04" "eval" "\x93" "X\x01\0\0\0" "1" "\x85" "R.");
    expect_pickle_error("eval.pt", &p, CS_ERR_UNSUPPORTED, "global 'builtins.eval' is not allowed");
    free(p.d);

    /* Inside an otherwise good state dict, after a tensor was read. */
    p = (buf){0};
    pk_begin_dict(&p);
    pk_text(&p, "a");
    pk_float_tensor(&p, "0", 6, 0, 1, (int[]){6}, (int[]){1});
    pk_text(&p, "b");
    pk_global(&p, "numpy.core.multiarray", "_reconstruct");
    pk_end_dict(&p);
    expect_pickle_error("numpy.pt", &p, CS_ERR_UNSUPPORTED, "'numpy.core.multiarray._reconstruct'");
    free(p.d);

    p = (buf){0};
    pk_begin_dict(&p);
    pk_text(&p, "a");
    pk_tensor(&p, "ShortStorage", "0", 6, 0, 1, (int[]){6}, (int[]){1});
    pk_end_dict(&p);
    expect_pickle_error("short.pt", &p, CS_ERR_UNSUPPORTED, "storage type 'torch.ShortStorage'");
    free(p.d);
}

static void test_bad_pickles(void) {
    buf good = views_pickle();
    size_t cuts[] = {0, 1, 2, 30, good.n / 2, good.n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        buf cut = {0};
        put(&cut, good.d, cuts[i]);
        expect_pickle_error("cut-pickle.pt", &cut, CS_ERR_FORMAT, "truncated pickle");
        free(cut.d);
    }
    free(good.d);

    buf p = {0};
    PUT_LIT(&p, "\x80\x02}(X\x01\0\0\0a\xffu.");
    expect_pickle_error("opcode.pt", &p, CS_ERR_UNSUPPORTED, "unsupported pickle opcode 0xff");
    free(p.d);

    p = (buf){0};
    PUT_LIT(&p, "\x80\x02}(X\x01\0\0\0ah\x07u.");
    expect_pickle_error("memo.pt", &p, CS_ERR_FORMAT, "memo lookup of a key never stored");
    free(p.d);

    p = (buf){0};
    PUT_LIT(&p, "\x80\x02]K\x01" "a.");
    expect_pickle_error("list.pt", &p, CS_ERR_FORMAT, "not a state dict or a module");
    free(p.d);

    p = (buf){0};
    PUT_LIT(&p, "\x80\x02}(u.");
    expect_pickle_error("no-tensors.pt", &p, CS_ERR_MISSING, "holds no tensors");
    free(p.d);

    /* A dict that contains itself: walked once, then nothing is left. */
    p = (buf){0};
    PUT_LIT(&p, "\x80\x02}q\x00X\x04\0\0\0selfh\x00s.");
    expect_pickle_error("cycle.pt", &p, CS_ERR_MISSING, "holds no tensors");
    free(p.d);

    p = (buf){0};
    pk_begin_dict(&p);
    for (int i = 0; i < 100; i++) {
        pk_text(&p, "a");
        put8(&p, '}');
        put8(&p, '(');
    }
    pk_text(&p, "w");
    pk_float_tensor(&p, "0", 6, 0, 1, (int[]){6}, (int[]){1});
    for (int i = 0; i < 100; i++) put8(&p, 'u');
    pk_end_dict(&p);
    expect_pickle_error("deep.pt", &p, CS_ERR_LIMIT, "nested deeper than 64 levels");
    free(p.d);

    p = (buf){0};
    pk_begin_dict(&p);
    pk_text(&p, "w");
    pk_float_tensor(&p, "0", 6, 0, 1, (int[]){6}, (int[]){1});
    pk_text(&p, "module.w");
    pk_float_tensor(&p, "0", 6, 0, 1, (int[]){6}, (int[]){1});
    pk_text(&p, "w");
    pk_float_tensor(&p, "0", 6, 0, 1, (int[]){6}, (int[]){1});
    pk_end_dict(&p);
    expect_pickle_error("duplicate.pt", &p, CS_ERR_FORMAT, "tensor 'w' appears twice");
    free(p.d);
}

static void test_bad_tensors(void) {
    buf p = {0};
    pk_begin_dict(&p);
    pk_text(&p, "w");
    pk_float_tensor(&p, "7", 6, 0, 1, (int[]){6}, (int[]){1});
    pk_end_dict(&p);
    expect_pickle_error("no-storage.pt", &p, CS_ERR_MISSING,
                        "tensor 'w': storage 'arch/data/7' is missing from the archive");
    free(p.d);

    p = (buf){0};
    pk_begin_dict(&p);
    pk_text(&p, "w");
    pk_float_tensor(&p, "0", 6, 0, 1, (int[]){4}, (int[]){2});
    pk_end_dict(&p);
    expect_pickle_error("stride.pt", &p, CS_ERR_FORMAT, "tensor 'w': size and stride exceed its storage");
    free(p.d);

    p = (buf){0};
    pk_begin_dict(&p);
    pk_text(&p, "w");
    pk_float_tensor(&p, "0", 6, 3, 2, (int[]){2, 2}, (int[]){2, 1});
    pk_end_dict(&p);
    expect_pickle_error("offset.pt", &p, CS_ERR_FORMAT, "tensor 'w': size and stride exceed its storage");
    free(p.d);

    /* Broadcast views (stride 0) would materialize more than the storage. */
    p = (buf){0};
    pk_begin_dict(&p);
    pk_text(&p, "w");
    pk_float_tensor(&p, "0", 6, 0, 2, (int[]){1000000, 1000000}, (int[]){0, 0});
    pk_end_dict(&p);
    expect_pickle_error("broadcast.pt", &p, CS_ERR_FORMAT, "tensor 'w': size and stride exceed its storage");
    free(p.d);

    p = (buf){0};
    pk_begin_dict(&p);
    pk_text(&p, "w");
    pk_float_tensor(&p, "0", 100, 0, 1, (int[]){100}, (int[]){1});
    pk_end_dict(&p);
    expect_pickle_error("numel.pt", &p, CS_ERR_FORMAT, "fewer than 100 elements of F32");
    free(p.d);

    p = (buf){0};
    PUT_LIT(&p, "\x80\x02}(X\x01\0\0\0w(X\x07\0\0\0storageK\x01tQu.");
    expect_pickle_error("persid.pt", &p, CS_ERR_FORMAT, "persistent id is not a ('storage'");
    free(p.d);
}

/* ---------------------------------------------------------------- hostile archives */

static void test_bad_archives(void) {
    buf p = views_pickle();
    float storage[6] = {0};
    entry no_pkl[1] = {{"arch/data/0", storage, sizeof storage}};
    buf z = make_zip(no_pkl, 1, STORED);
    expect_open_error(write_file("no-pkl.pt", &z), CS_ERR_FORMAT, "without data.pkl");
    free(z.d);

    /* Central directory offset (classic end record) beyond the file. */
    entry e[2] = {{"arch/data.pkl", p.d, p.n}, {"arch/data/0", storage, sizeof storage}};
    z = make_zip(e, 2, STORED);
    z.d[z.n - 3] = 0x7f;
    expect_open_error(write_file("cd-offset.pt", &z), CS_ERR_FORMAT, "central directory (offset");
    free(z.d);

    /* Damaged deflated data, then a wrong CRC-32 over intact data. */
    z = make_zip(e, 2, DEFLATED);
    size_t data_at = 30 + strlen("arch/data.pkl");
    z.d[data_at] ^= 0xff;
    z.d[data_at + 1] ^= 0xff;
    expect_open_error(write_file("inflate.pt", &z), CS_ERR_FORMAT, "deflated data is corrupt");
    free(z.d);

    z = make_zip(e, 2, DEFLATED);
    z.d[14] ^= 1;                                         /* local header CRC: not used */
    size_t cd = z.n - 22 - 2 * 46 - strlen("arch/data.pkl") - strlen("arch/data/0");
    z.d[cd + 16] ^= 1;                                    /* central CRC of data.pkl */
    expect_open_error(write_file("crc.pt", &z), CS_ERR_FORMAT, "'arch/data.pkl': CRC-32 mismatch");
    free(z.d);

    /* A deflated entry claiming an impossible size is refused before any allocation. */
    z = make_zip(e, 2, DEFLATED);
    size_t cd2 = cd + 46 + strlen("arch/data.pkl");       /* record of arch/data/0 */
    z.d[cd2 + 24] = 0xff;
    z.d[cd2 + 25] = 0xff;
    z.d[cd2 + 26] = 0xff;
    z.d[cd2 + 27] = 0x7f;
    expect_open_error(write_file("ratio.pt", &z), CS_ERR_FORMAT, "claims 2147483647 bytes");
    free(z.d);
    free(p.d);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/cs_pt_errors_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    test_views();
    test_checkpoint();
    test_torchscript();
    test_forbidden_globals();
    test_bad_pickles();
    test_bad_tensors();
    test_bad_archives();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_finish();
}
