#include <stdio.h>
#include <string.h>
#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} k_commands[] = {
    {"explain", cmd_explain, "similarity maps (heatmaps) for classes or a text"},
    {"segment", cmd_segment, "open-vocabulary semantic segmentation (class-index and colour PNGs)"},
    {"classify", cmd_classify, "multi-label class scores (JSON)"},
    {"points", cmd_points, "point prompts for SAM (JSON)"},
    {"embed", cmd_embed, "text embeddings (raw texts or prompt-ensembled classes)"},
    {"eval", cmd_eval, "mIoU / mAP / explainability mIoU over a dataset"},
    {"bench", cmd_bench, "speed against this machine's GEMM peak (synthetic or given models)"},
    {"convert", cmd_convert, "write a model as safetensors (OpenAI names, f32 or f16)"},
    {"tokenize", cmd_tokenize, "print CLIP BPE token ids of texts"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: clip-surgery COMMAND [OPTIONS]\n\n"
               "CLIP Surgery (explainability and open-vocabulary maps for CLIP) in C.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof k_commands / sizeof *k_commands; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].help);
    fprintf(f, "\nRun 'clip-surgery COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof *k_commands; i++)
        if (!strcmp(argv[1], k_commands[i].name)) return k_commands[i].run(argc - 1, argv + 1);
    cli_error("unknown command '%s' (see 'clip-surgery --help')", argv[1]);
    return CLI_EXIT_USAGE;
}
