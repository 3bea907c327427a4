/* clip-surgery points: point prompts for SAM from CLIP Surgery maps, as JSON
 * (DESIGN.md section 8), and with -o DIR the points drawn on the image. The
 * job is cs_points; here: targets, JSON and files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

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

/* One target: its name, file stem, K of points_K.npy and its index among
 * the job's targets. */
typedef struct target {
    const char *name, *stem;
    int index;
} target;

typedef struct points_run {
    const cli_args *a;
    cs_model *m;
    cs_classes *cl;
    cs_points_options o;
    int n;
    target *t;
    char **stems; /* one per class (or one for the combined text) */
    int n_stems;
    FILE *json;   /* the JSON so far: printed only when every input succeeded */
} points_run;

/* Which classes get points: --target names, or all. */
static int select_targets(const cli_args *a, const cs_classes *cl, int *chosen) {
    const char *t = cli_get(a, "target");
    int C = cs_classes_count(cl);
    for (int c = 0; c < C; c++) chosen[c] = !t;
    if (!t) return 0;
    char *copy = cli_xstrdup(t), *save = NULL;
    int rc = 0;
    for (char *name = strtok_r(copy, ",", &save); name && !rc; name = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int c = 0; c < C; c++)
            if (!strcmp(cs_classes_name(cl, c), name)) chosen[c] = found = 1;
        if (!found) {
            cli_error("--target '%s' is not one of the classes", name);
            rc = CLI_EXIT_USAGE;
        }
    }
    free(copy);
    return rc;
}

/* The targets (names, stems, indices): the combined text, or the chosen classes. */
static int plan_targets(points_run *r) {
    const char *text = cli_get(r->a, "text");
    int C = cs_classes_count(r->cl);
    const char **names = cli_xcalloc((size_t)C, sizeof *names);
    for (int c = 0; c < C; c++) names[c] = cs_classes_name(r->cl, c);
    r->n_stems = r->o.combined ? 1 : C;
    r->stems = cli_xcalloc((size_t)r->n_stems, sizeof *r->stems);
    r->t = cli_xcalloc((size_t)C, sizeof *r->t);
    cs_status s = cs_file_stems(r->o.combined ? &text : names, r->n_stems, r->stems);
    int rc = s == CS_OK ? 0 : cli_fail(s);
    if (!rc && r->o.combined) {
        r->t[r->n++] = (target){.name = text, .stem = r->stems[0], .index = 0};
    } else if (!rc) {
        int *chosen = cli_xcalloc((size_t)C, sizeof *chosen);
        rc = select_targets(r->a, r->cl, chosen);
        for (int c = 0; !rc && c < C; c++)
            if (chosen[c]) r->t[r->n++] = (target){.name = names[c], .stem = r->stems[c], .index = c};
        free(chosen);
    }
    free(names);
    return rc;
}

static cs_status write_points_npy(const char *dir, const target *tg, const cs_points_result *p, int i) {
    char path[4096];
    int n = p->offsets[i + 1] - p->offsets[i];
    int64_t ps[2] = {n, 2}, ls[1] = {n};
    snprintf(path, sizeof path, "%s/points_%d.npy", dir, tg->index);
    cs_status s = cs_npy_write(path, CS_DT_I32, 2, ps, p->points + 2 * p->offsets[i]);
    snprintf(path, sizeof path, "%s/labels_%d.npy", dir, tg->index);
    return s == CS_OK ? cs_npy_write(path, CS_DT_U8, 1, ls, p->labels + p->offsets[i]) : s;
}

/* NAME_points.png: the points on the image (on mid gray for --pixels, which
 * has no picture). */
static cs_status write_points_png(const char *dir, const target *tg, const cs_points_result *p, int i,
                                  const uint8_t *picture) {
    size_t bytes = (size_t)p->width * p->height * 3;
    uint8_t *rgb = cli_xmalloc(bytes);
    if (picture) memcpy(rgb, picture, bytes);
    else memset(rgb, 128, bytes);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_points.png", dir, tg->stem);
    cs_status s = cs_draw_points(rgb, p->width, p->height, p->points + 2 * p->offsets[i], p->labels + p->offsets[i],
                                 p->offsets[i + 1] - p->offsets[i]);
    if (s == CS_OK) s = cs_png_write(path, p->width, p->height, 3, rgb);
    free(rgb);
    return s;
}

/* The job's result index of a target. */
static int result_index(const points_run *r, const target *tg) { return r->o.combined ? 0 : tg->index; }

static cs_status write_files(const points_run *r, const char *dir, const cs_points_result *p,
                             const uint8_t *picture) {
    cs_status s = cs_mkdirs(dir);
    for (int i = 0; s == CS_OK && i < r->n; i++) {
        int k = result_index(r, &r->t[i]);
        if (cli_has(r->a, "npy")) s = write_points_npy(dir, &r->t[i], p, k);
        if (s == CS_OK) s = write_points_png(dir, &r->t[i], p, k, picture);
    }
    return s;
}

/* One input's object, indented by `indent` spaces. */
static void print_input(const points_run *r, const cs_points_result *p, int indent) {
    FILE *f = r->json;
    fprintf(f, "{\n%*s\"image_size\": [%d, %d],\n%*s\"targets\": {\n", indent + 2, "", p->width, p->height,
            indent + 2, "");
    for (int i = 0; i < r->n; i++) {
        int k = result_index(r, &r->t[i]), a = p->offsets[k], b = p->offsets[k + 1];
        fprintf(f, "%*s", indent + 4, "");
        cli_print_json_string(f, r->t[i].name);
        fprintf(f, ": {\"points\": [");
        for (int j = a; j < b; j++) fprintf(f, "%s[%d, %d]", j > a ? ", " : "", p->points[2 * j], p->points[2 * j + 1]);
        fprintf(f, "], \"labels\": [");
        for (int j = a; j < b; j++) fprintf(f, "%s%d", j > a ? ", " : "", p->labels[j]);
        fprintf(f, "]}%s\n", i + 1 < r->n ? "," : "");
    }
    fprintf(f, "%*s}\n%*s}", indent + 2, "", indent, "");
}

/* The job, then files and JSON, for one input. */
static int points_one(points_run *r, const cli_input *in, const char *dir, int indent) {
    cs_points_result p;
    cs_status s = cs_points(r->m, r->cl, &in->in, &r->o, &p);
    if (s == CS_OK) cli_note_redundancy(r->a, p.redundant);
    if (s == CS_OK && dir) s = write_files(r, dir, &p, in->img.rgb);
    if (s == CS_OK) print_input(r, &p, indent);
    cs_points_result_free(&p);
    return s == CS_OK ? 0 : cli_fail(s);
}

static int points_images(points_run *r) {
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
            cli_print_json_string(r->json, images.paths[i]);
            fprintf(r->json, ": ");
        }
        rc = cli_input_from_image(images.paths[i], &in);
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
    int rc = 0;
    if (cli_has(r->a, "pixels")) {
        cli_input in;
        rc = cli_input_from_pixels(cli_get(r->a, "pixels"), cli_get(r->a, "size"), &in);
        if (!rc) rc = points_one(r, &in, cli_get(r->a, "output"), 0);
        cli_input_free(&in);
    } else {
        rc = points_images(r);
    }
    fclose(r->json);
    if (!rc) printf("%s\n", json);
    free(json);
    return rc;
}

static int check(const cli_args *a) {
    int sources = cli_has(a, "classes") + cli_has(a, "class-embeddings") + cli_has(a, "text");
    if (sources != 1 || cli_has(a, "image") == cli_has(a, "pixels") || (cli_has(a, "pixels") && !cli_has(a, "size"))) {
        cli_error("points needs one of --image / --pixels with --size, and one of --classes, "
                  "--class-embeddings, --text (see --help)");
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "npy") && !cli_has(a, "output")) {
        cli_error("--npy needs -o DIR");
        return CLI_EXIT_USAGE;
    }
    float t;
    if (!cli_float(a, "t", 0.8f, 0.0f, 1.0f, &t)) return CLI_EXIT_USAGE;
    const char *text = cli_get(a, "text"), *redundant = cli_get(a, "redundant");
    int res;
    if (!cli_int(a, "res", 0, 16, 4096, &res)) return CLI_EXIT_USAGE;
    if (text && strchr(text, '+') && redundant && !strcmp(redundant, "classes")) {
        cli_error("combined targets use the empty prompt's redundant features; drop --redundant classes");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static int run(cli_ctx *c) {
    const char *text = cli_get(&c->a, "text");
    points_run r = {.a = &c->a, .m = c->m, .o = cs_points_defaults()};
    r.o.combined = text && strchr(text, '+') != NULL;
    cli_float(&c->a, "t", r.o.threshold, 0.0f, 1.0f, &r.o.threshold); /* checked already */
    cli_int(&c->a, "res", 0, 16, 4096, &r.o.resolution); /* checked already */
    int rc = cli_redundancy(&c->a, &r.o.redundant);
    if (!rc) rc = cli_classes_load(&c->a, c->m, NULL, r.o.combined ? CLI_SPLIT_PLUS : 0, &r.cl);
    if (!rc) rc = plan_targets(&r);
    if (!rc) rc = points_all(&r);
    for (int i = 0; r.stems && i < r.n_stems; i++) cs_free(r.stems[i]);
    free(r.stems);
    free(r.t);
    cs_classes_free(r.cl);
    return rc;
}

const cli_command cmd_points = {
    "points", "point prompts for SAM (JSON)", CLI_OPTIONS(k_options), k_usage, CLI_MODEL, check, run,
};
