/* ResNet image tower speed on a synthetic model of a real architecture
 * (cs_model_synthetic: random weights, the real shapes and work). Prints ms
 * per image (median and min of the timed runs after two warm-up runs), the
 * GFLOP of the forward pass counted from the shapes, GFLOP/s, and this
 * machine's sgemm figure with the same BLAS and threads (DESIGN.md section 5).
 *
 *   bench_resnet [--arch RN50] [--res 224] [--runs 10] [--threads N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clip_surgery.h"
#include "base/base.h"
#include "ops/ops.h"

static double conv_flop(int cout, int cin, int k, int out_side) {
    return 2.0 * cout * cin * k * k * out_side * out_side;
}

/* The trunk's convolutions (stem, Bottlenecks with their downsampling
 * projections) at input side R; pooling and ReLU are not counted. */
static double trunk_flop(const cs_config *c, int R) {
    int W = c->vision_width, side = R / 2, inplanes = W;
    double f = conv_flop(W / 2, 3, 3, side) + conv_flop(W / 2, W / 2, 3, side) +
               conv_flop(W, W / 2, 3, side);
    side /= 2;
    for (int stage = 0; stage < 4; stage++) {
        int planes = W << stage;
        for (int i = 0; i < c->resnet_layers[stage]; i++) {
            int stride = stage > 0 && i == 0 ? 2 : 1, out_side = side / stride;
            f += conv_flop(planes, inplanes, 1, side) + conv_flop(planes, planes, 3, side) +
                 conv_flop(planes * 4, planes, 1, out_side);
            if (stride > 1 || inplanes != planes * 4) f += conv_flop(planes * 4, inplanes, 1, out_side);
            inplanes = planes * 4;
            side = out_side;
        }
    }
    return f;
}

/* The attention pool over T tokens of width E: the projections (q, k, v
 * for plain; v only for surgery), scores and weighted sums, c_proj. */
static double pool_flop(const cs_config *c, int T, cs_vision_mode mode) {
    double E = 32.0 * c->vision_width;
    int projections = mode == CS_VISION_PLAIN ? 3 : 1;
    return 2.0 * T * E * E * projections + 4.0 * T * T * E + 2.0 * T * E * c->embed_dim;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and min over `runs` encodes after two warm-up encodes, in seconds. */
static cs_status time_encode(cs_model *m, const float *pixels, int R, cs_vision_mode mode,
                             int runs, float *tokens, double *median, double *min) {
    double *t = malloc(sizeof(double) * (size_t)runs);
    cs_status s = CS_OK;
    for (int i = -2; i < runs && s == CS_OK; i++) {
        double t0 = cs_now();
        s = cs_encode_image(m, pixels, R, mode, tokens);
        if (i >= 0) t[i] = cs_now() - t0;
    }
    qsort(t, (size_t)runs, sizeof *t, compare_doubles);
    *median = t[runs / 2];
    *min = t[0];
    free(t);
    return s;
}

/* The machine's sgemm figure: median of 5 runs of 2048^3 through op_gemm. */
static double gemm_gflops(void) {
    int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n);
    float *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double t[5];
    op_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    for (int i = 0; i < 5; i++) {
        double t0 = cs_now();
        op_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t[i] = cs_now() - t0;
    }
    qsort(t, 5, sizeof *t, compare_doubles);
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n / t[2] * 1e-9;
}

int main(int argc, char **argv) {
    const char *arch = "RN50";
    int R = 0, runs = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--arch")) arch = argv[i + 1];
        else if (!strcmp(argv[i], "--res")) R = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) cs_set_threads(atoi(argv[i + 1]));
    }
    cs_model *m;
    if (cs_model_synthetic(arch, &m) != CS_OK) {
        fprintf(stderr, "bench_resnet: %s\n", cs_last_error());
        return 2;
    }
    const cs_config *c = cs_model_config(m);
    if (!R) R = c->image_resolution;
    if (c->vision_kind != CS_VISION_RESNET || runs < 1 || R % 32) {
        fprintf(stderr, "bench_resnet: --arch must be a ResNet, --runs >= 1, --res a multiple of 32\n");
        cs_model_free(m);
        return 2;
    }
    int T = cs_model_num_tokens(m, R);
    float *pixels = malloc(sizeof(float) * 3 * R * R), *tokens = malloc(sizeof(float) * T * c->embed_dim);
    for (int i = 0; i < 3 * R * R; i++) pixels[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;

    printf("%s (synthetic weights) at %dx%d, %d threads, %d timed runs after 2 warm-up\n", arch, R,
           R, cs_get_threads(), runs);
    double peak = gemm_gflops();
    int status = 0;
    for (int mode = 0; mode < 2 && !status; mode++) {
        double median, min;
        if (time_encode(m, pixels, R, (cs_vision_mode)mode, runs, tokens, &median, &min) != CS_OK) {
            fprintf(stderr, "bench_resnet: %s\n", cs_last_error());
            status = 1;
            break;
        }
        double gflop = (trunk_flop(c, R) + pool_flop(c, T, (cs_vision_mode)mode)) * 1e-9;
        printf("%-8s %8.2f ms/image median  %8.2f ms min  %6.2f GFLOP  %6.1f GFLOP/s  "
               "%.2f x the GEMM-peak time\n", mode ? "surgery" : "plain", median * 1e3, min * 1e3,
               gflop, gflop / median, median / (gflop / peak));
    }
    printf("sgemm 2048^3: %.1f GFLOP/s (median of 5, same BLAS and threads)\n", peak);
    free(pixels);
    free(tokens);
    cs_model_free(m);
    return status;
}
