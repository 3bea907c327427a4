/* eval on ../shared/data/voc14 with the tiny golden model, for seg, explain
 * and multilabel: the report's structure, saved predictions against what
 * segment and classify give for the same images, metrics against a
 * recomputation from those predictions, shard + merge against the unsharded
 * report, skipped images, and sliding windows. The scores themselves mean
 * nothing (random weights). */
#include "clip_surgery.h"
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "base/fileio.h"
#include "golden.h"
#include "cli_run.h"
#include "test.h"

#define N_IMAGES 4 /* --limit: keeps the test fast */
/* cJSON prints 15 significant digits when they read back within an ulp or
 * so, so metrics from the report match a recomputation to about 1e-15. */
#define DOUBLE_TOL 1e-13

static char g_model[2048], g_common[4096], g_classes[1024];

/* data/classes/voc21.txt of this source tree (found from this file's path). */
static void find_class_list(void) {
    const char *slash = strrchr(__FILE__, '/');
    snprintf(g_classes, sizeof g_classes, "%.*s/../data/classes/voc21.txt",
             slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
}




static int same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (cs_read_file(a, 0, &x, &nx) != CS_OK) return 0;
    if (cs_read_file(b, 0, &y, &ny) != CS_OK) {
        cs_free(x);
        return 0;
    }
    int same = nx == ny && !memcmp(x, y, nx);
    cs_free(x);
    cs_free(y);
    return same;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static const char *k_images[N_IMAGES] = {"0", "114", "120", "166"}; /* the first four by name */

static const char *image_path(int i) {
    static char buf[2][512];
    snprintf(buf[i & 1], sizeof buf[0], "%s/%s_image.png", golden_path("data/voc14/images"), k_images[i]);
    return buf[i & 1];
}

/* seg: predictions equal segment's; the confusion matrix and mIoU equal a
 * recomputation from them and the masks; two shards merge to the report. */
static void test_seg(void) {
    char args[8192];
    snprintf(args, sizeof args, "eval %s --task seg --limit %d --report '%s' --save-predictions '%s'", g_common,
             N_IMAGES, tmp_path("seg.json"), tmp_path("pred"));
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    cJSON *r = read_json(tmp_path("seg.json"));
    CHECK(r != NULL);
    if (!r) return;
    CHECK(!strcmp(cJSON_GetStringValue(get(r, "task")), "seg"));
    CHECK(cJSON_GetArraySize(get(r, "classes")) == 21);
    CHECK(cJSON_GetNumberValue(get(get(r, "images"), "evaluated")) == N_IMAGES);
    CHECK(cJSON_GetNumberValue(get(get(r, "images"), "skipped")) == 0);
    CHECK(cJSON_GetArraySize(get(r, "confusion")) == 21 && cJSON_GetArraySize(get(r, "per_class")) == 21);
    int64_t conf[21 * 21] = {0};
    for (int i = 0; i < N_IMAGES; i++) {
        char pred[512], mask[512], seg_out[512];
        snprintf(pred, sizeof pred, "%s/pred/%s_image.png", g_tmp, k_images[i]);
        snprintf(mask, sizeof mask, "%s/%s_mask.png", golden_path("data/voc14/masks"), k_images[i]);
        snprintf(seg_out, sizeof seg_out, "%s/segment_%d.png", g_tmp, i);
        int w, h, mw, mh;
        uint8_t *p = NULL, *m = NULL;
        CHECK_OK(cs_label_png_load(pred, &w, &h, &p));
        CHECK_OK(cs_label_png_load(mask, &mw, &mh, &m));
        if (p && m && w == mw && h == mh) CHECK_OK(cs_confusion_add(conf, 21, m, p, (size_t)w * h, 255, NULL));
        cs_free(p);
        cs_free(m);
        if (i < 2) {
            snprintf(args, sizeof args, "segment %s --classes @'%s' --image '%s' -o '%s'", g_model, g_classes,
                     image_path(i), seg_out);
            CHECK_MSG(run_tool(args) == 0, "%s", args);
            CHECK_MSG(same_file(seg_out, pred), "segment and eval differ on %s", image_path(i));
        }
    }
    const cJSON *row;
    int c = 0, same = 1;
    cJSON_ArrayForEach(row, get(r, "confusion")) {
        const cJSON *v;
        int k = 0;
        cJSON_ArrayForEach(v, row) same &= (int64_t)v->valuedouble == conf[c * 21 + k++];
        c++;
    }
    CHECK_MSG(same, "the report's confusion matrix differs from the saved predictions'");
    cs_seg_scores s;
    cs_confusion_scores(conf, 21, NULL, &s);
    CHECK_NEAR(cJSON_GetNumberValue(get(r, "miou")), s.miou, DOUBLE_TOL);
    CHECK_NEAR(cJSON_GetNumberValue(get(r, "pixel_accuracy")), s.pixel_accuracy, DOUBLE_TOL);
    cJSON_Delete(r);
    for (int k = 0; k < 2; k++) {
        char part[64];
        snprintf(part, sizeof part, "seg_part%d.json", k);
        snprintf(args, sizeof args, "eval %s --task seg --limit %d --shard %d/2 --report '%s'", g_common, N_IMAGES,
                 k, tmp_path(part));
        CHECK_MSG(run_tool(args) == 0, "%s", args);
    }
    snprintf(args, sizeof args, "eval --merge '%s' '%s' --report '%s'", tmp_path("seg_part1.json"),
             tmp_path("seg_part0.json"), tmp_path("seg_merged.json"));
    CHECK(run_tool(args) == 0);
    CHECK_MSG(same_file(tmp_path("seg.json"), tmp_path("seg_merged.json")), "shard + merge differs");
    snprintf(args, sizeof args, "eval --merge '%s'", tmp_path("seg_part1.json"));
    CHECK(run_tool(args) == 2);
}

/* Scores of `classify --method both` for one image, from its JSON. */
static void classify_scores(int i, const char *key, float *scores) {
    char args[8192];
    snprintf(args, sizeof args, "classify %s --classes @'%s' --image '%s' --method both", g_model, g_classes,
             image_path(i));
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    cJSON *j = read_json(tmp_path("stdout.txt"));
    const cJSON *v;
    int c = 0;
    cJSON_ArrayForEach(v, get(j, key)) if (c < 21) scores[c++] = (float)v->valuedouble;
    CHECK(c == 21);
    cJSON_Delete(j);
}

static void test_multilabel(const char *method) {
    char args[8192], name[64];
    snprintf(name, sizeof name, "ml_%s.json", method);
    snprintf(args, sizeof args, "eval %s --task multilabel --method %s --labels '%s' --limit %d --report '%s'",
             g_common, method, golden_path("data/voc14/labels.json"), N_IMAGES, tmp_path(name));
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    cJSON *r = read_json(tmp_path(name));
    CHECK(r && cJSON_GetArraySize(get(r, "predictions")) == N_IMAGES);
    if (!r) return;
    float scores[N_IMAGES][21];
    uint8_t pos[N_IMAGES][21] = {{0}};
    const cJSON *p, *v;
    int i = 0;
    cJSON_ArrayForEach(p, get(r, "predictions")) {
        int c = 0;
        cJSON_ArrayForEach(v, get(p, "scores")) if (c < 21) scores[i][c++] = (float)v->valuedouble;
        cJSON_ArrayForEach(v, get(p, "labels")) pos[i][v->valueint] = 1;
        if (i < 2) {
            float want[21];
            classify_scores(i, !strcmp(method, "surgery") ? "surgery" : "clip", want);
            CHECK_MSG(!memcmp(want, scores[i], sizeof want), "classify and eval differ on %s", image_path(i));
        }
        i++;
    }
    /* labels.json: 0 an aeroplane, 114 a bird, 120 a bicycle and a bottle, 166 an aeroplane. */
    CHECK(pos[0][1] && pos[1][3] && pos[2][2] && pos[2][5] && pos[3][1]);
    double ap[21];
    for (int c = 0; c < 21; c++) {
        float col[N_IMAGES];
        uint8_t y[N_IMAGES];
        for (int k = 0; k < N_IMAGES; k++) {
            col[k] = scores[k][c];
            y[k] = pos[k][c];
        }
        CHECK_OK(cs_average_precision(col, y, N_IMAGES, &ap[c]));
        const cJSON *got = get(cJSON_GetArrayItem(get(r, "per_class"), c), "ap");
        CHECK(isnan(ap[c]) ? cJSON_IsNull(got) : fabs(got->valuedouble - ap[c]) <= DOUBLE_TOL);
    }
    CHECK_NEAR(cJSON_GetNumberValue(get(r, "map")), cs_nanmean(ap, 21, NULL), DOUBLE_TOL);
    CHECK(cJSON_IsNull(get(cJSON_GetArrayItem(get(r, "per_class"), 0), "ap"))); /* background: no positives */
    cJSON_Delete(r);
}

static void test_multilabel_shards(void) {
    char args[8192];
    for (int k = 0; k < 3; k++) {
        char part[64];
        snprintf(part, sizeof part, "ml_part%d.json", k);
        snprintf(args, sizeof args, "eval %s --task multilabel --method surgery --labels '%s' --limit %d --shard %d/3 --report '%s'",
                 g_common, golden_path("data/voc14/labels.json"), N_IMAGES, k, tmp_path(part));
        CHECK_MSG(run_tool(args) == 0, "%s", args);
    }
    snprintf(args, sizeof args, "eval --merge '%s' '%s' '%s' --report '%s'", tmp_path("ml_part2.json"),
             tmp_path("ml_part0.json"), tmp_path("ml_part1.json"), tmp_path("ml_merged.json"));
    CHECK(run_tool(args) == 0);
    CHECK_MSG(same_file(tmp_path("ml_surgery.json"), tmp_path("ml_merged.json")), "multilabel shard + merge differs");
}

/* explain: the threshold table and the best threshold follow from the counts. */
static void test_explain(void) {
    char args[8192];
    snprintf(args, sizeof args, "eval %s --task explain --limit %d --report '%s'", g_common, N_IMAGES,
             tmp_path("explain.json"));
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    cJSON *r = read_json(tmp_path("explain.json"));
    CHECK(r && cJSON_GetArraySize(get(r, "thresholds")) == CS_EXPLAIN_STEPS && cJSON_GetArraySize(get(r, "counts")) == 21);
    if (!r) return;
    int64_t total[CS_EXPLAIN_STEPS][4] = {{0}}, pairs = 0;
    const cJSON *cls, *v;
    cJSON_ArrayForEach(cls, get(r, "counts")) {
        int i = 0;
        cJSON_ArrayForEach(v, cls) {
            total[i / 4][i % 4] += (int64_t)v->valuedouble;
            i++;
        }
    }
    cJSON_ArrayForEach(v, get(r, "pairs")) pairs += (int64_t)v->valuedouble;
    CHECK(pairs >= N_IMAGES); /* each image has at least one object class */
    int best = 0;
    double best_miou = -1, fg;
    for (int k = 0; k < CS_EXPLAIN_STEPS; k++) {
        double m = cs_binary_miou(total[k], &fg);
        CHECK_NEAR(cJSON_GetNumberValue(get(cJSON_GetArrayItem(get(r, "thresholds"), k), "miou")), m, DOUBLE_TOL);
        if (m > best_miou) best_miou = m, best = k;
    }
    CHECK(cJSON_GetNumberValue(get(r, "best_threshold")) == cs_explain_threshold(best));
    CHECK_NEAR(cJSON_GetNumberValue(get(r, "miou")), best_miou, DOUBLE_TOL);
    cJSON_Delete(r);
}

/* A dataset with a missing, a corrupt and a wrong-size mask: three skips,
 * one image evaluated; an empty dataset and bad options exit 2. */
static void test_skips_and_errors(void) {
    char args[8192], cmd[8192];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/bad/images' '%s/bad/masks' && cp '%s/0_image.png' '%s/1_image.png' '%s/8_image.png' "
             "'%s/20_image.png' '%s/bad/images/' && cp '%s/0_mask.png' '%s/bad/masks/' && "
             "echo garbage > '%s/bad/masks/1_mask.png' && cp '%s/0_mask.png' '%s/bad/masks/20_mask.png'",
             g_tmp, g_tmp, golden_path("data/voc14/images"), golden_path("data/voc14/images"),
             golden_path("data/voc14/images"), golden_path("data/voc14/images"), g_tmp,
             golden_path("data/voc14/masks"), g_tmp, g_tmp, golden_path("data/voc14/masks"), g_tmp);
    CHECK(system(cmd) == 0);
    /* 20's mask: a 10x10 one. */
    uint8_t small[100] = {0};
    CHECK_OK(cs_png_write(tmp_path("bad/masks/20_mask.png"), 10, 10, 1, small));
    snprintf(args, sizeof args, "eval %s --images '%s/bad/images' --masks '%s/bad/masks' --report '%s'",
             g_common, g_tmp, g_tmp, tmp_path("bad.json"));
    /* g_common names voc14's folders; the later --images/--masks win. */
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    cJSON *r = read_json(tmp_path("bad.json"));
    CHECK(r && cJSON_GetNumberValue(get(get(r, "images"), "evaluated")) == 1);
    CHECK(r && cJSON_GetNumberValue(get(get(r, "images"), "skipped")) == 3);
    const cJSON *s;
    int reasons = 0;
    cJSON_ArrayForEach(s, get(r, "skipped")) {
        const char *why = cJSON_GetStringValue(get(s, "reason"));
        reasons += why && (strstr(why, "mask is 10x10") || strstr(why, "not a PNG") || strstr(why, "8_mask.png"));
    }
    CHECK_MSG(reasons == 3, "skip reasons do not name the fault");
    cJSON_Delete(r);
    snprintf(args, sizeof args, "eval %s --images '%s/bad/masks' --image-suffix _none", g_common, g_tmp);
    CHECK(run_tool(args) == 2);
    snprintf(args, sizeof args, "eval %s --shard 2/2", g_common);
    CHECK(run_tool(args) == 2);
    snprintf(args, sizeof args, "eval %s --task nothing", g_common);
    CHECK(run_tool(args) == 2);
}

/* Sliding windows: one window covering the image is the whole-image pass;
 * the CLI's window mode gives what eval saves. */
static void test_sliding(void) {
    cs_model *m = NULL;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/model.safetensors"), &m));
    if (!m) return;
    cs_array emb;
    golden_load("tiny-vit/text_ensemble.npy", &emb);
    cs_name_set names = {.emb = emb.data, .n_names = (int)emb.shape[0], .dim = (int)emb.shape[1],
                         .n_classes = (int)emb.shape[0]};
    cs_array px;
    golden_load("inputs/synthetic_pre_64.npy", &px);
    int C = names.n_classes;
    size_t n = sizeof(float) * 64 * 64 * C;
    float *a = malloc(n), *b = malloc(n), *one = malloc(n / 4);
    CHECK_OK(cs_segment_logits(m, px.data, 64, CS_VISION_SURGERY, &names, 64, 64, a));
    CHECK_OK(cs_segment_logits_sliding(m, px.data, 64, 64, 64, 32, CS_VISION_SURGERY, &names, 64, 64, b));
    CHECK(!memcmp(a, b, n));
    /* 32x32 windows at stride 32 tile the image: each pixel is its own window's
     * (the four windows go through the tower as one batch, each alone here). */
    CHECK_OK(cs_segment_logits_sliding(m, px.data, 64, 64, 32, 32, CS_VISION_SURGERY, &names, 64, 64, b));
    float *window = malloc(sizeof(float) * 3 * 32 * 32);
    int same = 1;
    for (int wy = 0; wy < 2; wy++)
        for (int wx = 0; wx < 2; wx++) {
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < 32; y++)
                    memcpy(window + (ch * 32 + y) * 32, (float *)px.data + (ch * 64 + wy * 32 + y) * 64 + wx * 32,
                           32 * sizeof(float));
            CHECK_OK(cs_segment_logits(m, window, 32, CS_VISION_SURGERY, &names, 32, 32, one));
            for (int y = 0; y < 32; y++)
                same &= !memcmp(one + (size_t)y * 32 * C, b + ((size_t)(wy * 32 + y) * 64 + wx * 32) * C,
                                sizeof(float) * 32 * C);
        }
    CHECK_MSG(same, "tiled windows differ from the windows alone");
    free(window);
    free(one);
    CHECK_STATUS(cs_segment_logits_sliding(m, px.data, 64, 64, 72, 32, CS_VISION_SURGERY, &names, 64, 64, b),
                 CS_ERR_ARG);
    free(a);
    free(b);
    cs_array_free(&emb);
    cs_array_free(&px);
    cs_model_free(m);
    char args[8192];
    const char *win = "--window 64 --stride 40 --short-side 96";
    snprintf(args, sizeof args, "eval %s --task seg --limit 1 %s --save-predictions '%s'", g_common, win,
             tmp_path("pred_win"));
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    snprintf(args, sizeof args, "segment %s --classes @'%s' %s --image '%s' -o '%s' --color '%s'", g_model, g_classes,
             win, image_path(0), tmp_path("win.png"), tmp_path("win_color.png"));
    CHECK_MSG(run_tool(args) == 0, "%s", args);
    CHECK(same_file(tmp_path("win.png"), tmp_path("pred_win/0_image.png")));
    snprintf(args, sizeof args, "segment %s --classes @'%s' --window 64 --short-side 32 --image '%s' -o '%s'",
             g_model, g_classes, image_path(0), tmp_path("never.png"));
    CHECK(run_tool(args) == 2);
}

int main(void) {
    golden_shared_dir();
    tool_tmp_init("cs_eval_voc14");
    find_class_list();
    snprintf(g_model, sizeof g_model, "--model '%s' --vocab '%s' --templates none",
             golden_path("golden/tiny-vit/model.safetensors"), golden_path("clip/bpe_simple_vocab_16e6.txt.gz"));
    snprintf(g_common, sizeof g_common,
             "%s --class-list '%s' --images '%s' --masks '%s' --image-suffix _image --mask-suffix _mask", g_model,
             g_classes, golden_path("data/voc14/images"), golden_path("data/voc14/masks"));
    test_seg();
    test_multilabel("surgery");
    test_multilabel("clip");
    test_multilabel_shards();
    test_explain();
    test_skips_and_errors();
    test_sliding();
    return test_finish();
}
