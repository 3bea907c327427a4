/* The class-embedding cache (DESIGN.md section 5): one small file per
 * (model, template set, class name), checksummed, written by rename so
 * concurrent runs never see a partial entry. A model is identified by the
 * SHA-256 of its file (for a named model, checked against the official
 * one), computed once and memoized by path, size, mtime, ctime and inode. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include "base/fileio.h"
#include "formats/download.h"
#include "method.h"

static const char k_magic[8] = "CSEMB1\n";

cs_status cs_cache_dir(const char *override, char *out, size_t n) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (override) snprintf(out, n, "%s", override);
    else if (xdg && *xdg) snprintf(out, n, "%s/clip-surgery", xdg);
    else if (home && *home) snprintf(out, n, "%s/.cache/clip-surgery", home);
    else return error_set(CS_ERR_ARG, "neither XDG_CACHE_HOME nor HOME is set: no cache folder");
    return CS_OK;
}

/* A folder's identity: the digests of the files that make up a model or a
 * vocabulary there (those present), each with its name. */
static cs_status folder_identity(const char *dir, const char *cache_dir, char hex[65]) {
    static const char *const files[] = {"model.safetensors", "config.json", "vocab.json", "merges.txt"};
    char list[4 * 160] = "", path[4200], digest[65];
    size_t o = 0;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (stat(path, &st) != 0) continue;
        cs_status s = sha256_file_memo(path, cache_dir, digest);
        if (s != CS_OK) return s;
        o += (size_t)snprintf(list + o, sizeof list - o, "%s %s\n", files[i], digest);
    }
    if (!o) return error_set(CS_ERR_MISSING, "%s: no model.safetensors, vocab.json or merges.txt in the folder", dir);
    cs_sha256_bytes(list, o, hex);
    return CS_OK;
}

cs_status cs_file_identity(const char *path, const char *cache_dir, char hex[65]) {
    struct stat st;
    if (stat(path, &st) != 0)
        return error_set(errno == ENOENT || errno == ENOTDIR ? CS_ERR_MISSING : CS_ERR_IO,
                       "%s: cannot stat: %s", path, strerror(errno));
    return S_ISDIR(st.st_mode) ? folder_identity(path, cache_dir, hex)
                               : sha256_file_memo(path, cache_dir, hex);
}

cs_status cs_model_identity(const char *name, const char *path, const char *cache_dir, char hex[65]) {
    /* Never the official hash on trust: a replaced or truncated file in
     * ~/.cache/clip must not share cache entries with the genuine one. */
    cs_status s = cs_file_identity(path, cache_dir, hex);
    const char *official = s == CS_OK && name ? cs_model_official_sha256(name) : NULL;
    if (official && strcmp(hex, official) != 0)
        return error_set(CS_ERR_FORMAT, "%s: SHA-256 %s is not the official %s of %s", path, hex, official,
                       name);
    return s;
}

/* The key starts with the library's version and the entry format: a new
 * release (whose text tower may compute differently) never reads entries
 * an older one wrote. Bump CACHE_FORMAT when the entry layout changes. */
#define CACHE_FORMAT 2

/* Entry path: <cache>/embeddings/<model[:16]>/<sha256(version, format, model, D, templates, name)>. */
static void entry_path(const char *cache_dir, const char *model_hex, int dim,
                       const char *const *templates, int nt, const char *name, char *out, size_t n) {
    size_t len = 64 + strlen(name) + 96;
    for (int k = 0; k < nt; k++) len += strlen(templates[k]) + 1;
    char *key = malloc(len), hex[65];
    int o = snprintf(key, len, "clip-surgery %s cache %d\n%s\n%d\n%d\n", cs_version(), CACHE_FORMAT,
                     model_hex, dim, nt);
    for (int k = 0; k < nt; k++) o += snprintf(key + o, len - (size_t)o, "%s\n", templates[k]);
    o += snprintf(key + o, len - (size_t)o, "%s", name);
    cs_sha256_bytes(key, (size_t)o, hex);
    free(key);
    snprintf(out, n, "%s/embeddings/%.16s/%s", cache_dir, model_hex, hex);
}

int cs_cache_lookup(const char *cache_dir, const char *model_hex, int dim,
                    const char *const *templates, int nt, const char *name, float *out) {
    char path[4400];
    entry_path(cache_dir, model_hex, dim, templates, nt, name, path, sizeof path);
    FILE *f;
    size_t size;
    /* Only a regular file is read: a FIFO planted in the cache never blocks. */
    if (file_fopen_input(path, &f, &size) != CS_OK) return 0;
    char magic[8];
    int32_t d = 0;
    uint32_t crc = 0;
    int ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, k_magic, 8) && fread(&d, 4, 1, f) == 1 &&
             d == dim && fread(&crc, 4, 1, f) == 1 && fread(out, sizeof(float), (size_t)dim, f) == (size_t)dim &&
             fgetc(f) == EOF;
    fclose(f);
    /* A corrupt entry is never trusted: the caller recomputes and rewrites it. */
    return ok && crc == (uint32_t)crc32(0, (const Bytef *)out, (uInt)(sizeof(float) * (size_t)dim));
}

cs_status cs_cache_store(const char *cache_dir, const char *model_hex, int dim,
                         const char *const *templates, int nt, const char *name, const float *emb) {
    char path[4400];
    entry_path(cache_dir, model_hex, dim, templates, nt, name, path, sizeof path);
    char *slash = strrchr(path, '/');
    *slash = 0;
    cs_status s = cs_mkdirs(path);
    *slash = '/';
    if (s != CS_OK) return s;
    cs_atomic_file af;
    if ((s = cs_atomic_open(&af, path)) != CS_OK) return s;
    int32_t d = dim;
    uint32_t crc = (uint32_t)crc32(0, (const Bytef *)emb, (uInt)(sizeof(float) * (size_t)dim));
    fwrite(k_magic, 1, 8, af.f);
    fwrite(&d, 4, 1, af.f);
    fwrite(&crc, 4, 1, af.f);
    fwrite(emb, sizeof(float), (size_t)dim, af.f);
    return atomic_commit_now(&af);
}
