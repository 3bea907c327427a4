/* Layer 1: whole-file reads and atomic writes (temporary file + rename, so a
 * failure never leaves a partial output behind). */
#ifndef CS_FILEIO_H
#define CS_FILEIO_H

#include <stdio.h>
#include "base.h"

/* Read a whole file (at most max_bytes; 0 = no limit). *data is NUL-terminated
 * (one extra byte) and freed with cs_free. */
cs_status cs_read_file(const char *path, size_t max_bytes, char **data, size_t *len);

typedef struct cs_atomic_file {
    FILE *f;
    char *tmp_path;
    char *path;
} cs_atomic_file;

cs_status cs_atomic_open(cs_atomic_file *af, const char *path);
/* Flush, close and rename into place; on any failure remove the temporary. */
cs_status cs_atomic_commit(cs_atomic_file *af);
void cs_atomic_abort(cs_atomic_file *af);

/* Create a directory and its parents (like mkdir -p). */
cs_status cs_mkdirs(const char *path);

#endif
