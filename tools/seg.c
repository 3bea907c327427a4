/* Shared by segment, classify and eval (see seg.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "formats/npy.h"
#include "seg.h"

void seg_classes_free(seg_classes *sc) {
    for (int c = 0; c < sc->C; c++) free(sc->names[c]);
    free(sc->names);
    free(sc->name_class);
    cs_free(sc->emb);
    cs_free(sc->redundant);
    memset(sc, 0, sizeof *sc);
}

cs_name_set seg_name_set(const seg_classes *sc) {
    return (cs_name_set){.emb = sc->emb, .n_names = sc->n_names, .dim = sc->D,
                         .name_class = sc->name_class, .n_classes = sc->C,
                         .redundant = sc->redundant};
}

static int embeddings_from_file(const char *file, seg_classes *sc) {
    cs_array e;
    cs_status s = cs_npy_read(file, &e);
    if (s != CS_OK) return cli_fail(s);
    if (e.dtype != CS_DT_F32 || e.ndim != 2 || e.shape[1] != sc->D || e.shape[0] < 1 || e.shape[0] > 255) {
        cs_array_free(&e);
        cli_error("%s: --class-embeddings must be float32 [C, %d] with C <= 255", file, sc->D);
        return CLI_EXIT_USAGE;
    }
    sc->C = sc->n_names = (int)e.shape[0];
    sc->emb = e.data;
    sc->names = cli_xcalloc((size_t)sc->C, sizeof *sc->names);
    sc->name_class = cli_xcalloc((size_t)sc->C, sizeof *sc->name_class);
    for (int c = 0; c < sc->C; c++) {
        sc->names[c] = cli_xmalloc(32);
        snprintf(sc->names[c], 32, "class%d", c);
        sc->name_class[c] = c;
    }
    return 0;
}

/* Every name of every class, prompt-ensembled. */
static int embeddings_from_names(const cli_args *a, cs_model *m, const char *list, seg_classes *sc) {
    cli_classes cl;
    int rc = cli_parse_classes(list, &cl);
    if (rc) return rc;
    if (cl.n > 255) {
        cli_error("--classes '%s' has %d classes; at most 255 fit a label PNG", list, cl.n);
        cli_classes_free(&cl);
        return CLI_EXIT_USAGE;
    }
    sc->C = cl.n;
    sc->names = cli_xcalloc((size_t)cl.n, sizeof *sc->names);
    for (int c = 0; c < cl.n; c++) sc->n_names += cl.n_syn[c];
    const char **flat = cli_xcalloc((size_t)sc->n_names, sizeof *flat);
    sc->name_class = cli_xcalloc((size_t)sc->n_names, sizeof *sc->name_class);
    for (int c = 0, k = 0; c < cl.n; c++) {
        sc->names[c] = cli_xstrdup(cl.names[c]);
        for (int i = 0; i < cl.n_syn[c]; i++, k++) {
            flat[k] = cl.syn[c][i];
            sc->name_class[k] = c;
        }
    }
    cli_text_ctx text;
    rc = cli_text_ctx_open(a, m, &text);
    if (!rc) {
        sc->emb = cs_alloc((size_t)sc->n_names * sc->D, sizeof(float));
        rc = cli_embed_names(a, m, &text, (char **)flat, sc->n_names, sc->emb);
    }
    if (!rc && sc->n_names == 1) {
        /* Class-weighted feature surgery is identically zero for one name:
         * the empty prompt gives the redundant features (DESIGN.md section 4). */
        char *empty = "";
        cli_note("note: one class: the empty prompt gives the redundant features");
        sc->redundant = cs_alloc((size_t)sc->D, sizeof(float));
        rc = cli_embed_names(a, m, &text, &empty, 1, sc->redundant);
    }
    cli_text_ctx_close(&text);
    free(flat);
    cli_classes_free(&cl);
    return rc;
}

static int find_background(const cli_args *a, seg_classes *sc) {
    const char *name = cli_get(a, "background");
    sc->background = -1;
    for (int c = 0; c < sc->C; c++)
        if (!strcmp(sc->names[c], name ? name : "background")) sc->background = c;
    if (name && strcmp(name, "none") && sc->background < 0) {
        cli_error("--background '%s' is not one of the classes", name);
        return CLI_EXIT_USAGE;
    }
    if (name && !strcmp(name, "none")) sc->background = -1;
    return 0;
}

int seg_classes_load(const cli_args *a, cs_model *m, const char *list, seg_classes *sc) {
    memset(sc, 0, sizeof *sc);
    sc->D = cs_model_config(m)->embed_dim;
    const char *file = cli_get(a, "class-embeddings");
    int rc = file ? embeddings_from_file(file, sc)
                  : embeddings_from_names(a, m, list ? list : cli_get(a, "classes"), sc);
    return rc ? rc : find_background(a, sc);
}

static int parse_float(const cli_args *a, const char *name, float dflt, float lo, float hi, float *out) {
    const char *v = cli_get(a, name);
    char *end = NULL;
    *out = v ? strtof(v, &end) : dflt;
    if (v && (*end || !(*out >= lo && *out <= hi))) {
        cli_error("--%s '%s' is not a number in [%g, %g]", name, v, lo, hi);
        return 0;
    }
    return 1;
}

int seg_settings_parse(const cli_args *a, cs_model *m, const seg_classes *sc, seg_settings *st) {
    memset(st, 0, sizeof *st);
    const char *method = cli_get(a, "method");
    if (method && strcmp(method, "surgery") && strcmp(method, "clip")) {
        cli_error("--method '%s' is not surgery or clip", method);
        return CLI_EXIT_USAGE;
    }
    st->surgery = !method || !strcmp(method, "surgery");
    if (!cli_int(a, "res", cs_model_config(m)->image_resolution, 16, 4096, &st->R) ||
        !cli_int(a, "window", 0, 16, 4096, &st->window) ||
        !cli_int(a, "stride", st->window / 2 > 0 ? st->window / 2 : 1, 1, 4096, &st->stride) ||
        !cli_int(a, "short-side", 0, 16, 16384, &st->short_side) ||
        !parse_float(a, "bg-thresh", 0.0f, 0.0f, 1.0f, &st->opts.bg_thresh) ||
        !parse_float(a, "logit-scale", 40.0f, 1e-3f, 1e4f, &st->opts.logit_scale))
        return CLI_EXIT_USAGE;
    if ((cli_has(a, "stride") || cli_has(a, "short-side")) && !st->window) {
        cli_error("--stride and --short-side go with --window (sliding-window inference)");
        return CLI_EXIT_USAGE;
    }
    if (st->window && st->stride > st->window) {
        cli_error("--stride %d is larger than --window %d: some pixels would be in no window",
                  st->stride, st->window);
        return CLI_EXIT_USAGE;
    }
    if (st->window && st->short_side && st->short_side < st->window) {
        cli_error("--short-side %d is smaller than --window %d", st->short_side, st->window);
        return CLI_EXIT_USAGE;
    }
    if (st->opts.bg_thresh > 0.0f && sc->background < 0) {
        cli_error("--bg-thresh needs a background class: name one 'background' or give --background NAME");
        return CLI_EXIT_USAGE;
    }
    st->opts.bg_class = sc->background;
    return 0;
}

int seg_pixels(const cs_image *img, int w, int h, float **pixels) {
    cs_image small = {0};
    const cs_image *src = img;
    if (w != img->width || h != img->height) {
        cs_status s = cs_image_resize(img, w, h, &small);
        if (s != CS_OK) return cli_fail(s);
        src = &small;
    }
    *pixels = cli_xmalloc(sizeof(float) * 3 * (size_t)w * h);
    cs_image_normalize(src, *pixels);
    cs_image_free(&small);
    return 0;
}

/* The image's size with its short side scaled to `side` (rounded). */
static void short_side_size(const cs_image *img, int side, int *w, int *h) {
    int s = img->width < img->height ? img->width : img->height;
    *w = side ? (int)((double)img->width * side / s + 0.5) : img->width;
    *h = side ? (int)((double)img->height * side / s + 0.5) : img->height;
}

int seg_predict(cs_model *m, const seg_settings *st, const seg_classes *sc, const cs_image *img,
                uint8_t *labels) {
    int W = img->width, H = img->height, w = st->R, h = st->R;
    if (st->window) short_side_size(img, st->short_side, &w, &h);
    if (st->window && (w < st->window || h < st->window)) {
        cli_error("a %dx%d image is smaller than the %d-pixel window (give --short-side)", w, h, st->window);
        return CLI_EXIT_USAGE;
    }
    float *pixels = NULL, *logits = cli_xmalloc(sizeof(float) * (size_t)W * H * sc->C);
    int rc = seg_pixels(img, w, h, &pixels);
    if (rc) {
        free(logits);
        return rc;
    }
    cs_name_set names = seg_name_set(sc);
    cs_vision_mode mode = st->surgery ? CS_VISION_SURGERY : CS_VISION_PLAIN;
    cs_status s = st->window
                      ? cs_segment_logits_sliding(m, pixels, h, w, st->window, st->stride, mode, &names, H, W, logits)
                      : cs_segment_logits(m, pixels, st->R, mode, &names, H, W, logits);
    if (s == CS_OK) s = cs_segment_labels(logits, (size_t)W * H, sc->C, &st->opts, labels);
    free(pixels);
    free(logits);
    return s == CS_OK ? 0 : cli_fail(s);
}

/* Tokens of an image at R x R; *T gets their count. */
static int image_tokens(cs_model *m, int surgery, int R, const cs_image *img, float **tokens, int *T) {
    float *pixels = NULL;
    int rc = seg_pixels(img, R, R, &pixels);
    if (rc) return rc;
    *T = cs_model_num_tokens(m, R);
    *tokens = cli_xmalloc(sizeof(float) * (size_t)*T * cs_model_config(m)->embed_dim);
    cs_status s = cs_encode_image(m, pixels, R, surgery ? CS_VISION_SURGERY : CS_VISION_PLAIN, *tokens);
    free(pixels);
    if (s != CS_OK) {
        free(*tokens);
        *tokens = NULL;
        return cli_fail(s);
    }
    return 0;
}

int seg_classify(cs_model *m, int surgery, int R, const seg_classes *sc, const cs_image *img, float *scores) {
    float *tokens;
    int T, rc = image_tokens(m, surgery, R, img, &tokens, &T);
    if (rc) return rc;
    cs_name_set names = seg_name_set(sc);
    cs_status s = cs_multilabel_scores(tokens, T, &names, surgery, scores);
    free(tokens);
    return s == CS_OK ? 0 : cli_fail(s);
}

int seg_explain_maps(cs_model *m, int surgery, int R, const seg_classes *sc, const cs_image *img, float *maps) {
    float *tokens;
    int T, rc = image_tokens(m, surgery, R, img, &tokens, &T);
    if (rc) return rc;
    float *per_name = cli_xmalloc(sizeof(float) * (size_t)T * sc->n_names);
    float *per_class = cli_xmalloc(sizeof(float) * (size_t)T * sc->C);
    cs_name_set names = seg_name_set(sc);
    cs_status s = surgery ? cs_feature_surgery(tokens, T, sc->emb, sc->n_names, sc->D, sc->redundant, per_name)
                          : cs_similarity(tokens, T, sc->emb, sc->n_names, sc->D, per_name);
    if (s == CS_OK) {
        cs_names_to_classes(per_name, T, &names, per_class);
        s = cs_similarity_maps(per_class, T, sc->C, img->height, img->width, maps);
    }
    free(tokens);
    free(per_name);
    free(per_class);
    return s == CS_OK ? 0 : cli_fail(s);
}

void seg_print_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}
