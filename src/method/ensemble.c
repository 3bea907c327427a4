/* Prompt ensemble (the reference's encode_text_with_prompt_ensemble): per
 * class, every template filled with the name, each prompt's feature
 * normalized, averaged, renormalized. Prompts run through the text tower in
 * chunks of whole classes, packed without padding. */
#include <string.h>
#include "method.h"
#include "text/tokenizer.h"
#include "ops/ops.h"

/* Prompts per text-tower call: bounds the packed batch's memory. */
#define ENSEMBLE_CHUNK_PROMPTS 1024

/* "{}" in the template becomes the class name; "{{" and "}}" are literal
 * braces, as in Python's str.format. Returns a mem_alloc'ed string. */
static char *fill_template(const char *tmpl, const char *name) {
    size_t nl = strlen(name), n = 1;
    for (const char *p = tmpl; *p; p++) n += (p[0] == '{' && p[1] == '}') ? nl : 1;
    char *out = mem_alloc(n, 1), *o = out;
    if (!out) return NULL;
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '{' && p[1] == '}') {
            memcpy(o, name, nl);
            o += nl;
            p++;
        } else if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            *o++ = *p++;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return out;
}

cs_status ensemble_prompt_ids(cs_tokenizer *tok, const char *name, const char *const *templates,
                              int n_templates, int context, int32_t *ids) {
    int per = n_templates ? n_templates : 1;
    /* Checked here, so an error points into the user's text, not into a
     * prompt the user never wrote. */
    size_t nl = strlen(name), valid = utf8_valid_prefix((const uint8_t *)name, nl);
    if (valid != nl)
        return error_set(CS_ERR_UTF8, "class name: invalid UTF-8 at byte %zu (after '%.*s')", valid,
                       (int)(valid < 64 ? valid : 64), name);
    for (int k = 0; k < per; k++) {
        char *text = n_templates ? fill_template(templates[k], name) : mem_strdup(name);
        if (!text) return CS_ERR_NOMEM;
        /* As the reference's clip.tokenize: a prompt too long is an error. */
        cs_status s = cs_tokenize_batch(tok, (const char *const *)&text, 1, context, 0,
                                        ids + (size_t)k * context);
        if (s != CS_OK) error_prefix("class '%.40s%s'", name, strlen(name) > 40 ? "..." : "");
        cs_free(text);
        if (s != CS_OK) return s;
    }
    return CS_OK;
}

/* Tokenize and encode the prompts of classes [c0, c0 + nc); out rows
 * [nc, D] get the ensembled, normalized embeddings. */
static cs_status encode_chunk(cs_model *m, cs_tokenizer *tok, const char *const *classes, int c0,
                              int nc, const char *const *templates, int nt, int32_t *ids,
                              float *feat, float *out) {
    const cs_config *cfg = cs_model_config(m);
    int L = cfg->context_length, D = cfg->embed_dim, per = nt ? nt : 1;
    for (int c = 0; c < nc; c++) {
        cs_status s = ensemble_prompt_ids(tok, classes[c0 + c], templates, nt, L, ids + (size_t)c * per * L);
        if (s != CS_OK) return s;
    }
    cs_status s = cs_encode_text(m, ids, nc * per, L, feat);
    if (s != CS_OK) return s;
    op_l2_normalize_rows(feat, nc * per, D);
    for (int c = 0; c < nc; c++) {
        float *o = out + (size_t)c * D;
        memset(o, 0, (size_t)D * sizeof *o);
        for (int k = 0; k < per; k++) op_add(o, feat + ((size_t)c * per + k) * D, (size_t)D);
        for (int d = 0; d < D; d++) o[d] /= (float)per;
    }
    op_l2_normalize_rows(out, nc, D);
    return CS_OK;
}

cs_status cs_class_embeddings(cs_model *m, cs_tokenizer *tok, const char *const *classes,
                              int n_classes, const char *const *templates, int n_templates,
                              float *out) {
    if (n_classes <= 0 || n_templates < 0 || (n_templates && !templates))
        return error_set(CS_ERR_ARG, "class embeddings need classes (got %d) and templates (got %d)",
                       n_classes, n_templates);
    const cs_config *cfg = cs_model_config(m);
    int per = n_templates ? n_templates : 1;
    int chunk = ENSEMBLE_CHUNK_PROMPTS / per > 0 ? ENSEMBLE_CHUNK_PROMPTS / per : 1;
    if (chunk > n_classes) chunk = n_classes;
    int32_t *ids = mem_alloc((size_t)chunk * per * cfg->context_length, sizeof(int32_t));
    float *feat = mem_alloc((size_t)chunk * per * cfg->embed_dim, sizeof(float));
    cs_status s = ids && feat ? CS_OK : CS_ERR_NOMEM;
    for (int c0 = 0; s == CS_OK && c0 < n_classes; c0 += chunk) {
        int nc = n_classes - c0 < chunk ? n_classes - c0 : chunk;
        s = encode_chunk(m, tok, classes, c0, nc, templates, n_templates, ids, feat,
                         out + (size_t)c0 * cfg->embed_dim);
    }
    cs_free(ids);
    cs_free(feat);
    return s;
}
