/* clip-surgery explain: similarity maps (heatmaps) of classes or a text over
 * images, with CLIP Surgery (default) or plain CLIP. The job is cs_explain;
 * here: which inputs, which files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const cli_option k_options[] = {
    {"image", "FILE", "input image (JPEG/PNG); repeat it, or give a folder", 1},
    {"pixels", "FILE.npy", "normalized pixels float32 [3,R,R] or [1,3,R,R] instead of an image", 0},
    {"size", "WxH", "with --pixels: map size (default R x R)", 0},
    CLI_OPT_RES,
    {"method", "NAME", CLI_METHOD_HELP, 0},
    {"classes", "LIST", "class names: a,b,c or @FILE (one class per line, synonyms comma-separated)", 0},
    CLI_OPT_CLASS_EMBEDDINGS,
    {"text", "T", "one text; its redundant features come from the empty prompt", 0},
    {"redundant", "MODE", "classes (default with --classes) | empty (default with --text)", 0},
    {"npy", NULL, "also write pixels, image_tokens, class_embeddings, similarity, maps (.npy)", 0},
    {"no-png", NULL, "with --npy: skip the PNG pictures (arrays only)", 0},
    {"output", "DIR", "output folder (-o)", 0},
    {"max-output-mb", "N", "refuse a run whose files could pass N MB in all (default 4096)", 0},
    {"keep-going", NULL, "skip unreadable images (listed; exit 1) instead of stopping", 0},
    CLI_OPTS_IMAGE_COMMAND,
};

static const char k_usage[] =
    "usage: clip-surgery explain --model M (--image FILE | --pixels FILE.npy [--size WxH]) [--res R]\n"
    "         [--method M] (--classes LIST | --class-embeddings FILE.npy | --text T)\n"
    "         [--redundant classes|empty] [--npy] [--max-output-mb N] [--keep-going] -o DIR\n\n"
    "Writes, per class, NAME.png (JET heatmap over the image) and NAME_map.png (the map in gray);\n"
    "with several images (or a folder), one subfolder per image. A class with synonyms\n"
    "(@FILE lines \"a,b\") shows, per place, its best name. Every image is read before any work\n"
    "(a bad one stops the run, or with --keep-going is skipped), and the files' total size at\n"
    "most is checked against --max-output-mb. Maps are made a block at a time (memory does not\n"
    "grow with the number of classes); the files appear together when the run succeeds.\n"
    "Example: clip-surgery explain --model ViT-B/16 --image photo.jpg --classes person,bench,sky -o out/";

/* Images per vision-tower pass: enough rows for efficient GEMMs at 224,
 * little memory. */
#define EXPLAIN_BATCH 4
/* Maps are made in blocks of about this many bytes (at least one row of
 * maps.npy, or one class's map for the pictures). */
#define MAP_BLOCK_BYTES ((size_t)64 << 20)
#define DEFAULT_MAX_OUTPUT_MB 4096

typedef struct explain_run {
    const cli_args *a;
    cs_model *m;
    cs_classes *cl;
    cs_explain_options o;
    char **files; /* [2C]: heatmap stems, then gray-map stems */
    int npy, png;
    int max_output_mb;
    double output_bytes; /* the files' size at most, summed over the inputs */
} explain_run;

static cs_status write_npy(const char *dir, const char *name, int ndim, int64_t a, int64_t b, int64_t c,
                           const float *x) {
    char path[4096];
    int64_t shape[3] = {a, b, c};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return cs_npy_write(path, CS_DT_F32, ndim, shape, x);
}

/* maps.npy [H, W, C], a block of rows at a time. */
static cs_status write_maps_npy(const char *dir, const cs_explain_result *res) {
    int W = res->width, H = res->height, C = res->n_classes;
    size_t row = (size_t)W * C * sizeof(float);
    int rows = row >= MAP_BLOCK_BYTES ? 1 : (int)(MAP_BLOCK_BYTES / row);
    rows = rows < H ? rows : H;
    char path[4096];
    snprintf(path, sizeof path, "%s/maps.npy", dir);
    cs_atomic_file af;
    cs_status s = cs_atomic_open(&af, path);
    if (s != CS_OK) return s;
    float *block = cli_xmalloc(row * (size_t)rows);
    s = cs_npy_write_header(af.f, CS_DT_F32, 3, (int64_t[3]){H, W, C});
    for (int y = 0; s == CS_OK && y < H && !ferror(af.f); y += rows) {
        int n = H - y < rows ? H - y : rows;
        s = cs_explain_maps(res, 0, C, y, n, block);
        if (s == CS_OK) fwrite(block, row, (size_t)n, af.f);
    }
    free(block);
    if (s != CS_OK) {
        cs_atomic_abort(&af);
        return s;
    }
    return cs_atomic_commit(&af); /* reports a failed write */
}

/* One input's files: the arrays (--npy), then per class the heatmap and
 * the gray map, each class's map made alone. */
static int write_outputs(const explain_run *r, const cs_explain_result *res, const uint8_t *rgb, const char *dir) {
    int W = res->width, H = res->height, C = res->n_classes, D = res->dim, T = res->n_tokens, R = res->resolution;
    cs_status s = cs_mkdirs(dir);
    if (s == CS_OK && r->npy) {
        s = write_npy(dir, "pixels.npy", 3, 3, R, R, res->pixels);
        if (s == CS_OK) s = write_npy(dir, "image_tokens.npy", 2, T, D, 0, res->tokens);
        if (s == CS_OK)
            s = write_npy(dir, "class_embeddings.npy", 2, cs_classes_num_names(r->cl), D, 0,
                          cs_classes_embeddings(r->cl));
        if (s == CS_OK) s = write_npy(dir, "similarity.npy", 2, T, C, 0, res->similarity);
        if (s == CS_OK) s = write_maps_npy(dir, res);
    }
    uint8_t *pic = r->png ? cli_xmalloc((size_t)W * H * 3) : NULL;
    float *map = r->png ? cli_xmalloc((size_t)W * H * sizeof(float)) : NULL;
    for (int c = 0; s == CS_OK && r->png && c < C; c++) {
        char path[4096];
        s = cs_explain_maps(res, c, 1, 0, H, map);
        if (s != CS_OK) break;
        cs_heatmap_overlay(map, 1, (size_t)W * H, rgb, pic);
        snprintf(path, sizeof path, "%s/%s.png", dir, r->files[c]);
        s = cs_png_write(path, W, H, 3, pic);
        cs_map_to_gray(map, 1, (size_t)W * H, pic);
        snprintf(path, sizeof path, "%s/%s.png", dir, r->files[C + c]);
        if (s == CS_OK) s = cs_png_write(path, W, H, 1, pic);
    }
    free(map);
    free(pic);
    return s == CS_OK ? 0 : cli_fail(s);
}

/* A PNG's size at most: its rows with their filter bytes, stored
 * uncompressed (zlib's 5 bytes per 64 KB block), and the chunks. */
static double png_bytes(int w, int h, int channels) {
    double raw = (double)h * ((double)w * channels + 1);
    return raw + 5.0 * (raw / 65535.0 + 1) + 1024;
}

/* Add one input's files at most (its maps w x h, at resolution R) to the
 * total; CLI_EXIT_USAGE and one line past --max-output-mb. */
static int count_output(explain_run *r, int w, int h, int R, const char *what) {
    double C = cs_classes_count(r->cl), D = cs_model_config(r->m)->embed_dim;
    double T = cs_model_num_tokens(r->m, R), K = cs_classes_num_names(r->cl);
    if (r->png) r->output_bytes += C * (png_bytes(w, h, 3) + png_bytes(w, h, 1));
    if (r->npy) r->output_bytes += 4.0 * (3.0 * R * R + T * D + K * D + T * C + (double)w * h * C) + 5 * 256;
    if (r->output_bytes <= (double)r->max_output_mb * (1 << 20)) return 0;
    cli_error("%s: the files could take %.0f MB (%d classes, maps of %dx%d%s), more than --max-output-mb %d",
              what, r->output_bytes / (1 << 20), (int)C, w, h, r->npy ? ", --npy" : "", r->max_output_mb);
    return CLI_EXIT_USAGE;
}

/* n inputs through the job, then their files. */
static int explain_inputs(explain_run *r, cli_input *in, int n, const cli_image_list *images, const int *index,
                          const char *out) {
    cs_input jobs[EXPLAIN_BATCH];
    memset(jobs, 0, sizeof jobs);
    cs_explain_result res[EXPLAIN_BATCH];
    for (int k = 0; k < n; k++) jobs[k] = in[k].in;
    cs_status s = cs_explain(r->m, r->cl, jobs, n, &r->o, res);
    if (s != CS_OK) return cli_fail(s);
    cli_note_redundancy(r->a, res[0].redundant);
    int rc = 0;
    for (int k = 0; !rc && k < n; k++) {
        char dir[4096];
        if (images) {
            cli_image_dir(out, images, index[k], dir, sizeof dir);
            if (images->n > 1) cli_note("[%d/%d] %s", index[k] + 1, images->n, images->paths[index[k]]);
        } else {
            snprintf(dir, sizeof dir, "%s", out);
        }
        rc = write_outputs(r, &res[k], in[k].img.rgb, dir);
    }
    for (int k = 0; k < n; k++) cs_explain_result_free(&res[k]);
    return rc;
}

/* Every image is read before any work: a bad one stops the run (or, with
 * --keep-going, is skipped: its message joins *why), and the output total
 * is known. A single image stays decoded; several are read again in their
 * batch, so memory holds EXPLAIN_BATCH images, not all. ok[i]: image i is
 * usable. */
static int check_images(explain_run *r, const cli_image_list *images, int keep_going, cli_input *first, int *ok,
                        int *skipped, char *why, size_t why_size) {
    int R = r->o.resolution ? r->o.resolution : cs_model_config(r->m)->image_resolution, rc = 0;
    size_t used = 0;
    *skipped = 0;
    for (int i = 0; !rc && i < images->n; i++) {
        cli_input in;
        memset(&in, 0, sizeof in);
        cs_status s = cs_image_load(images->paths[i], cli_image_options(), &in.img);
        in.in.image = &in.img;
        ok[i] = s == CS_OK;
        if (s != CS_OK && keep_going) {
            ++*skipped;
            if (used < why_size)
                used += (size_t)snprintf(why + used, why_size - used, "%s%s", used ? "; " : "", cs_last_error());
            continue;
        }
        rc = s != CS_OK ? cli_fail(s) : count_output(r, in.img.width, in.img.height, R, images->paths[i]);
        if (!rc && images->n == 1) {
            *first = in;
            first->in.image = &first->img; /* in.image pointed at this frame's copy */
        } else {
            cli_input_free(&in);
        }
    }
    if (!rc && *skipped == images->n) {
        cli_error("no readable image: %s", why);
        rc = CLI_EXIT_USAGE;
    }
    return rc;
}

/* The usable images, EXPLAIN_BATCH at a time. */
static int explain_images(explain_run *r, const cli_image_list *images, const int *ok, cli_input *first,
                          const char *out) {
    cli_input in[EXPLAIN_BATCH];
    int index[EXPLAIN_BATCH], rc = 0;
    for (int i = 0; !rc && i < images->n;) {
        int n = 0, loaded = 0;
        for (; i < images->n && n < EXPLAIN_BATCH; i++)
            if (ok[i]) index[n++] = i;
        if (n == 0) break;
        if (images->n == 1) {
            in[0] = *first; /* moved: freed below as in[0] */
            in[0].in.image = &in[0].img;
            loaded = 1;
        } else {
            for (; !rc && loaded < n; loaded++) rc = cli_input_from_image(images->paths[index[loaded]], &in[loaded]);
            if (rc) loaded--;
        }
        if (!rc) rc = explain_inputs(r, in, n, images, index, out);
        for (int k = 0; k < loaded; k++) cli_input_free(&in[k]);
    }
    return rc;
}

/* Stems for the heatmaps (names) and the gray maps (names + "_map"), made
 * unique together, so a class called "cat_map" cannot overwrite the gray
 * map of "cat". */
static int file_stems(const cs_classes *cl, char ***files) {
    int C = cs_classes_count(cl);
    char **texts = cli_xcalloc(2 * (size_t)C, sizeof *texts);
    *files = cli_xcalloc(2 * (size_t)C, sizeof **files);
    for (int c = 0; c < C; c++) {
        texts[c] = cli_xstrdup(cs_classes_name(cl, c));
        texts[C + c] = cli_xmalloc(strlen(texts[c]) + 5);
        sprintf(texts[C + c], "%s_map", texts[c]);
    }
    cs_status s = cs_file_stems((const char *const *)texts, 2 * C, *files);
    for (int c = 0; c < 2 * C; c++) free(texts[c]);
    free(texts);
    return s == CS_OK ? 0 : cli_fail(s);
}

static int check(const cli_args *a) {
    int sources = cli_has(a, "classes") + cli_has(a, "class-embeddings") + cli_has(a, "text");
    if (!cli_has(a, "output") || sources != 1 || cli_has(a, "image") == cli_has(a, "pixels")) {
        cli_error("explain needs -o DIR, one of --image/--pixels and one of --classes, "
                  "--class-embeddings, --text (see --help)");
        return CLI_EXIT_USAGE;
    }
    cs_method method;
    int res, max_mb;
    if (!cli_method(a, &method) || !cli_int(a, "res", 0, 16, 4096, &res) ||
        !cli_int(a, "max-output-mb", DEFAULT_MAX_OUTPUT_MB, 1, 1 << 24, &max_mb))
        return CLI_EXIT_USAGE;
    if (cli_has(a, "no-png") && !cli_has(a, "npy")) {
        cli_error("--no-png goes with --npy (otherwise nothing would be written)");
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "size") && !cli_has(a, "pixels")) {
        cli_error("--size goes with --pixels (an image's maps have the image's size)");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* --pixels: one input. */
static int explain_pixels(explain_run *r, const char *out) {
    cli_input in;
    int rc = cli_input_from_pixels(cli_get(r->a, "pixels"), cli_get(r->a, "size"), &in);
    if (!rc) rc = count_output(r, in.in.width, in.in.height, in.in.pixels_resolution, cli_get(r->a, "pixels"));
    if (!rc) rc = cli_classes_embed(r->m, r->cl);
    if (!rc) rc = explain_inputs(r, &in, 1, NULL, NULL, out);
    cli_input_free(&in);
    return rc;
}

static int run(cli_ctx *c) {
    explain_run r = {.a = &c->a, .m = c->m, .o = cs_explain_defaults(), .npy = cli_has(&c->a, "npy"),
                     .png = !cli_has(&c->a, "no-png")};
    const char *out = cli_get(&c->a, "output");
    r.o.no_maps = 1;
    cli_method(&c->a, &r.o.method);
    cli_int(&c->a, "res", 0, 16, 4096, &r.o.resolution); /* checked already */
    cli_int(&c->a, "max-output-mb", DEFAULT_MAX_OUTPUT_MB, 1, 1 << 24, &r.max_output_mb);
    int rc = cli_redundancy(&c->a, &r.o.redundant);
    /* The classes are counted before the inputs are read and embedded
     * after: the output limit is checked before any work. */
    if (!rc) rc = cli_classes_load(&c->a, c->m, NULL, CLI_EMBED_LATER, &r.cl);
    if (!rc) rc = file_stems(r.cl, &r.files);
    if (!rc && cli_has(&c->a, "pixels")) {
        rc = explain_pixels(&r, out);
    } else if (!rc) {
        cli_image_list images;
        cli_input first = {0};
        int skipped = 0, *ok = NULL;
        char why[2048] = "";
        rc = cli_image_list_collect(&c->a, &images);
        if (!rc) {
            ok = cli_xcalloc((size_t)images.n, sizeof *ok);
            rc = check_images(&r, &images, cli_has(&c->a, "keep-going"), &first, ok, &skipped, why, sizeof why);
            if (!rc) rc = cli_classes_embed(c->m, r.cl);
            if (!rc) rc = explain_images(&r, &images, ok, &first, out);
            else cli_input_free(&first);
            if (!rc && skipped) { /* --keep-going: the others' files stand, exit 1 */
                cli_error("images skipped: %s (%d of %d)", why, skipped, images.n);
                rc = CLI_EXIT_RUNTIME;
                c->keep_outputs = 1;
            }
            free(ok);
            cli_image_list_free(&images);
        }
    }
    for (int k = 0; r.files && k < 2 * cs_classes_count(r.cl); k++) cs_free(r.files[k]);
    free(r.files);
    cs_classes_free(r.cl);
    return rc;
}

const cli_command cmd_explain = {
    "explain", "similarity maps (heatmaps) for classes or a text", CLI_OPTIONS(k_options), k_usage, CLI_MODEL,
    check, run,
};
