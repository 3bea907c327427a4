/* Weight lookup for every tower: named fp32 views with their shapes checked,
 * layer norms and transformer blocks bound by name, block counting, the
 * check that every tensor of a file was used, and opening a weight file of
 * either format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/fileio.h"
#include "model.h"
#include "transformer.h"

static cs_status tower_add(model_tower *tw, const cs_tensor *x, const float **out) {
    if (tw->n == tw->cap) {
        int cap = tw->cap ? 2 * tw->cap : 64;
        model_ref *refs = mem_alloc((size_t)cap, sizeof *refs);
        if (!refs) return CS_ERR_NOMEM;
        if (tw->n) memcpy(refs, tw->refs, (size_t)tw->n * sizeof *refs);
        cs_free(tw->refs);
        tw->refs = refs;
        tw->cap = cap;
    }
    tw->refs[tw->n++] = (model_ref){x, out, 0};
    return CS_OK;
}

void model_tower_free(model_tower *tw) {
    cs_free(tw->refs);
    memset(tw, 0, sizeof *tw);
}

cs_status model_weight(cs_model *m, const char *name, int ndim, const int64_t *dims,
                       const float **out) {
    const cs_tensor *x;
    *out = NULL;
    cs_status s = tensors_bind(&m->table, name, ndim, dims, &x);
    if (s != CS_OK) return s;
    if (m->binding) return tower_add(m->binding, x, out);
    s = tensor_check_finite(&m->table, x);
    return s == CS_OK ? tensor_f32_view(&m->table, x, out) : s;
}

cs_status model_tower_prepare(cs_model *m, model_tower *tw, cs_transformer *tr, cs_precision p) {
    if (tw->ready) return CS_OK;
    cs_status s = CS_OK;
    /* Weights to be packed are checked by transformer_pack, each just
     * before it is packed: checking them all first would bring every page
     * of an F32 file in at once, and the peak RSS with it. */
    for (int i = 0; !tw->checks_output && s == CS_OK && i < tw->n; i++) {
        model_ref *r = &tw->refs[i];
        if (!(r->linear && p != CS_PRECISION_FP32)) s = tensor_check_finite(&m->table, r->x);
    }
    for (int i = 0; s == CS_OK && i < tw->n; i++) {
        model_ref *r = &tw->refs[i];
        if (!*r->f32 && !(r->linear && p != CS_PRECISION_FP32)) s = tensor_f32_view(&m->table, r->x, r->f32);
    }
    if (s == CS_OK && tr && p != CS_PRECISION_FP32) s = transformer_pack(tr, p, &m->table, !tw->checks_output);
    tw->ready = s == CS_OK;
    return s;
}

/* The output alone is read on every pass (microseconds); the weights, a
 * read of the whole tower, only once the output shows that something went
 * wrong. */
cs_status model_tower_check_output(const cs_model *m, const model_tower *tw, const float *out, size_t n) {
    if (!tw->checks_output || !tensor_count_non_finite((const uint8_t *)out, CS_DT_F32, (int64_t)n)) return CS_OK;
    for (int i = 0; i < tw->n; i++) {
        cs_status s = tensor_check_finite(&m->table, tw->refs[i].x);
        if (s != CS_OK) return s;
    }
    return error_set(CS_ERR_UNSUPPORTED, "%s: the image tower's output is not finite, though every weight "
                     "is: their values overflow fp32", m->table.path);
}

cs_status model_weight_1d(cs_model *m, const char *name, int64_t a, const float **out) {
    return model_weight(m, name, 1, &a, out);
}

cs_status model_weight_2d(cs_model *m, const char *name, int64_t a, int64_t b, const float **out) {
    int64_t d[2] = {a, b};
    return model_weight(m, name, 2, d, out);
}

cs_status model_layer_norm(cs_model *m, const char *prefix, int width, cs_layer_norm *ln) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    cs_status s = model_weight_1d(m, name, width, &ln->w);
    snprintf(name, sizeof name, "%s.bias", prefix);
    return s != CS_OK ? s : model_weight_1d(m, name, width, &ln->b);
}

cs_status model_load_transformer(cs_model *m, const char *prefix, int width, int layers,
                                 int heads, cs_transformer *tr) {
    tr->width = width;
    tr->layers = layers;
    tr->heads = heads;
    tr->blocks = mem_calloc((size_t)(layers ? layers : 1), sizeof(cs_block));
    if (!tr->blocks) return CS_ERR_NOMEM;
    cs_status s = tensors_own(&m->table, tr->blocks);
    char p[256], name[300];
    int W = width;
    for (int l = 0; s == CS_OK && l < layers; l++) {
        cs_block *b = &tr->blocks[l];
        snprintf(p, sizeof p, "%s%d.", prefix, l);
#define W2(field, suffix, r, c) \
        if (s == CS_OK) { snprintf(name, sizeof name, "%s%s", p, suffix); s = model_weight_2d(m, name, r, c, &b->field); }
#define W1(field, suffix, r) \
        if (s == CS_OK) { snprintf(name, sizeof name, "%s%s", p, suffix); s = model_weight_1d(m, name, r, &b->field); }
/* A linear weight: bound like the others, marked for packing. */
#define WL(field, suffix, r, c, j) \
        W2(field, suffix, r, c) \
        if (s == CS_OK) { b->linear[j] = m->binding->refs[m->binding->n - 1].x; m->binding->refs[m->binding->n - 1].linear = 1; }
        WL(qkv_w, "attn.in_proj_weight", 3 * W, W, 0)
        W1(qkv_b, "attn.in_proj_bias", 3 * W)
        WL(out_w, "attn.out_proj.weight", W, W, 1)
        W1(out_b, "attn.out_proj.bias", W)
        WL(fc_w, "mlp.c_fc.weight", 4 * W, W, 2)
        W1(fc_b, "mlp.c_fc.bias", 4 * W)
        WL(proj_w, "mlp.c_proj.weight", W, 4 * W, 3)
        W1(proj_b, "mlp.c_proj.bias", W)
#undef WL
#undef W1
#undef W2
        snprintf(name, sizeof name, "%sln_1", p);
        if (s == CS_OK) s = model_layer_norm(m, name, W, &b->ln_1);
        snprintf(name, sizeof name, "%sln_2", p);
        if (s == CS_OK) s = model_layer_norm(m, name, W, &b->ln_2);
    }
    return s;
}

/* The number of blocks: one more than the largest index i of any name
 * "<prefix><i>.*", so that blocks 0..L-1 must all be complete (a missing
 * tensor in any of them is then reported by name) rather than the count
 * stopping quietly at the first gap. -1 past MAX_BLOCKS. */
int model_count_blocks(const cs_tensor_table *t, const char *prefix) {
    size_t plen = strlen(prefix);
    long n = 0;
    for (int i = 0; i < t->n; i++) {
        const char *name = t->items[i].name;
        if (strncmp(name, prefix, plen) != 0 || name[plen] < '0' || name[plen] > '9') continue;
        char *end;
        long idx = strtol(name + plen, &end, 10);
        if (*end != '.') continue;
        if (idx >= MAX_BLOCKS) return -1;
        if (idx + 1 > n) n = idx + 1;
    }
    return (int)n;
}

cs_status model_check_block_count(const cs_model *m, const char *prefix, int n) {
    if (n < 0)
        return error_set(CS_ERR_LIMIT, "%s: a block index under '%s' is over the limit of %d blocks",
                       m->table.path, prefix, MAX_BLOCKS);
    if (n == 0) return error_set(CS_ERR_MISSING, "%s: no blocks found under '%s'", m->table.path, prefix);
    return CS_OK;
}

/* Every tensor the file holds must have been bound: a leftover is a renamed,
 * misplaced or foreign tensor, and a model that silently ignores it would
 * run with part of its weights. Buffers that CLIP's own loaders skip are
 * allowed. */
static int is_ignorable(const cs_tensor *x) {
    static const char *suffixes[] = {"num_batches_tracked", "position_ids", "attn_mask"};
    static const char *names[] = {"input_resolution", "context_length", "vocab_size", "logit_scale"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(x->name, names[i])) return 1;
    size_t n = strlen(x->name);
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && !strcmp(x->name + n - k, suffixes[i])) return 1;
    }
    return 0;
}

cs_status model_check_all_used(const cs_model *m) {
    int unused = 0;
    const char *first = NULL;
    for (int i = 0; i < m->table.n; i++) {
        const cs_tensor *x = &m->table.items[i];
        if (x->used || is_ignorable(x)) continue;
        if (!unused++) first = x->name;
    }
    if (!unused) return CS_OK;
    return error_set(CS_ERR_FORMAT, "%s: %d tensor%s not used by the model, the first '%s' "
                   "(renamed, misplaced or from another architecture)", m->table.path, unused,
                   unused == 1 ? " is" : "s are", first);
}

cs_status model_require(const cs_model *m, const char *name, int ndim, const cs_tensor **out) {
    *out = tensors_find(&m->table, name);
    if (!*out)
        return error_set(CS_ERR_MISSING, "%s: required tensor '%s' is missing", m->table.path, name);
    if ((*out)->ndim != ndim)
        return error_set(CS_ERR_SHAPE, "%s: tensor '%s' has %d dimensions, expected %d",
                       m->table.path, name, (*out)->ndim, ndim);
    return CS_OK;
}

/* A file's kind by its first bytes (a zip is a PyTorch archive) or its
 * extension, so that an empty, truncated or mislabelled .pt is reported as
 * a PyTorch file, not as a broken safetensors header. */
static int looks_like_pytorch(const char *path, const unsigned char *magic, size_t got) {
    if (got >= 4 && memcmp(magic, "PK\x03\x04", 4) == 0) return 1;
    const char *ext = strrchr(path, '.');
    return ext && (!strcmp(ext, ".pt") || !strcmp(ext, ".pth") || !strcmp(ext, ".bin") ||
                   !strcmp(ext, ".zip"));
}

cs_status model_open_table(const char *path, cs_tensor_table *t, const char **weights_dir) {
    struct stat st;
    memset(t, 0, sizeof *t); /* the readers init it; freeing a zeroed table is a no-op */
    if (stat(path, &st) != 0) return error_set(CS_ERR_MISSING, "%s: model file not found", path);
    static _Thread_local char file[4096];
    *weights_dir = NULL;
    if (S_ISDIR(st.st_mode)) {
        snprintf(file, sizeof file, "%s/model.safetensors", path);
        *weights_dir = path;
        return safetensors_open(file, t);
    }
    int fd;
    size_t size;
    cs_status s = file_open_input(path, &fd, &size);
    if (s != CS_OK) return s;
    unsigned char magic[8] = {0};
    ssize_t got = read(fd, magic, sizeof magic);
    close(fd);
    if (size == 0) return error_set(CS_ERR_FORMAT, "%s: empty file, not a model", path);
    if (looks_like_pytorch(path, magic, got > 0 ? (size_t)got : 0)) return pytorch_open(path, t);
    return safetensors_open(path, t);
}

