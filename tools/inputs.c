/* Inputs shared by the image subcommands: pixels from an image file or an
 * .npy, the class set from --classes, --class-embeddings or --text, and
 * the options of the jobs that several commands share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "cli.h"

void cli_input_free(cli_input *in) {
    cs_image_free(&in->img);
    cs_array_free(&in->px);
    memset(in, 0, sizeof *in);
}

static int parse_size(const char *v, int *w, int *h) {
    const char *x = strchr(v, 'x');
    if (!x || !cli_parse_int(v, (size_t)(x - v), 1, 65536, w) ||
        !cli_parse_int(x + 1, strlen(x + 1), 1, 65536, h) ||
        (int64_t)*w * *h > cli_image_options()->max_pixels) {
        cli_error("--size '%s' is not WxH (e.g. 640x480) within the image limit (--max-megapixels)", v);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cli_input_from_pixels(const char *path, const char *size, cli_input *in) {
    memset(in, 0, sizeof *in);
    cs_status s = cs_npy_read(path, &in->px);
    if (s == CS_OK) s = cs_array_check_finite(path, &in->px);
    if (s != CS_OK) {
        cs_array_free(&in->px);
        return cli_fail(s);
    }
    const cs_array *px = &in->px;
    int lead = px->ndim == 4 ? 1 : 0;
    int ok = px->dtype == CS_DT_F32 && (px->ndim == 3 || (px->ndim == 4 && px->shape[0] == 1)) &&
             px->shape[lead] == 3 && px->shape[lead + 1] == px->shape[lead + 2];
    if (!ok) {
        cli_input_free(in);
        cli_error("%s: --pixels must be float32 [3, R, R] or [1, 3, R, R]", path);
        return CLI_EXIT_USAGE;
    }
    in->in.pixels = px->data;
    in->in.pixels_resolution = in->in.width = in->in.height = (int)px->shape[lead + 1];
    int rc = size ? parse_size(size, &in->in.width, &in->in.height) : 0;
    if (rc) cli_input_free(in);
    return rc;
}

int cli_input_from_image(const char *path, cli_input *in) {
    memset(in, 0, sizeof *in);
    cs_status s = cs_image_load(path, cli_image_options(), &in->img);
    if (s != CS_OK) return cli_fail(s);
    in->in.image = &in->img;
    return 0;
}

/* "text tower: 59 names x 85 prompts" before a long text-tower run. */
static void text_progress(void *ctx, int64_t done, int64_t total) {
    if (done == 0 && total > 8)
        cli_note("text tower: %lld names x %d prompts", (long long)total,
                 cs_classes_num_templates(ctx) ? cs_classes_num_templates(ctx) : 1);
}

static int from_embeddings(const char *file, cs_model *m, cs_classes **cl) {
    cs_array e;
    int D = cs_model_config(m)->embed_dim;
    cs_status s = cs_npy_read(file, &e);
    if (s == CS_OK && (s = cs_array_check_finite(file, &e)) != CS_OK) cs_array_free(&e);
    if (s != CS_OK) return cli_fail(s);
    if (e.dtype != CS_DT_F32 || e.ndim != 2 || e.shape[1] != D || e.shape[0] < 1) {
        cs_array_free(&e);
        cli_error("%s: --class-embeddings must be float32 [C, %d]", file, D);
        return CLI_EXIT_USAGE;
    }
    s = cs_classes_from_embeddings(e.data, (int)e.shape[0], D, NULL, cl);
    cs_array_free(&e);
    return s == CS_OK ? 0 : cli_fail(s);
}

/* --text T, split at '+' when split_plus. */
static int from_text(const char *text, int split_plus, cs_classes **cl) {
    char **names = NULL;
    int n = 0;
    const char *p = text;
    int oom = 0;
    do { /* no exit on a failed allocation: the server calls this */
        const char *plus = split_plus ? strchr(p, '+') : NULL;
        char **more = realloc(names, sizeof *names * (size_t)(n + 1));
        if (more) names = more;
        if (!more || !(names[n] = strndup(p, plus ? (size_t)(plus - p) : strlen(p)))) {
            oom = 1;
            break;
        }
        n++;
        p = plus ? plus + 1 : NULL;
    } while (p);
    cs_status s = oom ? CS_ERR_NOMEM : cs_classes_from_names((const char *const *)names, n, cl);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (oom) return cli_out_of_memory();
    return s == CS_OK ? 0 : cli_fail(s);
}

int cli_classes_load(const cli_args *a, cs_model *m, const char *list, int flags, cs_classes **cl) {
    *cl = NULL;
    const char *file = cli_get(a, "class-embeddings"), *text = cli_get(a, "text");
    int rc = 0;
    cs_status s = CS_OK;
    if (file) rc = from_embeddings(file, m, cl);
    else if (text && !list) rc = from_text(text, flags & CLI_SPLIT_PLUS, cl);
    else if ((s = cs_classes_parse(list ? list : cli_get(a, "classes"), cl)) != CS_OK) rc = cli_fail(s);
    if (!rc) s = cs_classes_set_templates(*cl, cli_get(a, "templates"));
    if (!rc && s == CS_OK && !(flags & CLI_EMBED_LATER)) s = cs_classes_embed(*cl, m, text_progress, *cl);
    if (!rc && s != CS_OK) rc = cli_fail(s);
    if (rc) {
        cs_classes_free(*cl);
        *cl = NULL;
    }
    return rc;
}

int cli_classes_embed(cs_model *m, cs_classes *cl) {
    cs_status s = cs_classes_embed(cl, m, text_progress, cl);
    return s == CS_OK ? 0 : cli_fail(s);
}

int cli_redundancy(const cli_args *a, cs_redundancy *r) {
    const char *v = cli_get(a, "redundant");
    if (v && strcmp(v, "classes") && strcmp(v, "empty")) {
        cli_error("--redundant '%s' is not classes or empty", v);
        return CLI_EXIT_USAGE;
    }
    *r = v ? (!strcmp(v, "empty") ? CS_REDUNDANT_EMPTY : CS_REDUNDANT_CLASSES)
           : cli_has(a, "text") ? CS_REDUNDANT_EMPTY : CS_REDUNDANT_AUTO;
    return 0;
}

void cli_note_redundancy(const cli_args *a, cs_redundancy used) {
    static int once;
    const char *v = cli_get(a, "redundant");
    int asked_empty = v ? !strcmp(v, "empty") : cli_has(a, "text");
    if (used == CS_REDUNDANT_EMPTY && !asked_empty && !once++)
        cli_note("note: one class: class-weighted redundancy is identically zero, so the empty "
                 "prompt gives the redundant features instead");
}

int cli_segment_options(const cli_args *a, const cs_classes *cl, cs_segment_options *o) {
    *o = cs_segment_defaults();
    if (!cli_method(a, &o->method) || !cli_int(a, "res", 0, 16, 4096, &o->resolution) ||
        !cli_int(a, "window", 0, 16, 4096, &o->window) ||
        !cli_int(a, "stride", o->window / 2 > 0 ? o->window / 2 : 1, 1, 4096, &o->stride) ||
        !cli_int(a, "short-side", 0, 16, 16384, &o->short_side) ||
        !cli_int(a, "max-long-side", 0, 16, 65536, &o->max_long_side) ||
        !cli_float(a, "bg-thresh", 0.0f, 0.0f, 1.0f, &o->bg_thresh) ||
        !cli_float(a, "logit-scale", 0.0f, 1e-3f, 1e4f, &o->logit_scale) ||
        !cli_int(a, "pamr", 0, 0, 1000, &o->pamr_steps) || !cli_float(a, "area-thresh", 0.0f, 0.0f, 0.99f, &o->area_thresh))
        return CLI_EXIT_USAGE;
    o->name_logits = cli_has(a, "name-logits");
    if ((cli_has(a, "stride") || cli_has(a, "short-side")) && !o->window) {
        cli_error("--stride and --short-side go with --window (sliding-window inference)");
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "max-long-side") && !o->short_side) {
        cli_error("--max-long-side goes with --short-side");
        return CLI_EXIT_USAGE;
    }
    if (!o->window) o->stride = 0;
    if (o->window && o->stride > o->window) {
        cli_error("--stride %d is larger than --window %d: some pixels would be in no window", o->stride, o->window);
        return CLI_EXIT_USAGE;
    }
    if (o->window && o->short_side && o->short_side < o->window) {
        cli_error("--short-side %d is smaller than --window %d", o->short_side, o->window);
        return CLI_EXIT_USAGE;
    }
    const char *name = cli_get(a, "background");
    o->bg_class = name && !strcmp(name, "none") ? -1 : cs_classes_find(cl, name ? name : "background");
    if (name && strcmp(name, "none") && o->bg_class < 0) {
        cli_error("--background '%s' is not one of the classes", name);
        return CLI_EXIT_USAGE;
    }
    if ((o->bg_thresh > 0.0f || o->area_thresh > 0.0f) && o->bg_class < 0) {
        cli_error("--%s needs a background class: name one 'background' or give --background NAME",
                  o->bg_thresh > 0.0f ? "bg-thresh" : "area-thresh");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cli_read_texts(const char *path, char **storage, char ***texts, int *n) {
    size_t len;
    *texts = NULL;
    *n = 0;
    cs_status s = cs_read_file(path, 64 << 20, storage, &len);
    if (s != CS_OK) return cli_fail(s);
    size_t plen = strlen(path);
    if (plen > 5 && !strcmp(path + plen - 5, ".json")) {
        cJSON *root = cJSON_ParseWithLength(*storage, len);
        if (!cJSON_IsArray(root)) {
            cJSON_Delete(root);
            cli_error("%s: not a JSON array of strings", path);
            return CLI_EXIT_USAGE;
        }
        int count = cJSON_GetArraySize(root), i = 0;
        *texts = cli_xcalloc((size_t)count + 1, sizeof **texts);
        const cJSON *item;
        cJSON_ArrayForEach(item, root) {
            if (!cJSON_IsString(item)) {
                *n = i;
                cJSON_Delete(root);
                cli_error("%s: item %d is not a string", path, i);
                return CLI_EXIT_USAGE;
            }
            (*texts)[i++] = cli_xstrdup(item->valuestring);
        }
        *n = count;
        cJSON_Delete(root);
        return 0;
    }
    if (memchr(*storage, 0, len)) {
        cli_error("%s: contains a NUL byte; not a text file", path);
        return CLI_EXIT_USAGE;
    }
    int lines = len ? 1 : 0;
    for (size_t i = 0; i < len; i++) lines += (*storage)[i] == '\n';
    if (len && (*storage)[len - 1] == '\n') lines--;
    *texts = cli_xcalloc((size_t)lines + 1, sizeof **texts);
    char *p = *storage;
    for (int i = 0; i < lines; i++) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        (*texts)[i] = cli_xstrdup(p);
        p = nl ? nl + 1 : p + strlen(p);
    }
    *n = lines;
    if (!lines) {
        cli_error("%s: no texts in the file", path);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* ---------------------------------------------------------------- SAM prompts */
/* Parse n comma-separated numbers (n_opt more allowed) of option `what`. */
static int parse_numbers(const char *text, const char *what, int n, int n_opt, float *out, int *got) {
    const char *p = text;
    int k = 0;
    for (; k < n + n_opt; k++) {
        char *end;
        out[k] = strtof(p, &end);
        if (end == p || !(out[k] == out[k])) break;
        p = end;
        if (*p == ',') p++;
        else if (!*p) {
            k++;
            break;
        } else {
            break;
        }
    }
    if (*p || k < n) {
        cli_error("--%s '%s' is not %d%s comma-separated numbers", what, text, n, n_opt ? " (or more)" : "");
        return CLI_EXIT_USAGE;
    }
    *got = k;
    return 0;
}

/* No exit on a failed allocation: the server calls this too. */
int cli_sam_manual_prompt(const cli_args *a, cli_sam_manual *mp) {
    memset(mp, 0, sizeof *mp);
    int n = cli_count(a, "point"), got;
    mp->points = calloc((size_t)n + 1, 2 * sizeof(float));
    mp->labels = calloc((size_t)n + 1, sizeof(int32_t));
    if (!mp->points || !mp->labels) {
        cli_error("out of memory for %d points", n);
        return CLI_EXIT_RUNTIME;
    }
    for (int i = 0; i < n; i++) {
        float v[3];
        if (parse_numbers(cli_value(a, "point", i), "point", 2, 1, v, &got)) return CLI_EXIT_USAGE;
        if (got == 3 && v[2] != 0.0f && v[2] != 1.0f) {
            cli_error("--point '%s': the label must be 1 (foreground) or 0 (background)", cli_value(a, "point", i));
            return CLI_EXIT_USAGE;
        }
        mp->points[2 * i] = v[0];
        mp->points[2 * i + 1] = v[1];
        mp->labels[i] = got == 3 ? (int32_t)v[2] : 1;
    }
    cs_sam_prompt_set *s = &mp->set;
    s->n_points = n;
    s->points = mp->points;
    s->labels = mp->labels;
    if (cli_has(a, "box")) {
        if (parse_numbers(cli_get(a, "box"), "box", 4, 0, s->box, &got)) return CLI_EXIT_USAGE;
        s->has_box = 1;
    }
    s->mask_input = cli_get(a, "mask-input");
    s->multimask = !cli_has(a, "single");
    return 0;
}

void cli_sam_manual_free(cli_sam_manual *mp) {
    free(mp->points);
    free(mp->labels);
    memset(mp, 0, sizeof *mp);
}

int cli_sam_load(const cli_args *a, char *path, size_t path_len, cs_sam **m) {
    int heads = 0;
    *m = NULL;
    cli_int(a, "decoder-heads", 0, 1, 64, &heads); /* checked already */
    cs_status s = cs_sam_resolve(cli_get(a, "sam"), cli_get(a, "cache-dir"), 1, cli_download_progress,
                                 (void *)cli_get(a, "sam"), path, path_len);
    cs_sam_load_options opts = {heads};
    if (s == CS_OK) s = cs_sam_load(path, &opts, m);
    const char *sp = cli_get(a, "sam-precision");
    if (s == CS_OK && sp && !strcmp(sp, "bf16")) s = cs_sam_set_precision(*m, CS_PRECISION_BF16);
    if (s == CS_OK) return 0;
    cs_sam_free(*m);
    *m = NULL;
    return cli_fail(s);
}

int cli_sam_check(const cli_args *a) {
    int v;
    if (!cli_int(a, "decoder-heads", 8, 1, 64, &v)) return CLI_EXIT_USAGE;
    const char *sp = cli_get(a, "sam-precision");
    if (sp && strcmp(sp, "fp32") && strcmp(sp, "bf16")) {
        cli_error("--sam-precision '%s' is not fp32 or bf16", sp);
        return CLI_EXIT_USAGE;
    }
    return 0;
}
