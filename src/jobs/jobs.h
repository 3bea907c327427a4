/* Layer 7, jobs: what a front end runs, one call per job (explain,
 * classify and segment on n images; points, words, eval's scoring), over
 * class sets.
 * Uses every layer below; front ends use only the public header. */
#ifndef CS_JOBS_H
#define CS_JOBS_H

#include "base/base.h"
#include "model/model.h"

/* The class set's names as cs_name_set (embedded first, with the model's
 * dimension checked); redundant: the explicit features, or NULL. */
cs_status classes_name_set(cs_classes *cl, cs_model *m, const float *redundant, cs_name_set *out);

/* The redundant features a mode resolves to: the empty prompt's ensemble
 * (*used EMPTY, *features set) or class-weighted (*used CLASSES, NULL).
 * AUTO and CLASSES with a single name both take the empty prompt. */
cs_status classes_redundancy(cs_classes *cl, cs_model *m, cs_redundancy asked, cs_redundancy *used,
                             const float **features);

/* Per-class similarity [T, C] of tokens [T, D]: feature surgery (redundant
 * NULL: class-weighted) or plain cosine (surgery 0) over every name, each
 * class its best name. */
cs_status classes_similarity(const cs_name_set *names, const float *tokens, int T, int surgery,
                             float *sim);

/* Normalized pixels [3, h, w] of an image resized to w x h (Pillow bicubic). */
cs_status image_pixels(const cs_image *img, int w, int h, float **pixels);

/* Normalized pixels [3, R, R] of an input (mem_alloc'ed), R (the image's
 * from `resolution` or the model's, or the pixels'), and the output size. */
cs_status input_pixels(const cs_model *m, const cs_input *in, int resolution, float **pixels, int *R,
                       int *W, int *H);
/* n inputs of one resolution R through the vision tower in one pass:
 * pixels[k] [3, R, R] -> tokens[k] [T, D], each equal to its tokens alone. */
cs_status encode_inputs(cs_model *m, cs_vision_mode mode, int R, int n, const float *const *pixels,
                        float *const *tokens);
/* The method runs on this model: known, and a ViT for the later methods. */
cs_status job_method(const cs_model *m, cs_method method);

/* The input resolution a job runs at: opts' or the model's native one. */
int job_resolution(const cs_model *m, int resolution);

#endif
