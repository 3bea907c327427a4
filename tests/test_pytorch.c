/* PyTorch archives against the golden safetensors: every tensor of the
 * torch.save state dict and of the TorchScript archives, widened to float32,
 * is bit-identical to the tensor of the same name in model.safetensors; the
 * TorchScript extras hold the model's scalars. Then the golden archive
 * damaged: truncated, and with central-directory offsets out of range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "formats/tensors.h"
#include "golden.h"
#include "test.h"

static char g_dir[256];

static const char *tmp_file(const char *name) {
    static char path[4][512];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(path[slot], sizeof path[slot], "%s/%s", g_dir, name);
    return path[slot];
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n);
    if (f) fclose(f);
}

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    uint8_t *data = malloc(*len);
    if (fread(data, 1, *len, f) != *len) {
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int is_extra(const char *name) {
    return !strcmp(name, "input_resolution") || !strcmp(name, "context_length") ||
           !strcmp(name, "vocab_size");
}

static int same_floats(const cs_tensor *a, const cs_tensor *b) {
    int64_t n = tensor_numel(a);
    float *x = malloc((size_t)n * 4 + 4), *y = malloc((size_t)n * 4 + 4);
    int same = tensor_to_f32(a, x) == CS_OK && tensor_to_f32(b, y) == CS_OK &&
               memcmp(x, y, (size_t)n * 4) == 0;
    free(x);
    free(y);
    return same;
}

/* Every tensor of `pt` matches the safetensors reference, and every
 * reference tensor is present. Returns the number compared. */
static int compare_with_reference(const char *pt_rel, const char *st_rel) {
    cs_tensor_table pt, st;
    CHECK_OK(pytorch_open(golden_path(pt_rel), &pt));
    CHECK_OK(safetensors_open(golden_path(st_rel), &st));
    int compared = 0;
    for (int i = 0; i < pt.n; i++) {
        const cs_tensor *a = &pt.items[i];
        if (ends_with(a->name, "num_batches_tracked") || is_extra(a->name)) continue;
        const cs_tensor *b = tensors_find(&st, a->name);
        CHECK_MSG(b != NULL, "%s: '%s' is not in the reference", pt_rel, a->name);
        if (!b) continue;
        int same_shape = a->ndim == b->ndim;
        for (int d = 0; same_shape && d < a->ndim; d++) same_shape = a->shape[d] == b->shape[d];
        CHECK_MSG(same_shape, "%s: '%s' has another shape", pt_rel, a->name);
        if (same_shape) CHECK_MSG(same_floats(a, b), "%s: '%s' differs from the reference", pt_rel, a->name);
        compared++;
    }
    CHECK_MSG(compared == st.n, "%s: %d tensors compared, the reference has %d", pt_rel, compared, st.n);
    tensors_free(&pt);
    tensors_free(&st);
    return compared;
}

static void check_extras(const char *rel, int64_t resolution) {
    cs_tensor_table t;
    CHECK_OK(pytorch_open(golden_path(rel), &t));
    const char *names[3] = {"input_resolution", "context_length", "vocab_size"};
    int64_t want[3] = {resolution, 77, 49408};
    for (int i = 0; i < 3; i++) {
        const cs_tensor *x = tensors_find(&t, names[i]);
        CHECK_MSG(x && x->dtype == CS_DT_I64 && x->ndim == 0 && x->nbytes == 8, "%s: %s", rel, names[i]);
        if (!x || x->nbytes != 8) continue;
        int64_t v;
        memcpy(&v, x->data, 8);
        CHECK_MSG(v == want[i], "%s: %s = %lld, want %lld", rel, names[i], (long long)v, (long long)want[i]);
    }
    /* fp16 storages stay F16 (the model layer widens); norms and embeddings
     * are float32 in OpenAI's files. */
    const cs_tensor *proj = tensors_find(&t, "text_projection");
    const cs_tensor *pos = tensors_find(&t, "positional_embedding");
    CHECK(proj && proj->dtype == CS_DT_F16);
    CHECK(pos && pos->dtype == CS_DT_F32);
    tensors_free(&t);
}

static void test_parity(void) {
    CHECK(compare_with_reference("golden/tiny-vit/model.pt", "golden/tiny-vit/model.safetensors") > 0);
    CHECK(compare_with_reference("golden/tiny-vit/model-jit.pt", "golden/tiny-vit/model.safetensors") > 0);
    CHECK(compare_with_reference("golden/tiny-rn/model-jit.pt", "golden/tiny-rn/model.safetensors") > 0);
    check_extras("golden/tiny-vit/model-jit.pt", 64);
    check_extras("golden/tiny-rn/model-jit.pt", 128);

    cs_tensor_table t;
    CHECK_OK(pytorch_open(golden_path("golden/tiny-vit/model.pt"), &t));
    const cs_tensor *w = tensors_find(&t, "visual.transformer.resblocks.0.attn.in_proj_weight");
    CHECK(w && w->dtype == CS_DT_F32 && w->ndim == 2 && w->shape[0] == 384 && w->shape[1] == 128);
    CHECK(tensors_find(&t, "input_resolution") == NULL);
    tensors_free(&t);
}

static void expect_open_error(const char *path, cs_status want, const char *problem) {
    cs_tensor_table t;
    CHECK_STATUS(pytorch_open(path, &t), want);
    CHECK_ERR_HAS(path);
    CHECK_ERR_HAS(problem);
    CHECK(t.n == 0);
    tensors_free(&t);
}

static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* The last occurrence of a 4-byte zip signature. */
static size_t find_sig(const uint8_t *buf, size_t len, uint32_t sig) {
    for (size_t i = len - 4; i > 0; i--)
        if ((uint32_t)(buf[i] | buf[i + 1] << 8 | buf[i + 2] << 16 | (uint32_t)buf[i + 3] << 24) == sig)
            return i;
    return 0;
}

static void test_damaged_golden(void) {
    const char *src = golden_path("golden/tiny-vit/model.pt");
    size_t len;
    uint8_t *data = read_all(src, &len);
    CHECK(data != NULL);
    if (!data) return;

    expect_open_error(tmp_file("missing.pt"), CS_ERR_MISSING, "cannot open");
    const char *p = tmp_file("not-a-zip.pt");
    write_bytes(p, "this is plain text, not a PyTorch file\n", 39);
    expect_open_error(p, CS_ERR_FORMAT, "not a zip archive");
    p = tmp_file("empty.pt");
    write_bytes(p, "", 0);
    expect_open_error(p, CS_ERR_FORMAT, "empty file, not a PyTorch zip archive");

    size_t cuts[] = {4, 100, len / 3, len / 2, len - 4096, len - 30, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        p = tmp_file("cut.pt");
        write_bytes(p, data, cuts[i]);
        expect_open_error(p, CS_ERR_FORMAT, "truncated zip archive");
    }

    /* PyTorch always writes ZIP64 end records; damage each offset in turn. */
    size_t z64 = find_sig(data, len, 0x06064b50u), loc = find_sig(data, len, 0x07064b50u);
    CHECK(z64 > 0 && loc > z64);
    uint8_t *bad = malloc(len);

    memcpy(bad, data, len);
    wr64(bad + z64 + 48, (uint64_t)len * 4); /* central directory offset */
    p = tmp_file("cd-offset.pt");
    write_bytes(p, bad, len);
    expect_open_error(p, CS_ERR_FORMAT, "central directory (offset");

    memcpy(bad, data, len);
    wr64(bad + z64 + 40, UINT64_MAX - 10); /* central directory size */
    p = tmp_file("cd-size.pt");
    write_bytes(p, bad, len);
    expect_open_error(p, CS_ERR_FORMAT, "lies outside the archive");

    memcpy(bad, data, len);
    wr64(bad + loc + 8, (uint64_t)len + 100); /* ZIP64 end record offset */
    p = tmp_file("z64-offset.pt");
    write_bytes(p, bad, len);
    expect_open_error(p, CS_ERR_FORMAT, "ZIP64 end record offset");

    memcpy(bad, data, len);
    wr64(bad + z64 + 24, 1000000); /* entry counts: this disk's and the total */
    wr64(bad + z64 + 32, 1000000);
    p = tmp_file("cd-count.pt");
    write_bytes(p, bad, len);
    expect_open_error(p, CS_ERR_FORMAT, "cannot hold 1000000 entries");

    /* The first central record's local-header offset, then its sizes. */
    size_t cd = (size_t)rd64(data + z64 + 48);
    memcpy(bad, data, len);
    wr32(bad + cd + 42, (uint32_t)(len - 10));
    p = tmp_file("local-offset.pt");
    write_bytes(p, bad, len);
    expect_open_error(p, CS_ERR_FORMAT, "local header offset");

    memcpy(bad, data, len);
    wr32(bad + cd + 20, 0x7fffffffu);
    wr32(bad + cd + 24, 0x7fffffffu);
    p = tmp_file("entry-size.pt");
    write_bytes(p, bad, len);
    expect_open_error(p, CS_ERR_FORMAT, "lies outside the archive");

    free(bad);
    free(data);
}

int main(void) {
    golden_shared_dir();
    snprintf(g_dir, sizeof g_dir, "/tmp/cs_pt_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    test_parity();
    test_damaged_golden();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_finish();
}
