/* Library paths at the edges that other tests only open or never reach:
 *  - BF16 safetensors values, widened to fp32 exactly (bit patterns of
 *    every kind: normal, negative, power of two, large, subnormal, zero);
 *  - the point prompts of images narrower than twice the pooled grid: every
 *    point inside the image, the last column at x = W - 1;
 *  - a library opened at first use (dynlib) that is missing, or lacks a
 *    function: one line naming it and what needs it, every time. */
#include <stdlib.h>
#include <math.h>
#include <unistd.h>
#include "base/dynlib.h"
#include "formats/tensors.h"
#include "test.h"

static void test_bf16_values(void) {
    static const uint16_t bits[8] = {0x3f80, 0xc049, 0x3c00, 0x4780, 0xbf00, 0x0001, 0x8000, 0x7f7f};
    const float want[8] = {1.0f, -3.140625f, 0.0078125f, 65536.0f, -0.5f, 9.18354962e-41f, -0.0f,
                           3.38953139e38f};
    char path[] = "/tmp/cs_bf16_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    /* Two tensors, the second at an odd 2-byte offset (not 4-aligned). */
    const char header[] = "{\"a\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]},"
                          "\"w\":{\"dtype\":\"BF16\",\"shape\":[2,4],\"data_offsets\":[2,18]}}";
    uint64_t hlen = sizeof header - 1;
    uint16_t a = 0x4000; /* 2.0 */
    CHECK(write(fd, &hlen, 8) == 8 && write(fd, header, hlen) == (ssize_t)hlen && write(fd, &a, 2) == 2 &&
          write(fd, bits, sizeof bits) == (ssize_t)sizeof bits);
    close(fd);
    cs_tensor_table t;
    CHECK_OK(safetensors_open(path, &t));
    const cs_tensor *w = tensors_find(&t, "w");
    CHECK(w && w->dtype == CS_DT_BF16 && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 4);
    float got[8] = {0}, two = 0;
    if (w) CHECK_OK(tensor_to_f32(w, got));
    for (int i = 0; i < 8; i++) {
        uint32_t g, e;
        memcpy(&g, &got[i], 4);
        memcpy(&e, &want[i], 4);
        CHECK_MSG(g == e, "bf16 0x%04x widened to %g (0x%08x), want %g", bits[i], got[i], g, want[i]);
    }
    const cs_tensor *x = tensors_find(&t, "a");
    if (x) CHECK_OK(tensor_to_f32(x, &two));
    CHECK(two == 2.0f);
    tensors_free(&t);
    unlink(path);
}

/* A 8x8 grid pools to 4x4 cells; on an image 3 pixels wide the cell
 * centres (col + 0.5) * 3/4 are 0.375 .. 2.625: truncated, 0 .. 2. (The
 * x clamp to W - 1 cannot change a truncated point, since (w - 0.5) W/w <
 * W; this checks the contract it states.) */
static void test_narrow_points(void) {
    enum { SIDE = 8, T = 1 + SIDE * SIDE };
    float sim[T];
    sim[0] = 0;
    for (int i = 1; i < T; i++) sim[i] = (float)((i - 1) % SIDE); /* rises to the right */
    int32_t pts[2 * T];
    uint8_t labels[T];
    int n = 0;
    for (int w = 1; w <= 9; w++) {
        CHECK_OK(cs_similarity_points(sim, T, 1, 0, w, 50, 0.8f, pts, labels, &n));
        CHECK(n > 0);
        int inside = 1, right = 0;
        for (int k = 0; k < n; k++) {
            inside &= pts[2 * k] >= 0 && pts[2 * k] <= w - 1 && pts[2 * k + 1] >= 0 && pts[2 * k + 1] <= 49;
            if (labels[k]) right |= pts[2 * k] == (int)((3.5f * (float)w) / 4.0f);
        }
        CHECK_MSG(inside, "a point outside a %dx50 image", w);
        CHECK_MSG(right, "no positive in the last column of a %dx50 image", w);
        CHECK(labels[0] == 1 && labels[n - 1] == 0);
    }
}

#define MISSING_FUNCS(X) X(tan)
DYNLIB_DEFINE(g_missing, "libcs-no-such-library.so.0", "tests", MISSING_FUNCS);
#define LIBM_FUNCS(X) X(sin)
DYNLIB_DEFINE(g_libm, "libm.so.6", "tests", LIBM_FUNCS);
/* a name libm does not have (the pointer's type is any function's) */
static double cs_no_such_function(double x) { return x; }
#define LIBM_MORE(X) X(cos) X(cs_no_such_function)
DYNLIB_DEFINE(g_libm_more, "libm.so.6", "tests", LIBM_MORE);

static void test_dynlib(void) {
    for (int i = 0; i < 2; i++) {
        CHECK_STATUS(dynlib_open(&g_missing), CS_ERR_UNSUPPORTED);
        CHECK_ERR_HAS("tests need libcs-no-such-library.so.0, which could not be loaded");
        CHECK(p_tan == NULL);
    }
    CHECK_OK(dynlib_open(&g_libm));
    CHECK(p_sin && p_sin(0.0) == 0.0);
    CHECK_STATUS(dynlib_open(&g_libm_more), CS_ERR_UNSUPPORTED);
    CHECK_ERR_HAS("(cs_no_such_function)");
    CHECK(cs_no_such_function(1.0) == 1.0);
}

int main(void) {
    test_bf16_values();
    test_narrow_points();
    test_dynlib();
    return test_finish();
}
