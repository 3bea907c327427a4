#include <math.h>
#include "ops.h"

void op_layer_norm(const float *x, int rows, int dim, const float *w, const float *b, float eps,
                   float *y) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *yr = y + (size_t)r * dim;
        /* Two passes in float: mean, then the variance about it (as PyTorch). */
        float mean = 0.0f;
        for (int i = 0; i < dim; i++) mean += xr[i];
        mean /= (float)dim;
        float var = 0.0f;
        for (int i = 0; i < dim; i++) {
            float d = xr[i] - mean;
            var += d * d;
        }
        var /= (float)dim;
        float inv = 1.0f / sqrtf(var + eps);
        for (int i = 0; i < dim; i++) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
    }
}

void op_quick_gelu(float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

void op_softmax_rows(float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * cols;
        float m = -INFINITY;
        for (int i = 0; i < cols; i++) m = xr[i] > m ? xr[i] : m;
        float sum = 0.0f;
        for (int i = 0; i < cols; i++) {
            xr[i] = expf(xr[i] - m);
            sum += xr[i];
        }
        float inv = 1.0f / sum;
        for (int i = 0; i < cols; i++) xr[i] *= inv;
    }
}

void op_l2_normalize_rows(float *x, int rows, int dim) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * dim;
        double ss = 0.0;
        for (int i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        if (ss > 0) {
            float inv = (float)(1.0 / sqrt(ss));
            for (int i = 0; i < dim; i++) xr[i] *= inv;
        }
    }
}

void op_add(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}
