/*
 * test_layers.c - each layer's fast path against its reference loop, pool
 * output sizes for both rounding modes, CRC-32 and float16 decoding.
 */
#include "crc32.h"
#include "kernels/blas.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/gemm_blocked.h"
#include "kernels/isa.h"
#include "layers.h"
#include "check.h"

static unsigned rng_state = 12345;
static float frand(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (float)((rng_state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static float *rand_buf(size_t n)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

/* [n][C][H][W] (per image) -> [C][n][H][W] (chunk layout) */
static void to_chunk(const float *in, int n, int c, size_t hw, float *out)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            memcpy(out + ((size_t)ch * n + i) * hw, in + ((size_t)i * c + ch) * hw, hw * sizeof(float));
}

static void test_conv(int in_c, int out_c, int hw, int k, int stride, int pad, int relu, int n)
{
    mn_layer l;
    memset(&l, 0, sizeof l);
    l.type = MN_LAYER_CONV;
    l.in_c = in_c, l.in_h = l.in_w = hw;
    l.out_c = out_c, l.kernel = k, l.stride = stride, l.pad = pad, l.relu = relu;
    l.out_h = l.out_w = (hw + 2 * pad - k) / stride + 1;
    float *w = rand_buf((size_t)out_c * in_c * k * k), *b = rand_buf((size_t)out_c);
    l.weight = w, l.bias = b;
    size_t ihw = (size_t)hw * hw, ohw = (size_t)l.out_h * l.out_w;
    float *in = rand_buf((size_t)n * in_c * ihw);
    float *chunk_in = malloc((size_t)n * in_c * ihw * sizeof(float));
    float *col = malloc((size_t)in_c * k * k * ohw * n * sizeof(float) + 4);
    float *fast = malloc((size_t)out_c * n * ohw * sizeof(float));
    float *ref = malloc((size_t)n * out_c * ohw * sizeof(float)), *ref_chunk = malloc((size_t)n * out_c * ohw * sizeof(float));
    to_chunk(in, n, in_c, ihw, chunk_in);
    float *pack = malloc(mn_gemm_pack_floats() * sizeof(float));
    mn_conv_fast(&l, n, chunk_in, col, pack, fast);
    free(pack);
    for (int i = 0; i < n; i++)
        mn_conv_ref(&l, in + (size_t)i * in_c * ihw, ref + (size_t)i * out_c * ohw);
    to_chunk(ref, n, out_c, ohw, ref_chunk);
    size_t where;
    double e = max_abs_diff(fast, ref_chunk, (size_t)out_c * n * ohw, &where);
    CHECK(e < 1e-4, "conv in %d out %d %dx%d k%d s%d p%d relu %d n %d: fast vs reference %.3g at %zu", in_c,
          out_c, hw, hw, k, stride, pad, relu, n, e, where);
    free(w), free(b), free(in), free(chunk_in), free(col), free(fast), free(ref), free(ref_chunk);
}

static void test_pool(int c, int hw, int k, int s, int ceil_mode, int n, int expect_out)
{
    mn_layer l;
    memset(&l, 0, sizeof l);
    l.type = MN_LAYER_MAXPOOL;
    l.in_c = l.out_c = c, l.in_h = l.in_w = hw, l.kernel = k, l.stride = s, l.ceil_mode = ceil_mode;
    l.out_h = l.out_w = mn_pool_out_size(hw, k, s, 0, ceil_mode);
    CHECK(l.out_h == expect_out, "pool %d k%d s%d ceil %d: out %d, expected %d", hw, k, s, ceil_mode, l.out_h,
          expect_out);
    size_t ihw = (size_t)hw * hw, ohw = (size_t)l.out_h * l.out_w;
    float *in = rand_buf((size_t)n * c * ihw), *chunk_in = malloc((size_t)n * c * ihw * sizeof(float));
    float *fast = malloc((size_t)n * c * ohw * sizeof(float)), *ref = malloc((size_t)n * c * ohw * sizeof(float));
    float *ref_chunk = malloc((size_t)n * c * ohw * sizeof(float));
    to_chunk(in, n, c, ihw, chunk_in);
    mn_maxpool_fast(&l, n, chunk_in, fast);
    for (int i = 0; i < n; i++)
        mn_maxpool_ref(&l, in + (size_t)i * c * ihw, ref + (size_t)i * c * ohw);
    to_chunk(ref, n, c, ohw, ref_chunk);
    double e = max_abs_diff(fast, ref_chunk, (size_t)n * c * ohw, NULL);
    CHECK(e == 0.0, "pool %d k%d s%d ceil %d: fast vs reference differ by %g", hw, k, s, ceil_mode, e);
    free(in), free(chunk_in), free(fast), free(ref), free(ref_chunk);
}

static void test_fc(int in, int out, int n, int relu)
{
    mn_layer l;
    memset(&l, 0, sizeof l);
    l.type = MN_LAYER_FC;
    l.in_c = in, l.out_c = out, l.relu = relu, l.in_h = l.in_w = l.out_h = l.out_w = 1;
    float *w = rand_buf((size_t)in * out), *b = rand_buf((size_t)out), *x = rand_buf((size_t)n * (in + 3));
    float *y1 = malloc((size_t)n * out * sizeof(float)), *y2 = malloc((size_t)n * out * sizeof(float));
    l.weight = w, l.bias = b;
    float *wt = malloc((size_t)in * out * sizeof(float)), *pack = malloc(mn_gemm_pack_floats() * sizeof(float));
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++)
            wt[(size_t)i * out + o] = w[(size_t)o * in + i];
    mn_fc_ref(&l, n, x, in + 3, y2);
    /* The own kernel (mn_gemm_stable) on W^T. */
    l.weight_t = wt;
    mn_fc_fast(&l, n, x, in + 3, y1, pack); /* ld larger than the row: a strided input */
    double e = max_abs_diff(y1, y2, (size_t)n * out, NULL);
    /* Summation order differs: allow float rounding that grows with the length. */
    CHECK(e < 1e-5 + 1e-7 * in * 4, "fc %d->%d n %d relu %d: fast vs reference %.3g", in, out, n, relu, e);
    /* With the weights packed once (weight_p, the tower's fc layers): the same
     * bits, or in the low-precision mode bfloat16's rounding of them. */
    const size_t np = mn_gemm_stable_packed_b_floats(in, out);
    if (np > 0) {
        float *wp = malloc(np * sizeof(float)), *y3 = malloc((size_t)n * out * sizeof(float));
        mn_gemm_stable_pack_b(in, out, wt, out, wp);
        l.weight_p = wp;
        mn_fc_blocked(&l, n, x, in + 3, y3, pack);
        if (mn_cpu_get()->bf16) {
            double worst = 0.0;
            for (int r = 0; r < n; r++)
                for (int o = 0; o < out; o++) {
                    double mag = fabs(b[o]);
                    for (int i = 0; i < in; i++)
                        mag += fabs((double)w[(size_t)o * in + i] * x[(size_t)r * (in + 3) + i]);
                    const double e = fabs((double)y3[(size_t)r * out + o] - y1[(size_t)r * out + o]) / (mag + 1e-30);
                    worst = e > worst ? e : worst;
                }
            CHECK(worst < 1.0 / 128, "fc %d->%d n %d in bfloat16: %.3g of sum |w x| from fp32", in, out, n, worst);
        } else {
            CHECK(memcmp(y1, y3, sizeof(float) * (size_t)n * out) == 0,
                  "fc %d->%d n %d: packed weights change the result", in, out, n);
        }
        free(wp), free(y3);
    }
    free(w), free(b), free(x), free(y1), free(y2), free(wt), free(pack);
}

/* The own kernels (mn_gemm_own), each where the CPU has it. */
static const mn_kernel own_kernels[3] = {MN_KERNEL_AVX2, MN_KERNEL_AVX512, MN_KERNEL_GENERIC};

static int own_available(mn_kernel kind)
{
    return kind == MN_KERNEL_AVX2 ? mn_cpu_get()->has_avx2 : kind == MN_KERNEL_AVX512 ? mn_cpu_get()->has_avx512 : 1;
}

/* The determinism rule (src/kernels/gemm.h): an own kernel gives each element of
 * C the same bits whatever m, n and where the element lies. The whole M x N
 * product against sub-products of other shapes, at other offsets. */
static void test_gemm_invariant(mn_kernel kind, int M, int N, int k)
{
    if (!own_available(kind))
        return;
    float *a = rand_buf((size_t)M * k), *b = rand_buf((size_t)k * N);
    float *whole = malloc(sizeof(float) * (size_t)M * N), *part = malloc(sizeof(float) * (size_t)M * N);
    float *pack = malloc(mn_gemm_pack_floats() * sizeof(float));
    mn_gemm_own(kind, M, N, k, a, k, b, N, whole, N, pack);
    const int rows[][2] = {{0, 1}, {1, 5}, {3, 7}, {M - 1, 1}, {2, M - 2}};
    const int cols[][2] = {{0, 1}, {5, 16}, {1, 33}, {N - 1, 1}, {7, N - 7}};
    int bad = 0;
    for (int r = 0; r < 5; r++)
        for (int c = 0; c < 5; c++) {
            const int i0 = rows[r][0], m = rows[r][1], j0 = cols[c][0], n = cols[c][1];
            mn_gemm_own(kind, m, n, k, a + (size_t)i0 * k, k, b + j0, N, part, n, pack);
            for (int i = 0; i < m; i++)
                bad += memcmp(part + (size_t)i * n, whole + (size_t)(i0 + i) * N + j0, sizeof(float) * n) != 0;
        }
    CHECK(bad == 0, "%s gemm %dx%dx%d: %d rows of sub-products differ from the whole product", mn_kernel_name(kind), M, N,
          k, bad);
    free(a), free(b), free(whole), free(part), free(pack);
}

/* The own products against BLAS, on shapes with every kind of edge. */
static void test_gemm(int m, int n, int k, mn_kernel kind)
{
    if (!own_available(kind))
        return;
    float *a = rand_buf((size_t)m * (k + 2)), *b = rand_buf((size_t)k * (n + 5));
    float *c1 = malloc((size_t)m * (n + 3) * sizeof(float)), *c2 = malloc((size_t)m * (n + 3) * sizeof(float));
    float *pack = malloc(mn_gemm_pack_floats() * sizeof(float));
    for (size_t i = 0; i < (size_t)m * (n + 3); i++)
        c1[i] = c2[i] = 123.0f; /* the padding columns must stay untouched */
    mn_gemm_own(kind, m, n, k, a, k + 2, b, n + 5, c1, n + 3, pack);
    mn_gemm(m, n, k, a, k + 2, b, n + 5, 0, 0.0f, c2, n + 3);
    double e = max_abs_diff(c1, c2, (size_t)m * (n + 3), NULL);
    CHECK(e < 1e-5 + 1e-7 * k * 4, "%s gemm %dx%dx%d: differs from BLAS by %.3g", mn_kernel_name(kind), m, n, k, e);
    free(a), free(b), free(c1), free(c2), free(pack);
}

/* B packed once (the tower's fc weights, mn_fc_prepare): the very bits of
 * the product that packs B itself, with every kind of edge (k past KC, n past
 * NC and off the strip width, one row). */
static void test_gemm_packed_b(int m, int n, int k, mn_kernel kind)
{
    const mn_isa_kernels *row = mn_isa_kernels_for(kind);
    if (!own_available(kind) || !row->pack_b_all)
        return;
    float *a = rand_buf((size_t)m * (k + 2)), *b = rand_buf((size_t)k * (n + 5));
    float *bp = malloc(mn_gemm_packed_b_floats(row->strip, k, n) * sizeof(float));
    float *c1 = malloc((size_t)m * (n + 3) * sizeof(float)), *c2 = malloc((size_t)m * (n + 3) * sizeof(float));
    float *pack = malloc(mn_gemm_pack_floats() * sizeof(float));
    for (size_t i = 0; i < (size_t)m * (n + 3); i++)
        c1[i] = c2[i] = 123.0f;
    row->pack_b_all(k, n, b, n + 5, bp);
    row->gemm_packed_b(m, n, k, a, k + 2, bp, c1, n + 3, pack);
    mn_gemm_own(kind, m, n, k, a, k + 2, b, n + 5, c2, n + 3, pack);
    CHECK(memcmp(c1, c2, sizeof(float) * (size_t)m * (n + 3)) == 0,
          "%s gemm %dx%dx%d on B packed once differs from packing B per call", mn_kernel_name(kind), m, n, k);
    free(a), free(b), free(bp), free(c1), free(c2), free(pack);
}

/* bfloat16 of x, round to nearest even (as vcvtneps2bf16 on normal numbers). */
static double bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    u &= 0xFFFF0000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

/* The bfloat16 Winograd products (MN_PRECISION=bf16) on operands packed as
 * the blocked path packs them: against a double-precision product of the
 * bfloat16-rounded operands, so the rounding (nearest even), the pairing of
 * k (odd k padded), the KB blocks of k (k > 256 accumulates) and the edges
 * (m % 6, a partial last strip) are all checked; and against the fp32
 * product, which it must differ from by bfloat16's rounding and no more. */
static void test_gemm_bf16(int m, int n, int k)
{
    if (!mn_cpu_get()->has_avx512bf16)
        return;
    const mn_kernel kind = MN_KERNEL_AVX512_BF16;
    const int strip = mn_gemm_strip(kind), ns = (n + strip - 1) / strip;
    float *a = rand_buf((size_t)m * k), *b = rand_buf((size_t)k * n);
    float *ap = calloc(mn_gemm_packed_a_floats(m, k), sizeof(float));
    float *bp = calloc((size_t)ns * strip * k, sizeof(float));
    float *c = malloc(sizeof(float) * (size_t)m * (n + 3));
    for (size_t i = 0; i < (size_t)m * (n + 3); i++)
        c[i] = 123.0f;
    for (int j = 0; j < n; j++)
        for (int kk = 0; kk < k; kk++)
            bp[(size_t)(j / strip) * k * strip + (size_t)kk * strip + j % strip] = b[(size_t)kk * n + j];
    mn_gemm_pack_a_for(kind, m, k, a, k, ap);
    mn_gemm_prepacked(kind, m, n, k, ap, bp, c, n + 3);
    double worst = 0.0, worst_fp32 = 0.0;
    int pad_ok = 1;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double ref = 0.0, exact = 0.0, mag = 0.0;
            for (int kk = 0; kk < k; kk++) {
                const float x = a[(size_t)i * k + kk], y = b[(size_t)kk * n + j];
                ref += bf16_round(x) * bf16_round(y);
                exact += (double)x * y;
                mag += fabs((double)x * y);
            }
            const double got = c[(size_t)i * (n + 3) + j];
            const double e = fabs(got - ref) / (mag + 1e-30), ef = fabs(got - exact) / (mag + 1e-30);
            worst = e > worst ? e : worst;
            worst_fp32 = ef > worst_fp32 ? ef : worst_fp32;
        }
        for (int j = n; j < n + 3; j++)
            pad_ok &= c[(size_t)i * (n + 3) + j] == 123.0f;
    }
    /* fp32 accumulation of k bfloat16 products: a few ulp of the magnitude. */
    CHECK(worst < 1e-5, "bf16 gemm %dx%dx%d: %.3g (relative to sum |a b|) from the product of rounded operands", m,
          n, k, worst);
    /* Each operand rounded to 8 significant bits: at most 2^-8 relative per product. */
    CHECK(worst_fp32 > 1e-6 && worst_fp32 < 1.0 / 128, "bf16 gemm %dx%dx%d: %.3g from the fp32 product", m, n, k,
          worst_fp32);
    CHECK(pad_ok, "bf16 gemm %dx%dx%d wrote outside C", m, n, k);
    /* B rounded into pairs first, as the blocked path's input transform
     * writes it (mn_round_pairs_fn), then the kernel on the pairs: the same
     * C to the bit. */
    const mn_isa_kernels *row = mn_isa_kernels_for(kind);
    const int kp = (k + 1) / 2;
    uint32_t *bw = calloc((size_t)ns * kp * strip, sizeof(uint32_t));
    float *c2 = malloc(sizeof(float) * (size_t)m * (n + 3));
    for (size_t i = 0; i < (size_t)m * (n + 3); i++)
        c2[i] = 123.0f;
    for (int st = 0; st < ns; st++)
        for (int q = 0; q < kp; q++) {
            const float *rows = bp + (size_t)st * k * strip + (size_t)2 * q * strip;
            row->round_pairs(1, strip, rows, 2 * q + 1 < k ? rows + strip : NULL, 0,
                             bw + (size_t)st * kp * strip + (size_t)q * strip, 0);
        }
    row->gemm_pairs(m, n, k, ap, bw, c2, n + 3);
    CHECK(memcmp(c, c2, sizeof(float) * (size_t)m * (n + 3)) == 0,
          "bf16 gemm %dx%dx%d on B in pairs differs from B in fp32 strips", m, n, k);
    free(a), free(b), free(ap), free(bp), free(c), free(bw), free(c2);
}

/* The tower's fc in bfloat16 (B packed once, A rounded per call): against
 * the double product of the rounded operands, with k past KB and odd, m past
 * one A block (96) and off the panel height, n off the strip width; C's
 * padding untouched. */
static void test_gemm_packed_b_bf16(int m, int n, int k)
{
    if (!mn_cpu_get()->has_avx512bf16)
        return;
    float *a = rand_buf((size_t)m * (k + 2)), *b = rand_buf((size_t)k * (n + 5));
    float *bp = malloc(mn_gemm_packed_b_bf16_floats(k, n) * sizeof(float));
    float *c = malloc((size_t)m * (n + 3) * sizeof(float)), *pack = malloc(mn_gemm_pack_floats() * sizeof(float));
    for (size_t i = 0; i < (size_t)m * (n + 3); i++)
        c[i] = 123.0f;
    mn_gemm_pack_b_bf16(k, n, b, n + 5, bp);
    mn_gemm_nn_packed_b_bf16(m, n, k, a, k + 2, bp, c, n + 3, pack);
    double worst = 0.0;
    int pad_ok = 1;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double ref = 0.0, mag = 0.0;
            for (int kk = 0; kk < k; kk++) {
                const float x = a[(size_t)i * (k + 2) + kk], y = b[(size_t)kk * (n + 5) + j];
                ref += bf16_round(x) * bf16_round(y);
                mag += fabs((double)x * y);
            }
            const double e = fabs(c[(size_t)i * (n + 3) + j] - ref) / (mag + 1e-30);
            worst = e > worst ? e : worst;
        }
        for (int j = n; j < n + 3; j++)
            pad_ok &= c[(size_t)i * (n + 3) + j] == 123.0f;
    }
    CHECK(worst < 1e-5, "bf16 fc gemm %dx%dx%d: %.3g (relative to sum |a b|) from the product of rounded operands", m,
          n, k, worst);
    CHECK(pad_ok, "bf16 fc gemm %dx%dx%d wrote outside C", m, n, k);
    free(a), free(b), free(bp), free(c), free(pack);
}

int main(void)
{
    printf("AVX2 kernel: %d, AVX-512 kernel: %d, AVX512-BF16: %d, fixed-shape products: %s, others: %s\n",
           mn_cpu_get()->has_avx2, mn_cpu_get()->has_avx512, mn_cpu_get()->has_avx512bf16,
           mn_kernel_name(mn_cpu_get()->gemm_fixed),
           mn_kernel_name(mn_cpu_get()->gemm_stable));
    for (int w = 0; w < 3; w++) {
        const mn_kernel kind = own_kernels[w];
        test_gemm_invariant(kind, 45, 300, 600); /* k > KC: the blocks of k add up in C */
        test_gemm_invariant(kind, 13, 70, 9);
        test_gemm(1, 1, 1, kind);
        test_gemm(6, 16, 256, kind);
        test_gemm(64, 8192, 600, kind); /* conv1 on a chunk of 8: K > KC, N > NC, M % 6 != 0 */
        test_gemm(96, 2048, 864, kind);
        test_gemm(24, 4096 + 7, 49, kind);
        test_gemm(13, 35, 517, kind);
        test_gemm_packed_b(16, 256, 4096, kind); /* the bottleneck fc on one block */
        test_gemm_packed_b(13, 1600, 300, kind);
        test_gemm_packed_b(7, 33, 517, kind);
        test_gemm_packed_b(1, 1, 1, kind);
    }

    /* The bfloat16 Winograd products: MatchNet's shapes (96 x 64 tiles x 96), odd k, k > 256, edges. */
    test_gemm_bf16(96, 256, 96);
    test_gemm_bf16(64, 70, 24);
    test_gemm_bf16(13, 33, 97);
    test_gemm_bf16(7, 64, 600);
    test_gemm_bf16(1, 1, 1);
    test_gemm_packed_b_bf16(16, 256, 4096); /* the bottleneck fc on one block */
    test_gemm_packed_b_bf16(13, 33, 517);
    test_gemm_packed_b_bf16(97, 40, 300);
    test_gemm_packed_b_bf16(1, 1, 1);

    /* MatchNet's convolutions, and odd shapes that exercise the edges. */
    test_conv(1, 24, 64, 7, 1, 3, 1, 3);
    test_conv(24, 64, 32, 5, 1, 2, 1, 2);
    test_conv(64, 96, 16, 3, 1, 1, 1, 5);
    test_conv(96, 64, 15, 3, 1, 1, 0, 1);
    test_conv(3, 5, 11, 3, 2, 1, 1, 3);
    test_conv(4, 6, 9, 1, 1, 0, 0, 2);
    test_conv(2, 3, 10, 4, 3, 0, 1, 2);

    /* Caffe (ceil): 64 -> 32 -> 16 -> 8; PyTorch default (floor): 64 -> 31 -> 15 -> 7. */
    test_pool(24, 64, 3, 2, 1, 3, 32);
    test_pool(64, 32, 3, 2, 1, 2, 16);
    test_pool(64, 16, 3, 2, 1, 2, 8);
    test_pool(24, 64, 3, 2, 0, 3, 31);
    test_pool(64, 31, 3, 2, 0, 2, 15);
    test_pool(64, 15, 3, 2, 0, 2, 7);
    test_pool(2, 15, 3, 2, 1, 1, 7);
    test_pool(2, 7, 2, 3, 1, 1, 3);
    CHECK(mn_pool_out_size(2, 3, 2, 0, 1) == 0, "kernel larger than input gives no output");

    test_fc(4096, 128, 5, 0);
    test_fc(200, 64, 1, 1);
    test_fc(17, 2, 130, 0);

    /* L2 normalisation: unit norm, and an all-zero row stays finite. */
    float v[6] = {3, 4, 0, 0, 0, 0};
    mn_l2norm_rows(2, 3, v);
    CHECK(fabsf(v[0] - 0.6f) < 1e-6f && fabsf(v[1] - 0.8f) < 1e-6f, "l2norm (3,4,0) -> (%f,%f)", v[0], v[1]);
    CHECK(v[3] == 0.0f && v[4] == 0.0f && v[5] == 0.0f, "l2norm of a zero row is zero");

    CHECK(mn_crc32("123456789", 9) == 0xCBF43926u, "crc32 check value: %08x", mn_crc32("123456789", 9));
    CHECK(mn_crc32("", 0) == 0, "crc32 of nothing");

    CHECK(mn_half_to_float(0x3C00) == 1.0f, "half 1.0");
    CHECK(mn_half_to_float(0xC000) == -2.0f, "half -2.0");
    CHECK(mn_half_to_float(0x7BFF) == 65504.0f, "half max");
    CHECK(mn_half_to_float(0x0001) == ldexpf(1.0f, -24), "half smallest subnormal");
    CHECK(mn_half_to_float(0x03FF) == ldexpf(1023.0f, -24), "half largest subnormal");
    CHECK(isinf(mn_half_to_float(0x7C00)), "half inf");
    CHECK(isnan(mn_half_to_float(0x7E00)), "half nan");
    CHECK(mn_half_to_float(0x8000) == 0.0f && signbit(mn_half_to_float(0x8000)), "half -0");
    return check_summary("test_layers");
}
