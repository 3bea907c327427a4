/* clip-surgery eval: datasets (eval_data.c), accumulated results and
 * reports (eval_report.c), the run itself (cmd_eval.c). */
#ifndef CS_TOOLS_EVAL_H
#define CS_TOOLS_EVAL_H

#include "clip_surgery.h"
#include <cjson/cJSON.h>
#include "cli.h"

/* One image of a dataset. */
typedef struct eval_item {
    char *image;        /* path */
    char *mask;         /* path, or NULL */
    char *name;         /* the image's file name: its key in labels.json and reports */
    int n_labels;       /* image-level labels given, or -1 (then the mask's classes) */
    int *labels;        /* [n_labels] indices into the dataset's names; after
                           eval_dataset_resolve_labels, class indices */
    uint8_t *difficult; /* [n_labels] 1: neither positive nor negative for that
                           class (VOC 2007's 0), or NULL when none is */
} eval_item;

typedef struct eval_dataset {
    char *spec;             /* what the report says it was */
    int n;
    eval_item *items;
    int n_names;            /* the dataset's own class names (the labels' vocabulary), or 0 */
    char **names;
    int names_by_position;  /* 1: dataset class i is class i of the class list (labels.json's
                               "classes", COCO's categories); 0: matched by name */
    int has_masks;          /* the layout pairs images with masks */
    uint8_t *label_map;     /* [256] stored mask value -> label (Cityscapes, Context), or NULL */
} eval_dataset;

/* --dataset LAYOUT:PATH [--split S] [--images DIR], or --images DIR [--masks DIR]
 * [--image-suffix S] [--mask-suffix S]; either with --labels FILE where the
 * layout has no image-level labels of its own. */
int eval_dataset_load(const cli_args *a, eval_dataset *d);
/* Map the items' labels to class indices of the C classes (by position or
 * by the classes' first names, as d->names_by_position says). */
int eval_dataset_resolve_labels(eval_dataset *d, const cs_classes *cl);
void eval_dataset_free(eval_dataset *d);

/* For the layout loaders (eval_data.c, eval_seg_data.c, eval_ml_data.c). */
char *eval_path(const char *dir, const char *a, const char *b, const char *c); /* "dir/abc" */
/* Takes ownership of the strings (mask may be NULL). */
eval_item *eval_add_item(eval_dataset *d, char *image, char *mask, char *name);
/* Index of a class name among d->names, added when absent. */
int eval_class_index(eval_dataset *d, const char *name);
/* Add a label (dataset class index) to an item once; n_labels -1 becomes 0. */
void eval_item_label(eval_item *it, int cls, int difficult);
void eval_set_spec(eval_dataset *d, const char *layout, const char *path, const char *split);
/* Images of dir whose stem ends with isuf (sorted by name), paired with
 * masks/<stem without isuf><msuf>.png when masks is not NULL. */
int eval_scan_folder(eval_dataset *d, const char *dir, const char *isuf, const char *masks, const char *msuf);
/* A text file whole (NUL-terminated; free with cs_free), or an exit code. */
int eval_read_text(const char *path, char **text);
const char *eval_split(const cli_args *a, const char *dflt);

/* The published layouts, given --dataset's PATH. */
int eval_load_voc(const cli_args *a, const char *root, eval_dataset *d);
int eval_load_context(const cli_args *a, const char *root, eval_dataset *d);
int eval_load_cityscapes(const cli_args *a, const char *root, eval_dataset *d);
int eval_load_cocostuff(const cli_args *a, const char *root, eval_dataset *d);
int eval_load_voc20(const cli_args *a, const char *root, eval_dataset *d);
int eval_load_context60(const cli_args *a, const char *root, eval_dataset *d);
int eval_load_cocoobject(const cli_args *a, const char *root, eval_dataset *d);
int eval_load_ade20k(const cli_args *a, const char *root, eval_dataset *d);
int eval_load_voc07(const cli_args *a, const char *root, eval_dataset *d);
int eval_load_coco(const cli_args *a, const char *json, eval_dataset *d);
int eval_load_csv(const cli_args *a, const char *csv, eval_dataset *d);

typedef enum eval_task { EVAL_SEG = 0, EVAL_EXPLAIN = 1, EVAL_MULTILABEL = 2 } eval_task;

typedef struct eval_skip { int index; char *image, *reason; } eval_skip;
/* A multi-label ground truth value per class. */
enum { EVAL_NEGATIVE = 0, EVAL_POSITIVE = 1, EVAL_DIFFICULT = 2 };
typedef struct eval_pred { int index; char *image; float *scores; uint8_t *truth; } eval_pred;

/* Everything a report is computed from; a shard's partial result is the
 * same thing over its images, and merging sums them. */
typedef struct eval_acc {
    eval_task task;
    int C;
    char **names;
    cJSON *settings;
    int shard_k, shard_n;  /* shard_n 0: not a shard */
    int listed, evaluated;
    int n_skipped;
    eval_skip *skipped;
    int64_t unknown_pixels;
    int64_t *conf;                              /* seg: [C, C] */
    int64_t (*counts)[CS_EXPLAIN_STEPS][4];     /* explain: [C] */
    int64_t *pairs;                             /* explain: [C] (image, class) pairs */
    int n_pred;
    eval_pred *pred;                            /* multilabel */
} eval_acc;

const char *eval_task_name(eval_task t);
void eval_acc_init(eval_acc *acc, eval_task task, int C, char *const *names, cJSON *settings);
void eval_acc_free(eval_acc *acc);
void eval_acc_skip(eval_acc *acc, int index, const char *image, const char *reason);
/* truth: [C] EVAL_NEGATIVE, EVAL_POSITIVE or EVAL_DIFFICULT (left out of that class's AP). */
void eval_acc_predict(eval_acc *acc, int index, const char *image, const float *scores,
                      const uint8_t *truth);

/* The report as JSON (raw counts and metrics), written atomically to path
 * (NULL: not written), and the table on stdout. */
int eval_report(const eval_acc *acc, const char *path);
/* The report as JSON, its table written to `table`. */
cJSON *eval_report_json(const eval_acc *acc, FILE *table, int *rc);
/* JSON written atomically (no partial file on failure). */
int eval_write_json(const cJSON *root, const char *path);
/* Merge partial reports (one per shard, all shards) into acc. */
int eval_merge(const char *const *paths, int n, eval_acc *acc);

/* eval --benchmark NAME (eval_bench.c): the eight benchmarks of the
 * training-free dense-CLIP papers, in their tables' column order, under the
 * settings of one of three protocols (the methods' config files). */
#define EVAL_N_BENCHMARKS 8
enum { EVAL_PROTOCOL_SCLIP = 0, EVAL_PROTOCOL_CLEARCLIP = 1, EVAL_PROTOCOL_NACLIP = 2, EVAL_N_PROTOCOLS = 3 };

/* data/benchmarks/ compiled in (eval_bench_files.c, generated at build time). */
typedef struct eval_bench_file { const char *name, *text; } eval_bench_file;
extern const eval_bench_file eval_bench_files[];
extern const int eval_bench_n_files;

/* One benchmark's run: the user's options with the preset's filled in. */
typedef struct eval_preset {
    int bench, protocol;
    cli_args a;
    const char *classes, *templates; /* data/benchmarks files, or NULL: the user's */
    char dataset[4200], window[16], stride[16], short_side[16], res[16], bg_thresh[32], logit_scale[32], pamr[16],
        area_thresh[32];
} eval_preset;

int eval_bench_find(const char *name); /* index, or -1 */
const char *eval_bench_name(int b);
const char *eval_bench_title(int b);
const char *eval_protocol_name(int p);
/* --protocol, else the method's own (SCLIP's for methods without configs). */
int eval_protocol(const cli_args *a, cs_method method, int *protocol);
/* dir has the folders of benchmark b's layout. */
int eval_bench_present(int b, const char *dir);
/* mmsegmentation's folder of benchmark b under a datasets root. */
char *eval_bench_root(int b, const char *datasets_root);
/* p->a: the user's options plus the preset's (benchmark b under the
 * protocol, dataset folder dir) where the user gave none; exit 2 when dir
 * is not of the benchmark's layout. */
int eval_bench_apply(eval_preset *p, const cli_args *user, int b, int protocol, const char *dir);
/* The class list (the preset's, else class_list) with the preset's
 * templates (else templates), not yet embedded. */
int eval_bench_classes(const eval_preset *p, const char *class_list, const char *templates, cs_classes **cl);

#endif
