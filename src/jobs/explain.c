/* The explain and points jobs: an input through the vision tower, feature
 * surgery against the class set (each class its best name), then maps or
 * point prompts. */
#include <string.h>
#include "jobs.h"
#include "method/method.h"

int job_resolution(const cs_model *m, int resolution) {
    return resolution > 0 ? resolution : m->cfg.image_resolution;
}

cs_status image_pixels(const cs_image *img, int w, int h, float **pixels) {
    cs_image small = {0};
    const cs_image *src = img;
    *pixels = NULL;
    if (w != img->width || h != img->height) {
        cs_status s = cs_image_resize(img, w, h, &small);
        if (s != CS_OK) return s;
        src = &small;
    }
    *pixels = mem_alloc((size_t)3 * w, (size_t)h * sizeof(float));
    if (*pixels) cs_image_normalize(src, *pixels);
    cs_image_free(&small);
    return *pixels ? CS_OK : CS_ERR_NOMEM;
}

cs_status classes_similarity(const cs_name_set *names, const float *tokens, int T, int surgery, float *sim) {
    if (names->n_names == names->n_classes) /* one name per class: no reduction */
        return surgery ? cs_feature_surgery(tokens, T, names->emb, names->n_names, names->dim, names->redundant, sim)
                       : cs_similarity(tokens, T, names->emb, names->n_names, names->dim, sim);
    float *per_name = mem_alloc((size_t)T, (size_t)names->n_names * sizeof(float));
    if (!per_name) return CS_ERR_NOMEM;
    cs_status s = surgery ? cs_feature_surgery(tokens, T, names->emb, names->n_names, names->dim, names->redundant,
                                               per_name)
                          : cs_similarity(tokens, T, names->emb, names->n_names, names->dim, per_name);
    if (s == CS_OK) cs_names_to_classes(per_name, T, names, sim);
    cs_free(per_name);
    return s;
}

cs_status input_pixels(const cs_model *m, const cs_input *in, int resolution, float **pixels, int *R,
                              int *W, int *H) {
    *pixels = NULL;
    if (!in || (!in->image == !in->pixels))
        return error_set(CS_ERR_ARG, "an input is an image or normalized pixels (one of them)");
    if (in->width < 0 || in->height < 0 || (!in->width != !in->height))
        return error_set(CS_ERR_ARG, "output size %dx%d is not a size", in->width, in->height);
    cs_status s;
    if (in->image) {
        *R = job_resolution(m, resolution);
        *W = in->width ? in->width : in->image->width;
        *H = in->height ? in->height : in->image->height;
        s = image_pixels(in->image, *R, *R, pixels);
    } else {
        *R = in->pixels_resolution;
        *W = in->width ? in->width : *R;
        *H = in->height ? in->height : *R;
        if (*R <= 0) return error_set(CS_ERR_ARG, "pixels need their resolution (got %d)", *R);
        *pixels = mem_alloc((size_t)3 * *R, (size_t)*R * sizeof(float));
        if (!*pixels) return CS_ERR_NOMEM;
        memcpy(*pixels, in->pixels, sizeof(float) * 3 * (size_t)*R * *R);
        s = CS_OK;
    }
    return s;
}

cs_status encode_inputs(cs_model *m, cs_vision_mode mode, int R, int n, const float *const *pixels,
                        float *const *tokens) {
    if (n == 1) return cs_encode_image(m, pixels[0], R, mode, tokens[0]);
    size_t n_px = (size_t)3 * R * R, n_tok = (size_t)cs_model_num_tokens(m, R) * m->cfg.embed_dim;
    float *px = mem_alloc((size_t)n * n_px, sizeof(float)), *tok = mem_alloc((size_t)n * n_tok, sizeof(float));
    cs_status s = px && tok ? CS_OK : CS_ERR_NOMEM;
    for (int i = 0; s == CS_OK && i < n; i++) memcpy(px + i * n_px, pixels[i], sizeof(float) * n_px);
    if (s == CS_OK) s = cs_encode_images(m, px, n, R, mode, tok);
    for (int i = 0; s == CS_OK && i < n; i++) memcpy(tokens[i], tok + i * n_tok, sizeof(float) * n_tok);
    cs_free(px);
    cs_free(tok);
    return s;
}

cs_explain_options cs_explain_defaults(void) {
    return (cs_explain_options){
        .resolution = 0, .method = CS_METHOD_SURGERY, .redundant = CS_REDUNDANT_AUTO, .no_maps = 0};
}

void cs_explain_result_free(cs_explain_result *r) {
    if (!r) return;
    cs_free(r->pixels);
    cs_free(r->tokens);
    cs_free(r->similarity);
    cs_free(r->maps);
    cs_free(r->redundant_features);
    memset(r, 0, sizeof *r);
}

cs_status job_method(const cs_model *m, cs_method method) {
    if (!cs_method_name(method)) return error_set(CS_ERR_ARG, "unknown method %d", (int)method);
    if (cs_method_defaults_of(method).needs_vit && m->cfg.vision_kind != CS_VISION_VIT)
        return error_set(CS_ERR_UNSUPPORTED, "method %s needs a ViT model (this one is a ResNet)",
                       cs_method_name(method));
    return CS_OK;
}

/* Tokens (already in r) -> similarity -> maps (unless no_maps). */
static cs_status explain_finish(const cs_name_set *names, int surgery, int no_maps, cs_explain_result *r) {
    int T = r->n_tokens, C = r->n_classes;
    r->similarity = mem_alloc((size_t)T, (size_t)C * sizeof(float));
    if (!no_maps) r->maps = mem_alloc((size_t)r->width * r->height, (size_t)C * sizeof(float));
    if (!r->similarity || (!no_maps && !r->maps)) return CS_ERR_NOMEM;
    cs_status s = classes_similarity(names, r->tokens, T, surgery, r->similarity);
    return s == CS_OK && !no_maps ? cs_similarity_maps(r->similarity, T, C, r->height, r->width, r->maps) : s;
}

cs_status cs_explain_maps(const cs_explain_result *r, int first_class, int n_classes, int row0, int n_rows,
                          float *maps) {
    if (!r || !r->similarity) return error_set(CS_ERR_ARG, "explain maps need a result with its similarity");
    return similarity_maps_block(r->similarity, r->n_tokens, r->n_classes, first_class, n_classes, r->height,
                                 r->width, row0, n_rows, maps);
}

/* Encode the run of results first..first+n-1 (all at resolution R) as one pass. */
static cs_status encode_batch(cs_model *m, cs_vision_mode mode, cs_explain_result *out, int n) {
    const float **px = mem_alloc((size_t)n, sizeof *px);
    float **tok = mem_alloc((size_t)n, sizeof *tok);
    cs_status s = px && tok ? CS_OK : CS_ERR_NOMEM;
    for (int i = 0; s == CS_OK && i < n; i++) {
        px[i] = out[i].pixels;
        tok[i] = out[i].tokens;
    }
    if (s == CS_OK) s = encode_inputs(m, mode, out[0].resolution, n, px, tok);
    cs_free(px);
    cs_free(tok);
    return s;
}

cs_status cs_explain(cs_model *m, cs_classes *cl, const cs_input *in, int n, const cs_explain_options *opts,
                     cs_explain_result *out) {
    cs_explain_options o = opts ? *opts : cs_explain_defaults();
    if (n < 1) return error_set(CS_ERR_ARG, "explain needs at least one input");
    memset(out, 0, sizeof *out * (size_t)n);
    int surgery = o.method == CS_METHOD_SURGERY;
    cs_redundancy used = CS_REDUNDANT_AUTO;
    const float *redundant = NULL;
    cs_name_set names;
    cs_status s = job_method(m, o.method);
    if (s == CS_OK) s = cs_classes_embed(cl, m, NULL, NULL);
    if (s == CS_OK && surgery) s = classes_redundancy(cl, m, o.redundant, &used, &redundant);
    if (s == CS_OK) s = classes_name_set(cl, m, redundant, &names);
    int D = m->cfg.embed_dim;
    for (int i = 0; s == CS_OK && i < n; i++) {
        cs_explain_result *r = &out[i];
        s = input_pixels(m, &in[i], o.resolution, &r->pixels, &r->resolution, &r->width, &r->height);
        r->n_tokens = cs_model_num_tokens(m, r->resolution);
        r->dim = D;
        r->n_classes = cs_classes_count(cl);
        r->redundant = used;
        r->tokens = s == CS_OK ? mem_alloc((size_t)r->n_tokens, (size_t)D * sizeof(float)) : NULL;
        if (s == CS_OK && !r->tokens) s = CS_ERR_NOMEM;
        if (s == CS_OK && redundant) {
            r->redundant_features = mem_alloc((size_t)D, sizeof(float));
            if (!r->redundant_features) s = CS_ERR_NOMEM;
            else memcpy(r->redundant_features, redundant, sizeof(float) * (size_t)D);
        }
    }
    /* Runs of inputs at one resolution go through the tower together. */
    cs_vision_mode mode = cs_method_vision_mode(o.method);
    for (int i = 0, j; s == CS_OK && i < n; i = j) {
        for (j = i + 1; j < n && out[j].resolution == out[i].resolution; j++) {}
        s = encode_batch(m, mode, out + i, j - i);
    }
    for (int i = 0; s == CS_OK && i < n; i++) s = explain_finish(&names, surgery, o.no_maps, &out[i]);
    if (s != CS_OK)
        for (int i = 0; i < n; i++) cs_explain_result_free(&out[i]);
    return s;
}

cs_points_options cs_points_defaults(void) {
    return (cs_points_options){.resolution = 0, .threshold = 0.8f, .redundant = CS_REDUNDANT_AUTO, .combined = 0};
}

void cs_points_result_free(cs_points_result *r) {
    if (!r) return;
    cs_free(r->offsets);
    cs_free(r->points);
    cs_free(r->labels);
    memset(r, 0, sizeof *r);
}

/* Every target's points from the per-class similarity [T, C]. */
static cs_status collect_points(const float *sim, int T, int C, const cs_points_options *o, cs_points_result *r) {
    int targets = o->combined ? 1 : C;
    size_t cap = (size_t)T * (C + 1); /* what one target can have at most */
    r->n_targets = targets;
    r->offsets = mem_calloc((size_t)targets + 1, sizeof(int));
    r->points = mem_alloc(cap * targets, 2 * sizeof(int32_t));
    r->labels = mem_alloc(cap * targets, 1);
    if (!r->offsets || !r->points || !r->labels) return CS_ERR_NOMEM;
    cs_status s = CS_OK;
    for (int i = 0; s == CS_OK && i < targets; i++) {
        int off = r->offsets[i], count = 0;
        s = o->combined ? cs_combined_points(sim, T, C, r->width, r->height, o->threshold, r->points + 2 * off,
                                             r->labels + off, &count)
                        : cs_similarity_points(sim, T, C, i, r->width, r->height, o->threshold, r->points + 2 * off,
                                               r->labels + off, &count);
        r->offsets[i + 1] = off + count;
    }
    return s;
}

cs_status cs_points(cs_model *m, cs_classes *cl, const cs_input *in, const cs_points_options *opts,
                    cs_points_result *out) {
    cs_points_options o = opts ? *opts : cs_points_defaults();
    memset(out, 0, sizeof *out);
    if (!(o.threshold >= 0.0f && o.threshold <= 1.0f))
        return error_set(CS_ERR_ARG, "the points threshold %g is not in [0, 1]", o.threshold);
    if (o.combined && o.redundant == CS_REDUNDANT_CLASSES)
        return error_set(CS_ERR_ARG, "combined targets use the empty prompt's redundant features, not "
                       "class-weighted redundancy");
    cs_redundancy used = o.redundant; /* reported even when embedding fails */
    const float *redundant = NULL;
    cs_name_set names;
    float *pixels = NULL, *tokens = NULL, *sim = NULL;
    int R = 0, T = 0;
    cs_status s = cs_classes_embed(cl, m, NULL, NULL);
    if (s == CS_OK) s = classes_redundancy(cl, m, o.combined ? CS_REDUNDANT_EMPTY : o.redundant, &used, &redundant);
    if (s == CS_OK) s = classes_name_set(cl, m, redundant, &names);
    if (s == CS_OK) s = input_pixels(m, in, o.resolution, &pixels, &R, &out->width, &out->height);
    if (s == CS_OK) {
        T = cs_model_num_tokens(m, R);
        tokens = mem_alloc((size_t)T, (size_t)names.dim * sizeof(float));
        sim = mem_alloc((size_t)T, (size_t)cs_classes_count(cl) * sizeof(float));
        if (!tokens || !sim) s = CS_ERR_NOMEM;
    }
    /* The reference takes points from the surgery path's similarity. */
    if (s == CS_OK) s = cs_encode_image(m, pixels, R, CS_VISION_SURGERY, tokens);
    if (s == CS_OK) s = classes_similarity(&names, tokens, T, 1, sim);
    out->redundant = used;
    if (s == CS_OK) s = collect_points(sim, T, cs_classes_count(cl), &o, out);
    cs_free(pixels);
    cs_free(tokens);
    cs_free(sim);
    if (s != CS_OK) cs_points_result_free(out);
    return s;
}
