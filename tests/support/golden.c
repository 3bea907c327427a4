#include "golden.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/fileio.h"
#include "formats/zip.h"
#include "test.h"

const char *golden_shared_dir_if_present(void) {
    static char dir[4096];
    const char *env = getenv("CLIP_SURGERY_SHARED");
    snprintf(dir, sizeof dir, "%s", env && *env ? env : CS_DEFAULT_SHARED_DIR);
    char manifest[4200];
    snprintf(manifest, sizeof manifest, "%s/golden/MANIFEST.json", dir);
    struct stat st;
    return stat(manifest, &st) == 0 ? dir : NULL;
}

const char *golden_shared_dir(void) {
    static char dir[4096];
    if (dir[0]) return dir;
    const char *env = getenv("CLIP_SURGERY_SHARED");
    snprintf(dir, sizeof dir, "%s", env && *env ? env : CS_DEFAULT_SHARED_DIR);
    char manifest[4200];
    snprintf(manifest, sizeof manifest, "%s/golden/MANIFEST.json", dir);
    struct stat st;
    if (stat(manifest, &st) != 0) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0) {
            fprintf(stderr, "FAIL: %s not found (CI=true requires the shared golden data)\n",
                    manifest);
            exit(1);
        }
        printf("SKIP: %s not found; set CLIP_SURGERY_SHARED to the shared folder\n", manifest);
        exit(77);
    }
    return dir;
}

const char *golden_path(const char *rel) {
    static char bufs[8][4200];
    static int slot;
    char *b = bufs[slot++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", golden_shared_dir(), rel);
    return b;
}

cJSON *golden_manifest(void) {
    static cJSON *m;
    if (m) return m;
    char *text;
    size_t len;
    if (cs_read_file(golden_path("golden/MANIFEST.json"), 0, &text, &len) != CS_OK) {
        fprintf(stderr, "FAIL: %s\n", cs_last_error());
        exit(1);
    }
    m = cJSON_Parse(text);
    cs_free(text);
    if (!m) {
        fprintf(stderr, "FAIL: MANIFEST.json does not parse\n");
        exit(1);
    }
    return m;
}

/* A set with its own manifest (golden/sam/tiny-sam/manifest.json), parsed
 * once; its "files" are relative to its folder. */
static const char *k_own_manifests[] = {"sam/tiny-sam"};
#define N_OWN (int)(sizeof k_own_manifests / sizeof *k_own_manifests)

cJSON *golden_set_manifest(const char *set) {
    static cJSON *parsed[N_OWN];
    for (int i = 0; i < N_OWN; i++) {
        if (strcmp(set, k_own_manifests[i]) != 0) continue;
        if (parsed[i]) return parsed[i];
        char rel[256], *text;
        size_t len;
        snprintf(rel, sizeof rel, "golden/%s/manifest.json", set);
        if (cs_read_file(golden_path(rel), 0, &text, &len) != CS_OK) {
            fprintf(stderr, "FAIL: %s\n", cs_last_error());
            exit(1);
        }
        parsed[i] = cJSON_Parse(text);
        cs_free(text);
        if (!parsed[i]) {
            fprintf(stderr, "FAIL: %s does not parse\n", rel);
            exit(1);
        }
        return parsed[i];
    }
    return NULL;
}

cJSON *golden_entry(const char *rel) {
    for (int i = 0; i < N_OWN; i++) {
        size_t n = strlen(k_own_manifests[i]);
        if (!strncmp(rel, k_own_manifests[i], n) && rel[n] == '/')
            return cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(golden_set_manifest(k_own_manifests[i]), "files"), rel + n + 1);
    }
    cJSON *sets = cJSON_GetObjectItemCaseSensitive(golden_manifest(), "sets");
    cJSON *set;
    cJSON_ArrayForEach(set, sets) {
        cJSON *f = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(set, "files"), rel);
        if (f) return f;
    }
    return NULL;
}

void golden_npz_load(const char *rel, const char *entry, cs_array *out) {
    char full[4200], name[512];
    snprintf(full, sizeof full, "golden/%s", rel);
    snprintf(name, sizeof name, "%s.npy", entry);
    const char *path = golden_path(full);
    char *buf;
    size_t len;
    cs_zip z;
    const uint8_t *data;
    size_t n;
    void *owned = NULL;
    const cs_zip_entry *e = NULL;
    cs_status s = cs_read_file(path, 0, &buf, &len);
    if (s == CS_OK) s = zip_open(&z, path, (const uint8_t *)buf, len);
    if (s == CS_OK && !(e = zip_find(&z, name))) s = error_set(CS_ERR_MISSING, "%s: no entry %s", path, name);
    if (s == CS_OK) s = zip_read(&z, e, (size_t)1 << 30, &data, &n, &owned);
    if (s == CS_OK) s = npy_parse(name, data, n, out);
    if (s != CS_OK) {
        fprintf(stderr, "FAIL: %s\n", cs_last_error());
        exit(1);
    }
    cs_free(owned);
    zip_close(&z);
    cs_free(buf);
}

void golden_load(const char *rel, cs_array *out) {
    char full[4200];
    snprintf(full, sizeof full, "golden/%s", rel);
    if (cs_npy_read(golden_path(full), out) != CS_OK) {
        fprintf(stderr, "FAIL: %s\n", cs_last_error());
        exit(1);
    }
}

int golden_error(const float *got, const float *ref, const int64_t *index, int64_t n, double *relerr,
                 double *cosine) {
    double max_err = 0, max_ref = 0, dot = 0, na = 0, nb = 0;
    int finite = 1;
    for (int64_t i = 0; i < n; i++) {
        double a = got[i], b = ref[index ? index[i] : i];
        if (!isfinite(a)) finite = 0;
        double d = fabs(a - b);
        if (d > max_err) max_err = d;
        if (fabs(b) > max_ref) max_ref = fabs(b);
        dot += a * b;
        na += a * a;
        nb += b * b;
    }
    *relerr = max_ref > 0 ? max_err / max_ref : max_err;
    *cosine = (na > 0 && nb > 0) ? dot / sqrt(na * nb) : (na == nb ? 1.0 : 0.0);
    return finite;
}

/* got[i] against ref[index ? index[i] : i] under rel's allclose tolerance;
 * prints the figures under label. */
static int compare_allclose(const char *label, const float *got, const float *ref, const int64_t *index, int64_t n,
                            double rel_tol, double cos_tol);

static int check_allclose(const char *rel, const char *label, const float *got, const float *ref,
                          const int64_t *index, int64_t n) {
    cJSON *e = golden_entry(rel);
    cJSON *tol = e ? cJSON_GetObjectItemCaseSensitive(e, "tolerance") : NULL;
    cJSON *rel_tol = tol ? cJSON_GetObjectItemCaseSensitive(tol, "max_abs_err_over_max_abs_golden") : NULL;
    cJSON *cos_tol = tol ? cJSON_GetObjectItemCaseSensitive(tol, "min_cosine") : NULL;
    CHECK_MSG(rel_tol && cos_tol, "%s: no allclose tolerance in MANIFEST.json", rel);
    if (!rel_tol || !cos_tol) return 0;
    return compare_allclose(label, got, ref, index, n, rel_tol->valuedouble, cos_tol->valuedouble);
}

/* got[i] against ref[index ? index[i] : i] under explicit tolerances. */
static int compare_allclose(const char *label, const float *got, const float *ref, const int64_t *index, int64_t n,
                            double rel_tol, double cos_tol) {
    double relerr, cosine;
    int finite = golden_error(got, ref, index, n, &relerr, &cosine);
    int ok = finite && relerr <= rel_tol && cosine >= cos_tol;
    printf("%-52s rel_err %.3g (tol %.3g)  cosine %.9f (min %.5f)%s  %s\n", label, relerr, rel_tol, cosine,
           cos_tol, index ? " [subset]" : "", ok ? "ok" : "FAIL");
    CHECK_MSG(ok, "%s out of tolerance", label);
    return ok;
}

int golden_check_floats(const char *rel, const float *got, int64_t n) {
    return golden_check_floats_at(rel, got, NULL, n);
}

int golden_check_floats_at(const char *rel, const float *got, const int64_t *index, int64_t n) {
    cs_array g;
    golden_load(rel, &g);
    int64_t gn = cs_array_numel(&g);
    int fits = g.dtype == CS_DT_F32 && (index ? n <= gn : gn == n);
    for (int64_t i = 0; fits && index && i < n; i++) fits = index[i] >= 0 && index[i] < gn;
    CHECK_MSG(fits, "%s: golden has %lld values, got %lld%s", rel, (long long)gn, (long long)n,
              index ? " (or an index out of range)" : "");
    int ok = fits && check_allclose(rel, rel, got, g.data, index, n);
    cs_array_free(&g);
    return ok;
}

int golden_check_derived(const char *rel, const char *label, const float *got, const float *ref,
                         int64_t n) {
    return check_allclose(rel, label, got, ref, NULL, n);
}

int golden_check_floats_tol(const char *rel, const float *got, int64_t n, double rel_tol, double cos_tol) {
    cs_array g;
    golden_load(rel, &g);
    int fits = g.dtype == CS_DT_F32 && cs_array_numel(&g) == n;
    CHECK_MSG(fits, "%s: golden has %lld values, got %lld", rel, (long long)cs_array_numel(&g), (long long)n);
    int ok = fits && compare_allclose(rel, got, g.data, NULL, n, rel_tol, cos_tol);
    cs_array_free(&g);
    return ok;
}

int golden_check_exact(const char *rel, const void *got, size_t nbytes) {
    cs_array g;
    golden_load(rel, &g);
    int ok = g.nbytes == nbytes && memcmp(g.data, got, nbytes) == 0;
    printf("%-52s exact %s\n", rel, ok ? "ok" : "FAIL");
    CHECK_MSG(ok, "%s differs (%zu bytes vs golden %zu)", rel, nbytes, g.nbytes);
    cs_array_free(&g);
    return ok;
}

/* Masks [C, H, W] against the golden bool masks: a differing pixel must be
 * one fragile.npz lists for this file (its logit within 1e-3 of 0). */
void golden_check_sam_masks(const char *file, const uint8_t *got, size_t n, int H, int W) {
    char rel[256], entry[256];
    snprintf(rel, sizeof rel, "sam/tiny-sam/%s.npy", file);
    cs_array g, idx;
    golden_load(rel, &g);
    snprintf(entry, sizeof entry, "%s_idx", file);
    golden_npz_load("sam/tiny-sam/fragile.npz", entry, &idx);
    CHECK_MSG(g.nbytes == n, "%s: %zu pixels, golden %zu", file, n, g.nbytes);
    size_t differ = 0, unexplained = 0;
    uint8_t *fragile = calloc(n, 1);
    const int32_t *cyx = idx.data;
    for (int64_t i = 0; i < idx.shape[0]; i++)
        fragile[((size_t)cyx[3 * i] * H + cyx[3 * i + 1]) * W + cyx[3 * i + 2]] = 1;
    for (size_t i = 0; i < n && g.nbytes == n; i++)
        if ((got[i] != 0) != (((uint8_t *)g.data)[i] != 0)) {
            differ++;
            unexplained += !fragile[i];
        }
    printf("%-52s %zu pixels differ, %zu of them not fragile  %s\n", rel, differ, unexplained,
           unexplained ? "FAIL" : "ok");
    CHECK_MSG(unexplained == 0, "%s: %zu non-fragile pixels differ", file, unexplained);
    free(fragile);
    cs_array_free(&idx);
    cs_array_free(&g);
}

int golden_check_argmax(const char *rel, const int64_t *labels, const float *gscore, int C, int n) {
    cs_array g;
    golden_load(rel, &g);
    int ok_shape = g.dtype == CS_DT_I64 && cs_array_numel(&g) == n;
    CHECK_MSG(ok_shape, "%s: golden is not int64 [%d]", rel, n);
    const int64_t *want = g.data;
    int bad = 0, fragile = 0;
    for (int p = 0; p < n && ok_shape; p++) {
        if (labels[p] == want[p]) continue;
        float top1 = -INFINITY, top2 = -INFINITY;
        for (int c = 0; c < C; c++) {
            float v = gscore[(size_t)c * n + p];
            if (v > top1) {
                top2 = top1;
                top1 = v;
            } else if (v > top2) {
                top2 = v;
            }
        }
        if (top1 - top2 < 1e-5f) fragile++;
        else bad++;
    }
    printf("%-52s argmax: %d differ, %d more at ties (gap < 1e-5)\n", rel, bad, fragile);
    CHECK_MSG(bad == 0, "%s: %d pixels differ", rel, bad);
    cs_array_free(&g);
    return fragile;
}

void golden_methods_tolerance(double *rel_tol, double *min_cosine) {
    char *text;
    size_t len;
    *rel_tol = 0;
    *min_cosine = 1;
    if (cs_read_file(golden_path("golden/methods/tiny-vit/manifest.json"), 0, &text, &len) != CS_OK) {
        fprintf(stderr, "FAIL: %s\n", cs_last_error());
        exit(1);
    }
    cJSON *j = cJSON_Parse(text);
    cJSON *tol = cJSON_GetObjectItemCaseSensitive(j, "tolerance");
    cJSON *r = cJSON_GetObjectItemCaseSensitive(tol, "max_abs_err_over_max_abs_golden");
    cJSON *c = cJSON_GetObjectItemCaseSensitive(tol, "min_cosine");
    CHECK_MSG(cJSON_IsNumber(r) && cJSON_IsNumber(c), "methods/tiny-vit/manifest.json: no tolerance");
    if (cJSON_IsNumber(r) && cJSON_IsNumber(c)) {
        *rel_tol = r->valuedouble;
        *min_cosine = c->valuedouble;
    }
    cJSON_Delete(j);
    cs_free(text);
}

cs_model *golden_model(const char *set) {
    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s/model.safetensors", set);
    cs_load_options o = cs_load_defaults();
    o.vocab = golden_path("clip/bpe_simple_vocab_16e6.txt.gz");
    o.embedding_cache = 0;
    o.download = 0;
    cs_model *m = NULL;
    CHECK_OK(cs_load(golden_path(rel), &o, &m));
    if (!m) exit(test_finish());
    return m;
}
