/* What the HTTP layer of `clip-surgery serve` costs: the library's own
 * explain job (encode + feature surgery + maps, the image decoded once) on
 * one image, against a warm server answering POST /api/explain for the same
 * image and classes (?format=npy: decode + job + the maps' .npy; and the
 * page's JSON: + PNG heatmaps as data URLs). Medians of N runs after a
 * warm-up; loopback only.
 *
 *   bench_serve TOOL MODEL IMAGE [--vocab V] [--classes a,b,c] [--res R] [--runs N]
 *   e.g. ./build/bench_serve ./build/clip-surgery vitb16.safetensors photo.jpg --res 224 */
#include <curl/curl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "clip_surgery.h"
#include "median.h"

static size_t discard(char *p, size_t size, size_t n, void *ctx) {
    *(size_t *)ctx += size * n;
    return size * n;
}

/* Start the server on a free port; its pid, and the port into *port. */
static pid_t start_server(const char *tool, const char *model, const char *vocab, int *port) {
    int out[2];
    if (pipe(out)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        if (vocab) execl(tool, tool, "serve", "--model", model, "--vocab", vocab, "--port", "0", "--quiet", (char *)NULL);
        else execl(tool, tool, "serve", "--model", model, "--port", "0", "--quiet", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[1024] = "";
    size_t n = 0;
    while (n < sizeof line - 1 && !memchr(line, '\n', n)) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 120000) <= 0) break;
        ssize_t got = read(out[0], line + n, sizeof line - 1 - n);
        if (got <= 0) break;
        n += (size_t)got;
        line[n] = 0;
    }
    close(out[0]);
    const char *p = strstr(line, "127.0.0.1:");
    *port = p ? atoi(p + 10) : 0;
    return pid;
}

/* Median seconds of `runs` POSTs of the image to url (one connection, kept alive). */
static double time_requests(const char *url, const char *image, size_t len, int runs, size_t *bytes) {
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: image/jpeg");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, image);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, bytes);
    double *t = calloc((size_t)runs, sizeof *t);
    long status = 0;
    for (int i = -1; i < runs; i++) { /* -1: warm-up */
        *bytes = 0;
        double t0 = cs_now();
        CURLcode e = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (e != CURLE_OK || status != 200) {
            fprintf(stderr, "bench_serve: %s: %s, status %ld\n", url, curl_easy_strerror(e), status);
            exit(1);
        }
        if (i >= 0) t[i] = cs_now() - t0;
    }
    double m = bench_median(t, runs);
    free(t);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return m;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_serve TOOL MODEL IMAGE [--vocab V] [--classes a,b,c] [--res R] [--runs N]\n");
        return 2;
    }
    const char *tool = argv[1], *model = argv[2], *image_path = argv[3], *vocab = NULL, *classes = "person,dog,grass";
    int res = 0, runs = 10;
    for (int i = 4; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--vocab")) vocab = argv[i + 1];
        else if (!strcmp(argv[i], "--classes")) classes = argv[i + 1];
        else if (!strcmp(argv[i], "--res")) res = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
    }
    if (runs < 1) runs = 1;
    /* The library alone: load, embed the classes, then explain the decoded image. */
    cs_load_options lo = cs_load_defaults();
    lo.vocab = vocab;
    cs_model *m;
    cs_classes *cl;
    cs_image img;
    if (cs_load(model, &lo, &m) != CS_OK || cs_classes_parse(classes, &cl) != CS_OK ||
        cs_image_load(image_path, NULL, &img) != CS_OK || cs_classes_embed(cl, m, NULL, NULL) != CS_OK) {
        fprintf(stderr, "bench_serve: %s\n", cs_last_error());
        return 1;
    }
    cs_explain_options o = cs_explain_defaults();
    o.resolution = res;
    cs_input in = {.image = &img};
    double *t = calloc((size_t)runs, sizeof *t);
    for (int i = -1; i < runs; i++) {
        cs_explain_result r;
        double t0 = cs_now();
        if (cs_explain(m, cl, &in, 1, &o, &r) != CS_OK) {
            fprintf(stderr, "bench_serve: %s\n", cs_last_error());
            return 1;
        }
        if (i >= 0) t[i] = cs_now() - t0;
        cs_explain_result_free(&r);
    }
    double lib = bench_median(t, runs);
    free(t);
    cs_image_free(&img);
    cs_classes_free(cl);
    cs_model_free(m); /* the server gets the machine to itself */

    char *data;
    size_t len;
    if (cs_read_file(image_path, 0, &data, &len) != CS_OK) {
        fprintf(stderr, "bench_serve: %s\n", cs_last_error());
        return 1;
    }
    int port;
    pid_t pid = start_server(tool, model, vocab, &port);
    if (pid <= 0 || port <= 0) {
        fprintf(stderr, "bench_serve: the server did not start\n");
        return 1;
    }
    char url[1024];
    size_t npy_bytes, json_bytes;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/explain?classes=%s&format=npy%s%d", port, classes,
             res ? "&res=" : "", res);
    if (!res) url[strlen(url) - 1] = 0; /* no "&res=0" */
    double npy = time_requests(url, data, len, runs, &npy_bytes);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/explain?classes=%s%s%d", port, classes, res ? "&res=" : "", res);
    if (!res) url[strlen(url) - 1] = 0;
    double json = time_requests(url, data, len, runs, &json_bytes);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    cs_free(data);

    printf("| path | median ms | x library |\n|---|---|---|\n");
    printf("| library: cs_explain (encode + surgery + maps) | %.1f | 1.00 |\n", lib * 1e3);
    printf("| server: POST /api/explain?format=npy (upload, decode, job, %zu-byte .npy) | %.1f | %.2f |\n", npy_bytes,
           npy * 1e3, npy / lib);
    printf("| server: POST /api/explain, JSON with PNG data URLs (%zu bytes) | %.1f | %.2f |\n", json_bytes, json * 1e3,
           json / lib);
    return 0;
}
