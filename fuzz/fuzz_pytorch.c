/* libFuzzer target: a whole PyTorch archive image (zip reader, pickle
 * reader, tensor views). Seeds: fuzz/corpus/pytorch. */
#include <stddef.h>
#include <stdint.h>
#include "formats/pytorch.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len) {
    cs_tensor_table t;
    tensors_init(&t, "fuzz");
    pytorch_parse_memory("fuzz", buf, len, &t);
    for (int i = 0; i < t.n; i++) {
        /* Touch every byte the reader vouched for. */
        volatile uint8_t sink = 0;
        const uint8_t *p = t.items[i].data;
        for (size_t k = 0; k < t.items[i].nbytes; k++) sink ^= p[k];
        (void)sink;
    }
    tensors_free(&t);
    return 0;
}
