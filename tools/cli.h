/* Layer 7: the clip-surgery command-line tool. One file per subcommand;
 * main.c dispatches. Exit codes: 0 success, 1 runtime failure, 2 bad usage
 * or bad input; every failure prints one line to stderr naming the file or
 * argument at fault. */
#ifndef CS_CLI_H
#define CS_CLI_H

#include "clip_surgery.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_RUNTIME 1
#define CLI_EXIT_USAGE 2

/* Allocation for the CLI: out of memory prints one line and exits with 1. */
void *cli_xmalloc(size_t n);
void *cli_xcalloc(size_t n, size_t size);
void *cli_xrealloc(void *p, size_t n);
char *cli_xstrdup(const char *s);
char *cli_xstrndup(const char *s, size_t n);

/* Print "clip-surgery: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the library's last error for a failed call and return the exit code
 * that status maps to (out of memory: 1; everything else is bad input: 2). */
int cli_fail(cs_status s);

/* A list of names: classes (each with one or more synonyms) or templates. */
typedef struct cli_classes {
    int n;
    char **names;   /* first name of each class */
    int *n_syn;     /* synonyms per class */
    char ***syn;    /* all names of each class */
} cli_classes;

/* LIST: comma-separated names, or @FILE with one class per line (commas in a
 * line separate synonyms). */
int cli_parse_classes(const char *list, cli_classes *out);
void cli_classes_free(cli_classes *c);

/* Templates: "default" (the method's 85), "none" (the name alone), or a
 * file with one template per line. *templates points into *storage. */
int cli_load_templates(const char *spec, char **storage, const char ***templates, int *n);

struct cli_args;
/* Open --model: a path, or an OpenAI model name resolved (and downloaded)
 * like clip.load, in --cache-dir (default ~/.cache/clip). */
int cli_load_model(const struct cli_args *a, cs_model **m);
/* --precision fp32|bf16 on a loaded model. */
cs_status cli_apply_precision(const struct cli_args *a, cs_model *m);
/* The vocabulary: the model folder's own vocab.json + merges.txt, else
 * --vocab, else <cache>/bpe_simple_vocab_16e6.txt.gz (downloaded if absent). */
int cli_load_tokenizer(const struct cli_args *a, cs_tokenizer **tok);
/* The path cli_load_tokenizer loads (a file or a folder); download 0: an
 * absent default vocabulary is an error instead of a download. Prints nothing. */
cs_status cli_vocab_path(const struct cli_args *a, int download, char *path, size_t n);

/* Set the thread count from --threads (0 or absent: OpenMP's default). */
void cli_set_threads(const char *value);

/* One input image as the vision tower takes it. */
typedef struct cli_input {
    float *pixels;     /* [3, R, R], normalized */
    int R;
    int width, height; /* the output (map) size: the image's, or --size */
    uint8_t *rgb;      /* the original image [height, width, 3], or NULL for --pixels */
} cli_input;

int cli_input_from_pixels(const char *path, const char *size, cli_input *in);
int cli_input_from_image(const char *path, int R, cli_input *in);
void cli_input_free(cli_input *in);

/* What text encoding needs besides the model: the templates, the tokenizer
 * (loaded only when a name is not in the cache) and the embedding cache. */
typedef struct cli_text_ctx {
    int D;
    cs_tokenizer *tok;
    char *template_storage;
    const char **templates;
    int n_templates;
    int cache_on;      /* the class-embedding cache is in use (not --no-cache) */
    char cache_dir[4096];
    char model_hex[65];
} cli_text_ctx;

/* --templates, and the cache unless --no-cache. */
int cli_text_ctx_open(const struct cli_args *a, cs_model *m, cli_text_ctx *t);
void cli_text_ctx_close(cli_text_ctx *t);
/* Prompt-ensemble embeddings [n, D] of names: cached ones read, the rest
 * computed (a progress line for many) and stored. */
int cli_embed_names(const struct cli_args *a, cs_model *m, cli_text_ctx *t, char **names, int n,
                    float *out);

/* Class embeddings and the redundant features feature surgery uses. */
typedef struct cli_class_set {
    int C, D;
    char **names;
    float *emb;        /* [C, D] */
    float *redundant;  /* [D] for the explicit mode, NULL for class-weighted */
    cli_text_ctx text;
} cli_class_set;

/* From --class-embeddings, --classes or --text, with --templates, --vocab,
 * the embedding cache (--no-cache) and, with CLI_REDUNDANT, the redundant
 * features --redundant asks for. CLI_SPLIT_PLUS: --text "a+b" is two texts. */
#define CLI_SPLIT_PLUS 1
#define CLI_REDUNDANT 2
int cli_class_set_load(const struct cli_args *a, cs_model *m, int flags, cli_class_set *cs);
void cli_class_set_free(cli_class_set *cs);

/* --quiet, for the whole process (cli_parse sets it when a command has the
 * option); notes and progress lines go through cli_note. */
void cli_set_quiet(int quiet);
/* Image decoding options from --exif-rotate and --max-megapixels (set by cli_parse). */
const cs_image_options *cli_image_options(void);
struct cli_args;
int cli_set_image_options(const struct cli_args *a);
int cli_quiet(void);
/* A note or progress line on stderr (a newline added), unless --quiet. */
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The images of the --image arguments (explain, points): files as given,
 * folders expanded to their JPEG and PNG files in name order. stems are
 * unique, file-system-safe names of the images (the base name without its
 * extension), for one output subfolder per image. */
typedef struct cli_image_list {
    int n;
    char **paths;
    char **stems;
    int several; /* more than one --image, or a folder: one output subfolder per image */
} cli_image_list;

struct cli_args;
/* Prints one line and returns an exit code on failure (0 on success). */
int cli_image_list_collect(const struct cli_args *a, cli_image_list *list);
void cli_image_list_free(cli_image_list *list);
/* Output folder of image i: DIR itself for one image, DIR/<stem> for several. */
void cli_image_dir(const char *out, const cli_image_list *list, int i, char *dir, size_t n);

/* Commands that take no positional arguments: one line and 2 if any. */
int cli_no_positional(const struct cli_args *a);

/* Subcommands: each parses its own options (argv[0] is the subcommand name). */
int cmd_tokenize(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_points(int argc, char **argv);
int cmd_segment(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
