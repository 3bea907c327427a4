/* cs_segment with name_logits (the mmsegmentation code of SCLIP, ClearCLIP
 * and NACLIP): every name keeps its own logits through the windows,
 * upsampling and PAMR; the label is the class of the best name and the
 * background threshold's softmax runs over all names. Checked against the
 * same image segmented with each name as a class of its own, on the tiny
 * model: whole image and sliding windows, with and without PAMR. */
#include "clip_surgery.h"
#include <stdio.h>
#include <stdlib.h>
#include "golden.h"
#include "test.h"

/* Three classes, two of them with synonyms; the flat set lists the same
 * names one class each, in the same order. */
static const char *k_cat[] = {"cat", "kitten"}, *k_dog[] = {"dog"}, *k_bg[] = {"background", "sky", "wall"};
static const int k_flat_class[6] = {0, 0, 1, 2, 2, 2};

static cs_classes *classes(cs_model *m, int flat) {
    cs_classes *cl = NULL;
    CHECK_OK(cs_classes_new(&cl));
    const char *const *sets[3] = {k_cat, k_dog, k_bg};
    const int sizes[3] = {2, 1, 3};
    for (int c = 0; c < 3; c++)
        for (int i = 0; flat && i < sizes[c]; i++) CHECK_OK(cs_classes_add(cl, &sets[c][i], 1));
    for (int c = 0; !flat && c < 3; c++) CHECK_OK(cs_classes_add(cl, sets[c], sizes[c]));
    CHECK_OK(cs_classes_set_templates(cl, "none"));
    CHECK_OK(cs_classes_embed(cl, m, NULL, NULL));
    return cl;
}

/* Largest softmax(scale x row) over K values. */
static double max_probability(const float *row, int K, float scale) {
    float best = row[0];
    for (int k = 1; k < K; k++) best = row[k] > best ? row[k] : best;
    double sum = 0.0;
    for (int k = 0; k < K; k++) sum += exp((double)scale * ((double)row[k] - best));
    return 1.0 / sum;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void check_options(cs_model *m, cs_classes *syn, cs_classes *flat, const cs_image *img, cs_segment_options o,
                          const char *what) {
    size_t n = (size_t)img->width * img->height;
    /* Per-name logits: the flat set, no threshold. */
    cs_segment_options plain = o;
    plain.bg_thresh = 0.0f;
    plain.bg_class = -1;
    cs_input in = {.image = img};
    cs_segment_result names;
    CHECK_OK(cs_segment_arrays(m, flat, &in, &plain, &names));
    if (!names.logits) return;
    const float scale = 40.0f;
    double *p = malloc(sizeof(double) * n), *sorted = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) sorted[i] = p[i] = max_probability(names.logits + i * 6, 6, scale);
    qsort(sorted, n, sizeof(double), cmp_double);
    /* A threshold with pixels on both sides. */
    o.bg_thresh = (float)sorted[n / 2];
    o.logit_scale = scale;
    o.bg_class = 2;
    o.name_logits = 1;
    uint8_t *got = malloc(n);
    CHECK_OK(cs_segment(m, syn, img, &o, got));
    int same = 1, below = 0;
    for (size_t i = 0; i < n; i++) {
        const float *row = names.logits + i * 6;
        int best = 0;
        for (int k = 1; k < 6; k++)
            if (row[k] > row[best]) best = k;
        int want = p[i] < o.bg_thresh ? 2 : k_flat_class[best];
        below += p[i] < o.bg_thresh;
        same &= got[i] == want;
    }
    CHECK_MSG(same, "%s: labels differ from the per-name computation", what);
    CHECK_MSG(below > 0 && below < (int)n, "%s: the threshold splits nothing", what);
    free(got);
    free(p);
    free(sorted);
    cs_segment_result_free(&names);
}

int main(void) {
    golden_shared_dir();
    cs_model *m = NULL;
    cs_tokenizer *tok = NULL;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/model.safetensors"), &m));
    CHECK_OK(cs_tokenizer_load(golden_path("clip/bpe_simple_vocab_16e6.txt.gz"), &tok));
    if (!m || !tok) return test_finish();
    cs_model_set_tokenizer(m, tok);
    cs_image img;
    char path[1024];
    snprintf(path, sizeof path, "%s/0_image.png", golden_path("data/voc14/images"));
    CHECK_OK(cs_image_load(path, NULL, &img));
    cs_image small;
    CHECK_OK(cs_image_resize(&img, 80, 60, &small));
    cs_image_free(&img);
    cs_classes *syn = classes(m, 0), *flat = classes(m, 1);
    cs_segment_options o = cs_segment_defaults();
    o.method = CS_METHOD_SCLIP;
    check_options(m, syn, flat, &small, o, "whole image");
    o.window = 32;
    o.stride = 16;
    o.short_side = 48;
    check_options(m, syn, flat, &small, o, "windows");
    o.pamr_steps = 2;
    check_options(m, syn, flat, &small, o, "windows + PAMR");
    cs_classes_free(syn);
    cs_classes_free(flat);
    cs_image_free(&small);
    cs_model_free(m);
    return test_finish();
}
