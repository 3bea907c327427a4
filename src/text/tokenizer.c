/* openai/CLIP's BPE tokenizer (SimpleTokenizer + clip.tokenize): text
 * cleaning (ftfy.c, pytext.c), the pre-tokenization pattern, byte-level BPE
 * with a per-word cache, start/end tokens and truncation.
 *
 * Invalid UTF-8 input is an error (CS_ERR_UTF8) rather than Python's
 * replacement characters: the reference only ever sees Python strings, so a
 * byte string that is not UTF-8 has no reference answer, and silently
 * guessing one would hide the caller's bug.
 *
 * A tokenizer is not thread-safe: its BPE cache changes on every call. Use
 * one per thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include <utf8proc.h>
#include <zlib.h>
#include "base/fileio.h"
#include "text/tokenizer.h"

/* The real files are 1.6 MB (merges) and 0.9 MB (vocab.json): a bound that
 * refuses a decompression bomb early. */
#define VOCAB_MAX_FILE_BYTES (32u << 20)
/* SimpleTokenizer keeps merges[1 : 49152-256-2+1] of the openai file. */
#define OPENAI_N_MERGE_LINES (49152 - 256 - 2)
/* The cache forgets everything past these sizes (the reference never does;
 * the ids are the same either way). Longer words are not cached. */
#define CACHE_MAX_ARENA (32u << 20)
#define CACHE_MAX_WORD 256

static const char k_sot[] = "<|startoftext|>";
static const char k_eot[] = "<|endoftext|>";

/* ------------------------------------------------------------ hashing */
static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* Strings to ids (the vocabulary): open addressing, keys in one arena. */
typedef struct str_map {
    uint32_t *slot; /* entry index + 1, 0 = empty */
    size_t n_slots;
    char **keys;
    uint32_t *key_len;
    int32_t *ids;
    size_t n, cap;
} str_map;

static void str_map_free(str_map *m) {
    for (size_t i = 0; i < m->n; i++) cs_free(m->keys[i]);
    cs_free(m->slot);
    cs_free(m->keys);
    cs_free(m->key_len);
    cs_free(m->ids);
    memset(m, 0, sizeof *m);
}

static cs_status str_map_init(str_map *m, size_t cap) {
    memset(m, 0, sizeof *m);
    m->n_slots = 16;
    while (m->n_slots < cap * 2) m->n_slots *= 2;
    m->slot = mem_calloc(m->n_slots, sizeof *m->slot);
    m->keys = mem_alloc(cap, sizeof *m->keys);
    m->key_len = mem_alloc(cap, sizeof *m->key_len);
    m->ids = mem_alloc(cap, sizeof *m->ids);
    m->cap = cap;
    if (!m->slot || !m->keys || !m->key_len || !m->ids) {
        str_map_free(m);
        return CS_ERR_NOMEM;
    }
    return CS_OK;
}

static uint32_t *str_map_find_slot(const str_map *m, const char *key, size_t len) {
    size_t mask = m->n_slots - 1, i = hash_bytes(key, len) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t e = m->slot[i];
        if (!e) return &m->slot[i];
        if (m->key_len[e - 1] == len && memcmp(m->keys[e - 1], key, len) == 0) return &m->slot[i];
    }
}

static int str_map_get(const str_map *m, const char *key, size_t len, int32_t *id) {
    uint32_t e = *str_map_find_slot(m, key, len);
    if (!e) return 0;
    *id = m->ids[e - 1];
    return 1;
}

/* Later entries win, as in Python's dict(zip(vocab, range(...))). */
static cs_status str_map_put(str_map *m, const char *key, size_t len, int32_t id) {
    uint32_t *s = str_map_find_slot(m, key, len);
    if (*s) {
        m->ids[*s - 1] = id;
        return CS_OK;
    }
    if (m->n == m->cap) return error_set(CS_ERR_LIMIT, "vocabulary larger than announced");
    char *k = mem_alloc(len + 1, 1);
    if (!k) return CS_ERR_NOMEM;
    memcpy(k, key, len);
    k[len] = 0;
    m->keys[m->n] = k;
    m->key_len[m->n] = (uint32_t)len;
    m->ids[m->n] = id;
    *s = (uint32_t)++m->n;
    return CS_OK;
}

/* Pairs of ids to their merge: rank and the merged id. */
typedef struct merge_entry {
    uint64_t pair; /* left << 32 | right; 0 marks an empty slot (pairs are +1) */
    int32_t rank, merged;
} merge_entry;

/* Words already split by BPE. */
typedef struct cache_entry {
    uint64_t hash;
    uint32_t key_off, ids_off;
    uint16_t key_len, n_ids;
} cache_entry;

typedef struct word_cache {
    cache_entry *slots; /* key_len == 0: empty */
    size_t n_slots, n;
    uint8_t *keys;
    int32_t *ids;
    size_t keys_len, keys_cap, ids_len, ids_cap;
} word_cache;

struct cs_tokenizer {
    str_map vocab;
    merge_entry *merges;
    size_t n_merge_slots;
    int32_t byte_id[256], byte_end_id[256]; /* the byte's symbol, alone and with </w> */
    int32_t sot, eot;
    word_cache cache;
    int32_t *work; /* BPE scratch: two arrays of work_cap symbols */
    size_t work_cap;
    uint32_t *id_entry; /* id -> vocabulary entry + 1 (0: none), built on first decode */
    size_t n_id_entry;
};

/* ------------------------------------------------------------ bytes_to_unicode */
/* GPT-2's byte-to-unicode map: printable Latin-1 bytes stand for themselves,
 * the others are shifted to U+0100 and up, in byte order. */
static uint32_t byte_to_unicode(int b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return (uint32_t)b;
    int shifted = 0;
    for (int k = 0; k < b; k++)
        if (!((k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE && k <= 0xFF)))
            shifted++;
    return 256u + (uint32_t)shifted;
}

/* The byte order of the vocabulary's first 256 entries. */
static int byte_order(int rank) {
    int r = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            int printable = byte_to_unicode(b) == (uint32_t)b;
            if (printable == (pass == 0) && r++ == rank) return b;
        }
    return -1;
}

static size_t byte_symbol(int b, int end, char *buf) {
    size_t k = (size_t)utf8_put((uint8_t *)buf, byte_to_unicode(b));
    if (end) {
        memcpy(buf + k, "</w>", 4);
        k += 4;
    }
    return k;
}

/* ------------------------------------------------------------ loading */
static cs_status gunzip(const char *path, const uint8_t *data, size_t len, char **out,
                        size_t *out_len) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) return error_set(CS_ERR_NOMEM, "%s: zlib init", path);
    size_t cap = len * 4 + 1024, n = 0;
    char *buf = NULL;
    int rc = Z_OK;
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    while (rc != Z_STREAM_END) {
        if (!buf || n == cap) {
            if (buf) cap *= 2;
            if (cap > VOCAB_MAX_FILE_BYTES) {
                rc = Z_MEM_ERROR;
                break;
            }
            char *nb = mem_alloc(cap + 1, 1);
            if (!nb) {
                cs_free(buf);
                inflateEnd(&zs);
                return CS_ERR_NOMEM;
            }
            if (buf) memcpy(nb, buf, n);
            cs_free(buf);
            buf = nb;
        }
        zs.next_out = (Bytef *)buf + n;
        zs.avail_out = (uInt)(cap - n);
        rc = inflate(&zs, Z_NO_FLUSH);
        n = cap - zs.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END) break;
        if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
            rc = Z_DATA_ERROR;
            break;
        }
    }
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        cs_free(buf);
        return error_set(CS_ERR_FORMAT, "%s: not a valid gzip file (%s)", path,
                       rc == Z_MEM_ERROR ? "too large" : "corrupt data");
    }
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return CS_OK;
}

/* One merge line "a b": the two halves (exactly two, as the reference's
 * tuple(line.split()) must be to ever match a pair). */
static int split_merge(const char *line, size_t len, size_t *a_len, const char **b, size_t *b_len) {
    size_t i = 0;
    while (i < len && line[i] != ' ') i++;
    if (i == 0 || i + 1 >= len) return 0;
    *a_len = i;
    *b = line + i + 1;
    *b_len = len - i - 1;
    return memchr(*b, ' ', *b_len) == NULL;
}

static cs_status add_merge(cs_tokenizer *tok, const char *path, int line_no, const char *line,
                           size_t len, int32_t rank) {
    size_t a_len, b_len;
    const char *b;
    if (!split_merge(line, len, &a_len, &b, &b_len))
        return error_set(CS_ERR_FORMAT, "%s: line %d is not a merge \"A B\"", path, line_no);
    int32_t left, right, merged;
    char joined[1024];
    if (a_len + b_len >= sizeof joined)
        return error_set(CS_ERR_FORMAT, "%s: line %d: merge too long", path, line_no);
    memcpy(joined, line, a_len);
    memcpy(joined + a_len, b, b_len);
    /* Halves outside the vocabulary can never be formed: such a merge never
     * applies. */
    if (!str_map_get(&tok->vocab, line, a_len, &left) || !str_map_get(&tok->vocab, b, b_len, &right))
        return CS_OK;
    if (!str_map_get(&tok->vocab, joined, a_len + b_len, &merged))
        return error_set(CS_ERR_FORMAT, "%s: line %d: merged token '%.*s' is not in the vocabulary",
                       path, line_no, (int)(a_len + b_len), joined);
    uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
    size_t mask = tok->n_merge_slots - 1, i = hash_u64(key) & mask;
    while (tok->merges[i].pair && tok->merges[i].pair != key) i = (i + 1) & mask;
    tok->merges[i] = (merge_entry){key, rank, merged}; /* a repeated pair takes the later rank */
    return CS_OK;
}

/* Iterate over the lines of text (without '\n'). */
typedef struct line_iter {
    const char *p, *end;
} line_iter;

static int next_line(line_iter *it, const char **line, size_t *len) {
    if (it->p > it->end) return 0;
    const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
    const char *e = nl ? nl : it->end;
    *line = it->p;
    *len = (size_t)(e - it->p);
    it->p = e + 1;
    return 1;
}

static cs_status alloc_merges(cs_tokenizer *tok, size_t n) {
    tok->n_merge_slots = 16;
    while (tok->n_merge_slots < n * 2) tok->n_merge_slots *= 2;
    tok->merges = mem_calloc(tok->n_merge_slots, sizeof *tok->merges);
    return tok->merges ? CS_OK : CS_ERR_NOMEM;
}

static int contains(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(s + i, needle, k)) return 1;
    return 0;
}

/* openai/CLIP's bpe_simple_vocab_16e6.txt(.gz): a version line, then merges;
 * the vocabulary is the 256 byte symbols, the same with </w>, every merge
 * joined, then the two special tokens. */
static cs_status load_openai(cs_tokenizer *tok, const char *path, const char *text, size_t len) {
    line_iter it = {text, text + len};
    const char *line = NULL;
    size_t ll = 0, n_lines = 0;
    /* The format is checked before anything is built from it: a version
     * header, then at least the merges CLIP uses (49408 entries in all). */
    if (memchr(text, 0, len))
        return error_set(CS_ERR_FORMAT, "%s: not a BPE merges file (it holds binary data)", path);
    if (!next_line(&it, &line, &ll) || ll > 256 || !contains(line, ll, "#version"))
        return error_set(CS_ERR_FORMAT, "%s: not a BPE merges file (the first line is not a "
                       "'#version' header)", path);
    n_lines = 1;
    while (n_lines <= OPENAI_N_MERGE_LINES && next_line(&it, &line, &ll)) n_lines++;
    size_t n_merges = n_lines - 1;
    if (n_merges < OPENAI_N_MERGE_LINES)
        return error_set(CS_ERR_FORMAT, "%s: %zu merge lines, fewer than the %d of CLIP's vocabulary "
                       "(49408 entries)", path, n_merges, OPENAI_N_MERGE_LINES);
    cs_status st = str_map_init(&tok->vocab, 512 + n_merges + 2);
    if (st == CS_OK) st = alloc_merges(tok, n_merges);
    int32_t id = 0;
    char sym[16];
    for (int end = 0; end < 2 && st == CS_OK; end++)
        for (int r = 0; r < 256 && st == CS_OK; r++) {
            size_t k = byte_symbol(byte_order(r), end, sym);
            st = str_map_put(&tok->vocab, sym, k, id++);
        }
    it = (line_iter){text, text + len};
    next_line(&it, &line, &ll); /* the version line */
    for (size_t i = 0; i < n_merges && st == CS_OK; i++) {
        next_line(&it, &line, &ll);
        size_t a_len, b_len;
        const char *b;
        if (!split_merge(line, ll, &a_len, &b, &b_len))
            return error_set(CS_ERR_FORMAT, "%s: line %zu is not a merge \"A B\"", path, i + 2);
        char joined[1024];
        if (a_len + b_len >= sizeof joined)
            return error_set(CS_ERR_FORMAT, "%s: line %zu: merge too long", path, i + 2);
        memcpy(joined, line, a_len);
        memcpy(joined + a_len, b, b_len);
        st = str_map_put(&tok->vocab, joined, a_len + b_len, id++);
    }
    if (st == CS_OK) st = str_map_put(&tok->vocab, k_sot, strlen(k_sot), id++);
    if (st == CS_OK) st = str_map_put(&tok->vocab, k_eot, strlen(k_eot), id++);
    it = (line_iter){text, text + len};
    next_line(&it, &line, &ll);
    for (size_t i = 0; i < n_merges && st == CS_OK; i++) {
        next_line(&it, &line, &ll);
        st = add_merge(tok, path, (int)i + 2, line, ll, (int32_t)i);
    }
    return st;
}

static cs_status read_vocab_json(cs_tokenizer *tok, const char *path) {
    char *text;
    size_t len;
    cs_status st = cs_read_file(path, VOCAB_MAX_FILE_BYTES, &text, &len);
    if (st) return st;
    cJSON *root = cJSON_ParseWithLength(text, len);
    cs_free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return error_set(CS_ERR_FORMAT, "%s: not a JSON object", path);
    }
    st = str_map_init(&tok->vocab, (size_t)cJSON_GetArraySize(root));
    cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (st) break;
        if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > INT32_MAX ||
            item->valuedouble != (double)(int32_t)item->valuedouble)
            st = error_set(CS_ERR_FORMAT, "%s: id of '%s' is not a non-negative integer", path,
                         item->string);
        else
            st = str_map_put(&tok->vocab, item->string, strlen(item->string),
                             (int32_t)item->valuedouble);
    }
    cJSON_Delete(root);
    return st;
}

static cs_status read_merges_txt(cs_tokenizer *tok, const char *path) {
    char *text;
    size_t len;
    cs_status st = cs_read_file(path, VOCAB_MAX_FILE_BYTES, &text, &len);
    if (st) return st;
    line_iter it = {text, text + len};
    const char *line = NULL;
    size_t ll = 0, n_lines = 0;
    while (next_line(&it, &line, &ll)) n_lines++;
    st = alloc_merges(tok, n_lines);
    it = (line_iter){text, text + len};
    int32_t rank = 0;
    for (int line_no = 1; st == CS_OK && next_line(&it, &line, &ll); line_no++) {
        if (ll && line[ll - 1] == '\r') ll--;
        if (ll == 0 || (line_no == 1 && ll >= 8 && memcmp(line, "#version", 8) == 0)) continue;
        st = add_merge(tok, path, line_no, line, ll, rank++);
    }
    cs_free(text);
    return st;
}

static cs_status load_hf_folder(cs_tokenizer *tok, const char *dir) {
    size_t n = strlen(dir) + 32;
    char *path = mem_alloc(n, 1);
    if (!path) return CS_ERR_NOMEM;
    snprintf(path, n, "%s/vocab.json", dir);
    cs_status st = read_vocab_json(tok, path);
    if (st == CS_OK) {
        snprintf(path, n, "%s/merges.txt", dir);
        st = read_merges_txt(tok, path);
    }
    cs_free(path);
    return st;
}

/* The ids of the byte symbols and the special tokens, which every text needs. */
static cs_status resolve_fixed_ids(cs_tokenizer *tok, const char *path) {
    char sym[16];
    for (int b = 0; b < 256; b++)
        for (int end = 0; end < 2; end++) {
            size_t k = byte_symbol(b, end, sym);
            if (!str_map_get(&tok->vocab, sym, k, end ? &tok->byte_end_id[b] : &tok->byte_id[b]))
                return error_set(CS_ERR_FORMAT, "%s: byte symbol '%.*s' is not in the vocabulary",
                               path, (int)k, sym);
        }
    if (!str_map_get(&tok->vocab, k_sot, strlen(k_sot), &tok->sot) ||
        !str_map_get(&tok->vocab, k_eot, strlen(k_eot), &tok->eot))
        return error_set(CS_ERR_FORMAT, "%s: %s or %s is not in the vocabulary", path, k_sot, k_eot);
    return CS_OK;
}

static cs_status load_openai_file(cs_tokenizer *tok, const char *path) {
    char *data;
    size_t len;
    cs_status st = cs_read_file(path, VOCAB_MAX_FILE_BYTES, &data, &len);
    if (st) return st;
    if (len >= 2 && (uint8_t)data[0] == 0x1F && (uint8_t)data[1] == 0x8B) {
        char *text = NULL;
        size_t text_len = 0;
        st = gunzip(path, (const uint8_t *)data, len, &text, &text_len);
        cs_free(data);
        if (st) return st;
        data = text;
        len = text_len;
    }
    st = load_openai(tok, path, data, len);
    cs_free(data);
    return st;
}

cs_status cs_tokenizer_load(const char *path, cs_tokenizer **out) {
    if (!path || !out) return error_set(CS_ERR_ARG, "cs_tokenizer_load: NULL argument");
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return error_set(CS_ERR_MISSING, "%s: no such vocabulary file or folder", path);
    cs_tokenizer *tok = mem_calloc(1, sizeof *tok);
    if (!tok) return CS_ERR_NOMEM;
    cs_status st = S_ISDIR(sb.st_mode) ? load_hf_folder(tok, path) : load_openai_file(tok, path);
    if (st == CS_OK) st = resolve_fixed_ids(tok, path);
    if (st) {
        cs_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return CS_OK;
}

static void cache_free(word_cache *c) {
    cs_free(c->slots);
    cs_free(c->keys);
    cs_free(c->ids);
    memset(c, 0, sizeof *c);
}

void cs_tokenizer_free(cs_tokenizer *tok) {
    if (!tok) return;
    str_map_free(&tok->vocab);
    cs_free(tok->merges);
    cache_free(&tok->cache);
    cs_free(tok->work);
    cs_free(tok->id_entry);
    cs_free(tok);
}

/* ------------------------------------------------------------ BPE */
static const merge_entry *find_merge(const cs_tokenizer *tok, int32_t left, int32_t right) {
    uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
    size_t mask = tok->n_merge_slots - 1, i = hash_u64(key) & mask;
    for (;; i = (i + 1) & mask) {
        if (tok->merges[i].pair == key) return &tok->merges[i];
        if (!tok->merges[i].pair) return NULL;
    }
}

static cs_status reserve_work(cs_tokenizer *tok, size_t n) {
    if (n <= tok->work_cap) return CS_OK;
    size_t cap = tok->work_cap ? tok->work_cap : 64;
    while (cap < n) cap *= 2;
    int32_t *w = mem_alloc(cap * 2, sizeof *w);
    if (!w) return CS_ERR_NOMEM;
    cs_free(tok->work);
    tok->work = w;
    tok->work_cap = cap;
    return CS_OK;
}

/* SimpleTokenizer.bpe on the bytes of one word: repeatedly merge every
 * occurrence (left to right) of the adjacent pair with the lowest rank.
 * Returns the symbol count; the symbols are left in tok->work. */
static cs_status bpe_word(cs_tokenizer *tok, const uint8_t *w, size_t n, size_t *n_out) {
    cs_status st = reserve_work(tok, n);
    if (st) return st;
    int32_t *sym = tok->work, *next = tok->work + tok->work_cap;
    for (size_t i = 0; i < n; i++) sym[i] = i + 1 < n ? tok->byte_id[w[i]] : tok->byte_end_id[w[i]];
    size_t m = n;
    while (m > 1) {
        const merge_entry *best = NULL;
        for (size_t i = 0; i + 1 < m; i++) {
            const merge_entry *e = find_merge(tok, sym[i], sym[i + 1]);
            if (e && (!best || e->rank < best->rank)) best = e;
        }
        if (!best) break;
        int32_t left = (int32_t)((best->pair - 1) >> 32), right = (int32_t)((best->pair - 1) & 0xFFFFFFFFu);
        size_t k = 0;
        for (size_t i = 0; i < m;) {
            if (i + 1 < m && sym[i] == left && sym[i + 1] == right) {
                next[k++] = best->merged;
                i += 2;
            } else
                next[k++] = sym[i++];
        }
        int32_t *t = sym;
        sym = next;
        next = t;
        m = k;
    }
    if (sym != tok->work) memcpy(tok->work, sym, m * sizeof *sym);
    *n_out = m;
    return CS_OK;
}

static void cache_clear(word_cache *c) {
    if (c->slots) memset(c->slots, 0, c->n_slots * sizeof *c->slots);
    c->n = c->keys_len = c->ids_len = 0;
}

static const cache_entry *cache_find(const word_cache *c, const uint8_t *w, size_t n, uint64_t h) {
    if (!c->slots) return NULL;
    size_t mask = c->n_slots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const cache_entry *e = &c->slots[i];
        if (!e->key_len) return NULL;
        if (e->hash == h && e->key_len == n && memcmp(c->keys + e->key_off, w, n) == 0) return e;
    }
}

static void cache_place(word_cache *c, const cache_entry *e) {
    size_t mask = c->n_slots - 1, i = e->hash & mask;
    while (c->slots[i].key_len) i = (i + 1) & mask;
    c->slots[i] = *e;
}

static cs_status cache_grow_slots(word_cache *c) {
    size_t n_slots = c->n_slots ? c->n_slots * 2 : 1024;
    cache_entry *old = c->slots;
    size_t old_n = c->n_slots;
    c->slots = mem_calloc(n_slots, sizeof *c->slots);
    if (!c->slots) {
        c->slots = old;
        return CS_ERR_NOMEM;
    }
    c->n_slots = n_slots;
    for (size_t i = 0; i < old_n; i++)
        if (old[i].key_len) cache_place(c, &old[i]);
    cs_free(old);
    return CS_OK;
}

static cs_status grow_array(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return CS_OK;
    size_t n = *cap ? *cap : 4096;
    while (n < need) n *= 2;
    void *q = mem_alloc(n, elem);
    if (!q) return CS_ERR_NOMEM;
    if (*p) memcpy(q, *p, *cap * elem);
    cs_free(*p);
    *p = q;
    *cap = n;
    return CS_OK;
}

static cs_status cache_insert(word_cache *c, const uint8_t *w, size_t n, uint64_t h,
                              const int32_t *ids, size_t n_ids) {
    if (c->keys_len + n > CACHE_MAX_ARENA || (c->ids_len + n_ids) * sizeof *ids > CACHE_MAX_ARENA)
        cache_clear(c);
    if ((c->n + 1) * 2 > c->n_slots) {
        cs_status st = cache_grow_slots(c);
        if (st) return st;
    }
    cs_status st = grow_array((void **)&c->keys, &c->keys_cap, c->keys_len + n, 1);
    if (st == CS_OK) st = grow_array((void **)&c->ids, &c->ids_cap, c->ids_len + n_ids, sizeof *ids);
    if (st) return st;
    cache_entry e = {h, (uint32_t)c->keys_len, (uint32_t)c->ids_len, (uint16_t)n, (uint16_t)n_ids};
    memcpy(c->keys + c->keys_len, w, n);
    memcpy(c->ids + c->ids_len, ids, n_ids * sizeof *ids);
    c->keys_len += n;
    c->ids_len += n_ids;
    cache_place(c, &e);
    c->n++;
    return CS_OK;
}

/* The ids of one pre-token (its UTF-8 bytes): the special tokens map to
 * themselves (the reference's cache is seeded with them), the rest go
 * through BPE, cached. *ids points into the cache or tok->work. */
static cs_status word_ids(cs_tokenizer *tok, const uint8_t *w, size_t n, const int32_t **ids,
                          size_t *n_ids) {
    if (n == strlen(k_sot) && memcmp(w, k_sot, n) == 0) {
        *ids = &tok->sot;
        *n_ids = 1;
        return CS_OK;
    }
    if (n == strlen(k_eot) && memcmp(w, k_eot, n) == 0) {
        *ids = &tok->eot;
        *n_ids = 1;
        return CS_OK;
    }
    uint64_t h = hash_bytes(w, n);
    const cache_entry *e = cache_find(&tok->cache, w, n, h);
    if (e) {
        *ids = tok->cache.ids + e->ids_off;
        *n_ids = e->n_ids;
        return CS_OK;
    }
    cs_status st = bpe_word(tok, w, n, n_ids);
    if (st) return st;
    *ids = tok->work;
    if (n <= CACHE_MAX_WORD) {
        st = cache_insert(&tok->cache, w, n, h, tok->work, *n_ids);
        if (st) return st;
    }
    return CS_OK;
}

cs_status tokenizer_word_ids(cs_tokenizer *tok, const uint8_t *w, size_t n, const int32_t **ids,
                             size_t *n_ids) {
    return word_ids(tok, w, n, ids, n_ids);
}

void tokenizer_special_ids(const cs_tokenizer *tok, int32_t *sot, int32_t *eot) {
    *sot = tok->sot;
    *eot = tok->eot;
}

/* The reverse of the vocabulary, built once: SimpleTokenizer's decoder. */
static cs_status build_decoder(cs_tokenizer *tok) {
    int32_t max_id = -1;
    for (size_t i = 0; i < tok->vocab.n; i++)
        if (tok->vocab.ids[i] > max_id) max_id = tok->vocab.ids[i];
    tok->id_entry = mem_calloc((size_t)max_id + 1, sizeof *tok->id_entry);
    if (!tok->id_entry) return CS_ERR_NOMEM;
    tok->n_id_entry = (size_t)max_id + 1;
    for (size_t i = 0; i < tok->vocab.n; i++)
        if (tok->vocab.ids[i] >= 0) tok->id_entry[tok->vocab.ids[i]] = (uint32_t)i + 1;
    return CS_OK;
}

/* Inverse of byte_to_unicode, or -1 for a code point no byte maps to. */
static int unicode_to_byte(uint32_t cp) {
    if (cp < 256) return byte_to_unicode((int)cp) == cp ? (int)cp : -1;
    for (int b = 0, shifted = 0; b < 256; b++)
        if (byte_to_unicode(b) != (uint32_t)b && shifted++ == (int)(cp - 256)) return b;
    return -1;
}

cs_status tokenizer_decode_id(cs_tokenizer *tok, int32_t id, uint8_t *bytes, size_t cap, size_t *n,
                              int *word_end) {
    if (!tok->id_entry) {
        cs_status st = build_decoder(tok);
        if (st) return st;
    }
    if (id < 0 || (size_t)id >= tok->n_id_entry || !tok->id_entry[id])
        return error_set(CS_ERR_ARG, "token id %d is not in the vocabulary", id);
    const char *key = tok->vocab.keys[tok->id_entry[id] - 1];
    size_t len = tok->vocab.key_len[tok->id_entry[id] - 1];
    *word_end = len >= 4 && !memcmp(key + len - 4, "</w>", 4);
    if (*word_end) len -= 4;
    cs_u32 cps = {0};
    if (utf8_decode((const uint8_t *)key, len, 0, &cps) <= 0) {
        u32_free(&cps);
        return error_set(CS_ERR_FORMAT, "vocabulary entry of id %d is not UTF-8", id);
    }
    cs_status st = CS_OK;
    *n = 0;
    for (size_t i = 0; i < cps.n && st == CS_OK; i++) {
        int b = unicode_to_byte(cps.p[i]);
        if (b < 0 || *n >= cap) st = error_set(CS_ERR_FORMAT, "vocabulary entry of id %d is not byte-level BPE", id);
        else bytes[(*n)++] = (uint8_t)b;
    }
    u32_free(&cps);
    return st;
}

/* ------------------------------------------------------------ cleaning */
static void strip_py(cs_u32 *t) {
    size_t a = 0, b = t->n;
    while (a < b && py_isspace(t->p[a])) a++;
    while (b > a && py_isspace(t->p[b - 1])) b--;
    if (a) memmove(t->p, t->p + a, (b - a) * sizeof *t->p);
    t->n = b - a;
}

cs_status clip_whitespace_clean(const cs_u32 *in, cs_u32 *out) {
    out->n = 0;
    cs_status st = u32_reserve(out, in->n);
    if (st) return st;
    for (size_t i = 0; i < in->n;) {
        if (regex_isspace(in->p[i])) {
            while (i < in->n && regex_isspace(in->p[i])) i++;
            out->p[out->n++] = ' ';
        } else
            out->p[out->n++] = in->p[i++];
    }
    strip_py(out);
    return CS_OK;
}

/* Printable ASCII, tabs and newlines without '&': ftfy and html.unescape
 * leave such text as it is (the common case of prompts). */
static int needs_no_fixing(const cs_u32 *t) {
    for (size_t i = 0; i < t->n; i++) {
        uint32_t c = t->p[i];
        if (!((c >= 0x20 && c < 0x7F && c != '&') || c == '\t' || c == '\n')) return 0;
    }
    return 1;
}

/* whitespace_clean(basic_clean(text)).lower(), basic_clean being
 * html.unescape(html.unescape(ftfy.fix_text(text))).strip(). */
cs_status clip_clean(const cs_u32 *in, cs_u32 *out) {
    cs_u32 a = {0};
    cs_status st;
    if (needs_no_fixing(in)) {
        st = u32_copy(&a, in);
    } else {
        st = ftfy_fix_text(in, &a);
        if (st == CS_OK) st = py_html_unescape(&a, out);
        if (st == CS_OK) st = py_html_unescape(out, &a);
    }
    if (st == CS_OK) {
        strip_py(&a);
        st = clip_whitespace_clean(&a, out);
    }
    if (st == CS_OK) st = py_lower(out, &a);
    if (st == CS_OK) u32_swap(out, &a);
    u32_free(&a);
    return st;
}

/* ------------------------------------------------------------ pre-tokenizing */
static int is_letter(uint32_t c) {
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return 1;
    default: return 0;
    }
}

static int is_number(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return 1;
    default: return 0;
    }
}

/* [^\s\p{L}\p{N}] under the pattern's IGNORECASE: the `regex` module tests a
 * multi-member set against every case variant of the character, so a
 * non-letter whose other case is a letter (U+0345 COMBINING GREEK
 * YPOGEGRAMMENI, whose upper case is Ι) belongs to no alternative and is
 * skipped, like whitespace. */
static int is_other(uint32_t c) {
    if (c < 0x80) return !regex_isspace(c) && !is_letter(c) && !is_number(c);
    if (regex_isspace(c) || is_letter(c) || is_number(c)) return 0;
    utf8proc_int32_t ci = (utf8proc_int32_t)c;
    return !is_letter((uint32_t)utf8proc_toupper(ci)) && !is_letter((uint32_t)utf8proc_tolower(ci));
}

/* Case-insensitive equality with a character of the pattern's literals, as
 * the `regex` module's simple case folding has it: besides ASCII case, ſ
 * (U+017F) is an s; no other character folds to the literals' letters. */
static int ascii_ci_equal(uint32_t c, char p) {
    if (c == (uint32_t)p) return 1;
    if (p >= 'a' && p <= 'z' && c == (uint32_t)(p - 32)) return 1;
    return p == 's' && c == 0x17F;
}

static size_t match_literal(const uint32_t *t, size_t n, size_t i, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (i + k >= n || !ascii_ci_equal(t[i + k], lit[k])) return 0;
    return k;
}

/* The first alternatives of the pattern: the special tokens, then 's 't 're
 * 've 'm 'll 'd, in that order. */
static size_t match_fixed(const uint32_t *t, size_t n, size_t i) {
    static const char *const k_fixed[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re",
                                          "'ve", "'m", "'ll", "'d"};
    for (size_t k = 0; k < sizeof k_fixed / sizeof *k_fixed; k++) {
        size_t len = match_literal(t, n, i, k_fixed[k]);
        if (len) return len;
    }
    return 0;
}

cs_status clip_pretokenize(const cs_u32 *text, cs_span **spans, size_t *n_spans) {
    const uint32_t *t = text->p;
    size_t n = text->n, count = 0;
    cs_span *out = mem_alloc(n ? n : 1, sizeof *out);
    if (!out) return CS_ERR_NOMEM;
    for (size_t i = 0; i < n;) {
        size_t len = match_fixed(t, n, i);
        if (!len) {
            if (is_letter(t[i]))
                while (i + len < n && is_letter(t[i + len])) len++;
            else if (is_number(t[i]))
                len = 1;
            else
                while (i + len < n && is_other(t[i + len])) len++;
        }
        if (!len) {
            i++;
            continue;
        }
        out[count++] = (cs_span){i, i + len};
        i += len;
    }
    *spans = out;
    *n_spans = count;
    return CS_OK;
}

/* ------------------------------------------------------------ tokenize */
static cs_status too_long(const char *text, size_t len, int context) {
    return error_set(CS_ERR_TOO_LONG, "text \"%.*s%s\" is longer than the context length %d",
                   (int)(len > 60 ? 60 : len), text, len > 60 ? "..." : "", context);
}

static cs_status check_utf8(const char *text, size_t len) {
    size_t ok = utf8_valid_prefix((const uint8_t *)text, len);
    if (ok < len) return error_set(CS_ERR_UTF8, "text: invalid UTF-8 at byte %zu", ok);
    return CS_OK;
}

/* Appends the ids of the cleaned text to ids[*count..] until `limit` ids are
 * there (the caller then knows the text is too long). */
static cs_status encode_clean_text(cs_tokenizer *tok, const cs_u32 *clean, int32_t *ids, int *count,
                                   int limit) {
    cs_span *spans;
    size_t n_spans;
    cs_status st = clip_pretokenize(clean, &spans, &n_spans);
    if (st) return st;
    uint8_t *word = NULL;
    size_t word_cap = 0;
    for (size_t s = 0; s < n_spans && *count < limit && st == CS_OK; s++) {
        size_t chars = spans[s].end - spans[s].start;
        st = grow_array((void **)&word, &word_cap, chars * 4, 1);
        if (st) break;
        size_t n = 0;
        for (size_t i = spans[s].start; i < spans[s].end; i++) n += (size_t)utf8_put(word + n, clean->p[i]);
        const int32_t *wids;
        size_t n_wids;
        st = word_ids(tok, word, n, &wids, &n_wids);
        for (size_t k = 0; st == CS_OK && k < n_wids && *count < limit; k++) ids[(*count)++] = wids[k];
    }
    cs_free(word);
    cs_free(spans);
    return st;
}

cs_status cs_tokenize_bytes(cs_tokenizer *tok, const char *text, size_t len, int context,
                            int truncate, int32_t *ids, int *n_ids) {
    if (!tok || !text || !ids || !n_ids) return error_set(CS_ERR_ARG, "cs_tokenize: NULL argument");
    if (context < 1) return error_set(CS_ERR_ARG, "context length %d: must be at least 1", context);
    cs_status st = check_utf8(text, len);
    if (st) return st;
    cs_u32 raw = {0}, clean = {0};
    if (utf8_decode((const uint8_t *)text, len, 0, &raw) < 0) return CS_ERR_NOMEM;
    st = clip_clean(&raw, &clean);
    u32_free(&raw);
    /* Room for SOT, the BPE ids and EOT; context + 1 ids prove "too long". */
    int32_t *all = st == CS_OK ? mem_alloc((size_t)context + 1, sizeof *all) : NULL;
    if (st == CS_OK && !all) st = CS_ERR_NOMEM;
    int count = 0;
    if (st == CS_OK) {
        all[count++] = tok->sot;
        st = encode_clean_text(tok, &clean, all, &count, context);
    }
    u32_free(&clean);
    if (st == CS_OK) {
        if (count < context) {
            all[count++] = tok->eot;
            memcpy(ids, all, (size_t)count * sizeof *ids);
            *n_ids = count;
        } else if (truncate) { /* tokens[:context], the last replaced by EOT */
            memcpy(ids, all, (size_t)context * sizeof *ids);
            ids[context - 1] = tok->eot;
            *n_ids = context;
        } else
            st = too_long(text, len, context);
    }
    cs_free(all);
    return st;
}

cs_status cs_tokenize(cs_tokenizer *tok, const char *text, int context, int truncate,
                      int32_t *ids, int *n_ids) {
    if (!text) return error_set(CS_ERR_ARG, "cs_tokenize: NULL text");
    return cs_tokenize_bytes(tok, text, strlen(text), context, truncate, ids, n_ids);
}

cs_status cs_tokenize_batch(cs_tokenizer *tok, const char *const *texts, int n, int context,
                            int truncate, int32_t *ids) {
    if (!texts || !ids || n < 0) return error_set(CS_ERR_ARG, "cs_tokenize_batch: bad arguments");
    if (context < 1) return error_set(CS_ERR_ARG, "context length %d: must be at least 1", context);
    memset(ids, 0, (size_t)n * (size_t)context * sizeof *ids);
    for (int i = 0; i < n; i++) {
        int got;
        cs_status st = cs_tokenize(tok, texts[i], context, truncate, ids + (size_t)i * context, &got);
        if (st) {
            error_prefix("texts[%d]", i);
            return st;
        }
    }
    return CS_OK;
}
