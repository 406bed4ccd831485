/*
 * gemm.c - the two kinds of matrix product the layers ask for (the
 * determinism rule in internal.h), each sent to the kernel cpu.c chose.
 */
#include "internal.h"

void mn_gemm_own(mn_kernel kind, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                 float *c, int ldc, float *pack)
{
    if (kind == MN_KERNEL_AVX512)
        mn_gemm_nn_avx512(m, n, k, a, lda, b, ldb, c, ldc, pack);
    else if (kind == MN_KERNEL_AVX2)
        mn_gemm_nn_avx2(m, n, k, a, lda, b, ldb, c, ldc, pack);
    else
        mn_gemm_nn_generic(m, n, k, a, lda, b, ldb, c, ldc);
}

void mn_gemm_fixed(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                   float *pack)
{
    const mn_kernel kind = mn_cpu_get()->gemm_fixed;
    if (kind == MN_KERNEL_BLAS)
        mn_gemm(m, n, k, a, lda, b, ldb, 0, 0.0f, c, ldc);
    else
        mn_gemm_own(kind, m, n, k, a, lda, b, ldb, c, ldc, pack);
}

void mn_gemm_stable(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                    float *pack)
{
    mn_gemm_own(mn_cpu_get()->gemm_stable, m, n, k, a, lda, b, ldb, c, ldc, pack);
}
