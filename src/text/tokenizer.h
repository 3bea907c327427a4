/* Layer 3, text: the CLIP tokenizer's pieces (ftfy, html.unescape, BPE), exposed
 * for unit tests; it never touches the model.
 *
 * openai/CLIP cleans a text with ftfy.fix_text, html.unescape (twice), a
 * whitespace collapse and str.lower() before its BPE. Python's semantics are
 * per code point, so the cleaning works on UTF-32 buffers (cs_u32). Every
 * step reads `in` and writes `out` (distinct buffers; out is overwritten). */
#ifndef CS_TEXT_TOKENIZER_H
#define CS_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"

/* ------------------------------------------------------------ UTF-32 text */
typedef struct cs_u32 {
    uint32_t *p;
    size_t n, cap;
} cs_u32;

cs_status u32_reserve(cs_u32 *s, size_t cap);
cs_status u32_push(cs_u32 *s, uint32_t c);
cs_status u32_append(cs_u32 *s, const uint32_t *c, size_t n);
cs_status u32_copy(cs_u32 *dst, const cs_u32 *src);
void u32_swap(cs_u32 *a, cs_u32 *b);
void u32_free(cs_u32 *s);
int u32_equal(const cs_u32 *a, const cs_u32 *b);

/* Strict UTF-8 (as Python's decoder: no overlongs, surrogates or values past
 * U+10FFFF). Returns 1 on success, 0 when the bytes are not valid UTF-8, -1
 * when out of memory (error recorded). `variants` also accepts ftfy's
 * "utf-8-variants": C0 80 for U+0000 and CESU-8 surrogate pairs. out is
 * appended to. */
int utf8_decode(const uint8_t *b, size_t n, int variants, cs_u32 *out);
/* Length of the longest valid strict UTF-8 prefix of b[0..n). */
size_t utf8_valid_prefix(const uint8_t *b, size_t n);
/* Append the UTF-8 encoding of c to buf (at least 4 bytes free); returns the
 * number of bytes written. */
int utf8_put(uint8_t *buf, uint32_t c);
/* UTF-8 of a UTF-32 text (NUL-terminated, cs_free). */
cs_status u32_to_utf8(const cs_u32 *s, char **out, size_t *len);

/* ------------------------------------------------------------ ftfy data */
#define CS_FTFY_N_CODECS 10

/* A single-byte codec: what bytes 0x80-0xFF decode to. Bytes below 0x80 are
 * ASCII, except that "sloppy" codecs decode byte 0x1A as U+FFFD. */
typedef struct cs_ftfy_codec {
    const char *name;
    uint8_t sloppy;
    uint16_t high[128];
} cs_ftfy_codec;

typedef struct cs_entity {
    const char *name;  /* without '&', with the ';' where it has one */
    const char *value; /* UTF-8 */
} cs_entity;

/* Character categories of ftfy's mojibake heuristic (badness.py) and its
 * UTF-8 clue sets (chardata.py). */
enum {
    FT_COMMON = 1u << 0,
    FT_C1 = 1u << 1,
    FT_BAD = 1u << 2,
    FT_LAW = 1u << 3,
    FT_CURRENCY = 1u << 4,
    FT_START_PUNCT = 1u << 5,
    FT_END_PUNCT = 1u << 6,
    FT_NUMERIC = 1u << 7,
    FT_KAOMOJI = 1u << 8,
    FT_UPPER_ACC = 1u << 9,
    FT_LOWER_ACC = 1u << 10,
    FT_UPPER_COMMON = 1u << 11,
    FT_LOWER_COMMON = 1u << 12,
    FT_BOX = 1u << 13,
    FT_UTF8_FIRST2 = 1u << 14,
    FT_UTF8_FIRST3 = 1u << 15,
    FT_UTF8_FIRST4 = 1u << 16,
    FT_UTF8_CONT = 1u << 17,
    FT_UTF8_CONT_STRICT = 1u << 18,
};

typedef struct cs_char_class {
    uint32_t cp;
    uint32_t mask;
} cs_char_class;

/* In ftfy's order of trial: latin-1, sloppy-windows-1252, -1251, -1250,
 * -1253, -1254, -1257, iso-8859-2, macroman, cp437. */
extern const cs_ftfy_codec cs_ftfy_codecs[CS_FTFY_N_CODECS];
extern const cs_entity cs_html5_entities[]; /* html.entities.html5, sorted */
extern const int cs_n_html5_entities;
extern const cs_entity cs_ftfy_upper_entities[]; /* "EACUTE;" -> "É", sorted */
extern const int cs_n_ftfy_upper_entities;
extern const cs_char_class cs_ftfy_char_classes[]; /* sorted by code point */
extern const int cs_n_ftfy_char_classes;

/* The html5 entity named by name[0..n) (code points), or NULL. */
const char *html5_lookup(const uint32_t *name, size_t n);

/* ------------------------------------------------------------ ftfy 6.3.1 */
/* fix_text with the default TextFixerConfig. */
cs_status ftfy_fix_text(const cs_u32 *in, cs_u32 *out);

/* The individual fixers, in the order fix_and_explain applies them. */
cs_status ftfy_unescape_html(const cs_u32 *in, cs_u32 *out);
cs_status ftfy_fix_encoding(const cs_u32 *in, cs_u32 *out);
cs_status ftfy_fix_c1_controls(const cs_u32 *in, cs_u32 *out);
cs_status ftfy_fix_latin_ligatures(const cs_u32 *in, cs_u32 *out);
cs_status ftfy_fix_character_width(const cs_u32 *in, cs_u32 *out);
cs_status ftfy_uncurl_quotes(const cs_u32 *in, cs_u32 *out);
cs_status ftfy_fix_line_breaks(const cs_u32 *in, cs_u32 *out);
cs_status ftfy_fix_surrogates(const cs_u32 *in, cs_u32 *out);
cs_status ftfy_remove_terminal_escapes(const cs_u32 *in, cs_u32 *out);
cs_status ftfy_remove_control_chars(const cs_u32 *in, cs_u32 *out);
cs_status unicode_nfc(const cs_u32 *in, cs_u32 *out);

/* ftfy.badness.is_bad: the text contains a sequence that looks like mojibake.
 * Returns 1/0, or -1 when out of memory. */
int ftfy_is_bad(const uint32_t *t, size_t n);

/* ------------------------------------------------------------ Python text */
cs_status py_html_unescape(const cs_u32 *in, cs_u32 *out); /* html.unescape */
cs_status py_lower(const cs_u32 *in, cs_u32 *out);         /* str.lower */
int py_isspace(uint32_t c);    /* str.isspace (and str.strip) */
int regex_isspace(uint32_t c); /* \s of the `regex` module: White_Space */

/* ------------------------------------------------------------ CLIP steps */
/* whitespace_clean(basic_clean(text)).lower() of openai/CLIP. */
cs_status clip_clean(const cs_u32 *in, cs_u32 *out);
/* re.sub(r'\s+', ' ', text).strip() */
cs_status clip_whitespace_clean(const cs_u32 *in, cs_u32 *out);

/* One match of SimpleTokenizer's pre-tokenization pattern: [start, end). */
typedef struct cs_span {
    size_t start, end;
} cs_span;

/* regex.findall of the pattern on a cleaned text. *spans is mem_alloc'ed. */
cs_status clip_pretokenize(const cs_u32 *text, cs_span **spans, size_t *n_spans);

/* ------------------------------------------------------------ pieces */
/* The ids of one pre-token (its UTF-8 bytes), as the tokenizer encodes it;
 * *ids stays valid until the tokenizer's next call. */
cs_status tokenizer_word_ids(cs_tokenizer *tok, const uint8_t *w, size_t n, const int32_t **ids,
                             size_t *n_ids);
/* The ids of <|startoftext|> and <|endoftext|> in this vocabulary. */
void tokenizer_special_ids(const cs_tokenizer *tok, int32_t *sot, int32_t *eot);
/* SimpleTokenizer's decoder for one id: the bytes it stands for (at most
 * cap), *word_end set when its vocabulary entry ends in </w> (removed). */
cs_status tokenizer_decode_id(cs_tokenizer *tok, int32_t id, uint8_t *bytes, size_t cap, size_t *n,
                              int *word_end);

/* One token of a text and where it came from (multimodal visualization). */
typedef struct text_piece {
    int32_t id;
    char *text;     /* the decoded piece in UTF-8, </w> removed; a character split
                       between pieces shows as U+FFFD in each, as
                       bytes.decode("utf-8", errors="replace") gives it (cs_free) */
    int start, end; /* code points [start, end) of the text it covers; -1 when the
                       start and end tokens, or text the cleaning changed beyond
                       recognition */
    int word;       /* index of its pre-tokenized word (-1: start and end tokens) */
    uint8_t *bytes; /* the bytes it stands for (cs_free) */
    size_t n_bytes;
} text_piece;

typedef struct text_pieces {
    text_piece *p;  /* n pieces: <|startoftext|>, ..., the end token */
    int n;
    int32_t *ids;   /* [n], equal to cs_tokenize(text, context, truncate = 1) up to the
                       first end token */
    int n_words;    /* pre-tokenized words among the pieces */
    int truncated;  /* the ids were cut at the context length (clip.tokenize(truncate=True)) */
    int dropped;    /* BPE tokens of the text left out: cut, or after a literal <|endoftext|> */
} text_pieces;

/* Tokenize text (NUL-terminated UTF-8) with its pieces: the ids as
 * clip.tokenize(text, truncate=True) gives them, read up to the first end
 * token as the text tower reads them. */
/* bytes.decode("utf-8", errors="replace"): NUL-terminated, cs_free. */
char *text_utf8_replace(const uint8_t *b, size_t n);

cs_status text_pieces_make(cs_tokenizer *tok, const char *text, int context, text_pieces *out);
void text_pieces_free(text_pieces *p);

#endif
