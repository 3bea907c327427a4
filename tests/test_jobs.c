/* The jobs of the public header (cs_load, cs_classes, cs_explain,
 * cs_points, cs_segment, cs_classify, eval's scoring) as a front end calls
 * them: class lists and templates, then the tiny golden model end to end
 * against ../shared/golden, the one synonyms rule, the empty-prompt rule for
 * a single name, batches (classify, explain, windows, segment), and the
 * errors. */
#include <stdlib.h>
#include <unistd.h>
#include "golden.h"
#include "test.h"

static const char *g_tmpdir;

static const char *write_tmp(const char *name, const char *text) {
    static char path[8][512];
    static int slot;
    char *p = path[slot++ % 8];
    snprintf(p, 512, "%s/%s", g_tmpdir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

static void test_class_lists(void) {
    cs_classes *cl;
    CHECK_OK(cs_classes_parse(" person, bench,,sky ", &cl));
    CHECK(cs_classes_count(cl) == 3 && cs_classes_num_names(cl) == 3);
    CHECK(!strcmp(cs_classes_name(cl, 0), "person") && !strcmp(cs_classes_name(cl, 2), "sky"));
    CHECK(cs_classes_find(cl, "bench") == 1 && cs_classes_find(cl, "nope") == -1);
    CHECK(cs_classes_dim(cl) == 0 && cs_classes_embeddings(cl) == NULL);
    CHECK(cs_classes_num_templates(cl) == CS_NUM_DEFAULT_TEMPLATES);
    cs_classes_free(cl);

    char list[600];
    snprintf(list, sizeof list, "@%s", write_tmp("classes.txt", "cat, kitty\n\n  dog \nsky,,cloud,\n"));
    CHECK_OK(cs_classes_parse(list, &cl));
    CHECK(cs_classes_count(cl) == 3 && cs_classes_num_names(cl) == 5);
    static const int want_class[] = {0, 0, 1, 2, 2};
    for (int k = 0; k < 5; k++) CHECK(cs_classes_name_class(cl, k) == want_class[k]);
    CHECK(!strcmp(cs_classes_name_text(cl, 1), "kitty") && !strcmp(cs_classes_name(cl, 2), "sky"));
    CHECK(cs_classes_name_text(cl, 5) == NULL && cs_classes_name_class(cl, -1) == -1);
    CHECK_OK(cs_classes_set_templates(cl, "none"));
    CHECK(cs_classes_num_templates(cl) == 0);
    CHECK_OK(cs_classes_set_templates(cl, write_tmp("t.txt", "a photo of a {}.\n\n  art of {} \n")));
    CHECK(cs_classes_num_templates(cl) == 2);
    CHECK_STATUS(cs_classes_set_templates(cl, write_tmp("bad.txt", "a photo\n")), CS_ERR_ARG);
    CHECK_ERR_HAS("bad.txt");
    CHECK_STATUS(cs_classes_set_templates(cl, write_tmp("empty.txt", "\n \n")), CS_ERR_ARG);
    CHECK(cs_classes_num_templates(cl) == 2); /* a failed change keeps the templates */
    const char *syn[] = {"tree", "bush"};
    CHECK_OK(cs_classes_add(cl, syn, 2));
    CHECK(cs_classes_count(cl) == 4 && cs_classes_name_class(cl, 6) == 3);
    CHECK_STATUS(cs_classes_add(cl, syn, 0), CS_ERR_ARG);
    cs_classes_free(cl);

    CHECK_STATUS(cs_classes_parse(" , ,", &cl), CS_ERR_ARG);
    CHECK(cl == NULL);
    CHECK_STATUS(cs_classes_parse("@/nonexistent/classes.txt", &cl), CS_ERR_MISSING);
    CHECK_ERR_HAS("/nonexistent/classes.txt");

    float emb[6] = {1, 0, 0, 0, 1, 0};
    CHECK_OK(cs_classes_from_embeddings(emb, 2, 3, NULL, &cl));
    CHECK(!strcmp(cs_classes_name(cl, 1), "class1") && cs_classes_dim(cl) == 3);
    CHECK(cs_classes_embeddings(cl)[4] == 1.0f);
    CHECK_STATUS(cs_classes_add(cl, syn, 1), CS_ERR_ARG); /* embeddings fixed the set */
    cs_classes_free(cl);
    CHECK_STATUS(cs_classes_from_embeddings(emb, 0, 3, NULL, &cl), CS_ERR_SHAPE);
}

static void test_eval_scoring(void) {
    /* Two classes and background 0 on a 2x2 mask; one ignored pixel and one
     * unknown label. A 2x2 token grid drawn at 2x2 is its min-max
     * normalized similarity: class 1's map is {0, 1, 0.375, 0.125}. */
    uint8_t mask[4] = {0, 1, CS_IGNORE_LABEL, 7}, present[2];
    cs_mask_classes(mask, 4, 2, 0, present);
    CHECK(present[0] == 0 && present[1] == 1);
    float sim[10] = {9, 9, 0.1f, 0.2f, 0.9f, 1.0f, 0.5f, 0.5f, 0.0f, 0.3f};
    cs_explain_result r = {.n_tokens = 5, .n_classes = 2, .width = 2, .height = 2, .similarity = sim};
    int64_t counts[2][CS_EXPLAIN_STEPS][4] = {{{0}}}, pairs[2] = {0}, unknown = 0;
    CHECK_OK(cs_explain_score(&r, mask, 0, counts, pairs, &unknown));
    CHECK(pairs[0] == 0 && pairs[1] == 1 && unknown == 1);
    float map1[4] = {0.0f, 1.0f, 0.375f, 0.125f};
    int64_t want[CS_EXPLAIN_STEPS][4] = {{0}};
    cs_explain_add(map1, 1, mask, 4, 1, CS_IGNORE_LABEL, want);
    CHECK(!memcmp(counts[1], want, sizeof want));
    cs_explain_result empty = {0};
    CHECK_STATUS(cs_explain_score(&empty, mask, 0, counts, pairs, &unknown), CS_ERR_ARG);

    /* A mask taller than a block of rows (3 x 9000: 2 blocks): the same
     * counts as the whole map scored at once. */
    int W = 3, H = 9000;
    uint8_t *tall = malloc((size_t)W * H);
    float *whole = malloc(sizeof(float) * W * H);
    for (int i = 0; i < W * H; i++) tall[i] = (uint8_t)(i % 7 == 0 ? 1 : i % 11 == 0 ? CS_IGNORE_LABEL : 0);
    r.width = W;
    r.height = H;
    int64_t c2[2][CS_EXPLAIN_STEPS][4] = {{{0}}}, p2[2] = {0}, u2 = 0;
    int64_t w2[CS_EXPLAIN_STEPS][4] = {{0}};
    CHECK_OK(cs_explain_score(&r, tall, 0, c2, p2, &u2));
    CHECK_OK(cs_explain_maps(&r, 1, 1, 0, H, whole));
    cs_explain_add(whole, 1, tall, (size_t)W * H, 1, CS_IGNORE_LABEL, w2);
    CHECK(p2[1] == 1 && p2[0] == 0 && u2 == 0 && !memcmp(c2[1], w2, sizeof w2));
    free(tall);
    free(whole);
}

static cs_classes *golden_classes(void) {
    cs_array e;
    cs_classes *cl = NULL;
    golden_load("tiny-vit/text_ensemble.npy", &e);
    CHECK_OK(cs_classes_from_embeddings(e.data, (int)e.shape[0], (int)e.shape[1], NULL, &cl));
    cs_array_free(&e);
    return cl;
}

static cs_input pixels_input(cs_array *px, const char *image, int R, int w, int h) {
    char rel[128];
    snprintf(rel, sizeof rel, "inputs/%s_pre_%d.npy", image, R);
    golden_load(rel, px);
    return (cs_input){.pixels = px->data, .pixels_resolution = R, .width = w, .height = h};
}

/* explain on golden pixels and given embeddings: tokens, similarity, maps. */
static void test_explain_pixels(cs_model *m) {
    cs_classes *cl = golden_classes();
    cs_array px;
    cs_input in = pixels_input(&px, "synthetic", 64, 300, 200);
    cs_explain_options o = cs_explain_defaults();
    cs_explain_result r;
    CHECK_OK(cs_explain(m, cl, &in, 1, &o, &r));
    CHECK(r.width == 300 && r.height == 200 && r.resolution == 64 && r.n_classes == 3);
    CHECK(r.redundant == CS_REDUNDANT_CLASSES && r.redundant_features == NULL);
    golden_check_floats("tiny-vit/synthetic_cs_tokens_64.npy", r.tokens, (int64_t)r.n_tokens * r.dim);
    golden_check_floats("tiny-vit/synthetic_cs_similarity_64.npy", r.similarity, (int64_t)r.n_tokens * 3);
    golden_check_floats("tiny-vit/synthetic_cs_simmap_64.npy", r.maps, (int64_t)300 * 200 * 3);
    CHECK(!memcmp(r.pixels, px.data, px.nbytes));
    /* A block of the maps (classes 1..2, rows 37..49) is that block of the
     * whole, without maps (no_maps) as with them; a block outside is refused. */
    float block[13][300][2];
    cs_explain_result lean;
    cs_explain_options no_maps = o;
    no_maps.no_maps = 1;
    CHECK_OK(cs_explain(m, cl, &in, 1, &no_maps, &lean));
    CHECK(lean.maps == NULL);
    for (int pass = 0; pass < 2; pass++) {
        CHECK_OK(cs_explain_maps(pass ? &lean : &r, 1, 2, 37, 13, &block[0][0][0]));
        int same = 1;
        for (int y = 0; y < 13; y++)
            for (int x = 0; x < 300; x++)
                for (int c = 0; c < 2; c++) same &= block[y][x][c] == r.maps[((size_t)(37 + y) * 300 + x) * 3 + 1 + c];
        CHECK_MSG(same, "cs_explain_maps block (pass %d) differs from the whole maps", pass);
    }
    CHECK(cs_explain_maps(&lean, 2, 2, 0, 1, &block[0][0][0]) == CS_ERR_ARG);
    CHECK(cs_explain_maps(&lean, 0, 1, 190, 11, &block[0][0][0]) == CS_ERR_ARG);
    cs_explain_result_free(&lean);
    cs_explain_result_free(&r);

    /* The explicit mode: the empty prompt's ensemble through the tokenizer. */
    o.redundant = CS_REDUNDANT_EMPTY;
    CHECK_OK(cs_explain(m, cl, &in, 1, &o, &r));
    CHECK(r.redundant == CS_REDUNDANT_EMPTY && r.redundant_features);
    golden_check_floats("tiny-vit/text_ensemble_empty.npy", r.redundant_features, r.dim);
    golden_check_floats("tiny-vit/synthetic_cs_similarity_redundant_64.npy", r.similarity, (int64_t)r.n_tokens * 3);
    golden_check_floats("tiny-vit/synthetic_cs_simmap_redundant_64.npy", r.maps, (int64_t)300 * 200 * 3);
    cs_explain_result_free(&r);

    o = cs_explain_defaults();
    o.method = CS_METHOD_CLIP;
    CHECK_OK(cs_explain(m, cl, &in, 1, &o, &r));
    golden_check_floats("tiny-vit/synthetic_clip_similarity_64.npy", r.similarity, (int64_t)r.n_tokens * 3);
    golden_check_floats("tiny-vit/synthetic_clip_simmap_64.npy", r.maps, (int64_t)300 * 200 * 3);
    cs_explain_result_free(&r);

    /* Two inputs in one call (one batch through the tower) equal two calls. */
    cs_array px2;
    cs_input two[2] = {in, pixels_input(&px2, "chelsea", 64, 0, 0)};
    cs_explain_result rs[2], one;
    o = cs_explain_defaults();
    CHECK_OK(cs_explain(m, cl, two, 2, &o, rs));
    CHECK_OK(cs_explain(m, cl, &two[1], 1, &o, &one));
    CHECK(rs[1].width == 64 && rs[1].height == 64);
    CHECK(!memcmp(rs[1].maps, one.maps, sizeof(float) * 64 * 64 * 3));
    cs_explain_result_free(&rs[0]);
    cs_explain_result_free(&rs[1]);
    cs_explain_result_free(&one);
    cs_array_free(&px2);
    cs_array_free(&px);
    cs_classes_free(cl);
}

/* explain on the image file with names through the tokenizer: the class
 * embeddings and the maps at the image's size. */
static void test_explain_image(cs_model *m) {
    cs_classes *cl;
    cs_image img;
    CHECK_OK(cs_classes_parse("cat,bench,potted plant", &cl));
    CHECK_OK(cs_image_load(golden_path("golden/inputs/chelsea.png"), NULL, &img));
    cs_input in = {.image = &img};
    cs_explain_options o = cs_explain_defaults();
    o.resolution = 64;
    cs_explain_result r;
    CHECK_OK(cs_explain(m, cl, &in, 1, &o, &r));
    golden_check_floats("tiny-vit/text_ensemble.npy", cs_classes_embeddings(cl), 3 * (int64_t)cs_classes_dim(cl));
    CHECK(r.width == 451 && r.height == 300);
    golden_check_floats("inputs/chelsea_pre_64.npy", r.pixels, 3 * 64 * 64);
    golden_check_floats("tiny-vit/chelsea_cs_simmap_64.npy", r.maps, (int64_t)451 * 300 * 3);
    cs_explain_result_free(&r);
    cs_image_free(&img);
    cs_classes_free(cl);
}

/* Synonyms, one rule: feature surgery over every name, each class its best
 * name per token. Points follow the same similarity. */
static void test_synonyms(cs_model *m) {
    char list[600];
    snprintf(list, sizeof list, "@%s", write_tmp("syn.txt", "cat,bench\npotted plant\n"));
    cs_classes *cl;
    CHECK_OK(cs_classes_parse(list, &cl));
    cs_array px;
    cs_input in = pixels_input(&px, "synthetic", 64, 300, 200);
    cs_explain_result r;
    CHECK_OK(cs_explain(m, cl, &in, 1, NULL, &r));
    CHECK(r.n_classes == 2 && r.redundant == CS_REDUNDANT_CLASSES);
    int T = r.n_tokens, D = r.dim;
    float *per_name = malloc(sizeof(float) * T * 3);
    CHECK_OK(cs_feature_surgery(r.tokens, T, cs_classes_embeddings(cl), 3, D, NULL, per_name));
    int same = 1;
    for (int t = 0; t < T; t++) {
        float best = per_name[t * 3] > per_name[t * 3 + 1] ? per_name[t * 3] : per_name[t * 3 + 1];
        same &= r.similarity[t * 2] == best && r.similarity[t * 2 + 1] == per_name[t * 3 + 2];
    }
    CHECK_MSG(same, "a class's similarity is not its best name's");
    cs_points_result p;
    CHECK_OK(cs_points(m, cl, &in, NULL, &p));
    CHECK(p.n_targets == 2 && p.width == 300 && p.height == 200);
    int32_t pts[2 * 64];
    uint8_t labels[64];
    int n = 0;
    CHECK_OK(cs_similarity_points(r.similarity, T, 2, 0, 300, 200, 0.8f, pts, labels, &n));
    CHECK(n == p.offsets[1] - p.offsets[0] && !memcmp(pts, p.points, sizeof(int32_t) * 2 * n));
    cs_points_result_free(&p);
    cs_explain_result_free(&r);
    free(per_name);
    cs_array_free(&px);
    cs_classes_free(cl);
}

/* A single name: class-weighted redundancy would be zero, the empty prompt
 * serves (each column of explicit surgery depends on its class alone). */
static void test_single_name(cs_model *m) {
    const char *cat = "cat";
    cs_classes *cl;
    CHECK_OK(cs_classes_from_names(&cat, 1, &cl));
    cs_array px, want;
    cs_input in = pixels_input(&px, "synthetic", 64, 300, 200);
    cs_explain_result r;
    CHECK_OK(cs_explain(m, cl, &in, 1, NULL, &r));
    CHECK(r.redundant == CS_REDUNDANT_EMPTY && r.redundant_features);
    golden_load("tiny-vit/synthetic_cs_similarity_redundant_64.npy", &want);
    float *col = malloc(sizeof(float) * r.n_tokens);
    for (int t = 0; t < r.n_tokens; t++) col[t] = ((const float *)want.data)[t * 3];
    double err = 0, scale = 0;
    for (int t = 0; t < r.n_tokens; t++) {
        err = fmax(err, fabs(col[t] - r.similarity[t]));
        scale = fmax(scale, fabs(col[t]));
    }
    CHECK_MSG(err <= 1e-4 * scale, "column 0 of the explicit similarity: relative error %g", err / scale);
    free(col);
    cs_array_free(&want);
    cs_explain_result_free(&r);
    cs_array_free(&px);
    cs_classes_free(cl);
}

static void test_points(cs_model *m) {
    cs_classes *cl = golden_classes();
    cs_array px;
    cs_input in = pixels_input(&px, "synthetic", 64, 300, 200);
    for (int mode = 0; mode < 2; mode++) {
        cs_points_options o = cs_points_defaults();
        o.redundant = mode ? CS_REDUNDANT_EMPTY : CS_REDUNDANT_AUTO;
        cs_points_result p;
        CHECK_OK(cs_points(m, cl, &in, &o, &p));
        CHECK(p.n_targets == 3 && p.redundant == (mode ? CS_REDUNDANT_EMPTY : CS_REDUNDANT_CLASSES));
        for (int c = 0; c < 3 && p.offsets; c++) {
            char rel[128];
            int a = p.offsets[c], n = p.offsets[c + 1] - a;
            snprintf(rel, sizeof rel, "tiny-vit/synthetic_points%s_64_c%d.npy", mode ? "_redundant" : "", c);
            golden_check_exact(rel, p.points + 2 * a, sizeof(int32_t) * 2 * n);
            snprintf(rel, sizeof rel, "tiny-vit/synthetic_labels%s_64_c%d.npy", mode ? "_redundant" : "", c);
            golden_check_exact(rel, p.labels + a, (size_t)n);
        }
        cs_points_result_free(&p);
    }
    cs_points_options o = cs_points_defaults();
    o.combined = 1;
    cs_points_result p;
    CHECK_OK(cs_points(m, cl, &in, &o, &p));
    CHECK(p.n_targets == 1 && p.redundant == CS_REDUNDANT_EMPTY && p.offsets[1] > 0);
    cs_points_result_free(&p);
    o.redundant = CS_REDUNDANT_CLASSES;
    CHECK_STATUS(cs_points(m, cl, &in, &o, &p), CS_ERR_ARG);
    o = cs_points_defaults();
    o.threshold = 1.5f;
    CHECK_STATUS(cs_points(m, cl, &in, &o, &p), CS_ERR_ARG);
    cs_array_free(&px);
    cs_classes_free(cl);
}

/* segment and classify equal the building blocks they are made of. */
static void test_segment_classify(cs_model *m) {
    cs_classes *cl = golden_classes();
    cs_image img, small;
    CHECK_OK(cs_image_load(golden_path("golden/inputs/chelsea.png"), NULL, &img));
    int W = img.width, H = img.height, D = cs_classes_dim(cl);
    uint8_t *labels = malloc((size_t)W * H), *want = malloc((size_t)W * H);
    float *logits = malloc(sizeof(float) * W * H * 3), *pixels = malloc(sizeof(float) * 3 * 64 * 64);
    cs_segment_options so = cs_segment_defaults();
    so.resolution = 64;
    CHECK_OK(cs_segment(m, cl, &img, 1, &so, labels));
    CHECK_OK(cs_image_resize(&img, 64, 64, &small));
    cs_image_normalize(&small, pixels);
    cs_name_set names = {.emb = cs_classes_embeddings(cl), .n_names = 3, .dim = D, .n_classes = 3};
    CHECK_OK(cs_segment_logits(m, pixels, 64, CS_VISION_SURGERY, &names, H, W, logits));
    CHECK_OK(cs_segment_labels(logits, (size_t)W * H, 3, NULL, want));
    CHECK(!memcmp(labels, want, (size_t)W * H));
    /* labels alone come from blocks of rows (LABEL_BLOCK_FLOATS: this image
     * takes several), the background threshold per pixel as on whole logits */
    so.bg_class = 0;
    so.bg_thresh = 0.4f;
    CHECK_OK(cs_segment(m, cl, &img, 1, &so, labels));
    CHECK_OK(cs_segment_labels(logits, (size_t)W * H, 3, &so, want));
    int moved = 0;
    for (size_t i = 0; i < (size_t)W * H; i++) moved += want[i] == 0;
    CHECK_MSG(!memcmp(labels, want, (size_t)W * H) && moved > 0, "thresholded labels differ (%d background)", moved);
    so.bg_class = -1;
    so.bg_thresh = 0.0f;

    so.bg_thresh = 0.5f; /* no background class named */
    CHECK_STATUS(cs_segment(m, cl, &img, 1, &so, labels), CS_ERR_ARG);
    so = cs_segment_defaults();
    so.window = 32;
    so.stride = 48;
    CHECK_STATUS(cs_segment(m, cl, &img, 1, &so, labels), CS_ERR_ARG);

    float scores[3], ref[3], *tokens = malloc(sizeof(float) * cs_model_num_tokens(m, 64) * D);
    cs_classify_options co = cs_classify_defaults();
    co.resolution = 64;
    CHECK_OK(cs_classify(m, cl, &img, 1, &co, scores));
    CHECK_OK(cs_encode_image(m, pixels, 64, CS_VISION_SURGERY, tokens));
    CHECK_OK(cs_multilabel_scores(tokens, cs_model_num_tokens(m, 64), &names, 1, ref));
    CHECK(!memcmp(scores, ref, sizeof ref));
    co.method = CS_METHOD_CLIP;
    CHECK_OK(cs_classify(m, cl, &img, 1, &co, scores));
    CHECK_NEAR(scores[0] + scores[1] + scores[2], 1.0, 1e-5);
    cs_image_free(&small);
    cs_image_free(&img);
    free(labels);
    free(want);
    free(logits);
    free(pixels);
    free(tokens);
    cs_classes_free(cl);
}

/* Flip an image left to right, in place. */
static void mirror(cs_image *img) {
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width / 2; x++)
            for (int c = 0; c < 3; c++) {
                uint8_t *row = img->rgb + (size_t)y * img->width * 3, t = row[x * 3 + c];
                row[x * 3 + c] = row[(img->width - 1 - x) * 3 + c];
                row[(img->width - 1 - x) * 3 + c] = t;
            }
}

/* Several images in one call (one tower pass per 4, 5 images: a pass of 4
 * and one of 1) give each image's results alone, bit for bit: classify
 * (both methods), explain (maps), and the sliding windows of one image
 * (9 windows: passes of 4, 4, 1) against its windows one by one. */
static void test_batches(cs_model *m) {
    enum { N = 5 };
    static const char *files[N] = {"chelsea.png", "rocket.jpg", "chelsea.png", "rocket.jpg", "chelsea.png"};
    cs_classes *cl = golden_classes();
    cs_image img[N];
    for (int i = 0; i < N; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "golden/inputs/%s", files[i]);
        CHECK_OK(cs_image_load(golden_path(rel), NULL, &img[i]));
    }
    /* Different images in the batch: the third a mirror of the first. */
    mirror(&img[2]);
    cs_classify_options co = cs_classify_defaults();
    co.resolution = 64;
    for (int method = 0; method < 2; method++) {
        co.method = method ? CS_METHOD_CLIP : CS_METHOD_SURGERY;
        float all[N * 3], one[3];
        CHECK_OK(cs_classify(m, cl, img, N, &co, all));
        for (int i = 0; i < N; i++) {
            CHECK_OK(cs_classify(m, cl, &img[i], 1, &co, one));
            CHECK_MSG(!memcmp(one, all + 3 * i, sizeof one), "classify: image %d of the batch differs", i);
        }
    }
    CHECK_STATUS(cs_classify(m, cl, img, 0, &co, NULL), CS_ERR_ARG);
    cs_input in[N];
    memset(in, 0, sizeof in);
    for (int i = 0; i < N; i++) in[i].image = &img[i];
    cs_explain_options eo = cs_explain_defaults();
    eo.resolution = 64;
    cs_explain_result all[N], one;
    CHECK_OK(cs_explain(m, cl, in, N, &eo, all));
    for (int i = 0; i < N; i++) {
        CHECK_OK(cs_explain(m, cl, &in[i], 1, &eo, &one));
        CHECK_MSG(!memcmp(one.maps, all[i].maps, sizeof(float) * 3 * img[i].width * img[i].height),
                  "explain: image %d of the batch differs", i);
        cs_explain_result_free(&one);
        cs_explain_result_free(&all[i]);
    }
    /* Sliding windows: 64 x 64 pixels, 32-pixel windows at stride 16. */
    int D = cs_classes_dim(cl);
    cs_name_set names = {.emb = cs_classes_embeddings(cl), .n_names = 3, .dim = D, .n_classes = 3};
    float *px = malloc(sizeof(float) * 3 * 64 * 64), *win = malloc(sizeof(float) * 3 * 32 * 32);
    float *got = malloc(sizeof(float) * 64 * 64 * 3), *sum = calloc(64 * 64 * 3, sizeof(float));
    float *wl = malloc(sizeof(float) * 32 * 32 * 3), *want = malloc(sizeof(float) * 64 * 64 * 3);
    int count[64 * 64] = {0};
    cs_image small;
    CHECK_OK(cs_image_resize(&img[1], 64, 64, &small));
    cs_image_normalize(&small, px);
    CHECK_OK(cs_segment_logits_sliding(m, px, 64, 64, 32, 16, CS_VISION_SURGERY, &names, 64, 64, got));
    for (int y0 = 0; y0 <= 32; y0 += 16)
        for (int x0 = 0; x0 <= 32; x0 += 16) {
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    memcpy(win + (c * 32 + y) * 32, px + (c * 64 + y0 + y) * 64 + x0, sizeof(float) * 32);
            CHECK_OK(cs_segment_logits(m, win, 32, CS_VISION_SURGERY, &names, 32, 32, wl));
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) {
                    for (int c = 0; c < 3; c++) sum[((y0 + y) * 64 + x0 + x) * 3 + c] += wl[(y * 32 + x) * 3 + c];
                    count[(y0 + y) * 64 + x0 + x]++;
                }
        }
    for (int p = 0; p < 64 * 64; p++)
        for (int c = 0; c < 3; c++) sum[p * 3 + c] /= (float)count[p];
    /* The output is the window average itself (64 x 64 to 64 x 64 is a copy). */
    memcpy(want, sum, sizeof(float) * 64 * 64 * 3);
    CHECK_MSG(!memcmp(got, want, sizeof(float) * 64 * 64 * 3), "sliding windows in batches differ from one by one");
    cs_image_free(&small);
    free(px);
    free(win);
    free(got);
    free(sum);
    free(wl);
    free(want);
    for (int i = 0; i < N; i++) cs_image_free(&img[i]);
    cs_classes_free(cl);
}

/* One segment result against another, every array bit for bit. */
static int same_segment(const cs_segment_result *a, const cs_segment_result *b) {
    size_t n = (size_t)a->width * a->height, C = (size_t)a->n_classes;
    if (a->width != b->width || a->height != b->height || a->n_classes != b->n_classes ||
        a->n_tokens != b->n_tokens || a->dim != b->dim || !a->tokens != !b->tokens)
        return 0;
    size_t T = (size_t)a->n_tokens;
    return (!a->tokens || (!memcmp(a->tokens, b->tokens, sizeof(float) * T * a->dim) &&
                           !memcmp(a->cosine, b->cosine, sizeof(float) * (T - 1) * C))) &&
           !memcmp(a->logits, b->logits, sizeof(float) * n * C) &&
           !memcmp(a->scores, b->scores, sizeof(float) * n * C) && !memcmp(a->labels, b->labels, n);
}

/* Segmentation of several inputs in one call gives each input's results
 * alone, bit for bit: cs_segment on 5 images of different sizes (whole
 * images at 64: a pass of 4 and one of 1; sliding windows after a short
 * side of 48, so each image's windows in passes of their own) and
 * cs_segment_arrays on 6 pixel inputs of two resolutions (the first 4 in
 * two passes, 64 and 128, the tail of 2 in one), every array compared. */
static void test_segment_batches(cs_model *m) {
    enum { N = 5, P = 6 };
    static const char *files[N] = {"chelsea.png", "rocket.jpg", "synthetic.png", "rocket.jpg", "chelsea.png"};
    cs_classes *cl = golden_classes();
    cs_image img[N];
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "golden/inputs/%s", files[i]);
        CHECK_OK(cs_image_load(golden_path(rel), NULL, &img[i]));
        total += (size_t)img[i].width * img[i].height;
    }
    /* The fourth a mirror of the second: no two images alike in one pass. */
    mirror(&img[3]);
    CHECK(img[0].width != img[1].width && img[1].width != img[2].width);
    uint8_t *all = malloc(total), *one = malloc(total);
    for (int windows = 0; windows < 2; windows++) {
        cs_segment_options so = cs_segment_defaults();
        so.resolution = 64;
        if (windows) {
            so.window = 32;
            so.short_side = 48;
        }
        CHECK_OK(cs_segment(m, cl, img, N, &so, all));
        size_t off = 0;
        for (int i = 0; i < N; i++) {
            CHECK_OK(cs_segment(m, cl, &img[i], 1, &so, one));
            size_t n = (size_t)img[i].width * img[i].height;
            CHECK_MSG(!memcmp(one, all + off, n), "segment (windows %d): image %d of the batch differs", windows, i);
            off += n;
        }
    }
    CHECK_STATUS(cs_segment(m, cl, img, 0, NULL, all), CS_ERR_ARG);

    static const char *px_files[P] = {"synthetic", "chelsea", "rocket", "synthetic", "chelsea", "rocket"};
    static const int px_res[P] = {64, 128, 64, 128, 64, 64};
    cs_array px[P];
    cs_input in[P];
    for (int i = 0; i < P; i++) in[i] = pixels_input(&px[i], px_files[i], px_res[i], i == 1 ? 90 : 0, i == 1 ? 70 : 0);
    cs_segment_result res[P], alone;
    CHECK_OK(cs_segment_arrays(m, cl, in, P, NULL, res));
    for (int i = 0; i < P; i++) {
        CHECK_OK(cs_segment_arrays(m, cl, &in[i], 1, NULL, &alone));
        CHECK_MSG(same_segment(&res[i], &alone), "segment arrays: input %d of the batch differs", i);
        CHECK(res[i].n_tokens == cs_model_num_tokens(m, px_res[i]));
        cs_segment_result_free(&alone);
        cs_segment_result_free(&res[i]);
    }
    /* A bad input in the tail fails the call and leaves nothing allocated. */
    in[5].pixels_resolution = 60;
    CHECK_STATUS(cs_segment_arrays(m, cl, in, P, NULL, res), CS_ERR_ARG);
    for (int i = 0; i < P; i++) CHECK(res[i].labels == NULL && res[i].tokens == NULL);
    for (int i = 0; i < P; i++) cs_array_free(&px[i]);
    for (int i = 0; i < N; i++) cs_image_free(&img[i]);
    free(all);
    free(one);
    cs_classes_free(cl);
}

static void test_errors(cs_model *m) {
    cs_model *none = NULL;
    CHECK_STATUS(cs_load("/nonexistent/model.safetensors", NULL, &none), CS_ERR_MISSING);
    CHECK(none == NULL);
    CHECK_ERR_HAS("/nonexistent/model.safetensors");
    float emb[5] = {1, 2, 3, 4, 5};
    cs_classes *cl;
    CHECK_OK(cs_classes_from_embeddings(emb, 1, 5, NULL, &cl));
    cs_array px;
    cs_input in = pixels_input(&px, "synthetic", 64, 0, 0);
    cs_explain_result r;
    CHECK_STATUS(cs_explain(m, cl, &in, 1, NULL, &r), CS_ERR_SHAPE); /* 5 dims, the model 64 */
    CHECK_STATUS(cs_explain(m, cl, &in, 0, NULL, &r), CS_ERR_ARG);
    cs_input both = in;
    cs_image img = {0};
    both.image = &img;
    cs_classes_free(cl);
    cl = golden_classes();
    CHECK_STATUS(cs_explain(m, cl, &both, 1, NULL, &r), CS_ERR_ARG);
    cs_explain_options o = cs_explain_defaults();
    o.method = (cs_method)7;
    CHECK_STATUS(cs_explain(m, cl, &in, 1, &o, &r), CS_ERR_ARG);
    in.pixels_resolution = 60; /* not a multiple of the patch size */
    CHECK_STATUS(cs_explain(m, cl, &in, 1, NULL, &r), CS_ERR_ARG);
    /* A model opened without cs_load has no tokenizer for names. */
    cs_model *plain;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/model.safetensors"), &plain));
    cs_classes *names;
    CHECK_OK(cs_classes_parse("cat", &names));
    CHECK_STATUS(cs_classes_embed(names, plain, NULL, NULL), CS_ERR_MISSING);
    cs_tokenizer *tok;
    CHECK_OK(cs_tokenizer_load(golden_path("clip/bpe_simple_vocab_16e6.txt.gz"), &tok));
    cs_model_set_tokenizer(plain, tok);
    CHECK_OK(cs_classes_embed(names, plain, NULL, NULL));
    cs_classes_free(names);
    cs_model_free(plain);
    cs_array_free(&px);
    cs_classes_free(cl);
}

int main(void) {
    char tmpl[] = "/tmp/cs_jobs_XXXXXX";
    g_tmpdir = mkdtemp(tmpl);
    test_class_lists();
    test_eval_scoring();
    golden_shared_dir();
    setenv("OMP_NUM_THREADS", "1", 1);
    cs_model *m = golden_model("tiny-vit");
    test_explain_pixels(m);
    test_explain_image(m);
    test_synonyms(m);
    test_single_name(m);
    test_points(m);
    test_segment_classify(m);
    test_batches(m);
    test_segment_batches(m);
    test_errors(m);
    cs_model_free(m);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmpdir);
    if (system(cmd)) {}
    return test_finish();
}
