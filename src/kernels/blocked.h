/*
 * blocked.h - the layer kernels of the tower's blocked path, built once per
 * instruction set (blocked.inc; blocked_generic.c, blocked_avx2.c,
 * blocked_avx512.c). tower.c runs the layer loop and calls the ones
 * cpu.c chose.
 *
 * Layout: activations of a block of MN_NB images are [C][H][W][MN_NB], the
 * images innermost, so every pixel is one vector of MN_NB floats.
 */
#ifndef MN_BLOCKED_H
#define MN_BLOCKED_H

#include "gemm.h"
#include "model.h"

#include <stdint.h>

/* Images per block of the blocked tower path: one vector of MN_NB floats
 * per pixel. Blocks of fewer than MN_NB / 2 images (a batch's tail, single
 * patches) take the [C][N][H][W] path instead (tower.c), which does not pay
 * for empty lanes. */
#define MN_NB 16
/* Winograd tiles per group of matrix products: the transformed input and
 * output of a group (about (in_c + out_c) * alpha^2 * tiles * MN_NB floats)
 * stay within L2. */
#ifndef MN_WINO_TILES
#define MN_WINO_TILES 2
#endif
/* Output channels per run of the bfloat16 Winograd products (a multiple of
 * the 6-row panels of the packed weights): each run's output transform
 * follows while its rows of M are in L2. */
#ifndef MN_WINO_CO
#define MN_WINO_CO 24
#endif

/* How the Winograd products of a conv layer run (tower.c fills it from
 * cpu.c's choice): on operands packed for an own kernel when the layer's
 * weights are packed (wino_packed), else as a plain fixed-shape product.
 * Passed in, so that these kernels call nothing else. */
typedef struct mn_blocked_gemm {
    mn_gemm_prepacked_fn prepacked; /* NULL when the weights are not packed */
    int strip;                      /* B strip width of prepacked */
    mn_gemm_fn fixed;               /* mn_gemm_fixed */
    /* With prepacked, a kernel that takes B in bfloat16 pairs and the
     * rounding that writes them (both NULL: B in fp32 strips). */
    mn_gemm_prepacked_pairs_fn pairs;
    mn_round_pairs_fn round_pairs;
} mn_blocked_gemm;

/* Where a layer of the blocked path writes its output: NULL, [C][H][W][MN_NB];
 * else straight into the padded frame the next convolution reads (see
 * mn_blocked_frame), hp x wp a channel, the output at (top, left) and zeros
 * around it, so that convolution copies nothing. */
typedef struct mn_blocked_out {
    int hp, wp, top, left;
} mn_blocked_out;

/* One instruction set's blocked layer kernels. Every o: as mn_blocked_out;
 * framed: in is already l's frame (written through an mn_blocked_out). */
typedef struct mn_blocked_ops {
    /* n <= MN_NB images ([C][P][P] each, u8 or f32: exactly one non-NULL)
     * into [C][P][P][MN_NB], normalised; lanes n.. are 0. */
    void (*load)(const mn_model *m, const uint8_t *px8, const float *pxf, int n, float *dst, const mn_blocked_out *o);
    /* [C][H][W][MN_NB] -> n rows of C*H*W (PyTorch's flattening order). */
    void (*to_rows)(int c, int h, int w, int n, const float *in, float *out);
    /* A convolution with bias and ReLU: direct, or Winograd when the layer
     * has wino_u, its products as g says. frame, wino_v, wino_m, pack:
     * scratch (tower.c sizes them from mn_blocked_frame). */
    void (*conv)(const mn_layer *l, const mn_blocked_gemm *g, const float *in, int framed, float *frame,
                 float *wino_v, float *wino_m, float *pack, float *out, const mn_blocked_out *o);
    /* Max-pooling, windows clipped at the bottom and right as the reference. */
    void (*pool)(const mn_layer *l, const float *in, float *out, const mn_blocked_out *o);
    /* A convolution l and the max-pooling p after it
     * (mn_blocked_conv_pool_fits), in one pass: conv then pool's values,
     * without the convolution's whole output. Scratch as conv's; a direct
     * l's ring of rows in wino_v (mn_blocked_ring_floats(l, p)). */
    void (*conv_pool)(const mn_layer *l, const mn_layer *p, const mn_blocked_gemm *g, const float *in, int framed,
                      float *frame, float *wino_v, float *wino_m, float *pack, float *out, const mn_blocked_out *o);
} mn_blocked_ops;

extern const mn_blocked_ops mn_blocked_generic;
extern const mn_blocked_ops mn_blocked_avx2;   /* x86 builds only */
extern const mn_blocked_ops mn_blocked_avx512; /* x86 builds only */

/* The widest block of output channels a direct kernel keeps in registers
 * (MN_CB of blocked_*.c). */
#define MN_CB_MAX 8

/* Whether conv_pool takes conv layer l and the layer p after it: a
 * convolution, then max-pooling of its whole output with no padding; after
 * a Winograd one (4x4 output tiles) a 3x3 pool of stride 2, whose windows
 * each tile meets in a 3x3 pattern. */
static inline int mn_blocked_conv_pool_fits(const mn_layer *l, const mn_layer *p)
{
    return l->type == MN_LAYER_CONV && p->type == MN_LAYER_MAXPOOL && p->pad == 0 && p->in_c == l->out_c &&
           p->in_h == l->out_h && p->in_w == l->out_w && p->kernel >= 1 && p->stride >= 1 &&
           (!l->wino_u || (p->kernel == 3 && p->stride == 2));
}

/* Floats of conv_rows7's scratch (conv0 on F(4, 7) rows): the 7
 * transformed frame rows, and with the pool p after it every channel's k
 * rows. */
static inline size_t mn_blocked_rows7_floats(const mn_layer *l, const mn_layer *p)
{
    return (size_t)7 * ((l->out_w / 4) * 10 + 1) * MN_NB + (p ? (size_t)l->out_c * p->kernel * l->out_w * MN_NB : 0);
}

/* Floats of conv_pool's scratch: a direct convolution's ring of MN_CB_MAX
 * channels x the pool's k rows, conv_rows7's, none after a Winograd
 * convolution (it pools from its output transform). */
static inline size_t mn_blocked_ring_floats(const mn_layer *l, const mn_layer *p)
{
    if (l->wino_u)
        return 0;
    if (l->wino_x)
        return mn_blocked_rows7_floats(l, p);
    return (size_t)MN_CB_MAX * p->kernel * l->out_w * MN_NB;
}

/* The padded input frame a conv layer of the blocked path reads: for a
 * Winograd layer whole 4x4 tiles plus the kernel's overhang, else exactly
 * what the direct kernel visits; the input sits at (pad, pad) within it. */
static inline void mn_blocked_frame(const mn_layer *l, int *hp, int *wp)
{
    if (l->wino_u) {
        *hp = (l->out_h + 3) / 4 * 4 + l->kernel - 1; /* 4: MN_WINO_M, the output tile side */
        *wp = (l->out_w + 3) / 4 * 4 + l->kernel - 1;
    } else {
        *hp = (l->out_h - 1) * l->stride + l->kernel;
        *wp = (l->out_w - 1) * l->stride + l->kernel;
    }
}

#endif
