/* Inputs shared by the image subcommands: pixels from an image file or an
 * .npy, and class embeddings (with their redundant features) from --classes,
 * --class-embeddings or --text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "cli.h"
#include "formats/download.h"
#include "formats/npy.h"

void cli_input_free(cli_input *in) {
    free(in->pixels);
    free(in->rgb);
    memset(in, 0, sizeof *in);
}

static int parse_size(const char *v, int *w, int *h) {
    char tail;
    if (sscanf(v, "%dx%d%c", w, h, &tail) != 2 || *w <= 0 || *h <= 0 || *w > 65536 || *h > 65536 ||
        (int64_t)*w * *h > cli_image_options()->max_pixels) {
        cli_error("--size '%s' is not WxH (e.g. 640x480) within the image limit (--max-megapixels)", v);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cli_input_from_pixels(const char *path, const char *size, cli_input *in) {
    memset(in, 0, sizeof *in);
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
    in->R = in->width = in->height = (int)px.shape[lead + 1];
    in->pixels = cli_xmalloc(px.nbytes);
    memcpy(in->pixels, px.data, px.nbytes);
    cs_array_free(&px);
    return size ? parse_size(size, &in->width, &in->height) : 0;
}

int cli_input_from_image(const char *path, int R, cli_input *in) {
    memset(in, 0, sizeof *in);
    cs_image img = {0}, small = {0};
    cs_status s = cs_image_load(path, cli_image_options(), &img);
    if (s == CS_OK) s = cs_image_resize(&img, R, R, &small);
    if (s != CS_OK) {
        cs_image_free(&img);
        return cli_fail(s);
    }
    in->R = R;
    in->width = img.width;
    in->height = img.height;
    in->pixels = cli_xmalloc(sizeof(float) * 3 * (size_t)R * R);
    cs_image_normalize(&small, in->pixels);
    in->rgb = cli_xmalloc((size_t)img.width * img.height * 3);
    memcpy(in->rgb, img.rgb, (size_t)img.width * img.height * 3);
    cs_image_free(&img);
    cs_image_free(&small);
    return 0;
}

void cli_text_ctx_close(cli_text_ctx *t) {
    if (t->template_storage) free(t->templates);
    cs_free(t->template_storage);
    cs_tokenizer_free(t->tok);
    memset(t, 0, sizeof *t);
}

/* --templates, and the cache folder and the model's identity unless
 * --no-cache. A failure on the cache side only turns the cache off: it is
 * an optimization. */
int cli_text_ctx_open(const cli_args *a, cs_model *m, cli_text_ctx *t) {
    memset(t, 0, sizeof *t);
    t->D = cs_model_config(m)->embed_dim;
    int rc = cli_load_templates(cli_get(a, "templates"), &t->template_storage, &t->templates,
                                &t->n_templates);
    if (rc) return rc;
    char path[4096], vocab[4096];
    const char *model = cli_get(a, "model");
    char weights[65], words[65];
    /* Embeddings depend on the weights, the vocabulary and the precision the
     * text tower runs in: the key holds the first two by content (a file
     * replaced at the same path gets new entries), the last by name. With
     * no vocabulary at hand yet, the cache is off for this run. */
    t->cache_on = model && !cli_has(a, "no-cache") &&
                  cs_cache_dir(NULL, t->cache_dir, sizeof t->cache_dir) == CS_OK &&
                  cs_resolve_model(model, cli_get(a, "cache-dir"), 0, NULL, NULL, path, sizeof path) == CS_OK &&
                  cs_model_identity(model, path, t->cache_dir, weights) == CS_OK &&
                  cli_vocab_path(a, 0, vocab, sizeof vocab) == CS_OK &&
                  cs_file_identity(vocab, t->cache_dir, words) == CS_OK;
    if (t->cache_on) {
        const char *p = cli_get(a, "precision");
        char key[256];
        int n = snprintf(key, sizeof key, "%s\n%s\n%s", weights, p ? p : "fp32", words);
        cs_sha256_bytes(key, (size_t)n, t->model_hex);
    }
    return 0;
}

int cli_embed_names(const cli_args *a, cs_model *m, cli_text_ctx *t, char **names, int n,
                    float *out) {
    int D = t->D, missing = 0;
    char **todo = cli_xcalloc((size_t)n + 1, sizeof *todo);
    int *where = cli_xcalloc((size_t)n + 1, sizeof *where);
    for (int i = 0; i < n; i++)
        if (!t->cache_on || !cs_cache_lookup(t->cache_dir, t->model_hex, D, t->templates,
                                             t->n_templates, names[i], out + (size_t)i * D)) {
            todo[missing] = names[i];
            where[missing++] = i;
        }
    int rc = missing && !t->tok ? cli_load_tokenizer(a, &t->tok) : 0;
    float *fresh = missing && !rc ? cs_alloc((size_t)missing * D, sizeof(float)) : NULL;
    if (fresh) {
        if (missing > 8)
            cli_note("text tower: %d names x %d prompts", missing, t->n_templates ? t->n_templates : 1);
        cs_status s = cs_class_embeddings(m, t->tok, (const char *const *)todo, missing, t->templates,
                                          t->n_templates, fresh);
        if (s != CS_OK) rc = cli_fail(s);
        for (int k = 0; !rc && k < missing; k++) {
            memcpy(out + (size_t)where[k] * D, fresh + (size_t)k * D, sizeof(float) * (size_t)D);
            if (t->cache_on)
                cs_cache_store(t->cache_dir, t->model_hex, D, t->templates, t->n_templates, todo[k],
                               fresh + (size_t)k * D);
        }
    }
    cs_free(fresh);
    free(todo);
    free(where);
    return rc;
}

void cli_class_set_free(cli_class_set *cs) {
    for (int c = 0; c < cs->C; c++) free(cs->names[c]);
    free(cs->names);
    cs_free(cs->emb);
    cs_free(cs->redundant);
    cli_text_ctx_close(&cs->text);
    memset(cs, 0, sizeof *cs);
}

/* Names for --classes / --text (split at '+' when split_plus). */
static int class_names(const cli_args *a, int split_plus, cli_class_set *cs) {
    const char *text = cli_get(a, "text");
    if (!text) {
        cli_classes cl;
        int rc = cli_parse_classes(cli_get(a, "classes"), &cl);
        if (rc) return rc;
        for (int i = 0; i < cl.n; i++)
            if (cl.n_syn[i] > 1) {
                /* Feature surgery weighs classes against each other: one name each. */
                cli_note("note: class '%s' has synonyms; this command uses its first name", cl.names[i]);
                break;
            }
        cs->C = cl.n;
        cs->names = cli_xcalloc((size_t)cl.n + 1, sizeof *cs->names);
        for (int i = 0; i < cl.n; i++) cs->names[i] = cli_xstrdup(cl.names[i]);
        cli_classes_free(&cl);
        return rc;
    }
    const char *p = text;
    do {
        const char *plus = split_plus ? strchr(p, '+') : NULL;
        size_t n = plus ? (size_t)(plus - p) : strlen(p);
        cs->names = cli_xrealloc(cs->names, sizeof *cs->names * (size_t)(cs->C + 1));
        cs->names[cs->C++] = cli_xstrndup(p, n);
        p = plus ? plus + 1 : NULL;
    } while (p);
    return 0;
}

int cli_class_set_load(const cli_args *a, cs_model *m, int flags, cli_class_set *cs) {
    memset(cs, 0, sizeof *cs);
    cs->D = cs_model_config(m)->embed_dim;
    int rc = cli_text_ctx_open(a, m, &cs->text);
    if (rc) return rc;
    const char *file = cli_get(a, "class-embeddings");
    if (file) {
        cs_array e;
        cs_status s = cs_npy_read(file, &e);
        if (s != CS_OK) return cli_fail(s);
        if (e.dtype != CS_DT_F32 || e.ndim != 2 || e.shape[1] != cs->D || e.shape[0] < 1) {
            cs_array_free(&e);
            cli_error("%s: --class-embeddings must be float32 [C, %d]", file, cs->D);
            return CLI_EXIT_USAGE;
        }
        cs->C = (int)e.shape[0];
        cs->emb = e.data;
        cs->names = cli_xcalloc((size_t)cs->C, sizeof *cs->names);
        for (int c = 0; c < cs->C; c++) {
            cs->names[c] = cli_xmalloc(32);
            snprintf(cs->names[c], 32, "class%d", c);
        }
    } else {
        if ((rc = class_names(a, flags & CLI_SPLIT_PLUS, cs))) return rc;
        cs->emb = cs_alloc((size_t)cs->C * cs->D, sizeof(float));
        if ((rc = cli_embed_names(a, m, &cs->text, cs->names, cs->C, cs->emb))) return rc;
    }
    if (!(flags & CLI_REDUNDANT)) return 0;
    const char *redundant = cli_get(a, "redundant");
    if (redundant && strcmp(redundant, "classes") && strcmp(redundant, "empty")) {
        cli_error("--redundant '%s' is not classes or empty", redundant);
        return CLI_EXIT_USAGE;
    }
    int explicit_mode = redundant ? !strcmp(redundant, "empty") : cli_has(a, "text");
    if (!explicit_mode && cs->C == 1) {
        cli_note("note: one class: class-weighted redundancy is identically zero, so the empty "
                 "prompt gives the redundant features instead");
        explicit_mode = 1;
    }
    if (explicit_mode) {
        char *empty = "";
        cs->redundant = cs_alloc((size_t)cs->D, sizeof(float));
        if ((rc = cli_embed_names(a, m, &cs->text, &empty, 1, cs->redundant))) return rc;
    }
    return 0;
}
