/* clip-surgery bench: speed of the towers on synthetic models of the real
 * architectures (no weight file needed) or on a given model, against this
 * machine's own GEMM peak (DESIGN.md section 5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "cli.h"

static const cli_option k_options[] = {
    {"arch", "LIST", "synthetic architectures, comma-separated (default ViT-B/16): RN50, RN101, RN50x4, "
                     "RN50x16, RN50x64, ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336px; "
                     "SAM: sam_vit_b, sam_vit_l, sam_vit_h (encoder, and one prompt to masks)", 0},
    {"model", "M", "benchmark this model instead (name, file or folder; its load time is reported)", 0},
    {"cache-dir", "DIR", "where named models live (default ~/.cache/clip)", 0},
    {"res", "LIST", "input resolutions, comma-separated (default: each model's native one)", 0},
    {"runs", "N", "timed runs per figure, after a warm-up (default 5; a SAM prompt at least 21)", 0},
    {"batch", "N", "images per forward pass (default 1); figures are per image", 0},
    {"threads", "N", "threads (default: all cores)", 0},
    {"json", "FILE", "also write the figures as JSON", 0},
    {"precision", "P", "fp32 (default) | bf16 | int8 (transformer linear weights in bf16, bf16 also the ResNet convolutions; int8: the ViT's, the text tower in bf16; SAM: fp32 or bf16)", 0},
    CLI_OPTS_QUIET,
};

static const char k_usage[] =
    "usage: clip-surgery bench [--arch LIST | --model M] [--res LIST] [--runs N] [--json FILE]\n\n"
    "Times the image tower (plain CLIP and CLIP Surgery) and the text tower on one class's\n"
    "85-prompt ensemble (prompts of 12 tokens), and reports ms (median and min), GFLOP, GFLOP/s\n"
    "and the ratio of the time to FLOPs / (the machine's sgemm peak: median of 5 runs of\n"
    "2048^3 with the same BLAS and threads). 1.00 would be every FLOP at the GEMM's rate.\n"
    "With --precision bf16 the ratio is against the bf16 peak instead (2048^3 through the\n"
    "bf16 kernel, weights packed, median of 5), printed next to the sgemm peak.\n"
    "SAM archs time the image encoder at 1024 and one point prompt through the decoder and\n"
    "post-processing (the figure's FLOPs are the decoder's).\n"
    "Example: clip-surgery bench --arch ViT-B/16,RN50 --res 224,512 --json bench.json\n"
    "         clip-surgery bench --arch sam_vit_b --runs 3";

typedef struct figure {
    char model[64], stage[32];
    int res;
    double median_ms, min_ms, gflop;
} figure;

typedef struct bench {
    int runs, batch;
    double peak;       /* sgemm, GFLOP/s */
    double peak_bf16;  /* the bf16 kernel (measured under --precision bf16 only, else 0) */
    double ratio_peak; /* what "x peak" is against: the peak of the precision benchmarked */
    figure *figs;
    int n, cap;
} bench;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* t: n run times in seconds (sorted here). */
static void add_figure(bench *b, const char *model, const char *stage, int res, double *t, int n,
                       double flops) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 16;
        b->figs = cli_xrealloc(b->figs, sizeof *b->figs * (size_t)b->cap);
    }
    figure *f = &b->figs[b->n++];
    snprintf(f->model, sizeof f->model, "%s", model);
    snprintf(f->stage, sizeof f->stage, "%s", stage);
    f->res = res;
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    f->median_ms = t[n / 2] * 1e3;
    f->min_ms = t[0] * 1e3;
    f->gflop = flops * 1e-9;
    double gflops = f->gflop / (f->median_ms * 1e-3);
    printf("%-16s %-15s %5d %10.1f %10.1f %8.2f %9.1f %9.2f\n", f->model, f->stage, res, f->median_ms,
           f->min_ms, f->gflop, gflops, f->median_ms * 1e-3 / (f->gflop / b->ratio_peak));
    fflush(stdout);
}

static cs_status time_image(bench *b, cs_model *m, const char *name, int R) {
    int T = cs_model_num_tokens(m, R), D = cs_model_config(m)->embed_dim, B = b->batch;
    size_t n_px = (size_t)B * 3 * R * R;
    float *px = cli_xmalloc(sizeof(float) * n_px), *tok = cli_xmalloc(sizeof(float) * (size_t)B * T * D);
    double *t = cli_xmalloc(sizeof(double) * (size_t)b->runs);
    for (size_t i = 0; i < n_px; i++) px[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    cs_status s = CS_OK;
    for (int mode = 0; mode < 2 && s == CS_OK; mode++) {
        s = cs_encode_images(m, px, B, R, (cs_vision_mode)mode, tok);
        for (int r = 0; r < b->runs && s == CS_OK; r++) {
            double t0 = cs_now();
            s = cs_encode_images(m, px, B, R, (cs_vision_mode)mode, tok);
            t[r] = (cs_now() - t0) / B;
        }
        char stage[32];
        snprintf(stage, sizeof stage, "image %s%s", mode ? "surgery" : "plain", B > 1 ? " /img" : "");
        if (s == CS_OK)
            add_figure(b, name, stage, R, t, b->runs, cs_model_vision_flops(m, R, (cs_vision_mode)mode));
    }
    free(px);
    free(tok);
    free(t);
    return s;
}

/* One class's prompt ensemble: 85 prompts of 12 tokens (start, 10 word
 * pieces, end), about what the method's templates give for a short name. */
static cs_status time_text(bench *b, cs_model *m, const char *name) {
    const cs_config *c = cs_model_config(m);
    int L = c->context_length, P = CS_NUM_DEFAULT_TEMPLATES, len[CS_NUM_DEFAULT_TEMPLATES];
    int32_t *ids = cli_xcalloc((size_t)P * L, sizeof *ids);
    float *feat = cli_xmalloc(sizeof(float) * (size_t)P * c->embed_dim);
    double *t = cli_xmalloc(sizeof(double) * (size_t)b->runs);
    for (int p = 0; p < P; p++) {
        ids[p * L] = CS_SOT_TOKEN;
        for (int k = 1; k <= 10; k++) ids[p * L + k] = 300 + (p * 31 + k * 7) % 20000;
        ids[p * L + 11] = CS_EOT_TOKEN;
        len[p] = 12;
    }
    cs_status s = cs_encode_text(m, ids, P, L, feat);
    for (int r = 0; r < b->runs && s == CS_OK; r++) {
        double t0 = cs_now();
        s = cs_encode_text(m, ids, P, L, feat);
        t[r] = cs_now() - t0;
    }
    if (s == CS_OK) add_figure(b, name, "text 85 prompts", 0, t, b->runs, cs_model_text_flops(m, len, P));
    free(ids);
    free(feat);
    free(t);
    return s;
}

/* A SAM model (synthetic "sam_vit_b", "sam_vit_l", "sam_vit_h"): the image
 * encoder on a 1024x768 photo-sized input (resize and normalization
 * included), then one point through the prompt encoder, decoder and
 * post-processing to masks at the image size (multimask), on that one
 * embedding. */
static cs_status time_sam(bench *b, const char *arch, cs_precision precision) {
    cs_sam *m = NULL;
    cs_status s = cs_sam_synthetic(arch + 4, &m);
    if (s == CS_OK) s = cs_sam_set_precision(m, precision);
    if (s != CS_OK) {
        cs_sam_free(m);
        return s;
    }
    cs_image img = {.width = 1024, .height = 768};
    img.rgb = cli_xmalloc((size_t)img.width * img.height * 3);
    for (size_t i = 0; i < (size_t)img.width * img.height * 3; i++) img.rgb[i] = (uint8_t)((i * 37) % 251);
    double *t = cli_xmalloc(sizeof(double) * (size_t)b->runs);
    cs_sam_embedding e = {0};
    for (int r = 0; r < b->runs && s == CS_OK; r++) {
        cs_sam_embedding_free(&e);
        double t0 = cs_now();
        s = cs_sam_encode(m, &img, &e);
        t[r] = cs_now() - t0;
    }
    if (s == CS_OK) add_figure(b, arch, "sam encoder", 1024, t, b->runs, cs_sam_encoder_flops(m));
    float pt[2] = {500, 375};
    int32_t label = 1;
    cs_sam_prompt p = {1, pt, &label, NULL, NULL, 1};
    cs_sam_result res;
    /* A prompt takes milliseconds: at least 21 of them, so that the median
     * does not swing with one descheduled run as a median of 3 did. */
    int prompt_runs = b->runs < 21 ? 21 : b->runs;
    double *tp = cli_xmalloc(sizeof(double) * (size_t)prompt_runs);
    if (s == CS_OK && (s = cs_sam_predict(m, &e, &p, &res)) == CS_OK) cs_sam_result_free(&res); /* warm-up */
    for (int r = 0; r < prompt_runs && s == CS_OK; r++) {
        double t0 = cs_now();
        s = cs_sam_predict(m, &e, &p, &res);
        tp[r] = cs_now() - t0;
        cs_sam_result_free(&res);
    }
    if (s == CS_OK) add_figure(b, arch, "sam 1 prompt", 1024, tp, prompt_runs, cs_sam_decoder_flops(m, 2));
    free(tp);
    cs_sam_embedding_free(&e);
    free(t);
    free(img.rgb);
    cs_sam_free(m);
    return s;
}

static cs_status bench_model(bench *b, const cli_args *a, cs_model *m, const char *name) {
    const char *res = cli_get(a, "res");
    cs_status s = CS_OK;
    if (!res) {
        s = time_image(b, m, name, cs_model_config(m)->image_resolution);
    } else {
        char *copy = cli_xstrdup(res), *save = NULL;
        int v;
        for (char *r = strtok_r(copy, ",", &save); r && s == CS_OK; r = strtok_r(NULL, ",", &save))
            s = time_image(b, m, name, cli_parse_int(r, strlen(r), 16, 4096, &v) ? v : 0); /* checked already */
        free(copy);
    }
    return s == CS_OK ? time_text(b, m, name) : s;
}

static cs_status write_json(const bench *b, const char *path, double load_ms) {
    cs_atomic_file af;
    cs_status s = cs_atomic_open(&af, path);
    if (s != CS_OK) return s;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(af.f, "{\n  \"threads\": %d,\n  \"gemm_peak_gflops\": %.1f,\n  \"peak_rss_mb\": %.0f,\n",
            cs_get_threads(), b->peak, ru.ru_maxrss / 1024.0);
    if (b->peak_bf16 > 0) fprintf(af.f, "  \"gemm_bf16_peak_gflops\": %.1f,\n", b->peak_bf16);
    fprintf(af.f, "  \"ratio_to\": \"%s\",\n", b->peak_bf16 > 0 ? "gemm_bf16_peak_gflops" : "gemm_peak_gflops");
    if (load_ms >= 0) fprintf(af.f, "  \"load_ms\": %.1f,\n", load_ms);
    fprintf(af.f, "  \"figures\": [\n");
    for (int i = 0; i < b->n; i++) {
        const figure *f = &b->figs[i];
        fprintf(af.f, "    {\"model\": \"%s\", \"stage\": \"%s\", \"resolution\": %d, \"median_ms\": %.2f, "
                      "\"min_ms\": %.2f, \"gflop\": %.3f, \"gflops\": %.1f, \"ratio_to_peak\": %.3f}%s\n",
                f->model, f->stage, f->res, f->median_ms, f->min_ms, f->gflop,
                f->gflop / (f->median_ms * 1e-3), f->median_ms * 1e-3 / (f->gflop / b->ratio_peak),
                i + 1 < b->n ? "," : "");
    }
    fprintf(af.f, "  ]\n}\n");
    return cs_atomic_commit(&af);
}

/* --res: resolutions in 16..4096, before anything runs. */
static int check(const cli_args *a) {
    const char *res = cli_get(a, "res");
    if (!res) return 0;
    char *copy = cli_xstrdup(res), *save = NULL;
    int rc = 0;
    for (char *r = strtok_r(copy, ",", &save); r && !rc; r = strtok_r(NULL, ",", &save)) {
        int v;
        if (!cli_parse_int(r, strlen(r), 16, 4096, &v)) {
            cli_error("--res '%s' is not a resolution in 16..4096", r);
            rc = CLI_EXIT_USAGE;
        }
    }
    free(copy);
    return rc;
}

static int run(cli_ctx *c) {
    const cli_args *a = &c->a;
    int rc;
    bench b = {0};
    cs_precision precision;
    if (!cli_int(a, "runs", 5, 1, 1000, &b.runs) || !cli_int(a, "batch", 1, 1, 64, &b.batch) ||
        !cli_precision(a, &precision))
        return CLI_EXIT_USAGE;
    b.peak = cs_gemm_peak_gflops(2048, 5);
    printf("threads %d, GEMM peak (2048^3 sgemm, median of 5): %.1f GFLOP/s\n", cs_get_threads(), b.peak);
    b.ratio_peak = b.peak;
    if (precision == CS_PRECISION_BF16) {
        /* bf16 figures are held against what the bf16 kernel can do. */
        b.peak_bf16 = b.ratio_peak = cs_gemm_bf16_peak_gflops(2048, 5);
        printf("bf16 GEMM peak (2048^3 through the bf16 linear layer, median of 5): %.1f GFLOP/s "
               "(%.2fx sgemm); \"x peak\" below is against it\n", b.peak_bf16, b.peak_bf16 / b.peak);
    }
    printf("%-16s %-15s %5s %10s %10s %8s %9s %9s\n", "model", "stage", "res", "median ms", "min ms",
           "GFLOP", "GFLOP/s", "x peak");
    double load_ms = -1;
    cs_status s = CS_OK;
    if (cli_has(a, "model")) {
        cs_model *m;
        double t0 = cs_now();
        if ((rc = cli_load_model(a, &m))) {
            free(b.figs);
            return rc;
        }
        load_ms = (cs_now() - t0) * 1e3;
        printf("model load: %.1f ms\n", load_ms);
        s = bench_model(&b, a, m, cli_get(a, "model"));
        cs_model_free(m);
    } else {
        char *archs = cli_xstrdup(cli_get(a, "arch") ? cli_get(a, "arch") : "ViT-B/16"), *save = NULL;
        for (char *arch = strtok_r(archs, ",", &save); arch && s == CS_OK; arch = strtok_r(NULL, ",", &save)) {
            cs_model *m = NULL;
            if (!strncmp(arch, "sam_", 4)) {
                s = time_sam(&b, arch, precision);
                continue;
            }
            s = cs_model_synthetic(arch, &m);
            if (s == CS_OK) s = cs_model_set_precision(m, precision);
            if (s == CS_OK) s = bench_model(&b, a, m, arch);
            cs_model_free(m);
        }
        free(archs);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS %.0f MB\n", ru.ru_maxrss / 1024.0);
    if (s == CS_OK && cli_has(a, "json")) s = write_json(&b, cli_get(a, "json"), load_ms);
    free(b.figs);
    return s == CS_OK ? 0 : cli_fail(s);
}

const cli_command cmd_bench = {
    "bench", "speed against this machine's GEMM peak (synthetic or given models)", CLI_OPTIONS(k_options), k_usage,
    0, check, run,
};
