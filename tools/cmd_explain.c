/* clip-surgery explain: similarity maps (heatmaps) of classes or a text over
 * images, with CLIP Surgery (default) or plain CLIP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "base/fileio.h"
#include "cli.h"
#include "formats/npy.h"

static const cli_option k_options[] = {
    {"image", "FILE", "input image (JPEG/PNG); repeat it, or give a folder", 1},
    {"pixels", "FILE.npy", "normalized pixels float32 [3,R,R] or [1,3,R,R] instead of an image", 0},
    {"size", "WxH", "with --pixels: map size (default R x R)", 0},
    CLI_OPT_RES,
    {"method", "NAME", "surgery (default) | clip", 0},
    {"classes", "LIST", "class names: a,b,c or @FILE (one class per line)", 0},
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
    "         [--method surgery|clip] (--classes LIST | --class-embeddings FILE.npy | --text T)\n"
    "         [--redundant classes|empty] [--npy] -o DIR\n\n"
    "Writes, per class, NAME.png (JET heatmap over the image) and NAME_map.png (the map in gray);\n"
    "with several images (or a folder), one subfolder per image.\n"
    "Example: clip-surgery explain --model ViT-B/16 --image photo.jpg --classes person,bench,sky -o out/";

static cs_status write_npy2(const char *dir, const char *name, int64_t a, int64_t b, const float *x) {
    char path[4096];
    int64_t shape[2] = {a, b};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return cs_npy_write(path, CS_DT_F32, 2, shape, x);
}

/* Images per vision-tower pass: enough rows for efficient GEMMs at 224,
 * little memory. */
#define EXPLAIN_BATCH 4

/* Tokens (already encoded) -> similarity -> maps -> files, for one input. */
static int explain_one(cs_model *m, int surgery, const cli_class_set *cl, char **files,
                       const cli_input *in, const float *tokens, int npy, int png, const char *dir) {
    int R = in->R, W = in->width, H = in->height, C = cl->C, D = cl->D;
    int T = cs_model_num_tokens(m, R);
    float *sim = cli_xmalloc(sizeof(float) * (size_t)T * C);
    float *maps = cli_xmalloc(sizeof(float) * (size_t)W * H * C);
    uint8_t *pic = cli_xmalloc((size_t)W * H * 3);
    cs_status s = surgery ? cs_feature_surgery(tokens, T, cl->emb, C, D, cl->redundant, sim)
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
    for (int c = 0; s == CS_OK && png && c < C; c++) {
        char path[4096];
        cs_heatmap_overlay(maps + c, C, (size_t)W * H, in->rgb, pic);
        snprintf(path, sizeof path, "%s/%s.png", dir, files[c]);
        s = cs_png_write(path, W, H, 3, pic);
        cs_map_to_gray(maps + c, C, (size_t)W * H, pic);
        snprintf(path, sizeof path, "%s/%s.png", dir, files[C + c]);
        if (s == CS_OK) s = cs_png_write(path, W, H, 1, pic);
    }
    free(sim);
    free(maps);
    free(pic);
    return s == CS_OK ? 0 : cli_fail(s);
}

/* Every image of the --image arguments, each into its own subfolder when
 * there are several. */
static int explain_images(const cli_args *a, cs_model *m, int surgery, const cli_class_set *cl,
                          char **files, const char *out) {
    int R, rc = 0;
    cli_image_list images;
    if (!cli_int(a, "res", cs_model_config(m)->image_resolution, 16, 4096, &R)) return CLI_EXIT_USAGE;
    if ((rc = cli_image_list_collect(a, &images))) return rc;
    /* Images go through the vision tower EXPLAIN_BATCH at a time (one
     * packed forward pass), then each is finished on its own. */
    cli_input in[EXPLAIN_BATCH];
    size_t n_px = (size_t)3 * R * R, n_tok = (size_t)cs_model_num_tokens(m, R) * cl->D;
    float *pixels = cli_xmalloc(sizeof(float) * EXPLAIN_BATCH * n_px);
    float *tokens = cli_xmalloc(sizeof(float) * EXPLAIN_BATCH * n_tok);
    for (int first = 0; !rc && first < images.n; first += EXPLAIN_BATCH) {
        int n = images.n - first < EXPLAIN_BATCH ? images.n - first : EXPLAIN_BATCH, loaded = 0;
        for (; !rc && loaded < n; loaded++) {
            rc = cli_input_from_image(images.paths[first + loaded], R, &in[loaded]);
            if (!rc) memcpy(pixels + loaded * n_px, in[loaded].pixels, sizeof(float) * n_px);
        }
        if (rc) loaded--;
        if (!rc) {
            cs_status s = cs_encode_images(m, pixels, n, R, surgery ? CS_VISION_SURGERY : CS_VISION_PLAIN,
                                           tokens);
            if (s != CS_OK) rc = cli_fail(s);
        }
        for (int k = 0; !rc && k < n; k++) {
            char dir[4096];
            cli_image_dir(out, &images, first + k, dir, sizeof dir);
            if (images.n > 1) cli_note("[%d/%d] %s", first + k + 1, images.n, images.paths[first + k]);
            rc = explain_one(m, surgery, cl, files, &in[k], tokens + k * n_tok, cli_has(a, "npy"),
                             !cli_has(a, "no-png"), dir);
        }
        for (int k = 0; k < loaded; k++) cli_input_free(&in[k]);
    }
    free(pixels);
    free(tokens);
    cli_image_list_free(&images);
    return rc;
}

static int explain_all(const cli_args *a, cs_model *m, int surgery, const cli_class_set *cl,
                       const char *out) {
    /* Stems for the heatmaps (names) and the gray maps (names + "_map"),
     * made unique together, so a class called "cat_map" cannot overwrite
     * the gray map of "cat". */
    int C = cl->C;
    char **texts = cli_xcalloc(2 * (size_t)C, sizeof *texts), **files = cli_xcalloc(2 * (size_t)C, sizeof *files);
    for (int c = 0; c < C; c++) {
        texts[c] = cl->names[c];
        texts[C + c] = cli_xmalloc(strlen(cl->names[c]) + 5);
        sprintf(texts[C + c], "%s_map", cl->names[c]);
    }
    cs_status s = cs_file_stems((const char *const *)texts, 2 * C, files);
    for (int c = 0; c < C; c++) free(texts[C + c]);
    free(texts);
    if (s != CS_OK) {
        free(files);
        return cli_fail(s);
    }
    int rc;
    if (cli_has(a, "pixels")) {
        cli_input in;
        rc = cli_input_from_pixels(cli_get(a, "pixels"), cli_get(a, "size"), &in);
        float *tokens = rc ? NULL : cli_xmalloc(sizeof(float) * (size_t)cs_model_num_tokens(m, in.R) * cl->D);
        if (!rc) {
            cs_status st = cs_encode_image(m, in.pixels, in.R, surgery ? CS_VISION_SURGERY : CS_VISION_PLAIN,
                                           tokens);
            rc = st == CS_OK ? explain_one(m, surgery, cl, files, &in, tokens, cli_has(a, "npy"),
                                           !cli_has(a, "no-png"), out)
                             : cli_fail(st);
        }
        free(tokens);
        cli_input_free(&in);
    } else {
        rc = explain_images(a, m, surgery, cl, files, out);
    }
    for (int c = 0; c < 2 * C; c++) cs_free(files[c]);
    free(files);
    return rc;
}

int cmd_explain(int argc, char **argv) {
    cli_args a;
    int rc;
    if (cli_parse(&a, k_options, sizeof k_options / sizeof *k_options, k_usage, argc, argv, &rc))
        return rc;
    if ((rc = cli_no_positional(&a))) return rc;
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
    if (cli_has(&a, "no-png") && !cli_has(&a, "npy")) {
        cli_error("--no-png goes with --npy (otherwise nothing would be written)");
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
