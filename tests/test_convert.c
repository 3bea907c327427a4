/* cs_model_save: a model written as safetensors under OpenAI names loads
 * back with the same tensors: the Hugging Face form in F16 gives exactly the
 * golden OpenAI-named F16 file's numbers (every golden weight is
 * fp16-exact), and an F32 round trip keeps the parity outputs. */
#include <stdlib.h>
#include <unistd.h>
#include "formats/tensors.h"
#include "golden.h"
#include "test.h"

static void compare_tables(const char *written, const char *golden) {
    cs_tensor_table a, b;
    CHECK_OK(cs_safetensors_open(written, &a));
    CHECK_OK(cs_safetensors_open(golden, &b));
    CHECK_MSG(a.n == b.n, "%d tensors written, golden has %d", a.n, b.n);
    int same = 0;
    for (int i = 0; i < b.n; i++) {
        const cs_tensor *x = cs_tensors_find(&a, b.items[i].name), *y = &b.items[i];
        if (!x || x->ndim != y->ndim || cs_tensor_numel(x) != cs_tensor_numel(y)) {
            CHECK_MSG(0, "tensor %s missing or reshaped", y->name);
            continue;
        }
        int64_t n = cs_tensor_numel(x);
        float *fx = malloc(sizeof(float) * (size_t)(n + 1)), *fy = malloc(sizeof(float) * (size_t)(n + 1));
        cs_tensor_to_f32(x, fx);
        cs_tensor_to_f32(y, fy);
        same += !memcmp(fx, fy, sizeof(float) * (size_t)n);
        free(fx);
        free(fy);
    }
    CHECK_MSG(same == b.n, "%d of %d tensors bit-identical", same, b.n);
    cs_tensors_free(&a);
    cs_tensors_free(&b);
}

int main(void) {
    char dir[] = "/tmp/cs_convert_XXXXXX", path[256];
    if (!mkdtemp(dir)) return 1;
    cs_model *m;
    CHECK_OK(cs_model_load(golden_path("golden/tiny-vit/hf"), &m));
    snprintf(path, sizeof path, "%s/from-hf.safetensors", dir);
    CHECK_OK(cs_model_save(m, path, 1));
    cs_model_free(m);
    compare_tables(path, golden_path("golden/tiny-vit/model.safetensors"));

    CHECK_OK(cs_model_load(golden_path("golden/tiny-rn/model.safetensors"), &m));
    snprintf(path, sizeof path, "%s/rn32.safetensors", dir);
    CHECK_OK(cs_model_save(m, path, 0));
    cs_model_free(m);
    CHECK_OK(cs_model_load(path, &m));
    if (m) {
        cs_array px;
        golden_load("inputs/synthetic_pre_128.npy", &px);
        int T = cs_model_num_tokens(m, 128);
        float *tok = malloc(sizeof(float) * T * 64);
        CHECK_OK(cs_encode_image(m, px.data, 128, CS_VISION_SURGERY, tok));
        golden_check_floats("tiny-rn/synthetic_cs_tokens_128.npy", tok, (int64_t)T * 64);
        free(tok);
        cs_array_free(&px);
        cs_model_free(m);
    }
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    if (system(path) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish();
}
