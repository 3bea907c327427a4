/* Opening a model for the jobs (cs_load): a name resolved like clip.load,
 * a file or folder, or a synthetic model; the settings applied; and what
 * text encoding needs later remembered: where the vocabulary is, the
 * weights' identity for the class-embedding cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "model.h"

struct model_source {
    char *name;       /* as given to cs_load */
    char *path;       /* the resolved weights file or folder (NULL: synthetic) */
    char *cache_dir;  /* clip.load's folder, or NULL */
    char *vocab;      /* --vocab, or NULL */
    int download;
    cs_download_fn progress;
    void *progress_ctx;
    int embedding_cache;
    cs_tokenizer *tok; /* loaded on first use */
};

cs_load_options cs_load_defaults(void) {
    return (cs_load_options){.download = 1, .surgery_blocks = 6, .precision = CS_PRECISION_FP32,
                             .embedding_cache = 1};
}

static char *dup_or_null(const char *s) { return s ? mem_strdup(s) : NULL; }

void model_source_free(struct model_source *src) {
    if (!src) return;
    cs_free(src->name);
    cs_free(src->path);
    cs_free(src->cache_dir);
    cs_free(src->vocab);
    cs_tokenizer_free(src->tok);
    cs_free(src);
}

/* cs_resolve_model's and cs_resolve_vocab's progress, with what is fetched. */
typedef struct fetch_progress { cs_download_fn fn; void *ctx; const char *what; } fetch_progress;

static void on_fetch(void *ctx, int64_t done, int64_t total) {
    fetch_progress *p = ctx;
    p->fn(p->ctx, p->what, done, total);
}

static cs_status open_weights(const char *name, const cs_load_options *o, char *path, size_t n,
                              cs_model **out) {
    if (!strncmp(name, "synthetic:", 10)) {
        *path = 0;
        return cs_model_synthetic(name + 10, out); /* random weights, real shapes */
    }
    fetch_progress p = {o->progress, o->progress_ctx, name};
    cs_status s = cs_resolve_model(name, o->cache_dir, o->download, o->progress ? on_fetch : NULL, &p,
                                   path, n);
    return s == CS_OK ? cs_model_load(path, out) : s;
}

cs_status cs_load(const char *name, const cs_load_options *opts, cs_model **out) {
    cs_load_options o = opts ? *opts : cs_load_defaults();
    *out = NULL;
    if (!name || !*name) return error_set(CS_ERR_ARG, "no model given (a name such as ViT-B/16, a file or a folder)");
    char path[4096];
    cs_model *m = NULL;
    cs_status s = open_weights(name, &o, path, sizeof path, &m);
    if (s == CS_OK) s = cs_model_set_surgery(m, o.surgery_blocks, o.resnet_normalize_v);
    if (s == CS_OK) s = cs_model_set_precision(m, o.precision);
    struct model_source *src = s == CS_OK ? mem_calloc(1, sizeof *src) : NULL;
    if (s == CS_OK && !src) s = CS_ERR_NOMEM;
    if (s == CS_OK) {
        *src = (struct model_source){.name = mem_strdup(name), .path = *path ? mem_strdup(path) : NULL,
                                     .cache_dir = dup_or_null(o.cache_dir), .vocab = dup_or_null(o.vocab),
                                     .download = o.download, .progress = o.progress,
                                     .progress_ctx = o.progress_ctx, .embedding_cache = o.embedding_cache};
        if (!src->name || (*path && !src->path) || (o.cache_dir && !src->cache_dir) ||
            (o.vocab && !src->vocab))
            s = CS_ERR_NOMEM;
        model_source_free(m->source);
        m->source = src;
    }
    if (s != CS_OK) {
        cs_model_free(m);
        return s;
    }
    *out = m;
    return CS_OK;
}

static int has_file(const char *dir, const char *name) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* The vocabulary: a model folder's own vocab.json + merges.txt wins (it
 * belongs to those weights), then the one given, then clip.load's cache
 * (downloaded when absent and allowed). */
static cs_status vocab_path(const struct model_source *src, int download, char *out, size_t n) {
    struct stat st;
    if (src->path && stat(src->path, &st) == 0 && S_ISDIR(st.st_mode) && has_file(src->path, "vocab.json")) {
        snprintf(out, n, "%s", src->path);
        return CS_OK;
    }
    if (src->vocab) {
        snprintf(out, n, "%s", src->vocab);
        return CS_OK;
    }
    fetch_progress p = {src->progress, src->progress_ctx, "the BPE vocabulary"};
    cs_status s = cs_resolve_vocab(src->cache_dir, download && src->download, src->progress ? on_fetch : NULL, &p,
                                   out, n);
    if (s != CS_OK) error_prefix("no BPE vocabulary (give --vocab FILE)");
    return s;
}

cs_status cs_model_tokenizer(cs_model *m, cs_tokenizer **tok) {
    *tok = NULL;
    struct model_source *src = m->source;
    if (src && src->tok) {
        *tok = src->tok;
        return CS_OK;
    }
    if (!src || (!src->name && !src->vocab))
        return error_set(CS_ERR_MISSING, "the model has no tokenizer (open it with cs_load, or set one)");
    char path[4096];
    cs_status s = vocab_path(src, 1, path, sizeof path);
    if (s == CS_OK) s = cs_tokenizer_load(path, &src->tok);
    *tok = src->tok;
    return s;
}

void cs_model_set_tokenizer(cs_model *m, cs_tokenizer *tok) {
    if (!m->source) m->source = mem_calloc(1, sizeof *m->source);
    if (!m->source) {
        cs_tokenizer_free(tok);
        return;
    }
    cs_tokenizer_free(m->source->tok);
    m->source->tok = tok;
}

const char *model_source_name(const cs_model *m) { return m->source ? m->source->name : NULL; }
const char *model_source_path(const cs_model *m) { return m->source ? m->source->path : NULL; }
int model_source_cache_on(const cs_model *m) {
    return m->source && m->source->embedding_cache && m->source->path;
}

cs_status model_vocab_path(const cs_model *m, int download, char *out, size_t n) {
    if (!m->source) return error_set(CS_ERR_MISSING, "the model was not opened with cs_load: no vocabulary known");
    return vocab_path(m->source, download, out, n);
}
