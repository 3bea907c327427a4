#include "serve_run.h"

#include <curl/curl.h>
#include <stdint.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli_run.h"

int server_start(test_server *s, const char *fmt, ...) {
    char args[8192], cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "exec '%s' serve --port 0 %s 2>>'%s/serve_stderr.txt'", getenv("CS_TOOL"), args, g_tmp);
    int out[2];
    if (pipe(out)) return -1;
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    /* The first line: "clip-surgery: serving M on http://127.0.0.1:PORT/ ..." (60 s at most). */
    char line[1024];
    size_t n = 0;
    s->port = 0;
    while (n < sizeof line - 1 && !memchr(line, '\n', n)) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 60000) <= 0) break;
        ssize_t got = read(out[0], line + n, sizeof line - 1 - n);
        if (got <= 0) break;
        n += (size_t)got;
    }
    line[n] = 0;
    close(out[0]);
    const char *p = strstr(line, "127.0.0.1:");
    if (p) s->port = atoi(p + 10);
    if (s->port <= 0) {
        fprintf(stderr, "server did not start: '%s'\n", line);
        server_stop(s);
        return -1;
    }
    return 0;
}

int server_stop(test_server *s) {
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; i++) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        usleep(100000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = 0;
    return -1;
}

long server_rss_kb(const test_server *s, long *peak_kb) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
    FILE *f = fopen(path, "r");
    long rss = -1;
    *peak_kb = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6)) rss = atol(line + 6);
        if (!strncmp(line, "VmHWM:", 6)) *peak_kb = atol(line + 6);
    }
    if (f) fclose(f);
    return rss;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx) {
    http_reply *r = ctx;
    char *b = realloc(r->body, r->len + size * n + 1);
    if (!b) return 0;
    memcpy(b + r->len, data, size * n);
    r->body = b;
    r->len += size * n;
    b[r->len] = 0;
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx) {
    http_reply *r = ctx;
    size_t have = strlen(r->headers), add = size * n;
    if (have + add < sizeof r->headers) {
        memcpy(r->headers + have, data, add);
        r->headers[have + add] = 0;
    }
    return size * n;
}

static CURL *easy(const test_server *s, const char *path, http_reply *r) {
    char url[2048];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* loopback only, whatever the environment says */
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    return c;
}

static int perform(CURL *c, http_reply *r, struct curl_slist *h) {
    CURLcode e = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r->body) r->body = calloc(1, 1);
    return e == CURLE_OK ? 0 : -1;
}

int http_request(const test_server *s, const char *method, const char *path, const char *content_type,
                 const void *body, size_t len, http_reply *r) {
    CURL *c = easy(s, path, r);
    struct curl_slist *h = NULL;
    char ct[256];
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "");
    if (content_type) h = curl_slist_append(h, ct);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    } else if (strcmp(method, "GET")) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    return perform(c, r, h);
}

int http_multipart(const test_server *s, const char *path, const void *image, size_t len,
                   const char *const *fields, http_reply *r) {
    CURL *c = easy(s, path, r);
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "image");
    curl_mime_filename(part, "upload.png");
    curl_mime_data(part, image, len);
    for (int i = 0; fields && fields[i]; i++) {
        const char *eq = strchr(fields[i], '=');
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(eq - fields[i]), fields[i]);
        part = curl_mime_addpart(mime);
        curl_mime_name(part, name);
        curl_mime_data(part, eq + 1, CURL_ZERO_TERMINATED);
    }
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    int rc = perform(c, r, h);
    curl_mime_free(mime);
    return rc;
}

void http_reply_free(http_reply *r) {
    free(r->body);
    r->body = NULL;
}

int http_has_header(const http_reply *r, const char *name, const char *value) {
    size_t n = strlen(name);
    for (const char *line = r->headers; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncasecmp(line, name, n) || line[n] != ':') continue;
        const char *v = line + n + 1;
        while (*v == ' ') v++;
        if (!value || !strncmp(v, value, strlen(value))) return 1;
    }
    return 0;
}

unsigned char *data_url_decode(const char *url, size_t *len) {
    const char *p = url ? strstr(url, ";base64,") : NULL;
    if (!p || strncmp(url, "data:", 5)) return NULL;
    p += 8;
    size_t n = strlen(p);
    unsigned char *out = malloc(n / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *p && *p != '='; p++) {
        const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *k = strchr(t, *p);
        if (!k) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)(k - t);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *len = o;
    return out;
}
