/* clip-surgery serve against the CLI, with the tiny model: every endpoint's
 * answer equals what the CLI writes for the same inputs, byte for byte
 * (explain, points, segment, classify, words, sam; ?format=npy against --npy files, PNG data URLs against the PNG files,
 * points and scores against its JSON); 32 requests from 8 concurrent
 * clients all match; about 200 hostile requests (truncated and malformed
 * multipart, huge Content-Length, non-images, bad fields, paths, slow
 * uploads) get clean 4xx answers while the server keeps serving with its
 * memory bounded; a full queue answers 503 with Retry-After; headers (CSP,
 * nosniff, CORS only when asked). Loopback only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>
#include "cli_run.h"
#include "golden.h"
#include "serve_run.h"
#include "test.h"

static const char *k_classes = "cat,dog,grass";
static char g_model[1024], g_vocab[1024], g_image_path[1024], g_sam[1024];
static unsigned char *g_image;
static size_t g_image_len;

static unsigned char *read_all(const char *path, size_t *len) {
    char *data;
    if (cs_read_file(path, 0, &data, len) != CS_OK) return NULL;
    return (unsigned char *)data;
}

/* The reply's body equals the file's bytes. */
static int same_as_file(const void *got, size_t len, const char *path) {
    size_t n;
    unsigned char *want = read_all(path, &n);
    int same = want && n == len && !memcmp(want, got, n);
    if (!same) fprintf(stderr, "%s: %zu bytes, the server's %zu differ\n", path, want ? n : 0, len);
    cs_free(want);
    return same;
}

static int data_url_same_as_file(const cJSON *item, const char *path) {
    size_t n = 0;
    unsigned char *b = data_url_decode(cJSON_GetStringValue(item), &n);
    int same = b && same_as_file(b, n, path);
    free(b);
    return same;
}

static void post_raw(const test_server *s, const char *path, http_reply *r) {
    CHECK(http_request(s, "POST", path, "image/png", g_image, g_image_len, r) == 0);
}

/* ---------------------------------------------------------------- equal to the CLI */
static const char *const k_arrays[] = {"maps", "similarity", "image_tokens", "pixels", "class_embeddings"};

static void test_explain_equals_cli(const test_server *s) {
    const char *out = tmp_path("explain");
    CHECK(run_tool("explain --model '%s' --vocab '%s' --image '%s' --res 64 --classes %s --npy -o '%s' --quiet",
                   g_model, g_vocab, g_image_path, k_classes, out) == 0);
    for (int i = 0; i < 5; i++) {
        char path[256];
        http_reply r;
        snprintf(path, sizeof path, "/api/explain?classes=%s&res=64&format=npy&array=%s", k_classes, k_arrays[i]);
        post_raw(s, path, &r);
        CHECK_MSG(r.status == 200, "%s: %ld %s", path, r.status, r.body);
        CHECK_MSG(same_as_file(r.body, r.len, tmp_path("explain/%s.npy", k_arrays[i])), "%s", k_arrays[i]);
        CHECK(http_has_header(&r, "Content-Disposition", "attachment"));
        http_reply_free(&r);
    }
    /* JSON through multipart: each class's overlay and gray map are the CLI's PNG files. */
    const char *fields[] = {"classes=cat,dog,grass", "res=64", NULL};
    http_reply r;
    CHECK(http_multipart(s, "/api/explain", g_image, g_image_len, fields, &r) == 0);
    CHECK_MSG(r.status == 200, "%ld %s", r.status, r.body);
    cJSON *j = cJSON_Parse(r.body), *maps = cJSON_GetObjectItem(j, "heatmaps");
    CHECK(cJSON_GetArraySize(maps) == 3);
    for (int c = 0; c < cJSON_GetArraySize(maps); c++) {
        cJSON *m = cJSON_GetArrayItem(maps, c);
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(m, "class"));
        CHECK(name && data_url_same_as_file(cJSON_GetObjectItem(m, "overlay"), tmp_path("explain/%s.png", name)));
        CHECK(name && data_url_same_as_file(cJSON_GetObjectItem(m, "map"), tmp_path("explain/%s_map.png", name)));
    }
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "redundant")), "classes"));
    cJSON_Delete(j);
    http_reply_free(&r);

    /* A text (redundancy from the empty prompt), as --text. */
    out = tmp_path("explain_text");
    CHECK(run_tool("explain --model '%s' --vocab '%s' --image '%s' --res 64 --text 'a cat' --npy --no-png -o '%s' --quiet",
                   g_model, g_vocab, g_image_path, out) == 0);
    post_raw(s, "/api/explain?text=a%20cat&res=64&format=npy", &r);
    CHECK_MSG(r.status == 200 && same_as_file(r.body, r.len, tmp_path("explain_text/maps.npy")), "%ld", r.status);
    http_reply_free(&r);
}

static void test_points_equals_cli(const test_server *s) {
    const char *out = tmp_path("points");
    CHECK(run_tool("points --model '%s' --vocab '%s' --image '%s' --res 64 --classes %s --npy -o '%s' --quiet",
                   g_model, g_vocab, g_image_path, k_classes, out) == 0);
    cJSON *cli = read_json(tmp_path("stdout.txt"));
    http_reply r;
    post_raw(s, "/api/points?classes=cat,dog,grass&res=64", &r);
    CHECK_MSG(r.status == 200, "%ld %s", r.status, r.body);
    cJSON *j = cJSON_Parse(r.body), *targets = cJSON_GetObjectItem(j, "targets"),
          *cli_targets = cJSON_GetObjectItem(cli, "targets");
    CHECK(cli_targets && cJSON_GetArraySize(targets) == 3);
    for (cJSON *t = cli_targets ? cli_targets->child : NULL; t; t = t->next) {
        cJSON *mine = cJSON_GetObjectItem(targets, t->string);
        CHECK_MSG(mine && cJSON_Compare(cJSON_GetObjectItem(t, "points"), cJSON_GetObjectItem(mine, "points"), 1),
                  "points of %s", t->string);
        CHECK(mine && cJSON_Compare(cJSON_GetObjectItem(t, "labels"), cJSON_GetObjectItem(mine, "labels"), 1));
        CHECK(mine && data_url_same_as_file(cJSON_GetObjectItem(mine, "picture"), tmp_path("points/%s_points.png", t->string)));
    }
    cJSON_Delete(j);
    cJSON_Delete(cli);
    http_reply_free(&r);
    for (int k = 0; k < 3; k++)
        for (int a = 0; a < 2; a++) {
            char path[256];
            const char *array = a ? "labels" : "points";
            snprintf(path, sizeof path, "/api/points?classes=%s&res=64&format=npy&array=%s&index=%d", k_classes, array, k);
            post_raw(s, path, &r);
            CHECK_MSG(r.status == 200 && same_as_file(r.body, r.len, tmp_path("points/%s_%d.npy", array, k)), "%s", path);
            http_reply_free(&r);
        }
}

static void test_segment_equals_cli(const test_server *s) {
    CHECK(run_tool("segment --model '%s' --vocab '%s' --image '%s' --res 64 --classes %s -o '%s' --color '%s' "
                   "--overlay '%s' --quiet",
                   g_model, g_vocab, g_image_path, k_classes, tmp_path("labels.png"), tmp_path("color.png"),
                   tmp_path("overlay.png")) == 0);
    http_reply r;
    post_raw(s, "/api/segment?classes=cat,dog,grass&res=64&format=png", &r);
    CHECK_MSG(r.status == 200 && same_as_file(r.body, r.len, tmp_path("labels.png")), "%ld", r.status);
    CHECK(http_has_header(&r, "Content-Type", "image/png"));
    http_reply_free(&r);
    post_raw(s, "/api/segment?classes=cat,dog,grass&res=64", &r);
    cJSON *j = cJSON_Parse(r.body);
    CHECK(data_url_same_as_file(cJSON_GetObjectItem(j, "labels"), tmp_path("labels.png")));
    CHECK(data_url_same_as_file(cJSON_GetObjectItem(j, "color"), tmp_path("color.png")));
    CHECK(data_url_same_as_file(cJSON_GetObjectItem(j, "overlay"), tmp_path("overlay.png")));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "legend")) == 3);
    cJSON_Delete(j);
    http_reply_free(&r);
    /* segment --npy's arrays */
    CHECK(run_tool("segment --model '%s' --vocab '%s' --image '%s' --res 64 --classes %s --npy -o '%s' --quiet",
                   g_model, g_vocab, g_image_path, k_classes, tmp_path("segment_npy")) == 0);
    static const char *const arrays[] = {"tokens", "cosine", "logits", "score", "argmax"};
    for (int i = 0; i < 5; i++) {
        char path[256];
        snprintf(path, sizeof path, "/api/segment?classes=%s&res=64&format=npy&array=%s", k_classes, arrays[i]);
        post_raw(s, path, &r);
        CHECK_MSG(r.status == 200 && same_as_file(r.body, r.len, tmp_path("segment_npy/%s.npy", arrays[i])), "%s: %ld",
                  arrays[i], r.status);
        http_reply_free(&r);
    }
}

static void test_classify_equals_cli(const test_server *s) {
    CHECK(run_tool("classify --model '%s' --vocab '%s' --image '%s' --res 64 --classes %s --method both --quiet",
                   g_model, g_vocab, g_image_path, k_classes) == 0);
    cJSON *cli = read_json(tmp_path("stdout.txt"));
    http_reply r;
    post_raw(s, "/api/classify?classes=cat,dog,grass&res=64&method=both", &r);
    CHECK_MSG(r.status == 200, "%ld %s", r.status, r.body);
    cJSON *j = cJSON_Parse(r.body);
    for (int k = 0; k < 2; k++) {
        const char *key = k ? "clip" : "surgery";
        cJSON *a = cJSON_GetObjectItem(cli, key), *b = cJSON_GetObjectItem(j, key);
        CHECK(cJSON_GetArraySize(a) == 3 && cJSON_GetArraySize(b) == 3);
        for (int c = 0; c < cJSON_GetArraySize(a); c++) /* the same float32 (the CLI prints %.9g) */
            CHECK_MSG((float)cJSON_GetArrayItem(a, c)->valuedouble == (float)cJSON_GetArrayItem(b, c)->valuedouble,
                      "%s[%d]", key, c);
    }
    CHECK(cJSON_Compare(cJSON_GetObjectItem(cli, "image_size"), cJSON_GetObjectItem(j, "image_size"), 1));
    cJSON_Delete(j);
    cJSON_Delete(cli);
    http_reply_free(&r);
}

static void test_words_equals_cli(const test_server *s) {
    const char *out = tmp_path("words");
    CHECK(run_tool("words --model '%s' --vocab '%s' --image '%s' --res 64 --caption 'a cat on a bed' --npy -o '%s' --quiet",
                   g_model, g_vocab, g_image_path, out) == 0);
    static const char *const arrays[] = {"maps", "similarity", "image_tokens", "word_features"};
    for (int i = 0; i < 4; i++) {
        char path[256];
        http_reply r;
        snprintf(path, sizeof path, "/api/words?caption=a%%20cat%%20on%%20a%%20bed&res=64&format=npy&array=%s", arrays[i]);
        post_raw(s, path, &r);
        CHECK_MSG(r.status == 200 && same_as_file(r.body, r.len, tmp_path("words/%s.npy", arrays[i])), "%s: %ld", arrays[i],
                  r.status);
        http_reply_free(&r);
    }
    const char *fields[] = {"caption=a cat on a bed", "res=64", NULL};
    http_reply r;
    CHECK(http_multipart(s, "/api/words", g_image, g_image_len, fields, &r) == 0 && r.status == 200);
    cJSON *j = cJSON_Parse(r.body), *units = cJSON_GetObjectItem(j, "units");
    CHECK(data_url_same_as_file(cJSON_GetObjectItem(j, "figure"), tmp_path("words/figure.png")));
    CHECK(cJSON_GetArraySize(units) == 7); /* start, a, cat, on, a, bed, end */
    /* the first unit's overlay is 00_start.png */
    CHECK(data_url_same_as_file(cJSON_GetObjectItem(cJSON_GetArrayItem(units, 0), "overlay"), tmp_path("words/00_start.png")));
    cJSON_Delete(j);
    http_reply_free(&r);
}

/* /api/sam against `sam`: every --npy array and the mask/overlay PNGs, for
 * a point, points + box with --single, and a text through CLIP Surgery's
 * points; the second request on the image skips the encoder. */
static const char *const k_sam_arrays[] = {"masks", "iou", "lowres", "logits", "embedding"};

static void sam_case(const test_server *s, const char *query, const char *cli_dir, int want_ran) {
    char path[512];
    http_reply r;
    snprintf(path, sizeof path, "/api/sam?%s", query);
    post_raw(s, path, &r);
    CHECK_MSG(r.status == 200, "%s: %ld %s", path, r.status, r.body);
    cJSON *j = cJSON_Parse(r.body);
    const char *enc = cJSON_GetStringValue(cJSON_GetObjectItem(j, "encoder"));
    CHECK_MSG(enc && !strcmp(enc, want_ran ? "ran" : "cached"), "%s: encoder %s", path, enc ? enc : "?");
    char file[1024];
    snprintf(file, sizeof file, "%s/mask.png", cli_dir);
    CHECK_MSG(data_url_same_as_file(cJSON_GetObjectItem(j, "mask"), file), "%s: mask", path);
    snprintf(file, sizeof file, "%s/overlay.png", cli_dir);
    CHECK_MSG(data_url_same_as_file(cJSON_GetObjectItem(j, "overlay"), file), "%s: overlay", path);
    cJSON_Delete(j);
    http_reply_free(&r);
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "/api/sam?%s&format=npy&array=%s", query, k_sam_arrays[i]);
        post_raw(s, path, &r);
        /* embedding.npy is in the output folder, above a text's subfolder */
        snprintf(file, sizeof file, "%s/%s%s.npy", cli_dir, i == 4 && strstr(query, "text=") ? "../" : "",
                 k_sam_arrays[i]);
        CHECK_MSG(r.status == 200 && same_as_file(r.body, r.len, file), "%s: %ld", path, r.status);
        http_reply_free(&r);
    }
}

static void test_sam_equals_cli(const test_server *s) {
    CHECK(run_tool("sam --sam '%s' --image '%s' --point 230,120 --npy --no-cache -o '%s' --quiet", g_sam, g_image_path,
                   tmp_path("sam_pt")) == 0);
    sam_case(s, "point=230,120", tmp_path("sam_pt"), 1);
    CHECK(run_tool("sam --sam '%s' --image '%s' --point 230.5,120.25 --point 310,200,1 --point 450,299,0 "
                   "--box 120,40,380,290 --single --npy --no-cache -o '%s' --quiet",
                   g_sam, g_image_path, tmp_path("sam_box")) == 0);
    sam_case(s, "point=230.5,120.25&point=310,200,1&point=450,299,0&box=120,40,380,290&single=1", tmp_path("sam_box"), 0);
    CHECK(run_tool("sam --model '%s' --vocab '%s' --text 'a cat' --res 64 --sam '%s' --image '%s' --npy --no-cache "
                   "-o '%s' --quiet",
                   g_model, g_vocab, g_sam, g_image_path, tmp_path("sam_text")) == 0);
    cJSON *cli = read_json(tmp_path("stdout.txt"));
    const char *dir = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(cli, "prompts"), 0), "dir"));
    CHECK(dir != NULL);
    if (dir) sam_case(s, "text=a%20cat&res=64", dir, 0);
    cJSON_Delete(cli);
}

/* ---------------------------------------------------------------- concurrency */
typedef struct client {
    const test_server *s;
    int ok;
} client;

static void *client_main(void *arg) {
    client *c = arg;
    for (int i = 0; i < 4; i++) {
        http_reply r;
        const char *array = i % 2 ? "similarity" : "maps";
        char path[256];
        snprintf(path, sizeof path, "/api/explain?classes=%s&res=64&format=npy&array=%s", k_classes, array);
        if (http_request(c->s, "POST", path, "image/png", g_image, g_image_len, &r) == 0 && r.status == 200 &&
            same_as_file(r.body, r.len, tmp_path("explain/%s.npy", array)))
            c->ok++;
        http_reply_free(&r);
    }
    return NULL;
}

static void test_concurrent(const test_server *s) {
    pthread_t t[8];
    client c[8];
    for (int i = 0; i < 8; i++) {
        c[i] = (client){.s = s};
        pthread_create(&t[i], NULL, client_main, &c[i]);
    }
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ok += c[i].ok;
    }
    CHECK_MSG(ok == 32, "%d of 32 concurrent requests succeeded and matched", ok);
}

/* ---------------------------------------------------------------- hostile requests */
static int connect_server(const test_server *s) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send raw bytes, then read until the server closes or answers (10 s at
 * most); the status code, 0 when closed without an answer. */
static int raw_exchange(const test_server *s, const void *req, size_t len, int half_close) {
    int fd = connect_server(s);
    if (fd < 0) return -1;
    if (send(fd, req, len, MSG_NOSIGNAL) < 0) {
        close(fd);
        return 0;
    }
    if (half_close) shutdown(fd, SHUT_WR);
    char buf[4096];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0) break;
        ssize_t got = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (got <= 0) break;
        n += (size_t)got;
        buf[n] = 0;
        if (strstr(buf, "\r\n\r\n")) break;
    }
    buf[n] = 0;
    close(fd);
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) status = 0;
    return status;
}

/* A PNG header claiming w x h pixels (and nothing else). */
static size_t huge_png(unsigned char *out, uint32_t w, uint32_t h) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char ihdr[17] = {'I', 'H', 'D', 'R', w >> 24, w >> 16, w >> 8, w, h >> 24, h >> 16, h >> 8, h, 8, 2, 0, 0, 0};
    memcpy(out, sig, 8);
    memcpy(out + 8, (unsigned char[4]){0, 0, 0, 13}, 4);
    memcpy(out + 12, ihdr, 17);
    uint32_t crc = (uint32_t)crc32(0, ihdr, 17);
    memcpy(out + 29, (unsigned char[4]){crc >> 24, crc >> 16, crc >> 8, crc}, 4);
    return 33;
}

static void test_hostile(const test_server *s) {
    long rss0, peak0, peak1;
    rss0 = server_rss_kb(s, &peak0);
    int clean = 0, total = 0;
    char req[8192];
    unsigned char png[64];
    size_t png_len = huge_png(png, 100000, 100000);
    for (int round = 0; round < 10; round++) {
        struct { const char *method, *path, *type; const void *body; size_t len; int want; } cases[] = {
            {"POST", "/api/explain?classes=a", "image/png", "not an image at all", 19, 415},
            {"POST", "/api/explain?classes=a", "image/png", g_image, g_image_len / 2, 415},   /* truncated PNG */
            {"POST", "/api/explain?classes=a", "image/png", png, png_len, 413},               /* 10^10 pixels */
            {"POST", "/api/explain?classes=a", "image/png", "", 0, 400},                       /* empty */
            {"POST", "/api/explain?classes=a&res=abc", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/explain?classes=a&bogus=1", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/explain?classes=@/etc/passwd", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/explain?classes=a&templates=/etc/passwd", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/explain?classes=a&format=xml", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/points?classes=a&t=2", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/segment?classes=a&bg-thresh=0.5", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/classify?text=a", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/words?caption=a&group=letters", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/explain", "image/png", g_image, g_image_len, 400},                  /* no classes */
            {"POST", "/api/nope", "image/png", "x", 1, 404},
            {"POST", "/api/sam?point=2300,120", "image/png", g_image, g_image_len, 400},         /* outside */
            {"POST", "/api/sam?point=230,120,5", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/sam?point=230,120&text=a", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/sam", "image/png", g_image, g_image_len, 400},                       /* no prompt */
            {"POST", "/api/sam?box=1,2,3", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/sam?point=1,1&mask-input=/etc/passwd", "image/png", g_image, g_image_len, 400},
            {"POST", "/api/sam?point=1,1&format=npy&array=x", "image/png", g_image, g_image_len, 400},
            {"GET", "/api/explain", NULL, NULL, 0, 405},
            {"GET", "/../../etc/passwd", NULL, NULL, 0, 404},
            {"DELETE", "/api/info", NULL, NULL, 0, 405},
            {"POST", "/api/explain?classes=a", "multipart/form-data", "--x\r\n", 4, 400},        /* no boundary */
        };
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
            http_reply r;
            int ok = http_request(s, cases[k].method, cases[k].path, cases[k].type, cases[k].body, cases[k].len, &r) == 0;
            cJSON *j = ok ? cJSON_Parse(r.body) : NULL;
            int good = ok && r.status == cases[k].want && cJSON_GetStringValue(cJSON_GetObjectItem(j, "error")) &&
                       r.len > 0 && !memchr(r.body, '\n', r.len - 1);
            CHECK_MSG(good, "%s %s: %ld %s (want %d)", cases[k].method, cases[k].path, r.status, r.body, cases[k].want);
            clean += good;
            total++;
            cJSON_Delete(j);
            http_reply_free(&r);
        }
        /* Raw: a truncated multipart body (the closing boundary missing). */
        const char *part = "--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
                           "Content-Type: image/png\r\n\r\n\x89PNG\r\n";
        int n = snprintf(req, sizeof req, "POST /api/explain?classes=a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: %zu\r\n\r\n%s",
                         strlen(part), part);
        int st = raw_exchange(s, req, (size_t)n, 0);
        CHECK_MSG(st == 400 || st == 415, "truncated multipart: %d", st);
        clean += st == 400 || st == 415;
        /* A huge Content-Length: refused before any body is read. */
        n = snprintf(req, sizeof req, "POST /api/explain?classes=a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Type: image/png\r\nContent-Length: 999999999999\r\n\r\n");
        st = raw_exchange(s, req, (size_t)n, 0);
        CHECK_MSG(st == 413, "huge Content-Length: %d", st);
        clean += st == 413;
        /* Garbage instead of HTTP. */
        st = raw_exchange(s, "\x16\x03\x01garbage\r\n\r\n", 14, 1);
        CHECK_MSG(st == 0 || (st >= 400 && st < 500), "garbage: %d", st);
        clean += st == 0 || (st >= 400 && st < 500);
        total += 3;
    }
    /* Slow-loris: 4 connections sending one byte every 200 ms, two still
     * in their headers, two in the body, are cut after --timeout (2 s),
     * well before they would finish. */
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = connect_server(s);
        int n = snprintf(req, sizeof req, "POST /api/explain?classes=a HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                         "%s", i < 2 ? "X-Slow: " : "Content-Length: 100000\r\n\r\n");
        send(fds[i], req, (size_t)n, MSG_NOSIGNAL);
    }
    double t0 = cs_now();
    int open_fds = 4;
    while (open_fds > 0 && cs_now() - t0 < 15) {
        usleep(200000);
        for (int i = 0; i < 4; i++)
            if (fds[i] >= 0 && send(fds[i], "x", 1, MSG_NOSIGNAL) < 0) {
                close(fds[i]);
                fds[i] = -1;
                open_fds--;
            }
    }
    double cut = cs_now() - t0;
    CHECK_MSG(open_fds == 0 && cut < 10, "slow uploads still open after %.1f s: %d", cut, open_fds);
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0) close(fds[i]);
    clean += 4 * (open_fds == 0);
    total += 4;
    printf("hostile: %d of %d requests answered cleanly; slow uploads cut after %.1f s\n", clean, total, cut);

    /* Still serving, and the answers still right; memory bounded. */
    http_reply r;
    CHECK(http_request(s, "GET", "/healthz", NULL, NULL, 0, &r) == 0 && r.status == 200);
    http_reply_free(&r);
    post_raw(s, "/api/explain?classes=cat,dog,grass&res=64&format=npy", &r);
    CHECK(r.status == 200 && same_as_file(r.body, r.len, tmp_path("explain/maps.npy")));
    http_reply_free(&r);
    long rss1 = server_rss_kb(s, &peak1);
    printf("server RSS %ld kB -> %ld kB (peak %ld kB -> %ld kB)\n", rss0, rss1, peak0, peak1);
    /* Each request holds at most one upload (1 MB here) and one job's
     * arrays; 80 MB leaves room for the allocator (and ASan's quarantine,
     * capped in main) but not for a leak of ~200 uploads. */
    CHECK_MSG(rss1 < rss0 + 80 * 1024, "RSS grew from %ld to %ld kB", rss0, rss1);
}

/* ---------------------------------------------------------------- page, headers, queue */
static void test_page_and_headers(const test_server *s) {
    http_reply r;
    CHECK(http_request(s, "GET", "/", NULL, NULL, 0, &r) == 0 && r.status == 200);
    CHECK(strstr(r.body, "<html") != NULL);
    CHECK(http_has_header(&r, "Content-Security-Policy", "default-src 'none'"));
    CHECK(http_has_header(&r, "X-Content-Type-Options", "nosniff"));
    CHECK(!http_has_header(&r, "Access-Control-Allow-Origin", NULL));
    http_reply_free(&r);
    CHECK(http_request(s, "GET", "/app.js", NULL, NULL, 0, &r) == 0 && r.status == 200);
    CHECK(http_has_header(&r, "Content-Type", "text/javascript"));
    http_reply_free(&r);
    CHECK(http_request(s, "GET", "/api/info", NULL, NULL, 0, &r) == 0 && r.status == 200);
    cJSON *j = cJSON_Parse(r.body);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "resolution")) == 64);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "sam")));
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "version")), cs_version()));
    cJSON_Delete(j);
    http_reply_free(&r);
}

/* --queue 0 and many clients at once: the ones arriving while a job runs
 * get 503 with Retry-After; the others succeed. --cors sends its header. */
typedef struct burst {
    const test_server *s;
    long status;
    int retry_after;
} burst;

static void *burst_main(void *arg) {
    burst *b = arg;
    http_reply r;
    if (http_request(b->s, "POST", "/api/explain?classes=cat,dog,grass&res=256&format=npy", "image/png", g_image,
                     g_image_len, &r) == 0) {
        b->status = r.status;
        b->retry_after = http_has_header(&r, "Retry-After", NULL);
    }
    http_reply_free(&r);
    return NULL;
}

static void test_queue_full(void) {
    test_server s;
    if (server_start(&s, "--model '%s' --vocab '%s' --queue 0 --cors http://localhost:3000 --quiet", g_model, g_vocab)) {
        CHECK(0);
        return;
    }
    int busy = 0, served = 0, other = 0;
    for (int round = 0; round < 5 && !(busy && served); round++) {
        pthread_t t[12];
        burst b[12];
        for (int i = 0; i < 12; i++) {
            b[i] = (burst){.s = &s};
            pthread_create(&t[i], NULL, burst_main, &b[i]);
        }
        for (int i = 0; i < 12; i++) {
            pthread_join(t[i], NULL);
            if (b[i].status == 503 && b[i].retry_after) busy++;
            else if (b[i].status == 200) served++;
            else other++;
        }
    }
    CHECK_MSG(busy > 0 && served > 0 && other == 0, "503 with Retry-After %d, 200 %d, other %d", busy, served, other);
    http_reply r;
    CHECK(http_request(&s, "GET", "/api/info", NULL, NULL, 0, &r) == 0);
    CHECK(http_has_header(&r, "Access-Control-Allow-Origin", "http://localhost:3000"));
    http_reply_free(&r);
    CHECK(http_request(&s, "OPTIONS", "/api/explain", NULL, NULL, 0, &r) == 0 && r.status == 204);
    http_reply_free(&r);
    /* no --sam: no /api/sam, and /api/info says so */
    CHECK(http_request(&s, "POST", "/api/sam?point=1,1", "image/png", g_image, g_image_len, &r) == 0 && r.status == 404);
    http_reply_free(&r);
    CHECK(http_request(&s, "GET", "/api/info", NULL, NULL, 0, &r) == 0);
    cJSON *info = cJSON_Parse(r.body);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(info, "sam")));
    cJSON_Delete(info);
    http_reply_free(&r);
    CHECK(server_stop(&s) == 0);
}

int main(void) {
    golden_shared_dir();
    tool_tmp_init("test_serve");
    /* Under AddressSanitizer the server keeps freed memory in a quarantine
     * (256 MB by default), which would read as growth: cap it. */
    char asan[1024];
    snprintf(asan, sizeof asan, "%s%squarantine_size_mb=16", getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "",
             getenv("ASAN_OPTIONS") ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
    snprintf(g_model, sizeof g_model, "%s", golden_path("golden/tiny-vit/model.safetensors"));
    snprintf(g_vocab, sizeof g_vocab, "%s", golden_path("clip/bpe_simple_vocab_16e6.txt.gz"));
    snprintf(g_image_path, sizeof g_image_path, "%s", golden_path("images/chelsea.png"));
    snprintf(g_sam, sizeof g_sam, "%s", golden_path("golden/sam/tiny-sam/model.safetensors"));
    g_image = read_all(g_image_path, &g_image_len);
    CHECK(g_image != NULL);
    test_server s;
    if (g_image && server_start(&s, "--model '%s' --vocab '%s' --sam '%s' --max-upload-mb 1 --timeout 2 "
                                "--max-megapixels 1 --quiet", g_model, g_vocab, g_sam) == 0) {
        void (*steps[])(const test_server *) = {test_page_and_headers, test_explain_equals_cli, test_points_equals_cli,
                                                 test_segment_equals_cli, test_classify_equals_cli, test_words_equals_cli,
                                                 test_sam_equals_cli, test_concurrent,
                                                 test_hostile};
        for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
            double t0 = cs_now();
            steps[i](&s);
            printf("step %zu: %.1f s\n", i, cs_now() - t0);
        }
        CHECK_MSG(server_stop(&s) == 0, "the server did not stop cleanly");
        double t0 = cs_now();
        test_queue_full();
        printf("queue: %.1f s\n", cs_now() - t0);
    } else {
        CHECK(0);
    }
    cs_free(g_image);
    return test_finish();
}
