/* A text's tokens with the pieces of the text they stand for, for the
 * multimodal visualization (docs/words.md): the ids are clip.tokenize's,
 * each id is decoded as SimpleTokenizer.decode does, and each piece gets the
 * code points of the ORIGINAL text it covers. The tokenizer cleans a text
 * before splitting it (ftfy, HTML entities, whitespace, lower case), so the
 * offsets come from aligning the cleaned text back to the original, one
 * character at a time; where the cleaning changed a character beyond lower
 * case (an entity, a ligature) that character has no place and a piece made
 * of such characters alone has no offsets (-1). */
#include <string.h>
#include <utf8proc.h>
#include "text/tokenizer.h"

/* Original characters a cleaned character may be looked for past (besides
 * whitespace): enough for the text an entity like "&amp;" leaves out. */
#define ALIGN_LOOKAHEAD 8

/* map[i]: the index in raw of cleaned character i, or -1. Greedy, in order. */
static void align_to_original(const cs_u32 *raw, const cs_u32 *clean, int *map) {
    size_t j = 0;
    for (size_t i = 0; i < clean->n; i++) {
        uint32_t c = clean->p[i];
        map[i] = -1;
        if (c == ' ') continue;
        for (size_t k = j, skipped = 0; k < raw->n && skipped <= ALIGN_LOOKAHEAD; k++) {
            uint32_t r = raw->p[k];
            if (r == c || (uint32_t)utf8proc_tolower((utf8proc_int32_t)r) == c) {
                map[i] = (int)k;
                j = k + 1;
                break;
            }
            if (!regex_isspace(r)) skipped++;
        }
    }
}

/* Length of the maximal invalid subpart at the start of b[0..n) (Python's
 * unit of replacement): a lead byte and the continuation bytes that could
 * still follow it, at least 1. */
static size_t invalid_subpart(const uint8_t *b, size_t n) {
    uint8_t lead = b[0];
    int need = lead >= 0xC2 && lead <= 0xDF ? 1 : lead >= 0xE0 && lead <= 0xEF ? 2
             : lead >= 0xF0 && lead <= 0xF4 ? 3 : 0;
    size_t k = 1;
    for (; need && k <= (size_t)need && k < n; k++) {
        uint8_t lo = 0x80, hi = 0xBF;
        if (k == 1 && lead == 0xE0) lo = 0xA0;
        if (k == 1 && lead == 0xED) hi = 0x9F;
        if (k == 1 && lead == 0xF0) lo = 0x90;
        if (k == 1 && lead == 0xF4) hi = 0x8F;
        if (b[k] < lo || b[k] > hi) break;
    }
    return k;
}

char *text_utf8_replace(const uint8_t *b, size_t n) {
    char *out = mem_alloc(n * 3 + 1, 1); /* each invalid byte at most one U+FFFD */
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_valid_prefix(b + i, n - i);
        memcpy(out + o, b + i, k);
        o += k;
        i += k;
        if (i < n) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += invalid_subpart(b + i, n - i);
        }
    }
    out[o] = 0;
    return out;
}

/* Offsets in the original text of the word's characters that hold bytes
 * [b0, b1) of its UTF-8 (chars: the word's cleaned characters, map: their
 * original positions). */
static void piece_offsets(const uint32_t *chars, const int *map, size_t n_chars, size_t b0,
                          size_t b1, int *start, int *end) {
    uint8_t tmp[4];
    *start = *end = -1;
    for (size_t i = 0, at = 0; i < n_chars && at < b1; i++) {
        size_t len = (size_t)utf8_put(tmp, chars[i]);
        if (at + len > b0 && map[i] >= 0) {
            if (*start < 0 || map[i] < *start) *start = map[i];
            if (map[i] + 1 > *end) *end = map[i] + 1;
        }
        at += len;
    }
}

void text_pieces_free(text_pieces *p) {
    for (int i = 0; p->p && i < p->n; i++) {
        cs_free(p->p[i].text);
        cs_free(p->p[i].bytes);
    }
    cs_free(p->p);
    cs_free(p->ids);
    memset(p, 0, sizeof *p);
}

/* Append a piece (capacity checked by the caller). */
static cs_status add_piece(cs_tokenizer *tok, text_pieces *out, int32_t id, int start, int end,
                           int word, size_t *n_bytes) {
    uint8_t bytes[1024]; /* the longest merge the loader accepts */
    int word_end;
    cs_status st = tokenizer_decode_id(tok, id, bytes, sizeof bytes, n_bytes, &word_end);
    if (st) return st;
    text_piece *p = &out->p[out->n];
    p->text = text_utf8_replace(bytes, *n_bytes);
    p->bytes = mem_alloc(*n_bytes + 1, 1);
    if (!p->text || !p->bytes) {
        cs_free(p->text);
        cs_free(p->bytes);
        p->text = NULL;
        p->bytes = NULL;
        return CS_ERR_NOMEM;
    }
    memcpy(p->bytes, bytes, *n_bytes);
    p->n_bytes = *n_bytes;
    p->id = id;
    p->start = start;
    p->end = end;
    p->word = word;
    out->ids[out->n++] = id;
    return CS_OK;
}

/* The pieces of every word of the cleaned text, up to `limit` of them;
 * *n_bpe counts them all (to tell truncation). */
static cs_status add_word_pieces(cs_tokenizer *tok, const cs_u32 *raw, const cs_u32 *clean,
                                 text_pieces *out, int limit, int *n_bpe) {
    cs_span *spans = NULL;
    int *map = mem_alloc(clean->n + 1, sizeof *map);
    uint8_t *word = mem_alloc(clean->n * 4 + 1, 1);
    size_t n_spans = 0;
    cs_status st = map && word ? clip_pretokenize(clean, &spans, &n_spans) : CS_ERR_NOMEM;
    if (st == CS_OK) align_to_original(raw, clean, map);
    for (size_t s = 0; st == CS_OK && s < n_spans; s++) {
        const uint32_t *chars = clean->p + spans[s].start;
        size_t n_chars = spans[s].end - spans[s].start, n = 0;
        for (size_t i = 0; i < n_chars; i++) n += (size_t)utf8_put(word + n, chars[i]);
        const int32_t *wids;
        size_t n_wids;
        /* wids stays valid: decoding reads the vocabulary, never the BPE cache. */
        st = tokenizer_word_ids(tok, word, n, &wids, &n_wids);
        for (size_t k = 0, at = 0; st == CS_OK && k < n_wids; k++, (*n_bpe)++) {
            if (out->n >= limit) continue;
            size_t len;
            int start, end;
            st = add_piece(tok, out, wids[k], -1, -1, (int)s, &len);
            if (st) break;
            piece_offsets(chars, map + spans[s].start, n_chars, at, at + len, &start, &end);
            out->p[out->n - 1].start = start;
            out->p[out->n - 1].end = end;
            at += len;
        }
    }
    cs_free(spans);
    cs_free(map);
    cs_free(word);
    return st;
}

cs_status text_pieces_make(cs_tokenizer *tok, const char *text, int context, text_pieces *out) {
    memset(out, 0, sizeof *out);
    if (!tok || !text) return error_set(CS_ERR_ARG, "text pieces: NULL argument");
    if (context < 2) return error_set(CS_ERR_ARG, "context length %d: must be at least 2", context);
    size_t len = strlen(text), ok = utf8_valid_prefix((const uint8_t *)text, len);
    if (ok < len) return error_set(CS_ERR_UTF8, "text: invalid UTF-8 at byte %zu", ok);
    cs_u32 raw = {0}, clean = {0};
    if (utf8_decode((const uint8_t *)text, len, 0, &raw) < 0) return CS_ERR_NOMEM;
    cs_status st = clip_clean(&raw, &clean);
    out->p = mem_calloc((size_t)context, sizeof *out->p);
    out->ids = mem_calloc((size_t)context, sizeof *out->ids);
    if (st == CS_OK && (!out->p || !out->ids)) st = CS_ERR_NOMEM;
    size_t unused;
    int n_bpe = 0;
    int32_t sot, eot;
    tokenizer_special_ids(tok, &sot, &eot);
    /* clip.tokenize: [SOT] + BPE + [EOT], cut to the context with the last
     * id made the end token. */
    if (st == CS_OK) st = add_piece(tok, out, sot, -1, -1, -1, &unused);
    if (st == CS_OK) st = add_word_pieces(tok, &raw, &clean, out, context - 1, &n_bpe);
    if (st == CS_OK) { /* at most context - 2 BPE ids made it */
        out->truncated = 1 + n_bpe + 1 > context;
        st = add_piece(tok, out, eot, -1, -1, -1, &unused);
    }
    if (st == CS_OK) {
        /* The text tower reads up to the first end token: a literal
         * <|endoftext|> in the text ends it there. */
        int end = 0;
        while (out->ids[end] != eot) end++;
        for (int i = end + 1; i < out->n; i++) {
            cs_free(out->p[i].text);
            cs_free(out->p[i].bytes);
        }
        out->n = end + 1;
        int used = 0;
        for (int i = 1; i < out->n; i++) used += out->p[i].word >= 0;
        out->dropped = n_bpe - used;
        out->n_words = 0;
        for (int i = 0; i < out->n; i++)
            if (out->p[i].word >= 0) out->n_words = out->p[i].word + 1;
    }
    u32_free(&raw);
    u32_free(&clean);
    if (st) text_pieces_free(out);
    return st;
}
