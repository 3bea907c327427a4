/* Tokenizer throughput: the 85 prompt templates x 1000 class names, as an
 * open-vocabulary run tokenizes them, with a cold BPE cache (a freshly
 * loaded tokenizer) and a warm one (the same strings again).
 *
 *   bench_tokenizer [VOCAB] [REPEATS]
 *
 * VOCAB defaults to ~/.cache/clip/bpe_simple_vocab_16e6.txt.gz. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"

#define N_CLASSES 1000
#define CONTEXT 77

/* The prompt templates of CLIP's ImageNet ensemble (clip/templates.txt). */
static const char *const k_templates[] = {
    "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.",
    "a photo of the hard to see {}.", "a low resolution photo of the {}.", "a rendering of a {}.",
    "graffiti of a {}.", "a bad photo of the {}.", "a cropped photo of the {}.",
    "a tattoo of a {}.", "the embroidered {}.", "a photo of a hard to see {}.",
    "a bright photo of a {}.", "a photo of a clean {}.", "a photo of a dirty {}.",
    "a dark photo of the {}.", "a drawing of a {}.", "a photo of my {}.", "the plastic {}.",
    "a photo of the cool {}.", "a close-up photo of a {}.", "a black and white photo of the {}.",
    "a painting of the {}.", "a painting of a {}.", "a pixelated photo of the {}.",
    "a sculpture of the {}.", "a bright photo of the {}.", "a cropped photo of a {}.",
    "a plastic {}.", "a photo of the dirty {}.", "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.", "a photo of the {}.", "a good photo of the {}.",
    "a rendering of the {}.", "a {} in a video game.", "a photo of one {}.", "a doodle of a {}.",
    "a close-up photo of the {}.", "a photo of a {}.", "the origami {}.",
    "the {} in a video game.", "a sketch of a {}.", "a doodle of the {}.", "a origami {}.",
    "a low resolution photo of a {}.", "the toy {}.", "a rendition of the {}.",
    "a photo of the clean {}.", "a photo of a large {}.", "a rendition of a {}.",
    "a photo of a nice {}.", "a photo of a weird {}.", "a blurry photo of a {}.", "a cartoon {}.",
    "art of a {}.", "a sketch of the {}.", "a embroidered {}.", "a pixelated photo of a {}.",
    "itap of the {}.", "a jpeg corrupted photo of the {}.", "a good photo of a {}.",
    "a plushie {}.", "a photo of the nice {}.", "a photo of the small {}.",
    "a photo of the weird {}.", "the cartoon {}.", "art of the {}.", "a drawing of the {}.",
    "a photo of the large {}.", "a black and white photo of a {}.", "the plushie {}.",
    "a dark photo of a {}.", "itap of a {}.", "graffiti of the {}.", "a toy {}.",
    "itap of my {}.", "a photo of a cool {}.", "a photo of a small {}.", "a tattoo of the {}.",
    "there is a {} in the scene.", "there is the {} in the scene.", "this is a {} in the scene.",
    "this is the {} in the scene.", "this is one {} in the scene.",
};
#define N_TEMPLATES ((int)(sizeof k_templates / sizeof *k_templates))

/* 1000 plausible class names: 40 modifiers x 25 things, plus the plain things. */
static const char *const k_modifiers[] = {
    "red", "wooden", "golden", "spotted", "striped", "electric", "wild", "giant", "tiny", "arctic",
    "desert", "mountain", "sea", "garden", "kitchen", "rusty", "antique", "folding", "racing",
    "snow", "water", "fire", "stone", "paper", "glass", "leather", "silver", "pygmy", "common",
    "great", "lesser", "royal", "striped-tail", "long-eared", "short-haired", "black-footed",
    "african", "european", "japanese", "mexican",
};
static const char *const k_things[] = {
    "fox", "chair", "retriever", "owl", "lizard", "guitar", "goat", "tortoise", "hamster", "hare",
    "beetle", "kettle", "bicycle", "lantern", "teapot", "spaniel", "salamander", "hummingbird",
    "crab", "scooter", "umbrella", "mushroom", "violin", "sparrow", "cactus",
};

static void make_class_name(int i, char *out, size_t cap) {
    int n_things = (int)(sizeof k_things / sizeof *k_things);
    snprintf(out, cap, "%s %s", k_modifiers[i / n_things], k_things[i % n_things]);
}

static char **make_prompts(int *n) {
    *n = N_TEMPLATES * N_CLASSES;
    char **p = malloc(sizeof *p * (size_t)*n);
    if (!p) return NULL;
    for (int c = 0; c < N_CLASSES; c++) {
        char name[64];
        make_class_name(c, name, sizeof name);
        for (int t = 0; t < N_TEMPLATES; t++) {
            const char *tpl = k_templates[t], *brace = strstr(tpl, "{}");
            size_t len = strlen(tpl) + strlen(name);
            char *s = malloc(len);
            snprintf(s, len, "%.*s%s%s", (int)(brace - tpl), tpl, name, brace + 2);
            p[c * N_TEMPLATES + t] = s;
        }
    }
    return p;
}

/* Seconds to tokenize all prompts once, or a negative value on failure. */
static double run_pass(cs_tokenizer *tok, char **prompts, int n, long *checksum) {
    int32_t ids[CONTEXT];
    int n_ids;
    double t0 = cs_now();
    for (int i = 0; i < n; i++) {
        if (cs_tokenize(tok, prompts[i], CONTEXT, 1, ids, &n_ids) != CS_OK) {
            fprintf(stderr, "bench_tokenizer: %s\n", cs_last_error());
            return -1;
        }
        *checksum += ids[n_ids - 2];
    }
    return cs_now() - t0;
}

int main(int argc, char **argv) {
    char default_path[4096];
    const char *home = getenv("HOME");
    snprintf(default_path, sizeof default_path, "%s/.cache/clip/bpe_simple_vocab_16e6.txt.gz",
             home ? home : "");
    const char *vocab = argc > 1 ? argv[1] : default_path;
    int repeats = argc > 2 ? atoi(argv[2]) : 3;
    if (repeats < 1) repeats = 1;
    int n;
    char **prompts = make_prompts(&n);
    if (!prompts) return 1;
    double best_cold = 1e30, best_warm = 1e30, best_load = 1e30;
    long checksum = 0;
    for (int r = 0; r < repeats; r++) {
        cs_tokenizer *tok = NULL;
        double t0 = cs_now();
        if (cs_tokenizer_load(vocab, &tok) != CS_OK) {
            fprintf(stderr, "bench_tokenizer: %s\n", cs_last_error());
            return 1;
        }
        double load = cs_now() - t0;
        double cold = run_pass(tok, prompts, n, &checksum);
        double warm = run_pass(tok, prompts, n, &checksum);
        cs_tokenizer_free(tok);
        if (cold < 0 || warm < 0) return 1;
        if (load < best_load) best_load = load;
        if (cold < best_cold) best_cold = cold;
        if (warm < best_warm) best_warm = warm;
    }
    printf("tokenizer: %d prompts (%d templates x %d class names), best of %d\n", n, N_TEMPLATES,
           N_CLASSES, repeats);
    printf("  load vocabulary   %8.1f ms\n", best_load * 1e3);
    printf("  cold BPE cache    %8.0f strings/s  (%.3f s)\n", n / best_cold, best_cold);
    printf("  warm BPE cache    %8.0f strings/s  (%.3f s)\n", n / best_warm, best_warm);
    printf("  (checksum %ld)\n", checksum);
    for (int i = 0; i < n; i++) free(prompts[i]);
    free(prompts);
    return 0;
}
