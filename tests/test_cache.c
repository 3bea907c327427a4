/* The class-embedding cache: round trip, keys (model, templates, name), a
 * corrupt entry is never trusted, the key holds the library's version and
 * the cache format, and the file-hash memo follows the file (path, size,
 * mtime, ctime, inode). */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "formats/download.h"
#include "test.h"

static const char *k_tmpl[2] = {"a photo of a {}.", "a {}."};

/* The one entry file under dir/embeddings/<model>/ (there is one in this test). */
static int entry_file(const char *dir, const char *model16, char *out, size_t n) {
    char sub[600];
    snprintf(sub, sizeof sub, "%s/embeddings/%s", dir, model16);
    DIR *d = opendir(sub);
    int found = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') found = snprintf(out, n, "%s/%s", sub, e->d_name) > 0;
    if (d) closedir(d);
    return found;
}

/* The entry's name is the SHA-256 of the key, which starts with the
 * library's version and the cache format: entries of another release are
 * never read (a mutation dropping either changes the name). */
static void test_key_format(const char *dir, const float *emb) {
    const char *model = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    CHECK_OK(cs_cache_store(dir, model, 4, k_tmpl, 2, "cat", emb));
    char key[512], want[65], path[1024];
    int n = snprintf(key, sizeof key, "clip-surgery %s cache 2\n%s\n4\n2\n%s\n%s\ncat", cs_version(), model,
                     k_tmpl[0], k_tmpl[1]);
    cs_sha256_bytes(key, (size_t)n, want);
    CHECK(entry_file(dir, "fedcba9876543210", path, sizeof path));
    CHECK_MSG(strstr(path, want) != NULL, "%s is not named %s", path, want);
    CHECK(!strcmp(cs_version(), CS_PROJECT_VERSION));
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

/* Identity: the file's SHA-256, memoized; recomputed when the file changes,
 * also when size and mtime stay; an official name with another file is
 * refused; a folder's identity covers its files. */
static void test_identity(const char *dir) {
    char hex[65], hex2[65], file[600], other[600], memo[700];
    snprintf(file, sizeof file, "%s/weights.bin", dir);
    write_file(file, "abc");
    CHECK_OK(cs_model_identity(NULL, file, dir, hex));
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    CHECK_OK(cs_model_identity(NULL, file, dir, hex2));
    CHECK(!strcmp(hex, hex2));
    /* The memo is what the second call used: a forged digest in it shows. */
    char real[4096], key[65];
    CHECK(realpath(file, real) != NULL);
    cs_sha256_bytes(real, strlen(real), key);
    snprintf(memo, sizeof memo, "%s/hashes/%.32s", dir, key);
    char line[256] = "";
    FILE *f = fopen(memo, "r");
    CHECK(f && fgets(line, sizeof line, f));
    if (f) fclose(f);
    char *digest = strstr(line, hex);
    CHECK(digest != NULL);
    if (digest) {
        memset(digest, '0', 64);
        write_file(memo, line);
        CHECK_OK(cs_file_identity(file, dir, hex2));
        CHECK(!strcmp(hex2, "0000000000000000000000000000000000000000000000000000000000000000"));
    }
    /* Same size and mtime, other content: ctime tells. */
    struct stat st;
    stat(file, &st);
    usleep(20000);
    write_file(file, "abd");
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    CHECK(utimensat(AT_FDCWD, file, times, 0) == 0);
    CHECK_OK(cs_file_identity(file, dir, hex2));
    CHECK(!strcmp(hex2, "a52d159f262b2c6ddb724a61840befc36eb30c88877a4030b65cbe86298449c9"));
    /* Another file renamed over it: a new inode. */
    snprintf(other, sizeof other, "%s/other.bin", dir);
    write_file(other, "abcd");
    CHECK(rename(other, file) == 0);
    CHECK_OK(cs_model_identity(NULL, file, dir, hex2));
    CHECK(!strcmp(hex2, "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"));
    /* An official name never stands for a file that is not the official one. */
    CHECK_STATUS(cs_model_identity("ViT-B/16", file, dir, hex), CS_ERR_FORMAT);
    CHECK_ERR_HAS("5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f");
    CHECK_STATUS(cs_model_identity(NULL, "/nonexistent/model.pt", dir, hex), CS_ERR_MISSING);
    CHECK_STATUS(cs_model_identity("ViT-B/16", "/nonexistent/ViT-B-16.pt", dir, hex), CS_ERR_MISSING);
    /* A FIFO is refused, never read (the read would block). */
    char fifo[700];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK_STATUS(cs_file_identity(fifo, dir, hex), CS_ERR_ARG);
    CHECK_ERR_HAS("not a regular file");
    CHECK_OK(cs_file_identity(file, NULL, hex)); /* no memo folder: hashed each time */
    CHECK(!strcmp(hex, hex2));

    /* A folder: vocab.json and merges.txt both count. */
    char folder[600], path[700];
    snprintf(folder, sizeof folder, "%s/hf", dir);
    mkdir(folder, 0755);
    CHECK_STATUS(cs_file_identity(folder, dir, hex), CS_ERR_MISSING);
    snprintf(path, sizeof path, "%s/vocab.json", folder);
    write_file(path, "{}");
    snprintf(path, sizeof path, "%s/merges.txt", folder);
    write_file(path, "#version: 0.2\n");
    CHECK_OK(cs_file_identity(folder, dir, hex));
    write_file(path, "#version: 0.2\na b\n");
    CHECK_OK(cs_file_identity(folder, dir, hex2));
    CHECK(strcmp(hex, hex2) != 0);
}

int main(void) {
    char dir[] = "/tmp/cs_cache_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    const char *model = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    float emb[4] = {0.5f, -0.5f, 0.25f, 1.0f}, got[4] = {0};
    CHECK(!cs_cache_lookup(dir, model, 4, k_tmpl, 2, "cat", got));
    CHECK_OK(cs_cache_store(dir, model, 4, k_tmpl, 2, "cat", emb));
    CHECK(cs_cache_lookup(dir, model, 4, k_tmpl, 2, "cat", got) && !memcmp(got, emb, sizeof emb));
    CHECK(!cs_cache_lookup(dir, model, 4, k_tmpl, 1, "cat", got));  /* other template set */
    CHECK(!cs_cache_lookup(dir, model, 4, k_tmpl, 2, "dog", got));  /* other class */
    CHECK(!cs_cache_lookup(dir, model, 3, k_tmpl, 2, "cat", got));  /* other width */
    CHECK(!cs_cache_lookup(dir, "f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                           4, k_tmpl, 2, "cat", got));

    /* Flip one byte of the data: the checksum rejects the entry. */
    char path[1024];
    CHECK(entry_file(dir, "0123456789abcdef", path, sizeof path));
    FILE *f = fopen(path, "r+b");
    fseek(f, 20, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    CHECK(!cs_cache_lookup(dir, model, 4, k_tmpl, 2, "cat", got));
    /* Truncated entry: rejected too. */
    CHECK(truncate(path, 10) == 0);
    CHECK(!cs_cache_lookup(dir, model, 4, k_tmpl, 2, "cat", got));
    CHECK_OK(cs_cache_store(dir, model, 4, k_tmpl, 2, "cat", emb));
    CHECK(cs_cache_lookup(dir, model, 4, k_tmpl, 2, "cat", got));

    test_key_format(dir, emb);
    test_identity(dir);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish();
}
