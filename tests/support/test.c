#include "test.h"

int g_test_passed, g_test_failed;

int test_finish(void) {
    printf("%d passed, %d failed\n", g_test_passed, g_test_failed);
    if (g_test_passed == 0 && g_test_failed == 0) {
        fprintf(stderr, "no check ran\n");
        return 1;
    }
    return g_test_failed ? 1 : 0;
}
