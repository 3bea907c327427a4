/* SAM at full size, where no golden file exists: a synthetic ViT-B SAM
 * (1024 input, 64x64 grid, 12 blocks 768 wide, windows of 14 padded to 70)
 * against naive float64 loops at sampled tokens: a windowed block (tokens in
 * the padded last windows and on window borders) and a global block
 * (relative positions over 127 offsets). The key/value projections of all
 * tokens go through the (separately tested) float GEMM; everything else of
 * the reference is float64. Plus the error paths: a checkpoint that is not
 * SAM, bad prompts, a foreign embedding, and NPY's Fortran order. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include "base/fileio.h"
#include "formats/npy.h"
#include "formats/tensors.h"
#include "ops/ops.h"
#include "sam/sam.h"
#include "test.h"

static uint64_t g_rng = 12345;
static float rnd(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(g_rng >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

static void ln_double(const float *x, int D, const cs_layer_norm *ln, double eps, double *y) {
    double mean = 0, var = 0;
    for (int c = 0; c < D; c++) mean += x[c];
    mean /= D;
    for (int c = 0; c < D; c++) var += (x[c] - mean) * (x[c] - mean);
    var /= D;
    for (int c = 0; c < D; c++) y[c] = (x[c] - mean) / sqrt(var + eps) * ln->w[c] + ln->b[c];
}

/* y[out] = W x + b in double. */
static void lin_double(const sam_linear *l, const double *x, double *y) {
    for (int o = 0; o < l->out; o++) {
        double s = l->b ? l->b[o] : 0;
        for (int i = 0; i < l->in; i++) s += (double)l->w[(size_t)o * l->in + i] * x[i];
        y[o] = s;
    }
}

/* The block's output at token (ti, tj), from its input x [G*G, D]:
 * Meta's Block with window partition (zero padding, unmasked), decomposed
 * relative positions, proj, residual, MLP. kv: [Hp*Hp, 2D] keys and values
 * on the padded grid (float GEMM of the float64 layer norm). */
static void block_reference(const cs_sam *m, const sam_enc_block *k, const float *x, const float *kv,
                            int Hp, int ti, int tj, double *out) {
    const cs_sam_config *c = &m->cfg;
    int G = c->grid, D = c->enc_width, H = c->enc_heads, hd = D / H;
    int s = k->window ? k->window : G, oi = ti / s * s, oj = tj / s * s, qi = ti - oi, qj = tj - oj;
    double *h = malloc(sizeof(double) * D * 8), *q = h + D, *att = q + 3 * D, *tmp = att + D;
    double *logit = malloc(sizeof(double) * s * s), *hid = malloc(sizeof(double) * c->enc_mlp);
    ln_double(x + ((size_t)ti * G + tj) * D, D, &k->norm1, 1e-6, h);
    lin_double(&k->qkv, h, q); /* q is the first D rows of qkv */
    for (int hh = 0; hh < H; hh++) {
        const double *qh = q + hh * hd;
        double mx = -INFINITY, sum = 0;
        for (int ki = 0; ki < s; ki++)
            for (int kj = 0; kj < s; kj++) {
                const float *kk = kv + ((size_t)(oi + ki) * Hp + oj + kj) * 2 * D + hh * hd;
                double dot = 0, rh = 0, rw = 0;
                for (int e = 0; e < hd; e++) {
                    dot += qh[e] * kk[e];
                    rh += qh[e] * k->rel_h[(size_t)(qi - ki + s - 1) * hd + e];
                    rw += qh[e] * k->rel_w[(size_t)(qj - kj + s - 1) * hd + e];
                }
                double l = dot / sqrt((double)hd) + rh + rw;
                logit[ki * s + kj] = l;
                if (l > mx) mx = l;
            }
        for (int i = 0; i < s * s; i++) sum += (logit[i] = exp(logit[i] - mx));
        for (int e = 0; e < hd; e++) {
            double a = 0;
            for (int ki = 0; ki < s; ki++)
                for (int kj = 0; kj < s; kj++)
                    a += logit[ki * s + kj] * kv[((size_t)(oi + ki) * Hp + oj + kj) * 2 * D + D + hh * hd + e];
            att[hh * hd + e] = a / sum;
        }
    }
    lin_double(&k->proj, att, tmp);
    float *xf = malloc(sizeof(float) * D);
    for (int e = 0; e < D; e++) out[e] = x[((size_t)ti * G + tj) * D + e] + tmp[e];
    for (int e = 0; e < D; e++) xf[e] = (float)out[e];
    ln_double(xf, D, &k->norm2, 1e-6, h);
    lin_double(&k->lin1, h, hid);
    for (int i = 0; i < c->enc_mlp; i++) hid[i] = 0.5 * hid[i] * (1 + erf(hid[i] / sqrt(2.0)));
    for (int o = 0; o < D; o++) {
        double a = k->lin2.b[o];
        for (int i = 0; i < c->enc_mlp; i++) a += (double)k->lin2.w[(size_t)o * c->enc_mlp + i] * hid[i];
        out[o] += a;
    }
    free(xf);
    free(hid);
    free(logit);
    free(h);
}

/* Keys and values of every token of the padded grid: LN in float64, then
 * the k | v rows of qkv through op_linear (padding rows are zero: bias). */
static float *keys_values(const cs_sam *m, const sam_enc_block *k, const float *x, int Hp) {
    int G = m->cfg.grid, D = m->cfg.enc_width;
    float *h = calloc((size_t)Hp * Hp * D, sizeof(float)), *kv = malloc(sizeof(float) * Hp * Hp * 2 * D);
    double *row = malloc(sizeof(double) * D);
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) {
            ln_double(x + ((size_t)i * G + j) * D, D, &k->norm1, 1e-6, row);
            for (int e = 0; e < D; e++) h[((size_t)i * Hp + j) * D + e] = (float)row[e];
        }
    op_linear(h, Hp * Hp, D, k->qkv.w + (size_t)D * D, k->qkv.b + D, 2 * D, kv);
    free(row);
    free(h);
    return kv;
}

static void check_block(cs_sam *m, int index) {
    const cs_sam_config *c = &m->cfg;
    const sam_enc_block *k = &m->blocks[index];
    int G = c->grid, D = c->enc_width, s = k->window ? k->window : G, Hp = (G + s - 1) / s * s;
    size_t n = (size_t)G * G * D;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    float *scratch = malloc(sizeof(float) * sam_block_scratch(c));
    for (size_t i = 0; i < n; i++) x[i] = rnd();
    memcpy(y, x, sizeof(float) * n);
    sam_encoder_block(m, index, y, scratch);
    float *kv = keys_values(m, k, x, Hp);
    /* corners, the padded last windows, window borders */
    static const int tokens[][2] = {{0, 0}, {63, 63}, {63, 0}, {0, 63}, {56, 57}, {13, 14}, {14, 13}, {41, 27}};
    double *ref = malloc(sizeof(double) * D), max_err = 0, max_ref = 0, dot = 0, na = 0, nb = 0;
    for (size_t t = 0; t < sizeof tokens / sizeof *tokens; t++) {
        block_reference(m, k, x, kv, Hp, tokens[t][0], tokens[t][1], ref);
        const float *got = y + ((size_t)tokens[t][0] * G + tokens[t][1]) * D;
        for (int e = 0; e < D; e++) {
            max_err = fmax(max_err, fabs(got[e] - ref[e]));
            max_ref = fmax(max_ref, fabs(ref[e]));
            dot += got[e] * ref[e];
            na += (double)got[e] * got[e];
            nb += ref[e] * ref[e];
        }
    }
    double rel = max_err / max_ref, cosine = dot / sqrt(na * nb);
    printf("block %d (%s, side %d, padded to %d): rel_err %.3g cosine %.9f\n", index,
           k->window ? "windowed" : "global", s, Hp, rel, cosine);
    CHECK_MSG(rel <= 1e-4 && cosine >= 0.99999, "block %d: rel_err %.3g cosine %.9f", index, rel, cosine);
    free(ref);
    free(kv);
    free(scratch);
    free(y);
    free(x);
}

/* The full-size decoder and post-processing run and give finite results of
 * the right shapes; bad prompts fail with CS_ERR_ARG and name the fault. */
/* postprocess_masks as Meta writes it (low-res -> S x S, crop, -> H x W)
 * against the predictor's logits, which resize only the crop: bit for bit. */
static void check_postprocess(const cs_sam_result *r, const cs_sam_embedding *e, int S) {
    int L = r->lowres, nh = e->input_h, nw = e->input_w, W = r->width, H = r->height;
    float *big = malloc(sizeof(float) * S * S), *crop = malloc(sizeof(float) * nh * nw);
    float *want = malloc(sizeof(float) * W * H);
    int same = 1;
    for (int k = 0; k < r->n_masks; k++) {
        op_resize_bilinear(r->lowres_logits + (size_t)k * L * L, L, L, 1, big, S, S);
        for (int y = 0; y < nh; y++) memcpy(crop + (size_t)y * nw, big + (size_t)y * S, sizeof(float) * nw);
        op_resize_bilinear(crop, nh, nw, 1, want, H, W);
        same &= !memcmp(want, r->logits + (size_t)k * W * H, sizeof(float) * W * H);
    }
    CHECK(same);
    free(big);
    free(crop);
    free(want);
}

static void check_prompts(cs_sam *m) {
    const cs_sam_config *c = cs_sam_get_config(m);
    cs_sam_embedding e = {c->embed_dim, c->grid, 640, 480, 1024, 768, NULL};
    size_t n = (size_t)c->embed_dim * c->grid * c->grid;
    e.data = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) e.data[i] = rnd();
    float pts[4] = {320, 240, 639.5f, 0}, box[4] = {10, 20, 600, 470};
    int32_t labels[2] = {1, 0};
    cs_sam_prompt p = {2, pts, labels, box, NULL, 1};
    cs_sam_result r;
    CHECK_OK(cs_sam_predict(m, &e, &p, &r));
    CHECK(r.n_masks == 3 && r.width == 640 && r.height == 480 && r.lowres == 256);
    int finite = 1;
    for (size_t i = 0; r.logits && i < (size_t)3 * 640 * 480; i++) finite &= isfinite(r.logits[i]);
    CHECK(finite);
    check_postprocess(&r, &e, c->image_size);
    cs_sam_result_free(&r);
    /* an image whose resize is the model's frame: no second resize */
    cs_sam_embedding e2 = e;
    e2.image_w = 1024;
    e2.image_h = 768;
    CHECK_OK(cs_sam_predict(m, &e2, &p, &r));
    check_postprocess(&r, &e2, c->image_size);
    cs_sam_result_free(&r);
    p.multimask = 0;
    CHECK_OK(cs_sam_predict(m, &e, &p, &r));
    CHECK(r.n_masks == 1);
    /* low-res logits fed back as the mask input */
    float *mask = malloc(sizeof(float) * 256 * 256);
    memcpy(mask, r.lowres_logits, sizeof(float) * 256 * 256);
    cs_sam_result_free(&r);
    cs_sam_prompt pm = {0, NULL, NULL, NULL, mask, 1};
    CHECK_OK(cs_sam_predict(m, &e, &pm, &r));
    cs_sam_result_free(&r);

    float out_pt[2] = {641, 10};
    cs_sam_prompt bad = {1, out_pt, labels, NULL, NULL, 1};
    CHECK_STATUS(cs_sam_predict(m, &e, &bad, &r), CS_ERR_ARG);
    CHECK_ERR_HAS("outside");
    int32_t bad_label = 2;
    cs_sam_prompt badl = {1, pts, &bad_label, NULL, NULL, 1};
    CHECK_STATUS(cs_sam_predict(m, &e, &badl, &r), CS_ERR_ARG);
    CHECK_ERR_HAS("label 2");
    float flipped[4] = {600, 20, 10, 470};
    cs_sam_prompt badb = {0, NULL, NULL, flipped, NULL, 1};
    CHECK_STATUS(cs_sam_predict(m, &e, &badb, &r), CS_ERR_ARG);
    CHECK_ERR_HAS("x1 < x0");
    cs_sam_prompt empty = {0, NULL, NULL, NULL, NULL, 1};
    CHECK_STATUS(cs_sam_predict(m, &e, &empty, &r), CS_ERR_ARG);
    mask[7] = NAN;
    CHECK_STATUS(cs_sam_predict(m, &e, &pm, &r), CS_ERR_ARG);
    cs_sam_embedding foreign = e;
    foreign.grid = 16;
    CHECK_STATUS(cs_sam_predict(m, &foreign, &p, &r), CS_ERR_ARG);

    /* the embedding's bytes round-trip; a truncated or foreign one fails */
    size_t nb = cs_sam_embedding_bytes(&e);
    char *buf = malloc(nb);
    cs_sam_embedding_to_bytes(&e, buf);
    cs_sam_embedding back;
    CHECK_OK(cs_sam_embedding_from_bytes(m, buf, nb, &back));
    CHECK(back.image_w == 640 && back.input_h == 768 && back.data && !memcmp(back.data, e.data, n * sizeof(float)));
    cs_sam_embedding_free(&back);
    CHECK_STATUS(cs_sam_embedding_from_bytes(m, buf, nb - 4, &back), CS_ERR_FORMAT);
    ((int32_t *)buf)[4] = 1000; /* input size that 640x480 does not resize to */
    CHECK_STATUS(cs_sam_embedding_from_bytes(m, buf, nb, &back), CS_ERR_FORMAT);
    free(buf);
    free(mask);
    free(e.data);
}

/* The decoder's cross attention folded (projections on the token side) and
 * plain (Meta's order) give the same low-res logits and IoU to rounding, on
 * the full-size decoder; one point is folded by default, 16 points are not. */
static void check_cross_fold(cs_sam *m) {
    const cs_sam_config *c = cs_sam_get_config(m);
    cs_sam_embedding e = {c->embed_dim, c->grid, 640, 480, 1024, 768, NULL};
    size_t n = (size_t)c->embed_dim * c->grid * c->grid, LL = (size_t)16 * c->grid * c->grid;
    e.data = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) e.data[i] = rnd();
    float pts[32];
    int32_t labels[16];
    for (int i = 0; i < 16; i++) {
        pts[2 * i] = 40.0f * i;
        pts[2 * i + 1] = 30.0f * i;
        labels[i] = i % 2;
    }
    CHECK(sam_cross_folds(m, c->dec_heads, 1 + c->n_mask_tokens + 2, c->dec_cross_dim));
    CHECK(!sam_cross_folds(m, c->dec_heads, 1 + c->n_mask_tokens + 17, c->dec_cross_dim));
    for (int n_points = 1; n_points <= 16; n_points += 15) {
        cs_sam_prompt p = {n_points, pts, labels, NULL, NULL, 1};
        cs_sam_result r[2];
        for (int fold = 0; fold < 2; fold++) {
            m->cross_fold = fold;
            CHECK_OK(cs_sam_predict(m, &e, &p, &r[fold]));
        }
        m->cross_fold = -1;
        double max_err = 0, max_ref = 0, iou_err = 0;
        for (size_t i = 0; i < 3 * LL && r[0].lowres_logits && r[1].lowres_logits; i++) {
            double d = fabs((double)r[0].lowres_logits[i] - r[1].lowres_logits[i]);
            max_err = d > max_err ? d : max_err;
            max_ref = fabs(r[0].lowres_logits[i]) > max_ref ? fabs(r[0].lowres_logits[i]) : max_ref;
        }
        for (int k = 0; k < 3 && r[0].iou && r[1].iou; k++) iou_err = fmax(iou_err, fabs(r[0].iou[k] - r[1].iou[k]));
        printf("%d point(s): folded vs plain cross attention, low-res rel_err %.3g, IoU abs err %.3g\n", n_points,
               max_err / max_ref, iou_err);
        CHECK(max_ref > 0 && max_err / max_ref <= 1e-5 && iou_err <= 1e-5);
        cs_sam_result_free(&r[0]);
        cs_sam_result_free(&r[1]);
    }
    free(e.data);
}

static void check_not_sam(void) {
    cs_sam *m;
    CHECK_STATUS(cs_sam_load("/nonexistent/sam.pth", NULL, &m), CS_ERR_IO);
    CHECK(m == NULL);
    char path[] = "/tmp/cs_sam_units_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    float w[4] = {1, 2, 3, 4};
    cs_tensor t = {.name = "visual.proj", .dtype = CS_DT_F32, .ndim = 2, .shape = {2, 2}, .data = w, .nbytes = sizeof w};
    const cs_tensor *list[1] = {&t};
    CHECK_OK(safetensors_write(path, list, 1, 0, NULL));
    CHECK_STATUS(cs_sam_load(path, NULL, &m), CS_ERR_MISSING);
    CHECK_ERR_HAS("not a SAM checkpoint");
    remove(path);
    CHECK_STATUS(cs_sam_synthetic("vit_x", &m), CS_ERR_ARG);
}

/* Fortran-order .npy (what NumPy writes for a transposed array) is read
 * into row-major order. */
static void check_npy_fortran(void) {
    char header[] = "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }";
    uint8_t buf[256] = "\x93NUMPY\x01\x00";
    size_t hl = sizeof header - 1;
    buf[8] = (uint8_t)hl;
    buf[9] = 0;
    memcpy(buf + 10, header, hl);
    int32_t colmajor[6] = {0, 1, 2, 3, 4, 5}; /* column j holds 2j, 2j+1 */
    memcpy(buf + 10 + hl, colmajor, sizeof colmajor);
    cs_array a;
    CHECK_OK(npy_parse("f.npy", buf, 10 + hl + sizeof colmajor, &a));
    const int32_t want[6] = {0, 2, 4, 1, 3, 5};
    CHECK(a.data && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && !memcmp(a.data, want, sizeof want));
    cs_array_free(&a);
}

int main(void) {
    check_npy_fortran();
    check_not_sam();
    cs_sam *m;
    CHECK_OK(cs_sam_synthetic("vit_b", &m));
    if (!m) return test_finish();
    const cs_sam_config *c = cs_sam_get_config(m);
    CHECK(c->image_size == 1024 && c->grid == 64 && c->enc_width == 768 && c->enc_depth == 12 &&
          c->enc_heads == 12 && c->window == 14 && c->n_global == 4 && c->global_blocks[0] == 2 &&
          c->embed_dim == 256 && c->dec_heads == 8 && c->dec_cross_dim == 128);
    check_block(m, 0); /* windowed, 64 padded to 70 */
    check_block(m, 2); /* global */
    check_prompts(m);
    check_cross_fold(m);
    cs_sam_free(m);
    return test_finish();
}
