/* The bf16 and int8 options' parity loss against the fp32 goldens (tiny
 * ViT and tiny ResNet: image tokens plain and surgery, similarity, maps and
 * text features): they are not the parity path, so this test reports the
 * figures and checks a sanity bound per precision and model that catches a
 * broken kernel, not rounding:
 *   bf16 ViT: cosine >= 0.999, max relative error <= 3e-2 (measured: <= 8e-3);
 *   bf16 ResNet: cosine >= 0.999, max relative error <= 5e-2 (measured:
 *         cosine >= 0.99972, relative error <= 3.1e-2 on the surgery
 *         similarity: 17 convolutions with folded batch norms in a row, and
 *         the similarity subtracts nearly equal features; test_conv shows
 *         the bf16 convolution exact up to summation order on bf16-exact
 *         inputs);
 *   int8 ViT: cosine >= 0.999, max relative error <= 8e-2 (measured: cosine
 *         >= 0.99973, relative error <= 2.5e-2, on the plain image tokens:
 *         per-token and per-channel 8-bit steps on a model only 64 wide;
 *         the text tower runs in bf16 under int8, model_prepare_text).
 * The portable kernels run on every CPU (so both paths are tested
 * everywhere), the CPU's own kernels where it has AVX512-BF16 or AMX, and
 * AVX512-VNNI. Packing releases the fp32 weights, so going back to fp32 is
 * refused and leaves the packed model working. */
#include <stdlib.h>
#include "golden.h"
#include "model/model.h"
#include "ops/gemm_bf16.h"
#include "ops/gemm_int8.h"
#include "test.h"

typedef struct bound {
    const char *name;
    double min_cosine, max_relerr;
} bound;

static void report(const bound *b, const char *rel, const float *got, int64_t n) {
    cs_array g;
    golden_load(rel, &g);
    const float *ref = g.data;
    double relerr, cosine;
    golden_error(got, ref, NULL, g.nbytes == (size_t)n * 4 ? n : 0, &relerr, &cosine);
    printf("%s %-44s rel_err %.3g  cosine %.6f\n", b->name, rel, relerr, cosine);
    CHECK_MSG(g.nbytes == (size_t)n * 4 && cosine >= b->min_cosine && relerr <= b->max_relerr, "%s %s",
              b->name, rel);
    cs_array_free(&g);
}

/* The model's precision on the golden inputs of one tiny model (dir
 * "tiny-vit" or "tiny-rn", native resolution R); the kernel is the
 * process-wide choice. */
static void check_precision(cs_model *m, const bound *b, const char *dir, int R, const char *kernel) {
    printf("%s, %s kernel:\n", dir, kernel);
    char rel[128];
    cs_array px, classes, ids;
    snprintf(rel, sizeof rel, "inputs/synthetic_pre_%d.npy", R);
    golden_load(rel, &px);
    snprintf(rel, sizeof rel, "%s/text_ensemble.npy", dir);
    golden_load(rel, &classes);
    golden_load("inputs/text_tokens.npy", &ids);
    int T = cs_model_num_tokens(m, R), D = 64, C = 3;
    float *tok = malloc(sizeof(float) * T * D), *sim = malloc(sizeof(float) * T * C);
    float *maps = malloc(sizeof(float) * 300 * 200 * C), *feat = malloc(sizeof(float) * 10 * D);
    CHECK_OK(cs_encode_image(m, px.data, R, CS_VISION_PLAIN, tok));
    snprintf(rel, sizeof rel, "%s/synthetic_clip_tokens_%d.npy", dir, R);
    if (golden_entry(rel)) report(b, rel, tok, (int64_t)T * D);
    CHECK_OK(cs_encode_image(m, px.data, R, CS_VISION_SURGERY, tok));
    snprintf(rel, sizeof rel, "%s/synthetic_cs_tokens_%d.npy", dir, R);
    report(b, rel, tok, (int64_t)T * D);
    CHECK_OK(cs_feature_surgery(tok, T, classes.data, C, D, NULL, sim));
    snprintf(rel, sizeof rel, "%s/synthetic_cs_similarity_%d.npy", dir, R);
    report(b, rel, sim, (int64_t)T * C);
    CHECK_OK(cs_similarity_maps(sim, T, C, 200, 300, maps));
    snprintf(rel, sizeof rel, "%s/synthetic_cs_simmap_%d.npy", dir, R);
    report(b, rel, maps, (int64_t)300 * 200 * C);
    CHECK_OK(cs_encode_text(m, ids.data, 10, 77, feat));
    snprintf(rel, sizeof rel, "%s/text_features.npy", dir);
    report(b, rel, feat, 10 * D);
    free(tok);
    free(sim);
    free(maps);
    free(feat);
    cs_array_free(&px);
    cs_array_free(&classes);
    cs_array_free(&ids);
}

/* Load a tiny model and set the precision: the linear weights it packs
 * when a tower first runs are never widened (4 fewer table-owned buffers
 * per text block than in fp32, the model's pointers NULL). Then the
 * portable kernel on every CPU and the CPU's own where it has one; going
 * back to fp32 (or on to another precision) is refused and leaves the
 * packed model working. */
static void check_model(const char *dir, int R, cs_precision p, const bound *b) {
    char path[128];
    snprintf(path, sizeof path, "golden/%s/model.safetensors", dir);
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path(path), &m));
    if (!m) return;
    /* The same model in fp32, its text tower run: every weight of the F16
     * golden file widened into a table-owned buffer. */
    cs_model *ref;
    CHECK_OK(cs_model_load(golden_path(path), &ref));
    if (ref) ref->fp32_openblas = 1; /* (with oneDNN, its fp32 linear weights would be packed, not kept) */
    CHECK_OK(model_prepare_text(ref));
    int owned = m->table.n_owned;
    CHECK_OK(cs_model_set_precision(m, p));
    const cs_block *blk = &m->text.tr.blocks[0];
    /* packed when the tower first runs, then with no fp32 copy: the four
     * linear weights per block are never widened into the table */
    int vit = cs_model_config(m)->vision_kind == CS_VISION_VIT; /* a ResNet packs at once */
    CHECK(blk->qkv_w == NULL && !blk->qkv16.data && !blk->qkv8.data && (!vit || m->table.n_owned == owned));
    CHECK_OK(model_prepare_text(m));
    CHECK(blk->qkv_w == NULL && blk->qkv16.data && blk->fc16.data); /* bf16 under int8 too */
    int layers = cs_model_config(m)->text_layers;
    CHECK(!vit || ref->table.n_owned - m->table.n_owned == 4 * layers);
    printf("%s %s: %d table-owned buffers in fp32, %d packed (%d text layers)\n", dir, b->name,
           ref->table.n_owned, m->table.n_owned, layers);
    cs_model_free(ref);
    int bf16 = p == CS_PRECISION_BF16;
    if (bf16) op_bf16_force_path(OP_BF16_PATH_PORTABLE);
    else op_int8_force_path(OP_INT8_PATH_PORTABLE);
    check_precision(m, b, dir, R, "portable");
    op_bf16_force_path(OP_BF16_PATH_AUTO);
    op_int8_force_path(OP_INT8_PATH_AUTO);
    if (bf16 && op_bf16_supported())
        check_precision(m, b, dir, R, op_bf16_amx_supported() ? "AMX-BF16" : "AVX512-BF16");
    else if (bf16 && op_bf16_avx2_supported())
        check_precision(m, b, dir, R, "AVX2");
    else if (!bf16 && op_int8_supported())
        check_precision(m, b, dir, R, "AVX512-VNNI");
    else
        printf("no %s on this CPU: the portable kernel is the %s path\n", bf16 ? "AVX512-BF16 or AVX2" : "AVX512-VNNI",
               b->name);
    CHECK_STATUS(cs_model_set_precision(m, CS_PRECISION_FP32), CS_ERR_UNSUPPORTED);
    CHECK_STATUS(cs_model_set_precision(m, bf16 ? CS_PRECISION_INT8 : CS_PRECISION_BF16), CS_ERR_UNSUPPORTED);
    CHECK_OK(cs_model_set_precision(m, p));
    check_precision(m, b, dir, R, "after the refused switches, default");
    cs_model_free(m);
}

int main(void) {
    static const bound k_bf16 = {"bf16", 0.999, 3e-2}, k_bf16_rn = {"bf16", 0.999, 5e-2};
    static const bound k_int8 = {"int8", 0.999, 8e-2};
    /* Which precisions this CPU runs on a kernel of its own (the CLI notes the others). */
    CHECK(cs_precision_fast(CS_PRECISION_FP32) == 1);
    CHECK(cs_precision_fast(CS_PRECISION_BF16) == (op_bf16_supported() || op_bf16_avx2_supported()));
    CHECK(cs_precision_fast(CS_PRECISION_INT8) == op_int8_supported());
    CHECK(cs_precision_fast((cs_precision)7) == 0);
    check_model("tiny-vit", 64, CS_PRECISION_BF16, &k_bf16);
    check_model("tiny-vit", 64, CS_PRECISION_INT8, &k_int8);
    check_model("tiny-rn", 128, CS_PRECISION_BF16, &k_bf16_rn);
    return test_finish();
}
