/*
 * gemm_drive.c - the blocking scheme the own vector kernels share
 * (gemm_blocked.h): packing A, the loops around a micro-kernel, and the
 * packed-operand layout of the Winograd products. Depends on nothing: the
 * per-instruction-set files supply the strips and micro-kernels.
 */
#include "gemm.h"
#include "gemm_blocked.h"
#include "isa.h"

#include <stdint.h>

size_t mn_gemm_pack_floats(void)
{
    return (size_t)MN_GEMM_KC * MN_GEMM_NC + (size_t)MN_GEMM_KC * (MN_GEMM_MC + MN_GEMM_MR) + 64;
}

void mn_gemm_pack_a(int mc, int kc, const float *a, int lda, float *ap)
{
    for (int i = 0; i < mc; i += MN_GEMM_MR) {
        int h = mc - i < MN_GEMM_MR ? mc - i : MN_GEMM_MR;
        for (int k = 0; k < kc; k++) {
            int r = 0;
            for (; r < h; r++)
                ap[r] = a[(size_t)(i + r) * lda + k];
            for (; r < MN_GEMM_MR; r++)
                ap[r] = 0.0f;
            ap += MN_GEMM_MR;
        }
    }
}

static size_t mn_round_up(int n, int to)
{
    return (size_t)((n + to - 1) / to) * (size_t)to;
}

/* The loops of mn_gemm_drive; with bpk (B packed once, block after block in
 * this order) the blocks are read from there instead of packed from b. */
static void mn_gemm_loops(int nr, mn_pack_b_fn pack_b, mn_micro_fn micro, int m, int n, int k, const float *a,
                          int lda, const float *b, int ldb, const float *bpk, float *c, int ldc, float *pack)
{
    float *scratch = (float *)(((uintptr_t)pack + 63) & ~(uintptr_t)63);
    float *ap = scratch + (size_t)MN_GEMM_KC * MN_GEMM_NC;
    for (int jc = 0; jc < n; jc += MN_GEMM_NC) {
        int nc = n - jc < MN_GEMM_NC ? n - jc : MN_GEMM_NC;
        for (int pc = 0; pc < k; pc += MN_GEMM_KC) {
            int kc = k - pc < MN_GEMM_KC ? k - pc : MN_GEMM_KC;
            const float *bp = bpk ? bpk : scratch;
            if (bpk)
                bpk += mn_round_up(nc, nr) * (size_t)kc;
            else
                pack_b(kc, nc, b + (size_t)pc * ldb + jc, ldb, scratch);
            for (int ic = 0; ic < m; ic += MN_GEMM_MC) {
                int mc = m - ic < MN_GEMM_MC ? m - ic : MN_GEMM_MC;
                mn_gemm_pack_a(mc, kc, a + (size_t)ic * lda + pc, lda, ap);
                for (int jr = 0; jr < nc; jr += nr)
                    for (int ir = 0; ir < mc; ir += MN_GEMM_MR)
                        micro(kc, ap + (size_t)ir * kc, bp + (size_t)jr * kc, c + (size_t)(ic + ir) * ldc + jc + jr,
                              ldc, pc > 0, mc - ir < MN_GEMM_MR ? mc - ir : MN_GEMM_MR, nc - jr < nr ? nc - jr : nr);
            }
        }
    }
}

void mn_gemm_drive(int nr, mn_pack_b_fn pack_b, mn_micro_fn micro, int m, int n, int k, const float *a, int lda,
                   const float *b, int ldb, float *c, int ldc, float *pack)
{
    mn_gemm_loops(nr, pack_b, micro, m, n, k, a, lda, b, ldb, NULL, c, ldc, pack);
}

size_t mn_gemm_packed_b_floats(int nr, int k, int n)
{
    size_t total = 0;
    for (int jc = 0; jc < n; jc += MN_GEMM_NC)
        total += mn_round_up(n - jc < MN_GEMM_NC ? n - jc : MN_GEMM_NC, nr) * (size_t)k;
    return total;
}

size_t mn_gemm_packed_b_floats16(int k, int n)
{
    return mn_gemm_packed_b_floats(16, k, n);
}

size_t mn_gemm_packed_b_floats32(int k, int n)
{
    return mn_gemm_packed_b_floats(32, k, n);
}

void mn_gemm_pack_b_blocks(int nr, mn_pack_b_fn pack_b, int k, int n, const float *b, int ldb, float *bp)
{
    for (int jc = 0; jc < n; jc += MN_GEMM_NC) {
        int nc = n - jc < MN_GEMM_NC ? n - jc : MN_GEMM_NC;
        for (int pc = 0; pc < k; pc += MN_GEMM_KC) {
            int kc = k - pc < MN_GEMM_KC ? k - pc : MN_GEMM_KC;
            pack_b(kc, nc, b + (size_t)pc * ldb + jc, ldb, bp);
            bp += mn_round_up(nc, nr) * (size_t)kc;
        }
    }
}

void mn_gemm_drive_packed_b(int nr, mn_micro_fn micro, int m, int n, int k, const float *a, int lda,
                            const float *bpk, float *c, int ldc, float *pack)
{
    mn_gemm_loops(nr, NULL, micro, m, n, k, a, lda, NULL, 0, bpk, c, ldc, pack);
}

void mn_gemm_drive_prepacked(int nr, mn_micro_fn micro, int m, int n, int k, const float *ap, const float *bp,
                             float *c, int ldc)
{
    /* One B strip (k x nr) stays in L1 while every A panel passes over it. */
    for (int jr = 0; jr < n; jr += nr)
        for (int ir = 0; ir < m; ir += MN_GEMM_MR)
            micro(k, ap + (size_t)ir * k, bp + (size_t)jr * k, c + (size_t)ir * ldc + jr, ldc, 0,
                  m - ir < MN_GEMM_MR ? m - ir : MN_GEMM_MR, n - jr < nr ? n - jr : nr);
}

/* ---- products on operands packed once by the caller (Winograd) ---- */

size_t mn_gemm_packed_a_floats(int m, int k)
{
    return (size_t)((m + MN_GEMM_MR - 1) / MN_GEMM_MR) * MN_GEMM_MR * (size_t)k;
}

void mn_gemm_pack_a_all(int m, int k, const float *a, int lda, float *ap)
{
    mn_gemm_pack_a(m, k, a, lda, ap);
}

