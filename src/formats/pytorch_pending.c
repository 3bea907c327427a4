/* Placeholder until the PyTorch archive reader lands (weak, so the real one wins). */
#include "tensors.h"

__attribute__((weak)) cs_status cs_pytorch_open(const char *path, cs_tensor_table *out) {
    cs_tensors_init(out, path);
    return cs_fail(CS_ERR_UNSUPPORTED, "%s: PyTorch archives are not supported yet", path);
}
