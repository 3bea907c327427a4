/* Writes a YCCK JPEG (Adobe transform 2) for tests/data/images: Pillow
 * cannot write one, and Photoshop's CMYK JPEGs often are. Built and run by
 * scripts/gen_image_goldens.py:  cc write_ycck_jpeg.c -ljpeg
 * Usage: write_ycck_jpeg OUT.jpg (a 37x29 image of smooth CMYK ramps). */
#include <math.h>
#include <stdio.h>
#include <jpeglib.h>

int main(int argc, char **argv) {
    enum { W = 37, H = 29 };
    static unsigned char px[W * H * 4];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 4; c++)
                px[(y * W + x) * 4 + c] =
                    (unsigned char)(127.5 + 120 * sin(x / (3.0 + c) + c) * cos(y / (4.0 + c)));
    FILE *f = argc > 1 ? fopen(argv[1], "wb") : NULL;
    if (!f) return 1;
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr err;
    cinfo.err = jpeg_std_error(&err);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = W;
    cinfo.image_height = H;
    cinfo.input_components = 4;
    cinfo.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&cinfo);
    jpeg_set_colorspace(&cinfo, JCS_YCCK);
    jpeg_set_quality(&cinfo, 95, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < H) {
        JSAMPROW row = px + cinfo.next_scanline * W * 4;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    fclose(f);
    return 0;
}
