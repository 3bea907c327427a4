/* Layer 1: a shared library opened on first use (dlopen) and its functions
 * looked up into the caller's pointers. For libcurl (downloads) and
 * Pango/cairo (text in figures): linked normally they pull in about 60
 * shared objects whose loading and relocation cost every process some
 * 8 ms at start (measured with `perf stat` on the CLI's --version), while
 * most runs (an explain with a downloaded model) call neither.
 * Internal header. */
#ifndef CS_BASE_DYNLIB_H
#define CS_BASE_DYNLIB_H

#include <pthread.h>
#include "base.h"

typedef struct dynlib {
    const char *soname;       /* "libcurl.so.4" (its dependencies come with it) */
    const char *purpose;      /* for the message: "downloads" */
    const char *const *names; /* the functions, n of them */
    void **const *slots;      /* where each one's address goes */
    int n;
    pthread_mutex_t lock;
    int state;                /* 0: not tried, 1: loaded, 2: failed (error says why) */
    char error[256];
} dynlib;

/* For a list of functions FUNCS(X) (X(name) for each, names declared by
 * the library's header): a pointer p_<name> of each function's own type,
 * and a static dynlib `var` that fills them. Callers call p_<name>. */
#define DYNLIB_DEFINE(var, soname, purpose, FUNCS)                                      \
    FUNCS(DYNLIB_POINTER_)                                                              \
    static const char *const var##_names[] = {FUNCS(DYNLIB_NAME_)};                     \
    static void **const var##_slots[] = {FUNCS(DYNLIB_SLOT_)};                          \
    static dynlib var = {(soname), (purpose), var##_names, var##_slots,                  \
                         (int)(sizeof var##_names / sizeof *var##_names),                \
                         PTHREAD_MUTEX_INITIALIZER, 0, ""}
#define DYNLIB_POINTER_(f) static __typeof__(&f) p_##f;
#define DYNLIB_NAME_(f) #f,
#define DYNLIB_SLOT_(f) (void **)&p_##f,

/* Open the library and fill every slot, once (thread-safe; later calls
 * return the first call's result). CS_ERR_UNSUPPORTED naming the library
 * and the purpose when it or a function is missing. */
cs_status dynlib_open(dynlib *lib);

#endif
