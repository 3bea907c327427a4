/* clip-surgery eval: datasets (eval_data.c), accumulated results and
 * reports (eval_report.c), the run itself (cmd_eval.c). */
#ifndef CS_TOOLS_EVAL_H
#define CS_TOOLS_EVAL_H

#include "clip_surgery.h"
#include <cjson/cJSON.h>
#include "seg.h"

/* One image of a dataset. */
typedef struct eval_item {
    char *image;   /* path */
    char *mask;    /* path, or NULL */
    char *name;    /* the image's file name: its key in labels.json and reports */
    int n_labels;  /* image-level labels given (labels.json), or -1 */
    int *labels;   /* class indices */
} eval_item;

typedef struct eval_dataset {
    char *spec;          /* what the report says it was */
    int n;
    eval_item *items;
    int n_names;         /* class names the dataset itself gives (labels.json), or 0 */
    char **names;
    cJSON *labels;       /* labels.json's "labels" object's owner, or NULL */
} eval_dataset;

/* --dataset voc:DIR [--split S], or --images DIR [--masks DIR] [--image-suffix S]
 * [--mask-suffix S] [--labels FILE]. Items sorted by file name. */
int eval_dataset_load(const cli_args *a, eval_dataset *d);
/* Resolve labels.json's label names into class indices of the C classes
 * (by position in its "classes", else by the classes' first names). */
int eval_dataset_resolve_labels(eval_dataset *d, const seg_classes *sc);
void eval_dataset_free(eval_dataset *d);

typedef enum eval_task { EVAL_SEG = 0, EVAL_EXPLAIN = 1, EVAL_MULTILABEL = 2 } eval_task;

typedef struct eval_skip { int index; char *image, *reason; } eval_skip;
typedef struct eval_pred { int index; char *image; float *scores; uint8_t *positive; } eval_pred;

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
void eval_acc_predict(eval_acc *acc, int index, const char *image, const float *scores,
                      const uint8_t *positive);

/* The report as JSON (raw counts and metrics), written atomically to path
 * (NULL: not written), and the table on stdout. */
int eval_report(const eval_acc *acc, const char *path);
/* Merge partial reports (one per shard, all shards) into acc. */
int eval_merge(const char *const *paths, int n, eval_acc *acc);

#endif
