/* A port of ftfy 6.3.1's fix_text with its default configuration, the text
 * cleaning that openai/CLIP's tokenizer starts with. Each function names the
 * ftfy function it reimplements; the regular expressions of ftfy are matched
 * by hand-written scanners with the same leftmost-first semantics. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "text/tokenizer.h"

/* ftfy's max_decode_length: longer lines are fixed in pieces. */
#define FTFY_MAX_SEGMENT 1000000

/* ------------------------------------------------------------ categories */
/* Pseudo-categories for the parts of ftfy's regexes that are not its
 * character sets; they share the mask with the FT_* bits. */
enum {
    M_SPACE = 1u << 24,    /* \s of Python's re: str.isspace */
    M_WORD = 1u << 25,     /* \w: letters, numbers and '_' */
    M_LOWER_AZ = 1u << 26, /* [a-z] */
    M_UPPER_AZ = 1u << 27, /* [A-Z] */
};

static uint32_t table_mask(uint32_t c) {
    int lo = 0, hi = cs_n_ftfy_char_classes - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        uint32_t m = cs_ftfy_char_classes[mid].cp;
        if (m == c) return cs_ftfy_char_classes[mid].mask;
        if (m < c) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

static uint32_t char_mask(uint32_t c) {
    uint32_t m = c >= 0x20 ? table_mask(c) : 0;
    if (c >= 'a' && c <= 'z') m |= M_LOWER_AZ | M_WORD;
    else if (c >= 'A' && c <= 'Z') m |= M_UPPER_AZ | M_WORD;
    else if (py_isspace(c)) m |= M_SPACE;
    else if (c == '_') m |= M_WORD;
    else if (c >= 0x80) {
        switch (utf8proc_category((utf8proc_int32_t)c)) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_NO: m |= M_WORD; break;
        default: break;
        }
    } else if (c >= '0' && c <= '9')
        m |= M_WORD;
    return m;
}

/* ------------------------------------------------------------ badness */
/* One element of a BADNESS_RE alternative: a character set given as
 * categories plus literal characters, or one of two special sets. */
enum { EL_SET, EL_NOT_NEWLINE, EL_NOT_ASCII_LETTER };

typedef struct bad_el {
    uint32_t cats;
    const uint32_t *chars; /* zero-terminated, may be NULL */
    uint8_t kind;
    uint8_t optional;
} bad_el;

typedef struct bad_alt {
    uint8_t anchored; /* ^: only at the start of the text */
    uint8_t n;
    bad_el el[7];
} bad_alt;

#define S(cats) {(cats), NULL, EL_SET, 0}
#define L(chars) {0, (chars), EL_SET, 0}
#define SL(cats, chars) {(cats), (chars), EL_SET, 0}

/* Shorthands for the category unions that BADNESS_RE repeats. */
#define BAD FT_BAD
#define LA FT_LOWER_ACC
#define UA FT_UPPER_ACC
#define BOX FT_BOX
#define SP FT_START_PUNCT
#define EP FT_END_PUNCT
#define CUR FT_CURRENCY
#define NUM FT_NUMERIC
#define LAW FT_LAW
#define LC FT_LOWER_COMMON
#define UC FT_UPPER_COMMON

static const uint32_t k_degree[] = {0xB0, 0};
static const uint32_t k_oe[] = {0x152, 0x153, 0};
static const uint32_t k_a_hat_like[] = {0xC2, 0xC3, 0xCE, 0xD0, 0};
static const uint32_t k_after_a_hat[] = {0x20AC, 0x153, 0x160, 0x161, 0xA2, 0xA3, 0x178, 0x17E, 0xA0,
                                         0xAD,   0xAE,  0xA9,  0xB0,  0xB7, 0xBB, 0x2013, 0x2014, 0xB4,
                                         0};
static const uint32_t k_times[] = {0xD7, 0};
static const uint32_t k_sup23[] = {0xB2, 0xB3, 0};
static const uint32_t k_o_u_arabic[] = {0xD8, 0xD9, 0};
static const uint32_t k_after_arabic[] = {0x178, 0x160, 0xAE, 0xB0, 0xB5, 0xBB, 0};
static const uint32_t k_a_grave[] = {0xE0, 0};
static const uint32_t k_after_a_grave[] = {0xB2, 0xB5, 0xB9, 0xBC, 0xBD, 0xBE, 0};
static const uint32_t k_sqrt[] = {0x221A, 0};
static const uint32_t k_after_sqrt[] = {0xB1, 0x2202, 0x2020, 0x2260, 0xAE, 0x2122,
                                        0xB4, 0x2264, 0x2265, 0xA5,   0xB5, 0xF8, 0};
static const uint32_t k_approx[] = {0x2248, 0};
static const uint32_t k_degree_cent[] = {0xB0, 0xA2, 0};
static const uint32_t k_low9[] = {0x201A, 0};
static const uint32_t k_a_uml_cap[] = {0xC4, 0};
static const uint32_t k_after_low9_a_uml[] = {0xEC, 0xEE, 0xEF, 0xF2, 0xF4, 0xFA, 0xF9,
                                              0xFB, 0x2020, 0xB0, 0xA2, 0x3C0, 0};
static const uint32_t k_a_hat_o_acute[] = {0xE2, 0xF3, 0};
static const uint32_t k_after_low9_mac[] = {0xE0, 0xE4, 0xB0, 0xEA, 0};
static const uint32_t k_cyr_ve[] = {0x432, 0};
static const uint32_t k_cyr_dje[] = {0x402, 0};
static const uint32_t k_cyr_vgrs[] = {0x412, 0x413, 0x420, 0x421, 0};
static const uint32_t k_degree_micro[] = {0xB0, 0xB5, 0};
static const uint32_t k_cyr_ghe[] = {0x413, 0};
static const uint32_t k_cyr_short_u[] = {0x45E, 0};
static const uint32_t k_cyr_ve_cap[] = {0x412, 0};
static const uint32_t k_space[] = {' ', 0};
static const uint32_t k_a_tilde[] = {0xC3, 0};
static const uint32_t k_nbsp_iexcl[] = {0xA0, 0xA1, 0};
static const uint32_t k_a_tilde_hat[] = {0xC3, 0xC2, 0};
static const uint32_t k_a_hat[] = {0xC2, 0};
static const uint32_t k_sentence_punct[] = {'.', ',', '?', '!', 0};
static const uint32_t k_beta[] = {0x3B2, 0};
static const uint32_t k_euro[] = {0x20AC, 0};
static const uint32_t k_after_beta_euro[] = {0x2122, 0xA0, 0x386, 0xAD, 0xAE, 0xB0, 0};
static const uint32_t k_greek_bgxo[] = {0x392, 0x393, 0x39E, 0x39F, 0};
static const uint32_t k_a_macron[] = {0x101, 0};

/* ftfy/badness.py BADNESS_RE, alternative by alternative. */
static const bad_alt k_badness[] = {
    {0, 1, {S(FT_C1)}},
    {0, 2, {S(BAD | LA | UA | BOX | SP | EP | CUR | NUM | LAW), S(BAD)}},
    {0, 3, {S(M_LOWER_AZ | M_UPPER_AZ), S(LC | UC), S(BAD)}},
    {0, 2, {S(BAD), S(LA | UA | BOX | SP | EP | CUR | NUM | LAW)}},
    {0, 2, {S(LA | LC | BOX | EP | CUR | NUM), S(UA)}},
    {0, 2, {S(BOX | EP | CUR | NUM), S(LA)}},
    {0, 2, {S(LA | BOX | EP), S(CUR)}},
    {0, 3, {S(M_SPACE), S(UA), S(CUR)}},
    {0, 2, {S(UA | BOX), S(NUM | LAW)}},
    {0, 3, {S(LA | UA | BOX | CUR | EP), S(SP), S(NUM)}},
    {0, 3, {S(LA | UA | CUR | NUM | BOX | LAW), S(EP), S(SP)}},
    {0, 2, {S(CUR | NUM | BOX), S(SP)}},
    {0, 3, {S(M_LOWER_AZ), S(UA), S(SP | CUR)}},
    {0, 2, {S(BOX), S(FT_KAOMOJI)}},
    {0, 2, {S(LA | UA | CUR | NUM | SP | EP | LAW), S(BOX)}},
    {0, 2, {S(BOX), S(EP)}},
    {0, 3, {S(LA | UA), S(SP | EP), S(M_WORD)}},
    /* the ligature œ when not followed by an unaccented Latin letter */
    {0, 2, {L(k_oe), {0, NULL, EL_NOT_ASCII_LETTER, 0}}},
    /* degree signs after capital letters */
    {0, 2, {S(UA), L(k_degree)}},
    /* common Windows-1252 2-character mojibake */
    {0, 2, {L(k_a_hat_like), SL(SP | EP, k_after_a_hat)}},
    {0, 2, {L(k_times), L(k_sup23)}},
    /* Windows-1252 mojibake of Arabic words: four characters */
    {0,
     4,
     {L(k_o_u_arabic), SL(FT_COMMON | CUR | BAD | NUM | SP, k_after_arabic), L(k_o_u_arabic),
      SL(FT_COMMON | CUR | BAD | NUM | SP, k_after_arabic)}},
    /* Windows-1252 starts of 3-character South Asian sequences */
    {0, 2, {L(k_a_grave), L(k_after_a_grave)}},
    /* MacRoman mojibake */
    {0, 2, {L(k_sqrt), L(k_after_sqrt)}},
    {0, 2, {L(k_approx), L(k_degree_cent)}},
    {0, 3, {L(k_low9), L(k_a_uml_cap), L(k_after_low9_a_uml)}},
    {0, 3, {L(k_low9), L(k_a_hat_o_acute), L(k_after_low9_mac)}},
    /* Windows-1251 mojibake of the U+2000 range */
    {0, 2, {L(k_cyr_ve), L(k_cyr_dje)}},
    /* Windows-1251 mojibake of Latin-1 or Cyrillic: three characters */
    {0, 3, {L(k_cyr_vgrs), SL(FT_C1 | BAD | SP | EP | CUR, k_degree_micro), L(k_cyr_vgrs)}},
    /* Windows-1251 on top of Latin-1 mojibake, next to a Latin letter */
    {0,
     7,
     {L(k_cyr_ghe), L(k_cyr_short_u), L(k_cyr_ve_cap), L(k_cyr_dje), L(k_cyr_ve_cap),
      {0, NULL, EL_NOT_NEWLINE, 0}, SL(M_LOWER_AZ | M_UPPER_AZ, k_space)}},
    /* Windows-1252 encodings of à and á, and of U+A0 itself */
    {0, 2, {L(k_a_tilde), L(k_nbsp_iexcl)}},
    {0, 4, {S(M_LOWER_AZ), {M_SPACE, NULL, EL_SET, 1}, L(k_a_tilde_hat), L(k_space)}},
    {1, 2, {L(k_a_tilde_hat), L(k_space)}},
    /* Â encoding the very character that follows it */
    {0, 3, {SL(M_LOWER_AZ | EP, k_sentence_punct), L(k_a_hat), SL(SP | EP, k_space)}},
    /* Windows-1253 mojibake of the U+2000 range */
    {0, 3, {L(k_beta), L(k_euro), L(k_after_beta_euro)}},
    /* Windows-1253 mojibake of Latin-1 or Greek */
    {0, 3, {L(k_greek_bgxo), SL(FT_C1 | BAD | SP | EP | CUR, k_degree), L(k_greek_bgxo)}},
    /* Windows-1257 mojibake of the U+2000 range */
    {0, 2, {L(k_a_macron), L(k_euro)}},
};

static int in_list(const uint32_t *list, uint32_t c) {
    for (; list && *list; list++)
        if (*list == c) return 1;
    return 0;
}

static int el_matches(const bad_el *e, uint32_t c, uint32_t mask) {
    switch (e->kind) {
    case EL_NOT_NEWLINE: return c != '\n';
    case EL_NOT_ASCII_LETTER: return !(mask & (M_LOWER_AZ | M_UPPER_AZ));
    default: return (mask & e->cats) || in_list(e->chars, c);
    }
}

static int alt_matches_at(const bad_alt *a, int k, const uint32_t *t, const uint32_t *masks,
                          size_t n, size_t pos) {
    for (; k < a->n; k++) {
        const bad_el *e = &a->el[k];
        int here = pos < n && el_matches(e, t[pos], masks[pos]);
        if (e->optional) {
            if (here && alt_matches_at(a, k + 1, t, masks, n, pos + 1)) return 1;
            continue;
        }
        if (!here) return 0;
        pos++;
    }
    return 1;
}

int ftfy_is_bad(const uint32_t *t, size_t n) {
    uint32_t *masks = mem_alloc(n ? n : 1, sizeof *masks);
    if (!masks) return -1;
    for (size_t i = 0; i < n; i++) masks[i] = char_mask(t[i]);
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++)
        for (size_t a = 0; a < sizeof k_badness / sizeof *k_badness && !bad; a++)
            if ((!k_badness[a].anchored || i == 0) && alt_matches_at(&k_badness[a], 0, t, masks, n, i))
                bad = 1;
    cs_free(masks);
    return bad;
}

/* ------------------------------------------------------------ codecs */
enum { CODEC_LATIN1 = 0, CODEC_SLOPPY_1252 = 1, CODEC_MACROMAN = 8 };

/* The byte that codec k encodes c as, or -1 when c is not in the codec. */
static int codec_encode(int k, uint32_t c) {
    const cs_ftfy_codec *cd = &cs_ftfy_codecs[k];
    if (c < 0x80) return cd->sloppy && c == 0x1A ? -1 : (int)c;
    if (cd->sloppy && c == 0xFFFD) return 0x1A;
    for (int b = 0; b < 128; b++)
        if (cd->high[b] == c) return 0x80 + b;
    return -1;
}

/* chardata.possible_encoding + str.encode: the bytes of t in codec k, or 0
 * when some character is not in it. */
static int codec_encode_text(int k, const uint32_t *t, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        int b = codec_encode(k, t[i]);
        if (b < 0) return 0;
        out[i] = (uint8_t)b;
    }
    return 1;
}

static int is_cont_byte(uint8_t b) { return b >= 0x80 && b <= 0xBF; }
/* [\x80-\x84\x86-\x9f\xa1-\xbf]: a continuation byte other than 0x85/0xA0 */
static int is_cont_not_85_a0(uint8_t b) { return is_cont_byte(b) && b != 0x85 && b != 0xA0; }

/* chardata.ALTERED_UTF8_RE at b[i]: the length of the match, or 0. */
static size_t altered_utf8_at(const uint8_t *b, size_t n, size_t i) {
    uint8_t c = b[i];
    size_t left = n - i;
    if ((c == 0xC2 || c == 0xC3 || c == 0xC5 || c == 0xCE || c == 0xD0 || c == 0xD9) && left >= 2 &&
        b[i + 1] == ' ')
        return 2;
    if ((c == 0xE2 || c == 0xE3) && left >= 3 && b[i + 1] == ' ' && is_cont_not_85_a0(b[i + 2]))
        return 3;
    if (c >= 0xE0 && c <= 0xE3 && left >= 3 && is_cont_not_85_a0(b[i + 1]) && b[i + 2] == ' ')
        return 3;
    if (c == 0xF0 && left >= 4) {
        int spaces = 0, conts = 0;
        for (int k = 1; k <= 3; k++) {
            spaces += b[i + k] == ' ';
            conts += is_cont_byte(b[i + k]);
        }
        if (spaces == 1 && conts == 2) return 4;
    }
    return 0;
}

static int has_altered_utf8(const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (altered_utf8_at(b, n, i)) return 1;
    return 0;
}

static int starts_with(const uint8_t *b, size_t n, const char *s) {
    size_t k = strlen(s);
    return n >= k && memcmp(b, s, k) == 0;
}

/* fixes.restore_byte_a0, in place (it never changes the length): first
 * A_GRAVE_WORD_RE (C3 then a space that is not before a space, "quele",
 * "quela", "quilo" or "s ") gains its A0 and keeps the space; then every
 * ALTERED_UTF8_RE match gets its spaces back as A0. Returns the new length. */
static size_t restore_byte_a0(uint8_t *b, size_t n, uint8_t *tmp) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (b[i] == 0xC3 && i + 1 < n && b[i + 1] == ' ') {
            const uint8_t *r = b + i + 2;
            size_t rn = n - i - 2;
            if (!(starts_with(r, rn, " ") || starts_with(r, rn, "quele") ||
                  starts_with(r, rn, "quela") || starts_with(r, rn, "quilo") ||
                  starts_with(r, rn, "s "))) {
                tmp[k++] = 0xC3;
                tmp[k++] = 0xA0;
                tmp[k++] = ' ';
                i += 2;
                continue;
            }
        }
        tmp[k++] = b[i++];
    }
    for (size_t i = 0; i < k;) {
        size_t m = altered_utf8_at(tmp, k, i);
        if (!m) {
            i++;
            continue;
        }
        for (size_t j = i; j < i + m; j++)
            if (tmp[j] == ' ') tmp[j] = 0xA0;
        i += m;
    }
    memcpy(b, tmp, k);
    return k;
}

static int lossy_x(uint8_t b) { return b == 0x1A || b == '?'; }
static int lossy_c(uint8_t b) { return b == 0x1A || is_cont_byte(b); }
static int lossy_xc(uint8_t b) { return b == 0x1A || b == '?' || is_cont_byte(b); }

/* chardata.LOSSY_UTF8_RE at b[i]: UTF-8 whose continuation bytes were lost
 * (0x1A stands for a character that became U+FFFD; '?' for at most one). */
static size_t lossy_utf8_at(const uint8_t *b, size_t n, size_t i) {
    uint8_t c = b[i];
    size_t left = n - i;
    const uint8_t *p = b + i;
    if (c >= 0xC2 && c <= 0xDF && left >= 2 && p[1] == 0x1A) return 2;
    if ((c == 0xC2 || c == 0xC3) && left >= 2 && p[1] == '?') return 2;
    if (c == 0xED && left >= 6 && p[1] >= 0xA0 && p[1] <= 0xAF && p[3] == 0xED && p[4] >= 0xB0 &&
        p[4] <= 0xBF) {
        if (lossy_x(p[2]) && lossy_xc(p[5])) return 6;
        if (lossy_xc(p[2]) && lossy_x(p[5])) return 6;
    }
    if (c >= 0xE0 && c <= 0xEF && left >= 3) {
        if (lossy_x(p[1]) && lossy_c(p[2])) return 3;
        if (lossy_c(p[1]) && lossy_x(p[2])) return 3;
    }
    if (c >= 0xF0 && c <= 0xF4 && left >= 4) {
        if (lossy_x(p[1]) && lossy_c(p[2]) && lossy_c(p[3])) return 4;
        if (lossy_c(p[1]) && lossy_x(p[2]) && lossy_c(p[3])) return 4;
        if (lossy_c(p[1]) && lossy_c(p[2]) && lossy_x(p[3])) return 4;
    }
    return c == 0x1A ? 1 : 0;
}

/* fixes.replace_lossy_sequences: each match becomes the UTF-8 of U+FFFD.
 * out needs room for 3 bytes per input byte. */
static size_t replace_lossy_sequences(const uint8_t *b, size_t n, uint8_t *out) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t m = lossy_utf8_at(b, n, i);
        if (m) {
            out[k++] = 0xEF;
            out[k++] = 0xBF;
            out[k++] = 0xBD;
            i += m;
        } else
            out[k++] = b[i++];
    }
    return k;
}

/* ------------------------------------------------------------ fix_encoding */
static cs_status fix_encoding_loop(const cs_u32 *in, cs_u32 *out);

/* Try reading t as UTF-8 that was decoded with codec k (the body of ftfy's
 * loop over CHARMAP_ENCODINGS). Returns 1 with the result in out, 0 when the
 * bytes do not decode, -1 out of memory. */
static int try_codec_as_utf8(int k, const uint8_t *encoded, size_t n, cs_u32 *out) {
    /* restore_byte_a0 grows the bytes by at most half, and each byte of that
     * becomes at most 3 in replace_lossy_sequences. */
    size_t cap = 6 * n + 8;
    uint8_t *buf = mem_alloc(cap, 1), *tmp = mem_alloc(cap, 1);
    int ok = -1;
    if (buf && tmp) {
        memcpy(buf, encoded, n);
        size_t len = n;
        if (k != CODEC_MACROMAN && has_altered_utf8(buf, len)) len = restore_byte_a0(buf, len, tmp);
        if (cs_ftfy_codecs[k].sloppy) {
            len = replace_lossy_sequences(buf, len, tmp);
            uint8_t *t = buf;
            buf = tmp;
            tmp = t;
        }
        int variants = memchr(buf, 0xED, len) || memchr(buf, 0xC0, len);
        out->n = 0;
        ok = utf8_decode(buf, len, variants, out);
    }
    cs_free(buf);
    cs_free(tmp);
    return ok;
}

static int utf8_unit_at(const uint32_t *m, size_t n, size_t i) {
    if ((m[i] & FT_UTF8_FIRST2) && i + 1 < n && (m[i + 1] & FT_UTF8_CONT)) return 2;
    if ((m[i] & FT_UTF8_FIRST3) && i + 2 < n && (m[i + 1] & m[i + 2] & FT_UTF8_CONT)) return 3;
    if ((m[i] & FT_UTF8_FIRST4) && i + 3 < n && (m[i + 1] & m[i + 2] & m[i + 3] & FT_UTF8_CONT))
        return 4;
    return 0;
}

/* chardata.UTF8_DETECTOR_RE at position i: the length of the match, 0 if
 * none (the lookbehind refuses to start after a strict continuation). */
static size_t utf8_detector_at(const uint32_t *m, size_t n, size_t i) {
    if (i > 0 && (m[i - 1] & FT_UTF8_CONT_STRICT)) return 0;
    size_t len = 0;
    int u;
    while (i + len < n && (u = utf8_unit_at(m, n, i + len)) > 0) len += (size_t)u;
    return len;
}

static uint32_t *clue_masks(const cs_u32 *t) {
    uint32_t *m = mem_alloc(t->n ? t->n : 1, sizeof *m);
    if (m)
        for (size_t i = 0; i < t->n; i++) m[i] = t->p[i] >= 0x20 ? table_mask(t->p[i]) : 0;
    return m;
}

static int has_utf8_clue(const cs_u32 *t, const uint32_t *m) {
    for (size_t i = 0; i < t->n; i++)
        if (utf8_detector_at(m, t->n, i)) return 1;
    return 0;
}

/* fixes.decode_inconsistent_utf8: fix each UTF-8-looking piece on its own
 * when it is shorter than the text and looks bad. */
static cs_status decode_inconsistent_utf8(const cs_u32 *in, const uint32_t *m, cs_u32 *out) {
    cs_u32 piece = {0}, fixed = {0};
    cs_status st = CS_OK;
    out->n = 0;
    for (size_t i = 0; i < in->n && st == CS_OK;) {
        size_t len = utf8_detector_at(m, in->n, i);
        if (!len) {
            st = u32_push(out, in->p[i++]);
            continue;
        }
        int bad = len < in->n ? ftfy_is_bad(in->p + i, len) : 0;
        if (bad < 0) st = CS_ERR_NOMEM;
        else if (bad) {
            piece.n = 0;
            st = u32_append(&piece, in->p + i, len);
            if (st == CS_OK) st = fix_encoding_loop(&piece, &fixed);
            if (st == CS_OK) st = u32_append(out, fixed.p, fixed.n);
        } else
            st = u32_append(out, in->p + i, len);
        i += len;
    }
    u32_free(&piece);
    u32_free(&fixed);
    return st;
}

static int is_ascii(const cs_u32 *t) {
    for (size_t i = 0; i < t->n; i++)
        if (t->p[i] >= 0x80) return 0;
    return 1;
}

static int has_c1(const cs_u32 *t) {
    for (size_t i = 0; i < t->n; i++)
        if (t->p[i] >= 0x80 && t->p[i] <= 0x9F) return 1;
    return 0;
}

/* Latin-1 text read as strict Windows-1252, the one legitimate single-byte
 * mix-up ftfy fixes: 0 when a byte is undefined in Windows-1252. */
static int latin1_as_windows1252(const cs_u32 *in, cs_u32 *out) {
    out->n = 0;
    if (u32_reserve(out, in->n) != CS_OK) return -1;
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->p[i];
        if (c >= 0x80 && c <= 0x9F) {
            if (c == 0x81 || c == 0x8D || c == 0x8F || c == 0x90 || c == 0x9D) return 0;
            c = cs_ftfy_codecs[CODEC_SLOPPY_1252].high[c - 0x80];
        }
        out->p[out->n++] = c;
    }
    return 1;
}

/* ftfy._fix_encoding_one_step_and_explain. */
static cs_status fix_encoding_step(const cs_u32 *in, cs_u32 *out) {
    if (in->n == 0 || is_ascii(in)) return u32_copy(out, in);
    int bad = ftfy_is_bad(in->p, in->n);
    if (bad < 0) return CS_ERR_NOMEM;
    if (!bad) return u32_copy(out, in);

    uint8_t *encoded = mem_alloc(in->n, 1);
    if (!encoded) return CS_ERR_NOMEM;
    int latin1_possible = 0;
    for (int k = 0; k < CS_FTFY_N_CODECS; k++) {
        if (!codec_encode_text(k, in->p, in->n, encoded)) continue;
        if (k == CODEC_LATIN1) latin1_possible = 1;
        int ok = try_codec_as_utf8(k, encoded, in->n, out);
        if (ok != 0) {
            cs_free(encoded);
            return ok < 0 ? CS_ERR_NOMEM : CS_OK;
        }
    }
    cs_free(encoded);

    uint32_t *m = clue_masks(in);
    if (!m) return CS_ERR_NOMEM;
    cs_status st = CS_OK;
    if (has_utf8_clue(in, m)) {
        st = decode_inconsistent_utf8(in, m, out);
        if (st != CS_OK || !u32_equal(in, out)) {
            cs_free(m);
            return st;
        }
    }
    cs_free(m);
    /* ftfy checks for "windows-1252" among the possible encodings, which only
     * ever holds "sloppy-windows-1252": so Latin-1 text is always tried as
     * Windows-1252. */
    if (latin1_possible) {
        int ok = latin1_as_windows1252(in, out);
        if (ok < 0) return CS_ERR_NOMEM;
        if (ok && !u32_equal(in, out)) return CS_OK;
    }
    if (has_c1(in)) return ftfy_fix_c1_controls(in, out);
    return u32_copy(out, in);
}

/* ftfy.fix_encoding: one step at a time until nothing changes. */
static cs_status fix_encoding_loop(const cs_u32 *in, cs_u32 *out) {
    cs_u32 prev = {0};
    cs_status st = u32_copy(out, in);
    while (st == CS_OK) {
        u32_swap(&prev, out);
        st = fix_encoding_step(&prev, out);
        if (st == CS_OK && u32_equal(&prev, out)) break;
    }
    u32_free(&prev);
    return st;
}

cs_status ftfy_fix_encoding(const cs_u32 *in, cs_u32 *out) { return fix_encoding_loop(in, out); }

/* ------------------------------------------------------------ simple fixers */
static int is_alnum_ascii(uint32_t c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static cs_status append_html5(cs_u32 *out, const char *v) {
    return utf8_decode((const uint8_t *)v, strlen(v), 0, out) < 0 ? CS_ERR_NOMEM : CS_OK;
}

static const char *upper_entity_lookup(const uint32_t *name, size_t n) {
    int lo = 0, hi = cs_n_ftfy_upper_entities - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const char *key = cs_ftfy_upper_entities[mid].name;
        size_t i = 0;
        int c = 0;
        for (; i < n && key[i]; i++)
            if (name[i] != (unsigned char)key[i]) {
                c = name[i] < (unsigned char)key[i] ? -1 : 1;
                break;
            }
        if (!c) c = i < n ? 1 : (key[i] ? -1 : 0);
        if (c == 0) return cs_ftfy_upper_entities[mid].value;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

/* The replacement of one HTML_ENTITY_RE match t[0..n) ("&...;"): an entity
 * name with its semicolon, an all-caps variant, or a numeric reference that
 * html.unescape decodes completely. */
static cs_status unescape_fixup(const uint32_t *t, size_t n, cs_u32 *out) {
    const char *v = html5_lookup(t + 1, n - 1);
    if (!v) v = upper_entity_lookup(t + 1, n - 1);
    if (v) return append_html5(out, v);
    if (t[1] == '#') {
        cs_u32 ref = {0}, dec = {0};
        cs_status st = u32_append(&ref, t, n);
        if (st == CS_OK) st = py_html_unescape(&ref, &dec);
        int partial = 0;
        for (size_t i = 0; st == CS_OK && i < dec.n; i++) partial |= dec.p[i] == ';';
        if (st == CS_OK) st = partial ? u32_append(out, t, n) : u32_append(out, dec.p, dec.n);
        u32_free(&ref);
        u32_free(&dec);
        return st;
    }
    return u32_append(out, t, n);
}

/* fixes.unescape_html: HTML_ENTITY_RE is &#?[0-9A-Za-z]{1,24}; */
cs_status ftfy_unescape_html(const cs_u32 *in, cs_u32 *out) {
    out->n = 0;
    cs_status st = u32_reserve(out, in->n);
    const uint32_t *t = in->p;
    size_t n = in->n;
    for (size_t i = 0; i < n && st == CS_OK;) {
        if (t[i] == '&') {
            size_t j = i + 1;
            if (j < n && t[j] == '#') j++;
            size_t run = 0;
            while (j + run < n && run <= 24 && is_alnum_ascii(t[j + run])) run++;
            if (run >= 1 && run <= 24 && j + run < n && t[j + run] == ';') {
                size_t len = j + run + 1 - i;
                st = unescape_fixup(t + i, len, out);
                i += len;
                continue;
            }
        }
        st = u32_push(out, t[i++]);
    }
    return st;
}

cs_status ftfy_fix_c1_controls(const cs_u32 *in, cs_u32 *out) {
    cs_status st = u32_copy(out, in);
    for (size_t i = 0; st == CS_OK && i < out->n; i++)
        if (out->p[i] >= 0x80 && out->p[i] <= 0x9F)
            out->p[i] = cs_ftfy_codecs[CODEC_SLOPPY_1252].high[out->p[i] - 0x80];
    return st;
}

/* chardata.LIGATURES: Latin ligatures and legacy digraphs, split. */
static const struct {
    uint32_t from;
    uint32_t to[3];
} k_ligatures[] = {
    {0x0132, {'I', 'J'}},     {0x0133, {'i', 'j'}},     {0x0149, {0x02BC, 'n'}},
    {0x01C4, {'D', 0x017D}},  {0x01C5, {'D', 0x017E}},  {0x01C6, {'d', 0x017E}},
    {0x01C7, {'L', 'J'}},     {0x01C8, {'L', 'j'}},     {0x01C9, {'l', 'j'}},
    {0x01CA, {'N', 'J'}},     {0x01CB, {'N', 'j'}},     {0x01CC, {'n', 'j'}},
    {0x01F1, {'D', 'Z'}},     {0x01F2, {'D', 'z'}},     {0x01F3, {'d', 'z'}},
    {0xFB00, {'f', 'f'}},     {0xFB01, {'f', 'i'}},     {0xFB02, {'f', 'l'}},
    {0xFB03, {'f', 'f', 'i'}}, {0xFB04, {'f', 'f', 'l'}}, {0xFB05, {0x017F, 't'}},
    {0xFB06, {'s', 't'}},
};

cs_status ftfy_fix_latin_ligatures(const cs_u32 *in, cs_u32 *out) {
    out->n = 0;
    cs_status st = u32_reserve(out, in->n);
    for (size_t i = 0; i < in->n && st == CS_OK; i++) {
        uint32_t c = in->p[i];
        size_t k = 0, count = sizeof k_ligatures / sizeof *k_ligatures;
        if (c >= 0x132)
            while (k < count && k_ligatures[k].from != c) k++;
        else
            k = count;
        if (k == count) {
            st = u32_push(out, c);
            continue;
        }
        for (int j = 0; j < 3 && k_ligatures[k].to[j] && st == CS_OK; j++)
            st = u32_push(out, k_ligatures[k].to[j]);
    }
    return st;
}

/* chardata.WIDTH_MAP: U+3000 is a space, and U+FF01..U+FFEF become their
 * NFKC form (which is how ftfy builds the map). */
static cs_status append_nfkc_char(cs_u32 *out, uint32_t c) {
    uint8_t buf[8];
    int len = utf8_put(buf, c);
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t r = utf8proc_map(buf, len, &mapped, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    if (r < 0) return error_set(CS_ERR_NOMEM, "utf8proc: %s", utf8proc_errmsg(r));
    int ok = utf8_decode(mapped, (size_t)r, 0, out);
    free(mapped);
    return ok < 0 ? CS_ERR_NOMEM : CS_OK;
}

cs_status ftfy_fix_character_width(const cs_u32 *in, cs_u32 *out) {
    out->n = 0;
    cs_status st = u32_reserve(out, in->n);
    for (size_t i = 0; i < in->n && st == CS_OK; i++) {
        uint32_t c = in->p[i];
        if (c == 0x3000) st = u32_push(out, ' ');
        else if (c >= 0xFF01 && c <= 0xFFEF) st = append_nfkc_char(out, c);
        else st = u32_push(out, c);
    }
    return st;
}

cs_status ftfy_uncurl_quotes(const cs_u32 *in, cs_u32 *out) {
    cs_status st = u32_copy(out, in);
    for (size_t i = 0; st == CS_OK && i < out->n; i++) {
        uint32_t c = out->p[i];
        if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) out->p[i] = '\'';
        else if (c >= 0x201C && c <= 0x201F) out->p[i] = '"';
    }
    return st;
}

cs_status ftfy_fix_line_breaks(const cs_u32 *in, cs_u32 *out) {
    out->n = 0;
    cs_status st = u32_reserve(out, in->n);
    for (size_t i = 0; i < in->n && st == CS_OK; i++) {
        uint32_t c = in->p[i];
        if (c == '\r' && i + 1 < in->n && in->p[i + 1] == '\n') continue; /* CRLF: keep the LF */
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) c = '\n';
        st = u32_push(out, c);
    }
    return st;
}

static int is_surrogate(uint32_t c) { return c >= 0xD800 && c <= 0xDFFF; }

/* Our input is validated UTF-8 and no step makes surrogates, so this only
 * ever meets them when called directly; kept for a faithful pipeline. */
cs_status ftfy_fix_surrogates(const cs_u32 *in, cs_u32 *out) {
    out->n = 0;
    cs_status st = u32_reserve(out, in->n);
    for (size_t i = 0; i < in->n && st == CS_OK; i++) {
        uint32_t c = in->p[i];
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < in->n && in->p[i + 1] >= 0xDC00 &&
            in->p[i + 1] <= 0xDFFF) {
            c = 0x10000 + (c - 0xD800) * 0x400 + (in->p[i + 1] - 0xDC00);
            i++;
        } else if (is_surrogate(c))
            c = 0xFFFD;
        st = u32_push(out, c);
    }
    return st;
}

static int is_unicode_decimal(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_ND;
}

/* fixes.remove_terminal_escapes: ANSI_RE is \033\[((?:\d|;)*)([a-zA-Z]) */
cs_status ftfy_remove_terminal_escapes(const cs_u32 *in, cs_u32 *out) {
    out->n = 0;
    cs_status st = u32_reserve(out, in->n);
    const uint32_t *t = in->p;
    for (size_t i = 0; i < in->n && st == CS_OK;) {
        if (t[i] == 0x1B && i + 1 < in->n && t[i + 1] == '[') {
            size_t j = i + 2;
            while (j < in->n && (t[j] == ';' || is_unicode_decimal(t[j]))) j++;
            if (j < in->n && t[j] < 0x80 && ((t[j] | 0x20) >= 'a' && (t[j] | 0x20) <= 'z')) {
                i = j + 1;
                continue;
            }
        }
        st = u32_push(out, t[i++]);
    }
    return st;
}

/* chardata.CONTROL_CHARS */
static int is_removed_control(uint32_t c) {
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
           (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

cs_status ftfy_remove_control_chars(const cs_u32 *in, cs_u32 *out) {
    out->n = 0;
    cs_status st = u32_reserve(out, in->n);
    for (size_t i = 0; i < in->n && st == CS_OK; i++)
        if (!is_removed_control(in->p[i])) out->p[out->n++] = in->p[i];
    return st;
}

cs_status unicode_nfc(const cs_u32 *in, cs_u32 *out) {
    /* Nothing below U+0300 changes under NFC: no decomposition, and the
     * combining marks start there. */
    size_t i = 0;
    while (i < in->n && in->p[i] < 0x300) i++;
    if (i == in->n) return u32_copy(out, in);
    char *utf8;
    size_t len;
    cs_status st = u32_to_utf8(in, &utf8, &len);
    if (st) return st;
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t r =
        utf8proc_map((const utf8proc_uint8_t *)utf8, (utf8proc_ssize_t)len, &mapped,
                     UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    cs_free(utf8);
    if (r < 0) return error_set(CS_ERR_NOMEM, "utf8proc NFC: %s", utf8proc_errmsg(r));
    out->n = 0;
    int ok = utf8_decode(mapped, (size_t)r, 0, out);
    free(mapped);
    return ok < 0 ? CS_ERR_NOMEM : CS_OK;
}

/* ------------------------------------------------------------ fix_text */
typedef cs_status (*fixer_fn)(const cs_u32 *in, cs_u32 *out);

/* ftfy.fix_and_explain on one segment: every fixer in order, then NFC, until
 * a round changes nothing. */
static cs_status fix_segment(cs_u32 *text, int unescape, cs_u32 *tmp, cs_u32 *orig) {
    static const fixer_fn k_fixers[] = {
        ftfy_fix_encoding,       ftfy_fix_c1_controls, ftfy_fix_latin_ligatures,
        ftfy_fix_character_width, ftfy_uncurl_quotes,   ftfy_fix_line_breaks,
        ftfy_fix_surrogates,     ftfy_remove_terminal_escapes,
        ftfy_remove_control_chars, unicode_nfc,
    };
    cs_status st;
    for (;;) {
        if ((st = u32_copy(orig, text))) return st;
        if (unescape) {
            if ((st = ftfy_unescape_html(text, tmp))) return st;
            u32_swap(text, tmp);
        }
        for (size_t k = 0; k < sizeof k_fixers / sizeof *k_fixers; k++) {
            if ((st = k_fixers[k](text, tmp))) return st;
            u32_swap(text, tmp);
        }
        if (u32_equal(text, orig)) return CS_OK;
    }
}

static int contains(const uint32_t *t, size_t n, uint32_t c) {
    for (size_t i = 0; i < n; i++)
        if (t[i] == c) return 1;
    return 0;
}

cs_status ftfy_fix_text(const cs_u32 *in, cs_u32 *out) {
    cs_u32 seg = {0}, tmp = {0}, orig = {0};
    cs_status st = CS_OK;
    int unescape = 1; /* "auto": off from the first segment that has a '<' on */
    out->n = 0;
    for (size_t pos = 0; pos < in->n && st == CS_OK;) {
        size_t end = pos;
        while (end < in->n && in->p[end] != '\n') end++;
        end = end < in->n ? end + 1 : in->n;
        if (end - pos > FTFY_MAX_SEGMENT) end = pos + FTFY_MAX_SEGMENT;
        if (contains(in->p + pos, end - pos, '<')) unescape = 0;
        seg.n = 0;
        st = u32_append(&seg, in->p + pos, end - pos);
        if (st == CS_OK) st = fix_segment(&seg, unescape, &tmp, &orig);
        if (st == CS_OK) st = u32_append(out, seg.p, seg.n);
        pos = end;
    }
    u32_free(&seg);
    u32_free(&tmp);
    u32_free(&orig);
    return st;
}
