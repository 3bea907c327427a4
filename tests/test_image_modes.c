/* Every image mode seen as the reference sees it: small images of each PNG
 * layout and CMYK/YCCK JPEG (tests/data/images, written by
 * scripts/gen_image_goldens.py) decoded, converted to RGB, and resized in
 * their own mode then converted, compared byte for byte with what Pillow
 * 9.4.0 made of them (Image.open(f).convert("RGB") and
 * .resize((W, H), BICUBIC).convert("RGB"), stored beside them as .npy). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "formats/image.h"
#include "formats/npy.h"
#include "test.h"

static const struct {
    const char *file;
    int keeps_source; /* the mode resizes differently from its RGB */
} k_images[] = {
    {"p8_trns.png", 1},  /* P, 200-entry PLTE (higher indices: PIL's gray ramp), tRNS alphas */
    {"p4_adam7.png", 1}, /* P, 4-bit, interlaced */
    {"p1_trns.png", 1},  /* P, 1-bit, one transparent entry */
    {"g1.png", 1},       /* "1" */
    {"g2_trns.png", 0},  /* L (2-bit, tRNS gray) */
    {"la8.png", 1},      /* LA */
    {"la16.png", 1},     /* RGBA (PIL reads 16-bit gray + alpha so) */
    {"rgba8_adam7.png", 1},
    {"rgba16.png", 1},
    {"g16_low.png", 1},  /* I: values 0..600 */
    {"g16_full.png", 1}, /* I: full range, mostly white for the reference */
    {"rgb16_trns.png", 0},
    {"apng.png", 1},         /* RGBA APNG: its first frame */
    {"cmyk.jpg", 1},         /* Adobe CMYK */
    {"cmyk_noadobe.jpg", 1}, /* CMYK without the Adobe marker: PIL inverts it too */
    {"ycck.jpg", 1},         /* YCCK (Adobe transform 2): libjpeg makes it CMYK */
};
static const int k_sizes[][2] = {{23, 17}, {31, 33}};

static const char *data_path(const char *name) {
    static char bufs[2][512];
    static int slot;
    char *b = bufs[slot++ & 1];
    snprintf(b, sizeof bufs[0], "%s/images/%s", CS_TEST_DATA, name);
    return b;
}

/* Compare w x h RGB bytes with the golden NAME.npy. */
static void check_golden(const char *name, const cs_image *img, int w, int h) {
    char file[128];
    snprintf(file, sizeof file, "%s.npy", name);
    cs_array g;
    if (cs_npy_read(data_path(file), &g) != CS_OK) {
        CHECK_MSG(0, "%s: %s", file, cs_last_error());
        return;
    }
    int shape_ok = g.dtype == CS_DT_U8 && g.ndim == 3 && g.shape[0] == h && g.shape[1] == w &&
                   g.shape[2] == 3 && img->width == w && img->height == h;
    CHECK_MSG(shape_ok, "%s: got %dx%d, golden %lldx%lld", name, img->width, img->height,
              (long long)g.shape[1], (long long)g.shape[0]);
    if (shape_ok) {
        size_t n = (size_t)w * h * 3, diff = 0;
        int worst = 0;
        const uint8_t *want = g.data;
        for (size_t i = 0; i < n; i++) {
            int d = abs(img->rgb[i] - want[i]);
            diff += d != 0;
            worst = d > worst ? d : worst;
        }
        CHECK_MSG(diff == 0, "%s: %zu of %zu bytes differ from Pillow (up to %d levels)", name,
                  diff, n, worst);
    }
    cs_array_free(&g);
}

static void check_image(const char *file, int keeps_source) {
    char stem[64], name[96];
    snprintf(stem, sizeof stem, "%.*s", (int)(strrchr(file, '.') - file), file);
    cs_image img;
    if (cs_image_load(data_path(file), NULL, &img) != CS_OK) {
        CHECK_MSG(0, "%s: %s", file, cs_last_error());
        return;
    }
    CHECK_MSG(!img.source == !keeps_source, "%s: source %s", file, img.source ? "kept" : "dropped");
    snprintf(name, sizeof name, "%s_rgb", stem);
    check_golden(name, &img, img.width, img.height);
    for (size_t k = 0; k < sizeof k_sizes / sizeof k_sizes[0]; k++) {
        int w = k_sizes[k][0], h = k_sizes[k][1];
        cs_image small;
        CHECK_OK(cs_image_resize(&img, w, h, &small));
        CHECK(small.source == NULL);
        snprintf(name, sizeof name, "%s_%dx%d", stem, w, h);
        check_golden(name, &small, w, h);
        cs_image_free(&small);
    }
    /* In place, the source goes with the old pixels. */
    CHECK_OK(cs_image_resize(&img, k_sizes[0][0], k_sizes[0][1], &img));
    CHECK(img.source == NULL);
    snprintf(name, sizeof name, "%s_%dx%d", stem, k_sizes[0][0], k_sizes[0][1]);
    check_golden(name, &img, k_sizes[0][0], k_sizes[0][1]);
    cs_image_free(&img);
}

/* --png16 highbyte: 16-bit gray as 8-bit gray from the high bytes, resized
 * as gray (golden: Pillow resizing that "L" image). */
static void test_png16_highbyte(void) {
    cs_image_options opts = {.png16_highbyte = 1};
    cs_image img, ref, small;
    CHECK_OK(cs_image_load(data_path("g16_full.png"), &opts, &img));
    CHECK_OK(cs_image_load(data_path("g16_full.png"), NULL, &ref));
    CHECK(img.source == NULL && ref.source != NULL);
    /* Mostly white for the reference; the high bytes span the range. */
    size_t white = 0, n = (size_t)img.width * img.height;
    int lo = 255, hi = 0;
    for (size_t i = 0; i < n; i++) {
        white += ref.rgb[3 * i] == 255;
        lo = img.rgb[3 * i] < lo ? img.rgb[3 * i] : lo;
        hi = img.rgb[3 * i] > hi ? img.rgb[3 * i] : hi;
    }
    CHECK_MSG(white > n * 9 / 10 && lo < 40 && hi > 215, "white %zu of %zu, high bytes %d..%d",
              white, n, lo, hi);
    for (size_t k = 0; k < sizeof k_sizes / sizeof k_sizes[0]; k++) {
        char name[64];
        int w = k_sizes[k][0], h = k_sizes[k][1];
        CHECK_OK(cs_image_resize(&img, w, h, &small));
        snprintf(name, sizeof name, "g16_full_highbyte_%dx%d", w, h);
        check_golden(name, &small, w, h);
        cs_image_free(&small);
    }
    cs_image_free(&img);
    cs_image_free(&ref);
}

/* An image whose source does not match it is refused, not read past. */
static void test_source_mismatch(void) {
    cs_image img, out;
    CHECK_OK(cs_image_load(data_path("la8.png"), NULL, &img));
    img.width--;
    CHECK_STATUS(cs_image_resize(&img, 4, 4, &out), CS_ERR_ARG);
    CHECK_ERR_HAS("source");
    img.width++;
    cs_image_free(&img);
}

int main(void) {
    for (size_t i = 0; i < sizeof k_images / sizeof k_images[0]; i++)
        check_image(k_images[i].file, k_images[i].keeps_source);
    test_png16_highbyte();
    test_source_mismatch();
    return test_finish();
}
