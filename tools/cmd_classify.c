/* clip-surgery classify: multi-label class scores of an image as JSON; CLIP
 * Surgery's (row 0 of class-weighted feature surgery) or plain CLIP's
 * softmax(100 x cos). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "seg.h"

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
    "protocol), clip = plain CLIP's softmax(100 x cosine) over classes; a class scores with its best name.";

static void print_scores(const char *key, const float *scores, int C, int last) {
    printf("  \"%s\": [", key);
    for (int c = 0; c < C; c++) printf("%s%.9g", c ? ", " : "", scores[c]);
    printf("]%s\n", last ? "" : ",");
}

static int classify(const cli_args *a, cs_model *m, const seg_classes *sc, int want_surgery, int want_clip) {
    int R;
    if (!cli_int(a, "res", cs_model_config(m)->image_resolution, 16, 4096, &R)) return CLI_EXIT_USAGE;
    cs_image img = {0};
    cs_status s = cs_image_load(cli_get(a, "image"), cli_image_options(), &img);
    if (s != CS_OK) return cli_fail(s);
    float *surgery = cli_xmalloc(sizeof(float) * sc->C), *clip = cli_xmalloc(sizeof(float) * sc->C);
    int rc = want_surgery ? seg_classify(m, 1, R, sc, &img, surgery) : 0;
    if (!rc && want_clip) rc = seg_classify(m, 0, R, sc, &img, clip);
    if (!rc) {
        printf("{\n  \"image\": ");
        seg_print_json_string(stdout, cli_get(a, "image"));
        printf(",\n  \"image_size\": [%d, %d],\n  \"resolution\": %d,\n  \"classes\": [", img.width, img.height, R);
        for (int c = 0; c < sc->C; c++) {
            printf("%s", c ? ", " : "");
            seg_print_json_string(stdout, sc->names[c]);
        }
        printf("],\n");
        if (want_surgery) print_scores("surgery", surgery, sc->C, !want_clip);
        if (want_clip) print_scores("clip", clip, sc->C, 1);
        printf("}\n");
    }
    free(surgery);
    free(clip);
    cs_image_free(&img);
    return rc;
}

int cmd_classify(int argc, char **argv) {
    cli_args a;
    int rc;
    if (cli_parse(&a, k_options, sizeof k_options / sizeof *k_options, k_usage, argc, argv, &rc))
        return rc;
    if ((rc = cli_no_positional(&a))) return rc;
    if (!cli_has(&a, "image") || cli_has(&a, "classes") + cli_has(&a, "class-embeddings") != 1) {
        cli_error("classify needs --image FILE and one of --classes, --class-embeddings (see --help)");
        return CLI_EXIT_USAGE;
    }
    const char *method = cli_get(&a, "method");
    if (method && strcmp(method, "surgery") && strcmp(method, "clip") && strcmp(method, "both")) {
        cli_error("--method '%s' is not surgery, clip or both", method);
        return CLI_EXIT_USAGE;
    }
    int want_surgery = !method || strcmp(method, "clip"), want_clip = method && strcmp(method, "surgery");
    cli_set_threads(cli_get(&a, "threads"));
    cs_model *m;
    if ((rc = cli_load_model(&a, &m))) return rc;
    seg_classes sc;
    rc = seg_classes_load(&a, m, NULL, &sc);
    if (!rc) rc = classify(&a, m, &sc, want_surgery, want_clip);
    seg_classes_free(&sc);
    cs_model_free(m);
    return rc;
}
