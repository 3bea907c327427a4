/* clip-surgery serve: the local web page and its JSON API. cmd_serve.c is
 * the HTTP side (libmicrohttpd: routes, uploads, limits, headers, the
 * queue in front of the one model); serve_jobs.c turns one request's
 * fields and image into a job of the library and its answer. */
#ifndef CS_SERVE_H
#define CS_SERVE_H

#include <stddef.h>
#include <stdint.h>
#include "cli.h"

/* A request's fields (query string and form fields), at most this many. */
#define SERVE_MAX_FIELDS 32

typedef struct serve_field {
    char *name, *value;
} serve_field;

/* The endpoints that run the model. */
typedef enum serve_job_kind {
    SERVE_EXPLAIN = 0, SERVE_SEGMENT, SERVE_POINTS, SERVE_CLASSIFY, SERVE_WORDS, SERVE_SAM, SERVE_N_JOBS
} serve_job_kind;

/* The models the worker owns. */
typedef struct serve_models {
    cs_model *clip;
    cs_sam *sam;   /* NULL: no /api/sam */
    int sam_cache; /* image embeddings kept between SAM requests (by the image's bytes) */
} serve_models;

/* What a job sends back: status, body (malloc'd), its type and, for a
 * download, the file name. */
typedef struct serve_answer {
    int status;
    const char *content_type;
    char *body;
    size_t len;
    char filename[64];
} serve_answer;

/* The endpoint named by a path such as "/api/explain", or -1. */
int serve_job_find(const char *path);
const char *serve_job_name(serve_job_kind kind);

/* Run one job on the model (the caller holds it alone): the image's bytes
 * and the request's fields; the answer is filled in every case (an error is
 * a 4xx/5xx with {"error": "one line"}). */
void serve_job_run(const serve_models *m, serve_job_kind kind, const serve_field *fields, int n_fields,
                   const uint8_t *image, size_t image_len, serve_answer *out);

/* Free what the jobs keep between requests (the last class set, the SAM
 * image embeddings). */
void serve_jobs_free(void);

/* A one-line JSON error answer. */
void serve_answer_error(serve_answer *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The page's files, compiled in (serve_assets.c, generated at build time
 * from tools/web/). */
typedef struct serve_asset {
    const char *path, *content_type;
    const unsigned char *data;
    size_t len;
} serve_asset;
extern const serve_asset serve_assets[];
extern const int serve_n_assets;

#endif
