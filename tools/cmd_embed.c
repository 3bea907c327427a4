/* clip-surgery embed: raw text features (--raw) or prompt-ensembled class
 * embeddings (--classes), written as float32 .npy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const cli_option k_options[] = {
    {"raw", NULL, "encode texts as they are (no templates): projected end-token features", 0},
    {"texts", "FILE", "with --raw: one text per line, or a JSON array of strings (.json)", 0},
    {"ids", "FILE.npy", "with --raw: int32 [T, 77] token ids, zero padded", 0},
    {"classes", "LIST", "class names: a,b,c or @FILE (one class per line)", 0},
    {"output", "OUT.npy", "output file (-o)", 0},
    CLI_OPTS_MODEL,
    CLI_OPTS_TEXT,
    CLI_OPTS_QUIET,
};

static const char k_usage[] =
    "usage: clip-surgery embed --model M --raw (--texts FILE | --ids FILE.npy) -o OUT.npy\n"
    "       clip-surgery embed --model M --classes LIST [--templates SPEC] -o OUT.npy\n\n"
    "--raw writes float32 [T, D]: each text's projected end-token feature, not normalized\n"
    "(texts longer than the context are truncated as clip.tokenize(truncate=True) does).\n"
    "--classes writes float32 [C, D]: the normalized prompt-ensemble class embeddings.\n"
    "Example: clip-surgery embed --model ViT-B/16 --classes @voc.txt -o voc.npy";

/* int32 [T, context] ids from the texts, truncating with a note. */
static int tokenize_texts(cs_tokenizer *tok, char **texts, int n, int context, int32_t *ids) {
    int32_t *row = cli_xmalloc(sizeof(int32_t) * (size_t)context);
    for (int i = 0; i < n; i++) {
        int count;
        cs_status s = cs_tokenize(tok, texts[i], context, 0, row, &count);
        if (s == CS_ERR_TOO_LONG) {
            cli_note("clip-surgery: note: text %d is longer than %d tokens; truncated", i + 1, context);
            s = cs_tokenize(tok, texts[i], context, 1, row, &count);
        }
        if (s != CS_OK) {
            free(row);
            cli_error("text %d: %s", i + 1, cs_last_error());
            return cli_exit_code(s);
        }
        memset(ids + (size_t)i * context, 0, sizeof(int32_t) * (size_t)context);
        memcpy(ids + (size_t)i * context, row, sizeof(int32_t) * (size_t)count);
    }
    free(row);
    return 0;
}

static int embed_raw(const cli_args *a, cs_model *m, const char *out) {
    const cs_config *c = cs_model_config(m);
    const char *texts_path = cli_get(a, "texts"), *ids_path = cli_get(a, "ids");
    if (!!texts_path == !!ids_path) {
        cli_error("--raw needs exactly one of --texts FILE and --ids FILE.npy");
        return CLI_EXIT_USAGE;
    }
    cs_array ids = {0};
    int rc = 0, n = 0, context = c->context_length;
    if (ids_path) {
        cs_status s = cs_npy_read(ids_path, &ids);
        if (s != CS_OK) return cli_fail(s);
        if (ids.dtype != CS_DT_I32 || ids.ndim != 2 || ids.shape[1] != context) {
            cli_error("%s: --ids must be int32 [T, %d]", ids_path, context);
            cs_array_free(&ids);
            return CLI_EXIT_USAGE;
        }
        n = (int)ids.shape[0];
    } else {
        char *storage, **texts;
        cs_tokenizer *tok = NULL;
        rc = cli_read_texts(texts_path, &storage, &texts, &n);
        if (!rc) {
            cs_status s = cs_model_tokenizer(m, &tok);
            if (s != CS_OK) rc = cli_fail(s);
        }
        if (!rc) {
            ids.data = cli_xmalloc(sizeof(int32_t) * (size_t)(n ? n : 1) * context);
            rc = tokenize_texts(tok, texts, n, context, ids.data);
        }
        for (int i = 0; texts && i < n; i++) free(texts[i]);
        free(texts);
        cs_free(storage);
    }
    float *feat = rc ? NULL : cli_xmalloc(sizeof(float) * (size_t)(n ? n : 1) * c->embed_dim);
    if (!rc) {
        cs_status s = cs_encode_text(m, ids.data, n, context, feat);
        if (s == CS_OK) {
            int64_t shape[2] = {n, c->embed_dim};
            s = cs_npy_write(out, CS_DT_F32, 2, shape, feat);
        }
        if (s != CS_OK) rc = cli_fail(s);
    }
    free(feat);
    if (ids_path) cs_array_free(&ids);
    else free(ids.data);
    return rc;
}

/* One row per class: a class with synonyms is embedded by its first name
 * here (the rows are what --class-embeddings takes, one per class). */
static int embed_classes(const cli_args *a, cs_model *m, const char *out) {
    cs_classes *parsed = NULL, *cl = NULL;
    cs_status s = cs_classes_parse(cli_get(a, "classes"), &parsed);
    if (s != CS_OK) return cli_fail(s);
    int C = cs_classes_count(parsed);
    const char **first = cli_xcalloc((size_t)C, sizeof *first);
    for (int c = 0; c < C; c++) first[c] = cs_classes_name(parsed, c);
    if (cs_classes_num_names(parsed) > C)
        cli_note("note: some classes have synonyms; embed writes one row per class, from its first name");
    s = cs_classes_from_names(first, C, &cl);
    free(first);
    int rc = s == CS_OK ? 0 : cli_fail(s);
    if (!rc && (s = cs_classes_set_templates(cl, cli_get(a, "templates"))) != CS_OK) rc = cli_fail(s);
    if (!rc && (s = cs_classes_embed(cl, m, NULL, NULL)) != CS_OK) rc = cli_fail(s);
    if (!rc) {
        int64_t shape[2] = {C, cs_classes_dim(cl)};
        s = cs_npy_write(out, CS_DT_F32, 2, shape, cs_classes_embeddings(cl));
        if (s != CS_OK) rc = cli_fail(s);
    }
    cs_classes_free(cl);
    cs_classes_free(parsed);
    return rc;
}

static int check(const cli_args *a) {
    if (!cli_has(a, "output")) {
        cli_error("-o OUT.npy is required");
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "raw") == cli_has(a, "classes")) {
        cli_error("give either --raw (with --texts or --ids) or --classes LIST");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static int run(cli_ctx *c) {
    const char *out = cli_get(&c->a, "output");
    return cli_has(&c->a, "raw") ? embed_raw(&c->a, c->m, out) : embed_classes(&c->a, c->m, out);
}

const cli_command cmd_embed = {
    "embed", "text embeddings (raw texts or prompt-ensembled classes)", CLI_OPTIONS(k_options), k_usage,
    CLI_MODEL, check, run,
};
