/* Models with random weights and the real architectures of the OpenAI CLIP
 * releases, built in memory under OpenAI names, so benchmarks need no weight
 * file. The numbers mean nothing; the shapes and the work are real. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "model.h"

typedef struct arch {
    const char *name;
    int embed, res;
    int vit_width, vit_layers, patch;     /* ViT (vit_width 0: ResNet) */
    int rn_layers[4], rn_width;           /* ResNet */
    int text_width, text_layers;
} arch;

static const arch k_archs[] = {
    {"RN50", 1024, 224, 0, 0, 0, {3, 4, 6, 3}, 64, 512, 12},
    {"RN101", 512, 224, 0, 0, 0, {3, 4, 23, 3}, 64, 512, 12},
    {"RN50x4", 640, 288, 0, 0, 0, {4, 6, 10, 6}, 80, 640, 12},
    {"RN50x16", 768, 384, 0, 0, 0, {6, 8, 18, 8}, 96, 768, 12},
    {"RN50x64", 1024, 448, 0, 0, 0, {3, 15, 36, 10}, 128, 1024, 12},
    {"ViT-B/32", 512, 224, 768, 12, 32, {0}, 0, 512, 12},
    {"ViT-B/16", 512, 224, 768, 12, 16, {0}, 0, 512, 12},
    {"ViT-L/14", 768, 224, 1024, 24, 14, {0}, 0, 768, 12},
    {"ViT-L/14@336px", 768, 336, 1024, 24, 14, {0}, 0, 768, 12},
};

typedef struct builder {
    cs_tensor_table *t;
    uint64_t rng;
    cs_status status;
} builder;

/* Uniform in [-scale, scale] + offset, from a 64-bit LCG. */
static void add(builder *b, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2,
                int64_t d3, float scale, float offset) {
    if (b->status != CS_OK) return;
    int64_t shape[4] = {d0, d1, d2, d3}, n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *x = mem_alloc((size_t)(n ? n : 1), sizeof(float));
    if (!x) {
        b->status = CS_ERR_NOMEM;
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        b->rng = b->rng * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = offset + scale * ((float)(b->rng >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
    }
    b->status = tensors_add(b->t, name, CS_DT_F32, ndim, shape, x, (size_t)n * sizeof(float), 1);
}

static void add_ln(builder *b, const char *prefix, int w) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    add(b, name, 1, w, 0, 0, 0, 0.1f, 1.0f);
    snprintf(name, sizeof name, "%s.bias", prefix);
    add(b, name, 1, w, 0, 0, 0, 0.1f, 0.0f);
}

static void add_transformer(builder *b, const char *prefix, int W, int layers) {
    char name[256];
    float s = 1.0f / sqrtf((float)W);
    for (int l = 0; l < layers; l++) {
#define T2(suffix, r, c) snprintf(name, sizeof name, "%s%d.%s", prefix, l, suffix), add(b, name, 2, r, c, 0, 0, s, 0)
#define T1(suffix, r) snprintf(name, sizeof name, "%s%d.%s", prefix, l, suffix), add(b, name, 1, r, 0, 0, 0, 0.02f, 0)
        T2("attn.in_proj_weight", 3 * W, W);
        T1("attn.in_proj_bias", 3 * W);
        T2("attn.out_proj.weight", W, W);
        T1("attn.out_proj.bias", W);
        T2("mlp.c_fc.weight", 4 * W, W);
        T1("mlp.c_fc.bias", 4 * W);
        T2("mlp.c_proj.weight", W, 4 * W);
        T1("mlp.c_proj.bias", W);
#undef T1
#undef T2
        snprintf(name, sizeof name, "%s%d.ln_1", prefix, l);
        add_ln(b, name, W);
        snprintf(name, sizeof name, "%s%d.ln_2", prefix, l);
        add_ln(b, name, W);
    }
}

static void add_conv_bn(builder *b, const char *conv, const char *bn, int cout, int cin, int k) {
    char name[256];
    add(b, conv, 4, cout, cin, k, k, 1.0f / sqrtf((float)(cin * k * k)), 0);
    static const char *parts[4] = {"weight", "bias", "running_mean", "running_var"};
    static const float offsets[4] = {1.0f, 0.0f, 0.0f, 1.0f};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", bn, parts[i]);
        add(b, name, 1, cout, 0, 0, 0, 0.1f, offsets[i]);
    }
}

static void add_resnet(builder *b, const arch *a) {
    int w = a->rn_width, inplanes = w;
    char conv[256], bn[256];
    add_conv_bn(b, "visual.conv1.weight", "visual.bn1", w / 2, 3, 3);
    add_conv_bn(b, "visual.conv2.weight", "visual.bn2", w / 2, w / 2, 3);
    add_conv_bn(b, "visual.conv3.weight", "visual.bn3", w, w / 2, 3);
    for (int stage = 0; stage < 4; stage++) {
        int planes = w << stage;
        for (int i = 0; i < a->rn_layers[stage]; i++) {
            int stride = (stage > 0 && i == 0) ? 2 : 1;
            static const int ks[3] = {1, 3, 1};
            for (int c = 0; c < 3; c++) {
                snprintf(conv, sizeof conv, "visual.layer%d.%d.conv%d.weight", stage + 1, i, c + 1);
                snprintf(bn, sizeof bn, "visual.layer%d.%d.bn%d", stage + 1, i, c + 1);
                add_conv_bn(b, conv, bn, c == 2 ? planes * 4 : planes, c == 0 ? inplanes : planes, ks[c]);
            }
            if (stride > 1 || inplanes != planes * 4) {
                snprintf(conv, sizeof conv, "visual.layer%d.%d.downsample.0.weight", stage + 1, i);
                snprintf(bn, sizeof bn, "visual.layer%d.%d.downsample.1", stage + 1, i);
                add_conv_bn(b, conv, bn, planes * 4, inplanes, 1);
            }
            inplanes = planes * 4;
        }
    }
    int E = w * 32, G = a->res / 32;
    float s = 1.0f / sqrtf((float)E);
    add(b, "visual.attnpool.positional_embedding", 2, G * G + 1, E, 0, 0, s, 0);
    static const char *proj[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        snprintf(conv, sizeof conv, "visual.attnpool.%s_proj.weight", proj[i]);
        add(b, conv, 2, E, E, 0, 0, s, 0);
        snprintf(conv, sizeof conv, "visual.attnpool.%s_proj.bias", proj[i]);
        add(b, conv, 1, E, 0, 0, 0, 0.02f, 0);
    }
    add(b, "visual.attnpool.c_proj.weight", 2, a->embed, E, 0, 0, s, 0);
    add(b, "visual.attnpool.c_proj.bias", 1, a->embed, 0, 0, 0, 0.02f, 0);
}

static void add_vit(builder *b, const arch *a) {
    int W = a->vit_width, P = a->patch, G = a->res / P;
    float s = 1.0f / sqrtf((float)W);
    add(b, "visual.conv1.weight", 4, W, 3, P, P, 1.0f / sqrtf(3.0f * P * P), 0);
    add(b, "visual.class_embedding", 1, W, 0, 0, 0, s, 0);
    add(b, "visual.positional_embedding", 2, G * G + 1, W, 0, 0, s, 0);
    add_ln(b, "visual.ln_pre", W);
    add_ln(b, "visual.ln_post", W);
    add(b, "visual.proj", 2, W, a->embed, 0, 0, s, 0);
    add_transformer(b, "visual.transformer.resblocks.", W, a->vit_layers);
}

static void add_text(builder *b, const arch *a) {
    int W = a->text_width;
    add(b, "token_embedding.weight", 2, 49408, W, 0, 0, 0.02f, 0);
    add(b, "positional_embedding", 2, 77, W, 0, 0, 0.01f, 0);
    add_ln(b, "ln_final", W);
    add(b, "text_projection", 2, W, a->embed, 0, 0, 1.0f / sqrtf((float)W), 0);
    add(b, "logit_scale", 0, 0, 0, 0, 0, 0.0f, 4.6052f);
    add_transformer(b, "transformer.resblocks.", W, a->text_layers);
}

cs_status cs_model_synthetic(const char *name, cs_model **out) {
    *out = NULL;
    const arch *a = NULL;
    for (size_t i = 0; i < sizeof k_archs / sizeof *k_archs; i++)
        if (!strcmp(k_archs[i].name, name)) a = &k_archs[i];
    if (!a) return error_set(CS_ERR_ARG, "unknown architecture '%s' (RN50, RN101, RN50x4, RN50x16, "
                           "RN50x64, ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336px)", name);
    cs_tensor_table t;
    char label[64];
    snprintf(label, sizeof label, "synthetic %s", name);
    tensors_init(&t, label);
    builder b = {&t, 0x9e3779b97f4a7c15ull, CS_OK};
    if (a->vit_width) add_vit(&b, a);
    else add_resnet(&b, a);
    add_text(&b, a);
    if (b.status != CS_OK) {
        tensors_free(&t);
        return b.status;
    }
    return model_from_table(&t, NULL, out);
}
