#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

cs_status file_open_input(const char *path, int *fd, size_t *size) {
    *fd = -1;
    *size = 0;
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR || e == ENAMETOOLONG || e == ELOOP)
            return error_set(CS_ERR_MISSING, "%s: cannot open: %s", path, strerror(e));
        return error_set(CS_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return error_set(CS_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return error_set(CS_ERR_ARG, "%s: not a regular file (%s)", path,
                       S_ISDIR(st.st_mode) ? "a folder" : S_ISFIFO(st.st_mode) ? "a FIFO" :
                       S_ISSOCK(st.st_mode) ? "a socket" : "a device");
    }
    int flags = fcntl(f, F_GETFL);
    if (flags >= 0) fcntl(f, F_SETFL, flags & ~O_NONBLOCK);
    *fd = f;
    *size = (size_t)st.st_size;
    return CS_OK;
}

#define MAP_ALIGN ((size_t)2 << 20)

cs_status file_map_input(const char *path, int fd, size_t size, void **map) {
    *map = NULL;
    /* Reserve room for an aligned start, map the file over its aligned
     * part, and give back the slack on either side. */
    size_t room = size + MAP_ALIGN, page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *reserved = size < SIZE_MAX - MAP_ALIGN
                            ? mmap(NULL, room, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                            : MAP_FAILED;
    uint8_t *start = MAP_FAILED;
    if (reserved != MAP_FAILED) {
        start = (uint8_t *)(((uintptr_t)reserved + MAP_ALIGN - 1) & ~(uintptr_t)(MAP_ALIGN - 1));
        if (mmap(start, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED) start = MAP_FAILED;
    }
    int e = errno;
    close(fd);
    if (start == MAP_FAILED) {
        if (reserved != MAP_FAILED) munmap(reserved, room);
        return error_set(CS_ERR_IO, "%s: cannot map: %s", path, strerror(e));
    }
    size_t end = (size + page - 1) & ~(page - 1);
    if (start > reserved) munmap(reserved, (size_t)(start - reserved));
    if (reserved + room > start + end) munmap(start + end, (size_t)(reserved + room - (start + end)));
    madvise(start, size, MADV_HUGEPAGE);
    *map = start;
    return CS_OK;
}

cs_status file_fopen_input(const char *path, FILE **f, size_t *size) {
    int fd;
    *f = NULL;
    cs_status s = file_open_input(path, &fd, size);
    if (s != CS_OK) return s;
    *f = fdopen(fd, "rb");
    if (!*f) {
        close(fd);
        return error_set(CS_ERR_NOMEM, "%s: cannot open a stream", path);
    }
    return CS_OK;
}

cs_status cs_read_file(const char *path, size_t max_bytes, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *f;
    size_t size;
    cs_status s = file_fopen_input(path, &f, &size);
    if (s != CS_OK) return s;
    if (max_bytes && size > max_bytes) {
        fclose(f);
        return error_set(CS_ERR_LIMIT, "%s: file is %zu bytes, more than the limit of %zu", path,
                       size, max_bytes);
    }
    char *buf = mem_alloc(size + 1, 1);
    if (!buf) {
        fclose(f);
        return CS_ERR_NOMEM;
    }
    size_t got = fread(buf, 1, size, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != size) {
        cs_free(buf);
        return error_set(CS_ERR_IO, "%s: read error", path);
    }
    buf[size] = 0;
    *data = buf;
    *len = size;
    return CS_OK;
}

/* Every temporary this process has open or pending, newest first. Nodes are
 * linked before their file exists and unlinked only from the main flow, so
 * a signal handler walking the list always sees valid nodes. */
typedef struct cs_tmp_node {
    struct cs_tmp_node *next;
    char *tmp, *final;     /* final: set once committed inside a transaction */
    volatile sig_atomic_t live;
} cs_tmp_node;

static cs_tmp_node *volatile g_tmps;
static pthread_mutex_t g_tmps_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_transaction;

static cs_tmp_node *tmp_track(const char *tmp) {
    cs_tmp_node *n = mem_calloc(1, sizeof *n);
    if (!n) return NULL;
    n->tmp = mem_strdup(tmp);
    if (!n->tmp) {
        cs_free(n);
        return NULL;
    }
    n->live = 1;
    pthread_mutex_lock(&g_tmps_lock);
    n->next = g_tmps;
    g_tmps = n;
    pthread_mutex_unlock(&g_tmps_lock);
    return n;
}

static void tmp_forget(cs_tmp_node *n) {
    if (!n) return;
    n->live = 0;
    pthread_mutex_lock(&g_tmps_lock);
    cs_tmp_node *volatile *p = &g_tmps;
    while (*p && *p != n) p = &(*p)->next;
    if (*p) *p = n->next;
    pthread_mutex_unlock(&g_tmps_lock);
    cs_free(n->tmp);
    cs_free(n->final);
    cs_free(n);
}

void cs_outputs_remove_temporaries(void) {
    for (cs_tmp_node *n = g_tmps; n; n = n->next)
        if (n->live) unlink(n->tmp);
}

void cs_outputs_begin(void) { g_transaction = 1; }

cs_status cs_outputs_end(int commit) {
    cs_status s = CS_OK;
    g_transaction = 0;
    /* Oldest first, so a later write of one path wins as it would have. */
    int n = 0;
    for (cs_tmp_node *x = g_tmps; x; x = x->next) n += x->final != NULL;
    cs_tmp_node **pending = mem_alloc((size_t)n + 1, sizeof *pending);
    int k = n;
    for (cs_tmp_node *x = g_tmps; x && pending; x = x->next)
        if (x->final) pending[--k] = x;
    int done = 0;
    for (; commit && pending && done < n; done++)
        if (rename(pending[done]->tmp, pending[done]->final) != 0) {
            s = error_set(CS_ERR_IO, "%s: cannot rename into place: %s", pending[done]->final,
                        strerror(errno));
            break;
        }
    /* A failed rename undoes the ones before it: all outputs or none. */
    for (int i = 0; s != CS_OK && i < done; i++) unlink(pending[i]->final);
    for (int i = 0; pending && i < n; i++) {
        if (s != CS_OK || !commit) unlink(pending[i]->tmp);
        tmp_forget(pending[i]);
    }
    if (!pending && n) {
        cs_outputs_remove_temporaries();
        s = CS_ERR_NOMEM;
    }
    cs_free(pending);
    return s;
}

cs_status cs_atomic_open(cs_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = mem_strdup(path);
    af->tmp_path = mem_alloc(n, 1);
    if (!af->path || !af->tmp_path) {
        cs_atomic_abort(af);
        return CS_ERR_NOMEM;
    }
    snprintf(af->tmp_path, n, "%s.tmp.XXXXXX", path);
    /* Listed before it exists: a signal between mkstemp and here would
     * otherwise leave it behind. */
    af->node = tmp_track(af->tmp_path);
    if (!af->node) {
        cs_atomic_abort(af);
        return CS_ERR_NOMEM;
    }
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        int e = errno;
        cs_status s = error_set(CS_ERR_IO, "%s: cannot create: %s", path, strerror(e));
        cs_free(af->tmp_path);
        af->tmp_path = NULL;
        cs_atomic_abort(af);
        return s;
    }
    memcpy(af->node->tmp, af->tmp_path, strlen(af->tmp_path) + 1); /* the X's filled in */
    fchmod(fd, 0644);
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        close(fd);
        cs_atomic_abort(af);
        return error_set(CS_ERR_IO, "%s: cannot open for writing", path);
    }
    return CS_OK;
}

void cs_atomic_abort(cs_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    tmp_forget(af->node);
    cs_free(af->tmp_path);
    cs_free(af->path);
    memset(af, 0, sizeof *af);
}

static cs_status atomic_commit(cs_atomic_file *af, int defer) {
    int bad = ferror(af->f) || fflush(af->f) != 0;
    int e = bad ? errno : 0;
    if (fclose(af->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    af->f = NULL;
    if (!bad && defer) {
        af->node->final = af->path; /* renamed by cs_outputs_end */
        af->path = NULL;
        af->node = NULL;
        cs_free(af->tmp_path);
        af->tmp_path = NULL;
        cs_atomic_abort(af);
        return CS_OK;
    }
    if (bad || rename(af->tmp_path, af->path) != 0) {
        if (!bad) e = errno;
        cs_status s = error_set(CS_ERR_IO, "%s: write failed: %s", af->path,
                              e ? strerror(e) : "unknown error");
        cs_atomic_abort(af);
        return s;
    }
    cs_free(af->tmp_path);
    af->tmp_path = NULL;
    cs_atomic_abort(af);
    return CS_OK;
}

cs_status cs_atomic_commit(cs_atomic_file *af) { return atomic_commit(af, g_transaction); }

cs_status atomic_commit_now(cs_atomic_file *af) { return atomic_commit(af, 0); }

cs_status cs_mkdirs(const char *path) {
    if (!*path) return error_set(CS_ERR_ARG, "an empty folder name");
    char *p = mem_strdup(path);
    if (!p) return CS_ERR_NOMEM;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                cs_status st = error_set(CS_ERR_IO, "%s: cannot create directory: %s", p,
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
