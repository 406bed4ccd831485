/*
 * blas.c - the one file that talks to BLAS. It depends on nothing else in
 * the library; which products reach it is decided in cpu.c.
 */
#include "blas.h"

#include <cblas.h>
#include <stdio.h>

void mn_gemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, int trans_b,
             float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a,
                lda, b, ldb, beta, c, ldc);
}

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

const char *mn_blas_core(void)
{
    const char *core = openblas_get_corename();
    return core ? core : "";
}

void mn_blas_describe(char *buf, size_t size)
{
    const char *core = mn_blas_core();
    snprintf(buf, size, "%s; core %s", openblas_get_config(), core[0] ? core : "?");
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

const char *mn_blas_core(void)
{
    return "";
}

void mn_blas_describe(char *buf, size_t size)
{
    snprintf(buf, size, "generic CBLAS");
}
#endif
