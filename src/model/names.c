/* Hugging Face transformers CLIP names -> OpenAI CLIP names, so the loader
 * knows one layout. Separate q/k/v projections are concatenated into one
 * in-projection (one QKV GEMM); the projections, stored [D, W] as nn.Linear
 * weights, are transposed to OpenAI's [W, D]. */
#include <stdio.h>
#include <string.h>
#include "model.h"

static cs_status add_f32(cs_tensor_table *t, const char *name, int ndim, const int64_t *shape,
                         float *data) {
    return tensors_add(t, name, CS_DT_F32, ndim, shape, data,
                          (size_t)shape[0] * (ndim > 1 ? (size_t)shape[1] : 1) * sizeof(float), 1);
}

/* An alias: a second entry that shares the first one's data. */
static cs_status alias(cs_tensor_table *t, const char *hf, const char *openai) {
    cs_tensor *x = (cs_tensor *)tensors_find(t, hf);
    if (!x) return CS_OK; /* absence is reported by the loader, under the OpenAI name */
    x->used = 1; /* consumed: the alias is what the loader binds */
    cs_tensor copy = *x;
    cs_status s = tensors_add(t, openai, copy.dtype, copy.ndim, copy.shape, copy.data, copy.nbytes, 0);
    if (s == CS_OK) t->items[t->n - 1].bf16_panels = copy.bf16_panels;
    return s;
}

static cs_status transposed(cs_tensor_table *t, const char *hf, const char *openai) {
    cs_tensor *x = (cs_tensor *)tensors_find(t, hf);
    if (!x) return CS_OK;
    if (x->ndim != 2)
        return error_set(CS_ERR_SHAPE, "%s: tensor '%s' should have 2 dimensions", t->path, hf);
    /* Checked before any loop runs over the rows: [9e15, 0] holds nothing
     * but would take 9e15 iterations to transpose. */
    if (x->shape[0] < 1 || x->shape[1] < 1)
        return error_set(CS_ERR_SHAPE, "%s: tensor '%s' has an empty dimension [%lld, %lld]", t->path,
                       hf, (long long)x->shape[0], (long long)x->shape[1]);
    x->used = 1;
    int64_t r = x->shape[0], c = x->shape[1];
    float *src = mem_alloc((size_t)(r * c), sizeof(float));
    float *dst = mem_alloc((size_t)(r * c), sizeof(float));
    cs_status s = (src && dst) ? tensor_to_f32(x, src) : CS_ERR_NOMEM;
    if (s == CS_OK)
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < c; j++) dst[j * r + i] = src[i * c + j];
    cs_free(src);
    if (s != CS_OK) {
        cs_free(dst);
        return s;
    }
    int64_t shape[2] = {c, r};
    return add_f32(t, openai, 2, shape, dst);
}

/* Concatenate prefix{q,k,v}_proj.<suffix> along dim 0 into openai. */
static cs_status concat_qkv(cs_tensor_table *t, const char *prefix, const char *suffix,
                            const char *openai) {
    static const char *parts[3] = {"q_proj", "k_proj", "v_proj"};
    const cs_tensor *x[3];
    char name[256];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s%s.%s", prefix, parts[i], suffix);
        x[i] = tensors_find(t, name);
        if (!x[i]) return error_set(CS_ERR_MISSING, "%s: required tensor '%s' is missing", t->path, name);
        int want_ndim = strcmp(suffix, "weight") ? 1 : 2;
        if (x[i]->ndim != want_ndim || x[i]->shape[0] < 1 || (want_ndim == 2 && x[i]->shape[1] < 1))
            return error_set(CS_ERR_SHAPE, "%s: tensor '%s' should be a non-empty %s", t->path, name,
                           want_ndim == 2 ? "matrix" : "vector");
        if (x[i]->shape[0] != x[0]->shape[0] ||
            (want_ndim == 2 && x[i]->shape[1] != x[0]->shape[1]))
            return error_set(CS_ERR_SHAPE, "%s: tensor '%s' does not match the shape of '%sq_proj.%s'",
                           t->path, name, prefix, suffix);
    }
    for (int i = 0; i < 3; i++) ((cs_tensor *)x[i])->used = 1;
    int64_t each = tensor_numel(x[0]);
    float *dst = mem_alloc((size_t)(3 * each), sizeof(float));
    if (!dst) return CS_ERR_NOMEM;
    for (int i = 0; i < 3; i++) {
        cs_status s = tensor_to_f32(x[i], dst + i * each);
        if (s != CS_OK) {
            cs_free(dst);
            return s;
        }
    }
    int64_t shape[2] = {3 * x[0]->shape[0], x[0]->ndim > 1 ? x[0]->shape[1] : 1};
    return add_f32(t, openai, x[0]->ndim, shape, dst);
}

/* Whether any tensor's name starts with prefix. */
static int has_prefix(const cs_tensor_table *t, const char *prefix) {
    size_t n = strlen(prefix);
    for (int i = 0; i < t->n; i++)
        if (!strncmp(t->items[i].name, prefix, n)) return 1;
    return 0;
}

/* The layers under hf: up to the highest index, none missing. A gap
 * (layers 0, 1, 3) is named here: counting up to the first gap would load
 * a shorter model and leave the later layers to the unused-tensor check,
 * which cannot say which layer is missing. */
static int count_layers(const cs_tensor_table *t, const char *hf, cs_status *s) {
    int n = model_count_blocks(t, hf);
    *s = n < 0 ? error_set(CS_ERR_LIMIT, "%s: a layer index under '%s' is over the limit of %d", t->path, hf,
                                       MAX_BLOCKS)
               : CS_OK;
    char name[256];
    for (int l = 0; *s == CS_OK && l < n; l++) {
        snprintf(name, sizeof name, "%s%d.", hf, l);
        if (!has_prefix(t, name))
            *s = error_set(CS_ERR_MISSING, "%s: layer %d ('%s*') is missing; the file has layers up to %d", t->path,
                         l, name, n - 1);
    }
    return n;
}

static cs_status map_layers(cs_tensor_table *t, const char *hf, const char *openai) {
    static const char *pairs[][2] = {
        {"layer_norm1.weight", "ln_1.weight"},          {"layer_norm1.bias", "ln_1.bias"},
        {"layer_norm2.weight", "ln_2.weight"},          {"layer_norm2.bias", "ln_2.bias"},
        {"self_attn.out_proj.weight", "attn.out_proj.weight"},
        {"self_attn.out_proj.bias", "attn.out_proj.bias"},
        {"mlp.fc1.weight", "mlp.c_fc.weight"},          {"mlp.fc1.bias", "mlp.c_fc.bias"},
        {"mlp.fc2.weight", "mlp.c_proj.weight"},        {"mlp.fc2.bias", "mlp.c_proj.bias"},
    };
    cs_status s;
    int layers = count_layers(t, hf, &s);
    if (s != CS_OK) return s;
    char a[256], b[256];
    for (int l = 0; l < layers; l++) {
        for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
            snprintf(a, sizeof a, "%s%d.%s", hf, l, pairs[i][0]);
            snprintf(b, sizeof b, "%s%d.%s", openai, l, pairs[i][1]);
            if ((s = alias(t, a, b)) != CS_OK) return s;
        }
        snprintf(a, sizeof a, "%s%d.self_attn.", hf, l);
        snprintf(b, sizeof b, "%s%d.attn.in_proj_weight", openai, l);
        s = concat_qkv(t, a, "weight", b);
        snprintf(b, sizeof b, "%s%d.attn.in_proj_bias", openai, l);
        if (s == CS_OK) s = concat_qkv(t, a, "bias", b);
        if (s != CS_OK) return s;
    }
    return CS_OK;
}

cs_status model_canonicalize_names(cs_tensor_table *t) {
    if (!tensors_find(t, "vision_model.embeddings.patch_embedding.weight") &&
        !tensors_find(t, "text_model.embeddings.token_embedding.weight"))
        return CS_OK;
    static const char *pairs[][2] = {
        {"vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"},
        {"vision_model.embeddings.class_embedding", "visual.class_embedding"},
        {"vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"},
        {"vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"},
        {"vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"},
        {"vision_model.post_layernorm.weight", "visual.ln_post.weight"},
        {"vision_model.post_layernorm.bias", "visual.ln_post.bias"},
        {"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
        {"text_model.embeddings.position_embedding.weight", "positional_embedding"},
        {"text_model.final_layer_norm.weight", "ln_final.weight"},
        {"text_model.final_layer_norm.bias", "ln_final.bias"},
    };
    cs_status s = CS_OK;
    for (size_t i = 0; s == CS_OK && i < sizeof pairs / sizeof *pairs; i++)
        s = alias(t, pairs[i][0], pairs[i][1]);
    if (s == CS_OK) s = transposed(t, "visual_projection.weight", "visual.proj");
    if (s == CS_OK) s = transposed(t, "text_projection.weight", "text_projection");
    if (s == CS_OK)
        s = map_layers(t, "vision_model.encoder.layers.", "visual.transformer.resblocks.");
    if (s == CS_OK) s = map_layers(t, "text_model.encoder.layers.", "transformer.resblocks.");
    return s;
}
