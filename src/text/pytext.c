/* Python's string semantics that CLIP's text cleaning relies on:
 * html.unescape, str.lower, str.isspace and the `regex` module's \s. Unicode
 * properties come from utf8proc; the few that utf8proc lacks are listed here
 * with the reason. */
#include <string.h>
#include <utf8proc.h>
#include "text/tokenizer.h"

int regex_isspace(uint32_t c) {
    /* The White_Space property. */
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

int py_isspace(uint32_t c) {
    /* Python adds the bidirectional classes B and S: U+001C..U+001F. */
    return regex_isspace(c) || (c >= 0x1C && c <= 0x1F);
}

/* ------------------------------------------------------------ entities */
static int entity_cmp(const uint32_t *name, size_t n, const char *key) {
    size_t i = 0;
    for (; i < n && key[i]; i++) {
        uint32_t k = (unsigned char)key[i];
        if (name[i] != k) return name[i] < k ? -1 : 1;
    }
    if (i < n) return 1;
    return key[i] ? -1 : 0;
}

const char *html5_lookup(const uint32_t *name, size_t n) {
    int lo = 0, hi = cs_n_html5_entities - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = entity_cmp(name, n, cs_html5_entities[mid].name);
        if (c == 0) return cs_html5_entities[mid].value;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

static cs_status append_utf8(cs_u32 *out, const char *s) {
    int ok = utf8_decode((const uint8_t *)s, strlen(s), 0, out);
    return ok < 0 ? CS_ERR_NOMEM : CS_OK;
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_hex(uint32_t c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static uint32_t hex_value(uint32_t c) {
    return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* What html.unescape makes of the numeric reference &#num; (num saturates
 * above U+10FFFF, which Python also maps to U+FFFD). Writes 0 or 1 chars. */
static size_t numeric_charref(uint64_t num, uint32_t *out) {
    if (num == 0) {
        *out = 0xFFFD;
        return 1;
    }
    if (num == 0x0D) {
        *out = '\r';
        return 1;
    }
    if (num >= 0x80 && num <= 0x9F) { /* as Windows-1252, like browsers */
        *out = cs_ftfy_codecs[1].high[num - 0x80];
        return 1;
    }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
        *out = 0xFFFD;
        return 1;
    }
    /* Python's _invalid_codepoints vanish. */
    if ((num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) ||
        num == 0x7F || (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE)
        return 0;
    *out = (uint32_t)num;
    return 1;
}

/* Parse &#digits;? or &#[xX]hex;? at t[i] == '&'; returns the length
 * consumed, 0 if neither form matches. */
static size_t parse_numeric_ref(const uint32_t *t, size_t n, size_t i, uint64_t *num) {
    size_t j = i + 1;
    if (j >= n || t[j] != '#') return 0;
    j++;
    int hex = 0;
    if (j < n && (t[j] == 'x' || t[j] == 'X') && j + 1 < n && is_hex(t[j + 1])) {
        hex = 1;
        j++;
    } else if (j >= n || !is_digit(t[j]))
        return 0;
    uint64_t v = 0;
    while (j < n && (hex ? is_hex(t[j]) : is_digit(t[j]))) {
        uint32_t d = hex ? hex_value(t[j]) : t[j] - '0';
        v = v * (hex ? 16 : 10) + d;
        if (v > 0x110000) v = 0x110000;
        j++;
    }
    if (j < n && t[j] == ';') j++;
    *num = v;
    return j - i;
}

static int named_ref_char(uint32_t c) {
    return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' &&
           c != '#' && c != ';';
}

/* A named reference at t[i] == '&' (pattern [^\t\n\f <&#;]{1,32};?):
 * appends its replacement and returns the length consumed, 0 if none. */
static size_t unescape_named_ref(const uint32_t *t, size_t n, size_t i, cs_u32 *out,
                                 cs_status *st) {
    size_t j = i + 1;
    while (j < n && j - (i + 1) < 32 && named_ref_char(t[j])) j++;
    if (j == i + 1) return 0;
    if (j < n && t[j] == ';') j++;
    const uint32_t *s = t + i + 1;
    size_t len = j - (i + 1);
    const char *v = html5_lookup(s, len);
    if (v) {
        *st = append_utf8(out, v);
        return j - i;
    }
    /* The longest entity that is a prefix (at least 2 chars): those are the
     * legacy names that need no semicolon. */
    for (size_t x = len - 1; x > 1; x--) {
        v = html5_lookup(s, x);
        if (v) {
            *st = append_utf8(out, v);
            if (*st == CS_OK) *st = u32_append(out, s + x, len - x);
            return j - i;
        }
    }
    *st = u32_append(out, t + i, j - i);
    return j - i;
}

cs_status py_html_unescape(const cs_u32 *in, cs_u32 *out) {
    out->n = 0;
    cs_status st = u32_reserve(out, in->n);
    if (st) return st;
    const uint32_t *t = in->p;
    size_t n = in->n, i = 0;
    while (i < n && st == CS_OK) {
        if (t[i] != '&') {
            st = u32_push(out, t[i++]);
            continue;
        }
        uint64_t num;
        size_t used = parse_numeric_ref(t, n, i, &num);
        if (used) {
            uint32_t c;
            if (numeric_charref(num, &c)) st = u32_push(out, c);
            i += used;
            continue;
        }
        used = unescape_named_ref(t, n, i, out, &st);
        if (used) i += used;
        else st = u32_push(out, t[i++]);
    }
    return st;
}

/* ------------------------------------------------------------ lower() */
/* Case_Ignorable: Mn, Me, Cf, Lm, Sk, plus the Word_Break classes MidLetter,
 * MidNumLet and Single_Quote (utf8proc has no word-break data). */
static int case_ignorable(uint32_t c) {
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK: return 1;
    default: break;
    }
    static const uint32_t word_break_mid[] = {0x0027, 0x002E, 0x003A, 0x00B7, 0x0387, 0x055F,
                                              0x05F4, 0x2018, 0x2019, 0x2024, 0x2027, 0xFE13,
                                              0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
    for (size_t k = 0; k < sizeof word_break_mid / sizeof *word_break_mid; k++)
        if (c == word_break_mid[k]) return 1;
    return 0;
}

/* Cased: letters of categories Lu, Ll, Lt, anything with a case mapping, and
 * the Other_Lowercase/Other_Uppercase characters that have neither (ª, º and
 * the squared/circled/negative Latin capitals); the rest of those properties
 * are Lm, which the sigma rule skips as case-ignorable anyway. */
static int cased(uint32_t c) {
    utf8proc_int32_t ci = (utf8proc_int32_t)c;
    utf8proc_category_t cat = utf8proc_category(ci);
    if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT)
        return 1;
    if (utf8proc_tolower(ci) != ci || utf8proc_toupper(ci) != ci) return 1;
    return c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) ||
           (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189);
}

/* Python's Final_Sigma test for the capital sigma at t[i]: a cased letter
 * before it and none after it, skipping case-ignorable characters. */
static int final_sigma(const uint32_t *t, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && case_ignorable(t[j - 1])) j--;
    if (j == 0 || !cased(t[j - 1])) return 0;
    for (j = i + 1; j < n && case_ignorable(t[j]); j++) {}
    return j == n || !cased(t[j]);
}

cs_status py_lower(const cs_u32 *in, cs_u32 *out) {
    out->n = 0;
    cs_status st = u32_reserve(out, in->n);
    for (size_t i = 0; i < in->n && st == CS_OK; i++) {
        uint32_t c = in->p[i];
        if (c < 0x80) {
            st = u32_push(out, c >= 'A' && c <= 'Z' ? c + 32 : c);
        } else if (c == 0x130) { /* full mapping of SpecialCasing.txt */
            static const uint32_t i_dot[2] = {'i', 0x307};
            st = u32_append(out, i_dot, 2);
        } else if (c == 0x3A3) {
            st = u32_push(out, final_sigma(in->p, in->n, i) ? 0x3C2 : 0x3C3);
        } else {
            st = u32_push(out, (uint32_t)utf8proc_tolower((utf8proc_int32_t)c));
        }
    }
    return st;
}
