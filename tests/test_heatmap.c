/* Heatmap colours and point markers: OpenCV's JET table at levels derived by
 * hand from OpenCV's algorithm, the demo's float64 blend with truncation,
 * the gray map, the point stars and the file-name stems. */
#include <stdlib.h>
#include "base/base.h"
#include "test.h"

/* OpenCV (modules/imgproc/src/colormap.cpp, class Jet) holds a float32 base
 * map of 256 values per channel on breakpoints linspace(0, 1, 256); in units
 * of 1/255 the ramps are trapezoids:
 *   red   = clamp(min(4i - 382.5, 1147.5 - 4i), 0, 255)
 *   green = clamp(min(4i - 127.5,  892.5 - 4i), 0, 255)
 *   blue  = clamp(min(4i + 127.5,  637.5 - 4i), 0, 255)
 * The table is interp1 of that map at the same breakpoints, in float32:
 * y = y[i-1] + (x[i] - x[i-1]) * (y[i] - y[i-1]) / (x[i] - x[i-1]) (level 0
 * is y[0] itself), then convertTo(CV_8U, 255.): float32 y * 255 rounded half
 * to even. Every ramp value is a half-integer, so the float32 roundings
 * decide each entry. The levels below (RGB; OpenCV stores BGR):
 *   0:   no interpolation. blue = 127.5/255 = 0.5 exactly; 0.5 * 255 = 127.5
 *        exactly -> 128 (even). red = green = 0.           -> (0, 0, 128)
 *   32:  green: y[31] = 0, y[32] = f(0.5/255) = 0x1.010102p-9; the product
 *        and quotient return y[32] exactly; y * 255 in float32 = 0.5
 *        exactly -> 0 (even, where rounding half up gives 1). blue: y[31] =
 *        251.5/255, y[32] = 1 -> 255. red 0.                -> (0, 0, 255)
 *   96:  red: y[95] = 0, y = y[96] = f(1.5/255); y * 255 = 1.5 -> 2.
 *        blue: y[95] = 1, y[96] = f(253.5/255) = 0x1.fcfcfcp-1, the
 *        difference and quotient exact, y = y[96]; y * 255 = 253.5 -> 254.
 *        green: 252.5/255 -> 1 gives 255.                   -> (2, 255, 254)
 *   128: red: y[127] = f(125.5/255), y[128] = f(129.5/255); the quotient
 *        equals the difference, y = y[128]; y * 255 = 129.5 -> 130. blue is
 *        the mirror image: 125.5 -> 126. green 1 -> 255.     -> (130, 255, 126)
 *   159: blue: y[158] = f(5.5/255) = 0x1.616162p-6, y[159] = f(1.5/255) =
 *        0x1.818182p-8; the float32 difference is -0x1.010102p-6 (rounded),
 *        so y = 0x1.81818p-8, one float below y[159]; y * 255 = 1.49999988
 *        -> 1, although level 96's mirror-image red gives 2. red: 253.5 ->
 *        254 as at level 96's blue. green 1 -> 255.         -> (254, 255, 1)
 *   255: red: y[254] = f(131.5/255), y[255] = 0.5; y = 0.5 exactly; 127.5
 *        -> 128. green = blue = 0.                          -> (128, 0, 0) */
static void test_jet_levels(void) {
    static const struct {
        int level;
        uint8_t rgb[3];
    } k_levels[] = {{0, {0, 0, 128}},     {32, {0, 0, 255}},    {96, {2, 255, 254}},
                    {128, {130, 255, 126}}, {159, {254, 255, 1}}, {255, {128, 0, 0}}};
    uint8_t lut[256][3];
    cs_jet_table(lut);
    for (size_t k = 0; k < sizeof k_levels / sizeof *k_levels; k++) {
        const uint8_t *got = lut[k_levels[k].level], *want = k_levels[k].rgb;
        CHECK_MSG(!memcmp(got, want, 3), "level %d: got (%d, %d, %d), want (%d, %d, %d)",
                  k_levels[k].level, got[0], got[1], got[2], want[0], want[1], want[2]);
    }
    /* The shape around the derived levels: blue falls while red rises. */
    for (int level = 1; level < 256; level++) {
        CHECK(lut[level][2] <= lut[level - 1][2] || level <= 32);
        CHECK(lut[level][0] >= lut[level - 1][0] || level >= 224);
    }
}

/* A map value whose (v * 255) truncates to the given level. */
static float map_for_level(int level) { return (level + 0.5f) / 255.0f; }

/* vis = cv2_img * 0.4 + vis * 0.6 in float64, then astype('uint8'). */
static void test_overlay_blend(void) {
    float map[3] = {map_for_level(0), map_for_level(158), map_for_level(255)};
    const uint8_t image[9] = {200, 10, 255, 0, 0, 1, 255, 255, 255};
    uint8_t out[9], lut[256][3];
    cs_jet_table(lut);
    cs_heatmap_overlay(map, 1, 3, image, out);
    /* Level 0, heat (0, 0, 128): 0.4 * 200 = 80; 0.4 * 10 = 4;
     * 0.4 * 255 + 0.6 * 128 = 102 + 76.8 = 178.8 -> 178. */
    CHECK(out[0] == 80 && out[1] == 4 && out[2] == 178);
    /* Level 158, blue heat 6 over image blue 1: 0.4 + 0.6 * 6 in float64 is
     * 0.4 + 3.5999999999999996 = 3.9999999999999996 -> 3 (exact decimals
     * would give 4). */
    CHECK(lut[158][2] == 6);
    CHECK_MSG(out[5] == 3, "got %d", out[5]);
    /* Level 255, heat (128, 0, 0) over white: 102 + 76.8 -> 178; 102 -> 102. */
    CHECK(out[6] == 178 && out[7] == 102 && out[8] == 102);
    /* Without an image the heatmap alone. */
    cs_heatmap_overlay(map, 1, 3, NULL, out);
    CHECK(!memcmp(out, lut[0], 3) && !memcmp(out + 3, lut[158], 3) && !memcmp(out + 6, lut[255], 3));
}

/* (map * 255).astype('uint8'): truncation; out-of-range values saturate. */
static void test_gray(void) {
    float map[6] = {0.0f, 1.0f, 0.5f, 0.99999f, -0.25f, 3.0f};
    uint8_t gray[6];
    cs_map_to_gray(map, 1, 6, gray);
    CHECK(gray[0] == 0 && gray[1] == 255 && gray[2] == 127 && gray[3] == 254 && gray[4] == 0 &&
          gray[5] == 255);
}

static int count_color(const uint8_t *rgb, int n, const uint8_t color[3]) {
    int k = 0;
    for (int i = 0; i < n; i++) k += !memcmp(rgb + 3 * i, color, 3);
    return k;
}

static void test_draw_points(void) {
    enum { W = 200, H = 100 };
    uint8_t *rgb = calloc((size_t)W * H, 3);
    const int32_t pts[6] = {50, 50, 150, 50, 199, 0};
    const uint8_t labels[3] = {1, 0, 0};
    const uint8_t green[3] = {0, 128, 0}, red[3] = {255, 0, 0}, white[3] = {255, 255, 255};
    CHECK_OK(cs_draw_points(rgb, W, H, pts, labels, 3));
    /* Centres take the label's colour; stars have white edges. */
    CHECK(!memcmp(rgb + (50 * W + 50) * 3, green, 3));
    CHECK(!memcmp(rgb + (50 * W + 150) * 3, red, 3));
    CHECK(!memcmp(rgb + (0 * W + 199) * 3, red, 3));
    int n_green = count_color(rgb, W * H, green), n_red = count_color(rgb, W * H, red);
    CHECK(n_green > 10 && n_red > n_green); /* one whole red star and a clipped one */
    CHECK(count_color(rgb, W * H, white) > 10);
    /* Far from every point the image is untouched. */
    CHECK(rgb[(99 * W + 0) * 3] == 0);
    CHECK_STATUS(cs_draw_points(rgb, W, H, (const int32_t[]){W, 0}, labels, 1), CS_ERR_ARG);
    CHECK_OK(cs_draw_points(rgb, W, H, NULL, NULL, 0));
    free(rgb);
}

static void test_file_stems(void) {
    const char *texts[] = {"potted plant", "a/b", "", "../x", "cat", "cat", "cat_5", "\xe7\x8c\xab"};
    char *stems[8];
    CHECK_OK(cs_file_stems(texts, 8, stems));
    CHECK(!strcmp(stems[0], "potted_plant"));
    CHECK(!strcmp(stems[1], "a_b"));
    CHECK(!strcmp(stems[2], "_2"));
    CHECK(!strcmp(stems[3], "_._x"));
    CHECK(!strcmp(stems[4], "cat"));
    CHECK(!strcmp(stems[5], "cat_5"));
    CHECK(!strcmp(stems[6], "cat_5_6")); /* taken by the duplicate above */
    CHECK(!strcmp(stems[7], "___"));
    for (int i = 0; i < 8; i++) cs_free(stems[i]);

    /* Nine rounds of suffixes: past the first allocation of the stem. */
    const char *chain[] = {"c", "c_9", "c_9_9", "c_9_9_9", "c_9_9_9_9", "c_9_9_9_9_9", "c_9_9_9_9_9_9",
                           "c_9_9_9_9_9_9_9", "c_9_9_9_9_9_9_9_9", "c"};
    char *chained[10];
    CHECK_OK(cs_file_stems(chain, 10, chained));
    CHECK(!strcmp(chained[9], "c_9_9_9_9_9_9_9_9_9"));
    for (int i = 0; i < 10; i++) cs_free(chained[i]);

    /* 20000 equal names (10000 classes and their gray maps): "same",
     * then "same_<i>", quickly (a table, not a scan of the earlier ones). */
    enum { N = 20000 };
    const char **same = malloc(N * sizeof *same);
    char **many = malloc(N * sizeof *many), want[32];
    for (int i = 0; i < N; i++) same[i] = "same";
    double t0 = cs_now();
    CHECK_OK(cs_file_stems(same, N, many));
    double seconds = cs_now() - t0;
    int ok = !strcmp(many[0], "same");
    for (int i = 1; i < N; i++) {
        snprintf(want, sizeof want, "same_%d", i);
        ok &= !strcmp(many[i], want);
    }
    CHECK(ok);
    CHECK_MSG(seconds < 1.0, "20000 stems took %.2f s", seconds);
    for (int i = 0; i < N; i++) cs_free(many[i]);
    free(many);
    free(same);
}

int main(void) {
    test_jet_levels();
    test_overlay_blend();
    test_gray();
    test_draw_points();
    test_file_stems();
    return test_finish();
}
