/*
 * test_blocked.c - the blocked tower path (direct and Winograd convolutions,
 * pooling, blocks of MN_NB images) against the reference loops, on models
 * built here with shapes the shipped model does not have: Winograd layers
 * whose output is not a multiple of the 4x4 tile, 3x3 and 5x5 with and
 * without padding, strided and 1x1 convolutions that stay direct, several
 * input channels on a direct layer, floor and ceil pooling, fc + l2norm,
 * a 7x7 first layer on F(4, 7) rows with and without pooling after it,
 * layers writing straight into the next convolution's frame.
 * Batches that fill a block, leave it partly empty, or fall back to the
 * [C][N][H][W] path (fewer than MN_NB / 2 images); one and two threads.
 * CTest runs it once per instruction set the machine has (MN_SIMD), with
 * each product kernel (MN_GEMM: packed Winograd operands on the own AVX-512
 * and AVX2 kernels, plain ones on BLAS) and with MN_WINOGRAD=0.
 */
#include "crc32.h"
#include "kernels/blocked.h"
#include "layers.h"
#include "tower.h"
#include "check.h"

#include <math.h>
#include <stdint.h>

static unsigned rng_state = 777;
static float frand(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (float)((rng_state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

typedef struct spec {
    uint32_t type, p[4];
} spec;

/* A model file (format version 1, see src/model_parse.c) with random weights
 * scaled by 1/sqrt(fan-in); tower layers as given, one metric fc [2D -> 2]. */
static uint8_t *build_model(int patch, const spec *tower, int nl, size_t *size_out)
{
    int c = 1, h = patch, w = patch;
    uint32_t dims[64][4], ndim[64];
    int nt = 0;
    for (int i = 0; i < nl; i++) {
        const spec *s = &tower[i];
        if (s->type == 1) {
            int out = (int)s->p[0], k = (int)s->p[1], st = (int)s->p[2], pad = (int)s->p[3];
            ndim[nt] = 4, dims[nt][0] = (uint32_t)out, dims[nt][1] = (uint32_t)c, dims[nt][2] = dims[nt][3] = (uint32_t)k;
            nt++;
            ndim[nt] = 1, dims[nt][0] = (uint32_t)out, dims[nt][1] = dims[nt][2] = dims[nt][3] = 0;
            nt++;
            h = (h + 2 * pad - k) / st + 1;
            w = (w + 2 * pad - k) / st + 1;
            c = out;
        } else if (s->type == 2) {
            h = mn_pool_out_size(h, (int)s->p[0], (int)s->p[1], 0, (int)s->p[3]);
            w = mn_pool_out_size(w, (int)s->p[0], (int)s->p[1], 0, (int)s->p[3]);
        } else if (s->type == 3) {
            ndim[nt] = 2, dims[nt][0] = s->p[0], dims[nt][1] = (uint32_t)(c * h * w), dims[nt][2] = dims[nt][3] = 0;
            nt++;
            ndim[nt] = 1, dims[nt][0] = s->p[0], dims[nt][1] = dims[nt][2] = dims[nt][3] = 0;
            nt++;
            c = (int)s->p[0], h = w = 1;
        }
    }
    const uint32_t d = (uint32_t)(c * h * w);
    ndim[nt] = 2, dims[nt][0] = 2, dims[nt][1] = 2 * d, dims[nt][2] = dims[nt][3] = 0;
    nt++;
    ndim[nt] = 1, dims[nt][0] = 2, dims[nt][1] = dims[nt][2] = dims[nt][3] = 0;
    nt++;
    size_t header = 128 + 32 * (size_t)(nl + 1) + 64 * (size_t)nt, data = 0, elems[64];
    for (int t = 0; t < nt; t++) {
        elems[t] = 1;
        for (uint32_t j = 0; j < ndim[t]; j++)
            elems[t] *= dims[t][j];
        data += elems[t] * 4;
    }
    size_t size = header + data + 4;
    uint8_t *f = calloc(1, size);
    memcpy(f, "MATCHNET", 8);
    put32(f + 8, 1);
    put32(f + 12, (uint32_t)header);
    put64(f + 16, size);
    put32(f + 24, (uint32_t)nl);
    put32(f + 28, 1);
    put32(f + 32, (uint32_t)nt);
    strcpy((char *)f + 40, "test_blocked");
    put32(f + 104, 1);
    put32(f + 108, (uint32_t)patch);
    float mean = 128.0f, div = 160.0f;
    memcpy(f + 112, &mean, 4);
    memcpy(f + 116, &div, 4);
    uint8_t *rec = f + 128;
    for (int i = 0; i < nl; i++, rec += 32) {
        put32(rec, tower[i].type);
        for (int j = 0; j < 4; j++)
            put32(rec + 4 + 4 * j, tower[i].p[j]);
        if (tower[i].type == 1)
            put32(rec + 20, 1); /* relu */
        if (tower[i].type == 3)
            put32(rec + 8, 1);
    }
    put32(rec, 3);
    put32(rec + 4, 2);
    rec += 32;
    size_t off = header;
    for (int t = 0; t < nt; t++, rec += 64) {
        snprintf((char *)rec, 24, "t%d", t);
        put32(rec + 24, 0);
        put32(rec + 28, ndim[t]);
        for (int j = 0; j < 4; j++)
            put32(rec + 32 + 4 * j, dims[t][j]);
        put64(rec + 48, off);
        put64(rec + 56, elems[t] * 4);
        float scale = ndim[t] == 1 ? 0.1f : 1.0f / sqrtf((float)(elems[t] / dims[t][0]));
        for (size_t e = 0; e < elems[t]; e++) {
            float v = frand() * scale * 1.7f;
            memcpy(f + off + 4 * e, &v, 4);
        }
        off += elems[t] * 4;
    }
    put32(f + size - 4, mn_crc32(f, size - 4));
    *size_out = size;
    return f;
}

static void run_model(const char *name, int patch, const spec *tower, int nl)
{
    size_t size;
    uint8_t *file = build_model(patch, tower, nl, &size);
    mn_model *m = NULL;
    CHECK_OK(mn_model_load_memory(file, size, &m));
    free(file);
    if (!m)
        return;
    const size_t d = mn_model_descriptor_dim(m), pp = (size_t)patch * patch, maxn = 40;
    uint8_t *px = malloc(maxn * pp);
    float *pxf = malloc(maxn * pp * sizeof(float));
    for (size_t i = 0; i < maxn * pp; i++) {
        px[i] = (uint8_t)((frand() + 1.0f) * 127.5f);
        pxf[i] = px[i];
    }
    float *ref = malloc(maxn * d * sizeof(float)), *got = malloc(maxn * d * sizeof(float));
    mn_session_params sp = mn_session_params_default();
    sp.reference = 1;
    sp.num_threads = 1;
    mn_session *rs = NULL;
    CHECK_OK(mn_session_create(m, &sp, &rs));
    CHECK_OK(mn_describe_u8(rs, px, maxn, ref));
    double scale = 0.0;
    for (size_t i = 0; i < maxn * d; i++)
        scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
    CHECK(scale > 1e-3, "%s: reference descriptors are all (near) zero; the test would prove nothing", name);
    const int batches[] = {1, 7, 8, 13, 16, 17, 40};
    for (int threads = 1; threads <= 2; threads++) {
        sp = mn_session_params_default();
        sp.num_threads = threads;
        mn_session *s = NULL;
        CHECK_OK(mn_session_create(m, &sp, &s));
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            const size_t n = (size_t)batches[b];
            for (int f32 = 0; f32 <= 1; f32++) {
                memset(got, 0xff, maxn * d * sizeof(float));
                if (f32)
                    CHECK_OK(mn_describe_f32(s, pxf, n, got));
                else
                    CHECK_OK(mn_describe_u8(s, px, n, got));
                size_t where;
                if (CHECK_BF16_ACTIVE()) {
                    /* The blocked path in bfloat16, and the im2col path's
                     * convolutions of its Winograd layers (blocks under 8):
                     * matchnet.h's bound (test_blocked_fp32 holds both to
                     * 1e-4). */
                    double e = max_row_rel_diff(got, ref, n, d, &where);
                    CHECK(e <= CHECK_BF16_BOUND, "%s: %zu images, %d threads, %s, bfloat16: error %.3g of the "
                          "descriptor's largest component at %zu", name, n, threads, f32 ? "f32" : "u8", e, where);
                } else {
                    double e = max_abs_diff(got, ref, n * d, &where);
                    CHECK(e <= 1e-4 * scale, "%s: %zu images, %d threads, %s: max abs error %.3g (scale %.3g) at %zu",
                          name, n, threads, f32 ? "f32" : "u8", e, scale, where);
                }
                /* Nothing written past the batch. */
                if (n < maxn) {
                    uint32_t bits;
                    memcpy(&bits, got + n * d, 4);
                    CHECK(bits == 0xffffffffu, "%s: %zu images: output written past the batch", name, n);
                }
            }
        }
        mn_session_free(s);
    }
    mn_session_free(rs);
    free(px), free(pxf), free(ref), free(got);
    mn_model_free(m);
}

int main(void)
{
    const char *isa;
    isa = mn_tower_blocked_name();
    printf("blocked path: %s\n", isa);
    /* conv: {1, {out, k, stride, pad}}; maxpool: {2, {k, stride, 0, ceil}}; fc: {3, {out}}; l2norm: {4}. */
    const spec odd[] = {
        {1, {6, 3, 1, 1}},  /* in_c 1: direct */
        {1, {8, 5, 1, 1}},  /* 23 -> 21: Winograd 5x5, partial edge tiles */
        {2, {3, 2, 0, 1}},  /* ceil: 21 -> 10 */
        {1, {12, 3, 1, 0}}, /* Winograd 3x3 without padding: 10 -> 8 */
        {1, {10, 3, 2, 1}}, /* strided: direct, 8 -> 4 */
        {1, {9, 1, 1, 0}},  /* 1x1: direct */
        {2, {2, 2, 0, 0}},  /* floor: 4 -> 2 */
    };
    run_model("odd shapes", 23, odd, (int)(sizeof odd / sizeof odd[0]));
    const spec with_fc[] = {
        {1, {8, 7, 1, 3}}, {2, {3, 2, 0, 1}}, {1, {16, 5, 1, 2}}, {2, {3, 2, 0, 1}},
        {1, {12, 3, 1, 1}}, {1, {7, 3, 1, 1}}, {2, {3, 2, 0, 0}}, {3, {24}}, {4, {0}},
    };
    run_model("MatchNet-like with fc + l2norm", 32, with_fc, (int)(sizeof with_fc / sizeof with_fc[0]));
    const spec wide[] = {
        {1, {5, 5, 1, 2}}, {1, {4, 7, 1, 3}}, /* in_c 5, 7x7: direct with several input channels */
        {1, {33, 3, 1, 1}}, {1, {17, 5, 1, 2}}, /* channel counts off every register block; */
    };                                          /* 11x11: 9 tiles, a last group of 1 */
    run_model("wide kernels", 11, wide, (int)(sizeof wide / sizeof wide[0]));
    /* A 7x7 first layer on F(4, 7) rows without a pool after it (5 channels:
     * register blocks of 2 and one alone), and with output widths off a
     * multiple of 4, which stay direct, before a pool. */
    const spec rows7[] = {{1, {5, 7, 1, 3}}, {1, {4, 1, 1, 0}}}; /* the 1x1 stays direct: fp32 in every mode */
    run_model("7x7 rows, no pool", 20, rows7, (int)(sizeof rows7 / sizeof rows7[0]));
    run_model("7x7 width 18", 18, rows7, (int)(sizeof rows7 / sizeof rows7[0]));
    /* A pool that does not fuse with the Winograd layer before it (2x2), writing
     * straight into the next convolution's frame; pool after pool. The last
     * layers of these small models stay direct (1x1), fp32 in every mode: a
     * bfloat16 Winograd layer last, with a few channels and no fc, can miss the
     * bound of a descriptor's largest component on random weights. */
    const spec pools[] = {{1, {6, 3, 1, 1}}, {2, {2, 2, 0, 0}}, {1, {5, 3, 1, 1}}, {2, {2, 1, 0, 0}},
                          {2, {3, 2, 0, 1}}, {1, {4, 1, 1, 0}}};
    run_model("pools between convolutions", 24, pools, (int)(sizeof pools / sizeof pools[0]));
    const spec rows7_odd[] = {{1, {5, 7, 1, 3}}, {2, {3, 2, 0, 1}}, {1, {6, 1, 1, 0}}};
    run_model("7x7 odd width", 17, rows7_odd, (int)(sizeof rows7_odd / sizeof rows7_odd[0]));
    return check_summary("test_blocked");
}
