/* User-facing paths of the CLI that nothing else covers, each checked so
 * that it fails when the path breaks (tests/mutations.sh mutates each once):
 *  - --text: one text, its redundant features from the empty prompt (the
 *    authors' demo mode), against the goldens of the explicit mode;
 *  - --surgery-blocks: 0 is plain CLIP (golden); 3 is what the library
 *    computes with 3 dual blocks, and not the default's tokens;
 *  - --rn-normalize-v: what the library computes with it, and not the default;
 *  - --exif-rotate and --max-megapixels;
 *  - the embedding cache's key: the precision and the vocabulary's content;
 *  - segment: all outputs or none, and a file already at -o is never lost;
 *  - bench (on the tiny model) and synthetic:ARCH, as smoke tests. */
#include <dirent.h>
#include <png.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli_run.h"
#include "golden.h"
#include "test.h"

static const char *model(void) { return golden_path("golden/tiny-vit/model.safetensors"); }
static const char *vocab(void) { return golden_path("clip/bpe_simple_vocab_16e6.txt.gz"); }
static const char *embeddings(void) { return golden_path("golden/tiny-vit/text_ensemble.npy"); }

static int load_npy(const char *path, cs_array *a) {
    memset(a, 0, sizeof *a);
    cs_status s = cs_npy_read(path, a);
    CHECK_MSG(s == CS_OK, "%s: %s", path, cs_last_error());
    return s == CS_OK;
}

/* Index of every `stride`-th golden value from `first`: one class's column. */
static int64_t *column(int64_t n, int stride, int first) {
    int64_t *index = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) index[i] = i * stride + first;
    return index;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* --text cat: the explicit mode with the empty prompt's ensemble, i.e. class
 * 0 of the goldens made with text_ensemble_empty as redundant features. A
 * --text run that fell back to the class-weighted mode (identically zero
 * for one class) or used other redundant features fails here. */
static void test_text(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", tmp_path("text"));
    CHECK(run_tool("explain --model '%s' --vocab '%s' --pixels '%s' --size 300x200 --text cat --npy --no-png "
                   "--quiet -o '%s'", model(), vocab(), golden_path("golden/inputs/synthetic_pre_64.npy"),
                   dir) == 0);
    cs_array e, sim, maps;
    if (load_npy(tmp_path("text/class_embeddings.npy"), &e)) {
        CHECK(e.ndim == 2 && e.shape[0] == 1 && e.shape[1] == 64);
        int64_t *idx = column(64, 1, 0);
        golden_check_floats_at("tiny-vit/text_ensemble.npy", e.data, idx, 64);
        free(idx);
    }
    if (load_npy(tmp_path("text/similarity.npy"), &sim)) {
        CHECK(cs_array_numel(&sim) == 65);
        int64_t *idx = column(65, 3, 0);
        golden_check_floats_at("tiny-vit/synthetic_cs_similarity_redundant_64.npy", sim.data, idx, 65);
        free(idx);
    }
    if (load_npy(tmp_path("text/maps.npy"), &maps)) {
        CHECK(cs_array_numel(&maps) == 300 * 200);
        int64_t *idx = column(300 * 200, 3, 0);
        golden_check_floats_at("tiny-vit/synthetic_cs_simmap_redundant_64.npy", maps.data, idx, 300 * 200);
        free(idx);
    }
    cs_array_free(&e);
    cs_array_free(&sim);
    cs_array_free(&maps);
}

/* The image tokens explain writes for the golden pixels of `image` at R. */
static int explain_tokens(const char *path_model, const char *pixels, const char *emb, const char *extra,
                          const char *name, cs_array *tokens) {
    const char *dir = tmp_path("%s", name);
    int rc = run_tool("explain --model '%s' --pixels '%s' --size 300x200 --class-embeddings '%s' %s --npy "
                      "--no-png --quiet -o '%s'", path_model, pixels, emb, extra, dir);
    CHECK_MSG(rc == 0, "explain %s: exit %d", extra, rc);
    return rc == 0 && load_npy(tmp_path("%s/image_tokens.npy", name), tokens);
}

/* Tokens of the library for the same pixels with the given surgery settings. */
static float *library_tokens(const char *path_model, const char *pixels, int R, int blocks, int normalize_v,
                             int64_t *n) {
    cs_model *m;
    CHECK_OK(cs_model_load(path_model, &m));
    if (!m) return NULL;
    CHECK_OK(cs_model_set_surgery(m, blocks, normalize_v));
    cs_array px;
    CHECK_OK(cs_npy_read(pixels, &px));
    *n = (int64_t)cs_model_num_tokens(m, R) * cs_model_config(m)->embed_dim;
    float *t = malloc(sizeof(float) * (size_t)*n);
    CHECK_OK(cs_encode_image(m, px.data, R, CS_VISION_SURGERY, t));
    cs_array_free(&px);
    cs_model_free(m);
    return t;
}

static void test_surgery_blocks(void) {
    const char *px = golden_path("golden/inputs/synthetic_pre_64.npy");
    cs_array t0, t3;
    /* No dual block: the surgery path is plain CLIP. */
    if (explain_tokens(model(), px, embeddings(), "--surgery-blocks 0", "blocks0", &t0))
        golden_check_floats("tiny-vit/synthetic_clip_tokens_64.npy", t0.data, cs_array_numel(&t0));
    if (explain_tokens(model(), px, embeddings(), "--surgery-blocks 3", "blocks3", &t3)) {
        int64_t n = 0;
        float *want = library_tokens(model(), px, 64, 3, 0, &n);
        CHECK(want && cs_array_numel(&t3) == n && max_abs_diff(t3.data, want, n) < 1e-6);
        /* The class token comes from the original path: plain CLIP's. */
        int64_t *idx = column(64, 1, 0);
        golden_check_floats_at("tiny-vit/synthetic_clip_tokens_64.npy", t3.data, idx, 64);
        free(idx);
        cs_array six;
        golden_load("tiny-vit/synthetic_cs_tokens_64.npy", &six);
        CHECK(cs_array_numel(&six) == n && max_abs_diff(t3.data, six.data, n) > 1e-2);
        cs_array_free(&six);
        free(want);
    }
    cs_array_free(&t0);
    cs_array_free(&t3);
    CHECK(run_tool("explain --model '%s' --pixels '%s' --class-embeddings '%s' --surgery-blocks -1 -o '%s'",
                   model(), px, embeddings(), tmp_path("blocks_bad")) == 2);
    CHECK(stderr_has("--surgery-blocks") && stderr_lines() == 1);
}

static void test_rn_normalize_v(void) {
    const char *rn = golden_path("golden/tiny-rn/model.safetensors");
    const char *px = golden_path("golden/inputs/synthetic_pre_128.npy");
    const char *emb = golden_path("golden/tiny-rn/text_ensemble.npy");
    cs_array plain, norm;
    if (explain_tokens(rn, px, emb, "", "rn_default", &plain))
        golden_check_floats("tiny-rn/synthetic_cs_tokens_128.npy", plain.data, cs_array_numel(&plain));
    if (explain_tokens(rn, px, emb, "--rn-normalize-v", "rn_norm", &norm)) {
        int64_t n = 0;
        float *want = library_tokens(rn, px, 128, 6, 1, &n);
        CHECK(want && cs_array_numel(&norm) == n && max_abs_diff(norm.data, want, n) < 1e-6);
        CHECK(plain.data && max_abs_diff(norm.data, plain.data, n) > 1e-3);
        free(want);
    }
    cs_array_free(&plain);
    cs_array_free(&norm);
}

/* An RGB PNG of w x h, optionally with an eXIf orientation chunk. */
static void write_png(const char *path, int w, int h, int orientation) {
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Little-endian TIFF, one IFD0 entry: Orientation (0x0112), SHORT. */
    uint8_t tiff[26] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
                        (uint8_t)orientation, 0, 0, 0, 0, 0, 0, 0};
    if (orientation) png_set_eXIf_1(png, info, sizeof tiff, tiff);
    png_write_info(png, info);
    uint8_t *row = malloc((size_t)w * 3);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w * 3; x++) row[x] = (uint8_t)(x * 7 + y * 3);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    fclose(f);
}

static void png_size(const char *path, int *w, int *h) {
    cs_image img = {0};
    *w = *h = 0;
    CHECK_OK(cs_image_load(path, NULL, &img));
    *w = img.width;
    *h = img.height;
    cs_image_free(&img);
}

static void test_image_options(void) {
    char photo[1024], big[1024];
    snprintf(photo, sizeof photo, "%s", tmp_path("exif6.png"));
    write_png(photo, 60, 40, 6);
    int w, h;
    CHECK(run_tool("explain --model '%s' --image '%s' --res 64 --class-embeddings '%s' --quiet -o '%s'",
                   model(), photo, embeddings(), tmp_path("exif_off")) == 0);
    png_size(tmp_path("exif_off/class0.png"), &w, &h);
    CHECK_MSG(w == 60 && h == 40, "without --exif-rotate: %dx%d", w, h);
    CHECK(run_tool("explain --model '%s' --image '%s' --res 64 --class-embeddings '%s' --exif-rotate --quiet "
                   "-o '%s'", model(), photo, embeddings(), tmp_path("exif_on")) == 0);
    png_size(tmp_path("exif_on/class0.png"), &w, &h);
    CHECK_MSG(w == 40 && h == 60, "with --exif-rotate: %dx%d", w, h);

    /* 1.1 megapixels: over --max-megapixels 1 (exit 2, one line naming the
     * file, no output), within 2. */
    snprintf(big, sizeof big, "%s", tmp_path("big.png"));
    write_png(big, 1100, 1000, 0);
    CHECK(run_tool("explain --model '%s' --image '%s' --res 64 --class-embeddings '%s' --max-megapixels 1 "
                   "-o '%s'", model(), big, embeddings(), tmp_path("big_refused")) == 2);
    CHECK(stderr_lines() == 1 && stderr_has("big.png"));
    struct stat st;
    CHECK(stat(tmp_path("big_refused"), &st) != 0);
    CHECK(run_tool("explain --model '%s' --image '%s' --res 64 --class-embeddings '%s' --max-megapixels 2 "
                   "--quiet -o '%s'", model(), big, embeddings(), tmp_path("big_ok")) == 0);
    png_size(tmp_path("big_ok/class0.png"), &w, &h);
    CHECK(w == 1100 && h == 1000);
}

/* Entry files under the test's cache folder. */
static int cache_entries(const char *cache) {
    char path[1024];
    snprintf(path, sizeof path, "%s/clip-surgery/embeddings", cache);
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char sub[1300];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        DIR *s = opendir(sub);
        for (struct dirent *f; s && (f = readdir(s));) n += f->d_name[0] != '.';
        if (s) closedir(s);
    }
    if (d) closedir(d);
    return n;
}

static int embed_cat(const char *voc, const char *extra, const char *out) {
    return run_tool("embed --model '%s' --vocab '%s' --classes cat --templates none %s -o '%s'", model(), voc,
                    extra, out);
}

/* The cache key holds what the embeddings depend on: a run in bf16 or int8
 * never gets another precision's entries, and a vocabulary replaced at the same path gets new
 * entries (the key has its content, not its name). */
static void test_cache_key(void) {
    char cache[1024], copy[1024];
    snprintf(cache, sizeof cache, "%s", tmp_path("xdg"));
    setenv("XDG_CACHE_HOME", cache, 1);
    cs_array a = {0}, b = {0}, c = {0}, d = {0};
    CHECK(embed_cat(vocab(), "", tmp_path("fp32.npy")) == 0);
    CHECK(cache_entries(cache) == 1);
    CHECK(embed_cat(vocab(), "", tmp_path("fp32_again.npy")) == 0);
    CHECK(cache_entries(cache) == 1); /* served from the cache */
    CHECK(embed_cat(vocab(), "--precision bf16", tmp_path("bf16.npy")) == 0);
    CHECK(cache_entries(cache) == 2);
    CHECK(embed_cat(vocab(), "--precision int8", tmp_path("int8.npy")) == 0);
    CHECK(cache_entries(cache) == 3);
    if (load_npy(tmp_path("fp32.npy"), &a) && load_npy(tmp_path("fp32_again.npy"), &b) &&
        load_npy(tmp_path("bf16.npy"), &c) && load_npy(tmp_path("int8.npy"), &d)) {
        CHECK(a.nbytes == b.nbytes && !memcmp(a.data, b.data, a.nbytes));
        CHECK(a.nbytes == c.nbytes && max_abs_diff(a.data, c.data, cs_array_numel(&a)) > 1e-5);
        CHECK(a.nbytes == d.nbytes && max_abs_diff(a.data, d.data, cs_array_numel(&a)) > 1e-5);
        /* Under int8 the text tower runs in bf16: bf16's numbers, its own entry. */
        CHECK(c.nbytes == d.nbytes && !memcmp(c.data, d.data, c.nbytes));
    }
    cs_array_free(&a);
    cs_array_free(&b);
    cs_array_free(&c);
    cs_array_free(&d);

    /* The same vocabulary, recompressed: other bytes at one path, twice. */
    snprintf(copy, sizeof copy, "%s", tmp_path("vocab.txt.gz"));
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s' | gzip -1 > '%s'", vocab(), copy);
    CHECK(system(cmd) == 0);
    CHECK(embed_cat(copy, "", tmp_path("v1.npy")) == 0);
    CHECK(cache_entries(cache) == 4);
    snprintf(cmd, sizeof cmd, "gzip -dc '%s' | gzip -9 > '%s.new' && mv '%s.new' '%s'", vocab(), copy, copy, copy);
    CHECK(system(cmd) == 0);
    CHECK(embed_cat(copy, "", tmp_path("v2.npy")) == 0);
    CHECK(cache_entries(cache) == 5);
    unsetenv("XDG_CACHE_HOME");
}

static int file_is(const char *path, const char *text) {
    char buf[64] = "";
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return !strcmp(buf, text);
}

/* Files in a folder whose name has `part`. */
static int files_with(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, part) != NULL;
    if (d) closedir(d);
    return n;
}

static void test_segment_all_or_none(void) {
    char dir[1024], mask[1024], color[1024], fresh[1024];
    snprintf(dir, sizeof dir, "%s", tmp_path("seg"));
    snprintf(mask, sizeof mask, "%s", tmp_path("seg/mask.png"));
    snprintf(color, sizeof color, "%s", tmp_path("seg/color.png"));
    snprintf(fresh, sizeof fresh, "%s", tmp_path("seg/fresh.png"));
    mkdir(dir, 0755);
    FILE *f = fopen(mask, "wb");
    fputs("precious", f);
    fclose(f);
    const char *args = "segment --model '%s' --image '%s' --res 64 --class-embeddings '%s' -o '%s' %s";
    const char *image = golden_path("golden/inputs/chelsea.png");
    char extra[1200];
    /* --color cannot be written: exit 1 (a runtime failure), the file that
     * was at -o is untouched, nothing else is left. */
    snprintf(extra, sizeof extra, "--color '%s/no-such-folder/c.png' --quiet", dir);
    CHECK(run_tool(args, model(), image, embeddings(), mask, extra) == 1);
    CHECK(stderr_lines() == 1 && stderr_has("no-such-folder"));
    CHECK(file_is(mask, "precious"));
    CHECK(files_with(dir, "partial") == 0 && files_with(dir, ".tmp") == 0);
    /* --overlay fails after -o and --color were written: neither stays. */
    snprintf(extra, sizeof extra, "--color '%s' --overlay '%s/no-such-folder/o.png' --quiet", color, dir);
    CHECK(run_tool(args, model(), image, embeddings(), fresh, extra) == 1);
    struct stat st;
    CHECK(stat(fresh, &st) != 0 && stat(color, &st) != 0);
    CHECK(files_with(dir, "partial") == 0 && files_with(dir, ".tmp") == 0);
    /* Success replaces the old -o file with the label PNG. */
    snprintf(extra, sizeof extra, "--color '%s' --quiet", color);
    CHECK(run_tool(args, model(), image, embeddings(), mask, extra) == 0);
    int w, h;
    png_size(mask, &w, &h);
    CHECK(w == 451 && h == 300);
    CHECK(stat(color, &st) == 0);
    CHECK(files_with(dir, "partial") == 0);
}

/* bench on the tiny model and a synthetic architecture: the figures exist,
 * are positive, and the JSON says so. */
static void test_bench_and_synthetic(void) {
    char json[1024], out[1024];
    snprintf(json, sizeof json, "%s", tmp_path("bench.json"));
    CHECK(run_tool("bench --model '%s' --res 64 --runs 1 --threads 1 --json '%s'", model(), json) == 0);
    cJSON *j = read_json(json);
    cJSON *figs = j ? cJSON_GetObjectItemCaseSensitive(j, "figures") : NULL;
    CHECK(cJSON_GetArraySize(figs) == 3);
    cJSON *f;
    cJSON_ArrayForEach(f, figs) {
        cJSON *ms = cJSON_GetObjectItemCaseSensitive(f, "median_ms");
        CHECK(cJSON_IsNumber(ms) && ms->valuedouble > 0);
    }
    cJSON *peak = j ? cJSON_GetObjectItemCaseSensitive(j, "gemm_peak_gflops") : NULL;
    CHECK(cJSON_IsNumber(peak) && peak->valuedouble > 0);
    cJSON_Delete(j);

    snprintf(out, sizeof out, "%s", tmp_path("synthetic.npy"));
    CHECK(run_tool("embed --model synthetic:RN50 --raw --ids '%s' --threads 1 -o '%s'",
                   golden_path("golden/inputs/text_tokens.npy"), out) == 0);
    cs_array a;
    if (load_npy(out, &a)) {
        CHECK(a.ndim == 2 && a.shape[0] == 10 && a.shape[1] == 1024);
        int finite = 1, nonzero = 0;
        for (int64_t i = 0; i < cs_array_numel(&a); i++) {
            finite &= isfinite(((float *)a.data)[i]) != 0;
            nonzero |= ((float *)a.data)[i] != 0;
        }
        CHECK(finite && nonzero);
    }
    cs_array_free(&a);
    CHECK(run_tool("embed --model synthetic:ViT-Q/99 --raw --ids x.npy -o '%s'", tmp_path("never.npy")) == 2);
    CHECK(stderr_lines() == 1 && stderr_has("ViT-Q/99"));
}

int main(void) {
    golden_shared_dir();
    /* The tool's runs and this process's library calls on one thread alike:
     * the tokens are compared bit for bit, and a BLAS may split a product
     * differently (and round it differently) on another thread count. */
    setenv("OMP_NUM_THREADS", "1", 1);
    cs_set_threads(1);
    tool_tmp_init("cs_cli_paths");
    test_text();
    test_surgery_blocks();
    test_rn_normalize_v();
    test_image_options();
    test_cache_key();
    test_segment_all_or_none();
    test_bench_and_synthetic();
    return test_finish();
}
