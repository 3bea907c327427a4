#include "download.h"

/* curl's type-checking wrapper of curl_easy_setopt calls the function by
 * its name; here it is called through the pointer below. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/dynlib.h"
#include "base/fileio.h"

/* libcurl is opened on the first download (dynlib.h). */
#define CURL_FUNCS(X) X(curl_easy_init) X(curl_easy_setopt) X(curl_easy_perform) \
    X(curl_easy_cleanup) X(curl_easy_strerror)
DYNLIB_DEFINE(g_curl, "libcurl.so.4", "downloads", CURL_FUNCS);

static void to_hex(const unsigned char *md, unsigned n, char *hex) {
    for (unsigned i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

void cs_sha256_bytes(const void *data, size_t len, char hex[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    to_hex(md, n, hex);
}

cs_status sha256_file(const char *path, char hex[65]) {
    FILE *f;
    size_t size;
    cs_status s = file_fopen_input(path, &f, &size);
    if (s != CS_OK) return s;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        fclose(f);
        EVP_MD_CTX_free(ctx);
        return error_set(CS_ERR_NOMEM, "%s: cannot start SHA-256", path);
    }
    unsigned char buf[1 << 16], md[EVP_MAX_MD_SIZE];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(ctx, buf, n);
    int err = ferror(f);
    fclose(f);
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    if (err) return error_set(CS_ERR_IO, "%s: read error", path);
    to_hex(md, len, hex);
    return CS_OK;
}

cs_status sha256_file_memo(const char *path, const char *memo_dir, char hex[65]) {
    struct stat st;
    if (stat(path, &st) != 0)
        return error_set(errno == ENOENT || errno == ENOTDIR ? CS_ERR_MISSING : CS_ERR_IO,
                       "%s: cannot stat: %s", path, strerror(errno));
    /* A FIFO or device would block the read (or never end): refused. */
    if (!S_ISREG(st.st_mode)) return error_set(CS_ERR_ARG, "%s: not a regular file", path);
    if (!memo_dir) return sha256_file(path, hex);
    char real[4096], key[65], dir[4200], memo[4300], stamp[160], line[256];
    if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
    cs_sha256_bytes(real, strlen(real), key);
    snprintf(dir, sizeof dir, "%s/hashes", memo_dir);
    snprintf(memo, sizeof memo, "%s/%.32s", dir, key);
    /* ctime cannot be set back by a user (mtime can), and the inode changes
     * when a file is replaced by another one. */
    snprintf(stamp, sizeof stamp, "%lld %lld.%09ld %lld.%09ld %llu %llu ", (long long)st.st_size,
             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec,
             st.st_ctim.tv_nsec, (unsigned long long)st.st_ino, (unsigned long long)st.st_dev);
    FILE *f;
    size_t size;
    if (file_fopen_input(memo, &f, &size) == CS_OK) { /* never a FIFO planted there */
        size_t n = strlen(stamp);
        int ok = fgets(line, sizeof line, f) && !strncmp(line, stamp, n) && strlen(line) == n + 65 &&
                 strspn(line + n, "0123456789abcdef") == 64;
        fclose(f);
        if (ok) {
            memcpy(hex, line + n, 64);
            hex[64] = 0;
            return CS_OK;
        }
    }
    cs_status s = sha256_file(path, hex);
    if (s != CS_OK) return s;
    cs_atomic_file af;
    if (cs_mkdirs(dir) == CS_OK && cs_atomic_open(&af, memo) == CS_OK) {
        fprintf(af.f, "%s%s\n", stamp, hex);
        atomic_commit_now(&af);
    }
    return CS_OK;
}

typedef struct transfer {
    FILE *f;
    EVP_MD_CTX *md;
    cs_progress_fn progress;
    void *ctx;
} transfer;

static size_t on_data(char *data, size_t size, size_t n, void *user) {
    transfer *t = user;
    size_t bytes = size * n;
    EVP_DigestUpdate(t->md, data, bytes);
    return fwrite(data, 1, bytes, t->f);
}

static int on_progress(void *user, curl_off_t total, curl_off_t done, curl_off_t ut, curl_off_t un) {
    transfer *t = user;
    if (t->progress) t->progress(t->ctx, (int64_t)done, (int64_t)total);
    return 0;
}

cs_status download_to_file(const char *url, const char *dest, const char *sha256_hex,
                      cs_progress_fn progress, void *ctx) {
    cs_status s = dynlib_open(&g_curl);
    if (s != CS_OK) return s;
    cs_atomic_file af;
    s = cs_atomic_open(&af, dest);
    if (s != CS_OK) return s;
    transfer t = {af.f, EVP_MD_CTX_new(), progress, ctx};
    CURL *curl = p_curl_easy_init();
    if (!curl || !t.md || !EVP_DigestInit_ex(t.md, EVP_sha256(), NULL)) {
        p_curl_easy_cleanup(curl);
        EVP_MD_CTX_free(t.md);
        cs_atomic_abort(&af);
        return error_set(CS_ERR_NOMEM, "%s: cannot start the download", url);
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    p_curl_easy_setopt(curl, CURLOPT_URL, url);
    p_curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    p_curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    p_curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    p_curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    p_curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    p_curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
    p_curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    p_curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    p_curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    CURLcode rc = p_curl_easy_perform(curl);
    p_curl_easy_cleanup(curl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    char hex[65] = "";
    EVP_DigestFinal_ex(t.md, md, &len);
    EVP_MD_CTX_free(t.md);
    to_hex(md, len, hex);
    if (rc != CURLE_OK) {
        cs_atomic_abort(&af);
        return error_set(CS_ERR_IO, "%s: download failed: %s", url,
                       curl_err[0] ? curl_err : p_curl_easy_strerror(rc));
    }
    if (sha256_hex && strcmp(hex, sha256_hex) != 0) {
        cs_atomic_abort(&af);
        return error_set(CS_ERR_FORMAT, "%s: SHA-256 %s does not match the expected %s; not saved", url,
                       hex, sha256_hex);
    }
    return atomic_commit_now(&af);
}
