/* clip-surgery segment: open-vocabulary semantic segmentation. Per pixel the
 * class with the largest raw cosine similarity of the surgery tokens
 * (DESIGN.md section 4), written as a class-index PNG, optionally a colour
 * PNG with a legend and an overlay on the image. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

static const cli_option k_options[] = {
    {"image", "FILE", "input image (JPEG/PNG)", 0},
    {"classes", "LIST", "class names: a,b,c or @FILE (one class per line, synonyms comma-separated)", 0},
    CLI_OPT_CLASS_EMBEDDINGS,
    {"method", "NAME", "surgery (default) | clip (plain CLIP's tokens)", 0},
    {"res", "R", "whole-image input resolution (default: the model's native one)", 0},
    {"window", "N", "sliding-window inference with N x N windows (e.g. 224)", 0},
    {"stride", "N", "window stride (default: half the window)", 0},
    {"short-side", "N", "with --window: resize the image's short side to N first (e.g. 336)", 0},
    {"bg-thresh", "P", "pixels whose top class probability is below P become background", 0},
    {"logit-scale", "S", "scale of the similarities in that probability (default 40)", 0},
    {"background", "NAME", "the background class (default: the class named 'background'; none)", 0},
    {"color", "FILE.png", "also write a colour picture with a legend strip", 0},
    {"overlay", "FILE.png", "also write the colours blended over the image", 0},
    {"output", "FILE.png", "class-index PNG (-o): pixel value = class index in LIST", 0},
    CLI_OPTS_IMAGE_COMMAND,
};

static const char k_usage[] =
    "usage: clip-surgery segment --model M --image FILE (--classes LIST | --class-embeddings FILE.npy)\n"
    "         [--res R | --window N [--stride N] [--short-side N]] [--bg-thresh P [--logit-scale S]]\n"
    "         [--method surgery|clip] [--color FILE.png] [--overlay FILE.png] -o LABELS.png\n\n"
    "Per pixel: the class whose best name has the largest cosine similarity with the image tokens\n"
    "(surgery path, no feature surgery), upsampled bilinearly to the image; with --bg-thresh, pixels\n"
    "whose softmax(logit-scale x similarity) maximum is below P get the background class.";

static int write_color(const char *path, const uint8_t *labels, int W, int H, const cs_classes *cl) {
    int C = cs_classes_count(cl);
    const char **names = cli_xcalloc((size_t)C, sizeof *names);
    for (int c = 0; c < C; c++) names[c] = cs_classes_name(cl, c);
    int strip = cs_legend_height(W, labels, (size_t)W * H, names, C);
    uint8_t *rgb = cli_xmalloc((size_t)W * (H + strip) * 3);
    cs_colorize_labels(labels, W, H, names, C, rgb);
    cs_status s = cs_png_write(path, W, H + strip, 3, rgb);
    free(rgb);
    free(names);
    return s == CS_OK ? 0 : cli_fail(s);
}

/* Half the image, half the label colour. */
static int write_overlay(const char *path, const uint8_t *labels, const cs_image *img) {
    size_t n = (size_t)img->width * img->height;
    uint8_t *rgb = cli_xmalloc(n * 3);
    for (size_t i = 0; i < n; i++) {
        uint8_t color[3];
        cs_label_color(labels[i], color);
        for (int c = 0; c < 3; c++) rgb[3 * i + c] = (uint8_t)((img->rgb[3 * i + c] + color[c] + 1) / 2);
    }
    cs_status s = cs_png_write(path, img->width, img->height, 3, rgb);
    free(rgb);
    return s == CS_OK ? 0 : cli_fail(s);
}

/* All outputs or none, and never a user's file lost: each output is first
 * written complete under a temporary name beside its own; only when every
 * one is complete are they renamed over their names (so a file already at
 * -o stays as it was until its replacement is whole). A failure removes
 * only this run's temporaries. */
static int segment_image(const cli_args *a, cs_model *m, const cs_segment_options *o, cs_classes *cl) {
    static const char *const outputs[3] = {"output", "color", "overlay"};
    cs_image img = {0};
    cs_status s = cs_image_load(cli_get(a, "image"), cli_image_options(), &img);
    if (s != CS_OK) return cli_fail(s);
    uint8_t *labels = cli_xmalloc((size_t)img.width * img.height);
    s = cs_segment(m, cl, &img, o, labels);
    int rc = s == CS_OK ? 0 : cli_fail(s), written = 0;
    char tmp[3][4200];
    for (int i = 0; i < 3 && !rc; i++) {
        if (!cli_has(a, outputs[i])) continue;
        snprintf(tmp[i], sizeof tmp[i], "%s.partial-%ld", cli_get(a, outputs[i]), (long)getpid());
        if (i == 0) {
            s = cs_png_write(tmp[i], img.width, img.height, 1, labels);
            rc = s == CS_OK ? 0 : cli_fail(s);
        } else if (i == 1) {
            rc = write_color(tmp[i], labels, img.width, img.height, cl);
        } else {
            rc = write_overlay(tmp[i], labels, &img);
        }
        written |= !rc << i;
    }
    for (int i = 0; i < 3; i++) {
        if (!(written >> i & 1)) continue;
        if (rc) unlink(tmp[i]);
        else if (rename(tmp[i], cli_get(a, outputs[i])) != 0) {
            cli_error("%s: cannot write: %s", cli_get(a, outputs[i]), strerror(errno));
            rc = CLI_EXIT_RUNTIME;
            unlink(tmp[i]);
        }
    }
    free(labels);
    cs_image_free(&img);
    return rc;
}

static int check(const cli_args *a) {
    if (!cli_has(a, "output") || !cli_has(a, "image") || cli_has(a, "classes") + cli_has(a, "class-embeddings") != 1) {
        cli_error("segment needs --image FILE, -o LABELS.png and one of --classes, --class-embeddings (see --help)");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static int run(cli_ctx *c) {
    cs_classes *cl;
    cs_segment_options o;
    int rc = cli_classes_load(&c->a, c->m, NULL, 0, &cl);
    if (!rc) rc = cli_segment_options(&c->a, cl, &o);
    if (!rc) rc = segment_image(&c->a, c->m, &o, cl);
    cs_classes_free(cl);
    return rc;
}

const cli_command cmd_segment = {
    "segment", "open-vocabulary semantic segmentation (class-index and colour PNGs)", CLI_OPTIONS(k_options),
    k_usage, CLI_MODEL, check, run,
};
