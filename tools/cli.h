/* Layer 8: the clip-surgery command-line tool, a front end like any other:
 * it includes only the public header. Argument parsing, file naming,
 * progress and exit codes live here; the jobs are the library's.
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad input; every
 * failure prints one line to stderr naming the file or argument at fault. */
#ifndef CS_CLI_H
#define CS_CLI_H

#include "clip_surgery.h"
#include "args.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_RUNTIME 1
#define CLI_EXIT_USAGE 2

/* One line "out of memory"; returns CLI_EXIT_RUNTIME (what the helpers
 * the server shares do instead of the x-functions' exit). */
int cli_out_of_memory(void);
/* Allocation for the CLI: out of memory prints one line and exits with 1. */
void *cli_xmalloc(size_t n);
void *cli_xcalloc(size_t n, size_t size);
void *cli_xrealloc(void *p, size_t n);
char *cli_xstrdup(const char *s);
char *cli_xstrndup(const char *s, size_t n);

/* Print "clip-surgery: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* From now on in this thread, cli_error writes its message into buf (the
 * last one, truncated to n bytes) instead of stderr; n 0: print again. */
void cli_capture_errors(char *buf, size_t n);
/* Print the library's last error for a failed call and return the exit code
 * that status maps to (cli_exit_code). */
int cli_fail(cs_status s);
/* Out of memory and I/O failures (permission, a failed write, a full disk)
 * are runtime failures: 1; everything else is bad input: 2. */
int cli_exit_code(cs_status s);

/* ---------------------------------------------------------------- the runner */
/* One subcommand: its options, usage and needs, and its body. The runner
 * (main.c) parses the options (--help, bad options), refuses stray
 * arguments unless CLI_POSITIONAL, runs check (argument checks before
 * anything loads), sets --threads, opens --model when CLI_MODEL, runs the
 * body and frees the model. */
enum { CLI_POSITIONAL = 1, CLI_MODEL = 2 };

typedef struct cli_ctx {
    cli_args a;
    cs_model *m;      /* with CLI_MODEL */
    int keep_outputs; /* set by a body whose files stand although it exits 1
                         (--keep-going skipped inputs) */
} cli_ctx;

typedef struct cli_command {
    const char *name, *help;
    const cli_option *options;
    int n_options;
    const char *usage;
    unsigned flags;
    int (*check)(const cli_args *a); /* exit code, 0 to go on; may be NULL */
    int (*run)(cli_ctx *c);
} cli_command;

#define CLI_OPTIONS(table) table, (int)(sizeof table / sizeof *table)

extern const cli_command cmd_tokenize, cmd_embed, cmd_explain, cmd_points, cmd_segment, cmd_classify,
    cmd_eval, cmd_convert, cmd_bench, cmd_words, cmd_sam, cmd_serve;

/* ---------------------------------------------------------------- shared steps */
/* --quiet, for the whole process (cli_parse sets it); notes and progress
 * lines go through cli_note. */
void cli_set_quiet(int quiet);
int cli_quiet(void);
/* A download's progress bar on stderr (ctx: the name shown), unless --quiet. */
void cli_download_progress(void *what, int64_t done, int64_t total);

/* A note or progress line on stderr (a newline added), unless --quiet. */
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Image decoding options from --exif-rotate and --max-megapixels (set by cli_parse). */
const cs_image_options *cli_image_options(void);
int cli_set_image_options(const cli_args *a);

/* Open --model with cs_load: --cache-dir, --vocab, --surgery-blocks,
 * --rn-normalize-v, --precision, --no-cache; downloads show progress. */
int cli_load_model(const cli_args *a, cs_model **m);
/* --precision fp32|bf16 as the library's value; 0 and one line if bad. */
int cli_precision(const cli_args *a, cs_precision *p);
/* The vocabulary without a model (tokenize): --vocab, else clip.load's cache. */
int cli_load_tokenizer(const cli_args *a, cs_tokenizer **tok);
/* --method NAME (default surgery; docs/methods.md); 0 and one line if it
 * names no method. */
#define CLI_METHOD_HELP "surgery (default) | clip | maskclip | sclip | clearclip | naclip | gem (docs/methods.md)"
int cli_method(const cli_args *a, cs_method *method);
/* Whether two output paths name one file (the same text, or the same folder
 * and name once the folders are resolved). */
int cli_same_file(const char *a, const char *b);
/* Print a JSON string (quoted, escaped). */
void cli_print_json_string(FILE *f, const char *s);

/* The class set of an image command, embedded: --class-embeddings FILE.npy
 * (float32 [C, D]), --classes LIST (or `list` when not NULL, e.g. eval's
 * class file), or --text T (CLI_SPLIT_PLUS: "a+b" is two texts); with
 * --templates. A note for a long text-tower run. */
#define CLI_SPLIT_PLUS 1
/* CLI_EMBED_LATER: the classes parsed only (their count known, for checks
 * before any work); cli_classes_embed embeds them. */
#define CLI_EMBED_LATER 2
int cli_classes_load(const cli_args *a, cs_model *m, const char *list, int flags, cs_classes **cl);
int cli_classes_embed(cs_model *m, cs_classes *cl);
/* --redundant classes|empty (default: empty with --text, else auto). */
int cli_redundancy(const cli_args *a, cs_redundancy *r);
/* The note for a single class under class-weighted redundancy. */
void cli_note_redundancy(const cli_args *a, cs_redundancy used);

/* One input image as the jobs take it: a decoded image, or --pixels. */
typedef struct cli_input {
    cs_image img;      /* decoded image (rgb NULL for --pixels) */
    cs_array px;       /* --pixels: float32 [3, R, R] or [1, 3, R, R] */
    cs_input in;       /* what the jobs get */
} cli_input;

int cli_input_from_pixels(const char *path, const char *size, cli_input *in);
int cli_input_from_image(const char *path, cli_input *in);
void cli_input_free(cli_input *in);

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

/* Prints one line and returns an exit code on failure (0 on success). */
int cli_image_list_collect(const cli_args *a, cli_image_list *list);
void cli_image_list_free(cli_image_list *list);
/* Output folder of image i: DIR itself for one image, DIR/<stem> for several. */
void cli_image_dir(const char *out, const cli_image_list *list, int i, char *dir, size_t n);

/* Texts of a file (embed --texts, words --captions): a JSON array of strings
 * (.json), else one per line (every line counts, an empty line is the empty
 * text; a final newline does not start another). *storage (cs_free) and
 * the texts (free each and the array) are the caller's. */
int cli_read_texts(const char *path, char **storage, char ***texts, int *n);

/* The one SAM prompt set of --point X,Y[,L] (repeated; L 1 or 0),
 * --box X0,Y0,X1,Y1, --mask-input FILE and --single (sam, and the
 * server's /api/sam). Prints one line and returns an exit code on failure;
 * free with cli_sam_manual_free in every case. */
typedef struct cli_sam_manual {
    cs_sam_prompt_set set;
    float *points;
    int32_t *labels;
} cli_sam_manual;
int cli_sam_manual_prompt(const cli_args *a, cli_sam_manual *mp);
void cli_sam_manual_free(cli_sam_manual *mp);

/* --sam NAME|FILE resolved (fetched into --cache-dir when a name is
 * missing) and loaded with --decoder-heads and --sam-precision; the file's
 * path into path. cli_sam_check: those two options' values. */
int cli_sam_load(const cli_args *a, char *path, size_t path_len, cs_sam **m);
int cli_sam_check(const cli_args *a);

/* --res, --window, --stride, --short-side, --bg-thresh, --logit-scale,
 * --method and the background class (--background NAME, default the class
 * named "background") as the segment job's options. */
int cli_segment_options(const cli_args *a, const cs_classes *cl, cs_segment_options *o);

/* The segment command's pictures (the server's too): the label colours with
 * a legend strip below (*rows: H + the strip's height), and the colours
 * blended half and half over the image. Freed with free; NULL when out of
 * memory (no exit: the server calls them). */
uint8_t *cli_segment_color(const uint8_t *labels, int W, int H, const cs_classes *cl, int *rows);
uint8_t *cli_segment_overlay(const uint8_t *labels, const cs_image *img);
/* segment --npy's arrays (the server's too): f indexes the names
 * ("tokens", "cosine", "logits", "score", "argmax"); *data points into r or
 * at *owned (free with free). skip_cls: the method drops token 0. Prints
 * one line and returns an exit code on failure (no exit). */
#define CLI_SEGMENT_NPY 5
extern const char *const cli_segment_npy_names[CLI_SEGMENT_NPY];
int cli_segment_npy_array(int f, const cs_segment_result *r, int skip_cls, cs_dtype *dtype, int *ndim,
                          int64_t shape[3], void **data, void **owned);

#endif
