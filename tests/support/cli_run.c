#include "cli_run.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "base/fileio.h"

char g_tmp[256];

static void remove_tmp(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (g_tmp[0] && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
}

void tool_tmp_init(const char *prefix) {
    if (!getenv("CS_TOOL")) {
        fprintf(stderr, "CS_TOOL is not set (run through ctest)\n");
        exit(1);
    }
    snprintf(g_tmp, sizeof g_tmp, "/tmp/%s_XXXXXX", prefix);
    if (!mkdtemp(g_tmp)) {
        fprintf(stderr, "cannot make a temporary folder\n");
        exit(1);
    }
    atexit(remove_tmp);
}

const char *tmp_path(const char *fmt, ...) {
    static char buf[8][1024];
    static int slot;
    slot = (slot + 1) % 8;
    int n = snprintf(buf[slot], sizeof buf[slot], "%s/", g_tmp);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf[slot] + n, sizeof buf[slot] - (size_t)n, fmt, ap);
    va_end(ap);
    return buf[slot];
}

int run_tool(const char *fmt, ...) {
    char args[8192], cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s/stderr.txt' >'%s/stdout.txt'", getenv("CS_TOOL"), args,
             g_tmp, g_tmp);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void read_text(const char *name, char *buf, size_t n) {
    buf[0] = 0;
    FILE *f = fopen(tmp_path("%s", name), "r");
    if (!f) return;
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = 0;
    fclose(f);
}

int stderr_has(const char *needle) {
    char buf[8192];
    read_text("stderr.txt", buf, sizeof buf);
    return strstr(buf, needle) != NULL;
}

int stderr_lines(void) {
    char buf[8192];
    read_text("stderr.txt", buf, sizeof buf);
    int lines = 0;
    for (char *p = buf; *p; p++) lines += *p == '\n';
    return lines;
}

cJSON *read_json(const char *path) {
    char *text;
    size_t len;
    if (cs_read_file(path, 0, &text, &len) != CS_OK) return NULL;
    cJSON *j = cJSON_Parse(text);
    cs_free(text);
    return j;
}
