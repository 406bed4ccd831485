/*
 * gemm_avx2.c - single-precision matrix product for the convolutions, with
 * AVX2 + FMA or AVX-512, selected at run time.
 *
 * Why not always OpenBLAS: a BLAS build falls back to generic SSE kernels on
 * CPUs newer than itself (Debian 12's OpenBLAS 0.3.21 picks "Prescott" on
 * Sapphire Rapids, 3-4x slower), and the convolutions are 95% of the work.
 * These kernels need only AVX2 and FMA (Haswell, 2013, and later) or
 * AVX-512F, so the library runs at a reasonable speed whatever BLAS it was
 * given. The packing buffer is sized for the wider (32-column) strips.
 *
 * Scheme (as BLIS / GotoBLAS): C = A B with A (M x K) the weights and B
 * (K x N) the im2col matrix, row-major. K is cut in blocks of KC; for each
 * block, B is packed into strips of 16 columns and A into strips of 6 rows,
 * both contiguous in k, and a 6 x 16 micro-kernel keeps its tile of C in
 * 12 ymm registers for the whole block. N is cut in blocks of NC so the
 * packed B stays in L2/L3. Edges are padded with zeros in the packs and
 * written through a small temporary tile.
 */
#include "internal.h"

#include <string.h>

#define MR 6
#define NR 16
#define KC 256
#define NC 1536
#define MC 96

size_t mn_gemm_pack_floats(void)
{
    return (size_t)KC * NC + (size_t)KC * (MC + MR) + 64;
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

#define MN_TARGET __attribute__((target("avx2,fma")))

/* Pack rows [0, kc) x columns [j0, j0 + nc) of B into NR-wide strips. */
MN_TARGET static void pack_b(int kc, int nc, const float *b, int ldb, float *bp)
{
    for (int j = 0; j < nc; j += NR) {
        int w = nc - j < NR ? nc - j : NR;
        if (w == NR) {
            for (int k = 0; k < kc; k++) {
                const float *src = b + (size_t)k * ldb + j;
                _mm256_storeu_ps(bp, _mm256_loadu_ps(src));
                _mm256_storeu_ps(bp + 8, _mm256_loadu_ps(src + 8));
                bp += NR;
            }
        } else {
            for (int k = 0; k < kc; k++) {
                const float *src = b + (size_t)k * ldb + j;
                int t = 0;
                for (; t < w; t++)
                    bp[t] = src[t];
                for (; t < NR; t++)
                    bp[t] = 0.0f;
                bp += NR;
            }
        }
    }
}

/* Pack rows [0, mc) x columns [0, kc) of A into MR-tall strips. */
static void pack_a(int mc, int kc, const float *a, int lda, float *ap)
{
    for (int i = 0; i < mc; i += MR) {
        int h = mc - i < MR ? mc - i : MR;
        for (int k = 0; k < kc; k++) {
            int r = 0;
            for (; r < h; r++)
                ap[r] = a[(size_t)(i + r) * lda + k];
            for (; r < MR; r++)
                ap[r] = 0.0f;
            ap += MR;
        }
    }
}

/* Edge tiles (fewer than MR rows or nr columns of C left) go through a full
 * MR x nr temporary, so the vector stores never leave C. */
static void edge_tile_load(float *tile, int nr, const float *c, int ldc, int rows, int cols, int accumulate)
{
    memset(tile, 0, sizeof(float) * (size_t)MR * nr);
    if (accumulate)
        for (int r = 0; r < rows; r++)
            memcpy(tile + (size_t)r * nr, c + (size_t)r * ldc, sizeof(float) * (size_t)cols);
}

static void edge_tile_store(const float *tile, int nr, float *c, int ldc, int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        memcpy(c + (size_t)r * ldc, tile + (size_t)r * nr, sizeof(float) * (size_t)cols);
}

/* C tile (MR x NR, ldc) (+)= Ap (MR x kc) * Bp (kc x NR). */
MN_TARGET static void kernel_6x16(int kc, const float *ap, const float *bp, float *c, int ldc, int accumulate,
                                  int rows, int cols)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
           c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
           c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
           c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8), a;
        a = _mm256_broadcast_ss(ap + 0);
        c00 = _mm256_fmadd_ps(a, b0, c00);
        c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(ap + 1);
        c10 = _mm256_fmadd_ps(a, b0, c10);
        c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(ap + 2);
        c20 = _mm256_fmadd_ps(a, b0, c20);
        c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(ap + 3);
        c30 = _mm256_fmadd_ps(a, b0, c30);
        c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(ap + 4);
        c40 = _mm256_fmadd_ps(a, b0, c40);
        c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(ap + 5);
        c50 = _mm256_fmadd_ps(a, b0, c50);
        c51 = _mm256_fmadd_ps(a, b1, c51);
        ap += MR;
        bp += NR;
    }
    float tile[MR * NR];
    const int edge = rows < MR || cols < NR;
    float *t = edge ? tile : c;
    const int ldt = edge ? NR : ldc;
    if (edge)
        edge_tile_load(tile, NR, c, ldc, rows, cols, accumulate);
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int r = 0; r < MR; r++) {
        float *row = t + (size_t)r * ldt;
        if (accumulate) {
            acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(row));
            acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(row + 8));
        }
        _mm256_storeu_ps(row, acc[r][0]);
        _mm256_storeu_ps(row + 8, acc[r][1]);
    }
    if (edge)
        edge_tile_store(tile, NR, c, ldc, rows, cols);
}

/* ---- AVX-512: the same scheme with 6 x 32 tiles in 12 zmm registers ---- */

#define NR5 32
#define MN_TARGET512 __attribute__((target("avx512f,fma")))

MN_TARGET512 static void pack_b32(int kc, int nc, const float *b, int ldb, float *bp)
{
    for (int j = 0; j < nc; j += NR5) {
        int w = nc - j < NR5 ? nc - j : NR5;
        for (int k = 0; k < kc; k++) {
            const float *src = b + (size_t)k * ldb + j;
            if (w == NR5) {
                _mm512_storeu_ps(bp, _mm512_loadu_ps(src));
                _mm512_storeu_ps(bp + 16, _mm512_loadu_ps(src + 16));
            } else {
                int t = 0;
                for (; t < w; t++)
                    bp[t] = src[t];
                for (; t < NR5; t++)
                    bp[t] = 0.0f;
            }
            bp += NR5;
        }
    }
}

MN_TARGET512 static void kernel_6x32(int kc, const float *ap, const float *bp, float *c, int ldc, int accumulate,
                                     int rows, int cols)
{
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        for (int r = 0; r < MR; r++) { /* unrolled by the compiler: MR is a constant */
            __m512 a = _mm512_set1_ps(ap[r]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        }
        ap += MR;
        bp += NR5;
    }
    float tile[MR * NR5];
    const int edge = rows < MR || cols < NR5;
    float *t = edge ? tile : c;
    const int ldt = edge ? NR5 : ldc;
    if (edge)
        edge_tile_load(tile, NR5, c, ldc, rows, cols, accumulate);
    for (int r = 0; r < MR; r++) {
        float *row = t + (size_t)r * ldt;
        if (accumulate) {
            acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(row));
            acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(row + 16));
        }
        _mm512_storeu_ps(row, acc[r][0]);
        _mm512_storeu_ps(row + 16, acc[r][1]);
    }
    if (edge)
        edge_tile_store(tile, NR5, c, ldc, rows, cols);
}

typedef void (*mn_pack_b_fn)(int kc, int nc, const float *b, int ldb, float *bp);
typedef void (*mn_kernel_fn)(int kc, const float *ap, const float *bp, float *c, int ldc, int accumulate, int rows,
                             int cols);

/* The blocked product around a micro-kernel of MR x nr. */
static void gemm_blocked(int nr, mn_pack_b_fn pack_b_nr, mn_kernel_fn kernel, int m, int n, int k, const float *a,
                         int lda, const float *b, int ldb, float *c, int ldc, float *pack)
{
    float *bp = (float *)(((uintptr_t)pack + 63) & ~(uintptr_t)63);
    float *ap = bp + (size_t)KC * NC;
    for (int jc = 0; jc < n; jc += NC) {
        int nc = n - jc < NC ? n - jc : NC;
        for (int pc = 0; pc < k; pc += KC) {
            int kc = k - pc < KC ? k - pc : KC;
            pack_b_nr(kc, nc, b + (size_t)pc * ldb + jc, ldb, bp);
            for (int ic = 0; ic < m; ic += MC) {
                int mc = m - ic < MC ? m - ic : MC;
                pack_a(mc, kc, a + (size_t)ic * lda + pc, lda, ap);
                for (int jr = 0; jr < nc; jr += nr)
                    for (int ir = 0; ir < mc; ir += MR)
                        kernel(kc, ap + (size_t)ir * kc, bp + (size_t)jr * kc, c + (size_t)(ic + ir) * ldc + jc + jr,
                               ldc, pc > 0, mc - ir < MR ? mc - ir : MR, nc - jr < nr ? nc - jr : nr);
            }
        }
    }
}

void mn_gemm_nn_avx512(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                       float *pack)
{
    gemm_blocked(NR5, pack_b32, kernel_6x32, m, n, k, a, lda, b, ldb, c, ldc, pack);
}

/* ---- products on operands packed once by the caller (Winograd) ---- */

size_t mn_gemm_packed_a_floats(int m, int k)
{
    return (size_t)((m + MR - 1) / MR) * MR * (size_t)k;
}

void mn_gemm_pack_a_all(int m, int k, const float *a, int lda, float *ap)
{
    pack_a(m, k, a, lda, ap);
}

int mn_gemm_strip(mn_kernel kind)
{
    return kind == MN_KERNEL_AVX512 ? NR5 : NR;
}

void mn_gemm_prepacked(mn_kernel kind, int m, int n, int k, const float *ap, const float *bp, float *c, int ldc)
{
    const int nr = kind == MN_KERNEL_AVX512 ? NR5 : NR;
    const mn_kernel_fn kernel = kind == MN_KERNEL_AVX512 ? kernel_6x32 : kernel_6x16;
    /* One B strip (k x nr) stays in L1 while every A panel passes over it. */
    for (int jr = 0; jr < n; jr += nr)
        for (int ir = 0; ir < m; ir += MR)
            kernel(k, ap + (size_t)ir * k, bp + (size_t)jr * k, c + (size_t)ir * ldc + jr, ldc, 0,
                   m - ir < MR ? m - ir : MR, n - jr < nr ? n - jr : nr);
}

void mn_gemm_nn_avx2(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                     float *pack)
{
    gemm_blocked(NR, pack_b, kernel_6x16, m, n, k, a, lda, b, ldb, c, ldc, pack);
}
#else
/* Not x86: cpu.c never chooses these kernels; they exist so that the
 * library links, and compute the same product in plain C. */
size_t mn_gemm_packed_a_floats(int m, int k)
{
    return (size_t)m * (size_t)k;
}

void mn_gemm_pack_a_all(int m, int k, const float *a, int lda, float *ap)
{
    for (int i = 0; i < m; i++)
        memcpy(ap + (size_t)i * k, a + (size_t)i * lda, sizeof(float) * (size_t)k);
}

int mn_gemm_strip(mn_kernel kind)
{
    (void)kind;
    return 16;
}

void mn_gemm_prepacked(mn_kernel kind, int m, int n, int k, const float *ap, const float *bp, float *c, int ldc)
{
    (void)kind, (void)m, (void)n, (void)k, (void)ap, (void)bp, (void)c, (void)ldc; /* never called: kind is 0 */
}

void mn_gemm_nn_avx512(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                       float *pack)
{
    (void)pack;
    mn_gemm_nn_generic(m, n, k, a, lda, b, ldb, c, ldc);
}

void mn_gemm_nn_avx2(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                     float *pack)
{
    (void)pack;
    mn_gemm_nn_generic(m, n, k, a, lda, b, ldb, c, ldc);
}
#endif
