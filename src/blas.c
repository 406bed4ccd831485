/*
 * blas.c - the one file that talks to BLAS.
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

static char mn_blas_line[512];
int mn_gemm_kernel(void);
static int mn_gemm_choice;
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

/* OpenBLAS falls back to these generic x86 cores on CPUs it does not know. */
static int mn_blas_core_is_generic(void)
{
    static const char *generic[] = {"Prescott", "Core2", "Nehalem", "Sandybridge", "Katmai", "Northwood"};
    const char *core = openblas_get_corename();
    int is_generic = 0;
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++)
        is_generic |= core && strcmp(core, generic[i]) == 0;
    return is_generic;
}

static void mn_blas_describe(void)
{
    const char *core = openblas_get_corename();
    const char *hint = "";
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    int is_generic = mn_blas_core_is_generic();
    __builtin_cpu_init();
    if (is_generic && __builtin_cpu_supports("avx512f"))
        hint = " (CPU has AVX-512: OPENBLAS_CORETYPE=SkylakeX makes OpenBLAS about 4x faster)";
    else if (is_generic && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        hint = " (CPU has AVX2: OPENBLAS_CORETYPE=Haswell makes OpenBLAS about 2x faster)";
#endif
    const char *isa;
    mn_tower_block_impl(&isa);
    snprintf(mn_blas_line, sizeof mn_blas_line, "%s; core %s%s%s; tower: %s blocked path",
             openblas_get_config(), core ? core : "?",
             mn_gemm_kernel() == 5   ? "; matrix products use libmatchnet's AVX-512 kernel"
             : mn_gemm_kernel() == 2 ? "; matrix products use libmatchnet's AVX2 kernel"
                                        : "",
             hint, isa);
}
#else
static int mn_blas_core_is_generic(void)
{
    return 1; /* a reference CBLAS: assume the own kernel is faster */
}

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
    snprintf(mn_blas_line, sizeof mn_blas_line, "generic CBLAS; tower: %s blocked path", isa);
}
#endif



static void mn_gemm_choose(void)
{
    const char *env = getenv("MN_GEMM");
    int best = mn_gemm_avx512_available() ? 5 : mn_gemm_avx2_available() ? 2 : 0;
    if (env && strcmp(env, "blas") == 0)
        mn_gemm_choice = 0;
    else if (env && strcmp(env, "avx2") == 0)
        mn_gemm_choice = mn_gemm_avx2_available() ? 2 : 0;
    else if (env && strcmp(env, "avx512") == 0)
        mn_gemm_choice = mn_gemm_avx512_available() ? 5 : 0;
    else
        mn_gemm_choice = mn_blas_core_is_generic() ? best : 0;
}

int mn_gemm_kernel(void)
{
    pthread_once(&mn_gemm_once, mn_gemm_choose);
    return mn_gemm_choice;
}

void mn_gemm_conv(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                  float *pack)
{
    int kind = mn_gemm_kernel();
    if (kind == 5)
        mn_gemm_nn_avx512(m, n, k, a, lda, b, ldb, c, ldc, pack);
    else if (kind == 2)
        mn_gemm_nn_avx2(m, n, k, a, lda, b, ldb, c, ldc, pack);
    else
        mn_gemm(m, n, k, a, lda, b, ldb, 0, 0.0f, c, ldc);
}

const char *mn_blas_info(void)
{
    pthread_once(&mn_blas_once, mn_blas_describe);
    return mn_blas_line;
}
