/* Layer 4, model: one plain struct for config and weights (fp32, in the
 * layout the GEMM wants), built from a tensor table whatever its naming. */
#ifndef CS_MODEL_H
#define CS_MODEL_H

#include "clip_surgery.h"
#include "base/workspace.h"
#include "formats/tensors.h"
#include "ops/gemm_bf16.h"
#include "ops/gemm_f32.h"
#include "ops/gemm_int8.h"

typedef struct cs_layer_norm { const float *w, *b; } cs_layer_norm;

/* One residual attention block (CLIP's ResidualAttentionBlock). */
typedef struct cs_block {
    cs_layer_norm ln_1, ln_2;
    const float *qkv_w, *qkv_b;   /* [3W, W], [3W]: q | k | v */
    const float *out_w, *out_b;   /* [W, W], [W] */
    const float *fc_w, *fc_b;     /* [4W, W], [4W] */
    const float *proj_w, *proj_b; /* [W, 4W], [W] */
    /* The four weights packed: for oneDNN in fp32 (the *_w above then
     * NULL), or bf16 or int8 copies (data NULL: not that precision). All
     * empty: fp32 as stored, through OpenBLAS. */
    op_f32_weights qkv32, out32, fc32, proj32;
    op_bf16_weights qkv16, out16, fc16, proj16;
    op_int8_weights qkv8, out8, fc8, proj8;
    const cs_tensor *linear[4]; /* the file's qkv, out, fc, proj weights: packed from these */
} cs_block;

typedef struct cs_transformer {
    int width, layers, heads;
    cs_block *blocks;
} cs_transformer;

/* A weight bound at load (name, shape), its fp32 view taken when its tower
 * first runs; linear: a transformer block's linear weight, which a packed
 * precision packs from the file's tensor instead (transformer_pack). */
typedef struct model_ref {
    const cs_tensor *x;
    const float **f32;
    int linear;
} model_ref;

/* The weights of a tower that is prepared at its first run, not at load
 * (model_prepare_text, model_prepare_vision): checked for NaN and infinity,
 * viewed or widened, packed. An explain run with cached class embeddings
 * then never reads the text tower, and a bf16 run packs straight from the
 * file. */
typedef struct model_tower {
    model_ref *refs;
    int n, cap;
    int ready; /* prepared for the model's precision */
    /* 1: the weights are left unchecked when the tower is prepared, and
     * each pass's output is checked instead (model_tower_check_output). */
    int checks_output;
} model_tower;

typedef struct cs_vit {
    const float *conv1_w;  /* [W, 3 * P * P]: the patch embedding as a linear map */
    const float *class_emb;/* [W] */
    const float *pos_emb;  /* [1 + G*G, W] at the native grid */
    cs_layer_norm ln_pre, ln_post;
    const float *proj;     /* [W, D] */
    cs_transformer tr;
    model_tower lazy;
} cs_vit;

typedef struct cs_text {
    const float *tok_emb;  /* [V, W] */
    const float *pos_emb;  /* [L, W] */
    cs_transformer tr;
    cs_layer_norm ln_final;
    const float *proj;     /* [W, D] */
    model_tower lazy;
} cs_text;

struct cs_resnet; /* src/model/resnet.c */

/* Tests compare each stage of a forward pass with the goldens' inter/
 * activations through this hook: stage names "patch_embed" (per image,
 * layer = image), "ln_pre", "block" / "block_xori" / "block_x" (layer =
 * block; the dual blocks' original and surgery paths), "ln_post",
 * "text_block" (the packed real tokens), "text_ln_final" (end tokens; every position for
 * cs_text_token_features). */
typedef void (*model_tap)(void *ctx, const char *stage, int layer, const float *x, int rows, int width);

struct cs_model {
    cs_config cfg;
    cs_tensor_table table; /* owns every weight buffer (or the mmap they point into) */
    cs_vit vit;
    struct cs_resnet *resnet;
    cs_text text;
    float logit_scale;
    int surgery_blocks;    /* ViT blocks with the dual path (default 6) */
    model_tower *binding;  /* while loading: the lazy tower model_weight binds into (NULL: now) */
    cs_workspace ws;       /* scratch of the forward passes, reused across calls */
    cs_precision precision;
    int surgery_normalize_v; /* ResNet surgery: q = k = v / |v| per head, scale x8 (the
                                authors' optional "resnet" setting; default off, as they run it) */
    int fp32_openblas;       /* for tests and benchmarks: fp32 weights stay as stored, on
                                OpenBLAS (never packed for oneDNN) */
    model_tap tap;           /* for tests: every stage's activations (NULL: none) */
    void *tap_ctx;
    struct model_source *source; /* where cs_load found it, its tokenizer (open.c), or NULL */
};

/* Hand a stage's activations (rows x width floats) to the model's tap. */
#define MODEL_TAP(m, stage, layer, x, rows, width)                                 \
    do {                                                                            \
        if ((m)->tap) (m)->tap((m)->tap_ctx, (stage), (layer), (x), (rows), (width)); \
    } while (0)

/* The folder named model files live in: cache_dir, else ~/.cache/clip (hub.c). */
cs_status hub_cache_folder(const char *cache_dir, char *out, size_t n);

/* What cs_load remembered (open.c): the name given, the resolved weights
 * path (NULL for synthetic models), the vocabulary given, and whether the
 * class-embedding cache is wanted. NULL / 0 for models from cs_model_load. */
void model_source_free(struct model_source *src);
const char *model_source_name(const cs_model *m);
const char *model_source_path(const cs_model *m);
int model_source_cache_on(const cs_model *m);
/* The vocabulary cs_model_tokenizer loads (a file or a folder); download 0:
 * an absent default vocabulary is an error instead of a download. */
cs_status model_vocab_path(const cs_model *m, int download, char *out, size_t n);

/* Build a model from a table of named tensors (takes the table over, also
 * on failure). hf_dir: a folder whose config.json to read, or NULL. The
 * loader and the benchmarks' synthetic models both come through here. */
cs_status model_from_table(cs_tensor_table *table, const char *hf_dir, cs_model **out);

/* Weight lookup (weights.c). An fp32 view of a named tensor with its shape
 * checked (borrowed when the file holds aligned F32, widened into a
 * table-owned buffer otherwise); ndim/dims give the expected shape. While
 * m->binding is set, only the name and shape are checked now and *out
 * stays NULL until the tower is prepared (model_tower_prepare). */
cs_status model_weight(cs_model *m, const char *name, int ndim, const int64_t *dims,
                       const float **out);
cs_status model_weight_1d(cs_model *m, const char *name, int64_t a, const float **out);
cs_status model_weight_2d(cs_model *m, const char *name, int64_t a, int64_t b, const float **out);
/* "<prefix>.weight" and "<prefix>.bias", both [width]. */
cs_status model_layer_norm(cs_model *m, const char *prefix, int width, cs_layer_norm *ln);
/* A tensor that must exist with ndim dimensions (any sizes). */
cs_status model_require(const cs_model *m, const char *name, int ndim, const cs_tensor **out);
/* The number of blocks "<prefix><i>.*": one more than the largest index, so
 * that a gap is reported by the missing tensor's name; -1 past MAX_BLOCKS. */
#define MAX_BLOCKS 1024
int model_count_blocks(const cs_tensor_table *t, const char *prefix);
/* An error for a count of -1 (over the limit) or 0 (no blocks). */
cs_status model_check_block_count(const cs_model *m, const char *prefix, int n);
/* Every tensor of the file bound (buffers CLIP's loaders skip excepted). */
cs_status model_check_all_used(const cs_model *m);
/* Open a weight file (safetensors or PyTorch zip, by its first bytes and
 * extension) or a Hugging Face folder (*hf_dir set to it) as a table. */
cs_status model_open_table(const char *path, cs_tensor_table *t, const char **hf_dir);

/* Rename Hugging Face transformers CLIP tensors to OpenAI names in place
 * (q/k/v concatenated, projections transposed). No-op for OpenAI names. */
cs_status model_canonicalize_names(cs_tensor_table *t);

cs_status model_load_transformer(cs_model *m, const char *prefix, int width, int layers,
                                 int heads, cs_transformer *tr);
/* Make a lazy tower usable in precision p (a no-op once it is): every
 * weight checked for NaN and infinity on the file's bits (those packed in
 * p just before each is packed; none where the tower checks its output,
 * int8's packed ones excepted), the fp32 views taken and tr's linear
 * weights packed (tr may be NULL). A refusal leaves the tower unprepared
 * (what was packed stays for the next call, which refuses again). */
cs_status model_tower_prepare(cs_model *m, model_tower *tw, cs_transformer *tr, cs_precision p);
/* For a tower that checks its output: CS_OK where the n values of a pass's
 * output are finite; otherwise the first of its weights holding a NaN or an
 * infinity (CS_ERR_FORMAT naming it), or, where all are finite, an error
 * saying their values overflow. */
cs_status model_tower_check_output(const cs_model *m, const model_tower *tw, const float *out, size_t n);
void model_tower_free(model_tower *tw);
/* The text tower and the vision tower ready to run (load.c); each forward
 * pass calls its own, so a tower a run does not need is never read. */
cs_status model_prepare_text(cs_model *m);
cs_status model_prepare_vision(cs_model *m);

/* CLIP's head width, from which build_model derives the head counts. */
#define CLIP_HEAD_DIM 64
/* Each tower's configuration and weights (text.c, vit.c, resnet.c). */
cs_status text_infer_config(cs_model *m);
cs_status text_load(cs_model *m);
cs_status vit_infer_config(cs_model *m);
cs_status vit_load(cs_model *m);

/* Forward passes (vit.c, text.c, resnet.c). */
/* pixels [batch, 3, R, R] -> tokens [batch, 1+N, D]. */
cs_status vit_encode(cs_model *m, const float *pixels, int batch, int res, cs_vision_mode mode,
                     float *tokens);
/* The ViT position embedding for a G x G token grid: [1 + G*G, W]. */
void vit_position_embedding(const cs_model *m, int G, float *out);
/* Position of the first occurrence of the largest id (the end token). */
int text_end_position(const int32_t *ids, int context);
/* ids int32 [n, context] -> out [n, D], the projected features at each
 * text's end token; with every_position, out [sum of lengths, D]: every
 * position 0..end of each text, the texts one after another. */
cs_status text_encode(cs_model *m, const int32_t *ids, int n, int context, int every_position,
                      float *out);
/* NACLIP's attention addition for a G x G grid: bias[i][j] =
 * exp(-|p_i - p_j|^2 / (2 sigma^2)) between patch tokens at grid positions
 * p_i, p_j; 0 in the class token's row and column. It depends on p_i - p_j
 * only, so it is kept as a table of (2G - 1)^2 offsets (gauss, filled by
 * vit_naclip_window) and added tile by tile (vit_naclip_bias, an
 * op_attention_bias_fn whose context is the vit_window). */
typedef struct vit_window {
    int G;
    float *gauss; /* [(2G - 1)^2]: row dy + G - 1, column dx + G - 1 */
} vit_window;
void vit_naclip_window(double sigma, vit_window *w);
void vit_naclip_bias(const void *window, int head, int q0, int nq, int k0, int nk, float *s, int lds);
cs_status resnet_load(cs_model *m);
void resnet_free(struct cs_resnet *r);
/* bf16 packs of every convolution and the attention pool's linear layers,
 * each fp32 weight released once packed (as transformer_pack); resnet_free
 * frees them. */
cs_status resnet_pack_bf16(struct cs_resnet *r, int embed_dim, cs_tensor_table *t);
cs_status resnet_encode(cs_model *m, const float *pixels, int res, cs_vision_mode mode,
                        float *tokens);
/* The ResNet trunk for tests: the stem (stages 0) or the stem and layer1..
 * layer{stages} (1..4). out: NCHW [C, S, S], C and S of that stage. */
cs_status resnet_trunk(cs_model *m, const float *pixels, int res, int stages, float *out);
/* The attention pool's position embedding for a G x G grid: [1 + G*G, 32 * width]. */
void resnet_position_embedding(const cs_model *m, int G, float *out);

#endif
