/*
 * gemm_avx2.c - the own product kernel for AVX2 + FMA (Haswell, 2013, and
 * later): 6 x 16 tiles of C in 12 ymm registers (scheme: gemm_blocked.h).
 * Built with -mavx2 -mfma (src/kernels/kernels.cmake); called only where
 * cpu.c found AVX2 and FMA.
 *
 * Why not always OpenBLAS: a BLAS build falls back to generic SSE kernels on
 * CPUs newer than itself (Debian 12's OpenBLAS 0.3.21 picks "Prescott" on
 * Sapphire Rapids, 3-4x slower), its Haswell and Zen kernels break the
 * determinism rule (gemm.h), and the convolutions are 95% of the work.
 */
#include "gemm_blocked.h"
#include "isa.h"

#include <immintrin.h>

#define NR 16

/* Pack rows [0, kc) x columns [0, nc) of B into NR-wide strips. */
static void pack_b(int kc, int nc, const float *b, int ldb, float *bp)
{
    for (int j = 0; j < nc; j += NR) {
        int w = nc - j < NR ? nc - j : NR;
        if (w == NR) {
            for (int k = 0; k < kc; k++) {
                const float *src = b + (size_t)k * ldb + j;
                _mm256_storeu_ps(bp, _mm256_loadu_ps(src));
                _mm256_storeu_ps(bp + 8, _mm256_loadu_ps(src + 8));
                bp += NR;
            }
        } else {
            for (int k = 0; k < kc; k++) {
                const float *src = b + (size_t)k * ldb + j;
                int t = 0;
                for (; t < w; t++)
                    bp[t] = src[t];
                for (; t < NR; t++)
                    bp[t] = 0.0f;
                bp += NR;
            }
        }
    }
}

/* C tile (MN_GEMM_MR x NR, ldc) (+)= Ap (MN_GEMM_MR x kc) * Bp (kc x NR). */
static void kernel_6x16(int kc, const float *ap, const float *bp, float *c, int ldc, int accumulate,
                                  int rows, int cols)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
           c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
           c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
           c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8), a;
        a = _mm256_broadcast_ss(ap + 0);
        c00 = _mm256_fmadd_ps(a, b0, c00);
        c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(ap + 1);
        c10 = _mm256_fmadd_ps(a, b0, c10);
        c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(ap + 2);
        c20 = _mm256_fmadd_ps(a, b0, c20);
        c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(ap + 3);
        c30 = _mm256_fmadd_ps(a, b0, c30);
        c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(ap + 4);
        c40 = _mm256_fmadd_ps(a, b0, c40);
        c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(ap + 5);
        c50 = _mm256_fmadd_ps(a, b0, c50);
        c51 = _mm256_fmadd_ps(a, b1, c51);
        ap += MN_GEMM_MR;
        bp += NR;
    }
    float tile[MN_GEMM_MR * NR];
    const int edge = rows < MN_GEMM_MR || cols < NR;
    float *t = edge ? tile : c;
    const int ldt = edge ? NR : ldc;
    if (edge)
        mn_edge_tile_load(tile, NR, c, ldc, rows, cols, accumulate);
    __m256 acc[MN_GEMM_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int r = 0; r < MN_GEMM_MR; r++) {
        float *row = t + (size_t)r * ldt;
        if (accumulate) {
            acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(row));
            acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(row + 8));
        }
        _mm256_storeu_ps(row, acc[r][0]);
        _mm256_storeu_ps(row + 8, acc[r][1]);
    }
    if (edge)
        mn_edge_tile_store(tile, NR, c, ldc, rows, cols);
}

void mn_gemm_nn_avx2(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                     float *pack)
{
    mn_gemm_drive(NR, pack_b, kernel_6x16, m, n, k, a, lda, b, ldb, c, ldc, pack);
}

void mn_gemm_pack_b_avx2(int k, int n, const float *b, int ldb, float *bp)
{
    mn_gemm_pack_b_blocks(NR, pack_b, k, n, b, ldb, bp);
}

void mn_gemm_nn_packed_b_avx2(int m, int n, int k, const float *a, int lda, const float *bp, float *c, int ldc,
                              float *pack)
{
    mn_gemm_drive_packed_b(NR, kernel_6x16, m, n, k, a, lda, bp, c, ldc, pack);
}

void mn_gemm_prepacked_avx2(int m, int n, int k, const float *ap, const float *bp, float *c, int ldc)
{
    mn_gemm_drive_prepacked(NR, kernel_6x16, m, n, k, ap, bp, c, ldc);
}
