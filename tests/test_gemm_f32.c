/* The pre-packed fp32 linear layer (src/ops/gemm_f32.c, oneDNN):
 *  - op_linear_f32 against op_linear / op_linear_accumulate (OpenBLAS) on
 *    the transformer shapes (ViT-B/16 at 224 and 512 with the dual blocks'
 *    2T-row out-projection, the text tower's, a one-row and a ragged text
 *    batch), with and without bias and accumulate: every element (of at
 *    most 32 rows, spread over M) within the bound of two fp32 sums of the
 *    same products in different orders, (2K + 4) u (sum_k |x_k w_k| + |b|
 *    + |y|), u = 2^-24; the largest error relative to sum_k |x_k w_k| is
 *    printed and must stay under 1e-6
 *    (measured: at most 3.1e-7, about 5 u, on the text qkv shape);
 *  - more row counts than a weight keeps primitives for: a row count seen
 *    again (its primitive made anew) gives the same output bit for bit;
 *  - on the tiny golden ViT: the first fp32 pass of each tower packs it
 *    and releases its fp32 weights; a later switch to bf16 (packed from the
 *    file, the oneDNN packs freed) gives the same image tokens and text
 *    features, bit for bit, as a model switched to bf16 before any pass; a model kept on OpenBLAS
 *    (fp32_openblas) gives image tokens and text features within 1e-5 of
 *    the packed one (relative to the largest value).
 * Exits 77 (skipped) where the library is built without oneDNN; the model
 * checks run where the models pack (op_f32_pack_pays: AVX-512). */
#include <float.h>
#include <stdlib.h>
#include "base/base.h"
#include "golden.h"
#include "model/model.h"
#include "ops/gemm_f32.h"
#include "ops/ops.h"
#include "test.h"

static uint32_t g_rng = 1234u;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) * (1.0 / 8388608.0) - 1.0);
}

static float *rand_buf(size_t n) {
    float *p = mem_alloc(n, sizeof(float));
    for (size_t i = 0; p && i < n; i++) p[i] = frand();
    return p;
}

typedef struct shape {
    const char *what;
    int M, N, K;
} shape;

static const shape k_shapes[] = {
    {"ViT-B/16 224 qkv", 197, 2304, 768},  {"ViT-B/16 224 out", 197, 768, 768},
    {"ViT-B/16 224 out dual", 394, 768, 768}, {"ViT-B/16 224 fc", 197, 3072, 768},
    {"ViT-B/16 224 proj", 197, 768, 3072}, {"ViT-B/16 512 fc", 1025, 3072, 768},
    {"text qkv", 1020, 1536, 512},         {"text proj, one row", 1, 512, 2048},
    {"text out, ragged", 37, 512, 512},
};

/* One shape, one variant (bias, accumulate) against OpenBLAS. */
/* The rows checked (at most 32, spread over M: the bound is costly). */
static int row_step(const shape *s) { return (s->M + 31) / 32; }

/* sum_k |x_k w_k| of every checked row's elements. */
static double *magnitudes(const shape *s, const float *x, const float *w) {
    int step = row_step(s);
    double *mag = mem_alloc((size_t)((s->M + step - 1) / step) * s->N, sizeof(double));
    for (int i = 0, r = 0; i < s->M; i += step, r++)
        for (int n = 0; n < s->N; n++) {
            double sum = 0;
            for (int k = 0; k < s->K; k++) sum += fabs((double)x[(size_t)i * s->K + k] * w[(size_t)n * s->K + k]);
            mag[(size_t)r * s->N + n] = sum;
        }
    return mag;
}

static void check_shape(const shape *s, const op_f32_weights *pw, const float *x, const float *w,
                        const double *mags, const float *b, int accumulate) {
    size_t ny = (size_t)s->M * s->N;
    float *y0 = rand_buf(ny), *y1 = mem_alloc(ny, sizeof(float)), *yin = mem_alloc(ny, sizeof(float));
    memcpy(yin, y0, ny * sizeof(float));
    memcpy(y1, y0, ny * sizeof(float));
    if (accumulate) op_linear_accumulate(x, s->M, s->K, w, b, s->N, y0);
    else op_linear(x, s->M, s->K, w, b, s->N, y0);
    CHECK_OK(op_linear_f32(x, s->M, s->K, pw, b, accumulate, y1));
    const double u = FLT_EPSILON / 2;
    long bad = 0;
    double worst = 0;
    int step = row_step(s);
    for (int i = 0, r = 0; i < s->M; i += step, r++)
        for (int n = 0; n < s->N; n++) {
            double mag = mags[(size_t)r * s->N + n];
            size_t at = (size_t)i * s->N + n;
            double d = fabs((double)y0[at] - y1[at]);
            double extra = (b ? fabs(b[n]) : 0) + (accumulate ? fabs(yin[at]) : 0);
            bad += !(d <= (2.0 * s->K + 4) * u * (mag + extra));
            if (mag > 0 && d / mag > worst) worst = d / mag;
        }
    printf("%-22s M %4d N %4d K %4d bias %d acc %d: max |diff| / sum|xw| %.2g\n", s->what, s->M, s->N, s->K,
           b != NULL, accumulate, worst);
    CHECK_MSG(bad == 0, "%s: %ld elements outside the bound", s->what, bad);
    CHECK_MSG(worst <= 1e-6, "%s: %.2g", s->what, worst); /* in practice a few u */
    cs_free(y0);
    cs_free(y1);
    cs_free(yin);
}

static void test_shapes(void) {
    for (size_t i = 0; i < sizeof k_shapes / sizeof *k_shapes; i++) {
        const shape *s = &k_shapes[i];
        float *x = rand_buf((size_t)s->M * s->K), *w = rand_buf((size_t)s->N * s->K), *b = rand_buf((size_t)s->N);
        op_f32_weights pw;
        CHECK_OK(op_f32_pack(w, s->N, s->K, &pw));
        if (pw.pack) {
            CHECK(op_f32_packed_bytes(&pw) >= (size_t)s->N * s->K * sizeof(float));
            double *mags = magnitudes(s, x, w);
            check_shape(s, &pw, x, w, mags, NULL, 0);
            check_shape(s, &pw, x, w, mags, b, 0);
            check_shape(s, &pw, x, w, mags, b, 1);
            cs_free(mags);
        }
        op_f32_free(&pw);
        CHECK(pw.pack == NULL);
        cs_free(x);
        cs_free(w);
        cs_free(b);
    }
}

/* Six row counts in turn, twice: more than a weight keeps primitives for. */
static void test_primitive_churn(void) {
    enum { N = 96, K = 80, MAXM = 64, ROUNDS = 6 };
    static const int k_M[ROUNDS] = {1, 7, 64, 13, 40, 3};
    float *x = rand_buf((size_t)MAXM * K), *w = rand_buf((size_t)N * K), *b = rand_buf(N);
    float *first = mem_alloc((size_t)ROUNDS * MAXM * N, sizeof(float)), *y = mem_alloc((size_t)MAXM * N, sizeof(float));
    op_f32_weights pw;
    CHECK_OK(op_f32_pack(w, N, K, &pw));
    int same = 1;
    for (int pass = 0; pass < 2 && pw.pack; pass++)
        for (int r = 0; r < ROUNDS; r++) {
            CHECK_OK(op_linear_f32(x, k_M[r], K, &pw, b, 0, y));
            float *keep = first + (size_t)r * MAXM * N;
            if (pass == 0) memcpy(keep, y, (size_t)k_M[r] * N * sizeof(float));
            else same &= !memcmp(keep, y, (size_t)k_M[r] * N * sizeof(float));
        }
    CHECK_MSG(same, "a row count's output changed when its primitive was made again");
    CHECK_OK(op_linear_f32(x, 0, K, &pw, b, 0, y)); /* no rows: nothing to do */
    op_f32_free(&pw);
    cs_free(x);
    cs_free(w);
    cs_free(b);
    cs_free(first);
    cs_free(y);
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* The tiny ViT at its native resolution R: tokens of a surgery pass and
 * the text features of the golden prompts. */
static void encode(cs_model *m, const float *px, int R, const int32_t *ids, float *tok, float *feat) {
    CHECK_OK(cs_encode_image(m, px, R, CS_VISION_SURGERY, tok));
    CHECK_OK(cs_encode_text(m, ids, 10, 77, feat));
}

static void test_model(void) {
    const char *path = golden_path("golden/tiny-vit/model.safetensors");
    cs_array px, ids;
    golden_load("inputs/synthetic_pre_64.npy", &px);
    golden_load("inputs/text_tokens.npy", &ids);
    cs_model *packed = NULL, *blas = NULL, *bf16_first = NULL;
    CHECK_OK(cs_model_load(path, &packed));
    CHECK_OK(cs_model_load(path, &blas));
    CHECK_OK(cs_model_load(path, &bf16_first));
    if (!packed || !blas || !bf16_first || !px.data || !ids.data) return;
    blas->fp32_openblas = 1;
    int R = 64, T = cs_model_num_tokens(packed, R), D = packed->cfg.embed_dim;
    size_t nt = (size_t)T * D, nf = (size_t)10 * D;
    float *tok = malloc(sizeof(float) * nt * 2), *feat = malloc(sizeof(float) * nf * 2);
    const cs_block *vb = &packed->vit.tr.blocks[0], *tb = &packed->text.tr.blocks[0];
    CHECK(!vb->qkv32.pack && !tb->qkv32.pack); /* packed at the first pass */
    encode(packed, px.data, R, ids.data, tok, feat);
    CHECK(!vb->qkv_w && vb->qkv32.pack && !vb->proj_w && vb->proj32.pack && !tb->fc_w && tb->fc32.pack);
    encode(blas, px.data, R, ids.data, tok + nt, feat + nf);
    CHECK(blas->vit.tr.blocks[0].qkv_w && !blas->vit.tr.blocks[0].qkv32.pack);
    double dt = max_diff(tok, tok + nt, nt) / max_abs(tok + nt, nt);
    double df = max_diff(feat, feat + nf, nf) / max_abs(feat + nf, nf);
    printf("tiny-vit packed vs OpenBLAS: image tokens %.2g, text features %.2g (relative to the largest)\n", dt,
           df);
    CHECK(dt <= 1e-5 && df <= 1e-5);
    /* bf16 after an fp32 pass equals bf16 set before any pass. */
    CHECK_OK(cs_model_set_precision(packed, CS_PRECISION_BF16));
    CHECK_OK(cs_model_set_precision(bf16_first, CS_PRECISION_BF16));
    encode(packed, px.data, R, ids.data, tok, feat);
    CHECK(!vb->qkv32.pack && vb->qkv16.data && !tb->out32.pack && tb->out16.data);
    encode(bf16_first, px.data, R, ids.data, tok + nt, feat + nf);
    CHECK(!memcmp(tok, tok + nt, nt * sizeof(float)) && !memcmp(feat, feat + nf, nf * sizeof(float)));
    free(tok);
    free(feat);
    cs_array_free(&px);
    cs_array_free(&ids);
    cs_model_free(packed);
    cs_model_free(blas);
    cs_model_free(bf16_first);
}

int main(void) {
    if (!op_f32_pack_available()) {
        printf("built without oneDNN: the fp32 linear layers stay on OpenBLAS\n");
        return 77;
    }
    test_shapes();
    test_primitive_churn();
    if (!op_f32_pack_pays())
        printf("no AVX-512: the models keep fp32 on OpenBLAS, the model checks are skipped\n");
    else if (golden_shared_dir_if_present()) test_model();
    else printf("no golden data: the model checks are skipped\n");
    return test_finish();
}
