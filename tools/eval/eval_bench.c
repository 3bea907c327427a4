/* eval --benchmark: the eight-benchmark protocol of the training-free
 * dense-CLIP papers (SCLIP, ClearCLIP, NACLIP), each benchmark's settings as
 * the methods' mmsegmentation configs give them. The numbers below come from
 * the files named beside them (docs/eval.md has the table with its sources);
 * the class-name lists and the 80 prompt templates are data/benchmarks/,
 * compiled in (eval_bench_files.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "eval.h"

/* One benchmark under one protocol: a model dict and test_pipeline of
 * configs/cfg_<dataset>.py over the segmentor's defaults. */
typedef struct bench_setting {
    int short_side;    /* Resize scale=(2048, S), keep_ratio (2048 in every config) */
    int window;        /* slide_crop; 0: the whole image (at short_side x short_side here) */
    int stride;        /* slide_stride */
    float prob_thd;    /* 0: none */
    float logit_scale; /* of that probability */
    float area_thd;    /* SCLIP VOC21 only */
    int pamr;          /* PAMR steps (NACLIP's default 10) */
    const char *classes; /* a data/benchmarks file */
} bench_setting;

typedef struct bench {
    const char *name, *title; /* --benchmark NAME; the table's column */
    const char *layout;       /* eval's --dataset layout */
    const char *root;         /* mmsegmentation's folder under --datasets-root */
    const char *has[2];       /* what a folder of the layout holds */
    bench_setting s[EVAL_N_PROTOCOLS];
} bench;

/* Segmentor defaults (logit scale, window, stride, PAMR): SCLIP
 * clip_segmentor.py (40, 224, 112, 0), ClearCLIP clearclip_segmentor.py
 * (50, 448, 224, none), NACLIP naclip.py (40, 224, 112, 10). The rest:
 * configs/cfg_*.py of each repository. Columns in the papers' order. */
#define SC(side, thd, scale, area, cls) {side, 224, 112, thd, scale, area, 0, "sclip/" cls}
#define CC(side, win, stride, thd, cls) {side, win, stride, thd, 50.0f, 0.0f, 0, cls}
#define NA(side, win, thd, cls) {side, win, win ? 112 : 0, thd, 40.0f, 0.0f, 10, "sclip/" cls}
static const bench k_benches[EVAL_N_BENCHMARKS] = {
    {"voc21", "VOC21", "voc", "VOCdevkit/VOC2012", {"JPEGImages", "SegmentationClass"},
     {SC(336, 0.1f, 65.0f, 0.1f, "cls_voc21.txt"), CC(448, 448, 224, 0.5f, "clearclip/cls_voc21.txt"),
      NA(336, 0, 0.1f, "cls_voc21.txt")}},
    {"context60", "Context60", "context60", "VOCdevkit/VOC2010", {"JPEGImages", "SegmentationClassContext"},
     {SC(336, 0.1f, 50.0f, 0.0f, "cls_context60.txt"), CC(448, 448, 224, 0.15f, "sclip/cls_context60.txt"),
      NA(336, 224, 0.1f, "cls_context60.txt")}},
    {"coco-object", "COCO-Object", "cocoobject", "coco_stuff164k", {"images", "annotations"},
     {SC(336, 0.1f, 50.0f, 0.0f, "cls_coco_object.txt"), CC(448, 448, 224, 0.4f, "clearclip/cls_coco_object.txt"),
      NA(336, 224, 0.1f, "cls_coco_object.txt")}},
    {"voc20", "VOC20", "voc20", "VOCdevkit/VOC2012", {"JPEGImages", "SegmentationClass"},
     {SC(336, 0.0f, 40.0f, 0.0f, "cls_voc20.txt"), CC(448, 448, 224, 0.0f, "clearclip/cls_voc20.txt"),
      NA(336, 0, 0.0f, "cls_voc20.txt")}},
    {"context59", "Context59", "context", "VOCdevkit/VOC2010", {"JPEGImages", "SegmentationClassContext"},
     {SC(336, 0.0f, 40.0f, 0.0f, "cls_context59.txt"), CC(448, 448, 224, 0.0f, "sclip/cls_context59.txt"),
      NA(336, 224, 0.0f, "cls_context59.txt")}},
    {"coco-stuff164k", "COCO-Stuff", "cocostuff", "coco_stuff164k", {"images", "annotations"},
     {SC(448, 0.0f, 40.0f, 0.0f, "cls_coco_stuff.txt"), CC(448, 448, 224, 0.0f, "sclip/cls_coco_stuff.txt"),
      NA(336, 224, 0.0f, "cls_coco_stuff.txt")}},
    {"cityscapes", "Cityscapes", "cityscapes", "cityscapes", {"leftImg8bit", "gtFine"},
     {SC(560, 0.0f, 40.0f, 0.0f, "cls_city_scapes.txt"), CC(448, 224, 224, 0.0f, "sclip/cls_city_scapes.txt"),
      NA(560, 224, 0.0f, "cls_city_scapes.txt")}},
    {"ade20k", "ADE20K", "ade20k", "ade/ADEChallengeData2016", {"images", "annotations"},
     {SC(336, 0.0f, 40.0f, 0.0f, "cls_ade20k.txt"), CC(448, 448, 224, 0.0f, "sclip/cls_ade20k.txt"),
      NA(336, 224, 0.0f, "cls_ade20k.txt")}},
};

static const char *const k_protocols[EVAL_N_PROTOCOLS] = {"sclip", "clearclip", "naclip"};

const char *eval_bench_name(int b) { return k_benches[b].name; }
const char *eval_bench_title(int b) { return k_benches[b].title; }
const char *eval_protocol_name(int p) { return k_protocols[p]; }

int eval_bench_find(const char *name) {
    for (int b = 0; b < EVAL_N_BENCHMARKS; b++)
        if (!strcmp(name, k_benches[b].name)) return b;
    if (!strcmp(name, "coco-stuff")) return 5; /* the papers' short name */
    return -1;
}

/* --protocol, else the method's own configs (SCLIP's for the methods that
 * have none: SCLIP's protocol is the one the others follow). */
int eval_protocol(const cli_args *a, cs_method method, int *protocol) {
    const char *v = cli_get(a, "protocol");
    if (!v) {
        *protocol = method == CS_METHOD_CLEARCLIP ? EVAL_PROTOCOL_CLEARCLIP
                    : method == CS_METHOD_NACLIP  ? EVAL_PROTOCOL_NACLIP
                                                  : EVAL_PROTOCOL_SCLIP;
        return 0;
    }
    for (int p = 0; p < EVAL_N_PROTOCOLS; p++)
        if (!strcmp(v, k_protocols[p])) {
            *protocol = p;
            return 0;
        }
    cli_error("--protocol '%s' is not sclip, clearclip or naclip", v);
    return CLI_EXIT_USAGE;
}

static const char *bench_file(const char *name) {
    for (int i = 0; i < eval_bench_n_files; i++)
        if (!strcmp(eval_bench_files[i].name, name)) return eval_bench_files[i].text;
    return NULL; /* not reached: the table names files of data/benchmarks */
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int eval_bench_present(int b, const char *dir) {
    for (int k = 0; k < 2; k++) {
        char *p = eval_path(dir, k_benches[b].has[k], "", "");
        int ok = is_dir(p);
        free(p);
        if (!ok) return 0;
    }
    return 1;
}

char *eval_bench_root(int b, const char *datasets_root) { return eval_path(datasets_root, k_benches[b].root, "", ""); }

/* Sets, in p->a, every option of the preset the user did not give. */
int eval_bench_apply(eval_preset *p, const cli_args *user, int b, int protocol, const char *dir) {
    const bench *bn = &k_benches[b];
    const bench_setting *s = &bn->s[protocol];
    memset(p, 0, sizeof *p);
    p->bench = b;
    p->protocol = protocol;
    p->a = *user;
    if (!eval_bench_present(b, dir)) {
        cli_error("--dataset '%s' is not a %s folder (%s: it has no %s/ and %s/)", dir, bn->name, bn->root,
                  bn->has[0], bn->has[1]);
        return CLI_EXIT_USAGE;
    }
    snprintf(p->dataset, sizeof p->dataset, "%s:%s", bn->layout, dir);
    cli_set(&p->a, "dataset", p->dataset);
    if (!cli_has(user, "class-list") && !cli_has(user, "class-embeddings")) p->classes = s->classes;
    if (!cli_has(user, "templates")) p->templates = "openai_imagenet_templates.txt";
    int windowed = s->window > 0 && !cli_has(user, "res");
    if (windowed && !cli_has(user, "window")) {
        snprintf(p->window, sizeof p->window, "%d", s->window);
        cli_set(&p->a, "window", p->window);
    }
    if (windowed && !cli_has(user, "stride")) {
        snprintf(p->stride, sizeof p->stride, "%d", s->stride);
        cli_set(&p->a, "stride", p->stride);
    }
    if (cli_has(&p->a, "window") && !cli_has(user, "short-side")) {
        snprintf(p->short_side, sizeof p->short_side, "%d", s->short_side);
        cli_set(&p->a, "short-side", p->short_side);
    }
    if (cli_has(&p->a, "window") && !cli_has(user, "max-long-side")) cli_set(&p->a, "max-long-side", "2048");
    if (!s->window && !cli_has(&p->a, "window") && !cli_has(user, "res")) {
        snprintf(p->res, sizeof p->res, "%d", s->short_side);
        cli_set(&p->a, "res", p->res);
    }
    if (s->prob_thd > 0.0f && !cli_has(user, "bg-thresh")) {
        snprintf(p->bg_thresh, sizeof p->bg_thresh, "%g", s->prob_thd);
        cli_set(&p->a, "bg-thresh", p->bg_thresh);
    }
    if (s->prob_thd > 0.0f && !cli_has(user, "logit-scale")) {
        snprintf(p->logit_scale, sizeof p->logit_scale, "%g", s->logit_scale);
        cli_set(&p->a, "logit-scale", p->logit_scale);
    }
    if (s->area_thd > 0.0f && !cli_has(user, "area-thresh")) {
        snprintf(p->area_thresh, sizeof p->area_thresh, "%g", s->area_thd);
        cli_set(&p->a, "area-thresh", p->area_thresh);
    }
    /* All three codes keep every name's logits to the softmax. */
    cli_set(&p->a, "name-logits", "1");
    if (s->pamr && !cli_has(user, "pamr")) {
        snprintf(p->pamr, sizeof p->pamr, "%d", s->pamr);
        cli_set(&p->a, "pamr", p->pamr);
    }
    return 0;
}

/* The text's lines, each split at `sep` (0: the line whole), trimmed; empty
 * names skipped. Calls add(ctx, names, n) per non-empty line. */
static cs_status each_line(const char *text, char sep, cs_status (*add)(void *, const char *const *, int),
                           void *ctx) {
    char *copy = cli_xstrdup(text), *save = NULL;
    cs_status s = CS_OK;
    for (char *line = strtok_r(copy, "\n", &save); line && s == CS_OK; line = strtok_r(NULL, "\n", &save)) {
        const char *names[256];
        int n = 0;
        for (char *tok = line, *next; tok && n < 256; tok = next) {
            next = sep ? strchr(tok, sep) : NULL;
            if (next) *next++ = '\0';
            while (*tok == ' ' || *tok == '\t') tok++;
            char *end = tok + strlen(tok);
            while (end > tok && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) *--end = '\0';
            if (*tok) names[n++] = tok;
        }
        if (n) s = add(ctx, names, n);
    }
    free(copy);
    return s;
}

static cs_status add_class(void *cl, const char *const *names, int n) { return cs_classes_add(cl, names, n); }

typedef struct template_list { char **items; int n; } template_list;

static cs_status add_template(void *ctx, const char *const *names, int n) {
    (void)n;
    template_list *t = ctx;
    t->items = cli_xrealloc(t->items, sizeof *t->items * (size_t)(t->n + 1));
    t->items[t->n++] = cli_xstrdup(names[0]);
    return CS_OK;
}

int eval_bench_classes(const eval_preset *p, const char *class_list, const char *templates, cs_classes **cl) {
    cs_status s;
    if (p->classes) {
        s = cs_classes_new(cl);
        if (s == CS_OK) s = each_line(bench_file(p->classes), ',', add_class, *cl);
    } else {
        char *list = cli_xmalloc(strlen(class_list) + 2);
        sprintf(list, "@%s", class_list);
        s = cs_classes_parse(list, cl);
        free(list);
    }
    template_list t = {0};
    if (s == CS_OK && p->templates) s = each_line(bench_file(p->templates), 0, add_template, &t);
    if (s == CS_OK) s = p->templates ? cs_classes_set_template_list(*cl, (const char *const *)t.items, t.n)
                                     : cs_classes_set_templates(*cl, templates);
    for (int i = 0; i < t.n; i++) free(t.items[i]);
    free(t.items);
    if (s == CS_OK) return 0;
    cs_classes_free(*cl);
    *cl = NULL;
    return cli_fail(s);
}
