/* The server's jobs: one request's fields become the options of the
 * matching CLI command (the same names, checks and messages: the helpers in
 * common.c and inputs.c), its image is decoded from memory, the library runs
 * the job, and the answer is JSON with PNG data URLs, or one array as the
 * bytes of the .npy file the CLI's --npy writes. Nothing here reads or
 * writes a file named by a request: options that name files (@FILE class
 * lists, --class-embeddings, template files) are refused. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "serve.h"

/* The fields each endpoint takes: the CLI command's option names, plus
 * format (json | npy | png) and, for npy, array (and the points' index). */
#define OPT(name) {name, "V", "", 0}
static const cli_option k_explain_fields[] = {
    OPT("classes"), OPT("text"), OPT("res"), OPT("method"), OPT("redundant"), OPT("templates"),
    OPT("format"), OPT("array"),
};
static const cli_option k_segment_fields[] = {
    OPT("classes"), OPT("method"), OPT("res"), OPT("window"), OPT("stride"), OPT("short-side"),
    OPT("bg-thresh"), OPT("logit-scale"), OPT("pamr"), OPT("background"), OPT("templates"), OPT("format"),
    OPT("array"),
};
static const cli_option k_points_fields[] = {
    OPT("classes"), OPT("text"), OPT("target"), OPT("t"), OPT("res"), OPT("redundant"),
    OPT("templates"), OPT("format"), OPT("array"), OPT("index"),
};
static const cli_option k_words_fields[] = {
    OPT("caption"), OPT("res"), OPT("group"), OPT("format"), OPT("array"),
};
static const cli_option k_classify_fields[] = {
    OPT("classes"), OPT("method"), OPT("res"), OPT("templates"), OPT("format"),
};
static const cli_option k_sam_fields[] = {
    {"point", "V", "", 1}, OPT("box"), OPT("single"), OPT("text"), OPT("t"), OPT("res"), OPT("redundant"),
    OPT("templates"), OPT("format"), OPT("array"),
};

static const struct {
    const char *name;
    const cli_option *fields;
    int n_fields;
} k_jobs[SERVE_N_JOBS] = {
    [SERVE_EXPLAIN] = {"explain", CLI_OPTIONS(k_explain_fields)},
    [SERVE_SEGMENT] = {"segment", CLI_OPTIONS(k_segment_fields)},
    [SERVE_POINTS] = {"points", CLI_OPTIONS(k_points_fields)},
    [SERVE_CLASSIFY] = {"classify", CLI_OPTIONS(k_classify_fields)},
    [SERVE_WORDS] = {"words", CLI_OPTIONS(k_words_fields)},
    [SERVE_SAM] = {"sam", CLI_OPTIONS(k_sam_fields)},
};

int serve_job_find(const char *path) {
    if (strncmp(path, "/api/", 5)) return -1;
    for (int k = 0; k < SERVE_N_JOBS; k++)
        if (!strcmp(path + 5, k_jobs[k].name)) return k;
    return -1;
}

const char *serve_job_name(serve_job_kind kind) { return k_jobs[kind].name; }

/* ---------------------------------------------------------------- answers */
void serve_answer_error(serve_answer *out, int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' '; /* one line */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(out->body);
    memset(out, 0, sizeof *out);
    out->status = status;
    out->content_type = "application/json";
    out->len = text ? strlen(text) : 0;
    out->body = text ? realloc(text, out->len + 2) : NULL;
    if (out->body) {
        out->body[out->len++] = '\n';
        out->body[out->len] = 0;
    }
}

/* The library's status as an HTTP one: the input's fault is 4xx. Out of
 * memory is 503 with its own message: the failed allocation may be the
 * server's, and cs_last_error() then an older failure's. */
static void fail_status(serve_answer *out, cs_status s) {
    if (s == CS_ERR_NOMEM) {
        serve_answer_error(out, 503, "out of memory; try again later or with a smaller image");
        return;
    }
    int status = s == CS_ERR_LIMIT ? 413 : s == CS_ERR_IO ? 500 : 400;
    serve_answer_error(out, status, "%s", cs_last_error());
}

static void answer_json(serve_answer *out, cJSON *o) {
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) {
        serve_answer_error(out, 503, "out of memory");
        return;
    }
    out->status = 200;
    out->content_type = "application/json";
    out->body = text;
    out->len = strlen(text);
}

/* One array as its .npy bytes (what the CLI's --npy writes). */
static void answer_npy(serve_answer *out, const char *filename, cs_dtype dtype, int ndim,
                       const int64_t *shape, const void *data) {
    uint8_t *bytes;
    size_t len;
    cs_status s = cs_npy_encode(dtype, ndim, shape, data, &bytes, &len);
    if (s != CS_OK) {
        fail_status(out, s);
        return;
    }
    out->status = 200;
    out->content_type = "application/octet-stream";
    out->body = (char *)bytes;
    out->len = len;
    snprintf(out->filename, sizeof out->filename, "%s", filename);
}

static char *base64(const uint8_t *in, size_t n) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1), *p = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        *p++ = t[v >> 18 & 63];
        *p++ = t[v >> 12 & 63];
        *p++ = i + 1 < n ? t[v >> 6 & 63] : '=';
        *p++ = i + 2 < n ? t[v & 63] : '=';
    }
    *p = 0;
    return out;
}

/* obj[key] = "data:image/png;base64,..." of the picture (the bytes the CLI
 * writes into its PNG file). */
static cs_status add_png(cJSON *obj, const char *key, int w, int h, int channels, const uint8_t *px) {
    uint8_t *png;
    size_t len;
    cs_status s = cs_png_encode(w, h, channels, px, &png, &len);
    if (s != CS_OK) return s;
    char *b64 = base64(png, len);
    cs_free(png);
    size_t n = b64 ? strlen(b64) + 32 : 0;
    char *url = b64 ? malloc(n) : NULL;
    if (url) snprintf(url, n, "data:image/png;base64,%s", b64);
    free(b64);
    if (!url) return CS_ERR_NOMEM;
    cJSON_AddStringToObject(obj, key, url);
    free(url);
    return CS_OK;
}

static cJSON *int_pair(int a, int b) {
    int v[2] = {a, b};
    return cJSON_CreateIntArray(v, 2);
}

static cJSON *class_names(const cs_classes *cl) {
    cJSON *names = cJSON_CreateArray();
    for (int c = 0; c < cs_classes_count(cl); c++) cJSON_AddItemToArray(names, cJSON_CreateString(cs_classes_name(cl, c)));
    return names;
}

static const char *redundancy_name(cs_redundancy r) {
    return r == CS_REDUNDANT_EMPTY ? "empty" : r == CS_REDUNDANT_CLASSES ? "classes" : "none";
}

/* ---------------------------------------------------------------- one job */
typedef struct job {
    const serve_models *models;
    cs_model *m;
    const uint8_t *image; /* the upload's bytes */
    size_t image_len;
    cli_args a;
    cs_image img;
    cs_input in;
    cs_classes *cl;
    int cl_kept; /* cl is load_classes' kept set: not freed with the job */
    serve_answer *out;
    char msg[512]; /* the shared helpers' messages */
} job;

/* A helper's exit code as an answer: usage errors are the request's (400),
 * the others (memory, the class-embedding cache's disk) are the server's. */
static int helper_failed(job *j, int rc) {
    if (!rc) return 0;
    serve_answer_error(j->out, rc == CLI_EXIT_USAGE ? 400 : 503, "%s", j->msg[0] ? j->msg : "failed");
    return 1;
}

static int format_is(const job *j, const char *f) {
    const char *v = cli_get(&j->a, "format");
    return v ? !strcmp(v, f) : !strcmp(f, "json");
}

static cs_classes *last;  /* the kept class set and its key */
static char *last_key;

static void classes_forget(void) {
    cs_classes_free(last);
    free(last_key);
    last = NULL;
    last_key = NULL;
}

/* The class set: --classes or --text as the CLI takes them (split at '+'
 * for combined points), no file names. */
static int load_classes(job *j, int flags) {
    const char *classes = cli_get(&j->a, "classes"), *text = cli_get(&j->a, "text"),
               *templates = cli_get(&j->a, "templates");
    if (!!classes + !!text != 1) {
        serve_answer_error(j->out, 400, "give one of the fields classes (a,b,c) or text");
        return 1;
    }
    if (classes && classes[0] == '@') {
        serve_answer_error(j->out, 400, "classes: @FILE lists are not read from requests; give the names (a,b,c)");
        return 1;
    }
    if (templates && strcmp(templates, "default") && strcmp(templates, "none")) {
        serve_answer_error(j->out, 400, "templates '%s' is not default or none (files are not read from requests)",
                           templates);
        return 1;
    }
    /* The last class set stays embedded between jobs (the worker's alone):
     * a page asking about one image and one set of classes again and again
     * runs the text tower, or reads the embedding cache, once. */
    char key[1024];
    int n = snprintf(key, sizeof key, "%d|%s|%s|%s", flags, classes ? "c" : "t", templates ? templates : "",
                     classes ? classes : text);
    if (last && n < (int)sizeof key && !strcmp(key, last_key)) {
        j->cl = last;
        j->cl_kept = 1;
        return 0;
    }
    classes_forget();
    if (helper_failed(j, cli_classes_load(&j->a, j->m, NULL, flags, &j->cl))) return 1;
    if (n < (int)sizeof key && (last_key = strdup(key))) {
        last = j->cl;
        j->cl_kept = 1;
    }
    return 0;
}

/* The resolution field as the CLI checks it. */
static int resolution(job *j, int *res) { return helper_failed(j, cli_int(&j->a, "res", 0, 16, 4096, res) ? 0 : CLI_EXIT_USAGE); }

static void explain(job *j) {
    cs_explain_options o = cs_explain_defaults();
    const char *array = cli_get(&j->a, "array");
    if (format_is(j, "npy") && array && strcmp(array, "maps") && strcmp(array, "similarity") &&
        strcmp(array, "image_tokens") && strcmp(array, "pixels") && strcmp(array, "class_embeddings")) {
        serve_answer_error(j->out, 400, "array '%s' is not maps, similarity, image_tokens, pixels or class_embeddings", array);
        return;
    }
    if (!format_is(j, "npy") && !format_is(j, "json")) {
        serve_answer_error(j->out, 400, "format '%s' is not json or npy", cli_get(&j->a, "format"));
        return;
    }
    if (helper_failed(j, cli_method(&j->a, &o.method) ? 0 : CLI_EXIT_USAGE) || resolution(j, &o.resolution) ||
        helper_failed(j, cli_redundancy(&j->a, &o.redundant)) || load_classes(j, 0))
        return;
    cs_explain_result r;
    cs_status s = cs_explain(j->m, j->cl, &j->in, 1, &o, &r);
    if (s != CS_OK) {
        fail_status(j->out, s);
        return;
    }
    int W = r.width, H = r.height, C = r.n_classes, D = r.dim, T = r.n_tokens, R = r.resolution;
    if (format_is(j, "npy")) {
        array = array ? array : "maps";
        char name[64];
        snprintf(name, sizeof name, "%s.npy", array);
        int64_t shape[3];
        if (!strcmp(array, "maps")) {
            memcpy(shape, (int64_t[3]){H, W, C}, sizeof shape);
            answer_npy(j->out, name, CS_DT_F32, 3, shape, r.maps);
        } else if (!strcmp(array, "similarity")) {
            memcpy(shape, (int64_t[2]){T, C}, 2 * sizeof *shape);
            answer_npy(j->out, name, CS_DT_F32, 2, shape, r.similarity);
        } else if (!strcmp(array, "image_tokens")) {
            memcpy(shape, (int64_t[2]){T, D}, 2 * sizeof *shape);
            answer_npy(j->out, name, CS_DT_F32, 2, shape, r.tokens);
        } else if (!strcmp(array, "pixels")) {
            memcpy(shape, (int64_t[3]){3, R, R}, sizeof shape);
            answer_npy(j->out, name, CS_DT_F32, 3, shape, r.pixels);
        } else {
            memcpy(shape, (int64_t[2]){cs_classes_num_names(j->cl), D}, 2 * sizeof *shape);
            answer_npy(j->out, name, CS_DT_F32, 2, shape, cs_classes_embeddings(j->cl));
        }
        cs_explain_result_free(&r);
        return;
    }
    cJSON *o_json = cJSON_CreateObject(), *maps = cJSON_CreateArray();
    cJSON_AddItemToObject(o_json, "image_size", int_pair(W, H));
    cJSON_AddNumberToObject(o_json, "resolution", R);
    cJSON_AddItemToObject(o_json, "classes", class_names(j->cl));
    cJSON_AddStringToObject(o_json, "redundant", redundancy_name(r.redundant));
    cJSON_AddItemToObject(o_json, "heatmaps", maps);
    uint8_t *pic = malloc((size_t)W * H * 3);
    s = pic ? CS_OK : CS_ERR_NOMEM;
    for (int c = 0; s == CS_OK && c < C; c++) {
        cJSON *item = cJSON_CreateObject();
        cJSON_AddItemToArray(maps, item);
        cJSON_AddStringToObject(item, "class", cs_classes_name(j->cl, c));
        cs_heatmap_overlay(r.maps + c, C, (size_t)W * H, j->img.rgb, pic);
        s = add_png(item, "overlay", W, H, 3, pic);
        cs_map_to_gray(r.maps + c, C, (size_t)W * H, pic);
        if (s == CS_OK) s = add_png(item, "map", W, H, 1, pic);
    }
    free(pic);
    cs_explain_result_free(&r);
    if (s != CS_OK) {
        cJSON_Delete(o_json);
        serve_answer_error(j->out, 503, "out of memory for the pictures");
        return;
    }
    answer_json(j->out, o_json);
}

/* One of segment --npy's arrays: the arrays job alone (its labels are the
 * segment job's, so the tower runs once). */
static void segment_npy(job *j, const cs_segment_options *o) {
    const char *array = cli_get(&j->a, "array") ? cli_get(&j->a, "array") : "logits";
    int f = 0;
    while (f < CLI_SEGMENT_NPY && strcmp(cli_segment_npy_names[f], array)) f++;
    cs_segment_result r = {0};
    cs_status s;
    if (f == CLI_SEGMENT_NPY) {
        serve_answer_error(j->out, 400, "array '%s' is not tokens, cosine, logits, score or argmax", array);
    } else if (f < 2 && o->window) {
        serve_answer_error(j->out, 400, "array '%s': sliding windows have no whole-image tokens", array);
    } else if ((s = cs_segment_arrays(j->m, j->cl, &j->in, 1, o, &r)) != CS_OK) {
        fail_status(j->out, s);
    } else {
        cs_dtype dtype;
        int ndim;
        int64_t shape[3];
        void *data, *owned;
        char name[64];
        snprintf(name, sizeof name, "%s.npy", array);
        if (!helper_failed(j, cli_segment_npy_array(f, &r, cs_method_defaults_of(o->method).drops_cls, &dtype,
                                                    &ndim, shape, &data, &owned)))
            answer_npy(j->out, name, dtype, ndim, shape, data);
        free(owned);
    }
    cs_segment_result_free(&r);
}

static void segment(job *j) {
    cs_segment_options o;
    if (!format_is(j, "json") && !format_is(j, "png") && !format_is(j, "npy")) {
        serve_answer_error(j->out, 400, "format '%s' is not json, png or npy", cli_get(&j->a, "format"));
        return;
    }
    if (load_classes(j, 0) || helper_failed(j, cli_segment_options(&j->a, j->cl, &o))) return;
    if (format_is(j, "npy")) {
        segment_npy(j, &o);
        return;
    }
    int W = j->img.width, H = j->img.height, C = cs_classes_count(j->cl);
    uint8_t *labels = malloc((size_t)W * H);
    cs_status s = labels ? cs_segment(j->m, j->cl, &j->img, 1, &o, labels) : CS_ERR_NOMEM;
    if (s != CS_OK) {
        free(labels);
        fail_status(j->out, s);
        return;
    }
    if (format_is(j, "png")) {
        uint8_t *png;
        size_t len;
        if ((s = cs_png_encode(W, H, 1, labels, &png, &len)) == CS_OK) {
            j->out->status = 200;
            j->out->content_type = "image/png";
            j->out->body = (char *)png;
            j->out->len = len;
            snprintf(j->out->filename, sizeof j->out->filename, "labels.png");
        } else {
            fail_status(j->out, s);
        }
    } else {
        cJSON *res = cJSON_CreateObject(), *legend = cJSON_CreateArray();
        cJSON_AddItemToObject(res, "image_size", int_pair(W, H));
        cJSON_AddItemToObject(res, "classes", class_names(j->cl));
        int *count = calloc((size_t)C, sizeof *count);
        for (size_t i = 0; count && i < (size_t)W * H; i++) count[labels[i]]++;
        for (int c = 0; count && c < C; c++) {
            uint8_t rgb[3];
            cs_label_color(c, rgb);
            cJSON *item = cJSON_CreateObject();
            cJSON_AddStringToObject(item, "class", cs_classes_name(j->cl, c));
            cJSON_AddNumberToObject(item, "index", c);
            cJSON_AddItemToObject(item, "color", cJSON_CreateIntArray((int[3]){rgb[0], rgb[1], rgb[2]}, 3));
            cJSON_AddNumberToObject(item, "fraction", (double)count[c] / ((double)W * H));
            cJSON_AddItemToArray(legend, item);
        }
        free(count);
        cJSON_AddItemToObject(res, "legend", legend);
        int rows;
        uint8_t *color = cli_segment_color(labels, W, H, j->cl, &rows), *overlay = cli_segment_overlay(labels, &j->img);
        s = color && overlay ? add_png(res, "labels", W, H, 1, labels) : CS_ERR_NOMEM;
        if (s == CS_OK) s = add_png(res, "color", W, rows, 3, color);
        if (s == CS_OK) s = add_png(res, "overlay", W, H, 3, overlay);
        free(color);
        free(overlay);
        if (s == CS_OK) answer_json(j->out, res);
        else {
            cJSON_Delete(res);
            fail_status(j->out, s);
        }
    }
    free(labels);
}

/* --t as the CLI checks it. */
static int threshold(job *j, float *t) {
    const char *v = cli_get(&j->a, "t");
    char *end = NULL;
    *t = v ? strtof(v, &end) : 0.8f;
    if (v && (*end || !(*t >= 0.0f && *t <= 1.0f))) {
        serve_answer_error(j->out, 400, "--t '%s' is not a number in [0, 1]", v);
        return 1;
    }
    return 0;
}

static void points(job *j) {
    cs_points_options o = cs_points_defaults();
    const char *text = cli_get(&j->a, "text"), *array = cli_get(&j->a, "array"), *red = cli_get(&j->a, "redundant");
    o.combined = text && strchr(text, '+') != NULL;
    if (!format_is(j, "json") && !format_is(j, "npy")) {
        serve_answer_error(j->out, 400, "format '%s' is not json or npy", cli_get(&j->a, "format"));
        return;
    }
    if (format_is(j, "npy") && array && strcmp(array, "points") && strcmp(array, "labels")) {
        serve_answer_error(j->out, 400, "array '%s' is not points or labels", array);
        return;
    }
    if (o.combined && red && !strcmp(red, "classes")) {
        serve_answer_error(j->out, 400, "combined targets use the empty prompt's redundant features; drop redundant=classes");
        return;
    }
    if (threshold(j, &o.threshold) || resolution(j, &o.resolution) ||
        helper_failed(j, cli_redundancy(&j->a, &o.redundant)) || load_classes(j, o.combined ? CLI_SPLIT_PLUS : 0))
        return;
    int C = cs_classes_count(j->cl), n_targets = o.combined ? 1 : C;
    /* target: the classes to give points for (default all), as the CLI's --target */
    int *chosen = calloc((size_t)C, sizeof *chosen);
    const char *target = o.combined ? NULL : cli_get(&j->a, "target");
    for (int c = 0; chosen && c < C; c++) chosen[c] = !target;
    if (chosen && target) {
        char *copy = strdup(target), *save = NULL;
        for (char *name = copy ? strtok_r(copy, ",", &save) : NULL; name; name = strtok_r(NULL, ",", &save)) {
            int c = cs_classes_find(j->cl, name);
            if (c < 0) {
                serve_answer_error(j->out, 400, "--target '%s' is not one of the classes", name);
                break;
            }
            chosen[c] = 1;
        }
        free(copy);
    }
    cs_points_result p;
    cs_status s = CS_OK;
    if (!chosen) s = CS_ERR_NOMEM;
    else if (!j->out->status) s = cs_points(j->m, j->cl, &j->in, &o, &p);
    if (s != CS_OK) fail_status(j->out, s);
    if (s != CS_OK || j->out->status) {
        free(chosen);
        return;
    }
    if (format_is(j, "npy")) {
        int k;
        if (!cli_int(&j->a, "index", 0, 0, n_targets - 1, &k)) {
            serve_answer_error(j->out, 400, "index '%s' is not a target index in 0..%d", cli_get(&j->a, "index"),
                               n_targets - 1);
        } else {
            int a = p.offsets[k], n = p.offsets[k + 1] - a;
            char name[64];
            array = array ? array : "points";
            snprintf(name, sizeof name, "%s_%d.npy", array, k);
            if (!strcmp(array, "points")) answer_npy(j->out, name, CS_DT_I32, 2, (int64_t[2]){n, 2}, p.points + 2 * a);
            else answer_npy(j->out, name, CS_DT_U8, 1, (int64_t[1]){n}, p.labels + a);
        }
    } else {
        cJSON *res = cJSON_CreateObject(), *targets = cJSON_CreateObject();
        cJSON_AddItemToObject(res, "image_size", int_pair(p.width, p.height));
        cJSON_AddStringToObject(res, "redundant", redundancy_name(p.redundant));
        cJSON_AddItemToObject(res, "targets", targets);
        size_t bytes = (size_t)p.width * p.height * 3;
        uint8_t *rgb = malloc(bytes);
        if (!rgb) s = CS_ERR_NOMEM;
        for (int k = 0; s == CS_OK && k < n_targets; k++) {
            if (!o.combined && !chosen[k]) continue;
            int a = p.offsets[k], b = p.offsets[k + 1];
            cJSON *t = cJSON_CreateObject(), *pts = cJSON_CreateArray(), *labels = cJSON_CreateArray();
            for (int i = a; i < b; i++) {
                cJSON_AddItemToArray(pts, int_pair(p.points[2 * i], p.points[2 * i + 1]));
                cJSON_AddItemToArray(labels, cJSON_CreateNumber(p.labels[i]));
            }
            cJSON_AddItemToObject(t, "points", pts);
            cJSON_AddItemToObject(t, "labels", labels);
            cJSON_AddNumberToObject(t, "index", k);
            cJSON_AddItemToObject(targets, o.combined ? text : cs_classes_name(j->cl, k), t);
            memcpy(rgb, j->img.rgb, bytes);
            s = cs_draw_points(rgb, p.width, p.height, p.points + 2 * a, p.labels + a, b - a);
            if (s == CS_OK) s = add_png(t, "picture", p.width, p.height, 3, rgb);
        }
        free(rgb);
        if (s == CS_OK) answer_json(j->out, res);
        else {
            cJSON_Delete(res);
            fail_status(j->out, s);
        }
    }
    free(chosen);
    cs_points_result_free(&p);
}

static void classify(job *j) {
    const char *method = cli_get(&j->a, "method");
    cs_method methods[2] = {CS_METHOD_SURGERY, CS_METHOD_CLIP};
    int n = method && !strcmp(method, "both") ? 2 : 1;
    if (n == 1 && helper_failed(j, cli_method(&j->a, &methods[0]) ? 0 : CLI_EXIT_USAGE)) return;
    if (!format_is(j, "json")) {
        serve_answer_error(j->out, 400, "format '%s': classify answers JSON only", cli_get(&j->a, "format"));
        return;
    }
    cs_classify_options o = cs_classify_defaults();
    if (resolution(j, &o.resolution) || load_classes(j, 0)) return;
    int C = cs_classes_count(j->cl), R = o.resolution ? o.resolution : cs_model_config(j->m)->image_resolution;
    float *scores = malloc(sizeof(float) * 2 * (size_t)C);
    cs_status s = scores ? CS_OK : CS_ERR_NOMEM;
    for (int i = 0; s == CS_OK && i < n; i++) {
        o.method = methods[i];
        s = cs_classify(j->m, j->cl, &j->img, 1, &o, scores + (size_t)i * C);
    }
    if (s != CS_OK) {
        free(scores);
        fail_status(j->out, s);
        return;
    }
    cJSON *res = cJSON_CreateObject();
    cJSON_AddItemToObject(res, "image_size", int_pair(j->img.width, j->img.height));
    cJSON_AddNumberToObject(res, "resolution", R);
    cJSON_AddItemToObject(res, "classes", class_names(j->cl));
    for (int i = 0; i < n; i++) {
        cJSON *arr = cJSON_CreateArray();
        for (int c = 0; c < C; c++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(scores[(size_t)i * C + c]));
        cJSON_AddItemToObject(res, cs_method_name(methods[i]), arr);
    }
    free(scores);
    answer_json(j->out, res);
}

/* Which words of a caption CLIP sees where: as `words --caption`, one
 * caption per request. */
static void words(job *j) {
    const char *caption = cli_get(&j->a, "caption"), *group = cli_get(&j->a, "group"), *array = cli_get(&j->a, "array");
    cs_words_options o = cs_words_defaults();
    if (!caption || !*caption) {
        serve_answer_error(j->out, 400, "give the field caption");
        return;
    }
    if (group && strcmp(group, "tokens") && strcmp(group, "words")) {
        serve_answer_error(j->out, 400, "--group '%s' is not tokens or words", group);
        return;
    }
    if (!format_is(j, "json") && !format_is(j, "npy")) {
        serve_answer_error(j->out, 400, "format '%s' is not json or npy", cli_get(&j->a, "format"));
        return;
    }
    if (format_is(j, "npy") && array && strcmp(array, "maps") && strcmp(array, "similarity") &&
        strcmp(array, "image_tokens") && strcmp(array, "word_features")) {
        serve_answer_error(j->out, 400, "array '%s' is not maps, similarity, image_tokens or word_features", array);
        return;
    }
    o.group = group && !strcmp(group, "words") ? CS_WORDS_WORDS : CS_WORDS_TOKENS;
    if (resolution(j, &o.resolution)) return;
    cs_words_result r;
    cs_status s = cs_words(j->m, &j->in, &caption, 1, &o, &r);
    if (s != CS_OK) {
        fail_status(j->out, s);
        return;
    }
    int U = r.n_units, W = r.width, H = r.height, D = r.dim, NT = r.n_image_tokens;
    if (format_is(j, "npy")) {
        array = array ? array : "maps";
        char name[64];
        snprintf(name, sizeof name, "%s.npy", array);
        if (!strcmp(array, "maps")) answer_npy(j->out, name, CS_DT_F32, 3, (int64_t[3]){H, W, U}, r.maps);
        else if (!strcmp(array, "similarity")) answer_npy(j->out, name, CS_DT_F32, 2, (int64_t[2]){NT, U}, r.similarity);
        else if (!strcmp(array, "image_tokens")) answer_npy(j->out, name, CS_DT_F32, 2, (int64_t[2]){NT, D}, r.image_tokens);
        else answer_npy(j->out, name, CS_DT_F32, 2, (int64_t[2]){r.n_tokens, D}, r.token_features);
        cs_words_result_free(&r);
        return;
    }
    cJSON *res = cJSON_CreateObject(), *units = cJSON_CreateArray();
    cJSON_AddItemToObject(res, "image_size", int_pair(W, H));
    cJSON_AddStringToObject(res, "caption", caption);
    cJSON_AddStringToObject(res, "group", group ? group : "tokens");
    cJSON_AddBoolToObject(res, "truncated", r.truncated);
    cJSON_AddNumberToObject(res, "dropped", r.dropped);
    cJSON_AddItemToObject(res, "top", cJSON_CreateIntArray(r.top, 3));
    cJSON_AddItemToObject(res, "units", units);
    uint8_t *pic = malloc((size_t)W * H * 3);
    s = pic ? CS_OK : CS_ERR_NOMEM;
    for (int u = 0; s == CS_OK && u < U; u++) {
        const cs_words_unit *x = &r.units[u];
        cJSON *item = cJSON_CreateObject();
        cJSON_AddItemToArray(units, item);
        cJSON_AddStringToObject(item, "text", x->text);
        if (x->start >= 0) {
            cJSON_AddNumberToObject(item, "start", x->start);
            cJSON_AddNumberToObject(item, "end", x->end);
        }
        cJSON_AddNumberToObject(item, "cosine", (double)x->cosine);
        cJSON_AddNumberToObject(item, "rank", x->rank);
        cs_heatmap_overlay(r.maps + u, U, (size_t)W * H, j->img.rgb, pic);
        s = add_png(item, "overlay", W, H, 3, pic);
    }
    free(pic);
    uint8_t *fig = NULL;
    int fw, fh;
    if (s == CS_OK) s = cs_words_figure(&r, caption, j->img.rgb, W, H, &fig, &fw, &fh);
    if (s == CS_OK) s = add_png(res, "figure", fw, fh, 3, fig);
    cs_free(fig);
    cs_words_result_free(&r);
    if (s != CS_OK) {
        cJSON_Delete(res);
        fail_status(j->out, s);
        return;
    }
    answer_json(j->out, res);
}

/* ---------------------------------------------------------------- SAM */
/* Image embeddings by the SHA-256 of the uploaded bytes (the image options
 * are the server's, the same for every request), the least recently used
 * replaced first: clicks on one image run SAM's encoder once. The worker's
 * alone, as the models. */
typedef struct sam_entry {
    char key[65];
    unsigned long used;
    cs_sam_embedding e;
} sam_entry;
static sam_entry *sam_cache;
static int sam_cached;
static unsigned long sam_clock;

/* The image's embedding: the cache's, or *own's when it cannot be kept
 * (--sam-cache 0, no memory for the table). *ran: the encoder ran. */
static cs_status sam_embedding(job *j, cs_sam_embedding *own, const cs_sam_embedding **e, int *ran) {
    int cap = j->models->sam_cache;
    char key[65];
    cs_sha256_bytes(j->image, j->image_len, key);
    *ran = 0;
    for (int i = 0; i < sam_cached; i++)
        if (!strcmp(sam_cache[i].key, key)) {
            sam_cache[i].used = ++sam_clock;
            *e = &sam_cache[i].e;
            return CS_OK;
        }
    cs_status s = cs_sam_encode(j->models->sam, &j->img, own);
    if (s != CS_OK) return s;
    *ran = 1;
    *e = own;
    if (cap > 0 && !sam_cache && !(sam_cache = calloc((size_t)cap, sizeof *sam_cache))) return CS_OK;
    if (cap <= 0) return CS_OK;
    int slot = sam_cached < cap ? sam_cached++ : 0;
    for (int i = 0; i < sam_cached; i++)
        if (sam_cache[i].used < sam_cache[slot].used) slot = i;
    cs_sam_embedding_free(&sam_cache[slot].e);
    sam_cache[slot] = (sam_entry){.used = ++sam_clock, .e = *own};
    memcpy(sam_cache[slot].key, key, sizeof key);
    memset(own, 0, sizeof *own); /* the cache's now */
    *e = &sam_cache[slot].e;
    return CS_OK;
}

/* CLIP Surgery's points for the field text, as `sam --text` makes them
 * (the points job, res 512 by default as the authors' demo; "a+b" one
 * combined target): the prompt set's points and labels into *pts, *lab. */
static int text_points(job *j, const char *text, cs_sam_prompt_set *set, float **pts, int32_t **lab) {
    cs_points_options o = cs_points_defaults();
    const char *red = cli_get(&j->a, "redundant");
    o.combined = strchr(text, '+') != NULL;
    if (o.combined && red && !strcmp(red, "classes")) {
        serve_answer_error(j->out, 400, "combined targets use the empty prompt's redundant features; drop redundant=classes");
        return 1;
    }
    if (threshold(j, &o.threshold) ||
        helper_failed(j, cli_int(&j->a, "res", 512, 16, 4096, &o.resolution) ? 0 : CLI_EXIT_USAGE) ||
        helper_failed(j, cli_redundancy(&j->a, &o.redundant)) || load_classes(j, o.combined ? CLI_SPLIT_PLUS : 0))
        return 1;
    cs_points_result p;
    cs_status s = cs_points(j->m, j->cl, &j->in, &o, &p);
    if (s != CS_OK) {
        fail_status(j->out, s);
        return 1;
    }
    int n = p.offsets[1] - p.offsets[0];
    *pts = malloc(sizeof(float) * 2 * ((size_t)n + 1));
    *lab = malloc(sizeof(int32_t) * ((size_t)n + 1));
    if (!n) serve_answer_error(j->out, 400, "no points for '%s' (its map is flat)", text);
    else if (!*pts || !*lab) fail_status(j->out, CS_ERR_NOMEM);
    for (int i = 0; !j->out->status && i < n; i++) {
        (*pts)[2 * i] = (float)p.points[2 * i];
        (*pts)[2 * i + 1] = (float)p.points[2 * i + 1];
        (*lab)[i] = p.labels[i];
    }
    cs_points_result_free(&p);
    *set = (cs_sam_prompt_set){.name = text, .n_points = n, .points = *pts, .labels = *lab,
                               .multimask = !cli_has(&j->a, "single")};
    return j->out->status != 0;
}

static cJSON *float_list(const float *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(x[i]));
    return a;
}

/* The answer's JSON: the prompts used, each mask's IoU and area, the best
 * mask (mask.png's bytes) and the overlay (overlay.png's). */
static void sam_json(job *j, const cs_sam_prompt_set *set, const cs_sam_result *r, int ran) {
    int W = r->width, H = r->height, best = cs_sam_best_mask(r);
    size_t HW = (size_t)W * H;
    cJSON *res = cJSON_CreateObject(), *pts = cJSON_CreateArray(), *labels = cJSON_CreateArray(),
          *masks = cJSON_CreateArray();
    cJSON_AddItemToObject(res, "image_size", int_pair(W, H));
    cJSON_AddStringToObject(res, "encoder", ran ? "ran" : "cached");
    for (int k = 0; k < set->n_points; k++) {
        cJSON_AddItemToArray(pts, float_list(set->points + 2 * k, 2));
        cJSON_AddItemToArray(labels, cJSON_CreateNumber(set->labels[k]));
    }
    cJSON_AddItemToObject(res, "points", pts);
    cJSON_AddItemToObject(res, "labels", labels);
    cJSON_AddItemToObject(res, "box", set->has_box ? float_list(set->box, 4) : cJSON_CreateNull());
    cJSON_AddBoolToObject(res, "multimask", set->multimask);
    cJSON_AddNumberToObject(res, "best", best);
    for (int c = 0; c < r->n_masks; c++) {
        cJSON *m = cJSON_CreateObject();
        size_t area = 0;
        for (size_t i = 0; i < HW; i++) area += r->masks[c * HW + i];
        cJSON_AddNumberToObject(m, "iou", r->iou[c]);
        cJSON_AddNumberToObject(m, "area", (double)area);
        cJSON_AddItemToArray(masks, m);
    }
    cJSON_AddItemToObject(res, "masks", masks);
    uint8_t *px = malloc(HW * 3);
    cs_status s = px ? CS_OK : CS_ERR_NOMEM;
    for (size_t i = 0; px && i < HW; i++) px[i] = r->masks[best * HW + i] ? 255 : 0;
    if (s == CS_OK) s = add_png(res, "mask", W, H, 1, px);
    if (s == CS_OK) s = cs_sam_overlay(&j->img, r->masks + best * HW, set, px);
    if (s == CS_OK) s = add_png(res, "overlay", W, H, 3, px);
    free(px);
    if (s != CS_OK) {
        cJSON_Delete(res);
        fail_status(j->out, s);
        return;
    }
    answer_json(j->out, res);
}

static const char *const k_sam_arrays[] = {"masks", "iou", "lowres", "logits", "embedding"};

/* Segment Anything on the upload: point=X,Y[,L] (repeated), box=X0,Y0,X1,Y1
 * and single, as `sam --point/--box/--single`, or text=T through CLIP
 * Surgery's points, as `sam --model M --text T`. */
static void sam(job *j) {
    const char *text = cli_get(&j->a, "text"), *array = cli_get(&j->a, "array");
    int manual = cli_has(&j->a, "point") || cli_has(&j->a, "box"), a = 0;
    if (manual == (text != NULL)) {
        serve_answer_error(j->out, 400, "give points (point=X,Y[,L], repeated) and/or a box (box=X0,Y0,X1,Y1), or a text");
        return;
    }
    if (!format_is(j, "json") && !format_is(j, "npy")) {
        serve_answer_error(j->out, 400, "format '%s' is not json or npy", cli_get(&j->a, "format"));
        return;
    }
    while (array && a < 5 && strcmp(array, k_sam_arrays[a])) a++;
    if (format_is(j, "npy") && a == 5) {
        serve_answer_error(j->out, 400, "array '%s' is not masks, iou, lowres, logits or embedding", array);
        return;
    }
    cli_sam_manual mp = {0};
    cs_sam_prompt_set set;
    float *pts = NULL;
    int32_t *lab = NULL;
    int failed = manual ? helper_failed(j, cli_sam_manual_prompt(&j->a, &mp)) : text_points(j, text, &set, &pts, &lab);
    if (manual) set = mp.set;
    cs_sam_embedding own = {0};
    const cs_sam_embedding *e = NULL;
    cs_sam_result r = {0};
    int ran = 0;
    cs_status s = failed ? CS_OK : sam_embedding(j, &own, &e, &ran);
    if (!failed && s == CS_OK) {
        cs_sam_prompt p = {set.n_points, set.points, set.labels, set.has_box ? set.box : NULL, NULL, set.multimask};
        s = cs_sam_predict(j->models->sam, e, &p, &r);
    }
    if (s != CS_OK) {
        fail_status(j->out, s);
    } else if (!failed && format_is(j, "npy")) { /* the files `sam --npy` writes */
        int C = r.n_masks, H = r.height, W = r.width, L = r.lowres;
        char name[64];
        snprintf(name, sizeof name, "%s.npy", k_sam_arrays[a]);
        if (a == 0) answer_npy(j->out, name, CS_DT_U8, 3, (int64_t[3]){C, H, W}, r.masks);
        else if (a == 1) answer_npy(j->out, name, CS_DT_F32, 1, (int64_t[1]){C}, r.iou);
        else if (a == 2) answer_npy(j->out, name, CS_DT_F32, 3, (int64_t[3]){C, L, L}, r.lowres_logits);
        else if (a == 3) answer_npy(j->out, name, CS_DT_F32, 3, (int64_t[3]){C, H, W}, r.logits);
        else answer_npy(j->out, name, CS_DT_F32, 3, (int64_t[3]){e->dim, e->grid, e->grid}, e->data);
    } else if (!failed) {
        sam_json(j, &set, &r, ran);
    }
    cs_sam_result_free(&r);
    cs_sam_embedding_free(&own);
    cli_sam_manual_free(&mp);
    free(pts);
    free(lab);
}

void serve_jobs_free(void) {
    classes_forget();
    for (int i = 0; i < sam_cached; i++) cs_sam_embedding_free(&sam_cache[i].e);
    free(sam_cache);
    sam_cache = NULL;
    sam_cached = 0;
}

void serve_job_run(const serve_models *m, serve_job_kind kind, const serve_field *fields, int n_fields,
                   const uint8_t *image, size_t image_len, serve_answer *out) {
    static job j; /* large (the parsed fields); one job at a time (the queue's worker) */
    memset(&j, 0, sizeof j);
    memset(out, 0, sizeof *out);
    j.models = m;
    j.m = m->clip;
    j.image = image;
    j.image_len = image_len;
    j.out = out;
    j.a.options = k_jobs[kind].fields;
    j.a.n_options = k_jobs[kind].n_fields;
    for (int i = 0; i < n_fields; i++) {
        int known = 0;
        for (int k = 0; k < j.a.n_options; k++) known |= !strcmp(j.a.options[k].name, fields[i].name);
        if (!known) {
            serve_answer_error(out, 400, "unknown field '%s' for /api/%s", fields[i].name, k_jobs[kind].name);
            return;
        }
        if (!cli_set(&j.a, fields[i].name, fields[i].value)) {
            serve_answer_error(out, 400, "field '%s' given too many times", fields[i].name);
            return;
        }
    }
    cli_capture_errors(j.msg, sizeof j.msg);
    cs_status s = cs_image_decode_memory("the uploaded image", image, image_len, cli_image_options(), &j.img);
    if (s != CS_OK) {
        if (s == CS_ERR_LIMIT || s == CS_ERR_NOMEM) fail_status(out, s);
        else serve_answer_error(out, 415, "%s", cs_last_error());
    } else {
        j.in.image = &j.img;
        switch (kind) {
        case SERVE_EXPLAIN: explain(&j); break;
        case SERVE_SEGMENT: segment(&j); break;
        case SERVE_CLASSIFY: classify(&j); break;
        case SERVE_POINTS: points(&j); break;
        case SERVE_WORDS: words(&j); break;
        case SERVE_SAM: sam(&j); break;
        default: serve_answer_error(out, 404, "no such job"); break;
        }
    }
    cli_capture_errors(NULL, 0);
    if (!j.cl_kept) cs_classes_free(j.cl);
    cs_image_free(&j.img);
}
