#define _GNU_SOURCE /* sched_getaffinity */
#include "args.h"

#include <sched.h>
#include <unistd.h>

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

int cli_set(cli_args *a, const char *name, const char *value) {
    int k = index_of(a, name);
    if (k < 0) return 0;
    if (!a->options[k].repeatable) a->counts[k] = 0; /* the last one wins */
    if (a->counts[k] == CLI_MAX_VALUES) return 0;
    a->values[k][a->counts[k]++] = value;
    return 1;
}

int cli_parse_int(const char *v, size_t len, long lo, long hi, int *out) {
    size_t i = v[0] == '-' ? 1 : 0;
    if (len <= i || len - i > 10) return 0; /* no digits, or more than an int can hold */
    long long x = 0;
    for (size_t k = i; k < len; k++) {
        if (v[k] < '0' || v[k] > '9') return 0;
        x = x * 10 + (v[k] - '0');
    }
    if (i) x = -x;
    if (x < lo || x > hi) return 0;
    *out = (int)x;
    return 1;
}

int cli_int(const cli_args *a, const char *name, int dflt, int lo, int hi, int *out) {
    const char *v = cli_get(a, name);
    if (!v) {
        *out = dflt;
        return 1;
    }
    if (!cli_parse_int(v, strlen(v), lo, hi, out)) {
        cli_error("--%s '%s' is not an integer in %d..%d", name, v, lo, hi);
        return 0;
    }
    return 1;
}

int cli_float(const cli_args *a, const char *name, float dflt, float lo, float hi, float *out) {
    const char *v = cli_get(a, name);
    *out = dflt;
    if (!v) return 1;
    /* strtod alone would also take " 1", "0x1p-2", "nan" and "inf". */
    int ok = *v && strspn(v, "+-0123456789.eE") == strlen(v);
    char *end = NULL;
    double x = ok ? strtod(v, &end) : 0;
    if (!ok || *end || !(x >= lo && x <= hi)) {
        cli_error("--%s '%s' is not a number in [%g, %g]", name, v, lo, hi);
        return 0;
    }
    *out = (float)x;
    return 1;
}

int cli_threads(const cli_args *a) {
    cpu_set_t set;
    int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    if (cpus < 1) cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    int n;
    if (!cli_has(a, "threads")) return 1;
    if (!cli_parse_int(cli_get(a, "threads"), strlen(cli_get(a, "threads")), 1, cpus, &n)) {
        cli_error("--threads '%s' is not an integer in 1..%d (the CPUs available)",
                  cli_get(a, "threads"), cpus);
        return 0;
    }
    cs_set_threads(n);
    return 1;
}
