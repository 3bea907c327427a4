/* clip-surgery: the command table and the one runner every subcommand goes
 * through (cli.h says what it does). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const cli_command *const k_commands[] = {
    &cmd_explain, &cmd_segment, &cmd_classify, &cmd_points, &cmd_words, &cmd_sam,
    &cmd_embed,   &cmd_eval,    &cmd_serve,    &cmd_bench,   &cmd_convert, &cmd_tokenize,
};
#define N_COMMANDS (int)(sizeof k_commands / sizeof *k_commands)

static void usage(FILE *f) {
    fprintf(f, "usage: clip-surgery COMMAND [OPTIONS]\n\n"
               "CLIP Surgery (explainability and open-vocabulary maps for CLIP) in C.\n\n"
               "commands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", k_commands[i]->name, k_commands[i]->help);
    fprintf(f, "\nRun 'clip-surgery COMMAND --help' for a command's options.\n");
}

static int no_positional(const cli_args *a) {
    if (a->n_positional == 0) return 0;
    cli_error("unexpected argument '%s' (options start with --; see --help)", a->positional[0]);
    return CLI_EXIT_USAGE;
}

/* An interrupted run leaves nothing: its temporaries go, then the signal
 * ends the process as it would have. */
static void on_signal(int sig) {
    cs_outputs_remove_temporaries();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int run_body(const cli_command *cmd, cli_ctx *c) {
    static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof signals / sizeof *signals; i++) signal(signals[i], on_signal);
    /* Every command is one output transaction: its files appear together
     * when it succeeds and not at all when it fails. */
    cs_outputs_begin();
    int rc = cmd->run(c);
    int commit = rc == CLI_EXIT_OK || (rc == CLI_EXIT_RUNTIME && c->keep_outputs);
    if (cs_outputs_end(commit) != CS_OK && commit) rc = cli_fail(CS_ERR_IO);
    return rc;
}

static int run_command(const cli_command *cmd, int argc, char **argv) {
    static cli_ctx c; /* large (the parsed values); one command per process */
    int rc;
    memset(&c, 0, sizeof c);
    if (cli_parse(&c.a, cmd->options, cmd->n_options, cmd->usage, argc, argv, &rc)) return rc;
    if (!(cmd->flags & CLI_POSITIONAL) && (rc = no_positional(&c.a))) return rc;
    if (cmd->check && (rc = cmd->check(&c.a))) return rc;
    if (!cli_threads(&c.a)) return CLI_EXIT_USAGE;
    if ((cmd->flags & CLI_MODEL) && (rc = cli_load_model(&c.a, &c.m))) return rc;
    rc = run_body(cmd, &c);
    cs_model_free(c.m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], k_commands[i]->name)) return run_command(k_commands[i], argc - 1, argv + 1);
    cli_error("unknown command '%s' (see 'clip-surgery --help')", argv[1]);
    return CLI_EXIT_USAGE;
}
