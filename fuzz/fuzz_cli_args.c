/* libFuzzer target: the CLI's option parser on arbitrary argument vectors
 * (the input split at NUL bytes), against a table shaped like the real
 * subcommands' (value options, flags, repeatable ones, the shared groups). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "cli.h"

static const cli_option k_options[] = {
    {"image", "FILE", "repeatable", 1},
    {"classes", "LIST", "value", 0},
    {"npy", NULL, "flag", 0},
    {"res", "R", "integer", 0},
    {"output", "DIR", "-o", 0},
    CLI_OPTS_MODEL,
    CLI_OPTS_TEXT,
    CLI_OPTS_IMAGE,
    CLI_OPTS_QUIET,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[300];
    int argc = 0;
    argv[argc++] = "explain";
    for (size_t i = 0; i <= size && argc < 299;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    cli_args a;
    int rc;
    /* Usage text and errors go to stdout/stderr; keep the fuzzer's output readable. */
    FILE *out = freopen("/dev/null", "w", stdout);
    if (!cli_parse(&a, k_options, sizeof k_options / sizeof *k_options, "usage", argc, argv, &rc)) {
        int res;
        cli_int(&a, "res", 224, 16, 4096, &res);
        for (int i = 0; i < cli_count(&a, "image"); i++) (void)strlen(cli_value(&a, "image", i));
        if (cli_has(&a, "classes")) {
            cs_classes *c;
            if (cs_classes_parse(cli_get(&a, "classes"), &c) == CS_OK) cs_classes_free(c);
        }
    }
    (void)out;
    free(buf);
    return 0;
}
