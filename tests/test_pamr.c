/* PAMR (NACLIP's post-processing) by hand: on a flat image every neighbour
 * weighs the same, so one step is the mean of the 8 dilated neighbours
 * (replicate padding); across an edge the weights stay on its side. */
#include <stdlib.h>
#include "test.h"

enum { H = 9, W = 9, C = 2 };

static void test_flat(void) {
    float px[3 * H * W], logits[H * W * C] = {0};
    for (int i = 0; i < 3 * H * W; i++) px[i] = 0.25f;
    logits[(4 * W + 4) * C] = 8.0f; /* an impulse in class 0 at the centre */
    int d = 1;
    CHECK_OK(cs_pamr(px, H, W, &d, 1, 1, logits, C));
    CHECK_NEAR(logits[(4 * W + 4) * C], 0.0, 1e-6);     /* the centre is not its own neighbour */
    CHECK_NEAR(logits[(3 * W + 4) * C], 1.0, 1e-6);     /* each of its 8 neighbours gets 8 / 8 */
    CHECK_NEAR(logits[(5 * W + 5) * C], 1.0, 1e-6);
    CHECK_NEAR(logits[(2 * W + 4) * C], 0.0, 1e-6);     /* two away: nothing after one step */
    CHECK_NEAR(logits[(3 * W + 4) * C + 1], 0.0, 1e-6); /* class 1 stays zero */
    /* Replicate padding: a corner pixel's neighbours outside the image are itself. */
    float corner[H * W * C] = {0};
    corner[0] = 8.0f;
    CHECK_OK(cs_pamr(px, H, W, &d, 1, 1, corner, C));
    CHECK_NEAR(corner[0], 8.0 * 3 / 8, 1e-5); /* 3 of its 8 clamped neighbours are (0, 0) */
}

/* Left half dark, right half bright: a pixel next to the edge takes its
 * logits from its own side. */
static void test_edge(void) {
    float px[3 * H * W], logits[H * W * C];
    for (int k = 0; k < 3; k++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) px[(k * H + y) * W + x] = x < 5 ? -1.0f : 1.0f;
    for (int p = 0; p < H * W; p++) {
        logits[p * C] = p % W < 5 ? 1.0f : 0.0f;
        logits[p * C + 1] = 1.0f - logits[p * C];
    }
    int dil[2] = {1, 2};
    CHECK_OK(cs_pamr(px, H, W, dil, 2, 10, logits, C));
    int p = 4 * W + 4; /* the last dark column */
    CHECK_MSG(logits[p * C] > 0.99f, "dark side class 0: %g", logits[p * C]);
    p = 4 * W + 5; /* the first bright column */
    CHECK_MSG(logits[p * C + 1] > 0.99f, "bright side class 1: %g", logits[p * C + 1]);
}

static void test_errors(void) {
    float px[3] = {0}, lg[1] = {0};
    int bad = 0, d = 1;
    CHECK_STATUS(cs_pamr(px, 1, 1, &bad, 1, 1, lg, 1), CS_ERR_ARG);
    CHECK_STATUS(cs_pamr(px, 0, 1, &d, 1, 1, lg, 1), CS_ERR_ARG);
    CHECK_STATUS(cs_pamr(px, 1, 1, &d, 1, -1, lg, 1), CS_ERR_ARG);
}

int main(void) {
    test_flat();
    test_edge();
    test_errors();
    return test_finish();
}
