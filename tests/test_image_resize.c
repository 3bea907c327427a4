/* Pillow's bicubic resampling on small cases worked out by hand (the
 * weights are the a = -0.5 cubic at the sample offsets, scaled by the
 * downscale factor, normalized, rounded to 22-bit fixed point), plus the
 * public cs_image_resize / cs_image_normalize wrappers. */
#include "base/base.h"
#include "ops/resize_pillow.h"
#include "test.h"

/* One row, 4 -> 2: scale 2, so the kernel is stretched to support 4. Output
 * 0 is centred at 1.0 and reads inputs 0..3 at offsets -0.25, 0.25, 0.75,
 * 1.25 (in kernel units): k = 0.8671875, 0.8671875, 0.2265625, -0.0703125,
 * normalized by their sum 1.890625 to 0.4587, 0.4587, 0.1198, -0.0372.
 * 0*0.4587 + 100*0.4587 + 200*0.1198 - 255*0.0372 = 60.35 -> 60; output 1
 * uses the mirrored weights: 221. */
static void test_downscale_two(void) {
    const uint8_t src[4] = {0, 100, 200, 255};
    uint8_t dst[2];
    CHECK_OK(op_resize_bicubic_u8(src, 4, 1, 1, dst, 2, 1));
    CHECK(dst[0] == 60 && dst[1] == 221);
    /* The same numbers down a column (only the vertical pass runs). */
    CHECK_OK(op_resize_bicubic_u8(src, 1, 4, 1, dst, 1, 2));
    CHECK(dst[0] == 60 && dst[1] == 221);
}

/* One row, 2 -> 4: scale 0.5, support 2 (no stretching). Output 0 is centred
 * at 0.25: inputs 0 and 1 at offsets 0.25 and 1.25, k = 0.8671875 and
 * -0.0703125, normalized 1.0882 and -0.0882: 100*1.0882 - 200*0.0882 = 91.2
 * -> 91. Output 1 (centre 0.75): offsets -0.25, 0.75 -> 0.7929, 0.2071:
 * 120.7 -> 121. The negative lobe overshoots: 0, 255 gives 255*-0.0882 < 0,
 * clipped to 0. */
static void test_upscale_two(void) {
    const uint8_t src[2] = {100, 200};
    uint8_t dst[4];
    CHECK_OK(op_resize_bicubic_u8(src, 2, 1, 1, dst, 4, 1));
    CHECK(dst[0] == 91 && dst[1] == 121 && dst[2] == 179 && dst[3] == 209);
    const uint8_t edge[2] = {0, 255};
    CHECK_OK(op_resize_bicubic_u8(edge, 2, 1, 1, dst, 4, 1));
    CHECK(dst[0] == 0 && dst[1] == 53 && dst[2] == 202 && dst[3] == 255);
}

/* 4x4 -> 2x2: rows first (each row as in test_downscale_two, rounded to 8
 * bits), then the columns of that intermediate. */
static void test_both_passes(void) {
    const uint8_t src[16] = {0, 100, 200, 255, 255, 200, 100, 0, 0, 0, 255, 255, 10, 20, 30, 40};
    /* After the horizontal pass: [60 221] [221 60] [21 234] [16 34]. */
    uint8_t dst[4];
    CHECK_OK(op_resize_bicubic_u8(src, 4, 4, 1, dst, 2, 2));
    CHECK(dst[0] == 131 && dst[1] == 156 && dst[2] == 41 && dst[3] == 122);
}

/* Pillow's BILINEAR (SAM's resize): the triangle kernel, support 1 scaled by
 * the downscale factor. 4 -> 2: output 0 is centred at 1.0 and reads inputs
 * 0..2 at offsets -0.25, 0.25, 0.75 (kernel units), weights 0.75, 0.75,
 * 0.25 normalized to 3/7, 3/7, 1/7: 100*3/7 + 200/7 = 71.4 -> 71; output 1
 * reads 1..3 with 1/7, 3/7, 3/7: 209.3 -> 209. 2 -> 4 (support 1): the
 * outer outputs see only their neighbour (100, 200), the inner ones 3:1
 * blends: 125 and 175. */
static void test_bilinear(void) {
    const uint8_t src[4] = {0, 100, 200, 255};
    uint8_t dst[4];
    CHECK_OK(op_resize_pillow_u8(src, 4, 1, 1, dst, 2, 1, OP_RESAMPLE_BILINEAR));
    CHECK(dst[0] == 71 && dst[1] == 209);
    CHECK_OK(op_resize_pillow_u8(src, 1, 4, 1, dst, 1, 2, OP_RESAMPLE_BILINEAR));
    CHECK(dst[0] == 71 && dst[1] == 209);
    const uint8_t two[2] = {100, 200};
    CHECK_OK(op_resize_pillow_u8(two, 2, 1, 1, dst, 4, 1, OP_RESAMPLE_BILINEAR));
    CHECK(dst[0] == 100 && dst[1] == 125 && dst[2] == 175 && dst[3] == 200);
    CHECK_STATUS(op_resize_pillow_u8(two, 2, 1, 1, dst, 4, 1, (op_resample)7), CS_ERR_ARG);
}

/* Channels are filtered independently: an RGB image whose channels are the
 * 1-channel cases above gives their results. */
static void test_channels_independent(void) {
    const uint8_t src[12] = {0, 255, 7, 100, 200, 7, 200, 100, 7, 255, 0, 7};
    uint8_t dst[6];
    CHECK_OK(op_resize_bicubic_u8(src, 4, 1, 3, dst, 2, 1));
    CHECK(dst[0] == 60 && dst[3] == 221);
    CHECK(dst[1] == 221 && dst[4] == 60);
    CHECK(dst[2] == 7 && dst[5] == 7);
}

/* Same size: a copy. A constant image stays constant at any size, though
 * the rounded weights need not sum to exactly 2^22. */
static void test_identity_and_constant(void) {
    uint8_t src[5 * 3 * 3], dst[5 * 3 * 3];
    for (int i = 0; i < 45; i++) src[i] = (uint8_t)(i * 37 + 11);
    CHECK_OK(op_resize_bicubic_u8(src, 5, 3, 3, dst, 5, 3));
    CHECK(memcmp(src, dst, sizeof src) == 0);
    int sizes[][2] = {{1, 1}, {7, 2}, {3, 11}, {13, 17}, {2, 5}};
    uint8_t flat[9 * 7 * 3], out[17 * 13 * 3];
    memset(flat, 77, sizeof flat);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1], ok = 1;
        CHECK_OK(op_resize_bicubic_u8(flat, 9, 7, 3, out, w, h));
        for (int i = 0; i < w * h * 3; i++) ok &= out[i] == 77;
        CHECK_MSG(ok, "constant image changed at %dx%d", w, h);
    }
}

/* Palettes and 1-bit images: output x reads source floor((x + 0.5) * in /
 * out), the positions summed step by step in double as Pillow does. 2 -> 7:
 * the fourth position, 3.5 * 2/7 = 1 exactly, sums to 0.99999... and reads
 * source 0 (Pillow 9.4 gives 10 10 10 10 20 20 20). 5 -> 3 reads 0, 2, 4. */
static void test_nearest(void) {
    const uint8_t two[2] = {10, 20}, want7[7] = {10, 10, 10, 10, 20, 20, 20};
    uint8_t dst[7];
    CHECK_OK(op_resize_nearest_u8(two, 2, 1, dst, 7, 1));
    CHECK(memcmp(dst, want7, 7) == 0);
    CHECK_OK(op_resize_nearest_u8(two, 1, 2, dst, 1, 7));
    CHECK(memcmp(dst, want7, 7) == 0);
    const uint8_t five[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; /* 5x2 */
    CHECK_OK(op_resize_nearest_u8(five, 5, 2, dst, 3, 1));
    CHECK(dst[0] == 6 && dst[1] == 8 && dst[2] == 10); /* row 1 (position 1.0), columns 0 2 4 */
    CHECK_STATUS(op_resize_nearest_u8(five, 5, 2, dst, 0, 1), CS_ERR_ARG);
}

/* 16-bit gray (mode "I"): the same weights in double, each pass rounded
 * half away from zero and never clipped. The cases of test_downscale_two
 * and test_upscale_two scaled up (Pillow 9.4: 604 2207, and -23 53 202 278,
 * where -22.5 and 277.5 round away from zero). */
static void test_int32(void) {
    const int32_t src[4] = {0, 1000, 2000, 2550}, edge[2] = {0, 255};
    int32_t dst[4];
    CHECK_OK(op_resize_bicubic_i32(src, 4, 1, dst, 2, 1));
    CHECK(dst[0] == 604 && dst[1] == 2207);
    CHECK_OK(op_resize_bicubic_i32(src, 1, 4, dst, 1, 2));
    CHECK(dst[0] == 604 && dst[1] == 2207);
    CHECK_OK(op_resize_bicubic_i32(edge, 2, 1, dst, 4, 1));
    CHECK(dst[0] == -23 && dst[1] == 53 && dst[2] == 202 && dst[3] == 278);
    const int32_t sq[4] = {0, 65535, 65535, 0};
    CHECK_OK(op_resize_bicubic_i32(sq, 2, 2, dst, 2, 2));
    CHECK(memcmp(dst, sq, sizeof sq) == 0);
    CHECK_STATUS(op_resize_bicubic_i32(sq, 2, 2, dst, 2, 0), CS_ERR_ARG);
}

static void test_bad_sizes(void) {
    uint8_t px[3] = {0};
    CHECK_STATUS(op_resize_bicubic_u8(px, 1, 1, 3, px, 0, 1), CS_ERR_ARG);
    CHECK_STATUS(op_resize_bicubic_u8(px, 1, 1, 5, px, 1, 1), CS_ERR_ARG);
    cs_image empty = {0}, out;
    CHECK_STATUS(cs_image_resize(&empty, 4, 4, &out), CS_ERR_ARG);
}

/* The public wrapper, in place too; normalization is torchvision's float32
 * (x / 255 - mean) / std. */
static void test_public_wrappers(void) {
    uint8_t *rgb = mem_alloc(12, 1);
    const uint8_t vals[12] = {0, 255, 7, 100, 200, 7, 200, 100, 7, 255, 0, 7};
    memcpy(rgb, vals, 12);
    cs_image img = {.width = 4, .height = 1, .rgb = rgb}, out;
    CHECK_OK(cs_image_resize(&img, 2, 1, &out));
    CHECK(out.width == 2 && out.height == 1 && out.rgb[0] == 60 && out.rgb[3] == 221);
    cs_image_free(&out);
    CHECK_OK(cs_image_resize(&img, 2, 1, &img));
    CHECK(img.width == 2 && img.rgb[0] == 60);
    float px[6];
    cs_image_normalize(&img, px);
    CHECK(px[0] == (60.0f / 255.0f - 0.48145466f) / 0.26862954f);
    CHECK(px[1] == (221.0f / 255.0f - 0.48145466f) / 0.26862954f);
    CHECK(px[2] == (221.0f / 255.0f - 0.4578275f) / 0.26130258f);
    CHECK(px[4] == (7.0f / 255.0f - 0.40821073f) / 0.27577711f);
    cs_image_free(&img);
}

int main(void) {
    test_bilinear();
    test_downscale_two();
    test_upscale_two();
    test_both_passes();
    test_channels_independent();
    test_identity_and_constant();
    test_nearest();
    test_int32();
    test_bad_sizes();
    test_public_wrappers();
    return test_finish();
}
