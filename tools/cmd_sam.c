/* clip-surgery sam: Segment Anything masks from point / box / mask prompts,
 * a prompts file, or a text through CLIP Surgery's points (the authors'
 * demo). The job itself is the library's cs_sam_run; this file turns
 * arguments into prompt sets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const cli_option k_options[] = {
    {"sam", "FILE", "SAM checkpoint: vit_b | vit_l | vit_h (Meta's files, fetched into --cache-dir), "
                    "a .pth or .safetensors file", 0},
    {"image", "FILE", "input image (JPEG/PNG)", 0},
    {"point", "X,Y[,L]", "a point in image pixels (fractions allowed), label L 1 (default) or 0; repeat it", 1},
    {"box", "X0,Y0,X1,Y1", "a box in image pixels", 0},
    {"mask-input", "FILE.npy", "low-res logits float32 [4G,4G] of an earlier run (lowres.npy's best mask)", 0},
    {"single", NULL, "one mask (SAM's multimask_output=False); default: three, the best IoU kept", 0},
    {"prompts", "FILE.json", "prompt sets [{\"name\", \"points\", \"labels\", \"box\", \"mask_input\", "
                             "\"multimask\"}, ...]: one subfolder each, the image encoded once", 0},
    {"text", "T", "with --model: CLIP Surgery's points for one text (\"a+b\": combined), then SAM", 0},
    {"classes", "LIST", "with --model: points per class (class-weighted redundancy), one subfolder each", 0},
    CLI_OPT_CLASS_EMBEDDINGS,
    {"target", "NAMES", "with --classes: the classes to segment (default all)", 0},
    {"t", "X", "threshold on the normalized map for the points (default 0.8)", 0},
    {"redundant", "MODE", "classes | empty, as for `points`", 0},
    {"res", "R", "CLIP input resolution for the points (default 512, as the authors' demo)", 0},
    {"sam-precision", "P", "fp32 (default, the reference's numbers) | bf16 (the image encoder's linear layers)", 0},
    {"decoder-heads", "N", "the SAM decoder's heads when the file does not say (default 8, every Meta model)", 0},
    {"npy", NULL, "also write embedding.npy, masks.npy, iou.npy, lowres.npy, logits.npy", 0},
    {"output", "DIR", "output folder (-o): mask.png, overlay.png (and the arrays)", 0},
    CLI_OPTS_IMAGE_COMMAND,
};

static const char k_usage[] =
    "usage: clip-surgery sam --sam FILE|vit_b|vit_l|vit_h --image IMG -o DIR [--npy]\n"
    "         ( [--point X,Y[,LABEL]]... [--box X0,Y0,X1,Y1] [--mask-input LOWRES.npy] [--single]\n"
    "         | --prompts FILE.json\n"
    "         | --model M (--text T | --classes LIST [--target NAMES]) [--res 512] [--t 0.8] )\n\n"
    "Segment Anything (Meta's SamPredictor at parity). Writes DIR/mask.png (the best-IoU mask),\n"
    "DIR/overlay.png and, with --npy, embedding.npy [E,G,G], masks.npy [C,H,W] uint8, iou.npy [C],\n"
    "lowres.npy [C,4G,4G], logits.npy [C,H,W]; prints a JSON summary. --prompts, --classes and\n"
    "\"a+b\" texts write one subfolder per prompt set. The image embedding is cached (keyed by the\n"
    "SAM file and the image bytes; --no-cache), so new prompts on the same image skip the encoder.\n"
    "Examples:\n"
    "  clip-surgery sam --sam vit_h --image photo.jpg --point 500,375 -o out/\n"
    "  clip-surgery sam --model ViT-B/16 --sam vit_h --image photo.jpg --text \"person+bench\" -o out/";

/* ---------------------------------------------------------------- text -> points */

typedef struct text_sets {
    int n;
    cs_sam_prompt_set *sets;
    float *points;   /* every set's points */
    int32_t *labels;
    char **names;
} text_sets;

static void text_sets_free(text_sets *t) {
    for (int i = 0; i < t->n; i++) free(t->names[i]);
    free(t->names);
    free(t->points);
    free(t->labels);
    free(t->sets);
    memset(t, 0, sizeof *t);
}

/* Which classes get masks: --target names, or all. */
static int chosen_classes(const cli_args *a, const cs_classes *cl, int *chosen) {
    const char *t = cli_get(a, "target");
    int C = cs_classes_count(cl);
    for (int c = 0; c < C; c++) chosen[c] = !t;
    if (!t) return 0;
    char *copy = cli_xstrdup(t), *save = NULL;
    int rc = 0;
    for (char *name = strtok_r(copy, ",", &save); name && !rc; name = strtok_r(NULL, ",", &save)) {
        int c = cs_classes_find(cl, name);
        if (c >= 0) chosen[c] = 1;
        else {
            cli_error("--target '%s' is not one of the classes", name);
            rc = CLI_EXIT_USAGE;
        }
    }
    free(copy);
    return rc;
}

/* CLIP Surgery's points exactly as `clip-surgery points` makes them (the
 * cs_points job; --res default 512, the authors' demo), one prompt set per
 * target: each class, or the one combined "a+b" text. */
static int text_prompts(const cli_args *a, text_sets *out) {
    memset(out, 0, sizeof *out);
    const char *text = cli_get(a, "text"), *tv = cli_get(a, "t");
    cs_points_options o = cs_points_defaults();
    o.combined = text && strchr(text, '+') != NULL;
    if (tv) o.threshold = strtof(tv, NULL);
    cli_int(a, "res", 512, 16, 4096, &o.resolution); /* checked already */
    cs_model *m = NULL;
    cs_classes *cl = NULL;
    cli_input in;
    memset(&in, 0, sizeof in);
    cs_points_result p;
    memset(&p, 0, sizeof p);
    int rc = cli_redundancy(a, &o.redundant);
    if (!rc) rc = cli_load_model(a, &m);
    if (!rc) rc = cli_classes_load(a, m, NULL, o.combined ? CLI_SPLIT_PLUS : 0, &cl);
    if (!rc) rc = cli_input_from_image(cli_get(a, "image"), &in);
    if (!rc) {
        cs_status s = cs_points(m, cl, &in.in, &o, &p);
        rc = s == CS_OK ? 0 : cli_fail(s);
    }
    if (!rc) cli_note_redundancy(a, p.redundant);
    int *chosen = rc ? NULL : cli_xcalloc((size_t)p.n_targets, sizeof *chosen);
    if (!rc && o.combined) chosen[0] = 1;
    else if (!rc) rc = chosen_classes(a, cl, chosen);
    if (!rc) {
        int total = p.offsets[p.n_targets];
        out->sets = cli_xcalloc((size_t)p.n_targets, sizeof *out->sets);
        out->names = cli_xcalloc((size_t)p.n_targets, sizeof *out->names);
        out->points = cli_xcalloc((size_t)total + 1, 2 * sizeof(float));
        out->labels = cli_xcalloc((size_t)total + 1, sizeof(int32_t));
        for (int j = 0; j < 2 * total; j++) out->points[j] = (float)p.points[j];
        for (int j = 0; j < total; j++) out->labels[j] = p.labels[j];
    }
    for (int k = 0; !rc && k < p.n_targets; k++) {
        if (!chosen[k]) continue;
        int first = p.offsets[k], n = p.offsets[k + 1] - first, i = out->n++;
        out->names[i] = cli_xstrdup(o.combined ? text : cs_classes_name(cl, k));
        out->sets[i] = (cs_sam_prompt_set){.name = out->names[i], .n_points = n, .points = out->points + 2 * first,
                                           .labels = out->labels + first, .multimask = !cli_has(a, "single")};
        if (n == 0) {
            cli_error("no points for '%s' (its map is flat)", out->names[i]);
            rc = CLI_EXIT_USAGE;
        }
    }
    free(chosen);
    cs_points_result_free(&p);
    cli_input_free(&in);
    cs_classes_free(cl);
    cs_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- main */

static int check(const cli_args *a) {
    int manual = cli_has(a, "point") || cli_has(a, "box") || cli_has(a, "mask-input");
    int text = cli_has(a, "text") + cli_has(a, "classes") + cli_has(a, "class-embeddings");
    int modes = manual + cli_has(a, "prompts") + (text > 0);
    if (!cli_has(a, "sam") || !cli_has(a, "image") || !cli_has(a, "output")) {
        cli_error("sam needs --sam, --image and -o DIR (see --help)");
        return CLI_EXIT_USAGE;
    }
    if (modes != 1 || text > 1) {
        cli_error("sam takes one kind of prompt: --point/--box/--mask-input, --prompts FILE, or "
                  "--model with one of --text, --classes, --class-embeddings");
        return CLI_EXIT_USAGE;
    }
    if (text && !cli_has(a, "model")) {
        cli_error("--text, --classes and --class-embeddings need --model (the CLIP model that makes the points)");
        return CLI_EXIT_USAGE;
    }
    const char *tv = cli_get(a, "t"), *txt = cli_get(a, "text"), *redundant = cli_get(a, "redundant");
    char *end = NULL;
    float t = tv ? strtof(tv, &end) : 0.8f;
    if (tv && (*end || !(t >= 0.0f && t <= 1.0f))) {
        cli_error("--t '%s' is not a number in [0, 1]", tv);
        return CLI_EXIT_USAGE;
    }
    if (txt && strchr(txt, '+') && redundant && !strcmp(redundant, "classes")) {
        cli_error("combined targets use the empty prompt's redundant features; drop --redundant classes");
        return CLI_EXIT_USAGE;
    }
    int v;
    if (!cli_int(a, "res", 512, 16, 4096, &v)) return CLI_EXIT_USAGE;
    return cli_sam_check(a);
}

static int run(cli_ctx *c) {
    const cli_args *a = &c->a;
    cli_sam_manual mp = {0};
    text_sets ts = {0};
    cs_sam_prompt_set *file_sets = NULL;
    const cs_sam_prompt_set *sets = NULL;
    int n_sets = 0, subfolders = 1, rc = 0;
    cs_status s = CS_OK;
    if (cli_has(a, "prompts")) {
        s = cs_sam_prompts_load(cli_get(a, "prompts"), !cli_has(a, "single"), &file_sets, &n_sets);
        if (s != CS_OK) rc = cli_fail(s);
        sets = file_sets;
    } else if (cli_has(a, "text") || cli_has(a, "classes") || cli_has(a, "class-embeddings")) {
        rc = text_prompts(a, &ts);
        sets = ts.sets;
        n_sets = ts.n;
    } else {
        rc = cli_sam_manual_prompt(a, &mp);
        sets = &mp.set;
        n_sets = 1;
        subfolders = 0;
    }
    char path[4096], cache[4096];
    cs_sam *m = NULL;
    if (!rc) rc = cli_sam_load(a, path, sizeof path, &m);
    int use_cache = !cli_has(a, "no-cache") && cs_cache_dir(NULL, cache, sizeof cache) == CS_OK;
    if (!rc) {
        cs_sam_job job = {cli_get(a, "image"), cli_image_options(), cli_get(a, "sam"), path, sets, n_sets,
                          subfolders, cli_get(a, "output"), cli_has(a, "npy"), use_cache ? cache : NULL};
        char *json = NULL;
        s = cs_sam_run(m, &job, &json);
        if (s == CS_OK) printf("%s\n", json);
        else rc = cli_fail(s);
        cs_sam_json_free(json);
    }
    cs_sam_free(m);
    text_sets_free(&ts);
    cs_sam_prompts_free(file_sets);
    cli_sam_manual_free(&mp);
    return rc;
}

const cli_command cmd_sam = {
    "sam", "Segment Anything masks from points, a box, a mask, or a text (via points)", CLI_OPTIONS(k_options),
    k_usage, 0, check, run,
};
