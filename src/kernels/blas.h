/*
 * blas.h - the one file that calls BLAS (blas.c). It depends on nothing
 * else in the library; which products reach it is decided in cpu.c.
 */
#ifndef MN_BLAS_H
#define MN_BLAS_H

#include <stddef.h>

/* Row-major C[m x n] = A[m x k] * op(B) + beta * C, op(B) = B[k x n] or,
 * with trans_b, B[n x k] transposed. */
void mn_gemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, int trans_b, float beta,
             float *c, int ldc);
void mn_blas_set_threads(int n);
int mn_blas_get_threads(void);
/* OpenBLAS's core name ("Haswell", "SkylakeX", ...), "" for another BLAS. */
const char *mn_blas_core(void);
/* The BLAS's name, build and core, for mn_blas_info(). */
void mn_blas_describe(char *buf, size_t size);

#endif
