/* Unit tests of the tokenizer's pieces with hand-checked cases: each ftfy
 * fixer (most cases are the examples of ftfy's own documentation), Python's
 * html.unescape and str.lower, CLIP's whitespace cleaning, each alternative
 * of the pre-tokenization pattern, and the library's error paths. The
 * vocabulary-dependent checks skip when the shared folder is absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "golden.h"
#include "text/tokenizer.h"
#include "test.h"

typedef cs_status (*step_fn)(const cs_u32 *in, cs_u32 *out);

static cs_u32 from_utf8(const char *s) {
    cs_u32 t = {0};
    CHECK(utf8_decode((const uint8_t *)s, strlen(s), 0, &t) == 1);
    return t;
}

static void check_u32(const char *what, const char *in, const cs_u32 *got, const char *want) {
    char *g = NULL;
    size_t len = 0;
    CHECK_OK(u32_to_utf8(got, &g, &len));
    CHECK_MSG(g && strcmp(g, want) == 0, "%s(\"%s\") = \"%s\", want \"%s\"", what, in, g ? g : "",
              want);
    cs_free(g);
}

#define STEP(fn, in, want) check_step(#fn, fn, in, want)
static void check_step(const char *name, step_fn fn, const char *in, const char *want) {
    cs_u32 a = from_utf8(in), out = {0};
    CHECK_OK(fn(&a, &out));
    check_u32(name, in, &out, want);
    u32_free(&a);
    u32_free(&out);
}

static void test_ftfy_unescape_html(void) {
    STEP(ftfy_unescape_html, "&lt;tag&gt;", "<tag>");
    STEP(ftfy_unescape_html, "P&eacute;rez", "P\u00e9rez");
    STEP(ftfy_unescape_html, "P&EACUTE;REZ", "P\u00c9REZ");            /* all-caps names */
    STEP(ftfy_unescape_html, "BUNDESSTRA&SZLIG;E", "BUNDESSTRASSE");   /* "ß".upper() */
    STEP(ftfy_unescape_html, "&ntilde; &Ntilde; &NTILDE; &nTILDE;", "\u00f1 \u00d1 \u00d1 &nTILDE;");
    STEP(ftfy_unescape_html, "&#x2019;&#65;", "\u2019A");
    STEP(ftfy_unescape_html, "&#65abc;", "&#65abc;"); /* html.unescape leaves the ';' */
    STEP(ftfy_unescape_html, "a&#1;b", "ab");         /* invalid code points vanish */
    STEP(ftfy_unescape_html, "&amp", "&amp");         /* no ';': not ftfy's business */
    STEP(ftfy_unescape_html, "&#;&x;&unknown;", "&#;&x;&unknown;");
    STEP(ftfy_unescape_html, "&aaaaaaaaaaaaaaaaaaaaaaaaa;", "&aaaaaaaaaaaaaaaaaaaaaaaaa;"); /* 25 */
}

static void test_ftfy_fix_encoding(void) {
    STEP(ftfy_fix_encoding, "s\u00c3\u00b3", "s\u00f3");                   /* latin-1 */
    STEP(ftfy_fix_encoding, "sch\u00c3\u00b6n", "sch\u00f6n");
    STEP(ftfy_fix_encoding, "voil\u00c3 le travail", "voil\u00e0 le travail"); /* restore A0 */
    STEP(ftfy_fix_encoding, "\u00e2\u0153\u201d No problems", "\u2714 No problems"); /* 1252 */
    STEP(ftfy_fix_encoding, "This text is fine already :\u00fe", "This text is fine already :\u00fe");
    STEP(ftfy_fix_encoding, "caf\u00e9", "caf\u00e9");
    STEP(ftfy_fix_encoding, "&ATILDE;&SUP3;", "&ATILDE;&SUP3;");
    /* lossy: U+FFFD stands for a lost byte */
    STEP(ftfy_fix_encoding, "\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd",
         "\u201c like this \ufffd");
    /* Latin-1 meant as Windows-1252 (U+0085 is "..." there) */
    STEP(ftfy_fix_encoding, "This text was never UTF-8 at all\xc2\x85",
         "This text was never UTF-8 at all\u2026");
    /* two layers of mojibake */
    STEP(ftfy_fix_encoding, "\u00c3\u0192\u00c2\u00a9", "\u00e9");
    /* mojibake inside text in another encoding (decode_inconsistent_utf8) */
    STEP(ftfy_fix_encoding, "\u2014 caf\u00c3\u00a9 \u043c\u0438\u0440", "\u2014 caf\u00e9 \u043c\u0438\u0440");
}

static void test_ftfy_is_bad(void) {
    const char *bad[] = {"caf\u00c3\u00a9", "\u00e2\u20ac\u201d", "\xc2\x85", "\u00c3 la"};
    const char *good[] = {"caf\u00e9", "na\u00efve", "\u00a9 2024", "\u65e5\u672c\u8a9e", "\u2014"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cs_u32 t = from_utf8(bad[i]);
        CHECK_MSG(ftfy_is_bad(t.p, t.n) == 1, "is_bad(\"%s\")", bad[i]);
        u32_free(&t);
    }
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        cs_u32 t = from_utf8(good[i]);
        CHECK_MSG(ftfy_is_bad(t.p, t.n) == 0, "!is_bad(\"%s\")", good[i]);
        u32_free(&t);
    }
}

static void test_ftfy_simple_fixers(void) {
    STEP(ftfy_fix_c1_controls, "\xc2\x80 \xc2\x85 \xc2\x81", "\u20ac \u2026 \xc2\x81");
    STEP(ftfy_fix_latin_ligatures, "\ufb02u\ufb03e\ufb06", "fluffiest");
    STEP(ftfy_fix_latin_ligatures, "\u0132 \u01c6 \u0149 \ufb05", "IJ d\u017e \u02bcn \u017ft");
    STEP(ftfy_fix_character_width, "\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33",
         "LOUD NOISES");
    STEP(ftfy_fix_character_width, "\uff35\uff80\uff70\uff9d", "U\u30bf\u30fc\u30f3");
    STEP(ftfy_uncurl_quotes, "\u201chere\u2019s a test\u201d \u02bc\u201b\u201f",
         "\"here's a test\" ''\"");
    STEP(ftfy_fix_line_breaks, "a\r\nb\rc\u2028d\u2029e\xc2\x85" "f\r\r\n", "a\nb\nc\nd\ne\nf\n\n");
    STEP(ftfy_remove_terminal_escapes, "\x1b[36;44mI'm blue\x1b[0m \x1b[x\x1b[1;", "I'm blue \x1b[1;");
    STEP(ftfy_remove_control_chars, "a\x01" "b\x7f" "c\ufeffd\u200de\t\n\r\x0c", "abcd\u200de\t\n\r\x0c");
    STEP(unicode_nfc, "e\u0301 \u1100\u1161 \u212b", "\u00e9 \uac00 \u00c5");
}

static void test_ftfy_surrogates(void) {
    cs_u32 in = {0}, out = {0};
    uint32_t s[] = {0xD83D, 0xDCA9, 'x', 0xDCA9, 0xD83D};
    CHECK_OK(u32_append(&in, s, 5));
    CHECK_OK(ftfy_fix_surrogates(&in, &out));
    uint32_t want[] = {0x1F4A9, 'x', 0xFFFD, 0xFFFD};
    CHECK(out.n == 4 && memcmp(out.p, want, sizeof want) == 0);
    u32_free(&in);
    u32_free(&out);
}

static void test_ftfy_fix_text(void) {
    STEP(ftfy_fix_text, "&macr;\\_(\u00e3\xc2\x83\xc2\x84)_/&macr;", "\u00af\\_(\u30c4)_/\u00af");
    STEP(ftfy_fix_text, "<em>HTML entities &lt;3</em>", "<em>HTML entities &lt;3</em>");
    STEP(ftfy_fix_text, "\ufeffParty like\nit&rsquo;s 1999!", "Party like\nit's 1999!");
    STEP(ftfy_fix_text, "Broken text&hellip; it&#x2019;s \ufb02ubberi\ufb01c!",
         "Broken text\u2026 it's flubberific!");
    STEP(ftfy_fix_text, "&amp;amp;amp;", "&");                 /* repeated until stable */
    STEP(ftfy_fix_text, "a &lt; b\n&lt; <\n&lt;", "a < b\n&lt; <\n&lt;"); /* '<' stops it */
}

static void test_python_text(void) {
    STEP(py_html_unescape, "&amp &ampx &amp;amp;", "& &x &amp;");
    STEP(py_html_unescape, "&#0;&#x80;&#1;&#xD800;&#12345678901;&#13;", "\ufffd\u20ac\ufffd\ufffd\r");
    STEP(py_html_unescape, "&notit; &#; AT&T &#x;", "\u00acit; &#; AT&T &#x;");
    STEP(py_html_unescape, "&CounterClockwiseContourIntegral;", "\u2233");
    STEP(py_lower, "ABC \u00c9 \u0130", "abc \u00e9 i\u0307");
    STEP(py_lower, "\u039f\u0394\u039f\u03a3 \u03a3\u0391 \u03a3", "\u03bf\u03b4\u03bf\u03c2 \u03c3\u03b1 \u03c3");
    STEP(py_lower, "\u0391\u03a3. \u0391\u03a3'\u0391 \u00aa\u03a3", "\u03b1\u03c2. \u03b1\u03c3'\u03b1 \u00aa\u03c2");
    STEP(clip_whitespace_clean, "  a \t\n b\u3000c\u00a0 ", "a b c");
    STEP(clip_whitespace_clean, "\x1c" "a\x1c" "b\x1c", "a\x1c" "b"); /* \s lacks U+001C, strip has it */
    STEP(clip_whitespace_clean, "a\u200bb\u180ec", "a\u200bb\u180ec");
    CHECK(py_isspace(0x1C) && !regex_isspace(0x1C) && regex_isspace(0x85));
    STEP(clip_clean, "  A PHOTO OF A CAT!!  ", "a photo of a cat!!");
    STEP(clip_clean, "&amp;lt;b&amp;gt;", "<b>"); /* ftfy, then html.unescape twice */
}

/* The pre-tokens of an already cleaned text, joined with '|'. */
static void check_pretok(const char *in, const char *want) {
    cs_u32 t = from_utf8(in);
    cs_span *spans = NULL;
    size_t n = 0;
    CHECK_OK(clip_pretokenize(&t, &spans, &n));
    cs_u32 joined = {0};
    for (size_t i = 0; i < n; i++) {
        if (i) CHECK_OK(u32_push(&joined, '|'));
        CHECK_OK(u32_append(&joined, t.p + spans[i].start, spans[i].end - spans[i].start));
    }
    check_u32("pretokenize", in, &joined, want);
    cs_free(spans);
    u32_free(&t);
    u32_free(&joined);
}

static void test_pretokenize(void) {
    check_pretok("<|startoftext|>hi<|endoftext|>", "<|startoftext|>|hi|<|endoftext|>");
    check_pretok("!<|endoftext|>", "!<||endoftext||>");                 /* the run eats the '<' */
    check_pretok("it's we'll you've i'm i'd they're don't", "it|'s|we|'ll|you|'ve|i|'m|i|'d|they|'re|don|'t");
    check_pretok("''s 'sa 'x", "''|s|'s|a|'|x");
    check_pretok("abc123 \u00bd x\u00b2", "abc|1|2|3|\u00bd|x|\u00b2");   /* one number at a time */
    check_pretok("caf\u00e9 \u732b\u54aa \u0928\u092e\u0938\u094d\u0924\u0947",
                 "caf\u00e9|\u732b\u54aa|\u0928\u092e\u0938|\u094d|\u0924|\u0947"); /* marks are no letters */
    check_pretok("a...b?! \u2764\ufe0f", "a|...|b|?!|\u2764\ufe0f");
    check_pretok("  \t ", "");
    check_pretok("'\u017f <|\u017ftartoftext|>", "'\u017f|<|\u017ftartoftext|>"); /* IGNORECASE: ſ is s */
    check_pretok("a\u0345b", "a|b"); /* in no alternative under IGNORECASE */
}

static void test_utf8(void) {
    static const char *const invalid[] = {"\xff", "caf\xc3", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                          "\xe2\x82", "\x80", "\xf0\x9f\x98"};
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
        CHECK(utf8_valid_prefix((const uint8_t *)invalid[i], strlen(invalid[i])) < strlen(invalid[i]));
    const char *valid = "a\u00e9\u20ac\U0001f600\xf4\x8f\xbf\xbf";
    CHECK(utf8_valid_prefix((const uint8_t *)valid, strlen(valid)) == strlen(valid));
    /* ftfy's utf-8-variants: Java's NUL and CESU-8 */
    cs_u32 t = {0};
    CHECK(utf8_decode((const uint8_t *)"\xc0\x80\xed\xa0\xbd\xed\xb8\x80", 8, 1, &t) == 1);
    CHECK(t.n == 2 && t.p[0] == 0 && t.p[1] == 0x1F600);
    t.n = 0;
    CHECK(utf8_decode((const uint8_t *)"\xc0\x80", 2, 0, &t) == 0);
    u32_free(&t);
}

static void test_with_vocab(void) {
    cs_tokenizer *tok = NULL;
    CHECK_OK(cs_tokenizer_load(golden_path("clip/bpe_simple_vocab_16e6.txt.gz"), &tok));
    if (!tok) return;
    int32_t ids[77];
    int n = -1;
    /* Invalid UTF-8 is an error, not replacement characters. */
    CHECK_STATUS(cs_tokenize(tok, "caf\xc3", 77, 1, ids, &n), CS_ERR_UTF8);
    CHECK_ERR_HAS("byte 3");
    CHECK_STATUS(cs_tokenize(tok, "\xed\xa0\x80", 77, 1, ids, &n), CS_ERR_UTF8);
    /* A NUL inside the text is a control character ftfy removes. */
    int32_t ab[77];
    int n_ab;
    CHECK_OK(cs_tokenize_bytes(tok, "a\0b", 3, 77, 0, ids, &n));
    CHECK_OK(cs_tokenize(tok, "ab", 77, 0, ab, &n_ab));
    CHECK(n == n_ab && memcmp(ids, ab, sizeof *ids * (size_t)n) == 0);
    /* Too long: an error naming the text, or truncation with EOT last. */
    CHECK_STATUS(cs_tokenize(tok, "a photo of a dog.", 5, 0, ids, &n), CS_ERR_TOO_LONG);
    CHECK_ERR_HAS("a photo of a dog.");
    CHECK_OK(cs_tokenize(tok, "a photo of a dog.", 5, 1, ids, &n));
    CHECK(n == 5 && ids[0] == CS_SOT_TOKEN && ids[1] == 320 && ids[4] == CS_EOT_TOKEN);
    CHECK_OK(cs_tokenize(tok, "a photo", 4, 0, ids, &n)); /* exactly the context */
    CHECK(n == 4);
    CHECK_STATUS(cs_tokenize(tok, "x", 0, 1, ids, &n), CS_ERR_ARG);
    /* BPE: merges by rank; single bytes get </w>; cached words give the same ids. */
    for (int pass = 0; pass < 2; pass++) {
        CHECK_OK(cs_tokenize(tok, "i", 77, 0, ids, &n));
        CHECK(n == 3 && ids[1] == 328);
    }
    /* The batch is zero padded. */
    const char *texts[] = {"a photo of a dog.", "", "hello <|endoftext|> world"};
    int32_t batch[3 * 77];
    CHECK_OK(cs_tokenize_batch(tok, texts, 3, 77, 1, batch));
    CHECK(batch[0] == CS_SOT_TOKEN && batch[7] == CS_EOT_TOKEN && batch[8] == 0 && batch[76] == 0);
    CHECK(batch[77] == CS_SOT_TOKEN && batch[78] == CS_EOT_TOKEN && batch[79] == 0);
    CHECK(batch[154 + 2] == CS_EOT_TOKEN); /* a literal <|endoftext|> is the token */
    const char *bad[] = {"ok", "\xff"};
    CHECK_STATUS(cs_tokenize_batch(tok, bad, 2, 77, 1, batch), CS_ERR_UTF8);
    CHECK_ERR_HAS("texts[1]");
    cs_tokenizer_free(tok);
}

static void test_load_errors(void) {
    cs_tokenizer *tok = (cs_tokenizer *)1;
    CHECK_STATUS(cs_tokenizer_load("/nonexistent/bpe.txt.gz", &tok), CS_ERR_MISSING);
    CHECK(tok == NULL);
    CHECK_ERR_HAS("/nonexistent/bpe.txt.gz");
    CHECK_STATUS(cs_tokenizer_load(NULL, &tok), CS_ERR_ARG);
    char path[] = "/tmp/cs_tok_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    fputs("\x1f\x8bnot really gzip", f);
    fclose(f);
    CHECK_STATUS(cs_tokenizer_load(path, &tok), CS_ERR_FORMAT);
    CHECK_ERR_HAS(path);
    f = fopen(path, "wb");
    fputs("#version: 0.2\ni n\nthree parts here\n", f);
    fclose(f);
    CHECK_STATUS(cs_tokenizer_load(path, &tok), CS_ERR_FORMAT);
    CHECK_ERR_HAS("3 merge lines, fewer than the 48894");
    remove(path);
    char dir[] = "/tmp/cs_tokdir_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK_STATUS(cs_tokenizer_load(dir, &tok), CS_ERR_MISSING); /* no vocab.json */
    CHECK_ERR_HAS("vocab.json");
    rmdir(dir);
}

int main(void) {
    test_ftfy_unescape_html();
    test_ftfy_fix_encoding();
    test_ftfy_is_bad();
    test_ftfy_simple_fixers();
    test_ftfy_surrogates();
    test_ftfy_fix_text();
    test_python_text();
    test_pretokenize();
    test_utf8();
    test_load_errors();
    test_with_vocab();
    return test_finish();
}
