/*
 * gemm.h - the matrix products the layers ask for, and the determinism rule
 * that decides which code computes them.
 *
 * The rule. A product whose m or n follows the batch size or the thread
 * split (fully connected layers, the metric network, the matcher's
 * distances, the im2col path of small blocks) runs on the own kernels,
 * which give each element of C a value that depends only on its row of A,
 * its column of B and k - never on m, n or its place - so results do not
 * change with thread count, batch size or a patch's position. OpenBLAS
 * promises no such thing. A product whose shape is fixed by the model (the
 * blocked path's Winograd products: always whole 16-patch blocks) may run on
 * OpenBLAS only where its core also gives a column the same value wherever
 * it lies (a patch's lane in the block): cpu.c keeps the table,
 * test_determinism checks it under each core.
 */
#ifndef MN_GEMM_H
#define MN_GEMM_H

#include "cpu.h"

#include <stddef.h>
#include <stdint.h>

/* C (m x n, ldc) = A (m x k, lda) B (k x n, ldb); pack: mn_gemm_pack_floats() floats. */
typedef void (*mn_gemm_fn)(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                           float *pack);
/* The same on operands packed by the caller (below). */
typedef void (*mn_gemm_prepacked_fn)(int m, int n, int k, const float *ap, const float *bp, float *c, int ldc);

/* Packs B (k x n, ldb) once for the products below (gemm_blocked.h's blocks). */
typedef void (*mn_pack_b_all_fn)(int k, int n, const float *b, int ldb, float *bp);
/* C = A B with B packed by the kernel's mn_pack_b_all_fn; pack as for mn_gemm_fn. */
typedef void (*mn_gemm_packed_b_fn)(int m, int n, int k, const float *a, int lda, const float *bp, float *c, int ldc,
                                    float *pack);
/* Packs A (m x k, lda) for mn_gemm_prepacked(kind, ...). */
typedef void (*mn_pack_a_fn)(int m, int k, const float *a, int lda, float *ap);
/* bfloat16 kernels only: rounds the points values of width floats at x0 and
 * at x1 (NULL: zeros; rows xstride floats apart) to bfloat16 and writes them
 * as pairs, word j of point i at out[i * ostride + j] holding x0's value j in
 * its low half and x1's in its high half: two consecutive rows of k of a B
 * strip, as mn_gemm_prepacked_pairs_fn reads them. */
typedef void (*mn_round_pairs_fn)(int points, int width, const float *x0, const float *x1, size_t xstride,
                                  uint32_t *out, size_t ostride);
/* mn_gemm_prepacked_fn with B already in pairs: strips of the kernel's
 * strip width, [n / strip][(k + 1) / 2][strip] words, as the input
 * transform writes them through mn_round_pairs_fn (one rounding fewer, and
 * half the bytes of the fp32 strips). The same values as the fp32-strip
 * entry given the same B. A's rows lie in panels of MN_GEMM_MR rows of
 * (k + 1) / 2 words each, so rows from r (a multiple of MN_GEMM_MR) on
 * start r * ((k + 1) / 2) words in: a product of those rows alone. */
typedef void (*mn_gemm_prepacked_pairs_fn)(int m, int n, int k, const float *ap, const uint32_t *bp, float *c,
                                           int ldc);

/* C = A B (row-major, no transposes, beta 0), shape fixed by the model, on
 * mn_cpu_get()->gemm_fixed: OpenBLAS where cpu.c's table says its core keeps
 * the rule (SkylakeX, Cooperlake, and the SSE/AVX cores of CPUs without
 * AVX2) or with MN_GEMM=blas, else the own AVX-512 or AVX2 kernel. pack:
 * mn_gemm_pack_floats() floats of scratch. */
void mn_gemm_fixed(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                   float *pack);
/* C = A B for any shape, on the own kernels only (AVX-512, AVX2 or generic
 * C: mn_cpu_get()->gemm_stable). pack as above. */
void mn_gemm_stable(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                    float *pack);
/* C = A B on one own kernel (GENERIC, AVX2 or AVX512; the caller checks the
 * CPU has it). pack as above (unused by GENERIC). */
void mn_gemm_own(mn_kernel kind, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c,
                 int ldc, float *pack);
/* mn_gemm_stable with B packed once by the caller (the tower's fully
 * connected layer, whose weights every block multiplies): the same values
 * to the bit, without packing B (4 MB for the 4096 x 256 bottleneck) on
 * every call; in the low-precision mode (cpu.c's bf16) in bfloat16
 * (gemm_avx512bf16.c), the determinism rule kept. mn_gemm_stable_packed_b_
 * floats: floats of the packed B, 0 where the kernel packs nothing (generic
 * C): then call mn_gemm_stable. */
size_t mn_gemm_stable_packed_b_floats(int k, int n);
void mn_gemm_stable_pack_b(int k, int n, const float *b, int ldb, float *bp);
void mn_gemm_stable_packed_b(int m, int n, int k, const float *a, int lda, const float *bp, float *c, int ldc,
                             float *pack);
/* The same with mn_gemm_stable's own kernel in fp32 whatever the precision
 * (the matcher's distances, whose B, the train set, every block of queries
 * multiplies): mn_gemm_stable's values to the bit. 0 floats: the kernel
 * packs nothing (generic C), call mn_gemm_stable. */
size_t mn_gemm_stable_fp32_packed_b_floats(int k, int n);
void mn_gemm_stable_fp32_pack_b(int k, int n, const float *b, int ldb, float *bp);
void mn_gemm_stable_fp32_packed_b(int m, int n, int k, const float *a, int lda, const float *bp, float *c, int ldc,
                                  float *pack);
/* Floats of the packing scratch every product above takes (gemm_drive.c). */
size_t mn_gemm_pack_floats(void);

/* Products whose operands are packed once by the caller (the Winograd
 * convolutions, where A is the same for every block and B is written
 * straight into the packed layout), on the own vector kernels (kind AVX512
 * or AVX2): A (m x k) in panels of 6 rows, [m / 6][k][6], from
 * mn_gemm_pack_a_all (mn_gemm_packed_a_floats(m, k) floats); B (k x n) in
 * strips of mn_gemm_strip(kind) columns, [n / strip][k][strip], a last
 * partial strip padded with zeros. C (m x n, ldc) = A B. The packing
 * (gemm_drive.c) is the same for every vector kernel. */
size_t mn_gemm_packed_a_floats(int m, int k);
void mn_gemm_pack_a_all(int m, int k, const float *a, int lda, float *ap);
int mn_gemm_strip(mn_kernel kind);
void mn_gemm_prepacked(mn_kernel kind, int m, int n, int k, const float *ap, const float *bp, float *c, int ldc);
/* C (m x n, ldc) = A B with A packed by mn_gemm_pack_a_for(kind, ...) and B
 * plain rows (k x n, ldb), for kinds whose row has gemm_prepacked_rows
 * (AVX512_BF16: the small blocks' convolutions in bfloat16, B rounded per
 * call); each element of C is one chain over k, whatever n and its column. */
void mn_gemm_prepacked_rows(mn_kernel kind, int m, int n, int k, const float *ap, const float *b, int ldb, float *c,
                            int ldc);
/* A packed for mn_gemm_prepacked(kind, ...): mn_gemm_pack_a_all's layout for
 * the fp32 kernels, bfloat16 pairs for AVX512_BF16 (gemm_avx512bf16.c); ap
 * holds mn_gemm_packed_a_floats(m, k) floats either way. */
void mn_gemm_pack_a_for(mn_kernel kind, int m, int k, const float *a, int lda, float *ap);

#endif
