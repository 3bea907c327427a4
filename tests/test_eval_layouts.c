/* eval's published dataset layouts, on tiny trees built here at run time
 * from two ../shared/data/voc14 images (scaled down, so the test is fast):
 * VOC 2012 against the same images through the generic layout; VOC20,
 * Context (59 and 60), Cityscapes, COCO-Stuff, COCO-Object and ADE20K
 * against the label mapping their protocols define; VOC 2007, COCO JSON and CSV multi-labels (difficult labels,
 * shard + merge, class order); and the layouts' usage errors. Works with
 * the tiny golden model: the scores mean nothing, the bookkeeping does. */
#include "clip_surgery.h"
#include <stdarg.h>
#include <stdio.h>
#include <jpeglib.h> /* after stdio.h, which it needs */
#include <png.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/fileio.h"
#include "golden.h"
#include "cli_run.h"
#include "test.h"

#define W 64
#define H 48
#define DOUBLE_TOL 1e-13

static char g_model[4096], g_model_t[4096], g_classes_dir[1024]; /* g_model_t: with the templates */
static cs_image g_img[2];    /* two voc14 photos at W x H */
static uint8_t g_mask[2][W * H];



static void make_dirs(const char *rel) { CHECK_OK(cs_mkdirs(tmp_path("%s", rel))); }

static void write_text(const char *rel, const char *text) {
    FILE *f = fopen(tmp_path("%s", rel), "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}


static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static void write_jpeg(const char *path, const cs_image *img) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)img->width;
    c.image_height = (JDIMENSION)img->height;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    for (int y = 0; y < img->height; y++) {
        JSAMPROW row = img->rgb + (size_t)y * img->width * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

/* An 8-bit palette PNG whose indices are the labels, as VOC's masks are. */
static void write_palette_png(const char *path, const uint8_t *labels) {
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    CHECK(f && png && info);
    if (!f || !png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        if (f) fclose(f);
        return;
    }
    png_color palette[256];
    for (int i = 0; i < 256; i++) palette[i] = (png_color){(png_byte)(i * 37), (png_byte)(i * 91), (png_byte)i};
    png_init_io(png, f);
    png_set_IHDR(png, info, W, H, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_PLTE(png, info, palette, 256);
    png_write_info(png, info);
    for (int y = 0; y < H; y++) png_write_row(png, labels + (size_t)y * W);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* voc14 images 0 and 114, resized to W x H; their masks by nearest neighbour. */
static void load_sources(void) {
    const char *ids[2] = {"0", "114"};
    for (int i = 0; i < 2; i++) {
        char path[1024];
        cs_image full;
        snprintf(path, sizeof path, "%s/%s_image.png", golden_path("data/voc14/images"), ids[i]);
        CHECK_OK(cs_image_load(path, NULL, &full));
        CHECK_OK(cs_image_resize(&full, W, H, &g_img[i]));
        cs_image_free(&full);
        int mw, mh;
        uint8_t *m = NULL;
        snprintf(path, sizeof path, "%s/%s_mask.png", golden_path("data/voc14/masks"), ids[i]);
        CHECK_OK(cs_label_png_load(path, &mw, &mh, &m));
        for (int y = 0; m && y < H; y++)
            for (int x = 0; x < W; x++) g_mask[i][y * W + x] = m[(size_t)(y * mh / H) * mw + x * mw / W];
        cs_free(m);
    }
}

/* The report's confusion matrix (and unknown-label pixels) equal those of
 * the saved predictions against the expected labels of each image. */
static void check_confusion(const char *report, int C, const char *const *preds, uint8_t (*expected)[W * H],
                            int n) {
    int64_t *conf = calloc((size_t)C * C, sizeof *conf), unknown = 0;
    for (int i = 0; i < n; i++) {
        int w = 0, h = 0;
        uint8_t *p = NULL;
        CHECK_OK(cs_label_png_load(preds[i], &w, &h, &p));
        if (p && w == W && h == H) CHECK_OK(cs_confusion_add(conf, C, expected[i], p, W * H, 255, &unknown));
        cs_free(p);
    }
    cJSON *r = read_json(report);
    CHECK_MSG(r != NULL, "%s", report);
    const cJSON *row, *v;
    int k = 0, same = cJSON_GetArraySize(get(r, "confusion")) == C;
    cJSON_ArrayForEach(row, get(r, "confusion")) cJSON_ArrayForEach(v, row) same &= k < C * C && (int64_t)v->valuedouble == conf[k++];
    CHECK_MSG(same && k == C * C, "%s: the confusion matrix is not the expected labels'", report);
    CHECK(cJSON_GetNumberValue(get(r, "unknown_label_pixels")) == (double)unknown);
    CHECK(cJSON_GetNumberValue(get(get(r, "images"), "evaluated")) == n);
    cJSON_Delete(r);
    free(conf);
}

/* VOC 2012: eval on the layout equals eval on its folders as the generic
 * layout; --split picks the list. */
static void test_voc(void) {
    make_dirs("voc/JPEGImages");
    make_dirs("voc/SegmentationClass");
    make_dirs("voc/ImageSets/Segmentation");
    const char *ids[2] = {"2007_000032", "2007_000039"};
    for (int i = 0; i < 2; i++) {
        write_jpeg(tmp_path("voc/JPEGImages/%s.jpg", ids[i]), &g_img[i]);
        write_palette_png(tmp_path("voc/SegmentationClass/%s.png", ids[i]), g_mask[i]);
    }
    write_text("voc/ImageSets/Segmentation/val.txt", "2007_000032\n2007_000039\n");
    write_text("voc/ImageSets/Segmentation/train.txt", "2007_000039\n");
    char cls[2048];
    snprintf(cls, sizeof cls, "--class-list '%s/voc21.txt'", g_classes_dir);
    CHECK(run_tool("eval %s %s --dataset voc:'%s' --report '%s'", g_model, cls, tmp_path("voc"),
                   tmp_path("voc.json")) == 0);
    CHECK(run_tool("eval %s %s --images '%s' --masks '%s' --report '%s'", g_model, cls, tmp_path("voc/JPEGImages"),
                   tmp_path("voc/SegmentationClass"), tmp_path("generic.json")) == 0);
    cJSON *a = read_json(tmp_path("voc.json")), *b = read_json(tmp_path("generic.json"));
    const char *keys[] = {"classes", "images", "skipped", "confusion", "per_class", "miou", "pixel_accuracy"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        CHECK_MSG(a && b && cJSON_Compare(get(a, keys[k]), get(b, keys[k]), 1), "voc: %s differs from generic", keys[k]);
    CHECK(a && cJSON_GetNumberValue(get(get(a, "images"), "evaluated")) == 2);
    cJSON_Delete(a);
    cJSON_Delete(b);
    CHECK(run_tool("eval %s %s --dataset voc:'%s' --split train --report '%s'", g_model, cls, tmp_path("voc"),
                   tmp_path("voc_train.json")) == 0);
    a = read_json(tmp_path("voc_train.json"));
    CHECK(a && cJSON_GetNumberValue(get(get(a, "images"), "listed")) == 1);
    cJSON_Delete(a);
    CHECK(run_tool("eval %s %s --dataset voc:'%s' --split test", g_model, cls, tmp_path("voc")) == 2);
}

/* C class embeddings: the golden class embeddings' rows over and over
 * (encoding 171 class names would cost seconds; the names do not matter here). */
static const char *class_embeddings(int C) {
    const char *path = tmp_path("classes_%d.npy", C);
    cs_array rows;
    golden_load("tiny-vit/text_ensemble.npy", &rows);
    int64_t shape[2] = {C, rows.shape[1]}, D = rows.shape[1];
    float *emb = malloc(sizeof(float) * (size_t)(C * D));
    for (int c = 0; c < C; c++) memcpy(emb + c * D, (float *)rows.data + (c % rows.shape[0]) * D, sizeof(float) * D);
    CHECK_OK(cs_npy_write(path, CS_DT_F32, 2, shape, emb));
    free(emb);
    cs_array_free(&rows);
    return path;
}

/* A segmentation layout: eval with --save-predictions, then the confusion
 * matrix against the labels the protocol defines. */
static void run_seg_layout(const char *spec, int C, const char *const *preds, uint8_t (*expected)[W * H], int n,
                           int skipped) {
    const char *report = tmp_path("seg_%d.json", C);
    CHECK_MSG(run_tool("eval %s --class-embeddings '%s' --dataset %s --save-predictions '%s' --report '%s'",
                       g_model, class_embeddings(C), spec, tmp_path("pred"), report) == 0, "eval --dataset %s", spec);
    const char *paths[2];
    for (int i = 0; i < n; i++) paths[i] = tmp_path("pred/%s", preds[i]);
    check_confusion(report, C, paths, expected, n);
    cJSON *r = read_json(report);
    CHECK(r && cJSON_GetNumberValue(get(get(r, "images"), "skipped")) == skipped);
    cJSON_Delete(r);
}

/* Context: 0 (background) is ignored, k is class k-1, 255 stays void;
 * values past 59 count as unknown. */
static void test_context(void) {
    make_dirs("context/JPEGImages");
    make_dirs("context/SegmentationClassContext");
    make_dirs("context/ImageSets/SegmentationContext");
    uint8_t stored[W * H], expected[1][W * H];
    for (int i = 0; i < W * H; i++) {
        stored[i] = i < W ? 255 : (uint8_t)((i % W + 3 * (i / W)) % 62);
        expected[0][i] = stored[i] == 0 || stored[i] == 255 ? 255 : stored[i] - 1;
    }
    write_jpeg(tmp_path("context/JPEGImages/2008_000002.jpg"), &g_img[0]);
    CHECK_OK(cs_png_write(tmp_path("context/SegmentationClassContext/2008_000002.png"), W, H, 1, stored));
    write_text("context/ImageSets/SegmentationContext/val.txt", "2008_000002\n");
    const char *preds[] = {"2008_000002.png"};
    char spec[1200];
    snprintf(spec, sizeof spec, "context:'%s'", tmp_path("context"));
    run_seg_layout(spec, 59, preds, expected, 1, 0);
}

/* Cityscapes: labelIds to train ids by the dataset's table (index: labelId,
 * 0..33), every other id ignored; a city's image without its mask is skipped. */
static void test_cityscapes(void) {
    static const uint8_t train_id[34] = {255, 255, 255, 255, 255, 255, 255, 0,   1,   255, 255, 2,
                                         3,   4,   255, 255, 255, 5,   255, 6,   7,   8,   9,   10,
                                         11,  12,  13,  14,  15,  255, 255, 16,  17,  18};
    const char *city[2] = {"aachen", "bonn"}, *stem[2] = {"aachen_000000_000019", "bonn_000001_000019"};
    uint8_t stored[W * H], expected[2][W * H];
    for (int i = 0; i < 2; i++) {
        for (int p = 0; p < W * H; p++) {
            stored[p] = (uint8_t)((p % W + 2 * (p / W) + 17 * i) % 36);
            expected[i][p] = stored[p] < 34 ? train_id[stored[p]] : 255;
        }
        CHECK_OK(cs_mkdirs(tmp_path("cityscapes/leftImg8bit/val/%s", city[i])));
        CHECK_OK(cs_mkdirs(tmp_path("cityscapes/gtFine/val/%s", city[i])));
        CHECK_OK(cs_png_write(tmp_path("cityscapes/leftImg8bit/val/%s/%s_leftImg8bit.png", city[i], stem[i]), W, H, 3,
                              g_img[i].rgb));
        CHECK_OK(cs_png_write(tmp_path("cityscapes/gtFine/val/%s/%s_gtFine_labelIds.png", city[i], stem[i]), W, H, 1,
                              stored));
    }
    CHECK_OK(cs_png_write(tmp_path("cityscapes/leftImg8bit/val/bonn/bonn_000002_000019_leftImg8bit.png"), W, H, 3,
                          g_img[0].rgb));
    const char *preds[] = {"aachen_000000_000019_leftImg8bit.png", "bonn_000001_000019_leftImg8bit.png"};
    char spec[1200];
    snprintf(spec, sizeof spec, "cityscapes:'%s'", tmp_path("cityscapes"));
    run_seg_layout(spec, 19, preds, expected, 2, 1);
}

/* COCO-Stuff 164k: train ids as stored (255 void, 171.. unknown). */
static void test_cocostuff(void) {
    make_dirs("cocostuff/images/val2017");
    make_dirs("cocostuff/annotations/val2017");
    uint8_t expected[1][W * H];
    for (int p = 0; p < W * H; p++) expected[0][p] = p < W ? 255 : (uint8_t)((p % W + 5 * (p / W)) % 180);
    write_jpeg(tmp_path("cocostuff/images/val2017/000000000139.jpg"), &g_img[1]);
    CHECK_OK(cs_png_write(tmp_path("cocostuff/annotations/val2017/000000000139_labelTrainIds.png"), W, H, 1,
                          expected[0]));
    const char *preds[] = {"000000000139.png"};
    char spec[1200];
    snprintf(spec, sizeof spec, "cocostuff:'%s'", tmp_path("cocostuff"));
    run_seg_layout(spec, 171, preds, expected, 1, 0);
}

/* mmsegmentation's reduce_zero_label: 0 -> ignore, k -> k-1, 255 stays. */
static uint8_t reduced(uint8_t v) { return v == 0 || v == 255 ? 255 : (uint8_t)(v - 1); }

/* VOC20: the VOC folder of test_voc without background (0 ignored, k is
 * class k-1). */
static void test_voc20(void) {
    uint8_t expected[2][W * H];
    for (int i = 0; i < 2; i++)
        for (int p = 0; p < W * H; p++) expected[i][p] = reduced(g_mask[i][p]);
    const char *preds[] = {"2007_000032.png", "2007_000039.png"};
    char spec[1200];
    snprintf(spec, sizeof spec, "voc20:'%s'", tmp_path("voc"));
    run_seg_layout(spec, 20, preds, expected, 2, 0);
}

/* Context60: the Context folder of test_context with background a class
 * (values as stored; 60.. unknown). */
static void test_context60(void) {
    uint8_t expected[1][W * H];
    int w = 0, h = 0;
    uint8_t *stored = NULL;
    CHECK_OK(cs_label_png_load(tmp_path("context/SegmentationClassContext/2008_000002.png"), &w, &h, &stored));
    if (stored && w == W && h == H) memcpy(expected[0], stored, W * H);
    cs_free(stored);
    const char *preds[] = {"2008_000002.png"};
    char spec[1200];
    snprintf(spec, sizeof spec, "context60:'%s'", tmp_path("context"));
    run_seg_layout(spec, 60, preds, expected, 1, 0);
}

/* COCO-Object: the COCO-Stuff folder of test_cocostuff. From its
 * stuff-and-thing map (COCO category id - 1 per pixel) as SCLIP's
 * cvt_coco_object.py converts it: the 80 thing categories to 1..80 in id
 * order, stuff (91..181) and unlabeled (255) to background 0, anything else
 * as stored; then from that script's output (<stem>_instanceTrainIds.png,
 * as stored; 81.. unknown), which wins when present. */
static void test_cocoobject(void) {
    static const int thing_ids[80] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                      22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
                                      46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
                                      67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90};
    uint8_t raw[W * H], expected[1][W * H];
    for (int p = 0; p < W * H; p++) {
        raw[p] = p % 11 == 0 ? 255 : (uint8_t)((p % W + 3 * (p / W)) % 190);
        expected[0][p] = raw[p] > 90 ? 0 : raw[p];
        for (int k = 0; k < 80; k++)
            if (raw[p] == thing_ids[k] - 1) expected[0][p] = (uint8_t)(k + 1);
    }
    const char *preds[] = {"000000000139.png"};
    char spec[1200];
    snprintf(spec, sizeof spec, "cocoobject:'%s'", tmp_path("cocostuff"));
    CHECK_OK(cs_png_write(tmp_path("cocostuff/annotations/val2017/000000000139.png"), W, H, 1, raw));
    run_seg_layout(spec, 81, preds, expected, 1, 0);
    for (int p = 0; p < W * H; p++) expected[0][p] = p % 7 == 0 ? 255 : (uint8_t)((p % W + 3 * (p / W)) % 90);
    CHECK_OK(cs_png_write(tmp_path("cocostuff/annotations/val2017/000000000139_instanceTrainIds.png"), W, H, 1,
                          expected[0]));
    run_seg_layout(spec, 81, preds, expected, 1, 0);
    remove(tmp_path("cocostuff/annotations/val2017/000000000139.png"));
}

/* ADE20K (ADEChallengeData2016): images/validation, annotations/validation;
 * 0 ignored, k is class k-1 of 150 (151.. unknown). */
static void test_ade20k(void) {
    make_dirs("ade/images/validation");
    make_dirs("ade/annotations/validation");
    uint8_t stored[W * H], expected[1][W * H];
    for (int p = 0; p < W * H; p++) {
        stored[p] = (uint8_t)((p % W + 7 * (p / W)) % 160);
        expected[0][p] = reduced(stored[p]);
    }
    write_jpeg(tmp_path("ade/images/validation/ADE_val_00000001.jpg"), &g_img[0]);
    CHECK_OK(cs_png_write(tmp_path("ade/annotations/validation/ADE_val_00000001.png"), W, H, 1, stored));
    const char *preds[] = {"ADE_val_00000001.png"};
    char spec[1200];
    snprintf(spec, sizeof spec, "ade20k:'%s'", tmp_path("ade"));
    run_seg_layout(spec, 150, preds, expected, 1, 0);
}

/* ------------------------------------------------------------ multi-label */

/* Class indices of a JSON array, as a string "0,2". */
static const char *indices(const cJSON *arr) {
    static char buf[4][256];
    static int slot;
    slot = (slot + 1) % 4;
    buf[slot][0] = '\0';
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        size_t n = strlen(buf[slot]);
        snprintf(buf[slot] + n, sizeof buf[slot] - n, "%s%d", n ? "," : "", v->valueint);
    }
    return buf[slot];
}

static const cJSON *prediction(const cJSON *report, int i) { return cJSON_GetArrayItem(get(report, "predictions"), i); }

/* Per-class APs of the report equal a recomputation from its predictions
 * with difficult labels left out. */
static void check_ap(const cJSON *r) {
    int C = cJSON_GetArraySize(get(r, "classes")), n = cJSON_GetArraySize(get(r, "predictions"));
    for (int c = 0; c < C; c++) {
        float col[8];
        uint8_t pos[8];
        int m = 0;
        for (int i = 0; i < n && m < 8; i++) {
            const cJSON *p = prediction(r, i), *v;
            int label = 0, difficult = 0;
            cJSON_ArrayForEach(v, get(p, "labels")) label |= v->valueint == c;
            cJSON_ArrayForEach(v, get(p, "difficult")) difficult |= v->valueint == c;
            if (difficult) continue;
            col[m] = (float)cJSON_GetArrayItem(get(p, "scores"), c)->valuedouble;
            pos[m++] = (uint8_t)label;
        }
        double ap;
        CHECK_OK(cs_average_precision(col, pos, m, &ap));
        const cJSON *got = get(cJSON_GetArrayItem(get(r, "per_class"), c), "ap");
        CHECK_MSG(isnan(ap) ? cJSON_IsNull(got) : fabs(cJSON_GetNumberValue(got) - ap) <= DOUBLE_TOL, "class %d", c);
    }
}

static void make_voc07(void) {
    make_dirs("voc07/JPEGImages");
    make_dirs("voc07/ImageSets/Main");
    for (int i = 0; i < 3; i++) write_jpeg(tmp_path("voc07/JPEGImages/00000%d.jpg", i + 1), &g_img[i % 2]);
    write_text("voc07/ImageSets/Main/test.txt", "000001\n000002\n000003\n");
    write_text("voc07/ImageSets/Main/aeroplane_test.txt", "000001  1\n000002 -1\n000003  0\n");
    write_text("voc07/ImageSets/Main/bird_test.txt", "000001 -1\n000002  1\n000003 -1\n");
    write_text("voc07/ImageSets/Main/person_test.txt", "000001  0\n000002  1\n000003  1\n");
    write_text("voc07/ImageSets/Main/aeroplane_trainval.txt", "000004  1\n");
}

/* VOC 2007: 1 positive, 0 difficult (left out of the AP), -1 negative;
 * classes named by the files, or matched into a class list by name;
 * shards merge into the same report, difficult labels included. */
static void test_voc07(void) {
    make_voc07();
    char base[4096];
    snprintf(base, sizeof base, "eval %s --task multilabel --dataset voc07:'%s'", g_model, tmp_path("voc07"));
    CHECK(run_tool("%s --report '%s'", base, tmp_path("voc07.json")) == 0);
    cJSON *r = read_json(tmp_path("voc07.json"));
    CHECK(r && cJSON_GetArraySize(get(r, "classes")) == 3 &&
          !strcmp(cJSON_GetArrayItem(get(r, "classes"), 2)->valuestring, "person"));
    CHECK(r && !strcmp(indices(get(prediction(r, 0), "labels")), "0") &&
          !strcmp(indices(get(prediction(r, 0), "difficult")), "2"));
    CHECK(r && !strcmp(indices(get(prediction(r, 1), "labels")), "1,2") && !get(prediction(r, 1), "difficult"));
    CHECK(r && !strcmp(indices(get(prediction(r, 2), "labels")), "2") &&
          !strcmp(indices(get(prediction(r, 2), "difficult")), "0"));
    if (r) check_ap(r);
    for (int k = 0; k < 2; k++)
        CHECK(run_tool("%s --shard %d/2 --report '%s'", base, k, tmp_path("voc07_part%d.json", k)) == 0);
    CHECK(run_tool("eval --merge '%s' '%s' --report '%s'", tmp_path("voc07_part1.json"), tmp_path("voc07_part0.json"),
                   tmp_path("voc07_merged.json")) == 0);
    cJSON *merged = read_json(tmp_path("voc07_merged.json"));
    CHECK_MSG(r && merged && cJSON_Compare(r, merged, 1), "voc07: shard + merge differs");
    cJSON_Delete(merged);
    cJSON_Delete(r);
    CHECK(run_tool("%s --class-list '%s/voc21.txt' --report '%s'", base, g_classes_dir, tmp_path("voc07_21.json")) == 0);
    r = read_json(tmp_path("voc07_21.json"));
    CHECK(r && cJSON_GetArraySize(get(r, "classes")) == 21 &&
          !strcmp(indices(get(prediction(r, 1), "labels")), "3,15") &&
          !strcmp(indices(get(prediction(r, 0), "difficult")), "15"));
    if (r) check_ap(r);
    cJSON_Delete(r);
}

/* COCO: categories in id order, images in file-name order, labels from the
 * annotations; a CSV of the same labels gives the same predictions. */
static void test_coco_and_csv(void) {
    make_dirs("coco/images");
    const char *files[3] = {"a.jpg", "b.jpg", "c.jpg"};
    for (int i = 0; i < 3; i++) write_jpeg(tmp_path("coco/images/%s", files[i]), &g_img[i % 2]);
    write_text("coco/ann.json",
               "{\"images\": [{\"id\": 42, \"file_name\": \"b.jpg\"}, {\"id\": 7, \"file_name\": \"a.jpg\"},"
               " {\"id\": 9, \"file_name\": \"c.jpg\"}],"
               " \"categories\": [{\"id\": 3, \"name\": \"car\"}, {\"id\": 1, \"name\": \"person\"},"
               " {\"id\": 2, \"name\": \"bicycle\"}],"
               " \"annotations\": [{\"image_id\": 7, \"category_id\": 1}, {\"image_id\": 7, \"category_id\": 3},"
               " {\"image_id\": 7, \"category_id\": 1}, {\"image_id\": 42, \"category_id\": 2}]}");
    CHECK(run_tool("eval %s --task multilabel --dataset coco:'%s' --images '%s' --report '%s'", g_model,
                   tmp_path("coco/ann.json"), tmp_path("coco/images"), tmp_path("coco.json")) == 0);
    cJSON *coco = read_json(tmp_path("coco.json"));
    CHECK(coco && !strcmp(cJSON_GetArrayItem(get(coco, "classes"), 0)->valuestring, "person") &&
          !strcmp(cJSON_GetArrayItem(get(coco, "classes"), 2)->valuestring, "car"));
    CHECK(coco && !strcmp(cJSON_GetStringValue(get(prediction(coco, 0), "image")), "a.jpg"));
    CHECK(coco && !strcmp(indices(get(prediction(coco, 0), "labels")), "0,2") &&
          !strcmp(indices(get(prediction(coco, 1), "labels")), "1") &&
          !strcmp(indices(get(prediction(coco, 2), "labels")), ""));
    /* The same labels as a CSV with a header, in another image order. */
    write_text("coco/labels.csv", "file,labels\nb.jpg, bicycle\n\na.jpg,person;car;person\nc.jpg,\n");
    write_text("coco/classes.txt", "person\nbicycle\ncar\n");
    CHECK(run_tool("eval %s --task multilabel --dataset csv:'%s' --images '%s' --class-list '%s' --report '%s'",
                   g_model, tmp_path("coco/labels.csv"), tmp_path("coco/images"), tmp_path("coco/classes.txt"),
                   tmp_path("csv.json")) == 0);
    cJSON *csv = read_json(tmp_path("csv.json"));
    const int order[3] = {1, 0, 2}; /* the CSV's b, a, c in COCO's order */
    for (int i = 0; i < 3; i++) {
        const cJSON *a = prediction(coco, order[i]), *b = prediction(csv, i);
        CHECK_MSG(a && b && cJSON_Compare(get(a, "image"), get(b, "image"), 1) &&
                      cJSON_Compare(get(a, "scores"), get(b, "scores"), 1) &&
                      cJSON_Compare(get(a, "labels"), get(b, "labels"), 1),
                  "csv and coco differ on image %d", i);
    }
    cJSON_Delete(coco);
    cJSON_Delete(csv);
    /* No header, no class list, images beside the CSV: the classes are the
     * labels as they come. */
    write_text("coco/images/plain.csv", "\xEF\xBB\xBF" "a.jpg,car;person\nb.jpg,bicycle\n"); /* with a BOM */
    CHECK(run_tool("eval %s --task multilabel --dataset csv:'%s' --report '%s'", g_model,
                   tmp_path("coco/images/plain.csv"),
                   tmp_path("plain.json")) == 0);
    csv = read_json(tmp_path("plain.json"));
    CHECK(csv && cJSON_GetArraySize(get(csv, "classes")) == 3 &&
          !strcmp(cJSON_GetArrayItem(get(csv, "classes"), 2)->valuestring, "bicycle") &&
          !strcmp(indices(get(prediction(csv, 0), "labels")), "0,1"));
    cJSON_Delete(csv);
}

/* Layout mistakes: exit 2 with a message, before any image is read. */
static void test_errors(void) {
    char voc07[1200], coco[1200];
    snprintf(voc07, sizeof voc07, "voc07:'%s'", tmp_path("voc07"));
    snprintf(coco, sizeof coco, "coco:'%s'", tmp_path("coco/ann.json"));
    CHECK(run_tool("eval %s --dataset %s", g_model, voc07) == 2); /* seg needs masks */
    CHECK(run_tool("eval %s --task multilabel --dataset %s --labels '%s'", g_model, voc07,
                   golden_path("data/voc14/labels.json")) == 2);
    CHECK(run_tool("eval %s --task multilabel --dataset %s", g_model, coco) == 2); /* no --images */
    CHECK(run_tool("eval %s --dataset voc:'%s' --images '%s'", g_model, tmp_path("voc"), tmp_path("voc")) == 2);
    CHECK(run_tool("eval %s --dataset pascal:'%s'", g_model, tmp_path("voc")) == 2);
    CHECK(run_tool("eval %s --dataset voc:'%s' --masks '%s'", g_model, tmp_path("voc"), tmp_path("voc")) == 2);
    write_text("voc07/ImageSets/Main/cat_test.txt", "000001 5\n");
    CHECK(run_tool("eval %s --task multilabel --dataset %s", g_model, voc07) == 2);
    write_text("voc07/ImageSets/Main/cat_test.txt", "000009 1\n");
    CHECK(run_tool("eval %s --task multilabel --dataset %s", g_model, voc07) == 2);
    write_text("coco/bad.json", "{\"images\": [], \"categories\": [{\"id\": 1, \"name\": \"x\"}],"
                                " \"annotations\": [{\"image_id\": 1, \"category_id\": 1}]}");
    CHECK(run_tool("eval %s --task multilabel --dataset coco:'%s' --images '%s'", g_model, tmp_path("coco/bad.json"),
                   tmp_path("coco")) == 2);
}

/* ------------------------------------------------------------ --benchmark */

static double report_number(const char *path, const char *key) {
    cJSON *r = read_json(path);
    double v = r ? cJSON_GetNumberValue(get(r, key)) : NAN;
    cJSON_Delete(r);
    return v;
}

/* The report's settings hold these "key=value" pairs (numbers or strings). */
static void check_settings(const char *report, const char *const *pairs, int n) {
    cJSON *r = read_json(report);
    const cJSON *set = r ? get(r, "settings") : NULL;
    CHECK_MSG(set != NULL, "%s", report);
    for (int i = 0; set && i < n; i++) {
        char key[64];
        const char *eq = strchr(pairs[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - pairs[i]), pairs[i]);
        const cJSON *v = get(set, key);
        int ok = cJSON_IsString(v) ? !strcmp(v->valuestring, eq + 1)
                 : cJSON_IsNumber(v) ? fabs(v->valuedouble - atof(eq + 1)) < 1e-6 : !strcmp(eq + 1, "absent") && !v;
        CHECK_MSG(ok, "%s: settings %s", report, pairs[i]);
    }
    cJSON_Delete(r);
}

/* The SCLIP preset of VOC21 is exactly the options and files it stands for
 * (SCLIP's configs/cfg_voc21.py and clip_segmentor.py; data/benchmarks). */
static void test_preset_voc21(const char *data_dir) {
    CHECK(run_tool("eval %s --method sclip --benchmark voc21 --dataset '%s' --limit 1 --report '%s'", g_model_t,
                   tmp_path("voc"), tmp_path("preset.json")) == 0);
    CHECK(run_tool("eval %s --method sclip --dataset voc:'%s' --class-list '%s/benchmarks/sclip/cls_voc21.txt' "
                   "--templates '%s/benchmarks/openai_imagenet_templates.txt' --window 224 --stride 112 "
                   "--short-side 336 --bg-thresh 0.1 --logit-scale 65 --background sky --name-logits --area-thresh 0.1 --max-long-side 2048 --limit 1 --report '%s'",
                   g_model_t, tmp_path("voc"), data_dir, data_dir, tmp_path("explicit.json")) == 0);
    cJSON *a = read_json(tmp_path("preset.json")), *b = read_json(tmp_path("explicit.json"));
    const char *keys[] = {"classes", "images", "confusion", "per_class", "miou"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        CHECK_MSG(a && b && cJSON_Compare(get(a, keys[k]), get(b, keys[k]), 1), "preset: %s differs", keys[k]);
    cJSON_Delete(a);
    cJSON_Delete(b);
    const char *sclip[] = {"benchmark=voc21", "protocol=sclip", "class_list=sclip/cls_voc21.txt",
                           "template_list=openai_imagenet_templates.txt", "window=224", "stride=112",
                           "short_side=336", "bg_thresh=0.1", "logit_scale=65", "background=sky", "name_logits=1",
                           "area_thresh=0.1", "max_long_side=2048"};
    check_settings(tmp_path("preset.json"), sclip, 13);
}

/* Each method's own protocol by default, another by --protocol; options
 * given on the command line win over the preset's. */
static void test_protocols(void) {
    CHECK(run_tool("eval %s --method clearclip --benchmark voc21 --dataset '%s' --limit 1 --report '%s'", g_model,
                   tmp_path("voc"), tmp_path("clearclip.json")) == 0);
    const char *clearclip[] = {"protocol=clearclip", "class_list=clearclip/cls_voc21.txt", "window=448",
                               "stride=224", "short_side=448", "bg_thresh=0.5", "logit_scale=50",
                               "background=background", "templates=none"};
    check_settings(tmp_path("clearclip.json"), clearclip, 9);
    CHECK(run_tool("eval %s --method naclip --benchmark voc20 --dataset '%s' --limit 1 --report '%s'", g_model,
                   tmp_path("voc"), tmp_path("naclip.json")) == 0);
    const char *naclip[] = {"protocol=naclip", "class_list=sclip/cls_voc20.txt", "resolution=336", "pamr_steps=10",
                            "window=absent", "bg_thresh=absent", "max_long_side=absent"};
    check_settings(tmp_path("naclip.json"), naclip, 7);
    CHECK(run_tool("eval %s --benchmark cityscapes --dataset '%s' --protocol clearclip --short-side 224 --limit 1 "
                   "--report '%s'", g_model, tmp_path("cityscapes"), tmp_path("city.json")) == 0);
    const char *city[] = {"method=surgery", "protocol=clearclip", "window=224", "stride=224", "short_side=224",
                          "class_list=sclip/cls_city_scapes.txt"};
    check_settings(tmp_path("city.json"), city, 6);
}

/* --benchmark all over an mmsegmentation data/ folder (links to the
 * layouts above; no Cityscapes): the papers' columns, the mean, the absent
 * dataset named on stderr; each number that of its single run. */
static void test_all(void) {
    make_dirs("root/VOCdevkit");
    make_dirs("root/ade");
    CHECK(symlink(tmp_path("voc"), tmp_path("root/VOCdevkit/VOC2012")) == 0);
    CHECK(symlink(tmp_path("context"), tmp_path("root/VOCdevkit/VOC2010")) == 0);
    CHECK(symlink(tmp_path("cocostuff"), tmp_path("root/coco_stuff164k")) == 0);
    CHECK(symlink(tmp_path("ade"), tmp_path("root/ade/ADEChallengeData2016")) == 0);
    /* --short-side 224 (two windows an image) keeps it fast. */
    CHECK(run_tool("eval %s --benchmark all --datasets-root '%s' --short-side 224 --limit 1 --report '%s'", g_model,
                   tmp_path("root"), tmp_path("all.json")) == 0);
    CHECK(stderr_has("cityscapes: skipped"));
    char out[4096];
    read_text("stdout.txt", out, sizeof out);
    const char *cols[] = {"VOC21", "Context60", "COCO-Object", "VOC20", "Context59", "COCO-Stuff", "Cityscapes",
                          "ADE20K", "Avg"};
    const char *at = out;
    for (int i = 0; i < 9 && at; i++) at = strstr(at, cols[i]);
    CHECK_MSG(at != NULL, "the summary's columns are not in the papers' order:\n%s", out);
    cJSON *all = read_json(tmp_path("all.json"));
    const cJSON *miou = all ? get(all, "miou") : NULL;
    CHECK(miou && cJSON_IsNull(get(miou, "cityscapes")) && cJSON_GetNumberValue(get(all, "benchmarks_evaluated")) == 7);
    double sum = 0.0;
    const char *names[] = {"voc21", "context60", "coco-object", "voc20", "context59", "coco-stuff164k", "ade20k"};
    for (int i = 0; miou && i < 7; i++) sum += cJSON_GetNumberValue(get(miou, names[i]));
    CHECK(all && fabs(cJSON_GetNumberValue(get(all, "avg")) - sum / 7) < DOUBLE_TOL);
    for (int i = 0; miou && i < 7; i += 6) { /* voc21, ade20k */
        CHECK(run_tool("eval %s --benchmark %s --datasets-root '%s' --short-side 224 --limit 1 --report '%s'", g_model,
                       names[i],
                       tmp_path("root"), tmp_path("one.json")) == 0);
        CHECK_MSG(report_number(tmp_path("one.json"), "miou") == cJSON_GetNumberValue(get(miou, names[i])),
                  "all: %s differs from its single run", names[i]);
    }
    cJSON_Delete(all);
}

/* Mistakes: one line, exit 2, no report. */
static void test_bench_errors(void) {
    char report[1100];
    snprintf(report, sizeof report, "%s", tmp_path("bad.json"));
    struct {
        const char *args;
        const char *dir;
    } cases[] = {
        {"--benchmark voc22 --dataset '%s'", "voc"},
        {"--benchmark ade20k --dataset '%s'", "voc"},             /* another layout */
        {"--benchmark voc21 --dataset '%s'", "context"},
        {"--benchmark coco-object --dataset '%s'", "ade"},
        {"--benchmark voc21 --dataset '%s' --task explain", "voc"},
        {"--benchmark voc21 --dataset '%s' --protocol mmseg", "voc"},
        {"--benchmark all --dataset '%s'", "voc"},
        {"--benchmark all --datasets-root '%s'", "voc"},          /* none of the eight below */
        {"--dataset voc:'%s' --protocol sclip", "voc"},
        {"--benchmark voc21 --dataset '%s' --method sclip --model synthetic:RN50", "voc"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char args[2048];
        snprintf(args, sizeof args, cases[i].args, tmp_path("%s", cases[i].dir));
        remove(report);
        CHECK_MSG(run_tool("eval %s %s --report '%s'", g_model, args, report) == 2 && stderr_lines() == 1,
                  "case %zu: %s", i, args);
        CHECK_MSG(access(report, F_OK) != 0, "case %zu wrote a report", i);
    }
    /* A COCO-Stuff folder without COCO-Object's converted masks. */
    remove(tmp_path("cocostuff/annotations/val2017/000000000139_instanceTrainIds.png"));
    CHECK(run_tool("eval %s --benchmark coco-object --dataset '%s' --report '%s'", g_model, tmp_path("cocostuff"),
                   report) == 2 && stderr_has("_instanceTrainIds.png is missing"));
    CHECK(access(report, F_OK) != 0);
}

int main(void) {
    golden_shared_dir();
    tool_tmp_init("cs_eval_layouts");
    const char *slash = strrchr(__FILE__, '/');
    snprintf(g_classes_dir, sizeof g_classes_dir, "%.*s/../data/classes", slash ? (int)(slash - __FILE__) : 1,
             slash ? __FILE__ : ".");
    snprintf(g_model, sizeof g_model, "--model '%s' --vocab '%s' --templates none",
             golden_path("golden/tiny-vit/model.safetensors"), golden_path("clip/bpe_simple_vocab_16e6.txt.gz"));
    snprintf(g_model_t, sizeof g_model_t, "--model '%s' --vocab '%s'", golden_path("golden/tiny-vit/model.safetensors"),
             golden_path("clip/bpe_simple_vocab_16e6.txt.gz"));
    load_sources();
    test_voc();
    test_context();
    test_cityscapes();
    test_cocostuff();
    test_voc20();
    test_context60();
    test_cocoobject();
    test_ade20k();
    test_voc07();
    test_coco_and_csv();
    test_errors();
    char data_dir[1100];
    snprintf(data_dir, sizeof data_dir, "%s/..", g_classes_dir);
    test_preset_voc21(data_dir);
    test_protocols();
    test_all();
    test_bench_errors();
    for (int i = 0; i < 2; i++) cs_image_free(&g_img[i]);
    return test_finish();
}
