/*
 * model.h - a loaded model: its layers with resolved shapes and its weights
 * (model.c loads, model_parse.c reads the .mnw format). Types and limits
 * only; the code that runs layers is in layers.h and tower.h.
 */
#ifndef MN_MODEL_H
#define MN_MODEL_H

#include "matchnet.h"

#include <stddef.h>
#include <stdint.h>

#define MN_MAX_LAYERS 32
#define MN_MAX_METRIC 16
#define MN_NAME_LEN 64
/* Largest patch side, and largest width of any activation. */
#define MN_MAX_PATCH 1024
/* Most weights a model may have, and so the largest model file: every
 * weight at 4 bytes plus generous room for headers. */
#define MN_MAX_TOTAL_WEIGHTS (1ull << 30)
#define MN_MAX_FILE_SIZE (4 * MN_MAX_TOTAL_WEIGHTS + (1ull << 20))

typedef enum mn_layer_type {
    MN_LAYER_CONV = 1,
    MN_LAYER_MAXPOOL = 2,
    MN_LAYER_FC = 3,
    MN_LAYER_L2NORM = 4
} mn_layer_type;

/* One layer with its resolved input and output shapes. For FC and L2NORM
 * layers the shapes are (dim, 1, 1). */
typedef struct mn_layer {
    mn_layer_type type;
    int in_c, in_h, in_w;
    int out_c, out_h, out_w;
    int kernel, stride, pad;
    int ceil_mode; /* max-pooling: round the output size up (Caffe) */
    int relu;      /* conv, fc: apply ReLU to the output */
    const float *weight; /* conv: [out_c][in_c][k][k]; fc: [out][in] */
    const float *bias;   /* [out_c] */
    /* fc: weight transposed, [in][out], for the own product kernels (which
     * take B untransposed). */
    const float *weight_t;
    /* fc of the tower: weight_t packed once for mn_gemm_stable_packed_b
     * (each block of patches multiplies it); NULL where the stable kernel
     * packs nothing, and for the metric network, whose products are large
     * enough to pack their own B and multiply halves of weight_t. */
    const float *weight_p;
    /* conv with stride 1 and a 3x3 or 5x5 kernel: Winograd-transformed
     * weights G g G^T, [alpha * alpha][out_c][in_c] (winograd.h); NULL when
     * the layer runs as a direct convolution. */
    const float *wino_u;
    /* conv with one input channel, a 7x7 kernel, stride 1 and an output
     * width a multiple of 4 (conv0): F(4, 7) along the rows, U[out_c][7][10]
     * = G g of each kernel row (winograd.h); NULL: the direct kernel. */
    const float *wino_x;
    /* conv with wino_u where the Winograd products run in bfloat16
     * (cpu.c's bf16 with the own kernels): the weights, [out_c][in_c k k],
     * packed in bfloat16 pairs for the small blocks' direct products
     * (layers.c), which then run in the same precision; else NULL. */
    const float *weight_bf;
    /* wino_u is packed for the own product kernels: per position
     * mn_gemm_packed_a_floats(out_c, in_c) floats (else out_c * in_c). */
    int wino_packed;
} mn_layer;

struct mn_model {
    char name[MN_NAME_LEN];
    int in_c, patch;
    float norm_mean, norm_div;
    int n_layers;
    mn_layer layers[MN_MAX_LAYERS];
    int n_metric;
    mn_layer metric[MN_MAX_METRIC];
    size_t feature_dim; /* output of the last conv/pool layer, flattened */
    size_t desc_dim;    /* output of the whole tower */
    size_t proj_dim;    /* width of metric layer 0 */
    size_t max_act;     /* floats: largest activation of one image */
    size_t max_col;     /* floats: largest im2col matrix of one image */
    size_t max_metric;  /* floats: widest metric layer */
    float *weights;     /* all tensors, owned */
    float *weights_t;   /* transposed fc weights (weight_t), owned; NULL without fc layers */
    float *weights_p;   /* packed tower fc weights (weight_p), owned; may be NULL */
    float *weights_wino; /* Winograd weights (wino_u), owned; may be NULL */
    float *weights_bf;   /* bfloat16 conv weights (weight_bf), owned; may be NULL */
};

/* Parse a .mnw image of size bytes into a new model (model_parse.c);
 * messages name fn. */
mn_status mn_model_parse(const char *fn, const uint8_t *data, size_t size, mn_model **out);
/* IEEE half to float, exactly (model_tensors.c). */
float mn_half_to_float(uint16_t h);

#endif
