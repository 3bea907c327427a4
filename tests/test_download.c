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
    CHECK_OK(cs_sha256_file(src, hex));
    unlink(src);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/file", port);
    snprintf(dest, sizeof dest, "%s/good.bin", dir);
    CHECK_OK(cs_download(url, dest, hex, NULL, NULL));
    char got[128] = {0};
    f = fopen(dest, "rb");
    CHECK(f && fread(got, 1, sizeof got, f) == sizeof k_body - 1 && !strcmp(got, k_body));
    if (f) fclose(f);

    snprintf(dest, sizeof dest, "%s/bad.bin", dir);
    CHECK_STATUS(cs_download(url, dest, "00000000000000000000000000000000000000000000000000000000000000ff",
                             NULL, NULL), CS_ERR_FORMAT);
    CHECK_ERR_HAS("does not match");
    struct stat st;
    CHECK(stat(dest, &st) != 0);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/missing", port);
    snprintf(dest, sizeof dest, "%s/missing.bin", dir);
    CHECK_STATUS(cs_download(url, dest, NULL, NULL, NULL), CS_ERR_IO);
    CHECK_ERR_HAS(url);
    CHECK(count_files(dir) == 1); /* only good.bin: no temporaries left */
    waitpid(child, NULL, 0);

    /* Names: an existing path is kept; a cached name resolves without the
     * network; an absent one with downloads off says the URL. */
    char out[4096];
    CHECK_OK(cs_resolve_model(dir, NULL, 0, NULL, NULL, out, sizeof out));
    CHECK(!strcmp(out, dir));
    snprintf(dest, sizeof dest, "%s/ViT-B-16.pt", dir);
    f = fopen(dest, "wb");
    fclose(f);
    CHECK_OK(cs_resolve_model("CS-ViT-B/16", dir, 0, NULL, NULL, out, sizeof out));
    CHECK(!strcmp(out, dest));
    CHECK_STATUS(cs_resolve_model("RN50x64", dir, 0, NULL, NULL, out, sizeof out), CS_ERR_MISSING);
    CHECK_ERR_HAS("https://openaipublic.azureedge.net/clip/models/be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c/RN50x64.pt");
    CHECK(cs_model_official_sha256("ViT-L/14@336px") && !cs_model_official_sha256("ViT-H/14"));
    CHECK_STATUS(cs_resolve_vocab(dir, 0, NULL, NULL, out, sizeof out), CS_ERR_MISSING);
    CHECK_ERR_HAS("bpe_simple_vocab_16e6.txt.gz");

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish();
}
