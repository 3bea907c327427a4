/* Issue 18, target 1: the fp32 towers with their linear weights packed for
 * oneDNN (src/ops/gemm_f32.c) against the same model on OpenBLAS, in one
 * process: two synthetic models of the architecture, one kept on OpenBLAS
 * (fp32_openblas), timed run by run in turn so background load hits both
 * alike. Prints the cost of preparing each tower on both models (the
 * difference: the packing, once per process, at the tower's first pass)
 * and of the primitive creation at a new shape (the first pass at a shape
 * minus the second), then per resolution the CLIP Surgery image tower and the text
 * tower on 85 prompts of 12 tokens (as `clip-surgery bench`): median ms and
 * the ratio of the time to FLOPs / (2048^3 sgemm peak of this run).
 * Usage: bench_fp32_pack [ARCH [RUNS [RES...]]]   (default ViT-B/16 7 224 512)
 * Exits 1 naming oneDNN where the library is built without it (-DCS_ONEDNN=ON). */
#include <stdio.h>
#include <stdlib.h>
#include "base/base.h"
#include "median.h"
#include "model/model.h"
#include "ops/gemm_f32.h"

static void die(const char *what) {
    fprintf(stderr, "bench_fp32_pack: %s: %s\n", what, cs_last_error());
    exit(1);
}

/* Bytes of a tower's packed weights. */
static double packed_mb(const cs_transformer *tr) {
    size_t n = 0;
    for (int l = 0; l < tr->layers; l++) {
        const cs_block *b = &tr->blocks[l];
        n += op_f32_packed_bytes(&b->qkv32) + op_f32_packed_bytes(&b->out32) + op_f32_packed_bytes(&b->fc32) +
             op_f32_packed_bytes(&b->proj32);
    }
    return n / 1048576.0;
}

/* A tower's preparation at its first pass (views of its weights; for the
 * packed model also their packing) on both models: the difference is the
 * packing's cost. */
static void time_pack(cs_model *packed, cs_model *blas, cs_status (*prepare)(cs_model *),
                      const cs_transformer *tr, const char *what) {
    double t0 = cs_now();
    if (prepare(blas) != CS_OK) die(what);
    double t1 = cs_now();
    if (prepare(packed) != CS_OK) die(what);
    double t2 = cs_now();
    printf("prepare the %-5s tower: %7.1f ms packed (%.1f MB), %7.1f ms kept for OpenBLAS\n", what,
           (t2 - t1) * 1e3, packed_mb(tr), (t1 - t0) * 1e3);
}

typedef struct job {
    int R; /* 0: the text tower */
    float *px, *tok;
    int32_t *ids;
} job;

static double run(cs_model *m, const job *j) {
    double t0 = cs_now();
    cs_status s = j->R ? cs_encode_image(m, j->px, j->R, CS_VISION_SURGERY, j->tok)
                       : cs_encode_text(m, j->ids, 85, 77, j->tok);
    if (s != CS_OK) die("encode");
    return cs_now() - t0;
}

int main(int argc, char **argv) {
    const char *arch = argc > 1 ? argv[1] : "ViT-B/16";
    int runs = argc > 2 ? atoi(argv[2]) : 7;
    if (runs < 1) runs = 1;
    int n_res = argc > 3 ? argc - 3 : 2, def_res[2] = {224, 512};
    if (!op_f32_pack_available()) die("oneDNN");
    cs_model *packed, *blas;
    if (cs_model_synthetic(arch, &packed) != CS_OK || cs_model_synthetic(arch, &blas) != CS_OK) die(arch);
    blas->fp32_openblas = 1;
    double peak = cs_gemm_peak_gflops(2048, 5);
    printf("%s, %d threads, sgemm 2048^3 peak %.1f GFLOP/s; x peak = time / (FLOPs / peak), median of %d "
           "interleaved runs\n", arch, cs_get_threads(), peak, runs);
    time_pack(packed, blas, model_prepare_vision, &packed->vit.tr, "image");
    time_pack(packed, blas, model_prepare_text, &packed->text.tr, "text");

    int32_t *ids = calloc(85 * 77, sizeof *ids);
    int lens[85];
    for (int i = 0; i < 85; i++) {
        ids[i * 77] = 49406;
        for (int p = 1; p < 11; p++) ids[i * 77 + p] = 1000 + (i * 31 + p * 977) % 40000;
        ids[i * 77 + 11] = 49407;
        lens[i] = 12;
    }
    printf("%-14s %9s %9s %9s %9s %12s\n", "tower", "oneDNN ms", "x peak", "BLAS ms", "x peak", "1st pass +ms");
    double *ta = malloc(sizeof(double) * runs), *tb = malloc(sizeof(double) * runs);
    for (int r = -1; r < n_res; r++) {
        job j = {r < 0 ? 0 : argc > 3 ? atoi(argv[3 + r]) : def_res[r], NULL, NULL, ids};
        int T = j.R ? cs_model_num_tokens(packed, j.R) : 85;
        j.px = calloc((size_t)3 * j.R * j.R + 1, sizeof(float));
        j.tok = malloc(sizeof(float) * (size_t)T * packed->cfg.embed_dim);
        for (size_t i = 0; i < (size_t)3 * j.R * j.R; i++) j.px[i] = (float)((i * 7919) % 255) / 127.0f - 1.0f;
        double first = run(packed, &j); /* this shape's primitives made */
        double second = run(packed, &j);
        run(blas, &j);
        for (int i = 0; i < runs; i++) {
            ta[i] = run(packed, &j);
            tb[i] = run(blas, &j);
        }
        double flops = j.R ? cs_model_vision_flops(packed, j.R, CS_VISION_SURGERY) : cs_model_text_flops(packed, lens, 85);
        double a = bench_median(ta, runs), b = bench_median(tb, runs), ideal = flops / (peak * 1e9);
        char what[32];
        if (j.R) snprintf(what, sizeof what, "surgery %d", j.R);
        else snprintf(what, sizeof what, "text 85x12");
        printf("%-14s %9.1f %9.2f %9.1f %9.2f %12.1f\n", what, a * 1e3, a / ideal, b * 1e3, b / ideal,
               (first - second) * 1e3);
        free(j.px);
        free(j.tok);
    }
    free(ta);
    free(tb);
    free(ids);
    cs_model_free(packed);
    cs_model_free(blas);
    return 0;
}
