/* Each method's changed block at full ViT-B/16 size (width 768, 12 heads,
 * 14 x 14 patches + the class token), through the library's blocks, against
 * a naive float64 implementation of the methods' formulas written from
 * their papers and code (docs/methods.md). Random weights of CLIP's scale;
 * the golden parity test covers the tiny sizes, this one that nothing
 * depends on them (head count, grid side, NACLIP's window beyond the grid). */
#include <stdlib.h>
#include "model/transformer.h"
#include "test.h"

enum { W = 768, H = 12, HD = 64, G = 14, T = G * G + 1 };

static uint64_t g_seed = 0x9e3779b97f4a7c15ull;
static float rnd(float scale) { /* uniform in [-scale, scale] */
    g_seed = g_seed * 6364136223846793005ull + 1442695040888963407ull;
    return scale * (2.0f * (float)((g_seed >> 40) & 0xffffff) / 16777216.0f - 1.0f);
}
static float *rnd_array(size_t n, float scale, float offset) {
    float *a = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) a[i] = offset + rnd(scale);
    return a;
}

/* ---------------------------------------------------------------- float64 reference */
static void ref_layer_norm(const double *x, const float *w, const float *b, double *y) {
    for (int t = 0; t < T; t++) {
        double mean = 0, var = 0;
        for (int i = 0; i < W; i++) mean += x[t * W + i];
        mean /= W;
        for (int i = 0; i < W; i++) var += (x[t * W + i] - mean) * (x[t * W + i] - mean);
        var /= W;
        for (int i = 0; i < W; i++) y[t * W + i] = (x[t * W + i] - mean) / sqrt(var + 1e-5) * w[i] + b[i];
    }
}
/* y[T, n] = x[T, k] w[n, k]^T + b */
static void ref_linear(const double *x, int k, const float *w, const float *b, int n, double *y) {
    for (int t = 0; t < T; t++)
        for (int o = 0; o < n; o++) {
            double s = b[o];
            for (int i = 0; i < k; i++) s += x[(size_t)t * k + i] * w[(size_t)o * k + i];
            y[(size_t)t * n + o] = s;
        }
}
static void ref_softmax(double *row, int n) {
    double m = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) m = row[i] > m ? row[i] : m;
    for (int i = 0; i < n; i++) sum += row[i] = exp(row[i] - m);
    for (int i = 0; i < n; i++) row[i] /= sum;
}
/* P[T, T] = softmax(scale a b^T + bias) of one head's [T, HD] rows. */
static void ref_probs(const double *a, const double *b, double scale, const double *bias, double *P) {
    for (int i = 0; i < T; i++) {
        for (int j = 0; j < T; j++) {
            double s = 0;
            for (int c = 0; c < HD; c++) s += a[i * HD + c] * b[j * HD + c];
            P[i * T + j] = scale * s + (bias ? bias[i * T + j] : 0);
        }
        ref_softmax(P + i * T, T);
    }
}
/* out[T, HD] (+)= P v */
static void ref_apply(const double *P, const double *v, double *out, int accumulate) {
    for (int i = 0; i < T; i++)
        for (int c = 0; c < HD; c++) {
            double s = 0;
            for (int j = 0; j < T; j++) s += P[i * T + j] * v[j * HD + c];
            out[i * HD + c] = (accumulate ? out[i * HD + c] : 0) + s;
        }
}
static void ref_normalize(double *z) {
    for (int i = 0; i < T; i++) {
        double n = 0;
        for (int c = 0; c < HD; c++) n += z[i * HD + c] * z[i * HD + c];
        n = sqrt(n);
        for (int c = 0; c < HD; c++) z[i * HD + c] /= n;
    }
}

/* The attention of one method for one head: q, k, v [T, HD] -> out [T, HD]. */
static void ref_head(cs_vision_mode mode, const double *q, const double *k, const double *v, double t,
                     const double *gauss, double *out) {
    static double P[T * T], zn[T * HD], z1[T * HD];
    double s = 1.0 / sqrt((double)HD);
    switch (mode) {
    case CS_VISION_MASKCLIP: memcpy(out, v, sizeof(double) * T * HD); return;
    case CS_VISION_CLEARCLIP: ref_probs(q, q, s, NULL, P); ref_apply(P, v, out, 0); return;
    case CS_VISION_NACLIP: ref_probs(k, k, s, gauss, P); ref_apply(P, v, out, 0); return;
    case CS_VISION_SURGERY: ref_probs(v, v, s, NULL, P); ref_apply(P, v, out, 0); return;
    case CS_VISION_SCLIP:
        ref_probs(q, q, s, NULL, P);
        ref_apply(P, v, out, 0);
        ref_probs(k, k, s, NULL, P);
        ref_apply(P, v, out, 1);
        return;
    case CS_VISION_GEM: {
        const double *z[3] = {v, k, q};
        for (int i = 0; i < 3; i++) {
            memcpy(zn, z[i], sizeof zn);
            ref_normalize(zn);
            ref_probs(zn, zn, t, NULL, P);
            ref_apply(P, zn, z1, 0);
            ref_normalize(z1);
            ref_probs(z1, z1, t, NULL, P);
            ref_apply(P, v, out, i > 0);
        }
        for (int i = 0; i < T * HD; i++) out[i] /= 3;
        return;
    }
    default: return;
    }
}

/* What every method's block shares, in float64: h = ln_1(x), the QKV
 * projection, GEM's inverse temperature and NACLIP's Gaussian window. */
typedef struct ref_common {
    double *x, *h, *qkv, *gauss, t;
} ref_common;

static void ref_common_init(const cs_block *b, const float *xf, ref_common *c) {
    c->x = malloc(sizeof(double) * T * W), c->h = malloc(sizeof(double) * T * W);
    c->qkv = malloc(sizeof(double) * T * 3 * W), c->gauss = calloc((size_t)T * T, sizeof(double));
    for (int i = 0; i < T * W; i++) c->x[i] = xf[i];
    for (int i = 0; i < G * G; i++)
        for (int j = 0; j < G * G; j++) {
            double dy = i / G - j / G, dx = i % G - j % G;
            c->gauss[(i + 1) * T + j + 1] = exp(-(dy * dy + dx * dx) / (2 * 5.0 * 5.0));
        }
    ref_layer_norm(c->x, b->ln_1.w, b->ln_1.b, c->h);
    c->t = 0;
    for (int r = 0; r < T; r++) {
        double n = 0;
        for (int i = 0; i < W; i++) n += c->h[r * W + i] * c->h[r * W + i];
        c->t += sqrt(n);
    }
    c->t = c->t / T / sqrt((double)HD);
    ref_linear(c->h, W, b->qkv_w, b->qkv_b, 3 * W, c->qkv);
}

/* The method's block on x [T, W] in float64: the reduced block (MaskCLIP,
 * ClearCLIP, NACLIP), SCLIP's full block, or the second path of the dual
 * block (surgery, GEM) starting equal to x. */
static void ref_block(const cs_block *b, cs_vision_mode mode, const ref_common *c, double *y) {
    double *attn = malloc(sizeof(double) * T * W), *h = malloc(sizeof(double) * T * W);
    double *out = malloc(sizeof(double) * T * W), *hid = malloc(sizeof(double) * T * 4 * W);
    double *head[4];
    for (int i = 0; i < 4; i++) head[i] = malloc(sizeof(double) * T * HD);
    for (int hh = 0; hh < H; hh++) {
        for (int r = 0; r < T; r++)
            for (int k = 0; k < HD; k++)
                for (int p = 0; p < 3; p++) head[p][r * HD + k] = c->qkv[(size_t)r * 3 * W + p * W + hh * HD + k];
        ref_head(mode, head[0], head[1], head[2], c->t, c->gauss, head[3]);
        for (int r = 0; r < T; r++)
            for (int k = 0; k < HD; k++) attn[r * W + hh * HD + k] = head[3][r * HD + k];
    }
    ref_linear(attn, W, b->out_w, b->out_b, W, out);
    int residual = mode == CS_VISION_SCLIP || mode == CS_VISION_SURGERY || mode == CS_VISION_GEM;
    for (int i = 0; i < T * W; i++) y[i] = (residual ? c->x[i] : 0) + out[i];
    if (mode == CS_VISION_SCLIP) {
        ref_layer_norm(y, b->ln_2.w, b->ln_2.b, h);
        ref_linear(h, W, b->fc_w, b->fc_b, 4 * W, hid);
        for (int i = 0; i < T * 4 * W; i++) hid[i] = hid[i] / (1 + exp(-1.702 * hid[i]));
        ref_linear(hid, 4 * W, b->proj_w, b->proj_b, W, out);
        for (int i = 0; i < T * W; i++) y[i] += out[i];
    }
    for (int i = 0; i < 4; i++) free(head[i]);
    free(attn), free(h), free(out), free(hid);
}

/* ---------------------------------------------------------------- the library's blocks */
static void lib_block(const cs_block *b, cs_vision_mode mode, const float *x0, float *y) {
    cs_workspace ws = {0};
    block_scratch s;
    CHECK_OK(block_scratch_init(&s, &ws, 2 * T, T, 1, W, H));
    float *x = malloc(sizeof(float) * 2 * T * W);
    vit_window window = {G, malloc(sizeof(float) * (2 * G - 1) * (2 * G - 1))};
    int len[1] = {T};
    memcpy(x, x0, sizeof(float) * T * W);
    memcpy(x + T * W, x0, sizeof(float) * T * W);
    vit_naclip_window(5.0, &window);
    op_attention_spec a = {OP_ATTN_QK, 0, NULL, 0, NULL, 0};
    switch (mode) {
    case CS_VISION_MASKCLIP: a.kind = OP_ATTN_SELF; block_forward_reduced(b, W, H, 1, len, &a, x, &s); break;
    case CS_VISION_CLEARCLIP: a.kind = OP_ATTN_QQ; block_forward_reduced(b, W, H, 1, len, &a, x, &s); break;
    case CS_VISION_NACLIP: a.kind = OP_ATTN_KK, a.bias = vit_naclip_bias, a.bias_ctx = &window; block_forward_reduced(b, W, H, 1, len, &a, x, &s); break;
    case CS_VISION_SCLIP: a.kind = OP_ATTN_CSA; block_forward(b, W, H, 1, len, &a, x, &s); break;
    case CS_VISION_SURGERY: a.kind = OP_ATTN_VV; block_forward_dual(b, W, H, 1, len, &a, x, &s); break;
    case CS_VISION_GEM: a.kind = OP_ATTN_GEM; block_forward_dual(b, W, H, 1, len, &a, x, &s); break;
    default: break;
    }
    int dual = mode == CS_VISION_SURGERY || mode == CS_VISION_GEM;
    memcpy(y, x + (dual ? T * W : 0), sizeof(float) * T * W);
    free(x);
    free(window.gauss);
    ws_release(&ws);
    ws_free(&ws);
}

static const char *mode_name(cs_vision_mode mode) {
    return mode == CS_VISION_SURGERY ? "surgery" : cs_method_name((cs_method)mode);
}

static void compare(cs_vision_mode mode, const float *got, const double *want) {
    double max_err = 0, max_ref = 0, dot = 0, na = 0, nb = 0;
    for (int i = 0; i < T * W; i++) {
        double d = fabs(got[i] - want[i]);
        max_err = d > max_err ? d : max_err;
        max_ref = fabs(want[i]) > max_ref ? fabs(want[i]) : max_ref;
        dot += got[i] * want[i];
        na += (double)got[i] * got[i];
        nb += want[i] * want[i];
    }
    double rel = max_err / max_ref, cosine = dot / sqrt(na * nb);
    printf("%-10s ViT-B/16 block vs float64: rel_err %.3g cosine %.9f\n", mode_name(mode), rel, cosine);
    /* The tolerance of every golden comparison (float32 against float64). */
    CHECK_MSG(rel <= 1e-4 && cosine >= 0.99999, "%s: rel_err %g cosine %.9f", mode_name(mode), rel, cosine);
}

int main(void) {
    /* Weights of CLIP's magnitudes; layer-norm gains near 1. */
    float ws = 0.036f; /* ~ 1/sqrt(768) */
    cs_block b = {0};
    b.ln_1.w = rnd_array(W, 0.3f, 1.0f), b.ln_1.b = rnd_array(W, 0.1f, 0);
    b.ln_2.w = rnd_array(W, 0.3f, 1.0f), b.ln_2.b = rnd_array(W, 0.1f, 0);
    b.qkv_w = rnd_array((size_t)3 * W * W, 2 * ws, 0), b.qkv_b = rnd_array(3 * W, 0.1f, 0);
    b.out_w = rnd_array((size_t)W * W, ws, 0), b.out_b = rnd_array(W, 0.1f, 0);
    b.fc_w = rnd_array((size_t)4 * W * W, ws, 0), b.fc_b = rnd_array(4 * W, 0.1f, 0);
    b.proj_w = rnd_array((size_t)4 * W * W, ws / 2, 0), b.proj_b = rnd_array(W, 0.1f, 0);
    float *x = rnd_array((size_t)T * W, 1.0f, 0), *y = malloc(sizeof(float) * T * W);
    double *ref = malloc(sizeof(double) * T * W);
    static const cs_vision_mode modes[] = {CS_VISION_MASKCLIP, CS_VISION_SCLIP, CS_VISION_CLEARCLIP,
                                           CS_VISION_NACLIP, CS_VISION_GEM, CS_VISION_SURGERY};
    ref_common common;
    ref_common_init(&b, x, &common);
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        lib_block(&b, modes[i], x, y);
        ref_block(&b, modes[i], &common, ref);
        /* Residual blocks: compare what the block adds, which the residual
         * would otherwise dwarf. */
        if (modes[i] == CS_VISION_SCLIP || modes[i] == CS_VISION_GEM || modes[i] == CS_VISION_SURGERY)
            for (int k = 0; k < T * W; k++) y[k] -= x[k], ref[k] -= x[k];
        compare(modes[i], y, ref);
    }
    free((void *)b.ln_1.w), free((void *)b.ln_1.b), free((void *)b.ln_2.w), free((void *)b.ln_2.b);
    free((void *)b.qkv_w), free((void *)b.qkv_b), free((void *)b.out_w), free((void *)b.out_b);
    free((void *)b.fc_w), free((void *)b.fc_b), free((void *)b.proj_w), free((void *)b.proj_b);
    free(common.x), free(common.h), free(common.qkv), free(common.gauss);
    free(x), free(y), free(ref);
    return test_finish();
}
