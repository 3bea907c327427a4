/* Layer 2, tensor ops: pure functions over float arrays with explicit shapes.
 * Row-major throughout; "[T, W]" means T rows of W floats. */
#ifndef CS_OPS_H
#define CS_OPS_H

#include <stddef.h>

/* The one GEMM wrapper (BLAS): C = alpha * op(A) op(B) + beta * C, where
 * op(X) is X or its transpose. A is M x K after op, B is K x N after op. */
void op_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);

/* Linear layer in PyTorch's layout: y[M, N] = x[M, K] w[N, K]^T + b (b may be NULL). */
void op_linear(const float *x, int M, int K, const float *w, const float *b, int N, float *y);

/* Residual form: y[M, N] += x[M, K] w[N, K]^T + b (b may be NULL). */
void op_linear_accumulate(const float *x, int M, int K, const float *w, const float *b, int N,
                          float *y);

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

/* In place L2 normalization of each row (a zero row stays zero). */
void op_l2_normalize_rows(float *x, int rows, int dim);

/* y += x, elementwise. */
void op_add(float *y, const float *x, size_t n);

typedef enum op_attention_kind {
    OP_ATTN_QK = 0, /* softmax(q k^T / sqrt(d)) v: CLIP's attention */
    OP_ATTN_VV = 1  /* softmax(v v^T / sqrt(d)) v: the surgery path */
} op_attention_kind;

/* Multi-head attention core over one sequence. qkv: [T, 3W] (q | k | v, each
 * W = heads * d wide, as one in-projection GEMM produces them); out: [T, W]
 * (before the out-projection). causal: token i sees tokens 0..i only.
 * scores: scratch of op_attention_scratch(T) floats. */
void op_attention(const float *qkv, int T, int W, int heads, op_attention_kind kind, int causal,
                  float *scores, float *out);
/* Scratch floats op_attention needs for T tokens (one T x T per thread). */
size_t op_attention_scratch(int T);

/* Bilinear resize with PyTorch's F.interpolate(mode="bilinear",
 * align_corners=False) semantics, no antialias. src: [in_h, in_w, C]
 * (channels last), dst: [out_h, out_w, C]. */
void op_resize_bilinear(const float *src, int in_h, int in_w, int C, float *dst, int out_h,
                        int out_w);

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

/* y = conv(x) + b, or with accumulate y += conv(x) + b (b may be NULL).
 * im2col into scratch, then one GEMM. */
void op_conv2d(const op_conv_shape *s, const float *x, const float *w, const float *b,
               int accumulate, float *scratch, float *y);

/* Average pool with kernel = stride = k, no padding (nn.AvgPool2d(k)):
 * x [c, h, w] -> y [c, h / k, w / k] (trailing rows and columns dropped). */
void op_avg_pool(const float *x, int c, int h, int w, int k, float *y);

/* Fold an eval-mode batch norm (running statistics, eps) that follows a
 * bias-free convolution into its weights and a bias, in place:
 * w [cout, n] scaled per row by gamma / sqrt(var + eps), bias = beta - mean * that. */
void op_fold_batch_norm(float *w, int cout, int n, const float *gamma, const float *beta,
                        const float *mean, const float *var, float eps, float *bias);

/* In place max(x, 0). */
void op_relu(float *x, size_t n);

#endif
