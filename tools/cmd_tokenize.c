/* clip-surgery tokenize [--vocab FILE] [--context 77] [--truncate] TEXT...
 *
 * Prints, per text, one line of token ids from <|startoftext|> to
 * <|endoftext|> inclusive, exactly as clip.tokenize gives them (without the
 * zero padding). Every text is tokenized before anything is printed, so a
 * failure leaves no partial output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

#define MAX_CONTEXT 1000000

static const cli_option k_options[] = {
    {"vocab", "FILE", "bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json and merges.txt "
                      "(default: ~/.cache/clip/bpe_simple_vocab_16e6.txt.gz, downloaded if absent)", 0},
    {"cache-dir", "DIR", "where the vocabulary lives (default ~/.cache/clip)", 0},
    {"context", "N", "context length (default 77)", 0},
    {"truncate", NULL, "cut texts that are too long (the last id becomes <|endoftext|>); "
                       "without it a text that is too long is an error", 0},
    CLI_OPTS_QUIET,
};

static const char k_usage[] =
    "usage: clip-surgery tokenize [--vocab FILE] [--context N] [--truncate] [--] TEXT...\n\n"
    "Print the CLIP BPE token ids of each TEXT on one line, from <|startoftext|> to\n"
    "<|endoftext|>, as openai/CLIP's clip.tokenize gives them (without padding).\n"
    "'--' ends the options: the rest are texts, even if they start with '-'.\n"
    "Example: clip-surgery tokenize \"a photo of a dog.\"";

typedef struct tokenize_opts {
    int context;
    int truncate;
    const char *const *texts;
    int n_texts;
} tokenize_opts;

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
            cli_error("TEXT %d: %s", t + 1, cs_last_error());
            return cli_exit_code(s);
        }
    }
    return 0;
}

static int run(cli_ctx *c) {
    const cli_args *a = &c->a;
    int rc;
    tokenize_opts o = {0};
    if (!cli_int(a, "context", 77, 1, MAX_CONTEXT, &o.context)) return CLI_EXIT_USAGE;
    o.truncate = cli_has(a, "truncate");
    o.texts = a->positional;
    o.n_texts = a->n_positional;
    if (o.n_texts == 0) {
        cli_error("no TEXT given (see 'clip-surgery tokenize --help')");
        return CLI_EXIT_USAGE;
    }
    cs_tokenizer *tok = NULL;
    int32_t *ids = cli_xmalloc(sizeof *ids * (size_t)o.n_texts * (size_t)o.context);
    int *counts = cli_xmalloc(sizeof *counts * (size_t)o.n_texts);
    if (!ids || !counts) {
        cli_error("out of memory for %d texts", o.n_texts);
        rc = CLI_EXIT_RUNTIME;
    } else {
        rc = cli_load_tokenizer(a, &tok);
    }
    if (rc == 0) rc = tokenize_all(tok, &o, ids, counts);
    for (int t = 0; rc == 0 && t < o.n_texts; t++) print_ids(ids + (size_t)t * o.context, counts[t]);
    if (rc == 0 && fflush(stdout) != 0) {
        cli_error("writing the ids to stdout failed");
        rc = CLI_EXIT_RUNTIME;
    }
    cs_tokenizer_free(tok);
    free(ids);
    free(counts);
    return rc;
}

const cli_command cmd_tokenize = {
    "tokenize", "print CLIP BPE token ids of texts", CLI_OPTIONS(k_options), k_usage, CLI_POSITIONAL, NULL, run,
};
