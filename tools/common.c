/* What several subcommands share: loading models, vocabularies, class lists
 * and templates. Each function prints its own one-line error and returns an
 * exit code (0 on success). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include "base/fileio.h"
#include "args.h"
#include "cli.h"

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("clip-surgery: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_fail(cs_status s) {
    cli_error("%s", cs_last_error());
    return s == CS_ERR_NOMEM ? CLI_EXIT_RUNTIME : CLI_EXIT_USAGE;
}

/* The CLI may exit: out of memory here ends the process with code 1 and one
 * line (the library itself returns CS_ERR_NOMEM instead). */
void *cli_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        cli_error("out of memory");
        exit(CLI_EXIT_RUNTIME);
    }
    return q;
}

void *cli_xmalloc(size_t n) { return cli_xrealloc(NULL, n); }

void *cli_xcalloc(size_t n, size_t size) {
    size_t bytes = n * size;
    if (size && bytes / size != n) bytes = SIZE_MAX; /* overflow: let the allocation fail */
    return memset(cli_xrealloc(NULL, bytes), 0, bytes);
}

char *cli_xstrndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *d = cli_xrealloc(NULL, len + 1);
    memcpy(d, s, len);
    d[len] = 0;
    return d;
}

char *cli_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(cli_xrealloc(NULL, n), s, n);
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
        syn = cli_xrealloc(syn, sizeof *syn * (size_t)(n + 1));
        syn[n++] = cli_xstrdup(name);
    }
    if (!n) return 0;
    c->names = cli_xrealloc(c->names, sizeof *c->names * (size_t)(c->n + 1));
    c->n_syn = cli_xrealloc(c->n_syn, sizeof *c->n_syn * (size_t)(c->n + 1));
    c->syn = cli_xrealloc(c->syn, sizeof *c->syn * (size_t)(c->n + 1));
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
        text = cli_xstrdup(list);
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
        list = cli_xrealloc(list, sizeof *list * (size_t)(count + 1));
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

static int g_quiet;

void cli_set_quiet(int quiet) { g_quiet = quiet; }

int cli_quiet(void) { return g_quiet; }

static cs_image_options g_image_options;

const cs_image_options *cli_image_options(void) { return &g_image_options; }

int cli_set_image_options(const cli_args *a) {
    int mp;
    if (!cli_int(a, "max-megapixels", 100, 1, 100000, &mp)) return CLI_EXIT_USAGE;
    g_image_options.max_pixels = (int64_t)mp * 1000000;
    g_image_options.exif_rotate = cli_has(a, "exif-rotate");
    const char *png16 = cli_get(a, "png16");
    if (png16 && strcmp(png16, "clip") != 0 && strcmp(png16, "highbyte") != 0) {
        cli_error("--png16 '%s' is not 'clip' or 'highbyte'", png16);
        return CLI_EXIT_USAGE;
    }
    g_image_options.png16_highbyte = png16 && strcmp(png16, "highbyte") == 0;
    return 0;
}

void cli_note(const char *fmt, ...) {
    if (g_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* A progress bar on stderr for downloads (none with --quiet). */
static void download_progress(void *ctx, int64_t done, int64_t total) {
    static int last = -1;
    if (g_quiet) return;
    int pct = total > 0 ? (int)(100 * done / total) : -1;
    if (pct == last) return;
    last = pct;
    if (total > 0)
        fprintf(stderr, "\rdownloading %s: %3d%% (%lld of %lld MB)%s", (const char *)ctx, pct,
                (long long)(done >> 20), (long long)(total >> 20), done == total ? "\n" : "");
}

cs_status cli_apply_precision(const cli_args *a, cs_model *m) {
    const char *p = cli_get(a, "precision");
    if (!p || !strcmp(p, "fp32")) return CS_OK;
    if (strcmp(p, "bf16")) return cs_fail(CS_ERR_ARG, "--precision '%s' is not fp32 or bf16", p);
    return cs_model_set_precision(m, CS_PRECISION_BF16);
}

int cli_load_model(const cli_args *a, cs_model **m) {
    const char *name = cli_get(a, "model");
    if (!name) {
        cli_error("--model is required (a name such as ViT-B/16, a .pt/.safetensors file or a folder)");
        return CLI_EXIT_USAGE;
    }
    char path[4096];
    cs_status s;
    if (!strncmp(name, "synthetic:", 10)) {
        s = cs_model_synthetic(name + 10, m); /* random weights, real shapes: for benchmarks */
    } else {
        s = cs_resolve_model(name, cli_get(a, "cache-dir"), 1, download_progress, (void *)name, path,
                             sizeof path);
        if (s == CS_OK) s = cs_model_load(path, m);
    }
    int blocks = 6;
    if (s == CS_OK && !cli_int(a, "surgery-blocks", 6, 0, 1000, &blocks)) {
        cs_model_free(*m);
        *m = NULL;
        return CLI_EXIT_USAGE;
    }
    if (s == CS_OK) s = cs_model_set_surgery(*m, blocks, cli_has(a, "rn-normalize-v"));
    if (s == CS_OK) s = cli_apply_precision(a, *m);
    return s == CS_OK ? 0 : cli_fail(s);
}

cs_status cli_vocab_path(const cli_args *a, int download, char *path, size_t n) {
    const char *vocab = cli_get(a, "vocab"), *model = cli_get(a, "model");
    struct stat st;
    /* A model folder's own vocabulary wins (it belongs to those weights),
     * then --vocab, then the clip.load cache (downloaded if absent). */
    if (model && stat(model, &st) == 0 && S_ISDIR(st.st_mode) &&
        (snprintf(path, n, "%s/vocab.json", model), file_exists(path))) {
        snprintf(path, n, "%s", model);
    } else if (vocab) {
        snprintf(path, n, "%s", vocab);
    } else {
        cs_status s = cs_resolve_vocab(cli_get(a, "cache-dir"), download, download_progress,
                                       "the BPE vocabulary", path, n);
        if (s != CS_OK) cs_error_prefix("no BPE vocabulary (give --vocab FILE)");
        return s;
    }
    return CS_OK;
}

int cli_load_tokenizer(const cli_args *a, cs_tokenizer **tok) {
    char path[4096];
    cs_status s = cli_vocab_path(a, 1, path, sizeof path);
    if (s == CS_OK) s = cs_tokenizer_load(path, tok);
    return s == CS_OK ? 0 : cli_fail(s);
}

void cli_set_threads(const char *value) {
    if (value) cs_set_threads(atoi(value));
}

static int is_image_name(const char *name) {
    const char *ext = strrchr(name, '.');
    return ext && (!strcasecmp(ext, ".jpg") || !strcasecmp(ext, ".jpeg") || !strcasecmp(ext, ".png"));
}

static void image_list_add(cli_image_list *list, const char *folder, const char *name) {
    size_t len = (folder ? strlen(folder) + 1 : 0) + strlen(name) + 1;
    list->paths = cli_xrealloc(list->paths, sizeof *list->paths * (size_t)(list->n + 1));
    list->paths[list->n] = cli_xrealloc(NULL, len);
    snprintf(list->paths[list->n++], len, "%s%s%s", folder ? folder : "", folder ? "/" : "", name);
}

static int image_list_add_folder(cli_image_list *list, const char *folder) {
    struct dirent **entries;
    int k = scandir(folder, &entries, NULL, alphasort);
    if (k < 0) {
        cli_error("%s: cannot list the folder: %s", folder, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    int before = list->n;
    for (int e = 0; e < k; e++) {
        if (entries[e]->d_name[0] != '.' && is_image_name(entries[e]->d_name))
            image_list_add(list, folder, entries[e]->d_name);
        free(entries[e]);
    }
    free(entries);
    if (list->n == before) {
        cli_error("%s: no JPEG or PNG images in the folder", folder);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* Base names without their extensions, made safe and unique. */
static int image_list_stems(cli_image_list *list) {
    char **bases = cli_xrealloc(NULL, sizeof *bases * (size_t)(list->n + 1));
    for (int i = 0; i < list->n; i++) {
        const char *slash = strrchr(list->paths[i], '/');
        bases[i] = cli_xstrdup(slash ? slash + 1 : list->paths[i]);
        char *dot = strrchr(bases[i], '.');
        if (dot && dot != bases[i]) *dot = 0;
    }
    list->stems = cli_xrealloc(NULL, sizeof *list->stems * (size_t)(list->n + 1));
    cs_status s = cs_file_stems((const char *const *)bases, list->n, list->stems);
    for (int i = 0; i < list->n; i++) free(bases[i]);
    free(bases);
    if (s != CS_OK) {
        free(list->stems);
        list->stems = NULL;
        return cli_fail(s);
    }
    return 0;
}

int cli_image_list_collect(const cli_args *a, cli_image_list *list) {
    memset(list, 0, sizeof *list);
    int rc = 0;
    for (int i = 0; !rc && i < cli_count(a, "image"); i++) {
        const char *p = cli_value(a, "image", i);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            rc = image_list_add_folder(list, p);
            list->several = 1;
        } else {
            image_list_add(list, NULL, p); /* a missing file is reported when it is read */
        }
    }
    list->several |= list->n > 1;
    if (!rc && list->n == 0) {
        cli_error("--image names no image");
        rc = CLI_EXIT_USAGE;
    }
    if (!rc) rc = image_list_stems(list);
    if (rc) cli_image_list_free(list);
    return rc;
}

void cli_image_list_free(cli_image_list *list) {
    for (int i = 0; i < list->n; i++) {
        free(list->paths[i]);
        if (list->stems) cs_free(list->stems[i]);
    }
    free(list->paths);
    free(list->stems);
    memset(list, 0, sizeof *list);
}

void cli_image_dir(const char *out, const cli_image_list *list, int i, char *dir, size_t n) {
    if (!list->several) snprintf(dir, n, "%s", out);
    else snprintf(dir, n, "%s/%s", out, list->stems[i]);
}

int cli_no_positional(const cli_args *a) {
    if (a->n_positional == 0) return 0;
    cli_error("unexpected argument '%s' (options start with --; see --help)", a->positional[0]);
    return CLI_EXIT_USAGE;
}
