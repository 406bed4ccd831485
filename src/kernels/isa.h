/*
 * isa.h - the one table of the library's own kernels per instruction set
 * (isa.c). Adding an instruction set (NEON, AVX-VNNI, AMX): its product
 * kernel and blocked.inc build as new files in this folder
 * (kernels.cmake gives them their flags), one row in isa.c's table, and
 * its feature test in cpu.c's probe.
 */
#ifndef MN_ISA_H
#define MN_ISA_H

#include "blocked.h"
#include "cpu.h"
#include "gemm.h"

#include <stddef.h>

/* One instruction set's kernels. */
typedef struct mn_isa_kernels {
    mn_isa isa;                          /* the blocked tower build */
    mn_kernel kernel;                    /* the product kernel */
    const char *name;                    /* MN_SIMD / MN_GEMM value: "avx512" */
    const char *kernel_name;             /* for mn_blas_info() */
    mn_gemm_fn gemm;                     /* C = A B, the determinism rule kept */
    mn_gemm_prepacked_fn gemm_prepacked; /* NULL: the Winograd products go to BLAS */
    int strip;                           /* B strip width of gemm_prepacked */
    mn_pack_a_fn pack_a;                 /* packs A for gemm_prepacked (NULL with it) */
    mn_gemm_prepacked_pairs_fn gemm_pairs; /* gemm_prepacked on B in bfloat16 pairs (NULL: none) */
    mn_round_pairs_fn round_pairs;         /* writes such B (NULL with gemm_pairs) */
    /* gemm_prepacked on B in plain rows (NULL: none; gemm.h's mn_gemm_prepacked_rows) */
    void (*gemm_prepacked_rows)(int m, int n, int k, const float *ap, const float *b, int ldb, float *c, int ldc);
    mn_pack_b_all_fn pack_b_all;         /* packs B once for gemm_packed_b (NULL: generic) */
    mn_gemm_packed_b_fn gemm_packed_b;   /* gemm on such a B: gemm's values (bfloat16's for that row) */
    size_t (*packed_b_floats)(int k, int n); /* the floats pack_b_all writes */
    const mn_blocked_ops *blocked;       /* the blocked tower's layer kernels */
} mn_isa_kernels;

/* The row of a product kernel (GENERIC, AVX2, AVX512) or of a tower build;
 * a kernel not built into this library gives the generic row. Never NULL. */
const mn_isa_kernels *mn_isa_kernels_for(mn_kernel kind);
const mn_isa_kernels *mn_isa_kernels_of(mn_isa isa);
/* Names for messages and mn_blas_info(): "libmatchnet's AVX2 kernel", "avx2". */
const char *mn_kernel_name(mn_kernel kind);
const char *mn_isa_name(mn_isa isa);

/* The own kernels (the table's entries). */
void mn_gemm_nn_generic(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                        float *pack);
void mn_gemm_nn_avx2(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                     float *pack);
void mn_gemm_prepacked_avx2(int m, int n, int k, const float *ap, const float *bp, float *c, int ldc);
void mn_gemm_pack_b_avx2(int k, int n, const float *b, int ldb, float *bp);
void mn_gemm_nn_packed_b_avx2(int m, int n, int k, const float *a, int lda, const float *bp, float *c, int ldc,
                              float *pack);
void mn_gemm_nn_avx512(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                       float *pack);
void mn_gemm_prepacked_avx512(int m, int n, int k, const float *ap, const float *bp, float *c, int ldc);
void mn_gemm_pack_b_avx512(int k, int n, const float *b, int ldb, float *bp);
void mn_gemm_nn_packed_b_avx512(int m, int n, int k, const float *a, int lda, const float *bp, float *c, int ldc,
                                float *pack);
/* bfloat16 Winograd products (gemm_avx512bf16.c): A packed by mn_gemm_pack_a_bf16 into
 * mn_gemm_packed_a_bf16_words(m, k) 32-bit words (never more than mn_gemm_packed_a_floats). */
void mn_gemm_prepacked_avx512bf16(int m, int n, int k, const float *ap, const float *bp, float *c, int ldc);
void mn_gemm_pack_a_bf16(int m, int k, const float *a, int lda, float *ap);
void mn_gemm_prepacked_pairs_avx512bf16(int m, int n, int k, const float *ap, const uint32_t *bp, float *c, int ldc);
void mn_gemm_prepacked_rows_avx512bf16(int m, int n, int k, const float *ap, const float *b, int ldb, float *c,
                                       int ldc);
void mn_round_pairs_avx512bf16(int points, int width, const float *x0, const float *x1, size_t xstride, uint32_t *out,
                               size_t ostride);
/* The tower's fc in bfloat16 (gemm_avx512bf16.c): B packed once, A rounded per call. */
size_t mn_gemm_packed_b_bf16_floats(int k, int n);
void mn_gemm_pack_b_bf16(int k, int n, const float *b, int ldb, float *bp);
void mn_gemm_nn_packed_b_bf16(int m, int n, int k, const float *a, int lda, const float *bp, float *c, int ldc,
                              float *pack);
/* The fp32 kernels' packed B size (gemm_drive.c's blocks of 16 or 32 columns). */
size_t mn_gemm_packed_b_floats16(int k, int n);
size_t mn_gemm_packed_b_floats32(int k, int n);
size_t mn_gemm_packed_a_bf16_words(int m, int k);

#endif
