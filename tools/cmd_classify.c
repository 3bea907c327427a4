/* clip-surgery classify: multi-label class scores of an image as JSON; CLIP
 * Surgery's (row 0 of class-weighted feature surgery) or plain CLIP's
 * softmax(100 x cos). The job is cs_classify. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const cli_option k_options[] = {
    {"image", "FILE", "input image (JPEG/PNG)", 0},
    {"classes", "LIST", "class names: a,b,c or @FILE (one class per line, synonyms comma-separated)", 0},
    CLI_OPT_CLASS_EMBEDDINGS,
    {"method", "NAME", "surgery (default) | clip | both", 0},
    CLI_OPT_RES,
    CLI_OPTS_IMAGE_COMMAND,
};

static const char k_usage[] =
    "usage: clip-surgery classify --model M --image FILE (--classes LIST | --class-embeddings FILE.npy)\n"
    "         [--method surgery|clip|both] [--res R]\n\n"
    "Prints {\"image\": FILE, \"image_size\": [W, H], \"classes\": [...], \"surgery\": [scores], \"clip\": [scores]}\n"
    "(the methods asked for): surgery = row 0 of class-weighted feature surgery (the authors' multi-label\n"
    "protocol), clip = plain CLIP's softmax(100 x cosine) over classes; a class scores with its best name.\n"
    "Example: clip-surgery classify --model RN50 --image photo.jpg --classes @data/classes/nuswide81.txt";

static void print_scores(const char *key, const float *scores, int C, int last) {
    printf("  \"%s\": [", key);
    for (int c = 0; c < C; c++) printf("%s%.9g", c ? ", " : "", scores[c]);
    printf("]%s\n", last ? "" : ",");
}

static int classify(const cli_args *a, cs_model *m, cs_classes *cl, int want_surgery, int want_clip) {
    cs_classify_options o = cs_classify_defaults();
    cli_int(a, "res", 0, 16, 4096, &o.resolution); /* checked already */
    int R = o.resolution ? o.resolution : cs_model_config(m)->image_resolution, C = cs_classes_count(cl);
    cs_image img = {0};
    cs_status s = cs_image_load(cli_get(a, "image"), cli_image_options(), &img);
    if (s != CS_OK) return cli_fail(s);
    float *surgery = cli_xmalloc(sizeof(float) * C), *clip = cli_xmalloc(sizeof(float) * C);
    if (want_surgery) s = cs_classify(m, cl, &img, &o, surgery);
    o.method = CS_METHOD_CLIP;
    if (s == CS_OK && want_clip) s = cs_classify(m, cl, &img, &o, clip);
    if (s == CS_OK) {
        printf("{\n  \"image\": ");
        cli_print_json_string(stdout, cli_get(a, "image"));
        printf(",\n  \"image_size\": [%d, %d],\n  \"resolution\": %d,\n  \"classes\": [", img.width, img.height, R);
        for (int c = 0; c < C; c++) {
            printf("%s", c ? ", " : "");
            cli_print_json_string(stdout, cs_classes_name(cl, c));
        }
        printf("],\n");
        if (want_surgery) print_scores("surgery", surgery, C, !want_clip);
        if (want_clip) print_scores("clip", clip, C, 1);
        printf("}\n");
    }
    free(surgery);
    free(clip);
    cs_image_free(&img);
    return s == CS_OK ? 0 : cli_fail(s);
}

static int check(const cli_args *a) {
    if (!cli_has(a, "image") || cli_has(a, "classes") + cli_has(a, "class-embeddings") != 1) {
        cli_error("classify needs --image FILE and one of --classes, --class-embeddings (see --help)");
        return CLI_EXIT_USAGE;
    }
    const char *method = cli_get(a, "method");
    if (method && strcmp(method, "surgery") && strcmp(method, "clip") && strcmp(method, "both")) {
        cli_error("--method '%s' is not surgery, clip or both", method);
        return CLI_EXIT_USAGE;
    }
    int res;
    return cli_int(a, "res", 0, 16, 4096, &res) ? 0 : CLI_EXIT_USAGE;
}

static int run(cli_ctx *c) {
    const char *method = cli_get(&c->a, "method");
    int want_surgery = !method || strcmp(method, "clip"), want_clip = method && strcmp(method, "surgery");
    cs_classes *cl;
    int rc = cli_classes_load(&c->a, c->m, NULL, 0, &cl);
    if (!rc && want_surgery && cs_classes_num_names(cl) == 1)
        cli_note("note: one class: the empty prompt gives the redundant features");
    if (!rc) rc = classify(&c->a, c->m, cl, want_surgery, want_clip);
    cs_classes_free(cl);
    return rc;
}

const cli_command cmd_classify = {
    "classify", "multi-label class scores (JSON)", CLI_OPTIONS(k_options), k_usage, CLI_MODEL, check, run,
};
