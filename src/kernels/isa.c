/*
 * isa.c - the table of the own kernels per instruction set (isa.h). Which
 * row runs is cpu.c's choice; the rows of instruction sets a build lacks
 * (not x86, or not GCC/Clang) are left out by MN_HAVE_X86_KERNELS.
 */
#include "isa.h"

static const mn_isa_kernels mn_isa_table[] = {
    {MN_ISA_GENERIC, MN_KERNEL_GENERIC, "generic", "libmatchnet's generic C kernel", mn_gemm_nn_generic, NULL, 0,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, &mn_blocked_generic},
#if defined(MN_HAVE_X86_KERNELS)
    {MN_ISA_AVX2, MN_KERNEL_AVX2, "avx2", "libmatchnet's AVX2 kernel", mn_gemm_nn_avx2, mn_gemm_prepacked_avx2, 16,
     mn_gemm_pack_a_all, NULL, NULL, NULL, mn_gemm_pack_b_avx2, mn_gemm_nn_packed_b_avx2, mn_gemm_packed_b_floats16,
     &mn_blocked_avx2},
    {MN_ISA_AVX512, MN_KERNEL_AVX512, "avx512", "libmatchnet's AVX-512 kernel", mn_gemm_nn_avx512,
     mn_gemm_prepacked_avx512, 32, mn_gemm_pack_a_all, NULL, NULL, NULL, mn_gemm_pack_b_avx512, mn_gemm_nn_packed_b_avx512,
     mn_gemm_packed_b_floats32, &mn_blocked_avx512},
#if defined(MN_HAVE_BF16_KERNEL)
    /* After the AVX512 row, so that the tower build of MN_ISA_AVX512 is found there. */
    {MN_ISA_AVX512, MN_KERNEL_AVX512_BF16, "avx512bf16", "libmatchnet's AVX-512 BF16 kernel (bfloat16)",
     mn_gemm_nn_avx512, mn_gemm_prepacked_avx512bf16, 32, mn_gemm_pack_a_bf16, mn_gemm_prepacked_pairs_avx512bf16,
     mn_round_pairs_avx512bf16, mn_gemm_prepacked_rows_avx512bf16, mn_gemm_pack_b_bf16,
     mn_gemm_nn_packed_b_bf16, mn_gemm_packed_b_bf16_floats, &mn_blocked_avx512},
#endif
#endif
};

const mn_isa_kernels *mn_isa_kernels_for(mn_kernel kind)
{
    for (size_t i = 0; i < sizeof mn_isa_table / sizeof mn_isa_table[0]; i++)
        if (mn_isa_table[i].kernel == kind)
            return &mn_isa_table[i];
    return &mn_isa_table[0];
}

const mn_isa_kernels *mn_isa_kernels_of(mn_isa isa)
{
    for (size_t i = 0; i < sizeof mn_isa_table / sizeof mn_isa_table[0]; i++)
        if (mn_isa_table[i].isa == isa)
            return &mn_isa_table[i];
    return &mn_isa_table[0];
}

const char *mn_kernel_name(mn_kernel kind)
{
    return kind == MN_KERNEL_BLAS ? "BLAS" : mn_isa_kernels_for(kind)->kernel_name;
}

const char *mn_isa_name(mn_isa isa)
{
    return mn_isa_kernels_of(isa)->name;
}
