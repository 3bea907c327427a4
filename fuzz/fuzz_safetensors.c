/* libFuzzer target: the safetensors header parser and its checks over an
 * arbitrary file image (8-byte length, header, data). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "formats/tensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    if (len < 8) return 0;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    if (hlen > len - 8) hlen = len - 8;
    cs_tensor_table t;
    tensors_init(&t, "fuzz");
    safetensors_parse_header("fuzz", (const char *)buf + 8, (size_t)hlen, buf + 8 + hlen,
                                len - 8 - (size_t)hlen, &t);
    for (int i = 0; i < t.n; i++) {
        /* Touch every byte the parser vouched for. */
        volatile uint8_t sink = 0;
        const uint8_t *p = t.items[i].data;
        for (size_t k = 0; k < t.items[i].nbytes; k++) sink ^= p[k];
        (void)sink;
        /* Packed panels are unpacked by index arithmetic: every index must
         * stay inside the vouched bytes. */
        if (t.items[i].bf16_panels && t.items[i].nbytes <= (1u << 20)) {
            float *f = malloc(t.items[i].nbytes * 2 + 4);
            if (f) tensor_to_f32(&t.items[i], f);
            free(f);
        }
    }
    tensors_free(&t);
    return 0;
}
