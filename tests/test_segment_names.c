/* cs_segment with name_logits (the mmsegmentation code of SCLIP, ClearCLIP
 * and NACLIP): every name keeps its own logits through the windows,
 * upsampling and PAMR; the label is the class of the best name and the
 * background threshold's softmax runs over all names. Checked against the
 * same image segmented with each name as a class of its own, on the tiny
 * model: whole image and sliding windows, with and without PAMR, with and
 * without SCLIP's area filter (area_thresh); and the long-side bound of the
 * resize (max_long_side). */
#include "clip_surgery.h"
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
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

/* The labels the configs' code gives from per-name logits [n, 6]: the class
 * of the best name (by class: the maximum over its names), SCLIP's area
 * filter (area > 0), then the threshold over all names at the class kept. */
static void expected_labels(const float *name_logits, size_t n, float scale, float thresh, float area,
                            uint8_t *want) {
    float (*cls)[3] = malloc(sizeof *cls * n);
    size_t count[3] = {0};
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < 3; c++) cls[i][c] = -INFINITY;
        for (int k = 0; k < 6; k++)
            if (name_logits[i * 6 + k] > cls[i][k_flat_class[k]]) cls[i][k_flat_class[k]] = name_logits[i * 6 + k];
        want[i] = 0;
        for (int c = 1; c < 3; c++)
            if (cls[i][c] > cls[i][want[i]]) want[i] = (uint8_t)c;
        count[want[i]]++;
    }
    size_t fg = count[0] + count[1]; /* background is class 2 */
    int keep[3] = {!area || count[0] > area * fg, !area || count[1] > area * fg, 1};
    for (size_t i = 0; i < n; i++) {
        if (!keep[want[i]]) {
            want[i] = 2;
            for (int c = 0; c < 2; c++)
                if (keep[c] && cls[i][c] > cls[i][want[i]]) want[i] = (uint8_t)c;
        }
        double sum = 0.0;
        for (int k = 0; k < 6; k++) sum += exp((double)scale * ((double)name_logits[i * 6 + k] - cls[i][want[i]]));
        if (1.0 / sum < thresh) want[i] = 2;
    }
    free(cls);
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
    CHECK_OK(cs_segment_arrays(m, flat, &in, 1, &plain, &names));
    if (!names.logits) return;
    const float scale = 40.0f;
    double *sorted = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) sorted[i] = max_probability(names.logits + i * 6, 6, scale);
    qsort(sorted, n, sizeof(double), cmp_double);
    /* A threshold with pixels on both sides. */
    o.bg_thresh = (float)sorted[n / 2];
    o.logit_scale = scale;
    o.bg_class = 2;
    o.name_logits = 1;
    uint8_t *got = malloc(n), *want = malloc(n);
    size_t count[3] = {0};
    expected_labels(names.logits, n, scale, 0.0f, 0.0f, want);
    for (size_t i = 0; i < n; i++) count[want[i]]++;
    /* An area threshold that drops the smaller foreground class. */
    size_t small = count[0] < count[1] ? count[0] : count[1];
    float area = (float)((small + 0.5) / (double)(count[0] + count[1]));
    CHECK_MSG(small > 0 && area < 1.0f, "%s: both foreground classes predicted (%zu, %zu)", what, count[0], count[1]);
    for (int with_area = 0; with_area < 2; with_area++) {
        o.area_thresh = with_area ? area : 0.0f;
        CHECK_OK(cs_segment(m, syn, img, 1, &o, got));
        expected_labels(names.logits, n, scale, o.bg_thresh, o.area_thresh, want);
        int same = 1, below = 0, left = 0;
        for (size_t i = 0; i < n; i++) {
            same &= got[i] == want[i];
            below += want[i] == 2;
            left += want[i] == (count[0] < count[1] ? 0 : 1);
        }
        CHECK_MSG(same, "%s%s: labels differ from the per-name computation", what, with_area ? " + area" : "");
        CHECK_MSG(below > 0 && below < (int)n, "%s: the threshold splits nothing", what);
        CHECK_MSG(!with_area || left == 0, "%s: the small class is still there", what);
    }
    free(got);
    free(want);
    free(sorted);
    cs_segment_result_free(&names);
}

int main(void) {
    golden_shared_dir();
    cs_model *m = golden_model("tiny-vit");
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
    /* The long-side bound: 80x60 at short side 48 is 64x48; bounded to 56
     * it is 56x42, the size short side 42 gives. */
    o = cs_segment_defaults();
    o.window = 32;
    o.stride = 16;
    o.short_side = 48;
    o.max_long_side = 56;
    uint8_t *a = malloc(80 * 60), *b = malloc(80 * 60);
    CHECK_OK(cs_segment(m, syn, &small, 1, &o, a));
    o.short_side = 42;
    o.max_long_side = 0;
    CHECK_OK(cs_segment(m, syn, &small, 1, &o, b));
    CHECK_MSG(!memcmp(a, b, 80 * 60), "the long-side bound is not the smaller scale");
    o.short_side = 0;
    o.max_long_side = 56;
    CHECK_STATUS(cs_segment(m, syn, &small, 1, &o, a), CS_ERR_ARG);
    free(a);
    free(b);
    cs_classes_free(syn);
    cs_classes_free(flat);
    cs_image_free(&small);
    cs_model_free(m);
    return test_finish();
}
