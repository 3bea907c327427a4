/* Running the clip-surgery tool from tests: a temporary folder per test
 * (removed at exit), the tool ($CS_TOOL, set by ctest) run with its output
 * captured there, and small readers for what it wrote. */
#ifndef CS_CLI_RUN_H
#define CS_CLI_RUN_H

#include <cjson/cJSON.h>

/* The test's temporary folder, made by tool_tmp_init. */
extern char g_tmp[256];

/* Make g_tmp (/tmp/<prefix>_XXXXXX), removed when the test exits; exits
 * with a failure when CS_TOOL is not set. */
void tool_tmp_init(const char *prefix);
/* A path under g_tmp (printf-style; a rotating set of 8 buffers). */
const char *tmp_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run "$CS_TOOL <args>" (printf-style); stdout and stderr go to
 * g_tmp/stdout.txt and g_tmp/stderr.txt. Returns the exit code. */
int run_tool(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last run's stderr contains needle / has this many lines. */
int stderr_has(const char *needle);
int stderr_lines(void);
/* A file under g_tmp as text into buf (empty when missing). */
void read_text(const char *name, char *buf, size_t n);
/* A JSON file, or NULL. */
cJSON *read_json(const char *path);

#endif
