/* clip-surgery explain: similarity maps (heatmaps) of classes or a text over
 * images, with CLIP Surgery (default) or plain CLIP. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "args.h"
#include "base/fileio.h"
#include "cli.h"
#include "formats/npy.h"

static const cli_option k_options[] = {
    {"image", "FILE", "input image (JPEG/PNG); repeat it, or give a folder", 1},
    {"pixels", "FILE.npy", "normalized pixels float32 [3,R,R] or [1,3,R,R] instead of an image", 0},
    {"size", "WxH", "with --pixels: map size (default R x R)", 0},
    {"res", "R", "input resolution (default: the model's native one)", 0},
    {"method", "NAME", "surgery (default) | clip", 0},
    {"classes", "LIST", "class names: a,b,c or @FILE (one class per line)", 0},
    {"class-embeddings", "FILE.npy", "float32 [C, D] class embeddings, used as given", 0},
    {"text", "T", "one text; its redundant features come from the empty prompt", 0},
    {"redundant", "MODE", "classes (default with --classes) | empty (default with --text)", 0},
    {"npy", NULL, "also write pixels, image_tokens, class_embeddings, similarity, maps (.npy)", 0},
    {"output", "DIR", "output folder (-o)", 0},
    CLI_OPTS_MODEL,
    CLI_OPTS_TEXT,
    CLI_OPTS_SURGERY,
};

static const char k_usage[] =
    "usage: clip-surgery explain --model M (--image FILE | --pixels FILE.npy [--size WxH]) [--res R]\n"
    "         [--method surgery|clip] (--classes LIST | --class-embeddings FILE.npy | --text T)\n"
    "         [--redundant classes|empty] [--npy] -o DIR\n\n"
    "Writes, per class, NAME.png (JET heatmap over the image) and NAME_map.png (the map in gray);\n"
    "with several images (or a folder), one subfolder per image.";

/* A file name from any class text: letters, digits, '-', '_', '.' kept, the
 * rest '_'; an empty name and duplicates get the class index appended. */
static char **safe_names(char **names, int C) {
    char **out = calloc((size_t)C, sizeof *out);
    for (int c = 0; c < C; c++) {
        size_t n = strlen(names[c]);
        if (n > 100) n = 100;
        out[c] = malloc(n + 16);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            char ch = names[c][i];
            int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                     ch == '-' || ch == '_' || (ch == '.' && k > 0);
            out[c][k++] = ok ? ch : '_';
        }
        out[c][k] = 0;
        int dup = k == 0;
        for (int p = 0; p < c && !dup; p++) dup = !strcmp(out[p], out[c]);
        if (dup) snprintf(out[c] + k, 16, "_%d", c);
    }
    return out;
}

static cs_status write_npy2(const char *dir, const char *name, int64_t a, int64_t b, const float *x) {
    char path[4096];
    int64_t shape[2] = {a, b};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return cs_npy_write(path, CS_DT_F32, 2, shape, x);
}

/* Tokens -> similarity -> maps -> files, for one input. */
static int explain_one(cs_model *m, int surgery, const cli_class_set *cl, char **files,
                       const cli_input *in, int npy, const char *dir) {
    int R = in->R, W = in->width, H = in->height, C = cl->C, D = cl->D;
    int T = cs_model_num_tokens(m, R);
    float *tokens = malloc(sizeof(float) * (size_t)T * D), *sim = malloc(sizeof(float) * (size_t)T * C);
    float *maps = malloc(sizeof(float) * (size_t)W * H * C);
    uint8_t *pic = malloc((size_t)W * H * 3);
    cs_status s = cs_encode_image(m, in->pixels, R, surgery ? CS_VISION_SURGERY : CS_VISION_PLAIN, tokens);
    if (s == CS_OK)
        s = surgery ? cs_feature_surgery(tokens, T, cl->emb, C, D, cl->redundant, sim)
                    : cs_similarity(tokens, T, cl->emb, C, D, sim);
    if (s == CS_OK) s = cs_similarity_maps(sim, T, C, H, W, maps);
    if (s == CS_OK) s = cs_mkdirs(dir);
    if (s == CS_OK && npy) {
        int64_t px_shape[3] = {3, R, R}, map_shape[3] = {H, W, C};
        char path[4096];
        snprintf(path, sizeof path, "%s/pixels.npy", dir);
        s = cs_npy_write(path, CS_DT_F32, 3, px_shape, in->pixels);
        if (s == CS_OK) s = write_npy2(dir, "image_tokens.npy", T, D, tokens);
        if (s == CS_OK) s = write_npy2(dir, "class_embeddings.npy", C, D, cl->emb);
        if (s == CS_OK) s = write_npy2(dir, "similarity.npy", T, C, sim);
        snprintf(path, sizeof path, "%s/maps.npy", dir);
        if (s == CS_OK) s = cs_npy_write(path, CS_DT_F32, 3, map_shape, maps);
    }
    for (int c = 0; s == CS_OK && c < C; c++) {
        char path[4096];
        cs_heatmap_overlay(maps + c, C, (size_t)W * H, in->rgb, pic);
        snprintf(path, sizeof path, "%s/%s.png", dir, files[c]);
        s = cs_png_write(path, W, H, 3, pic);
        cs_map_to_gray(maps + c, C, (size_t)W * H, pic);
        snprintf(path, sizeof path, "%s/%s_map.png", dir, files[c]);
        if (s == CS_OK) s = cs_png_write(path, W, H, 1, pic);
    }
    free(tokens);
    free(sim);
    free(maps);
    free(pic);
    return s == CS_OK ? 0 : cli_fail(s);
}

/* Images: every --image, a folder's JPEG/PNG files expanded. */
static int collect_images(const cli_args *a, char ***out, int *n) {
    *out = NULL;
    *n = 0;
    for (int i = 0; i < cli_count(a, "image"); i++) {
        const char *p = cli_value(a, "image", i);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            struct dirent **list;
            int k = scandir(p, &list, NULL, alphasort);
            for (int e = 0; e < k; e++) {
                const char *ext = strrchr(list[e]->d_name, '.');
                if (ext && (!strcasecmp(ext, ".jpg") || !strcasecmp(ext, ".jpeg") || !strcasecmp(ext, ".png"))) {
                    *out = realloc(*out, sizeof **out * (size_t)(*n + 1));
                    size_t len = strlen(p) + strlen(list[e]->d_name) + 2;
                    (*out)[*n] = malloc(len);
                    snprintf((*out)[(*n)++], len, "%s/%s", p, list[e]->d_name);
                }
                free(list[e]);
            }
            free(list);
        } else {
            *out = realloc(*out, sizeof **out * (size_t)(*n + 1));
            (*out)[(*n)++] = strdup(p);
        }
    }
    if (*n == 0) {
        cli_error("no JPEG or PNG images found in the --image arguments");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* Output folder of an image: DIR alone for one image, DIR/<stem> for several. */
static void image_dir(const char *out, const char *path, int several, char *dir, size_t n) {
    if (!several) {
        snprintf(dir, n, "%s", out);
        return;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    snprintf(dir, n, "%s/%.*s", out, (int)(dot ? dot - base : (long)strlen(base)), base);
}

static int explain_all(const cli_args *a, cs_model *m, int surgery, const cli_class_set *cl,
                       const char *out) {
    char **files = safe_names(cl->names, cl->C);
    int npy = cli_has(a, "npy"), rc = 0;
    if (cli_has(a, "pixels")) {
        cli_input in;
        rc = cli_input_from_pixels(cli_get(a, "pixels"), cli_get(a, "size"), &in);
        if (!rc) rc = explain_one(m, surgery, cl, files, &in, npy, out);
        cli_input_free(&in);
    } else {
        int R, n = 0;
        char **images = NULL;
        if (!cli_int(a, "res", cs_model_config(m)->image_resolution, 16, 4096, &R)) rc = CLI_EXIT_USAGE;
        if (!rc) rc = collect_images(a, &images, &n);
        for (int i = 0; !rc && i < n; i++) {
            char dir[4096];
            cli_input in;
            image_dir(out, images[i], n > 1, dir, sizeof dir);
            if (n > 1) fprintf(stderr, "[%d/%d] %s\n", i + 1, n, images[i]);
            rc = cli_input_from_image(images[i], R, &in);
            if (!rc) rc = explain_one(m, surgery, cl, files, &in, npy, dir);
            cli_input_free(&in);
        }
        for (int i = 0; i < n; i++) free(images[i]);
        free(images);
    }
    for (int c = 0; c < cl->C; c++) free(files[c]);
    free(files);
    return rc;
}

int cmd_explain(int argc, char **argv) {
    cli_args a;
    int rc;
    if (cli_parse(&a, k_options, sizeof k_options / sizeof *k_options, k_usage, argc, argv, &rc))
        return rc;
    const char *out = cli_get(&a, "output"), *method = cli_get(&a, "method");
    int sources = cli_has(&a, "classes") + cli_has(&a, "class-embeddings") + cli_has(&a, "text");
    if (!out || sources != 1 || cli_has(&a, "image") == cli_has(&a, "pixels")) {
        cli_error("explain needs -o DIR, one of --image/--pixels and one of --classes, "
                  "--class-embeddings, --text (see --help)");
        return CLI_EXIT_USAGE;
    }
    if (method && strcmp(method, "surgery") && strcmp(method, "clip")) {
        cli_error("--method '%s' is not surgery or clip", method);
        return CLI_EXIT_USAGE;
    }
    if (cli_has(&a, "size") && !cli_has(&a, "pixels")) {
        cli_error("--size goes with --pixels (an image's maps have the image's size)");
        return CLI_EXIT_USAGE;
    }
    cli_set_threads(cli_get(&a, "threads"));
    int surgery = !method || !strcmp(method, "surgery");
    cs_model *m;
    cli_class_set cl;
    if ((rc = cli_load_model(&a, &m))) return rc;
    rc = cli_class_set_load(&a, m, surgery ? CLI_REDUNDANT : 0, &cl);
    if (!rc) rc = explain_all(&a, m, surgery, &cl, out);
    cli_class_set_free(&cl);
    cs_model_free(m);
    return rc;
}
