/* Running `clip-surgery serve` from tests: started on a free loopback port
 * (--port 0; the port read from its first stdout line), stopped with
 * SIGTERM; requests through libcurl (no proxy: loopback only). */
#ifndef CS_SERVE_RUN_H
#define CS_SERVE_RUN_H

#include <stddef.h>
#include <sys/types.h>

typedef struct test_server {
    pid_t pid;
    int port;
} test_server;

/* Start "$CS_TOOL serve --port 0 <args>" (printf-style); 0 on success. Its
 * stderr goes to g_tmp/serve_stderr.txt. */
int server_start(test_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* SIGTERM, then wait (at most 20 s); returns its exit code (-1: killed). */
int server_stop(test_server *s);
/* The server's resident set and its peak (kB) from /proc. */
long server_rss_kb(const test_server *s, long *peak_kb);

typedef struct http_reply {
    long status;
    char *body; /* NUL-terminated; free with free */
    size_t len;
    char headers[4096];
} http_reply;

/* One request (method GET or POST; body NULL for none) to path on the
 * server; content_type NULL: none. For multipart, form_image names the
 * image part's bytes (body is then ignored) and fields are "name=value"
 * strings (NULL-terminated list). 0 on transport success. */
int http_request(const test_server *s, const char *method, const char *path, const char *content_type,
                 const void *body, size_t len, http_reply *r);
int http_multipart(const test_server *s, const char *path, const void *image, size_t len,
                   const char *const *fields, http_reply *r);
void http_reply_free(http_reply *r);
/* The reply has this header (case-insensitive name; value prefix match, or any value when NULL). */
int http_has_header(const http_reply *r, const char *name, const char *value);

/* Decode a "data:...;base64,..." URL; NULL when it is not one. */
unsigned char *data_url_decode(const char *url, size_t *len);

#endif
