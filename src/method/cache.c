/* The class-embedding cache (DESIGN.md section 5): one small file per
 * (model, template set, class name), checksummed, written by rename so
 * concurrent runs never see a partial entry. A model is identified by its
 * SHA-256: the official one for named models; for files, computed once and
 * memoized by path, size and mtime. */
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
    else return cs_fail(CS_ERR_ARG, "neither XDG_CACHE_HOME nor HOME is set: no cache folder");
    return CS_OK;
}

/* The weights file a model path stands for (a folder holds model.safetensors). */
static void weights_file(const char *path, char *out, size_t n) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(out, n, "%s/model.safetensors", path);
    else snprintf(out, n, "%s", path);
}

cs_status cs_model_identity(const char *name, const char *path, const char *cache_dir, char hex[65]) {
    const char *official = name ? cs_model_official_sha256(name) : NULL;
    if (official) {
        snprintf(hex, 65, "%s", official);
        return CS_OK;
    }
    char file[4096], real[4096], memo[4200], key[65], line[256];
    weights_file(path, file, sizeof file);
    struct stat st;
    if (stat(file, &st) != 0) return cs_fail(CS_ERR_IO, "%s: cannot stat", file);
    if (!realpath(file, real)) snprintf(real, sizeof real, "%s", file);
    cs_sha256_bytes(real, strlen(real), key);
    snprintf(memo, sizeof memo, "%s/hashes/%.32s", cache_dir, key);
    char stamp[128];
    snprintf(stamp, sizeof stamp, "%lld %lld.%09ld ", (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec);
    FILE *f = fopen(memo, "r");
    if (f) {
        int ok = fgets(line, sizeof line, f) && !strncmp(line, stamp, strlen(stamp)) &&
                 strlen(line) >= strlen(stamp) + 64;
        fclose(f);
        if (ok) {
            memcpy(hex, line + strlen(stamp), 64);
            hex[64] = 0;
            return CS_OK;
        }
    }
    cs_status s = cs_sha256_file(file, hex);
    if (s != CS_OK) return s;
    /* A failure to memoize only costs a rehash next time. */
    snprintf(line, sizeof line, "%s/hashes", cache_dir);
    cs_atomic_file af;
    if (cs_mkdirs(line) == CS_OK && cs_atomic_open(&af, memo) == CS_OK) {
        fprintf(af.f, "%s%s\n", stamp, hex);
        cs_atomic_commit(&af);
    }
    return CS_OK;
}

/* Entry path: <cache>/embeddings/<model[:16]>/<sha256(model, D, templates, name)>. */
static void entry_path(const char *cache_dir, const char *model_hex, int dim,
                       const char *const *templates, int nt, const char *name, char *out, size_t n) {
    size_t len = 64 + strlen(name) + 32;
    for (int k = 0; k < nt; k++) len += strlen(templates[k]) + 1;
    char *key = malloc(len), hex[65];
    int o = snprintf(key, len, "%s\n%d\n%d\n", model_hex, dim, nt);
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
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
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
    return cs_atomic_commit(&af);
}
