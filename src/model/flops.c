/* FLOPs of the forward passes, counted from the shapes (multiply-adds x 2;
 * GEMMs, convolutions and attention products; element-wise work is not
 * counted). Benchmarks divide them by time and by the GEMM peak. */
#include "model.h"

static double conv_flops(int cout, int cin, int k, int out_side) {
    return 2.0 * cout * cin * k * k * out_side * out_side;
}

/* The ResNet trunk: stem and Bottlenecks with their projections. */
static double resnet_trunk_flops(const cs_config *c, int R) {
    int W = c->vision_width, side = R / 2, inplanes = W;
    double f = conv_flops(W / 2, 3, 3, side) + conv_flops(W / 2, W / 2, 3, side) +
               conv_flops(W, W / 2, 3, side);
    side /= 2;
    for (int stage = 0; stage < 4; stage++) {
        int planes = W << stage;
        for (int i = 0; i < c->resnet_layers[stage]; i++) {
            int stride = stage > 0 && i == 0 ? 2 : 1, out_side = side / stride;
            f += conv_flops(planes, inplanes, 1, side) + conv_flops(planes, planes, 3, side) +
                 conv_flops(planes * 4, planes, 1, out_side);
            if (stride > 1 || inplanes != planes * 4) f += conv_flops(planes * 4, inplanes, 1, out_side);
            inplanes = planes * 4;
            side = out_side;
        }
    }
    return f;
}

/* The attention pool over T tokens of width E: q, k, v projections (v only
 * with surgery), scores and weighted sums, c_proj. */
static double resnet_pool_flops(const cs_config *c, double T, cs_vision_mode mode) {
    double E = 32.0 * c->vision_width;
    int projections = mode == CS_VISION_PLAIN ? 3 : 1;
    return 2.0 * T * E * E * projections + 4.0 * T * T * E + 2.0 * T * E * c->embed_dim;
}

/* One transformer block over T tokens of width W: QKV, scores and weighted
 * sums, out-projection, MLP (4W). */
static double block_flops(double T, double W) {
    return 2.0 * T * W * 3 * W + 4.0 * T * T * W + 2.0 * T * W * W + 16.0 * T * W * W;
}

double cs_model_vision_flops(const cs_model *m, int R, cs_vision_mode mode) {
    const cs_config *c = &m->cfg;
    double T = cs_model_num_tokens(m, R);
    if (c->vision_kind == CS_VISION_RESNET) return resnet_trunk_flops(c, R) + resnet_pool_flops(c, T, mode);
    double P = c->patch_size, N = T - 1, W = c->vision_width;
    double f = 2.0 * N * 3 * P * P * W + 2.0 * T * W * c->embed_dim;
    int L = c->vision_layers;
    for (int l = 0; l < L; l++) f += block_flops(T, W);
    /* What each method adds to (or leaves out of) the plain blocks. */
    double attn = 4.0 * T * T * W, out_proj = 2.0 * T * W * W, ffn = 16.0 * T * W * W;
    switch (mode) {
    case CS_VISION_SURGERY: /* the v-v path and its out-projection */
        f += (m->surgery_blocks < L ? m->surgery_blocks : L) * (attn + out_proj);
        break;
    case CS_VISION_GEM: /* per block six self-self attentions and their out-projection */
        f += (L < 6 ? L : 6) * (6 * attn + out_proj);
        break;
    case CS_VISION_SCLIP: f += attn; break; /* two attentions in the last block */
    case CS_VISION_MASKCLIP: f -= attn + ffn; break;
    case CS_VISION_CLEARCLIP:
    case CS_VISION_NACLIP: f -= ffn; break;
    case CS_VISION_PLAIN: break;
    }
    return f;
}

double cs_model_text_flops(const cs_model *m, const int *lengths, int n) {
    const cs_config *c = &m->cfg;
    double f = 0;
    for (int i = 0; i < n; i++)
        f += c->text_layers * block_flops(lengths[i], c->text_width) + 2.0 * c->text_width * c->embed_dim;
    return f;
}
