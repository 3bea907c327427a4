/* The tensor ops on small hand-checked cases, and the workspace. */
#include <stdlib.h>
#include "base/workspace.h"
#include "ops/ops.h"
#include "test.h"

static void test_linear(void) {
    /* y = x w^T + b with x [2,3], w [2,3]. */
    float x[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 0, -1, 0.5f, 0.5f, 0.5f}, b[2] = {10, -1}, y[4];
    op_linear(x, 2, 3, w, b, 2, y);
    CHECK_NEAR(y[0], 10 + 1 - 3, 1e-6);
    CHECK_NEAR(y[1], -1 + 3, 1e-6);
    CHECK_NEAR(y[2], 10 + 4 - 6, 1e-6);
    CHECK_NEAR(y[3], -1 + 7.5, 1e-6);
    op_linear_accumulate(x, 2, 3, w, NULL, 2, y); /* adds x w^T again */
    CHECK_NEAR(y[0], 8 - 2, 1e-6);
    CHECK_NEAR(y[3], 6.5 + 7.5, 1e-6);
}

/* op_linear_few_rows against double sums: one row (M = 1), a point's 7
 * tokens, the group of 8 and 19 rows (three groups); K with and without a
 * tail past the 8 lanes; N odd (the last output alone). A row's bits do not
 * depend on the rows that come with it. */
static void test_linear_few_rows(void) {
    enum { MAXM = 2 * OP_FEW_ROWS + 3, MAXK = 260, MAXN = 65 };
    static float x[MAXM * MAXK], w[MAXN * MAXK], b[MAXN], y[MAXM * MAXN], alone[MAXN];
    for (int i = 0; i < MAXM * MAXK; i++) x[i] = (float)((i * 29) % 31) / 31.0f - 0.5f;
    for (int i = 0; i < MAXN * MAXK; i++) w[i] = (float)((i * 17) % 13) / 13.0f - 0.4f;
    for (int i = 0; i < MAXN; i++) b[i] = 0.1f * (float)i;
    const int Ms[] = {1, 7, OP_FEW_ROWS, MAXM}, Ks[] = {3, 16, 19, 260}, Ns[] = {1, 6, 65};
    for (int a = 0; a < 4; a++)
        for (int c = 0; c < 4; c++)
            for (int d = 0; d < 3; d++) {
                int M = Ms[a], K = Ks[c], N = Ns[d];
                const float *bias = d == 1 ? NULL : b;
                op_linear_few_rows(x, M, K, w, bias, N, y);
                for (int i = 0; i < M; i++)
                    for (int o = 0; o < N; o++) {
                        double want = bias ? bias[o] : 0.0;
                        for (int k = 0; k < K; k++) want += (double)x[i * K + k] * w[o * K + k];
                        CHECK_NEAR(y[i * N + o], want, 2e-6 * (1 + fabs(want)) * sqrt((double)K));
                    }
                op_linear_few_rows(x + (size_t)(M - 1) * K, 1, K, w, bias, N, alone);
                CHECK(memcmp(alone, y + (size_t)(M - 1) * N, sizeof(float) * N) == 0);
            }
}

static void test_layer_norm(void) {
    /* Row (1, 2, 3, 4): mean 2.5, biased variance 1.25. */
    float x[4] = {1, 2, 3, 4}, w[4] = {1, 2, 1, 1}, b[4] = {0, 0, 1, 0}, y[4];
    op_layer_norm(x, 1, 4, w, b, 0.0f, y);
    float s = 1.0f / sqrtf(1.25f);
    CHECK_NEAR(y[0], -1.5 * s, 1e-6);
    CHECK_NEAR(y[1], 2 * -0.5 * s, 1e-6);
    CHECK_NEAR(y[2], 0.5 * s + 1, 1e-6);
    CHECK_NEAR(y[3], 1.5 * s, 1e-6);
}

static void test_softmax_gelu(void) {
    float x[6] = {0, 0, 0, 1, 2, -INFINITY};
    op_softmax_rows(x, 2, 3);
    for (int i = 0; i < 3; i++) CHECK_NEAR(x[i], 1.0 / 3, 1e-7);
    CHECK_NEAR(x[3], 1 / (1 + M_E), 1e-6);
    CHECK_NEAR(x[4], M_E / (1 + M_E), 1e-6);
    CHECK(x[5] == 0.0f);
    /* Rows of 7 (plain max and sum loops) and of 40 (vector reductions,
     * with a masked key) against softmax in double. */
    for (int cols = 7; cols <= 40; cols += 33) {
        float v[5 * 40];
        for (int i = 0; i < 5 * cols; i++) v[i] = (float)((i * 37) % 23) * 0.7f - 6.0f;
        v[cols + 3] = -INFINITY;
        float got[5 * 40];
        memcpy(got, v, sizeof(float) * 5 * cols);
        op_softmax_rows(got, 5, cols);
        for (int r = 0; r < 5; r++) {
            double m = -INFINITY, sum = 0;
            for (int i = 0; i < cols; i++) m = fmax(m, v[r * cols + i]);
            for (int i = 0; i < cols; i++) sum += exp(v[r * cols + i] - m);
            for (int i = 0; i < cols; i++) CHECK_NEAR(got[r * cols + i], exp(v[r * cols + i] - m) / sum, 1e-6);
        }
        CHECK(got[cols + 3] == 0.0f);
    }
    /* op_softmax_groups: [rows, n, groups] with the softmax over n, for 8
     * groups (the decoder's heads, one vector) and 70 (past the 64 the
     * function holds at once), a masked entry among them. */
    for (int groups = 8; groups <= 70; groups += 62) {
        enum { ROWS = 3, N = 7 };
        static float v[ROWS * N * 70], got[ROWS * N * 70];
        int len = ROWS * N * groups;
        for (int i = 0; i < len; i++) v[i] = (float)((i * 41) % 29) * 0.6f - 8.0f;
        v[groups + 5] = -INFINITY;
        memcpy(got, v, sizeof(float) * len);
        op_softmax_groups(got, ROWS, N, groups);
        for (int r = 0; r < ROWS; r++)
            for (int g = 0; g < groups; g++) {
                const float *vr = v + (size_t)r * N * groups + g;
                double m = -INFINITY, sum = 0;
                for (int j = 0; j < N; j++) m = fmax(m, vr[j * groups]);
                for (int j = 0; j < N; j++) sum += exp(vr[j * groups] - m);
                for (int j = 0; j < N; j++)
                    CHECK_NEAR(got[(size_t)r * N * groups + g + j * groups], exp(vr[j * groups] - m) / sum, 1e-6);
            }
        CHECK(got[groups + 5] == 0.0f);
    }
    /* 40 values: the vector exp path and the scalar tail both run. */
    float g[40];
    for (int i = 0; i < 40; i++) g[i] = (float)(i - 20) * 0.25f;
    op_quick_gelu(g, 40);
    for (int i = 0; i < 40; i++) {
        double v = (i - 20) * 0.25;
        CHECK_NEAR(g[i], v / (1 + exp(-1.702 * v)), 2e-6);
    }
    float r[4] = {3, 4, 0, 0};
    op_l2_normalize_rows(r, 2, 2);
    CHECK(r[0] == 0.6f && r[1] == 0.8f && r[2] == 0 && r[3] == 0);
}

/* Exact GELU x Phi(x) against erf in double; LayerNorm2d over the channels
 * of a CHW image: pixel values (1, 3) per channel pair -> (-1, 1) x w + b. */
static void test_gelu_norm_channels(void) {
    float g[9];
    for (int i = 0; i < 9; i++) g[i] = (float)(i - 4);
    op_gelu(g, 9);
    for (int i = 0; i < 9; i++) {
        double v = i - 4;
        CHECK_NEAR(g[i], 0.5 * v * (1 + erf(v / sqrt(2.0))), 1e-6);
    }
    /* 16 at a time through the vector erf where there is one, the 5 left
     * over one by one: both within 2 float ulp of |x| of the exact value */
    enum { N = 1029 };
    float *xs = malloc(sizeof(float) * N);
    double worst = 0;
    for (int i = 0; i < N; i++) xs[i] = -9.0f + 18.0f * (float)i / (N - 1);
    op_gelu(xs, N);
    for (int i = 0; i < N; i++) {
        double v = (double)(-9.0f + 18.0f * (float)i / (N - 1)), want = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        double err = fabs(xs[i] - want) / fmax(fabs(v), 1.0);
        worst = err > worst ? err : worst;
    }
    CHECK_MSG(worst <= 2.4e-7, "GELU: error %.3g of max(|x|, 1)", worst);
    free(xs);
    /* 2 channels, 3 pixels: pixel p has channel values (p, p + 2). */
    float x[6] = {0, 1, 2, 2, 3, 4};
    const float w[2] = {1, 2}, b[2] = {0, 10};
    op_layer_norm_channels(x, 2, 3, w, b, 0.0f);
    for (int p = 0; p < 3; p++) {
        CHECK_NEAR(x[p], -1.0, 1e-6);
        CHECK_NEAR(x[3 + p], 12.0, 1e-6);
    }
}

/* The bias of the k-k case below: -inf off the diagonal. */
static void diagonal_only(const void *ctx, int head, int q0, int nq, int k0, int nk, float *s, int lds) {
    for (int i = 0; i < nq; i++)
        for (int j = 0; j < nk; j++)
            if (q0 + i != k0 + j) s[i * lds + j] += -INFINITY;
}

/* Attention of one head (d = 2) over 2 tokens, by hand. */
static void test_attention(void) {
    /* qkv rows: q | k | v for tokens a, b. */
    float qkv[12] = {1, 0, 1, 0, 1, 2, /* a: q=(1,0) k=(1,0) v=(1,2) */
                     0, 1, 0, 1, 3, 4}; /* b: q=(0,1) k=(0,1) v=(3,4) */
    float out[4], *scores = malloc(sizeof(float) * op_attention_scratch(2, 2));
    op_attention(qkv, 2, 2, 1, &(op_attention_spec){OP_ATTN_QK, 0, NULL, 0, NULL, 0}, scores, out);
    /* a: scores (1, 0)/sqrt2 -> p = (e^s, 1)/(e^s + 1) with s = 1/sqrt2 */
    double s = exp(1 / sqrt(2.0)), pa = s / (s + 1);
    CHECK_NEAR(out[0], pa * 1 + (1 - pa) * 3, 1e-6);
    CHECK_NEAR(out[1], pa * 2 + (1 - pa) * 4, 1e-6);
    /* causal: token a sees only itself. */
    op_attention(qkv, 2, 2, 1, &(op_attention_spec){OP_ATTN_QK, 1, NULL, 0, NULL, 0}, scores, out);
    CHECK_NEAR(out[0], 1, 1e-6);
    CHECK_NEAR(out[1], 2, 1e-6);
    /* v-v: a's scores are (v_a.v_a, v_a.v_b)/sqrt2 = (5, 11)/sqrt2. */
    op_attention(qkv, 2, 2, 1, &(op_attention_spec){OP_ATTN_VV, 0, NULL, 0, NULL, 0}, scores, out);
    double e = exp((5 - 11) / sqrt(2.0)), p = e / (e + 1);
    CHECK_NEAR(out[0], p * 1 + (1 - p) * 3, 1e-5);
    /* self (MaskCLIP): out = v. */
    op_attention(qkv, 2, 2, 1, &(op_attention_spec){OP_ATTN_SELF, 0, NULL, 0, NULL, 0}, scores, out);
    CHECK(out[0] == 1 && out[1] == 2 && out[2] == 3 && out[3] == 4);
    /* q-q (ClearCLIP): here q = k, so the q-k result. */
    op_attention(qkv, 2, 2, 1, &(op_attention_spec){OP_ATTN_QQ, 0, NULL, 0, NULL, 0}, scores, out);
    CHECK_NEAR(out[0], pa * 1 + (1 - pa) * 3, 1e-6);
    /* SCLIP: softmax(qq) + softmax(kk), both the q-k one here: twice it. */
    op_attention(qkv, 2, 2, 1, &(op_attention_spec){OP_ATTN_CSA, 0, NULL, 0, NULL, 0}, scores, out);
    CHECK_NEAR(out[0], 2 * (pa * 1 + (1 - pa) * 3), 1e-6);
    /* k-k with a bias (NACLIP): bias -inf off the diagonal leaves v. */
    op_attention(qkv, 2, 2, 1, &(op_attention_spec){OP_ATTN_KK, 0, diagonal_only, 0, NULL, 0}, scores, out);
    CHECK_NEAR(out[0], 1, 1e-6);
    CHECK_NEAR(out[3], 4, 1e-6);
    /* GEM with t = 0: every softmax is uniform, so each of the three
     * attentions gives the mean of v. */
    op_attention(qkv, 2, 2, 1, &(op_attention_spec){OP_ATTN_GEM, 0, NULL, 0, NULL, 0}, scores, out);
    CHECK_NEAR(out[0], 2, 1e-6);
    CHECK_NEAR(out[3], 3, 1e-6);
    free(scores);
}

/* ------------------------------------------------- the fused kernel over many tiles */
/* several query and key tiles; d = 20: a ragged value panel in the fp32 tile kernel */
enum { TT = 600, TD = 20, TH = 2, TW = TD * TH };

static double wave(int i, int j) { return 0.5 * sin(0.1 * i + 0.07 * j); }

static void wave_bias(const void *ctx, int head, int q0, int nq, int k0, int nk, float *s, int lds) {
    for (int i = 0; i < nq; i++)
        for (int j = 0; j < nk; j++) s[i * lds + j] += (float)wave(q0 + i, k0 + j);
}

/* out = softmax(scale a b^T (+ wave) (causal)) v in double, the textbook way;
 * a, b, v, out: [TT, TD]. */
static void ref_attend(const double *a, const double *b, const double *v, double scale, int causal,
                       int biased, double *out) {
    static double p[TT];
    for (int i = 0; i < TT; i++) {
        double mx = -INFINITY, sum = 0;
        int n = causal ? i + 1 : TT;
        for (int j = 0; j < n; j++) {
            double dot = 0;
            for (int c = 0; c < TD; c++) dot += a[i * TD + c] * b[j * TD + c];
            p[j] = scale * dot + (biased ? wave(i, j) : 0);
            mx = p[j] > mx ? p[j] : mx;
        }
        for (int j = 0; j < n; j++) sum += p[j] = exp(p[j] - mx);
        for (int c = 0; c < TD; c++) {
            double acc = 0;
            for (int j = 0; j < n; j++) acc += p[j] * v[j * TD + c];
            out[i * TD + c] = acc / sum;
        }
    }
}

static void ref_normalize(double *z) {
    for (int i = 0; i < TT; i++) {
        double ss = 0;
        for (int c = 0; c < TD; c++) ss += z[i * TD + c] * z[i * TD + c];
        for (int c = 0; c < TD; c++) z[i * TD + c] /= sqrt(ss);
    }
}

/* One head of every kind in double; z: q, k, v of the head. */
static void ref_kind(const op_attention_spec *a, double *const z[3], double *out) {
    static double zn[TT * TD], z1[TT * TD], tmp[TT * TD];
    double scale = 1 / sqrt((double)TD);
    int biased = a->bias != NULL;
    switch (a->kind) {
    case OP_ATTN_QK: ref_attend(z[0], z[1], z[2], scale, a->causal, biased, out); return;
    case OP_ATTN_VV: ref_attend(z[2], z[2], z[2], scale, a->causal, biased, out); return;
    case OP_ATTN_CSA:
        ref_attend(z[0], z[0], z[2], scale, a->causal, biased, out);
        ref_attend(z[1], z[1], z[2], scale, a->causal, biased, tmp);
        for (int i = 0; i < TT * TD; i++) out[i] += tmp[i];
        return;
    default: /* GEM */
        for (int i = 0; i < TT * TD; i++) out[i] = 0;
        for (int r = 2; r >= 0; r--) {
            for (int i = 0; i < TT * TD; i++) zn[i] = z[r][i];
            ref_normalize(zn);
            ref_attend(zn, zn, zn, a->inv_temp, 0, 0, z1);
            ref_normalize(z1);
            ref_attend(z1, z1, z[2], a->inv_temp, 0, 0, tmp);
            for (int i = 0; i < TT * TD; i++) out[i] += tmp[i] / 3;
        }
    }
}

/* The tiled, online-softmax kernel against the textbook attention over
 * 600 tokens: several query and key tiles, causal rows ending mid-tile, a
 * bias added tile by tile, and GEM's composed attentions. */
static void test_attention_tiled(void) {
    float *qkv = malloc(sizeof(float) * TT * 3 * TW), *out = malloc(sizeof(float) * TT * TW);
    float *scratch = malloc(sizeof(float) * op_attention_scratch(TT, TD));
    double *z[3], *ref = malloc(sizeof(double) * TT * TD);
    for (int p = 0; p < 3; p++) z[p] = malloc(sizeof(double) * TT * TD);
    for (int i = 0; i < TT * 3 * TW; i++) qkv[i] = (float)(sin(1.3 * i) * 1.5 + 0.2 * cos(0.01 * i));
    /* the last three through the bf16 kernel (bf16 inputs, fp32 sums) */
    const op_attention_spec specs[] = {
        {OP_ATTN_QK, 0, NULL, 0, NULL, 0},       {OP_ATTN_QK, 1, NULL, 0, NULL, 0},
        {OP_ATTN_QK, 1, wave_bias, 0, NULL, 0},  {OP_ATTN_VV, 0, wave_bias, 0, NULL, 0},
        {OP_ATTN_CSA, 0, NULL, 0, NULL, 0},      {OP_ATTN_GEM, 0, NULL, 3.0f, NULL, 0},
        {OP_ATTN_QK, 0, NULL, 0, NULL, 1},       {OP_ATTN_QK, 1, wave_bias, 0, NULL, 1},
        {OP_ATTN_CSA, 0, NULL, 0, NULL, 1}};
    /* each fp32 kind twice: products through OpenBLAS, then (where the CPU
     * has AVX2) through the AVX2 tile kernel */
    size_t count = sizeof specs / sizeof specs[0];
    for (size_t n = 0; n < 2 * count; n++) {
        const op_attention_spec *a = &specs[n % count];
        int tile_kernel = n >= count;
        if (tile_kernel && a->bf16) continue;
        op_attention_tile_kernel(tile_kernel);
        op_attention(qkv, TT, TW, TH, a, scratch, out);
        double worst = 0;
        for (int h = 0; h < TH; h++) {
            for (int p = 0; p < 3; p++)
                for (int i = 0; i < TT; i++)
                    for (int c = 0; c < TD; c++) z[p][i * TD + c] = qkv[(size_t)i * 3 * TW + p * TW + h * TD + c];
            ref_kind(a, z, ref);
            for (int i = 0; i < TT; i++)
                for (int c = 0; c < TD; c++) {
                    double e = fabs(out[i * TW + h * TD + c] - ref[i * TD + c]);
                    worst = e > worst ? e : worst;
                }
        }
        printf("attention kind %d causal %d bias %d bf16 %d tile kernel %d: max abs error %.3g\n", a->kind,
               a->causal, a->bias != NULL, a->bf16, tile_kernel, worst);
        CHECK(worst < (a->bf16 ? 1e-2 : 2e-5));
    }
    op_attention_tile_kernel(-1);
    for (int p = 0; p < 3; p++) free(z[p]);
    free(qkv), free(out), free(scratch), free(ref);
}

static void test_bilinear(void) {
    /* 2x2 -> 4x4 (align_corners=False): row 0 of the output samples source
     * y = -0.25 -> clamped to 0; x = -0.25, 0.25, 0.75, 1.25 -> 0, .25, .75, 1. */
    float src[4] = {0, 1, 2, 3}, dst[16];
    op_resize_bilinear(src, 2, 2, 1, dst, 4, 4);
    float row0[4] = {0, 0.25f, 0.75f, 1}, row1[4] = {0.5f, 0.75f, 1.25f, 1.5f};
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(dst[i], row0[i], 1e-6);
        CHECK_NEAR(dst[4 + i], row1[i], 1e-6);
    }
    /* Identity size copies; channels stay apart. */
    float two[8] = {1, -1, 2, -2, 3, -3, 4, -4}, same[8];
    op_resize_bilinear(two, 2, 2, 2, same, 2, 2);
    CHECK(!memcmp(two, same, sizeof two));
    /* A window of an upscale equals that crop of the whole output. */
    float whole[6 * 8 * 2], win[3 * 4 * 2];
    op_resize_bilinear(two, 2, 2, 2, whole, 6, 8);
    op_resize_bilinear_window(two, 2, 2, 2, win, 6, 8, 2, 3, 3, 4);
    int eq = 1;
    for (int y = 0; y < 3; y++) eq &= !memcmp(win + y * 8, whole + ((y + 2) * 8 + 3) * 2, sizeof(float) * 8);
    CHECK(eq);
    /* Large enough to run on every thread, each reusing interpolated source
     * rows: up by 4 (SAM's 256 -> 1024), down, and to an odd size, against
     * PyTorch's formula in double. */
    const int sizes[3][2] = {{256, 1024}, {97, 40}, {64, 333}};
    for (int k = 0; k < 3; k++) {
        int in = sizes[k][0], out = sizes[k][1], C = k == 2 ? 3 : 1;
        float *a = malloc(sizeof(float) * in * in * C), *b = malloc(sizeof(float) * out * out * C);
        for (int i = 0; i < in * in * C; i++) a[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
        op_resize_bilinear(a, in, in, C, b, out, out);
        double worst = 0, scale = (double)(float)((float)in / (float)out);
        for (int y = 0; y < out; y++)
            for (int x = 0; x < out; x++) {
                double sy = fmax((y + 0.5) * scale - 0.5, 0), sx = fmax((x + 0.5) * scale - 0.5, 0);
                int y0 = (int)sy, x0 = (int)sx, y1 = y0 < in - 1 ? y0 + 1 : y0, x1 = x0 < in - 1 ? x0 + 1 : x0;
                double ly = sy - y0, lx = sx - x0;
                for (int c = 0; c < C; c++) {
                    double want = (1 - ly) * ((1 - lx) * a[(y0 * in + x0) * C + c] + lx * a[(y0 * in + x1) * C + c]) +
                                  ly * ((1 - lx) * a[(y1 * in + x0) * C + c] + lx * a[(y1 * in + x1) * C + c]);
                    worst = fmax(worst, fabs(b[((size_t)y * out + x) * C + c] - want));
                }
            }
        CHECK_MSG(worst < 1e-5, "bilinear %d -> %d: error %.3g", in, out, worst);
        free(a);
        free(b);
    }
}

static void test_workspace(void) {
    cs_workspace w = {0};
    float *a = ws_take(&w, 100, sizeof(float)), *b = ws_take(&w, 1000, sizeof(float));
    CHECK(a && b && ((uintptr_t)a & 63) == 0 && ((uintptr_t)b & 63) == 0);
    CHECK(w.n_spill == 2 && w.cap == 0);
    ws_release(&w);
    CHECK(w.cap >= 1100 * sizeof(float) && w.n_spill == 0);
    a = ws_take(&w, 100, sizeof(float));
    b = ws_take(&w, 1000, sizeof(float));
    CHECK(a && b && w.n_spill == 0 && (uint8_t *)b >= (uint8_t *)a + 400);
    ws_release(&w);
    CHECK(ws_take(&w, SIZE_MAX / 2, 4) == NULL);
    ws_free(&w);
}

int main(void) {
    test_linear();
    test_linear_few_rows();
    test_layer_norm();
    test_softmax_gelu();
    test_attention();
    test_attention_tiled();
    test_gelu_norm_channels();
    test_bilinear();
    test_workspace();
    return test_finish();
}
