/* The SAM job behind `clip-surgery sam`: one image, its embedding (from the
 * cache or the encoder), every prompt set predicted, then the files and a
 * JSON summary. Everything is checked and computed before the first file is
 * written; a failed write removes what this call wrote. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "base/fileio.h"
#include "formats/download.h"
#include "formats/npy.h"
#include "sam/sam.h"

/* SAM's demo colours: show_mask's (30, 144, 255) at alpha 0.6, show_box's green. */
static const uint8_t k_mask_rgb[3] = {30, 144, 255};
static const uint8_t k_box_rgb[3] = {0, 128, 0};
static const char k_cache_magic[8] = "CSSAM1\n";

/* ---------------------------------------------------------------- inputs */

/* A mask input file: float32 [4G, 4G] with any number of leading 1s. */
static cs_status load_mask_input(const char *path, int L, float **out) {
    cs_array a;
    *out = NULL;
    cs_status s = cs_npy_read(path, &a);
    if (s != CS_OK) return s;
    int ok = a.dtype == CS_DT_F32 && a.ndim >= 2 && a.shape[a.ndim - 1] == L && a.shape[a.ndim - 2] == L;
    for (int i = 0; ok && i < a.ndim - 2; i++) ok = a.shape[i] == 1;
    if (!ok) {
        cs_array_free(&a);
        return error_set(CS_ERR_SHAPE, "%s: a mask input must be float32 [%d, %d] low-res logits (as "
                       "lowres.npy holds them, one mask)", path, L, L);
    }
    *out = a.data;
    return CS_OK;
}

/* ---------------------------------------------------------------- the embedding cache */

/* <cache>/sam/<sha256(SAM file's SHA-256, image bytes' SHA-256)>. */
static cs_status cache_path(const cs_sam_job *job, char *out, size_t n) {
    char model_hex[65], image_hex[65], key[65], both[140];
    cs_status s = cs_model_identity(NULL, job->sam_path, job->cache_dir, model_hex);
    if (s == CS_OK) s = sha256_file(job->image_path, image_hex);
    if (s != CS_OK) return s;
    snprintf(both, sizeof both, "%s\n%s", model_hex, image_hex);
    cs_sha256_bytes(both, strlen(both), key);
    snprintf(out, n, "%s/sam/%s", job->cache_dir, key);
    return CS_OK;
}

/* 1 when a valid entry was read into e (a corrupt one is never trusted). */
static int cache_lookup(const cs_sam *m, const char *path, cs_sam_embedding *e) {
    char *buf;
    size_t len;
    if (access(path, R_OK) != 0 || cs_read_file(path, (size_t)1 << 31, &buf, &len) != CS_OK) return 0;
    uint32_t crc;
    int ok = len > 12 && !memcmp(buf, k_cache_magic, 8);
    if (ok) {
        memcpy(&crc, buf + 8, 4);
        ok = crc == (uint32_t)crc32(0, (const Bytef *)buf + 12, (uInt)(len - 12)) &&
             cs_sam_embedding_from_bytes(m, buf + 12, len - 12, e) == CS_OK;
    }
    cs_free(buf);
    return ok;
}

/* A failure to store only costs an encoder run next time. */
static void cache_store(const char *path, const cs_sam_embedding *e) {
    char dir[4400];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    size_t n = cs_sam_embedding_bytes(e);
    char *buf = mem_alloc(n, 1);
    cs_atomic_file af;
    if (buf && cs_mkdirs(dir) == CS_OK && cs_atomic_open(&af, path) == CS_OK) {
        cs_sam_embedding_to_bytes(e, buf);
        uint32_t crc = (uint32_t)crc32(0, (const Bytef *)buf, (uInt)n);
        fwrite(k_cache_magic, 1, 8, af.f);
        fwrite(&crc, 4, 1, af.f);
        fwrite(buf, 1, n, af.f);
        cs_atomic_commit(&af);
    }
    cs_free(buf);
}

/* ---------------------------------------------------------------- outputs */

typedef struct written {
    char (*paths)[4200];
    int n, cap;
} written;

static cs_status note_written(written *w, const char *path, cs_status s) {
    if (s == CS_OK && w->n < w->cap) snprintf(w->paths[w->n++], sizeof w->paths[0], "%s", path);
    return s;
}

static void draw_box(uint8_t *rgb, int W, int H, const float *box) {
    int t = (W < H ? W : H) / 200 + 2; /* line width, as lw=2 at the demo's size */
    int x0 = (int)box[0], y0 = (int)box[1], x1 = (int)box[2], y1 = (int)box[3];
    for (int y = y0 - t / 2; y <= y1 + t / 2; y++)
        for (int x = x0 - t / 2; x <= x1 + t / 2; x++) {
            int edge = x < x0 + (t + 1) / 2 || x > x1 - (t + 1) / 2 || y < y0 + (t + 1) / 2 || y > y1 - (t + 1) / 2;
            if (edge && x >= 0 && y >= 0 && x < W && y < H) memcpy(rgb + ((size_t)y * W + x) * 3, k_box_rgb, 3);
        }
}

/* The photo with the mask blended in, the box and the points on top. */
cs_status cs_sam_overlay(const cs_image *img, const uint8_t *mask, const cs_sam_prompt_set *set, uint8_t *rgb) {
    size_t HW = (size_t)img->width * img->height;
    for (size_t i = 0; i < HW; i++)
        for (int c = 0; c < 3; c++) {
            uint8_t v = img->rgb[3 * i + c];
            rgb[3 * i + c] = mask[i] ? (uint8_t)(0.4f * v + 0.6f * k_mask_rgb[c] + 0.5f) : v;
        }
    if (set->has_box) draw_box(rgb, img->width, img->height, set->box);
    if (!set->n_points) return CS_OK;
    int32_t *pts = mem_alloc((size_t)set->n_points, 2 * sizeof(int32_t));
    uint8_t *lab = mem_alloc((size_t)set->n_points, 1);
    cs_status s = pts && lab ? CS_OK : CS_ERR_NOMEM;
    for (int k = 0; s == CS_OK && k < set->n_points; k++) {
        int x = (int)set->points[2 * k], y = (int)set->points[2 * k + 1];
        pts[2 * k] = x < img->width ? x : img->width - 1;
        pts[2 * k + 1] = y < img->height ? y : img->height - 1;
        lab[k] = (uint8_t)set->labels[k];
    }
    if (s == CS_OK) s = cs_draw_points(rgb, img->width, img->height, pts, lab, set->n_points);
    cs_free(pts);
    cs_free(lab);
    return s;
}

static cs_status write_set(const cs_image *img, const cs_sam_prompt_set *set, const cs_sam_result *r,
                           const char *dir, int npy, written *w) {
    char path[4200];
    int W = r->width, H = r->height, C = r->n_masks, best = cs_sam_best_mask(r);
    size_t HW = (size_t)W * H;
    cs_status s = cs_mkdirs(dir);
    uint8_t *png = mem_alloc(HW, 3);
    if (s == CS_OK && !png) s = CS_ERR_NOMEM;
    if (s == CS_OK) {
        for (size_t i = 0; i < HW; i++) png[i] = r->masks[best * HW + i] ? 255 : 0;
        snprintf(path, sizeof path, "%s/mask.png", dir);
        s = note_written(w, path, cs_png_write(path, W, H, 1, png));
    }
    if (s == CS_OK) s = cs_sam_overlay(img, r->masks + best * HW, set, png);
    if (s == CS_OK) {
        snprintf(path, sizeof path, "%s/overlay.png", dir);
        s = note_written(w, path, cs_png_write(path, W, H, 3, png));
    }
    cs_free(png);
    if (s != CS_OK || !npy) return s;
    int64_t chw[3] = {C, H, W}, low[3] = {C, r->lowres, r->lowres}, c1[1] = {C};
    snprintf(path, sizeof path, "%s/masks.npy", dir);
    s = note_written(w, path, cs_npy_write(path, CS_DT_U8, 3, chw, r->masks));
    snprintf(path, sizeof path, "%s/iou.npy", dir);
    if (s == CS_OK) s = note_written(w, path, cs_npy_write(path, CS_DT_F32, 1, c1, r->iou));
    snprintf(path, sizeof path, "%s/lowres.npy", dir);
    if (s == CS_OK) s = note_written(w, path, cs_npy_write(path, CS_DT_F32, 3, low, r->lowres_logits));
    snprintf(path, sizeof path, "%s/logits.npy", dir);
    if (s == CS_OK) s = note_written(w, path, cs_npy_write(path, CS_DT_F32, 3, chw, r->logits));
    return s;
}

/* ---------------------------------------------------------------- JSON */

static cJSON *number_list(const float *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(x[i]));
    return a;
}

static cJSON *set_json(const cs_sam_prompt_set *set, const char *name, const char *dir, const cs_sam_result *r) {
    cJSON *o = cJSON_CreateObject(), *pts, *lab;
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "dir", dir);
    pts = cJSON_AddArrayToObject(o, "points");
    for (int k = 0; k < set->n_points; k++) cJSON_AddItemToArray(pts, number_list(set->points + 2 * k, 2));
    lab = cJSON_AddArrayToObject(o, "labels");
    for (int k = 0; k < set->n_points; k++) cJSON_AddItemToArray(lab, cJSON_CreateNumber(set->labels[k]));
    cJSON_AddItemToObject(o, "box", set->has_box ? number_list(set->box, 4) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "mask_input", set->mask_input ? cJSON_CreateString(set->mask_input) : cJSON_CreateNull());
    cJSON_AddBoolToObject(o, "multimask", set->multimask);
    cJSON_AddNumberToObject(o, "best", cs_sam_best_mask(r));
    cJSON *masks = cJSON_AddArrayToObject(o, "masks");
    size_t HW = (size_t)r->width * r->height;
    for (int c = 0; c < r->n_masks; c++) {
        cJSON *mo = cJSON_CreateObject();
        long long area = 0;
        int x0 = r->width, y0 = r->height, x1 = -1, y1 = -1;
        for (int y = 0; y < r->height; y++)
            for (int x = 0; x < r->width; x++)
                if (r->masks[c * HW + (size_t)y * r->width + x]) {
                    area++;
                    x0 = x < x0 ? x : x0;
                    x1 = x > x1 ? x : x1;
                    y0 = y < y0 ? y : y0;
                    y1 = y > y1 ? y : y1;
                }
        cJSON_AddNumberToObject(mo, "iou", r->iou[c]);
        cJSON_AddNumberToObject(mo, "area", (double)area);
        float bb[4] = {(float)x0, (float)y0, (float)x1, (float)y1};
        cJSON_AddItemToObject(mo, "bbox", area ? number_list(bb, 4) : cJSON_CreateNull());
        cJSON_AddItemToArray(masks, mo);
    }
    return o;
}

/* ---------------------------------------------------------------- the job */

typedef struct job_state {
    cs_image img;
    cs_sam_embedding e;
    float **masks;        /* [n_sets] mask inputs or NULL */
    cs_sam_result *results;
    char **stems;
    int encoder_ran;
} job_state;

static void state_free(const cs_sam_job *job, job_state *st) {
    for (int i = 0; i < job->n_sets; i++) {
        if (st->masks) cs_free(st->masks[i]);
        if (st->results) cs_sam_result_free(&st->results[i]);
        if (st->stems) cs_free(st->stems[i]);
    }
    cs_free(st->masks);
    cs_free(st->results);
    cs_free(st->stems);
    cs_sam_embedding_free(&st->e);
    cs_image_free(&st->img);
}

static cs_sam_prompt to_prompt(const cs_sam_prompt_set *set, const float *mask) {
    cs_sam_prompt p = {set->n_points, set->points, set->labels, set->has_box ? set->box : NULL, mask, set->multimask};
    return p;
}

/* Image, mask inputs and every prompt checked. */
static cs_status prepare(cs_sam *m, const cs_sam_job *job, job_state *st) {
    int n = job->n_sets, L = 4 * m->cfg.grid;
    if (n < 1 || !job->sets || !job->out_dir || !job->image_path)
        return error_set(CS_ERR_ARG, "SAM job: an image, an output folder and at least one prompt set are needed");
    cs_status s = cs_image_load(job->image_path, job->image_options, &st->img);
    st->masks = mem_calloc((size_t)n, sizeof *st->masks);
    st->results = mem_calloc((size_t)n, sizeof *st->results);
    st->stems = mem_calloc((size_t)n, sizeof *st->stems);
    if (s == CS_OK && (!st->masks || !st->results || !st->stems)) s = CS_ERR_NOMEM;
    for (int i = 0; s == CS_OK && i < n; i++) {
        const cs_sam_prompt_set *set = &job->sets[i];
        if (set->mask_input) s = load_mask_input(set->mask_input, L, &st->masks[i]);
        cs_sam_prompt p = to_prompt(set, st->masks[i]);
        if (s == CS_OK) s = sam_check_prompt(st->img.width, st->img.height, m->cfg.grid, &p);
        if (s != CS_OK && n > 1) error_prefix("prompt set %d (%s)", i + 1, set->name ? set->name : "unnamed");
    }
    /* subfolder names: each set's name, made safe and unique */
    const char **names = mem_alloc((size_t)n, sizeof *names);
    char (*dflt)[32] = mem_alloc((size_t)n, sizeof *dflt);
    if (s == CS_OK && (!names || !dflt)) s = CS_ERR_NOMEM;
    for (int i = 0; s == CS_OK && i < n; i++) {
        snprintf(dflt[i], sizeof dflt[i], "prompt_%d", i + 1);
        names[i] = job->sets[i].name ? job->sets[i].name : dflt[i];
    }
    if (s == CS_OK) s = cs_file_stems(names, n, st->stems);
    cs_free(names);
    cs_free(dflt);
    return s;
}

static cs_status embed(cs_sam *m, const cs_sam_job *job, job_state *st) {
    char path[4400];
    int cached = job->cache_dir && cache_path(job, path, sizeof path) == CS_OK;
    if (cached && cache_lookup(m, path, &st->e) && st->e.image_w == st->img.width && st->e.image_h == st->img.height)
        return CS_OK;
    cs_sam_embedding_free(&st->e);
    cs_status s = cs_sam_encode(m, &st->img, &st->e);
    st->encoder_ran = 1;
    if (s == CS_OK && cached) cache_store(path, &st->e);
    return s;
}

static cs_status write_all(const cs_sam_job *job, job_state *st, written *w) {
    char dir[4200], path[4200];
    cs_status s = cs_mkdirs(job->out_dir);
    if (s == CS_OK && job->npy) {
        int64_t shape[3] = {st->e.dim, st->e.grid, st->e.grid};
        snprintf(path, sizeof path, "%s/embedding.npy", job->out_dir);
        s = note_written(w, path, cs_npy_write(path, CS_DT_F32, 3, shape, st->e.data));
    }
    for (int i = 0; s == CS_OK && i < job->n_sets; i++) {
        if (job->subfolders) snprintf(dir, sizeof dir, "%s/%s", job->out_dir, st->stems[i]);
        else snprintf(dir, sizeof dir, "%s", job->out_dir);
        s = write_set(&st->img, &job->sets[i], &st->results[i], dir, job->npy, w);
    }
    return s;
}

static char *summary(const cs_sam_job *job, const job_state *st) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "image", job->image_path);
    float size[2] = {(float)st->img.width, (float)st->img.height};
    cJSON_AddItemToObject(root, "image_size", number_list(size, 2));
    cJSON_AddStringToObject(root, "sam", job->sam_label ? job->sam_label : job->sam_path);
    cJSON_AddStringToObject(root, "encoder", st->encoder_ran ? "ran" : "cached");
    cJSON *sets = cJSON_AddArrayToObject(root, "prompts");
    for (int i = 0; i < job->n_sets; i++) {
        char dir[4200];
        if (job->subfolders) snprintf(dir, sizeof dir, "%s/%s", job->out_dir, st->stems[i]);
        else snprintf(dir, sizeof dir, "%s", job->out_dir);
        const char *name = job->sets[i].name ? job->sets[i].name : st->stems[i];
        cJSON_AddItemToArray(sets, set_json(&job->sets[i], name, dir, &st->results[i]));
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

cs_status cs_sam_run(cs_sam *m, const cs_sam_job *job, char **json) {
    *json = NULL;
    job_state st;
    memset(&st, 0, sizeof st);
    cs_status s = prepare(m, job, &st);
    if (s == CS_OK) s = embed(m, job, &st);
    for (int i = 0; s == CS_OK && i < job->n_sets; i++) {
        cs_sam_prompt p = to_prompt(&job->sets[i], st.masks[i]);
        s = cs_sam_predict(m, &st.e, &p, &st.results[i]);
    }
    written w = {NULL, 0, 1 + 6 * job->n_sets};
    if (s == CS_OK && !(w.paths = mem_alloc((size_t)w.cap, sizeof *w.paths))) s = CS_ERR_NOMEM;
    if (s == CS_OK) s = write_all(job, &st, &w);
    if (s == CS_OK && !(*json = summary(job, &st))) s = error_set(CS_ERR_NOMEM, "SAM job: no memory for the JSON");
    if (s != CS_OK)
        for (int i = 0; i < w.n; i++) unlink(w.paths[i]);
    cs_free(w.paths);
    state_free(job, &st);
    return s;
}

void cs_sam_json_free(char *json) { cJSON_free(json); }
