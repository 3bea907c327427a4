/* clip-surgery eval: segmentation mIoU, multi-label mAP and explainability
 * mIoU over a dataset, with CLIP Surgery or plain CLIP; --shard K/N and
 * --merge spread a dataset over machines. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "eval.h"

static const cli_option k_options[] = {
    {"task", "T", "seg (default) | explain | multilabel", 0},
    {"method", "NAME", CLI_METHOD_HELP, 0},
    {"dataset", "LAYOUT:PATH", "a published layout: voc:DIR, context:DIR, cityscapes:DIR, cocostuff:DIR "
                               "(seg, explain); voc07:DIR, coco:FILE.json, csv:FILE (multilabel); docs/eval.md", 0},
    {"split", "S", "with voc, context, cityscapes, cocostuff: the split (default val); voc07: default test", 0},
    {"images", "DIR", "generic layout: the images (JPEG/PNG); coco:, csv: the folder of the file names", 0},
    {"masks", "DIR", "generic layout: the index masks (8-bit gray or palette PNG; 255 = ignore)", 0},
    {"image-suffix", "S", "generic layout: image stem suffix removed to pair with masks (e.g. _image)", 0},
    {"mask-suffix", "S", "generic layout: mask stem suffix (e.g. _mask)", 0},
    {"labels", "FILE", "labels.json: image-level labels (multilabel) and the class names", 0},
    {"class-list", "FILE", "class names, one class per line, synonyms comma-separated, in label order", 0},
    {"class-embeddings", "FILE.npy", "float32 [C, D] class embeddings in label order", 0},
    CLI_OPT_RES,
    {"window", "N", "seg: sliding-window inference with N x N windows", 0},
    {"stride", "N", "seg: window stride (default: half the window)", 0},
    {"short-side", "N", "seg with --window: resize the short side to N first", 0},
    {"bg-thresh", "P", "seg: pixels with top probability below P become background", 0},
    {"logit-scale", "S", "seg: scale in that probability (default: the method's, 40 or 50)", 0},
    {"pamr", "STEPS", "seg: refine the logits with PAMR, NACLIP's post-processing (its default: 10)", 0},
    {"background", "NAME", "the background class (default: the class named 'background'; none)", 0},
    {"limit", "N", "only the first N images", 0},
    {"shard", "K/N", "only images K, K+N, K+2N, ... (0 <= K < N); the report is a partial one", 0},
    {"merge", NULL, "merge the partial reports given as arguments into one report", 0},
    {"report", "FILE", "write the report as JSON", 0},
    {"save-predictions", "DIR", "seg: write each image's class-index PNG into DIR", 0},
    CLI_OPTS_IMAGE_COMMAND,
};

static const char k_usage[] =
    "usage: clip-surgery eval --model M [--task seg|explain|multilabel] [--method M]\n"
    "         (--dataset LAYOUT:PATH [--split S] [--images DIR] | --images DIR [--masks DIR]\n"
    "          [--image-suffix S] [--mask-suffix S]) [--labels labels.json] [--class-list FILE] [--limit N]\n"
    "         [--shard K/N] [--report FILE] [--save-predictions DIR]\n"
    "       clip-surgery eval --merge PART.json... [--report FILE]\n\n"
    "seg: confusion matrix (255 ignored), per-class IoU, mIoU, pixel accuracy. multilabel: per-class AP\n"
    "(all points, as scikit-learn; difficult labels left out), mAP over classes with positives.\n"
    "explain: each present class's min-max map thresholded at 0.00..1.00 (step 0.05) against its mask;\n"
    "binary mIoU at the best threshold.\n"
    "Images that cannot be read, lack a mask or labels, or whose mask size differs are skipped and listed\n"
    "in the report; mask pixels with labels beyond the classes (other than 255) are counted and ignored.\n\n"
    "Scale-out: run the N shards anywhere (e.g. a Slurm array: --shard $SLURM_ARRAY_TASK_ID/N\n"
    "--report part$SLURM_ARRAY_TASK_ID.json), then 'eval --merge part*.json --report all.json'.\n"
    "Layouts, protocols and metrics: docs/eval.md.";

typedef struct eval_run {
    eval_task task;
    cs_segment_options so; /* seg; its resolution and method serve every task */
    int R;                 /* the resolution in effect */
    cs_classes *cl;
    cs_model *m;
    const char *save_dir;
} eval_run;

static int parse_task(const char *v, eval_task *t) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(v ? v : "seg", eval_task_name((eval_task)i))) {
            *t = (eval_task)i;
            return 0;
        }
    cli_error("--task '%s' is not seg, explain or multilabel", v);
    return CLI_EXIT_USAGE;
}

static int parse_shard(const char *v, int *k, int *n) {
    *k = 0;
    *n = 0;
    if (!v) return 0;
    const char *slash = strchr(v, '/');
    if (!slash || !cli_parse_int(v, (size_t)(slash - v), 0, INT_MAX, k) ||
        !cli_parse_int(slash + 1, strlen(slash + 1), 1, INT_MAX, n) || *k >= *n) {
        cli_error("--shard '%s' is not K/N with 0 <= K < N", v);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static void add_setting(cJSON *o, const cli_args *a, const char *name) {
    const char *v = cli_get(a, name);
    if (v) cJSON_AddStringToObject(o, name, v);
}

/* What the results depend on, so that merged parts can be checked against
 * each other. */
static cJSON *settings_json(const cli_args *a, const eval_run *r, const eval_dataset *d) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", cs_method_name(r->so.method));
    cJSON_AddStringToObject(o, "dataset", d->spec);
    const char *names[] = {"model", "class-list", "class-embeddings", "templates", "images", "image-suffix",
                           "mask-suffix", "labels", "limit"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) add_setting(o, a, names[i]);
    cJSON_AddNumberToObject(o, "resolution", r->R);
    if (r->task == EVAL_SEG && r->so.window) {
        cJSON_AddNumberToObject(o, "window", r->so.window);
        cJSON_AddNumberToObject(o, "stride", r->so.stride);
        cJSON_AddNumberToObject(o, "short_side", r->so.short_side);
    }
    if (r->task == EVAL_SEG && r->so.pamr_steps > 0) cJSON_AddNumberToObject(o, "pamr_steps", r->so.pamr_steps);
    if (r->task == EVAL_SEG && r->so.bg_thresh > 0.0f) {
        cJSON_AddNumberToObject(o, "bg_thresh", r->so.bg_thresh);
        cJSON_AddNumberToObject(o, "logit_scale", r->so.logit_scale > 0.0f ? r->so.logit_scale
                                                  : cs_method_defaults_of(r->so.method).minmax ? 40.0f
                                                  : cs_method_defaults_of(r->so.method).logit_scale);
    }
    if (r->so.bg_class >= 0) cJSON_AddStringToObject(o, "background", cs_classes_name(r->cl, r->so.bg_class));
    return o;
}

/* The image and (when the task needs it) its mask; a failure is a reason
 * to skip the image, written into `why`. */
static int load_pair(const eval_dataset *d, const eval_item *it, int need_mask, cs_image *img, uint8_t **mask,
                     char *why, size_t n) {
    *mask = NULL;
    if (cs_image_load(it->image, cli_image_options(), img) != CS_OK) {
        snprintf(why, n, "image: %s", cs_last_error());
        return 0;
    }
    if (!need_mask) return 1;
    int w, h;
    if (!it->mask) snprintf(why, n, "no mask (give --masks)");
    else if (cs_label_png_load(it->mask, &w, &h, mask) != CS_OK) snprintf(why, n, "mask: %s", cs_last_error());
    else if (w != img->width || h != img->height)
        snprintf(why, n, "mask is %dx%d, the image %dx%d", w, h, img->width, img->height);
    else {
        for (size_t i = 0; d->label_map && i < (size_t)w * h; i++) (*mask)[i] = d->label_map[(*mask)[i]];
        return 1;
    }
    cs_free(*mask);
    *mask = NULL;
    cs_image_free(img);
    return 0;
}

/* An image's multi-label ground truth from its given labels. */
static void label_truth(const eval_item *it, int C, uint8_t *truth) {
    memset(truth, EVAL_NEGATIVE, (size_t)C);
    for (int k = 0; k < it->n_labels; k++)
        if (truth[it->labels[k]] != EVAL_POSITIVE)
            truth[it->labels[k]] = it->difficult && it->difficult[k] ? EVAL_DIFFICULT : EVAL_POSITIVE;
}

static int save_prediction(const char *dir, const char *name, const uint8_t *labels, int W, int H) {
    const char *dot = strrchr(name, '.');
    char path[4096];
    snprintf(path, sizeof path, "%s/%.*s.png", dir, (int)(dot ? dot - name : (long)strlen(name)), name);
    cs_status s = cs_png_write(path, W, H, 1, labels);
    return s == CS_OK ? 0 : cli_fail(s);
}

/* One image into the accumulator; returns an exit code only for failures
 * that would repeat on every image (the model, the output folder). */
static int eval_item_run(const eval_run *r, const eval_dataset *d, int index, eval_acc *acc) {
    const eval_item *it = &d->items[index];
    int C = cs_classes_count(r->cl), need_mask = r->task != EVAL_MULTILABEL || it->n_labels < 0;
    char why[1024];
    cs_image img = {0};
    uint8_t *mask;
    if (!load_pair(d, it, need_mask, &img, &mask, why, sizeof why)) {
        eval_acc_skip(acc, index, it->name, why);
        return 0;
    }
    size_t n = (size_t)img.width * img.height;
    cs_status s = CS_OK;
    int rc = 0;
    if (r->task == EVAL_SEG) {
        uint8_t *labels = cli_xmalloc(n);
        s = cs_segment(r->m, r->cl, &img, &r->so, labels);
        if (s == CS_OK) s = cs_confusion_add(acc->conf, C, mask, labels, n, CS_IGNORE_LABEL, &acc->unknown_pixels);
        if (s == CS_OK && r->save_dir) rc = save_prediction(r->save_dir, it->name, labels, img.width, img.height);
        free(labels);
    } else if (r->task == EVAL_EXPLAIN) {
        cs_explain_options o = {.resolution = r->R, .method = r->so.method, .redundant = CS_REDUNDANT_AUTO};
        cs_input in = {.image = &img};
        cs_explain_result res;
        s = cs_explain(r->m, r->cl, &in, 1, &o, &res);
        if (s == CS_OK)
            cs_explain_score(res.maps, C, mask, n, r->so.bg_class, acc->counts, acc->pairs, &acc->unknown_pixels);
        cs_explain_result_free(&res);
    } else {
        float *scores = cli_xmalloc(sizeof(float) * C);
        uint8_t *present = cli_xcalloc((size_t)C, 1);
        if (it->n_labels >= 0) label_truth(it, C, present);
        else cs_mask_classes(mask, n, C, r->so.bg_class, present);
        cs_classify_options o = {.resolution = r->R, .method = r->so.method};
        s = cs_classify(r->m, r->cl, &img, &o, scores);
        if (s == CS_OK) eval_acc_predict(acc, index, it->name, scores, present);
        free(scores);
        free(present);
    }
    if (s != CS_OK) rc = cli_fail(s);
    if (!rc) acc->evaluated++;
    cs_free(mask);
    cs_image_free(&img);
    return rc;
}

/* "eval: 12/100 images, 0.8 s/image, ETA 1:10" on stderr: in place on a
 * terminal, otherwise about twenty lines per run. */
static void progress(int done, int total, double started) {
    int tty = isatty(2), every = total / 20 > 0 ? total / 20 : 1;
    if (cli_quiet() || (!tty && done % every && done != total)) return;
    double per = done ? (cs_now() - started) / done : 0.0;
    int eta = (int)lround(per * (total - done));
    fprintf(stderr, "%seval: %d/%d images, %.2f s/image, ETA %d:%02d%s", tty ? "\r" : "", done, total, per,
            eta / 60, eta % 60, tty && done < total ? "" : "\n");
}

static int run_dataset(const cli_args *a, eval_run *r, eval_dataset *d, eval_acc *acc) {
    int limit, k, n;
    if (!cli_int(a, "limit", d->n, 1, 1 << 30, &limit)) return CLI_EXIT_USAGE;
    int rc = parse_shard(cli_get(a, "shard"), &k, &n);
    if (rc) return rc;
    int listed = limit < d->n ? limit : d->n, step = n ? n : 1, total = 0;
    for (int i = k; i < listed; i += step) total++;
    int C = cs_classes_count(r->cl);
    char **names = cli_xcalloc((size_t)C, sizeof *names);
    for (int c = 0; c < C; c++) names[c] = (char *)cs_classes_name(r->cl, c);
    eval_acc_init(acc, r->task, C, names, settings_json(a, r, d));
    free(names);
    acc->listed = listed;
    acc->shard_k = k;
    acc->shard_n = n;
    if (r->save_dir) {
        cs_status s = cs_mkdirs(r->save_dir);
        if (s != CS_OK) return cli_fail(s);
    }
    double started = cs_now();
    int done = 0;
    for (int i = k; i < listed && !rc; i += step) {
        rc = eval_item_run(r, d, i, acc);
        progress(++done, total, started);
    }
    return rc;
}

/* The class list: --class-list, else the dataset's own names;
 * --class-embeddings as given. At most 255 classes (a label PNG's). */
static int load_classes(const cli_args *a, eval_run *r, const eval_dataset *d) {
    char *list = NULL;
    int rc = 0;
    if (cli_has(a, "class-list")) {
        list = cli_xmalloc(strlen(cli_get(a, "class-list")) + 2);
        sprintf(list, "@%s", cli_get(a, "class-list"));
    } else if (d->n_names && !cli_has(a, "class-embeddings")) {
        cs_status s = cs_classes_from_names((const char *const *)d->names, d->n_names, &r->cl);
        if (s == CS_OK) s = cs_classes_set_templates(r->cl, cli_get(a, "templates"));
        if (s == CS_OK) s = cs_classes_embed(r->cl, r->m, NULL, NULL);
        rc = s == CS_OK ? 0 : cli_fail(s);
    } else if (!cli_has(a, "class-embeddings")) {
        cli_error("eval needs --class-list FILE (or --class-embeddings; or a dataset that names its classes)");
        return CLI_EXIT_USAGE;
    }
    if (!r->cl && !rc) rc = cli_classes_load(a, r->m, list, 0, &r->cl);
    free(list);
    if (!rc && cs_classes_count(r->cl) > 255) {
        cli_error("%d classes; at most 255 fit a label PNG", cs_classes_count(r->cl));
        rc = CLI_EXIT_USAGE;
    }
    return rc;
}

/* seg and explain need masks; a layout of image-level labels alone has none. */
static int check_task(const eval_run *r, const eval_dataset *d) {
    if (r->task == EVAL_MULTILABEL || d->has_masks) return 0;
    cli_error("%s has no masks: --task %s needs them (--task multilabel, or give --masks)", d->spec,
              eval_task_name(r->task));
    return CLI_EXIT_USAGE;
}

static int evaluate(const cli_args *a) {
    eval_run r;
    memset(&r, 0, sizeof r);
    eval_dataset d;
    eval_acc acc;
    memset(&acc, 0, sizeof acc);
    int rc = parse_task(cli_get(a, "task"), &r.task);
    if (rc) return rc;
    r.save_dir = cli_get(a, "save-predictions");
    if (r.save_dir && r.task != EVAL_SEG) {
        cli_error("--save-predictions goes with --task seg (multilabel scores are in the report)");
        return CLI_EXIT_USAGE;
    }
    if ((rc = eval_dataset_load(a, &d)) || (rc = check_task(&r, &d))) {
        eval_dataset_free(&d);
        return rc;
    }
    rc = cli_load_model(a, &r.m);
    if (!rc) rc = load_classes(a, &r, &d);
    if (!rc) rc = cli_segment_options(a, r.cl, &r.so);
    r.R = r.so.resolution ? r.so.resolution : (r.m ? cs_model_config(r.m)->image_resolution : 0);
    if (!rc) rc = eval_dataset_resolve_labels(&d, r.cl);
    if (!rc) rc = run_dataset(a, &r, &d, &acc);
    if (!rc) rc = eval_report(&acc, cli_get(a, "report"));
    eval_acc_free(&acc);
    cs_classes_free(r.cl);
    eval_dataset_free(&d);
    if (r.m) cs_model_free(r.m);
    return rc;
}

static int merge(const cli_args *a) {
    if (a->n_positional < 1) {
        cli_error("--merge needs the partial reports (eval --shard K/N --report FILE) as arguments");
        return CLI_EXIT_USAGE;
    }
    eval_acc acc;
    int rc = eval_merge(a->positional, a->n_positional, &acc);
    if (!rc) rc = eval_report(&acc, cli_get(a, "report"));
    eval_acc_free(&acc);
    return rc;
}

static int run(cli_ctx *c) {
    if (cli_has(&c->a, "merge")) return merge(&c->a);
    if (c->a.n_positional) {
        cli_error("unexpected argument '%s' (partial reports go with --merge)", c->a.positional[0]);
        return CLI_EXIT_USAGE;
    }
    return evaluate(&c->a);
}

/* --shard before any file is read (run_dataset parses it again). */
static int check(const cli_args *a) {
    int k, n;
    return parse_shard(cli_get(a, "shard"), &k, &n);
}

const cli_command cmd_eval = {
    "eval", "mIoU / mAP / explainability mIoU over a dataset", CLI_OPTIONS(k_options), k_usage, CLI_POSITIONAL,
    check, run,
};
