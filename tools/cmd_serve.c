/* clip-surgery serve: a local web page and a JSON API over one model, on
 * libmicrohttpd (one thread per connection; MHD parses HTTP and multipart).
 * The model is loaded once and used by one worker thread: connections put
 * their job in a bounded queue and wait; a full queue answers 503 with
 * Retry-After, and a job whose client has gone away before it starts is
 * dropped. Uploads are bounded in bytes (Content-Length checked before the
 * body is read) and in time (a watchdog closes connections still sending
 * after --timeout seconds); images are bounded in pixels before decoding.
 * Requests never name files: the page is compiled in, and the jobs refuse
 * options that read files. */
#define _GNU_SOURCE /* POLLRDHUP */
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "serve.h"

static const cli_option k_options[] = {
    {"host", "ADDR", "address to listen on (default 127.0.0.1: this machine only)", 0},
    {"port", "N", "TCP port (default 8080; 0: any free port, printed on stdout)", 0},
    {"max-upload-mb", "N", "largest request body in MB (default 20)", 0},
    {"queue", "N", "requests that may wait while one runs (default 16); more get 503", 0},
    {"timeout", "S", "seconds to receive a whole request, and idle limit (default 30)", 0},
    {"cors", "ORIGIN", "allow this origin (e.g. http://localhost:3000) to call the API (default: none)", 0},
    {"sam", "FILE", "also serve POST /api/sam: vit_b | vit_l | vit_h (fetched into --cache-dir) or a SAM file", 0},
    {"sam-precision", "P", "fp32 (default) | bf16: SAM's image encoder linear layers", 0},
    {"decoder-heads", "N", "the SAM decoder's heads when the file does not say (default 8)", 0},
    {"sam-cache", "N", "SAM image embeddings kept in memory, by image (default 8): clicks skip the encoder", 0},
    CLI_OPTS_IMAGE_COMMAND,
};

static const char k_usage[] =
    "usage: clip-surgery serve --model M [--sam vit_b] [--host 127.0.0.1] [--port 8080] [--max-upload-mb 20]\n"
    "         [--queue 16] [--timeout 30] [--cors ORIGIN] [--max-megapixels 100] [--sam-cache 8]\n\n"
    "A web page (open the printed address) and a JSON API on the models loaded once:\n"
    "POST /api/explain, /api/segment, /api/points, /api/classify, /api/words (and /api/sam with\n"
    "--sam) with the image (multipart field 'image', or the raw body) and the commands' options as\n"
    "fields (classes=a,b&res=224); ?format=npy gives an array as the CLI's --npy writes it.\n"
    "GET /api/info, /healthz. See docs/serve.md. Stop with Ctrl-C.\n"
    "Example: clip-surgery serve --model ViT-B/16 --sam vit_b --port 8080";

/* Security headers on every answer: the page loads only its own files
 * (and data: pictures), nothing sniffs types, nothing frames it. */
static const char k_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

typedef struct server {
    cs_model *m;
    serve_models models; /* the worker's */
    const char *model_name, *precision, *sam_name;
    size_t max_upload;
    int queue_cap, timeout;
    const char *cors;
    int64_t max_pixels;
    /* the queue */
    pthread_mutex_t lock;
    pthread_cond_t work, done, tick;
    struct request *head, *tail;
    int waiting, running, stop;
    double job_seconds; /* moving average, for Retry-After */
    /* connections still receiving, for the watchdog */
    struct conn *conns;
} server;

static server g_srv;

/* One connection's receiving state (the watchdog's list). */
typedef struct conn {
    int fd;
    double start;
    int receiving; /* 0 once the request is whole */
    struct conn *next;
} conn;

typedef enum { JOB_NONE = 0, JOB_WAITING, JOB_RUNNING, JOB_DONE } job_state;

typedef struct request {
    int kind;                /* serve_job_kind, or -1 */
    struct MHD_PostProcessor *pp;
    serve_field fields[SERVE_MAX_FIELDS];
    int n_fields;
    uint8_t *body;           /* the image's bytes */
    size_t len, cap;
    int image_fields;        /* multipart parts named image */
    int error_status;        /* a 4xx decided while receiving */
    char error[256];
    /* the queue */
    job_state state;
    struct request *next;
    serve_answer answer;
} request;

/* ---------------------------------------------------------------- answers */
static void add_headers(struct MHD_Response *r, const char *type) {
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Content-Security-Policy", k_csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (g_srv.cors) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", g_srv.cors);
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

static enum MHD_Result send_buffer(struct MHD_Connection *c, int status, const char *type, void *data,
                                   size_t len, enum MHD_ResponseMemoryMode mode, const char *filename,
                                   int retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, mode);
    if (!r) return MHD_NO;
    add_headers(r, type);
    if (filename && filename[0]) {
        char disp[128];
        snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", filename);
        MHD_add_response_header(r, "Content-Disposition", disp);
    }
    if (retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after);
        MHD_add_response_header(r, "Retry-After", v);
    }
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_answer(struct MHD_Connection *c, serve_answer *a, int retry_after) {
    enum MHD_Result ok = send_buffer(c, a->status, a->content_type, a->body, a->len, MHD_RESPMEM_MUST_FREE,
                                     a->filename, retry_after);
    if (ok == MHD_YES) a->body = NULL; /* MHD frees it */
    else free(a->body), a->body = NULL;
    return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, int retry_after, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_error(struct MHD_Connection *c, int status, int retry_after, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    serve_answer a = {0};
    serve_answer_error(&a, status, "%s", msg);
    return send_answer(c, &a, retry_after);
}

static enum MHD_Result send_info(struct MHD_Connection *c) {
    const cs_config *cfg = cs_model_config(g_srv.m);
    cJSON *o = cJSON_CreateObject(), *jobs = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "version", cs_version());
    cJSON_AddStringToObject(o, "model", g_srv.model_name);
    cJSON_AddStringToObject(o, "vision", cfg->vision_kind == CS_VISION_VIT ? "ViT" : "ResNet");
    cJSON_AddNumberToObject(o, "resolution", cfg->image_resolution);
    cJSON_AddNumberToObject(o, "embed_dim", cfg->embed_dim);
    cJSON_AddStringToObject(o, "precision", g_srv.precision);
    cJSON_AddNumberToObject(o, "threads", cs_get_threads());
    cJSON_AddNumberToObject(o, "queue", g_srv.queue_cap);
    cJSON_AddNumberToObject(o, "max_upload_bytes", (double)g_srv.max_upload);
    cJSON_AddNumberToObject(o, "max_pixels", (double)g_srv.max_pixels);
    for (int k = 0; k < SERVE_N_JOBS; k++)
        if (k != SERVE_SAM || g_srv.models.sam) cJSON_AddItemToArray(jobs, cJSON_CreateString(serve_job_name(k)));
    cJSON_AddItemToObject(o, "jobs", jobs);
    cJSON_AddItemToObject(o, "sam", g_srv.sam_name ? cJSON_CreateString(g_srv.sam_name) : cJSON_CreateNull());
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) return send_error(c, 503, 1, "out of memory");
    return send_buffer(c, 200, "application/json", text, strlen(text), MHD_RESPMEM_MUST_FREE, NULL, 0);
}

/* ---------------------------------------------------------------- the queue and its worker */
/* The client has closed its side (or the connection broke). */
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 1;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void *worker(void *arg) {
    const char *threads = arg;
    int n; /* OpenMP's thread count is per thread; --threads was checked by the runner */
    if (threads && cli_parse_int(threads, strlen(threads), 1, 1 << 20, &n)) cs_set_threads(n);
    pthread_mutex_lock(&g_srv.lock);
    for (;;) {
        while (!g_srv.head && !g_srv.stop) pthread_cond_wait(&g_srv.work, &g_srv.lock);
        if (g_srv.stop) break;
        request *r = g_srv.head;
        g_srv.head = r->next;
        if (!g_srv.head) g_srv.tail = NULL;
        g_srv.waiting--;
        g_srv.running = 1;
        r->state = JOB_RUNNING;
        pthread_mutex_unlock(&g_srv.lock);
        double t0 = cs_now();
        serve_job_run(&g_srv.models, (serve_job_kind)r->kind, r->fields, r->n_fields, r->body, r->len, &r->answer);
        double dt = cs_now() - t0;
        if (!cli_quiet())
            fprintf(stderr, "clip-surgery: /api/%s %d %.0f ms\n", serve_job_name(r->kind), r->answer.status, dt * 1e3);
        pthread_mutex_lock(&g_srv.lock);
        g_srv.job_seconds = g_srv.job_seconds > 0 ? 0.8 * g_srv.job_seconds + 0.2 * dt : dt;
        g_srv.running = 0;
        r->state = JOB_DONE;
        pthread_cond_broadcast(&g_srv.done);
    }
    pthread_mutex_unlock(&g_srv.lock);
    return NULL;
}

/* Queue the request's job and wait for it; answers 503 when the queue is
 * full, nothing when the client left before its job started. */
static enum MHD_Result run_queued(struct MHD_Connection *c, request *r) {
    pthread_mutex_lock(&g_srv.lock);
    if (g_srv.waiting + g_srv.running > g_srv.queue_cap) { /* one running, queue_cap waiting */
        int retry = (int)(g_srv.job_seconds * (g_srv.waiting + 1)) + 1;
        pthread_mutex_unlock(&g_srv.lock);
        return send_error(c, 503, retry, "busy: %d requests are waiting; retry in %d s", g_srv.queue_cap, retry);
    }
    r->state = JOB_WAITING;
    r->next = NULL;
    if (g_srv.tail) g_srv.tail->next = r;
    else g_srv.head = r;
    g_srv.tail = r;
    g_srv.waiting++;
    pthread_cond_signal(&g_srv.work);
    while (r->state != JOB_DONE) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&g_srv.done, &g_srv.lock, &until);
        if (r->state == JOB_WAITING && (g_srv.stop || client_gone(c))) { /* drop it from the queue */
            request **p = &g_srv.head, *prev = NULL;
            while (*p != r) prev = *p, p = &(*p)->next;
            *p = r->next;
            if (g_srv.tail == r) g_srv.tail = prev;
            g_srv.waiting--;
            r->state = JOB_NONE;
            pthread_mutex_unlock(&g_srv.lock);
            return MHD_NO; /* closes the connection */
        }
    }
    pthread_mutex_unlock(&g_srv.lock);
    return send_answer(c, &r->answer, 0);
}

/* ---------------------------------------------------------------- receiving */
/* A failed allocation while receiving: the request gets 503 (the server
 * goes on). */
static void request_oom(request *r) {
    r->error_status = 503;
    snprintf(r->error, sizeof r->error, "out of memory; try again later");
}

/* 0 when there are too many fields (400), -1 out of memory. */
static int add_field(request *r, const char *name, const char *value, size_t len) {
    if (r->n_fields == SERVE_MAX_FIELDS) return 0;
    serve_field *f = &r->fields[r->n_fields];
    f->name = strdup(name);
    f->value = strndup(value ? value : "", len);
    if (!f->name || !f->value) {
        free(f->name);
        free(f->value);
        return -1;
    }
    r->n_fields++;
    return 1;
}

static enum MHD_Result query_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    request *r = cls;
    int ok = add_field(r, key, value, value ? strlen(value) : 0);
    if (ok < 0) request_oom(r);
    if (ok == 0) {
        r->error_status = 400;
        snprintf(r->error, sizeof r->error, "too many fields (at most %d)", SERVE_MAX_FIELDS);
    }
    return ok > 0 ? MHD_YES : MHD_NO;
}

/* 1, 0 over --max-upload-mb, -1 out of memory. */
static int append(request *r, const char *data, size_t size) {
    if (size > g_srv.max_upload - r->len) return 0;
    if (r->len + size > r->cap) {
        size_t cap = r->cap ? r->cap : 65536;
        while (cap < r->len + size) cap *= 2;
        if (cap > g_srv.max_upload) cap = g_srv.max_upload;
        uint8_t *b = realloc(r->body, cap);
        if (!b) return -1;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, size);
    r->len += size;
    return 1;
}

/* Multipart bodies, part by part: the image's bytes, and
 * the other fields (a field may arrive in pieces). */
static enum MHD_Result post_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                  const char *content_type, const char *transfer_encoding, const char *data,
                                  uint64_t off, size_t size) {
    request *r = cls;
    if (!strcmp(key, "image")) {
        if (off == 0 && r->image_fields++) {
            r->error_status = 400;
            snprintf(r->error, sizeof r->error, "more than one image in the request");
            return MHD_NO;
        }
        int ok = append(r, data, size);
        if (ok < 0) request_oom(r);
        if (ok == 0) {
            r->error_status = 413;
            snprintf(r->error, sizeof r->error, "the image is larger than the limit (%zu MB)", g_srv.max_upload >> 20);
        }
        return ok > 0 ? MHD_YES : MHD_NO;
    }
    serve_field *last = r->n_fields ? &r->fields[r->n_fields - 1] : NULL;
    if (off > 0 && last && !strcmp(last->name, key)) {
        size_t old = strlen(last->value);
        if (old + size > 65536) {
            r->error_status = 400;
            snprintf(r->error, sizeof r->error, "field '%s' is too long", key);
            return MHD_NO;
        }
        char *v = realloc(last->value, old + size + 1);
        if (!v) {
            request_oom(r);
            return MHD_NO;
        }
        memcpy(v + old, data, size);
        v[old + size] = 0;
        last->value = v;
        return MHD_YES;
    }
    int ok = size > 65536 ? 0 : add_field(r, key, data, size);
    if (ok < 0) request_oom(r);
    if (ok == 0) {
        r->error_status = 400;
        snprintf(r->error, sizeof r->error, "too many or too long fields");
    }
    return ok > 0 ? MHD_YES : MHD_NO;
}

static void request_free(request *r) {
    if (r->pp) MHD_destroy_post_processor(r->pp);
    for (int i = 0; i < r->n_fields; i++) {
        free(r->fields[i].name);
        free(r->fields[i].value);
    }
    free(r->body);
    free(r->answer.body);
    free(r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    if (*con_cls) request_free(*con_cls);
    *con_cls = NULL;
}

/* ---------------------------------------------------------------- the watchdog */
static void conn_notify(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    pthread_mutex_lock(&g_srv.lock);
    if (code == MHD_CONNECTION_NOTIFY_STARTED && ci) {
        conn *k = calloc(1, sizeof *k);
        if (k) {
            *k = (conn){.fd = ci->connect_fd, .start = cs_now(), .receiving = 1, .next = g_srv.conns};
            g_srv.conns = k;
        }
        *socket_context = k;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        for (conn **p = &g_srv.conns; *p; p = &(*p)->next)
            if (*p == *socket_context) {
                *p = (*p)->next;
                break;
            }
        free(*socket_context);
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&g_srv.lock);
}

/* A connection's request is whole (or it starts a new one: keep-alive). */
static void conn_receiving(struct MHD_Connection *c, int receiving) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    pthread_mutex_lock(&g_srv.lock);
    conn *k = ci ? ci->socket_context : NULL;
    if (k) {
        k->receiving = receiving;
        if (receiving) k->start = cs_now();
    }
    pthread_mutex_unlock(&g_srv.lock);
}

/* Slow uploads (slow-loris): MHD's timeout is per idle period, so a client
 * sending a byte a second would hold its thread forever. Once a second,
 * connections still receiving after --timeout seconds are shut down (MHD
 * sees the end of the stream and closes them). */
static void *watchdog(void *arg) {
    pthread_mutex_lock(&g_srv.lock);
    while (!g_srv.stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&g_srv.tick, &g_srv.lock, &until);
        double now = cs_now();
        for (conn *k = g_srv.conns; k; k = k->next)
            if (k->receiving && now - k->start > g_srv.timeout) {
                shutdown(k->fd, SHUT_RDWR);
                k->receiving = 0;
            }
    }
    pthread_mutex_unlock(&g_srv.lock);
    return NULL;
}

/* ---------------------------------------------------------------- routing */
/* multipart/form-data carries the image and the fields; any other body
 * is the image itself (curl --data-binary says x-www-form-urlencoded). */
static int is_multipart(struct MHD_Connection *c) {
    const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    return t && !strncasecmp(t, "multipart/form-data", 19);
}

static enum MHD_Result handle_get(struct MHD_Connection *c, const char *url) {
    if (!strcmp(url, "/healthz")) return send_buffer(c, 200, "application/json", "{\"ok\":true}\n", 12, MHD_RESPMEM_PERSISTENT, NULL, 0);
    if (!strcmp(url, "/api/info")) return send_info(c);
    for (int i = 0; i < serve_n_assets; i++)
        if (!strcmp(url, serve_assets[i].path) || (!strcmp(url, "/index.html") && !strcmp(serve_assets[i].path, "/")))
            return send_buffer(c, 200, serve_assets[i].content_type, (void *)serve_assets[i].data, serve_assets[i].len,
                               MHD_RESPMEM_PERSISTENT, NULL, 0);
    return send_error(c, 404, 0, "no such page: %.100s", url);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
    request *r = *con_cls;
    if (!r) { /* headers received */
        conn_receiving(c, 1);
        int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        if (g_srv.cors && !strcmp(method, "OPTIONS")) {
            struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
            add_headers(resp, "text/plain");
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST");
            MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Content-Type");
            enum MHD_Result ok = MHD_queue_response(c, 204, resp);
            MHD_destroy_response(resp);
            return ok;
        }
        int kind = serve_job_find(url);
        if (get) {
            conn_receiving(c, 0);
            return kind >= 0 ? send_error(c, 405, 0, "%s takes POST (the image as the body)", url) : handle_get(c, url);
        }
        if (strcmp(method, "POST")) return send_error(c, 405, 0, "method %.20s is not GET or POST", method);
        if (kind < 0) return send_error(c, 404, 0, "no such endpoint: %.100s", url);
        if (kind == SERVE_SAM && !g_srv.models.sam)
            return send_error(c, 404, 0, "this server has no SAM model (start it with --sam vit_b)");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end || n > g_srv.max_upload + 65536)
                return send_error(c, 413, 0, "the request is larger than the limit (%zu MB, --max-upload-mb)",
                                  g_srv.max_upload >> 20);
        }
        r = calloc(1, sizeof *r);
        if (!r) return send_error(c, 503, 1, "out of memory; try again later");
        r->kind = kind;
        *con_cls = r;
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_field, r);
        if (is_multipart(c)) {
            r->pp = MHD_create_post_processor(c, 65536, post_field, r);
            if (!r->pp && !r->error_status) {
                r->error_status = 400;
                snprintf(r->error, sizeof r->error, "malformed form: the multipart boundary is missing");
            }
        }
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->error_status) return r->error_status == 413 ? MHD_NO : MHD_YES; /* too big: close */
        if (r->pp) {
            if (MHD_post_process(r->pp, upload_data, n) != MHD_YES && !r->error_status) {
                r->error_status = 400;
                snprintf(r->error, sizeof r->error, "malformed multipart body");
            }
        } else {
            int ok = append(r, upload_data, n);
            if (ok < 0) request_oom(r); /* answered once the body is in */
            if (ok == 0) return MHD_NO; /* over the limit without a Content-Length (chunked): close */
        }
        return r->error_status == 413 ? MHD_NO : MHD_YES;
    }
    /* the whole request is here */
    conn_receiving(c, 0);
    if (r->pp) {
        enum MHD_Result ok = MHD_destroy_post_processor(r->pp);
        r->pp = NULL;
        if (ok != MHD_YES && !r->error_status) {
            r->error_status = 400;
            snprintf(r->error, sizeof r->error, "truncated multipart body");
        }
    }
    if (r->error_status) return send_error(c, r->error_status, 0, "%s", r->error);
    if (!r->len) return send_error(c, 400, 0, "no image: send it as the body, or as the multipart field 'image'");
    return run_queued(c, r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    if (cli_quiet()) return;
    fputs("clip-surgery: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* ---------------------------------------------------------------- the command */

static int check(const cli_args *a) {
    int v;
    if (!cli_int(a, "port", 8080, 0, 65535, &v) || !cli_int(a, "max-upload-mb", 20, 1, 4096, &v) ||
        !cli_int(a, "queue", 16, 0, 4096, &v) || !cli_int(a, "timeout", 30, 1, 86400, &v) ||
        !cli_int(a, "sam-cache", 8, 0, 4096, &v) || cli_sam_check(a))
        return CLI_EXIT_USAGE;
    const char *cors = cli_get(a, "cors");
    if (cors && ((strncmp(cors, "http://", 7) && strncmp(cors, "https://", 8)) || strpbrk(cors, "\r\n \t,"))) {
        cli_error("--cors '%s' is not one origin such as http://localhost:3000", cors);
        return CLI_EXIT_USAGE;
    }
    if (!cli_has(a, "model")) {
        cli_error("serve needs --model (see --help)");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* The address to listen on: --host resolved numerically or by name. */
static int listen_address(const char *host, int port, struct sockaddr_storage *addr, int *ipv6) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int e = getaddrinfo(host, service, &hints, &res);
    if (e) {
        cli_error("--host '%s': %s", host, gai_strerror(e));
        return CLI_EXIT_USAGE;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *ipv6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return 0;
}

static int run(cli_ctx *ctx) {
    const cli_args *a = &ctx->a;
    const char *host = cli_get(a, "host") ? cli_get(a, "host") : "127.0.0.1";
    int port, mb, timeout, ipv6;
    cli_int(a, "port", 8080, 0, 65535, &port);
    cli_int(a, "max-upload-mb", 20, 1, 4096, &mb);
    cli_int(a, "queue", 16, 0, 4096, &g_srv.queue_cap);
    cli_int(a, "timeout", 30, 1, 86400, &timeout);
    struct sockaddr_storage addr;
    int rc = listen_address(host, port, &addr, &ipv6);
    if (rc) return rc;
    g_srv.m = ctx->m;
    g_srv.models.clip = ctx->m;
    cli_int(a, "sam-cache", 8, 0, 4096, &g_srv.models.sam_cache);
    char sam_path[4096];
    if (cli_has(a, "sam") && (rc = cli_sam_load(a, sam_path, sizeof sam_path, &g_srv.models.sam))) return rc;
    g_srv.sam_name = cli_get(a, "sam");
    g_srv.model_name = cli_get(a, "model");
    g_srv.max_upload = (size_t)mb << 20;
    g_srv.timeout = timeout;
    g_srv.cors = cli_get(a, "cors");
    g_srv.max_pixels = cli_image_options()->max_pixels ? cli_image_options()->max_pixels : 100000000;
    pthread_mutex_init(&g_srv.lock, NULL);
    pthread_cond_init(&g_srv.work, NULL);
    pthread_cond_init(&g_srv.done, NULL);
    pthread_cond_init(&g_srv.tick, NULL);
    g_srv.precision = cli_get(a, "precision") ? cli_get(a, "precision") : "fp32";
    /* Ctrl-C and SIGTERM go to this thread only (sigwait below): every
     * thread started from here on has them blocked. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    pthread_t worker_thread, watchdog_thread;
    if (pthread_create(&worker_thread, NULL, worker, (void *)cli_get(a, "threads")) ||
        pthread_create(&watchdog_thread, NULL, watchdog, NULL)) {
        cli_error("cannot start the server's threads");
        cs_sam_free(g_srv.models.sam);
        return CLI_EXIT_RUNTIME;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)timeout, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(g_srv.queue_cap + 64), MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, conn_notify, NULL, MHD_OPTION_END);
    if (!d) {
        cli_error("cannot listen on %s port %d (in use, or not this machine's address?)", host, port);
        rc = CLI_EXIT_RUNTIME;
    } else {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        int bound = info ? info->port : port;
        if (strcmp(host, "127.0.0.1") && strcmp(host, "localhost") && strcmp(host, "::1"))
            fprintf(stderr, "clip-surgery: note: listening on %s, not only this machine: anyone who can reach it "
                            "can use the model\n", host);
        printf("clip-surgery: serving %s%s%s on http://%s%s%s:%d/ (Ctrl-C to stop)\n", g_srv.model_name,
               g_srv.sam_name ? " and SAM " : "", g_srv.sam_name ? g_srv.sam_name : "", ipv6 ? "[" : "", host,
               ipv6 ? "]" : "", bound);
        fflush(stdout);
        int sig;
        sigwait(&stop_signals, &sig);
        if (!cli_quiet()) fprintf(stderr, "clip-surgery: stopping\n");
        MHD_stop_daemon(d);
    }
    pthread_mutex_lock(&g_srv.lock);
    g_srv.stop = 1;
    pthread_cond_broadcast(&g_srv.work);
    pthread_cond_broadcast(&g_srv.done);
    pthread_cond_broadcast(&g_srv.tick);
    pthread_mutex_unlock(&g_srv.lock);
    pthread_join(worker_thread, NULL);
    pthread_join(watchdog_thread, NULL);
    serve_jobs_free();
    cs_sam_free(g_srv.models.sam);
    return rc;
}

const cli_command cmd_serve = {
    "serve", "a local web page and JSON API (heatmaps, segmentation, points, scores)", CLI_OPTIONS(k_options),
    k_usage, CLI_MODEL, check, run,
};
