/* Model loading: open the weight file, map names to the OpenAI layout, infer
 * the configuration from names and shapes (as openai/CLIP's build_model
 * does), and bind every weight with its shape checked. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/fileio.h"
#include "model.h"
#include "transformer.h"

#define CLIP_HEAD_DIM 64

/* The vision tower's in-place weights are read by every run: start reading
 * them from the file now (asynchronous; a cold page cache then costs one
 * bulk read instead of a read per fault), without mapping them yet. */
static void read_ahead(const cs_tensor_table *t, const float *w, const char *name) {
    const cs_tensor *x = cs_tensors_find(t, name);
    const uint8_t *map = t->map, *p = (const uint8_t *)w;
    if (!x || x->data != w || !map || p < map || p + x->nbytes > map + t->map_len) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo = (uintptr_t)p & ~(page - 1);
    madvise((void *)lo, (uintptr_t)p + x->nbytes - lo, MADV_WILLNEED);
}

cs_status model_weight(cs_model *m, const char *name, int ndim, const int64_t *dims,
                       const float **out) {
    cs_status s = cs_tensors_f32(&m->table, name, ndim, dims, out);
    if (s == CS_OK && m->read_ahead) read_ahead(&m->table, *out, name);
    return s;
}

static cs_status weight_1d(cs_model *m, const char *name, int64_t a, const float **out) {
    return model_weight(m, name, 1, &a, out);
}

static cs_status weight_2d(cs_model *m, const char *name, int64_t a, int64_t b, const float **out) {
    int64_t d[2] = {a, b};
    return model_weight(m, name, 2, d, out);
}

static cs_status layer_norm(cs_model *m, const char *prefix, int width, cs_layer_norm *ln) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    cs_status s = weight_1d(m, name, width, &ln->w);
    snprintf(name, sizeof name, "%s.bias", prefix);
    return s != CS_OK ? s : weight_1d(m, name, width, &ln->b);
}

cs_status model_load_transformer(cs_model *m, const char *prefix, int width, int layers,
                                 int heads, cs_transformer *tr) {
    tr->width = width;
    tr->layers = layers;
    tr->heads = heads;
    tr->blocks = cs_calloc((size_t)(layers ? layers : 1), sizeof(cs_block));
    if (!tr->blocks) return CS_ERR_NOMEM;
    cs_status s = cs_tensors_own(&m->table, tr->blocks);
    char p[256], name[300];
    int W = width;
    for (int l = 0; s == CS_OK && l < layers; l++) {
        cs_block *b = &tr->blocks[l];
        snprintf(p, sizeof p, "%s%d.", prefix, l);
#define W2(field, suffix, r, c) \
        if (s == CS_OK) { snprintf(name, sizeof name, "%s%s", p, suffix); s = weight_2d(m, name, r, c, &b->field); }
#define W1(field, suffix, r) \
        if (s == CS_OK) { snprintf(name, sizeof name, "%s%s", p, suffix); s = weight_1d(m, name, r, &b->field); }
        W2(qkv_w, "attn.in_proj_weight", 3 * W, W)
        W1(qkv_b, "attn.in_proj_bias", 3 * W)
        W2(out_w, "attn.out_proj.weight", W, W)
        W1(out_b, "attn.out_proj.bias", W)
        W2(fc_w, "mlp.c_fc.weight", 4 * W, W)
        W1(fc_b, "mlp.c_fc.bias", 4 * W)
        W2(proj_w, "mlp.c_proj.weight", W, 4 * W)
        W1(proj_b, "mlp.c_proj.bias", W)
#undef W1
#undef W2
        snprintf(name, sizeof name, "%sln_1", p);
        if (s == CS_OK) s = layer_norm(m, name, W, &b->ln_1);
        snprintf(name, sizeof name, "%sln_2", p);
        if (s == CS_OK) s = layer_norm(m, name, W, &b->ln_2);
    }
    return s;
}

#define MAX_BLOCKS 1024

/* The number of blocks: one more than the largest index i of any name
 * "<prefix><i>.*", so that blocks 0..L-1 must all be complete (a missing
 * tensor in any of them is then reported by name) rather than the count
 * stopping quietly at the first gap. -1 past MAX_BLOCKS. */
static int count_blocks(const cs_tensor_table *t, const char *prefix) {
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

static cs_status check_block_count(const cs_model *m, const char *prefix, int n) {
    if (n < 0)
        return cs_fail(CS_ERR_LIMIT, "%s: a block index under '%s' is over the limit of %d blocks",
                       m->table.path, prefix, MAX_BLOCKS);
    if (n == 0) return cs_fail(CS_ERR_MISSING, "%s: no blocks found under '%s'", m->table.path, prefix);
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

static cs_status check_all_used(const cs_model *m) {
    int unused = 0;
    const char *first = NULL;
    for (int i = 0; i < m->table.n; i++) {
        const cs_tensor *x = &m->table.items[i];
        if (x->used || is_ignorable(x)) continue;
        if (!unused++) first = x->name;
    }
    if (!unused) return CS_OK;
    return cs_fail(CS_ERR_FORMAT, "%s: %d tensor%s not used by the model, the first '%s' "
                   "(renamed, misplaced or from another architecture)", m->table.path, unused,
                   unused == 1 ? " is" : "s are", first);
}

static cs_status require(const cs_model *m, const char *name, int ndim, const cs_tensor **out) {
    *out = cs_tensors_find(&m->table, name);
    if (!*out)
        return cs_fail(CS_ERR_MISSING, "%s: required tensor '%s' is missing", m->table.path, name);
    if ((*out)->ndim != ndim)
        return cs_fail(CS_ERR_SHAPE, "%s: tensor '%s' has %d dimensions, expected %d",
                       m->table.path, name, (*out)->ndim, ndim);
    return CS_OK;
}

static cs_status infer_text_config(cs_model *m) {
    cs_config *c = &m->cfg;
    const cs_tensor *tp, *pe, *te, *lf;
    cs_status s = require(m, "text_projection", 2, &tp);
    if (s == CS_OK) s = require(m, "positional_embedding", 2, &pe);
    if (s == CS_OK) s = require(m, "token_embedding.weight", 2, &te);
    if (s == CS_OK) s = require(m, "ln_final.weight", 1, &lf);
    if (s != CS_OK) return s;
    c->embed_dim = (int)tp->shape[1];
    c->context_length = (int)pe->shape[0];
    c->vocab_size = (int)te->shape[0];
    c->text_width = (int)lf->shape[0];
    c->text_heads = c->text_width / CLIP_HEAD_DIM > 0 ? c->text_width / CLIP_HEAD_DIM : 1;
    c->text_layers = count_blocks(&m->table, "transformer.resblocks.");
    if (c->embed_dim < 1 || c->context_length < 1 || c->vocab_size < 1 || c->text_width < 1)
        return cs_fail(CS_ERR_SHAPE, "%s: the text tensors have an empty dimension (embedding %d, "
                       "context %d, vocabulary %d, width %d)", m->table.path, c->embed_dim,
                       c->context_length, c->vocab_size, c->text_width);
    return check_block_count(m, "transformer.resblocks.", c->text_layers);
}

static cs_status infer_vit_config(cs_model *m) {
    cs_config *c = &m->cfg;
    const cs_tensor *conv, *pe;
    cs_status s = require(m, "visual.conv1.weight", 4, &conv);
    if (s == CS_OK) s = require(m, "visual.positional_embedding", 2, &pe);
    if (s != CS_OK) return s;
    c->vision_kind = CS_VISION_VIT;
    c->vision_width = (int)conv->shape[0];
    c->patch_size = (int)conv->shape[3];
    c->vision_layers = count_blocks(&m->table, "visual.transformer.resblocks.");
    if ((s = check_block_count(m, "visual.transformer.resblocks.", c->vision_layers)) != CS_OK) return s;
    c->vision_heads = c->vision_width / CLIP_HEAD_DIM > 0 ? c->vision_width / CLIP_HEAD_DIM : 1;
    c->grid = (int)lround(sqrt((double)(pe->shape[0] - 1)));
    int64_t resolution = (int64_t)c->patch_size * c->grid;
    c->image_resolution = resolution <= 8192 ? (int)resolution : 0;
    if (conv->shape[1] != 3 || conv->shape[2] != conv->shape[3] || c->patch_size <= 0 ||
        c->vision_width < 1 || pe->shape[0] < 2 || pe->shape[1] != c->vision_width ||
        (int64_t)c->grid * c->grid + 1 != pe->shape[0] || c->image_resolution == 0 ||
        c->vision_layers == 0)
        return cs_fail(CS_ERR_SHAPE, "%s: the ViT tensors do not describe a CLIP ViT "
                       "(conv1 [W, 3, P, P], positional_embedding [1 + G*G, W], blocks)",
                       m->table.path);
    return CS_OK;
}

static cs_status load_vit(cs_model *m) {
    const cs_config *c = &m->cfg;
    int W = c->vision_width, P = c->patch_size, T = c->grid * c->grid + 1;
    int64_t conv_dims[4] = {W, 3, P, P};
    cs_status s = model_weight(m, "visual.conv1.weight", 4, conv_dims, &m->vit.conv1_w);
    if (s == CS_OK) s = weight_1d(m, "visual.class_embedding", W, &m->vit.class_emb);
    if (s == CS_OK) s = weight_2d(m, "visual.positional_embedding", T, W, &m->vit.pos_emb);
    if (s == CS_OK) s = layer_norm(m, "visual.ln_pre", W, &m->vit.ln_pre);
    if (s == CS_OK) s = layer_norm(m, "visual.ln_post", W, &m->vit.ln_post);
    if (s == CS_OK) s = weight_2d(m, "visual.proj", W, c->embed_dim, &m->vit.proj);
    if (s == CS_OK)
        s = model_load_transformer(m, "visual.transformer.resblocks.", W, c->vision_layers,
                                   c->vision_heads, &m->vit.tr);
    return s;
}

static cs_status load_text(cs_model *m) {
    const cs_config *c = &m->cfg;
    int W = c->text_width;
    cs_status s = weight_2d(m, "token_embedding.weight", c->vocab_size, W, &m->text.tok_emb);
    if (s == CS_OK) s = weight_2d(m, "positional_embedding", c->context_length, W, &m->text.pos_emb);
    if (s == CS_OK) s = layer_norm(m, "ln_final", W, &m->text.ln_final);
    if (s == CS_OK) s = weight_2d(m, "text_projection", W, c->embed_dim, &m->text.proj);
    if (s == CS_OK)
        s = model_load_transformer(m, "transformer.resblocks.", W, c->text_layers, c->text_heads,
                                   &m->text.tr);
    const cs_tensor *ls = cs_tensors_find(&m->table, "logit_scale");
    m->logit_scale = 100.0f;
    if (s == CS_OK && ls && cs_tensor_numel(ls) == 1) {
        float v;
        if (cs_tensor_to_f32(ls, &v) == CS_OK && isfinite(expf(v))) m->logit_scale = expf(v);
    }
    return s;
}

/* Head counts from a Hugging Face config.json, when the folder has one: the
 * head dimension of such models need not be 64. */
static cs_status apply_hf_config(cs_model *m, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    struct stat st;
    if (stat(path, &st) != 0) return CS_OK;
    char *text;
    size_t len;
    cs_status s = cs_read_file(path, 1 << 20, &text, &len);
    if (s != CS_OK) return s;
    cJSON *root = cJSON_Parse(text);
    cs_free(text);
    if (!root) return cs_fail(CS_ERR_FORMAT, "%s: not valid JSON", path);
    static const char *sections[2] = {"vision_config", "text_config"};
    for (int i = 0; i < 2 && s == CS_OK; i++) {
        cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, sections[i]);
        cJSON *heads = cJSON_GetObjectItemCaseSensitive(sec, "num_attention_heads");
        cJSON *act = cJSON_GetObjectItemCaseSensitive(sec, "hidden_act");
        if (cJSON_IsString(act) && strcmp(act->valuestring, "quick_gelu") != 0)
            s = cs_fail(CS_ERR_UNSUPPORTED, "%s: %s.hidden_act '%s' is not supported (CLIP uses quick_gelu)",
                        path, sections[i], act->valuestring);
        if (s != CS_OK || !heads) continue;
        /* valueint saturates: test the double itself. */
        if (!cJSON_IsNumber(heads) || !(heads->valuedouble >= 1 && heads->valuedouble <= 4096) ||
            heads->valuedouble != (double)(int)heads->valuedouble) {
            char *text = cJSON_PrintUnformatted(heads);
            s = cs_fail(CS_ERR_FORMAT, "%s: %s.num_attention_heads %s is not an integer in 1..4096",
                        path, sections[i], text ? text : "?");
            free(text);
        } else if (i == 0) {
            m->cfg.vision_heads = (int)heads->valuedouble;
        } else {
            m->cfg.text_heads = (int)heads->valuedouble;
        }
    }
    cJSON_Delete(root);
    return s;
}

static cs_status check_heads(const cs_model *m) {
    const cs_config *c = &m->cfg;
    if (c->text_heads <= 0 || c->text_width % c->text_heads)
        return cs_fail(CS_ERR_SHAPE, "%s: text width %d is not divisible by %d heads",
                       m->table.path, c->text_width, c->text_heads);
    if (c->vision_kind == CS_VISION_VIT && (c->vision_heads <= 0 || c->vision_width % c->vision_heads))
        return cs_fail(CS_ERR_SHAPE, "%s: vision width %d is not divisible by %d heads",
                       m->table.path, c->vision_width, c->vision_heads);
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

static cs_status open_table(const char *path, cs_tensor_table *t, const char **weights_dir) {
    struct stat st;
    memset(t, 0, sizeof *t); /* the readers init it; freeing a zeroed table is a no-op */
    if (stat(path, &st) != 0) return cs_fail(CS_ERR_MISSING, "%s: model file not found", path);
    static _Thread_local char file[4096];
    *weights_dir = NULL;
    if (S_ISDIR(st.st_mode)) {
        snprintf(file, sizeof file, "%s/model.safetensors", path);
        *weights_dir = path;
        return cs_safetensors_open(file, t);
    }
    int fd;
    size_t size;
    cs_status s = cs_open_input(path, &fd, &size);
    if (s != CS_OK) return s;
    unsigned char magic[8] = {0};
    ssize_t got = read(fd, magic, sizeof magic);
    close(fd);
    if (size == 0) return cs_fail(CS_ERR_FORMAT, "%s: empty file, not a model", path);
    if (looks_like_pytorch(path, magic, got > 0 ? (size_t)got : 0)) return cs_pytorch_open(path, t);
    return cs_safetensors_open(path, t);
}

cs_status model_from_table(cs_tensor_table *table, const char *hf_dir, cs_model **out) {
    *out = NULL;
    cs_model *m = cs_calloc(1, sizeof *m);
    if (!m) {
        cs_tensors_free(table);
        return CS_ERR_NOMEM;
    }
    m->table = *table;
    memset(table, 0, sizeof *table);
    m->surgery_blocks = 6;
    cs_status s = model_canonicalize_names(&m->table);
    if (s == CS_OK) s = cs_tensors_check_unique(&m->table); /* e.g. both an HF and an OpenAI name */
    if (s == CS_OK) s = infer_text_config(m);
    if (s == CS_OK) {
        if (cs_tensors_find(&m->table, "visual.proj")) {
            s = infer_vit_config(m);
        } else if (cs_tensors_find(&m->table, "visual.attnpool.c_proj.weight")) {
            m->cfg.vision_kind = CS_VISION_RESNET;
        } else {
            s = cs_fail(CS_ERR_MISSING, "%s: no vision tower found (neither 'visual.proj' of a ViT "
                        "nor 'visual.attnpool' of a ResNet)", m->table.path);
        }
    }
    if (s == CS_OK && hf_dir) s = apply_hf_config(m, hf_dir);
    if (s == CS_OK) s = check_heads(m);
    if (s == CS_OK) s = load_text(m);
    m->read_ahead = 1;
    if (s == CS_OK) s = m->cfg.vision_kind == CS_VISION_VIT ? load_vit(m) : resnet_load(m);
    m->read_ahead = 0;
    if (s == CS_OK) s = check_all_used(m);
    if (s != CS_OK) {
        cs_model_free(m);
        return s;
    }
    *out = m;
    return CS_OK;
}

cs_status cs_model_load(const char *path, cs_model **out) {
    *out = NULL;
    cs_tensor_table table;
    const char *dir = NULL;
    cs_status s = open_table(path, &table, &dir);
    if (s != CS_OK) {
        cs_tensors_free(&table);
        return s;
    }
    return model_from_table(&table, dir, out);
}

cs_status cs_model_set_precision(cs_model *m, cs_precision p) {
    if (p == m->precision) return CS_OK;
    if (p != CS_PRECISION_FP32 && p != CS_PRECISION_BF16)
        return cs_fail(CS_ERR_ARG, "unknown precision %d", (int)p);
    transformer_free_bf16(&m->vit.tr);
    transformer_free_bf16(&m->text.tr);
    m->precision = CS_PRECISION_FP32;
    if (p == CS_PRECISION_FP32) return CS_OK;
    cs_status s = transformer_pack_bf16(&m->text.tr);
    if (s == CS_OK && m->cfg.vision_kind == CS_VISION_VIT) s = transformer_pack_bf16(&m->vit.tr);
    if (s != CS_OK) {
        transformer_free_bf16(&m->text.tr);
        return s;
    }
    m->precision = CS_PRECISION_BF16;
    return CS_OK;
}

void cs_model_free(cs_model *m) {
    if (!m) return;
    transformer_free_bf16(&m->vit.tr);
    transformer_free_bf16(&m->text.tr);
    resnet_free(m->resnet);
    model_source_free(m->source);
    ws_free(&m->ws);
    cs_tensors_free(&m->table);
    cs_free(m);
}

const cs_config *cs_model_config(const cs_model *m) { return &m->cfg; }

cs_status cs_model_set_surgery(cs_model *m, int vit_blocks, int resnet_normalize_v) {
    if (vit_blocks < 0)
        return cs_fail(CS_ERR_ARG, "the number of surgery blocks must be 0 or more (got %d)", vit_blocks);
    m->surgery_blocks = vit_blocks;
    m->surgery_normalize_v = resnet_normalize_v != 0;
    return CS_OK;
}

int cs_model_num_tokens(const cs_model *m, int resolution) {
    int side = m->cfg.vision_kind == CS_VISION_VIT ? resolution / m->cfg.patch_size : resolution / 32;
    return 1 + side * side;
}

cs_status cs_encode_images(cs_model *m, const float *pixels, int batch, int resolution,
                           cs_vision_mode mode, float *tokens) {
    int unit = m->cfg.vision_kind == CS_VISION_VIT ? m->cfg.patch_size : 32;
    if (resolution <= 0 || resolution % unit || resolution > 8192)
        return cs_fail(CS_ERR_ARG, "input resolution %d is not a positive multiple of %d (at most 8192)",
                       resolution, unit);
    if ((int)mode < 0 || (int)mode > CS_VISION_GEM) return cs_fail(CS_ERR_ARG, "unknown vision mode %d", (int)mode);
    /* The later methods' modes share their values with cs_method's. */
    if (m->cfg.vision_kind != CS_VISION_VIT && mode > CS_VISION_SURGERY)
        return cs_fail(CS_ERR_UNSUPPORTED, "method %s needs a ViT model (this one is a ResNet)",
                       cs_method_name((cs_method)mode));
    if (batch < 1 || (int64_t)batch * cs_model_num_tokens(m, resolution) > (1 << 24))
        return cs_fail(CS_ERR_ARG, "batch of %d images at %d is out of range", batch, resolution);
    if (m->cfg.vision_kind == CS_VISION_VIT) return vit_encode(m, pixels, batch, resolution, mode, tokens);
    /* ResNets run image by image: their convolutions are large GEMMs already. */
    size_t px = (size_t)3 * resolution * resolution;
    size_t out = (size_t)cs_model_num_tokens(m, resolution) * m->cfg.embed_dim;
    cs_status s = CS_OK;
    for (int i = 0; s == CS_OK && i < batch; i++)
        s = resnet_encode(m, pixels + i * px, resolution, mode, tokens + i * out);
    return s;
}

cs_status cs_encode_image(cs_model *m, const float *pixels, int resolution, cs_vision_mode mode,
                          float *tokens) {
    return cs_encode_images(m, pixels, 1, resolution, mode, tokens);
}

static cs_status check_text_ids(const cs_model *m, const int32_t *ids, int n, int context) {
    if (n < 0 || context <= 0 || context > m->cfg.context_length)
        return cs_fail(CS_ERR_ARG, "text context %d is outside 1..%d", context, m->cfg.context_length);
    for (int64_t i = 0; i < (int64_t)n * context; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return cs_fail(CS_ERR_ARG, "token id %d at text %lld is outside the vocabulary (0..%d)",
                           ids[i], (long long)(i / context), m->cfg.vocab_size - 1);
    return CS_OK;
}

cs_status cs_encode_text(cs_model *m, const int32_t *ids, int n, int context, float *out) {
    cs_status s = check_text_ids(m, ids, n, context);
    return s != CS_OK ? s : text_encode(m, ids, n, context, 0, out);
}

cs_status cs_text_token_features(cs_model *m, const int32_t *ids, int context, float *out,
                                 int *n_out) {
    *n_out = 0;
    cs_status s = check_text_ids(m, ids, 1, context);
    if (s != CS_OK) return s;
    s = text_encode(m, ids, 1, context, 1, out);
    if (s == CS_OK) *n_out = text_end_position(ids, context) + 1;
    return s;
}

/* OpenAI names only: the Hugging Face originals (aliased at load), buffers
 * and the non-float extras of TorchScript files are left out. */
static int is_openai_weight(const cs_tensor *x) {
    static const char *foreign[] = {"vision_model.", "text_model.", "visual_projection.",
                                    "text_projection.weight"};
    for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++)
        if (!strncmp(x->name, foreign[i], strlen(foreign[i]))) return 0;
    if (strstr(x->name, "num_batches_tracked") || strstr(x->name, "position_ids")) return 0;
    return x->dtype == CS_DT_F32 || x->dtype == CS_DT_F16 || x->dtype == CS_DT_BF16 ||
           x->dtype == CS_DT_F64;
}

cs_status cs_model_save(const cs_model *m, const char *path, cs_save_dtype dtype) {
    static const cs_dtype k_file[] = {CS_DT_F32, CS_DT_F16, CS_DT_BF16};
    if ((unsigned)dtype >= sizeof k_file / sizeof *k_file)
        return cs_fail(CS_ERR_ARG, "%s: unknown save dtype %d", path, (int)dtype);
    const cs_tensor **list = cs_alloc((size_t)m->table.n + 1, sizeof *list);
    if (!list) return CS_ERR_NOMEM;
    int n = 0;
    for (int i = 0; i < m->table.n; i++)
        if (is_openai_weight(&m->table.items[i])) list[n++] = &m->table.items[i];
    cs_status s = cs_safetensors_write(path, list, n, k_file[dtype]);
    cs_free(list);
    return s;
}
