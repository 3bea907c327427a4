/* clip-surgery convert: any loadable model to safetensors under OpenAI names. */
#include <string.h>
#include "cli.h"

static const cli_option k_options[] = {
    {"model", "M", "input: a clip.load name, a .pt/.safetensors file or a folder (or give it as IN)", 0},
    {"dtype", "T", "f32 (default: used in place, no copy at load), f16 or bf16 (half the size, widened at load), "
                   "bf16-packed (bf16 with the linear layers in the bf16 kernels' layout: used in place under "
                   "--precision bf16; only clip-surgery reads it)", 0},
    {"cache-dir", "DIR", "where named models live (default ~/.cache/clip)", 0},
    {"output", "OUT.safetensors", "output file (-o)", 0},
    CLI_OPTS_QUIET,
};

static const char k_usage[] =
    "usage: clip-surgery convert IN -o OUT.safetensors [--dtype f32|f16|bf16|bf16-packed]\n\n"
    "Writes the weights of any model clip-surgery loads (OpenAI .pt, torch.save state dicts,\n"
    "Hugging Face folders, safetensors) as safetensors with OpenAI names, to be memory-mapped later.\n"
    "Example: clip-surgery convert ViT-B/16 -o ViT-B-16.safetensors\n"
    "         clip-surgery convert ViT-B/16 --dtype bf16-packed -o ViT-B-16-bf16p.safetensors\n"
    "         (then: clip-surgery explain --model ViT-B-16-bf16p.safetensors --precision bf16 ...)";

static int run(cli_ctx *c) {
    cli_args *a = &c->a;
    const char *out = cli_get(a, "output"), *dtype = cli_get(a, "dtype");
    if (a->n_positional == 1 && !cli_has(a, "model")) cli_set(a, "model", a->positional[0]);
    if (!out || !cli_has(a, "model") || a->n_positional > 1) {
        cli_error("convert needs one input model and -o OUT.safetensors (see --help)");
        return CLI_EXIT_USAGE;
    }
    static const char *k_dtypes[] = {"f32", "f16", "bf16", "bf16-packed"}; /* in cs_save_dtype order */
    int dt = dtype ? -1 : CS_SAVE_F32;
    for (int i = 0; dtype && i < 4; i++)
        if (!strcmp(dtype, k_dtypes[i])) dt = i;
    if (dt < 0) {
        cli_error("--dtype '%s' is not f32, f16, bf16 or bf16-packed", dtype);
        return CLI_EXIT_USAGE;
    }
    int rc = cli_load_model(a, &c->m);
    if (rc) return rc;
    cs_status s = cs_model_save(c->m, out, (cs_save_dtype)dt);
    return s == CS_OK ? 0 : cli_fail(s);
}

/* The input model may be positional, so the body opens it. */
const cli_command cmd_convert = {
    "convert", "write a model as safetensors (OpenAI names, f32, f16, bf16 or bf16-packed)", CLI_OPTIONS(k_options), k_usage,
    CLI_POSITIONAL, NULL, run,
};
