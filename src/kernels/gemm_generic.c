/*
 * gemm_generic.c - the library's own matrix product in plain C, for CPUs
 * without AVX2 + FMA (and other architectures).
 *
 * It exists for the determinism rule (gemm.h; mn_gemm_stable): the
 * products whose shape changes with the batch size or the thread split must
 * give every element of C the same value whatever m, n and the element's
 * position, which BLAS does not promise. Here each C[i][j] is
 * sum_p A[i][p] B[p][j], added in order p = 0, 1, ..., k-1, one multiply and
 * one add at a time: the compiler may vectorise over j (lanes are independent
 * elements) but may not fuse or reorder, since this file is built with
 * -ffp-contract=off and without -ffast-math.
 *
 * Columns go in blocks of NCB so that one block of B rows (k x NCB) stays in
 * cache while every row of A passes over it.
 */
#include "isa.h"

#include <string.h>

#define NCB 256

void mn_gemm_nn_generic(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                        float *pack)
{
    (void)pack; /* no packing: the loop order below keeps B rows in cache */
    for (int j0 = 0; j0 < n; j0 += NCB) {
        const int nb = n - j0 < NCB ? n - j0 : NCB;
        for (int i = 0; i < m; i++) {
            float *ci = c + (size_t)i * ldc + j0;
            const float *ai = a + (size_t)i * lda;
            memset(ci, 0, sizeof(float) * (size_t)nb);
            for (int p = 0; p < k; p++) {
                const float av = ai[p];
                const float *bp = b + (size_t)p * ldb + j0;
                for (int j = 0; j < nb; j++)
                    ci[j] += av * bp[j];
            }
        }
    }
}
