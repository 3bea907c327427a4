/* libFuzzer target: image decoding from memory (PNG and JPEG through their
 * libraries, every PIL mode, EXIF orientation, the 16-bit high-byte
 * option), then the resize in the image's own mode and the normalization
 * that every decoded image goes through. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "formats/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    /* A modest limit keeps each run fast; the limit logic is the same. */
    int flags = len > 0 ? buf[len - 1] : 0;
    cs_image_options opts = {.max_pixels = 1 << 22, .exif_rotate = flags & 1,
                             .png16_highbyte = (flags >> 1) & 1};
    cs_image img;
    if (cs_image_decode_memory("fuzz", buf, len, &opts, &img) != CS_OK) return 0;
    cs_image small;
    int side = 1 + img.width % 37;
    if (cs_image_resize(&img, side, 1 + img.height % 29, &small) == CS_OK) {
        float *px = malloc(sizeof(float) * 3 * (size_t)small.width * small.height);
        if (px) cs_image_normalize(&small, px);
        free(px);
        cs_image_free(&small);
    }
    cs_image_free(&img);
    return 0;
}
