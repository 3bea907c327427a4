/* What segment, classify and eval share: class lists with synonyms, the
 * segmentation settings, and the per-image predictions, so that eval's
 * saved predictions are exactly what segment and classify give. */
#ifndef CS_TOOLS_SEG_H
#define CS_TOOLS_SEG_H

#include "args.h"
#include "cli.h"

/* Classes, each with one or more names (synonyms), and the embeddings of
 * every name. */
typedef struct seg_classes {
    int C, D;
    char **names;    /* [C] first name of each class (for reports) */
    int n_names;
    int *name_class; /* [n_names] */
    float *emb;      /* [n_names, D] */
    float *redundant;/* [D]: the empty prompt's embedding when there is one name, else NULL */
    int background;  /* index of the background class, or -1 */
} seg_classes;

/* From --classes LIST (or `list` when not NULL, e.g. eval's class file) or
 * --class-embeddings, with --templates and --vocab; --background NAME picks
 * the background class (default: a class named "background", if any). */
int seg_classes_load(const cli_args *a, cs_model *m, const char *list, seg_classes *sc);
void seg_classes_free(seg_classes *sc);
cs_name_set seg_name_set(const seg_classes *sc);

/* --method, --res, --window/--stride/--short-side, --bg-thresh, --logit-scale. */
typedef struct seg_settings {
    int surgery;
    int R;                   /* whole-image input resolution */
    int window, stride;      /* window > 0: sliding windows */
    int short_side;          /* with windows: resize the short side to this first (0: keep) */
    cs_segment_options opts;
} seg_settings;

int seg_settings_parse(const cli_args *a, cs_model *m, const seg_classes *sc, seg_settings *st);

/* Normalized pixels [3, h, w] of an image resized to w x h (Pillow bicubic). */
int seg_pixels(const cs_image *img, int w, int h, float **pixels);

/* Class labels [H, W] of a decoded image. */
int seg_predict(cs_model *m, const seg_settings *st, const seg_classes *sc, const cs_image *img,
                uint8_t *labels);
/* Multi-label scores [C] of a decoded image at R x R. */
int seg_classify(cs_model *m, int surgery, int R, const seg_classes *sc, const cs_image *img,
                 float *scores);
/* Min-max similarity maps [H, W, C] of a decoded image at R x R: class-weighted
 * feature surgery over all names (surgery), or plain cosine similarity. */
int seg_explain_maps(cs_model *m, int surgery, int R, const seg_classes *sc, const cs_image *img,
                     float *maps);

/* Print a JSON string (quoted, escaped). */
void seg_print_json_string(FILE *f, const char *s);

#endif
