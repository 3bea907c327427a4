/* Model names resolved like openai/CLIP's clip.load: the file in the cache
 * folder, else downloaded from the official URL, whose second-to-last path
 * element is the file's SHA-256, which a cached file must match too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/fileio.h"
#include "formats/download.h"
#include "model.h"

#define OPENAI_BASE "https://openaipublic.azureedge.net/clip/models/"

static const struct { const char *name, *sha256, *file; } k_models[] = {
    {"RN50", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762", "RN50.pt"},
    {"RN101", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599", "RN101.pt"},
    {"RN50x4", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd", "RN50x4.pt"},
    {"RN50x16", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa", "RN50x16.pt"},
    {"RN50x64", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c", "RN50x64.pt"},
    {"ViT-B/32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", "ViT-B-32.pt"},
    {"ViT-B/16", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", "ViT-B-16.pt"},
    {"ViT-L/14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", "ViT-L-14.pt"},
    {"ViT-L/14@336px", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
     "ViT-L-14-336px.pt"},
};

#define VOCAB_FILE "bpe_simple_vocab_16e6.txt.gz"
#define VOCAB_URL "https://raw.githubusercontent.com/openai/CLIP/main/clip/" VOCAB_FILE
#define VOCAB_SHA256 "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

static int find_model(const char *name) {
    if (!strncmp(name, "CS-", 3)) name += 3; /* the authors' aliases */
    for (int i = 0; i < (int)(sizeof k_models / sizeof *k_models); i++)
        if (!strcmp(k_models[i].name, name)) return i;
    return -1;
}

const char *cs_model_official_sha256(const char *name) {
    int i = find_model(name);
    return i >= 0 ? k_models[i].sha256 : NULL;
}

cs_status hub_cache_folder(const char *cache_dir, char *out, size_t n) {
    if (cache_dir) {
        if (!*cache_dir) return error_set(CS_ERR_ARG, "the cache folder name is empty");
        snprintf(out, n, "%s", cache_dir);
        return CS_OK;
    }
    const char *home = getenv("HOME");
    if (!home || !*home)
        return error_set(CS_ERR_ARG, "HOME is not set; give a cache folder (--cache-dir)");
    snprintf(out, n, "%s/.cache/clip", home);
    return CS_OK;
}

/* <dir>/<file> if present and its SHA-256 is the expected one; else
 * download url there (when allowed). As clip.load does, a file already in
 * the cache is verified (once: the digest is memoized in the embedding
 * cache's folder) and replaced when it differs, so a truncated or swapped
 * file is never used. */
static cs_status fetch(const char *dir, const char *file, const char *url, const char *sha256,
                       int download, cs_progress_fn progress, void *ctx, char *out, size_t n) {
    if ((size_t)snprintf(out, n, "%s/%s", dir, file) >= n)
        return error_set(CS_ERR_ARG, "%s/%s: path too long", dir, file);
    struct stat st;
    if (stat(out, &st) == 0) {
        char memo[4096], hex[65];
        cs_status s = sha256_file_memo(out, cs_cache_dir(NULL, memo, sizeof memo) == CS_OK ? memo : NULL,
                                          hex);
        if (s != CS_OK) return s;
        if (!strcmp(hex, sha256)) return CS_OK;
        if (!download)
            return error_set(CS_ERR_FORMAT, "%s: SHA-256 %s is not the official %s (damaged or replaced); "
                           "delete it to download it again from %s", out, hex, sha256, url);
    } else if (!download) {
        return error_set(CS_ERR_MISSING, "%s not found; download %s and put it there", out, url);
    }
    cs_status s = cs_mkdirs(dir);
    if (s == CS_OK) s = download_to_file(url, out, sha256, progress, ctx);
    if (s != CS_OK) error_prefix("could not fetch %s (or put the file at %s by hand)", file, out);
    return s;
}

cs_status cs_resolve_model(const char *name_or_path, const char *cache_dir, int download,
                           cs_progress_fn progress, void *ctx, char *out, size_t out_len) {
    struct stat st;
    int i = find_model(name_or_path);
    if (i < 0 || stat(name_or_path, &st) == 0) {
        if ((size_t)snprintf(out, out_len, "%s", name_or_path) >= out_len)
            return error_set(CS_ERR_ARG, "%s: path too long", name_or_path);
        return CS_OK;
    }
    char dir[4096], url[512];
    cs_status s = hub_cache_folder(cache_dir, dir, sizeof dir);
    snprintf(url, sizeof url, OPENAI_BASE "%s/%s", k_models[i].sha256, k_models[i].file);
    return s != CS_OK ? s : fetch(dir, k_models[i].file, url, k_models[i].sha256, download, progress,
                                  ctx, out, out_len);
}

cs_status cs_resolve_vocab(const char *cache_dir, int download, cs_progress_fn progress,
                           void *ctx, char *out, size_t out_len) {
    char dir[4096];
    cs_status s = hub_cache_folder(cache_dir, dir, sizeof dir);
    return s != CS_OK ? s : fetch(dir, VOCAB_FILE, VOCAB_URL, VOCAB_SHA256, download, progress, ctx,
                                  out, out_len);
}
