/* cs_model_save: a model written as safetensors under OpenAI names loads
 * back with the same tensors: the Hugging Face form in F16 gives exactly the
 * golden OpenAI-named F16 file's numbers (every golden weight is
 * fp16-exact), an F32 round trip keeps the parity outputs and is used in
 * place (the weights point into the file's map, no copy), BF16 is each
 * weight rounded to nearest even, and a packed BF16 file gives the plain
 * BF16 file's outputs bit for bit in bf16 (its panels used in place) and
 * fp32, and converts back to the same bytes. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include "formats/tensors.h"
#include "model/model.h"
#include "golden.h"
#include "test.h"

static void compare_tables(const char *written, const char *golden) {
    cs_tensor_table a, b;
    CHECK_OK(safetensors_open(written, &a));
    CHECK_OK(safetensors_open(golden, &b));
    CHECK_MSG(a.n == b.n, "%d tensors written, golden has %d", a.n, b.n);
    int same = 0;
    for (int i = 0; i < b.n; i++) {
        const cs_tensor *x = tensors_find(&a, b.items[i].name), *y = &b.items[i];
        if (!x || x->ndim != y->ndim || tensor_numel(x) != tensor_numel(y)) {
            CHECK_MSG(0, "tensor %s missing or reshaped", y->name);
            continue;
        }
        int64_t n = tensor_numel(x);
        float *fx = malloc(sizeof(float) * (size_t)(n + 1)), *fy = malloc(sizeof(float) * (size_t)(n + 1));
        tensor_to_f32(x, fx);
        tensor_to_f32(y, fy);
        same += !memcmp(fx, fy, sizeof(float) * (size_t)n);
        free(fx);
        free(fy);
    }
    CHECK_MSG(same == b.n, "%d of %d tensors bit-identical", same, b.n);
    tensors_free(&a);
    tensors_free(&b);
}

/* BF16 rounding of the writer on chosen values: ties to even, carries into
 * the exponent, NaN and infinity kept. */
static void bf16_rounding(const char *dir) {
    static const float in[] = {1.0f, 1.00390625f /* 1 + 2^-8: tie, down to even */,
                               1.01171875f /* 1 + 3*2^-8: tie, up to even */, 1.0039064f /* just above the tie */,
                               -2.9999999f, 3.0e38f, INFINITY, NAN, 0.0f, -0.0f};
    static const uint16_t want[] = {0x3f80, 0x3f80, 0x3f82, 0x3f81, 0xc040, 0x7f62, 0x7f80, 0x7fc0,
                                    0x0000, 0x8000};
    int64_t shape = sizeof in / sizeof *in;
    cs_tensor x = {.name = "x", .dtype = CS_DT_F32, .ndim = 1, .shape = {shape}, .data = in,
                   .nbytes = sizeof in};
    const cs_tensor *list[1] = {&x};
    char path[256];
    snprintf(path, sizeof path, "%s/bf16.safetensors", dir);
    CHECK_OK(safetensors_write(path, list, 1, CS_DT_BF16, NULL));
    cs_tensor_table t;
    CHECK_OK(safetensors_open(path, &t));
    const cs_tensor *y = tensors_find(&t, "x");
    CHECK_MSG(y && y->dtype == CS_DT_BF16 && y->nbytes == sizeof want, "x not written as BF16");
    if (y && y->nbytes == sizeof want)
        for (int i = 0; i < (int)shape; i++) {
            uint16_t h;
            memcpy(&h, (const uint8_t *)y->data + 2 * i, 2);
            CHECK_MSG(h == want[i], "bf16(%g) = 0x%04x, expected 0x%04x", in[i], h, want[i]);
        }
    tensors_free(&t);
    CHECK(safetensors_write(path, list, 1, CS_DT_I32, NULL) == CS_ERR_ARG);
    unsigned char as_panels = 1; /* a 1-D tensor has no panels */
    CHECK(safetensors_write(path, list, 1, CS_DT_BF16, &as_panels) == CS_ERR_ARG);
    CHECK_ERR_HAS("cannot be stored as bf16 panels");
}

/* Every fp32 weight of a model loaded from an F32 file lies in the file's
 * map (bound when the tower first runs), or, with oneDNN, the linear
 * weights are packed for it (their fp32 view then given back). The map
 * starts on a 2 MiB boundary, so that a page cache of 2 MiB folios can be
 * mapped in 2 MiB pages (file_map_input). */
static void check_in_place(cs_model *m) {
    CHECK_OK(model_prepare_text(m));
    const uint8_t *lo = m->table.map, *hi = lo + m->table.map_len;
    CHECK_MSG(lo && ((uintptr_t)lo & (((uintptr_t)2 << 20) - 1)) == 0,
              "the weight file's map starts at %p, not on a 2 MiB boundary", (const void *)lo);
    const cs_block *b = &m->text.tr.blocks[0];
    const float *w[] = {b->qkv_w, b->out_w, b->fc_w, b->proj_w, m->text.tok_emb, m->text.proj};
    const op_f32_weights *packed[] = {&b->qkv32, &b->out32, &b->fc32, &b->proj32, NULL, NULL};
    for (size_t i = 0; i < sizeof w / sizeof *w; i++)
        CHECK_MSG((packed[i] && packed[i]->pack && !w[i]) ||
                      (lo && (const uint8_t *)w[i] >= lo && (const uint8_t *)w[i] < hi),
                  "weight %zu of an F32 file was copied, not used in place", i);
}

static int same_bytes(const char *a, const char *b) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

/* The image tower's CLIP Surgery tokens of the model at path under p (*n
 * floats). */
static float *encode(const char *path, cs_precision p, int *n, cs_model **keep) {
    cs_model *m;
    CHECK_OK(cs_model_load(path, &m));
    if (!m) return NULL;
    CHECK_OK(cs_model_set_precision(m, p));
    cs_array px;
    golden_load("inputs/synthetic_pre_64.npy", &px);
    *n = cs_model_num_tokens(m, 64) * cs_model_config(m)->embed_dim;
    float *tok = calloc((size_t)*n, sizeof(float));
    CHECK_OK(cs_encode_image(m, px.data, 64, CS_VISION_SURGERY, tok));
    cs_array_free(&px);
    if (keep) *keep = m;
    else cs_model_free(m);
    return tok;
}

/* The packed file's panels: 64-byte aligned in the map, marked, named
 * like the plain weights; a bf16 run uses them where they lie. */
static void packed_round_trip(const char *dir) {
    char plain[256], packed[256], back[256], again[256];
    snprintf(plain, sizeof plain, "%s/vit-bf16.safetensors", dir);
    snprintf(packed, sizeof packed, "%s/vit-bf16p.safetensors", dir);
    snprintf(back, sizeof back, "%s/vit-bf16-back.safetensors", dir);
    snprintf(again, sizeof again, "%s/vit-bf16p-again.safetensors", dir);
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/model.safetensors"), &m));
    if (!m) return;
    CHECK_OK(cs_model_save(m, plain, CS_SAVE_BF16));
    CHECK_OK(cs_model_save(m, packed, CS_SAVE_BF16_PACKED));
    int linear = 4 * (m->vit.tr.layers + m->text.tr.layers); /* qkv, out, fc, proj per block */
    cs_model_free(m);

    cs_tensor_table t;
    CHECK_OK(safetensors_open(packed, &t));
    int marked = 0;
    for (int i = 0; i < t.n; i++) {
        const cs_tensor *x = &t.items[i];
        if (!x->bf16_panels) continue;
        marked++;
        CHECK_MSG((uintptr_t)x->data % 64 == 0, "panels of %s not 64-byte aligned", x->name);
        CHECK_MSG(!strstr(x->name, ".bf16_panels"), "%s keeps the suffix", x->name);
    }
    CHECK_MSG(marked == linear, "%d tensors stored as panels, expected %d", marked, linear);
    CHECK(tensors_find(&t, "visual.transformer.resblocks.0.attn.in_proj_weight")->bf16_panels);
    CHECK(!tensors_find(&t, "visual.transformer.resblocks.0.attn.in_proj_bias")->bf16_panels);
    tensors_free(&t);

    int T1, T2;
    for (int p = 0; p < 2; p++) {
        cs_precision prec = p ? CS_PRECISION_FP32 : CS_PRECISION_BF16;
        cs_model *pm = NULL;
        float *a = encode(plain, prec, &T1, NULL), *b = encode(packed, prec, &T2, &pm);
        CHECK_MSG(a && b && T1 == T2 && !memcmp(a, b, sizeof(float) * (size_t)T1),
                  "packed file's %s tokens differ from the plain BF16 file's", p ? "fp32" : "bf16");
        if (pm && prec == CS_PRECISION_BF16) {
            const op_bf16_weights *w = &pm->vit.tr.blocks[1].fc16;
            const uint8_t *lo = pm->table.map, *hi = lo + pm->table.map_len;
            CHECK_MSG(w->borrowed && (const uint8_t *)w->data >= lo && (const uint8_t *)w->data < hi,
                      "bf16 panels of a packed file were copied, not used in place");
        }
        cs_model_free(pm);
        free(a);
        free(b);
    }

    /* Back to plain BF16: the same bytes as the plain save; packed again:
     * the same bytes as the packed file (its panels copied as they are). */
    CHECK_OK(cs_model_load(packed, &m));
    if (!m) return;
    CHECK_OK(cs_model_save(m, back, CS_SAVE_BF16));
    CHECK_OK(cs_model_save(m, again, CS_SAVE_BF16_PACKED));
    cs_model_free(m);
    CHECK_MSG(same_bytes(plain, back), "packed -> bf16 differs from the plain bf16 file");
    CHECK_MSG(same_bytes(packed, again), "packed -> packed differs from the packed file");
}

int main(void) {
    char dir[] = "/tmp/cs_convert_XXXXXX", path[256];
    if (!mkdtemp(dir)) return 1;
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/hf"), &m));
    snprintf(path, sizeof path, "%s/from-hf.safetensors", dir);
    CHECK_OK(cs_model_save(m, path, CS_SAVE_F16));
    CHECK(cs_model_save(m, path, (cs_save_dtype)4) == CS_ERR_ARG);
    cs_model_free(m);
    compare_tables(path, golden_path("golden/tiny-vit/model.safetensors"));
    bf16_rounding(dir);
    packed_round_trip(dir);

    CHECK_OK(cs_model_load(golden_path("golden/tiny-rn/model.safetensors"), &m));
    snprintf(path, sizeof path, "%s/rn32.safetensors", dir);
    CHECK_OK(cs_model_save(m, path, CS_SAVE_F32));
    cs_model_free(m);
    CHECK_OK(cs_model_load(path, &m));
    if (m) {
        check_in_place(m);
        cs_array px;
        golden_load("inputs/synthetic_pre_128.npy", &px);
        int T = cs_model_num_tokens(m, 128);
        float *tok = malloc(sizeof(float) * T * 64);
        CHECK_OK(cs_encode_image(m, px.data, 128, CS_VISION_SURGERY, tok));
        golden_check_floats("tiny-rn/synthetic_cs_tokens_128.npy", tok, (int64_t)T * 64);
        free(tok);
        cs_array_free(&px);
        cs_model_free(m);
    }
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    if (system(path) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish();
}
