/*
 * test_determinism.c - what matchnet.h promises about repeatability, checked
 * exactly, for every model layout in tests/data and the shipped model:
 *
 *   - a patch's descriptor is bit-identical whatever the thread count, the
 *     batch size and the patch's place in the batch, among calls whose block
 *     holding it has 8 or more patches (the blocked path);
 *   - among blocks of fewer than 8 (the im2col path, split over threads
 *     inside the layers when the whole call is that small) the same holds, and the
 *     two paths agree to 1e-5 relative (in bfloat16 - the default where the
 *     CPU has AVX512-BF16 - where the blocked path's convolutions run in
 *     bfloat16 and the im2col path's in fp32, to 8% of the descriptor's
 *     largest component);
 *   - metric projections and probabilities are bit-identical whatever the
 *     thread count, the number of pairs or descriptors in the call and a
 *     pair's place in the list;
 *   - nearest neighbours (index and distance) are bit-identical whatever the
 *     thread count, the number of queries in the call, their order, and the
 *     train set's size (extra train rows appended).
 *
 * CTest runs it under each OpenBLAS core (tests/CMakeLists.txt), since
 * those promises must hold on the products OpenBLAS computes too.
 */
#include "matchnet.h"
#include "check.h"

#include <stdint.h>

#define N 61 /* blocks of 16, 16, 16, 13: three full blocks and a partial one */

static uint32_t rng = 12345u;
static uint32_t next_rand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}

static mn_session *session(const mn_model *m, int threads)
{
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = threads;
    mn_session *s = NULL;
    CHECK_OK(mn_session_create(m, &sp, &s));
    return s;
}

/* Patches with structure (gradients, blobs, noise), different per index. */
static void make_patches(int P, uint8_t *px)
{
    for (int i = 0; i < N; i++)
        for (int y = 0; y < P; y++)
            for (int x = 0; x < P; x++) {
                int v = (x * (i % 7 + 1) + y * (i % 5 + 2)) % 256;
                v = (v + (int)(next_rand() % 64)) % 256;
                if ((x - i % P) * (x - i % P) + (y - 2 * i % P) * (y - 2 * i % P) < 60)
                    v = 255 - v;
                px[((size_t)i * P + y) * P + x] = (uint8_t)v;
            }
}

static int same(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, sizeof(float) * n) == 0;
}

static void check_describe(const char *name, const mn_model *m, const uint8_t *px, float *ref)
{
    const int P = mn_model_patch_size(m);
    const size_t D = mn_model_descriptor_dim(m), pp = (size_t)P * P;
    float *got = malloc(sizeof(float) * N * D);
    uint8_t *perm = malloc(N * pp);
    mn_session *s1 = session(m, 1);
    CHECK_OK(mn_describe_u8(s1, px, N, ref));

    /* Thread counts: the split moves block boundaries between threads. */
    for (int t = 2; t <= 4; t++) {
        mn_session *s = session(m, t);
        CHECK_OK(mn_describe_u8(s, px, N, got));
        CHECK(same(ref, got, N * D), "%s: %d threads differ from 1", name, t);
        mn_session_free(s);
    }
    /* Places: the batch rotated by r puts patch i at place (i + r) % N. The
     * block holding the last 13 (or, rotated, other) patches stays >= 8, so
     * every patch takes the blocked path in each rotation. */
    for (int r = 1; r < N; r += 7) {
        for (int i = 0; i < N; i++)
            memcpy(perm + (size_t)((i + r) % N) * pp, px + (size_t)i * pp, pp);
        mn_session *s = session(m, 1 + r % 3);
        CHECK_OK(mn_describe_u8(s, perm, N, got));
        int bad = 0;
        for (int i = 0; i < N; i++)
            bad += !same(ref + (size_t)i * D, got + (size_t)((i + r) % N) * D, D);
        CHECK(bad == 0, "%s: rotation %d: %d of %d descriptors moved in the batch differ", name, r, bad, N);
        mn_session_free(s);
    }
    /* Batch sizes with blocks >= 8 only: 8..16 and 24 (16 + 8). */
    const size_t sizes[] = {8, 9, 15, 16, 24};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const size_t n = sizes[k], at = (size_t)(next_rand() % (N - n + 1));
        CHECK_OK(mn_describe_u8(s1, px + at * pp, n, got));
        CHECK(same(ref + at * D, got, n * D), "%s: a call of %zu patches from %zu differs", name, n, at);
    }
    /* The im2col path: blocks of 1..7 patches agree bit for bit among
     * themselves and to 1e-5 with the blocked path. */
    float *small = malloc(sizeof(float) * 7 * D);
    for (int n = 1; n <= 7; n++) {
        CHECK_OK(mn_describe_u8(s1, px + (size_t)(7 - n) * pp, (size_t)n, small)); /* patches 7-n .. 6 */
        if (n == 1) {
            memcpy(got, small, sizeof(float) * D); /* patch 6 alone */
            double scale = 0.0, err = max_abs_diff(got, ref + 6 * D, D, NULL);
            for (size_t d = 0; d < D; d++)
                scale = fabs(ref[6 * D + d]) > scale ? fabs(ref[6 * D + d]) : scale;
            const int bf16 = CHECK_BF16_ACTIVE();
            const double bound = bf16 ? CHECK_BF16_BOUND * scale : 1e-5 * (scale > 1.0 ? scale : 1.0);
            CHECK(err <= bound, "%s: im2col vs blocked: %.3g (scale %.3g)", name, err, scale);
            if (bf16)
                printf("%s: im2col (fp32) vs blocked (bf16): %.3g (scale %.3g)\n", name, err, scale);
        } else {
            CHECK(same(got, small + (size_t)(n - 1) * D, D), "%s: patch 6 in a call of %d small patches differs "
                  "from alone", name, n);
        }
    }
    /* The same small calls on 2..4 threads, which share the layers of the
     * one chunk (tower.h's split): bit-identical to one thread's. */
    float *split = malloc(sizeof(float) * 7 * D);
    for (int t = 2; t <= 4; t++) {
        mn_session *s = session(m, t);
        for (int n = 1; n <= 7; n++) {
            CHECK_OK(mn_describe_u8(s1, px + (size_t)(7 - n) * pp, (size_t)n, small));
            CHECK_OK(mn_describe_u8(s, px + (size_t)(7 - n) * pp, (size_t)n, split));
            CHECK(same(small, split, (size_t)n * D), "%s: a call of %d small patches on %d threads differs from "
                  "1 thread's", name, n, t);
        }
        mn_session_free(s);
    }
    free(split);
    /* Blocks of 16 + 7: the tail takes the im2col path, each of its patches
     * as alone. */
    float *tail = malloc(sizeof(float) * 23 * D), *alone = malloc(sizeof(float) * D);
    CHECK_OK(mn_describe_u8(s1, px, 23, tail));
    CHECK(same(ref, tail, 16 * D), "%s: the full block of a 16 + 7 call differs", name);
    for (int i = 16; i < 23; i++) {
        CHECK_OK(mn_describe_u8(s1, px + (size_t)i * pp, 1, alone));
        CHECK(same(alone, tail + (size_t)i * D, D), "%s: tail patch %d differs from alone", name, i);
    }
    free(tail);
    free(alone);
    free(small);
    mn_session_free(s1);
    free(perm);
    free(got);
}

static void check_metric(const char *name, const mn_model *m, const float *desc)
{
    const size_t D = mn_model_descriptor_dim(m), F = mn_model_projection_dim(m);
    enum { NP = 400 };
    mn_pair pairs[NP], rev[NP];
    for (int k = 0; k < NP; k++) {
        pairs[k].a = next_rand() % N;
        pairs[k].b = next_rand() % (N - 1);
        rev[NP - 1 - k] = pairs[k];
    }
    float want[NP], prob[NP];
    float *proj = malloc(sizeof(float) * N * F), *proj2 = malloc(sizeof(float) * N * F);
    mn_session *s1 = session(m, 1);
    CHECK_OK(mn_metric_score_pairs(s1, desc, N, desc + D, N - 1, pairs, NP, want));
    CHECK_OK(mn_metric_project(s1, desc, N, MN_SIDE_A, proj));
    for (int t = 2; t <= 4; t++) {
        mn_session *s = session(m, t);
        CHECK_OK(mn_metric_score_pairs(s, desc, N, desc + D, N - 1, pairs, NP, prob));
        CHECK(same(want, prob, NP), "%s: %d threads: probabilities differ from 1 thread's", name, t);
        CHECK_OK(mn_metric_project(s, desc, N, MN_SIDE_A, proj2));
        CHECK(same(proj, proj2, N * F), "%s: %d threads: projections differ", name, t);
        CHECK_OK(mn_metric_score_pairs(s, desc, N, desc + D, N - 1, rev, NP, prob));
        int bad = 0;
        for (int k = 0; k < NP; k++)
            bad += memcmp(&prob[NP - 1 - k], &want[k], sizeof(float)) != 0;
        CHECK(bad == 0, "%s: %d threads, pairs reversed: %d probabilities differ", name, t, bad);
        mn_session_free(s);
    }
    /* Fewer descriptors in the call: projecting rows 5..17 alone. */
    CHECK_OK(mn_metric_project(s1, desc + 5 * D, 13, MN_SIDE_A, proj2));
    CHECK(same(proj + 5 * F, proj2, 13 * F), "%s: projections of a 13-row call differ", name);
    /* Fewer pairs in the call: each of the first 9 alone. */
    int bad = 0;
    for (int k = 0; k < 9; k++) {
        CHECK_OK(mn_metric_score_pairs(s1, desc, N, desc + D, N - 1, pairs + k, 1, prob));
        bad += memcmp(&prob[0], &want[k], sizeof(float)) != 0;
    }
    CHECK(bad == 0, "%s: %d pairs scored alone differ", name, bad);
    mn_session_free(s1);
    free(proj);
    free(proj2);
}

static void check_knn(const char *name, const mn_model *m, const float *desc)
{
    const size_t D = mn_model_descriptor_dim(m);
    enum { K = 4, NQ = 45 }; /* two 32-query blocks, the second partial */
    const size_t nt = N - 8;  /* train: rows 8..N-1, queries: rows 0..44 */
    const float *train = desc + 8 * D;
    uint32_t want_i[NQ * K], idx[NQ * K];
    float want_d[NQ * K], dist[NQ * K];
    mn_session *s1 = session(m, 1);
    CHECK_OK(mn_match_knn(s1, desc, NQ, train, nt - 10, NULL, K, want_i, want_d));
    for (int t = 2; t <= 4; t++) {
        mn_session *s = session(m, t);
        CHECK_OK(mn_match_knn(s, desc, NQ, train, nt - 10, NULL, K, idx, dist));
        CHECK(memcmp(idx, want_i, sizeof idx) == 0 && same(dist, want_d, NQ * K), "%s: knn, %d threads differ",
              name, t);
        mn_session_free(s);
    }
    /* Queries one at a time and in reverse order. */
    int bad = 0;
    for (int q = 0; q < NQ; q++) {
        CHECK_OK(mn_match_knn(s1, desc + (size_t)q * D, 1, train, nt - 10, NULL, K, idx, dist));
        bad += memcmp(idx, want_i + q * K, sizeof(uint32_t) * K) != 0 || !same(dist, want_d + q * K, K);
    }
    CHECK(bad == 0, "%s: knn: %d queries asked alone differ", name, bad);
    float *rq = malloc(sizeof(float) * NQ * D);
    for (int q = 0; q < NQ; q++)
        memcpy(rq + (size_t)(NQ - 1 - q) * D, desc + (size_t)q * D, sizeof(float) * D);
    CHECK_OK(mn_match_knn(s1, rq, NQ, train, nt - 10, NULL, K, idx, dist));
    bad = 0;
    for (int q = 0; q < NQ; q++)
        bad += memcmp(idx + (NQ - 1 - q) * K, want_i + q * K, sizeof(uint32_t) * K) != 0 ||
               !same(dist + (NQ - 1 - q) * K, want_d + q * K, K);
    CHECK(bad == 0, "%s: knn: %d queries in reverse order differ", name, bad);
    free(rq);
    /* A larger train set: every distance to the first nt - 10 rows is as
     * before, so where the old neighbour list still stands it is equal. */
    float *all = malloc(sizeof(float) * (size_t)NQ * nt);
    uint32_t *ai = malloc(sizeof(uint32_t) * (size_t)NQ * nt);
    CHECK_OK(mn_match_knn(s1, desc, NQ, train, nt, NULL, (int)nt, ai, all));
    bad = 0;
    for (int q = 0; q < NQ; q++)
        for (int r = 0; r < K; r++) {
            const uint32_t t = want_i[q * K + r];
            int found = 0;
            for (size_t j = 0; j < nt; j++)
                if (ai[(size_t)q * nt + j] == t)
                    found = memcmp(&all[(size_t)q * nt + j], &want_d[q * K + r], sizeof(float)) == 0;
            bad += !found;
        }
    CHECK(bad == 0, "%s: knn: %d distances changed when train rows were added", name, bad);
    free(all);
    free(ai);
    mn_session_free(s1);
}

static void check_model(const char *path)
{
    mn_model *m = NULL;
    CHECK_OK(mn_model_load_file(path, &m));
    if (!m)
        return;
    const char *name = mn_model_name(m);
    const int P = mn_model_patch_size(m);
    const size_t D = mn_model_descriptor_dim(m);
    uint8_t *px = malloc((size_t)N * P * P);
    float *desc = malloc(sizeof(float) * N * D);
    make_patches(P, px);
    check_describe(name, m, px, desc);
    check_metric(name, m, desc);
    check_knn(name, m, desc);
    free(px);
    free(desc);
    mn_model_free(m);
}

int main(void)
{
    printf("%s\n", mn_blas_info());
    check_model(MN_SOURCE_DIR "/models/matchnet.mnw");
    check_model(MN_TEST_DATA "/golden_original.mnw");
    check_model(MN_TEST_DATA "/golden_bottleneck.mnw");
    check_model(MN_TEST_DATA "/golden_pytorch.mnw");
    return check_summary("test_determinism");
}
