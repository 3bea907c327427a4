/* What several subcommands share: errors, allocation, notes, opening the
 * model, the images of --image. Each function prints its own one-line
 * error and returns an exit code (0 on success). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include "cli.h"

/* The server's worker captures the messages of the helpers it shares with
 * the commands (option checks, class sets) for its JSON errors. */
static __thread char *g_capture;
static __thread size_t g_capture_size;

void cli_capture_errors(char *buf, size_t n) {
    g_capture = n ? buf : NULL;
    g_capture_size = n;
    if (g_capture) buf[0] = 0;
}

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (g_capture) {
        vsnprintf(g_capture, g_capture_size, fmt, ap);
        va_end(ap);
        return;
    }
    fputs("clip-surgery: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_fail(cs_status s) {
    cli_error("%s", cs_last_error());
    return cli_exit_code(s);
}

/* Exit 1 for what the input cannot help (memory, permission, a failed
 * write, a full disk), 2 for what it can (bad or missing input). */
int cli_exit_code(cs_status s) {
    return s == CS_ERR_NOMEM || s == CS_ERR_IO ? CLI_EXIT_RUNTIME : CLI_EXIT_USAGE;
}

int cli_out_of_memory(void) {
    cli_error("out of memory");
    return CLI_EXIT_RUNTIME;
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
static void download_progress(void *ctx, const char *what, int64_t done, int64_t total) {
    static int last = -1;
    if (g_quiet) return;
    int pct = total > 0 ? (int)(100 * done / total) : -1;
    if (pct == last) return;
    last = pct;
    if (total > 0)
        fprintf(stderr, "\rdownloading %s: %3d%% (%lld of %lld MB)%s", what, pct, (long long)(done >> 20),
                (long long)(total >> 20), done == total ? "\n" : "");
}

void cli_download_progress(void *what, int64_t done, int64_t total) { download_progress(what, what, done, total); }

int cli_precision(const cli_args *a, cs_precision *p) {
    const char *v = cli_get(a, "precision");
    *p = CS_PRECISION_FP32;
    if (!v || !strcmp(v, "fp32")) return 1;
    if (!strcmp(v, "bf16")) *p = CS_PRECISION_BF16;
    else if (!strcmp(v, "int8")) *p = CS_PRECISION_INT8;
    else {
        cli_error("--precision '%s' is not fp32, bf16 or int8", v);
        return 0;
    }
    if (!cs_precision_fast(*p))
        cli_note("clip-surgery: note: this CPU has no %s: --precision %s runs a portable kernel, several "
                 "times slower than fp32%s", *p == CS_PRECISION_BF16 ? "AVX512-BF16 or AVX2" : "AVX512-VNNI", v,
                 *p == CS_PRECISION_INT8 && cs_precision_fast(CS_PRECISION_BF16) ? " (bf16 runs at about fp32's speed here)" : "");
    return 1;
}

int cli_load_model(const cli_args *a, cs_model **m) {
    const char *name = cli_get(a, "model");
    *m = NULL;
    if (!name) {
        cli_error("--model is required (a name such as ViT-B/16, a .pt/.safetensors file or a folder)");
        return CLI_EXIT_USAGE;
    }
    cs_load_options o = cs_load_defaults();
    o.cache_dir = cli_get(a, "cache-dir");
    o.vocab = cli_get(a, "vocab");
    o.progress = download_progress;
    o.resnet_normalize_v = cli_has(a, "rn-normalize-v");
    o.embedding_cache = !cli_has(a, "no-cache");
    if (!cli_int(a, "surgery-blocks", 6, 0, 1000, &o.surgery_blocks) || !cli_precision(a, &o.precision))
        return CLI_EXIT_USAGE;
    cs_status s = cs_load(name, &o, m);
    return s == CS_OK ? 0 : cli_fail(s);
}

int cli_load_tokenizer(const cli_args *a, cs_tokenizer **tok) {
    const char *vocab = cli_get(a, "vocab");
    char path[4096];
    cs_status s = CS_OK;
    if (vocab) {
        snprintf(path, sizeof path, "%s", vocab);
    } else {
        s = cs_resolve_vocab(cli_get(a, "cache-dir"), 1, cli_download_progress, "the BPE vocabulary", path, sizeof path);
        if (s != CS_OK) {
            cli_error("no BPE vocabulary (give --vocab FILE): %s", cs_last_error());
            return cli_exit_code(s);
        }
    }
    s = cs_tokenizer_load(path, tok);
    return s == CS_OK ? 0 : cli_fail(s);
}

int cli_method(const cli_args *a, cs_method *method) {
    const char *v = cli_get(a, "method");
    *method = CS_METHOD_SURGERY;
    if (v && cs_method_parse(v, method) != CS_OK) {
        cli_error("--method: %s", cs_last_error());
        return 0;
    }
    return 1;
}

/* The folder part resolved (it may exist when the file does not yet). */
static void resolved(const char *path, char *out, size_t n) {
    const char *slash = strrchr(path, '/');
    char dir[4096], real[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if (slash == path) snprintf(dir, sizeof dir, "/");
    if (!realpath(dir, real)) snprintf(real, sizeof real, "%s", dir);
    snprintf(out, n, "%s/%s", real, slash ? slash + 1 : path);
}

int cli_same_file(const char *a, const char *b) {
    char ra[8192], rb[8192];
    resolved(a, ra, sizeof ra);
    resolved(b, rb, sizeof rb);
    return !strcmp(a, b) || !strcmp(ra, rb);
}

void cli_print_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
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

