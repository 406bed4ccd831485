/*
 * gemm_avx512.c - the own product kernel for AVX-512F (+ FMA): the AVX2
 * kernel's scheme (gemm_blocked.h) with 6 x 32 tiles of C in 12 zmm
 * registers. Built with -mavx512f -mfma (src/kernels/kernels.cmake); called
 * only where cpu.c found AVX-512F and FMA.
 */
#include "gemm_blocked.h"
#include "gemm_tile512.h"
#include "isa.h"

#include <immintrin.h>

#define NR5 32

/* Pack rows [0, kc) x columns [0, nc) of B into NR5-wide strips. */
static void pack_b32(int kc, int nc, const float *b, int ldb, float *bp)
{
    for (int j = 0; j < nc; j += NR5) {
        int w = nc - j < NR5 ? nc - j : NR5;
        for (int k = 0; k < kc; k++) {
            const float *src = b + (size_t)k * ldb + j;
            if (w == NR5) {
                _mm512_storeu_ps(bp, _mm512_loadu_ps(src));
                _mm512_storeu_ps(bp + 16, _mm512_loadu_ps(src + 16));
            } else {
                int t = 0;
                for (; t < w; t++)
                    bp[t] = src[t];
                for (; t < NR5; t++)
                    bp[t] = 0.0f;
            }
            bp += NR5;
        }
    }
}

static void kernel_6x32(int kc, const float *ap, const float *bp, float *c, int ldc, int accumulate,
                                     int rows, int cols)
{
    __m512 acc[MN_GEMM_MR][2];
    for (int r = 0; r < MN_GEMM_MR; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        for (int r = 0; r < MN_GEMM_MR; r++) { /* unrolled by the compiler: MN_GEMM_MR is a constant */
            __m512 a = _mm512_set1_ps(ap[r]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        }
        ap += MN_GEMM_MR;
        bp += NR5;
    }
    mn_tile512_store(acc, c, ldc, accumulate, rows, cols);
}

void mn_gemm_nn_avx512(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                       float *pack)
{
    mn_gemm_drive(NR5, pack_b32, kernel_6x32, m, n, k, a, lda, b, ldb, c, ldc, pack);
}

void mn_gemm_pack_b_avx512(int k, int n, const float *b, int ldb, float *bp)
{
    mn_gemm_pack_b_blocks(NR5, pack_b32, k, n, b, ldb, bp);
}

void mn_gemm_nn_packed_b_avx512(int m, int n, int k, const float *a, int lda, const float *bp, float *c, int ldc,
                                float *pack)
{
    mn_gemm_drive_packed_b(NR5, kernel_6x32, m, n, k, a, lda, bp, c, ldc, pack);
}

void mn_gemm_prepacked_avx512(int m, int n, int k, const float *ap, const float *bp, float *c, int ldc)
{
    mn_gemm_drive_prepacked(NR5, kernel_6x32, m, n, k, ap, bp, c, ldc);
}
