/*
 * blas.c - the one file that talks to BLAS, and the choice of product kernel
 * for each kind of product (the determinism rule in internal.h).
 */
#include "internal.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mn_gemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, int trans_b,
             float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a,
                lda, b, ldb, beta, c, ldc);
}

static char mn_blas_line[640];
static mn_kernel mn_gemm_choice, mn_gemm_stable_choice;
static pthread_once_t mn_gemm_once = PTHREAD_ONCE_INIT;
static pthread_once_t mn_blas_once = PTHREAD_ONCE_INIT;

#ifdef MN_HAVE_OPENBLAS
/* Declared by OpenBLAS's cblas.h; repeated so that any cblas.h works. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);

void mn_blas_set_threads(int n)
{
    openblas_set_num_threads(n);
}

int mn_blas_get_threads(void)
{
    return openblas_get_num_threads();
}

static void mn_blas_describe(void)
{
    const char *core = openblas_get_corename();
    const char *isa;
    mn_tower_block_impl(&isa);
    snprintf(mn_blas_line, sizeof mn_blas_line,
             "%s; core %s; Winograd products: %s; other products (fully connected, metric, matching, small blocks): "
             "%s; tower: %s blocked path",
             openblas_get_config(), core ? core : "?",
             mn_gemm_kernel() == MN_KERNEL_BLAS ? "OpenBLAS" : mn_kernel_name(mn_gemm_kernel()),
             mn_kernel_name(mn_gemm_stable_kernel()), isa);
}
#else
void mn_blas_set_threads(int n)
{
    (void)n;
}

int mn_blas_get_threads(void)
{
    return 1;
}

static void mn_blas_describe(void)
{
    const char *isa;
    mn_tower_block_impl(&isa);
    snprintf(mn_blas_line, sizeof mn_blas_line,
             "generic CBLAS; Winograd products: %s; other products (fully connected, metric, matching, small blocks): "
             "%s; tower: %s blocked path",
             mn_kernel_name(mn_gemm_kernel()), mn_kernel_name(mn_gemm_stable_kernel()), isa);
}
#endif



/* Unset, MN_GEMM leaves every product to the own kernels on CPUs with AVX2
 * or AVX-512, whatever OpenBLAS core runs, and the fixed-shape products to
 * BLAS on older CPUs. Why: OpenBLAS's Haswell kernels (which it also runs on
 * AMD Zen) give a column of C a value that depends on where the column lies,
 * so a patch's descriptor would change with its place in the batch; its
 * SSE and AVX cores (Prescott, Core2, Nehalem, Sandybridge) and SkylakeX and
 * Cooperlake keep the rule, as the CTest matrix shows (test_determinism under
 * each core, MN_GEMM=generic), but the own kernels are as fast or faster
 * (bench/README.md), so one rule serves every CPU that has them.
 * MN_GEMM=blas (for comparison) sends the fixed-shape products to BLAS
 * whatever the core; avx2, avx512 and generic pick the own kernel for both
 * kinds (generic: the fixed-shape ones to BLAS, as on a CPU without AVX2). */
static void mn_gemm_choose(void)
{
    const char *env = getenv("MN_GEMM");
    const mn_kernel best = mn_gemm_avx512_available() ? MN_KERNEL_AVX512
                           : mn_gemm_avx2_available() ? MN_KERNEL_AVX2
                                                      : MN_KERNEL_GENERIC;
    mn_gemm_stable_choice = best;
    if (env && strcmp(env, "blas") == 0) {
        mn_gemm_choice = MN_KERNEL_BLAS;
    } else if (env && strcmp(env, "avx2") == 0 && mn_gemm_avx2_available()) {
        mn_gemm_choice = mn_gemm_stable_choice = MN_KERNEL_AVX2;
    } else if (env && strcmp(env, "avx512") == 0 && mn_gemm_avx512_available()) {
        mn_gemm_choice = mn_gemm_stable_choice = MN_KERNEL_AVX512;
    } else if (env && strcmp(env, "generic") == 0) {
        mn_gemm_choice = MN_KERNEL_BLAS; /* the packed Winograd layout exists for the vector kernels only */
        mn_gemm_stable_choice = MN_KERNEL_GENERIC;
    } else {
        mn_gemm_choice = best != MN_KERNEL_GENERIC ? best : MN_KERNEL_BLAS;
    }
}

mn_kernel mn_gemm_kernel(void)
{
    pthread_once(&mn_gemm_once, mn_gemm_choose);
    return mn_gemm_choice;
}

mn_kernel mn_gemm_stable_kernel(void)
{
    pthread_once(&mn_gemm_once, mn_gemm_choose);
    return mn_gemm_stable_choice;
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

static void mn_gemm_own(mn_kernel kind, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
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
    mn_kernel kind = mn_gemm_kernel();
    if (kind == MN_KERNEL_BLAS)
        mn_gemm(m, n, k, a, lda, b, ldb, 0, 0.0f, c, ldc);
    else
        mn_gemm_own(kind, m, n, k, a, lda, b, ldb, c, ldc, pack);
}

void mn_gemm_stable(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                    float *pack)
{
    mn_gemm_own(mn_gemm_stable_kernel(), m, n, k, a, lda, b, ldb, c, ldc, pack);
}

const char *mn_blas_info(void)
{
    pthread_once(&mn_blas_once, mn_blas_describe);
    return mn_blas_line;
}
