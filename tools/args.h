/* A small option parser shared by the subcommands: "--name value",
 * "--name=value", flags, "-o" as "--output"; "--" ends the options. */
#ifndef CS_ARGS_H
#define CS_ARGS_H

#include <stddef.h>

typedef struct cli_option {
    const char *name;  /* without the leading "--" */
    const char *arg;   /* argument name for --help, or NULL for a flag */
    const char *help;
    int repeatable;    /* may be given several times (values collected) */
} cli_option;

#define CLI_MAX_VALUES 256

/* Options that several subcommands share, spelled once. */
#define CLI_OPTS_MODEL                                                                              \
    {"model", "M", "ViT-B/16, RN50, ... (clip.load names), a .pt/.safetensors file, a folder, or synthetic:ARCH", 0}, \
    {"cache-dir", "DIR", "where named models and the vocabulary live (default ~/.cache/clip)", 0},    \
    {"threads", "N", "threads (default: all cores)", 0},                                              \
    {"precision", "P", "fp32 (default, the reference's numbers) | bf16 | int8 (transformer linear weights in bf16, bf16 also the ResNet convolutions; int8: the ViT's, the text tower in bf16)", 0}
#define CLI_OPTS_TEXT                                                                               \
    {"templates", "SPEC", "default (the method's 85) | none | FILE (one per line)", 0},             \
    {"vocab", "FILE", "BPE vocabulary (.txt.gz, or a folder with vocab.json + merges.txt)", 0},      \
    {"no-cache", NULL, "do not read or write the class-embedding cache (~/.cache/clip-surgery)", 0}
#define CLI_OPTS_SURGERY                                                                            \
    {"surgery-blocks", "N", "ViT: the last N blocks get the v-v path (default 6)", 0},              \
    {"rn-normalize-v", NULL, "ResNet: the authors' optional normalized-v attention, x8 scale "       \
                             "(default off, as their code runs)", 0}

#define CLI_OPTS_IMAGE                                                                              \
    {"exif-rotate", NULL, "turn images upright by their EXIF orientation (the reference does not)", 0}, \
    {"max-megapixels", "N", "refuse images larger than this (default 100)", 0},                     \
    {"png16", "MODE", "16-bit gray PNGs: 'clip' (default, as the reference: values over 255 are "   \
                      "white) or 'highbyte' (the top 8 bits)", 0}
#define CLI_OPT_RES {"res", "R", "input resolution (default: the model's native one)", 0}
#define CLI_OPT_CLASS_EMBEDDINGS \
    {"class-embeddings", "FILE.npy", "float32 [C, D] class embeddings, used as given", 0}
/* Everything an image command (explain, points, segment, classify, eval) shares. */
#define CLI_OPTS_IMAGE_COMMAND CLI_OPTS_MODEL, CLI_OPTS_IMAGE, CLI_OPTS_TEXT, CLI_OPTS_SURGERY, CLI_OPTS_QUIET
#define CLI_OPTS_QUIET \
    {"quiet", NULL, "no progress lines or notes on stderr (errors are still printed)", 0}

typedef struct cli_args {
    const cli_option *options;
    int n_options;
    const char *values[64][CLI_MAX_VALUES]; /* per option */
    int counts[64];
    const char *positional[CLI_MAX_VALUES];
    int n_positional;
} cli_args;

/* Parse argv (argv[0] is the subcommand). On --help prints the usage and
 * returns 1 with *exit_code 0; on a bad option prints one line and returns
 * 1 with *exit_code 2; otherwise 0. */
int cli_parse(cli_args *a, const cli_option *opts, int n_opts, const char *usage, int argc,
              char **argv, int *exit_code);

const char *cli_get(const cli_args *a, const char *name);   /* last value or NULL */
int cli_has(const cli_args *a, const char *name);           /* given at least once */
int cli_count(const cli_args *a, const char *name);
/* As if given last (a repeatable option gets one more value); 0 when the
 * name is not an option or it has too many values. */
int cli_set(cli_args *a, const char *name, const char *value);
const char *cli_value(const cli_args *a, const char *name, int i);

/* Every numeric option goes through these, so all are checked alike: plain
 * decimal digits (an optional '-'; no spaces, no trailing text, no
 * overflow) in [lo, hi], else one line naming the option and the range.
 * cli_int and cli_float give the default when the option is absent and
 * return 0 after printing on error. */
int cli_int(const cli_args *a, const char *name, int dflt, int lo, int hi, int *out);
int cli_float(const cli_args *a, const char *name, float dflt, float lo, float hi, float *out);
/* The text form, for a value taken from a list or a part of one ("640x480",
 * "2/8", "224,512"): silent, 1 when v[0..len) is an integer in [lo, hi]. */
int cli_parse_int(const char *v, size_t len, long lo, long hi, int *out);
/* --threads: 1 up to the CPUs this process may run on (more only slows
 * the OpenMP kernels down); sets the library's thread count. */
int cli_threads(const cli_args *a);

#endif
