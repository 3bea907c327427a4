/* UTF-32 text buffers and strict UTF-8 for the tokenizer's text cleaning. */
#include <string.h>
#include "text/tokenizer.h"

cs_status u32_reserve(cs_u32 *s, size_t cap) {
    if (cap <= s->cap) return CS_OK;
    size_t want = s->cap ? s->cap : 16;
    while (want < cap) {
        if (want > SIZE_MAX / 8) return error_set(CS_ERR_NOMEM, "text buffer of %zu characters", cap);
        want *= 2;
    }
    uint32_t *p = mem_alloc(want, sizeof *p);
    if (!p) return CS_ERR_NOMEM;
    if (s->n) memcpy(p, s->p, s->n * sizeof *p);
    cs_free(s->p);
    s->p = p;
    s->cap = want;
    return CS_OK;
}

cs_status u32_push(cs_u32 *s, uint32_t c) {
    if (s->n == s->cap) {
        cs_status st = u32_reserve(s, s->n + 1);
        if (st) return st;
    }
    s->p[s->n++] = c;
    return CS_OK;
}

cs_status u32_append(cs_u32 *s, const uint32_t *c, size_t n) {
    cs_status st = u32_reserve(s, s->n + n);
    if (st) return st;
    if (n) memcpy(s->p + s->n, c, n * sizeof *c);
    s->n += n;
    return CS_OK;
}

cs_status u32_copy(cs_u32 *dst, const cs_u32 *src) {
    dst->n = 0;
    return u32_append(dst, src->p, src->n);
}

void u32_swap(cs_u32 *a, cs_u32 *b) {
    cs_u32 t = *a;
    *a = *b;
    *b = t;
}

void u32_free(cs_u32 *s) {
    cs_free(s->p);
    s->p = NULL;
    s->n = s->cap = 0;
}

int u32_equal(const cs_u32 *a, const cs_u32 *b) {
    return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n * sizeof *a->p) == 0);
}

/* Length of the valid UTF-8 sequence at b[0..n), or 0 if there is none.
 * The ranges of the second byte follow the Unicode table of well-formed
 * sequences, which is what Python's strict decoder enforces. */
static size_t utf8_sequence(const uint8_t *b, size_t n, uint32_t *cp) {
    uint8_t c = b[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n < len || b[1] < lo || b[1] > hi) return 0;
    uint32_t v = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((b[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (b[i] & 0x3F);
    }
    *cp = v;
    return len;
}

/* ftfy's utf-8-variants extras: Java's C0 80 for U+0000, and a surrogate
 * pair encoded as two 3-byte sequences (CESU-8). */
static size_t utf8_variant_sequence(const uint8_t *b, size_t n, uint32_t *cp) {
    if (n >= 2 && b[0] == 0xC0 && b[1] == 0x80) {
        *cp = 0;
        return 2;
    }
    if (n >= 6 && b[0] == 0xED && b[1] >= 0xA0 && b[1] <= 0xAF && (b[2] & 0xC0) == 0x80 &&
        b[3] == 0xED && b[4] >= 0xB0 && b[4] <= 0xBF && (b[5] & 0xC0) == 0x80) {
        *cp = 0x10000 + ((uint32_t)(b[1] & 0x0F) << 16) + ((uint32_t)(b[2] & 0x3F) << 10) +
              ((uint32_t)(b[4] & 0x0F) << 6) + (b[5] & 0x3F);
        return 6;
    }
    return 0;
}

size_t utf8_valid_prefix(const uint8_t *b, size_t n) {
    size_t i = 0;
    uint32_t cp;
    while (i < n) {
        size_t len = utf8_sequence(b + i, n - i, &cp);
        if (!len) break;
        i += len;
    }
    return i;
}

int utf8_decode(const uint8_t *b, size_t n, int variants, cs_u32 *out) {
    if (u32_reserve(out, out->n + n) != CS_OK) return -1;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = variants ? utf8_variant_sequence(b + i, n - i, &cp) : 0;
        if (!len) len = utf8_sequence(b + i, n - i, &cp);
        if (!len) return 0;
        out->p[out->n++] = cp;
        i += len;
    }
    return 1;
}

int utf8_put(uint8_t *buf, uint32_t c) {
    if (c < 0x80) {
        buf[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        buf[0] = (uint8_t)(0xC0 | (c >> 6));
        buf[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        buf[0] = (uint8_t)(0xE0 | (c >> 12));
        buf[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        buf[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    buf[0] = (uint8_t)(0xF0 | (c >> 18));
    buf[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
    buf[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    buf[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

cs_status u32_to_utf8(const cs_u32 *s, char **out, size_t *len) {
    size_t cap;
    if (!size_mul(s->n, 4, &cap)) return error_set(CS_ERR_NOMEM, "text of %zu characters", s->n);
    uint8_t *buf = mem_alloc(cap + 1, 1);
    if (!buf) return CS_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) k += (size_t)utf8_put(buf + k, s->p[i]);
    buf[k] = 0;
    *out = (char *)buf;
    *len = k;
    return CS_OK;
}
