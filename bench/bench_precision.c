/* fp32, bf16 and int8 image-tower time on one model, interleaved in one
 * process so background load on a shared machine hits them alike.
 * Usage: bench_precision [ROUNDS [ARCH [RES]]]   (default 9 ViT-B/16 224)
 * Each round encodes one image (CLIP Surgery) once per precision, in turn,
 * on three copies of the synthetic model (a packed model keeps no fp32
 * weights to switch back to), after one warm-up encode each. Prints per precision the median and
 * minimum ms, and the median over rounds of the time ratio to fp32 in the
 * same round: the figure to quote on a loaded machine. */
#include <stdio.h>
#include <stdlib.h>
#include "clip_surgery.h"
#include "median.h"

enum { N_PREC = 3 };

static void die(const char *what) {
    fprintf(stderr, "bench_precision: %s: %s\n", what, cs_last_error());
    exit(1);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 9;
    const char *arch = argc > 2 ? argv[2] : "ViT-B/16";
    int R = argc > 3 ? atoi(argv[3]) : 224;
    if (rounds < 1 || rounds > 1000 || R < 32 || R > 2048) {
        fprintf(stderr, "usage: bench_precision [ROUNDS [ARCH [RES]]]\n");
        return 2;
    }
    static const cs_precision k_prec[N_PREC] = {CS_PRECISION_FP32, CS_PRECISION_BF16, CS_PRECISION_INT8};
    static const char *k_name[N_PREC] = {"fp32", "bf16", "int8"};
    cs_model *m[N_PREC];
    for (int p = 0; p < N_PREC; p++)
        if (cs_model_synthetic(arch, &m[p]) != CS_OK || cs_model_set_precision(m[p], k_prec[p]) != CS_OK)
            die(k_name[p]);
    int T = cs_model_num_tokens(m[0], R), D = cs_model_config(m[0])->embed_dim;
    float *px = malloc(sizeof(float) * 3 * R * R), *tok = malloc(sizeof(float) * T * D);
    double *t[N_PREC], *ratio[N_PREC];
    for (int i = 0; i < 3 * R * R; i++) px[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    for (int p = 0; p < N_PREC; p++) {
        t[p] = malloc(sizeof(double) * rounds);
        ratio[p] = malloc(sizeof(double) * rounds);
        if (cs_encode_image(m[p], px, R, CS_VISION_SURGERY, tok) != CS_OK) die("encode");
    }
    for (int r = 0; r < rounds; r++)
        for (int p = 0; p < N_PREC; p++) {
            double t0 = cs_now();
            if (cs_encode_image(m[p], px, R, CS_VISION_SURGERY, tok) != CS_OK) die("encode");
            t[p][r] = cs_now() - t0;
            ratio[p][r] = t[p][r] / t[0][r];
        }
    printf("%s surgery @%d, %d rounds interleaved, %d threads\n", arch, R, rounds, cs_get_threads());
    printf("%-5s %10s %10s %16s\n", "", "median ms", "min ms", "x fp32 (median)");
    for (int p = 0; p < N_PREC; p++) {
        double med_ratio = bench_median(ratio[p], rounds), med = bench_median(t[p], rounds);
        printf("%-5s %10.1f %10.1f %16.3f\n", k_name[p], med * 1e3, t[p][0] * 1e3, med_ratio);
    }
    for (int p = 0; p < N_PREC; p++) free(t[p]), free(ratio[p]);
    free(px), free(tok);
    for (int p = 0; p < N_PREC; p++) cs_model_free(m[p]);
    return 0;
}
