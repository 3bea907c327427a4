/* clip-surgery classify: multi-label class scores of an image as JSON; CLIP
 * Surgery's (row 0 of class-weighted feature surgery) or softmax(100 x cos)
 * of token 0 of plain CLIP or a later method. The job is cs_classify. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const cli_option k_options[] = {
    {"image", "FILE", "input image (JPEG/PNG)", 0},
    {"classes", "LIST", "class names: a,b,c or @FILE (one class per line, synonyms comma-separated)", 0},
    CLI_OPT_CLASS_EMBEDDINGS,
    {"method", "NAME", CLI_METHOD_HELP ", or both (surgery and clip)", 0},
    CLI_OPT_RES,
    CLI_OPTS_IMAGE_COMMAND,
};

static const char k_usage[] =
    "usage: clip-surgery classify --model M --image FILE (--classes LIST | --class-embeddings FILE.npy)\n"
    "         [--method M|both] [--res R]\n\n"
    "Prints {\"image\": FILE, \"image_size\": [W, H], \"classes\": [...], \"<method>\": [scores], ...}\n"
    "(the methods asked for): surgery = row 0 of class-weighted feature surgery (the authors' multi-label\n"
    "protocol), clip = plain CLIP's softmax(100 x cosine) over classes, the later methods the same softmax\n"
    "of their tower's token 0; a class scores with its best name.\n"
    "Example: clip-surgery classify --model RN50 --image photo.jpg --classes @data/classes/nuswide81.txt";

static void print_scores(const char *key, const float *scores, int C, int last) {
    printf("  \"%s\": [", key);
    for (int c = 0; c < C; c++) printf("%s%.9g", c ? ", " : "", scores[c]);
    printf("]%s\n", last ? "" : ",");
}

/* Scores of methods[0..n-1], printed in that order. */
static int classify(const cli_args *a, cs_model *m, cs_classes *cl, const cs_method *methods, int n) {
    cs_classify_options o = cs_classify_defaults();
    cli_int(a, "res", 0, 16, 4096, &o.resolution); /* checked already */
    int R = o.resolution ? o.resolution : cs_model_config(m)->image_resolution, C = cs_classes_count(cl);
    cs_image img = {0};
    cs_status s = cs_image_load(cli_get(a, "image"), cli_image_options(), &img);
    if (s != CS_OK) return cli_fail(s);
    float *scores = cli_xmalloc(sizeof(float) * C * n);
    for (int i = 0; s == CS_OK && i < n; i++) {
        o.method = methods[i];
        s = cs_classify(m, cl, &img, 1, &o, scores + (size_t)i * C);
    }
    if (s == CS_OK) {
        printf("{\n  \"image\": ");
        cli_print_json_string(stdout, cli_get(a, "image"));
        printf(",\n  \"image_size\": [%d, %d],\n  \"resolution\": %d,\n  \"classes\": [", img.width, img.height, R);
        for (int c = 0; c < C; c++) {
            printf("%s", c ? ", " : "");
            cli_print_json_string(stdout, cs_classes_name(cl, c));
        }
        printf("],\n");
        for (int i = 0; i < n; i++) print_scores(cs_method_name(methods[i]), scores + (size_t)i * C, C, i == n - 1);
        printf("}\n");
    }
    free(scores);
    cs_image_free(&img);
    return s == CS_OK ? 0 : cli_fail(s);
}

static int check(const cli_args *a) {
    if (!cli_has(a, "image") || cli_has(a, "classes") + cli_has(a, "class-embeddings") != 1) {
        cli_error("classify needs --image FILE and one of --classes, --class-embeddings (see --help)");
        return CLI_EXIT_USAGE;
    }
    const char *method = cli_get(a, "method");
    cs_method one;
    if ((!method || strcmp(method, "both")) && !cli_method(a, &one)) return CLI_EXIT_USAGE;
    int res;
    return cli_int(a, "res", 0, 16, 4096, &res) ? 0 : CLI_EXIT_USAGE;
}

static int run(cli_ctx *c) {
    const char *method = cli_get(&c->a, "method");
    cs_method methods[2] = {CS_METHOD_SURGERY, CS_METHOD_CLIP};
    int n = method && !strcmp(method, "both") ? 2 : 1;
    if (n == 1) cli_method(&c->a, &methods[0]); /* checked already */
    int want_surgery = methods[0] == CS_METHOD_SURGERY;
    cs_classes *cl;
    int rc = cli_classes_load(&c->a, c->m, NULL, 0, &cl);
    if (!rc && want_surgery && cs_classes_num_names(cl) == 1)
        cli_note("note: one class: the empty prompt gives the redundant features");
    if (!rc) rc = classify(&c->a, c->m, cl, methods, n);
    cs_classes_free(cl);
    return rc;
}

const cli_command cmd_classify = {
    "classify", "multi-label class scores (JSON)", CLI_OPTIONS(k_options), k_usage, CLI_MODEL, check, run,
};
