/* Image input and preprocessing against the reference (PIL 9.4 decode,
 * torchvision Resize(BICUBIC) = Pillow's resampling, ToTensor + Normalize):
 * decodes and 8-bit resizes must be identical, normalized pixels within the
 * manifest's tolerance. */
#include <stdlib.h>
#include "golden.h"
#include "test.h"

static const char *const k_images[][2] = {
    {"synthetic", "synthetic.png"},
    {"chelsea", "chelsea.png"},
    {"rocket", "rocket.jpg"},
};
static const int k_sizes[] = {64, 128, 256};

static int golden_exists(const char *rel) { return golden_entry(rel) != NULL; }

static void check_decode(const char *stem, const char *file, cs_image *img) {
    char rel[256];
    snprintf(rel, sizeof rel, "golden/inputs/%s", file);
    CHECK_OK(cs_image_load(golden_path(rel), NULL, img));
    snprintf(rel, sizeof rel, "inputs/%s_rgb_u8.npy", stem);
    cs_array g;
    golden_load(rel, &g);
    CHECK_MSG(g.ndim == 3 && g.shape[0] == img->height && g.shape[1] == img->width,
              "%s: decoded %dx%d, golden %lldx%lld", file, img->width, img->height,
              (long long)g.shape[1], (long long)g.shape[0]);
    cs_array_free(&g);
    golden_check_exact(rel, img->rgb, (size_t)img->width * img->height * 3);
}

static void check_resize_and_normalize(const char *stem, const cs_image *img, int r) {
    char rel[256];
    cs_image small;
    CHECK_OK(cs_image_resize(img, r, r, &small));
    snprintf(rel, sizeof rel, "inputs/%s_resized_u8_%d.npy", stem, r);
    if (golden_exists(rel)) golden_check_exact(rel, small.rgb, (size_t)r * r * 3);
    snprintf(rel, sizeof rel, "inputs/%s_pre_%d.npy", stem, r);
    if (golden_exists(rel)) {
        float *pixels = malloc(sizeof(float) * 3 * r * r);
        cs_image_normalize(&small, pixels);
        golden_check_floats(rel, pixels, (int64_t)3 * r * r);
        /* torchvision's float32 arithmetic, reproduced operation for operation. */
        cs_array g;
        golden_load(rel, &g);
        CHECK_MSG(memcmp(g.data, pixels, sizeof(float) * 3 * r * r) == 0,
                  "%s: normalized pixels not bit-identical", rel);
        cs_array_free(&g);
        free(pixels);
    }
    cs_image_free(&small);
}

int main(void) {
    golden_shared_dir();
    for (size_t i = 0; i < sizeof k_images / sizeof k_images[0]; i++) {
        cs_image img;
        check_decode(k_images[i][0], k_images[i][1], &img);
        for (size_t k = 0; k < sizeof k_sizes / sizeof k_sizes[0]; k++)
            check_resize_and_normalize(k_images[i][0], &img, k_sizes[k]);
        cs_image_free(&img);
    }
    return test_finish();
}
