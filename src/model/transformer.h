#ifndef CS_TRANSFORMER_H
#define CS_TRANSFORMER_H

#include "model.h"
#include "ops/ops.h"

/* Scratch for one block over up to max_tokens rows of width W (heads
 * heads), in at most max_seqs sequences of at most max_seq tokens, taken
 * from a workspace. */
typedef struct block_scratch {
    float *h, *qkv, *attn, *hidden, *scores;
    size_t *offsets; /* first row of each sequence of a packed batch */
    int max_seq, head_dim;
    int per_sequence; /* fp32 linear layers one sequence at a time (see block_linear); 0 from
                         block_scratch_init */
} block_scratch;

cs_status block_scratch_init(block_scratch *s, cs_workspace *ws, int max_tokens, int max_seq,
                             int max_seqs, int width, int heads);

/* CLIP's residual attention block on a packed batch of n_seq sequences
 * (rows of x, seq_len[i] each): x += attn(ln_1(x)); x += mlp(ln_2(x)), the
 * attention of the spec's kind (CLIP's q-k, causal for text; SCLIP's
 * correlative self-attention in its last block). */
cs_status block_forward(const cs_block *b, int W, int heads, int n_seq, const int *seq_len,
                        const op_attention_spec *a, float *x, block_scratch *s);

/* The "reduced" last block of MaskCLIP, ClearCLIP and NACLIP: x =
 * out_proj(attn(ln_1(x))), no residual, no FFN. */
cs_status block_forward_reduced(const cs_block *b, int W, int heads, int n_seq, const int *seq_len,
                                     const op_attention_spec *a, float *x, block_scratch *s);

/* The dual-path block of CLIP Surgery (DESIGN.md section 4) and GEM on a
 * packed batch of n_seq sequences, x = [x_ori; x_new] (2T rows, T = the sum
 * of seq_len): with h = ln_1(x_ori), x_ori += out_proj(qk-attention(h)),
 * x_ori += mlp(ln_2(x_ori)); x_new += out_proj(a_new-attention(h)), no FFN
 * (a_new: the v-v attention of surgery, GEM's self-self attention). The
 * scratch must hold 2T rows of attention output. */
cs_status block_forward_dual(const cs_block *b, int W, int heads, int n_seq, const int *seq_len,
                             const op_attention_spec *a_new, float *x, block_scratch *s);

/* Pack every block's linear weights for the precision, or free whatever
 * packs there are. bf16 or int8 copies from the file's tensors
 * (cs_block.linear), each checked for NaN and infinity
 * (tensor_check_finite) just before where `check` is set (int8: always; a
 * tower that checks its output instead passes 0): a BF16 file's bits as
 * they are, other weights through their fp32 view. fp32: the oneDNN layout (gemm_f32.h;
 * nothing where the library is built without oneDNN) from the blocks' fp32
 * views. Each fp32 view is given back to the table t (tensors_release) as
 * soon as its weight is packed (then NULL), as is an fp32 view or oneDNN
 * pack the block held from a run in fp32 before a switch, so packing never
 * holds a tower in both forms; a failure leaves the blocks part packed,
 * part fp32 (each linear layer uses whichever it has) and a later call
 * packs the rest. The forward passes return a oneDNN failure (a new row
 * count's primitive not made: memory). */
cs_status transformer_pack(cs_transformer *tr, cs_precision p, cs_tensor_table *t, int check);
void transformer_free_packed(cs_transformer *tr);

#endif
