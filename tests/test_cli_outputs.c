/* What the tool writes for a person: explain's overlays and gray maps for
 * several images (one subfolder each), points' pictures, --quiet, --help
 * examples, and failures that print one line and leave no partial file.
 * Runs the tiny model on the golden photos copied to a temporary folder. */
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "golden.h"
#include "cli_run.h"
#include "test.h"





static int output_has(const char *name, const char *needle) {
    char buf[16384];
    read_text(name, buf, sizeof buf);
    return strstr(buf, needle) != NULL;
}

static void copy_file(const char *from, const char *to) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    CHECK(system(cmd) == 0);
}

/* The PNG decodes and has the given size. */
static void check_png(const char *dir, const char *name, int w, int h) {
    char path[1024];
    cs_image img = {0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_OK(cs_image_load(path, NULL, &img));
    CHECK_MSG(img.width == w && img.height == h, "%s is %dx%d, want %dx%d", path, img.width,
              img.height, w, h);
    cs_image_free(&img);
}

/* No file in dir (recursively) has a temporary name ("NAME.tmp.XXXXXX"). */
static int has_temporary(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        found = strstr(e->d_name, ".tmp.") != NULL ||
                (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && has_temporary(path));
    }
    closedir(d);
    return found;
}

static const char *model(void) { return golden_path("golden/tiny-vit/model.safetensors"); }
static const char *embeddings(void) { return golden_path("golden/tiny-vit/text_ensemble.npy"); }

/* A folder of two images whose names share a stem: two subfolders, each with
 * an overlay and a gray map per class at the image's size. */
static void test_explain_folder(void) {
    char images[512], out[512], args[4096];
    snprintf(images, sizeof images, "%s/images", g_tmp);
    mkdir(images, 0755);
    char path[600];
    snprintf(path, sizeof path, "%s/chelsea.png", images);
    copy_file(golden_path("golden/inputs/chelsea.png"), path);
    snprintf(path, sizeof path, "%s/chelsea.jpg", images); /* the rocket, under a clashing stem */
    copy_file(golden_path("golden/inputs/rocket.jpg"), path);
    snprintf(path, sizeof path, "%s/notes.txt", images);  /* not an image: skipped */
    FILE *f = fopen(path, "w");
    fputs("not an image\n", f);
    fclose(f);

    snprintf(out, sizeof out, "%s/explain_folder", g_tmp);
    snprintf(args, sizeof args, "explain --model '%s' --image '%s' --res 64 --class-embeddings '%s' -o '%s'",
             model(), images, embeddings(), out);
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    CHECK(output_has("stderr.txt", "[1/2]") && output_has("stderr.txt", "[2/2]"));
    char sub[700];
    snprintf(sub, sizeof sub, "%s/chelsea", out); /* chelsea.jpg sorts first: the rocket */
    check_png(sub, "class0.png", 640, 427);
    check_png(sub, "class2_map.png", 640, 427);
    snprintf(sub, sizeof sub, "%s/chelsea_1", out);
    check_png(sub, "class0.png", 451, 300);
    check_png(sub, "class1_map.png", 451, 300);

    /* The same with --quiet and two --image arguments: nothing on stderr. */
    snprintf(out, sizeof out, "%s/explain_two", g_tmp);
    snprintf(args, sizeof args,
             "explain --model '%s' --image '%s' --image '%s' --res 64 --class-embeddings '%s' --quiet -o '%s'",
             model(), golden_path("golden/inputs/synthetic.png"), golden_path("golden/inputs/rocket.jpg"),
             embeddings(), out);
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    CHECK(stderr_lines() == 0);
    snprintf(sub, sizeof sub, "%s/synthetic", out);
    check_png(sub, "class1.png", 300, 200);
    snprintf(sub, sizeof sub, "%s/rocket", out);
    check_png(sub, "class1.png", 640, 427);
}

/* Unwritable outputs: a non-zero exit, one line naming the path, no file. */
static void test_explain_unwritable(void) {
    char blocker[512], args[4096];
    snprintf(blocker, sizeof blocker, "%s/blocker", g_tmp);
    FILE *f = fopen(blocker, "w");
    fputs("a file where a folder should be\n", f);
    fclose(f);
    snprintf(args, sizeof args, "explain --model '%s' --image '%s' --res 64 --class-embeddings '%s' -o '%s/out'",
             model(), golden_path("golden/inputs/chelsea.png"), embeddings(), blocker);
    /* Exit 1: a failed write is a runtime failure (README), not bad input. */
    CHECK(run_tool(args) == 1);
    CHECK(stderr_lines() == 1);
    CHECK(output_has("stderr.txt", blocker));

    /* A folder where one output must go (class1.png is a folder): all
     * outputs or none, so not even the first class's files stay, and no
     * temporary is left. */
    char out[512], clash[600];
    snprintf(out, sizeof out, "%s/explain_clash", g_tmp);
    snprintf(clash, sizeof clash, "%s/class1.png", out);
    mkdir(out, 0755);
    mkdir(clash, 0755);
    snprintf(args, sizeof args, "explain --model '%s' --image '%s' --res 64 --class-embeddings '%s' -o '%s'",
             model(), golden_path("golden/inputs/chelsea.png"), embeddings(), out);
    CHECK(run_tool(args) == 1);
    CHECK(stderr_lines() == 1);
    CHECK(output_has("stderr.txt", "class1.png"));
    CHECK(!has_temporary(out));
    CHECK(access(tmp_path("explain_clash/class0.png"), F_OK) != 0);
}

/* points -o DIR: the JSON on stdout and NAME_points.png at the image size. */
static void test_points_pictures(void) {
    char out[512], args[4096];
    snprintf(out, sizeof out, "%s/points_image", g_tmp);
    snprintf(args, sizeof args, "points --model '%s' --image '%s' --res 64 --class-embeddings '%s' --quiet -o '%s'",
             model(), golden_path("golden/inputs/rocket.jpg"), embeddings(), out);
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    CHECK(stderr_lines() == 0);
    CHECK(output_has("stdout.txt", "\"image_size\": [640, 427]"));
    check_png(out, "class0_points.png", 640, 427);
    check_png(out, "class2_points.png", 640, 427);
    struct stat st;
    char npy[600];
    snprintf(npy, sizeof npy, "%s/points_0.npy", out);
    CHECK(stat(npy, &st) != 0); /* .npy only with --npy */

    /* --pixels has no picture: the points on gray at --size. */
    snprintf(out, sizeof out, "%s/points_pixels", g_tmp);
    snprintf(args, sizeof args,
             "points --model '%s' --pixels '%s' --size 300x200 --class-embeddings '%s' --target class1 --npy -o '%s'",
             model(), golden_path("golden/inputs/synthetic_pre_64.npy"), embeddings(), out);
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    check_png(out, "class1_points.png", 300, 200);
    snprintf(npy, sizeof npy, "%s/points_1.npy", out);
    CHECK(stat(npy, &st) == 0);

    /* Two images: JSON keyed by image, a progress line each, subfolders. */
    snprintf(out, sizeof out, "%s/points_two", g_tmp);
    snprintf(args, sizeof args, "points --model '%s' --image '%s' --image '%s' --res 64 --class-embeddings '%s' -o '%s'",
             model(), golden_path("golden/inputs/synthetic.png"), golden_path("golden/inputs/chelsea.png"),
             embeddings(), out);
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    CHECK(output_has("stdout.txt", "synthetic.png\": {") && output_has("stdout.txt", "[451, 300]"));
    CHECK(stderr_lines() == 2);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/chelsea", out);
    check_png(sub, "class0_points.png", 451, 300);

    /* A failing second image: one line, and no JSON at all. */
    snprintf(args, sizeof args, "points --model '%s' --image '%s' --image '%s/missing.jpg' --res 64 "
             "--class-embeddings '%s' --quiet", model(), golden_path("golden/inputs/synthetic.png"), g_tmp,
             embeddings());
    CHECK(run_tool(args) == 2);
    CHECK(stderr_lines() == 1 && output_has("stderr.txt", "missing.jpg"));
    CHECK(!output_has("stdout.txt", "image_size"));
}

/* Every subcommand's --help shows an example; usage errors print one line. */
static void test_help_and_errors(void) {
    static const char *commands[] = {"explain", "points", "embed", "convert", "tokenize"};
    char args[4096];
    for (int i = 0; i < 5; i++) {
        snprintf(args, sizeof args, "%s --help", commands[i]);
        CHECK(run_tool(args) == 0);
        CHECK_MSG(output_has("stdout.txt", "Example: clip-surgery "), "%s --help", commands[i]);
    }
    char empty[512];
    snprintf(empty, sizeof empty, "%s/empty_folder", g_tmp);
    mkdir(empty, 0755);
    const char *bad[] = {"--res 7", "--no-such-option", "--method nope"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "explain --model '%s' --image '%s' --class-embeddings '%s' %s -o '%s/x'",
                 model(), golden_path("golden/inputs/chelsea.png"), embeddings(), bad[i], g_tmp);
        CHECK(run_tool(args) == 2);
        CHECK_MSG(stderr_lines() == 1, "%s", bad[i]);
    }
    snprintf(args, sizeof args, "explain --model '%s' --image '%s' --class-embeddings '%s' -o '%s/x'", model(),
             empty, embeddings(), g_tmp);
    CHECK(run_tool(args) == 2);
    CHECK(stderr_lines() == 1 && output_has("stderr.txt", "empty_folder"));

    /* convert: an unknown --dtype is a usage error that writes nothing; bf16 loads back. */
    char conv[512];
    snprintf(conv, sizeof conv, "%s/bf16.safetensors", g_tmp);
    snprintf(args, sizeof args, "convert '%s' --dtype f8 -o '%s'", model(), conv);
    CHECK(run_tool(args) == 2);
    CHECK(stderr_lines() == 1 && output_has("stderr.txt", "f8"));
    CHECK(access(conv, F_OK) != 0);
    snprintf(args, sizeof args, "convert '%s' --dtype bf16 -o '%s' --quiet", model(), conv);
    CHECK(run_tool(args) == 0);
    snprintf(args, sizeof args, "explain --model '%s' --image '%s' --class-embeddings '%s' --res 64 --quiet -o '%s/bf16'",
             conv, golden_path("golden/inputs/chelsea.png"), embeddings(), g_tmp);
    CHECK(run_tool(args) == 0);

    /* bf16-packed: a --precision bf16 explain gives the plain bf16 file's maps. */
    char packed[512];
    snprintf(packed, sizeof packed, "%s/bf16p.safetensors", g_tmp);
    snprintf(args, sizeof args, "convert '%s' --dtype bf16-packed -o '%s' --quiet", model(), packed);
    CHECK(run_tool(args) == 0);
    const char *files[2] = {conv, packed}, *outs[2] = {"plain", "packed"};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "explain --model '%s' --image '%s' --class-embeddings '%s' --res 64 "
                 "--precision bf16 --npy --quiet -o '%s/%s'", files[i], golden_path("golden/inputs/chelsea.png"),
                 embeddings(), g_tmp, outs[i]);
        CHECK(run_tool(args) == 0);
    }
    snprintf(args, sizeof args, "cmp -s '%s/plain/maps.npy' '%s/packed/maps.npy'", g_tmp, g_tmp);
    CHECK_MSG(system(args) == 0, "a bf16-packed file's maps differ from the plain bf16 file's");
}

int main(void) {
    golden_shared_dir();
    /* One thread: the tiny model's runs take milliseconds, and waiting
     * threads spin on a busy machine (7 s instead of 1.5 s with two). */
    setenv("OMP_NUM_THREADS", "1", 1);
    tool_tmp_init("cs_cli_out");
    test_explain_folder();
    test_explain_unwritable();
    test_points_pictures();
    test_help_and_errors();
    return test_finish();
}
