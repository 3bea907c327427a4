/* Layer 2: Pillow's resampling (bicubic on 8-bit and 32-bit integer
 * images, bilinear on 8-bit ones, nearest for palettes), bit for bit.
 *
 * This is what torchvision's Resize(BICUBIC) does to a PIL image, so the
 * pixels CLIP sees match the reference exactly: a separable convolution with
 * the a = -0.5 cubic kernel whose support grows with the downscale factor
 * (antialiasing), coefficients normalized per output pixel and turned into
 * 22-bit fixed point, a horizontal pass then a vertical one, each rounded and
 * clipped to 8 bits. */
#ifndef CS_RESIZE_PILLOW_H
#define CS_RESIZE_PILLOW_H

#include <stdint.h>
#include "clip_surgery.h"

/* Pillow's filters for the 8-bit resampler: BICUBIC (a = -0.5 cubic,
 * support 2; CLIP's preprocessing) and BILINEAR (the triangle, support 1;
 * what SAM's ResizeLongestSide gets from torchvision). Both antialias when
 * shrinking: the support scales with the downscale factor. */
typedef enum op_resample { OP_RESAMPLE_BICUBIC = 0, OP_RESAMPLE_BILINEAR = 1 } op_resample;

cs_status op_resize_pillow_u8(const uint8_t *src, int in_w, int in_h, int channels, uint8_t *dst,
                              int out_w, int out_h, op_resample filter);

/* The bicubic filter. src: [in_h, in_w, channels] interleaved 8-bit; dst: [out_h, out_w,
 * channels]. channels 1 to 4; every size at least 1. Returns CS_ERR_ARG for
 * bad sizes, CS_ERR_NOMEM when scratch memory cannot be had. */
cs_status op_resize_bicubic_u8(const uint8_t *src, int in_w, int in_h, int channels,
                               uint8_t *dst, int out_w, int out_h);

/* The same filter on 32-bit integer samples (PIL mode "I", one channel):
 * double weights, each pass rounded half away from zero, never clipped. */
cs_status op_resize_bicubic_i32(const int32_t *src, int in_w, int in_h, int32_t *dst, int out_w,
                                int out_h);

/* Pillow's nearest-neighbour resize of one 8-bit channel, what it uses for
 * palette and 1-bit images whatever filter is asked: output (x, y) reads
 * source (floor((x + 0.5) * in_w / out_w), likewise y), the positions
 * accumulated step by step in double as Pillow does. */
cs_status op_resize_nearest_u8(const uint8_t *src, int in_w, int in_h, uint8_t *dst, int out_w,
                               int out_h);

#endif
