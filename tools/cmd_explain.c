/* clip-surgery explain: similarity maps (heatmaps) of classes or a text over
 * images, with CLIP Surgery (default) or plain CLIP. The job is cs_explain;
 * here: which inputs, which files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const cli_option k_options[] = {
    {"image", "FILE", "input image (JPEG/PNG); repeat it, or give a folder", 1},
    {"pixels", "FILE.npy", "normalized pixels float32 [3,R,R] or [1,3,R,R] instead of an image", 0},
    {"size", "WxH", "with --pixels: map size (default R x R)", 0},
    CLI_OPT_RES,
    {"method", "NAME", CLI_METHOD_HELP, 0},
    {"classes", "LIST", "class names: a,b,c or @FILE (one class per line, synonyms comma-separated)", 0},
    CLI_OPT_CLASS_EMBEDDINGS,
    {"text", "T", "one text; its redundant features come from the empty prompt", 0},
    {"redundant", "MODE", "classes (default with --classes) | empty (default with --text)", 0},
    {"npy", NULL, "also write pixels, image_tokens, class_embeddings, similarity, maps (.npy)", 0},
    {"no-png", NULL, "with --npy: skip the PNG pictures (arrays only)", 0},
    {"output", "DIR", "output folder (-o)", 0},
    CLI_OPTS_IMAGE_COMMAND,
};

static const char k_usage[] =
    "usage: clip-surgery explain --model M (--image FILE | --pixels FILE.npy [--size WxH]) [--res R]\n"
    "         [--method M] (--classes LIST | --class-embeddings FILE.npy | --text T)\n"
    "         [--redundant classes|empty] [--npy] -o DIR\n\n"
    "Writes, per class, NAME.png (JET heatmap over the image) and NAME_map.png (the map in gray);\n"
    "with several images (or a folder), one subfolder per image. A class with synonyms\n"
    "(@FILE lines \"a,b\") shows, per place, its best name.\n"
    "Example: clip-surgery explain --model ViT-B/16 --image photo.jpg --classes person,bench,sky -o out/";

/* Images per vision-tower pass: enough rows for efficient GEMMs at 224,
 * little memory. */
#define EXPLAIN_BATCH 4

typedef struct explain_run {
    const cli_args *a;
    cs_model *m;
    cs_classes *cl;
    cs_explain_options o;
    char **files; /* [2C]: heatmap stems, then gray-map stems */
    int npy, png;
} explain_run;

static cs_status write_npy(const char *dir, const char *name, int ndim, int64_t a, int64_t b, int64_t c,
                           const float *x) {
    char path[4096];
    int64_t shape[3] = {a, b, c};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return cs_npy_write(path, CS_DT_F32, ndim, shape, x);
}

/* One input's files: the arrays (--npy), then per class the heatmap and the gray map. */
static int write_outputs(const explain_run *r, const cs_explain_result *res, const uint8_t *rgb, const char *dir) {
    int W = res->width, H = res->height, C = res->n_classes, D = res->dim, T = res->n_tokens, R = res->resolution;
    cs_status s = cs_mkdirs(dir);
    if (s == CS_OK && r->npy) {
        s = write_npy(dir, "pixels.npy", 3, 3, R, R, res->pixels);
        if (s == CS_OK) s = write_npy(dir, "image_tokens.npy", 2, T, D, 0, res->tokens);
        if (s == CS_OK)
            s = write_npy(dir, "class_embeddings.npy", 2, cs_classes_num_names(r->cl), D, 0,
                          cs_classes_embeddings(r->cl));
        if (s == CS_OK) s = write_npy(dir, "similarity.npy", 2, T, C, 0, res->similarity);
        if (s == CS_OK) s = write_npy(dir, "maps.npy", 3, H, W, C, res->maps);
    }
    uint8_t *pic = r->png ? cli_xmalloc((size_t)W * H * 3) : NULL;
    for (int c = 0; s == CS_OK && r->png && c < C; c++) {
        char path[4096];
        cs_heatmap_overlay(res->maps + c, C, (size_t)W * H, rgb, pic);
        snprintf(path, sizeof path, "%s/%s.png", dir, r->files[c]);
        s = cs_png_write(path, W, H, 3, pic);
        cs_map_to_gray(res->maps + c, C, (size_t)W * H, pic);
        snprintf(path, sizeof path, "%s/%s.png", dir, r->files[C + c]);
        if (s == CS_OK) s = cs_png_write(path, W, H, 1, pic);
    }
    free(pic);
    return s == CS_OK ? 0 : cli_fail(s);
}

/* n inputs through the job, then their files. */
static int explain_inputs(explain_run *r, cli_input *in, int n, const cli_image_list *images, int first,
                          const char *out) {
    cs_input jobs[EXPLAIN_BATCH];
    cs_explain_result res[EXPLAIN_BATCH];
    for (int k = 0; k < n; k++) jobs[k] = in[k].in;
    cs_status s = cs_explain(r->m, r->cl, jobs, n, &r->o, res);
    if (s != CS_OK) return cli_fail(s);
    cli_note_redundancy(r->a, res[0].redundant);
    int rc = 0;
    for (int k = 0; !rc && k < n; k++) {
        char dir[4096];
        if (images) {
            cli_image_dir(out, images, first + k, dir, sizeof dir);
            if (images->n > 1) cli_note("[%d/%d] %s", first + k + 1, images->n, images->paths[first + k]);
        } else {
            snprintf(dir, sizeof dir, "%s", out);
        }
        rc = write_outputs(r, &res[k], in[k].img.rgb, dir);
    }
    for (int k = 0; k < n; k++) cs_explain_result_free(&res[k]);
    return rc;
}

/* Every image of the --image arguments, EXPLAIN_BATCH at a time. */
static int explain_images(explain_run *r, const char *out) {
    cli_image_list images;
    int rc = cli_image_list_collect(r->a, &images);
    cli_input in[EXPLAIN_BATCH];
    for (int first = 0; !rc && first < images.n; first += EXPLAIN_BATCH) {
        int n = images.n - first < EXPLAIN_BATCH ? images.n - first : EXPLAIN_BATCH, loaded = 0;
        for (; !rc && loaded < n; loaded++) rc = cli_input_from_image(images.paths[first + loaded], &in[loaded]);
        if (rc) loaded--;
        if (!rc) rc = explain_inputs(r, in, n, &images, first, out);
        for (int k = 0; k < loaded; k++) cli_input_free(&in[k]);
    }
    cli_image_list_free(&images);
    return rc;
}

/* Stems for the heatmaps (names) and the gray maps (names + "_map"), made
 * unique together, so a class called "cat_map" cannot overwrite the gray
 * map of "cat". */
static int file_stems(const cs_classes *cl, char ***files) {
    int C = cs_classes_count(cl);
    char **texts = cli_xcalloc(2 * (size_t)C, sizeof *texts);
    *files = cli_xcalloc(2 * (size_t)C, sizeof **files);
    for (int c = 0; c < C; c++) {
        texts[c] = cli_xstrdup(cs_classes_name(cl, c));
        texts[C + c] = cli_xmalloc(strlen(texts[c]) + 5);
        sprintf(texts[C + c], "%s_map", texts[c]);
    }
    cs_status s = cs_file_stems((const char *const *)texts, 2 * C, *files);
    for (int c = 0; c < 2 * C; c++) free(texts[c]);
    free(texts);
    return s == CS_OK ? 0 : cli_fail(s);
}

static int check(const cli_args *a) {
    int sources = cli_has(a, "classes") + cli_has(a, "class-embeddings") + cli_has(a, "text");
    if (!cli_has(a, "output") || sources != 1 || cli_has(a, "image") == cli_has(a, "pixels")) {
        cli_error("explain needs -o DIR, one of --image/--pixels and one of --classes, "
                  "--class-embeddings, --text (see --help)");
        return CLI_EXIT_USAGE;
    }
    cs_method method;
    int res;
    if (!cli_method(a, &method) || !cli_int(a, "res", 0, 16, 4096, &res)) return CLI_EXIT_USAGE;
    if (cli_has(a, "no-png") && !cli_has(a, "npy")) {
        cli_error("--no-png goes with --npy (otherwise nothing would be written)");
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "size") && !cli_has(a, "pixels")) {
        cli_error("--size goes with --pixels (an image's maps have the image's size)");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static int run(cli_ctx *c) {
    explain_run r = {.a = &c->a, .m = c->m, .o = cs_explain_defaults(), .npy = cli_has(&c->a, "npy"),
                     .png = !cli_has(&c->a, "no-png")};
    const char *out = cli_get(&c->a, "output");
    cli_method(&c->a, &r.o.method);
    cli_int(&c->a, "res", 0, 16, 4096, &r.o.resolution); /* checked already */
    int rc = cli_redundancy(&c->a, &r.o.redundant);
    if (!rc) rc = cli_classes_load(&c->a, c->m, NULL, 0, &r.cl);
    if (!rc) rc = file_stems(r.cl, &r.files);
    if (!rc && cli_has(&c->a, "pixels")) {
        cli_input in;
        rc = cli_input_from_pixels(cli_get(&c->a, "pixels"), cli_get(&c->a, "size"), &in);
        if (!rc) rc = explain_inputs(&r, &in, 1, NULL, 0, out);
        cli_input_free(&in);
    } else if (!rc) {
        rc = explain_images(&r, out);
    }
    for (int k = 0; r.files && k < 2 * cs_classes_count(r.cl); k++) cs_free(r.files[k]);
    free(r.files);
    cs_classes_free(r.cl);
    return rc;
}

const cli_command cmd_explain = {
    "explain", "similarity maps (heatmaps) for classes or a text", CLI_OPTIONS(k_options), k_usage, CLI_MODEL,
    check, run,
};
