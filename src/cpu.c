/*
 * cpu.c - the CPU probe and the kernel choice (cpu.h).
 *
 * The determinism rule (internal.h) decides the products: those whose shape
 * follows the batch or the thread split always run on the own kernels. The
 * fixed-shape ones (the blocked path's Winograd products) do too on CPUs
 * with AVX2 or AVX-512, whatever OpenBLAS core runs: OpenBLAS's Haswell
 * kernels (which it also runs on AMD Zen) give a column of C a value that
 * depends on where the column lies, so a patch's descriptor would change
 * with its place in the batch. Its SSE and AVX cores (Prescott, Core2,
 * Nehalem, Sandybridge) keep the rule, as do SkylakeX and Cooperlake (CTest:
 * test_determinism under each core, and with MN_GEMM=generic), and the own
 * kernels measure as fast or faster where they run (bench/README.md), so one
 * rule serves every CPU that has them; on older CPUs OpenBLAS takes the
 * fixed-shape products.
 *
 * Overrides, for comparison and debugging:
 *   MN_GEMM=blas     fixed-shape products on BLAS whatever the core
 *   MN_GEMM=avx2|avx512|generic   that own kernel for both kinds (generic:
 *                    the fixed-shape ones on BLAS, as on a CPU without AVX2);
 *                    one the CPU lacks is ignored
 *   MN_SIMD=generic|avx2|avx512   the tower's build (at most the best present)
 *   MN_WINOGRAD=0    every convolution direct (read when a model is loaded)
 */
#include "cpu.h"

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
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    const int fma = __builtin_cpu_supports("fma") != 0;
    c->has_avx2 = fma && __builtin_cpu_supports("avx2");
    c->has_avx512 = fma && __builtin_cpu_supports("avx512f");
#endif
    const mn_kernel best = c->has_avx512 ? MN_KERNEL_AVX512 : c->has_avx2 ? MN_KERNEL_AVX2 : MN_KERNEL_GENERIC;
    const char *gemm = getenv("MN_GEMM");
    c->gemm_stable = best;
    c->gemm_fixed = best != MN_KERNEL_GENERIC ? best : MN_KERNEL_BLAS;
    if (env_is(gemm, "blas")) {
        c->gemm_fixed = MN_KERNEL_BLAS;
    } else if (env_is(gemm, "avx2") && c->has_avx2) {
        c->gemm_fixed = c->gemm_stable = MN_KERNEL_AVX2;
    } else if (env_is(gemm, "avx512") && c->has_avx512) {
        c->gemm_fixed = c->gemm_stable = MN_KERNEL_AVX512;
    } else if (env_is(gemm, "generic")) {
        c->gemm_fixed = MN_KERNEL_BLAS; /* the packed Winograd layout exists for the vector kernels only */
        c->gemm_stable = MN_KERNEL_GENERIC;
    }

    const char *simd = getenv("MN_SIMD");
    c->tower = MN_ISA_GENERIC;
#if defined(MN_HAVE_X86_BLOCKED)
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

const char *mn_kernel_name(mn_kernel kind)
{
    switch (kind) {
    case MN_KERNEL_BLAS: return "BLAS";
    case MN_KERNEL_GENERIC: return "libmatchnet's generic C kernel";
    case MN_KERNEL_AVX2: return "libmatchnet's AVX2 kernel";
    case MN_KERNEL_AVX512: return "libmatchnet's AVX-512 kernel";
    }
    return "?";
}

const char *mn_isa_name(mn_isa isa)
{
    return isa == MN_ISA_AVX512 ? "avx512" : isa == MN_ISA_AVX2 ? "avx2" : "generic";
}
