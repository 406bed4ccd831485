/*
 * gemm_avx512bf16.c - the Winograd products in bfloat16: AVX512-BF16's
 * vdpbf16ps multiplies pairs of bfloat16 values and adds both products to
 * one float lane, twice the multiply-adds of an fp32 FMA per instruction
 * and half the bytes of A and B. Only the low-precision mode's products
 * run here (MN_PRECISION=bf16, cpu.c): the blocked path's Winograd products
 * and fc, and the small blocks' products of the same convolutions; every
 * other product stays in fp32 on gemm_avx512.c, which also serves this
 * row's plain products (isa.c).
 *
 * A (the weights) is packed once, at model load, into panels of 6 rows
 * holding k in pairs: [m / 6][k / 2][6] pairs, a pair being two bfloat16 in
 * one 32-bit word (k, k + 1; the low half first, as vdpbf16ps reads them),
 * odd k padded with 0. B, in strips of 32 columns as [k / 2][32] pairs,
 * either arrives so (the Winograd input transform rounds into them through
 * mn_round_pairs_avx512bf16) or is rounded KB rows at a time, from the fp32
 * kernels' strips or plain rows, just before the 6 x 32 micro-kernel passes
 * over it. Rounding is to nearest even (vcvtne2ps2bf16 for B, the same rule
 * in C for A). C is fp32.
 *
 * The determinism rule (gemm.h) holds: an element of C is one chain of
 * vdpbf16ps over the pairs of k in KB blocks, whatever m, n and its place.
 *
 * Built with -mavx512f -mavx512bw -mavx512bf16 -mfma (kernels.cmake); called only
 * where cpu.c found AVX512-BF16.
 */
#include "gemm_blocked.h"
#include "gemm_tile512.h"
#include "isa.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define NR 32
/* Rows of k rounded per B block: KB / 2 pairs x 32 columns x 4 bytes = 16 KB, in L1. */
#define KB 256

/* fp32 -> bfloat16, round to nearest even; NaN stays NaN. */
static uint16_t to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

size_t mn_gemm_packed_a_bf16_words(int m, int k)
{
    return (size_t)((m + MN_GEMM_MR - 1) / MN_GEMM_MR) * MN_GEMM_MR * (size_t)((k + 1) / 2);
}

/* n vectors of length k, element (j, kk) at x[j * sj + kk * sk], into
 * panels of w vectors holding k in pairs: [n / w][k / 2][w] words, a word
 * the bfloat16 of (j, 2p) in its low half and of (j, 2p + 1) in its high
 * half; missing vectors and an odd k's last partner are 0. A's panels of
 * 6 rows (sj = lda, sk = 1) and B's strips of 32 columns (sj = 1, sk = ldb). */
static void pack_pairs(int n, int k, const float *x, size_t sj, size_t sk, int w, uint32_t *out)
{
    const int kp = (k + 1) / 2;
    for (int j0 = 0; j0 < n; j0 += w)
        for (int p = 0; p < kp; p++)
            for (int j = j0; j < j0 + w; j++) {
                const int k0 = 2 * p, k1 = k0 + 1;
                const uint32_t lo = j < n ? to_bf16(x[(size_t)j * sj + (size_t)k0 * sk]) : 0;
                const uint32_t hi = j < n && k1 < k ? to_bf16(x[(size_t)j * sj + (size_t)k1 * sk]) : 0;
                *out++ = lo | hi << 16;
            }
}

void mn_gemm_pack_a_bf16(int m, int k, const float *a, int lda, float *ap_words)
{
    /* The caller's buffer is sized in floats (mn_gemm_packed_a_floats):
     * as many 32-bit words as this layout needs, or more. */
    pack_pairs(m, k, a, (size_t)lda, 1, MN_GEMM_MR, (uint32_t *)(void *)ap_words);
}

/* Rows a and b of 16 floats as 16 bfloat16 pairs, a's values in the low
 * halves: both rounded to nearest even by one vcvtne2ps2bf16 (a's 16 low,
 * b's 16 high), then one vpermw interleaves them (16-bit element 2j takes
 * element j, 2j + 1 takes element 16 + j). */
static inline __m512i pair_words(__m512 a, __m512 b)
{
    static const uint16_t order[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    return _mm512_permutexvar_epi16(_mm512_loadu_si512((const void *)order), (__m512i)_mm512_cvtne2ps_pbh(b, a));
}

/* Rows [k0, k0 + kc) of B (rows ldb floats apart), columns [0, cols), cols
 * <= 32 -> [kc / 2][32] bfloat16 pairs (kc even, or B's last row; missing
 * columns and a missing row k + 1 are 0). */
static void round_rows(const float *b, size_t ldb, int k, int k0, int kc, int cols, uint32_t *out)
{
    const __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    const __mmask16 m1 = (__mmask16)(cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (1u << (cols - 16)) - 1);
    for (int p = 0; p < (kc + 1) / 2; p++) {
        const int r0 = k0 + 2 * p, r1 = r0 + 1;
        for (int h = 0; h < NR; h += 16) {
            const __mmask16 mk = h ? m1 : m0;
            const __m512 x0 = _mm512_maskz_loadu_ps(mk, b + (size_t)r0 * ldb + h);
            const __m512 x1 = r1 < k ? _mm512_maskz_loadu_ps(mk, b + (size_t)r1 * ldb + h) : _mm512_setzero_ps();
            _mm512_storeu_si512((void *)(out + (size_t)p * NR + h), pair_words(x0, x1));
        }
    }
}

/* C tile (6 x 32, ldc) (+)= A panel (kp pairs) * B pairs (kp x 32). */
static void kernel_6x32_bf16(int kp, const uint32_t *ap, const uint32_t *bp, float *c, int ldc, int accumulate,
                             int rows, int cols)
{
    __m512 acc[MN_GEMM_MR][2];
    for (int r = 0; r < MN_GEMM_MR; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)bp);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(bp + 16));
        for (int r = 0; r < MN_GEMM_MR; r++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
        }
        ap += MN_GEMM_MR;
        bp += NR;
    }
    mn_tile512_store(acc, c, ldc, accumulate, rows, cols);
}

/* Columns [jr, jr + cols) of C (+)= A (m rows, 6-row panels of kp_all
 * pairs each) times pairs [k0 / 2, k0 / 2 + kp) of B, bp: those pairs of
 * one strip. */
static void panels(int m, int kp_all, int k0, int kp, const uint32_t *ap, const uint32_t *bp, float *c, int ldc,
                   int cols)
{
    const size_t panel = (size_t)MN_GEMM_MR * (size_t)kp_all; /* words per A panel */
    for (int ir = 0; ir < m; ir += MN_GEMM_MR)
        kernel_6x32_bf16(kp, ap + (size_t)(ir / MN_GEMM_MR) * panel + (size_t)(k0 / 2) * MN_GEMM_MR, bp,
                         c + (size_t)ir * ldc, ldc, k0 > 0, m - ir < MN_GEMM_MR ? m - ir : MN_GEMM_MR, cols);
}

/* B in plain rows: each strip of 32 columns rounded to pairs KB rows at a
 * time, just before the kernel passes over it. */
void mn_gemm_prepacked_rows_avx512bf16(int m, int n, int k, const float *ap_words, const float *b, int ldb, float *c,
                                       int ldc)
{
    const uint32_t *ap = (const uint32_t *)(const void *)ap_words;
    uint32_t pairs[KB / 2 * NR];
    for (int jr = 0; jr < n; jr += NR) {
        const int cols = n - jr < NR ? n - jr : NR;
        for (int k0 = 0; k0 < k; k0 += KB) {
            const int kc = k - k0 < KB ? k - k0 : KB;
            round_rows(b + jr, (size_t)ldb, k, k0, kc, cols, pairs);
            panels(m, (k + 1) / 2, k0, (kc + 1) / 2, ap, pairs, c + jr, ldc, cols);
        }
    }
}

/* B in the fp32 kernels' strips: each strip is B's rows 32 floats apart. */
void mn_gemm_prepacked_avx512bf16(int m, int n, int k, const float *ap_words, const float *bp, float *c, int ldc)
{
    for (int jr = 0; jr < n; jr += NR)
        mn_gemm_prepacked_rows_avx512bf16(m, n - jr < NR ? n - jr : NR, k, ap_words, bp + (size_t)jr * k, NR, c + jr,
                                          ldc);
}

/* B already in pairs ([n / 32][(k + 1) / 2][32] words, mn_round_pairs_avx512bf16's
 * output): the kernel straight on it, k in the same KB blocks as above, so
 * that C is the value mn_gemm_prepacked_avx512bf16 gives on the fp32 strips. */
void mn_gemm_prepacked_pairs_avx512bf16(int m, int n, int k, const float *ap_words, const uint32_t *bp, float *c,
                                        int ldc)
{
    const uint32_t *ap = (const uint32_t *)(const void *)ap_words;
    const int kp_all = (k + 1) / 2;
    for (int jr = 0; jr < n; jr += NR) {
        const uint32_t *strip = bp + (size_t)(jr / NR) * kp_all * NR;
        for (int k0 = 0; k0 < k; k0 += KB) {
            const int kc = k - k0 < KB ? k - k0 : KB;
            panels(m, kp_all, k0, (kc + 1) / 2, ap, strip + (size_t)(k0 / 2) * NR, c + jr, ldc,
                   n - jr < NR ? n - jr : NR);
        }
    }
}

void mn_round_pairs_avx512bf16(int points, int width, const float *x0, const float *x1, size_t xstride, uint32_t *out,
                               size_t ostride)
{
    for (int i = 0; i < points; i++)
        for (int h = 0; h < width; h += 16) {
            const __m512 a = _mm512_loadu_ps(x0 + (size_t)i * xstride + h);
            const __m512 b = x1 ? _mm512_loadu_ps(x1 + (size_t)i * xstride + h) : _mm512_setzero_ps();
            _mm512_storeu_si512((void *)(out + (size_t)i * ostride + h), pair_words(a, b));
        }
}

/* ---- B packed once in bfloat16: the tower's fully connected layer ----
 *
 * In the low-precision mode the bottleneck fc (4096 x 256 for each block of
 * 16 patches) also runs here: B (the weights, [k][n]) rounded and packed
 * once at model load into strips of 32 columns, [n / 32][k / 2][32] pairs;
 * A (the block's rows) rounded into 6-row panels per KB block of k, in the
 * caller's packing scratch. An element of C is one chain of vdpbf16ps per
 * KB block, the blocks added in order: whatever m, n and its place. */

size_t mn_gemm_packed_b_bf16_floats(int k, int n)
{
    return (size_t)((n + NR - 1) / NR) * NR * (size_t)((k + 1) / 2);
}

void mn_gemm_pack_b_bf16(int k, int n, const float *b, int ldb, float *bp_words)
{
    pack_pairs(n, k, b, 1, (size_t)ldb, NR, (uint32_t *)(void *)bp_words);
}

void mn_gemm_nn_packed_b_bf16(int m, int n, int k, const float *a, int lda, const float *bp_words, float *c, int ldc,
                              float *pack)
{
    const uint32_t *bp = (const uint32_t *)(const void *)bp_words;
    const size_t strip = (size_t)NR * (size_t)((k + 1) / 2); /* words per B strip */
    uint32_t *ap = (uint32_t *)(void *)(((uintptr_t)pack + 63) & ~(uintptr_t)63);
    for (int i0 = 0; i0 < m; i0 += MN_GEMM_MC) {
        const int mc = m - i0 < MN_GEMM_MC ? m - i0 : MN_GEMM_MC;
        for (int k0 = 0; k0 < k; k0 += KB) {
            const int kc = k - k0 < KB ? k - k0 : KB, kp = (kc + 1) / 2;
            /* A rows [i0, i0 + mc), columns [k0, k0 + kc) -> [mc / 6][kp][6] pairs. */
            pack_pairs(mc, kc, a + (size_t)i0 * lda + k0, (size_t)lda, 1, MN_GEMM_MR, ap);
            for (int jr = 0; jr < n; jr += NR)
                for (int ir = 0; ir < mc; ir += MN_GEMM_MR)
                    kernel_6x32_bf16(kp, ap + (size_t)(ir / MN_GEMM_MR) * kp * MN_GEMM_MR,
                                     bp + (size_t)(jr / NR) * strip + (size_t)(k0 / 2) * NR,
                                     c + (size_t)(i0 + ir) * ldc + jr, ldc, k0 > 0,
                                     mc - ir < MN_GEMM_MR ? mc - ir : MN_GEMM_MR, n - jr < NR ? n - jr : NR);
        }
    }
}
