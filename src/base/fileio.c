#include "fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cs_status cs_read_file(const char *path, size_t max_bytes, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return cs_fail(CS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cs_fail(CS_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (max_bytes && size > max_bytes) {
        fclose(f);
        return cs_fail(CS_ERR_LIMIT, "%s: file is %zu bytes, more than the limit of %zu", path,
                       size, max_bytes);
    }
    char *buf = cs_alloc(size + 1, 1);
    if (!buf) {
        fclose(f);
        return CS_ERR_NOMEM;
    }
    size_t got = fread(buf, 1, size, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != size) {
        cs_free(buf);
        return cs_fail(CS_ERR_IO, "%s: read error", path);
    }
    buf[size] = 0;
    *data = buf;
    *len = size;
    return CS_OK;
}

cs_status cs_atomic_open(cs_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = cs_strdup(path);
    af->tmp_path = cs_alloc(n, 1);
    if (!af->path || !af->tmp_path) {
        cs_atomic_abort(af);
        return CS_ERR_NOMEM;
    }
    snprintf(af->tmp_path, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        cs_status s = cs_fail(CS_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        cs_free(af->tmp_path);
        af->tmp_path = NULL;
        cs_atomic_abort(af);
        return s;
    }
    fchmod(fd, 0644);
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        close(fd);
        cs_atomic_abort(af);
        return cs_fail(CS_ERR_IO, "%s: cannot open for writing", path);
    }
    return CS_OK;
}

void cs_atomic_abort(cs_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    cs_free(af->tmp_path);
    cs_free(af->path);
    memset(af, 0, sizeof *af);
}

cs_status cs_atomic_commit(cs_atomic_file *af) {
    int bad = ferror(af->f) || fflush(af->f) != 0;
    bad |= fclose(af->f) != 0;
    af->f = NULL;
    if (bad || rename(af->tmp_path, af->path) != 0) {
        cs_status s = cs_fail(CS_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
        cs_atomic_abort(af);
        return s;
    }
    cs_free(af->tmp_path);
    af->tmp_path = NULL;
    cs_atomic_abort(af);
    return CS_OK;
}

cs_status cs_mkdirs(const char *path) {
    if (!*path) return cs_fail(CS_ERR_ARG, "an empty folder name");
    char *p = cs_strdup(path);
    if (!p) return CS_ERR_NOMEM;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                cs_status st = cs_fail(CS_ERR_IO, "%s: cannot create directory: %s", p,
                                       strerror(errno));
                cs_free(p);
                return st;
            }
            *s = c;
            if (!c) break;
        }
    }
    cs_free(p);
    return CS_OK;
}
