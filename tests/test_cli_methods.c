/* The methods through the command line: `segment --method M --pixels P.npy
 * --class-embeddings E.npy --npy -o DIR` writes tokens, cosine, logits,
 * score and argmax in the golden layouts (leading batch axis dropped), and
 * they match ../shared/golden/methods/tiny-vit; bad methods are refused
 * with one line, exit 2 and nothing written. */
#include <stdlib.h>
#include <sys/stat.h>
#include "cli_run.h"
#include "golden.h"
#include "test.h"

static double g_rel_tol, g_min_cos;

static void load_out(const char *dir, const char *name, cs_array *a) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_OK(cs_npy_read(path, a));
}

static void check_segment_npy(const char *method) {
    char args[4096], dir[512], rel[256];
    snprintf(dir, sizeof dir, "%s/%s", g_tmp, method);
    snprintf(args, sizeof args, "segment --model '%s' --method %s --pixels '%s' --class-embeddings '%s' --npy -o '%s'",
             golden_path("golden/tiny-vit/model.safetensors"), method, golden_path("golden/inputs/chelsea_pre_64.npy"),
             golden_path("golden/tiny-vit/text_ensemble.npy"), dir);
    CHECK_MSG(run_tool("%s", args) == 0, "%s", args);
    static const char *stages[] = {"tokens", "cosine", "logits", "score"};
    static const int ndims[] = {2, 2, 3, 3};
    cs_array score = {0};
    for (int k = 0; k < 4; k++) {
        cs_array a = {0}, g = {0};
        char file[64];
        snprintf(file, sizeof file, "%s.npy", stages[k]);
        snprintf(rel, sizeof rel, "methods/tiny-vit/%s/chelsea_%s_64.npy", method, stages[k]);
        load_out(dir, file, &a);
        golden_load(rel, &g);
        /* The golden layout, its leading batch axis dropped. */
        int lead = g.ndim > ndims[k] ? 1 : 0, same = a.ndim == g.ndim - lead;
        for (int d = 0; same && d < a.ndim; d++) same = a.shape[d] == g.shape[d + lead];
        CHECK_MSG(same, "%s: shape differs from %s", file, rel);
        if (a.data && same) golden_check_floats_tol(rel, a.data, cs_array_numel(&a), g_rel_tol, g_min_cos);
        if (k == 3) score = g;
        else cs_array_free(&g);
        cs_array_free(&a);
    }
    cs_array am = {0};
    load_out(dir, "argmax.npy", &am);
    snprintf(rel, sizeof rel, "methods/tiny-vit/%s/chelsea_argmax_64.npy", method);
    CHECK(am.dtype == CS_DT_I64 && am.ndim == 2 && am.shape[0] == 64 && am.shape[1] == 64);
    if (am.data && score.data && am.dtype == CS_DT_I64) golden_check_argmax(rel, am.data, score.data, 3, 64 * 64);
    cs_array_free(&am);
    cs_array_free(&score);
}

/* Unknown method, a ViT method on a ResNet: one line, exit 2, no output. */
static void check_refusals(void) {
    struct stat st;
    const char *vit = golden_path("golden/tiny-vit/model.safetensors");
    const char *px = golden_path("golden/inputs/chelsea_pre_64.npy");
    const char *emb = golden_path("golden/tiny-vit/text_ensemble.npy");
    CHECK(run_tool("segment --model '%s' --method segclip --pixels '%s' --class-embeddings '%s' --npy -o '%s/u'",
                   vit, px, emb, g_tmp) == 2);
    CHECK(stderr_has("segclip") && stderr_lines() == 1);
    CHECK(stat(tmp_path("u"), &st) != 0);
    CHECK(run_tool("explain --model '%s' --method segclip --pixels '%s' --class-embeddings '%s' -o '%s/e'",
                   vit, px, emb, g_tmp) == 2);
    CHECK(stderr_has("segclip") && stderr_lines() == 1);
    CHECK(stat(tmp_path("e"), &st) != 0);

    const char *rn = golden_path("golden/tiny-rn/model.safetensors");
    cs_array e = {0};
    golden_load("tiny-rn/text_ensemble.npy", &e);
    const char *rn_emb = golden_path("golden/tiny-rn/text_ensemble.npy");
    static const char *cmds[] = {"segment --npy", "explain", "classify --image x.png"};
    for (int i = 0; i < 3; i++) {
        int rc = run_tool("%s --model '%s' --method naclip --pixels '%s' --class-embeddings '%s' -o '%s/rn%d'", cmds[i],
                          rn, golden_path("golden/inputs/chelsea_pre_64.npy"), rn_emb, g_tmp, i);
        if (i == 2) /* classify takes an image; the model is checked before it */
            rc = run_tool("classify --model '%s' --method naclip --image '%s' --class-embeddings '%s'", rn,
                          golden_path("golden/inputs/chelsea.png"), rn_emb);
        CHECK_MSG(rc == 2, "%s: exit %d", cmds[i], rc);
        CHECK(stderr_has("needs a ViT") && stderr_lines() == 1);
        CHECK(stat(tmp_path("rn%d", i), &st) != 0);
    }
    cs_array_free(&e);
}

int main(void) {
    golden_shared_dir();
    tool_tmp_init("cs_cli_methods");
    golden_methods_tolerance(&g_rel_tol, &g_min_cos);
    static const char *methods[] = {"maskclip", "sclip", "clearclip", "naclip", "gem"};
    for (int i = 0; i < 5; i++) check_segment_npy(methods[i]);
    check_refusals();
    return test_finish();
}
