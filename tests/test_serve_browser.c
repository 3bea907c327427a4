/* The page of clip-surgery serve in a real browser: headless Chromium,
 * driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
 * JSON messages ending in NUL, commands on fd 3, answers and events on
 * fd 4), loads the page from the server (tiny model), puts an image of
 * ../shared/images into the real file input, waits until the heatmaps are
 * drawn and checks the DOM (canvas drawn, one switcher button per class,
 * no error shown), then the segmentation legend, then SAM by real mouse
 * events (a click, a shift-click, a drag: the mask drawn); no console error, no
 * exception, no CSP violation on the way. Saves a screenshot
 * ($CS_SCREENSHOT, default under the test's temporary folder).
 * Skipped without Chromium (a failure under CI=true). Loopback only. */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli_run.h"
#include "golden.h"
#include "serve_run.h"
#include "test.h"

static int g_to, g_from; /* our ends of the browser's pipes */
static pid_t g_browser;
static char *g_buf;
static size_t g_len, g_cap;
static int g_next_id = 1, g_errors, g_loaded;
static double g_deadline;

/* An event: count errors (console, exceptions, log entries such as CSP
 * violations or failed loads) and note page loads. */
static void on_event(cJSON *msg) {
    const char *method = cJSON_GetStringValue(cJSON_GetObjectItem(msg, "method"));
    cJSON *params = cJSON_GetObjectItem(msg, "params");
    if (!method) return;
    if (!strcmp(method, "Page.loadEventFired")) g_loaded = 1;
    int error = !strcmp(method, "Runtime.exceptionThrown");
    if (!strcmp(method, "Runtime.consoleAPICalled"))
        error = !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(params, "type")) ?: "", "error");
    if (!strcmp(method, "Log.entryAdded"))
        error = !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(params, "entry"), "level")) ?: "",
                        "error");
    if (error) {
        char *text = cJSON_PrintUnformatted(params);
        fprintf(stderr, "browser error: %.600s\n", text);
        free(text);
        g_errors++;
    }
}

/* The next message from the browser, or NULL at the deadline / end. */
static cJSON *next_message(void) {
    for (;;) {
        char *end = g_len ? memchr(g_buf, 0, g_len) : NULL;
        if (end) {
            cJSON *msg = cJSON_Parse(g_buf);
            size_t used = (size_t)(end - g_buf) + 1;
            memmove(g_buf, g_buf + used, g_len - used);
            g_len -= used;
            return msg ? msg : cJSON_CreateObject();
        }
        double left = g_deadline - cs_now();
        struct pollfd p = {.fd = g_from, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0) return NULL;
        if (g_cap - g_len < 65536) {
            g_cap = g_cap * 2 + 65536;
            g_buf = realloc(g_buf, g_cap);
        }
        ssize_t got = read(g_from, g_buf + g_len, g_cap - g_len - 1);
        if (got <= 0) return NULL;
        g_len += (size_t)got;
    }
}

/* Send a command (params: JSON text, or NULL) in a session (or the
 * browser's when NULL) and return its result, handling events meanwhile. */
static cJSON *call(const char *session, const char *method, const char *params) {
    int id = g_next_id++;
    g_deadline = cs_now() + 30;
    char head[512];
    int n = snprintf(head, sizeof head, "{\"id\":%d,%s%s%s\"method\":\"%s\",\"params\":", id, session ? "\"sessionId\":\"" : "",
                     session ? session : "", session ? "\"," : "", method);
    if (write(g_to, head, (size_t)n) != n) return NULL;
    const char *p = params ? params : "{}";
    if (write(g_to, p, strlen(p)) != (ssize_t)strlen(p) || write(g_to, "}", 2) != 2) return NULL; /* "}" and NUL */
    for (cJSON *msg; (msg = next_message());) {
        cJSON *mid = cJSON_GetObjectItem(msg, "id");
        if (mid && (int)mid->valuedouble == id) {
            cJSON *err = cJSON_GetObjectItem(msg, "error");
            if (err) {
                char *text = cJSON_PrintUnformatted(err);
                fprintf(stderr, "%s: %s\n", method, text);
                free(text);
                cJSON_Delete(msg);
                return NULL;
            }
            cJSON *result = cJSON_DetachItemFromObject(msg, "result");
            cJSON_Delete(msg);
            return result ? result : cJSON_CreateObject();
        }
        on_event(msg);
        cJSON_Delete(msg);
    }
    fprintf(stderr, "%s: no answer from the browser\n", method);
    return NULL;
}

/* Evaluate a JavaScript expression in the page; its value as a string
 * (malloc'd; "" on failure). */
static char *eval_string(const char *session, const char *expr) {
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "expression", expr);
    cJSON_AddBoolToObject(params, "returnByValue", 1);
    char *text = cJSON_PrintUnformatted(params);
    cJSON_Delete(params);
    cJSON *r = call(session, "Runtime.evaluate", text);
    free(text);
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "value"));
    char *out = strdup(v ? v : "");
    cJSON_Delete(r);
    return out;
}

/* Wait (polling every 100 ms, 60 s at most) until expr gives want. */
static int wait_for(const char *session, const char *expr, const char *want) {
    double until = cs_now() + 30;
    while (cs_now() < until) {
        char *v = eval_string(session, expr);
        int done = !strcmp(v, want);
        free(v);
        if (done) return 1;
        usleep(100000);
    }
    return 0;
}

static const char *find_chromium(void) {
    const char *env = getenv("CS_CHROMIUM");
    if (env && *env) return env;
    static const char *const paths[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        if (access(paths[i], X_OK) == 0) return paths[i];
    return NULL;
}

static int start_browser(const char *exe) {
    int to[2], from[2];
    if (pipe(to) || pipe(from)) return -1;
    char profile[300];
    snprintf(profile, sizeof profile, "--user-data-dir=%s/chromium-profile", g_tmp);
    g_browser = fork();
    if (g_browser < 0) return -1;
    if (g_browser == 0) {
        /* fd 3: commands in, fd 4: messages out */
        int in = dup(to[0]), out = dup(from[1]);
        dup2(in, 3);
        dup2(out, 4);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        for (int fd = 5; fd < 256; fd++) close(fd);
        execl(exe, exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
              "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--no-proxy-server",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--window-size=1280,860", "--hide-scrollbars", profile, "about:blank", (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    g_to = to[1];
    g_from = from[0];
    return 0;
}

static void stop_browser(void) {
    g_deadline = cs_now() + 5;
    cJSON_Delete(call(NULL, "Browser.close", NULL));
    close(g_to);
    close(g_from);
    int status;
    for (int i = 0; i < 50 && waitpid(g_browser, &status, WNOHANG) != g_browser; i++) usleep(100000);
    if (waitpid(g_browser, &status, WNOHANG) == 0) {
        kill(g_browser, SIGKILL);
        waitpid(g_browser, &status, 0);
    }
}

static void screenshot(const char *session) {
    cJSON *r = call(session, "Page.captureScreenshot", "{\"format\":\"png\"}");
    const char *b64 = cJSON_GetStringValue(cJSON_GetObjectItem(r, "data"));
    CHECK(b64 != NULL);
    if (b64) {
        char *url = malloc(strlen(b64) + 32);
        sprintf(url, "data:image/png;base64,%s", b64);
        size_t n = 0;
        unsigned char *png = data_url_decode(url, &n);
        const char *path = getenv("CS_SCREENSHOT") ? getenv("CS_SCREENSHOT") : tmp_path("screenshot.png");
        FILE *f = fopen(path, "wb");
        CHECK(f && png && fwrite(png, 1, n, f) == n);
        if (f) fclose(f);
        printf("screenshot: %s (%zu bytes)\n", path, n);
        free(png);
        free(url);
    }
    cJSON_Delete(r);
}

/* A real mouse event (DevTools Input) at image pixel (x, y) of the canvas. */
static void mouse(const char *session, const char *type, double x, double y, int shift) {
    char *rect = eval_string(session, "(() => { const c = document.getElementById('view');"
                                      " const r = c.getBoundingClientRect();"
                                      " return [r.left, r.top, r.width / c.width, r.height / c.height].join(' '); })()");
    double left = 0, top = 0, sx = 1, sy = 1;
    CHECK(sscanf(rect, "%lf %lf %lf %lf", &left, &top, &sx, &sy) == 4);
    free(rect);
    char params[512];
    snprintf(params, sizeof params,
             "{\"type\":\"%s\",\"x\":%.2f,\"y\":%.2f,\"button\":\"left\",\"buttons\":%d,\"clickCount\":1,"
             "\"modifiers\":%d}",
             type, left + x * sx, top + y * sy, strcmp(type, "mouseReleased") ? 1 : 0, shift ? 8 : 0);
    cJSON_Delete(call(session, "Input.dispatchMouseEvent", params));
}

/* Pixels of the canvas where SAM's mask colour (30, 144, 255) at 0.6 over
 * any photo pixel leaves blue above red by more than 30. */
static int blue_pixels(const char *session) {
    char *v = eval_string(session, "(() => { const c = document.getElementById('view');"
                                   " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                                   " let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i + 2] > d[i] + 30;"
                                   " return String(n); })()");
    int n = atoi(v);
    free(v);
    return n;
}

/* SAM (the server has tiny-sam): the job offered, a click on the cat gives
 * a mask drawn over the photo, a shift-click adds a negative point (the
 * encoder skipped: the embedding is cached), a drag gives a box. */
static void sam_clicks(const char *session) {
    char *v = eval_string(session, "(() => { const j = document.getElementById('job'); j.value = 'sam';"
                                   " j.dispatchEvent(new Event('change')); return String(!document.getElementById('job-sam').disabled); })()");
    CHECK_MSG(!strcmp(v, "true"), "the page offers no SAM job");
    free(v);
    CHECK(wait_for(session, "String(document.getElementById('sam-row').hidden)", "false"));
    int before = blue_pixels(session);
    mouse(session, "mousePressed", 230, 120, 0);
    mouse(session, "mouseReleased", 230, 120, 0);
    CHECK_MSG(wait_for(session, "(document.body.dataset.samPoints || '') + (document.getElementById('error').textContent)", "1"),
              "no SAM mask: %s", eval_string(session, "document.getElementById('error').textContent"));
    v = eval_string(session, "(() => { const a = state.answer; return [a.masks[a.best].area, a.encoder, "
                             "a.labels.join(','), document.getElementById('sam-info').textContent.includes('IoU')].join(' '); })()");
    int area = 0;
    char encoder[16] = "", labels[16] = "", info[8] = "";
    CHECK_MSG(sscanf(v, "%d %15s %15s %7s", &area, encoder, labels, info) == 4 && area > 0 && !strcmp(encoder, "ran") &&
                  !strcmp(labels, "1") && !strcmp(info, "true"),
              "SAM answer: '%s'", v);
    free(v);
    int after = blue_pixels(session);
    CHECK_MSG(after - before >= area / 2, "mask not drawn: %d blue pixels before, %d after, mask area %d", before, after, area);
    mouse(session, "mousePressed", 300, 250, 1);
    mouse(session, "mouseReleased", 300, 250, 1);
    CHECK(wait_for(session, "(document.body.dataset.samPoints || '') + ' ' + document.body.dataset.samEncoder", "2 cached"));
    v = eval_string(session, "state.answer.labels.join(',')");
    CHECK_MSG(!strcmp(v, "1,0"), "labels after a shift-click: %s", v);
    free(v);
    mouse(session, "mousePressed", 100, 40, 0);
    mouse(session, "mouseMoved", 250, 160, 0);
    mouse(session, "mouseMoved", 380, 290, 0);
    mouse(session, "mouseReleased", 380, 290, 0);
    CHECK(wait_for(session, "String(Array.isArray(state.answer.box) && state.answer.box.length === 4 && "
                            "Math.round(state.answer.box[2]) === 380)", "true"));
}

static void drive(const test_server *s, const char *image) {
    g_deadline = cs_now() + 60;
    cJSON *t = call(NULL, "Target.createTarget", "{\"url\":\"about:blank\"}");
    char params[2048], session[128] = "";
    snprintf(params, sizeof params, "{\"targetId\":\"%s\",\"flatten\":true}",
             cJSON_GetStringValue(cJSON_GetObjectItem(t, "targetId")) ?: "");
    cJSON_Delete(t);
    cJSON *a = call(NULL, "Target.attachToTarget", params);
    snprintf(session, sizeof session, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(a, "sessionId")) ?: "");
    cJSON_Delete(a);
    CHECK_MSG(session[0], "no DevTools session");
    if (!session[0]) return;
    cJSON_Delete(call(session, "Runtime.enable", NULL));
    cJSON_Delete(call(session, "Log.enable", NULL));
    cJSON_Delete(call(session, "Page.enable", NULL));
    snprintf(params, sizeof params, "{\"url\":\"http://127.0.0.1:%d/\"}", s->port);
    cJSON_Delete(call(session, "Page.navigate", params));
    CHECK_MSG(wait_for(session, "document.readyState", "complete"), "the page did not load");
    CHECK(wait_for(session, "String(document.getElementById('model').textContent.includes('ViT'))", "true"));

    /* The real file input gets the image, as a person's pick would. */
    cJSON *doc = call(session, "DOM.getDocument", NULL);
    int root = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "root"), "nodeId"));
    cJSON_Delete(doc);
    snprintf(params, sizeof params, "{\"nodeId\":%d,\"selector\":\"#file\"}", root);
    cJSON *q = call(session, "DOM.querySelector", params);
    int node = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(q, "nodeId"));
    cJSON_Delete(q);
    CHECK(node > 0);
    cJSON *files = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(files, "files");
    cJSON_AddItemToArray(list, cJSON_CreateString(image));
    cJSON_AddNumberToObject(files, "nodeId", node);
    char *text = cJSON_PrintUnformatted(files);
    cJSON_Delete(files);
    cJSON_Delete(call(session, "DOM.setFileInputFiles", text));
    free(text);

    /* Explain (the default job, four classes): the heatmap drawn. */
    CHECK_MSG(wait_for(session, "document.body.dataset.done || document.getElementById('error').textContent", "explain"),
              "no heatmaps: %s", eval_string(session, "document.getElementById('error').textContent"));
    char *v = eval_string(session, "(() => { const c = document.getElementById('view');"
                                   " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                                   " let lit = 0; for (let i = 0; i < d.length; i += 4) lit += d[i] + d[i+1] + d[i+2] > 0;"
                                   " return [c.width, c.height, lit > c.width * c.height / 2,"
                                   " document.querySelectorAll('#switcher button').length,"
                                   " document.getElementById('error').hidden,"
                                   " document.getElementById('result').hidden].join(' '); })()");
    CHECK_MSG(!strcmp(v, "451 300 true 4 true false"), "explain DOM: '%s'", v);
    free(v);
    /* The class switcher and the opacity slider redraw. */
    v = eval_string(session, "(() => { document.querySelectorAll('#switcher button')[2].click();"
                             " return 'ok'; })()");
    free(v);
    CHECK(wait_for(session, "document.querySelector('#switcher button.active').textContent", "grass"));
    screenshot(session);

    /* Segment: the legend lists the classes. */
    v = eval_string(session, "(() => { const j = document.getElementById('job'); j.value = 'segment';"
                             " j.dispatchEvent(new Event('change')); return 'ok'; })()");
    free(v);
    CHECK(wait_for(session, "document.body.dataset.done", "segment"));
    v = eval_string(session, "String(document.querySelectorAll('#legend .swatch').length)");
    CHECK_MSG(atoi(v) >= 1 && atoi(v) <= 4, "legend: %s", v);
    free(v);
    CHECK_MSG(g_errors == 0, "browser errors: %d", g_errors);
    sam_clicks(session);
    CHECK_MSG(g_errors == 0, "browser errors: %d", g_errors);
    /* A bad request shows a message, not a broken page (the browser logs
     * the 400 itself). */
    v = eval_string(session, "(() => { const j = document.getElementById('job'); j.value = 'explain';"
                             " document.getElementById('res').value = '7';"
                             " document.getElementById('run').click(); return 'ok'; })()");
    free(v);
    CHECK(wait_for(session, "String(document.getElementById('error').textContent.includes('res'))", "true"));
}

int main(void) {
    golden_shared_dir();
    const char *exe = find_chromium();
    if (!exe) {
        fprintf(stderr, "no chromium (apt-get install chromium, or set CS_CHROMIUM)%s\n",
                getenv("CI") && !strcmp(getenv("CI"), "true") ? "" : ": skipped");
        return getenv("CI") && !strcmp(getenv("CI"), "true") ? 1 : 77;
    }
    tool_tmp_init("test_serve_browser");
    signal(SIGPIPE, SIG_IGN);
    /* Chromium refuses file paths with ".." (net::ERR_ACCESS_DENIED). */
    char image[PATH_MAX];
    if (!realpath(golden_path("images/chelsea.png"), image)) {
        CHECK(0);
        return test_finish();
    }
    test_server s;
    if (server_start(&s, "--model '%s' --vocab '%s' --sam '%s' --quiet", golden_path("golden/tiny-vit/model.safetensors"),
                     golden_path("clip/bpe_simple_vocab_16e6.txt.gz"), golden_path("golden/sam/tiny-sam/model.safetensors"))) {
        CHECK(0);
        return test_finish();
    }
    if (start_browser(exe) == 0) {
        drive(&s, image);
        stop_browser();
    } else {
        CHECK(0);
    }
    CHECK(server_stop(&s) == 0);
    free(g_buf);
    return test_finish();
}
