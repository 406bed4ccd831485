/*
 * cpu.h - the one CPU layer: what the processor can run, and every
 * environment override of the kernel choice, read once per process into one
 * description. The kernels, layers and tower ask it; nothing else probes the
 * CPU or reads MN_SIMD, MN_GEMM, MN_PRECISION or MN_WINOGRAD.
 */
#ifndef MN_CPU_H
#define MN_CPU_H

/* Which code computes a matrix product. */
typedef enum {
    MN_KERNEL_BLAS,    /* cblas_sgemm (blas.c) */
    MN_KERNEL_GENERIC, /* mn_gemm_nn_generic (gemm_generic.c) */
    MN_KERNEL_AVX2,    /* mn_gemm_nn_avx2 (gemm_avx2.c) */
    MN_KERNEL_AVX512,  /* mn_gemm_nn_avx512 (gemm_avx512.c) */
    MN_KERNEL_AVX512_BF16 /* the Winograd products in bfloat16 (gemm_avx512bf16.c); other products AVX512 */
} mn_kernel;

/* Which build of the blocked tower runs (blocked_*.c). */
typedef enum { MN_ISA_GENERIC, MN_ISA_AVX2, MN_ISA_AVX512 } mn_isa;

/* The process's CPU and kernel choice. */
typedef struct mn_cpu {
    int has_avx2;          /* AVX2 + FMA */
    int has_avx512;        /* AVX-512F + FMA */
    int has_avx512bf16;    /* AVX-512F + FMA + AVX512-BF16 (vdpbf16ps) */
    int bf16;              /* bfloat16 taken (the default or MN_PRECISION=bf16): the Winograd products in it */
    mn_isa tower;          /* MN_SIMD=generic|avx2|avx512, else the best built and present */
    mn_kernel gemm_fixed;  /* products of shapes fixed by the model (MN_GEMM, MN_PRECISION; see cpu.c) */
    mn_kernel gemm_stable; /* products whose shape follows the batch or split: never BLAS */
    int winograd;          /* 0 when MN_WINOGRAD=0: every convolution direct */
} mn_cpu;

/* Probed on first use (thread-safe), then constant. Never NULL. */
const mn_cpu *mn_cpu_get(void);

#endif
