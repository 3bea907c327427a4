/* Vision-tower and text-tower speed on synthetic models of the real
 * architectures, against this machine's own GEMM peak (median of 5 runs of a
 * 2048^3 sgemm, same BLAS, same threads).
 *
 *   bench_vision [--arch ViT-B/16] [--res 224] [--runs 5] [--threads N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "clip_surgery.h"
#include "base/base.h"
#include "ops/ops.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double gemm_peak_gflops(void) {
    int n = 2048;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double t[5];
    op_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    for (int r = 0; r < 5; r++) {
        double t0 = cs_now();
        op_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t[r] = cs_now() - t0;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n / median(t, 5) * 1e-9;
}

/* FLOPs of the ViT forward (GEMMs and attention products). */
static double vit_flops(const cs_config *c, int R, int surgery) {
    double P = c->patch_size, N = (double)(R / c->patch_size) * (R / c->patch_size), T = N + 1;
    double W = c->vision_width, f = 2 * N * 3 * P * P * W + 2 * T * W * c->embed_dim;
    for (int l = 0; l < c->vision_layers; l++) {
        f += 2 * T * W * 3 * W + 4 * T * T * W + 2 * T * W * W + 16 * T * W * W;
        if (surgery && l >= c->vision_layers - 6) f += 4 * T * T * W + 2 * T * W * W;
    }
    return f;
}

int main(int argc, char **argv) {
    const char *arch = "ViT-B/16";
    int res = 0, runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--arch")) arch = argv[i + 1];
        else if (!strcmp(argv[i], "--res")) res = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) cs_set_threads(atoi(argv[i + 1]));
    }
    if (runs < 1) runs = 1;
    printf("threads %d\n", cs_get_threads());
    double peak = gemm_peak_gflops();
    printf("GEMM peak (2048^3 sgemm, median of 5): %.1f GFLOP/s\n", peak);

    cs_model *m;
    double t0 = cs_now();
    if (cs_model_synthetic(arch, &m) != CS_OK) {
        fprintf(stderr, "%s\n", cs_last_error());
        return 1;
    }
    printf("%s: synthetic model built in %.0f ms\n", arch, (cs_now() - t0) * 1e3);
    const cs_config *c = cs_model_config(m);
    if (!res) res = c->image_resolution;
    int T = cs_model_num_tokens(m, res);
    float *px = malloc(sizeof(float) * 3 * res * res), *tok = malloc(sizeof(float) * T * c->embed_dim);
    for (int i = 0; i < 3 * res * res; i++) px[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    double *t = malloc(sizeof(double) * runs);
    for (int mode = 0; mode < 2; mode++) {
        cs_encode_image(m, px, res, mode, tok); /* warm-up */
        for (int r = 0; r < runs; r++) {
            double s = cs_now();
            cs_encode_image(m, px, res, mode, tok);
            t[r] = cs_now() - s;
        }
        double med = median(t, runs), best = t[0];
        if (c->vision_kind == CS_VISION_VIT) {
            double gf = vit_flops(c, res, mode) * 1e-9;
            printf("image %-7s %4d px: median %8.1f ms  min %8.1f ms  %6.1f GFLOP  %6.1f GFLOP/s  "
                   "%.2f x (FLOPs / peak)\n", mode ? "surgery" : "plain", res, med * 1e3, best * 1e3,
                   gf, gf / med, med / (gf / peak));
        } else {
            printf("image %-7s %4d px: median %8.1f ms  min %8.1f ms\n", mode ? "surgery" : "plain",
                   res, med * 1e3, best * 1e3);
        }
    }
    /* The text tower on one class's prompt ensemble: 85 prompts of 12 tokens
     * (start, 10 word pieces, end), packed without padding. */
    int L = c->context_length, P = 85;
    int32_t *ids = calloc((size_t)P * L, sizeof(int32_t));
    for (int p = 0; p < P; p++) {
        ids[p * L] = CS_SOT_TOKEN;
        for (int k = 1; k <= 10; k++) ids[p * L + k] = 300 + (p * 31 + k * 7) % 20000;
        ids[p * L + 11] = CS_EOT_TOKEN;
    }
    float *feat = malloc(sizeof(float) * P * c->embed_dim);
    cs_encode_text(m, ids, P, L, feat);
    for (int r = 0; r < runs; r++) {
        double s = cs_now();
        cs_encode_text(m, ids, P, L, feat);
        t[r] = cs_now() - s;
    }
    printf("text tower, 85 prompts x 12 tokens: median %8.1f ms\n", median(t, runs) * 1e3);
    free(ids);
    free(feat);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS %.0f MB\n", ru.ru_maxrss / 1024.0);
    free(px);
    free(tok);
    free(t);
    cs_model_free(m);
    return 0;
}
