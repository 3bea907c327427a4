/* SAM loading: the configuration inferred from tensor names and shapes
 * alone (Meta's build_sam.py fixes the rest), then every weight bound by its
 * state-dict name with its shape checked. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "sam.h"

#define ENC "image_encoder."
#define PROMPT "prompt_encoder."
#define DEC "mask_decoder."

/* A loader's state: the model and the first failure (later binds are skipped). */
typedef struct binder {
    cs_sam *m;
    cs_status s;
} binder;

static const float *bind(binder *b, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2,
                         int64_t d3) {
    const float *p = NULL;
    int64_t dims[4] = {d0, d1, d2, d3};
    if (b->s == CS_OK) b->s = tensors_f32(&b->m->table, name, ndim, dims, &p);
    return p;
}

static const float *bindf(binder *b, int ndim, int64_t d0, int64_t d1, const char *fmt, int i) {
    char name[256];
    snprintf(name, sizeof name, fmt, i);
    return bind(b, name, ndim, d0, d1, 0, 0);
}

static void bind_linear(binder *b, const char *prefix, int out, int in, int bias, sam_linear *l) {
    char name[256];
    l->out = out;
    l->in = in;
    snprintf(name, sizeof name, "%s.weight", prefix);
    l->w = bind(b, name, 2, out, in, 0, 0);
    l->b = NULL;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        l->b = bind(b, name, 1, out, 0, 0, 0);
    }
}

static void bind_norm(binder *b, const char *prefix, int dim, cs_layer_norm *ln) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    ln->w = bind(b, name, 1, dim, 0, 0, 0);
    snprintf(name, sizeof name, "%s.bias", prefix);
    ln->b = bind(b, name, 1, dim, 0, 0, 0);
}

static void bind_attn(binder *b, const char *prefix, int E, int inner, sam_attn *a) {
    char name[256];
    snprintf(name, sizeof name, "%s.q_proj", prefix);
    bind_linear(b, name, inner, E, 1, &a->q);
    snprintf(name, sizeof name, "%s.k_proj", prefix);
    bind_linear(b, name, inner, E, 1, &a->k);
    snprintf(name, sizeof name, "%s.v_proj", prefix);
    bind_linear(b, name, inner, E, 1, &a->v);
    snprintf(name, sizeof name, "%s.out_proj", prefix);
    bind_linear(b, name, E, inner, 1, &a->out);
}

/* layers.0 .. layers.{n-1}: in -> hidden ... -> out, sizes read from the file. */
static void bind_mlp(binder *b, const char *prefix, int in, int out, int n, sam_mlp *mlp) {
    char name[256];
    mlp->n = n;
    int dim = in;
    for (int i = 0; i < n && b->s == CS_OK; i++) {
        snprintf(name, sizeof name, "%s.layers.%d.weight", prefix, i);
        const cs_tensor *t = tensors_find(&b->m->table, name);
        int next = i == n - 1 ? out : (t && t->ndim == 2 ? (int)t->shape[0] : -1);
        snprintf(name, sizeof name, "%s.layers.%d", prefix, i);
        bind_linear(b, name, next, dim, 1, &mlp->layer[i]);
        dim = next;
    }
}

/* Consecutive prefix0.. prefix{n-1} with `suffix`. */
static int count_items(const cs_tensor_table *t, const char *prefix, const char *suffix) {
    char name[256];
    int n = 0;
    for (;; n++) {
        snprintf(name, sizeof name, "%s%d%s", prefix, n, suffix);
        if (!tensors_find(t, name)) return n;
    }
}

static const cs_tensor *need(const cs_sam *m, const char *name, int ndim, cs_status *s) {
    if (*s != CS_OK) return NULL;
    const cs_tensor *t = tensors_find(&m->table, name);
    if (!t) {
        *s = error_set(CS_ERR_MISSING, "%s: not a SAM checkpoint (no tensor '%s')", m->table.path, name);
        return NULL;
    }
    if (t->ndim != ndim) {
        *s = error_set(CS_ERR_SHAPE, "%s: tensor '%s' has %d dimensions, expected %d", m->table.path,
                     name, t->ndim, ndim);
        return NULL;
    }
    return t;
}

/* "decoder_num_heads" of the safetensors metadata's "config" JSON (what
 * our golden files and exporters write), else 0. */
static int metadata_decoder_heads(const cs_tensor_table *t) {
    if (!t->metadata) return 0;
    cJSON *meta = cJSON_Parse(t->metadata);
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(meta, "config");
    cJSON *parsed = cJSON_IsString(cfg) ? cJSON_Parse(cfg->valuestring) : NULL;
    cJSON *h = cJSON_GetObjectItemCaseSensitive(parsed ? parsed : cfg, "decoder_num_heads");
    int heads = cJSON_IsNumber(h) && h->valueint > 0 ? h->valueint : 0;
    cJSON_Delete(parsed);
    cJSON_Delete(meta);
    return heads;
}

static cs_status infer_config(cs_sam *m, const cs_sam_load_options *opts) {
    cs_sam_config *c = &m->cfg;
    cs_status s = CS_OK;
    const cs_tensor *pe = need(m, ENC "pos_embed", 4, &s);
    const cs_tensor *patch = need(m, ENC "patch_embed.proj.weight", 4, &s);
    const cs_tensor *rel = need(m, ENC "blocks.0.attn.rel_pos_h", 2, &s);
    const cs_tensor *lin1 = need(m, ENC "blocks.0.mlp.lin1.weight", 2, &s);
    const cs_tensor *neck = need(m, ENC "neck.0.weight", 4, &s);
    const cs_tensor *md = need(m, PROMPT "mask_downscaling.3.weight", 4, &s);
    const cs_tensor *mt = need(m, DEC "mask_tokens.weight", 2, &s);
    const cs_tensor *dl = need(m, DEC "transformer.layers.0.mlp.lin1.weight", 2, &s);
    const cs_tensor *cq = need(m, DEC "transformer.layers.0.cross_attn_token_to_image.q_proj.weight", 2, &s);
    const cs_tensor *ih = need(m, DEC "iou_prediction_head.layers.0.weight", 2, &s);
    if (s != CS_OK) return s;
    c->grid = (int)pe->shape[1];
    c->enc_width = (int)pe->shape[3];
    c->patch_size = (int)patch->shape[3];
    c->image_size = c->grid * c->patch_size;
    c->enc_depth = count_items(&m->table, ENC "blocks.", ".attn.qkv.weight");
    int head_dim = (int)rel->shape[1];
    c->enc_heads = head_dim > 0 ? c->enc_width / head_dim : 0;
    c->enc_mlp = (int)lin1->shape[0];
    c->embed_dim = (int)neck->shape[0];
    c->mask_in_chans = (int)md->shape[0];
    c->n_mask_tokens = (int)mt->shape[0];
    c->dec_depth = count_items(&m->table, DEC "transformer.layers.", ".norm1.weight");
    c->dec_mlp = (int)dl->shape[0];
    c->dec_cross_dim = (int)cq->shape[0];
    c->iou_depth = count_items(&m->table, DEC "iou_prediction_head.layers.", ".weight");
    c->iou_hidden = (int)ih->shape[0];
    c->dec_heads = opts && opts->decoder_heads > 0 ? opts->decoder_heads : metadata_decoder_heads(&m->table);
    if (c->dec_heads <= 0) c->dec_heads = SAM_DEFAULT_DECODER_HEADS;
    if (pe->shape[0] != 1 || pe->shape[1] != pe->shape[2] || c->grid < 1 || c->grid > SAM_MAX_GRID ||
        patch->shape[1] != 3 || patch->shape[2] != patch->shape[3] || c->patch_size < 1 ||
        patch->shape[0] != c->enc_width || c->enc_depth < 1 || c->enc_heads < 1 ||
        c->enc_width % head_dim || c->embed_dim < 8 || c->embed_dim % 8 || c->n_mask_tokens < 2 ||
        c->n_mask_tokens > 16 || c->dec_depth < 1 || c->iou_depth < 1 || c->iou_depth > 8 ||
        c->embed_dim % c->dec_heads || c->dec_cross_dim % c->dec_heads || c->embed_dim > 1024 ||
        c->iou_hidden > 4096 || c->iou_hidden < 1)
        return error_set(CS_ERR_SHAPE, "%s: the tensors do not describe a SAM model (grid %d, patch %d, "
                       "width %d, %d blocks, embedding %d, %d decoder heads)", m->table.path, c->grid,
                       c->patch_size, c->enc_width, c->enc_depth, c->embed_dim, c->dec_heads);
    /* Global blocks have tables 2G - 1 long, windowed ones 2 * window - 1. */
    c->window = 0;
    c->n_global = 0;
    for (int i = 0; i < c->enc_depth && s == CS_OK; i++) {
        char name[128];
        snprintf(name, sizeof name, ENC "blocks.%d.attn.rel_pos_h", i);
        const cs_tensor *r = need(m, name, 2, &s);
        if (!r) break;
        int len = (int)r->shape[0];
        if (len == 2 * c->grid - 1) {
            if (c->n_global == (int)(sizeof c->global_blocks / sizeof *c->global_blocks))
                return error_set(CS_ERR_LIMIT, "%s: more than 64 global blocks", m->table.path);
            c->global_blocks[c->n_global++] = i;
        } else if (len % 2 == 1 && len > 0 && (len + 1) / 2 <= c->grid &&
                   (c->window == 0 || c->window == (len + 1) / 2)) {
            c->window = (len + 1) / 2;
        } else {
            return error_set(CS_ERR_SHAPE, "%s: '%s' has %d rows: neither 2*%d-1 (global) nor the "
                           "windowed blocks' length (a window of at most the grid)", m->table.path, name, len, c->grid);
        }
    }
    return s;
}

static void bind_encoder(binder *b) {
    cs_sam *m = b->m;
    const cs_sam_config *c = &m->cfg;
    int D = c->enc_width, P = c->patch_size, G = c->grid, hd = D / c->enc_heads, E = c->embed_dim;
    m->patch.out = D;
    m->patch.in = 3 * P * P;
    m->patch.w = bind(b, ENC "patch_embed.proj.weight", 4, D, 3, P, P);
    m->patch.b = bind(b, ENC "patch_embed.proj.bias", 1, D, 0, 0, 0);
    m->pos = bind(b, ENC "pos_embed", 4, 1, G, G, D);
    m->blocks = mem_calloc((size_t)c->enc_depth, sizeof *m->blocks);
    if (!m->blocks || tensors_own(&m->table, m->blocks) != CS_OK) {
        b->s = CS_ERR_NOMEM;
        return;
    }
    for (int i = 0; i < c->enc_depth; i++) {
        sam_enc_block *k = &m->blocks[i];
        char p[128], name[192];
        snprintf(p, sizeof p, ENC "blocks.%d.", i);
        k->window = c->window;
        for (int g = 0; g < c->n_global; g++)
            if (c->global_blocks[g] == i) k->window = 0;
        int rows = 2 * (k->window ? k->window : G) - 1;
#define NAME(suffix) (snprintf(name, sizeof name, "%s" suffix, p), name)
        bind_norm(b, NAME("norm1"), D, &k->norm1);
        bind_norm(b, NAME("norm2"), D, &k->norm2);
        bind_linear(b, NAME("attn.qkv"), 3 * D, D, 1, &k->qkv);
        bind_linear(b, NAME("attn.proj"), D, D, 1, &k->proj);
        bind_linear(b, NAME("mlp.lin1"), c->enc_mlp, D, 1, &k->lin1);
        bind_linear(b, NAME("mlp.lin2"), D, c->enc_mlp, 1, &k->lin2);
        k->rel_h = bind(b, NAME("attn.rel_pos_h"), 2, rows, hd, 0, 0);
        k->rel_w = bind(b, NAME("attn.rel_pos_w"), 2, rows, hd, 0, 0);
#undef NAME
    }
    m->neck0_w = bind(b, ENC "neck.0.weight", 4, E, D, 1, 1);
    bind_norm(b, ENC "neck.1", E, &m->neck1);
    m->neck2_w = bind(b, ENC "neck.2.weight", 4, E, E, 3, 3);
    bind_norm(b, ENC "neck.3", E, &m->neck3);
}

static void bind_prompt_encoder(binder *b) {
    cs_sam *m = b->m;
    int E = m->cfg.embed_dim, mc = m->cfg.mask_in_chans;
    m->pe_gauss = bind(b, PROMPT "pe_layer.positional_encoding_gaussian_matrix", 2, 2, E / 2, 0, 0);
    for (int i = 0; i < 4; i++)
        m->point_emb[i] = bindf(b, 2, 1, E, PROMPT "point_embeddings.%d.weight", i);
    m->not_a_point = bind(b, PROMPT "not_a_point_embed.weight", 2, 1, E, 0, 0);
    m->no_mask = bind(b, PROMPT "no_mask_embed.weight", 2, 1, E, 0, 0);
    m->md0_w = bind(b, PROMPT "mask_downscaling.0.weight", 4, mc / 4, 1, 2, 2);
    m->md0_b = bind(b, PROMPT "mask_downscaling.0.bias", 1, mc / 4, 0, 0, 0);
    bind_norm(b, PROMPT "mask_downscaling.1", mc / 4, &m->md1);
    m->md3_w = bind(b, PROMPT "mask_downscaling.3.weight", 4, mc, mc / 4, 2, 2);
    m->md3_b = bind(b, PROMPT "mask_downscaling.3.bias", 1, mc, 0, 0, 0);
    bind_norm(b, PROMPT "mask_downscaling.4", mc, &m->md4);
    m->md6_w = bind(b, PROMPT "mask_downscaling.6.weight", 4, E, mc, 1, 1);
    m->md6_b = bind(b, PROMPT "mask_downscaling.6.bias", 1, E, 0, 0, 0);
}

static void bind_decoder(binder *b) {
    cs_sam *m = b->m;
    const cs_sam_config *c = &m->cfg;
    int E = c->embed_dim, T = c->n_mask_tokens, X = c->dec_cross_dim;
    m->iou_token = bind(b, DEC "iou_token.weight", 2, 1, E, 0, 0);
    m->mask_tokens = bind(b, DEC "mask_tokens.weight", 2, T, E, 0, 0);
    m->layers = mem_calloc((size_t)c->dec_depth, sizeof *m->layers);
    if (!m->layers || tensors_own(&m->table, m->layers) != CS_OK) {
        b->s = CS_ERR_NOMEM;
        return;
    }
    for (int i = 0; i < c->dec_depth; i++) {
        sam_dec_layer *l = &m->layers[i];
        char p[128], name[192];
        snprintf(p, sizeof p, DEC "transformer.layers.%d.", i);
#define NAME(suffix) (snprintf(name, sizeof name, "%s" suffix, p), name)
        bind_attn(b, NAME("self_attn"), E, E, &l->self_attn);
        bind_attn(b, NAME("cross_attn_token_to_image"), E, X, &l->t2i);
        bind_attn(b, NAME("cross_attn_image_to_token"), E, X, &l->i2t);
        bind_norm(b, NAME("norm1"), E, &l->norm1);
        bind_norm(b, NAME("norm2"), E, &l->norm2);
        bind_norm(b, NAME("norm3"), E, &l->norm3);
        bind_norm(b, NAME("norm4"), E, &l->norm4);
        bind_linear(b, NAME("mlp.lin1"), c->dec_mlp, E, 1, &l->lin1);
        bind_linear(b, NAME("mlp.lin2"), E, c->dec_mlp, 1, &l->lin2);
#undef NAME
    }
    bind_attn(b, DEC "transformer.final_attn_token_to_image", E, X, &m->final_attn);
    bind_norm(b, DEC "transformer.norm_final_attn", E, &m->norm_final);
    m->up0_w = bind(b, DEC "output_upscaling.0.weight", 4, E, E / 4, 2, 2);
    m->up0_b = bind(b, DEC "output_upscaling.0.bias", 1, E / 4, 0, 0, 0);
    bind_norm(b, DEC "output_upscaling.1", E / 4, &m->up1);
    m->up3_w = bind(b, DEC "output_upscaling.3.weight", 4, E / 4, E / 8, 2, 2);
    m->up3_b = bind(b, DEC "output_upscaling.3.bias", 1, E / 8, 0, 0, 0);
    for (int t = 0; t < T; t++) {
        char p[128];
        snprintf(p, sizeof p, DEC "output_hypernetworks_mlps.%d", t);
        bind_mlp(b, p, E, E / 8, 3, &m->hyper[t]);
    }
    bind_mlp(b, DEC "iou_prediction_head", E, T, c->iou_depth, &m->iou_head);
}

/* A ConvTranspose2d(k 2, s 2) weight [in, out, 2, 2] reordered to
 * [in, 2 * dy + dx, out], so that the decoder's GEMM gives each output
 * pixel its channels contiguous (LayerNorm2d and the mask product run on
 * rows). The copy is owned by the table. */
static cs_status subpixel_major(cs_sam *m, const float **w, int in, int out) {
    float *r = mem_alloc((size_t)in * 4 * out, sizeof(float));
    if (!r || tensors_own(&m->table, r) != CS_OK) return CS_ERR_NOMEM; /* tensors_own frees r */
    for (int i = 0; i < in; i++)
        for (int o = 0; o < out; o++)
            for (int s = 0; s < 4; s++) r[((size_t)i * 4 + s) * out + o] = (*w)[((size_t)i * out + o) * 4 + s];
    *w = r;
    return CS_OK;
}

/* The image's positional encoding never changes: as rows [G*G, E], once. */
static cs_status key_pe(cs_sam *m) {
    size_t GG = (size_t)m->cfg.grid * m->cfg.grid, E = (size_t)m->cfg.embed_dim;
    /* The rows go to the table first (which frees them on failure and with
     * the model), so that no failure below leaks them or leaves key_pe
     * pointing at freed memory. */
    float *rows = mem_alloc(GG * E, sizeof(float));
    if (!rows || tensors_own(&m->table, rows) != CS_OK) return CS_ERR_NOMEM;
    float *chw = mem_alloc(GG * E, sizeof(float));
    if (!chw) return CS_ERR_NOMEM;
    sam_dense_pe(m, chw);
    for (size_t i = 0; i < GG; i++)
        for (size_t c = 0; c < E; c++) rows[i * E + c] = chw[c * GG + i];
    cs_free(chw);
    m->key_pe = rows;
    return CS_OK;
}

cs_status sam_from_table(cs_tensor_table *t, const cs_sam_load_options *opts, cs_sam **out) {
    *out = NULL;
    cs_sam *m = mem_calloc(1, sizeof *m);
    if (!m) {
        tensors_free(t);
        return CS_ERR_NOMEM;
    }
    m->table = *t;
    m->cross_fold = -1;
    memset(t, 0, sizeof *t);
    binder b = {m, infer_config(m, opts)};
    if (b.s == CS_OK) bind_encoder(&b);
    if (b.s == CS_OK) bind_prompt_encoder(&b);
    if (b.s == CS_OK) bind_decoder(&b);
    if (b.s == CS_OK) b.s = key_pe(m);
    int E = m->cfg.embed_dim;
    if (b.s == CS_OK) b.s = subpixel_major(m, &m->up0_w, E, E / 4);
    if (b.s == CS_OK) b.s = subpixel_major(m, &m->up3_w, E / 4, E / 8);
    if (b.s != CS_OK) {
        cs_sam_free(m);
        return b.s;
    }
    *out = m;
    return CS_OK;
}

cs_status cs_sam_load(const char *path, const cs_sam_load_options *opts, cs_sam **out) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return error_set(CS_ERR_IO, "%s: SAM checkpoint not found", path);
    if (S_ISDIR(st.st_mode)) return error_set(CS_ERR_ARG, "%s: a folder, not a SAM checkpoint file", path);
    FILE *f = fopen(path, "rb");
    unsigned char magic[4] = {0};
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    cs_tensor_table t;
    memset(&t, 0, sizeof t);
    cs_status s = got == 4 && !memcmp(magic, "PK\x03\x04", 4) ? pytorch_open(path, &t)
                                                                : safetensors_open(path, &t);
    if (s != CS_OK) {
        tensors_free(&t);
        return s;
    }
    return sam_from_table(&t, opts, out);
}

void cs_sam_free(cs_sam *m) {
    if (!m) return;
    sam_free_bf16(m);
    ws_free(&m->ws);
    tensors_free(&m->table);
    cs_free(m);
}

const cs_sam_config *cs_sam_get_config(const cs_sam *m) { return &m->cfg; }
