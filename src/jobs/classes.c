/* Class sets (cs_classes): names with synonyms, templates, and the
 * embeddings of every name, computed through the class-embedding cache or
 * given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/fileio.h"
#include "formats/download.h"
#include "jobs.h"

struct cs_classes {
    int C, K;           /* classes, names */
    char **names;       /* [K] */
    int *name_class;    /* [K] */
    int *first;         /* [C] each class's first name */
    char *template_storage;
    const char **templates; /* cs_default_templates, or into template_storage, or NULL */
    int n_templates;
    int dim;            /* 0 until embedded */
    float *emb;         /* [K, dim] */
    int given;          /* the embeddings came from the caller */
    float *empty;       /* [dim] the empty prompt's ensemble, computed once */
};

static cs_status new_set(cs_classes **out) {
    *out = mem_calloc(1, sizeof **out);
    if (!*out) return CS_ERR_NOMEM;
    (*out)->templates = (const char **)cs_default_templates;
    (*out)->n_templates = CS_NUM_DEFAULT_TEMPLATES;
    return CS_OK;
}

static void free_templates(cs_classes *cl) {
    if (cl->templates != (const char **)cs_default_templates) cs_free((void *)cl->templates);
    cs_free(cl->template_storage);
    cl->template_storage = NULL;
    cl->templates = NULL;
    cl->n_templates = 0;
}

void cs_classes_free(cs_classes *cl) {
    if (!cl) return;
    for (int k = 0; k < cl->K; k++) cs_free(cl->names[k]);
    cs_free(cl->names);
    cs_free(cl->name_class);
    cs_free(cl->first);
    free_templates(cl);
    cs_free(cl->emb);
    cs_free(cl->empty);
    cs_free(cl);
}

static void *grow(void *p, size_t n, size_t size) {
    size_t bytes;
    if (!size_mul(n, size, &bytes)) return NULL;
    return realloc(p, bytes ? bytes : 1);
}

cs_status cs_classes_add(cs_classes *cl, const char *const *synonyms, int n) {
    if (n < 1) return error_set(CS_ERR_ARG, "a class needs at least one name");
    if (cl->given || cl->emb) return error_set(CS_ERR_ARG, "classes cannot be added once embedded");
    char **names = grow(cl->names, (size_t)cl->K + n, sizeof *names);
    if (names) cl->names = names;
    int *name_class = grow(cl->name_class, (size_t)cl->K + n, sizeof *name_class);
    if (name_class) cl->name_class = name_class;
    int *first = grow(cl->first, (size_t)cl->C + 1, sizeof *first);
    if (first) cl->first = first;
    if (!names || !name_class || !first) return error_set(CS_ERR_NOMEM, "out of memory for %d classes", cl->C + 1);
    char **copies = mem_calloc((size_t)n, sizeof *copies);
    cs_status s = copies ? CS_OK : CS_ERR_NOMEM;
    for (int i = 0; s == CS_OK && i < n; i++)
        if (!(copies[i] = mem_strdup(synonyms[i]))) s = CS_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        if (s != CS_OK) {
            cs_free(copies ? copies[i] : NULL);
            continue;
        }
        cl->names[cl->K] = copies[i];
        cl->name_class[cl->K++] = cl->C;
    }
    if (s == CS_OK) cl->first[cl->C++] = cl->K - n;
    cs_free(copies);
    return s;
}

cs_status cs_classes_new(cs_classes **out) { return new_set(out); }

cs_status cs_classes_from_names(const char *const *names, int n, cs_classes **out) {
    cs_status s = new_set(out);
    for (int i = 0; s == CS_OK && i < n; i++) s = cs_classes_add(*out, &names[i], 1);
    if (s == CS_OK && n < 1) s = error_set(CS_ERR_ARG, "no class names given");
    if (s != CS_OK) {
        cs_classes_free(*out);
        *out = NULL;
    }
    return s;
}

cs_status cs_classes_from_embeddings(const float *emb, int n, int dim, const char *const *names,
                                     cs_classes **out) {
    if (n < 1 || dim < 1 || !emb) {
        *out = NULL;
        return error_set(CS_ERR_SHAPE, "class embeddings must be [C, D] with C, D >= 1 (got [%d, %d])", n, dim);
    }
    cs_status s = new_set(out);
    for (int c = 0; s == CS_OK && c < n; c++) {
        char name[32];
        const char *p = name;
        if (names) p = names[c];
        else snprintf(name, sizeof name, "class%d", c);
        s = cs_classes_add(*out, &p, 1);
    }
    if (s == CS_OK) {
        (*out)->emb = mem_alloc((size_t)n * dim, sizeof(float));
        if (!(*out)->emb) s = CS_ERR_NOMEM;
        else memcpy((*out)->emb, emb, sizeof(float) * (size_t)n * dim);
        (*out)->dim = dim;
        (*out)->given = 1;
    }
    if (s != CS_OK) {
        cs_classes_free(*out);
        *out = NULL;
    }
    return s;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) *--e = 0;
    return s;
}

/* One class from "a,b,c" (synonyms when from a file, else one name);
 * nothing when every name is empty. */
static cs_status add_item(cs_classes *cl, char *text, int synonyms) {
    const char *syn[256];
    int n = 0;
    char *save = NULL;
    for (char *tok = synonyms ? strtok_r(text, ",", &save) : text; tok;
         tok = synonyms ? strtok_r(NULL, ",", &save) : NULL) {
        char *name = trim(tok);
        if (!*name) continue;
        if (n == 256) return error_set(CS_ERR_LIMIT, "class '%s' has more than 256 synonyms", syn[0]);
        syn[n++] = name;
    }
    return n ? cs_classes_add(cl, syn, n) : CS_OK;
}

cs_status cs_classes_parse(const char *list, cs_classes **out) {
    *out = NULL;
    if (!list) return error_set(CS_ERR_ARG, "no class list given");
    char *text;
    size_t len;
    int from_file = list[0] == '@';
    cs_status s = from_file ? cs_read_file(list + 1, 16 << 20, &text, &len)
                            : ((text = mem_strdup(list)) ? CS_OK : CS_ERR_NOMEM);
    if (s != CS_OK) return s;
    s = new_set(out);
    char *save = NULL;
    for (char *item = strtok_r(text, from_file ? "\n" : ",", &save); item && s == CS_OK;
         item = strtok_r(NULL, from_file ? "\n" : ",", &save))
        s = add_item(*out, item, from_file);
    cs_free(text);
    if (s == CS_OK && (*out)->C == 0) s = error_set(CS_ERR_ARG, "--classes '%s' names no class", list);
    if (s != CS_OK) {
        cs_classes_free(*out);
        *out = NULL;
    }
    return s;
}

cs_status cs_classes_set_template_list(cs_classes *cl, const char *const *templates, int n) {
    if (cl->emb && !cl->given) return error_set(CS_ERR_ARG, "templates cannot change once the names are embedded");
    if (n < 0 || (n > 0 && !templates)) return error_set(CS_ERR_ARG, "bad template list (%d templates)", n);
    for (int i = 0; i < n; i++)
        if (!strstr(templates[i], "{}"))
            return error_set(CS_ERR_ARG, "template '%s' has no '{}' for the class name", templates[i]);
    /* One block: the pointers, then the strings. */
    size_t bytes = sizeof(char *) * (size_t)n;
    for (int i = 0; i < n; i++) bytes += strlen(templates[i]) + 1;
    const char **list = n ? mem_alloc(bytes, 1) : NULL;
    if (n && !list) return CS_ERR_NOMEM;
    char *p = (char *)(list + n);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(templates[i]) + 1;
        list[i] = memcpy(p, templates[i], len);
        p += len;
    }
    free_templates(cl);
    cl->templates = list;
    cl->n_templates = n;
    cs_free(cl->empty);
    cl->empty = NULL;
    return CS_OK;
}

cs_status cs_classes_set_templates(cs_classes *cl, const char *spec) {
    if (!spec || !strcmp(spec, "default"))
        return cs_classes_set_template_list(cl, cs_default_templates, CS_NUM_DEFAULT_TEMPLATES);
    if (!strcmp(spec, "none")) return cs_classes_set_template_list(cl, NULL, 0);
    char *text;
    size_t len;
    cs_status s = cs_read_file(spec, 16 << 20, &text, &len);
    if (s != CS_OK) return s;
    const char **list = NULL;
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && s == CS_OK; line = strtok_r(NULL, "\n", &save)) {
        line = trim(line);
        if (!*line) continue;
        if (!strstr(line, "{}")) s = error_set(CS_ERR_ARG, "%s: template '%s' has no '{}' for the class name", spec, line);
        const char **more = s == CS_OK ? grow(list, (size_t)n + 1, sizeof *list) : NULL;
        if (s == CS_OK && !more) s = CS_ERR_NOMEM;
        if (s == CS_OK) (list = more)[n++] = line;
    }
    if (s == CS_OK && !n) s = error_set(CS_ERR_ARG, "%s: no templates in the file", spec);
    if (s == CS_OK) s = cs_classes_set_template_list(cl, list, n);
    free(list);
    cs_free(text);
    return s;
}

int cs_classes_num_templates(const cs_classes *cl) { return cl->n_templates; }
int cs_classes_count(const cs_classes *cl) { return cl->C; }
const char *cs_classes_name(const cs_classes *cl, int c) {
    return c >= 0 && c < cl->C ? cl->names[cl->first[c]] : NULL;
}
int cs_classes_find(const cs_classes *cl, const char *name) {
    for (int c = 0; c < cl->C; c++)
        if (!strcmp(cs_classes_name(cl, c), name)) return c;
    return -1;
}
int cs_classes_num_names(const cs_classes *cl) { return cl->K; }
const char *cs_classes_name_text(const cs_classes *cl, int k) { return k >= 0 && k < cl->K ? cl->names[k] : NULL; }
int cs_classes_name_class(const cs_classes *cl, int k) { return k >= 0 && k < cl->K ? cl->name_class[k] : -1; }
int cs_classes_dim(const cs_classes *cl) { return cl->dim; }
const float *cs_classes_embeddings(const cs_classes *cl) { return cl->emb; }

/* The class-embedding cache's key of a model. Embeddings depend on the
 * weights, the vocabulary and the precision the text tower runs in: the key
 * holds the first two by content (a file replaced at the same path gets new
 * entries), the last by name. With no vocabulary at hand yet (it would have
 * to be downloaded), the cache is off for this call. 0: no cache. */
static int cache_key(cs_model *m, char dir[4096], char hex[65]) {
    char weights[65], words[65], vocab[4096], key[256];
    if (!model_source_cache_on(m) || cs_cache_dir(NULL, dir, 4096) != CS_OK ||
        cs_model_identity(model_source_name(m), model_source_path(m), dir, weights) != CS_OK ||
        model_vocab_path(m, 0, vocab, sizeof vocab) != CS_OK || cs_file_identity(vocab, dir, words) != CS_OK)
        return 0;
    static const char *k_precision[] = {"fp32", "bf16", "int8"}; /* cs_precision order */
    int n = snprintf(key, sizeof key, "%s\n%s\n%s", weights, k_precision[m->precision], words);
    cs_sha256_bytes(key, (size_t)n, hex);
    return 1;
}

/* Prompt ensembles [n, D] of names: cached ones read, the rest computed
 * (progress first gets their count) and stored. A cache failure only
 * costs a recomputation: the cache is an optimization. */
static cs_status embed_names(const cs_classes *cl, cs_model *m, const char *const *names, int n, float *out,
                             cs_progress_fn progress, void *ctx) {
    int D = m->cfg.embed_dim, missing = 0;
    char dir[4096], hex[65];
    int cache = cache_key(m, dir, hex);
    const char **todo = mem_calloc((size_t)n + 1, sizeof *todo);
    int *where = mem_calloc((size_t)n + 1, sizeof *where);
    cs_status s = todo && where ? CS_OK : CS_ERR_NOMEM;
    for (int i = 0; s == CS_OK && i < n; i++)
        if (!cache || !cs_cache_lookup(dir, hex, D, cl->templates, cl->n_templates, names[i], out + (size_t)i * D)) {
            todo[missing] = names[i];
            where[missing++] = i;
        }
    cs_tokenizer *tok = NULL;
    if (s == CS_OK && missing) s = cs_model_tokenizer(m, &tok);
    float *fresh = s == CS_OK && missing ? mem_alloc((size_t)missing * D, sizeof(float)) : NULL;
    if (s == CS_OK && missing && !fresh) s = CS_ERR_NOMEM;
    if (s == CS_OK && missing) {
        if (progress) progress(ctx, 0, missing);
        s = cs_class_embeddings(m, tok, todo, missing, cl->templates, cl->n_templates, fresh);
        for (int k = 0; s == CS_OK && k < missing; k++) {
            memcpy(out + (size_t)where[k] * D, fresh + (size_t)k * D, sizeof(float) * (size_t)D);
            if (cache) cs_cache_store(dir, hex, D, cl->templates, cl->n_templates, todo[k], fresh + (size_t)k * D);
        }
        if (s == CS_OK && progress) progress(ctx, missing, missing);
    }
    cs_free(fresh);
    cs_free(todo);
    cs_free(where);
    return s;
}

cs_status cs_classes_embed(cs_classes *cl, cs_model *m, cs_progress_fn progress, void *ctx) {
    int D = m->cfg.embed_dim;
    if (cl->emb) {
        if (cl->dim != D)
            return error_set(CS_ERR_SHAPE, "class embeddings have %d dimensions, the model %d", cl->dim, D);
        return CS_OK;
    }
    if (cl->C < 1) return error_set(CS_ERR_ARG, "the class set is empty");
    float *emb = mem_alloc((size_t)cl->K * D, sizeof(float));
    if (!emb) return CS_ERR_NOMEM;
    cs_status s = embed_names(cl, m, (const char *const *)cl->names, cl->K, emb, progress, ctx);
    if (s != CS_OK) {
        cs_free(emb);
        return s;
    }
    cl->emb = emb;
    cl->dim = D;
    return CS_OK;
}

cs_status cs_classes_empty_prompt(cs_classes *cl, cs_model *m, const float **out) {
    *out = NULL;
    int D = m->cfg.embed_dim;
    if (!cl->empty) {
        const char *empty = "";
        float *e = mem_alloc((size_t)D, sizeof(float));
        if (!e) return CS_ERR_NOMEM;
        cs_status s = embed_names(cl, m, &empty, 1, e, NULL, NULL);
        if (s != CS_OK) {
            cs_free(e);
            return s;
        }
        cl->empty = e;
    }
    *out = cl->empty;
    return CS_OK;
}

cs_status classes_name_set(cs_classes *cl, cs_model *m, const float *redundant, cs_name_set *out) {
    cs_status s = cs_classes_embed(cl, m, NULL, NULL);
    if (s != CS_OK) return s;
    *out = (cs_name_set){.emb = cl->emb, .n_names = cl->K, .dim = cl->dim, .name_class = cl->name_class,
                         .n_classes = cl->C, .redundant = redundant};
    return CS_OK;
}

cs_status classes_redundancy(cs_classes *cl, cs_model *m, cs_redundancy asked, cs_redundancy *used,
                             const float **features) {
    *features = NULL;
    if (asked != CS_REDUNDANT_AUTO && asked != CS_REDUNDANT_CLASSES && asked != CS_REDUNDANT_EMPTY)
        return error_set(CS_ERR_ARG, "unknown redundancy mode %d", (int)asked);
    /* Class-weighted feature surgery is identically zero for one name
     * (DESIGN.md section 4): the empty prompt gives the features then. */
    *used = asked == CS_REDUNDANT_EMPTY || cl->K == 1 ? CS_REDUNDANT_EMPTY : CS_REDUNDANT_CLASSES;
    return *used == CS_REDUNDANT_EMPTY ? cs_classes_empty_prompt(cl, m, features) : CS_OK;
}
