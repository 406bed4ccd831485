/*
 * internal.h - types and helpers shared by the engine's source files.
 * Nothing here is part of the public API.
 */
#ifndef MN_INTERNAL_H
#define MN_INTERNAL_H

#include "matchnet.h"
#include "cpu.h"

#include <stddef.h>
#include <stdint.h>

#define MN_MAX_LAYERS 32
#define MN_MAX_METRIC 16
#define MN_NAME_LEN 64
/* Largest patch side, and largest width of any activation. */
#define MN_MAX_PATCH 1024
/* Images processed together by the fast tower path: wide enough to give
 * sgemm long rows, small enough to keep the im2col buffer in the tens of MB. */
#define MN_CHUNK 8
/* Images per block of the blocked tower path (tower_blocked.inc): one
 * vector of MN_NB floats per pixel. Blocks of fewer than MN_NB / 2 images
 * (a batch's tail, single patches) take the [C][N][H][W] path instead,
 * which does not pay for empty lanes. */
#define MN_NB 16
/* Winograd tiles per group of matrix products: the transformed input and
 * output of a group (about (in_c + out_c) * alpha^2 * tiles * MN_NB floats)
 * stay within L2. */
#ifndef MN_WINO_TILES
#define MN_WINO_TILES 4
#endif
/* Pairs scored together by the metric network. */
#define MN_PAIR_BLOCK 128

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
     * take B untransposed); NULL when the products run on BLAS. */
    const float *weight_t;
    /* conv with stride 1 and a 3x3 or 5x5 kernel: Winograd-transformed
     * weights G g G^T, [alpha * alpha][out_c][in_c] (winograd.h); NULL when
     * the layer runs as a direct convolution. */
    const float *wino_u;
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
    float *weights_wino; /* Winograd weights (wino_u), owned; may be NULL */
};

/* ---- errors (common.c) ---- */
/* Record a message for mn_last_error() and return status. */
mn_status mn_error(mn_status status, const char *func, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- memory (common.c): every allocation goes through these ---- */
void *mn_malloc(size_t size);
void *mn_calloc(size_t n, size_t size);
void mn_free(void *p);
/* Test hook: make the n-th allocation from now fail (n >= 1); 0 disables. */
void mn_test_fail_alloc_at(long n);

/* ---- model file (model_io.c) ---- */
uint32_t mn_crc32(const void *data, size_t size);
float mn_half_to_float(uint16_t h);

/* ---- BLAS (blas.c): the only file that calls BLAS ---- */
/* Row-major C[m x n] = A[m x k] * op(B) + beta * C, op(B) = B[k x n] or,
 * with trans_b, B[n x k] transposed. */
void mn_gemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
             int trans_b, float beta, float *c, int ldc);
void mn_blas_set_threads(int n);
int mn_blas_get_threads(void);
/* OpenBLAS's core name ("Haswell", "SkylakeX", ...), "" for another BLAS. */
const char *mn_blas_core(void);
/* The BLAS's name, build and core, for mn_blas_info(). */
void mn_blas_describe(char *buf, size_t size);
/* The determinism rule. A product whose m or n follows the batch size or
 * the thread split (fully connected layers, the metric network, the
 * matcher's distances, the im2col path of small blocks) runs on the own
 * kernels, which give each element of C a value that depends only on its
 * row of A, its column of B and k - never on m, n or its place - so results
 * do not change with thread count, batch size or a patch's position.
 * OpenBLAS promises no such thing. A product whose shape is fixed by the
 * model (the blocked path's Winograd products: always whole 16-patch
 * blocks) may run on OpenBLAS only where its core also gives a column the
 * same value wherever it lies (a patch's lane in the block): cpu.c keeps
 * the table, test_determinism checks it under each core. */

/* (gemm.c) C = A B (no transposes, beta 0), shape fixed by the model, on
 * mn_cpu_get()->gemm_fixed: OpenBLAS where cpu.c's table says its core keeps
 * the rule (SkylakeX, Cooperlake, and the SSE/AVX cores of CPUs without
 * AVX2) or with MN_GEMM=blas, else the own AVX-512 or AVX2 kernel. pack:
 * mn_gemm_pack_floats() floats of scratch. */
void mn_gemm_fixed(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                   float *pack);
/* (gemm.c) C = A B (no transposes, beta 0) for any shape, on the own
 * kernels only (AVX-512, AVX2 or generic C: mn_cpu_get()->gemm_stable).
 * pack as above. */
void mn_gemm_stable(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                    float *pack);
/* (gemm.c) C = A B on one own kernel (kind: GENERIC, AVX2 or AVX512; the
 * caller checks the CPU has it). pack as above (unused by GENERIC). */
void mn_gemm_own(mn_kernel kind, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                 int ldc, float *pack);

/* ---- own kernels (gemm_avx2.c, gemm_generic.c) ---- */
void mn_gemm_nn_generic(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc);
size_t mn_gemm_pack_floats(void);
void mn_gemm_nn_avx2(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                     float *pack);
void mn_gemm_nn_avx512(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                       float *pack);
/* Products whose operands are packed once by the caller (the Winograd
 * convolutions, where A is the same for every block and B is written
 * straight into the packed layout), for the own kernels (kind 5 or 2):
 * A (m x k) in panels of 6 rows, [m / 6][k][6], from mn_gemm_pack_a_all
 * (mn_gemm_packed_a_floats(m, k) floats); B (k x n) in strips of
 * mn_gemm_strip(kind) columns, [n / strip][k][strip], a last partial strip
 * padded with zeros. C (m x n, ldc) = A B. */
size_t mn_gemm_packed_a_floats(int m, int k);
void mn_gemm_pack_a_all(int m, int k, const float *a, int lda, float *ap);
int mn_gemm_strip(mn_kernel kind);
void mn_gemm_prepacked(mn_kernel kind, int m, int n, int k, const float *ap, const float *bp, float *c, int ldc);

/* ---- layers (layers.c): fast and reference versions ---- */
/* Fast path, activations in [C][N][H][W] layout for a chunk of n images. */
void mn_conv_fast(const mn_layer *l, int n, const float *in, float *col, float *pack, float *out);
void mn_maxpool_fast(const mn_layer *l, int n, const float *in, float *out);
/* Reference path, one image in [C][H][W] layout. */
void mn_conv_ref(const mn_layer *l, const float *in, float *out);
void mn_maxpool_ref(const mn_layer *l, const float *in, float *out);
/* Fully connected on n row vectors: out[n][out_c] = in[n][in_c] W^T + b. */
/* pack: mn_gemm_pack_floats() floats of scratch, used with weight_t. */
void mn_fc_fast(const mn_layer *l, int n, const float *in, int ld_in, float *out, float *pack);
void mn_fc_ref(const mn_layer *l, int n, const float *in, int ld_in, float *out);
void mn_l2norm_rows(int n, int dim, float *x);
/* Size of a pooled axis, Caffe (ceil) or PyTorch-default (floor) rounding. */
int mn_pool_out_size(int in, int kernel, int stride, int pad, int ceil_mode);

/* ---- tower and metric (tower.c, metric.c) ---- */
/* Scratch one worker thread needs for tower and metric work. */
typedef struct mn_scratch {
    float *act0, *act1, *col; /* tower: MN_CHUNK images each */
    float *pack;              /* packing buffer of the convolution kernel */
    float *h0, *h1;           /* metric: MN_PAIR_BLOCK rows of max_metric */
    float *concat;            /* metric plain path: MN_PAIR_BLOCK rows of 2 * desc_dim */
    float *frame;             /* blocked path: a padded convolution input */
    float *wino_v, *wino_m;   /* blocked path: Winograd-transformed input and output */
} mn_scratch;

mn_status mn_scratch_init(const mn_model *m, mn_scratch *s);
void mn_scratch_release(mn_scratch *s);

/* Winograd weights for the eligible conv layers (model_io.c calls it once
 * the tensors are in place); MN_WINOGRAD=0 in the environment leaves every
 * convolution direct. */
mn_status mn_winograd_prepare(const char *fn, mn_model *m);

/* The padded input frame a conv layer of the blocked path reads: for a
 * Winograd layer whole 4x4 tiles plus the kernel's overhang, else exactly
 * what the direct kernel visits; the input sits at (pad, pad) within it. */
void mn_blocked_frame(const mn_layer *l, int *hp, int *wp);
/* Monotonic clock in seconds (per-layer profile). */
double mn_seconds(void);

/* One block of n <= MN_NB images through the blocked path, one function per
 * instruction set (tower_blocked_*.c); prof, when not NULL, gets each
 * layer's seconds added (layer 0's includes the normalisation). */
typedef void (*mn_tower_block_fn)(const mn_model *m, mn_scratch *s, const uint8_t *px8, const float *pxf, int n,
                                  float *desc, double *prof);
void mn_tower_blocked_generic(const mn_model *m, mn_scratch *s, const uint8_t *px8, const float *pxf, int n,
                              float *desc, double *prof);
void mn_tower_blocked_avx2(const mn_model *m, mn_scratch *s, const uint8_t *px8, const float *pxf, int n,
                           float *desc, double *prof);
void mn_tower_blocked_avx512(const mn_model *m, mn_scratch *s, const uint8_t *px8, const float *pxf, int n,
                             float *desc, double *prof);
/* The blocked path this process uses (mn_cpu_get()->tower); name, when not
 * NULL, gets its name. */
mn_tower_block_fn mn_tower_block_impl(const char **name);
/* One chunk through either fast path (blocked: n <= MN_NB, else n <= MN_CHUNK),
 * for the per-layer profile (bench/bench_layers.c). */
void mn_tower_profile_chunk(const mn_model *m, mn_scratch *s, int blocked, const uint8_t *px8, int n, float *desc,
                            double *prof);

/* Describe patches [begin, end); pixels as u8 or f32 (exactly one non-NULL). */
void mn_tower_run(const mn_model *m, mn_scratch *s, int reference, const uint8_t *px8,
                  const float *pxf, size_t begin, size_t end, float *desc);

/* Score pairs [begin, end) from projections (two-stage). */
void mn_metric_run_projected(const mn_model *m, mn_scratch *s, int reference,
                             const float *proj_a, const float *proj_b, const mn_pair *pairs,
                             size_t begin, size_t end, float *prob);
/* Score pairs [begin, end) by evaluating on the concatenation (plain). */
void mn_metric_run_plain(const mn_model *m, mn_scratch *s, int reference, const float *desc_a,
                         const float *desc_b, const mn_pair *pairs, size_t begin, size_t end,
                         float *prob);
/* Project rows [begin, end) of desc through one half of metric layer 0. */
void mn_metric_run_project(const mn_model *m, mn_scratch *s, int reference, const float *desc, mn_side side,
                           size_t begin, size_t end, float *proj);

/* ---- patches (patch.c) ---- */
#define MN_MAX_LEVELS 24
typedef struct mn_level {
    int w, h;
    float *px; /* level >= 1; level 0 reads the caller's bytes */
} mn_level;
/* An image with the pyramid levels a set of keypoints needs. */
typedef struct mn_pyramid {
    int n; /* levels, >= 1 */
    mn_level lv[MN_MAX_LEVELS];
    const uint8_t *image;
    size_t stride;
} mn_pyramid;
/* Check the image, parameters and keypoints (messages name fn and the
 * keypoint's index), then build the levels. Nothing to release on failure. */
mn_status mn_pyramid_init(const char *fn, const uint8_t *image, int width, int height, size_t stride,
                          const mn_keypoint *kps, size_t n, const mn_extract_params *p, mn_pyramid *pyr);
/* Cut n patches (keypoints checked by mn_pyramid_init); read-only on pyr,
 * so threads may cut disjoint ranges at once. */
void mn_pyramid_sample(const mn_pyramid *pyr, const mn_keypoint *kps, size_t n, const mn_extract_params *p,
                       uint8_t *patches);
void mn_pyramid_release(mn_pyramid *pyr);

/* ---- sessions (session.c) ---- */
const mn_model *mn_session_model(const mn_session *s);
int mn_session_threads(const mn_session *s);
int mn_session_reference(const mn_session *s);
/* Run task over [0, total) split into ranges of whole grains, one range per
 * thread of the session; thread is 0..mn_session_threads() - 1 and scratch
 * that thread's own. Ranges are contiguous and in thread order. */
typedef void (*mn_task_fn)(void *ctx, mn_scratch *scratch, int thread, size_t begin, size_t end);
void mn_session_parallel(mn_session *s, mn_task_fn task, void *ctx, size_t total, size_t grain);


#endif
