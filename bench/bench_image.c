/* Preprocessing speed: decode, Pillow-exact resize to R x R, normalize.
 * Usage: bench_image [IMAGE [R]]; without an image a 4000x3000 noise image
 * is resized. Prints the median of 5 runs of each step. */
#include <stdio.h>
#include <stdlib.h>
#include "base/base.h"
#include "median.h"

static double median5(double *t) { return bench_median(t, 5); }

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : NULL;
    int r = argc > 2 ? atoi(argv[2]) : 224;
    double t_decode[5] = {0}, t_resize[5], t_norm[5];
    cs_image img = {0};
    for (int i = 0; i < 5; i++) {
        cs_image_free(&img);
        double t0 = cs_now();
        if (path) {
            if (cs_image_load(path, NULL, &img) != CS_OK) {
                fprintf(stderr, "%s\n", cs_last_error());
                return 1;
            }
        } else {
            img.width = 4000, img.height = 3000;
            img.rgb = mem_alloc((size_t)img.width * img.height, 3);
            for (size_t k = 0; k < (size_t)img.width * img.height * 3; k++) img.rgb[k] = (uint8_t)rand();
        }
        t_decode[i] = cs_now() - t0;
    }
    float *px = mem_alloc((size_t)3 * r * r, sizeof(float));
    for (int i = 0; i < 5; i++) {
        cs_image small;
        double t0 = cs_now();
        if (cs_image_resize(&img, r, r, &small) != CS_OK) {
            fprintf(stderr, "%s\n", cs_last_error());
            return 1;
        }
        double t1 = cs_now();
        cs_image_normalize(&small, px);
        t_norm[i] = cs_now() - t1;
        t_resize[i] = t1 - t0;
        cs_image_free(&small);
    }
    printf("%dx%d -> %dx%d, %d threads: %s %.2f ms, resize %.2f ms, normalize %.3f ms\n", img.width,
           img.height, r, r, cs_get_threads(), path ? "decode" : "fill", median5(t_decode) * 1e3,
           median5(t_resize) * 1e3, median5(t_norm) * 1e3);
    cs_free(px);
    cs_image_free(&img);
    return 0;
}
