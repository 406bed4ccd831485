/*
 * gemm.c - the two kinds of matrix product the layers ask for (the
 * determinism rule, gemm.h), each sent to the kernel cpu.c chose through
 * isa.c's table.
 */
#include "gemm.h"

#include "blas.h"
#include "gemm_blocked.h"
#include "isa.h"

void mn_gemm_own(mn_kernel kind, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                 float *c, int ldc, float *pack)
{
    mn_isa_kernels_for(kind)->gemm(m, n, k, a, lda, b, ldb, c, ldc, pack);
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

/* The row the tower's fc runs on: the stable kernel's, or in the
 * low-precision mode the bfloat16 row (its products keep the rule too). */
static const mn_isa_kernels *mn_fc_row(void)
{
    const mn_cpu *cpu = mn_cpu_get();
    return mn_isa_kernels_for(cpu->bf16 ? MN_KERNEL_AVX512_BF16 : cpu->gemm_stable);
}

size_t mn_gemm_stable_packed_b_floats(int k, int n)
{
    const mn_isa_kernels *row = mn_fc_row();
    return row->pack_b_all ? row->packed_b_floats(k, n) : 0;
}

void mn_gemm_stable_pack_b(int k, int n, const float *b, int ldb, float *bp)
{
    mn_fc_row()->pack_b_all(k, n, b, ldb, bp);
}

void mn_gemm_stable_packed_b(int m, int n, int k, const float *a, int lda, const float *bp, float *c, int ldc,
                             float *pack)
{
    mn_fc_row()->gemm_packed_b(m, n, k, a, lda, bp, c, ldc, pack);
}

size_t mn_gemm_stable_fp32_packed_b_floats(int k, int n)
{
    const mn_isa_kernels *row = mn_isa_kernels_for(mn_cpu_get()->gemm_stable);
    return row->pack_b_all ? row->packed_b_floats(k, n) : 0;
}

void mn_gemm_stable_fp32_pack_b(int k, int n, const float *b, int ldb, float *bp)
{
    mn_isa_kernels_for(mn_cpu_get()->gemm_stable)->pack_b_all(k, n, b, ldb, bp);
}

void mn_gemm_stable_fp32_packed_b(int m, int n, int k, const float *a, int lda, const float *bp, float *c, int ldc,
                                  float *pack)
{
    mn_isa_kernels_for(mn_cpu_get()->gemm_stable)->gemm_packed_b(m, n, k, a, lda, bp, c, ldc, pack);
}

void mn_gemm_prepacked_rows(mn_kernel kind, int m, int n, int k, const float *ap, const float *b, int ldb, float *c,
                            int ldc)
{
    mn_isa_kernels_for(kind)->gemm_prepacked_rows(m, n, k, ap, b, ldb, c, ldc);
}

int mn_gemm_strip(mn_kernel kind)
{
    return mn_isa_kernels_for(kind)->strip;
}

void mn_gemm_pack_a_for(mn_kernel kind, int m, int k, const float *a, int lda, float *ap)
{
    mn_isa_kernels_for(kind)->pack_a(m, k, a, lda, ap);
}

void mn_gemm_prepacked(mn_kernel kind, int m, int n, int k, const float *ap, const float *bp, float *c, int ldc)
{
    mn_isa_kernels_for(kind)->gemm_prepacked(m, n, k, ap, bp, c, ldc);
}
