/* A model from a weight file: open it (weights.c), map names to the OpenAI
 * layout (names.c), infer the towers' configurations and bind their weights
 * (text.c, vit.c, resnet.c), check that every tensor was used; and the
 * model-level entry points of the public header. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/fileio.h"
#include "model.h"
#include "transformer.h"

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
    if (!root) return error_set(CS_ERR_FORMAT, "%s: not valid JSON", path);
    static const char *sections[2] = {"vision_config", "text_config"};
    for (int i = 0; i < 2 && s == CS_OK; i++) {
        cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, sections[i]);
        cJSON *heads = cJSON_GetObjectItemCaseSensitive(sec, "num_attention_heads");
        cJSON *act = cJSON_GetObjectItemCaseSensitive(sec, "hidden_act");
        if (cJSON_IsString(act) && strcmp(act->valuestring, "quick_gelu") != 0)
            s = error_set(CS_ERR_UNSUPPORTED, "%s: %s.hidden_act '%s' is not supported (CLIP uses quick_gelu)",
                        path, sections[i], act->valuestring);
        if (s != CS_OK || !heads) continue;
        /* valueint saturates: test the double itself. */
        if (!cJSON_IsNumber(heads) || !(heads->valuedouble >= 1 && heads->valuedouble <= 4096) ||
            heads->valuedouble != (double)(int)heads->valuedouble) {
            char *text = cJSON_PrintUnformatted(heads);
            s = error_set(CS_ERR_FORMAT, "%s: %s.num_attention_heads %s is not an integer in 1..4096",
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
        return error_set(CS_ERR_SHAPE, "%s: text width %d is not divisible by %d heads",
                       m->table.path, c->text_width, c->text_heads);
    if (c->vision_kind == CS_VISION_VIT && (c->vision_heads <= 0 || c->vision_width % c->vision_heads))
        return error_set(CS_ERR_SHAPE, "%s: vision width %d is not divisible by %d heads",
                       m->table.path, c->vision_width, c->vision_heads);
    return CS_OK;
}

cs_status model_from_table(cs_tensor_table *table, const char *hf_dir, cs_model **out) {
    *out = NULL;
    cs_model *m = mem_calloc(1, sizeof *m);
    if (!m) {
        tensors_free(table);
        return CS_ERR_NOMEM;
    }
    m->table = *table;
    memset(table, 0, sizeof *table);
    m->surgery_blocks = 6;
    cs_status s = model_canonicalize_names(&m->table);
    if (s == CS_OK) s = tensors_check_unique(&m->table); /* e.g. both an HF and an OpenAI name */
    if (s == CS_OK) s = text_infer_config(m);
    if (s == CS_OK) {
        if (tensors_find(&m->table, "visual.proj")) {
            s = vit_infer_config(m);
        } else if (tensors_find(&m->table, "visual.attnpool.c_proj.weight")) {
            m->cfg.vision_kind = CS_VISION_RESNET;
        } else {
            s = error_set(CS_ERR_MISSING, "%s: no vision tower found (neither 'visual.proj' of a ViT "
                        "nor 'visual.attnpool' of a ResNet)", m->table.path);
        }
    }
    if (s == CS_OK && hf_dir) s = apply_hf_config(m, hf_dir);
    if (s == CS_OK) s = check_heads(m);
    /* The transformer towers are bound now and prepared at their first run;
     * a ResNet folds its batch norms into the convolutions at load. */
    m->binding = &m->text.lazy;
    if (s == CS_OK) s = text_load(m);
    m->binding = m->cfg.vision_kind == CS_VISION_VIT ? &m->vit.lazy : NULL;
    /* Every run reads the image tower: a check of its weights before its
     * first pass would read them all once more (a whole ViT-B/16 explain
     * run from an F32 file took 348 ms with it, 319 without). A NaN or an
     * infinity in a weight the pass uses shows in its output (NaN * 0 is
     * NaN: no product, sum, norm, softmax or GELU makes it finite again),
     * which is checked instead, and the weights then searched for the one
     * to name. The text tower keeps the check: a run reads the embeddings
     * of its own tokens only. */
    m->vit.lazy.checks_output = 1;
    if (s == CS_OK) s = m->cfg.vision_kind == CS_VISION_VIT ? vit_load(m) : resnet_load(m);
    m->binding = NULL;
    if (s == CS_OK) s = model_check_all_used(m);
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
    cs_status s = model_open_table(path, &table, &dir);
    if (s != CS_OK) {
        tensors_free(&table);
        return s;
    }
    return model_from_table(&table, dir, out);
}

/* The towers are packed when they first run (model_prepare_*): a switch
 * before that costs nothing. A ResNet's convolutions are packed now. */
cs_status cs_model_set_precision(cs_model *m, cs_precision p) {
    if (p == m->precision) return CS_OK;
    if (p != CS_PRECISION_FP32 && p != CS_PRECISION_BF16 && p != CS_PRECISION_INT8)
        return error_set(CS_ERR_ARG, "unknown precision %d", (int)p);
    if (m->precision != CS_PRECISION_FP32)
        return error_set(CS_ERR_UNSUPPORTED, "%s: the model runs in %s and its fp32 weights were "
                         "released when they were packed; load it again for another precision",
                         m->table.path, m->precision == CS_PRECISION_BF16 ? "bf16" : "int8");
    m->precision = p;
    m->text.lazy.ready = m->vit.lazy.ready = 0; /* a tower run in fp32 packs at its next run */
    if (m->resnet && p == CS_PRECISION_BF16) return resnet_pack_bf16(m->resnet, m->cfg.embed_dim, &m->table);
    return CS_OK;
}

int cs_precision_fast(cs_precision p) {
    if (p == CS_PRECISION_BF16) return op_bf16_supported() || op_bf16_avx2_supported();
    if (p == CS_PRECISION_INT8) return op_int8_supported();
    return p == CS_PRECISION_FP32;
}

/* In fp32 a tower's linear weights go into oneDNN's layout (gemm_f32.h)
 * at its first pass, every pass then the same arithmetic (a process's
 * results never depend on what it ran before). */
static cs_status prepare_fp32(cs_model *m, cs_transformer *tr) {
    if (m->precision != CS_PRECISION_FP32 || m->fp32_openblas) return CS_OK;
    return transformer_pack(tr, CS_PRECISION_FP32, &m->table, 0);
}

/* int8 is for the image tower: the text tower's features carry per-channel
 * outliers that per-token int8 steps blur (2.9% max error on a full-size
 * synthetic ViT-B/16's text features, enough to move a map's top point),
 * and its class embeddings are computed once and cached, so it runs in
 * bf16. */
cs_status model_prepare_text(cs_model *m) {
    cs_status ready = op_gemm_ready();
    if (ready != CS_OK) return ready;
    cs_precision p = m->precision == CS_PRECISION_INT8 ? CS_PRECISION_BF16 : m->precision;
    cs_status s = model_tower_prepare(m, &m->text.lazy, &m->text.tr, p);
    return s == CS_OK ? prepare_fp32(m, &m->text.tr) : s;
}

cs_status model_prepare_vision(cs_model *m) {
    cs_status ready = op_gemm_ready();
    if (ready != CS_OK) return ready;
    if (m->cfg.vision_kind != CS_VISION_VIT) return CS_OK;
    cs_status s = model_tower_prepare(m, &m->vit.lazy, &m->vit.tr, m->precision);
    return s == CS_OK ? prepare_fp32(m, &m->vit.tr) : s;
}

void cs_model_free(cs_model *m) {
    if (!m) return;
    transformer_free_packed(&m->vit.tr);
    transformer_free_packed(&m->text.tr);
    model_tower_free(&m->vit.lazy);
    model_tower_free(&m->text.lazy);
    resnet_free(m->resnet);
    model_source_free(m->source);
    ws_free(&m->ws);
    tensors_free(&m->table);
    cs_free(m);
}

const cs_config *cs_model_config(const cs_model *m) { return &m->cfg; }

cs_status cs_model_set_surgery(cs_model *m, int vit_blocks, int resnet_normalize_v) {
    if (vit_blocks < 0)
        return error_set(CS_ERR_ARG, "the number of surgery blocks must be 0 or more (got %d)", vit_blocks);
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
        return error_set(CS_ERR_ARG, "input resolution %d is not a positive multiple of %d (at most 8192)",
                       resolution, unit);
    if ((int)mode < 0 || (int)mode > CS_VISION_GEM) return error_set(CS_ERR_ARG, "unknown vision mode %d", (int)mode);
    /* The later methods' modes share their values with cs_method's. */
    if (m->cfg.vision_kind != CS_VISION_VIT && mode > CS_VISION_SURGERY)
        return error_set(CS_ERR_UNSUPPORTED, "method %s needs a ViT model (this one is a ResNet)",
                       cs_method_name((cs_method)mode));
    if (batch < 1 || (int64_t)batch * cs_model_num_tokens(m, resolution) > (1 << 24))
        return error_set(CS_ERR_ARG, "batch of %d images at %d is out of range", batch, resolution);
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
        return error_set(CS_ERR_ARG, "text context %d is outside 1..%d", context, m->cfg.context_length);
    for (int64_t i = 0; i < (int64_t)n * context; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return error_set(CS_ERR_ARG, "token id %d at text %lld is outside the vocabulary (0..%d)",
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

/* 1 where x is a transformer block's linear weight (either tower). */
static int is_linear_weight(const cs_model *m, const cs_tensor *x) {
    const cs_transformer *towers[] = {&m->vit.tr, &m->text.tr};
    for (int t = 0; t < 2; t++)
        for (int l = 0; towers[t]->blocks && l < towers[t]->layers; l++)
            for (int j = 0; j < 4; j++)
                if (towers[t]->blocks[l].linear[j] == x) return 1;
    return 0;
}

cs_status cs_model_save(const cs_model *m, const char *path, cs_save_dtype dtype) {
    static const cs_dtype k_file[] = {CS_DT_F32, CS_DT_F16, CS_DT_BF16, CS_DT_BF16};
    if ((unsigned)dtype >= sizeof k_file / sizeof *k_file)
        return error_set(CS_ERR_ARG, "%s: unknown save dtype %d", path, (int)dtype);
    const cs_tensor **list = mem_alloc((size_t)m->table.n + 1, sizeof *list);
    unsigned char *panels = mem_calloc((size_t)m->table.n + 1, 1);
    if (!list || !panels) {
        cs_free(list);
        cs_free(panels);
        return CS_ERR_NOMEM;
    }
    int n = 0;
    cs_status s = CS_OK;
    /* The towers check their weights when they first run; a file written
     * from a model may not have run at all, and must not carry a NaN on. */
    for (int i = 0; s == CS_OK && i < m->table.n; i++) {
        const cs_tensor *x = &m->table.items[i];
        if (!is_openai_weight(x)) continue;
        panels[n] = dtype == CS_SAVE_BF16_PACKED && is_linear_weight(m, x) && tensor_panels_fit(x);
        list[n++] = x;
        s = tensor_check_finite(&m->table, x);
    }
    if (s == CS_OK) s = safetensors_write(path, list, n, k_file[dtype], panels);
    cs_free(list);
    cs_free(panels);
    return s;
}
