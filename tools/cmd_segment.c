/* clip-surgery segment: open-vocabulary semantic segmentation. Per pixel the
 * class with the largest raw cosine similarity of the method's tokens
 * (DESIGN.md section 4; GEM: of its min-max map), written as a class-index
 * PNG, optionally a colour PNG with a legend and an overlay on the image; or
 * with --npy every stage as arrays (cs_segment_arrays), the contract the
 * methods' reference outputs are checked through. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

static const cli_option k_options[] = {
    {"image", "FILE", "input image (JPEG/PNG)", 0},
    {"pixels", "FILE.npy", "normalized pixels float32 [3,R,R] or [1,3,R,R] instead of an image (labels R x R)", 0},
    {"classes", "LIST", "class names: a,b,c or @FILE (one class per line, synonyms comma-separated)", 0},
    CLI_OPT_CLASS_EMBEDDINGS,
    {"method", "NAME", CLI_METHOD_HELP, 0},
    {"res", "R", "whole-image input resolution (default: the model's native one)", 0},
    {"window", "N", "sliding-window inference with N x N windows (e.g. 224)", 0},
    {"stride", "N", "window stride (default: half the window)", 0},
    {"short-side", "N", "with --window: resize the image's short side to N first (e.g. 336)", 0},
    {"bg-thresh", "P", "pixels whose top class probability is below P become background", 0},
    {"logit-scale", "S", "scale of the similarities in that probability (default: the method's, 40 or 50)", 0},
    {"pamr", "STEPS", "refine the logits with PAMR, NACLIP's post-processing (its default: 10)", 0},
    {"background", "NAME", "the background class (default: the class named 'background'; none)", 0},
    {"color", "FILE.png", "also write a colour picture with a legend strip", 0},
    {"overlay", "FILE.png", "also write the colours blended over the image", 0},
    {"output", "FILE.png", "class-index PNG (-o): pixel value = class index in LIST; with --npy a folder", 0},
    {"npy", NULL, "-o is a folder: tokens, cosine, logits, score, argmax (.npy) and labels.png", 0},
    CLI_OPTS_IMAGE_COMMAND,
};

static const char k_usage[] =
    "usage: clip-surgery segment --model M (--image FILE | --pixels FILE.npy)\n"
    "         (--classes LIST | --class-embeddings FILE.npy) [--method M] [--pamr STEPS]\n"
    "         [--res R | --window N [--stride N] [--short-side N]] [--bg-thresh P [--logit-scale S]]\n"
    "         [--color FILE.png] [--overlay FILE.png] -o LABELS.png\n"
    "       clip-surgery segment ... --npy -o DIR\n\n"
    "Per pixel: the class whose best name has the largest cosine similarity with the method's image\n"
    "tokens (surgery: its surgery path, no feature surgery), upsampled bilinearly to the image (GEM: the\n"
    "argmax of its per-class min-max map); with --bg-thresh, pixels whose softmax(logit-scale x\n"
    "similarity) maximum is below P get the background class.\n"
    "--npy writes DIR/tokens.npy [1+N, D] (MaskCLIP, ClearCLIP: [N, D], their authors drop token 0),\n"
    "cosine.npy [N, C], logits.npy [C, H, W] (cosine x the method's logit scale), score.npy [C, H, W]\n"
    "(softmax over classes; GEM: per-class min-max), argmax.npy int64 [H, W] and labels.png\n"
    "(tokens and cosine only without --window).\n"
    "Example: clip-surgery segment --model ViT-B/16 --method sclip --image photo.jpg \\\n"
    "           --classes @data/classes/voc21.txt --window 224 --short-side 336 -o labels.png";

uint8_t *cli_segment_color(const uint8_t *labels, int W, int H, const cs_classes *cl, int *rows) {
    int C = cs_classes_count(cl);
    const char **names = calloc((size_t)C, sizeof *names);
    if (!names) return NULL;
    for (int c = 0; c < C; c++) names[c] = cs_classes_name(cl, c);
    int strip = cs_legend_height(W, labels, (size_t)W * H, names, C);
    uint8_t *rgb = malloc((size_t)W * (H + strip) * 3);
    if (rgb) cs_colorize_labels(labels, W, H, names, C, rgb);
    free(names);
    *rows = H + strip;
    return rgb;
}

/* Half the image, half the label colour. */
uint8_t *cli_segment_overlay(const uint8_t *labels, const cs_image *img) {
    size_t n = (size_t)img->width * img->height;
    uint8_t *rgb = malloc(n * 3);
    for (size_t i = 0; rgb && i < n; i++) {
        uint8_t color[3];
        cs_label_color(labels[i], color);
        for (int c = 0; c < 3; c++) rgb[3 * i + c] = (uint8_t)((img->rgb[3 * i + c] + color[c] + 1) / 2);
    }
    return rgb;
}

static int write_color(const char *path, const uint8_t *labels, int W, int H, const cs_classes *cl) {
    int rows;
    uint8_t *rgb = cli_segment_color(labels, W, H, cl, &rows);
    if (!rgb) return cli_out_of_memory();
    cs_status s = cs_png_write(path, W, rows, 3, rgb);
    free(rgb);
    return s == CS_OK ? 0 : cli_fail(s);
}

static int write_overlay(const char *path, const uint8_t *labels, const cs_image *img) {
    uint8_t *rgb = cli_segment_overlay(labels, img);
    if (!rgb) return cli_out_of_memory();
    cs_status s = cs_png_write(path, img->width, img->height, 3, rgb);
    free(rgb);
    return s == CS_OK ? 0 : cli_fail(s);
}

/* All outputs or none, and never a user's file lost: the run is one output
 * transaction (main.c), so every output is written complete under a
 * temporary name and renamed over its name only when the command succeeds;
 * a failure removes only this run's temporaries. */
static int segment_image(const cli_args *a, cs_model *m, const cs_segment_options *o, cs_classes *cl) {
    cs_image img = {0};
    cs_status s = cs_image_load(cli_get(a, "image"), cli_image_options(), &img);
    if (s != CS_OK) return cli_fail(s);
    uint8_t *labels = cli_xmalloc((size_t)img.width * img.height);
    s = cs_segment(m, cl, &img, 1, o, labels);
    if (s == CS_OK) s = cs_png_write(cli_get(a, "output"), img.width, img.height, 1, labels);
    int rc = s == CS_OK ? 0 : cli_fail(s);
    if (!rc && cli_has(a, "color")) rc = write_color(cli_get(a, "color"), labels, img.width, img.height, cl);
    if (!rc && cli_has(a, "overlay")) rc = write_overlay(cli_get(a, "overlay"), labels, &img);
    free(labels);
    cs_image_free(&img);
    return rc;
}

/* float32 [rows, cols] -> [cols, rows] (the reference layouts are class-major). */
static float *transposed(const float *in, size_t rows, int cols) {
    float *out = malloc(sizeof(float) * rows * cols);
    for (size_t r = 0; out && r < rows; r++)
        for (int c = 0; c < cols; c++) out[(size_t)c * rows + r] = in[r * cols + c];
    return out;
}

enum { NPY_TOKENS, NPY_COSINE, NPY_LOGITS, NPY_SCORE, NPY_ARGMAX, NPY_LABELS, NPY_FILES };
static const char *const k_npy_files[NPY_FILES] = {"tokens.npy", "cosine.npy", "logits.npy",
                                                   "score.npy",  "argmax.npy", "labels.png"};

const char *const cli_segment_npy_names[CLI_SEGMENT_NPY] = {"tokens", "cosine", "logits", "score", "argmax"};

int cli_segment_npy_array(int f, const cs_segment_result *r, int skip_cls, cs_dtype *dtype, int *ndim,
                          int64_t shape[3], void **data, void **owned) {
    size_t n = (size_t)r->width * r->height;
    int C = r->n_classes;
    *owned = NULL;
    *dtype = CS_DT_F32;
    if (f == NPY_TOKENS || f == NPY_COSINE) {
        if (!r->tokens) {
            cli_error("%s: sliding windows have no whole-image tokens", cli_segment_npy_names[f]);
            return CLI_EXIT_USAGE;
        }
        *ndim = 2;
        shape[0] = f == NPY_TOKENS ? r->n_tokens - skip_cls : r->n_tokens - 1;
        shape[1] = f == NPY_TOKENS ? r->dim : C;
        *data = f == NPY_TOKENS ? (void *)(r->tokens + (size_t)skip_cls * r->dim) : (void *)r->cosine;
        return 0;
    }
    if (f == NPY_ARGMAX) {
        int64_t *argmax = malloc(sizeof(int64_t) * n);
        if (!argmax) return cli_out_of_memory();
        for (size_t i = 0; i < n; i++) argmax[i] = r->labels[i];
        *dtype = CS_DT_I64;
        *ndim = 2;
        shape[0] = r->height;
        shape[1] = r->width;
        *data = *owned = argmax;
        return 0;
    }
    /* logits (scaled as the method scales them) or scores, class-major */
    float *chw = transposed(f == NPY_LOGITS ? r->logits : r->scores, n, C);
    if (!chw) return cli_out_of_memory();
    if (f == NPY_LOGITS)
        for (size_t i = 0; i < n * C; i++) chw[i] *= r->logit_scale;
    *ndim = 3;
    shape[0] = C;
    shape[1] = r->height;
    shape[2] = r->width;
    *data = *owned = chw;
    return 0;
}

/* One array of --npy into tmp. */
static int write_npy_file(int f, const char *tmp, const cs_segment_result *r, int skip_cls) {
    cs_status s = CS_OK;
    if (f == NPY_LABELS) s = cs_png_write(tmp, r->width, r->height, 1, r->labels);
    if (f == NPY_LABELS) return s == CS_OK ? 0 : cli_fail(s);
    cs_dtype dtype;
    int ndim;
    int64_t shape[3];
    void *data, *owned;
    int rc = cli_segment_npy_array(f, r, skip_cls, &dtype, &ndim, shape, &data, &owned);
    if (!rc && (s = cs_npy_write(tmp, dtype, ndim, shape, data)) != CS_OK) rc = cli_fail(s);
    free(owned);
    return rc;
}

/* --npy: every stage into the folder -o; like every output, renamed into
 * place only when the whole command succeeds (main.c's transaction). */
static int segment_npy(const cli_args *a, cs_model *m, const cs_segment_options *o, cs_classes *cl) {
    cs_image img = {0};
    cs_array px = {0};
    cs_input in = {0};
    cs_status s;
    if (cli_has(a, "pixels")) {
        s = cs_npy_read(cli_get(a, "pixels"), &px);
        int lead = px.ndim == 4 ? 1 : 0;
        if (s == CS_OK && !(px.dtype == CS_DT_F32 && (px.ndim == 3 || (px.ndim == 4 && px.shape[0] == 1)) &&
                            px.shape[lead] == 3 && px.shape[lead + 1] == px.shape[lead + 2])) {
            cs_array_free(&px);
            cli_error("%s: --pixels must be float32 [3, R, R] or [1, 3, R, R]", cli_get(a, "pixels"));
            return CLI_EXIT_USAGE;
        }
        in.pixels = px.data;
        in.pixels_resolution = s == CS_OK ? (int)px.shape[lead + 1] : 0;
    } else {
        s = cs_image_load(cli_get(a, "image"), cli_image_options(), &img);
        in.image = &img;
    }
    cs_segment_result r = {0};
    if (s == CS_OK) s = cs_segment_arrays(m, cl, &in, 1, o, &r);
    int rc = s == CS_OK ? 0 : cli_fail(s);
    const char *dir = cli_get(a, "output");
    if (!rc && (s = cs_mkdirs(dir)) != CS_OK) rc = cli_fail(s);
    for (int f = 0; f < NPY_FILES && !rc; f++) {
        if ((f == NPY_TOKENS || f == NPY_COSINE) && !r.tokens) continue; /* sliding windows */
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, k_npy_files[f]);
        rc = write_npy_file(f, path, &r, cs_method_defaults_of(o->method).drops_cls);
    }
    cs_segment_result_free(&r);
    cs_array_free(&px);
    cs_image_free(&img);
    return rc;
}

static int check(const cli_args *a) {
    if (!cli_has(a, "output") || cli_has(a, "image") == cli_has(a, "pixels") ||
        cli_has(a, "classes") + cli_has(a, "class-embeddings") != 1) {
        cli_error("segment needs -o, one of --image/--pixels and one of --classes, --class-embeddings (see --help)");
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "pixels") && !cli_has(a, "npy")) {
        cli_error("--pixels goes with --npy (label pictures need an image)");
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "npy") && (cli_has(a, "color") || cli_has(a, "overlay"))) {
        cli_error("--npy writes into the folder -o; --color and --overlay go without it");
        return CLI_EXIT_USAGE;
    }
    static const char *extra[] = {"color", "overlay"};
    for (int i = 0; i < 2; i++)
        if (cli_has(a, extra[i]) && cli_same_file(cli_get(a, extra[i]), cli_get(a, "output"))) {
            cli_error("--%s is the same file as -o (%s): give each output its own name", extra[i],
                      cli_get(a, "output"));
            return CLI_EXIT_USAGE;
        }
    if (cli_has(a, "color") && cli_has(a, "overlay") && cli_same_file(cli_get(a, "color"), cli_get(a, "overlay"))) {
        cli_error("--overlay is the same file as --color (%s)", cli_get(a, "color"));
        return CLI_EXIT_USAGE;
    }
    cs_method method;
    return cli_method(a, &method) ? 0 : CLI_EXIT_USAGE;
}

static int run(cli_ctx *c) {
    cs_classes *cl;
    cs_segment_options o;
    int rc = cli_classes_load(&c->a, c->m, NULL, 0, &cl);
    if (!rc) rc = cli_segment_options(&c->a, cl, &o);
    if (!rc) rc = cli_has(&c->a, "npy") ? segment_npy(&c->a, c->m, &o, cl) : segment_image(&c->a, c->m, &o, cl);
    cs_classes_free(cl);
    return rc;
}

const cli_command cmd_segment = {
    "segment", "open-vocabulary semantic segmentation (class-index and colour PNGs, or arrays)", CLI_OPTIONS(k_options),
    k_usage, CLI_MODEL, check, run,
};
