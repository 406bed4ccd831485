/*
 * blas.c - the one file that talks to BLAS.
 */
#include "internal.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

void mn_gemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, int trans_b,
             float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a,
                lda, b, ldb, beta, c, ldc);
}

static char mn_blas_line[256];
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
    const char *hint = "";
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    /* OpenBLAS falls back to these generic x86 cores on CPUs it does not know. */
    static const char *generic[] = {"Prescott", "Core2", "Nehalem", "Sandybridge", "Katmai", "Northwood"};
    int is_generic = 0;
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++)
        is_generic |= core && strcmp(core, generic[i]) == 0;
    __builtin_cpu_init();
    if (is_generic && __builtin_cpu_supports("avx512f"))
        hint = " (CPU has AVX-512: OPENBLAS_CORETYPE=SkylakeX is about 4x faster)";
    else if (is_generic && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        hint = " (CPU has AVX2: OPENBLAS_CORETYPE=Haswell is about 2x faster)";
#endif
    snprintf(mn_blas_line, sizeof mn_blas_line, "%s; core %s%s", openblas_get_config(),
             core ? core : "?", hint);
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
    snprintf(mn_blas_line, sizeof mn_blas_line, "generic CBLAS");
}
#endif

const char *mn_blas_info(void)
{
    pthread_once(&mn_blas_once, mn_blas_describe);
    return mn_blas_line;
}
