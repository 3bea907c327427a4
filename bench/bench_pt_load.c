/* What the CRC-32 check of stored zip entries costs on a full-size .pt
 * load. A synthetic ViT-B/16 (random weights, the release's shapes) is
 * written as a PyTorch archive of fp16 storages, one stored entry per
 * tensor like the official files (about 300 MB), then timed: the whole
 * cs_model_load of it, and the CRC-32 check alone over the same entries
 * (zip_check_stored, what the load runs on each). Medians of 5, the
 * file warm in the page cache.
 *
 *   bench_pt_load [ARCH] [DIR]      (default ViT-B/16, $TMPDIR or /tmp) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include "base/base.h"
#include "formats/tensors.h"
#include "formats/zip.h"
#include "hostile/gen.h"
#include "median.h"

static int fail(const char *what) {
    fprintf(stderr, "bench_pt_load: %s: %s\n", what, cs_last_error());
    return 1;
}

/* The fp16 safetensors copy of the synthetic model as a .pt: a dict of
 * tensors, storage i holding tensor i. */
static int write_pt(const char *st_path, const char *pt_path) {
    cs_tensor_table t;
    if (safetensors_open(st_path, &t) != CS_OK) return fail(st_path);
    buf pkl = {0}, out = {0};
    zentry *e = calloc((size_t)t.n + 1, sizeof *e);
    char (*names)[32] = calloc((size_t)t.n, sizeof *names);
    pk_begin(&pkl);
    pk_op(&pkl, '}');
    pk_op(&pkl, '(');
    for (int i = 0; i < t.n; i++) {
        const cs_tensor *x = &t.items[i];
        int64_t stride[CS_MAX_DIMS], numel = 1;
        for (int d = x->ndim - 1; d >= 0; d--) {
            stride[d] = numel;
            numel *= x->shape[d];
        }
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        snprintf(names[i], sizeof names[i], "archive/data/%d", i);
        pk_unicode(&pkl, x->name);
        pk_tensor_of(&pkl, "HalfStorage", key, numel, 0, x->ndim, x->shape, stride);
        e[i + 1] = (zentry){names[i], x->data, x->nbytes, 0};
    }
    pk_op(&pkl, 'u');
    pk_end(&pkl);
    e[0] = (zentry){"archive/data.pkl", pkl.p, pkl.n, 0};
    zip_build(&out, e, t.n + 1, NULL, NULL);
    FILE *f = fopen(pt_path, "wb");
    int ok = f && fwrite(out.p, 1, out.n, f) == out.n;
    if (f) ok &= fclose(f) == 0;
    b_free(&pkl);
    b_free(&out);
    free(e);
    free(names);
    tensors_free(&t);
    if (!ok) fprintf(stderr, "bench_pt_load: cannot write %s\n", pt_path);
    return !ok;
}

int main(int argc, char **argv) {
    const char *arch = argc > 1 ? argv[1] : "ViT-B/16";
    const char *dir = argc > 2 ? argv[2] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char st_path[1024], pt_path[1024];
    snprintf(st_path, sizeof st_path, "%s/bench_pt_load.safetensors", dir);
    snprintf(pt_path, sizeof pt_path, "%s/bench_pt_load.pt", dir);
    cs_model *m;
    if (cs_model_synthetic(arch, &m) != CS_OK) return fail(arch);
    cs_status s = cs_model_save(m, st_path, CS_SAVE_F16);
    cs_model_free(m);
    if (s != CS_OK) return fail(st_path);
    int rc = write_pt(st_path, pt_path);
    unlink(st_path);
    if (rc) return rc;

    double t_load[5], t_crc[5];
    for (int i = 0; i < 5 && !rc; i++) {
        double t0 = cs_now();
        if (cs_model_load(pt_path, &m) != CS_OK) rc = fail(pt_path);
        t_load[i] = cs_now() - t0;
        if (!rc) cs_model_free(m);
    }
    int fd = open(pt_path, O_RDONLY);
    struct stat st;
    const uint8_t *map = MAP_FAILED;
    if (!rc && fd >= 0 && fstat(fd, &st) == 0)
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (!rc && map == MAP_FAILED) {
        fprintf(stderr, "bench_pt_load: cannot map %s\n", pt_path);
        rc = 1;
    }
    uint64_t stored = 0;
    for (int i = 0; i < 5 && !rc; i++) {
        cs_zip z;
        if (zip_open(&z, pt_path, map, (size_t)st.st_size) != CS_OK) {
            rc = fail(pt_path);
            break;
        }
        stored = 0;
        double t0 = cs_now();
        for (int k = 0; k < z.n && !rc; k++) {
            if (zip_check_stored(&z, &z.entries[k]) != CS_OK) rc = fail(pt_path);
            if (z.entries[k].method == 0) stored += z.entries[k].size;
        }
        t_crc[i] = cs_now() - t0;
        zip_close(&z);
    }
    if (map != MAP_FAILED) munmap((void *)map, (size_t)st.st_size);
    if (fd >= 0) close(fd);
    unlink(pt_path);
    if (rc) return rc;
    double load = bench_median(t_load, 5), crc = bench_median(t_crc, 5);
    printf("%s fp16 .pt, %.0f MB stored: load %.3f s, CRC-32 check %.3f s (%.0f MB/s) = %.1f%% of the load\n",
           arch, stored / 1e6, load, crc, stored / 1e6 / crc, 100.0 * crc / load);
    return 0;
}
