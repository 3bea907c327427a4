#include "resize_pillow.h"

#include <math.h>
#include <string.h>
#include "../base/base.h"

/* No fused multiply-add here: Pillow's x86-64 builds evaluate the cubic and
 * the sample positions with separate multiplies and adds, and a fused
 * evaluation rounds differently. (For inputs up to 3000 samples and outputs
 * of 64 to 512 the fixed-point weights came out equal either way, but only
 * the same operations guarantee the same weights everywhere.) */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Fixed-point weights: 32 bits = 8 for the pixel value, 2 of headroom (the
 * cubic's negative lobes let partial sums exceed 255 or drop below 0), 22 of
 * fraction. */
#define WEIGHT_BITS 22

/* The weights that map one image axis of in_size samples to out_size. Output
 * sample i reads inputs first[i] .. first[i] + count[i] - 1 with weights
 * weights[i * taps ...]. */
typedef struct axis_filter {
    int taps;
    int *first;
    int *count;
    int32_t *weights; /* fixed point, for 8-bit images */
    double *dweights; /* the normalized doubles, for 32-bit images */
} axis_filter;

/* Keys' cubic convolution kernel with a = -0.5 (Pillow's BICUBIC). The
 * expressions keep Pillow's operation order so the doubles round alike. */
static double cubic_kernel(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* Round half away from zero into fixed point, as Pillow's 8-bit path does. */
static int32_t weight_to_fixed(double w) {
    double scaled = w * (double)(1 << WEIGHT_BITS);
    return (int32_t)(w < 0.0 ? scaled - 0.5 : scaled + 0.5);
}

/* The triangle (tent) kernel of Pillow's BILINEAR filter. */
static double triangle_kernel(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* A Pillow filter: its kernel and its support at scale 1. */
typedef struct pillow_filter {
    double (*kernel)(double);
    double support;
} pillow_filter;

static const pillow_filter k_filters[] = {
    [OP_RESAMPLE_BICUBIC] = {cubic_kernel, 2.0},
    [OP_RESAMPLE_BILINEAR] = {triangle_kernel, 1.0},
};

/* Pillow truncates (int) casts of these bounds; clamping in double first
 * gives the same integers and cannot overflow for huge axes. */
static int clamped_bound(double v, int hi) {
    if (v < 0.0) return 0;
    if (v > (double)hi) return hi;
    return (int)v;
}

static void axis_filter_free(axis_filter *f) {
    cs_free(f->first);
    cs_free(f->count);
    cs_free(f->weights);
    cs_free(f->dweights);
    memset(f, 0, sizeof *f);
}

/* Normalize the double weights of one output sample to sum 1, then convert
 * them: Pillow normalizes in double and rounds each weight on its own, so
 * the fixed-point weights need not sum to exactly 1 << WEIGHT_BITS. */
static void store_sample_weights(double *w, int count, int32_t *out, double *dout, int taps) {
    double sum = 0.0;
    for (int j = 0; j < count; j++) sum += w[j];
    for (int j = 0; j < count; j++) {
        if (sum != 0.0) w[j] /= sum;
        out[j] = weight_to_fixed(w[j]);
        dout[j] = w[j];
    }
    for (int j = count; j < taps; j++) out[j] = 0, dout[j] = 0.0;
}

static cs_status axis_filter_build(int in_size, int out_size, const pillow_filter *pf,
                                   axis_filter *f) {
    memset(f, 0, sizeof *f);
    /* Pillow receives the source box as floats: keep that rounding for axes
     * longer than 2^24. */
    double scale = (double)(float)in_size / out_size;
    double filter_scale = scale < 1.0 ? 1.0 : scale;
    double support = pf->support * filter_scale;
    double taps_d = ceil(support) * 2.0 + 1.0;
    /* No sample reads more inputs than the axis has. */
    f->taps = taps_d < (double)in_size ? (int)taps_d : in_size;
    f->first = mem_alloc((size_t)out_size, sizeof(int));
    f->count = mem_alloc((size_t)out_size, sizeof(int));
    f->weights = mem_alloc((size_t)out_size * (size_t)f->taps, sizeof(int32_t));
    f->dweights = mem_alloc((size_t)out_size * (size_t)f->taps, sizeof(double));
    double *w = mem_alloc((size_t)f->taps, sizeof(double));
    if (!f->first || !f->count || !f->weights || !f->dweights || !w) {
        cs_free(w);
        axis_filter_free(f);
        return CS_ERR_NOMEM;
    }
    double inv_filter_scale = 1.0 / filter_scale;
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale;
        int lo = clamped_bound(center - support + 0.5, in_size);
        int hi = clamped_bound(center + support + 0.5, in_size);
        int count = hi - lo;
        for (int j = 0; j < count; j++)
            w[j] = pf->kernel(((double)(j + lo) - center + 0.5) * inv_filter_scale);
        store_sample_weights(w, count, f->weights + (size_t)i * f->taps,
                             f->dweights + (size_t)i * f->taps, f->taps);
        f->first[i] = lo;
        f->count[i] = count;
    }
    cs_free(w);
    return CS_OK;
}

/* A fixed-point sum back to 8 bits: floor, then clip to 0..255. */
static uint8_t fixed_to_u8(int32_t acc) {
    if (acc < 0) return 0;
    int32_t v = acc >> WEIGHT_BITS;
    return (uint8_t)(v > 255 ? 255 : v);
}

/* One row of the horizontal pass. Inlined with a constant channel count,
 * the channel loop unrolls. */
static inline void resample_row(const uint8_t *in_row, int channels, const axis_filter *f,
                                uint8_t *out_row, int out_w) {
    for (int x = 0; x < out_w; x++) {
        const int32_t *w = f->weights + (size_t)x * f->taps;
        const uint8_t *in = in_row + (size_t)f->first[x] * channels;
        int32_t acc[4];
        for (int c = 0; c < channels; c++) acc[c] = 1 << (WEIGHT_BITS - 1);
        for (int j = 0; j < f->count[x]; j++)
            for (int c = 0; c < channels; c++) acc[c] += in[j * channels + c] * w[j];
        for (int c = 0; c < channels; c++) out_row[x * channels + c] = fixed_to_u8(acc[c]);
    }
}

/* Horizontal pass over source rows row_begin .. row_end - 1 (the rows the
 * vertical pass will read); dst row r holds source row row_begin + r. */
static void resample_rows_u8(const void *src_, int in_w, int channels, int row_begin,
                             int row_end, const axis_filter *f, void *dst_, int out_w) {
    const uint8_t *src = src_;
    uint8_t *dst = dst_;
#pragma omp parallel for schedule(static)
    for (int r = row_begin; r < row_end; r++) {
        const uint8_t *in_row = src + (size_t)r * in_w * channels;
        uint8_t *out_row = dst + (size_t)(r - row_begin) * out_w * channels;
        if (channels == 3)
            resample_row(in_row, 3, f, out_row, out_w);
        else if (channels == 4)
            resample_row(in_row, 4, f, out_row, out_w);
        else
            resample_row(in_row, channels, f, out_row, out_w);
    }
}

/* Vertical pass: src rows are numbered from row_offset (the first row the
 * horizontal pass produced), so output row y reads src rows
 * first[y] - row_offset onwards. Sums run a chunk of the row at a time,
 * input row by input row, so the inner loop is contiguous. */
static void resample_columns_u8(const void *src_, int width, int channels, int row_offset,
                                const axis_filter *f, void *dst_, int out_h) {
    enum { CHUNK = 1024 };
    const uint8_t *src = src_;
    uint8_t *dst = dst_;
    size_t stride = (size_t)width * channels;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < out_h; y++) {
        const int32_t *w = f->weights + (size_t)y * f->taps;
        const uint8_t *in = src + (size_t)(f->first[y] - row_offset) * stride;
        uint8_t *out_row = dst + (size_t)y * stride;
        int32_t acc[CHUNK];
        for (size_t i0 = 0; i0 < stride; i0 += CHUNK) {
            size_t n = stride - i0 < CHUNK ? stride - i0 : CHUNK;
            for (size_t i = 0; i < n; i++) acc[i] = 1 << (WEIGHT_BITS - 1);
            for (int j = 0; j < f->count[y]; j++) {
                const uint8_t *row = in + j * stride + i0;
                for (size_t i = 0; i < n; i++) acc[i] += row[i] * w[j];
            }
            for (size_t i = 0; i < n; i++) out_row[i0 + i] = fixed_to_u8(acc[i]);
        }
    }
}

/* Pillow's rounding of a 32-bit sum (ROUND_UP in Resample.c): half away
 * from zero. Sums of 16-bit samples are far inside the int range. */
static int32_t round_sum(double ss) { return (int32_t)(ss >= 0.0 ? ss + 0.5 : ss - 0.5); }

/* The 32-bit integer passes (mode "I"): double weights, each pass summed in
 * Pillow's order and rounded to an integer, nothing clipped. One channel. */
static void resample_rows_i32(const void *src_, int in_w, int channels, int row_begin,
                              int row_end, const axis_filter *f, void *dst_, int out_w) {
    const int32_t *src = src_;
    int32_t *dst = dst_;
    (void)channels;
#pragma omp parallel for schedule(static)
    for (int r = row_begin; r < row_end; r++) {
        const int32_t *in_row = src + (size_t)r * in_w;
        int32_t *out_row = dst + (size_t)(r - row_begin) * out_w;
        for (int x = 0; x < out_w; x++) {
            const double *w = f->dweights + (size_t)x * f->taps;
            const int32_t *in = in_row + f->first[x];
            double ss = 0.0;
            for (int j = 0; j < f->count[x]; j++) ss += in[j] * w[j];
            out_row[x] = round_sum(ss);
        }
    }
}

static void resample_columns_i32(const void *src_, int width, int channels, int row_offset,
                                 const axis_filter *f, void *dst_, int out_h) {
    const int32_t *src = src_;
    int32_t *dst = dst_;
    (void)channels;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < out_h; y++) {
        const double *w = f->dweights + (size_t)y * f->taps;
        const int32_t *in = src + (size_t)(f->first[y] - row_offset) * width;
        for (int x = 0; x < width; x++) {
            double ss = 0.0;
            for (int j = 0; j < f->count[y]; j++) ss += in[(size_t)j * width + x] * w[j];
            dst[(size_t)y * width + x] = round_sum(ss);
        }
    }
}

/* The two passes of one sample type. */
typedef struct resampler {
    size_t sample_bytes;
    void (*rows)(const void *src, int in_w, int channels, int row_begin, int row_end,
                 const axis_filter *f, void *dst, int out_w);
    void (*columns)(const void *src, int width, int channels, int row_offset,
                    const axis_filter *f, void *dst, int out_h);
} resampler;

static const resampler k_u8 = {1, resample_rows_u8, resample_columns_u8};
static const resampler k_i32 = {4, resample_rows_i32, resample_columns_i32};

/* Both passes. Like Pillow, the horizontal pass runs only over the source
 * rows some output row reads. */
static cs_status resample_both_axes(const resampler *rs, const pillow_filter *pf, const void *src,
                                    int in_w, int in_h, int channels, void *dst, int out_w, int out_h) {
    axis_filter fx, fy;
    cs_status s = axis_filter_build(in_w, out_w, pf, &fx);
    if (s != CS_OK) return s;
    s = axis_filter_build(in_h, out_h, pf, &fy);
    if (s != CS_OK) {
        axis_filter_free(&fx);
        return s;
    }
    int row_begin = fy.first[0];
    int row_end = fy.first[out_h - 1] + fy.count[out_h - 1];
    void *tmp = mem_alloc((size_t)(row_end - row_begin) * out_w, (size_t)channels * rs->sample_bytes);
    if (tmp) {
        rs->rows(src, in_w, channels, row_begin, row_end, &fx, tmp, out_w);
        rs->columns(tmp, out_w, channels, row_begin, &fy, dst, out_h);
    } else {
        s = CS_ERR_NOMEM;
    }
    cs_free(tmp);
    axis_filter_free(&fx);
    axis_filter_free(&fy);
    return s;
}

static cs_status resample(const resampler *rs, op_resample filter, const void *src, int in_w, int in_h,
                          int channels, void *dst, int out_w, int out_h) {
    if ((unsigned)filter >= sizeof k_filters / sizeof *k_filters)
        return error_set(CS_ERR_ARG, "resize: unknown filter %d", (int)filter);
    const pillow_filter *pf = &k_filters[filter];
    if (in_w < 1 || in_h < 1 || out_w < 1 || out_h < 1 || channels < 1 || channels > 4)
        return error_set(CS_ERR_ARG, "resize: bad sizes %dx%d -> %dx%d with %d channels", in_w,
                       in_h, out_w, out_h, channels);
    /* Like Pillow, skip the pass of an axis that keeps its size: at scale 1
     * both kernels weigh the sample itself 1 and its neighbours 0. */
    int need_x = out_w != in_w, need_y = out_h != in_h;
    if (need_x && need_y)
        return resample_both_axes(rs, pf, src, in_w, in_h, channels, dst, out_w, out_h);
    if (!need_x && !need_y) {
        memcpy(dst, src, (size_t)in_w * in_h * channels * rs->sample_bytes);
        return CS_OK;
    }
    axis_filter f;
    cs_status s = axis_filter_build(need_x ? in_w : in_h, need_x ? out_w : out_h, pf, &f);
    if (s != CS_OK) return s;
    if (need_x)
        rs->rows(src, in_w, channels, 0, in_h, &f, dst, out_w);
    else
        rs->columns(src, in_w, channels, 0, &f, dst, out_h);
    axis_filter_free(&f);
    return CS_OK;
}

cs_status op_resize_bicubic_u8(const uint8_t *src, int in_w, int in_h, int channels,
                               uint8_t *dst, int out_w, int out_h) {
    return resample(&k_u8, OP_RESAMPLE_BICUBIC, src, in_w, in_h, channels, dst, out_w, out_h);
}

cs_status op_resize_pillow_u8(const uint8_t *src, int in_w, int in_h, int channels, uint8_t *dst,
                              int out_w, int out_h, op_resample filter) {
    return resample(&k_u8, filter, src, in_w, in_h, channels, dst, out_w, out_h);
}

cs_status op_resize_bicubic_i32(const int32_t *src, int in_w, int in_h, int32_t *dst, int out_w,
                                int out_h) {
    return resample(&k_i32, OP_RESAMPLE_BICUBIC, src, in_w, in_h, 1, dst, out_w, out_h);
}

/* Pillow's nearest neighbour (ImagingScaleAffine): the source position of
 * output sample i is the running sum scale/2 + scale + ... (added up in
 * double, so its rounding is Pillow's), truncated. Returns the table of
 * source indices, or NULL when memory runs out. */
static int *nearest_table(int in_size, int out_size) {
    int *t = mem_alloc((size_t)out_size, sizeof(int));
    if (!t) return NULL;
    /* Pillow computes the scale from the float source box. */
    double scale = (double)(float)in_size / out_size;
    double pos = scale * 0.5;
    for (int i = 0; i < out_size; i++) {
        /* The sum stays below in_size by half a step; clamp all the same. */
        int v = (int)pos;
        t[i] = v < in_size ? v : in_size - 1;
        pos += scale;
    }
    return t;
}

cs_status op_resize_nearest_u8(const uint8_t *src, int in_w, int in_h, uint8_t *dst, int out_w,
                               int out_h) {
    if (in_w < 1 || in_h < 1 || out_w < 1 || out_h < 1)
        return error_set(CS_ERR_ARG, "resize: bad sizes %dx%d -> %dx%d", in_w, in_h, out_w, out_h);
    int *xs = nearest_table(in_w, out_w), *ys = nearest_table(in_h, out_h);
    cs_status s = xs && ys ? CS_OK : CS_ERR_NOMEM;
    for (int y = 0; s == CS_OK && y < out_h; y++) {
        const uint8_t *in = src + (size_t)ys[y] * in_w;
        uint8_t *out = dst + (size_t)y * out_w;
        for (int x = 0; x < out_w; x++) out[x] = in[xs[x]];
    }
    cs_free(xs);
    cs_free(ys);
    return s;
}
