/* Access to ../shared/golden for parity tests. The folder is found through
 * $CLIP_SURGERY_SHARED (default: ../shared beside the source tree). When it
 * is absent the test is skipped (exit 77), except under CI=true, where that
 * is a failure. */
#ifndef CS_GOLDEN_H
#define CS_GOLDEN_H

#include <cjson/cJSON.h>
#include "formats/npy.h"

/* The shared folder, or exits (skip or failure) when it is absent. */
const char *golden_shared_dir(void);
/* The shared folder, or NULL when it is absent (for tests that only run
 * some cases with it). */
const char *golden_shared_dir_if_present(void);
/* Path of a file under shared/ (static buffer rotated over 8 slots). */
const char *golden_path(const char *rel);
/* The parsed MANIFEST.json (cached). */
cJSON *golden_manifest(void);
/* The manifest entry of a golden file (relative to golden/), or NULL. */
cJSON *golden_entry(const char *rel);
/* The own manifest of a set that has one ("sam/tiny-sam"), or NULL. Files
 * of such a set are found by golden_entry under "<set>/<file>". */
cJSON *golden_set_manifest(const char *set);
/* Load the array `entry` (without ".npy") of the archive golden/<rel>.npz;
 * exits the test with a failure when it cannot. */
void golden_npz_load(const char *rel, const char *entry, cs_array *out);
/* SAM masks [C, H, W] (0/1) against golden sam/tiny-sam/<file>.npy: a
 * differing pixel must be one fragile.npz lists for that file. */
void golden_check_sam_masks(const char *file, const uint8_t *got, size_t n, int H, int W);
/* The model golden/<set>/model.safetensors ("tiny-vit", "tiny-rn") with the
 * shared BPE vocabulary attached, no embedding cache, no download; exits the
 * test (failure) when it cannot load. Free with cs_model_free. */
cs_model *golden_model(const char *set);
/* Load golden/<rel>; exits the test with a failure when it cannot. */
void golden_load(const char *rel, cs_array *out);

/* The comparison's two figures, in float64: max|got - ref| / max|ref| and
 * the cosine of got and ref (got[i] against ref[index ? index[i] : i]).
 * Returns 0 when got holds a NaN or an infinity. */
int golden_error(const float *got, const float *ref, const int64_t *index, int64_t n, double *relerr,
                 double *cosine);
/* Compare float32 results with golden/<rel> under the manifest's tolerance
 * (max|a-b|/max|golden| and cosine, in float64); prints the figures. Checks
 * the element count too. Returns 1 on pass. */
int golden_check_floats(const char *rel, const float *got, int64_t n);
/* The same on a subset: got[i] against golden element index[i] (a column,
 * the real-token rows of a padded batch); index NULL: all, in order. */
int golden_check_floats_at(const char *rel, const float *got, const int64_t *index, int64_t n);
/* Compare float32 results with a reference the test derived from golden/<rel>
 * (e.g. a golden intermediate times a weight), under rel's tolerance;
 * label names the comparison in the printout. Returns 1 on pass. */
int golden_check_derived(const char *rel, const char *label, const float *got, const float *ref,
                         int64_t n);
/* The same with explicit tolerances (golden sets with their own manifest). */
int golden_check_floats_tol(const char *rel, const float *got, int64_t n, double rel_tol,
                            double min_cosine);
/* A per-pixel argmax [n] against golden/<rel> (int64): equal except at
 * pixels whose golden top-1/top-2 score gap is below 1e-5 (gscore: the
 * golden scores [C, n]). Returns the number of such exempt pixels that differ. */
int golden_check_argmax(const char *rel, const int64_t *labels, const float *gscore, int C, int n);
/* The tolerance of golden/methods/tiny-vit/manifest.json. */
void golden_methods_tolerance(double *rel_tol, double *min_cosine);
/* Exact comparison of integer/uint8 arrays with golden/<rel>. */
int golden_check_exact(const char *rel, const void *got, size_t nbytes);

#endif
