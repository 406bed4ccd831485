/*
 * layers.h - how each layer type computes (layers.c), in the reference
 * version and in the fast [C][N][H][W] version, and the weights layers
 * prepare once when a model is loaded (layers.c, winograd.c). The blocked
 * path's layer kernels are in kernels/blocked.h.
 */
#ifndef MN_LAYERS_H
#define MN_LAYERS_H

#include "model.h"

/* Fast path, activations in [C][N][H][W] layout for a chunk of n images;
 * col: im2col scratch, pack: mn_gemm_pack_floats() floats. */
void mn_conv_fast(const mn_layer *l, int n, const float *in, float *col, float *pack, float *out);
void mn_maxpool_fast(const mn_layer *l, int n, const float *in, float *out);
/* Parts of the same, for splitting one chunk over threads: columns
 * [c0, c1) of the convolution's output (c = (img * out_h + y) * out_w + x;
 * col then holds the K x (c1 - c0) im2col part only), planes [p0, p1) of
 * the pooling's (p = channel * n + img). Equal to the whole call's. */
void mn_conv_fast_cols(const mn_layer *l, int n, const float *in, size_t c0, size_t c1, float *col, float *pack,
                       float *out);
void mn_maxpool_fast_planes(const mn_layer *l, size_t p0, size_t p1, const float *in, float *out);
/* Reference path, one image in [C][H][W] layout. */
void mn_conv_ref(const mn_layer *l, const float *in, float *out);
void mn_maxpool_ref(const mn_layer *l, const float *in, float *out);
/* Fully connected on n row vectors: out[n][out_c] = in[n][in_c] W^T + b.
 * pack: mn_gemm_pack_floats() floats of scratch, used with weight_t. */
void mn_fc_fast(const mn_layer *l, int n, const float *in, int ld_in, float *out, float *pack);
/* The same for the blocked path's blocks: on weight_p where the layer has it
 * (packed once at load; mn_fc_fast's bits, or in the low-precision mode
 * bfloat16's products, as the blocked path's convolutions), else mn_fc_fast. */
void mn_fc_blocked(const mn_layer *l, int n, const float *in, int ld_in, float *out, float *pack);
void mn_fc_ref(const mn_layer *l, int n, const float *in, int ld_in, float *out);
void mn_l2norm_rows(int n, int dim, float *x);
/* Size of a pooled axis, Caffe (ceil) or PyTorch-default (floor) rounding. */
int mn_pool_out_size(int in, int kernel, int stride, int pad, int ceil_mode);

/* Transposed copies of the fc weights (weight_t), for the own product
 * kernels, which take B untransposed, and of the tower's fc weights packed
 * for the stable kernel (weight_p). */
mn_status mn_fc_prepare(const char *fn, mn_model *m);
/* Winograd weights for the eligible conv layers (winograd.c);
 * MN_WINOGRAD=0 in the environment leaves every convolution direct. */
mn_status mn_winograd_prepare(const char *fn, mn_model *m);
/* After mn_winograd_prepare: weight_bf of the conv layers whose Winograd
 * products run in bfloat16, so that small blocks (mn_conv_fast_cols) run
 * those layers in bfloat16 too. */
mn_status mn_conv_prepare(const char *fn, mn_model *m);

#endif
