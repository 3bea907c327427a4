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
    {"model", "M", "model file (.safetensors, .pt) or folder", 0},
    {"image", "FILE", "input image (JPEG/PNG); repeat it, or give a folder", 1},
    {"pixels", "FILE.npy", "normalized pixels float32 [3,R,R] or [1,3,R,R] instead of an image", 0},
    {"size", "WxH", "with --pixels: map size (default R x R)", 0},
    {"res", "R", "input resolution (default: the model's native one)", 0},
    {"method", "NAME", "surgery (default) | clip", 0},
    {"classes", "LIST", "class names: a,b,c or @FILE (one class per line)", 0},
    {"class-embeddings", "FILE.npy", "float32 [C, D] class embeddings, used as given", 0},
    {"text", "T", "one text; its redundant features come from the empty prompt", 0},
    {"redundant", "MODE", "classes (default with --classes) | empty (default with --text)", 0},
    {"templates", "SPEC", "default (the method's 85) | none | FILE", 0},
    {"vocab", "FILE", "BPE vocabulary (.txt.gz, or a folder with vocab.json + merges.txt)", 0},
    {"npy", NULL, "also write pixels, image_tokens, class_embeddings, similarity, maps (.npy)", 0},
    {"threads", "N", "threads (default: all cores)", 0},
    {"output", "DIR", "output folder (-o)", 0},
};

static const char k_usage[] =
    "usage: clip-surgery explain --model M (--image FILE | --pixels FILE.npy [--size WxH]) [--res R]\n"
    "         [--method surgery|clip] (--classes LIST | --class-embeddings FILE.npy | --text T)\n"
    "         [--redundant classes|empty] [--npy] -o DIR\n\n"
    "Writes, per class, NAME.png (JET heatmap over the image) and NAME_map.png (the map in gray);\n"
    "with several images (or a folder), one subfolder per image.";

typedef struct explain_job {
    cs_model *m;
    int surgery;        /* architecture + feature surgery, else plain CLIP */
    int C, D;
    char **names;       /* file-safe, unique class names */
    const float *classes;
    const float *redundant; /* explicit redundant features [D], or NULL */
    int npy;
} explain_job;

/* A file name from any class text: letters, digits, '-', '_', '.' kept, the
 * rest '_'; a leading '.' and duplicates get the class index appended. */
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
static int explain_one(const explain_job *j, const float *pixels, int R, const uint8_t *image_rgb,
                       int W, int H, const char *dir) {
    int T = cs_model_num_tokens(j->m, R), C = j->C, D = j->D;
    float *tokens = malloc(sizeof(float) * (size_t)T * D), *sim = malloc(sizeof(float) * (size_t)T * C);
    float *maps = malloc(sizeof(float) * (size_t)W * H * C);
    uint8_t *pic = malloc((size_t)W * H * 3);
    cs_status s = cs_encode_image(j->m, pixels, R, j->surgery ? CS_VISION_SURGERY : CS_VISION_PLAIN, tokens);
    if (s == CS_OK)
        s = j->surgery ? cs_feature_surgery(tokens, T, j->classes, C, D, j->redundant, sim)
                       : cs_similarity(tokens, T, j->classes, C, D, sim);
    if (s == CS_OK) s = cs_similarity_maps(sim, T, C, H, W, maps);
    if (s == CS_OK) s = cs_mkdirs(dir);
    if (s == CS_OK && j->npy) {
        int64_t px_shape[3] = {3, R, R}, map_shape[3] = {H, W, C};
        char path[4096];
        snprintf(path, sizeof path, "%s/pixels.npy", dir);
        s = cs_npy_write(path, CS_DT_F32, 3, px_shape, pixels);
        if (s == CS_OK) s = write_npy2(dir, "image_tokens.npy", T, D, tokens);
        if (s == CS_OK) s = write_npy2(dir, "class_embeddings.npy", C, D, j->classes);
        if (s == CS_OK) s = write_npy2(dir, "similarity.npy", T, C, sim);
        snprintf(path, sizeof path, "%s/maps.npy", dir);
        if (s == CS_OK) s = cs_npy_write(path, CS_DT_F32, 3, map_shape, maps);
    }
    for (int c = 0; s == CS_OK && c < C; c++) {
        char path[4096];
        cs_heatmap_overlay(maps + c, C, (size_t)W * H, image_rgb, pic);
        snprintf(path, sizeof path, "%s/%s.png", dir, j->names[c]);
        s = cs_png_write(path, W, H, 3, pic);
        cs_map_to_gray(maps + c, C, (size_t)W * H, pic);
        snprintf(path, sizeof path, "%s/%s_map.png", dir, j->names[c]);
        if (s == CS_OK) s = cs_png_write(path, W, H, 1, pic);
    }
    free(tokens);
    free(sim);
    free(maps);
    free(pic);
    return s == CS_OK ? 0 : cli_fail(s);
}

static int parse_size(const char *v, int *w, int *h) {
    char tail;
    if (sscanf(v, "%dx%d%c", w, h, &tail) != 2 || *w <= 0 || *h <= 0 || *w > 65536 || *h > 65536) {
        cli_error("--size '%s' is not WxH (e.g. 640x480)", v);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static int explain_pixels(const explain_job *j, const cli_args *a, const char *dir) {
    const char *path = cli_get(a, "pixels");
    cs_array px;
    cs_status s = cs_npy_read(path, &px);
    if (s != CS_OK) return cli_fail(s);
    int lead = px.ndim == 4 ? 1 : 0;
    int ok = px.dtype == CS_DT_F32 && (px.ndim == 3 || (px.ndim == 4 && px.shape[0] == 1)) &&
             px.shape[lead] == 3 && px.shape[lead + 1] == px.shape[lead + 2];
    if (!ok) {
        cs_array_free(&px);
        cli_error("%s: --pixels must be float32 [3, R, R] or [1, 3, R, R]", path);
        return CLI_EXIT_USAGE;
    }
    int R = (int)px.shape[lead + 1], W = R, H = R, rc = 0;
    const char *size = cli_get(a, "size");
    if (size) rc = parse_size(size, &W, &H);
    if (!rc) rc = explain_one(j, px.data, R, NULL, W, H, dir);
    cs_array_free(&px);
    return rc;
}

static int explain_image(const explain_job *j, const char *path, int R, const char *dir) {
    cs_image img = {0}, small = {0};
    cs_status s = cs_image_load(path, NULL, &img);
    if (s == CS_OK) s = cs_image_resize(&img, R, R, &small);
    if (s != CS_OK) {
        cs_image_free(&img);
        return cli_fail(s);
    }
    float *pixels = malloc(sizeof(float) * 3 * (size_t)R * R);
    cs_image_normalize(&small, pixels);
    int rc = explain_one(j, pixels, R, img.rgb, img.width, img.height, dir);
    free(pixels);
    cs_image_free(&img);
    cs_image_free(&small);
    return rc;
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

static int explain_images(const explain_job *j, const cli_args *a, const char *out) {
    int R;
    const cs_config *c = cs_model_config(j->m);
    if (!cli_int(a, "res", c->image_resolution, 16, 4096, &R)) return CLI_EXIT_USAGE;
    char **images;
    int n, rc = collect_images(a, &images, &n);
    for (int i = 0; !rc && i < n; i++) {
        char dir[4096];
        image_dir(out, images[i], n > 1, dir, sizeof dir);
        if (n > 1) fprintf(stderr, "[%d/%d] %s\n", i + 1, n, images[i]);
        rc = explain_image(j, images[i], R, dir);
    }
    for (int i = 0; i < n; i++) free(images[i]);
    free(images);
    return rc;
}

/* Class embeddings [C, D] and names from --classes, --text or a file. */
static int load_classes(const cli_args *a, cs_model *m, cs_tokenizer **tok, const char **templates,
                        int nt, float **emb, char ***names, int *C) {
    int D = cs_model_config(m)->embed_dim;
    const char *file = cli_get(a, "class-embeddings");
    if (file) {
        cs_array e;
        cs_status s = cs_npy_read(file, &e);
        if (s != CS_OK) return cli_fail(s);
        if (e.dtype != CS_DT_F32 || e.ndim != 2 || e.shape[1] != D || e.shape[0] < 1) {
            cs_array_free(&e);
            cli_error("%s: --class-embeddings must be float32 [C, %d]", file, D);
            return CLI_EXIT_USAGE;
        }
        *C = (int)e.shape[0];
        *emb = e.data;
        *names = calloc((size_t)*C, sizeof **names);
        for (int c = 0; c < *C; c++) {
            (*names)[c] = malloc(32);
            snprintf((*names)[c], 32, "class%d", c);
        }
        return 0;
    }
    cli_classes cl = {0};
    int rc;
    if (cli_has(a, "text")) {
        cl.n = 1;
        cl.names = malloc(sizeof *cl.names);
        cl.names[0] = strdup(cli_get(a, "text"));
        rc = 0;
    } else {
        rc = cli_parse_classes(cli_get(a, "classes"), &cl);
    }
    if (!rc && !*tok) rc = cli_load_tokenizer(cli_get(a, "vocab"), cli_get(a, "model"), tok);
    if (!rc) {
        *emb = cs_alloc((size_t)cl.n * D, sizeof(float));
        cs_status s = cs_class_embeddings(m, *tok, (const char *const *)cl.names, cl.n, templates, nt, *emb);
        if (s != CS_OK) rc = cli_fail(s);
        *C = cl.n;
        *names = calloc((size_t)cl.n, sizeof **names);
        for (int c = 0; c < cl.n; c++) (*names)[c] = strdup(cl.names[c]);
    }
    if (cli_has(a, "text")) {
        free(cl.names[0]);
        free(cl.names);
    } else {
        cli_classes_free(&cl);
    }
    return rc;
}

int cmd_explain(int argc, char **argv) {
    cli_args a;
    int rc;
    if (cli_parse(&a, k_options, sizeof k_options / sizeof *k_options, k_usage, argc, argv, &rc))
        return rc;
    const char *out = cli_get(&a, "output"), *method = cli_get(&a, "method");
    const char *redundant = cli_get(&a, "redundant");
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
    if (redundant && strcmp(redundant, "classes") && strcmp(redundant, "empty")) {
        cli_error("--redundant '%s' is not classes or empty", redundant);
        return CLI_EXIT_USAGE;
    }
    if (cli_has(&a, "size") && !cli_has(&a, "pixels")) {
        cli_error("--size goes with --pixels (an image's maps have the image's size)");
        return CLI_EXIT_USAGE;
    }
    cli_set_threads(cli_get(&a, "threads"));
    explain_job j = {0};
    j.surgery = !method || !strcmp(method, "surgery");
    j.npy = cli_has(&a, "npy");
    char *tstore = NULL;
    const char **templates = NULL;
    int nt = 0;
    cs_tokenizer *tok = NULL;
    float *emb = NULL, *empty = NULL;
    char **names = NULL;
    if ((rc = cli_load_model(cli_get(&a, "model"), &j.m))) return rc;
    j.D = cs_model_config(j.m)->embed_dim;
    rc = cli_load_templates(cli_get(&a, "templates"), &tstore, &templates, &nt);
    if (!rc) rc = load_classes(&a, j.m, &tok, templates, nt, &emb, &names, &j.C);
    int explicit_mode = redundant ? !strcmp(redundant, "empty") : cli_has(&a, "text");
    if (!rc && j.surgery && !explicit_mode && j.C == 1) {
        fprintf(stderr, "clip-surgery: note: one class: class-weighted redundancy is identically "
                        "zero, so the empty prompt gives the redundant features instead\n");
        explicit_mode = 1;
    }
    if (!rc && j.surgery && explicit_mode) {
        if (!tok) rc = cli_load_tokenizer(cli_get(&a, "vocab"), cli_get(&a, "model"), &tok);
        const char *empty_name = "";
        empty = cs_alloc((size_t)j.D, sizeof(float));
        if (!rc) {
            cs_status s = cs_class_embeddings(j.m, tok, &empty_name, 1, templates, nt, empty);
            if (s != CS_OK) rc = cli_fail(s);
        }
        j.redundant = empty;
    }
    if (!rc) {
        j.classes = emb;
        j.names = safe_names(names, j.C);
        rc = cli_has(&a, "pixels") ? explain_pixels(&j, &a, out) : explain_images(&j, &a, out);
        for (int c = 0; c < j.C; c++) free(j.names[c]);
        free(j.names);
    }
    for (int c = 0; names && c < j.C; c++) free(names[c]);
    free(names);
    cs_free(emb);
    cs_free(empty);
    if (tstore) free(templates);
    cs_free(tstore);
    cs_tokenizer_free(tok);
    cs_model_free(j.m);
    return rc;
}
