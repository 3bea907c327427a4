/* PAMR, pixel-adaptive mask refinement (Araslanov and Roth, CVPR 2020), as
 * NACLIP post-processes its logits: affinities from local image contrast,
 * then rounds of affinity-weighted averaging over each pixel's neighbours. */
#include "base/base.h"
#include <math.h>
#include <string.h>

/* Neighbour offsets (dy, dx) of the 3x3 stencil, the centre last: the 8
 * neighbours in the row-major order of PAMR's shift kernels. */
static const int k_stencil[9][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 1},
                                    {1, -1},  {1, 0},  {1, 1},  {0, 0}};

static int clamp(int v, int hi) { return v < 0 ? 0 : v > hi ? hi : v; }

/* Row-major index of the neighbour j (0..7 per dilation, or 8: the centre)
 * at dilation d of pixel (y, x), replicate padding at the borders. */
static size_t neighbour(int y, int x, int j, int d, int h, int w) {
    return (size_t)clamp(y + k_stencil[j][0] * d, h - 1) * w + clamp(x + k_stencil[j][1] * d, w - 1);
}

/* aff [h*w, P]: softmax over the P = 8 n_dil neighbours of the mean over the
 * 3 channels of -|x_p - x_q| / (1e-8 + 0.1 sd_p), sd_p the (unbiased)
 * standard deviation of the 9 n_dil stencil values of channel k. */
static void affinities(const float *px, int h, int w, const int *dil, int nd, float *aff) {
    int P = 8 * nd, S = 9 * nd;
    size_t plane = (size_t)h * w;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            float *a = aff + ((size_t)y * w + x) * P;
            double acc[64] = {0};
            for (int k = 0; k < 3; k++) {
                const float *c = px + k * plane;
                double mean = 0, var = 0;
                for (int i = 0; i < nd; i++)
                    for (int j = 0; j < 9; j++) mean += c[neighbour(y, x, j, dil[i], h, w)];
                mean /= S;
                for (int i = 0; i < nd; i++)
                    for (int j = 0; j < 9; j++) {
                        double v = c[neighbour(y, x, j, dil[i], h, w)] - mean;
                        var += v * v;
                    }
                double sd = sqrt(var / (S - 1)), centre = c[(size_t)y * w + x];
                for (int i = 0; i < nd; i++)
                    for (int j = 0; j < 8; j++)
                        acc[i * 8 + j] -= fabs(centre - c[neighbour(y, x, j, dil[i], h, w)]) / (1e-8 + 0.1 * sd);
            }
            double m = -INFINITY, sum = 0;
            for (int q = 0; q < P; q++) m = acc[q] / 3 > m ? acc[q] / 3 : m;
            for (int q = 0; q < P; q++) sum += acc[q] = exp(acc[q] / 3 - m);
            for (int q = 0; q < P; q++) a[q] = (float)(acc[q] / sum);
        }
    }
}

cs_status cs_pamr(const float *pixels, int h, int w, const int *dil, int nd, int steps, float *logits, int C) {
    if (h <= 0 || w <= 0 || C <= 0 || nd < 1 || nd > 8 || steps < 0)
        return error_set(CS_ERR_ARG, "PAMR needs an image, classes, 1..8 dilations and steps >= 0 (got %dx%d, %d, %d, %d)",
                       w, h, C, nd, steps);
    for (int i = 0; i < nd; i++)
        if (dil[i] < 1) return error_set(CS_ERR_ARG, "PAMR dilation %d is not positive", dil[i]);
    int P = 8 * nd;
    size_t n = (size_t)h * w;
    float *aff = mem_alloc(n, (size_t)P * sizeof(float)), *next = mem_alloc(n, (size_t)C * sizeof(float));
    if (!aff || !next) {
        cs_free(aff);
        cs_free(next);
        return CS_ERR_NOMEM;
    }
    affinities(pixels, h, w, dil, nd, aff);
    for (int s = 0; s < steps; s++) {
#pragma omp parallel for schedule(static)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const float *a = aff + ((size_t)y * w + x) * P;
                float *out = next + ((size_t)y * w + x) * C;
                memset(out, 0, sizeof(float) * (size_t)C);
                for (int i = 0; i < nd; i++)
                    for (int j = 0; j < 8; j++) {
                        const float *in = logits + neighbour(y, x, j, dil[i], h, w) * C;
                        float wq = a[i * 8 + j];
                        for (int c = 0; c < C; c++) out[c] += wq * in[c];
                    }
            }
        memcpy(logits, next, n * (size_t)C * sizeof(float));
    }
    cs_free(aff);
    cs_free(next);
    return CS_OK;
}
