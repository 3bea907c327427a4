/* The command-line contracts of DESIGN.md section 8 that need no tokenizer,
 * checked end to end against the goldens: `embed --raw --ids` and
 * `explain --pixels --class-embeddings --npy` (plain CLIP and surgery), plus
 * the exit codes and the no-partial-output rule. */
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "golden.h"
#include "cli_run.h"
#include "test.h"




static void load_out(const char *dir, const char *name, cs_array *a) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_OK(cs_npy_read(path, a));
}

static void test_embed_raw_ids(void) {
    char args[4096], out[512];
    snprintf(out, sizeof out, "%s/text.npy", g_tmp);
    snprintf(args, sizeof args, "embed --model '%s' --raw --ids '%s' -o '%s'",
             golden_path("golden/tiny-vit/model.safetensors"), golden_path("golden/inputs/text_tokens.npy"), out);
    CHECK(run_tool(args) == 0);
    cs_array a = {0};
    CHECK_OK(cs_npy_read(out, &a));
    CHECK(a.ndim == 2 && a.shape[0] == 10 && a.shape[1] == 64);
    if (a.data) golden_check_floats("tiny-vit/text_features.npy", a.data, cs_array_numel(&a));
    cs_array_free(&a);
}

/* explain on golden pixels for one method; the outputs against the goldens. */
static void test_explain_pixels(const char *method, const char *image, int R, const char *size) {
    char args[4096], dir[512], rel[256];
    snprintf(dir, sizeof dir, "%s/explain_%s_%s_%d", g_tmp, method, image, R);
    snprintf(rel, sizeof rel, "golden/inputs/%s_pre_%d.npy", image, R);
    snprintf(args, sizeof args,
             "explain --model '%s' --pixels '%s' --size %s --method %s --class-embeddings '%s' --npy -o '%s'",
             golden_path("golden/tiny-vit/model.safetensors"), golden_path(rel), size,
             !strcmp(method, "cs") ? "surgery" : "clip",
             golden_path("golden/tiny-vit/text_ensemble.npy"), dir);
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    static const char *outputs[][2] = {{"image_tokens.npy", "tokens"}, {"similarity.npy", "similarity"},
                                       {"maps.npy", "simmap"}};
    for (int k = 0; k < 3; k++) {
        snprintf(rel, sizeof rel, "tiny-vit/%s_%s_%s_%d.npy", image, method, outputs[k][1], R);
        if (!golden_entry(rel)) continue;
        cs_array a = {0};
        load_out(dir, outputs[k][0], &a);
        if (a.data) golden_check_floats(rel, a.data, cs_array_numel(&a));
        cs_array_free(&a);
    }
    cs_array px = {0}, want;
    load_out(dir, "pixels.npy", &px);
    snprintf(rel, sizeof rel, "inputs/%s_pre_%d.npy", image, R);
    golden_load(rel, &want);
    CHECK(px.nbytes == want.nbytes && px.data && !memcmp(px.data, want.data, px.nbytes));
    cs_array_free(&px);
    cs_array_free(&want);
    char png[600];
    snprintf(png, sizeof png, "%s/class1.png", dir);
    struct stat st;
    CHECK(stat(png, &st) == 0 && st.st_size > 0);
}

/* points end to end (our tokens, not the golden similarity): the points
 * must equal the reference's; a flip would come from a near tie, which the
 * manifest's robustness figures bound. */
static void test_points_end_to_end(const char *image, int R, const char *size, int redundant) {
    char args[4096], dir[512], rel[256];
    snprintf(dir, sizeof dir, "%s/points_%s_%d_%d", g_tmp, image, R, redundant);
    snprintf(rel, sizeof rel, "golden/inputs/%s_pre_%d.npy", image, R);
    snprintf(args, sizeof args,
             "points --model '%s' --pixels '%s' --size %s --class-embeddings '%s' %s --vocab '%s' --npy -o '%s'",
             golden_path("golden/tiny-vit/model.safetensors"), golden_path(rel), size,
             golden_path("golden/tiny-vit/text_ensemble.npy"), redundant ? "--redundant empty" : "",
             golden_path("clip/bpe_simple_vocab_16e6.txt.gz"), dir);
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    for (int c = 0; c < 3; c++) {
        char name[64];
        cs_array p = {0}, l = {0};
        snprintf(name, sizeof name, "points_%d.npy", c);
        load_out(dir, name, &p);
        snprintf(name, sizeof name, "labels_%d.npy", c);
        load_out(dir, name, &l);
        snprintf(rel, sizeof rel, "tiny-vit/%s_points%s_%d_c%d.npy", image, redundant ? "_redundant" : "", R, c);
        if (p.data) golden_check_exact(rel, p.data, p.nbytes);
        snprintf(rel, sizeof rel, "tiny-vit/%s_labels%s_%d_c%d.npy", image, redundant ? "_redundant" : "", R, c);
        if (l.data) golden_check_exact(rel, l.data, l.nbytes);
        cs_array_free(&p);
        cs_array_free(&l);
    }
}

/* explain on the golden image files: what proves the preprocessing. Classes
 * go through the tokenizer and the prompt ensemble (no cache). */
static void test_explain_image(const char *file, const char *image, int w, int h) {
    char args[4096], dir[512], rel[256];
    snprintf(dir, sizeof dir, "%s/explain_image_%s", g_tmp, image);
    snprintf(rel, sizeof rel, "golden/inputs/%s", file);
    snprintf(args, sizeof args,
             "explain --model '%s' --image '%s' --res 64 --classes 'cat,bench,potted plant' --vocab '%s' "
             "--no-cache --npy -o '%s'",
             golden_path("golden/tiny-vit/model.safetensors"), golden_path(rel),
             golden_path("clip/bpe_simple_vocab_16e6.txt.gz"), dir);
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    static const char *outputs[][2] = {{"pixels.npy", "inputs/%s_pre_64.npy"},
                                       {"image_tokens.npy", "tiny-vit/%s_cs_tokens_64.npy"},
                                       {"class_embeddings.npy", "tiny-vit/text_ensemble.npy"},
                                       {"similarity.npy", "tiny-vit/%s_cs_similarity_64.npy"},
                                       {"maps.npy", "tiny-vit/%s_cs_simmap_64.npy"}};
    for (int k = 0; k < 5; k++) {
        snprintf(rel, sizeof rel, outputs[k][1], image);
        if (!golden_entry(rel)) continue;
        cs_array a = {0};
        load_out(dir, outputs[k][0], &a);
        if (a.data) golden_check_floats(rel, a.data, cs_array_numel(&a));
        cs_array_free(&a);
    }
    static const char *pngs[] = {"cat.png", "bench.png", "potted_plant.png", "potted_plant_map.png"};
    for (int k = 0; k < 4; k++) {
        char path[700];
        cs_image img = {0};
        snprintf(path, sizeof path, "%s/%s", dir, pngs[k]);
        CHECK_OK(cs_image_load(path, NULL, &img));
        CHECK_MSG(img.width == w && img.height == h, "%s is %dx%d", path, img.width, img.height);
        cs_image_free(&img);
    }
}

/* --png16 picks how 16-bit gray is seen: the pixels the tool feeds the
 * model are the library's resize of the image loaded with that option. */
static void test_png16(void) {
    static const char *modes[] = {"clip", "highbyte"};
    char args[4096], dir[512], image[512];
    snprintf(image, sizeof image, "%s/images/g16_full.png", CS_TEST_DATA);
    for (int m = 0; m < 2; m++) {
        snprintf(dir, sizeof dir, "%s/png16_%s", g_tmp, modes[m]);
        snprintf(args, sizeof args,
                 "explain --model '%s' --image '%s' --res 64 --class-embeddings '%s' --png16 %s --npy -o '%s'",
                 golden_path("golden/tiny-vit/model.safetensors"), image,
                 golden_path("golden/tiny-vit/text_ensemble.npy"), modes[m], dir);
        CHECK_MSG(run_tool(args) == 0, "%s", args);
        cs_image_options opts = {.png16_highbyte = m};
        cs_image img, small;
        CHECK_OK(cs_image_load(image, &opts, &img));
        CHECK_OK(cs_image_resize(&img, 64, 64, &small));
        float *want = malloc(sizeof(float) * 3 * 64 * 64);
        cs_image_normalize(&small, want);
        cs_array a = {0};
        load_out(dir, "pixels.npy", &a);
        CHECK_MSG(a.data && cs_array_numel(&a) == 3 * 64 * 64 &&
                  memcmp(a.data, want, sizeof(float) * 3 * 64 * 64) == 0,
                  "--png16 %s: pixels.npy is not the library's", modes[m]);
        cs_array_free(&a);
        free(want);
        cs_image_free(&small);
        cs_image_free(&img);
    }
    snprintf(args, sizeof args, "explain --model '%s' --image '%s' --class-embeddings '%s' --png16 low -o '%s/png16_bad'",
             golden_path("golden/tiny-vit/model.safetensors"), image,
             golden_path("golden/tiny-vit/text_ensemble.npy"), g_tmp);
    CHECK(run_tool(args) == 2);
    CHECK(stderr_has("--png16 'low'"));
}

/* A class named like another class's gray map gets its own files. */
static void test_name_clash(void) {
    CHECK(run_tool("explain --model '%s' --pixels '%s' --vocab '%s' --classes 'cat,cat_map' --no-cache -o '%s'",
                   golden_path("golden/tiny-vit/model.safetensors"),
                   golden_path("golden/inputs/synthetic_pre_64.npy"),
                   golden_path("clip/bpe_simple_vocab_16e6.txt.gz"), tmp_path("clash")) == 0);
    static const char *files[] = {"cat.png", "cat_map.png", "cat_map_2.png", "cat_map_map.png"};
    for (int i = 0; i < 4; i++) {
        struct stat st;
        CHECK_MSG(stat(tmp_path("clash/%s", files[i]), &st) == 0, "%s", files[i]);
    }
}

static void test_errors(void) {
    char args[4096], out[512];
    CHECK(run_tool("explain") == 2);
    CHECK(run_tool("no-such-command") == 2);
    CHECK(run_tool("explain --help") == 0);
    CHECK(run_tool("--help") == 0);
    snprintf(out, sizeof out, "%s/never.npy", g_tmp);
    snprintf(args, sizeof args, "embed --model '%s/missing.safetensors' --raw --ids x.npy -o '%s'", g_tmp, out);
    CHECK(run_tool(args) == 2);
    CHECK(stderr_has("missing.safetensors"));
    /* Wrong ids shape: an error naming the file, and no output file. */
    snprintf(args, sizeof args, "embed --model '%s' --raw --ids '%s' -o '%s'",
             golden_path("golden/tiny-vit/model.safetensors"), golden_path("golden/tiny-vit/text_ensemble.npy"), out);
    CHECK(run_tool(args) == 2);
    CHECK(stderr_has("text_ensemble.npy"));
    struct stat st;
    CHECK(stat(out, &st) != 0);
    snprintf(args, sizeof args, "explain --model '%s' --pixels '%s' --class-embeddings '%s' -o '%s/x' --size 0x5",
             golden_path("golden/tiny-vit/model.safetensors"), golden_path("golden/inputs/synthetic_pre_64.npy"),
             golden_path("golden/tiny-vit/text_ensemble.npy"), g_tmp);
    CHECK(run_tool(args) == 2);
    CHECK(stderr_has("--size"));

    /* Bad images and an unwritable output folder: one line, no output. */
    char empty[512], text[512];
    snprintf(empty, sizeof empty, "%s/empty.jpg", g_tmp);
    snprintf(text, sizeof text, "%s/text.jpg", g_tmp);
    FILE *f = fopen(empty, "wb");
    fclose(f);
    f = fopen(text, "wb");
    fputs("this is not a picture\n", f);
    fclose(f);
    const char *bad[2] = {empty, text};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "explain --model '%s' --image '%s' --class-embeddings '%s' -o '%s/bad%d'",
                 golden_path("golden/tiny-vit/model.safetensors"), bad[i],
                 golden_path("golden/tiny-vit/text_ensemble.npy"), g_tmp, i);
        CHECK(run_tool(args) == 2);
        CHECK(stderr_has(bad[i]));
        snprintf(out, sizeof out, "%s/bad%d", g_tmp, i);
        CHECK(stat(out, &st) != 0);
    }
    snprintf(args, sizeof args, "explain --model '%s' --image '%s' --class-embeddings '%s' -o /proc/cs-no-such-dir",
             golden_path("golden/tiny-vit/model.safetensors"), golden_path("golden/inputs/chelsea.png"),
             golden_path("golden/tiny-vit/text_ensemble.npy"));
    /* A folder that cannot be made is a runtime failure (exit 1), not bad input. */
    CHECK(run_tool(args) == 1);
    CHECK(stderr_has("/proc/cs-no-such-dir"));
}

int main(void) {
    golden_shared_dir();
    tool_tmp_init("cs_cli");
    test_embed_raw_ids();
    test_explain_pixels("clip", "synthetic", 64, "300x200");
    test_explain_pixels("clip", "synthetic", 128, "300x200");
    test_explain_pixels("cs", "synthetic", 64, "300x200");
    test_explain_pixels("cs", "chelsea", 64, "451x300");
    test_explain_pixels("cs", "synthetic", 128, "300x200");
    test_points_end_to_end("synthetic", 64, "300x200", 0);
    test_points_end_to_end("synthetic", 128, "300x200", 0);
    test_points_end_to_end("chelsea", 64, "451x300", 0);
    test_points_end_to_end("synthetic", 64, "300x200", 1);
    test_explain_image("chelsea.png", "chelsea", 451, 300);
    test_explain_image("rocket.jpg", "rocket", 640, 427);
    test_explain_image("synthetic.png", "synthetic", 300, 200);
    test_name_clash();
    test_errors();
    test_png16();
    return test_finish();
}
