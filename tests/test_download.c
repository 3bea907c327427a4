/* Downloads against a tiny HTTP server this test starts on 127.0.0.1: a file
 * with the right SHA-256 is saved, one with a wrong checksum is rejected and
 * leaves nothing behind, a 404 is an error. Model-name resolution without
 * the network. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "formats/download.h"
#include "golden.h"
#include "test.h"

static const char k_body[] = "tiny file served over HTTP\n";

/* Serve `requests` requests, then exit: GET /file gives k_body, else 404. */
static void serve(int fd, int requests) {
    for (int r = 0; r < requests; r++) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) break;
        char req[2048];
        ssize_t n = recv(c, req, sizeof req - 1, 0);
        req[n > 0 ? n : 0] = 0;
        char resp[512];
        if (!strncmp(req, "GET /file ", 10))
            snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sizeof k_body - 1, k_body);
        else
            snprintf(resp, sizeof resp, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        if (send(c, resp, strlen(resp), 0) < 0) break;
        close(c);
    }
    _exit(0);
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* The name -> URL table against openai/CLIP's published list (clip/clip.py,
 * _MODELS): the URL's second-to-last element is the SHA-256 a file must
 * have, so this is what makes the verification mean anything. */
static void test_official_urls(const char *dir) {
    static const char *const k_published[][2] = {
        {"RN50", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt"},
        {"RN101", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599/RN101.pt"},
        {"RN50x4", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd/RN50x4.pt"},
        {"RN50x16", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa/RN50x16.pt"},
        {"RN50x64", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c/RN50x64.pt"},
        {"ViT-B/32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"},
        {"ViT-B/16", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt"},
        {"ViT-L/14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt"},
        {"ViT-L/14@336px", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt"},
    };
    char out[4096], url[256];
    for (int i = 0; i < 9; i++) {
        snprintf(url, sizeof url, "https://openaipublic.azureedge.net/clip/models/%s", k_published[i][1]);
        for (int alias = 0; alias < 2; alias++) {
            char name[64];
            snprintf(name, sizeof name, "%s%s", alias ? "CS-" : "", k_published[i][0]);
            CHECK_STATUS(cs_resolve_model(name, dir, 0, NULL, NULL, out, sizeof out), CS_ERR_MISSING);
            CHECK_MSG(strstr(cs_last_error(), url) != NULL, "%s: '%s' lacks %s", name, cs_last_error(), url);
        }
        const char *sha = cs_model_official_sha256(k_published[i][0]);
        CHECK_MSG(sha && !strncmp(sha, k_published[i][1], 64) && strlen(sha) == 64, "%s", k_published[i][0]);
    }
}

/* The vocabulary in the cache folder: the genuine file resolves (and its
 * digest is memoized), a damaged copy is refused. */
static void test_vocab_verified(const char *dir) {
    char out[4096], dest[600], cmd[2048];
    CHECK_STATUS(cs_resolve_vocab(dir, 0, NULL, NULL, out, sizeof out), CS_ERR_MISSING);
    CHECK_ERR_HAS("bpe_simple_vocab_16e6.txt.gz");
    const char *shared = golden_shared_dir_if_present();
    if (!shared) {
        printf("no shared folder: the genuine-vocabulary case is not run\n");
        return;
    }
    char src[4096];
    snprintf(src, sizeof src, "%s/clip/bpe_simple_vocab_16e6.txt.gz", shared);
    snprintf(dest, sizeof dest, "%s/bpe_simple_vocab_16e6.txt.gz", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", src, dest);
    CHECK(system(cmd) == 0);
    CHECK_OK(cs_resolve_vocab(dir, 0, NULL, NULL, out, sizeof out));
    CHECK(!strcmp(out, dest));
    CHECK_OK(cs_resolve_vocab(dir, 0, NULL, NULL, out, sizeof out)); /* from the memo */
    FILE *f = fopen(dest, "r+b");
    fseek(f, 1000, SEEK_SET);
    fputc(0x42, f);
    fclose(f);
    CHECK_STATUS(cs_resolve_vocab(dir, 0, NULL, NULL, out, sizeof out), CS_ERR_FORMAT);
    CHECK_ERR_HAS("924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a");
    unlink(dest);
}

int main(void) {
    char dir[] = "/tmp/cs_download_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) || listen(fd, 4) ||
        getsockname(fd, (struct sockaddr *)&addr, &len))
        return 1;
    pid_t child = fork();
    if (child == 0) serve(fd, 3);
    close(fd);
    int port = ntohs(addr.sin_port);

    char url[128], dest[256], hex[65], src[256];
    snprintf(src, sizeof src, "%s/expected", dir);
    FILE *f = fopen(src, "wb");
    fwrite(k_body, 1, sizeof k_body - 1, f);
    fclose(f);
    CHECK_OK(sha256_file(src, hex));
    unlink(src);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/file", port);
    snprintf(dest, sizeof dest, "%s/good.bin", dir);
    CHECK_OK(download_to_file(url, dest, hex, NULL, NULL));
    char got[128] = {0};
    f = fopen(dest, "rb");
    CHECK(f && fread(got, 1, sizeof got, f) == sizeof k_body - 1 && !strcmp(got, k_body));
    if (f) fclose(f);

    snprintf(dest, sizeof dest, "%s/bad.bin", dir);
    CHECK_STATUS(download_to_file(url, dest, "00000000000000000000000000000000000000000000000000000000000000ff",
                             NULL, NULL), CS_ERR_FORMAT);
    CHECK_ERR_HAS("does not match");
    struct stat st;
    CHECK(stat(dest, &st) != 0);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/missing", port);
    snprintf(dest, sizeof dest, "%s/missing.bin", dir);
    CHECK_STATUS(download_to_file(url, dest, NULL, NULL, NULL), CS_ERR_IO);
    CHECK_ERR_HAS(url);
    CHECK(count_files(dir) == 1); /* only good.bin: no temporaries left */
    waitpid(child, NULL, 0);

    /* Names: an existing path is kept; an absent one with downloads off
     * says the official URL. */
    char out[4096];
    CHECK_OK(cs_resolve_model(dir, NULL, 0, NULL, NULL, out, sizeof out));
    CHECK(!strcmp(out, dir));
    CHECK_STATUS(cs_resolve_model("RN50x64", dir, 0, NULL, NULL, out, sizeof out), CS_ERR_MISSING);
    CHECK(cs_model_official_sha256("ViT-L/14@336px") && !cs_model_official_sha256("ViT-H/14"));
    test_official_urls(dir);

    /* A cached file is verified as clip.load does: an empty or replaced
     * ViT-B-16.pt is refused (with downloads off; with them on it would be
     * downloaded again), never used. */
    snprintf(dest, sizeof dest, "%s/ViT-B-16.pt", dir);
    f = fopen(dest, "wb");
    fclose(f);
    CHECK_STATUS(cs_resolve_model("CS-ViT-B/16", dir, 0, NULL, NULL, out, sizeof out), CS_ERR_FORMAT);
    CHECK_ERR_HAS("is not the official 5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f");
    CHECK_ERR_HAS(dest);
    test_vocab_verified(dir);

        char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish();
}
