/* clip-surgery eval: segmentation mIoU, multi-label mAP and explainability
 * mIoU over a dataset, with any method; --benchmark runs the eight-benchmark
 * protocol of the training-free papers (eval_bench.c); --shard K/N and
 * --merge spread a dataset over machines. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "eval.h"

static const cli_option k_options[] = {
    {"task", "T", "seg (default) | explain | multilabel", 0},
    {"method", "NAME", CLI_METHOD_HELP, 0},
    {"dataset", "LAYOUT:PATH", "a published layout: voc:DIR, voc20:DIR, context:DIR (59 classes), context60:DIR, "
                               "cityscapes:DIR, cocostuff:DIR, cocoobject:DIR, ade20k:DIR (seg, explain); voc07:DIR, "
                               "coco:FILE.json, csv:FILE (multilabel); with --benchmark: the folder alone; docs/eval.md", 0},
    {"split", "S", "the split (default val; ade20k: validation; voc07: test)", 0},
    {"benchmark", "NAME", "seg: the settings of a benchmark of the training-free papers: voc21, context60, coco-object, "
                          "voc20, context59, coco-stuff164k, cityscapes, ade20k; or all (with --datasets-root)", 0},
    {"protocol", "P", "with --benchmark: whose config files: sclip, clearclip, naclip (default: the method's own; "
                      "sclip for the others)", 0},
    {"datasets-root", "DIR", "with --benchmark: the folder holding mmsegmentation's data/ layout (VOCdevkit/VOC2012, "
                             "VOCdevkit/VOC2010, coco_stuff164k, cityscapes, ade/ADEChallengeData2016)", 0},
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
    {"max-long-side", "N", "with --short-side: the long side at most N (mmsegmentation's Resize scale=(N, short side))", 0},
    {"bg-thresh", "P", "seg: pixels with top probability below P become background", 0},
    {"logit-scale", "S", "seg: scale in that probability (default: the method's, 40 or 50)", 0},
    {"pamr", "STEPS", "seg: refine the logits with PAMR, NACLIP's post-processing (its default: 10)", 0},
    {"area-thresh", "F", "seg: SCLIP's area_thd: drop a class covering at most F of the image's non-background "
                         "prediction (its pixels take their next class)", 0},
    {"name-logits", NULL, "seg: every synonym keeps its own logits to the end, the threshold's softmax over all "
                          "names (as the papers' code; --benchmark sets it)", 0},
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
    "       clip-surgery eval --model M --method M --benchmark NAME (--dataset DIR | --datasets-root DIR) [--protocol P]\n"
    "       clip-surgery eval --model M --method M --benchmark all --datasets-root DIR [--report FILE]\n"
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
    const eval_preset *preset; /* --benchmark, or NULL */
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
    const eval_preset *p = r->preset;
    if (p) {
        cJSON_AddStringToObject(o, "benchmark", eval_bench_name(p->bench));
        cJSON_AddStringToObject(o, "protocol", eval_protocol_name(p->protocol));
        if (p->classes) cJSON_AddStringToObject(o, "class_list", p->classes);
        if (p->templates) cJSON_AddStringToObject(o, "template_list", p->templates);
    }
    const char *names[] = {"model", "class-list", "class-embeddings", "templates", "images", "image-suffix",
                           "mask-suffix", "labels", "limit"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) add_setting(o, a, names[i]);
    cJSON_AddNumberToObject(o, "resolution", r->R);
    if (r->task == EVAL_SEG && r->so.window) {
        cJSON_AddNumberToObject(o, "window", r->so.window);
        cJSON_AddNumberToObject(o, "stride", r->so.stride);
        cJSON_AddNumberToObject(o, "short_side", r->so.short_side);
        if (r->so.max_long_side) cJSON_AddNumberToObject(o, "max_long_side", r->so.max_long_side);
    }
    if (r->task == EVAL_SEG && r->so.pamr_steps > 0) cJSON_AddNumberToObject(o, "pamr_steps", r->so.pamr_steps);
    if (r->task == EVAL_SEG && r->so.name_logits) cJSON_AddNumberToObject(o, "name_logits", 1);
    if (r->task == EVAL_SEG && r->so.area_thresh > 0.0f) cJSON_AddNumberToObject(o, "area_thresh", r->so.area_thresh);
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

/* Images per vision-tower pass, as explain's: the jobs encode the images
 * of a batch that share a shape together. */
#define EVAL_BATCH 4

/* A listed image, decoded with its mask, or the reason it is skipped. */
typedef struct eval_slot {
    int index, ok;
    cs_image img;
    uint8_t *mask;
    char why[1024];
} eval_slot;

/* Up to EVAL_BATCH consecutive images of the run (K, K+N, ... with --shard). */
typedef struct eval_batch {
    const eval_run *r;
    const eval_dataset *d;
    int first, step, listed; /* the images first, first + step, ... below listed */
    int n;
    eval_slot slot[EVAL_BATCH];
} eval_batch;

/* Decode a batch's images and masks (on the decode thread, or here). */
static void *batch_load(void *arg) {
    eval_batch *b = arg;
    b->n = 0;
    for (int i = b->first; i < b->listed && b->n < EVAL_BATCH; i += b->step) {
        eval_slot *s = &b->slot[b->n++];
        const eval_item *it = &b->d->items[i];
        memset(s, 0, sizeof *s);
        s->index = i;
        s->ok = load_pair(b->d, it, b->r->task != EVAL_MULTILABEL || it->n_labels < 0, &s->img, &s->mask, s->why,
                          sizeof s->why);
    }
    return NULL;
}

static void batch_free(eval_batch *b) {
    for (int k = 0; k < b->n; k++) {
        cs_free(b->slot[k].mask);
        cs_image_free(&b->slot[k].img);
    }
    b->n = 0;
}

/* explain: the batch's images through cs_explain together, each scored. */
static cs_status explain_batch(const eval_run *r, eval_batch *b, eval_acc *acc) {
    /* no maps: scoring draws the mask's classes only, a block at a time */
    cs_explain_options o = {.resolution = r->R, .method = r->so.method, .redundant = CS_REDUNDANT_AUTO, .no_maps = 1};
    cs_input in[EVAL_BATCH];
    cs_explain_result res[EVAL_BATCH];
    int n = 0;
    memset(in, 0, sizeof in);
    for (int k = 0; k < b->n; k++)
        if (b->slot[k].ok) in[n++].image = &b->slot[k].img;
    cs_status s = n ? cs_explain(r->m, r->cl, in, n, &o, res) : CS_OK;
    if (s != CS_OK) return s; /* cs_explain freed the results */
    for (int k = 0, j = 0; k < b->n; k++) {
        eval_slot *sl = &b->slot[k];
        if (!sl->ok) continue;
        if (s == CS_OK)
            s = cs_explain_score(&res[j], sl->mask, r->so.bg_class, acc->counts, acc->pairs, &acc->unknown_pixels);
        cs_explain_result_free(&res[j++]);
    }
    return s;
}

/* multilabel: the batch's images through cs_classify together, each
 * image's scores against its truth. */
static cs_status classify_batch(const eval_run *r, const eval_dataset *d, eval_batch *b, eval_acc *acc) {
    int C = acc->C, n = 0;
    cs_image img[EVAL_BATCH];
    for (int k = 0; k < b->n; k++)
        if (b->slot[k].ok) img[n++] = b->slot[k].img;
    float *scores = cli_xmalloc(sizeof(float) * C * EVAL_BATCH);
    uint8_t *present = cli_xmalloc((size_t)C);
    cs_classify_options o = {.resolution = r->R, .method = r->so.method};
    cs_status s = n ? cs_classify(r->m, r->cl, img, n, &o, scores) : CS_OK;
    for (int k = 0, j = 0; s == CS_OK && k < b->n; k++) {
        eval_slot *sl = &b->slot[k];
        const eval_item *it = &d->items[sl->index];
        if (!sl->ok) continue;
        if (it->n_labels >= 0) label_truth(it, C, present);
        else cs_mask_classes(sl->mask, (size_t)sl->img.width * sl->img.height, C, r->so.bg_class, present);
        eval_acc_predict(acc, sl->index, it->name, scores + (size_t)j++ * C, present);
    }
    free(scores);
    free(present);
    return s;
}

/* seg: the batch's images through cs_segment together; *labels: theirs,
 * one image after another. */
static cs_status segment_batch(const eval_run *r, const eval_batch *b, uint8_t **labels) {
    cs_image img[EVAL_BATCH];
    size_t total = 0;
    int n = 0;
    for (int k = 0; k < b->n; k++)
        if (b->slot[k].ok) {
            img[n++] = b->slot[k].img;
            total += (size_t)b->slot[k].img.width * b->slot[k].img.height;
        }
    *labels = cli_xmalloc(total ? total : 1);
    return n ? cs_segment(r->m, r->cl, img, n, &r->so, *labels) : CS_OK;
}

/* seg: one image's labels into the accumulator (and saved); returns an
 * exit code only for failures that would repeat on every image (the
 * output folder). */
static int segment_add(const eval_run *r, const eval_dataset *d, const eval_slot *sl, const uint8_t *labels,
                       eval_acc *acc) {
    size_t n = (size_t)sl->img.width * sl->img.height;
    cs_status s = cs_confusion_add(acc->conf, acc->C, sl->mask, labels, n, CS_IGNORE_LABEL, &acc->unknown_pixels);
    if (s != CS_OK) return cli_fail(s);
    return r->save_dir ? save_prediction(r->save_dir, d->items[sl->index].name, labels, sl->img.width, sl->img.height)
                       : 0;
}

/* A decoded batch into the accumulator, in the images' order (skips and
 * predictions are listed as the one-by-one run lists them). */
static int batch_run(const eval_run *r, const eval_dataset *d, eval_batch *b, eval_acc *acc) {
    uint8_t *labels = NULL; /* seg: the batch's labels */
    cs_status s = r->task == EVAL_EXPLAIN ? explain_batch(r, b, acc)
                  : r->task == EVAL_MULTILABEL ? classify_batch(r, d, b, acc)
                                               : segment_batch(r, b, &labels);
    int rc = s == CS_OK ? 0 : cli_fail(s);
    const uint8_t *next = labels;
    for (int k = 0; k < b->n && !rc; k++) {
        eval_slot *sl = &b->slot[k];
        if (!sl->ok) {
            eval_acc_skip(acc, sl->index, d->items[sl->index].name, sl->why);
            continue;
        }
        if (r->task == EVAL_SEG) {
            rc = segment_add(r, d, sl, next, acc);
            next += (size_t)sl->img.width * sl->img.height;
        }
        if (!rc) acc->evaluated++;
    }
    free(labels);
    return rc;
}

/* "eval: 12/100 images, 0.812 s/image, ETA 1:10" on stderr: in place on a
 * terminal, otherwise about twenty lines per run. The time per image is
 * the loop's (decoding included; loading the model and embedding the
 * classes not): bench/eval_rate.sh reads the last line's. */
static void progress(int done, int total, double started) {
    int tty = isatty(2), every = total / 20 > 0 ? total / 20 : 1;
    if (cli_quiet() || (!tty && done % every && done != total)) return;
    double per = done ? (cs_now() - started) / done : 0.0;
    int eta = (int)lround(per * (total - done));
    fprintf(stderr, "%seval: %d/%d images, %.3f s/image, ETA %d:%02d%s", tty ? "\r" : "", done, total, per,
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
    /* The next batch decodes on its own thread while this one computes: at
     * most two batches of images in memory. */
    eval_batch *b = cli_xcalloc(2, sizeof *b);
    for (int j = 0; j < 2; j++) b[j] = (eval_batch){.r = r, .d = d, .step = step, .listed = listed};
    b[0].first = k;
    batch_load(&b[0]);
    for (int cur = 0; b[cur].n && !rc; cur ^= 1) {
        eval_batch *next = &b[cur ^ 1];
        next->first = b[cur].slot[b[cur].n - 1].index + step;
        pthread_t decoder;
        int threaded = pthread_create(&decoder, NULL, batch_load, next) == 0;
        rc = batch_run(r, d, &b[cur], acc);
        if (threaded) pthread_join(decoder, NULL);
        else batch_load(next); /* no thread to be had: decode here */
        for (int j = 0; j < b[cur].n; j++) progress(++done, total, started);
        batch_free(&b[cur]);
    }
    batch_free(&b[0]);
    batch_free(&b[1]);
    free(b);
    return rc;
}

/* The class list: --class-list, else the dataset's own names;
 * --class-embeddings as given. At most 255 classes (a label PNG's). */
static int load_classes(const cli_args *a, eval_run *r, const eval_dataset *d) {
    char *list = NULL;
    int rc = 0;
    if (r->preset && !cli_has(a, "class-embeddings")) {
        rc = eval_bench_classes(r->preset, cli_get(a, "class-list"), cli_get(a, "templates"), &r->cl);
        cs_status s = rc ? CS_OK : cs_classes_embed(r->cl, r->m, NULL, NULL);
        if (s != CS_OK) rc = cli_fail(s);
    } else if (cli_has(a, "class-list")) {
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

/* A loaded dataset with the model: classes, options, the run into acc. */
static int run_loaded(cli_args *a, const eval_preset *p, cs_model *m, eval_task task, eval_dataset *d,
                      eval_acc *acc) {
    eval_run r;
    memset(&r, 0, sizeof r);
    r.task = task;
    r.m = m;
    r.preset = p;
    r.save_dir = cli_get(a, "save-predictions");
    cs_method method;
    if (!cli_method(a, &method)) return CLI_EXIT_USAGE;
    /* Before the first image, so that the run fails with one line. */
    if (cs_method_defaults_of(method).needs_vit && cs_model_config(m)->vision_kind != CS_VISION_VIT) {
        cli_error("method %s needs a ViT model (this one is a ResNet)", cs_method_name(method));
        return CLI_EXIT_USAGE;
    }
    int rc = load_classes(a, &r, d);
    /* The presets with a threshold have background as label 0, whatever its names. */
    if (!rc && p && (p->bg_thresh[0] || p->area_thresh[0]) && !cli_has(a, "background")) cli_set(a, "background", cs_classes_name(r.cl, 0));
    if (!rc) rc = cli_segment_options(a, r.cl, &r.so);
    r.R = r.so.resolution ? r.so.resolution : (r.m ? cs_model_config(r.m)->image_resolution : 0);
    if (!rc) rc = eval_dataset_resolve_labels(d, r.cl);
    if (!rc) rc = run_dataset(a, &r, d, acc);
    cs_classes_free(r.cl);
    return rc;
}

static int evaluate(cli_args *a) {
    eval_task task;
    eval_dataset d;
    eval_acc acc;
    memset(&acc, 0, sizeof acc);
    int rc = parse_task(cli_get(a, "task"), &task);
    if (rc) return rc;
    if (cli_has(a, "save-predictions") && task != EVAL_SEG) {
        cli_error("--save-predictions goes with --task seg (multilabel scores are in the report)");
        return CLI_EXIT_USAGE;
    }
    eval_run r = {.task = task};
    if ((rc = eval_dataset_load(a, &d)) || (rc = check_task(&r, &d))) {
        eval_dataset_free(&d);
        return rc;
    }
    cs_model *m = NULL;
    rc = cli_load_model(a, &m);
    if (!rc) rc = run_loaded(a, NULL, m, task, &d, &acc);
    if (!rc) rc = eval_report(&acc, cli_get(a, "report"));
    eval_acc_free(&acc);
    eval_dataset_free(&d);
    if (m) cs_model_free(m);
    return rc;
}

/* ------------------------------------------------------------ --benchmark */

/* A preset's dataset: loaded, and of the benchmark's layout (its first
 * image has its mask: a COCO-Stuff folder without COCO-Object's converted
 * masks is not a coco-object one). */
static int load_bench_dataset(eval_preset *p, eval_dataset *d) {
    int rc = eval_dataset_load(&p->a, d);
    if (!rc && d->items[0].mask && access(d->items[0].mask, R_OK) != 0) {
        cli_error("%s is not a %s layout: %s is missing", cli_get(&p->a, "dataset"), eval_bench_name(p->bench),
                  d->items[0].mask);
        rc = CLI_EXIT_USAGE;
    }
    if (rc) eval_dataset_free(d);
    return rc;
}

static int bench_usage(const cli_args *a, int all) {
    eval_task task;
    if (parse_task(cli_get(a, "task"), &task)) return CLI_EXIT_USAGE;
    if (task != EVAL_SEG) {
        cli_error("--benchmark goes with --task seg (the papers' mIoU)");
        return CLI_EXIT_USAGE;
    }
    const char *one_only[] = {"shard", "save-predictions", "dataset"};
    for (int i = 0; all && i < 3; i++)
        if (cli_has(a, one_only[i])) {
            cli_error("--%s goes with one benchmark, not --benchmark all", one_only[i]);
            return CLI_EXIT_USAGE;
        }
    if (all && !cli_has(a, "datasets-root")) {
        cli_error("--benchmark all needs --datasets-root DIR (the folder of mmsegmentation's data/ layout)");
        return CLI_EXIT_USAGE;
    }
    if (!all && !cli_has(a, "dataset") && !cli_has(a, "datasets-root")) {
        cli_error("--benchmark %s needs --dataset DIR or --datasets-root DIR", cli_get(a, "benchmark"));
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "images") || cli_has(a, "labels")) {
        cli_error("--%s does not go with --benchmark (the preset names the layout)",
                  cli_has(a, "images") ? "images" : "labels");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static int benchmark_one(cli_args *a, int b, int protocol) {
    const char *dir = cli_get(a, "dataset");
    char *root = dir ? NULL : eval_bench_root(b, cli_get(a, "datasets-root"));
    eval_preset *p = cli_xcalloc(1, sizeof *p);
    eval_dataset d;
    eval_acc acc;
    memset(&acc, 0, sizeof acc);
    cs_model *m = NULL;
    int rc = eval_bench_apply(p, a, b, protocol, dir ? dir : root);
    if (!rc) rc = load_bench_dataset(p, &d);
    if (!rc) {
        rc = cli_load_model(&p->a, &m);
        if (!rc) rc = run_loaded(&p->a, p, m, EVAL_SEG, &d, &acc);
        if (!rc) rc = eval_report(&acc, cli_get(a, "report"));
        eval_dataset_free(&d);
    }
    eval_acc_free(&acc);
    if (m) cs_model_free(m);
    free(root);
    free(p);
    return rc;
}

/* The summary: one column per benchmark in the papers' order, and the mean
 * over the evaluated ones. */
static void print_summary(const char *method, int protocol, const double *miou, const int *present) {
    int n = 0;
    double sum = 0.0;
    printf("mIoU (%%), method %s, protocol %s\n", method, eval_protocol_name(protocol));
    for (int b = 0; b < EVAL_N_BENCHMARKS; b++) printf("%*s", (int)strlen(eval_bench_title(b)) + 2, eval_bench_title(b));
    printf("%7s\n", "Avg");
    for (int b = 0; b < EVAL_N_BENCHMARKS; b++) {
        int w = (int)strlen(eval_bench_title(b)) + 2;
        if (present[b] && !isnan(miou[b])) {
            printf("%*.2f", w, 100.0 * miou[b]);
            sum += miou[b];
            n++;
        } else {
            printf("%*s", w, "-");
        }
    }
    if (n) printf("%7.2f\n", 100.0 * sum / n);
    else printf("%7s\n", "-");
    if (n < EVAL_N_BENCHMARKS) printf("(Avg over the %d of %d benchmarks evaluated)\n", n, EVAL_N_BENCHMARKS);
}

typedef struct bench_all {
    eval_preset *p[EVAL_N_BENCHMARKS];
    eval_dataset d[EVAL_N_BENCHMARKS];
    int present[EVAL_N_BENCHMARKS];
    double miou[EVAL_N_BENCHMARKS];
    cJSON *reports[EVAL_N_BENCHMARKS];
} bench_all;

/* Every dataset found under the root, loaded and checked before the model
 * runs, so a wrong folder fails at once and nothing is written. */
static int load_all(cli_args *a, int protocol, bench_all *all) {
    char *dir[EVAL_N_BENCHMARKS];
    int rc = 0, found = 0;
    for (int b = 0; b < EVAL_N_BENCHMARKS; b++) {
        struct stat st;
        dir[b] = eval_bench_root(b, cli_get(a, "datasets-root"));
        all->present[b] = stat(dir[b], &st) == 0 && S_ISDIR(st.st_mode);
        found += all->present[b];
    }
    if (!found) {
        cli_error("--datasets-root '%s' holds none of the eight datasets (docs/eval.md lists the folders)",
                  cli_get(a, "datasets-root"));
        rc = CLI_EXIT_USAGE;
    }
    for (int b = 0; b < EVAL_N_BENCHMARKS && !rc; b++) {
        if (!all->present[b]) {
            cli_note("%s: skipped, %s not found", eval_bench_name(b), dir[b]);
            continue;
        }
        all->p[b] = cli_xcalloc(1, sizeof *all->p[b]);
        rc = eval_bench_apply(all->p[b], a, b, protocol, dir[b]);
        if (!rc) rc = load_bench_dataset(all->p[b], &all->d[b]);
        if (rc) all->present[b] = 0;
        for (int k = b + 1; rc && k < EVAL_N_BENCHMARKS; k++) all->present[k] = 0;
    }
    for (int b = 0; b < EVAL_N_BENCHMARKS; b++) free(dir[b]);
    return rc;
}

static cJSON *summary_json(const cli_args *a, int protocol, const bench_all *all) {
    cJSON *o = cJSON_CreateObject(), *miou = cJSON_CreateObject(), *reports = cJSON_CreateObject();
    cs_method method = CS_METHOD_SURGERY;
    cli_method(a, &method);
    cJSON_AddStringToObject(o, "method", cs_method_name(method));
    cJSON_AddStringToObject(o, "protocol", eval_protocol_name(protocol));
    double sum = 0.0;
    int n = 0;
    for (int b = 0; b < EVAL_N_BENCHMARKS; b++) {
        int ok = all->present[b] && !isnan(all->miou[b]);
        cJSON_AddItemToObject(miou, eval_bench_name(b), ok ? cJSON_CreateNumber(all->miou[b]) : cJSON_CreateNull());
        if (ok) sum += all->miou[b], n++;
        if (all->reports[b]) cJSON_AddItemReferenceToObject(reports, eval_bench_name(b), all->reports[b]);
    }
    cJSON_AddItemToObject(o, "miou", miou);
    cJSON_AddItemToObject(o, "avg", n ? cJSON_CreateNumber(sum / n) : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "benchmarks_evaluated", n);
    cJSON_AddItemToObject(o, "reports", reports);
    return o;
}

static int benchmark_all(cli_args *a, int protocol) {
    bench_all *all = cli_xcalloc(1, sizeof *all);
    cs_model *m = NULL;
    int rc = load_all(a, protocol, all);
    if (!rc) rc = cli_load_model(a, &m);
    FILE *sink = rc ? NULL : fopen("/dev/null", "w");
    if (!rc && !sink) {
        cli_error("/dev/null: cannot open");
        rc = CLI_EXIT_RUNTIME;
    }
    for (int b = 0; b < EVAL_N_BENCHMARKS && !rc; b++) {
        if (!all->present[b]) continue;
        eval_acc acc;
        memset(&acc, 0, sizeof acc);
        rc = run_loaded(&all->p[b]->a, all->p[b], m, EVAL_SEG, &all->d[b], &acc);
        if (!rc) all->reports[b] = eval_report_json(&acc, sink, &rc);
        if (!rc) {
            double *iou = cli_xmalloc(sizeof(double) * (size_t)acc.C);
            cs_seg_scores sc;
            cs_confusion_scores(acc.conf, acc.C, iou, &sc);
            all->miou[b] = sc.miou;
            free(iou);
            cli_note("%s: mIoU %.2f (%d images evaluated, %d skipped)", eval_bench_name(b), 100.0 * sc.miou,
                     acc.evaluated, acc.n_skipped);
        }
        eval_acc_free(&acc);
    }
    if (sink) fclose(sink);
    if (!rc) {
        cs_method method = CS_METHOD_SURGERY;
        cli_method(a, &method);
        print_summary(cs_method_name(method), protocol, all->miou, all->present);
        if (cli_has(a, "report")) {
            cJSON *o = summary_json(a, protocol, all);
            rc = eval_write_json(o, cli_get(a, "report"));
            cJSON_Delete(o);
        }
    }
    for (int b = 0; b < EVAL_N_BENCHMARKS; b++) {
        if (all->present[b]) eval_dataset_free(&all->d[b]);
        cJSON_Delete(all->reports[b]);
        free(all->p[b]);
    }
    free(all);
    if (m) cs_model_free(m);
    return rc;
}

static int benchmark(cli_args *a) {
    const char *name = cli_get(a, "benchmark");
    int b = strcmp(name, "all") ? eval_bench_find(name) : EVAL_N_BENCHMARKS, protocol;
    if (b < 0) {
        cli_error("--benchmark '%s' is not voc21, context60, coco-object, voc20, context59, coco-stuff164k, "
                  "cityscapes, ade20k or all", name);
        return CLI_EXIT_USAGE;
    }
    cs_method method;
    int rc = bench_usage(a, b == EVAL_N_BENCHMARKS);
    if (!rc && !cli_method(a, &method)) rc = CLI_EXIT_USAGE;
    if (!rc) rc = eval_protocol(a, method, &protocol);
    if (rc) return rc;
    return b == EVAL_N_BENCHMARKS ? benchmark_all(a, protocol) : benchmark_one(a, b, protocol);
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
    if (cli_has(&c->a, "benchmark")) return benchmark(&c->a);
    const char *bench_only[] = {"protocol", "datasets-root"};
    for (int i = 0; i < 2; i++)
        if (cli_has(&c->a, bench_only[i])) {
            cli_error("--%s goes with --benchmark", bench_only[i]);
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
