/* Meta's released SAM models: their architectures (for synthetic benchmark
 * models and FLOP counts) and their checkpoint names and URLs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/fileio.h"
#include "formats/download.h"
#include "model/model.h"
#include "sam.h"

#define SAM_URL_BASE "https://dl.fbaipublicfiles.com/segment_anything/"

/* build_sam.py's three models (every other size is fixed: S 1024, patch
 * 16, window 14, E 256, mask_in_chans 16, decoder 2 layers of MLP 2048). */
static const struct {
    const char *name, *file;
    int width, depth, heads, global[4];
} k_sam[] = {
    {"vit_b", "sam_vit_b_01ec64.pth", 768, 12, 12, {2, 5, 8, 11}},
    {"vit_l", "sam_vit_l_0b3195.pth", 1024, 24, 16, {5, 11, 17, 23}},
    {"vit_h", "sam_vit_h_4b8939.pth", 1280, 32, 16, {7, 15, 23, 31}},
};
#define N_SAM (int)(sizeof k_sam / sizeof *k_sam)

/* "vit_b", "sam_vit_b" or the file name. */
static int find_sam(const char *name) {
    for (int i = 0; i < N_SAM; i++)
        if (!strcmp(name, k_sam[i].name) || !strcmp(name, k_sam[i].file) ||
            (!strncmp(name, "sam_", 4) && !strcmp(name + 4, k_sam[i].name)))
            return i;
    return -1;
}

typedef struct builder {
    cs_tensor_table *t;
    uint64_t rng;
    cs_status s;
} builder;

/* Uniform in [-scale, scale] + offset (an LCG); the numbers mean nothing,
 * the shapes and the work are real. */
static void add(builder *b, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                float scale, float offset) {
    if (b->s != CS_OK) return;
    int64_t shape[4] = {d0, d1, d2, d3}, n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *x = mem_alloc((size_t)n, sizeof(float));
    if (!x) {
        b->s = CS_ERR_NOMEM;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        b->rng = b->rng * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = offset + scale * ((float)(b->rng >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
    }
    b->s = tensors_add(b->t, name, CS_DT_F32, ndim, shape, x, (size_t)n * sizeof(float), 1);
}

static void add_linear(builder *b, const char *prefix, int out, int in) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    add(b, name, 2, out, in, 0, 0, 1.0f / sqrtf((float)in), 0.0f);
    snprintf(name, sizeof name, "%s.bias", prefix);
    add(b, name, 1, out, 0, 0, 0, 0.02f, 0.0f);
}

static void add_norm(builder *b, const char *prefix, int dim) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    add(b, name, 1, dim, 0, 0, 0, 0.1f, 1.0f);
    snprintf(name, sizeof name, "%s.bias", prefix);
    add(b, name, 1, dim, 0, 0, 0, 0.1f, 0.0f);
}

static void add_attn(builder *b, const char *prefix, int E, int inner) {
    static const char *proj[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    char name[256];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, proj[i]);
        add_linear(b, name, i == 3 ? E : inner, i == 3 ? inner : E);
    }
}

static void add_mlp(builder *b, const char *prefix, int in, int hidden, int out, int n) {
    char name[256];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s.layers.%d", prefix, i);
        add_linear(b, name, i == n - 1 ? out : hidden, i == 0 ? in : hidden);
    }
}

/* Meta's state dict for model i, in build_sam's order. */
static void build(builder *b, int a) {
    const int S = 1024, P = 16, G = S / P, D = k_sam[a].width, hd = D / k_sam[a].heads, E = 256;
    char p[128], name[192];
    add(b, "image_encoder.pos_embed", 4, 1, G, G, D, 0.02f, 0.0f);
    add(b, "image_encoder.patch_embed.proj.weight", 4, D, 3, P, P, 1.0f / 27.7f, 0.0f);
    add(b, "image_encoder.patch_embed.proj.bias", 1, D, 0, 0, 0, 0.02f, 0.0f);
    for (int i = 0; i < k_sam[a].depth; i++) {
        int global = 0;
        for (int g = 0; g < 4; g++) global |= k_sam[a].global[g] == i;
        int rows = 2 * (global ? G : 14) - 1;
        snprintf(p, sizeof p, "image_encoder.blocks.%d.", i);
#define NAME(suffix) (snprintf(name, sizeof name, "%s" suffix, p), name)
        add_norm(b, NAME("norm1"), D);
        add(b, NAME("attn.rel_pos_h"), 2, rows, hd, 0, 0, 0.1f, 0.0f);
        add(b, NAME("attn.rel_pos_w"), 2, rows, hd, 0, 0, 0.1f, 0.0f);
        add_linear(b, NAME("attn.qkv"), 3 * D, D);
        add_linear(b, NAME("attn.proj"), D, D);
        add_norm(b, NAME("norm2"), D);
        add_linear(b, NAME("mlp.lin1"), 4 * D, D);
        add_linear(b, NAME("mlp.lin2"), D, 4 * D);
#undef NAME
    }
    add(b, "image_encoder.neck.0.weight", 4, E, D, 1, 1, 1.0f / sqrtf((float)D), 0.0f);
    add_norm(b, "image_encoder.neck.1", E);
    add(b, "image_encoder.neck.2.weight", 4, E, E, 3, 3, 1.0f / 48.0f, 0.0f);
    add_norm(b, "image_encoder.neck.3", E);
    add(b, "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix", 2, 2, E / 2, 0, 0, 1.0f, 0.0f);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "prompt_encoder.point_embeddings.%d.weight", i);
        add(b, name, 2, 1, E, 0, 0, 1.0f, 0.0f);
    }
    add(b, "prompt_encoder.not_a_point_embed.weight", 2, 1, E, 0, 0, 1.0f, 0.0f);
    add(b, "prompt_encoder.mask_downscaling.0.weight", 4, 4, 1, 2, 2, 0.5f, 0.0f);
    add(b, "prompt_encoder.mask_downscaling.0.bias", 1, 4, 0, 0, 0, 0.02f, 0.0f);
    add_norm(b, "prompt_encoder.mask_downscaling.1", 4);
    add(b, "prompt_encoder.mask_downscaling.3.weight", 4, 16, 4, 2, 2, 0.25f, 0.0f);
    add(b, "prompt_encoder.mask_downscaling.3.bias", 1, 16, 0, 0, 0, 0.02f, 0.0f);
    add_norm(b, "prompt_encoder.mask_downscaling.4", 16);
    add(b, "prompt_encoder.mask_downscaling.6.weight", 4, E, 16, 1, 1, 0.25f, 0.0f);
    add(b, "prompt_encoder.mask_downscaling.6.bias", 1, E, 0, 0, 0, 0.02f, 0.0f);
    add(b, "prompt_encoder.no_mask_embed.weight", 2, 1, E, 0, 0, 1.0f, 0.0f);
    for (int l = 0; l < 2; l++) {
        snprintf(p, sizeof p, "mask_decoder.transformer.layers.%d.", l);
#define NAME(suffix) (snprintf(name, sizeof name, "%s" suffix, p), name)
        add_attn(b, NAME("self_attn"), E, E);
        add_norm(b, NAME("norm1"), E);
        add_attn(b, NAME("cross_attn_token_to_image"), E, E / 2);
        add_norm(b, NAME("norm2"), E);
        add_linear(b, NAME("mlp.lin1"), 2048, E);
        add_linear(b, NAME("mlp.lin2"), E, 2048);
        add_norm(b, NAME("norm3"), E);
        add_norm(b, NAME("norm4"), E);
        add_attn(b, NAME("cross_attn_image_to_token"), E, E / 2);
#undef NAME
    }
    add_attn(b, "mask_decoder.transformer.final_attn_token_to_image", E, E / 2);
    add_norm(b, "mask_decoder.transformer.norm_final_attn", E);
    add(b, "mask_decoder.iou_token.weight", 2, 1, E, 0, 0, 1.0f, 0.0f);
    add(b, "mask_decoder.mask_tokens.weight", 2, 4, E, 0, 0, 1.0f, 0.0f);
    add(b, "mask_decoder.output_upscaling.0.weight", 4, E, E / 4, 2, 2, 1.0f / 16.0f, 0.0f);
    add(b, "mask_decoder.output_upscaling.0.bias", 1, E / 4, 0, 0, 0, 0.02f, 0.0f);
    add_norm(b, "mask_decoder.output_upscaling.1", E / 4);
    add(b, "mask_decoder.output_upscaling.3.weight", 4, E / 4, E / 8, 2, 2, 1.0f / 8.0f, 0.0f);
    add(b, "mask_decoder.output_upscaling.3.bias", 1, E / 8, 0, 0, 0, 0.02f, 0.0f);
    for (int t = 0; t < 4; t++) {
        snprintf(p, sizeof p, "mask_decoder.output_hypernetworks_mlps.%d", t);
        add_mlp(b, p, E, E, E / 8, 3);
    }
    add_mlp(b, "mask_decoder.iou_prediction_head", E, 256, 4, 3);
}

cs_status cs_sam_synthetic(const char *arch, cs_sam **out) {
    *out = NULL;
    int a = find_sam(arch);
    if (a < 0) return error_set(CS_ERR_ARG, "unknown SAM architecture '%s' (vit_b, vit_l, vit_h)", arch);
    cs_tensor_table t;
    char label[64];
    snprintf(label, sizeof label, "synthetic:sam_%s", k_sam[a].name);
    tensors_init(&t, label);
    builder b = {&t, 0x5eed0000u + (uint64_t)a, t.path ? CS_OK : CS_ERR_NOMEM};
    build(&b, a);
    if (b.s != CS_OK) {
        tensors_free(&t);
        return b.s;
    }
    return sam_from_table(&t, NULL, out);
}

/* Meta's file names resolve in the CLIP names' cache folder (hub_cache_folder). */
cs_status cs_sam_resolve(const char *name_or_path, const char *cache_dir, int download,
                         cs_progress_fn progress, void *ctx, char *out, size_t out_len) {
    struct stat st;
    int a = find_sam(name_or_path);
    if (a < 0 || stat(name_or_path, &st) == 0) {
        if ((size_t)snprintf(out, out_len, "%s", name_or_path) >= out_len)
            return error_set(CS_ERR_ARG, "%s: path too long", name_or_path);
        return CS_OK;
    }
    char dir[4096], url[512], part[4200];
    cs_status s = hub_cache_folder(cache_dir, dir, sizeof dir);
    if (s != CS_OK) return s;
    if ((size_t)snprintf(out, out_len, "%s/%s", dir, k_sam[a].file) >= out_len)
        return error_set(CS_ERR_ARG, "%s/%s: path too long", dir, k_sam[a].file);
    if (stat(out, &st) == 0) return CS_OK;
    snprintf(url, sizeof url, SAM_URL_BASE "%s", k_sam[a].file);
    if (!download) return error_set(CS_ERR_MISSING, "%s not found; download %s and put it there", out, url);
    /* Meta publishes no checksum: the download must at least load as a SAM
     * checkpoint before it takes the name. */
    snprintf(part, sizeof part, "%s.part%ld", out, (long)getpid());
    s = cs_mkdirs(dir);
    if (s == CS_OK) s = download_to_file(url, part, NULL, progress, ctx);
    if (s == CS_OK) {
        cs_sam *m;
        s = cs_sam_load(part, NULL, &m);
        cs_sam_free(m);
        if (s == CS_OK && rename(part, out) != 0)
            s = error_set(CS_ERR_IO, "%s: cannot rename the download into place", out);
    }
    if (s != CS_OK) {
        unlink(part);
        error_prefix("could not fetch %s (or put the file at %s by hand)", k_sam[a].file, out);
    }
    return s;
}

/* ---------------------------------------------------------------- FLOPs */

double cs_sam_encoder_flops(const cs_sam *m) {
    const cs_sam_config *c = &m->cfg;
    double G = c->grid, GG = G * G, D = c->enc_width, E = c->embed_dim, P = c->patch_size;
    double f = 2 * GG * D * 3 * P * P + 2 * GG * D * E + 2 * GG * E * E * 9;
    for (int i = 0; i < c->enc_depth; i++) {
        double s = m->blocks[i].window ? m->blocks[i].window : G;
        double nw = ceil(G / s), T = nw * nw * s * s, Tw = s * s, R = 2 * s - 1;
        f += 2 * T * D * 3 * D + 2 * T * D * D;         /* qkv, proj */
        f += nw * nw * (4 * Tw * Tw * D + 4 * Tw * R * D); /* q k^T, P v, relative terms */
        f += 4 * GG * D * c->enc_mlp;                    /* MLP */
    }
    return f;
}

double cs_sam_decoder_flops(const cs_sam *m, int n_sparse) {
    const cs_sam_config *c = &m->cfg;
    double E = c->embed_dim, X = c->dec_cross_dim, H = c->dec_heads, Nq = 1 + c->n_mask_tokens + n_sparse;
    double Nk = (double)c->grid * c->grid;
    /* one cross attention between the tokens and the image, either way, in
     * the order sam_decoder.c computes it (folded: projections moved to the
     * token side) */
    double cross = sam_cross_folds(m, c->dec_heads, (int)Nq, c->dec_cross_dim)
                       ? 2 * Nq * E * X * 2 + 2 * Nq * X * E * 2 + 4 * H * Nq * Nk * E
                       : 2 * (Nq + Nk) * E * X * 2 + 4 * Nq * Nk * X;
    double f = 0;
    for (int i = 0; i < c->dec_depth; i++)
        f += 8 * Nq * E * E + 4 * Nq * Nq * E + 2 * cross + 4 * Nq * E * c->dec_mlp;
    f += cross;
    f += 2 * Nk * E * E + 2 * 4 * Nk * (E / 4) * (E / 2); /* upscaling */
    f += 2.0 * c->n_mask_tokens * 16 * Nk * (E / 8);       /* hyper_in x upscaled */
    return f;
}
