/* Multimodal visualization: which words of a caption CLIP sees where
 * (docs/words.md has the definition and why). The paper shows it without
 * code; the authors describe it as using the text encoder's feature at every
 * token, before CLIP keeps the end token's alone, each token as a class.
 * Our reading, all of it in this file:
 *   - token features: ln_final and text_projection at every position from
 *     the start token to the end token (cs_text_token_features), each
 *     L2-normalized;
 *   - similarity: the class-weighted feature surgery of the image's CLIP
 *     Surgery tokens against those T "classes" (redundancy = the mean over
 *     the caption's tokens); maps: per-column min-max as every other map;
 *   - words: a word's columns (and cosines) averaged before the min-max;
 *   - ranking: cosine of the image's CLS feature (the original path) with
 *     each token feature; the figure highlights the best three that have a
 *     place in the caption (the start and end tokens have none). */
#include <string.h>
#include "jobs.h"
#include "text/tokenizer.h"
#include "ops/ops.h"

void cs_words_result_free(cs_words_result *r) {
    if (!r) return;
    for (int u = 0; r->units && u < r->n_units; u++) cs_free(r->units[u].text);
    cs_free(r->units);
    cs_free(r->ids);
    cs_free(r->token_features);
    cs_free(r->ranking);
    cs_free(r->similarity);
    cs_free(r->maps);
    cs_free(r->image_tokens);
    memset(r, 0, sizeof *r);
}

/* The units: every piece, or the pieces of one word together (the start
 * and end tokens each alone). */
static cs_status make_units(const text_pieces *tp, cs_words_group group, cs_words_result *r) {
    int T = tp->n, U = 0;
    r->units = mem_calloc((size_t)T, sizeof *r->units);
    if (!r->units) return CS_ERR_NOMEM;
    for (int i = 0; i < T; U++) {
        int n = 1;
        if (group == CS_WORDS_WORDS && tp->p[i].word >= 0)
            while (i + n < T && tp->p[i + n].word == tp->p[i].word) n++;
        cs_words_unit *u = &r->units[U];
        r->n_units = U + 1;
        u->first_token = i;
        u->n_tokens = n;
        u->start = u->end = -1;
        size_t bytes = 0;
        for (int k = i; k < i + n; k++) {
            const text_piece *p = &tp->p[k];
            if (p->start >= 0 && (u->start < 0 || p->start < u->start)) u->start = p->start;
            if (p->end > u->end) u->end = p->end;
            bytes += p->n_bytes;
        }
        /* A word's text: its pieces' bytes decoded together, so a character
         * split between two pieces is whole again. */
        uint8_t *joined = mem_alloc(bytes + 1, 1);
        if (!joined) return CS_ERR_NOMEM;
        for (int k = i, at = 0; k < i + n; at += (int)tp->p[k].n_bytes, k++)
            memcpy(joined + at, tp->p[k].bytes, tp->p[k].n_bytes);
        u->text = text_utf8_replace(joined, bytes);
        cs_free(joined);
        if (!u->text) return CS_ERR_NOMEM;
        i += n;
    }
    return CS_OK;
}

/* Average token columns into unit columns: sim [rows, T] -> out [rows, U]. */
static void unit_columns(const float *sim, int rows, int T, const cs_words_result *r, float *out) {
    int U = r->n_units;
    for (int n = 0; n < rows; n++)
        for (int u = 0; u < U; u++) {
            const cs_words_unit *w = &r->units[u];
            float sum = 0.0f;
            for (int k = 0; k < w->n_tokens; k++) sum += sim[(size_t)n * T + w->first_token + k];
            out[(size_t)n * U + u] = sum / (float)w->n_tokens;
        }
}

/* The ranking by cosine (descending; ties keep the lower index first) and
 * the figure's three highlights. Units are few (at most the context
 * length): an insertion sort. */
static cs_status rank_units(cs_words_result *r) {
    int U = r->n_units;
    r->ranking = mem_alloc((size_t)U, sizeof *r->ranking);
    if (!r->ranking) return CS_ERR_NOMEM;
    for (int u = 0; u < U; u++) {
        int k = u;
        for (; k > 0 && r->units[r->ranking[k - 1]].cosine < r->units[u].cosine; k--)
            r->ranking[k] = r->ranking[k - 1];
        r->ranking[k] = u;
    }
    int n_top = 0;
    r->top[0] = r->top[1] = r->top[2] = -1;
    for (int k = 0; k < U; k++) {
        int u = r->ranking[k];
        r->units[u].rank = k + 1;
        if (n_top < 3 && r->units[u].start >= 0) r->top[n_top++] = u;
    }
    return CS_OK;
}

/* One caption against image tokens [1+N, D] and the CLS feature [D]. */
static cs_status words_one(cs_model *m, cs_tokenizer *tok, const float *tokens, int n_tok,
                           const float *cls, const char *caption, int out_h, int out_w,
                           cs_words_group group, cs_words_result *r) {
    const cs_config *cfg = cs_model_config(m);
    int D = cfg->embed_dim, L = cfg->context_length;
    text_pieces tp;
    cs_status s = text_pieces_make(tok, caption, L, &tp);
    if (s != CS_OK) return s;
    int T = tp.n;
    int32_t *padded = mem_calloc((size_t)L, sizeof *padded);
    float *feat = mem_alloc((size_t)L * D, sizeof *feat);
    float *tok_sim = mem_alloc((size_t)n_tok * T, sizeof *tok_sim);
    float *tok_cos = mem_alloc((size_t)T, sizeof *tok_cos);
    r->ids = mem_alloc((size_t)T, sizeof *r->ids);
    if (!padded || !feat || !tok_sim || !tok_cos || !r->ids) s = CS_ERR_NOMEM;
    int got = 0;
    if (s == CS_OK) {
        memcpy(padded, tp.ids, (size_t)T * sizeof *padded);
        memcpy(r->ids, tp.ids, (size_t)T * sizeof *r->ids);
        r->n_tokens = T;
        r->dim = D;
        r->truncated = tp.truncated;
        r->dropped = tp.dropped;
        s = cs_text_token_features(m, padded, L, feat, &got);
    }
    if (s == CS_OK && got != T) /* the tower ends where the pieces end, by construction */
        s = error_set(CS_ERR_ARG, "caption: %d tokens, but the text tower read %d", T, got);
    if (s == CS_OK) {
        op_l2_normalize_rows(feat, T, D);
        r->token_features = feat;
        feat = NULL;
        s = make_units(&tp, group, r);
    }
    if (s == CS_OK) s = cs_feature_surgery(tokens, n_tok, r->token_features, T, D, NULL, tok_sim);
    if (s == CS_OK) s = cs_similarity(cls, 1, r->token_features, T, D, tok_cos);
    int U = r->n_units;
    if (s == CS_OK) {
        r->similarity = mem_alloc((size_t)n_tok * U, sizeof(float));
        r->maps = mem_alloc((size_t)out_h * out_w * U, sizeof(float));
        if (!r->similarity || !r->maps) s = CS_ERR_NOMEM;
    }
    if (s == CS_OK) {
        float cos_u[T];
        unit_columns(tok_sim, n_tok, T, r, r->similarity);
        unit_columns(tok_cos, 1, T, r, cos_u);
        for (int u = 0; u < U; u++) r->units[u].cosine = cos_u[u];
        r->height = out_h;
        r->width = out_w;
        s = cs_similarity_maps(r->similarity, n_tok, U, out_h, out_w, r->maps);
    }
    if (s == CS_OK) s = rank_units(r);
    text_pieces_free(&tp);
    cs_free(padded);
    cs_free(feat);
    cs_free(tok_sim);
    cs_free(tok_cos);
    if (s != CS_OK) cs_words_result_free(r);
    return s;
}

cs_words_options cs_words_defaults(void) {
    return (cs_words_options){.resolution = 0, .group = CS_WORDS_TOKENS};
}

cs_status cs_words(cs_model *m, const cs_input *in, const char *const *captions, int n,
                   const cs_words_options *opts, cs_words_result *results) {
    cs_words_options o = opts ? *opts : cs_words_defaults();
    if (!m || !captions || !results || n < 1)
        return error_set(CS_ERR_ARG, "words: needs a model, an input and at least one caption");
    if (o.group != CS_WORDS_TOKENS && o.group != CS_WORDS_WORDS)
        return error_set(CS_ERR_ARG, "unknown words grouping %d (tokens or words)", (int)o.group);
    for (int i = 0; i < n; i++)
        if (!captions[i]) return error_set(CS_ERR_ARG, "caption %d is NULL", i + 1);
    memset(results, 0, (size_t)n * sizeof *results);
    cs_tokenizer *tok;
    cs_status s = cs_model_tokenizer(m, &tok);
    if (s != CS_OK) return s;
    float *pixels = NULL, *tokens = NULL, *plain = NULL;
    int R, W, H;
    s = input_pixels(m, in, o.resolution, &pixels, &R, &W, &H);
    const cs_config *cfg = cs_model_config(m);
    int D = cfg->embed_dim, n_tok = s == CS_OK ? cs_model_num_tokens(m, R) : 0;
    if (s == CS_OK && n_tok <= 0) s = error_set(CS_ERR_ARG, "input resolution %d does not suit the model", R);
    if (s == CS_OK) {
        tokens = mem_alloc((size_t)n_tok * D, sizeof(float));
        s = tokens ? cs_encode_image(m, pixels, R, CS_VISION_SURGERY, tokens) : CS_ERR_NOMEM;
    }
    /* The CLS feature of the original path: a ViT's surgery token 0 is
     * exactly it; a ResNet's surgery pool changes token 0, so the plain
     * model runs for it. */
    const float *cls = tokens;
    if (s == CS_OK && cfg->vision_kind == CS_VISION_RESNET) {
        plain = mem_alloc((size_t)n_tok * D, sizeof(float));
        s = plain ? cs_encode_image(m, pixels, R, CS_VISION_PLAIN, plain) : CS_ERR_NOMEM;
        cls = plain;
    }
    for (int i = 0; s == CS_OK && i < n; i++) {
        cs_words_result *r = &results[i];
        s = words_one(m, tok, tokens, n_tok, cls, captions[i], H, W, o.group, r);
        if (s == CS_OK) {
            r->resolution = R;
            r->n_image_tokens = n_tok;
            r->image_tokens = mem_alloc((size_t)n_tok * D, sizeof(float));
            if (r->image_tokens) memcpy(r->image_tokens, tokens, (size_t)n_tok * D * sizeof(float));
            else s = CS_ERR_NOMEM;
        } else {
            error_prefix("caption %d", i + 1);
        }
        if (s != CS_OK)
            for (int k = 0; k <= i; k++) cs_words_result_free(&results[k]);
    }
    cs_free(pixels);
    cs_free(tokens);
    cs_free(plain);
    return s;
}
