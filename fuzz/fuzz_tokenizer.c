/* libFuzzer target: arbitrary bytes through the tokenizer. The text cleaning
 * (ftfy, html.unescape, lower) and the pre-tokenizer always run on the valid
 * UTF-8 prefix; the full cs_tokenize (BPE included) runs when a vocabulary is
 * found: $CLIP_SURGERY_VOCAB, $CLIP_SURGERY_SHARED/clip/..., ../shared/clip/...
 * or ~/.cache/clip/bpe_simple_vocab_16e6.txt.gz. The first byte picks the
 * context length and truncation. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "text/tokenizer.h"

static cs_tokenizer *load_vocab(void) {
    const char *candidates[4];
    char shared[4096], cache[4096];
    int n = 0;
    const char *env = getenv("CLIP_SURGERY_VOCAB");
    if (env) candidates[n++] = env;
    env = getenv("CLIP_SURGERY_SHARED");
    if (env) {
        snprintf(shared, sizeof shared, "%s/clip/bpe_simple_vocab_16e6.txt.gz", env);
        candidates[n++] = shared;
    }
    candidates[n++] = "../shared/clip/bpe_simple_vocab_16e6.txt.gz";
    env = getenv("HOME");
    snprintf(cache, sizeof cache, "%s/.cache/clip/bpe_simple_vocab_16e6.txt.gz", env ? env : "");
    candidates[n++] = cache;
    for (int i = 0; i < n; i++) {
        cs_tokenizer *tok = NULL;
        if (access(candidates[i], R_OK) == 0 && cs_tokenizer_load(candidates[i], &tok) == CS_OK)
            return tok;
    }
    fprintf(stderr, "fuzz_tokenizer: no vocabulary found; fuzzing the text cleaning only\n");
    return NULL;
}

static void clean_and_split(const uint8_t *data, size_t size) {
    cs_u32 raw = {0}, clean = {0};
    size_t valid = utf8_valid_prefix(data, size);
    if (utf8_decode(data, valid, 0, &raw) == 1 && clip_clean(&raw, &clean) == CS_OK) {
        cs_span *spans = NULL;
        size_t n = 0;
        if (clip_pretokenize(&clean, &spans, &n) == CS_OK) {
            for (size_t i = 0; i < n; i++)
                if (spans[i].start >= spans[i].end || spans[i].end > clean.n) abort();
            cs_free(spans);
        }
    }
    u32_free(&raw);
    u32_free(&clean);
}

/* The caption pieces of multimodal visualization (up to the first NUL):
 * ids as clip.tokenize(truncate=True) up to the first end token, offsets
 * inside the text, piece texts valid UTF-8. */
static void pieces(cs_tokenizer *tok, const uint8_t *data, size_t size, int context) {
    if (context < 2) return;
    char *text = strndup((const char *)data, size);
    if (!text) return;
    text_pieces tp;
    cs_status st = text_pieces_make(tok, text, context, &tp);
    if (st == CS_OK) {
        int32_t ids[80];
        int n = 0;
        cs_u32 cps = {0};
        if (cs_tokenize(tok, text, context, 1, ids, &n) != CS_OK || tp.n > n ||
            memcmp(ids, tp.ids, sizeof *ids * (size_t)tp.n) ||
            utf8_decode((const uint8_t *)text, strlen(text), 0, &cps) != 1)
            abort();
        for (int i = 0; i < tp.n; i++) {
            const text_piece *p = &tp.p[i];
            if ((p->start < 0) != (p->end < 0) || (p->start >= 0 && (p->start >= p->end || p->end > (int)cps.n)) ||
                utf8_valid_prefix((const uint8_t *)p->text, strlen(p->text)) != strlen(p->text))
                abort();
        }
        u32_free(&cps);
        text_pieces_free(&tp);
    } else if (st != CS_ERR_UTF8) {
        abort();
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cs_tokenizer *tok;
    static int loaded;
    if (!loaded) {
        tok = load_vocab();
        loaded = 1;
    }
    if (size == 0) return 0;
    int context = 1 + data[0] % 80, truncate = data[0] >= 128;
    data++;
    size--;
    clean_and_split(data, size);
    if (tok) {
        int32_t ids[80];
        int n = -1;
        cs_status st = cs_tokenize_bytes(tok, (const char *)data, size, context, truncate, ids, &n);
        if (st == CS_OK && (n < 2 - (context == 1) || n > context || ids[n - 1] != CS_EOT_TOKEN))
            abort();
        if (st != CS_OK && st != CS_ERR_UTF8 && st != CS_ERR_TOO_LONG) abort();
        pieces(tok, data, size, context);
    }
    return 0;
}
