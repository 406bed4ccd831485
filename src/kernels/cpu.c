/*
 * cpu.c - the CPU probe and the kernel choice (cpu.h).
 *
 * The determinism rule (gemm.h) decides the products: those whose shape
 * follows the batch or the thread split always run on the own kernels. The
 * fixed-shape ones (the blocked path's Winograd products) may run on
 * OpenBLAS where its core keeps the rule, and do where that is faster - a
 * fixed table, measured on Debian 12's OpenBLAS 0.3.21 (bench/README.md):
 *
 *   OpenBLAS core        keeps the rule   Winograd products on
 *   SkylakeX, Cooperlake yes              OpenBLAS (about 15% faster than
 *                                         the own AVX-512 kernel here)
 *   Haswell, Zen         no: a column's   the own AVX-512 or AVX2 kernel
 *                        value depends on (as fast as OpenBLAS Haswell)
 *                        where it lies
 *   Prescott, Core2,     yes              the own kernel where the CPU has
 *   Nehalem, Sandybridge                  AVX2 (OpenBLAS there is 2-4x
 *                                         slower), else OpenBLAS
 *   any other            unknown          the own kernel, else OpenBLAS
 *
 * "Keeps the rule" is what CTest checks on every machine: test_determinism
 * under each core (tests/CMakeLists.txt), and with MN_GEMM=generic under
 * the SSE and AVX ones.
 *
 * Overrides, for comparison and debugging:
 *   MN_GEMM=blas     fixed-shape products on BLAS whatever the core
 *   MN_GEMM=avx2|avx512|generic   that own kernel for both kinds (generic:
 *                    the fixed-shape ones on BLAS, as on a CPU without AVX2);
 *                    one the CPU lacks is ignored
 *   MN_SIMD=generic|avx2|avx512   the tower's build (at most the best present);
 *                    generic also keeps patch sampling scalar (patch.c)
 *   MN_PRECISION=fp32|bf16   bf16: the Winograd products (the blocked path's
 *                    convolutions, most of the tower's work) and the
 *                    blocked path's fc in bfloat16 on AVX512-BF16
 *                    (gemm_avx512bf16.c), everything else in fp32; ignored where the CPU lacks AVX512-BF16 or
 *                    MN_GEMM names a kernel. fp32 keeps the results
 *                    PyTorch's within 1e-4; bf16's bounds are in matchnet.h
 *                    (mn_blas_info() says which runs)
 *   MN_WINOGRAD=0    every convolution direct (read when a model is loaded)
 *
 * Without MN_PRECISION the precision is a fixed table too, from the same
 * measurements (bench/README.md; both precisions meet the accuracy bounds
 * of matchnet.h on the shipped model):
 *
 *   CPU                          default  why
 *   AMD with AVX512-BF16 (Zen 4) bf16     vdpbf16ps does twice the
 *                                         multiply-adds of Zen 4's 512-bit
 *                                         FMA: the tower 1.31x (3076 against
 *                                         2352 patches/s, batch 64, 2 cores)
 *   Intel with AVX512-BF16       fp32     not measured (Sapphire Rapids' two
 *   (Cooper Lake, Sapphire                512-bit FMA ports already match
 *   Rapids)                               vdpbf16ps's rate on paper)
 *   any other                    fp32     no bfloat16 instruction
 */
#include "cpu.h"

#include "blas.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static mn_cpu mn_cpu_state;
static pthread_once_t mn_cpu_once = PTHREAD_ONCE_INIT;

static int env_is(const char *env, const char *value)
{
    return env && strcmp(env, value) == 0;
}

static void mn_cpu_probe(void)
{
    mn_cpu *c = &mn_cpu_state;
    int bf16_default = 0; /* bfloat16 is this CPU's default precision (the table above) */
#if defined(MN_HAVE_X86_KERNELS)
    __builtin_cpu_init();
    const int fma = __builtin_cpu_supports("fma") != 0;
    c->has_avx2 = fma && __builtin_cpu_supports("avx2");
    c->has_avx512 = fma && __builtin_cpu_supports("avx512f");
#if defined(MN_HAVE_BF16_KERNEL)
    /* AVX512-BW too: the bfloat16 file interleaves words (every CPU with
     * AVX512-BF16 so far has it). */
    c->has_avx512bf16 =
        c->has_avx512 && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
    bf16_default = c->has_avx512bf16 && __builtin_cpu_is("amd"); /* the table above */
#endif
#endif
    const mn_kernel best = c->has_avx512 ? MN_KERNEL_AVX512 : c->has_avx2 ? MN_KERNEL_AVX2 : MN_KERNEL_GENERIC;
    const char *gemm = getenv("MN_GEMM");
    c->gemm_stable = best;
    c->gemm_fixed = best != MN_KERNEL_GENERIC ? best : MN_KERNEL_BLAS;
    const char *core = mn_blas_core();
    if (c->has_avx512 && (env_is(core, "SkylakeX") || env_is(core, "Cooperlake")))
        c->gemm_fixed = MN_KERNEL_BLAS;
    if (env_is(gemm, "blas")) {
        c->gemm_fixed = MN_KERNEL_BLAS;
    } else if (env_is(gemm, "avx2") && c->has_avx2) { /* an own kernel for the fixed-shape products too */
        c->gemm_fixed = c->gemm_stable = MN_KERNEL_AVX2;
    } else if (env_is(gemm, "avx512") && c->has_avx512) {
        c->gemm_fixed = c->gemm_stable = MN_KERNEL_AVX512;
    } else if (env_is(gemm, "generic")) {
        c->gemm_fixed = MN_KERNEL_BLAS; /* the packed Winograd layout exists for the vector kernels only */
        c->gemm_stable = MN_KERNEL_GENERIC;
    } else if (c->has_avx512bf16) {
        const char *precision = getenv("MN_PRECISION");
        if (env_is(precision, "bf16") || (!env_is(precision, "fp32") && bf16_default)) {
            c->gemm_fixed = MN_KERNEL_AVX512_BF16;
            c->bf16 = 1;
        }
    }

    const char *simd = getenv("MN_SIMD");
    c->tower = MN_ISA_GENERIC;
#if defined(MN_HAVE_X86_KERNELS)
    int avx512 = c->has_avx512, avx2 = c->has_avx2;
    if (env_is(simd, "generic"))
        avx512 = avx2 = 0;
    else if (env_is(simd, "avx2"))
        avx512 = 0;
    c->tower = avx512 ? MN_ISA_AVX512 : avx2 ? MN_ISA_AVX2 : MN_ISA_GENERIC;
#else
    (void)simd;
#endif
    c->winograd = !env_is(getenv("MN_WINOGRAD"), "0");
}

const mn_cpu *mn_cpu_get(void)
{
    pthread_once(&mn_cpu_once, mn_cpu_probe);
    return &mn_cpu_state;
}
