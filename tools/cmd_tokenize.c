/* clip-surgery tokenize [--vocab FILE] [--context 77] [--truncate] TEXT...
 *
 * Prints, per text, one line of token ids from <|startoftext|> to
 * <|endoftext|> inclusive, exactly as clip.tokenize gives them (without the
 * zero padding). Every text is tokenized before anything is printed, so a
 * failure leaves no partial output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/base.h"
#include "cli.h"

#define DEFAULT_CONTEXT 77
#define MAX_CONTEXT 1000000

static void usage(FILE *f) {
    fprintf(f,
            "usage: clip-surgery tokenize [--vocab FILE] [--context N] [--truncate] [--] TEXT...\n\n"
            "Print the CLIP BPE token ids of each TEXT on one line, from <|startoftext|> to\n"
            "<|endoftext|>, as openai/CLIP's clip.tokenize gives them (without padding).\n\n"
            "options:\n"
            "  --vocab FILE   bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json and\n"
            "                 merges.txt (default: ~/.cache/clip/bpe_simple_vocab_16e6.txt.gz)\n"
            "  --context N    context length (default %d)\n"
            "  --truncate     cut texts that are too long (the last id becomes <|endoftext|>);\n"
            "                 without it a text that is too long is an error\n"
            "  --             end of the options: the rest are texts, even if they start with -\n"
            "  -h, --help     show this help\n",
            DEFAULT_CONTEXT);
}

typedef struct tokenize_opts {
    const char *vocab;
    int context;
    int truncate;
    char **texts;
    int n_texts;
} tokenize_opts;

/* The value of "--name VALUE" or "--name=VALUE" at argv[*i], or NULL when
 * argv[*i] is not that option. Sets *missing when the value is absent. */
static const char *option_value(int argc, char **argv, int *i, const char *name, int *missing) {
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != 0) return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static int parse_context(const char *v, int *out) {
    char *end;
    long c = strtol(v, &end, 10);
    if (*v == 0 || *end != 0 || c < 1 || c > MAX_CONTEXT) {
        cli_error("--context '%s': must be an integer from 1 to %d", v, MAX_CONTEXT);
        return CLI_EXIT_USAGE;
    }
    *out = (int)c;
    return 0;
}

/* Returns -1 to go on, or the exit code. */
static int parse_args(int argc, char **argv, tokenize_opts *o) {
    o->context = DEFAULT_CONTEXT;
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] == 0) {
            o->texts[o->n_texts++] = argv[i];
            continue;
        }
        int missing = 0;
        const char *v;
        if (!strcmp(a, "--")) options_done = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--truncate"))
            o->truncate = 1;
        else if ((v = option_value(argc, argv, &i, "--vocab", &missing)))
            o->vocab = v;
        else if ((v = option_value(argc, argv, &i, "--context", &missing))) {
            int rc = parse_context(v, &o->context);
            if (rc) return rc;
        } else if (missing) {
            cli_error("%s needs a value", a);
            return CLI_EXIT_USAGE;
        } else {
            cli_error("unknown option '%s' (see 'clip-surgery tokenize --help'; use -- before a "
                      "text that starts with -)", a);
            return CLI_EXIT_USAGE;
        }
    }
    if (o->n_texts == 0) {
        cli_error("no TEXT given (see 'clip-surgery tokenize --help')");
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* --vocab, else the cache openai/CLIP uses. */
static int open_vocab(const char *vocab, cs_tokenizer **tok) {
    char path[4096];
    if (vocab) {
        snprintf(path, sizeof path, "%s", vocab);
    } else {
        const char *home = getenv("HOME");
        snprintf(path, sizeof path, "%s/.cache/clip/bpe_simple_vocab_16e6.txt.gz", home ? home : "");
        struct stat st;
        if (stat(path, &st) != 0) {
            cli_error("no BPE vocabulary: looked for %s; give --vocab FILE (openai/CLIP's "
                      "bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json and merges.txt)",
                      path);
            return CLI_EXIT_USAGE;
        }
    }
    cs_status s = cs_tokenizer_load(path, tok);
    return s == CS_OK ? 0 : cli_fail(s);
}

static void print_ids(const int32_t *ids, int n) {
    for (int k = 0; k < n; k++) printf(k ? " %d" : "%d", ids[k]);
    putchar('\n');
}

/* Tokenize every text (ids [n_texts, context], counts [n_texts]). */
static int tokenize_all(cs_tokenizer *tok, const tokenize_opts *o, int32_t *ids, int *counts) {
    for (int t = 0; t < o->n_texts; t++) {
        cs_status s = cs_tokenize(tok, o->texts[t], o->context, o->truncate,
                                  ids + (size_t)t * o->context, &counts[t]);
        if (s == CS_ERR_TOO_LONG) {
            cli_error("TEXT %d is longer than the context length %d (use --truncate): \"%s\"", t + 1,
                      o->context, o->texts[t]);
            return CLI_EXIT_USAGE;
        }
        if (s != CS_OK) {
            cs_error_prefix("TEXT %d", t + 1);
            return cli_fail(s);
        }
    }
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    tokenize_opts o = {0};
    o.texts = calloc((size_t)(argc > 0 ? argc : 1), sizeof *o.texts);
    if (!o.texts) {
        cli_error("out of memory");
        return CLI_EXIT_RUNTIME;
    }
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) {
        free(o.texts);
        return rc;
    }
    cs_tokenizer *tok = NULL;
    int32_t *ids = malloc(sizeof *ids * (size_t)o.n_texts * (size_t)o.context);
    int *counts = malloc(sizeof *counts * (size_t)o.n_texts);
    if (!ids || !counts) {
        cli_error("out of memory for %d texts", o.n_texts);
        rc = CLI_EXIT_RUNTIME;
    } else
        rc = open_vocab(o.vocab, &tok);
    if (rc == 0) rc = tokenize_all(tok, &o, ids, counts);
    for (int t = 0; rc == 0 && t < o.n_texts; t++) print_ids(ids + (size_t)t * o.context, counts[t]);
    if (rc == 0 && fflush(stdout) != 0) {
        cli_error("writing the ids to stdout failed");
        rc = CLI_EXIT_RUNTIME;
    }
    cs_tokenizer_free(tok);
    free(ids);
    free(counts);
    free(o.texts);
    return rc;
}
