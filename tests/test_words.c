/* Multimodal visualization (docs/words.md): per-token text features against
 * the golden text tower, the caption's pieces and offsets, and the words
 * pipeline against its definition (feature surgery over the normalized
 * token features, per-unit min-max maps, word columns averaged). */
#include <stdlib.h>
#include "golden.h"
#include "model/model.h"
#include "text/tokenizer.h"
#include "test.h"

#define L 77

/* Every row of cs_text_token_features: the EOT row against cs_encode_text
 * (rel err <= 1e-6) and all rows against the golden ln_final output times
 * the model's text_projection. */
static void check_token_features(cs_model *m) {
    CHECK_OK(model_prepare_text(m)); /* m->text.proj is bound at the tower's first run */
    cs_array ids, lnf;
    golden_load("inputs/text_tokens.npy", &ids);
    golden_load("tiny-vit/inter/text_ln_final.npy", &lnf);
    int n_texts = (int)ids.shape[0], W = (int)lnf.shape[2], D = cs_model_config(m)->embed_dim;
    const int32_t *all_ids = ids.data;
    const float *proj = m->text.proj, *ln = lnf.data;
    float *feat = malloc(sizeof(float) * L * D), *want = malloc(sizeof(float) * L * D);
    float *eot = malloc(sizeof(float) * D);
    for (int t = 0; t < n_texts; t++) {
        const int32_t *row = all_ids + (size_t)t * L;
        int n = 0, end = 0;
        for (int i = 1; i < L; i++)
            if (row[i] > row[end]) end = i;
        CHECK_OK(cs_text_token_features(m, row, L, feat, &n));
        CHECK_MSG(n == end + 1, "text %d: %d rows, end token at %d", t, n, end);
        CHECK_OK(cs_encode_text(m, row, 1, L, eot));
        double err = 0, ref = 0;
        for (int d = 0; d < D; d++) {
            err = fmax(err, fabs((double)feat[(size_t)(n - 1) * D + d] - eot[d]));
            ref = fmax(ref, fabs((double)eot[d]));
        }
        CHECK_MSG(err <= 1e-6 * ref, "text %d: end row differs from the text feature by %.3g (max %.3g)",
                  t, err, ref);
        for (int p = 0; p < n; p++)
            for (int d = 0; d < D; d++) {
                double s = 0;
                for (int k = 0; k < W; k++)
                    s += (double)ln[((size_t)t * L + p) * W + k] * proj[(size_t)k * D + d];
                want[(size_t)p * D + d] = (float)s;
            }
        char label[96];
        snprintf(label, sizeof label, "text %d: %d token features vs ln_final @ proj", t, n);
        golden_check_derived("tiny-vit/inter/text_ln_final.npy", label, feat, want, (int64_t)n * D);
    }
    free(feat);
    free(want);
    free(eot);
    cs_array_free(&ids);
    cs_array_free(&lnf);
}

/* The pieces' ids are clip.tokenize's (up to the first end token), for the
 * golden texts and a few of our own. */
static void check_pieces_ids(cs_tokenizer *tok) {
    static const char *texts[] = {"a photo of a dog.", "", "hello <|endoftext|> world", "猫と犬 🐱",
                                  "it's a café in Zürich, isn't it?", "&amp; fish &lt;3", "Ｆｕｌｌｗｉｄｔｈ"};
    for (size_t t = 0; t < sizeof texts / sizeof *texts; t++) {
        int32_t ids[L];
        int n;
        text_pieces tp;
        CHECK_OK(cs_tokenize(tok, texts[t], L, 1, ids, &n));
        CHECK_OK(text_pieces_make(tok, texts[t], L, &tp));
        int end = 0;
        for (int i = 1; i < n; i++)
            if (ids[i] > ids[end]) end = i;
        CHECK_MSG(tp.n == end + 1, "'%s': %d pieces, want %d", texts[t], tp.n, end + 1);
        CHECK(tp.n <= n && !memcmp(tp.ids, ids, sizeof *ids * (size_t)tp.n));
        text_pieces_free(&tp);
    }
}

static void check_piece(const text_pieces *tp, int i, const char *text, int start, int end) {
    CHECK_MSG(i < tp->n && !strcmp(tp->p[i].text, text), "piece %d: '%s', want '%s'", i,
              i < tp->n ? tp->p[i].text : "(none)", text);
    CHECK_MSG(i < tp->n && tp->p[i].start == start && tp->p[i].end == end,
              "piece %d ('%s'): offsets [%d, %d), want [%d, %d)", i, text, i < tp->n ? tp->p[i].start : -9,
              i < tp->n ? tp->p[i].end : -9, start, end);
}

/* Texts, offsets, truncation and literal end tokens. */
static void check_pieces(cs_tokenizer *tok) {
    text_pieces tp;
    CHECK_OK(text_pieces_make(tok, "A  PHOTO of a Dog!!", L, &tp));
    CHECK(tp.n == 8 && !tp.truncated && tp.dropped == 0 && tp.n_words == 6);
    check_piece(&tp, 0, "<|startoftext|>", -1, -1);
    check_piece(&tp, 1, "a", 0, 1);
    check_piece(&tp, 2, "photo", 3, 8);
    check_piece(&tp, 5, "dog", 14, 17);
    check_piece(&tp, 6, "!!", 17, 19);
    check_piece(&tp, 7, "<|endoftext|>", -1, -1);
    text_pieces_free(&tp);

    /* Code points, not bytes; accents kept; the entity maps to its '&'. */
    CHECK_OK(text_pieces_make(tok, "café &amp; Zürich", L, &tp));
    check_piece(&tp, 1, "café", 0, 4);
    check_piece(&tp, 2, "&", 5, 6);
    CHECK(tp.p[tp.n - 2].end == 17);
    text_pieces_free(&tp);

    /* A literal end token ends the text where the tower ends it. */
    CHECK_OK(text_pieces_make(tok, "hello <|endoftext|> world", L, &tp));
    CHECK(tp.n == 3 && tp.dropped == 1 && !tp.truncated);
    check_piece(&tp, 2, "<|endoftext|>", 6, 19);
    text_pieces_free(&tp);

    /* The empty caption: the start and end tokens alone. */
    CHECK_OK(text_pieces_make(tok, "", L, &tp));
    CHECK(tp.n == 2 && tp.n_words == 0 && tp.dropped == 0);
    text_pieces_free(&tp);

    /* 200 words: cut to 77 as clip.tokenize(truncate=True). */
    char long_text[200 * 6 + 1] = "";
    for (int i = 0; i < 200; i++) strcat(long_text, i % 2 ? "tree " : "bird ");
    CHECK_OK(text_pieces_make(tok, long_text, L, &tp));
    CHECK(tp.n == L && tp.truncated && tp.dropped == 200 - 75);
    check_piece(&tp, 75, "bird", 74 * 5, 74 * 5 + 4); /* word 74 */
    CHECK(tp.p[76].word == -1);
    text_pieces_free(&tp);

    /* Byte-level pieces of a character show U+FFFD; the word has it whole. */
    CHECK_OK(text_pieces_make(tok, "🐱", L, &tp));
    CHECK(tp.n >= 3);
    for (int i = 1; i + 1 < tp.n; i++) {
        CHECK(tp.p[i].start == 0 && tp.p[i].end == 1 && tp.p[i].word == 0);
        if (tp.n > 3) CHECK(strstr(tp.p[i].text, "\xEF\xBF\xBD") != NULL);
    }
    text_pieces_free(&tp);

    CHECK_STATUS(text_pieces_make(tok, "bad \xC3\x28 text", L, &tp), CS_ERR_UTF8);
    CHECK_ERR_HAS("invalid UTF-8 at byte 4");
}

/* The pipeline equals its definition built from the public pieces. */
static void check_pipeline(cs_model *m) {
    cs_array px;
    golden_load("inputs/chelsea_pre_64.npy", &px);
    const int R = 64, H = 30, Wd = 45;
    int D = cs_model_config(m)->embed_dim, NT = cs_model_num_tokens(m, R);
    const char *caps[] = {"a cat on a blanket", "", "猫 sleeping", "hello <|endoftext|> world"};
    int n = (int)(sizeof caps / sizeof *caps);
    cs_words_result res[4], wres[4];
    cs_input in = {.pixels = px.data, .pixels_resolution = R, .width = Wd, .height = H};
    cs_words_options wopt = cs_words_defaults();
    wopt.group = CS_WORDS_WORDS;
    CHECK_OK(cs_words(m, &in, caps, n, NULL, res));
    CHECK_OK(cs_words(m, &in, caps, n, &wopt, wres));
    const float *tokens = res[0].image_tokens;
    CHECK(res[0].n_image_tokens == NT && res[0].resolution == R);
    golden_check_floats("tiny-vit/chelsea_cs_tokens_64.npy", tokens, (int64_t)NT * D);
    for (int c = 0; c < n; c++) {
        const cs_words_result *r = &res[c], *w = &wres[c];
        int T = r->n_tokens;
        CHECK(r->n_units == T && r->height == H && r->width == Wd && r->dim == D);
        float *sim = malloc(sizeof(float) * NT * T), *maps = malloc(sizeof(float) * H * Wd * T);
        float *cos = malloc(sizeof(float) * T);
        CHECK_OK(cs_feature_surgery(tokens, NT, r->token_features, T, D, NULL, sim));
        CHECK_OK(cs_similarity_maps(sim, NT, T, H, Wd, maps));
        CHECK_OK(cs_similarity(tokens, 1, r->token_features, T, D, cos));
        CHECK(!memcmp(sim, r->similarity, sizeof(float) * NT * T));
        CHECK(!memcmp(maps, r->maps, sizeof(float) * H * Wd * T));
        for (int t = 0; t < T; t++) {
            double norm = 0;
            for (int d = 0; d < D; d++) norm += (double)r->token_features[t * D + d] * r->token_features[t * D + d];
            CHECK_NEAR(norm, 1.0, 1e-5);
            CHECK(r->units[t].cosine == cos[t]);
        }
        /* The ranking is a permutation by descending cosine; ranks agree. */
        for (int k = 0; k < T; k++) {
            CHECK(r->units[r->ranking[k]].rank == k + 1);
            if (k) CHECK(r->units[r->ranking[k - 1]].cosine >= r->units[r->ranking[k]].cosine);
        }
        for (int k = 0; k < 3; k++)
            if (r->top[k] >= 0) CHECK(r->units[r->top[k]].start >= 0);
        /* Words: the same tokens; columns averaged before the min-max. */
        CHECK(w->n_tokens == T && !memcmp(w->token_features, r->token_features, sizeof(float) * T * D));
        int U = w->n_units, covered = 0;
        for (int u = 0; u < U; u++) {
            const cs_words_unit *wu = &w->units[u];
            CHECK(wu->first_token == covered);
            covered += wu->n_tokens;
            for (int row = 0; row < NT; row += 7) {
                double s = 0;
                for (int k = 0; k < wu->n_tokens; k++) s += sim[(size_t)row * T + wu->first_token + k];
                CHECK_NEAR(w->similarity[(size_t)row * U + u], s / wu->n_tokens, 1e-6);
            }
        }
        CHECK(covered == T);
        float *wmaps = malloc(sizeof(float) * H * Wd * U);
        CHECK_OK(cs_similarity_maps(w->similarity, NT, U, H, Wd, wmaps));
        CHECK(!memcmp(wmaps, w->maps, sizeof(float) * H * Wd * U));
        free(wmaps);
        free(sim);
        free(maps);
        free(cos);
    }
    /* A ViT's surgery token 0 is plain CLIP's image feature: the ranking's
     * cosines are those of the plain model. */
    float *plain = malloc(sizeof(float) * NT * D), *pcos = malloc(sizeof(float) * res[0].n_tokens);
    CHECK_OK(cs_encode_image(m, px.data, R, CS_VISION_PLAIN, plain));
    CHECK_OK(cs_similarity(plain, 1, res[0].token_features, res[0].n_tokens, D, pcos));
    double worst = 0;
    for (int t = 0; t < res[0].n_tokens; t++) worst = fmax(worst, fabs((double)pcos[t] - res[0].units[t].cosine));
    CHECK_MSG(worst <= 1e-6, "cosines differ from the plain model's by %.3g", worst);
    printf("ViT ranking cosines vs the plain model's CLS: max difference %.3g\n", worst);
    free(plain);
    free(pcos);
    /* The empty caption: two tokens, nothing to highlight. */
    CHECK(res[1].n_tokens == 2 && res[1].top[0] == -1);
    /* One word of byte pieces is one unit with the whole character. */
    CHECK(wres[2].n_units == 4 && !strcmp(wres[2].units[1].text, "猫") && wres[2].units[1].n_tokens >= 1);
    CHECK(res[3].n_tokens == 3 && res[3].dropped == 1);
    /* Errors leave nothing allocated (ASan checks) and name the caption. */
    const char *bad[] = {"fine", "bad \xFF"};
    cs_words_result bres[2];
    CHECK_STATUS(cs_words(m, &in, bad, 2, NULL, bres), CS_ERR_UTF8);
    CHECK_ERR_HAS("caption 2");
    cs_words_options odd = {.group = (cs_words_group)7};
    CHECK_STATUS(cs_words(m, &in, bad, 1, &odd, bres), CS_ERR_ARG);
    cs_input none = {0};
    CHECK_STATUS(cs_words(m, &none, bad, 1, NULL, bres), CS_ERR_ARG);
    for (int c = 0; c < n; c++) {
        cs_words_result_free(&res[c]);
        cs_words_result_free(&wres[c]);
    }
    cs_array_free(&px);
}

/* A ResNet: the ranking's CLS feature is the plain model's pooled
 * feature (the surgery pool changes token 0), the maps the surgery tokens'. */
static void check_resnet(void) {
    cs_model *m = golden_model("tiny-rn");
    cs_array px;
    golden_load("inputs/chelsea_pre_128.npy", &px);
    const char *caption = "a cat";
    cs_input in = {.pixels = px.data, .pixels_resolution = 128};
    cs_words_result r;
    CHECK_OK(cs_words(m, &in, &caption, 1, NULL, &r));
    golden_check_floats("tiny-rn/chelsea_cs_tokens_128.npy", r.image_tokens,
                        (int64_t)r.n_image_tokens * r.dim);
    int D = r.dim, T = r.n_tokens;
    float *plain = malloc(sizeof(float) * r.n_image_tokens * D), *cos = malloc(sizeof(float) * T);
    CHECK_OK(cs_encode_image(m, px.data, 128, CS_VISION_PLAIN, plain));
    CHECK_OK(cs_similarity(plain, 1, r.token_features, T, D, cos));
    for (int t = 0; t < T; t++) CHECK(r.units[t].cosine == cos[t]);
    free(plain);
    free(cos);
    cs_words_result_free(&r);
    cs_array_free(&px);
    cs_model_free(m);
}

int main(void) {
    golden_shared_dir();
    cs_model *m = golden_model("tiny-vit");
    cs_tokenizer *tok = NULL; /* a second one: the model owns its own */
    CHECK_OK(cs_tokenizer_load(golden_path("clip/bpe_simple_vocab_16e6.txt.gz"), &tok));
    if (tok) {
        check_token_features(m);
        check_pieces_ids(tok);
        check_pieces(tok);
        check_pipeline(m);
        check_resnet();
    }
    cs_tokenizer_free(tok);
    cs_model_free(m);
    return test_finish();
}
