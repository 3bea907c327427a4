/* Accumulated eval results, their JSON report and table, and the merge of
 * shards' partial reports. A partial report is a full report over its
 * shard's images with "shard": [K, N]; merging sums the raw counts (and
 * gathers per-image scores in dataset order) and recomputes the metrics,
 * so the merge of all shards is the unsharded report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "eval.h"

static const char *const k_task_names[] = {"seg", "explain", "multilabel"};

const char *eval_task_name(eval_task t) { return k_task_names[t]; }

void eval_acc_init(eval_acc *acc, eval_task task, int C, char *const *names, cJSON *settings) {
    memset(acc, 0, sizeof *acc);
    acc->task = task;
    acc->C = C;
    acc->names = cli_xcalloc((size_t)C, sizeof *acc->names);
    for (int c = 0; c < C; c++) acc->names[c] = cli_xstrdup(names[c]);
    acc->settings = settings;
    if (task == EVAL_SEG) acc->conf = cli_xcalloc((size_t)C * C, sizeof *acc->conf);
    if (task == EVAL_EXPLAIN) {
        acc->counts = cli_xcalloc((size_t)C, sizeof *acc->counts);
        acc->pairs = cli_xcalloc((size_t)C, sizeof *acc->pairs);
    }
}

void eval_acc_free(eval_acc *acc) {
    for (int c = 0; c < acc->C; c++) free(acc->names[c]);
    free(acc->names);
    cJSON_Delete(acc->settings);
    for (int i = 0; i < acc->n_skipped; i++) {
        free(acc->skipped[i].image);
        free(acc->skipped[i].reason);
    }
    free(acc->skipped);
    for (int i = 0; i < acc->n_pred; i++) {
        free(acc->pred[i].image);
        free(acc->pred[i].scores);
        free(acc->pred[i].truth);
    }
    free(acc->pred);
    free(acc->conf);
    free(acc->counts);
    free(acc->pairs);
    memset(acc, 0, sizeof *acc);
}

void eval_acc_skip(eval_acc *acc, int index, const char *image, const char *reason) {
    acc->skipped = cli_xrealloc(acc->skipped, sizeof *acc->skipped * (size_t)(acc->n_skipped + 1));
    acc->skipped[acc->n_skipped++] = (eval_skip){index, cli_xstrdup(image), cli_xstrdup(reason)};
}

void eval_acc_predict(eval_acc *acc, int index, const char *image, const float *scores,
                      const uint8_t *truth) {
    acc->pred = cli_xrealloc(acc->pred, sizeof *acc->pred * (size_t)(acc->n_pred + 1));
    eval_pred *p = &acc->pred[acc->n_pred++];
    p->index = index;
    p->image = cli_xstrdup(image);
    p->scores = cli_xmalloc(sizeof(float) * (size_t)acc->C);
    p->truth = cli_xmalloc((size_t)acc->C);
    memcpy(p->scores, scores, sizeof(float) * (size_t)acc->C);
    memcpy(p->truth, truth, (size_t)acc->C);
}

/* ------------------------------------------------------------ metrics */

/* A number, or null when undefined (NaN). */
static cJSON *number(double x) { return isnan(x) ? cJSON_CreateNull() : cJSON_CreateNumber(x); }

static cJSON *int64_array(const int64_t *x, int n) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)x[i]));
    return arr;
}

static void seg_metrics(const eval_acc *acc, cJSON *root, FILE *table) {
    int C = acc->C;
    double *iou = cli_xmalloc(sizeof(double) * (size_t)C);
    cs_seg_scores s;
    cs_confusion_scores(acc->conf, C, iou, &s);
    cJSON *conf = cJSON_AddArrayToObject(root, "confusion"), *per = cJSON_AddArrayToObject(root, "per_class");
    fprintf(table, "%-24s %8s\n", "class", "IoU");
    for (int c = 0; c < C; c++) {
        cJSON_AddItemToArray(conf, int64_array(acc->conf + (size_t)c * C, C));
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", acc->names[c]);
        cJSON_AddItemToObject(e, "iou", number(iou[c]));
        cJSON_AddItemToArray(per, e);
        if (isnan(iou[c])) fprintf(table, "%-24s %8s\n", acc->names[c], "-");
        else fprintf(table, "%-24s %8.2f\n", acc->names[c], 100.0 * iou[c]);
    }
    cJSON_AddItemToObject(root, "miou", number(s.miou));
    cJSON_AddItemToObject(root, "pixel_accuracy", number(s.pixel_accuracy));
    cJSON_AddItemToObject(root, "mean_accuracy", number(s.mean_accuracy));
    cJSON_AddNumberToObject(root, "classes_with_iou", s.n_defined);
    fprintf(table, "mIoU %.2f (%d classes)  pixel accuracy %.2f  mean accuracy %.2f\n", 100.0 * s.miou,
            s.n_defined, 100.0 * s.pixel_accuracy, 100.0 * s.mean_accuracy);
    free(iou);
}

/* Dataset-wide counts of threshold k: the sum over classes. */
static void explain_total(const eval_acc *acc, int k, int64_t total[4]) {
    memset(total, 0, 4 * sizeof *total);
    for (int c = 0; c < acc->C; c++)
        for (int j = 0; j < 4; j++) total[j] += acc->counts[c][k][j];
}

static void explain_metrics(const eval_acc *acc, cJSON *root, FILE *table) {
    cJSON *counts = cJSON_AddArrayToObject(root, "counts"), *grid = cJSON_AddArrayToObject(root, "thresholds");
    for (int c = 0; c < acc->C; c++) cJSON_AddItemToArray(counts, int64_array(&acc->counts[c][0][0], 4 * CS_EXPLAIN_STEPS));
    cJSON_AddItemToObject(root, "pairs", int64_array(acc->pairs, acc->C));
    int best = 0;
    double best_miou = NAN;
    fprintf(table, "%-10s %8s %8s\n", "threshold", "mIoU", "fg IoU");
    for (int k = 0; k < CS_EXPLAIN_STEPS; k++) {
        int64_t total[4];
        double fg;
        explain_total(acc, k, total);
        double miou = cs_binary_miou(total, &fg);
        if (!isnan(miou) && (isnan(best_miou) || miou > best_miou)) {
            best = k;
            best_miou = miou;
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "t", cs_explain_threshold(k));
        cJSON_AddItemToObject(e, "miou", number(miou));
        cJSON_AddItemToObject(e, "fg_iou", number(fg));
        cJSON_AddItemToArray(grid, e);
        fprintf(table, "%-10.2f %8.2f %8.2f\n", cs_explain_threshold(k), 100.0 * miou, 100.0 * fg);
    }
    cJSON *per = cJSON_AddArrayToObject(root, "per_class");
    for (int c = 0; c < acc->C; c++) {
        double fg, miou = cs_binary_miou(acc->counts[c][best], &fg);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", acc->names[c]);
        cJSON_AddNumberToObject(e, "pairs", (double)acc->pairs[c]);
        cJSON_AddItemToObject(e, "miou", number(acc->pairs[c] ? miou : NAN));
        cJSON_AddItemToObject(e, "fg_iou", number(acc->pairs[c] ? fg : NAN));
        cJSON_AddItemToArray(per, e);
    }
    int64_t total[4];
    double fg;
    explain_total(acc, best, total);
    cJSON_AddNumberToObject(root, "best_threshold", cs_explain_threshold(best));
    cJSON_AddItemToObject(root, "miou", number(cs_binary_miou(total, &fg)));
    cJSON_AddItemToObject(root, "fg_iou", number(fg));
    fprintf(table, "best threshold %.2f: mIoU %.2f, foreground IoU %.2f\n", cs_explain_threshold(best),
            100.0 * best_miou, 100.0 * fg);
}

/* One image's scores and ground truth: "labels" the positive classes and,
 * when it has any, "difficult" the classes left out of their AP. */
static cJSON *prediction_json(const eval_pred *p, int C) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "index", p->index);
    cJSON_AddStringToObject(e, "image", p->image);
    cJSON *scores = cJSON_AddArrayToObject(e, "scores"), *labels = cJSON_AddArrayToObject(e, "labels");
    cJSON *difficult = cJSON_CreateArray();
    for (int c = 0; c < C; c++) {
        cJSON_AddItemToArray(scores, cJSON_CreateNumber(p->scores[c]));
        if (p->truth[c] != EVAL_NEGATIVE)
            cJSON_AddItemToArray(p->truth[c] == EVAL_POSITIVE ? labels : difficult, cJSON_CreateNumber(c));
    }
    if (cJSON_GetArraySize(difficult)) cJSON_AddItemToObject(e, "difficult", difficult);
    else cJSON_Delete(difficult);
    return e;
}

static int multilabel_metrics(const eval_acc *acc, cJSON *root, FILE *table) {
    int C = acc->C, n = acc->n_pred;
    cJSON *preds = cJSON_AddArrayToObject(root, "predictions"), *per = cJSON_AddArrayToObject(root, "per_class");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(preds, prediction_json(&acc->pred[i], C));
    float *col = cli_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    uint8_t *pos = cli_xmalloc((size_t)(n ? n : 1));
    double *ap = cli_xmalloc(sizeof(double) * (size_t)C);
    fprintf(table, "%-24s %8s %9s\n", "class", "AP", "positives");
    int rc = 0;
    for (int c = 0; c < C && !rc; c++) {
        int positives = 0, m = 0;
        for (int i = 0; i < n; i++) {
            if (acc->pred[i].truth[c] == EVAL_DIFFICULT) continue;
            col[m] = acc->pred[i].scores[c];
            pos[m] = acc->pred[i].truth[c] == EVAL_POSITIVE;
            positives += pos[m++];
        }
        cs_status s = cs_average_precision(col, pos, m, &ap[c]);
        if (s != CS_OK) rc = cli_fail(s);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", acc->names[c]);
        cJSON_AddItemToObject(e, "ap", number(ap[c]));
        cJSON_AddNumberToObject(e, "positives", positives);
        cJSON_AddItemToArray(per, e);
        if (isnan(ap[c])) fprintf(table, "%-24s %8s %9d\n", acc->names[c], "-", positives);
        else fprintf(table, "%-24s %8.2f %9d\n", acc->names[c], 100.0 * ap[c], positives);
    }
    int defined = 0;
    double map = rc ? NAN : cs_nanmean(ap, C, &defined);
    cJSON_AddItemToObject(root, "map", number(map));
    cJSON_AddNumberToObject(root, "classes_with_ap", defined);
    fprintf(table, "mAP %.2f (%d classes with positives)\n", 100.0 * map, defined);
    free(col);
    free(pos);
    free(ap);
    return rc;
}

/* ------------------------------------------------------------ report */

cJSON *eval_report_json(const eval_acc *acc, FILE *table, int *rc) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "task", eval_task_name(acc->task));
    cJSON_AddItemToObject(root, "settings", cJSON_Duplicate(acc->settings, 1));
    if (acc->shard_n) {
        cJSON *shard = cJSON_AddArrayToObject(root, "shard");
        cJSON_AddItemToArray(shard, cJSON_CreateNumber(acc->shard_k));
        cJSON_AddItemToArray(shard, cJSON_CreateNumber(acc->shard_n));
    }
    cJSON *classes = cJSON_AddArrayToObject(root, "classes");
    for (int c = 0; c < acc->C; c++) cJSON_AddItemToArray(classes, cJSON_CreateString(acc->names[c]));
    cJSON *images = cJSON_AddObjectToObject(root, "images");
    cJSON_AddNumberToObject(images, "listed", acc->listed);
    cJSON_AddNumberToObject(images, "evaluated", acc->evaluated);
    cJSON_AddNumberToObject(images, "skipped", acc->n_skipped);
    cJSON *skipped = cJSON_AddArrayToObject(root, "skipped");
    for (int i = 0; i < acc->n_skipped; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", acc->skipped[i].index);
        cJSON_AddStringToObject(e, "image", acc->skipped[i].image);
        cJSON_AddStringToObject(e, "reason", acc->skipped[i].reason);
        cJSON_AddItemToArray(skipped, e);
    }
    cJSON_AddNumberToObject(root, "unknown_label_pixels", (double)acc->unknown_pixels);
    fprintf(table, "%s (%s): %d images evaluated, %d skipped\n", eval_task_name(acc->task),
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(acc->settings, "method")), acc->evaluated,
            acc->n_skipped);
    *rc = 0;
    if (acc->task == EVAL_SEG) seg_metrics(acc, root, table);
    else if (acc->task == EVAL_EXPLAIN) explain_metrics(acc, root, table);
    else *rc = multilabel_metrics(acc, root, table);
    return root;
}

int eval_write_json(const cJSON *root, const char *path) {
    char *text = cJSON_Print(root);
    cs_atomic_file af;
    cs_status s = cs_atomic_open(&af, path);
    if (s == CS_OK) {
        fputs(text, af.f);
        fputc('\n', af.f);
        s = cs_atomic_commit(&af);
    }
    free(text);
    return s == CS_OK ? 0 : cli_fail(s);
}

int eval_report(const eval_acc *acc, const char *path) {
    int rc;
    cJSON *root = eval_report_json(acc, stdout, &rc);
    if (!rc && path) rc = eval_write_json(root, path);
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------------------ merge */

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static int as_int(const cJSON *o, const char *key) {
    const cJSON *v = get(o, key);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

/* Add a JSON array of n integers into x. */
static int add_int64s(const cJSON *arr, int64_t *x, int n) {
    if (cJSON_GetArraySize(arr) != n) return 0;
    const cJSON *v;
    int i = 0;
    cJSON_ArrayForEach(v, arr) {
        if (!cJSON_IsNumber(v)) return 0;
        x[i++] += (int64_t)v->valuedouble;
    }
    return 1;
}

/* The first part sets the task, classes and settings up. */
static int start_from(const cJSON *part, const char *path, eval_acc *acc) {
    const char *task = cJSON_GetStringValue(get(part, "task"));
    const cJSON *classes = get(part, "classes"), *c;
    int t = -1;
    for (int i = 0; task && i < 3; i++)
        if (!strcmp(task, k_task_names[i])) t = i;
    int C = cJSON_GetArraySize(classes);
    if (t < 0 || C < 1 || !cJSON_IsObject(get(part, "settings"))) {
        cli_error("%s: not an eval report (task, classes, settings)", path);
        return CLI_EXIT_USAGE;
    }
    char **names = cli_xcalloc((size_t)C, sizeof *names);
    int i = 0;
    cJSON_ArrayForEach(c, classes) names[i++] = cJSON_IsString(c) ? c->valuestring : "";
    eval_acc_init(acc, (eval_task)t, C, names, cJSON_Duplicate(get(part, "settings"), 1));
    free(names);
    acc->listed = as_int(get(part, "images"), "listed");
    return 0;
}

static int same_run(const cJSON *part, const cJSON *first, const char *path) {
    const char *keys[] = {"task", "settings", "classes"};
    for (int i = 0; i < 3; i++)
        if (!cJSON_Compare(get(part, keys[i]), get(first, keys[i]), 1)) {
            cli_error("%s: its %s differ from the first part's; parts must come from one run", path, keys[i]);
            return 0;
        }
    if (as_int(get(part, "images"), "listed") != as_int(get(first, "images"), "listed")) {
        cli_error("%s: lists another number of images than the first part", path);
        return 0;
    }
    return 1;
}

/* Mark the classes listed in arr (NULL: none) as `value` in truth. */
static int read_truth(const cJSON *arr, int C, uint8_t value, uint8_t *truth) {
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        if (!cJSON_IsNumber(v) || v->valueint < 0 || v->valueint >= C) return 0;
        truth[v->valueint] = value;
    }
    return 1;
}

static int add_predictions(const cJSON *preds, eval_acc *acc) {
    const cJSON *p;
    float *scores = cli_xmalloc(sizeof(float) * (size_t)acc->C);
    uint8_t *truth = cli_xmalloc((size_t)acc->C);
    int ok = 1;
    cJSON_ArrayForEach(p, preds) {
        const cJSON *s = get(p, "scores"), *l = get(p, "labels"), *v;
        ok = cJSON_GetArraySize(s) == acc->C && cJSON_IsString(get(p, "image")) && cJSON_IsArray(l);
        if (!ok) break;
        int c = 0;
        cJSON_ArrayForEach(v, s) scores[c++] = (float)v->valuedouble;
        memset(truth, EVAL_NEGATIVE, (size_t)acc->C);
        ok = read_truth(l, acc->C, EVAL_POSITIVE, truth) &&
             read_truth(get(p, "difficult"), acc->C, EVAL_DIFFICULT, truth);
        if (!ok) break;
        eval_acc_predict(acc, as_int(p, "index"), get(p, "image")->valuestring, scores, truth);
    }
    free(scores);
    free(truth);
    return ok;
}

static int add_part(const cJSON *part, eval_acc *acc) {
    const cJSON *images = get(part, "images"), *e;
    acc->evaluated += as_int(images, "evaluated");
    acc->unknown_pixels += (int64_t)cJSON_GetNumberValue(get(part, "unknown_label_pixels"));
    int C = acc->C, ok = 1, c = 0;
    cJSON_ArrayForEach(e, get(part, "skipped")) {
        const char *image = cJSON_GetStringValue(get(e, "image")), *reason = cJSON_GetStringValue(get(e, "reason"));
        if (!image || !reason) return 0; /* a malformed part */
        eval_acc_skip(acc, as_int(e, "index"), image, reason);
    }
    if (acc->task == EVAL_SEG) {
        ok = cJSON_GetArraySize(get(part, "confusion")) == C;
        cJSON_ArrayForEach(e, get(part, "confusion")) ok = ok && add_int64s(e, acc->conf + (size_t)C * c++, C);
    } else if (acc->task == EVAL_EXPLAIN) {
        ok = cJSON_GetArraySize(get(part, "counts")) == C && add_int64s(get(part, "pairs"), acc->pairs, C);
        cJSON_ArrayForEach(e, get(part, "counts")) ok = ok && add_int64s(e, &acc->counts[c++][0][0], 4 * CS_EXPLAIN_STEPS);
    } else {
        ok = add_predictions(get(part, "predictions"), acc);
    }
    return ok;
}

static int by_index_skip(const void *a, const void *b) {
    return ((const eval_skip *)a)->index - ((const eval_skip *)b)->index;
}

static int by_index_pred(const void *a, const void *b) {
    return ((const eval_pred *)a)->index - ((const eval_pred *)b)->index;
}

/* Every shard 0..N-1 exactly once. */
static int check_shards(const int *seen, int n_shards, int n_parts) {
    for (int k = 0; k < n_shards; k++)
        if (seen[k] != 1) {
            cli_error("--merge: shard %d/%d is %s", k, n_shards, seen[k] ? "given twice" : "missing");
            return 0;
        }
    if (n_parts != n_shards) {
        cli_error("--merge: %d parts for %d shards", n_parts, n_shards);
        return 0;
    }
    return 1;
}

int eval_merge(const char *const *paths, int n, eval_acc *acc) {
    cJSON *first = NULL;
    int rc = 0, n_shards = 0, *seen = NULL;
    memset(acc, 0, sizeof *acc);
    for (int i = 0; i < n && !rc; i++) {
        char *text;
        size_t len;
        cs_status s = cs_read_file(paths[i], 256 << 20, &text, &len);
        if (s != CS_OK) {
            rc = cli_fail(s);
            break;
        }
        cJSON *part = cJSON_Parse(text);
        cs_free(text);
        const cJSON *shard = get(part, "shard");
        int k = cJSON_GetArraySize(shard) == 2 ? cJSON_GetArrayItem(shard, 0)->valueint : -1;
        int ns = cJSON_GetArraySize(shard) == 2 ? cJSON_GetArrayItem(shard, 1)->valueint : -1;
        if (!part || ns < 1 || k < 0 || k >= ns || (n_shards && ns != n_shards)) {
            cli_error("%s: not a partial eval report of the same sharding (eval --shard K/N --report FILE)", paths[i]);
            rc = CLI_EXIT_USAGE;
        } else if (!first) {
            rc = start_from(part, paths[i], acc);
            n_shards = ns;
            seen = cli_xcalloc((size_t)ns, sizeof *seen);
        } else if (!same_run(part, first, paths[i])) {
            rc = CLI_EXIT_USAGE;
        }
        if (!rc) {
            seen[k]++;
            if (!add_part(part, acc)) {
                cli_error("%s: malformed counts or predictions for %d classes", paths[i], acc->C);
                rc = CLI_EXIT_USAGE;
            }
        }
        if (!first && !rc) first = part;
        else cJSON_Delete(part);
    }
    if (!rc && !check_shards(seen, n_shards, n)) rc = CLI_EXIT_USAGE;
    if (!rc && acc->n_skipped) qsort(acc->skipped, (size_t)acc->n_skipped, sizeof *acc->skipped, by_index_skip);
    if (!rc && acc->n_pred) qsort(acc->pred, (size_t)acc->n_pred, sizeof *acc->pred, by_index_pred);
    cJSON_Delete(first);
    free(seen);
    return rc;
}
