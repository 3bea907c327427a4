/* Segmentation datasets in their published layouts (as mmsegmentation
 * prepares them): PASCAL VOC 2012 (with and without background), PASCAL
 * Context (59 and 60 classes), Cityscapes, COCO-Stuff 164k, COCO-Object and
 * ADE20K. Each lists images with their masks; some also map the stored mask
 * values to the evaluated labels (255 = ignore). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "eval.h"

/* Ids listed one per line in root/list; image root/images/<id>.jpg, mask
 * root/masks/<id>.png. */
static int load_listed(const char *root, const char *list, const char *images, const char *masks,
                       eval_dataset *d) {
    char *path = eval_path(root, list, "", ""), *text;
    int rc = eval_read_text(path, &text);
    free(path);
    if (rc) return rc;
    char *image_dir = eval_path(root, images, "", ""), *mask_dir = eval_path(root, masks, "", ""), *save = NULL;
    for (char *id = strtok_r(text, " \t\r\n", &save); id; id = strtok_r(NULL, " \t\r\n", &save)) {
        char *name = cli_xmalloc(strlen(id) + 5);
        sprintf(name, "%s.jpg", id);
        eval_add_item(d, eval_path(image_dir, name, "", ""), eval_path(mask_dir, id, ".png", ""), name);
    }
    free(image_dir);
    free(mask_dir);
    cs_free(text);
    d->has_masks = 1;
    return 0;
}

/* voc:DIR (VOCdevkit/VOC2012): ImageSets/Segmentation/<split>.txt,
 * JPEGImages/<id>.jpg, SegmentationClass/<id>.png (palette indices: 0
 * background, 1..20 the classes, 255 void), evaluated as stored. */
int eval_load_voc(const cli_args *a, const char *root, eval_dataset *d) {
    const char *split = eval_split(a, "val");
    char *list = eval_path("ImageSets", "Segmentation/", split, ".txt");
    int rc = load_listed(root, list, "JPEGImages", "SegmentationClass", d);
    free(list);
    eval_set_spec(d, "voc", root, split);
    return rc;
}

/* mmsegmentation's reduce_zero_label: 0 (background) becomes ignore and k
 * becomes k-1 (255 stays void). */
static uint8_t *reduce_zero_label(void) {
    uint8_t *map = cli_xmalloc(256);
    map[0] = CS_IGNORE_LABEL;
    for (int v = 1; v < 256; v++) map[v] = (uint8_t)(v == CS_IGNORE_LABEL ? v : v - 1);
    return map;
}

/* voc20:DIR: voc: without the background class (SCLIP's PascalVOC20Dataset:
 * reduce_zero_label), 20 classes. */
int eval_load_voc20(const cli_args *a, const char *root, eval_dataset *d) {
    int rc = eval_load_voc(a, root, d);
    free(d->spec);
    eval_set_spec(d, "voc20", root, eval_split(a, "val"));
    d->label_map = reduce_zero_label();
    return rc;
}

/* VOCdevkit/VOC2010 with the Detail API's masks, as mmsegmentation prepares
 * it: ImageSets/SegmentationContext/<split>.txt, JPEGImages/<id>.jpg,
 * SegmentationClassContext/<id>.png with 0 background and 1..59 the
 * classes. */
static int load_context(const cli_args *a, const char *root, const char *layout, eval_dataset *d) {
    const char *split = eval_split(a, "val");
    char *list = eval_path("ImageSets", "SegmentationContext/", split, ".txt");
    int rc = load_listed(root, list, "JPEGImages", "SegmentationClassContext", d);
    free(list);
    eval_set_spec(d, layout, root, split);
    return rc;
}

/* context:DIR, the 59-class protocol: background left out of the metric
 * (reduce_zero_label, the setting of SCLIP's PascalContext59Dataset and of
 * the Context-59 numbers of SCLIP/NACLIP/CLIP Surgery). */
int eval_load_context(const cli_args *a, const char *root, eval_dataset *d) {
    int rc = load_context(a, root, "context", d);
    d->label_map = reduce_zero_label();
    return rc;
}

/* context60:DIR: the masks as stored, background (0) a class of its own
 * (SCLIP's PascalContext60Dataset). */
int eval_load_context60(const cli_args *a, const char *root, eval_dataset *d) {
    return load_context(a, root, "context60", d);
}

/* Cityscapes' labelIds of the 19 evaluated classes in train-id order (the
 * dataset's published table, cityscapesScripts' labels.py); every other
 * id is ignored. */
static const uint8_t k_cityscapes_ids[19] = {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33};

/* cityscapes:DIR: leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png with
 * gtFine/<split>/<city>/<stem>_gtFine_labelIds.png, labelIds mapped to the
 * 19 train ids. Cities and files in name order. */
int eval_load_cityscapes(const cli_args *a, const char *root, eval_dataset *d) {
    const char *split = eval_split(a, "val");
    char *images = eval_path(root, "leftImg8bit/", split, ""), *masks = eval_path(root, "gtFine/", split, "");
    struct dirent **cities;
    int n = scandir(images, &cities, NULL, alphasort), rc = 0;
    if (n < 0) {
        cli_error("%s: cannot read the folder (cityscapes:DIR holds leftImg8bit/ and gtFine/)", images);
        rc = CLI_EXIT_USAGE;
    }
    for (int i = 0; i < n; i++) {
        const char *city = cities[i]->d_name;
        char *in = eval_path(images, city, "", ""), *gt = eval_path(masks, city, "", "");
        struct stat st;
        if (!rc && city[0] != '.' && stat(in, &st) == 0 && S_ISDIR(st.st_mode))
            rc = eval_scan_folder(d, in, "_leftImg8bit", gt, "_gtFine_labelIds");
        free(in);
        free(gt);
        free(cities[i]);
    }
    if (n >= 0) free(cities);
    free(images);
    free(masks);
    eval_set_spec(d, "cityscapes", root, split);
    d->has_masks = 1;
    d->label_map = cli_xmalloc(256);
    memset(d->label_map, CS_IGNORE_LABEL, 256);
    for (int t = 0; t < 19; t++) d->label_map[k_cityscapes_ids[t]] = (uint8_t)t;
    return rc;
}

/* The COCO 164k folder as mmsegmentation prepares it: images/<split>2017/<stem>.jpg
 * with annotations/<split>2017/<stem><suffix>.png (--split val or val2017). */
static int load_coco164k(const cli_args *a, const char *root, const char *layout, const char *suffix,
                         eval_dataset *d) {
    const char *split = eval_split(a, "val");
    size_t n = strlen(split);
    const char *year = n >= 4 && !strcmp(split + n - 4, "2017") ? "" : "2017";
    char *images = eval_path(root, "images/", split, year), *masks = eval_path(root, "annotations/", split, year);
    int rc = eval_scan_folder(d, images, "", masks, suffix);
    free(images);
    free(masks);
    eval_set_spec(d, layout, root, split);
    d->has_masks = 1;
    return rc;
}

/* cocostuff:DIR (COCO-Stuff 164k): <stem>_labelTrainIds.png, 0..170 the 171
 * classes, 255 unlabeled; evaluated as stored. */
int eval_load_cocostuff(const cli_args *a, const char *root, eval_dataset *d) {
    return load_coco164k(a, root, "cocostuff", "_labelTrainIds", d);
}

/* COCO's 80 thing categories as stored in COCO-Stuff 164k's stuff-and-thing
 * maps (category id - 1), in category order: COCO-Object's classes 1..80
 * (the clsID_to_trID table of SCLIP's datasets/cvt_coco_object.py). */
static const uint8_t k_coco_things[80] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 26, 27, 30,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58,
    59, 60, 61, 62, 63, 64, 66, 69, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 83, 84, 85, 86, 87, 88, 89};

/* cvt_coco_object.py as a label map: things to 1..80, stuff (91..181) and
 * unlabeled (255) to background 0, the (unused) rest as stored. */
static uint8_t *coco_object_map(void) {
    uint8_t *map = cli_xmalloc(256);
    for (int v = 0; v < 256; v++) map[v] = (uint8_t)(v > 90 ? 0 : v);
    for (int k = 0; k < 80; k++) map[k_coco_things[k]] = (uint8_t)(k + 1);
    return map;
}

static int readable(const char *path) { return path && access(path, R_OK) == 0; }

/* cocoobject:DIR (COCO-Object, the GroupViT/TCL/SCLIP convention): the same
 * folder after SCLIP's datasets/cvt_coco_object.py, <stem>_instanceTrainIds.png
 * holding 0 background (every stuff class, and unlabeled), 1..80 the thing
 * classes in COCO's category order; evaluated as stored (SCLIP's
 * COCOObjectDataset, reduce_zero_label=False). Without those files the
 * stuff-and-thing maps <stem>.png go through the script's mapping here. */
int eval_load_cocoobject(const cli_args *a, const char *root, eval_dataset *d) {
    int rc = load_coco164k(a, root, "cocoobject", "_instanceTrainIds", d);
    if (rc || !d->n || readable(d->items[0].mask)) return rc;
    eval_dataset raw = {0};
    rc = load_coco164k(a, root, "cocoobject", "", &raw);
    if (rc || !raw.n || !readable(raw.items[0].mask)) {
        eval_dataset_free(&raw);
        return rc;
    }
    eval_dataset_free(d);
    *d = raw;
    d->label_map = coco_object_map();
    return 0;
}

/* ade20k:DIR (ADEChallengeData2016): images/<split>/<stem>.jpg with
 * annotations/<split>/<stem>.png (default split validation); 0 (other) is
 * ignored and k is class k-1 of the 150 (ADE20KDataset's reduce_zero_label). */
int eval_load_ade20k(const cli_args *a, const char *root, eval_dataset *d) {
    const char *split = eval_split(a, "validation");
    char *images = eval_path(root, "images/", split, ""), *masks = eval_path(root, "annotations/", split, "");
    int rc = eval_scan_folder(d, images, "", masks, "");
    free(images);
    free(masks);
    eval_set_spec(d, "ade20k", root, split);
    d->has_masks = 1;
    d->label_map = reduce_zero_label();
    return rc;
}
