/* PyTorch archives: a zip whose entries share one top folder (`model/`,
 * `archive/`, the file's stem for TorchScript): `data.pkl` holds the pickled
 * object and `data/<key>` the raw bytes of each storage. The object is a
 * state dict (torch.save), a checkpoint wrapping one, or a TorchScript module
 * tree whose attribute paths are the state-dict names. Tensors are views into
 * storages; contiguous ones are borrowed, others materialized. */
#include "pytorch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../base/fileio.h"
#include "pickle.h"
#include "zip.h"

#define MAX_PICKLE_BYTES ((size_t)256 << 20)
#define MAX_NAME 1024
#define MAX_DEPTH 64

/* A storage is read once: a stored one has its CRC checked the first time a
 * tensor uses it; a deflated one is inflated up to the largest prefix any
 * tensor has needed so far (owned by the table). */
struct storage_state {
    int checked;
    const uint8_t *data;
    size_t have;
};

typedef struct loader {
    const char *path;
    const cs_zip *zip;
    char prefix[MAX_NAME]; /* the archive's top folder, with its '/' (or empty) */
    struct storage_state *storages; /* per zip entry: what has been read of it */
    cs_tensor_table *out;
} loader;

/* The pickle sits at <folder>/data.pkl, one level down (or at the root). */
static const cs_zip_entry *find_data_pkl(const cs_zip *z, char *prefix) {
    for (int i = 0; i < z->n; i++) {
        const char *name = z->entries[i].name, *slash = strchr(name, '/');
        const char *base = slash ? slash + 1 : name;
        if (strcmp(base, "data.pkl") != 0 || (slash && strchr(base, '/'))) continue;
        size_t n = (size_t)(base - name);
        if (n >= MAX_NAME) continue;
        memcpy(prefix, name, n);
        prefix[n] = 0;
        return &z->entries[i];
    }
    return NULL;
}

static cs_status check_byte_order(const loader *L) {
    char name[MAX_NAME + 16];
    snprintf(name, sizeof name, "%sbyteorder", L->prefix);
    const cs_zip_entry *e = zip_find(L->zip, name);
    if (!e) return CS_OK; /* older archives: always little-endian */
    const uint8_t *data;
    size_t len;
    void *owned;
    cs_status s = zip_read(L->zip, e, 64, &data, &len, &owned);
    if (s != CS_OK) return s;
    int little = len == 6 && memcmp(data, "little", 6) == 0;
    cs_free(owned);
    if (!little)
        return error_set(CS_ERR_UNSUPPORTED, "%s: '%s' says the storages are not little-endian", L->path,
                       name);
    return CS_OK;
}

/* ---------------------------------------------------------------- storages */

/* The first `need` bytes of a storage: borrowed from the image when stored,
 * inflated into a buffer the table owns when deflated. Only what tensors
 * use is kept, so a deflate bomb behind a small tensor costs nothing. */
static cs_status read_storage(loader *L, const cs_zip_entry *e, size_t need, const uint8_t **data) {
    struct storage_state *st = &L->storages[e - L->zip->entries];
    if (st->checked && st->have >= need) {
        *data = st->data;
        return CS_OK;
    }
    size_t want = e->method == 0 ? (size_t)e->size : need;
    void *owned;
    cs_status s = zip_read_prefix(L->zip, e, want, data, &owned);
    if (s != CS_OK) return s;
    if (owned && (s = tensors_own(L->out, owned)) != CS_OK) return s;
    st->checked = 1;
    st->data = *data;
    st->have = want;
    return CS_OK;
}

/* ---------------------------------------------------------------- tensors */

static int is_contiguous(const pk_tensor *t) {
    int64_t expected = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->size[i] != 1 && t->stride[i] != expected) return 0;
        expected *= t->size[i];
    }
    return 1;
}

/* Element count, and the index of the last element the view touches; 0 on
 * overflow. */
static int view_extent(const pk_tensor *t, uint64_t *numel, uint64_t *last) {
    uint64_t n = 1, end = (uint64_t)t->offset;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t size = (uint64_t)t->size[i], stride = (uint64_t)t->stride[i];
        if (size && n > UINT64_MAX / size) return 0;
        n *= size;
        if (size && stride && size - 1 > (UINT64_MAX - end) / stride) return 0;
        if (size) end += (size - 1) * stride;
    }
    *numel = n;
    *last = end;
    return 1;
}

/* Copy a strided view into dst, row-major: an odometer over the outer
 * dimensions, a strided run over the last. */
static void gather(uint8_t *dst, const uint8_t *base, const pk_tensor *t, size_t esz) {
    int last = t->ndim - 1;
    int64_t idx[CS_MAX_DIMS] = {0};
    for (;;) {
        int64_t off = 0;
        for (int i = 0; i < last; i++) off += idx[i] * t->stride[i];
        for (int64_t k = 0; k < t->size[last]; k++) {
            memcpy(dst, base + (size_t)(off + k * t->stride[last]) * esz, esz);
            dst += esz;
        }
        int d = last - 1;
        while (d >= 0 && ++idx[d] == t->size[d]) idx[d--] = 0;
        if (d < 0) return;
    }
}

static cs_status add_tensor(loader *L, const char *name, const pk_tensor *t) {
    char entry_name[2 * MAX_NAME];
    if (t->key_len >= MAX_NAME || memchr(t->key, 0, t->key_len))
        return error_set(CS_ERR_FORMAT, "%s: tensor '%s': bad storage key", L->path, name);
    snprintf(entry_name, sizeof entry_name, "%sdata/%.*s", L->prefix, (int)t->key_len, t->key);
    const cs_zip_entry *e = zip_find(L->zip, entry_name);
    if (!e)
        return error_set(CS_ERR_MISSING, "%s: tensor '%s': storage '%s' is missing from the archive",
                       L->path, name, entry_name);
    size_t esz = dtype_size(t->dtype), storage_bytes;
    if (!size_mul((size_t)t->storage_numel, esz, &storage_bytes) || storage_bytes > e->size)
        return error_set(CS_ERR_FORMAT, "%s: tensor '%s': storage '%s' holds %llu bytes, fewer than %lld elements of %s",
                       L->path, name, entry_name, (unsigned long long)e->size,
                       (long long)t->storage_numel, dtype_name(t->dtype));
    uint64_t numel, last;
    if (!view_extent(t, &numel, &last) ||
        (numel && (last >= (uint64_t)t->storage_numel || numel > (uint64_t)t->storage_numel)))
        return error_set(CS_ERR_FORMAT, "%s: tensor '%s': size and stride exceed its storage '%s' of %lld elements",
                       L->path, name, entry_name, (long long)t->storage_numel);
    const uint8_t *storage;
    size_t need = numel ? ((size_t)last + 1) * esz : 0; /* last < storage_numel: no overflow */
    cs_status s = read_storage(L, e, need, &storage);
    if (s != CS_OK) return s;
    size_t nbytes = (size_t)numel * esz;
    const uint8_t *first = numel ? storage + (size_t)t->offset * esz : storage;
    if (numel == 0 || is_contiguous(t)) {
        if ((uintptr_t)first % esz == 0)
            return tensors_add(L->out, name, t->dtype, t->ndim, t->size, first, nbytes, 0);
        uint8_t *copy = mem_alloc(nbytes, 1);
        if (!copy) return CS_ERR_NOMEM;
        memcpy(copy, first, nbytes);
        return tensors_add(L->out, name, t->dtype, t->ndim, t->size, copy, nbytes, 1);
    }
    uint8_t *dense = mem_alloc(nbytes, 1);
    if (!dense) return CS_ERR_NOMEM;
    gather(dense, first, t, esz);
    return tensors_add(L->out, name, t->dtype, t->ndim, t->size, dense, nbytes, 1);
}

static cs_status add_int_scalar(loader *L, const char *name, int64_t v) {
    int64_t *p = mem_alloc(1, sizeof *p);
    if (!p) return CS_ERR_NOMEM;
    *p = v;
    return tensors_add(L->out, name, CS_DT_I64, 0, NULL, p, sizeof *p, 1);
}

/* ---------------------------------------------------------------- the walk */

/* TorchScript CLIP keeps these as attributes; when they are plain ints
 * rather than tensors, they still become I64 scalars. */
static int is_clip_scalar(const char *name) {
    return !strcmp(name, "input_resolution") || !strcmp(name, "context_length") ||
           !strcmp(name, "vocab_size");
}

/* The attribute dict of a container: a dict itself, or a TorchScript
 * object's BUILD state. */
static const pk_node *attributes(const pk_node *x) {
    if (x->type == PK_DICT) return x;
    if (x->type == PK_OBJECT && x->n && x->items[0]->type == PK_DICT) return x->items[0];
    return NULL;
}

static int is_container(const pk_node *x) { return x->type == PK_DICT || x->type == PK_OBJECT; }

static cs_status walk(loader *L, pk_node *node, char *name, size_t name_len, size_t strip, int depth);

static cs_status visit_entry(loader *L, const pk_node *key, pk_node *value, char *name,
                             size_t name_len, size_t strip, int depth) {
    if (key->type != PK_STR) return CS_OK;
    if (value->type != PK_TENSOR && !is_container(value) && !(depth == 0 && value->type == PK_INT))
        return CS_OK;
    if (memchr(key->s, 0, key->len))
        return error_set(CS_ERR_FORMAT, "%s: a name contains a NUL byte", L->path);
    size_t cut = key->len > strip ? strip : 0, klen = key->len - cut;
    if (name_len + klen + 2 > MAX_NAME)
        return error_set(CS_ERR_LIMIT, "%s: a tensor name is longer than %d bytes", L->path, MAX_NAME);
    memcpy(name + name_len, key->s + cut, klen);
    name[name_len + klen] = 0;
    switch (value->type) {
    case PK_TENSOR: return add_tensor(L, name, value->tensor);
    case PK_INT: return is_clip_scalar(name) ? add_int_scalar(L, name, value->i) : CS_OK;
    default:
        name[name_len + klen] = '.';
        return walk(L, value, name, name_len + klen + 1, 0, depth + 1);
    }
}

/* Add every tensor reachable from `node` under name[0..name_len). A
 * container reached twice (shared, or a cycle) is walked once. */
static cs_status walk(loader *L, pk_node *node, char *name, size_t name_len, size_t strip, int depth) {
    if (depth > MAX_DEPTH)
        return error_set(CS_ERR_LIMIT, "%s: objects nested deeper than %d levels", L->path, MAX_DEPTH);
    const pk_node *attrs = attributes(node);
    if (node->visited || !attrs) return CS_OK;
    node->visited = 1;
    for (int i = 0; i + 1 < attrs->n; i += 2) {
        cs_status s = visit_entry(L, attrs->items[i], attrs->items[i + 1], name, name_len, strip, depth);
        if (s != CS_OK) return s;
    }
    return CS_OK;
}

/* Checkpoints wrap the state dict: {"state_dict": ...}, {"model": ...}. */
static pk_node *unwrap_checkpoint(pk_node *root) {
    static const char *keys[] = {"state_dict", "model_state_dict", "model", "module"};
    for (int level = 0; level < 4 && root->type == PK_DICT; level++) {
        pk_node *inner = NULL;
        for (size_t k = 0; k < sizeof keys / sizeof *keys && !inner; k++) {
            const pk_node *v = pk_dict_get(root, keys[k]);
            if (v && is_container(v)) inner = (pk_node *)v;
        }
        if (!inner) break;
        root = inner;
    }
    return root;
}

/* Data-parallel training saves every name with "module."; strip it when all
 * tensor names have it. */
static size_t common_module_prefix(const pk_node *attrs) {
    int any = 0;
    for (int i = 0; i + 1 < attrs->n; i += 2) {
        const pk_node *k = attrs->items[i], *v = attrs->items[i + 1];
        if (k->type != PK_STR || (v->type != PK_TENSOR && !is_container(v))) continue;
        if (k->len <= 7 || memcmp(k->s, "module.", 7) != 0) return 0;
        any = 1;
    }
    return any ? 7 : 0;
}

static cs_status load_object(loader *L, pk_node *root) {
    pk_node *sd = unwrap_checkpoint(root);
    const pk_node *attrs = attributes(sd);
    if (!attrs)
        return error_set(CS_ERR_FORMAT, "%s: the pickled object is a %s, not a state dict or a module",
                       L->path, sd->type == PK_OBJECT ? "module without attributes" :
                       sd->type == PK_TENSOR ? "single tensor" : "value of another kind");
    char name[MAX_NAME];
    name[0] = 0;
    cs_status s = walk(L, sd, name, 0, common_module_prefix(attrs), 0);
    if (s == CS_OK && L->out->n == 0)
        return error_set(CS_ERR_MISSING, "%s: the archive holds no tensors", L->path);
    return s == CS_OK ? tensors_check_unique(L->out) : s;
}

static cs_status load_pickle(loader *L, const cs_zip_entry *pkl) {
    const uint8_t *bytes;
    size_t len;
    void *owned;
    cs_status s = zip_read(L->zip, pkl, MAX_PICKLE_BYTES, &bytes, &len, &owned);
    if (s != CS_OK) return s;
    char where[MAX_NAME + 512];
    snprintf(where, sizeof where, "%s: %s", L->path, pkl->name);
    cs_pickle p;
    s = pickle_load(where, bytes, len, &p);
    if (s == CS_OK) {
        s = load_object(L, p.root);
        pickle_free(&p);
    }
    cs_free(owned);
    return s;
}

cs_status pytorch_parse_memory(const char *name, const uint8_t *buf, size_t len,
                                  cs_tensor_table *out) {
    cs_zip z;
    cs_status s = zip_open(&z, name, buf, len);
    if (s != CS_OK) return s;
    loader L = {.path = name, .zip = &z, .out = out};
    const cs_zip_entry *pkl = find_data_pkl(&z, L.prefix);
    if (!pkl) {
        s = error_set(CS_ERR_FORMAT, "%s: a zip archive without data.pkl, not a PyTorch file", name);
    } else if ((L.storages = mem_calloc((size_t)z.n, sizeof *L.storages)) == NULL) {
        s = CS_ERR_NOMEM;
    } else if ((s = check_byte_order(&L)) == CS_OK) {
        s = load_pickle(&L, pkl);
    }
    cs_free(L.storages);
    zip_close(&z);
    return s;
}

static cs_status map_file(const char *path, cs_tensor_table *out) {
    int fd;
    size_t size;
    cs_status s = file_open_input(path, &fd, &size);
    if (s != CS_OK) return s;
    if (size == 0) {
        close(fd);
        return error_set(CS_ERR_FORMAT, "%s: empty file, not a PyTorch zip archive", path);
    }
    void *map;
    s = file_map_input(path, fd, size, &map);
    if (s != CS_OK) return s;
    out->map = map;
    out->map_len = size;
    return CS_OK;
}

cs_status pytorch_open(const char *path, cs_tensor_table *out) {
    tensors_init(out, path);
    if (!out->path) return CS_ERR_NOMEM;
    cs_status s = map_file(path, out);
    if (s == CS_OK) s = pytorch_parse_memory(out->path, out->map, out->map_len, out);
    if (s != CS_OK) { /* leave an empty table, still to be freed by the caller */
        tensors_free(out);
        tensors_init(out, path);
    }
    return s;
}
