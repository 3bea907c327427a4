/* Every error path of the safetensors loader and of model binding: each case
 * asserts the exact status code and that the message names the file and the
 * problem. Files are written into a temporary folder. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "formats/tensors.h"
#include "golden.h"
#include "test.h"

static char g_dir[256];

static const char *tmp_file(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    return path;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

/* A file with the given header text and `data_len` zero bytes of data. */
static const char *write_raw(const char *name, const char *header, size_t data_len) {
    const char *path = tmp_file(name);
    size_t hlen = strlen(header);
    unsigned char *buf = calloc(1, 8 + hlen + data_len);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    write_bytes(path, buf, 8 + hlen + data_len);
    free(buf);
    return path;
}

static void expect_open_error(const char *path, cs_status want, const char *problem) {
    cs_tensor_table t;
    CHECK_STATUS(safetensors_open(path, &t), want);
    CHECK_ERR_HAS(path);
    CHECK_ERR_HAS(problem);
    tensors_free(&t);
}

/* How rewrite poisons its tensor: a NaN in element 0 (in the tensor's
 * dtype), or every element 3e38 (as F32): finite, but a layer norm's
 * weight of that size overflows fp32 in the products after it. */
typedef enum poison { POISON_NAN, POISON_HUGE } poison;

/* Rewrite a table as a safetensors file, skipping `drop`, giving `reshape`
 * the shape {n} (same bytes), and poisoning `poisoned` as `how` says. */
static const char *rewrite_poisoned(const char *name, const cs_tensor_table *src, const char *drop,
                                    const char *reshape, const char *poisoned, poison how) {
    static const char *dt[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL"};
    size_t cap = 1 << 20, n = 0, off = 0;
    char *h = malloc(cap);
    n += (size_t)snprintf(h + n, cap - n, "{");
    for (int i = 0; i < src->n; i++) {
        const cs_tensor *x = &src->items[i];
        if (drop && !strcmp(x->name, drop)) continue;
        int huge = how == POISON_HUGE && poisoned && !strcmp(x->name, poisoned);
        size_t nbytes = huge ? (size_t)tensor_numel(x) * sizeof(float) : x->nbytes;
        n += (size_t)snprintf(h + n, cap - n, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", n > 1 ? "," : "",
                              x->name, huge ? "F32" : dt[x->dtype]);
        if (reshape && !strcmp(x->name, reshape)) {
            n += (size_t)snprintf(h + n, cap - n, "%lld,1", (long long)tensor_numel(x));
        } else {
            for (int d = 0; d < x->ndim; d++)
                n += (size_t)snprintf(h + n, cap - n, d ? ",%lld" : "%lld", (long long)x->shape[d]);
        }
        n += (size_t)snprintf(h + n, cap - n, "],\"data_offsets\":[%zu,%zu]}", off, off + nbytes);
        off += nbytes;
    }
    snprintf(h + n, cap - n, "}");
    const char *path = tmp_file(name);
    size_t hlen = strlen(h);
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 8; i++) fputc((int)((uint64_t)hlen >> (8 * i)) & 0xff, f);
    fwrite(h, 1, hlen, f);
    for (int i = 0; i < src->n; i++) {
        const cs_tensor *x = &src->items[i];
        if (drop && !strcmp(x->name, drop)) continue;
        if (poisoned && !strcmp(x->name, poisoned) && how == POISON_HUGE) {
            for (int64_t k = 0; k < tensor_numel(x); k++) {
                float v = 3e38f;
                fwrite(&v, sizeof v, 1, f);
            }
        } else if (poisoned && !strcmp(x->name, poisoned)) {
            unsigned char *copy = malloc(x->nbytes);
            memcpy(copy, x->data, x->nbytes);
            /* a quiet NaN in element 0, in the tensor's dtype */
            static const unsigned char nan_f16[2] = {0x00, 0x7e}, nan_bf16[2] = {0xc0, 0x7f},
                                       nan_f32[4] = {0x00, 0x00, 0xc0, 0x7f};
            if (x->dtype == CS_DT_F32) memcpy(copy, nan_f32, 4);
            else memcpy(copy, x->dtype == CS_DT_BF16 ? nan_bf16 : nan_f16, 2);
            fwrite(copy, 1, x->nbytes, f);
            free(copy);
        } else {
            fwrite(x->data, 1, x->nbytes, f);
        }
    }
    fclose(f);
    free(h);
    return path;
}

static const char *rewrite(const char *name, const cs_tensor_table *src, const char *drop,
                           const char *reshape, const char *nan_in) {
    return rewrite_poisoned(name, src, drop, reshape, nan_in, POISON_NAN);
}

static void test_file_errors(void) {
    expect_open_error(tmp_file("does-not-exist.safetensors"), CS_ERR_MISSING, "cannot open");
    const char *p = tmp_file("short.safetensors");
    write_bytes(p, "\x10\0\0", 3);
    expect_open_error(p, CS_ERR_FORMAT, "truncated");

    p = tmp_file("header-too-long.safetensors");
    unsigned char big[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_bytes(p, big, 10);
    expect_open_error(p, CS_ERR_FORMAT, "larger than the file");

    p = tmp_file("header-over-limit.safetensors");
    unsigned char huge[10] = {0, 0, 0, 0, 1, 0, 0, 0, '{', '}'}; /* 4 GiB */
    write_bytes(p, huge, 10);
    expect_open_error(p, CS_ERR_FORMAT, "100 MB");

    expect_open_error(write_raw("not-json.safetensors", "{\"a\": [1, 2", 0), CS_ERR_FORMAT,
                      "not a JSON object");
    expect_open_error(write_raw("array.safetensors", "[1, 2]", 0), CS_ERR_FORMAT, "not a JSON object");
    expect_open_error(write_raw("dtype.safetensors",
                                "{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2),
                      CS_ERR_UNSUPPORTED, "unknown dtype 'Q4'");
    expect_open_error(write_raw("outside.safetensors",
                                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8),
                      CS_ERR_FORMAT, "outside the data section");
    expect_open_error(write_raw("negative.safetensors",
                                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8),
                      CS_ERR_FORMAT, "not whole byte offsets");
    expect_open_error(write_raw("overlap.safetensors",
                                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
                      CS_ERR_FORMAT, "overlap");
    expect_open_error(write_raw("size.safetensors",
                                "{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
                      CS_ERR_FORMAT, "shape x dtype size is 6 bytes");
    expect_open_error(write_raw("shape-overflow.safetensors",
                                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                                "\"data_offsets\":[0,8]}}", 8),
                      CS_ERR_FORMAT, "shape overflows");
    expect_open_error(write_raw("fields.safetensors", "{\"w\":{\"dtype\":\"F32\"}}", 0),
                      CS_ERR_FORMAT, "needs dtype, shape and data_offsets");

    /* Packed bf16 panels: BF16 [N, K], both multiples of 32, once per name. */
    expect_open_error(write_raw("panels-dtype.safetensors",
                                "{\"w.bf16_panels\":{\"dtype\":\"F32\",\"shape\":[32,32],\"data_offsets\":[0,4096]}}",
                                4096),
                      CS_ERR_FORMAT, "tensor 'w.bf16_panels': packed panels must be BF16");
    expect_open_error(write_raw("panels-shape.safetensors",
                                "{\"w.bf16_panels\":{\"dtype\":\"BF16\",\"shape\":[32,48],\"data_offsets\":[0,3072]}}",
                                3072),
                      CS_ERR_FORMAT, "multiples of 32");
    expect_open_error(write_raw("panels-1d.safetensors",
                                "{\"w.bf16_panels\":{\"dtype\":\"BF16\",\"shape\":[1024],\"data_offsets\":[0,2048]}}",
                                2048),
                      CS_ERR_FORMAT, "packed panels must be BF16 [N, K]");
    expect_open_error(write_raw("panels-twice.safetensors",
                                "{\"w\":{\"dtype\":\"BF16\",\"shape\":[32,32],\"data_offsets\":[0,2048]},"
                                "\"w.bf16_panels\":{\"dtype\":\"BF16\",\"shape\":[32,32],\"data_offsets\":[2048,4096]}}",
                                4096),
                      CS_ERR_FORMAT, "tensor 'w' appears twice");

    /* A well-formed file with metadata and an empty tensor opens. */
    cs_tensor_table t;
    CHECK_OK(safetensors_open(write_raw("ok.safetensors",
                                           "{\"__metadata__\":{\"k\":\"v\"},"
                                           "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                                           "\"w\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}", 8),
                                 &t));
    CHECK(t.n == 2 && tensors_find(&t, "w") && tensors_find(&t, "w")->ndim == 2);
    CHECK(!tensors_find(&t, "w")->bf16_panels);
    tensors_free(&t);
    CHECK_OK(safetensors_open(write_raw("panels.safetensors",
                                           "{\"w.bf16_panels\":{\"dtype\":\"BF16\",\"shape\":[64,32],"
                                           "\"data_offsets\":[0,4096]}}", 4096),
                                 &t));
    CHECK(t.n == 1 && tensors_find(&t, "w") && tensors_find(&t, "w")->bf16_panels &&
          tensors_find(&t, "w")->shape[0] == 64);
    tensors_free(&t);
}

static void expect_model_error(const char *path, cs_status want, const char *problem) {
    cs_model *m = (cs_model *)1;
    CHECK_STATUS(cs_model_load(path, &m), want);
    CHECK(m == NULL);
    CHECK_ERR_HAS(path);
    CHECK_ERR_HAS(problem);
}

/* A model whose tower (vision 1, text 0) holds a NaN loads; the first run
 * of that tower is refused with the message (and so is every later one:
 * nothing half-prepared runs), while the other tower runs, before and
 * after, with the same results. */
static void expect_tower_error(const char *path, cs_precision p, int vision, const char *problem) {
    cs_model *m;
    CHECK_OK(cs_model_load(path, &m));
    if (!m) return;
    CHECK_OK(cs_model_set_precision(m, p));
    const cs_config *c = cs_model_config(m);
    int R = c->image_resolution, T = cs_model_num_tokens(m, R), D = c->embed_dim;
    float *px = calloc((size_t)3 * R * R, sizeof(float));
    float *tok[2] = {calloc((size_t)T * D, sizeof(float)), calloc((size_t)T * D, sizeof(float))};
    float *emb[2] = {calloc((size_t)D, sizeof(float)), calloc((size_t)D, sizeof(float))};
    int32_t ids[8] = {49406, 320, 1929, 49407};
    for (int run = 0; run < 2; run++) {
        if (vision) {
            CHECK_STATUS(cs_encode_image(m, px, R, CS_VISION_SURGERY, tok[run]), CS_ERR_FORMAT);
            CHECK_ERR_HAS(path);
            CHECK_ERR_HAS(problem);
            CHECK_OK(cs_encode_text(m, ids, 1, 8, emb[run]));
        } else {
            CHECK_OK(cs_encode_image(m, px, R, CS_VISION_SURGERY, tok[run]));
            CHECK_STATUS(cs_encode_text(m, ids, 1, 8, emb[run]), CS_ERR_FORMAT);
            CHECK_ERR_HAS(path);
            CHECK_ERR_HAS(problem);
        }
    }
    if (vision) CHECK(!memcmp(emb[0], emb[1], sizeof(float) * (size_t)D));
    else CHECK(!memcmp(tok[0], tok[1], sizeof(float) * (size_t)T * D));
    free(px);
    free(tok[0]);
    free(tok[1]);
    free(emb[0]);
    free(emb[1]);
    cs_model_free(m);
}

/* The image tower's tokens at its native resolution (NULL: refused with
 * `want`, the message naming `problem`). */
static float *encode_or_refuse(cs_model *m, cs_precision p, cs_vision_mode mode, cs_status want,
                               const char *problem) {
    CHECK_OK(cs_model_set_precision(m, p));
    const cs_config *c = cs_model_config(m);
    int R = c->image_resolution;
    size_t n = (size_t)cs_model_num_tokens(m, R) * c->embed_dim;
    float *px = malloc((size_t)3 * R * R * sizeof(float)), *tok = malloc(n * sizeof(float));
    for (int i = 0; i < 3 * R * R; i++) px[i] = (float)(i % 17) / 8.0f - 1.0f;
    cs_status s = cs_encode_image(m, px, R, mode, tok);
    free(px);
    CHECK_STATUS(s, want);
    if (want != CS_OK) CHECK_ERR_HAS(problem);
    if (s == CS_OK) return tok;
    free(tok);
    return NULL;
}

/* The image tower checks its output, not its weights before the first
 * pass: a NaN in a weight a pass uses refuses it, naming the weight; a
 * pass that does not use it (MaskCLIP skips the last block's MLP) gives
 * the clean file's tokens, before and after a refused one. int8 packs
 * checked weights (a NaN would quantize to zeros, unseen), and finite
 * weights that overflow are refused as such. */
static void test_image_tower_checks_output(const cs_tensor_table *t) {
    const char *golden = golden_path("golden/tiny-vit/model.safetensors");
    char fc[128];
    int last = 0;
    for (int l = 0; l < 64; l++) {
        snprintf(fc, sizeof fc, "visual.transformer.resblocks.%d.mlp.c_fc.weight", l);
        if (tensors_find(t, fc)) last = l;
    }
    snprintf(fc, sizeof fc, "visual.transformer.resblocks.%d.mlp.c_fc.weight", last);
    const char *nan_fc = rewrite("nan-last-fc.safetensors", t, NULL, NULL, fc);
    char problem[200];
    snprintf(problem, sizeof problem, "'%s' holds 1 non-finite value", fc);
    /* (a model packed for bf16 keeps that precision: one load each) */
    const cs_precision precisions[2] = {CS_PRECISION_FP32, CS_PRECISION_BF16};
    for (int i = 0; i < 2; i++) {
        cs_model *clean = NULL, *m = NULL;
        CHECK_OK(cs_model_load(golden, &clean));
        CHECK_OK(cs_model_load(nan_fc, &m));
        float *want = clean ? encode_or_refuse(clean, precisions[i], CS_VISION_MASKCLIP, CS_OK, NULL) : NULL;
        size_t n = want ? (size_t)cs_model_num_tokens(clean, cs_model_config(clean)->image_resolution) *
                              cs_model_config(clean)->embed_dim
                        : 0;
        for (int run = 0; want && m && run < 2; run++) {
            float *got = encode_or_refuse(m, precisions[i], CS_VISION_MASKCLIP, CS_OK, NULL);
            CHECK_MSG(got && !memcmp(want, got, n * sizeof(float)), "precision %d run %d", i, run);
            free(got);
            CHECK(!encode_or_refuse(m, precisions[i], CS_VISION_SURGERY, CS_ERR_FORMAT, problem));
            CHECK_ERR_HAS(nan_fc);
        }
        CHECK(want && m);
        free(want);
        cs_model_free(m);
        cs_model_free(clean);
    }
    cs_model *m;
    CHECK_OK(cs_model_load(nan_fc, &m));
    if (m) CHECK(!encode_or_refuse(m, CS_PRECISION_INT8, CS_VISION_MASKCLIP, CS_ERR_FORMAT, problem));
    cs_model_free(m);

    const char *huge = rewrite_poisoned("huge-ln-post.safetensors", t, NULL, NULL, "visual.ln_post.weight",
                                        POISON_HUGE);
    CHECK_OK(cs_model_load(huge, &m));
    if (!m) return;
    CHECK(!encode_or_refuse(m, CS_PRECISION_FP32, CS_VISION_SURGERY, CS_ERR_UNSUPPORTED, "overflow"));
    CHECK_ERR_HAS(huge);
    cs_model_free(m);
}

static void test_model_errors(void) {
    expect_model_error(tmp_file("nothing-here.safetensors"), CS_ERR_MISSING, "not found");
    cs_tensor_table t;
    CHECK_OK(safetensors_open(golden_path("golden/tiny-vit/model.safetensors"), &t));

    /* The golden file cut short: the last tensors' offsets run past the end. */
    const char *p = rewrite("full.safetensors", &t, NULL, NULL, NULL);
    char *data;
    size_t len;
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    rewind(f);
    data = malloc(len);
    CHECK(fread(data, 1, len, f) == len);
    fclose(f);
    const char *cut = tmp_file("cut.safetensors");
    write_bytes(cut, data, len / 2);
    free(data);
    expect_model_error(cut, CS_ERR_FORMAT, "outside the data section");

    expect_model_error(rewrite("no-ln-post.safetensors", &t, "visual.ln_post.weight", NULL, NULL),
                       CS_ERR_MISSING, "required tensor 'visual.ln_post.weight' is missing");
    expect_model_error(rewrite("no-vision.safetensors", &t, "visual.proj", NULL, NULL),
                       CS_ERR_MISSING, "no vision tower");
    expect_model_error(rewrite("bad-shape.safetensors", &t, NULL, "visual.transformer.resblocks.3.mlp.c_fc.bias", NULL),
                       CS_ERR_SHAPE, "'visual.transformer.resblocks.3.mlp.c_fc.bias' has shape [512, 1], expected [512]");
    expect_model_error(rewrite("bad-proj.safetensors", &t, NULL, "text_projection", NULL),
                       CS_ERR_SHAPE, "text_projection");

    /* A NaN in a weight is refused when its tower first runs, naming the
     * tensor; the other tower runs. */
    expect_tower_error(rewrite("nan.safetensors", &t, NULL, NULL, "visual.ln_post.bias"),
                       CS_PRECISION_FP32, 1, "'visual.ln_post.bias' holds 1 non-finite value");
    expect_tower_error(rewrite("nan-text.safetensors", &t, NULL, NULL, "ln_final.weight"),
                       CS_PRECISION_FP32, 0, "'ln_final.weight' holds 1 non-finite value");
    test_image_tower_checks_output(&t);
    tensors_free(&t);

    /* A BF16 file under bf16 packs its linear weights straight from the
     * file's bits: a NaN among them is refused all the same, in either
     * tower, and under int8 (whose text tower runs in bf16). */
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/model.safetensors"), &m));
    CHECK_OK(cs_model_save(m, tmp_file("bf16.safetensors"), CS_SAVE_BF16));
    cs_model_free(m);
    CHECK_OK(safetensors_open(tmp_file("bf16.safetensors"), &t));
    const char *text_nan = rewrite("bf16-nan-text.safetensors", &t, NULL, NULL,
                                   "transformer.resblocks.1.mlp.c_fc.weight");
    expect_tower_error(text_nan, CS_PRECISION_BF16, 0, "'transformer.resblocks.1.mlp.c_fc.weight' holds 1 non-finite");
    expect_tower_error(text_nan, CS_PRECISION_INT8, 0, "'transformer.resblocks.1.mlp.c_fc.weight' holds 1 non-finite");
    expect_tower_error(rewrite("bf16-nan-vit.safetensors", &t, NULL, NULL,
                               "visual.transformer.resblocks.0.attn.in_proj_weight"),
                       CS_PRECISION_BF16, 1, "'visual.transformer.resblocks.0.attn.in_proj_weight' holds 1 non-finite");
    tensors_free(&t);
}

int main(void) {
    golden_shared_dir();
    snprintf(g_dir, sizeof g_dir, "/tmp/cs_st_errors_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    test_file_errors();
    test_model_errors();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_finish();
}
