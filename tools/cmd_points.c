/* clip-surgery points: point prompts for SAM from CLIP Surgery maps, as JSON
 * (DESIGN.md section 8). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "base/fileio.h"
#include "cli.h"
#include "formats/npy.h"

static const cli_option k_options[] = {
    {"image", "FILE", "input image (JPEG/PNG)", 0},
    {"pixels", "FILE.npy", "normalized pixels float32 [3,R,R] or [1,3,R,R] instead of an image", 0},
    {"size", "WxH", "with --pixels: the image size the points refer to (required)", 0},
    {"res", "R", "input resolution (default: the model's native one)", 0},
    {"classes", "LIST", "class names: a,b,c or @FILE; class-weighted redundancy by default", 0},
    {"class-embeddings", "FILE.npy", "float32 [C, D] class embeddings, used as given", 0},
    {"target", "NAMES", "with --classes: the classes to give points for (a,b; default all)", 0},
    {"text", "T", "one text, or \"a+b\" for combined targets; redundancy from the empty prompt", 0},
    {"t", "X", "threshold on the normalized map (default 0.8)", 0},
    {"redundant", "MODE", "classes | empty", 0},
    {"npy", NULL, "also write points_K.npy (int32 [2n, 2]) and labels_K.npy (uint8 [2n]) into -o DIR", 0},
    {"output", "DIR", "output folder for --npy (-o)", 0},
    CLI_OPTS_MODEL,
    CLI_OPTS_TEXT,
    CLI_OPTS_SURGERY,
};

static const char k_usage[] =
    "usage: clip-surgery points --model M (--image FILE | --pixels FILE.npy --size WxH) [--res R]\n"
    "         (--classes LIST [--target NAMES] | --text T) [--t 0.8] [--redundant classes|empty]\n"
    "         [--npy -o DIR]\n\n"
    "Prints {\"image_size\": [W, H], \"targets\": {NAME: {\"points\": [[x, y], ...], \"labels\": [1, ..., 0, ...]}}}:\n"
    "positives (label 1) then negatives (label 0). --text \"a+b\": negatives from the mean map, then\n"
    "each text's positives.";

static void print_target(const char *name, const int32_t *pts, const uint8_t *labels, int n, int last) {
    printf("    \"");
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if ((unsigned char)*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    printf("\": {\"points\": [");
    for (int i = 0; i < n; i++) printf("%s[%d, %d]", i ? ", " : "", pts[2 * i], pts[2 * i + 1]);
    printf("], \"labels\": [");
    for (int i = 0; i < n; i++) printf("%s%d", i ? ", " : "", labels[i]);
    printf("]}%s\n", last ? "" : ",");
}

static cs_status write_points_npy(const char *dir, int k, const int32_t *pts, const uint8_t *labels, int n) {
    char path[4096];
    int64_t ps[2] = {n, 2}, ls[1] = {n};
    snprintf(path, sizeof path, "%s/points_%d.npy", dir, k);
    cs_status s = cs_npy_write(path, CS_DT_I32, 2, ps, pts);
    snprintf(path, sizeof path, "%s/labels_%d.npy", dir, k);
    return s == CS_OK ? cs_npy_write(path, CS_DT_U8, 1, ls, labels) : s;
}

/* Which classes get points: --target names, or all. */
static int select_targets(const cli_args *a, const cli_class_set *cl, int *chosen) {
    const char *t = cli_get(a, "target");
    for (int c = 0; c < cl->C; c++) chosen[c] = !t;
    if (!t) return 0;
    char *copy = strdup(t), *save = NULL;
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

static int run_points(const cli_args *a, cs_model *m, const cli_class_set *cl, const cli_input *in,
                      float t, int combined) {
    int T = cs_model_num_tokens(m, in->R), C = cl->C, D = cl->D, rc = 0;
    float *tokens = malloc(sizeof(float) * (size_t)T * D), *sim = malloc(sizeof(float) * (size_t)T * C);
    int32_t *pts = malloc(sizeof(int32_t) * 2 * (size_t)T * (C + 1));
    uint8_t *labels = malloc((size_t)T * (C + 1));
    int *chosen = calloc((size_t)C, sizeof *chosen);
    const char *dir = cli_has(a, "npy") ? cli_get(a, "output") : NULL;
    cs_status s = cs_encode_image(m, in->pixels, in->R, CS_VISION_SURGERY, tokens);
    if (s == CS_OK) s = cs_feature_surgery(tokens, T, cl->emb, C, D, cl->redundant, sim);
    if (s == CS_OK && dir) s = cs_mkdirs(dir);
    if (s != CS_OK) rc = cli_fail(s);
    if (!rc) rc = combined ? 0 : select_targets(a, cl, chosen);
    if (!rc) {
        printf("{\n  \"image_size\": [%d, %d],\n  \"targets\": {\n", in->width, in->height);
        if (combined) {
            int n;
            s = cs_combined_points(sim, T, C, in->width, in->height, t, pts, labels, &n);
            if (s == CS_OK) print_target(cli_get(a, "text"), pts, labels, n, 1);
            if (s == CS_OK && dir) s = write_points_npy(dir, 0, pts, labels, n);
        } else {
            int last = -1;
            for (int c = 0; c < C; c++) last = chosen[c] ? c : last;
            for (int c = 0; s == CS_OK && c < C; c++) {
                if (!chosen[c]) continue;
                int n;
                s = cs_similarity_points(sim, T, C, c, in->width, in->height, t, pts, labels, &n);
                if (s == CS_OK) print_target(cl->names[c], pts, labels, n, c == last);
                if (s == CS_OK && dir) s = write_points_npy(dir, c, pts, labels, n);
            }
        }
        printf("  }\n}\n");
        if (s != CS_OK) rc = cli_fail(s);
    }
    free(tokens);
    free(sim);
    free(pts);
    free(labels);
    free(chosen);
    return rc;
}

int cmd_points(int argc, char **argv) {
    cli_args a;
    int rc;
    if (cli_parse(&a, k_options, sizeof k_options / sizeof *k_options, k_usage, argc, argv, &rc))
        return rc;
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
    cli_input in = {0};
    rc = cli_class_set_load(&a, m, CLI_REDUNDANT | (combined ? CLI_SPLIT_PLUS : 0), &cl);
    if (!rc && combined && !cl.redundant) {
        cli_error("combined targets use the empty prompt's redundant features; drop --redundant classes");
        rc = CLI_EXIT_USAGE;
    }
    if (!rc) {
        int R;
        if (cli_has(&a, "pixels")) rc = cli_input_from_pixels(cli_get(&a, "pixels"), cli_get(&a, "size"), &in);
        else if (!cli_int(&a, "res", cs_model_config(m)->image_resolution, 16, 4096, &R)) rc = CLI_EXIT_USAGE;
        else rc = cli_input_from_image(cli_get(&a, "image"), R, &in);
    }
    if (!rc) rc = run_points(&a, m, &cl, &in, t, combined);
    cli_input_free(&in);
    cli_class_set_free(&cl);
    cs_model_free(m);
    return rc;
}
