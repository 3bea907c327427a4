#include "args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static int find_option(const cli_args *a, const char *name, size_t len) {
    for (int i = 0; i < a->n_options; i++)
        if (strlen(a->options[i].name) == len && !strncmp(a->options[i].name, name, len)) return i;
    return -1;
}

static void print_usage(const cli_args *a, const char *usage) {
    printf("%s\noptions:\n", usage);
    for (int i = 0; i < a->n_options; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", a->options[i].name, a->options[i].arg ? " " : "",
                 a->options[i].arg ? a->options[i].arg : "");
        printf("  %-26s %s\n", left, a->options[i].help);
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

int cli_parse(cli_args *a, const cli_option *opts, int n_opts, const char *usage, int argc,
              char **argv, int *exit_code) {
    memset(a, 0, sizeof *a);
    a->options = opts;
    a->n_options = n_opts;
    *exit_code = CLI_EXIT_USAGE;
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_positional || arg[0] != '-' || !arg[1]) {
            if (a->n_positional == CLI_MAX_VALUES) {
                cli_error("too many arguments (at most %d)", CLI_MAX_VALUES);
                return 1;
            }
            a->positional[a->n_positional++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            only_positional = 1;
            continue;
        }
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            print_usage(a, usage);
            *exit_code = CLI_EXIT_OK;
            return 1;
        }
        const char *name = !strcmp(arg, "-o") ? "output" : arg + 2;
        if (strcmp(arg, "-o") && strncmp(arg, "--", 2)) {
            cli_error("unknown option '%s' (see --help)", arg);
            return 1;
        }
        const char *eq = strchr(name, '=');
        int k = find_option(a, name, eq ? (size_t)(eq - name) : strlen(name));
        if (k < 0) {
            cli_error("unknown option '%s' (see --help)", arg);
            return 1;
        }
        const char *value = "1";
        if (opts[k].arg) {
            if (eq) value = eq + 1;
            else if (i + 1 < argc) value = argv[++i];
            else {
                cli_error("option '--%s' needs a value (%s)", opts[k].name, opts[k].arg);
                return 1;
            }
        } else if (eq) {
            cli_error("option '--%s' takes no value", opts[k].name);
            return 1;
        }
        if (a->counts[k] > 0 && !opts[k].repeatable) a->counts[k] = 0; /* the last one wins */
        if (a->counts[k] == CLI_MAX_VALUES) {
            cli_error("option '--%s' given too many times", opts[k].name);
            return 1;
        }
        a->values[k][a->counts[k]++] = value;
    }
    cli_set_quiet(cli_has(a, "quiet"));
    return cli_set_image_options(a) ? 1 : 0;
}

static int index_of(const cli_args *a, const char *name) {
    return find_option(a, name, strlen(name));
}

const char *cli_get(const cli_args *a, const char *name) {
    int k = index_of(a, name);
    return k >= 0 && a->counts[k] ? a->values[k][a->counts[k] - 1] : NULL;
}

int cli_has(const cli_args *a, const char *name) { return cli_get(a, name) != NULL; }

int cli_count(const cli_args *a, const char *name) {
    int k = index_of(a, name);
    return k >= 0 ? a->counts[k] : 0;
}

const char *cli_value(const cli_args *a, const char *name, int i) {
    int k = index_of(a, name);
    return k >= 0 && i < a->counts[k] ? a->values[k][i] : NULL;
}

void cli_set(cli_args *a, const char *name, const char *value) {
    int k = index_of(a, name);
    if (k >= 0) {
        a->values[k][0] = value;
        a->counts[k] = 1;
    }
}

int cli_int(const cli_args *a, const char *name, int dflt, int lo, int hi, int *out) {
    const char *v = cli_get(a, name);
    if (!v) {
        *out = dflt;
        return 1;
    }
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == 0 || *end || x < lo || x > hi) {
        cli_error("--%s '%s' is not an integer in %d..%d", name, v, lo, hi);
        return 0;
    }
    *out = (int)x;
    return 1;
}
