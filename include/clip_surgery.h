/* clip_surgery.h: the one public header of libclip_surgery.
 *
 * CLIP Surgery (Li et al.) in C: CLIP image and text towers, the surgery
 * variants of the image tower, feature surgery, similarity maps and point
 * prompts. Every function returns a cs_status; on failure cs_last_error()
 * holds one line that names the file or argument at fault. The library never
 * prints and never exits.
 *
 * Arrays are float32, row-major, with shapes given in the comments. */
#ifndef CLIP_SURGERY_H
#define CLIP_SURGERY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */
typedef enum cs_status {
    CS_OK = 0,
    CS_ERR_IO,          /* file unreadable or unwritable (permission, disk full) */
    CS_ERR_FORMAT,      /* file or data does not follow its format */
    CS_ERR_NOMEM,       /* allocation failed or size overflows */
    CS_ERR_ARG,         /* bad argument from the caller */
    CS_ERR_SHAPE,       /* a tensor or array has the wrong shape */
    CS_ERR_MISSING,     /* a required file, tensor or entry is absent */
    CS_ERR_UNSUPPORTED, /* valid but not handled (dtype, mode, opcode) */
    CS_ERR_LIMIT,       /* over a configured size limit */
    CS_ERR_TOO_LONG,    /* text longer than the context without truncation */
    CS_ERR_UTF8         /* invalid UTF-8 input */
} cs_status;

const char *cs_last_error(void);          /* message of the last failure (this thread) */
const char *cs_status_name(cs_status s);  /* short name of a status */
const char *cs_version(void);             /* the library's version, e.g. "0.1.0" */

/* ---------------------------------------------------------------- memory, files, arrays */
/* Free what the library allocated for the caller (strings, label masks,
 * whole files, arrays' data). NULL is fine. */
void cs_free(void *p);

/* Monotonic clock in seconds (progress lines, benchmarks). */
double cs_now(void);

/* Read a whole file (at most max_bytes; 0: no limit). *data is
 * NUL-terminated (one extra byte) and freed with cs_free. */
cs_status cs_read_file(const char *path, size_t max_bytes, char **data, size_t *len);

/* Create a folder and its parents (mkdir -p). */
cs_status cs_mkdirs(const char *path);

/* Writing a file atomically: write into f, then commit (flush, close and
 * rename into place) or abort; a failure never leaves a partial file. */
typedef struct cs_atomic_file {
    FILE *f;
    char *tmp_path;
    char *path;
    struct cs_tmp_node *node; /* its entry in the process's list of temporaries */
} cs_atomic_file;
cs_status cs_atomic_open(cs_atomic_file *af, const char *path);
/* Inside an output transaction the rename waits for cs_outputs_end. */
cs_status cs_atomic_commit(cs_atomic_file *af);
void cs_atomic_abort(cs_atomic_file *af);

/* Output transactions, so that a run leaves all its outputs or none: while
 * one is open, committed files keep their temporary names; cs_outputs_end(1)
 * renames them all into place (a failed rename undoes the others),
 * cs_outputs_end(0) removes them. */
void cs_outputs_begin(void);
cs_status cs_outputs_end(int commit);
/* Remove every temporary file of this process, in flight or waiting for its
 * transaction. Async-signal-safe: a front end calls it from its SIGINT /
 * SIGTERM handler, so an interrupted run leaves no *.tmp.* file behind. */
void cs_outputs_remove_temporaries(void);

#define CS_MAX_DIMS 8
typedef enum cs_dtype {
    CS_DT_F32 = 0, CS_DT_F16, CS_DT_BF16, CS_DT_F64, CS_DT_I64, CS_DT_I32, CS_DT_U8, CS_DT_BOOL
} cs_dtype;

/* An n-dimensional array, C order (what NumPy's .npy files hold). */
typedef struct cs_array {
    cs_dtype dtype;
    int ndim;
    int64_t shape[CS_MAX_DIMS];
    void *data; /* free with cs_array_free */
    size_t nbytes;
} cs_array;

int64_t cs_array_numel(const cs_array *a);
void cs_array_free(cs_array *a);

/* Read an .npy file (version 1-3 headers; dtypes <f4 <f2 <f8 <i4 <i8 |u1
 * |b1; little-endian, C order). */
cs_status cs_npy_read(const char *path, cs_array *out);
/* CS_ERR_FORMAT naming the file and the first NaN or infinity of a float
 * array: embeddings and pixels read from a file must be finite (every score
 * computed from them would be NaN, and JSON cannot hold one). */
cs_status cs_array_check_finite(const char *path, const cs_array *a);
/* Write an .npy file atomically (dtypes F32, F64, I32, I64, U8, BOOL). */
cs_status cs_npy_write(const char *path, cs_dtype dtype, int ndim, const int64_t *shape,
                       const void *data);
/* The header of an .npy file; the data follow in C order. A writer that
 * produces the data in pieces: cs_atomic_open, this, the pieces,
 * cs_atomic_commit. */
cs_status cs_npy_write_header(FILE *f, cs_dtype dtype, int ndim, const int64_t *shape);
/* The same file's bytes in memory (*out freed with cs_free): what
 * cs_npy_write would write, byte for byte (the server's ?format=npy). */
cs_status cs_npy_encode(cs_dtype dtype, int ndim, const int64_t *shape, const void *data,
                        uint8_t **out, size_t *len);

/* ---------------------------------------------------------------- threads */
/* Threads used by BLAS and the library's own loops (one pool: OpenMP). */
void cs_set_threads(int n);
int cs_get_threads(void);

/* Progress of a long step (downloads): done of total units (total 0: unknown). */
typedef void (*cs_progress_fn)(void *ctx, int64_t done, int64_t total);

/* ---------------------------------------------------------------- images */
struct cs_image_source; /* internal: the decoded file in its own PIL mode */

typedef struct cs_image {
    int width, height;
    uint8_t *rgb; /* [height, width, 3], 8-bit RGB: PIL's convert("RGB") */
    /* Set by cs_image_load when the file's mode resizes differently from its
     * RGB (palette, 1-bit, alpha, 16-bit gray, CMYK): cs_image_resize then
     * resizes in that mode, as the reference does. Owned by the image (freed
     * by cs_image_free); NULL for RGB and gray files and images built by
     * hand. */
    struct cs_image_source *source;
} cs_image;

typedef struct cs_image_options {
    int64_t max_pixels; /* refuse images above this many pixels (0: 100 MP default) */
    int exif_rotate;    /* apply EXIF orientation (default 0, as the reference) */
    /* 16-bit grayscale PNGs: 0 (default) sees them as the reference does,
     * PIL mode "I" clipped to 0..255 when converted to RGB (so typical
     * 16-bit data comes out mostly white); 1 keeps the high byte of each
     * sample instead, as an 8-bit gray image. */
    int png16_highbyte;
} cs_image_options;

/* Decode a JPEG or PNG file as PIL 9.4 opens it (every PNG layout, the first
 * frame of an APNG; gray, RGB and CMYK JPEG). opts may be NULL. */
cs_status cs_image_load(const char *path, const cs_image_options *opts, cs_image *out);
/* The same from a file's bytes held in memory (an upload); `name` starts
 * every error message. The pixel limit is checked from the header, before
 * anything is decoded. */
cs_status cs_image_decode_memory(const char *name, const uint8_t *buf, size_t len,
                                 const cs_image_options *opts, cs_image *out);
void cs_image_free(cs_image *img);

/* Pillow's Image.resize(BICUBIC) to out_w x out_h, then convert("RGB"): in
 * the file's own mode when `in` has a source (nearest for palette and 1-bit,
 * premultiplied alpha, 32-bit integer for 16-bit gray), otherwise bicubic on
 * the RGB (antialiased, a = -0.5, fixed point, horizontal then vertical
 * pass). The result has no source. */
cs_status cs_image_resize(const cs_image *in, int out_w, int out_h, cs_image *out);

/* /255 then CLIP mean/std: out is float [3, h, w]. */
void cs_image_normalize(const cs_image *img, float *out);

/* ---------------------------------------------------------------- tokenizer */
typedef struct cs_tokenizer cs_tokenizer;

#define CS_SOT_TOKEN 49406
#define CS_EOT_TOKEN 49407

/* Load the BPE vocabulary: openai/CLIP's bpe_simple_vocab_16e6.txt.gz, or a
 * folder holding Hugging Face vocab.json + merges.txt. */
cs_status cs_tokenizer_load(const char *path, cs_tokenizer **out);
void cs_tokenizer_free(cs_tokenizer *tok);

/* Token ids of one text exactly as clip.tokenize gives them: <|startoftext|>,
 * the BPE ids, <|endoftext|>. Writes at most `context` ids into ids[] (no
 * padding) and their count into *n_ids. Longer than `context`: with truncate
 * the first context ids are kept and the last becomes <|endoftext|>; without
 * it CS_ERR_TOO_LONG. Invalid UTF-8: CS_ERR_UTF8. */
cs_status cs_tokenize(cs_tokenizer *tok, const char *text, int context, int truncate,
                      int32_t *ids, int *n_ids);

/* The same on a text of len bytes, which may hold NUL (Python strings do;
 * clip.tokenize treats U+0000 as any control character). */
cs_status cs_tokenize_bytes(cs_tokenizer *tok, const char *text, size_t len, int context,
                            int truncate, int32_t *ids, int *n_ids);

/* Batch form: ids is int32 [n, context], zero padded. */
cs_status cs_tokenize_batch(cs_tokenizer *tok, const char *const *texts, int n, int context,
                            int truncate, int32_t *ids);

/* ---------------------------------------------------------------- model */
typedef enum cs_vision_kind { CS_VISION_VIT = 0, CS_VISION_RESNET = 1 } cs_vision_kind;

/* Inferred from tensor names and shapes, as openai/CLIP's build_model does. */
typedef struct cs_config {
    int embed_dim;
    cs_vision_kind vision_kind;
    int image_resolution; /* native input size R */
    int vision_width;     /* ViT width, or ResNet base width */
    int vision_layers;    /* ViT blocks */
    int resnet_layers[4]; /* ResNet blocks per stage */
    int vision_heads;
    int patch_size;       /* ViT */
    int grid;             /* native token grid side */
    int context_length;
    int vocab_size;
    int text_width;
    int text_heads;
    int text_layers;
} cs_config;

typedef struct cs_model cs_model;

/* Load a model: a .safetensors file (OpenAI/open_clip or Hugging Face names,
 * F32/F16/BF16), or a folder with model.safetensors (+ config.json). Names
 * and shapes are checked here; a transformer tower's weights (the text
 * tower's, a ViT's) are made ready (viewed in place, widened or packed for
 * the precision) when the tower first runs, so a run that needs one tower
 * never reads the other (an explain with cached class embeddings never
 * reads the text tower). The text tower's weights are checked for NaN and
 * infinity then (CS_ERR_FORMAT naming the tensor); a ViT checks each
 * pass's output instead, so a pass that a NaN or infinity in a weight
 * reaches is refused the same way, naming it, and one it cannot reach (a
 * method that skips the last block's MLP) runs; finite weights whose
 * values overflow fp32 are refused too (CS_ERR_UNSUPPORTED). A refused
 * tower refuses every later run it reaches the same way; the other tower
 * still runs. ResNet towers are checked and made ready here. */
cs_status cs_model_load(const char *path, cs_model **out);
void cs_model_free(cs_model *m);

/* Model names as clip.load knows them: "RN50", "RN101", "RN50x4", "RN50x16",
 * "RN50x64", "ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336px" (the
 * authors' "CS-" prefix is accepted too). A path that exists is returned as
 * it is; a name maps to <cache_dir>/<file>.pt (cache_dir NULL:
 * ~/.cache/clip, the cache openai/CLIP uses), downloaded from the official
 * URL and checked against the SHA-256 it carries when absent and download
 * is set. As clip.load does, a file already there is checked against that
 * SHA-256 too (memoized, see cs_file_identity) and downloaded again when it
 * differs (with download off: CS_ERR_FORMAT). out gets the file's path. */
cs_status cs_resolve_model(const char *name_or_path, const char *cache_dir, int download,
                           cs_progress_fn progress, void *ctx, char *out, size_t out_len);
/* The official SHA-256 of a named model's file, or NULL for other names. */
const char *cs_model_official_sha256(const char *name);
/* The BPE vocabulary: <cache_dir>/bpe_simple_vocab_16e6.txt.gz, downloaded
 * from openai/CLIP's repository when absent and download is set; checked
 * against its SHA-256 like a named model. */
cs_status cs_resolve_vocab(const char *cache_dir, int download, cs_progress_fn progress,
                           void *ctx, char *out, size_t out_len);

/* This machine's single-precision GEMM rate through the library's BLAS with
 * the current threads: the median of `runs` n x n x n sgemm runs, GFLOP/s. */
double cs_gemm_peak_gflops(int n, int runs);
/* The same for the bf16 linear layer of --precision bf16 (cs_model_set_precision):
 * n x n x n products through its kernel (AMX, AVX512-BF16, AVX2 or portable, as
 * the model would run), the weights packed once beforehand. */
double cs_gemm_bf16_peak_gflops(int n, int runs);

/* Save the model's weights as safetensors under OpenAI names, so it can be
 * memory-mapped afterwards: F32 weights are then used in place (no copy),
 * F16 and BF16 are half the size and widened to fp32 when their tower first
 * runs (under --precision bf16 a BF16 file's linear weights are packed
 * straight from its bits instead). BF16_PACKED is BF16 with the
 * transformer blocks' linear weights (both towers) stored as the bf16
 * kernels' packed panels ("<name>.bf16_panels"): a --precision bf16 run
 * uses them in place from the file's pages (no packing, no fresh memory to
 * fill), other precisions unpack them when their tower first runs; only
 * clip-surgery reads such a file. A weight holding a NaN or an infinity
 * is refused (CS_ERR_FORMAT) and nothing is written. */
typedef enum cs_save_dtype {
    CS_SAVE_F32 = 0,
    CS_SAVE_F16 = 1,
    CS_SAVE_BF16 = 2,
    CS_SAVE_BF16_PACKED = 3
} cs_save_dtype;
cs_status cs_model_save(const cs_model *m, const char *path, cs_save_dtype dtype);

/* A model with random weights and the real architecture of an OpenAI CLIP
 * release ("RN50", ..., "ViT-B/16", "ViT-L/14@336px"), for benchmarks. */
cs_status cs_model_synthetic(const char *arch, cs_model **out);
const cs_config *cs_model_config(const cs_model *m);

/* Number of image tokens (1 + N) the vision tower gives for an R x R input. */
int cs_model_num_tokens(const cs_model *m, int resolution);

/* The image tower's mode: plain CLIP, CLIP Surgery, or one of the later
 * training-free dense-CLIP methods, each as its authors' code computes it
 * (docs/methods.md; the jobs name them by cs_method, whose values 2..6 are
 * these). All but plain and surgery need a ViT; they change the last
 * block(s) only:
 *   MASKCLIP   x_L = out_proj(v)                                 (no residual, no FFN)
 *   SCLIP      x_L = x + out_proj((softmax(q q^T s) + softmax(k k^T s)) v), then the FFN
 *   CLEARCLIP  x_L = out_proj(softmax(q q^T s) v)                (no residual, no FFN)
 *   NACLIP     x_L = out_proj(softmax(k k^T s + Gaussian window, sigma 5) v)  (no residual, no FFN)
 *   GEM        last 6 blocks: a second path x_gem += out_proj(self-self attention of
 *              ln_1(x_ori)) beside the plain path; every token from x_gem
 * with s = 1/sqrt(head dim). Tokens are [1+N, D] for every method (MaskCLIP's
 * and ClearCLIP's authors drop token 0 afterwards). */
typedef enum cs_vision_mode {
    CS_VISION_PLAIN = 0,     /* plain CLIP */
    CS_VISION_SURGERY = 1,   /* architecture surgery (DESIGN.md section 4) */
    CS_VISION_MASKCLIP = 2,  /* MaskCLIP (Zhou et al. 2022), as ClearCLIP's code runs it */
    CS_VISION_SCLIP = 3,     /* SCLIP (Wang et al. 2024) */
    CS_VISION_CLEARCLIP = 4, /* ClearCLIP (Lan et al. 2024) */
    CS_VISION_NACLIP = 5,    /* NACLIP (Hajimiri et al. 2025) */
    CS_VISION_GEM = 6        /* GEM (Bousselham et al. 2024) */
} cs_vision_mode;

/* Surgery settings: the number of ViT blocks with the dual path (default 6;
 * clamped to the model's depth), and for ResNets the authors' optional
 * "normalize v per head, scale x8" attention (default off, as their released
 * code runs). */
cs_status cs_model_set_surgery(cs_model *m, int vit_blocks, int resnet_normalize_v);

/* Weights of the transformer blocks' linear layers: fp32 (default, the
 * parity path), bf16 (packed once here; fp32 accumulation; fast with
 * AMX-BF16 or AVX512-BF16, about fp32's speed at half the weight memory
 * with AVX2 and FMA, a portable kernel elsewhere) or int8 (weights
 * quantized per output channel and packed once here, activations per token
 * at run time, int32 sums; fast with AVX512-VNNI, a portable kernel
 * elsewhere; the image tower only: under int8 the text tower runs in bf16,
 * its features' outliers lose too much to per-token int8). bf16 also packs
 * the ResNet convolutions and the ResNet attention pool's projections. Other layers (LayerNorm, embeddings, the
 * ViT's patch embedding and final projection; int8: the ResNet trunk) stay
 * fp32. A transformer tower is packed when it first runs (see
 * cs_model_load; a BF16 file's bits straight into the bf16 layout, no fp32
 * copy), a ResNet's layers here. Packing releases each packed weight's fp32
 * copy as it goes (widened or folded buffers are freed, pages of the file
 * are dropped), so switching a bf16 or int8 model to another precision is
 * refused (CS_ERR_UNSUPPORTED): load it again. A failure (out of memory)
 * while packing a ResNet leaves the model in that precision, part packed,
 * part fp32 (it still computes); one while packing a transformer tower is
 * that run's error, and the next run packs the rest. cs_model_save still
 * writes the file's own tensors. */
typedef enum cs_precision { CS_PRECISION_FP32 = 0, CS_PRECISION_BF16 = 1, CS_PRECISION_INT8 = 2 } cs_precision;
cs_status cs_model_set_precision(cs_model *m, cs_precision p);

/* 1 when this CPU runs precision p on a kernel made for it (fp32: always;
 * bf16: AMX-BF16, AVX512-BF16, or AVX2 with FMA; int8: AVX512-VNNI), 0 when
 * p falls back to the portable kernel there: the same results up to the
 * summation order, several times slower than fp32 (int8 on an AVX2 CPU:
 * about 6x). Front ends say so when asked for such a precision. */
int cs_precision_fast(cs_precision p);

/* Vision tower on normalized pixels [3, R, R] (R a multiple of the patch
 * size for ViT, of 32 for ResNets). tokens: [1+N, D], after ln_post and proj
 * (ViT) or the attention pool (ResNet); not normalized. */
cs_status cs_encode_image(cs_model *m, const float *pixels, int resolution, cs_vision_mode mode,
                          float *tokens);

/* FLOPs of the vision tower at R x R, and of the text tower on n prompts of
 * the given token counts (multiply-adds x 2 of GEMMs, convolutions and
 * attention; element-wise work not counted). */
double cs_model_vision_flops(const cs_model *m, int resolution, cs_vision_mode mode);
double cs_model_text_flops(const cs_model *m, const int *lengths, int n);

/* A batch of images, pixels [batch, 3, R, R] -> tokens [batch, 1+N, D]:
 * one forward pass, so the GEMMs see batch x (1+N) rows (faster per image
 * for ViTs at small resolutions); the results equal cs_encode_image's. */
cs_status cs_encode_images(cs_model *m, const float *pixels, int batch, int resolution,
                           cs_vision_mode mode, float *tokens);

/* Text tower on token ids int32 [n, context] (zero padded; each row pooled at
 * the first position of its largest id). out: [n, D], not normalized. */
cs_status cs_encode_text(cs_model *m, const int32_t *ids, int n, int context, float *out);

/* Text tower features at every position of one text (multimodal
 * visualization, docs/words.md): ids int32 [context] (zero padded), read up
 * to its end token as cs_encode_text does (the first position of the
 * largest id); out [n, D], n = that position + 1 (room for context rows):
 * ln_final and text_projection at positions 0..end, not normalized. Row
 * n - 1 is cs_encode_text's feature of the text. */
cs_status cs_text_token_features(cs_model *m, const int32_t *ids, int context, float *out,
                                 int *n_out);

/* ---------------------------------------------------------------- method */
/* Cosine similarity: tokens [T, D] (normalized here), classes [C, D] (used as
 * given). out [T, C]. */
cs_status cs_similarity(const float *tokens, int n_tokens, const float *classes, int n_classes,
                        int dim, float *out);

/* The method's 85 default prompt templates ("{}" is the class name). */
#define CS_NUM_DEFAULT_TEMPLATES 85
extern const char *const cs_default_templates[CS_NUM_DEFAULT_TEMPLATES];

/* Prompt ensemble: for each class, every template filled with the name,
 * each prompt's text feature L2-normalized, averaged, renormalized.
 * templates NULL with n_templates 0 means the class name alone.
 * out: [n_classes, D]. */
cs_status cs_class_embeddings(cs_model *m, cs_tokenizer *tok, const char *const *classes,
                              int n_classes, const char *const *templates, int n_templates,
                              float *out);

/* The class-embedding cache. Folder: override, else $XDG_CACHE_HOME/clip-surgery,
 * else ~/.cache/clip-surgery. */
cs_status cs_cache_dir(const char *override, char *out, size_t n);
/* SHA-256 of bytes as 64 lowercase hex digits (the server's key for an
 * uploaded image). */
void cs_sha256_bytes(const void *data, size_t len, char hex[65]);
/* The SHA-256 of a file's content, memoized in <cache_dir>/hashes by path,
 * size, mtime, ctime and inode (cache_dir NULL: not memoized). A folder's
 * identity covers those of its model.safetensors, config.json, vocab.json
 * and merges.txt that are present. Keys for the cache: models, vocabularies. */
cs_status cs_file_identity(const char *path, const char *cache_dir, char hex[65]);
/* A model's identity for the cache: cs_file_identity of its file; for an
 * official name (name non-NULL) a file whose SHA-256 is not the official
 * one is CS_ERR_FORMAT. */
cs_status cs_model_identity(const char *name, const char *path, const char *cache_dir,
                            char hex[65]);
/* 1 and out [dim] filled when a valid entry exists for (library version,
 * cache format, model, templates, name); 0 when absent or corrupt
 * (checksum), so the caller recomputes. model_hex: the caller's key for
 * everything the embeddings depend on besides the text (cs_model_identity,
 * and the vocabulary and precision where they vary). */
int cs_cache_lookup(const char *cache_dir, const char *model_hex, int dim,
                    const char *const *templates, int n_templates, const char *name, float *out);
/* Store an entry atomically (temporary file + rename). */
cs_status cs_cache_store(const char *cache_dir, const char *model_hex, int dim,
                         const char *const *templates, int n_templates, const char *name,
                         const float *emb);

/* Feature surgery on image tokens [T, D] (normalized here) and class
 * embeddings [C, D]. redundant NULL: the class-weighted mode (softmax of
 * 2 x the class token's similarities, weights over their mean, the
 * class-mean removed); with C = 1 that is identically zero. redundant [D]:
 * the explicit mode, s = F (T - R)^T. out: [T, C]. */
cs_status cs_feature_surgery(const float *tokens, int n_tokens, const float *classes,
                             int n_classes, int dim, const float *redundant, float *out);

/* Similarity maps: per class, min-max over tokens 1..N of sim [1+N, C] (a
 * constant column gives zeros), reshaped to the square token grid and
 * resized bilinearly (align_corners = false) to out_h x out_w.
 * maps: [out_h, out_w, C]. */
cs_status cs_similarity_maps(const float *sim, int n_tokens, int n_classes, int out_h, int out_w,
                             float *maps);

/* Point prompts for SAM from one raw similarity column over tokens 1..N
 * (column `cls` of sim [1+N, C]): the reference's similarity_map_to_points
 * (DESIGN.md section 4). points: capacity N pairs (x, y); labels: capacity
 * N; *n gets the number of points (positives first, label 1, then as many
 * negatives, label 0). image_w x image_h: the original image size. */
cs_status cs_similarity_points(const float *sim, int n_tokens, int n_classes, int cls,
                               int image_w, int image_h, float t, int32_t *points,
                               uint8_t *labels, int *n);

/* Combined targets ("a+b"): sim [1+N, K] holds the explicit-redundancy
 * similarity of K texts. Negatives of the mean of the min-maxed columns
 * first, then each text's positives in order. points/labels: capacity
 * (K + 1) * N. */
cs_status cs_combined_points(const float *sim, int n_tokens, int n_texts, int image_w,
                             int image_h, float t, int32_t *points, uint8_t *labels, int *n);

/* ---------------------------------------------------------------- outputs */
/* A map in [0, 1] (every stride-th float, n pixels) to 8-bit gray. */
void cs_map_to_gray(const float *map, int stride, size_t n, uint8_t *gray);
/* JET heatmap of a map blended as 0.4 x image + 0.6 x heatmap (image_rgb
 * NULL: the heatmap alone). out_rgb: [n, 3]. */
void cs_heatmap_overlay(const float *map, int stride, size_t n, const uint8_t *image_rgb,
                        uint8_t *out_rgb);
/* OpenCV's COLORMAP_JET table in RGB order: lut[level] is what
 * cv2.applyColorMap gives the gray level, channels reversed. */
void cs_jet_table(uint8_t lut[256][3]);

/* Draw point prompts on rgb [height, width, 3] in place, as SAM's demo shows
 * them: a five-pointed star per point, green for label 1 (positive), red for
 * label 0 (negative), outlined in white, sized relative to the image (about
 * 6% of its shorter side across). Stars are clipped at the border; a point
 * outside the image is CS_ERR_ARG. points: n pairs (x, y). */
cs_status cs_draw_points(uint8_t *rgb, int width, int height, const int32_t *points,
                         const uint8_t *labels, int n);

/* File-name stems for arbitrary texts (class names, image names), safe on
 * any file system: ASCII letters, digits, '-' and '_' kept, '.' kept except
 * in front, every other byte '_', at most 100 bytes; an empty stem or one
 * equal to an earlier one gets "_<index>" appended, so stems are unique.
 * out[i] is allocated (free each with cs_free). */
cs_status cs_file_stems(const char *const *texts, int n, char **out);


/* Write an 8-bit gray (channels 1) or RGB (3) PNG atomically. */
cs_status cs_png_write(const char *path, int width, int height, int channels,
                       const uint8_t *pixels);
/* The same PNG's bytes in memory (*out freed with cs_free), byte for byte
 * what cs_png_write writes. */
cs_status cs_png_encode(int width, int height, int channels, const uint8_t *pixels, uint8_t **out,
                        size_t *len);

/* ================================================================ jobs
 * One call per job and image, as every front end (the CLI, the Python
 * package, your program) runs them: a model opened with cs_load, a class
 * set, an image, and one options struct per job whose defaults come from
 * cs_<job>_defaults(). Results are plain arrays plus the facts a front end
 * shows. A model runs one job at a time (its workspace is reused); use one
 * model per thread, or a lock.
 *
 * Synonyms, one rule everywhere: a class may have several names; every
 * name is embedded, feature surgery (or plain similarity) runs over all
 * names, and each class takes, per token, the largest value among its names
 * ("a class scores with its best synonym"). Explain, points, segment,
 * classify and eval all follow it. */

/* ---------------------------------------------------------------- opening a model for the jobs */
/* Download progress: what is being fetched ("ViT-B/16", "the BPE vocabulary"). */
typedef void (*cs_download_fn)(void *ctx, const char *what, int64_t done, int64_t total);

typedef struct cs_load_options {
    const char *cache_dir;      /* clip.load's folder of named models and the vocabulary
                                   (default NULL: ~/.cache/clip) */
    int download;               /* fetch a missing named model or vocabulary (default 1) */
    cs_download_fn progress;    /* download progress (default NULL) */
    void *progress_ctx;
    const char *vocab;          /* BPE vocabulary (.txt.gz, or a folder with vocab.json +
                                   merges.txt). Default NULL: a model folder's own, else
                                   <cache_dir>/bpe_simple_vocab_16e6.txt.gz. Loaded when a
                                   text is first encoded. */
    int surgery_blocks;         /* ViT blocks with the v-v path (default 6) */
    int resnet_normalize_v;     /* the authors' optional ResNet setting (default 0) */
    cs_precision precision;     /* default CS_PRECISION_FP32 */
    int embedding_cache;        /* read and write the class-embedding cache (default 1;
                                   cs_cache_dir's folder, keyed by the weights' SHA-256,
                                   the precision, the vocabulary, templates and name) */
} cs_load_options;

cs_load_options cs_load_defaults(void);

/* Open a model for the jobs: a clip.load name ("ViT-B/16", resolved and
 * downloaded like cs_resolve_model), a file or folder (as cs_model_load),
 * or "synthetic:ARCH" (random weights, cs_model_synthetic). opts NULL:
 * the defaults. Free with cs_model_free. */
cs_status cs_load(const char *name_or_path, const cs_load_options *opts, cs_model **out);

/* The model's tokenizer (cs_load's vocabulary, loaded on first use and
 * owned by the model). A model from cs_model_load has none (CS_ERR_MISSING)
 * unless one was set; cs_model_set_tokenizer takes tok over. */
cs_status cs_model_tokenizer(cs_model *m, cs_tokenizer **tok);
void cs_model_set_tokenizer(cs_model *m, cs_tokenizer *tok);

/* ---------------------------------------------------------------- class sets */
/* Classes, each with one or more names (synonyms; the first is the class's
 * name), the prompt templates, and the embeddings of every name: computed
 * with a model (through the cache), or given as an array. */
typedef struct cs_classes cs_classes;

/* LIST: comma-separated names ("person,bench"; one name per class), or
 * "@FILE": one class per line, commas in a line separating its synonyms
 * (the class-name files of SCLIP and NACLIP). Names are trimmed; empty ones
 * are skipped. */
cs_status cs_classes_parse(const char *list, cs_classes **out);
/* One class per text, the text as given (commas included). */
cs_status cs_classes_from_names(const char *const *names, int n, cs_classes **out);
/* Classes whose embeddings are given, emb [n, dim] (used as given, copied);
 * names NULL: "class0", "class1", ... */
cs_status cs_classes_from_embeddings(const float *emb, int n, int dim, const char *const *names,
                                     cs_classes **out);
/* An empty set (default templates), to add classes to. */
cs_status cs_classes_new(cs_classes **out);
/* Add a class with n >= 1 names (a set from names only). */
cs_status cs_classes_add(cs_classes *cl, const char *const *synonyms, int n);
void cs_classes_free(cs_classes *cl);

/* Prompt templates for the names (before they are embedded): "default"
 * (the method's 85; the default), "none" (the name alone), or a file with
 * one template per line, each with "{}" for the name. */
cs_status cs_classes_set_templates(cs_classes *cl, const char *spec);
cs_status cs_classes_set_template_list(cs_classes *cl, const char *const *templates, int n);
int cs_classes_num_templates(const cs_classes *cl);

/* Embed every name (normalized prompt ensembles) with the model: names in
 * the cache are read, the others computed and stored. progress (may be
 * NULL) first gets (0, names to compute) and at the end (n, n). The jobs
 * call this themselves when needed; given embeddings are kept. */
cs_status cs_classes_embed(cs_classes *cl, cs_model *m, cs_progress_fn progress, void *ctx);
/* The empty prompt's ensemble with the same templates [dim]: the explicit
 * redundant features. Computed once (needs the model's tokenizer). */
cs_status cs_classes_empty_prompt(cs_classes *cl, cs_model *m, const float **out);

int cs_classes_count(const cs_classes *cl);             /* classes C */
const char *cs_classes_name(const cs_classes *cl, int c); /* a class's (first) name */
int cs_classes_find(const cs_classes *cl, const char *name); /* class index by name, or -1 */
int cs_classes_num_names(const cs_classes *cl);         /* all names K >= C */
const char *cs_classes_name_text(const cs_classes *cl, int k);
int cs_classes_name_class(const cs_classes *cl, int k); /* the class of name k */
int cs_classes_dim(const cs_classes *cl);               /* D, 0 before embedding */
const float *cs_classes_embeddings(const cs_classes *cl); /* [K, D] or NULL before embedding */

/* ---------------------------------------------------------------- job inputs and options */
/* One input: a decoded image (resized to R x R by the job), or normalized
 * pixels [3, R, R] (the CLI's --pixels). Outputs refer to width x height:
 * default 0 x 0 = the image's size, or R x R for pixels. */
typedef struct cs_input {
    const cs_image *image;
    const float *pixels;
    int pixels_resolution;
    int width, height;
} cs_input;

/* The method a job runs (docs/methods.md): CLIP Surgery, plain CLIP, or a
 * later training-free dense method on its own tower (cs_vision_mode) with
 * its own settings (cs_method_defaults_of); those need a ViT. */
typedef enum cs_method {
    CS_METHOD_SURGERY = 0,   /* CLIP Surgery: surgery tokens (and feature surgery) */
    CS_METHOD_CLIP = 1,      /* plain CLIP: plain tokens, cosine similarity */
    CS_METHOD_MASKCLIP = 2,  /* the later methods: their tokens, cosine similarity */
    CS_METHOD_SCLIP = 3,
    CS_METHOD_CLEARCLIP = 4,
    CS_METHOD_NACLIP = 5,
    CS_METHOD_GEM = 6
} cs_method;
#define CS_NUM_METHODS 7

/* A method's name ("surgery", "clip", "maskclip", "sclip", "clearclip",
 * "naclip", "gem"), or NULL for a value outside the enum. */
const char *cs_method_name(cs_method method);
/* The method of a name; CS_ERR_ARG (a message listing the names) otherwise. */
cs_status cs_method_parse(const char *name, cs_method *out);
/* The vision-tower mode a method runs. */
cs_vision_mode cs_method_vision_mode(cs_method method);

/* A method's own dense-prediction settings, as its authors' code has them. */
typedef struct cs_method_defaults {
    float logit_scale; /* class probabilities: softmax(logit_scale x cosine): 40, MaskCLIP
                          and ClearCLIP 50, GEM 1 (its cosine is its logit) */
    int minmax;        /* 1: scores are the per-class min-max of the cosine map over
                          the image (GEM), and labels their argmax */
    int drops_cls;     /* 1: the authors' dense features leave out token 0 (MaskCLIP,
                          ClearCLIP) */
    int needs_vit;     /* 1: the method changes ViT blocks (all but surgery and clip) */
} cs_method_defaults;
cs_method_defaults cs_method_defaults_of(cs_method method);

typedef enum cs_redundancy {
    CS_REDUNDANT_AUTO = 0,   /* class-weighted, except with a single name: the empty prompt */
    CS_REDUNDANT_CLASSES = 1,/* class-weighted (with a single name, identically zero: the
                                empty prompt instead, and the result says so) */
    CS_REDUNDANT_EMPTY = 2   /* the empty prompt's ensemble (explicit) */
} cs_redundancy;

/* ---------------------------------------------------------------- explain */
typedef struct cs_explain_options {
    int resolution;          /* R for images (default 0: the model's native one) */
    cs_method method;        /* default CS_METHOD_SURGERY */
    cs_redundancy redundant; /* default CS_REDUNDANT_AUTO */
    int no_maps;             /* 1: leave maps NULL; cs_explain_maps gives them a block at a
                                time (memory bounded for many classes or a large image) */
} cs_explain_options;
cs_explain_options cs_explain_defaults(void);

typedef struct cs_explain_result {
    int resolution, n_tokens, dim, n_classes, width, height;
    float *pixels;       /* [3, R, R] the normalized input */
    float *tokens;       /* [n_tokens, dim] the vision tower's output, not normalized */
    float *similarity;   /* [n_tokens, n_classes] after feature surgery (plain: cosine),
                            each class its best name */
    float *maps;         /* [height, width, n_classes] in [0, 1] */
    cs_redundancy redundant; /* what feature surgery used: CLASSES or EMPTY (AUTO for plain) */
    float *redundant_features; /* [dim] the empty prompt's ensemble when EMPTY, else NULL */
} cs_explain_result;

/* Similarity maps of the classes over n inputs (the vision tower sees them
 * as one batch when they share R). out: n results. */
cs_status cs_explain(cs_model *m, cs_classes *cl, const cs_input *in, int n,
                     const cs_explain_options *opts, cs_explain_result *out);
void cs_explain_result_free(cs_explain_result *r);
/* Classes first_class..+n_classes-1, rows row0..+n_rows-1 of a result's
 * maps, computed from its similarity (with or without no_maps): out
 * [n_rows, width, n_classes], the same values as that block of maps. */
cs_status cs_explain_maps(const cs_explain_result *r, int first_class, int n_classes, int row0, int n_rows,
                          float *out);

/* ---------------------------------------------------------------- points for SAM */
typedef struct cs_points_options {
    int resolution;          /* default 0: native */
    float threshold;         /* t on the min-max map (default 0.8) */
    cs_redundancy redundant; /* default CS_REDUNDANT_AUTO */
    int combined;            /* 1: the classes are the texts of one combined target
                                ("a+b"; needs the empty prompt's redundancy) */
} cs_points_options;
cs_points_options cs_points_defaults(void);

typedef struct cs_points_result {
    int width, height;    /* the size the points refer to */
    int n_targets;        /* the classes, or 1 when combined */
    int *offsets;         /* [n_targets + 1]: target i's points are offsets[i] .. offsets[i+1]-1 */
    int32_t *points;      /* [offsets[n_targets], 2] (x, y): positives first, then negatives */
    uint8_t *labels;      /* [offsets[n_targets]] 1 positive, 0 negative */
    cs_redundancy redundant;
} cs_points_result;

cs_status cs_points(cs_model *m, cs_classes *cl, const cs_input *in, const cs_points_options *opts,
                    cs_points_result *out);
void cs_points_result_free(cs_points_result *r);

/* ---------------------------------------------------------------- classify */
typedef struct cs_classify_options {
    int resolution;   /* default 0: native */
    cs_method method; /* SURGERY: row 0 of class-weighted feature surgery; CLIP:
                         softmax(100 cos) (see cs_multilabel_scores) */
} cs_classify_options;
cs_classify_options cs_classify_defaults(void);

/* Multi-label scores [n, n_classes] of n images (n >= 1): they share
 * R x R, so the vision tower takes them 4 per pass; each row equals the
 * image's scores alone, bit for bit. */
cs_status cs_classify(cs_model *m, cs_classes *cl, const cs_image *img, int n,
                      const cs_classify_options *opts, float *scores);

/* ---------------------------------------------------------------- multimodal visualization (words) */
/* Which words of a caption CLIP sees where (docs/words.md): the text
 * tower's feature at every token of the caption, each L2-normalized and
 * taken as one class of the class-weighted feature surgery against the
 * image's CLIP Surgery tokens, one min-max map per token; tokens ranked by
 * their cosine with the image's CLS feature. */
typedef enum cs_words_group {
    CS_WORDS_TOKENS = 0, /* one map per BPE token (default, as the paper) */
    CS_WORDS_WORDS = 1   /* one per word: its tokens' similarity columns averaged before
                            the min-max (and their cosines averaged) */
} cs_words_group;

typedef struct cs_words_options {
    int resolution;       /* R for images (default 0: the model's native one) */
    cs_words_group group; /* default CS_WORDS_TOKENS */
} cs_words_options;
cs_words_options cs_words_defaults(void);

/* One token (or word) of a caption. */
typedef struct cs_words_unit {
    char *text;          /* the decoded BPE piece(s), </w> removed ("<|startoftext|>",
                            "<|endoftext|>" for those tokens); a character split between
                            tokens shows as U+FFFD in each */
    int start, end;      /* code points [start, end) of the caption it stands for; -1 for
                            the start and end tokens (or text the tokenizer's cleaning
                            changed past recognition) */
    int first_token;     /* rows of token_features it covers */
    int n_tokens;
    float cosine;        /* with the image's CLS feature (mean over a word's tokens) */
    int rank;            /* 1 = highest cosine */
} cs_words_unit;

typedef struct cs_words_result {
    int n_tokens, dim;      /* T (the start token .. the end token), D */
    int32_t *ids;           /* [T] token ids */
    float *token_features;  /* [T, D] each L2-normalized: the classes of the feature surgery */
    int n_units;            /* U: T, or the number of words (the start and end tokens one each) */
    cs_words_unit *units;   /* [U] */
    int *ranking;           /* [U] unit indices by descending cosine (ties: lower index first) */
    int top[3];             /* the figure's red, yellow, cyan: the best three units that have a
                               place in the caption (-1 when fewer) */
    float *similarity;      /* [1+N, U] feature surgery (word columns averaged) */
    float *maps;            /* [height, width, U] per-unit min-max maps */
    int height, width;
    int resolution, n_image_tokens;
    float *image_tokens;    /* [1+N, D] the image's CLIP Surgery tokens, not normalized */
    int truncated;          /* the caption was cut at the context length, as
                               clip.tokenize(truncate=True) cuts it */
    int dropped;            /* the caption's BPE tokens left out: cut, or after a literal
                               <|endoftext|> (the text tower ends at the first end token) */
} cs_words_result;

/* Multimodal visualization of captions on one input (maps at its output
 * size), with the model's tokenizer; out[n]: one result per caption
 * (UTF-8; invalid UTF-8 is CS_ERR_UTF8 naming the caption, any length is
 * truncated). opts NULL: cs_words_defaults(). On failure nothing is left
 * allocated. */
cs_status cs_words(cs_model *m, const cs_input *in, const char *const *captions, int n,
                   const cs_words_options *opts, cs_words_result *out);
void cs_words_result_free(cs_words_result *r);

/* The figure of a words result (docs/words.md): the caption set in type
 * (Pango: any script, emoji included), its three best tokens on red,
 * yellow and cyan, a line naming them with their cosines, and below the
 * image rgb [H, W, 3] (NULL: the heatmap alone) with the best token's
 * heatmap; W x H must be the result's map size. *out: RGB [*out_h, *out_w, 3]
 * (cs_free); *out_w = max(W, 360). */
cs_status cs_words_figure(const cs_words_result *r, const char *caption, const uint8_t *rgb, int W,
                          int H, uint8_t **out, int *out_w, int *out_h);

/* ---------------------------------------------------------------- label masks (segmentation ground truth) */
/* labels: [height, width] (free with cs_free). Other PNG kinds (RGB,
 * 16-bit, alpha) are CS_ERR_UNSUPPORTED with a message naming the file. */
cs_status cs_label_png_load(const char *path, int *width, int *height, uint8_t **labels);

/* ---------------------------------------------------------------- segmentation and multi-label scores */
/* Class names and the classes they belong to: a class with synonyms scores
 * with its best name (the class-name files of SCLIP and NACLIP). */
typedef struct cs_name_set {
    const float *emb;      /* [n_names, dim] name embeddings (normalized prompt ensembles) */
    int n_names, dim;
    const int *name_class; /* [n_names] class of each name, each class named at least once;
                              NULL: name i is class i */
    int n_classes;
    const float *redundant; /* [dim] explicit redundant features for feature surgery, or NULL
                               (class-weighted; identically zero with one name) */
} cs_name_set;

/* Check a name set: sizes positive, every name's class in range and every
 * class named. */
cs_status cs_name_set_check(const cs_name_set *names);

/* Reduce per-name scores [rows, n_names] to per-class scores [rows, n_classes]
 * by the maximum over each class's names. */
void cs_names_to_classes(const float *name_scores, int rows, const cs_name_set *names,
                         float *class_scores);

/* Segmentation logits on the token grid: the raw cosine similarity of image
 * tokens 1..N (normalized) with the names, no feature surgery and no
 * min-max (as the authors segment), each class its best name.
 * tokens: [1 + side^2, dim]; grid: [side, side, n_classes]. */
cs_status cs_segment_grid(const float *tokens, int n_tokens, const cs_name_set *names, float *grid);

/* Logits of one R x R input (normalized pixels [3, R, R]) at out_h x out_w:
 * the vision tower (surgery or plain), cs_segment_grid, bilinear upsampling
 * (align_corners = false). logits: [out_h, out_w, n_classes]. */
cs_status cs_segment_logits(cs_model *m, const float *pixels, int R, cs_vision_mode mode,
                            const cs_name_set *names, int out_h, int out_w, float *logits);

/* The sliding-window protocol of training-free segmentation (SCLIP, NACLIP):
 * windows of crop x crop at the given stride over normalized pixels [3, h, w]
 * (h, w >= crop; the last window of a row or column is moved back to end at
 * the border), each window's logits upsampled to crop x crop, averaged where
 * windows overlap, then upsampled bilinearly to out_h x out_w (the original
 * image). logits: [out_h, out_w, n_classes]. */
cs_status cs_segment_logits_sliding(cs_model *m, const float *pixels, int h, int w, int crop,
                                    int stride, cs_vision_mode mode, const cs_name_set *names,
                                    int out_h, int out_w, float *logits);

/* The segment job's options (defaults from cs_segment_defaults());
 * cs_segment_labels reads method, bg_thresh, logit_scale and bg_class. */
typedef struct cs_segment_options {
    int resolution;    /* whole-image input R (default 0: native) */
    cs_method method;  /* default CS_METHOD_SURGERY */
    int window;        /* > 0: sliding windows of window x window (default 0) */
    int stride;        /* window stride (default 0: half the window) */
    int short_side;    /* with windows: resize the short side to this first (default 0: keep) */
    int max_long_side; /* with short_side: the long side at most this; the scale is the smaller
                          of short_side / short side and max_long_side / long side, sizes
                          rounded as mmsegmentation's Resize(scale=(max_long_side, short_side),
                          keep_ratio=True) rounds them (default 0: no bound) */
    float bg_thresh;   /* > 0: background by probability (see cs_segment_labels; default 0) */
    float logit_scale; /* > 0: the scale of that probability; <= 0 (default): the method's
                          own (40; MaskCLIP, ClearCLIP 50; GEM, which has none, 40) */
    int bg_class;      /* the label low-confidence pixels get (default -1: none) */
    int pamr_steps;    /* > 0: refine the logits with PAMR (NACLIP's post-processing; its
                          default is 10 steps; dilations 8 and 16) (default 0: off) */
    int name_logits;   /* 1: every name keeps its own logits through window averaging,
                          upsampling and PAMR, a pixel's class is that of its best name there,
                          and the threshold's softmax runs over all names (the mmsegmentation
                          code of SCLIP, ClearCLIP, NACLIP); 0 (default): each class takes its
                          best name on the token grid. The same when no class has synonyms. */
    float area_thresh; /* > 0: SCLIP's area_thd: a class other than bg_class whose argmax
                          pixels are at most this fraction of all non-background argmax pixels
                          of the image is dropped, its pixels taking their best remaining class
                          (by logits), before the background threshold (whose probability is then
                          that of the class kept); needs bg_class (default 0: off) */
} cs_segment_options;
cs_segment_options cs_segment_defaults(void);

/* Per-pixel class scores from logits [n_pixels, n_classes] (the cosine map):
 * softmax over classes of logit_scale x logits, or with minmax the per-class
 * min-max of the logits over all pixels (GEM's map; a constant class gives
 * zeros). scores: [n_pixels, n_classes]. */
cs_status cs_segment_scores(const float *logits, size_t n_pixels, int n_classes, float logit_scale,
                            int minmax, float *scores);

/* Per-pixel labels from logits [n_pixels, n_classes] (n_classes <= 255):
 * the argmax (the first class on ties; GEM: of its per-class min-max map);
 * with bg_thresh > 0, a pixel whose
 * largest softmax(logit_scale x logits) probability is below bg_thresh gets
 * bg_class. The softmax runs over classes (each its best name); SCLIP's code
 * takes it over all names before the per-class maximum, which only changes
 * which pixels fall under the threshold (cs_segment runs that with
 * name_logits). opts NULL: argmax alone. */
cs_status cs_segment_labels(const float *logits, size_t n_pixels, int n_classes,
                            const cs_segment_options *opts, uint8_t *labels);

/* The segment job on n images (n >= 1): class labels, image i's
 * [img[i].height, img[i].width] after image i-1's in `labels` (at most 255
 * classes), each pixel the class whose best name has the largest raw
 * similarity (cs_segment_logits, or the sliding windows), background by
 * probability when bg_thresh > 0. Whole images share R x R, so the vision
 * tower takes them 4 per pass (sliding windows: an image's windows 4 per
 * pass); each image's labels equal its labels alone, bit for bit (as
 * cs_segment_arrays'). */
cs_status cs_segment(cs_model *m, cs_classes *cl, const cs_image *img, int n, const cs_segment_options *opts,
                     uint8_t *labels);

/* The segment job with every stage kept, for n inputs (images, or
 * normalized pixels [3, R, R]; see cs_input): what `segment --npy` writes.
 * Whole-image inputs are taken 4 at a time, and those of the 4 that share
 * R go through the tower in one pass (pixels of another R in a pass of
 * their own); each result equals the input's alone, bit for bit. On
 * failure nothing is left allocated. */
typedef struct cs_segment_result {
    int width, height, n_classes, n_tokens, dim;
    float *tokens;     /* [n_tokens, dim] the method's tokens (whole-image inference; NULL
                          with sliding windows) */
    float *cosine;     /* [n_tokens - 1, n_classes] patch-class cosine, each class its best
                          name (NULL with windows) */
    float *logits;     /* [height, width, n_classes] the upsampled cosine (after PAMR when
                          asked), before any scale */
    float *scores;     /* [height, width, n_classes] softmax(logit_scale x logits) over
                          classes, GEM: the per-class min-max of logits */
    uint8_t *labels;   /* [height, width] as cs_segment */
    float logit_scale; /* the method's own (or the options' when > 0) */
} cs_segment_result;
/* out: n results. */
cs_status cs_segment_arrays(cs_model *m, cs_classes *cl, const cs_input *in, int n, const cs_segment_options *opts,
                            cs_segment_result *out);
void cs_segment_result_free(cs_segment_result *r);

/* PAMR (Araslanov and Roth 2020), NACLIP's post-processing: logits
 * [h, w, C] refined in place by `steps` rounds of averaging each pixel's
 * logits over its 8 neighbours at each dilation (replicate padding), with
 * weights softmax over the neighbours of the mean over channels of
 * -|x_p - x_q| / (1e-8 + 0.1 std(x)), x the normalized image pixels [3, h, w]
 * and std over the 3x3 neighbourhoods at every dilation. NACLIP: dilations
 * 8 and 16. */
cs_status cs_pamr(const float *pixels, int h, int w, const int *dilations, int n_dilations, int steps,
                  float *logits, int C);

/* Multi-label scores [n_classes] from image tokens [n_tokens, dim] (only
 * token 0 is used). surgery: row 0 of the class-weighted feature surgery over
 * all names (the authors' protocol; pass surgery tokens). Otherwise plain
 * CLIP's baseline: softmax(100 x cos) over classes of token 0 (pass plain
 * tokens). Each class its best name (before the softmax). */
cs_status cs_multilabel_scores(const float *tokens, int n_tokens, const cs_name_set *names,
                               int surgery, float *scores);

/* ---------------------------------------------------------------- metrics */
#define CS_IGNORE_LABEL 255

/* Add one image to a confusion matrix conf [C, C] (row = ground truth,
 * column = prediction). Pixels whose ground truth is `ignore` are skipped;
 * ground-truth labels >= C (other than ignore) are skipped too and counted
 * into *unknown (may be NULL). Predictions must be < C. */
cs_status cs_confusion_add(int64_t *conf, int C, const uint8_t *gt, const uint8_t *pred, size_t n,
                           int ignore, int64_t *unknown);

typedef struct cs_seg_scores {
    double miou;           /* mean of the defined per-class IoUs; NaN when none is */
    double pixel_accuracy; /* trace / total; NaN for an empty matrix */
    double mean_accuracy;  /* mean per-class recall over classes present in the ground truth */
    int n_defined;         /* classes with a defined IoU */
} cs_seg_scores;

/* Per-class IoU = tp / (tp + fp + fn) from conf [C, C]; a class that is
 * neither in the ground truth nor predicted has an undefined IoU (NaN) and
 * stays out of the mean (mmseg's nanmean). iou may be NULL. */
void cs_confusion_scores(const int64_t *conf, int C, double *iou, cs_seg_scores *out);

/* Average precision of scores[n] against positive[n] (0/1), all-points, as
 * scikit-learn's average_precision_score: sum over distinct score thresholds
 * (descending) of (recall step) x precision, where tied scores form one
 * threshold. A class without positives has no defined AP: *ap = NaN
 * (scikit-learn warns and returns 0 there, which would pull the mean down
 * for classes absent from a split). NaN scores: CS_ERR_ARG. */
cs_status cs_average_precision(const float *scores, const uint8_t *positive, int n, double *ap);

/* Mean over the defined (non-NaN) values of x[n]; NaN when none is.
 * *n_defined (may be NULL) gets their count. */
double cs_nanmean(const double *x, int n, int *n_defined);

/* Explainability: binary foreground/background counts of a min-max map
 * thresholded at t_k = k / 20, k = 0..20 (map >= t_k is foreground),
 * against gt == cls; pixels whose gt is `ignore` are skipped. counts[k] holds
 * {tn, fp, fn, tp} and is accumulated over a dataset. map: every stride-th
 * float, n pixels. */
#define CS_EXPLAIN_STEPS 21
void cs_explain_add(const float *map, int stride, const uint8_t *gt, size_t n, int cls, int ignore,
                    int64_t counts[CS_EXPLAIN_STEPS][4]);
double cs_explain_threshold(int k);

/* Binary mIoU (mean of the background and foreground IoUs) of one
 * threshold's counts, and the foreground IoU alone (NaN when undefined). */
double cs_binary_miou(const int64_t counts[4], double *fg_iou);

/* Eval's per-image scoring. Classes present in a mask [n] (labels < C),
 * the background class left out (background < 0: none): present[c] 1 or 0. */
void cs_mask_classes(const uint8_t *mask, size_t n, int C, int background, uint8_t *present);
/* The explain task on one image: each class present in the mask
 * [height x width of r] adds its map (r's, computed from its similarity a
 * block of rows at a time: r may come from no_maps, and the classes the
 * mask lacks are never drawn) to counts[c] (cs_explain_add against
 * mask == c, CS_IGNORE_LABEL skipped) and 1 to pairs[c]; mask labels >= C
 * other than the ignore label are counted into *unknown. C = r->n_classes. */
cs_status cs_explain_score(const cs_explain_result *r, const uint8_t *mask, int background,
                           int64_t (*counts)[CS_EXPLAIN_STEPS][4], int64_t *pairs, int64_t *unknown);

/* ---------------------------------------------------------------- label pictures */
/* The PASCAL VOC colour of a label (bit-interleaved palette; 255 is the
 * palette's light void colour). */
void cs_label_color(int label, uint8_t rgb[3]);

/* Height of the legend strip that cs_colorize_labels draws below a W-wide
 * picture: one swatch and name per class present in labels [n]. */
int cs_legend_height(int W, const uint8_t *labels, size_t n, const char *const *names, int C);

/* rgb [(H + legend height) x W x 3]: each pixel its label's colour, then the
 * legend strip (swatches and names set with Pango, any script; a name that
 * is not UTF-8 gets its swatch alone). */
void cs_colorize_labels(const uint8_t *labels, int W, int H, const char *const *names, int C,
                        uint8_t *rgb);

/* ---------------------------------------------------------------- Segment Anything (SAM) */
/* Meta's Segment Anything at parity with its SamPredictor
 * (facebookresearch/segment-anything): an image encoder (ViT with windowed
 * and global attention, decomposed relative positions, a convolutional
 * neck), a prompt encoder (random Fourier positions; points, box, low-res
 * mask) and a two-way transformer mask decoder. Inferred from the weights
 * alone, except the decoder's head count, which no tensor shape carries: 8
 * (every released SAM) unless the file's safetensors metadata holds a
 * "config" JSON with "decoder_num_heads", or the caller sets it. */
typedef struct cs_sam_config {
    int image_size;   /* S: the padded input side (1024 for Meta's models) */
    int patch_size;   /* 16 */
    int grid;         /* G = S / patch: the embedding's side */
    int enc_width, enc_depth, enc_heads, enc_mlp;
    int window;       /* windowed blocks' side (14) */
    int n_global;     /* blocks with global attention ... */
    int global_blocks[64]; /* ... and their indices */
    int embed_dim;    /* E: prompt and decoder width (256) */
    int mask_in_chans;
    int dec_depth, dec_heads, dec_mlp;
    int dec_cross_dim; /* the cross attentions' inner width (E / 2) */
    int n_mask_tokens; /* 4: the single-mask token and 3 multimask ones */
    int iou_depth, iou_hidden;
} cs_sam_config;

typedef struct cs_sam cs_sam;

typedef struct cs_sam_load_options {
    int decoder_heads; /* > 0: the decoder's head count, overriding the default */
} cs_sam_load_options;

/* Load a SAM checkpoint: Meta's torch.save archives (sam_vit_b_01ec64.pth,
 * ...; read with the zip/pickle reader, nothing executed) or safetensors
 * with the same tensor names. opts may be NULL. A file that is not a SAM
 * checkpoint is CS_ERR_MISSING or CS_ERR_SHAPE naming the tensor. */
cs_status cs_sam_load(const char *path, const cs_sam_load_options *opts, cs_sam **out);
/* Random weights with the architecture of "vit_b", "vit_l" or "vit_h", for
 * benchmarks. */
cs_status cs_sam_synthetic(const char *arch, cs_sam **out);
void cs_sam_free(cs_sam *m);
const cs_sam_config *cs_sam_get_config(const cs_sam *m);
/* The image encoder blocks' linear layers in bf16 (packed once here, fp32
 * accumulation; the project's bf16 kernel, as cs_model_set_precision) or
 * fp32 (the default and the parity path). CS_PRECISION_INT8 is refused
 * (CS_ERR_ARG). */
cs_status cs_sam_set_precision(cs_sam *m, cs_precision p);

/* Meta's checkpoint names: "vit_b", "vit_l", "vit_h" (also "sam_vit_b" and
 * the file names) map to <cache_dir>/sam_vit_b_01ec64.pth etc. (cache_dir
 * NULL: ~/.cache/clip, as for CLIP names). When absent and download is set
 * the file is fetched from Meta's URL into a temporary file that must load
 * as a SAM checkpoint before it is renamed (Meta publishes no checksum).
 * A path that exists is returned as it is. */
cs_status cs_sam_resolve(const char *name_or_path, const char *cache_dir, int download,
                         cs_progress_fn progress, void *ctx, char *out, size_t out_len);

/* One image encoded: a value the caller keeps and passes to any number of
 * predictions. */
typedef struct cs_sam_embedding {
    int dim, grid;            /* E, G */
    int image_w, image_h;     /* the original image */
    int input_w, input_h;     /* its longest side resized to S */
    float *data;              /* [E, G, G] */
} cs_sam_embedding;

/* SamPredictor.set_image: the longest side resized to S with Pillow's
 * bilinear filter, normalized, zero padded, through the image encoder. */
cs_status cs_sam_encode(cs_sam *m, const cs_image *img, cs_sam_embedding *out);
void cs_sam_embedding_free(cs_sam_embedding *e);
/* The embedding as raw bytes and back (the CLI's cache): a header of six
 * int32 (E, G, image w, h, input w, h), then the floats. */
size_t cs_sam_embedding_bytes(const cs_sam_embedding *e);
cs_status cs_sam_embedding_from_bytes(const cs_sam *m, const void *buf, size_t len,
                                      cs_sam_embedding *out);
void cs_sam_embedding_to_bytes(const cs_sam_embedding *e, void *buf);

/* One prompt set, in original image pixels (fractions allowed). */
typedef struct cs_sam_prompt {
    int n_points;
    const float *points;     /* [n_points, 2] (x, y) */
    const int32_t *labels;   /* [n_points]: 1 foreground, 0 background */
    const float *box;        /* [4] x0, y0, x1, y1, or NULL */
    const float *mask_input; /* [4G, 4G] low-res logits (a previous result's), or NULL */
    int multimask;           /* 1: the 3 multimask outputs; 0: the single mask */
} cs_sam_prompt;

typedef struct cs_sam_result {
    int n_masks;     /* C: 3 or 1 */
    int width, height, lowres; /* image size; 4G */
    uint8_t *masks;  /* [C, H, W] 0/1: logits > 0 */
    float *logits;   /* [C, H, W] before the threshold */
    float *iou;      /* [C] predicted IoU */
    float *lowres_logits; /* [C, 4G, 4G]: a next prompt's mask_input as is */
} cs_sam_result;

/* SamPredictor.predict on an embedding. Points outside the image, a box
 * with x1 < x0 or y1 < y0 or outside the image, labels other than 0/1, a
 * prompt with neither points nor box nor mask: CS_ERR_ARG. */
cs_status cs_sam_predict(cs_sam *m, const cs_sam_embedding *e, const cs_sam_prompt *p,
                         cs_sam_result *out);
void cs_sam_result_free(cs_sam_result *r);
/* The mask with the largest predicted IoU (the first on ties). */
int cs_sam_best_mask(const cs_sam_result *r);

/* ---------------------------------------------------------------- SAM jobs (what `clip-surgery sam` runs) */
/* One prompt set of a job, coordinates in original image pixels. */
typedef struct cs_sam_prompt_set {
    const char *name;        /* its subfolder and JSON name (NULL: "prompt_<i>") */
    int n_points;
    const float *points;     /* [n_points, 2] (x, y) */
    const int32_t *labels;   /* [n_points]: 1 foreground, 0 background */
    int has_box;
    float box[4];            /* x0, y0, x1, y1 */
    const char *mask_input;  /* .npy float32 low-res logits [4G, 4G] (leading 1s allowed), or NULL */
    int multimask;           /* 1: three masks, the best IoU is mask.png; 0: the single mask */
} cs_sam_prompt_set;

/* A prompts file: a JSON list of objects {"name": "...", "points": [[x, y],
 * ...], "labels": [1, 0, ...] (default all 1), "box": [x0, y0, x1, y1],
 * "mask_input": "FILE.npy", "multimask": true|false (default
 * multimask_default)}, each with points, a box or a mask input. *sets is
 * one allocation (free with cs_sam_prompts_free). parse: the same on text. */
cs_status cs_sam_prompts_load(const char *path, int multimask_default, cs_sam_prompt_set **sets, int *n);
cs_status cs_sam_prompts_parse(const char *text, size_t len, const char *path, int multimask_default,
                               cs_sam_prompt_set **sets, int *n);
void cs_sam_prompts_free(cs_sam_prompt_set *sets);

typedef struct cs_sam_job {
    const char *image_path;
    const cs_image_options *image_options; /* may be NULL */
    const char *sam_label;     /* the model as the user named it (JSON) */
    const char *sam_path;      /* its file: the embedding cache's key */
    const cs_sam_prompt_set *sets;
    int n_sets;
    int subfolders;            /* 1: DIR/<name>/ per set; 0: the one set's files in DIR */
    const char *out_dir;
    int npy;                   /* also embedding.npy [E,G,G] (in DIR), masks.npy [C,H,W] uint8,
                                  iou.npy [C], lowres.npy [C,4G,4G], logits.npy [C,H,W] */
    const char *cache_dir;     /* the image-embedding cache (cs_cache_dir), NULL: none */
} cs_sam_job;

/* Encode the image once (or take its embedding from the cache, keyed by the
 * SAM file's SHA-256 and the image file's bytes), predict every set, then
 * write mask.png (the best-IoU mask, 0/255), overlay.png (mask, box and
 * points on the photo) and, with npy, the arrays. Every prompt is checked
 * before anything is computed or written; a failure while writing removes
 * the files this call wrote. *json (free with cs_sam_prompts_free's
 * counterpart cs_sam_json_free) summarizes: IoU, area and bounding box per
 * mask, the prompts used, whether the encoder ran. */
cs_status cs_sam_run(cs_sam *m, const cs_sam_job *job, char **json);
void cs_sam_json_free(char *json);

/* overlay.png's pixels: the photo rgb [H, W, 3] with mask [H, W] (0/1)
 * blended in SAM's demo colour, the set's box and points on top (what
 * cs_sam_run writes; the server draws the same). */
cs_status cs_sam_overlay(const cs_image *img, const uint8_t *mask, const cs_sam_prompt_set *set, uint8_t *rgb);

/* FLOPs of the image encoder, and of the decoder for a prompt of n sparse
 * tokens (as cs_model_vision_flops counts; the decoder's as it computes
 * them, its cross attention folded when the tokens are few). */
double cs_sam_encoder_flops(const cs_sam *m);
double cs_sam_decoder_flops(const cs_sam *m, int n_sparse);

#ifdef __cplusplus
}
#endif
#endif
