/* Decoding of every PNG layout and of JPEG colour spaces, EXIF orientation,
 * and every error path of cs_image_load. The test files are written here
 * with libpng and libjpeg into a temporary folder. Each error case asserts
 * the status and that the message names the file and the problem. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jpeglib.h>
#include <zlib.h>
#include "formats/image.h"
#include "test.h"

static char g_dir[256];

static const char *tmp_path(const char *name) {
    static char bufs[4][512];
    static int slot;
    char *b = bufs[slot++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", g_dir, name);
    return b;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n ? *n : 1);
    *n = fread(b, 1, *n, f);
    fclose(f);
    return b;
}

/* ------------------------------------------------------------ writers */
typedef struct png_spec {
    int width, height, bit_depth, color_type, interlace;
    const png_color *palette;
    int n_palette;
    const uint8_t *trns; /* palette alpha, n_palette entries */
    const png_color_16 *trns_color;
    const uint8_t *exif;
    int n_exif;
} png_spec;

/* rows: packed PNG rows (16-bit samples big-endian, as PNG stores them). */
static void write_png(const char *path, const png_spec *s, const uint8_t *rows) {
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, s->width, s->height, s->bit_depth, s->color_type,
                 s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->n_palette);
    if (s->trns) png_set_tRNS(png, info, s->trns, s->n_palette, NULL);
    if (s->trns_color) png_set_tRNS(png, info, NULL, 0, s->trns_color);
    if (s->exif) png_set_eXIf_1(png, info, (png_uint_32)s->n_exif, (png_bytep)s->exif);
    png_write_info(png, info);
    size_t stride = png_get_rowbytes(png, info);
    png_bytep *rp = malloc(sizeof(png_bytep) * s->height);
    for (int y = 0; y < s->height; y++) rp[y] = (png_bytep)rows + y * stride;
    png_write_image(png, rp);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rp);
    fclose(f);
}

/* pixels: interleaved samples of `components` channels in colour space cs. */
static void write_jpeg(const char *path, int w, int h, int components, J_COLOR_SPACE cs,
                       const uint8_t *pixels, const uint8_t *app1, unsigned app1_len) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    FILE *f = fopen(path, "wb");
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = components;
    c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    if (app1) jpeg_write_marker(&c, JPEG_APP0 + 1, app1, app1_len);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)c.next_scanline * w * components);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

/* A noisy RGB JPEG (noise keeps the entropy-coded data long). */
static const char *noise_jpeg(const char *name, int w, int h) {
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)(rand() & 255);
    const char *path = tmp_path(name);
    write_jpeg(path, w, h, 3, JCS_RGB, px, NULL, 0);
    free(px);
    return path;
}

static const char *noise_png(const char *name, int w, int h) {
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)(rand() & 255);
    png_spec s = {w, h, 8, PNG_COLOR_TYPE_RGB, 0, NULL, 0, NULL, NULL, NULL, 0};
    const char *path = tmp_path(name);
    write_png(path, &s, px);
    free(px);
    return path;
}

/* ------------------------------------------------------------ PNG layouts */
/* Load and compare with the expected RGB bytes. */
static void expect_rgb_opts(const char *path, const cs_image_options *opts, int w, int h,
                            const uint8_t *want) {
    cs_image img;
    CHECK_OK(cs_image_load(path, opts, &img));
    CHECK_MSG(img.width == w && img.height == h, "%s: %dx%d, want %dx%d", path, img.width,
              img.height, w, h);
    if (img.width == w && img.height == h)
        CHECK_MSG(memcmp(img.rgb, want, (size_t)w * h * 3) == 0, "%s: pixels differ", path);
    cs_image_free(&img);
}

static void expect_rgb(const char *path, int w, int h, const uint8_t *want) {
    expect_rgb_opts(path, NULL, w, h, want);
}

static void test_png_gray(void) {
    const uint8_t g8[6] = {0, 1, 127, 128, 254, 255};
    const uint8_t rgb8[18] = {0, 0, 0, 1, 1, 1, 127, 127, 127, 128, 128, 128, 254, 254, 254, 255, 255, 255};
    png_spec s = {3, 2, 8, PNG_COLOR_TYPE_GRAY, 0, NULL, 0, NULL, NULL, NULL, 0};
    write_png(tmp_path("gray8.png"), &s, g8);
    expect_rgb(tmp_path("gray8.png"), 3, 2, rgb8);

    /* 16-bit: PIL's mode "I", clipped to 0..255 in RGB (0x00fe -> 254,
     * 0x01ff -> 255); with png16_highbyte the high byte (0x01ff -> 1). */
    const uint8_t g16[12] = {0x00, 0x00, 0x01, 0xff, 0x7f, 0x80, 0x00, 0xfe, 0xfe, 0xff, 0xff, 0x00};
    const uint8_t clipped[18] = {0, 0, 0, 255, 255, 255, 255, 255, 255, 254, 254, 254, 255, 255, 255, 255, 255, 255};
    const uint8_t high[18] = {0, 0, 0, 1, 1, 1, 127, 127, 127, 0, 0, 0, 254, 254, 254, 255, 255, 255};
    s.bit_depth = 16;
    write_png(tmp_path("gray16.png"), &s, g16);
    expect_rgb(tmp_path("gray16.png"), 3, 2, clipped);
    const cs_image_options highbyte = {.png16_highbyte = 1};
    expect_rgb_opts(tmp_path("gray16.png"), &highbyte, 3, 2, high);

    /* Low bit depths scale to 0..255 as PIL's "1", "L;2", "L;4" modes do. */
    const uint8_t g1[2] = {0xa0, 0x40}; /* rows 1 0 1 / 0 1 0 */
    const uint8_t rgb1[18] = {255, 255, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0};
    s.bit_depth = 1;
    write_png(tmp_path("gray1.png"), &s, g1);
    expect_rgb(tmp_path("gray1.png"), 3, 2, rgb1);
    const uint8_t g2[2] = {0x1b, 0xc0}; /* 0 1 2 3 / 3 */
    const uint8_t rgb2[12] = {0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255};
    png_spec s2 = {4, 1, 2, PNG_COLOR_TYPE_GRAY, 0, NULL, 0, NULL, NULL, NULL, 0};
    write_png(tmp_path("gray2.png"), &s2, g2);
    expect_rgb(tmp_path("gray2.png"), 4, 1, rgb2);
    const uint8_t g4[2] = {0x0f, 0x5a}; /* 0 15 5 10 */
    const uint8_t rgb4[12] = {0, 0, 0, 255, 255, 255, 85, 85, 85, 170, 170, 170};
    s2.bit_depth = 4;
    write_png(tmp_path("gray4.png"), &s2, g4);
    expect_rgb(tmp_path("gray4.png"), 4, 1, rgb4);

    /* Gray + alpha, and gray with a tRNS colour: RGB drops the alpha. */
    const uint8_t ga[12] = {0, 9, 1, 0, 127, 255, 128, 3, 254, 200, 255, 1};
    png_spec sa = {3, 2, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 0, NULL, 0, NULL, NULL, NULL, 0};
    write_png(tmp_path("gray_alpha.png"), &sa, ga);
    expect_rgb(tmp_path("gray_alpha.png"), 3, 2, rgb8);
    png_color_16 key = {0, 0, 0, 0, 127};
    png_spec st = {3, 2, 8, PNG_COLOR_TYPE_GRAY, 0, NULL, 0, NULL, &key, NULL, 0};
    write_png(tmp_path("gray_trns.png"), &st, g8);
    expect_rgb(tmp_path("gray_trns.png"), 3, 2, rgb8);
}

static void test_png_palette(void) {
    const png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
    const uint8_t alpha[4] = {0, 128, 255, 7};
    const uint8_t idx8[4] = {3, 2, 1, 0};
    const uint8_t want[12] = {10, 20, 30, 0, 0, 255, 0, 255, 0, 255, 0, 0};
    png_spec s = {2, 2, 8, PNG_COLOR_TYPE_PALETTE, 0, pal, 4, NULL, NULL, NULL, 0};
    write_png(tmp_path("pal8.png"), &s, idx8);
    expect_rgb(tmp_path("pal8.png"), 2, 2, want);
    s.trns = alpha;
    write_png(tmp_path("pal8_trns.png"), &s, idx8);
    expect_rgb(tmp_path("pal8_trns.png"), 2, 2, want);
    const uint8_t idx2[2] = {0xe0, 0x40}; /* 3 2 / 1 0 */
    s.bit_depth = 2;
    write_png(tmp_path("pal2.png"), &s, idx2);
    expect_rgb(tmp_path("pal2.png"), 2, 2, want);
}

static void test_png_colour(void) {
    const uint8_t rgb[12] = {1, 2, 3, 250, 251, 252, 0, 128, 255, 77, 88, 99};
    const uint8_t rgba[16] = {1, 2, 3, 0, 250, 251, 252, 9, 0, 128, 255, 255, 77, 88, 99, 128};
    png_spec s = {2, 2, 8, PNG_COLOR_TYPE_RGB_ALPHA, 0, NULL, 0, NULL, NULL, NULL, 0};
    write_png(tmp_path("rgba8.png"), &s, rgba);
    expect_rgb(tmp_path("rgba8.png"), 2, 2, rgb);

    uint8_t rgb16[24], rgba16[32];
    for (int i = 0; i < 12; i++) rgb16[2 * i] = rgb[i], rgb16[2 * i + 1] = (uint8_t)(255 - i);
    for (int i = 0; i < 16; i++) rgba16[2 * i] = rgba[i], rgba16[2 * i + 1] = (uint8_t)(i * 13);
    s.bit_depth = 16;
    write_png(tmp_path("rgba16.png"), &s, rgba16);
    expect_rgb(tmp_path("rgba16.png"), 2, 2, rgb);
    s.color_type = PNG_COLOR_TYPE_RGB;
    write_png(tmp_path("rgb16.png"), &s, rgb16);
    expect_rgb(tmp_path("rgb16.png"), 2, 2, rgb);

    /* Adam7 interlacing decodes to the same pixels. */
    enum { W = 13, H = 11 };
    uint8_t big[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) big[i] = (uint8_t)(i * 7 + 3);
    png_spec si = {W, H, 8, PNG_COLOR_TYPE_RGB, 1, NULL, 0, NULL, NULL, NULL, 0};
    write_png(tmp_path("interlaced.png"), &si, big);
    expect_rgb(tmp_path("interlaced.png"), W, H, big);
}

/* ------------------------------------------------------------ JPEG colour */
static int near(int a, int b, int tol) { return abs(a - b) <= tol; }

static void test_jpeg_gray_and_cmyk(void) {
    enum { W = 16, H = 8 };
    uint8_t gray[W * H];
    for (int i = 0; i < W * H; i++) gray[i] = (uint8_t)(i < W * H / 2 ? 40 : 200);
    write_jpeg(tmp_path("gray.jpg"), W, H, 1, JCS_GRAYSCALE, gray, NULL, 0);
    cs_image img;
    CHECK_OK(cs_image_load(tmp_path("gray.jpg"), NULL, &img));
    int same = img.width == W && img.height == H;
    for (int i = 0; same && i < W * H; i++)
        same = img.rgb[3 * i] == img.rgb[3 * i + 1] && img.rgb[3 * i] == img.rgb[3 * i + 2] &&
               near(img.rgb[3 * i], gray[i], 2);
    CHECK_MSG(same, "gray JPEG not replicated to RGB");
    cs_image_free(&img);

    /* libjpeg writes an Adobe marker with CMYK, whose samples are stored
     * inverted (Photoshop's convention, which PIL undoes). Stored 0,255,255,255
     * is pure cyan: R 0, G 255, B 255. Stored 255,255,255,127 is 50% black. */
    uint8_t cmyk[W * H * 4];
    for (int i = 0; i < W * H; i++) {
        const uint8_t cyan[4] = {0, 255, 255, 255}, grey[4] = {255, 255, 255, 127};
        memcpy(cmyk + 4 * i, i % W < W / 2 ? cyan : grey, 4);
    }
    write_jpeg(tmp_path("cmyk.jpg"), W, H, 4, JCS_CMYK, cmyk, NULL, 0);
    CHECK_OK(cs_image_load(tmp_path("cmyk.jpg"), NULL, &img));
    CHECK(img.width == W && img.height == H);
    const uint8_t *left = img.rgb + (4 * W + 2) * 3, *right = img.rgb + (4 * W + W - 3) * 3;
    CHECK_MSG(near(left[0], 0, 2) && near(left[1], 255, 2) && near(left[2], 255, 2),
              "cyan decoded as %d %d %d", left[0], left[1], left[2]);
    CHECK_MSG(near(right[0], 127, 2) && near(right[1], 127, 2) && near(right[2], 127, 2),
              "grey decoded as %d %d %d", right[0], right[1], right[2]);
    cs_image_free(&img);
}

/* ------------------------------------------------------------ EXIF */
/* A little- or big-endian TIFF block with one IFD0 entry: Orientation. */
static size_t tiff_with_orientation(uint8_t *b, int big_endian, int orientation) {
    const uint8_t le[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
                          (uint8_t)orientation, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t be[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1,
                          0, (uint8_t)orientation, 0, 0, 0, 0, 0, 0};
    memcpy(b, big_endian ? be : le, sizeof le);
    return sizeof le;
}

static void test_exif_parse(void) {
    uint8_t t[32];
    size_t n = tiff_with_orientation(t, 0, 6);
    CHECK(exif_orientation(t, n) == 6);
    n = tiff_with_orientation(t, 1, 8);
    CHECK(exif_orientation(t, n) == 8);
    CHECK(exif_orientation(t, 12) == 1); /* entry cut off */
    n = tiff_with_orientation(t, 0, 9);
    CHECK(exif_orientation(t, n) == 1); /* out of range */
    t[4] = 0xff;                            /* IFD offset past the end */
    CHECK(exif_orientation(t, n) == 1);
    CHECK(exif_orientation((const uint8_t *)"garbage!", 8) == 1);
}

static void test_exif_rotate(void) {
    /* PNG eXIf, orientation 6 (rotate 90 degrees clockwise): the 3x2 image
     * a b c / d e f becomes 2x3: d a / e b / f c. */
    const uint8_t px[18] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6};
    const uint8_t cw[18] = {4, 4, 4, 1, 1, 1, 5, 5, 5, 2, 2, 2, 6, 6, 6, 3, 3, 3};
    uint8_t tiff[32];
    size_t n = tiff_with_orientation(tiff, 1, 6);
    png_spec s = {3, 2, 8, PNG_COLOR_TYPE_RGB, 0, NULL, 0, NULL, NULL, tiff, (int)n};
    write_png(tmp_path("exif6.png"), &s, px);
    expect_rgb(tmp_path("exif6.png"), 3, 2, px); /* ignored by default, as the reference */
    cs_image_options opts = {.exif_rotate = 1};
    cs_image img;
    CHECK_OK(cs_image_load(tmp_path("exif6.png"), &opts, &img));
    CHECK(img.width == 2 && img.height == 3 && memcmp(img.rgb, cw, 18) == 0);
    cs_image_free(&img);

    /* A palette image turns in its own mode: the indices move, and its
     * nearest-neighbour resize (to the same 2x3 here, a copy) agrees. */
    const png_color pal[7] = {{0, 0, 0}, {1, 1, 1}, {2, 2, 2}, {3, 3, 3}, {4, 4, 4}, {5, 5, 5}, {6, 6, 6}};
    const uint8_t idx[6] = {1, 2, 3, 4, 5, 6};
    png_spec sp = {3, 2, 8, PNG_COLOR_TYPE_PALETTE, 0, pal, 7, NULL, NULL, tiff, (int)n};
    write_png(tmp_path("exif6_pal.png"), &sp, idx);
    CHECK_OK(cs_image_load(tmp_path("exif6_pal.png"), &opts, &img));
    CHECK(img.source && img.width == 2 && img.height == 3 && memcmp(img.rgb, cw, 18) == 0);
    cs_image small;
    CHECK_OK(cs_image_resize(&img, 2, 3, &small));
    CHECK(memcmp(small.rgb, cw, 18) == 0);
    cs_image_free(&small);
    cs_image_free(&img);

    /* JPEG APP1 "Exif", orientation 8 (rotate anticlockwise): a 16x8 image,
     * red left half and blue right half, becomes 8x16 with blue on top. */
    enum { W = 16, H = 8 };
    uint8_t rgb[W * H * 3], app1[64] = {'E', 'x', 'i', 'f', 0, 0};
    for (int i = 0; i < W * H; i++) {
        int red = i % W < W / 2;
        rgb[3 * i] = red ? 255 : 0, rgb[3 * i + 1] = 0, rgb[3 * i + 2] = red ? 0 : 255;
    }
    n = tiff_with_orientation(app1 + 6, 0, 8);
    write_jpeg(tmp_path("exif8.jpg"), W, H, 3, JCS_RGB, rgb, app1, (unsigned)(n + 6));
    CHECK_OK(cs_image_load(tmp_path("exif8.jpg"), NULL, &img));
    CHECK(img.width == W && img.height == H);
    cs_image_free(&img);
    CHECK_OK(cs_image_load(tmp_path("exif8.jpg"), &opts, &img));
    CHECK(img.width == H && img.height == W);
    if (img.width == H && img.height == W) {
        const uint8_t *top = img.rgb + (2 * H + 4) * 3, *bottom = img.rgb + ((W - 3) * H + 4) * 3;
        CHECK_MSG(top[2] > 200 && top[0] < 50, "top is %d %d %d", top[0], top[1], top[2]);
        CHECK_MSG(bottom[0] > 200 && bottom[2] < 50, "bottom is %d %d %d", bottom[0], bottom[1],
                  bottom[2]);
    }
    cs_image_free(&img);
}

/* ------------------------------------------------------------ errors */
static void expect_error(const char *path, const cs_image_options *opts, cs_status want,
                         const char *problem) {
    cs_image img = {.width = 7, .height = 7, .rgb = (uint8_t *)"x"};
    CHECK_STATUS(cs_image_load(path, opts, &img), want);
    CHECK_ERR_HAS(path);
    CHECK_ERR_HAS(problem);
    CHECK(img.rgb == NULL && img.width == 0 && img.height == 0);
}

/* Copy the first `keep` bytes of src into a new file. */
static const char *truncated_copy(const char *src, const char *name, size_t keep) {
    size_t n;
    uint8_t *b = read_bytes(src, &n);
    const char *path = tmp_path(name);
    write_bytes(path, b, keep < n ? keep : n);
    free(b);
    return path;
}

/* A file holding only a PNG signature and an IHDR chunk (valid CRC). */
static const char *png_header_only(const char *name, uint32_t w, uint32_t h) {
    uint8_t b[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    png_save_uint_32(b + 16, w);
    png_save_uint_32(b + 20, h);
    b[24] = 8, b[25] = PNG_COLOR_TYPE_RGB;
    png_save_uint_32(b + 29, (png_uint_32)crc32(crc32(0, NULL, 0), b + 12, 17));
    const char *path = tmp_path(name);
    write_bytes(path, b, sizeof b);
    return path;
}

/* A real JPEG whose SOF header is patched to claim w x h. */
static const char *jpeg_claiming(const char *name, unsigned w, unsigned h) {
    const char *src = noise_jpeg("small.jpg", 8, 8);
    size_t n;
    uint8_t *b = read_bytes(src, &n);
    for (size_t i = 0; i + 9 < n; i++)
        if (b[i] == 0xff && b[i + 1] == 0xc0) {
            b[i + 5] = (uint8_t)(h >> 8), b[i + 6] = (uint8_t)h;
            b[i + 7] = (uint8_t)(w >> 8), b[i + 8] = (uint8_t)w;
            break;
        }
    const char *path = tmp_path(name);
    write_bytes(path, b, n);
    free(b);
    return path;
}

static void test_errors(void) {
    expect_error(tmp_path("missing.png"), NULL, CS_ERR_MISSING, "cannot open");
    expect_error(g_dir, NULL, CS_ERR_ARG, "not a regular file");
    write_bytes(tmp_path("empty.jpg"), "", 0);
    expect_error(tmp_path("empty.jpg"), NULL, CS_ERR_FORMAT, "empty file");
    const char text[] = "this is a text file, not a photo\n";
    write_bytes(tmp_path("text.jpg"), text, sizeof text - 1);
    expect_error(tmp_path("text.jpg"), NULL, CS_ERR_FORMAT, "not a JPEG or PNG");
    write_bytes(tmp_path("anim.png"), "GIF89a\x01\x00\x01\x00", 10);
    expect_error(tmp_path("anim.png"), NULL, CS_ERR_UNSUPPORTED, "GIF");

    /* tmp_path's buffers rotate: keep these two paths. */
    char png[512], jpg[512];
    snprintf(png, sizeof png, "%s", noise_png("noise.png", 64, 64));
    expect_error(truncated_copy(png, "cut.png", 6000), NULL, CS_ERR_FORMAT, "truncated");
    expect_error(truncated_copy(png, "sig.png", 8), NULL, CS_ERR_FORMAT, "corrupt PNG");
    size_t n;
    uint8_t *b = read_bytes(png, &n);
    b[n / 2] ^= 0x55; /* inside IDAT: its CRC no longer matches */
    write_bytes(tmp_path("badcrc.png"), b, n);
    free(b);
    expect_error(tmp_path("badcrc.png"), NULL, CS_ERR_FORMAT, "CRC");
    /* A bad CRC in an ancillary chunk fails too, as it does in PIL (exif6.png
     * is written by test_exif_rotate). */
    b = read_bytes(tmp_path("exif6.png"), &n);
    for (size_t i = 0; i + 8 < n; i++)
        if (memcmp(b + i, "eXIf", 4) == 0) b[i + 6] ^= 1;
    write_bytes(tmp_path("badcrc_exif.png"), b, n);
    free(b);
    expect_error(tmp_path("badcrc_exif.png"), NULL, CS_ERR_FORMAT, "eXIf: CRC error");

    snprintf(jpg, sizeof jpg, "%s", noise_jpeg("noise.jpg", 64, 64));
    b = read_bytes(jpg, &n);
    free(b);
    expect_error(truncated_copy(jpg, "cut.jpg", n / 2), NULL, CS_ERR_FORMAT, "truncated JPEG");
    expect_error(truncated_copy(jpg, "no_eoi.jpg", n - 2), NULL, CS_ERR_FORMAT, "truncated JPEG");
    expect_error(truncated_copy(jpg, "soi.jpg", 4), NULL, CS_ERR_FORMAT, "JPEG");

    /* Sizes are judged from the header, before any pixel memory exists:
     * these files have no pixel data at all. */
    expect_error(png_header_only("huge.png", 60000, 60000), NULL, CS_ERR_LIMIT, "60000x60000");
    expect_error(png_header_only("zero.png", 0, 10), NULL, CS_ERR_FORMAT, "no pixels");
    expect_error(jpeg_claiming("huge.jpg", 60000, 60000), NULL, CS_ERR_LIMIT, "60000x60000");
    cs_image_options small = {.max_pixels = 63 * 64};
    expect_error(png, &small, CS_ERR_LIMIT, "limit of 4032 pixels");
    expect_error(jpg, &small, CS_ERR_LIMIT, "limit of 4032 pixels");
    cs_image img;
    small.max_pixels = 64 * 64;
    CHECK_OK(cs_image_load(png, &small, &img));
    cs_image_free(&img);
}

/* Decoding from memory names the buffer in messages like a path. */
static void test_memory(void) {
    cs_image img;
    CHECK_STATUS(cs_image_decode_memory("buffer", (const uint8_t *)"\xff\xd8\xff", 3, NULL, &img),
                 CS_ERR_FORMAT);
    CHECK_ERR_HAS("buffer");
    cs_image_options neg = {.max_pixels = -5};
    CHECK_STATUS(cs_image_decode_memory("buffer", (const uint8_t *)"x", 1, &neg, &img), CS_ERR_ARG);
}

static void remove_dir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/cs_test_image_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    srand(1);
    test_png_gray();
    test_png_palette();
    test_png_colour();
    test_jpeg_gray_and_cmyk();
    test_exif_parse();
    test_exif_rotate();
    test_errors();
    test_memory();
    remove_dir();
    return test_finish();
}
