/* Parity of the tokenizer with openai/CLIP (SimpleTokenizer + clip.tokenize,
 * ftfy 6.3.1): every line of golden/tokenizer/public.jsonl, the golden texts
 * (inputs/text_tokens.npy) and the prompt ensembles (inputs/ensemble_tokens.npy).
 * Also loads the Hugging Face vocabulary of golden/tiny-vit/hf and checks it
 * gives the same ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/fileio.h"
#include "golden.h"
#include "text/tokenizer.h"
#include "test.h"

#define CONTEXT 77

static void print_ids(const char *label, const int32_t *ids, int n) {
    fprintf(stderr, "  %s (%d):", label, n);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* Compare one text with its expected ids; prints the text, both lists and
 * the first differing position on a mismatch. */
static int check_text(cs_tokenizer *tok, const char *text, size_t len, const int32_t *want,
                      int n_want) {
    int32_t got[CONTEXT];
    int n_got = 0;
    cs_status st = cs_tokenize_bytes(tok, text, len, CONTEXT, 1, got, &n_got);
    int ok = st == CS_OK && n_got == n_want && memcmp(got, want, (size_t)n_want * sizeof *got) == 0;
    if (!ok) {
        fprintf(stderr, "MISMATCH: text \"%.*s\" (%zu bytes): %s\n", (int)len, text, len,
                st ? cs_last_error() : "");
        print_ids("want", want, n_want);
        print_ids("got ", got, st ? 0 : n_got);
        int k = 0;
        while (k < n_want && k < n_got && got[k] == want[k]) k++;
        fprintf(stderr, "  first difference at position %d\n", k);
    }
    CHECK(ok);
    return ok;
}

/* The UTF-8 bytes of the JSON string that starts at raw, and their count.
 * cJSON's valuestring ends at a "\u0000" escape, and one corpus line holds
 * one, so the text is decoded here (escapes and surrogate pairs). */
static size_t json_string_bytes(const char *raw, char *out) {
    size_t k = 0;
    const char *p = raw;
    while (*p && *p != '"') {
        if (*p != '\\') {
            out[k++] = *p++;
            continue;
        }
        p++;
        char e = *p++;
        uint32_t c;
        switch (e) {
        case 'n': c = '\n'; break;
        case 't': c = '\t'; break;
        case 'r': c = '\r'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'u': {
            c = (uint32_t)strtoul((char[5]){p[0], p[1], p[2], p[3], 0}, NULL, 16);
            p += 4;
            if (c >= 0xD800 && c <= 0xDBFF && p[0] == '\\' && p[1] == 'u') {
                uint32_t lo = (uint32_t)strtoul((char[5]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
                c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            break;
        }
        default: c = (uint32_t)e; break;
        }
        k += (size_t)utf8_put((uint8_t *)out + k, c);
    }
    return k;
}

static void test_public_corpus(cs_tokenizer *tok) {
    char *data;
    size_t len;
    const char *path = golden_path("golden/tokenizer/public.jsonl");
    CHECK_OK(cs_read_file(path, 0, &data, &len));
    int lines = 0, matched = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *obj = cJSON_Parse(line);
        cJSON *ids = cJSON_GetObjectItemCaseSensitive(obj, "ids");
        const char *raw = strstr(line, "\"text\": \"");
        CHECK(obj && cJSON_IsArray(ids) && raw);
        if (!obj || !cJSON_IsArray(ids) || !raw) {
            cJSON_Delete(obj);
            continue;
        }
        char *text = malloc(strlen(line) + 1);
        size_t n = json_string_bytes(raw + 9, text);
        int32_t want[CONTEXT];
        int n_want = 0;
        cJSON *id;
        cJSON_ArrayForEach(id, ids) if (n_want < CONTEXT) want[n_want++] = id->valueint;
        lines++;
        matched += check_text(tok, text, n, want, n_want);
        free(text);
        cJSON_Delete(obj);
    }
    cs_free(data);
    printf("public.jsonl: %d/%d lines match (%.2f%%)\n", matched, lines,
           lines ? 100.0 * matched / lines : 0.0);
    CHECK(lines > 1000);
}

static void test_golden_texts(cs_tokenizer *tok) {
    cJSON *texts = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(golden_manifest(), "sets"),
                                         "inputs"),
        "texts");
    CHECK(cJSON_IsArray(texts));
    int n = cJSON_GetArraySize(texts);
    const char **list = malloc(sizeof *list * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) list[i] = cJSON_GetArrayItem(texts, i)->valuestring;
    int32_t *ids = malloc(sizeof *ids * (size_t)(n ? n : 1) * CONTEXT);
    CHECK_OK(cs_tokenize_batch(tok, list, n, CONTEXT, 1, ids));
    golden_check_exact("inputs/text_tokens.npy", ids, sizeof *ids * (size_t)n * CONTEXT);
    free(list);
    free(ids);
}

/* template.format(name) for the 85 templates of clip/templates.txt. */
static void test_ensemble(cs_tokenizer *tok) {
    static const char *const classes[] = {"cat", "bench", "potted plant", ""};
    char *data;
    size_t len;
    CHECK_OK(cs_read_file(golden_path("clip/templates.txt"), 0, &data, &len));
    char *templates[128];
    int n_t = 0;
    char *save = NULL;
    for (char *l = strtok_r(data, "\n", &save); l && n_t < 128; l = strtok_r(NULL, "\n", &save))
        templates[n_t++] = l;
    CHECK(n_t == 85);
    int32_t *ids = calloc((size_t)4 * n_t * CONTEXT, sizeof *ids);
    for (int c = 0; c < 4; c++)
        for (int t = 0; t < n_t; t++) {
            char prompt[512];
            const char *brace = strstr(templates[t], "{}");
            snprintf(prompt, sizeof prompt, "%.*s%s%s", (int)(brace - templates[t]), templates[t],
                     classes[c], brace + 2);
            int got;
            CHECK_OK(cs_tokenize(tok, prompt, CONTEXT, 1, ids + ((size_t)c * n_t + t) * CONTEXT, &got));
        }
    golden_check_exact("inputs/ensemble_tokens.npy", ids, sizeof *ids * (size_t)4 * n_t * CONTEXT);
    free(ids);
    cs_free(data);
}

/* The Hugging Face files of the tiny model give the same ids. */
static void test_hf_vocab(cs_tokenizer *openai) {
    cs_tokenizer *hf = NULL;
    CHECK_OK(cs_tokenizer_load(golden_path("golden/tiny-vit/hf"), &hf));
    if (!hf) return;
    static const char *const texts[] = {"a photo of a dog.", "it's a café in Zürich, isn't it?",
                                        "supercalifragilisticexpialidocious", "<|endoftext|>", ""};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int32_t a[CONTEXT], b[CONTEXT];
        int na = 0, nb = 0;
        CHECK_OK(cs_tokenize(openai, texts[i], CONTEXT, 0, a, &na));
        CHECK_OK(cs_tokenize(hf, texts[i], CONTEXT, 0, b, &nb));
        CHECK(na == nb && memcmp(a, b, sizeof *a * (size_t)na) == 0);
    }
    cs_tokenizer_free(hf);
}

int main(void) {
    cs_tokenizer *tok = NULL;
    CHECK_OK(cs_tokenizer_load(golden_path("clip/bpe_simple_vocab_16e6.txt.gz"), &tok));
    if (!tok) return test_finish();
    test_public_corpus(tok);
    test_golden_texts(tok);
    test_ensemble(tok);
    test_hf_vocab(tok);
    cs_tokenizer_free(tok);
    return test_finish();
}
