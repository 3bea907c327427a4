/* clip-surgery points: point prompts for SAM from CLIP Surgery maps, as JSON
 * (DESIGN.md section 8), and with -o DIR the points drawn on the image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "base/fileio.h"
#include "cli.h"
#include "formats/npy.h"

static const cli_option k_options[] = {
    {"image", "FILE", "input image (JPEG/PNG); repeat it, or give a folder", 1},
    {"pixels", "FILE.npy", "normalized pixels float32 [3,R,R] or [1,3,R,R] instead of an image", 0},
    {"size", "WxH", "with --pixels: the image size the points refer to (required)", 0},
    CLI_OPT_RES,
    {"classes", "LIST", "class names: a,b,c or @FILE; class-weighted redundancy by default", 0},
    CLI_OPT_CLASS_EMBEDDINGS,
    {"target", "NAMES", "with --classes: the classes to give points for (a,b; default all)", 0},
    {"text", "T", "one text, or \"a+b\" for combined targets; redundancy from the empty prompt", 0},
    {"t", "X", "threshold on the normalized map (default 0.8)", 0},
    {"redundant", "MODE", "classes | empty", 0},
    {"npy", NULL, "also write points_K.npy (int32 [2n, 2]) and labels_K.npy (uint8 [2n]) into -o DIR", 0},
    {"output", "DIR", "output folder (-o): NAME_points.png per target, the points on the image", 0},
    CLI_OPTS_IMAGE_COMMAND,
};

static const char k_usage[] =
    "usage: clip-surgery points --model M (--image FILE | --pixels FILE.npy --size WxH) [--res R]\n"
    "         (--classes LIST [--target NAMES] | --text T) [--t 0.8] [--redundant classes|empty]\n"
    "         [-o DIR [--npy]]\n\n"
    "Prints {\"image_size\": [W, H], \"targets\": {NAME: {\"points\": [[x, y], ...], \"labels\": [1, ..., 0, ...]}}}:\n"
    "positives (label 1) then negatives (label 0). --text \"a+b\": negatives from the mean map, then\n"
    "each text's positives. Several images (or a folder): {IMAGE: {...}, ...}, and one subfolder\n"
    "of -o DIR per image. -o DIR writes NAME_points.png: green stars positive, red negative.\n"
    "Example: clip-surgery points --model ViT-B/16 --image photo.jpg --text \"person+bench\" -o out/";

/* The points of one target, and where its files go. */
typedef struct target {
    const char *name; /* the class name or the text */
    const char *stem; /* its file-name stem */
    int index;        /* K of points_K.npy */
    int n;
    int32_t *points;  /* [n, 2] */
    uint8_t *labels;  /* [n] */
} target;

typedef struct targets {
    int n;
    target *t;
    char **stems; /* one per class (or one for the combined text) */
    int n_stems;
} targets;

static void targets_free(targets *ts) {
    for (int i = 0; i < ts->n; i++) {
        free(ts->t[i].points);
        free(ts->t[i].labels);
    }
    for (int i = 0; i < ts->n_stems; i++) cs_free(ts->stems[i]);
    free(ts->stems);
    free(ts->t);
    memset(ts, 0, sizeof *ts);
}

/* Which classes get points: --target names, or all. */
static int select_targets(const cli_args *a, const cli_class_set *cl, int *chosen) {
    const char *t = cli_get(a, "target");
    for (int c = 0; c < cl->C; c++) chosen[c] = !t;
    if (!t) return 0;
    char *copy = cli_xstrdup(t), *save = NULL;
    int rc = 0;
    for (char *name = strtok_r(copy, ",", &save); name && !rc; name = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int c = 0; c < cl->C; c++)
            if (!strcmp(cl->names[c], name)) chosen[c] = found = 1;
        if (!found) {
            cli_error("--target '%s' is not one of the classes", name);
            rc = CLI_EXIT_USAGE;
        }
    }
    free(copy);
    return rc;
}

/* The targets (names, stems, indices; no points yet): the combined text, or
 * the chosen classes. */
static int plan_targets(const cli_args *a, const cli_class_set *cl, int combined, targets *ts) {
    memset(ts, 0, sizeof *ts);
    const char *text = cli_get(a, "text");
    ts->n_stems = combined ? 1 : cl->C;
    ts->stems = cli_xcalloc((size_t)ts->n_stems, sizeof *ts->stems);
    cs_status s = cs_file_stems(combined ? &text : (const char *const *)cl->names, ts->n_stems, ts->stems);
    if (s != CS_OK) {
        free(ts->stems);
        memset(ts, 0, sizeof *ts);
        return cli_fail(s);
    }
    ts->t = cli_xcalloc((size_t)cl->C, sizeof *ts->t);
    if (combined) {
        ts->t[ts->n++] = (target){.name = text, .stem = ts->stems[0], .index = 0};
        return 0;
    }
    int *chosen = cli_xcalloc((size_t)cl->C, sizeof *chosen);
    int rc = select_targets(a, cl, chosen);
    for (int c = 0; !rc && c < cl->C; c++)
        if (chosen[c]) ts->t[ts->n++] = (target){.name = cl->names[c], .stem = ts->stems[c], .index = c};
    free(chosen);
    if (rc) targets_free(ts);
    return rc;
}

/* Points of every target for one input, from its raw similarity [T, C]. */
static cs_status compute_points(const float *sim, int T, int C, const cli_input *in, float t,
                                int combined, targets *ts) {
    cs_status s = CS_OK;
    for (int i = 0; s == CS_OK && i < ts->n; i++) {
        target *tg = &ts->t[i];
        size_t cap = (size_t)T * (C + 1);
        free(tg->points);
        free(tg->labels);
        tg->points = cli_xmalloc(sizeof(int32_t) * 2 * cap);
        tg->labels = cli_xmalloc(cap);
        s = combined ? cs_combined_points(sim, T, C, in->width, in->height, t, tg->points, tg->labels, &tg->n)
                     : cs_similarity_points(sim, T, C, tg->index, in->width, in->height, t, tg->points,
                                            tg->labels, &tg->n);
    }
    return s;
}

static cs_status write_points_npy(const char *dir, const target *tg) {
    char path[4096];
    int64_t ps[2] = {tg->n, 2}, ls[1] = {tg->n};
    snprintf(path, sizeof path, "%s/points_%d.npy", dir, tg->index);
    cs_status s = cs_npy_write(path, CS_DT_I32, 2, ps, tg->points);
    snprintf(path, sizeof path, "%s/labels_%d.npy", dir, tg->index);
    return s == CS_OK ? cs_npy_write(path, CS_DT_U8, 1, ls, tg->labels) : s;
}

/* NAME_points.png: the points on the image (on mid gray for --pixels, which
 * has no picture). */
static cs_status write_points_png(const char *dir, const target *tg, const cli_input *in) {
    size_t bytes = (size_t)in->width * in->height * 3;
    uint8_t *rgb = cli_xmalloc(bytes);
    if (in->rgb) memcpy(rgb, in->rgb, bytes);
    else memset(rgb, 128, bytes);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_points.png", dir, tg->stem);
    cs_status s = cs_draw_points(rgb, in->width, in->height, tg->points, tg->labels, tg->n);
    if (s == CS_OK) s = cs_png_write(path, in->width, in->height, 3, rgb);
    free(rgb);
    return s;
}

static cs_status write_files(const char *dir, int npy, const targets *ts, const cli_input *in) {
    cs_status s = cs_mkdirs(dir);
    for (int i = 0; s == CS_OK && i < ts->n; i++) {
        if (npy) s = write_points_npy(dir, &ts->t[i]);
        if (s == CS_OK) s = write_points_png(dir, &ts->t[i], in);
    }
    return s;
}

static void print_string(FILE *f, const char *text) {
    fputc('"', f);
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if ((unsigned char)*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* One input's object, indented by `indent` spaces. */
static void print_input(FILE *f, const targets *ts, const cli_input *in, int indent) {
    fprintf(f, "{\n%*s\"image_size\": [%d, %d],\n%*s\"targets\": {\n", indent + 2, "", in->width,
            in->height, indent + 2, "");
    for (int i = 0; i < ts->n; i++) {
        const target *tg = &ts->t[i];
        fprintf(f, "%*s", indent + 4, "");
        print_string(f, tg->name);
        fprintf(f, ": {\"points\": [");
        for (int k = 0; k < tg->n; k++)
            fprintf(f, "%s[%d, %d]", k ? ", " : "", tg->points[2 * k], tg->points[2 * k + 1]);
        fprintf(f, "], \"labels\": [");
        for (int k = 0; k < tg->n; k++) fprintf(f, "%s%d", k ? ", " : "", tg->labels[k]);
        fprintf(f, "]}%s\n", i + 1 < ts->n ? "," : "");
    }
    fprintf(f, "%*s}\n%*s}", indent + 2, "", indent, "");
}

typedef struct points_run {
    const cli_args *a;
    cs_model *m;
    const cli_class_set *cl;
    float t;
    int combined;
    targets ts;
    FILE *json; /* the JSON so far: printed only when every input succeeded */
} points_run;

/* Tokens -> feature surgery -> points -> files and JSON, for one input. */
static int points_one(points_run *r, const cli_input *in, const char *dir, int indent) {
    int T = cs_model_num_tokens(r->m, in->R), C = r->cl->C, D = r->cl->D;
    float *tokens = cli_xmalloc(sizeof(float) * (size_t)T * D), *sim = cli_xmalloc(sizeof(float) * (size_t)T * C);
    cs_status s = cs_encode_image(r->m, in->pixels, in->R, CS_VISION_SURGERY, tokens);
    if (s == CS_OK) s = cs_feature_surgery(tokens, T, r->cl->emb, C, D, r->cl->redundant, sim);
    if (s == CS_OK) s = compute_points(sim, T, C, in, r->t, r->combined, &r->ts);
    if (s == CS_OK && dir) s = write_files(dir, cli_has(r->a, "npy"), &r->ts, in);
    if (s == CS_OK) print_input(r->json, &r->ts, in, indent);
    free(tokens);
    free(sim);
    return s == CS_OK ? 0 : cli_fail(s);
}

static int points_images(points_run *r, int R) {
    cli_image_list images;
    int rc = cli_image_list_collect(r->a, &images);
    int several = !rc && images.several;
    const char *out = cli_get(r->a, "output");
    if (several) fprintf(r->json, "{\n");
    for (int i = 0; !rc && i < images.n; i++) {
        char dir[4096];
        cli_input in;
        if (out) cli_image_dir(out, &images, i, dir, sizeof dir);
        if (several) {
            cli_note("[%d/%d] %s", i + 1, images.n, images.paths[i]);
            fprintf(r->json, "  ");
            print_string(r->json, images.paths[i]);
            fprintf(r->json, ": ");
        }
        rc = cli_input_from_image(images.paths[i], R, &in);
        if (!rc) rc = points_one(r, &in, out ? dir : NULL, several ? 2 : 0);
        if (!rc && several) fprintf(r->json, "%s\n", i + 1 < images.n ? "," : "");
        cli_input_free(&in);
    }
    if (several) fprintf(r->json, "}");
    cli_image_list_free(&images);
    return rc;
}

static int points_all(points_run *r) {
    char *json = NULL;
    size_t json_len = 0;
    r->json = open_memstream(&json, &json_len);
    int rc = 0, R;
    if (cli_has(r->a, "pixels")) {
        cli_input in;
        rc = cli_input_from_pixels(cli_get(r->a, "pixels"), cli_get(r->a, "size"), &in);
        if (!rc) rc = points_one(r, &in, cli_get(r->a, "output"), 0);
        cli_input_free(&in);
    } else if (!cli_int(r->a, "res", cs_model_config(r->m)->image_resolution, 16, 4096, &R)) {
        rc = CLI_EXIT_USAGE;
    } else {
        rc = points_images(r, R);
    }
    fclose(r->json);
    if (!rc) printf("%s\n", json);
    free(json);
    return rc;
}

int cmd_points(int argc, char **argv) {
    cli_args a;
    int rc;
    if (cli_parse(&a, k_options, sizeof k_options / sizeof *k_options, k_usage, argc, argv, &rc))
        return rc;
    if ((rc = cli_no_positional(&a))) return rc;
    int sources = cli_has(&a, "classes") + cli_has(&a, "class-embeddings") + cli_has(&a, "text");
    if (sources != 1 || cli_has(&a, "image") == cli_has(&a, "pixels") ||
        (cli_has(&a, "pixels") && !cli_has(&a, "size"))) {
        cli_error("points needs one of --image / --pixels with --size, and one of --classes, "
                  "--class-embeddings, --text (see --help)");
        return CLI_EXIT_USAGE;
    }
    if (cli_has(&a, "npy") && !cli_has(&a, "output")) {
        cli_error("--npy needs -o DIR");
        return CLI_EXIT_USAGE;
    }
    const char *tv = cli_get(&a, "t");
    char *end = NULL;
    float t = tv ? strtof(tv, &end) : 0.8f;
    if (tv && (*end || !(t >= 0.0f && t <= 1.0f))) {
        cli_error("--t '%s' is not a number in [0, 1]", tv);
        return CLI_EXIT_USAGE;
    }
    const char *text = cli_get(&a, "text");
    int combined = text && strchr(text, '+') != NULL;
    cli_set_threads(cli_get(&a, "threads"));
    cs_model *m;
    if ((rc = cli_load_model(&a, &m))) return rc;
    cli_class_set cl;
    points_run run = {.a = &a, .m = m, .cl = &cl, .t = t, .combined = combined};
    rc = cli_class_set_load(&a, m, CLI_REDUNDANT | (combined ? CLI_SPLIT_PLUS : 0), &cl);
    if (!rc && combined && !cl.redundant) {
        cli_error("combined targets use the empty prompt's redundant features; drop --redundant classes");
        rc = CLI_EXIT_USAGE;
    }
    if (!rc) rc = plan_targets(&a, &cl, combined, &run.ts);
    if (!rc) rc = points_all(&run);
    targets_free(&run.ts);
    cli_class_set_free(&cl);
    cs_model_free(m);
    return rc;
}
