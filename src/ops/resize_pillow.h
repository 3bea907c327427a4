/* Layer 2: Pillow's bicubic resampling of 8-bit images, bit for bit.
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

/* src: [in_h, in_w, channels] interleaved 8-bit; dst: [out_h, out_w,
 * channels]. channels 1 to 4; every size at least 1. Returns CS_ERR_ARG for
 * bad sizes, CS_ERR_NOMEM when scratch memory cannot be had. */
cs_status op_resize_bicubic_u8(const uint8_t *src, int in_w, int in_h, int channels,
                               uint8_t *dst, int out_w, int out_h);

#endif
