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

/* Print "clip-surgery: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the library's last error for a failed call and return the exit code
 * that status maps to (out of memory: 1; everything else is bad input: 2). */
int cli_fail(cs_status s);

/* Subcommands: each parses its own options (argv[0] is the subcommand name). */
int cmd_tokenize(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_explain(int argc, char **argv);

#endif
