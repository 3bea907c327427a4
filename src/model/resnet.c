/* The CLIP ModifiedResNet image tower, plain and with surgery: the 3-conv
 * stem, Bottleneck blocks with anti-aliased (average-pooled) downsampling,
 * and the attention pool. Activations are NCHW in fp32 and channels last
 * (HWC) under bf16, one image at a time: the bf16 kernel's output rows are
 * pixels, so each convolution's product is the next one's input as it is
 * (1x1 convolutions multiply it directly). Every batch norm is folded into
 * the convolution before it at load time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops/ops.h"
#include "model.h"

#define HEAD_DIM 64
#define BN_EPS 1e-5f
#define EXPANSION 4 /* Bottleneck output channels per plane */

/* A convolution with its batch norm folded in: y = w * x + b. */
typedef struct rn_conv {
    int cin, cout, k, stride, pad;
    float *w; /* [cout, cin * k * k]; NULL once packed to bf16 */
    float *b; /* [cout] */
    op_bf16_weights w16; /* w packed for the bf16 kernel (data NULL: fp32) */
} rn_conv;

typedef struct rn_block {
    int stride; /* > 1: average pool before conv3 and in the shortcut */
    int has_down;
    rn_conv conv1, conv2, conv3, down;
} rn_block;

struct cs_resnet {
    rn_conv stem[3];
    rn_block *blocks; /* layer1..layer4, in order */
    int n_blocks;
    int embed, heads; /* attention pool width (32 * width) and heads */
    const float *pos_emb;  /* [1 + G*G, E] at the native grid */
    const float *proj_w[3], *proj_b[3]; /* q, k, v: [E, E], [E] */
    const float *c_w, *c_b; /* [D, E], [D] */
    op_bf16_weights proj16[3], c16; /* bf16 packs of proj_w and c_w (data NULL: fp32) */
};

/* ---------------------------------------------------------------- loading */

#define MAX_STAGE_BLOCKS 256

/* Distinct block indices i among the names "visual.layer<stage>.<i>.*", as
 * build_model counts them; -1 when there are more than MAX_STAGE_BLOCKS. */
static int count_stage_blocks(const cs_tensor_table *t, int stage) {
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "visual.layer%d.", stage);
    long seen[MAX_STAGE_BLOCKS];
    int n = 0;
    for (int i = 0; i < t->n; i++) {
        const char *name = t->items[i].name;
        if (strncmp(name, prefix, (size_t)plen) != 0) continue;
        char *end;
        long idx = strtol(name + plen, &end, 10);
        if (end == name + plen || *end != '.') continue;
        int known = 0;
        for (int j = 0; j < n && !known; j++) known = seen[j] == idx;
        if (known) continue;
        if (n == MAX_STAGE_BLOCKS) return -1;
        seen[n++] = idx;
    }
    return n;
}

static cs_status infer_config(cs_model *m) {
    cs_config *c = &m->cfg;
    const cs_tensor *c1 = tensors_find(&m->table, "visual.layer1.0.conv1.weight");
    const cs_tensor *pe = tensors_find(&m->table, "visual.attnpool.positional_embedding");
    if (!c1 || !pe)
        return error_set(CS_ERR_MISSING, "%s: required tensor '%s' is missing", m->table.path,
                       c1 ? "visual.attnpool.positional_embedding" : "visual.layer1.0.conv1.weight");
    if (c1->ndim != 4 || pe->ndim != 2 || pe->shape[0] < 2)
        return error_set(CS_ERR_SHAPE, "%s: 'visual.layer1.0.conv1.weight' or "
                       "'visual.attnpool.positional_embedding' does not have a ResNet's shape",
                       m->table.path);
    c->vision_kind = CS_VISION_RESNET;
    c->vision_width = (int)c1->shape[0];
    for (int s = 0; s < 4; s++) c->resnet_layers[s] = count_stage_blocks(&m->table, s + 1);
    c->grid = (int)lround(sqrt((double)(pe->shape[0] - 1)));
    c->image_resolution = 32 * c->grid;
    c->vision_heads = c->vision_width * 32 / HEAD_DIM;
    c->vision_layers = 0;
    c->patch_size = 0;
    int embed = 32 * c->vision_width;
    if (c->vision_width < 2 || c->vision_width % 2 || c->vision_heads < 1 ||
        embed % c->vision_heads || (int64_t)c->grid * c->grid + 1 != pe->shape[0])
        return error_set(CS_ERR_SHAPE, "%s: the ResNet tensors do not describe a CLIP ModifiedResNet "
                       "(width %d, attnpool.positional_embedding [1 + G*G, 32 * width])",
                       m->table.path, c->vision_width);
    for (int s = 0; s < 4; s++) {
        if (c->resnet_layers[s] < 0)
            return error_set(CS_ERR_LIMIT, "%s: more than %d blocks under 'visual.layer%d'",
                           m->table.path, MAX_STAGE_BLOCKS, s + 1);
        if (c->resnet_layers[s] == 0)
            return error_set(CS_ERR_MISSING, "%s: no blocks found under 'visual.layer%d'",
                           m->table.path, s + 1);
    }
    return CS_OK;
}

/* Bind a bias-free convolution and the batch norm after it, folded. The
 * weights are folded in place where model_weight widened them into a
 * buffer the table owns; a borrowed F32 view (read-only mmap) is copied. */
static cs_status load_conv(cs_model *m, const char *conv_name, const char *bn_prefix, int cin,
                           int cout, int k, int stride, rn_conv *c) {
    *c = (rn_conv){.cin = cin, .cout = cout, .k = k, .stride = stride, .pad = k / 2};
    int64_t dims[4] = {cout, cin, k, k};
    const float *w, *bn[4];
    cs_status s = model_weight(m, conv_name, 4, dims, &w);
    static const char *bn_parts[4] = {"weight", "bias", "running_mean", "running_var"};
    char name[256];
    for (int i = 0; s == CS_OK && i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", bn_prefix, bn_parts[i]);
        s = model_weight_1d(m, name, cout, &bn[i]);
    }
    if (s != CS_OK) return s;
    size_t n = (size_t)cin * k * k;
    c->w = (float *)w;
    if (w == tensors_find(&m->table, conv_name)->data) {
        c->w = mem_alloc((size_t)cout * n, sizeof(float));
        if (!c->w || tensors_own(&m->table, c->w) != CS_OK) return CS_ERR_NOMEM;
        memcpy(c->w, w, (size_t)cout * n * sizeof(float));
    }
    c->b = mem_alloc((size_t)cout, sizeof(float));
    if (!c->b || tensors_own(&m->table, c->b) != CS_OK) return CS_ERR_NOMEM;
    op_fold_batch_norm(c->w, cout, (int)n, bn[0], bn[1], bn[2], bn[3], BN_EPS, c->b);
    return CS_OK;
}

static cs_status load_block(cs_model *m, int stage, int index, int inplanes, int planes,
                            int stride, rn_block *b) {
    char p[64], conv[96], bn[96];
    snprintf(p, sizeof p, "visual.layer%d.%d", stage, index);
    b->stride = stride;
    b->has_down = stride > 1 || inplanes != planes * EXPANSION;
    cs_status s = CS_OK;
    static const char *convs[3] = {"conv1", "conv2", "conv3"}, *bns[3] = {"bn1", "bn2", "bn3"};
    rn_conv *dst[3] = {&b->conv1, &b->conv2, &b->conv3};
    int cin[3] = {inplanes, planes, planes}, cout[3] = {planes, planes, planes * EXPANSION};
    int k[3] = {1, 3, 1};
    for (int i = 0; s == CS_OK && i < 3; i++) {
        snprintf(conv, sizeof conv, "%s.%s.weight", p, convs[i]);
        snprintf(bn, sizeof bn, "%s.%s", p, bns[i]);
        s = load_conv(m, conv, bn, cin[i], cout[i], k[i], 1, dst[i]);
    }
    if (s == CS_OK && b->has_down) {
        snprintf(conv, sizeof conv, "%s.downsample.0.weight", p);
        snprintf(bn, sizeof bn, "%s.downsample.1", p);
        s = load_conv(m, conv, bn, inplanes, planes * EXPANSION, 1, 1, &b->down);
    }
    return s;
}

static cs_status load_trunk(cs_model *m, struct cs_resnet *r) {
    const cs_config *c = &m->cfg;
    int W = c->vision_width;
    cs_status s = load_conv(m, "visual.conv1.weight", "visual.bn1", 3, W / 2, 3, 2, &r->stem[0]);
    if (s == CS_OK) s = load_conv(m, "visual.conv2.weight", "visual.bn2", W / 2, W / 2, 3, 1, &r->stem[1]);
    if (s == CS_OK) s = load_conv(m, "visual.conv3.weight", "visual.bn3", W / 2, W, 3, 1, &r->stem[2]);
    int inplanes = W, bi = 0;
    for (int stage = 0; s == CS_OK && stage < 4; stage++) {
        int planes = W << stage;
        for (int i = 0; s == CS_OK && i < c->resnet_layers[stage]; i++) {
            int stride = stage > 0 && i == 0 ? 2 : 1;
            s = load_block(m, stage + 1, i, inplanes, planes, stride, &r->blocks[bi++]);
            inplanes = planes * EXPANSION;
        }
    }
    return s;
}

static cs_status load_attention_pool(cs_model *m, struct cs_resnet *r) {
    int E = r->embed, G = m->cfg.grid;
    int64_t pos_dims[2] = {(int64_t)G * G + 1, E}, sq[2] = {E, E};
    int64_t c_dims[2] = {m->cfg.embed_dim, E};
    cs_status s = model_weight(m, "visual.attnpool.positional_embedding", 2, pos_dims, &r->pos_emb);
    static const char *projs[3] = {"q_proj", "k_proj", "v_proj"};
    char name[96];
    for (int i = 0; s == CS_OK && i < 3; i++) {
        snprintf(name, sizeof name, "visual.attnpool.%s.weight", projs[i]);
        s = model_weight(m, name, 2, sq, &r->proj_w[i]);
        snprintf(name, sizeof name, "visual.attnpool.%s.bias", projs[i]);
        if (s == CS_OK) s = model_weight_1d(m, name, E, &r->proj_b[i]);
    }
    if (s == CS_OK) s = model_weight(m, "visual.attnpool.c_proj.weight", 2, c_dims, &r->c_w);
    if (s == CS_OK) s = model_weight_1d(m, "visual.attnpool.c_proj.bias", m->cfg.embed_dim, &r->c_b);
    return s;
}

cs_status resnet_load(cs_model *m) {
    cs_status s = infer_config(m);
    if (s != CS_OK) return s;
    const cs_config *c = &m->cfg;
    struct cs_resnet *r = mem_calloc(1, sizeof *r);
    if (!r) return CS_ERR_NOMEM;
    m->resnet = r; /* freed with the model, also on failure */
    for (int i = 0; i < 4; i++) r->n_blocks += c->resnet_layers[i];
    r->blocks = mem_calloc((size_t)r->n_blocks, sizeof *r->blocks);
    if (!r->blocks) return CS_ERR_NOMEM;
    r->embed = 32 * c->vision_width;
    r->heads = c->vision_heads;
    s = load_trunk(m, r);
    return s == CS_OK ? load_attention_pool(m, r) : s;
}

/* Call fn on every convolution. */
static void for_each_conv(struct cs_resnet *r, void (*fn)(rn_conv *c, void *ctx), void *ctx) {
    for (int i = 0; i < 3; i++) fn(&r->stem[i], ctx);
    for (int i = 0; i < r->n_blocks; i++) {
        rn_block *b = &r->blocks[i];
        fn(&b->conv1, ctx), fn(&b->conv2, ctx), fn(&b->conv3, ctx);
        if (b->has_down) fn(&b->down, ctx);
    }
}

static void conv_free_bf16(rn_conv *c, void *ctx) {
    (void)ctx;
    op_bf16_free(&c->w16);
}

static void resnet_free_bf16(struct cs_resnet *r) {
    if (!r) return;
    if (r->blocks) for_each_conv(r, conv_free_bf16, NULL);
    for (int i = 0; i < 3; i++) op_bf16_free(&r->proj16[i]);
    op_bf16_free(&r->c16);
}

/* Give the fp32 form [N, K] of a weight just packed back to the table. */
static cs_status release(cs_tensor_table *t, float **w, int N, int K, cs_status packed) {
    if (packed != CS_OK) return packed;
    tensors_release(t, *w, (size_t)N * K * sizeof(float));
    *w = NULL;
    return CS_OK;
}

/* Pack one weight [N, K] and give its fp32 form back to the table. */
static cs_status pack_release(cs_tensor_table *t, float **w, int N, int K, op_bf16_weights *out) {
    return release(t, w, N, K, op_bf16_pack(*w, N, K, out));
}

typedef struct pack_ctx {
    cs_tensor_table *t;
    cs_status s;
} pack_ctx;

static void conv_pack_bf16(rn_conv *c, void *ctx) {
    pack_ctx *p = ctx;
    if (p->s == CS_OK)
        p->s = release(p->t, &c->w, c->cout, c->cin * c->k * c->k,
                       op_conv_pack_bf16(c->w, c->cout, c->cin, c->k, &c->w16));
}

cs_status resnet_pack_bf16(struct cs_resnet *r, int embed_dim, cs_tensor_table *t) {
    pack_ctx p = {t, CS_OK};
    for_each_conv(r, conv_pack_bf16, &p);
    for (int i = 0; p.s == CS_OK && i < 3; i++)
        p.s = pack_release(t, (float **)&r->proj_w[i], r->embed, r->embed, &r->proj16[i]);
    if (p.s == CS_OK) p.s = pack_release(t, (float **)&r->c_w, embed_dim, r->embed, &r->c16);
    return p.s;
}

void resnet_free(struct cs_resnet *r) {
    if (!r) return;
    resnet_free_bf16(r);
    cs_free(r->blocks);
    cs_free(r);
}

/* ---------------------------------------------------------------- trunk */

/* 1 when the trunk runs channels last: its convolutions are packed to bf16. */
static int channels_last(const struct cs_resnet *r) { return r->stem[0].w16.data != NULL; }

static void avg_pool(const struct cs_resnet *r, const float *x, int c, int side, int k, float *y) {
    if (channels_last(r)) op_avg_pool_hwc(x, c, side, side, k, y);
    else op_avg_pool(x, c, side, side, k, y);
}

/* Activation buffers (each holds the largest activation) and the im2col
 * scratch for one pass at one input size. */
typedef struct rn_work {
    float *x, *y, *t1, *t2, *p, *col;
} rn_work;

static op_conv_shape conv_shape(const rn_conv *c, int side) {
    return (op_conv_shape){c->cin, side, side, c->cout, c->k, c->stride, c->pad};
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Track one convolution at input side *side: the largest output and
 * scratch so far; *side becomes the output side. */
static void size_conv(const rn_conv *c, int *side, size_t *act, size_t *col) {
    op_conv_shape s = conv_shape(c, *side);
    *col = max_size(*col, c->w16.data ? op_conv2d_bf16_scratch(&s) : op_conv2d_scratch(&s));
    *side = op_conv_out_size(*side, c->k, c->stride, c->pad);
    *act = max_size(*act, (size_t)c->cout * *side * *side);
}

/* Walk the trunk's shapes at input side R for the buffer sizes. */
static void trunk_sizes(const struct cs_resnet *r, int R, size_t *act, size_t *col) {
    int side = R;
    *act = (size_t)3 * R * R;
    *col = 0;
    for (int i = 0; i < 3; i++) size_conv(&r->stem[i], &side, act, col);
    side /= 2;
    for (int i = 0; i < r->n_blocks; i++) {
        const rn_block *b = &r->blocks[i];
        int in_side = side;
        size_conv(&b->conv1, &side, act, col);
        size_conv(&b->conv2, &side, act, col);
        side /= b->stride;
        size_conv(&b->conv3, &side, act, col);
        if (b->has_down) {
            in_side /= b->stride;
            size_conv(&b->down, &in_side, act, col);
        }
    }
}

/* The trunk's buffers, from the model's workspace (released by the caller). */
static cs_status work_init(rn_work *w, cs_workspace *ws, const struct cs_resnet *r, int R) {
    size_t act, col;
    trunk_sizes(r, R, &act, &col);
    w->x = ws_take(ws, act, sizeof(float));
    w->y = ws_take(ws, act, sizeof(float));
    w->t1 = ws_take(ws, act, sizeof(float));
    w->t2 = ws_take(ws, act, sizeof(float));
    w->p = ws_take(ws, act, sizeof(float));
    w->col = ws_take(ws, col ? col : 1, sizeof(float));
    return w->x && w->y && w->t1 && w->t2 && w->p && w->col ? CS_OK : CS_ERR_NOMEM;
}

/* y = conv(x) (+ y when accumulating), then ReLU'd when relu (in the bf16
 * kernel's store; in fp32 a pass per band of rows while it is in cache, or
 * one over y); returns the output side. */
static int conv_forward(const rn_conv *c, const float *x, int side, int accumulate, int relu,
                        float *col, float *y) {
    op_conv_shape s = conv_shape(c, side);
    if (c->w16.data) op_conv2d_bf16(&s, x, &c->w16, c->b, accumulate, relu, col, y);
    else op_conv2d(&s, x, c->w, c->b, accumulate, relu, col, y);
    return op_conv_out_size(side, c->k, c->stride, c->pad);
}

static void swap(float **a, float **b) {
    float *t = *a;
    *a = *b;
    *b = t;
}

/* Three conv + ReLU, then a 2x2 average pool: pixels [3, R, R] ->
 * w->x [width, R/4, R/4] (or [R/4, R/4, width] channels last); returns
 * the side. */
static int stem_forward(const struct cs_resnet *r, const float *pixels, int R, rn_work *w) {
    const float *in = pixels;
    if (channels_last(r)) {
        op_chw_to_hwc(pixels, 3, R * R, w->p);
        in = w->p;
    }
    float *out[3] = {w->t1, w->t2, w->t1};
    int side = R;
    for (int i = 0; i < 3; i++) {
        side = conv_forward(&r->stem[i], in, side, 0, 1, w->col, out[i]);
        in = out[i];
    }
    avg_pool(r, w->t1, r->stem[2].cout, side, 2, w->x);
    return side / 2;
}

/* One Bottleneck on w->x [cin, side, side], output back in w->x; returns
 * the output side. The shortcut (x itself, or the pooled 1x1 projection)
 * is written first and conv3 accumulates onto it. */
static int block_forward_rn(const struct cs_resnet *r, const rn_block *b, int side, rn_work *w) {
    int planes = b->conv1.cout;
    conv_forward(&b->conv1, w->x, side, 0, 1, w->col, w->t1);
    conv_forward(&b->conv2, w->t1, side, 0, 1, w->col, w->t2);
    const float *mid = w->t2;
    int out_side = side / b->stride;
    if (b->stride > 1) {
        avg_pool(r, w->t2, planes, side, b->stride, w->t1);
        mid = w->t1;
    }
    if (b->has_down) {
        const float *shortcut_in = w->x;
        if (b->stride > 1) {
            avg_pool(r, w->x, b->down.cin, side, b->stride, w->p);
            shortcut_in = w->p;
        }
        conv_forward(&b->down, shortcut_in, out_side, 0, 0, w->col, w->y);
        swap(&w->x, &w->y);
    }
    conv_forward(&b->conv3, mid, out_side, 1, 1, w->col, w->x);
    return out_side;
}

/* The stem and the first `stages` layers into w->x (channels last under
 * bf16); returns the side and sets *channels. */
static int trunk_forward(const cs_model *m, const float *pixels, int R, int stages, rn_work *w,
                         int *channels) {
    const struct cs_resnet *r = m->resnet;
    int side = stem_forward(r, pixels, R, w);
    *channels = r->stem[2].cout;
    int bi = 0;
    for (int s = 0; s < stages; s++)
        for (int i = 0; i < m->cfg.resnet_layers[s]; i++, bi++) {
            side = block_forward_rn(r, &r->blocks[bi], side, w);
            *channels = r->blocks[bi].conv3.cout;
        }
    return side;
}

cs_status resnet_trunk(cs_model *m, const float *pixels, int res, int stages, float *out) {
    if (!m->resnet) return error_set(CS_ERR_ARG, "ResNet trunk: the model's image tower is a ViT");
    if (stages < 0 || stages > 4 || res <= 0 || res % 32)
        return error_set(CS_ERR_ARG, "ResNet trunk: stages %d (0..4) or resolution %d (a multiple "
                       "of 32) out of range", stages, res);
    rn_work w;
    cs_status s = work_init(&w, &m->ws, m->resnet, res);
    if (s == CS_OK) {
        int channels, side = trunk_forward(m, pixels, res, stages, &w, &channels);
        if (channels_last(m->resnet)) op_hwc_to_chw(w.x, side * side, channels, out);
        else memcpy(out, w.x, (size_t)channels * side * side * sizeof(float));
    }
    ws_release(&m->ws);
    return s;
}

/* ---------------------------------------------------------------- attention pool */

void resnet_position_embedding(const cs_model *m, int G, float *out) {
    const struct cs_resnet *r = m->resnet;
    int native = m->cfg.grid, E = r->embed;
    if (G == native) {
        memcpy(out, r->pos_emb, ((size_t)G * G + 1) * E * sizeof(float));
        return;
    }
    memcpy(out, r->pos_emb, (size_t)E * sizeof(float));
    op_resize_bilinear(r->pos_emb + E, native, native, E, out + E, G, G);
}

/* Tokens [1 + N, E] from the trunk's features ([E, N], or [N, E] when
 * channels_last): the spatial mean first, then each position, plus the
 * position embedding. */
static void pool_tokens(const float *feat, int E, int N, int channels_last, const float *pos,
                        float *x) {
    size_t step = channels_last ? (size_t)E : 1, stride = channels_last ? 1 : (size_t)N;
#pragma omp parallel for schedule(static)
    for (int e = 0; e < E; e++) {
        const float *f = feat + (size_t)e * stride;
        double sum = 0.0;
        for (int n = 0; n < N; n++) {
            sum += f[n * step];
            x[(size_t)(n + 1) * E + e] = f[n * step];
        }
        x[e] = (float)(sum / N);
    }
    op_add(x, pos, (size_t)(N + 1) * E);
}

/* Columns [E * which, E * (which + 1)) of qkv [T, 3E] = x w^T + b, in fp32
 * or through w16 when packed (the bf16 kernel writes whole rows: into tmp
 * [T, E] first). */
static void project_into(const float *x, int T, int E, const float *w, const op_bf16_weights *w16,
                         const float *b, int which, float *tmp, float *qkv) {
    float *dst = qkv + (size_t)which * E;
    if (w16->data) {
        op_linear_bf16(x, T, E, w16, b, 0, tmp);
        for (int t = 0; t < T; t++) memcpy(dst + (size_t)t * 3 * E, tmp + (size_t)t * E, (size_t)E * sizeof(float));
        return;
    }
    for (int t = 0; t < T; t++) memcpy(dst + (size_t)t * 3 * E, b, (size_t)E * sizeof(float));
    op_gemm(0, 1, T, E, E, 1.0f, x, E, w, E, 1.0f, dst, 3 * E);
}

/* The optional ResNet setting of the authors' v-v attention: per head,
 * k = v / (|v| + 1e-6) and q = 8 k (their scale x8), v kept as it is. */
static void normalized_v_queries(float *qkv, int T, int E, int heads) {
    int d = E / heads;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *row = qkv + (size_t)t * 3 * E;
        for (int h = 0; h < heads; h++) {
            const float *v = row + 2 * E + h * d;
            double ss = 0.0;
            for (int i = 0; i < d; i++) ss += (double)v[i] * v[i];
            float inv = (float)(1.0 / (sqrt(ss) + 1e-6));
            for (int i = 0; i < d; i++) {
                row[E + h * d + i] = v[i] * inv;
                row[h * d + i] = 8.0f * v[i] * inv;
            }
        }
    }
}

/* Plain: CLIP's q-k attention pool, evaluated for every token (the
 * reference returns all of them; row 0 is CLIP's embedding). Surgery:
 * q = k = v = v_proj(x) for every token, the mean token included. Both end
 * in c_proj. x: [T, E] tokens; tokens: [T, D]. */
static cs_status attention_pool(cs_model *m, const float *x, int T, cs_vision_mode mode,
                                float *tokens) {
    const struct cs_resnet *r = m->resnet;
    int E = r->embed;
    float *qkv = ws_take(&m->ws, (size_t)T * 3 * E, sizeof(float));
    float *attn = ws_take(&m->ws, (size_t)T * E, sizeof(float));
    float *scores = ws_take(&m->ws, op_attention_scratch(T, E / r->heads), sizeof(float));
    cs_status s = qkv && attn && scores ? CS_OK : CS_ERR_NOMEM;
    if (s == CS_OK) {
        op_attention_spec a = {OP_ATTN_QK, 0, NULL, 0.0f, NULL, 0};
        if (mode == CS_VISION_PLAIN) {
            for (int i = 0; i < 3; i++)
                project_into(x, T, E, r->proj_w[i], &r->proj16[i], r->proj_b[i], i, attn, qkv);
        } else {
            project_into(x, T, E, r->proj_w[2], &r->proj16[2], r->proj_b[2], 2, attn, qkv);
            if (m->surgery_normalize_v) normalized_v_queries(qkv, T, E, r->heads);
            else a.kind = OP_ATTN_VV;
        }
        op_attention(qkv, T, E, r->heads, &a, scores, attn);
        if (r->c16.data) op_linear_bf16(attn, T, E, &r->c16, r->c_b, 0, tokens);
        else op_linear(attn, T, E, r->c_w, r->c_b, m->cfg.embed_dim, tokens);
    }
    return s;
}

cs_status resnet_encode(cs_model *m, const float *pixels, int res, cs_vision_mode mode,
                        float *tokens) {
    const struct cs_resnet *r = m->resnet;
    int E = r->embed;
    rn_work w;
    cs_status s = op_gemm_ready();
    if (s != CS_OK) return s;
    s = work_init(&w, &m->ws, r, res);
    if (s != CS_OK) {
        ws_release(&m->ws);
        return s;
    }
    int channels, G = trunk_forward(m, pixels, res, 4, &w, &channels), T = G * G + 1;
    float *x = ws_take(&m->ws, (size_t)T * E, sizeof(float));
    float *pos = ws_take(&m->ws, (size_t)T * E, sizeof(float));
    s = x && pos ? CS_OK : CS_ERR_NOMEM;
    if (s == CS_OK) {
        resnet_position_embedding(m, G, pos);
        pool_tokens(w.x, E, G * G, channels_last(r), pos, x);
        s = attention_pool(m, x, T, mode, tokens);
    }
    ws_release(&m->ws);
    return s;
}
