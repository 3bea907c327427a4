/* What several subcommands share: loading models, vocabularies, class lists
 * and templates. Each function prints its own one-line error and returns an
 * exit code (0 on success). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/fileio.h"
#include "args.h"
#include "cli.h"

/* The CLI may exit: out of memory here ends the process with code 1. */
static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        cli_error("out of memory");
        exit(CLI_EXIT_RUNTIME);
    }
    return q;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(xrealloc(NULL, n), s, n);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) *--e = 0;
    return s;
}

void cli_classes_free(cli_classes *c) {
    for (int i = 0; i < c->n; i++) {
        for (int k = 0; k < c->n_syn[i]; k++) free(c->syn[i][k]);
        free(c->syn[i]);
    }
    free(c->names);
    free(c->n_syn);
    free(c->syn);
    memset(c, 0, sizeof *c);
}

/* Add one class from "a,b,c" (synonyms when from a file, else one name). */
static int add_class(cli_classes *c, char *text, int synonyms) {
    char **syn = NULL;
    int n = 0;
    for (char *save = NULL, *tok = synonyms ? strtok_r(text, ",", &save) : text; tok;
         tok = synonyms ? strtok_r(NULL, ",", &save) : NULL) {
        char *name = trim(tok);
        if (!*name) continue;
        syn = xrealloc(syn, sizeof *syn * (size_t)(n + 1));
        syn[n++] = xstrdup(name);
    }
    if (!n) return 0;
    c->names = xrealloc(c->names, sizeof *c->names * (size_t)(c->n + 1));
    c->n_syn = xrealloc(c->n_syn, sizeof *c->n_syn * (size_t)(c->n + 1));
    c->syn = xrealloc(c->syn, sizeof *c->syn * (size_t)(c->n + 1));
    c->names[c->n] = syn[0];
    c->n_syn[c->n] = n;
    c->syn[c->n++] = syn;
    return 0;
}

int cli_parse_classes(const char *list, cli_classes *out) {
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    int from_file = list[0] == '@';
    if (from_file) {
        cs_status s = cs_read_file(list + 1, 16 << 20, &text, &len);
        if (s != CS_OK) return cli_fail(s);
    } else {
        text = xstrdup(list);
    }
    char *save = NULL;
    for (char *item = strtok_r(text, from_file ? "\n" : ",", &save); item;
         item = strtok_r(NULL, from_file ? "\n" : ",", &save))
        add_class(out, item, from_file);
    if (from_file) cs_free(text);
    else free(text);
    if (out->n == 0) {
        cli_error("--classes '%s' names no class", list);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cli_load_templates(const char *spec, char **storage, const char ***templates, int *n) {
    *storage = NULL;
    *templates = NULL;
    *n = 0;
    if (!spec || !strcmp(spec, "default")) {
        *templates = (const char **)cs_default_templates;
        *n = CS_NUM_DEFAULT_TEMPLATES;
        return 0;
    }
    if (!strcmp(spec, "none")) return 0;
    size_t len;
    cs_status s = cs_read_file(spec, 16 << 20, storage, &len);
    if (s != CS_OK) return cli_fail(s);
    const char **list = NULL;
    int count = 0;
    char *save = NULL;
    for (char *line = strtok_r(*storage, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line = trim(line);
        if (!*line) continue;
        if (!strstr(line, "{}")) {
            cli_error("%s: template '%s' has no '{}' for the class name", spec, line);
            free(list);
            cs_free(*storage);
            *storage = NULL;
            return CLI_EXIT_USAGE;
        }
        list = xrealloc(list, sizeof *list * (size_t)(count + 1));
        list[count++] = line;
    }
    if (!count) {
        cli_error("%s: no templates in the file", spec);
        cs_free(*storage);
        *storage = NULL;
        return CLI_EXIT_USAGE;
    }
    *templates = list;
    *n = count;
    return 0;
}

/* A progress bar on stderr for downloads. */
static void download_progress(void *ctx, int64_t done, int64_t total) {
    static int last = -1;
    int pct = total > 0 ? (int)(100 * done / total) : -1;
    if (pct == last) return;
    last = pct;
    if (total > 0)
        fprintf(stderr, "\rdownloading %s: %3d%% (%lld of %lld MB)%s", (const char *)ctx, pct,
                (long long)(done >> 20), (long long)(total >> 20), done == total ? "\n" : "");
}

int cli_load_model(const cli_args *a, cs_model **m) {
    const char *name = cli_get(a, "model");
    if (!name) {
        cli_error("--model is required (a name such as ViT-B/16, a .pt/.safetensors file or a folder)");
        return CLI_EXIT_USAGE;
    }
    char path[4096];
    cs_status s = cs_resolve_model(name, cli_get(a, "cache-dir"), 1, download_progress, (void *)name,
                                   path, sizeof path);
    if (s == CS_OK) s = cs_model_load(path, m);
    int blocks = 6;
    if (s == CS_OK && !cli_int(a, "surgery-blocks", 6, 0, 1000, &blocks)) {
        cs_model_free(*m);
        *m = NULL;
        return CLI_EXIT_USAGE;
    }
    if (s == CS_OK) s = cs_model_set_surgery(*m, blocks, cli_has(a, "rn-normalize-v"));
    return s == CS_OK ? 0 : cli_fail(s);
}

int cli_load_tokenizer(const cli_args *a, cs_tokenizer **tok) {
    const char *vocab = cli_get(a, "vocab"), *model = cli_get(a, "model");
    char path[4096];
    struct stat st;
    cs_status s = CS_OK;
    if (vocab) {
        snprintf(path, sizeof path, "%s", vocab);
    } else if (model && stat(model, &st) == 0 && S_ISDIR(st.st_mode) &&
               (snprintf(path, sizeof path, "%s/vocab.json", model), file_exists(path))) {
        snprintf(path, sizeof path, "%s", model); /* the model folder's own vocabulary */
    } else {
        s = cs_resolve_vocab(cli_get(a, "cache-dir"), 1, download_progress, "the BPE vocabulary", path,
                             sizeof path);
        if (s != CS_OK) {
            cs_error_prefix("no BPE vocabulary (give --vocab FILE)");
            return cli_fail(s);
        }
    }
    s = cs_tokenizer_load(path, tok);
    return s == CS_OK ? 0 : cli_fail(s);
}

void cli_set_threads(const char *value) {
    if (value) cs_set_threads(atoi(value));
}
