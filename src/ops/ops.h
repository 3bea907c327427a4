/* Layer 2, tensor ops: pure functions over float arrays with explicit shapes.
 * Row-major throughout; "[T, W]" means T rows of W floats. */
#ifndef CS_OPS_H
#define CS_OPS_H

#include <stddef.h>
#include "clip_surgery.h"

/* The one GEMM wrapper (BLAS): C = alpha * op(A) op(B) + beta * C, where
 * op(X) is X or its transpose. A is M x K after op, B is K x N after op. */
void op_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);

/* Linear layer in PyTorch's layout: y[M, N] = x[M, K] w[N, K]^T + b (b may be NULL). */
void op_linear(const float *x, int M, int K, const float *w, const float *b, int N, float *y);

/* op_linear for a few rows (M <= OP_FEW_ROWS, e.g. SAM's prompt tokens;
 * more rows go in groups of that many): every weight row is read once from
 * memory and meets all the rows in registers, where the BLAS would copy
 * (pack) the whole weight matrix first. Each output is a dot product in 8
 * lanes, then their sum: rounded differently from op_linear, but the same
 * for a row whatever rows come with it. */
#define OP_FEW_ROWS 8
void op_linear_few_rows(const float *x, int M, int K, const float *w, const float *b, int N, float *y);

/* Residual form: y[M, N] += x[M, K] w[N, K]^T + b (b may be NULL). */
void op_linear_accumulate(const float *x, int M, int K, const float *w, const float *b, int N,
                          float *y);

/* A convolution's product: y[N, P] = w[N, K] x[K, P] (+ beta y), the
 * weight's N rows the output channels, x's P columns the pixels. */
void op_gemm_weights_left(int N, int P, int K, const float *w, const float *x, float beta, float *y);

/* 1 when every row of op_linear's product is rounded the same whatever other
 * rows the call holds (so a batch of images gives each image the bits it
 * gets alone), 0 when the BLAS's kernels make a row depend on its
 * neighbours; then callers that promise batch-independent results multiply
 * each image's rows in a call of their own. Probed once per process. */
int op_gemm_rows_independent(void);

/* CS_OK, or CS_ERR_NOMEM with a message where an address-space limit
 * (RLIMIT_AS) leaves too little room for the BLAS's buffers before its first
 * product (OpenBLAS would retry the allocation forever). Every model pass
 * calls it first. */
cs_status op_gemm_ready(void);

/* Layer norm over the last axis (PyTorch semantics, biased variance). */
void op_layer_norm(const float *x, int rows, int dim, const float *w, const float *b, float eps,
                   float *y);

/* In place: x * sigmoid(1.702 x), CLIP's QuickGELU. */
void op_quick_gelu(float *x, size_t n);

/* In place x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)): PyTorch's exact GELU
 * (nn.GELU()), as SAM uses it. */
void op_gelu(float *x, size_t n);

/* Layer norm over the channels of each pixel of a CHW image x [C, HW]
 * (SAM's LayerNorm2d: biased variance; w, b [C]), in place. */
void op_layer_norm_channels(float *x, int C, int HW, const float *w, const float *b, float eps);

/* In place softmax over each row of [rows, cols]. */
void op_softmax_rows(float *x, int rows, int cols);

/* x [rows, n, groups]: softmax over n for every row and group, e.g. the
 * scores of many queries on a few keys with the heads interleaved
 * (column key * heads + head), so that the groups fill vector lanes. */
void op_softmax_groups(float *x, int rows, int n, int groups);

/* In place exp of n floats (vectorized where the CPU allows). */
void op_exp_inplace(float *x, size_t n);

/* In place L2 normalization of each row (a zero row stays zero). */
void op_l2_normalize_rows(float *x, int rows, int dim);

/* y += x, elementwise. */
void op_add(float *y, const float *x, size_t n);

typedef enum op_attention_kind {
    OP_ATTN_QK = 0, /* softmax(q k^T s) v, s = 1/sqrt(d): CLIP's attention */
    OP_ATTN_VV,     /* softmax(v v^T s) v: CLIP Surgery's path */
    OP_ATTN_SELF,   /* v: every token attends to itself alone (MaskCLIP) */
    OP_ATTN_QQ,     /* softmax(q q^T s) v (ClearCLIP) */
    OP_ATTN_CSA,    /* (softmax(q q^T s) + softmax(k k^T s)) v (SCLIP) */
    OP_ATTN_KK,     /* softmax(k k^T s + bias) v (NACLIP: bias is its Gaussian window) */
    OP_ATTN_GEM     /* GEM's self-self attention: for z in v, k, q: zn = normalize(z),
                       z1 = normalize(softmax(t zn zn^T) zn), softmax(t z1 z1^T) v;
                       the mean of the three */
} op_attention_kind;

/* Adds an attention bias to a tile of head `head`'s scaled scores:
 * s[i * lds + j] += bias(query q0 + i, key k0 + j) for i < nq, j < nk. The
 * kernel asks for tiles only, so a bias is computed (or looked up in
 * something smaller than T x T), never stored whole. */
typedef void (*op_attention_bias_fn)(const void *ctx, int head, int q0, int nq, int k0, int nk,
                                     float *s, int lds);

typedef struct op_attention_spec {
    op_attention_kind kind;
    int causal;                /* token i sees tokens 0..i only */
    op_attention_bias_fn bias; /* added to the scaled scores before the softmax, or NULL */
    float inv_temp;            /* OP_ATTN_GEM: t, the inverse temperature of its softmaxes */
    const void *bias_ctx;      /* the bias's first argument */
    int bf16;                  /* q k^T and P v through the bf16 kernel (every kind but GEM;
                                  transformer blocks: where the block runs in bf16) */
} op_attention_spec;

/* Multi-head attention core over one sequence. qkv: [T, 3W] (q | k | v, each
 * W = heads * d wide, as one in-projection GEMM produces them); out: [T, W]
 * (before the out-projection). One fused kernel serves every kind: scores
 * are made, softmaxed online and multiplied by v one cache-sized tile at a
 * time, so no T x T matrix is ever stored. scratch: op_attention_scratch(T, d) floats
 * (op_attention_thread_scratch(T, d) when called inside a parallel region,
 * where the heads run serially). */
void op_attention(const float *qkv, int T, int W, int heads, const op_attention_spec *spec,
                  float *scratch, float *out);
/* Scratch floats of one thread, and of all threads, for T tokens of head
 * dimension d. */
size_t op_attention_thread_scratch(int T, int d);
size_t op_attention_scratch(int T, int d);
/* For tests and benchmarks only: 1 runs the fp32 products of op_attention
 * through the AVX2 tile kernel wherever the CPU has AVX2 and FMA, 0 through
 * op_gemm, -1 (the default) the kernel on AVX2 CPUs without AVX-512. */
void op_attention_tile_kernel(int use);

/* Bilinear resize with PyTorch's F.interpolate(mode="bilinear",
 * align_corners=False) semantics, no antialias. src: [in_h, in_w, C]
 * (channels last), dst: [out_h, out_w, C]. */
void op_resize_bilinear(const float *src, int in_h, int in_w, int C, float *dst, int out_h,
                        int out_w);
/* The window of rows row0.. (n_rows) and columns col0.. (n_cols) of that
 * output (dst: [n_rows, n_cols, C]): a crop without the rest, or a large
 * output a block of rows at a time. */
void op_resize_bilinear_window(const float *src, int in_h, int in_w, int C, float *dst, int out_h,
                               int out_w, int row0, int n_rows, int col0, int n_cols);

/* Convolution over one image in NCHW layout (conv.c). x: [cin, h, w];
 * weights [cout, cin * k * k] (PyTorch's [cout, cin, k, k] flattened);
 * y: [cout, out_h, out_w] with out = (in + 2 pad - k) / stride + 1. */
typedef struct op_conv_shape {
    int cin, h, w;
    int cout, k, stride, pad;
} op_conv_shape;

int op_conv_out_size(int in, int k, int stride, int pad);

/* Floats of im2col scratch op_conv2d needs (0 for a 1x1, stride 1, unpadded
 * convolution, which multiplies the input directly). */
size_t op_conv2d_scratch(const op_conv_shape *s);

/* y = conv(x) + b, or with accumulate y += conv(x) + b (b may be NULL),
 * then y = max(y, 0) with relu. im2col into scratch, then the GEMM: one
 * for the whole image, or, where the image has many pixels per output
 * channel (a ResNet stem), one per band of output rows, with the band's
 * bias and ReLU while it is in cache (conv.c). */
void op_conv2d(const op_conv_shape *s, const float *x, const float *w, const float *b,
               int accumulate, int relu, float *scratch, float *y);

/* The same through the bf16 linear layer (gemm_bf16.h), channels last:
 * x [h, w, cin], y [out_h, out_w, cout], so the kernel's output rows are
 * the pixels and a 1x1, stride 1, unpadded convolution is the linear layer
 * itself; otherwise the patches become the activation rows
 * ([out_h * out_w, k * k * cin], tap by tap, each tap's channels one
 * contiguous copy) in op_conv2d_bf16_scratch floats of scratch. w: the
 * weights packed by op_conv_pack_bf16. relu: then y = max(y, 0), in the
 * kernel's store. */
struct op_bf16_weights;
size_t op_conv2d_bf16_scratch(const op_conv_shape *s);
void op_conv2d_bf16(const op_conv_shape *s, const float *x, const struct op_bf16_weights *w,
                    const float *b, int accumulate, int relu, float *scratch, float *y);

/* Pack PyTorch's conv weights [cout, cin, k, k] for op_conv2d_bf16: as
 * [cout, k * k * cin] (taps outer, channels inner), like its patch rows. */
cs_status op_conv_pack_bf16(const float *w, int cout, int cin, int k, struct op_bf16_weights *out);

/* Average pool with kernel = stride = k, no padding (nn.AvgPool2d(k)):
 * x [c, h, w] -> y [c, h / k, w / k] (trailing rows and columns dropped). */
void op_avg_pool(const float *x, int c, int h, int w, int k, float *y);

/* The same channels last: x [h, w, c] -> y [h / k, w / k, c], each output
 * the same float as op_avg_pool's. */
void op_avg_pool_hwc(const float *x, int c, int h, int w, int k, float *y);

/* Between channels first and last: x [hw, c] -> y [c, hw], and back. */
void op_hwc_to_chw(const float *x, int hw, int c, float *y);
void op_chw_to_hwc(const float *x, int c, int hw, float *y);

/* Fold an eval-mode batch norm (running statistics, eps) that follows a
 * bias-free convolution into its weights and a bias, in place:
 * w [cout, n] scaled per row by gamma / sqrt(var + eps), bias = beta - mean * that. */
void op_fold_batch_norm(float *w, int cout, int n, const float *gamma, const float *beta,
                        const float *mean, const float *var, float eps, float *bias);

/* In place max(x, 0). */
void op_relu(float *x, size_t n);

#endif
