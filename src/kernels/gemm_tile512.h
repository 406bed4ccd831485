/*
 * gemm_tile512.h - the 6 x 32 tile epilogue of the AVX-512 product kernels
 * (gemm_avx512.c, gemm_avx512bf16.c): add C when accumulating, store, and
 * route edge tiles through a temporary. Include only from files built with
 * -mavx512f. Private to src/kernels/.
 */
#ifndef MN_GEMM_TILE512_H
#define MN_GEMM_TILE512_H

#include "gemm_blocked.h"

#include <immintrin.h>

#define MN_TILE512_NR 32

/* C tile (MR x 32, ldc) (+)= acc; rows, cols: the part inside C. */
static inline void mn_tile512_store(__m512 acc[MN_GEMM_MR][2], float *c, int ldc, int accumulate, int rows, int cols)
{
    float tile[MN_GEMM_MR * MN_TILE512_NR];
    const int edge = rows < MN_GEMM_MR || cols < MN_TILE512_NR;
    float *t = edge ? tile : c;
    const int ldt = edge ? MN_TILE512_NR : ldc;
    if (edge)
        mn_edge_tile_load(tile, MN_TILE512_NR, c, ldc, rows, cols, accumulate);
    for (int r = 0; r < MN_GEMM_MR; r++) {
        float *row = t + (size_t)r * ldt;
        if (accumulate) {
            acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(row));
            acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(row + 16));
        }
        _mm512_storeu_ps(row, acc[r][0]);
        _mm512_storeu_ps(row + 16, acc[r][1]);
    }
    if (edge)
        mn_edge_tile_store(tile, MN_TILE512_NR, c, ldc, rows, cols);
}

#endif
