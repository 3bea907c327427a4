/* clip-surgery words: which words of a caption CLIP sees where (multimodal
 * visualization, docs/words.md). The library's cs_words does the work; this
 * file reads the arguments, names and writes the files, prints the JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "cli.h"

static const cli_option k_options[] = {
    {"image", "FILE", "input image (JPEG/PNG)", 0},
    {"pixels", "FILE.npy", "normalized pixels float32 [3,R,R] or [1,3,R,R] instead of an image", 0},
    {"size", "WxH", "with --pixels: map size (default R x R)", 0},
    CLI_OPT_RES,
    {"caption", "TEXT", "a caption; repeat it for several (one subfolder each)", 1},
    {"captions", "FILE", "captions, one per line (or a JSON array of strings, .json)", 0},
    {"group", "G", "tokens (default: one map per BPE token) | words (sub-tokens averaged)", 0},
    {"npy", NULL, "also write word_features, image_tokens, similarity, maps (.npy)", 0},
    {"output", "DIR", "output folder (-o)", 0},
    {"vocab", "FILE", "BPE vocabulary (.txt.gz, or a folder with vocab.json + merges.txt)", 0},
    CLI_OPTS_MODEL,
    CLI_OPTS_IMAGE,
    CLI_OPTS_SURGERY,
    CLI_OPTS_QUIET,
};

static const char k_usage[] =
    "usage: clip-surgery words --model M (--image FILE | --pixels FILE.npy [--size WxH]) [--res R]\n"
    "         (--caption TEXT ... | --captions FILE) [--group tokens|words] [--npy] -o DIR\n\n"
    "Multimodal visualization (docs/words.md): one similarity map per token of the caption, the\n"
    "tokens ranked by their cosine with the image. Prints JSON (tokens, offsets, cosine, rank) and\n"
    "writes figure.png (the caption, top three tokens in red, yellow, cyan, over the image with the\n"
    "best token's heatmap) and NN_TOKEN.png (each token's heatmap); several captions: one\n"
    "subfolder each.\n"
    "Example: clip-surgery words --model ViT-B/16 --image photo.jpg --caption \"a dog on a bench\" -o out/";

/* Files written so far, removed again if a later one fails (all or none). */
typedef struct written {
    char **paths;
    int n;
} written;

static void written_add(written *w, const char *path) {
    w->paths = cli_xrealloc(w->paths, sizeof *w->paths * (size_t)(w->n + 1));
    w->paths[w->n++] = cli_xstrdup(path);
}

static void written_free(written *w, int remove) {
    for (int i = w->n - 1; i >= 0; i--) {
        if (remove) unlink(w->paths[i]);
        free(w->paths[i]);
    }
    free(w->paths);
}

static cs_status write_npy(written *w, const char *dir, const char *name, int ndim, int64_t a,
                           int64_t b, int64_t c, const float *x) {
    char path[4096];
    int64_t shape[3] = {a, b, c};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cs_status s = cs_npy_write(path, CS_DT_F32, ndim, shape, x);
    if (s == CS_OK) written_add(w, path);
    return s;
}

/* File stems of the units: "start" and "end" for those tokens, else the
 * unit's text made safe (each alone: the NN prefix keeps names unique). */
static cs_status unit_stems(const cs_words_result *r, char **stems) {
    cs_status s = CS_OK;
    for (int u = 0; s == CS_OK && u < r->n_units; u++) {
        const cs_words_unit *x = &r->units[u];
        int32_t id = r->ids[x->first_token];
        int special = x->start < 0 && x->n_tokens == 1 && (id == CS_SOT_TOKEN || id == CS_EOT_TOKEN);
        const char *text = special ? (id == CS_SOT_TOKEN ? "start" : "end") : x->text;
        s = cs_file_stems(&text, 1, &stems[u]);
    }
    return s;
}

/* figure.png, NN_TOKEN.png and the arrays of one caption into dir. */
static cs_status write_caption(const cs_words_result *r, const char *caption, const uint8_t *rgb, int npy,
                               const char *dir, written *w) {
    int U = r->n_units, W = r->width, H = r->height;
    char path[4096];
    char **stems = cli_xcalloc((size_t)U, sizeof *stems);
    uint8_t *pic = cli_xmalloc((size_t)W * H * 3);
    cs_status s = cs_mkdirs(dir);
    if (s == CS_OK) s = unit_stems(r, stems);
    for (int u = 0; s == CS_OK && u < U; u++) {
        cs_heatmap_overlay(r->maps + u, U, (size_t)W * H, rgb, pic);
        snprintf(path, sizeof path, "%s/%02d_%s.png", dir, u, stems[u]);
        s = cs_png_write(path, W, H, 3, pic);
        if (s == CS_OK) written_add(w, path);
    }
    if (s == CS_OK) {
        uint8_t *fig = NULL;
        int fw, fh;
        s = cs_words_figure(r, caption, rgb, W, H, &fig, &fw, &fh);
        snprintf(path, sizeof path, "%s/figure.png", dir);
        if (s == CS_OK) s = cs_png_write(path, fw, fh, 3, fig);
        if (s == CS_OK) written_add(w, path);
        cs_free(fig);
    }
    if (s == CS_OK && npy) {
        int D = r->dim, NT = r->n_image_tokens;
        s = write_npy(w, dir, "word_features.npy", 2, r->n_tokens, D, 0, r->token_features);
        if (s == CS_OK) s = write_npy(w, dir, "image_tokens.npy", 2, NT, D, 0, r->image_tokens);
        if (s == CS_OK) s = write_npy(w, dir, "similarity.npy", 2, NT, U, 0, r->similarity);
        if (s == CS_OK) s = write_npy(w, dir, "maps.npy", 3, H, W, U, r->maps);
    }
    for (int u = 0; u < U; u++) cs_free(stems[u]); /* NULL past a failure */
    free(stems);
    free(pic);
    return s;
}

/* The JSON of one caption. */
static cJSON *caption_json(const cs_words_result *r, const char *caption, const char *group,
                           const char *dir) {
    cJSON *o = cJSON_CreateObject(), *units = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "caption", caption);
    cJSON_AddStringToObject(o, "folder", dir);
    cJSON_AddStringToObject(o, "group", group);
    cJSON_AddBoolToObject(o, "truncated", r->truncated);
    cJSON_AddNumberToObject(o, "dropped", r->dropped);
    for (int u = 0; u < r->n_units; u++) {
        const cs_words_unit *x = &r->units[u];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "text", x->text);
        if (x->start >= 0) {
            cJSON_AddNumberToObject(j, "start", x->start);
            cJSON_AddNumberToObject(j, "end", x->end);
        } else {
            cJSON_AddNullToObject(j, "start");
            cJSON_AddNullToObject(j, "end");
        }
        int tokens[2] = {x->first_token, x->n_tokens};
        cJSON_AddItemToObject(j, "tokens", cJSON_CreateIntArray(tokens, 2));
        cJSON_AddNumberToObject(j, "cosine", (double)x->cosine);
        cJSON_AddNumberToObject(j, "rank", x->rank);
        cJSON_AddItemToArray(units, j);
    }
    cJSON_AddItemToObject(o, "units", units);
    cJSON_AddItemToObject(o, "ranking", cJSON_CreateIntArray(r->ranking, r->n_units));
    int n_top = 0;
    while (n_top < 3 && r->top[n_top] >= 0) n_top++;
    cJSON_AddItemToObject(o, "top", cJSON_CreateIntArray(r->top, n_top));
    return o;
}

/* Output folder of caption i: DIR for one, DIR/NN_<stem> for several. */
static void caption_dirs(const char *out, char **captions, int n, char **dirs) {
    char **stems = cli_xcalloc((size_t)n, sizeof *stems);
    if (n > 1 && cs_file_stems((const char *const *)captions, n, stems) != CS_OK) {
        for (int i = 0; i < n; i++) stems[i] = NULL;
    }
    int digits = n > 100 ? (n > 1000 ? 4 : 3) : 2;
    for (int i = 0; i < n; i++) {
        dirs[i] = cli_xmalloc(strlen(out) + 128);
        if (n == 1) strcpy(dirs[i], out);
        else sprintf(dirs[i], "%s/%0*d_%s", out, digits, i, stems[i] ? stems[i] : "caption");
        cs_free(stems[i]);
    }
    free(stems);
}

static int run_words(const cli_args *a, cs_model *m, char **captions, int n, const cli_input *in) {
    const char *group = cli_get(a, "group") ? cli_get(a, "group") : "tokens";
    cs_words_options opts = cs_words_defaults();
    opts.group = !strcmp(group, "words") ? CS_WORDS_WORDS : CS_WORDS_TOKENS;
    cli_int(a, "res", 0, 16, 4096, &opts.resolution); /* checked already */
    cs_words_result *res = cli_xcalloc((size_t)n, sizeof *res);
    cs_status s = cs_words(m, &in->in, (const char *const *)captions, n, &opts, res);
    if (s != CS_OK) {
        free(res);
        return cli_fail(s);
    }
    char **dirs = cli_xcalloc((size_t)n, sizeof *dirs);
    caption_dirs(cli_get(a, "output"), captions, n, dirs);
    written w = {0};
    cJSON *all = n > 1 ? cJSON_CreateArray() : NULL, *one = NULL;
    for (int i = 0; s == CS_OK && i < n; i++) {
        s = write_caption(&res[i], captions[i], in->img.rgb, cli_has(a, "npy"), dirs[i], &w);
        cJSON *j = caption_json(&res[i], captions[i], group, dirs[i]);
        if (all) cJSON_AddItemToArray(all, j);
        else one = j;
    }
    int rc = s == CS_OK ? 0 : cli_fail(s);
    written_free(&w, rc != 0);
    cJSON *root = cJSON_CreateObject();
    int size[2] = {res[0].width, res[0].height};
    cJSON_AddItemToObject(root, "image_size", cJSON_CreateIntArray(size, 2));
    cJSON_AddItemToObject(root, all ? "captions" : "result", all ? all : one);
    if (!rc) {
        char *text = cJSON_Print(root);
        printf("%s\n", text);
        cJSON_free(text);
    }
    cJSON_Delete(root);
    for (int i = 0; i < n; i++) {
        cs_words_result_free(&res[i]);
        free(dirs[i]);
    }
    free(dirs);
    free(res);
    return rc;
}

static int check(const cli_args *a) {
    const char *group = cli_get(a, "group");
    int res;
    if (!cli_has(a, "output") || cli_has(a, "image") == cli_has(a, "pixels") ||
        cli_has(a, "caption") == cli_has(a, "captions")) {
        cli_error("words needs -o DIR, one of --image/--pixels and --caption TEXT or --captions FILE "
                  "(see --help)");
        return CLI_EXIT_USAGE;
    }
    if (group && strcmp(group, "tokens") && strcmp(group, "words")) {
        cli_error("--group '%s' is not tokens or words", group);
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "size") && !cli_has(a, "pixels")) {
        cli_error("--size goes with --pixels (an image's maps have the image's size)");
        return CLI_EXIT_USAGE;
    }
    return cli_int(a, "res", 0, 16, 4096, &res) ? 0 : CLI_EXIT_USAGE;
}

static int run(cli_ctx *c) {
    const cli_args *a = &c->a;
    char *storage = NULL, **captions = NULL;
    int n = 0, rc = 0;
    if (cli_has(a, "captions")) {
        rc = cli_read_texts(cli_get(a, "captions"), &storage, &captions, &n);
        if (!rc && n == 0) {
            cli_error("%s: no captions", cli_get(a, "captions"));
            rc = CLI_EXIT_USAGE;
        }
    } else {
        n = cli_count(a, "caption");
        captions = cli_xcalloc((size_t)n, sizeof *captions);
        for (int i = 0; i < n; i++) captions[i] = cli_xstrdup(cli_value(a, "caption", i));
    }
    cli_input in = {0};
    if (!rc)
        rc = cli_has(a, "pixels") ? cli_input_from_pixels(cli_get(a, "pixels"), cli_get(a, "size"), &in)
                                  : cli_input_from_image(cli_get(a, "image"), &in);
    if (!rc) rc = run_words(a, c->m, captions, n, &in);
    cli_input_free(&in);
    for (int i = 0; captions && i < n; i++) free(captions[i]);
    free(captions);
    cs_free(storage);
    return rc;
}

const cli_command cmd_words = {
    "words", "which words of a caption CLIP sees where (a map per token, figure)", CLI_OPTIONS(k_options),
    k_usage, CLI_MODEL, check, run,
};
