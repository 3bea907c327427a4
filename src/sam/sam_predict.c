/* SamPredictor: set_image (resize the longest side, normalize, pad, encode)
 * and predict (prompts into the model frame, decode, post-process). */
#include <math.h>
#include <string.h>
#include "ops/ops.h"
#include "ops/resize_pillow.h"
#include "sam.h"

/* Sam.pixel_mean / pixel_std, as float32 buffers. */
static const float k_mean[3] = {123.675f, 116.28f, 103.53f};
static const float k_std[3] = {58.395f, 57.12f, 57.375f};

/* ResizeLongestSide.get_preprocess_shape, in double as Python computes it. */
void sam_preprocess_shape(int h, int w, int S, int *new_h, int *new_w) {
    double scale = S * 1.0 / (h > w ? h : w);
    *new_h = (int)(h * scale + 0.5);
    *new_w = (int)(w * scale + 0.5);
}

void sam_normalize_pad(const cs_image *img, int S, float *pixels) {
    size_t plane = (size_t)S * S;
    memset(pixels, 0, sizeof(float) * 3 * plane);
    for (int c = 0; c < 3; c++) {
        float table[256];
        for (int v = 0; v < 256; v++) table[v] = ((float)v - k_mean[c]) / k_std[c];
        for (int y = 0; y < img->height; y++)
            for (int x = 0; x < img->width; x++)
                pixels[c * plane + (size_t)y * S + x] = table[img->rgb[((size_t)y * img->width + x) * 3 + c]];
    }
}

void sam_apply_coords(const float *xy, int n, int h, int w, int new_h, int new_w, float *out) {
    for (int i = 0; i < n; i++) {
        out[2 * i] = (float)(xy[2 * i] * ((double)new_w / w));
        out[2 * i + 1] = (float)(xy[2 * i + 1] * ((double)new_h / h));
    }
}

cs_status cs_sam_encode(cs_sam *m, const cs_image *img, cs_sam_embedding *out) {
    memset(out, 0, sizeof *out);
    if (!img || !img->rgb || img->width < 1 || img->height < 1)
        return error_set(CS_ERR_ARG, "SAM: empty image");
    const cs_sam_config *c = &m->cfg;
    int S = c->image_size, nh, nw;
    sam_preprocess_shape(img->height, img->width, S, &nh, &nw);
    if (nh < 1 || nw < 1)
        return error_set(CS_ERR_ARG, "SAM: a %dx%d image is too thin to resize to %d", img->width,
                       img->height, S);
    cs_image small = {.width = nw, .height = nh, .rgb = mem_alloc((size_t)nw * nh, 3)};
    float *pixels = mem_alloc((size_t)3 * S * S, sizeof(float));
    out->data = mem_alloc((size_t)c->embed_dim * c->grid * c->grid, sizeof(float));
    cs_status s = small.rgb && pixels && out->data ? CS_OK : CS_ERR_NOMEM;
    if (s == CS_OK)
        s = op_resize_pillow_u8(img->rgb, img->width, img->height, 3, small.rgb, nw, nh,
                                OP_RESAMPLE_BILINEAR);
    if (s == CS_OK) {
        sam_normalize_pad(&small, S, pixels);
        if (m->trace) m->trace(m->trace_ctx, "pre", pixels, (size_t)3 * S * S);
        s = sam_image_encoder(m, pixels, out->data);
    }
    cs_free(small.rgb);
    cs_free(pixels);
    if (s != CS_OK) {
        cs_sam_embedding_free(out);
        return s;
    }
    out->dim = c->embed_dim;
    out->grid = c->grid;
    out->image_w = img->width;
    out->image_h = img->height;
    out->input_w = nw;
    out->input_h = nh;
    return CS_OK;
}

void cs_sam_embedding_free(cs_sam_embedding *e) {
    if (!e) return;
    cs_free(e->data);
    memset(e, 0, sizeof *e);
}

#define EMB_HEADER 6

size_t cs_sam_embedding_bytes(const cs_sam_embedding *e) {
    return sizeof(int32_t) * EMB_HEADER + sizeof(float) * (size_t)e->dim * e->grid * e->grid;
}

void cs_sam_embedding_to_bytes(const cs_sam_embedding *e, void *buf) {
    int32_t h[EMB_HEADER] = {e->dim, e->grid, e->image_w, e->image_h, e->input_w, e->input_h};
    memcpy(buf, h, sizeof h);
    memcpy((char *)buf + sizeof h, e->data, sizeof(float) * (size_t)e->dim * e->grid * e->grid);
}

cs_status cs_sam_embedding_from_bytes(const cs_sam *m, const void *buf, size_t len,
                                      cs_sam_embedding *out) {
    memset(out, 0, sizeof *out);
    int32_t h[EMB_HEADER];
    const cs_sam_config *c = &m->cfg;
    if (len < sizeof h) return error_set(CS_ERR_FORMAT, "SAM embedding: %zu bytes, too short", len);
    memcpy(h, buf, sizeof h);
    int nh, nw;
    sam_preprocess_shape(h[3] > 0 ? h[3] : 1, h[2] > 0 ? h[2] : 1, c->image_size, &nh, &nw);
    size_t n = (size_t)c->embed_dim * c->grid * c->grid;
    if (h[0] != c->embed_dim || h[1] != c->grid || h[2] < 1 || h[3] < 1 || h[4] != nw ||
        h[5] != nh || len != sizeof h + n * sizeof(float))
        return error_set(CS_ERR_FORMAT, "SAM embedding: header or size does not fit this model");
    out->data = mem_alloc(n, sizeof(float));
    if (!out->data) return CS_ERR_NOMEM;
    memcpy(out->data, (const char *)buf + sizeof h, n * sizeof(float));
    out->dim = h[0];
    out->grid = h[1];
    out->image_w = h[2];
    out->image_h = h[3];
    out->input_w = h[4];
    out->input_h = h[5];
    return CS_OK;
}

cs_status sam_check_prompt(int W, int H, int grid, const cs_sam_prompt *p) {
    if (p->n_points < 0 || (p->n_points > 0 && (!p->points || !p->labels)) || p->n_points > 4096)
        return error_set(CS_ERR_ARG, "SAM prompt: bad point list (%d points)", p->n_points);
    if (p->n_points == 0 && !p->box && !p->mask_input)
        return error_set(CS_ERR_ARG, "SAM prompt: no points, box or mask input");
    for (int i = 0; i < p->n_points; i++) {
        float x = p->points[2 * i], y = p->points[2 * i + 1];
        if (!(x >= 0 && x <= W && y >= 0 && y <= H))
            return error_set(CS_ERR_ARG, "SAM prompt: point %d (%g, %g) is outside the %dx%d image",
                           i + 1, x, y, W, H);
        if (p->labels[i] != 0 && p->labels[i] != 1)
            return error_set(CS_ERR_ARG, "SAM prompt: point %d has label %d (1 foreground, 0 background)",
                           i + 1, p->labels[i]);
    }
    if (p->box) {
        const float *b = p->box;
        for (int i = 0; i < 4; i++)
            if (!(b[i] >= 0 && b[i] <= (i % 2 ? H : W)))
                return error_set(CS_ERR_ARG, "SAM prompt: box (%g, %g, %g, %g) is outside the %dx%d image",
                               b[0], b[1], b[2], b[3], W, H);
        if (b[2] < b[0] || b[3] < b[1])
            return error_set(CS_ERR_ARG, "SAM prompt: box (%g, %g, %g, %g) has x1 < x0 or y1 < y0",
                           b[0], b[1], b[2], b[3]);
    }
    if (p->mask_input)
        for (size_t i = 0; i < (size_t)16 * grid * grid; i++)
            if (!isfinite(p->mask_input[i]))
                return error_set(CS_ERR_ARG, "SAM prompt: the mask input holds a NaN or infinity");
    return CS_OK;
}

/* postprocess_masks: low-res [L, L] -> bilinear to S x S -> crop to the
 * resized image -> bilinear to H x W (align_corners False, no antialias).
 * Only the crop of the S x S resize is computed. When the crop already has
 * the image's size the second resize is the identity (every tap weight is
 * 1 or 0), so the crop is written straight to out. */
static cs_status postprocess(cs_sam *m, const cs_sam_embedding *e, const float *low, float *out) {
    int L = 4 * e->grid, nh = e->input_h, nw = e->input_w, S = m->cfg.image_size;
    if (nh == e->image_h && nw == e->image_w) {
        op_resize_bilinear_window(low, L, L, 1, out, S, S, 0, nh, 0, nw);
        return CS_OK;
    }
    float *crop = ws_take(&m->ws, (size_t)nh * nw, sizeof(float));
    if (crop) {
        op_resize_bilinear_window(low, L, L, 1, crop, S, S, 0, nh, 0, nw);
        op_resize_bilinear(crop, nh, nw, 1, out, e->image_h, e->image_w);
    }
    ws_release(&m->ws);
    return crop ? CS_OK : CS_ERR_NOMEM;
}

cs_status cs_sam_predict(cs_sam *m, const cs_sam_embedding *e, const cs_sam_prompt *p,
                         cs_sam_result *out) {
    memset(out, 0, sizeof *out);
    const cs_sam_config *c = &m->cfg;
    if (!e || !e->data || e->dim != c->embed_dim || e->grid != c->grid || e->image_w < 1 || e->image_h < 1 ||
        e->input_w < 1 || e->input_h < 1 || e->input_w > c->image_size || e->input_h > c->image_size)
        return error_set(CS_ERR_ARG, "SAM: the embedding does not come from this model");
    cs_status s = sam_check_prompt(e->image_w, e->image_h, e->grid, p);
    if (s != CS_OK) return s;
    int T = c->n_mask_tokens, L = 4 * c->grid, C = p->multimask ? T - 1 : 1, first = p->multimask ? 1 : 0;
    size_t LL = (size_t)L * L, HW = (size_t)e->image_w * e->image_h;
    float *coords = mem_alloc((size_t)p->n_points + 2, 2 * sizeof(float)), box[4];
    float *masks = mem_alloc((size_t)T, LL * sizeof(float)), iou[16];
    out->masks = mem_alloc_result((size_t)C, HW);
    out->logits = mem_alloc_result((size_t)C * HW, sizeof(float));
    out->iou = mem_alloc_result((size_t)C, sizeof(float));
    out->lowres_logits = mem_alloc_result((size_t)C * LL, sizeof(float));
    s = coords && masks && out->masks && out->logits && out->iou && out->lowres_logits ? CS_OK : CS_ERR_NOMEM;
    if (s == CS_OK) {
        sam_apply_coords(p->points, p->n_points, e->image_h, e->image_w, e->input_h, e->input_w, coords);
        if (p->box) sam_apply_coords(p->box, 2, e->image_h, e->image_w, e->input_h, e->input_w, box);
        sam_prompt_frame f = {p->n_points, coords, p->labels, p->box ? box : NULL, p->mask_input};
        s = sam_decode(m, e->data, &f, masks, iou);
    }
    for (int k = 0; s == CS_OK && k < C; k++) {
        memcpy(out->lowres_logits + k * LL, masks + (first + k) * LL, LL * sizeof(float));
        out->iou[k] = iou[first + k];
        s = postprocess(m, e, masks + (first + k) * LL, out->logits + k * HW);
    }
    if (s == CS_OK) {
        const float *logits = out->logits;
        uint8_t *mask = out->masks;
#pragma omp parallel for simd schedule(static) if (C * HW > 65536)
        for (size_t i = 0; i < C * HW; i++) mask[i] = logits[i] > 0.0f;
    }
    cs_free(coords);
    cs_free(masks);
    if (s != CS_OK) {
        cs_sam_result_free(out);
        return s;
    }
    out->n_masks = C;
    out->width = e->image_w;
    out->height = e->image_h;
    out->lowres = L;
    return CS_OK;
}

void cs_sam_result_free(cs_sam_result *r) {
    if (!r) return;
    cs_free(r->masks);
    cs_free(r->logits);
    cs_free(r->iou);
    cs_free(r->lowres_logits);
    memset(r, 0, sizeof *r);
}

int cs_sam_best_mask(const cs_sam_result *r) {
    int best = 0;
    for (int k = 1; k < r->n_masks; k++)
        if (r->iou[k] > r->iou[best]) best = k;
    return best;
}
