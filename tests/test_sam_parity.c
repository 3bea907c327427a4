/* Segment Anything against Meta's own outputs in ../shared/golden/sam/tiny-sam,
 * from both weight files (safetensors F16 and torch.save float32): every
 * preprocessing step, every traced activation of the encoder and the
 * decoder, low-res logits, IoU, upscaled logits and masks (exact except at
 * the pixels fragile.npz lists), for every prompt of both images. */
#include <stdlib.h>
#include "golden.h"
#include "ops/resize_pillow.h"
#include "sam/sam.h"
#include "test.h"

#define SET "sam/tiny-sam"

/* ---------------------------------------------------------------- trace capture */
typedef struct captured {
    char name[64];
    float *x;
    size_t n;
} captured;

typedef struct capture {
    captured items[64];
    int n;
} capture;

static void on_trace(void *ctx, const char *name, const float *x, size_t n) {
    capture *c = ctx;
    if (c->n == 64) return;
    captured *it = &c->items[c->n++];
    snprintf(it->name, sizeof it->name, "%s", name);
    it->x = malloc(sizeof(float) * n);
    memcpy(it->x, x, sizeof(float) * n);
    it->n = n;
}

static void capture_reset(capture *c) {
    for (int i = 0; i < c->n; i++) free(c->items[i].x);
    c->n = 0;
}

static const captured *find(const capture *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->items[i].name, name)) return &c->items[i];
    return NULL;
}

/* The traced activation `name` against golden inter/<stem>_<golden>.npy. */
static void check_traced(const capture *c, const char *name, const char *stem, const char *golden) {
    char rel[256];
    snprintf(rel, sizeof rel, SET "/inter/%s_%s.npy", stem, golden);
    if (!golden_entry(rel)) return;
    const captured *it = find(c, name);
    CHECK_MSG(it != NULL, "activation %s was not traced", name);
    if (it) golden_check_floats(rel, it->x, (int64_t)it->n);
}

/* ---------------------------------------------------------------- masks */

/* ---------------------------------------------------------------- prompts */

typedef struct prompt {
    const char *name;
    int n;
    float points[32][2];
    int32_t labels[32];
    int has_box;
    float box[4];
    int has_mask;
} prompt;

static void prompt_from_json(const char *name, cJSON *j, prompt *p) {
    memset(p, 0, sizeof *p);
    p->name = name;
    cJSON *pc = cJSON_GetObjectItemCaseSensitive(j, "point_coords"), *pl = cJSON_GetObjectItemCaseSensitive(j, "point_labels");
    cJSON *box = cJSON_GetObjectItemCaseSensitive(j, "box"), *it;
    cJSON_ArrayForEach(it, pc) {
        p->points[p->n][0] = (float)cJSON_GetArrayItem(it, 0)->valuedouble;
        p->points[p->n][1] = (float)cJSON_GetArrayItem(it, 1)->valuedouble;
        p->labels[p->n] = cJSON_GetArrayItem(pl, p->n)->valueint;
        p->n++;
    }
    if (box) {
        p->has_box = 1;
        for (int i = 0; i < 4; i++) p->box[i] = (float)cJSON_GetArrayItem(box, i)->valuedouble;
    }
    p->has_mask = cJSON_GetObjectItemCaseSensitive(j, "mask_input") != NULL;
}

static void check_prompt(cs_sam *m, capture *cap, const cs_sam_embedding *e, const char *image,
                         const prompt *p) {
    char stem[128], rel[256], file[160];
    snprintf(stem, sizeof stem, "%s_%s", image, p->name);
    /* coordinates in the model frame: exact */
    float coords[32][2], box[4];
    sam_apply_coords(&p->points[0][0], p->n, e->image_h, e->image_w, e->input_h, e->input_w, &coords[0][0]);
    snprintf(rel, sizeof rel, SET "/%s_coords.npy", stem);
    if (p->n) golden_check_exact(rel, coords, sizeof(float) * 2 * p->n);
    snprintf(rel, sizeof rel, SET "/%s_labels.npy", stem);
    if (p->n) golden_check_exact(rel, p->labels, sizeof(int32_t) * p->n);
    if (p->has_box) {
        sam_apply_coords(p->box, 2, e->image_h, e->image_w, e->input_h, e->input_w, box);
        snprintf(rel, sizeof rel, SET "/%s_box.npy", stem);
        golden_check_exact(rel, box, sizeof box);
    }
    cs_array mask = {0};
    if (p->has_mask) {
        snprintf(rel, sizeof rel, SET "/%s_mask_input.npy", stem);
        golden_load(rel, &mask);
    }
    for (int multi = 1; multi >= 0; multi--) {
        cs_sam_prompt sp = {p->n, &p->points[0][0], p->labels, p->has_box ? p->box : NULL,
                            p->has_mask ? mask.data : NULL, multi};
        cs_sam_result r;
        capture_reset(cap);
        CHECK_OK(cs_sam_predict(m, e, &sp, &r));
        if (!r.n_masks) continue;
        if (multi) {
            static const char *names[] = {"sparse", "dense", "hs", "src", "upscaled", "hyper_in",
                                          "masks_all", "iou_all"};
            for (size_t i = 0; i < sizeof names / sizeof *names; i++) check_traced(cap, names[i], stem, names[i]);
        }
        const char *kind = multi ? "multi" : "single";
        size_t HW = (size_t)r.width * r.height, LL = (size_t)r.lowres * r.lowres;
        snprintf(rel, sizeof rel, SET "/%s_%s_lowres.npy", stem, kind);
        golden_check_floats(rel, r.lowres_logits, (int64_t)(r.n_masks * LL));
        snprintf(rel, sizeof rel, SET "/%s_%s_iou.npy", stem, kind);
        golden_check_floats(rel, r.iou, r.n_masks);
        snprintf(rel, sizeof rel, SET "/%s_%s_logits.npy", stem, kind);
        if (golden_entry(rel)) golden_check_floats(rel, r.logits, (int64_t)(r.n_masks * HW));
        snprintf(file, sizeof file, "%s_%s_masks", stem, kind);
        golden_check_sam_masks(file, r.masks, r.n_masks * HW, r.height, r.width);
        /* pt1's best low-res logits are what pt1mask feeds back */
        if (multi && !strcmp(stem, "chelsea_pt1")) {
            snprintf(rel, sizeof rel, SET "/chelsea_pt1mask_mask_input.npy");
            golden_check_floats(rel, r.lowres_logits + cs_sam_best_mask(&r) * LL, (int64_t)LL);
        }
        cs_sam_result_free(&r);
    }
    cs_array_free(&mask);
}

/* ---------------------------------------------------------------- images */

static void check_image(cs_sam *m, capture *cap, const char *image, cJSON *prompts, int encoder_inter) {
    char rel[256], path[256];
    snprintf(path, sizeof path, "golden/" SET "/%s.png", image);
    cs_image img;
    CHECK_OK(cs_image_load(golden_path(path), NULL, &img));
    if (!img.rgb) return;
    snprintf(rel, sizeof rel, SET "/%s_rgb_u8.npy", image);
    golden_check_exact(rel, img.rgb, (size_t)img.width * img.height * 3);
    int S = cs_sam_get_config(m)->image_size, nh, nw;
    sam_preprocess_shape(img.height, img.width, S, &nh, &nw);
    uint8_t *small = malloc((size_t)nh * nw * 3);
    CHECK_OK(op_resize_pillow_u8(img.rgb, img.width, img.height, 3, small, nw, nh, OP_RESAMPLE_BILINEAR));
    snprintf(rel, sizeof rel, SET "/%s_resized_u8.npy", image);
    golden_check_exact(rel, small, (size_t)nh * nw * 3);
    free(small);

    capture_reset(cap);
    cs_sam_embedding e;
    CHECK_OK(cs_sam_encode(m, &img, &e));
    if (!e.data) return;
    CHECK(e.input_w == nw && e.input_h == nh && e.image_w == img.width && e.image_h == img.height);
    snprintf(rel, sizeof rel, SET "/%s_pre.npy", image);
    const captured *pre = find(cap, "pre");
    CHECK(pre != NULL);
    if (pre) golden_check_floats(rel, pre->x, (int64_t)pre->n);
    if (encoder_inter) {
        static const char *names[] = {"patch_embed", "block00", "block00_attn", "block01", "block01_attn",
                                      "block02", "block03", "neck0", "neck1", "neck2"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) check_traced(cap, names[i], image, names[i]);
    }
    snprintf(rel, sizeof rel, SET "/%s_embed.npy", image);
    golden_check_floats(rel, e.data, (int64_t)e.dim * e.grid * e.grid);

    cJSON *set = cJSON_GetObjectItemCaseSensitive(prompts, image), *p;
    int n_prompts = 0;
    cJSON_ArrayForEach(p, set) {
        prompt pr;
        prompt_from_json(p->string, p, &pr);
        check_prompt(m, cap, &e, image, &pr);
        n_prompts++;
    }
    CHECK(n_prompts > 0);
    cs_sam_embedding_free(&e);
    cs_image_free(&img);
}

/* bf16 encoder weights: not the parity path; its loss on the embedding is
 * reported, and must stay small (cosine >= 0.999), and fp32 comes back
 * bit for bit. */
static void check_bf16(cs_sam *m) {
    cs_image img;
    CHECK_OK(cs_image_load(golden_path("golden/" SET "/chelsea.png"), NULL, &img));
    cs_sam_embedding e32, e16;
    m->trace = NULL;
    CHECK_OK(cs_sam_encode(m, &img, &e32));
    CHECK_OK(cs_sam_set_precision(m, CS_PRECISION_BF16));
    CHECK_OK(cs_sam_encode(m, &img, &e16));
    cs_array g;
    golden_load(SET "/chelsea_embed.npy", &g);
    double relerr = 0, cosine = 0;
    if (e16.data) golden_error(e16.data, g.data, NULL, cs_array_numel(&g), &relerr, &cosine);
    printf("bf16 encoder: chelsea_embed rel_err %.3g cosine %.6f (not the parity path)\n", relerr, cosine);
    CHECK(cosine >= 0.999);
    cs_sam_embedding back;
    CHECK_OK(cs_sam_set_precision(m, CS_PRECISION_FP32));
    CHECK_OK(cs_sam_encode(m, &img, &back));
    CHECK(back.data && e32.data && !memcmp(back.data, e32.data, sizeof(float) * (size_t)cs_array_numel(&g)));
    CHECK_STATUS(cs_sam_set_precision(m, (cs_precision)9), CS_ERR_ARG);
    cs_sam_embedding_free(&back);
    cs_sam_embedding_free(&e16);
    cs_sam_embedding_free(&e32);
    cs_array_free(&g);
    cs_image_free(&img);
}

static void check_model(const char *file, const cs_sam_load_options *opts) {
    printf("model %s\n", file);
    cJSON *man = golden_set_manifest(SET);
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(man, "config");
    cs_sam *m;
    CHECK_OK(cs_sam_load(golden_path(file), opts, &m));
    if (!m) return;
    const cs_sam_config *c = cs_sam_get_config(m);
#define CFG(key) cJSON_GetObjectItemCaseSensitive(cfg, key)->valueint
    CHECK(c->image_size == CFG("image_size") && c->patch_size == CFG("vit_patch_size"));
    CHECK(c->enc_width == CFG("encoder_embed_dim") && c->enc_depth == CFG("encoder_depth"));
    CHECK(c->enc_heads == CFG("encoder_num_heads") && c->window == CFG("window_size"));
    CHECK(c->embed_dim == CFG("prompt_embed_dim") && c->mask_in_chans == CFG("mask_in_chans"));
    CHECK(c->dec_depth == CFG("decoder_depth") && c->dec_mlp == CFG("decoder_mlp_dim"));
    CHECK(c->dec_heads == CFG("decoder_num_heads") && c->n_mask_tokens == 1 + CFG("num_multimask_outputs"));
    CHECK(c->iou_depth == CFG("iou_head_depth") && c->iou_hidden == CFG("iou_head_hidden_dim"));
    CHECK(c->enc_mlp == CFG("mlp_ratio") * c->enc_width);
#undef CFG
    cJSON *gi = cJSON_GetObjectItemCaseSensitive(cfg, "encoder_global_attn_indexes"), *g;
    int ng = 0;
    cJSON_ArrayForEach(g, gi) {
        CHECK(ng < c->n_global && c->global_blocks[ng] == g->valueint);
        ng++;
    }
    CHECK(ng == c->n_global);
    capture cap = {0};
    m->trace = on_trace;
    m->trace_ctx = &cap;
    cs_array pe;
    golden_load(SET "/image_pe.npy", &pe);
    float *dense = malloc(pe.nbytes);
    sam_dense_pe(m, dense);
    golden_check_floats(SET "/image_pe.npy", dense, cs_array_numel(&pe));
    free(dense);
    cs_array_free(&pe);
    cJSON *prompts = cJSON_GetObjectItemCaseSensitive(man, "prompts");
    check_image(m, &cap, "chelsea", prompts, 1);
    check_image(m, &cap, "chelsearot", prompts, 0);
    capture_reset(&cap);
    check_bf16(m);
    cs_sam_free(m);
}

int main(void) {
    golden_shared_dir();
    /* The safetensors file's metadata names the decoder's 2 heads; a .pth
     * carries no such thing (nor does any tensor shape), so the caller says
     * it, as for Meta's own build_sam. */
    check_model("golden/" SET "/model.safetensors", NULL);
    cs_sam_load_options opts = {.decoder_heads = 2};
    check_model("golden/" SET "/model.pth", &opts);
    return test_finish();
}
