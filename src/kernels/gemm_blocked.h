/*
 * gemm_blocked.h - the blocking scheme the own vector kernels share
 * (gemm_drive.c drives it; gemm_avx2.c and gemm_avx512.c supply the strips
 * and micro-kernels). Private to src/kernels/.
 *
 * Scheme (as BLIS / GotoBLAS): C = A B with A (M x K) and B (K x N)
 * row-major. K is cut in blocks of KC; for each block, B is packed into
 * strips of nr columns (16 for AVX2, 32 for AVX-512) and A into strips of MR
 * rows, both contiguous in k, and an MR x nr micro-kernel keeps its tile of
 * C in 12 vector registers for the whole block. N is cut in blocks of NC so
 * the packed B stays in L2/L3. Edges are padded with zeros in the packs and
 * written through a small temporary tile. Each element of C is then one
 * FMA chain over k in fixed KC blocks, whatever m, n and its place: the
 * determinism rule (gemm.h).
 */
#ifndef MN_GEMM_BLOCKED_H
#define MN_GEMM_BLOCKED_H

#include <stddef.h>
#include <string.h>

#define MN_GEMM_MR 6
#define MN_GEMM_KC 256
#define MN_GEMM_NC 1536
#define MN_GEMM_MC 96
#define MN_GEMM_NR_MAX 32 /* widest strip: the packing buffer is sized for it */

/* Pack rows [0, kc) x columns [0, nc) of B into nr-wide strips. */
typedef void (*mn_pack_b_fn)(int kc, int nc, const float *b, int ldb, float *bp);
/* C tile (MR x nr, ldc) (+)= Ap (MR x kc) * Bp (kc x nr); rows, cols: the
 * part of the tile inside C. */
typedef void (*mn_micro_fn)(int kc, const float *ap, const float *bp, float *c, int ldc, int accumulate, int rows,
                            int cols);

/* Pack rows [0, mc) x columns [0, kc) of A into MR-tall strips (gemm_drive.c). */
void mn_gemm_pack_a(int mc, int kc, const float *a, int lda, float *ap);
/* The blocked product around one micro-kernel (gemm_drive.c). */
void mn_gemm_drive(int nr, mn_pack_b_fn pack_b, mn_micro_fn micro, int m, int n, int k, const float *a, int lda,
                   const float *b, int ldb, float *c, int ldc, float *pack);
/* B (k x n) packed once, block by block in mn_gemm_drive's order, into
 * mn_gemm_packed_b_floats(nr, k, n) floats; mn_gemm_drive_packed_b then
 * runs the very loops of mn_gemm_drive on it (the same values to the bit)
 * without packing B again (gemm_drive.c). */
size_t mn_gemm_packed_b_floats(int nr, int k, int n);
void mn_gemm_pack_b_blocks(int nr, mn_pack_b_fn pack_b, int k, int n, const float *b, int ldb, float *bp);
void mn_gemm_drive_packed_b(int nr, mn_micro_fn micro, int m, int n, int k, const float *a, int lda,
                            const float *bpk, float *c, int ldc, float *pack);
/* The product on operands packed once by the caller (gemm_drive.c). */
void mn_gemm_drive_prepacked(int nr, mn_micro_fn micro, int m, int n, int k, const float *ap, const float *bp,
                             float *c, int ldc);

/* Edge tiles (fewer than MR rows or nr columns of C left) go through a full
 * MR x nr temporary, so the vector stores never leave C. */
static inline void mn_edge_tile_load(float *tile, int nr, const float *c, int ldc, int rows, int cols,
                                     int accumulate)
{
    memset(tile, 0, sizeof(float) * (size_t)MN_GEMM_MR * nr);
    if (accumulate)
        for (int r = 0; r < rows; r++)
            memcpy(tile + (size_t)r * nr, c + (size_t)r * ldc, sizeof(float) * (size_t)cols);
}

static inline void mn_edge_tile_store(const float *tile, int nr, float *c, int ldc, int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        memcpy(c + (size_t)r * ldc, tile + (size_t)r * nr, sizeof(float) * (size_t)cols);
}

#endif
