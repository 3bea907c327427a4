/* `clip-surgery sam` end to end on tiny-sam: manual prompts, --single,
 * --mask-input, a prompts file, the text -> CLIP Surgery points -> mask
 * chain on tiny-vit + tiny-sam (the golden `cs` prompt is exactly what
 * `points` computes for chelsea at 64), the image-embedding cache, and every
 * bad input: exit 2, one line, no output folder. */
#include <stdlib.h>
#include <sys/stat.h>
#include "cli_run.h"
#include "golden.h"
#include "test.h"

#define SAMSET "sam/tiny-sam"

static const char *sam_file(void) { return golden_path("golden/" SAMSET "/model.safetensors"); }
static const char *chelsea(void) { return golden_path("golden/" SAMSET "/chelsea.png"); }

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* DIR's lowres/iou/masks against golden <stem>_<kind>_*. */
static void check_outputs(const char *dir, const char *stem, const char *kind) {
    char path[1024], rel[256], file[256];
    cs_array a;
    snprintf(path, sizeof path, "%s/lowres.npy", dir);
    CHECK_OK(cs_npy_read(path, &a));
    snprintf(rel, sizeof rel, SAMSET "/%s_%s_lowres.npy", stem, kind);
    if (a.data) golden_check_floats(rel, a.data, cs_array_numel(&a));
    cs_array_free(&a);
    snprintf(path, sizeof path, "%s/iou.npy", dir);
    CHECK_OK(cs_npy_read(path, &a));
    snprintf(rel, sizeof rel, SAMSET "/%s_%s_iou.npy", stem, kind);
    if (a.data) golden_check_floats(rel, a.data, cs_array_numel(&a));
    cs_array_free(&a);
    snprintf(path, sizeof path, "%s/masks.npy", dir);
    CHECK_OK(cs_npy_read(path, &a));
    snprintf(file, sizeof file, "%s_%s_masks", stem, kind);
    if (a.data) {
        CHECK(a.dtype == CS_DT_U8 && a.ndim == 3);
        golden_check_sam_masks(file, a.data, a.nbytes, (int)a.shape[1], (int)a.shape[2]);
    }
    cs_array_free(&a);
    snprintf(path, sizeof path, "%s/mask.png", dir);
    CHECK(exists(path));
    snprintf(path, sizeof path, "%s/overlay.png", dir);
    CHECK(exists(path));
}

static cJSON *stdout_json(void) { return read_json(tmp_path("stdout.txt")); }

static void test_manual(void) {
    CHECK(run_tool("sam --sam '%s' --image '%s' --point 230,120 --npy --no-cache -o '%s'", sam_file(), chelsea(),
                   tmp_path("pt1")) == 0);
    check_outputs(tmp_path("pt1"), "chelsea_pt1", "multi");
    CHECK(exists(tmp_path("pt1/embedding.npy")));
    cJSON *j = stdout_json();
    cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "prompts"), 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p0, "masks")) == 3);
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(j, "encoder")->valuestring, "ran"));
    cJSON_Delete(j);
    /* fractional points, a negative label, --single */
    CHECK(run_tool("sam --sam '%s' --image '%s' --point 230.5,120.25 --point 310,200,1 --point 450,299,0 "
                   "--single --npy --no-cache -o '%s'", sam_file(), chelsea(), tmp_path("pt3")) == 0);
    check_outputs(tmp_path("pt3"), "chelsea_pt3", "single");
    CHECK(run_tool("sam --sam '%s' --image '%s' --box 120,40,380,290 --point 250,150 --npy --no-cache -o '%s'",
                   sam_file(), chelsea(), tmp_path("boxpt")) == 0);
    check_outputs(tmp_path("boxpt"), "chelsea_boxpt", "multi");
    CHECK(run_tool("sam --sam '%s' --image '%s' --point 230,120 --mask-input '%s' --npy --no-cache -o '%s'",
                   sam_file(), chelsea(), golden_path("golden/" SAMSET "/chelsea_pt1mask_mask_input.npy"),
                   tmp_path("pt1mask")) == 0);
    check_outputs(tmp_path("pt1mask"), "chelsea_pt1mask", "multi");
    /* the .pth with the decoder's heads given */
    CHECK(run_tool("sam --sam '%s' --decoder-heads 2 --image '%s' --point 230,120 --npy --no-cache -o '%s'",
                   golden_path("golden/" SAMSET "/model.pth"), chelsea(), tmp_path("pth")) == 0);
    check_outputs(tmp_path("pth"), "chelsea_pt1", "multi");
    /* bf16 encoder weights: runs and writes everything (not the parity path) */
    CHECK(run_tool("sam --sam '%s' --sam-precision bf16 --image '%s' --point 230,120 --no-cache -o '%s'", sam_file(),
                   chelsea(), tmp_path("bf16")) == 0);
    CHECK(exists(tmp_path("bf16/mask.png")) && exists(tmp_path("bf16/overlay.png")));
}

/* Two sets from a file on the rotated image: one subfolder each. */
static void test_prompts_file(void) {
    FILE *f = fopen(tmp_path("prompts.json"), "w");
    fprintf(f, "[{\"name\": \"pt3\", \"points\": [[150, 230.5], [60, 400], [299, 450]], \"labels\": [1, 1, 0]},\n"
               " {\"name\": \"box\", \"box\": [40, 100, 260, 400], \"multimask\": false}]\n");
    fclose(f);
    CHECK(run_tool("sam --sam '%s' --image '%s' --prompts '%s' --npy --no-cache -o '%s'", sam_file(),
                   golden_path("golden/" SAMSET "/chelsearot.png"), tmp_path("prompts.json"), tmp_path("rot")) == 0);
    check_outputs(tmp_path("rot/pt3"), "chelsearot_pt3", "multi");
    check_outputs(tmp_path("rot/box"), "chelsearot_box", "single");
}

/* text -> points -> mask: class 0 of tiny-vit's golden class embeddings at
 * 64 gives the golden `cs` prompt, and SAM's masks for it. */
static void test_text_chain(void) {
    CHECK(run_tool("sam --model '%s' --class-embeddings '%s' --target class0 --res 64 --sam '%s' --image '%s' "
                   "--npy --no-cache -o '%s'", golden_path("golden/tiny-vit/model.safetensors"),
                   golden_path("golden/tiny-vit/text_ensemble.npy"), sam_file(), chelsea(), tmp_path("cs")) == 0);
    check_outputs(tmp_path("cs/class0"), "chelsea_cs", "multi");
    cJSON *j = stdout_json(), *man = golden_set_manifest(SAMSET);
    cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "prompts"), 0);
    cJSON *want = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(man, "prompts"), "chelsea"), "cs");
    CHECK(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(p0, "points"),
                        cJSON_GetObjectItemCaseSensitive(want, "point_coords"), 1));
    CHECK(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(p0, "labels"),
                        cJSON_GetObjectItemCaseSensitive(want, "point_labels"), 1));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "prompts")) == 1);
    cJSON_Delete(j);
}

/* A second run on the same image and SAM file takes the embedding from the
 * cache; --no-cache runs the encoder. The masks are the same either way. */
static void test_cache(void) {
    setenv("XDG_CACHE_HOME", tmp_path("cache"), 1);
    for (int run = 0; run < 2; run++) {
        CHECK(run_tool("sam --sam '%s' --image '%s' --box 120,40,380,290 --npy -o '%s'", sam_file(), chelsea(),
                       tmp_path("cached%d", run)) == 0);
        cJSON *j = stdout_json();
        const char *enc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "encoder"));
        CHECK_MSG(enc && !strcmp(enc, run ? "cached" : "ran"), "run %d: encoder %s", run, enc ? enc : "?");
        cJSON_Delete(j);
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", tmp_path("cached%d", run));
        check_outputs(dir, "chelsea_box", "multi");
    }
    CHECK(run_tool("sam --sam '%s' --image '%s' --box 120,40,380,290 --no-cache -o '%s'", sam_file(), chelsea(),
                   tmp_path("nocache")) == 0);
    cJSON *j = stdout_json();
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "encoder")), "ran"));
    cJSON_Delete(j);
}

/* Bad input: exit 2, one line on stderr naming the fault, no output. */
static void bad(const char *needle, const char *fmt, const char *a1, const char *a2) {
    char args[4096];
    snprintf(args, sizeof args, fmt, a1, a2);
    char full[8192];
    snprintf(full, sizeof full, "sam --sam '%s' --image '%s' --no-cache -o '%s' %s", sam_file(), chelsea(),
             tmp_path("bad"), args);
    int rc = run_tool("%s", full);
    CHECK_MSG(rc == 2, "'%s': exit %d", args, rc);
    CHECK_MSG(stderr_has(needle) && stderr_lines() == 1, "'%s': stderr lacks '%s'", args, needle);
    CHECK_MSG(!exists(tmp_path("bad")), "'%s' left output", args);
}

static void test_bad_inputs(void) {
    bad("outside", "--point 452,10", "", "");
    bad("outside", "--point 10,-1", "", "");
    bad("label", "--point 10,10,2", "", "");
    bad("x1 < x0", "--box 300,40,120,290", "", "");
    bad("outside", "--box 0,0,500,290", "", "");
    bad("--box", "--box 1,2,3", "", "");
    bad("--point", "--point 1,x", "", "");
    bad("--sam-precision", "--point 1,1 --sam-precision fp8", "", "");
    bad("float32 [64, 64]", "--point 10,10 --mask-input '%s'", golden_path("golden/" SAMSET "/image_pe.npy"), "");
    bad("not valid JSON", "--prompts '%s'", tmp_path("broken.json"), "");
    bad("one kind of prompt", "--point 1,1 --prompts '%s'", tmp_path("prompts.json"), "");
    /* a checkpoint that is not SAM (a CLIP model) */
    int rc = run_tool("sam --sam '%s' --image '%s' --point 1,1 -o '%s'",
                      golden_path("golden/tiny-vit/model.safetensors"), chelsea(), tmp_path("bad"));
    CHECK(rc == 2 && stderr_has("not a SAM checkpoint") && !exists(tmp_path("bad")));
}

int main(void) {
    golden_shared_dir();
    tool_tmp_init("cs_cli_sam");
    FILE *f = fopen(tmp_path("broken.json"), "w");
    fprintf(f, "[{\"points\": [[1, 2]]");
    fclose(f);
    test_manual();
    test_prompts_file();
    test_text_chain();
    test_cache();
    test_bad_inputs();
    return test_finish();
}
