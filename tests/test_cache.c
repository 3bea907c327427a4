/* The class-embedding cache: round trip, keys (model, templates, name), a
 * corrupt entry is never trusted, and the model-hash memo follows the file. */
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
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

    /* Identity: the official hash for names; for files, the file's SHA-256,
     * memoized, recomputed when the file changes. */
    char hex[65], hex2[65], file[600];
    CHECK_OK(cs_model_identity("ViT-B/16", "/nonexistent", dir, hex));
    CHECK(!strcmp(hex, "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f"));
    snprintf(file, sizeof file, "%s/weights.bin", dir);
    f = fopen(file, "wb");
    fputs("abc", f);
    fclose(f);
    CHECK_OK(cs_model_identity(NULL, file, dir, hex));
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    CHECK_OK(cs_model_identity(NULL, file, dir, hex2));
    CHECK(!strcmp(hex, hex2));
    f = fopen(file, "wb");
    fputs("abcd", f);
    fclose(f);
    CHECK_OK(cs_model_identity(NULL, file, dir, hex2));
    CHECK(!strcmp(hex2, "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"));
    CHECK_STATUS(cs_model_identity(NULL, "/nonexistent/model.pt", dir, hex), CS_ERR_IO);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish();
}
