/* clip-surgery words: its files and JSON, the maps equal explain's with the
 * word features as class embeddings, the figure, several captions, and the
 * captions that test the edges (empty, a literal <|endoftext|>, 200 words,
 * CJK and emoji, invalid UTF-8). Runs the tiny model on a golden photo. */
#include <stdlib.h>
#include <sys/stat.h>
#include "cli_run.h"
#include "golden.h"
#include "test.h"

static const char *model(void) { return golden_path("golden/tiny-vit/model.safetensors"); }
static const char *vocab(void) { return golden_path("clip/bpe_simple_vocab_16e6.txt.gz"); }
static const char *photo(void) { return golden_path("golden/inputs/chelsea.png"); } /* 451x300 */

static int run_words(const char *out, const char *extra) {
    return run_tool("words --model '%s' --vocab '%s' --image '%s' --res 64 -o '%s' %s", model(), vocab(),
                    photo(), out, extra);
}

static cJSON *stdout_json(void) { return read_json(tmp_path("stdout.txt")); }

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void load_npy(const char *path, cs_array *a) {
    cs_status s = cs_npy_read(path, a);
    CHECK_MSG(s == CS_OK, "%s: %s", path, cs_last_error());
    if (s != CS_OK) memset(a, 0, sizeof *a);
}

/* One caption with --npy: every file, shapes, and explain's maps on the
 * same image with word_features.npy as class embeddings, exactly. */
static void test_one_caption(void) {
    const char *out = tmp_path("one");
    CHECK(run_words(out, "--caption 'A cat on a blanket' --npy") == 0);
    cJSON *root = stdout_json(), *r = cJSON_GetObjectItem(root, "result");
    cJSON *units = cJSON_GetObjectItem(r, "units");
    int U = cJSON_GetArraySize(units);
    CHECK(U == 7); /* start, a, cat, on, a, blanket, end */
    cJSON *u2 = cJSON_GetArrayItem(units, 2);
    CHECK(!strcmp(cJSON_GetObjectItem(u2, "text")->valuestring, "cat"));
    CHECK(cJSON_GetObjectItem(u2, "start")->valueint == 2 && cJSON_GetObjectItem(u2, "end")->valueint == 5);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(units, 0), "start")));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r, "truncated")));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r, "ranking")) == U);
    cJSON *top = cJSON_GetObjectItem(r, "top");
    CHECK(cJSON_GetArraySize(top) == 3);
    int best = cJSON_GetArrayItem(top, 0)->valueint;

    cs_array feat, tok, sim, maps;
    load_npy(tmp_path("one/word_features.npy"), &feat);
    load_npy(tmp_path("one/image_tokens.npy"), &tok);
    load_npy(tmp_path("one/similarity.npy"), &sim);
    load_npy(tmp_path("one/maps.npy"), &maps);
    CHECK(feat.ndim == 2 && feat.shape[0] == 7 && feat.shape[1] == 64);
    CHECK(tok.ndim == 2 && tok.shape[0] == 1 + 8 * 8 && tok.shape[1] == 64);
    CHECK(sim.ndim == 2 && sim.shape[0] == 65 && sim.shape[1] == 7);
    CHECK(maps.ndim == 3 && maps.shape[0] == 300 && maps.shape[1] == 451 && maps.shape[2] == 7);
    CHECK(exists(tmp_path("one/00_start.png")) && exists(tmp_path("one/02_cat.png")) &&
          exists(tmp_path("one/06_end.png")) && exists(tmp_path("one/figure.png")));

    const char *ex = tmp_path("explain");
    CHECK(run_tool("explain --model '%s' --image '%s' --res 64 --class-embeddings '%s' --npy -o '%s'",
                   model(), photo(), tmp_path("one/word_features.npy"), ex) == 0);
    cs_array emaps, esim;
    load_npy(tmp_path("explain/maps.npy"), &emaps);
    load_npy(tmp_path("explain/similarity.npy"), &esim);
    CHECK(emaps.nbytes == maps.nbytes && maps.data && !memcmp(emaps.data, maps.data, maps.nbytes));
    CHECK(esim.nbytes == sim.nbytes && sim.data && !memcmp(esim.data, sim.data, sim.nbytes));

    /* The figure: the image's width (at least 360), the caption above, and
     * the best token's heatmap as the bottom 300 rows, pixel for pixel. */
    cs_image fig = {0}, heat = {0};
    CHECK_OK(cs_image_load(tmp_path("one/figure.png"), NULL, &fig));
    char name[64];
    const char *text = cJSON_GetObjectItem(cJSON_GetArrayItem(units, best), "text")->valuestring;
    snprintf(name, sizeof name, "one/%02d_%s.png", best, text);
    CHECK_OK(cs_image_load(tmp_path("%s", name), NULL, &heat));
    CHECK_MSG(fig.width == 451 && fig.height > 300 + 20, "figure is %dx%d", fig.width, fig.height);
    if (fig.rgb && heat.rgb && fig.width == 451 && fig.height > 300)
        CHECK(!memcmp(fig.rgb + (size_t)(fig.height - 300) * 451 * 3, heat.rgb, (size_t)451 * 300 * 3));
    /* Above it, the caption's band is white with ink and the three colours. */
    int red = 0, dark = 0;
    for (size_t i = 0; fig.rgb && i < (size_t)(fig.height - 300) * fig.width; i++) {
        const uint8_t *p = fig.rgb + 3 * i;
        red += p[0] > 200 && p[1] < 70 && p[2] < 70;
        dark += p[0] < 60 && p[1] < 60 && p[2] < 60;
    }
    CHECK_MSG(red > 50 && dark > 50, "caption band: %d red, %d dark pixels", red, dark);
    cs_image_free(&fig);
    cs_image_free(&heat);
    cs_array_free(&feat);
    cs_array_free(&tok);
    cs_array_free(&sim);
    cs_array_free(&maps);
    cs_array_free(&emaps);
    cs_array_free(&esim);
    cJSON_Delete(root);
}

/* Several captions: one subfolder each and a JSON array; the edge cases
 * give defined results. */
static void test_several(void) {
    char long_caption[200 * 6 + 1] = "";
    for (int i = 0; i < 200; i++) strcat(long_caption, i % 2 ? "tree " : "bird ");
    char args[2048];
    snprintf(args, sizeof args, "--caption '' --caption 'hello <|endoftext|> world' --caption '%s' "
             "--caption '猫と犬 🐱' --group words", long_caption);
    CHECK(run_words(tmp_path("several"), args) == 0);
    cJSON *root = stdout_json(), *caps = cJSON_GetObjectItem(root, "captions");
    CHECK(cJSON_GetArraySize(caps) == 4);
    cJSON *c0 = cJSON_GetArrayItem(caps, 0), *c1 = cJSON_GetArrayItem(caps, 1);
    cJSON *c2 = cJSON_GetArrayItem(caps, 2), *c3 = cJSON_GetArrayItem(caps, 3);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(c0, "units")) == 2);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(c0, "top")) == 0);
    CHECK(cJSON_GetObjectItem(c1, "dropped")->valueint == 1);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(c1, "units")) == 3);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(c2, "truncated")));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(c2, "units")) == 77);
    /* Words: 猫と犬 is one word of several byte pieces, whole again. */
    cJSON *w1 = cJSON_GetArrayItem(cJSON_GetObjectItem(c3, "units"), 1);
    CHECK(!strcmp(cJSON_GetObjectItem(w1, "text")->valuestring, "猫と犬"));
    CHECK(cJSON_GetArrayItem(cJSON_GetObjectItem(w1, "tokens"), 1)->valueint > 1);
    CHECK(cJSON_GetObjectItem(w1, "start")->valueint == 0 && cJSON_GetObjectItem(w1, "end")->valueint == 3);
    for (int i = 0; i < 4; i++) {
        const char *dir = cJSON_GetObjectItem(cJSON_GetArrayItem(caps, i), "folder")->valuestring;
        char fig[1024];
        snprintf(fig, sizeof fig, "%s/figure.png", dir);
        CHECK_MSG(exists(fig), "%s", fig);
    }
    CHECK(exists(tmp_path("several/00_caption_0/figure.png")) || exists(tmp_path("several/00__0/figure.png")));
    cJSON_Delete(root);

    /* --pixels with --size: maps at that size. */
    CHECK(run_tool("words --model '%s' --vocab '%s' --pixels '%s' --size 40x30 --caption 'a cat' --npy -o '%s'",
                   model(), vocab(), golden_path("golden/inputs/chelsea_pre_64.npy"), tmp_path("px")) == 0);
    cs_array maps;
    load_npy(tmp_path("px/maps.npy"), &maps);
    CHECK(maps.ndim == 3 && maps.shape[0] == 30 && maps.shape[1] == 40 && maps.shape[2] == 4);
    cs_array_free(&maps);
}

/* Bad input: one line, exit 2, nothing written. */
static void test_errors(void) {
    FILE *f = fopen(tmp_path("captions.txt"), "wb");
    fputs("a fine caption\nbad \xff caption\n", f);
    fclose(f);
    char args[1024];
    snprintf(args, sizeof args, "--captions '%s'", tmp_path("captions.txt"));
    CHECK(run_words(tmp_path("bad1"), args) == 2);
    CHECK(stderr_lines() == 1 && stderr_has("caption 2") && stderr_has("UTF-8"));
    CHECK(!exists(tmp_path("bad1")));
    CHECK(run_words(tmp_path("bad2"), "--caption x --group letters") == 2);
    CHECK(stderr_lines() == 1 && stderr_has("--group"));
    CHECK(run_words(tmp_path("bad3"), "") == 2);
    CHECK(stderr_lines() == 1 && !exists(tmp_path("bad3")));
    CHECK(run_words(tmp_path("bad4"), "--caption x --size 10x10") == 2);
    snprintf(args, sizeof args, "--captions '%s'", tmp_path("missing.txt"));
    CHECK(run_words(tmp_path("bad5"), args) == 2);
    CHECK(stderr_lines() == 1 && stderr_has("missing.txt") && !exists(tmp_path("bad5")));
    /* A write that fails midway (figure.png is a folder) removes the
     * heatmaps written before it. */
    mkdir(tmp_path("bad6"), 0755);
    mkdir(tmp_path("bad6/figure.png"), 0755);
    int rc = run_words(tmp_path("bad6"), "--caption 'a cat'");
    CHECK_MSG(rc == 1 || rc == 2, "exit %d", rc);
    CHECK(stderr_lines() == 1 && stderr_has("figure.png"));
    CHECK(!exists(tmp_path("bad6/00_start.png")) && !exists(tmp_path("bad6/01_a.png")));
    CHECK(run_tool("words --help") == 0);
    read_text("stdout.txt", args, sizeof args);
    CHECK(strstr(args, "Example:") != NULL);
}

int main(void) {
    golden_shared_dir();
    tool_tmp_init("cli_words");
    test_one_caption();
    test_several();
    test_errors();
    return test_finish();
}
