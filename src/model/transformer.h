#ifndef CS_TRANSFORMER_H
#define CS_TRANSFORMER_H

#include "model.h"

/* Scratch for one block over up to max_tokens rows of width W, in at most
 * max_seqs sequences of at most max_seq tokens, taken from a workspace. */
typedef struct block_scratch {
    float *h, *qkv, *attn, *hidden, *scores;
    size_t *offsets; /* first row of each sequence of a packed batch */
    int max_seq;
} block_scratch;

cs_status block_scratch_init(block_scratch *s, cs_workspace *ws, int max_tokens, int max_seq,
                             int max_seqs, int width);

/* CLIP's residual attention block on a packed batch of n_seq sequences
 * (rows of x, seq_len[i] each): x += attn(ln_1(x)); x += mlp(ln_2(x)). */
void block_forward(const cs_block *b, int W, int heads, int n_seq, const int *seq_len, int causal,
                   float *x, block_scratch *s);

/* The surgery block (DESIGN.md section 4) on a packed batch of n_seq
 * sequences, x = [x_ori; x_new] (2T rows, T = the sum of seq_len): with
 * h = ln_1(x_ori), x_ori += out_proj(qk-attention(h)),
 * x_ori += mlp(ln_2(x_ori)); x_new += out_proj(vv-attention(h)), no FFN.
 * The scratch must hold 2T rows of attention output. */
void block_forward_dual(const cs_block *b, int W, int heads, int n_seq, const int *seq_len,
                        float *x, block_scratch *s);

/* Pack (or free) bf16 copies of every block's linear weights. */
cs_status transformer_pack_bf16(cs_transformer *tr);
void transformer_free_bf16(cs_transformer *tr);

#endif
