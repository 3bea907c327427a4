/* Layer 4, Segment Anything: plain structs for config, weights and the
 * forward passes (Meta's segment_anything, commit dca509f). Internal header.
 *
 * Layouts: the image encoder works on tokens [G*G, D] (HWC, as Meta's
 * encoder keeps them); the neck and everything after it on CHW images
 * [C, G, G], as the reference's NCHW tensors; linear weights keep PyTorch's
 * [out, in] layout. */
#ifndef CS_SAM_H
#define CS_SAM_H

#include "clip_surgery.h"
#include "base/workspace.h"
#include "formats/tensors.h"
#include "model/model.h"
#include "ops/gemm_bf16.h"

/* Fixed by Meta's architecture (build_sam.py), not by the weights. */
#define SAM_ENC_LN_EPS 1e-6f /* encoder LayerNorm, LayerNorm2d */
#define SAM_DEC_LN_EPS 1e-5f /* decoder LayerNorm (PyTorch's default) */
#define SAM_DEFAULT_DECODER_HEADS 8
#define SAM_MAX_GRID 256 /* image tokens per side (64 in Meta's models); windows are no wider */

/* A linear layer [out, in]; w16 holds its bf16 copy under CS_PRECISION_BF16
 * (data NULL: fp32). */
typedef struct sam_linear {
    const float *w, *b;
    int out, in;
    op_bf16_weights w16;
} sam_linear;

typedef struct sam_enc_block {
    cs_layer_norm norm1, norm2;
    sam_linear qkv, proj, lin1, lin2;
    const float *rel_h, *rel_w; /* [2s - 1, head dim], s = window or G */
    int window;                 /* 0: global attention */
} sam_enc_block;

/* The decoder's Attention: q/k/v projections to `inner` wide, heads, out. */
typedef struct sam_attn { sam_linear q, k, v, out; } sam_attn;

typedef struct sam_dec_layer {
    sam_attn self_attn, t2i, i2t; /* token->image, image->token */
    cs_layer_norm norm1, norm2, norm3, norm4;
    sam_linear lin1, lin2;        /* MLP, ReLU */
} sam_dec_layer;

/* An MLP of `n` linear layers with ReLU between (no activation after the last). */
typedef struct sam_mlp { int n; sam_linear layer[8]; } sam_mlp;

/* A trace hook for the parity tests: called with each named activation. */
typedef void (*sam_trace_fn)(void *ctx, const char *name, const float *x, size_t n);

struct cs_sam {
    cs_sam_config cfg;
    cs_tensor_table table; /* owns every weight */
    /* image encoder */
    sam_linear patch;      /* [D, 3*P*P] */
    const float *pos;      /* [G*G, D] */
    sam_enc_block *blocks;
    const float *neck0_w;  /* [E, D] (1x1 conv) */
    cs_layer_norm neck1;
    const float *neck2_w;  /* [E, E*9] (3x3 conv) */
    cs_layer_norm neck3;
    /* prompt encoder */
    const float *pe_gauss; /* [2, E/2] */
    const float *point_emb[4], *not_a_point, *no_mask; /* [E] each */
    const float *md0_w, *md0_b, *md3_w, *md3_b, *md6_w, *md6_b; /* mask downscaling convs */
    cs_layer_norm md1, md4;
    /* mask decoder */
    const float *iou_token, *mask_tokens; /* [1, E], [T, E] */
    sam_dec_layer *layers;
    sam_attn final_attn;
    cs_layer_norm norm_final;
    /* ConvTranspose2d(k 2, s 2) weights, sub-pixel major: [in, 4, out]
     * (PyTorch's [in, out, 2, 2] reordered at load), biases [out] */
    const float *up0_w, *up0_b, *up3_w, *up3_b;
    cs_layer_norm up1;
    sam_mlp hyper[16];
    sam_mlp iou_head;
    float *key_pe;         /* [G*G, E]: the dense PE as rows, computed once at load */
    cs_workspace ws;       /* the encoder's and decoder's scratch, reused across images and prompts */
    cs_precision precision; /* of the encoder blocks' linear layers */
    /* tests */
    int cross_fold;        /* -1 (default): sam_cross_folds decides; 0/1: never/always */
    sam_trace_fn trace;
    void *trace_ctx;
};

/* Drop the bf16 copies (cs_sam_set_precision makes them). */
void sam_free_bf16(cs_sam *m);

/* Build from a table (taken over, also on failure). */
cs_status sam_from_table(cs_tensor_table *t, const cs_sam_load_options *opts, cs_sam **out);

/* Preprocessing (SamPredictor.set_image): the resized size of an h x w
 * image, and pixels [3, S, S] from an image already resized. */
void sam_preprocess_shape(int h, int w, int S, int *new_h, int *new_w);
void sam_normalize_pad(const cs_image *resized, int S, float *pixels);

/* Image encoder: pixels [3, S, S] -> embedding [E, G, G]. */
cs_status sam_image_encoder(cs_sam *m, const float *pixels, float *embedding);

/* One encoder block on tokens x [G*G, D] in place; scratch of
 * sam_block_scratch floats. */
void sam_encoder_block(cs_sam *m, int index, float *x, float *scratch);
size_t sam_block_scratch(const cs_sam_config *c);

/* Dense positional encoding [E, G, G] (get_dense_pe). */
void sam_dense_pe(const cs_sam *m, float *pe);

/* Prompts in the model frame (after apply_coords), as the prompt encoder
 * takes them. */
typedef struct sam_prompt_frame {
    int n_points;
    const float *coords;   /* [n, 2] */
    const int32_t *labels; /* [n] */
    const float *box;      /* [4] or NULL */
    const float *mask;     /* [4G, 4G] or NULL */
} sam_prompt_frame;

/* 1 when the decoder's cross attention between n_tokens tokens and the
 * image moves its projections to the token side (see sam_decoder.c). */
int sam_cross_folds(const cs_sam *m, int heads, int n_tokens, int inner);

/* Number of sparse tokens of a prompt (points, the pad point, box corners). */
int sam_sparse_count(const sam_prompt_frame *p);

/* Prompt encoder and mask decoder: all n_mask_tokens low-res masks
 * [T, 4G, 4G] and IoU predictions [T]. */
cs_status sam_decode(cs_sam *m, const float *embedding, const sam_prompt_frame *p,
                     float *masks, float *iou);

/* The checks cs_sam_predict makes of a prompt on a W x H image (mask
 * input [4G, 4G]), without the model. */
cs_status sam_check_prompt(int W, int H, int grid, const cs_sam_prompt *p);

/* ResizeLongestSide.apply_coords: original pixels -> model frame, in
 * double then rounded to float. */
void sam_apply_coords(const float *xy, int n, int h, int w, int new_h, int new_w, float *out);

#endif
