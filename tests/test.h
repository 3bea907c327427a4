/* A minimal test harness: CHECK macros count checks and failures; every test
 * program ends with `return test_finish();`, which prints the plain closing
 * line "N passed, N failed" and returns non-zero on any failure. */
#ifndef CS_TEST_H
#define CS_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>
#include "clip_surgery.h"

extern int g_test_passed, g_test_failed;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (cond) g_test_passed++;                                                    \
        else {                                                                        \
            g_test_failed++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
        }                                                                             \
    } while (0)

#define CHECK_MSG(cond, ...)                                                          \
    do {                                                                              \
        if (cond) g_test_passed++;                                                    \
        else {                                                                        \
            g_test_failed++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
        }                                                                             \
    } while (0)

#define CHECK_STATUS(expr, want)                                                      \
    do {                                                                              \
        cs_status got_ = (expr);                                                      \
        CHECK_MSG(got_ == (want), "got %s (%s), want %s", cs_status_name(got_),       \
                  cs_last_error(), cs_status_name(want));                             \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, CS_OK)

#define CHECK_NEAR(a, b, tol)                                                         \
    do {                                                                              \
        double a_ = (a), b_ = (b);                                                    \
        CHECK_MSG(fabs(a_ - b_) <= (tol), "%.9g vs %.9g (tol %.3g)", a_, b_,          \
                  (double)(tol));                                                     \
    } while (0)

/* The last error message contains `needle`. */
#define CHECK_ERR_HAS(needle)                                                         \
    CHECK_MSG(strstr(cs_last_error(), (needle)) != NULL, "message '%s' lacks '%s'",   \
              cs_last_error(), (needle))

int test_finish(void);

#endif
