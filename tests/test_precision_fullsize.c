/* bf16 and int8 against fp32 on a full-size model: synthetic:ViT-B/16
 * (random weights of CLIP's scale, width 768, 12 layers; real weights are
 * not downloaded in tests), one 224 x 224 image through CLIP Surgery, four
 * texts through the text tower (bf16 under int8), then the similarity
 * maps. Per stage it reports the relative error (max |diff| / max |fp32|) and cosine against
 * the same stage in fp32; it checks what the precisions promise (issue 18):
 * every class's map has cosine >= 0.999 against fp32's and the same top
 * point. */
#include <stdlib.h>
#include "model/model.h"
#include "golden.h"
#include "test.h"

enum { R = 224, C = 4, CTX = 77, MAX_STAGES = 64 };

/* Every tapped stage of one run: the fp32 run keeps copies, later runs are
 * compared with them as they come. */
typedef struct stage {
    char name[32];
    int layer;
    size_t n;
    float *ref;
} stage;

typedef struct tap_state {
    stage st[MAX_STAGES];
    int count, recording;
    const char *precision;
} tap_state;

static void compare(const char *precision, const char *name, int layer, const float *got,
                    const float *ref, size_t n, double *cos_out) {
    double relerr, cosine;
    golden_error(got, ref, NULL, (int64_t)n, &relerr, &cosine);
    printf("%s %-14s %3d  rel_err %.3e  cosine %.6f\n", precision, name, layer, relerr, cosine);
    if (cos_out) *cos_out = cosine;
}

static void tap(void *ctx, const char *name, int layer, const float *x, int rows, int width) {
    tap_state *t = ctx;
    /* The block outputs and the towers' ends; the rest adds lines, not information. */
    if (strcmp(name, "block") && strcmp(name, "block_xori") && strcmp(name, "block_x") &&
        strcmp(name, "ln_post") && strcmp(name, "text_ln_final"))
        return;
    size_t n = (size_t)rows * width;
    if (t->recording) {
        if (t->count == MAX_STAGES) return;
        stage *s = &t->st[t->count++];
        snprintf(s->name, sizeof s->name, "%s", name);
        s->layer = layer;
        s->n = n;
        s->ref = malloc(n * sizeof(float));
        memcpy(s->ref, x, n * sizeof(float));
        return;
    }
    for (int i = 0; i < t->count; i++)
        if (!strcmp(t->st[i].name, name) && t->st[i].layer == layer && t->st[i].n == n)
            compare(t->precision, name, layer, x, t->st[i].ref, n, NULL);
}

typedef struct outputs {
    float *tok, *text, *sim, *maps;
} outputs;

static void run(cs_model *m, const float *px, const int32_t *ids, int T, int D, outputs *o) {
    o->tok = malloc(sizeof(float) * T * D);
    o->text = malloc(sizeof(float) * C * D);
    o->sim = malloc(sizeof(float) * T * C);
    o->maps = malloc(sizeof(float) * R * R * C);
    CHECK_OK(cs_encode_image(m, px, R, CS_VISION_SURGERY, o->tok));
    CHECK_OK(cs_encode_text(m, ids, C, CTX, o->text));
    for (int c = 0; c < C; c++) { /* class embeddings are unit vectors */
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)o->text[c * D + i] * o->text[c * D + i];
        for (int i = 0; i < D; i++) o->text[c * D + i] /= (float)sqrt(ss);
    }
    CHECK_OK(cs_feature_surgery(o->tok, T, o->text, C, D, NULL, o->sim));
    CHECK_OK(cs_similarity_maps(o->sim, T, C, R, R, o->maps));
}

static void free_outputs(outputs *o) { free(o->tok), free(o->text), free(o->sim), free(o->maps); }

static size_t argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Class c's map out of maps [R, R, C]. */
static void map_of(const float *maps, int c, float *out) {
    for (size_t i = 0; i < (size_t)R * R; i++) out[i] = maps[i * C + c];
}

int main(void) {
    /* Packing releases the fp32 weights, so each precision gets its own
     * copy of the (deterministic) synthetic model. */
    cs_model *m;
    CHECK_OK(cs_model_synthetic("ViT-B/16", &m));
    if (!m) return test_finish();
    int T = cs_model_num_tokens(m, R), D = cs_model_config(m)->embed_dim;
    /* A smooth image with a few blobs (maps with distinct peaks), pixels of
     * the normalized range. */
    float *px = malloc(sizeof(float) * 3 * R * R);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < R; y++)
            for (int x = 0; x < R; x++) {
                double v = sin(0.05 * x * (c + 1)) * cos(0.07 * y) +
                           1.5 * exp(-((x - 60) * (x - 60) + (y - 150) * (y - 150)) / 400.0) -
                           1.2 * exp(-((x - 170) * (x - 170) + (y - 50) * (y - 50)) / 900.0);
                px[((size_t)c * R + y) * R + x] = (float)v;
            }
    /* Four texts: start token, a few word tokens, end token, padding. */
    int32_t ids[C * CTX] = {0};
    uint32_t rng = 7;
    for (int i = 0; i < C; i++) {
        int len = 3 + i;
        ids[i * CTX] = 49406;
        for (int k = 1; k <= len; k++) {
            rng = rng * 1664525u + 1013904223u;
            ids[i * CTX + k] = 1000 + (int32_t)(rng >> 8) % 40000;
        }
        ids[i * CTX + len + 1] = 49407;
    }
    tap_state t = {.recording = 1, .precision = "fp32"};
    m->tap = tap;
    m->tap_ctx = &t;
    outputs ref;
    run(m, px, ids, T, D, &ref);
    cs_model_free(m);
    t.recording = 0;
    static const struct {
        cs_precision p;
        const char *name;
    } k_precisions[] = {{CS_PRECISION_BF16, "bf16"}, {CS_PRECISION_INT8, "int8"}};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(cs_model_synthetic("ViT-B/16", &m));
        if (!m) break;
        m->tap = tap;
        m->tap_ctx = &t;
        CHECK_OK(cs_model_set_precision(m, k_precisions[k].p));
        t.precision = k_precisions[k].name;
        outputs o;
        run(m, px, ids, T, D, &o);
        compare(t.precision, "tokens", -1, o.tok, ref.tok, (size_t)T * D, NULL);
        compare(t.precision, "text", -1, o.text, ref.text, (size_t)C * D, NULL);
        compare(t.precision, "similarity", -1, o.sim, ref.sim, (size_t)T * C, NULL);
        float *a = malloc(sizeof(float) * R * R), *b = malloc(sizeof(float) * R * R);
        for (int c = 0; c < C; c++) {
            map_of(o.maps, c, a);
            map_of(ref.maps, c, b);
            double cosine;
            compare(t.precision, "map", c, a, b, (size_t)R * R, &cosine);
            size_t pa = argmax(a, (size_t)R * R), pb = argmax(b, (size_t)R * R);
            printf("%s map %d top point (%zu, %zu), fp32 (%zu, %zu); fp32 there %.4f of its top %.4f\n",
                   t.precision, c, pa % R, pa / R, pb % R, pb / R, b[pa], b[pb]);
            CHECK_MSG(cosine >= 0.999, "%s map %d: cosine %.6f vs fp32", t.precision, c, cosine);
            CHECK_MSG(pa == pb, "%s map %d: top point moved", t.precision, c);
        }
        free(a), free(b);
        cs_model_free(m);
        free_outputs(&o);
    }
    free_outputs(&ref);
    for (int i = 0; i < t.count; i++) free(t.st[i].ref);
    free(px);
    return test_finish();
}
