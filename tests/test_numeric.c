/*
 * test_numeric.c - numerical robustness with the shipped model and the
 * 4096-D golden_original model: degenerate 8-bit patches (constant 0, 128
 * and 255, pixel and block checkerboards of 0/255, noise) and float
 * patches far outside 0..255 (+-1e30, FLT_MAX, denormals) give finite
 * descriptors; non-finite float pixels are refused; every probability
 * from mn_metric_score_pairs, _plain, _all and mn_match on those
 * descriptors, and on descriptors of extreme values, is finite and in
 * [0, 1], and every match distance is a number >= 0.
 */
#include "matchnet.h"
#include "check.h"

#include <float.h>
#include <stdint.h>

#define NU8 8  /* 8-bit patches */
#define NF32 7 /* float patches */
#define N (NU8 + NF32)

static const char *const u8_names[NU8] = {"constant 0",   "constant 128", "constant 255", "checkerboard 1 px",
                                          "checkerboard 8 px", "noise", "gradient", "one white pixel"};
static const char *const f32_names[NF32] = {"constant 1e30",     "constant -1e30", "checkerboard +-1e30",
                                            "constant FLT_MAX", "checkerboard +-FLT_MAX", "random sign 1e30",
                                            "denormals"};

static uint32_t rng_state = 2024;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void make_u8(int k, int P, uint8_t *p)
{
    for (int y = 0; y < P; y++)
        for (int x = 0; x < P; x++) {
            uint8_t v = 0;
            switch (k) {
            case 0: v = 0; break;
            case 1: v = 128; break;
            case 2: v = 255; break;
            case 3: v = (x + y) & 1 ? 255 : 0; break;
            case 4: v = ((x / 8) + (y / 8)) & 1 ? 255 : 0; break;
            case 5: v = (uint8_t)rng(); break;
            case 6: v = (uint8_t)(x * 255 / (P - 1)); break;
            case 7: v = x == P / 2 && y == P / 3 ? 255 : 0; break;
            }
            p[y * P + x] = v;
        }
}

static void make_f32(int k, int P, float *p)
{
    for (int y = 0; y < P; y++)
        for (int x = 0; x < P; x++) {
            const int odd = (x + y) & 1;
            float v = 0;
            switch (k) {
            case 0: v = 1e30f; break;
            case 1: v = -1e30f; break;
            case 2: v = odd ? 1e30f : -1e30f; break;
            case 3: v = FLT_MAX; break;
            case 4: v = odd ? FLT_MAX : -FLT_MAX; break;
            case 5: v = (rng() & 1 ? 1e30f : -1e30f) * (float)(rng() % 1000) / 999.0f; break;
            case 6: v = odd ? 1e-40f : -1e-42f; break;
            }
            p[y * P + x] = v;
        }
}

static const char *patch_name(size_t i)
{
    return i < NU8 ? u8_names[i] : f32_names[i - NU8];
}

/* All of prob[0..n) finite and in [0, 1]; reports the first bad one. */
static void check_probs(const char *model, const char *what, const float *prob, size_t n, size_t nb)
{
    for (size_t r = 0; r < n; r++)
        if (!(prob[r] >= 0.0f && prob[r] <= 1.0f)) {
            CHECK(0, "%s: %s: probability %g for (%zu, %zu)", model, what, (double)prob[r], r / nb, r % nb);
            return;
        }
    check_count++;
}

static void check_matches(const char *model, const char *what, const mn_dmatch *m, size_t n, size_t nq,
                          size_t nt)
{
    for (size_t r = 0; r < n; r++)
        if (m[r].query >= nq || m[r].train >= nt || !(m[r].probability >= 0.0f && m[r].probability <= 1.0f) ||
            !(m[r].distance >= 0.0f)) {
            CHECK(0, "%s: %s: match %zu = (%u, %u) p %g distance %g", model, what, r, m[r].query, m[r].train,
                  (double)m[r].probability, (double)m[r].distance);
            return;
        }
    check_count++;
}

/* mn_match with both methods and all_pairs, on one descriptor set against itself. */
static void match_all_ways(mn_session *s, const char *model, const char *set, const float *desc, size_t n)
{
    mn_dmatch *m = malloc(sizeof *m * n);
    size_t count = 0;
    char what[128];
    for (int way = 0; way < 3; way++) {
        mn_match_params p = way == 0 ? mn_match_params_default() : mn_match_params_preset(MN_MATCH_METRIC);
        p.all_pairs = way == 2;
        p.min_probability = 0.0f; /* keep every choice, so that every probability is looked at */
        p.ratio = 1.0f;
        snprintf(what, sizeof what, "%s, mn_match %s", set, way == 0 ? "L2" : way == 1 ? "metric" : "all pairs");
        mn_status st = mn_match(s, desc, n, desc, n, &p, m, n, &count);
        CHECK(st == MN_OK, "%s: %s: %s", model, what, mn_last_error());
        if (st == MN_OK) {
            CHECK(count > 0, "%s: %s: no match at all", model, what);
            check_matches(model, what, m, count, n, n);
        }
    }
    free(m);
}

/* Every score of set a against set b, three ways. */
static void score_all_ways(mn_session *s, const char *model, const char *set, const float *a, size_t na,
                           const float *b, size_t nb)
{
    float *prob = malloc(sizeof(float) * na * nb), *prob2 = malloc(sizeof(float) * na * nb);
    mn_pair *pairs = malloc(sizeof(mn_pair) * na * nb);
    char what[128];
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            pairs[i * nb + j] = (mn_pair){(uint32_t)i, (uint32_t)j};
    snprintf(what, sizeof what, "%s, mn_metric_score_all", set);
    CHECK_OK(mn_metric_score_all(s, a, na, b, nb, prob));
    check_probs(model, what, prob, na * nb, nb);
    snprintf(what, sizeof what, "%s, mn_metric_score_pairs", set);
    CHECK_OK(mn_metric_score_pairs(s, a, na, b, nb, pairs, na * nb, prob2));
    check_probs(model, what, prob2, na * nb, nb);
    CHECK(memcmp(prob, prob2, sizeof(float) * na * nb) == 0, "%s: %s: score_all and score_pairs differ", model,
          set);
    snprintf(what, sizeof what, "%s, mn_metric_score_pairs_plain", set);
    CHECK_OK(mn_metric_score_pairs_plain(s, a, na, b, nb, pairs, na * nb, prob2));
    check_probs(model, what, prob2, na * nb, nb);
    free(prob);
    free(prob2);
    free(pairs);
}

/* mn_match_knn with k = nt on a against b: every entry's distance agrees
 * with the difference summed in double (both over FLT_MAX, or within
 * rounding of |a|^2 + |b|^2), nearest first, and an entry is missing only
 * for a pair whose squared distance overflows a float. */
static void check_knn(mn_session *s, const char *model, const char *set, const float *a, size_t na, const float *b,
                      size_t nb, size_t D)
{
    uint32_t *idx = malloc(sizeof(uint32_t) * na * nb);
    float *dist = malloc(sizeof(float) * na * nb);
    CHECK_OK(mn_match_knn(s, a, na, b, nb, NULL, (int)nb, idx, dist));
    int bad = 0;
    for (size_t i = 0; i < na && !bad; i++) {
        size_t listed = 0;
        for (size_t r = 0; r < nb && !bad; r++) {
            const uint32_t j = idx[i * nb + r];
            const float d = dist[i * nb + r];
            if (j == UINT32_MAX) {
                bad = d != INFINITY;
                continue;
            }
            listed++;
            double exact = 0, norms = 0;
            for (size_t k = 0; k < D; k++) {
                double e = (double)a[i * D + k] - (double)b[j * D + k];
                exact += e * e;
                norms += (double)a[i * D + k] * a[i * D + k] + (double)b[j * D + k] * b[j * D + k];
            }
            const double got = (double)d * d;
            if (exact > FLT_MAX)
                bad = !(d == INFINITY || got > 0.99 * FLT_MAX);
            else
                bad = !(fabs(got - exact) <= 2e-4 * norms + 1e-30);
            if (r && !(d >= dist[i * nb + r - 1]))
                bad = 1;
            if (bad)
                CHECK(0, "%s: %s: knn of %zu, rank %zu: train %u at %g, exact %g", model, set, i, r, j, (double)d,
                      sqrt(exact));
        }
        for (size_t j = 0; j < nb && listed < nb && !bad; j++) {
            double exact = 0;
            for (size_t k = 0; k < D; k++) {
                double e = (double)a[i * D + k] - (double)b[j * D + k];
                exact += e * e;
            }
            int found = 0;
            for (size_t r = 0; r < nb; r++)
                found |= idx[i * nb + r] == j;
            if (!found && exact < 0.99 * FLT_MAX) {
                CHECK(0, "%s: %s: knn of %zu misses train %zu at %g", model, set, i, j, sqrt(exact));
                bad = 1;
            }
        }
    }
    check_count++;
    free(idx);
    free(dist);
}

static void test_model(const char *path)
{
    mn_model *model = NULL;
    CHECK_OK(mn_model_load_file(path, &model));
    if (!model)
        return;
    const char *name = mn_model_name(model);
    const int P = mn_model_patch_size(model);
    const size_t D = mn_model_descriptor_dim(model), pp = (size_t)P * P;
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = 2;
    mn_session *s = NULL;
    CHECK_OK(mn_session_create(model, &sp, &s));
    uint8_t *u8 = malloc(NU8 * pp);
    float *f32 = malloc(sizeof(float) * NF32 * pp), *desc = malloc(sizeof(float) * N * D);
    for (int k = 0; k < NU8; k++)
        make_u8(k, P, u8 + k * pp);
    for (int k = 0; k < NF32; k++)
        make_f32(k, P, f32 + k * pp);
    CHECK_OK(mn_describe_u8(s, u8, NU8, desc));
    CHECK_OK(mn_describe_f32(s, f32, NF32, desc + NU8 * D));
    double largest = 0;
    for (size_t i = 0; i < N; i++) {
        size_t bad = 0;
        for (size_t d = 0; d < D; d++) {
            float v = desc[i * D + d];
            bad += !isfinite(v);
            if (isfinite(v) && fabs(v) > largest)
                largest = fabs(v);
        }
        CHECK(bad == 0, "%s: %s: %zu of %zu descriptor values are not finite", name, patch_name(i), bad, D);
    }
    printf("%s: %d patches, largest descriptor value %.3g\n", name, N, largest);

    /* The same descriptors from one patch at a time: batching changes nothing. */
    float *one = malloc(sizeof(float) * D);
    for (int k = 0; k < NF32; k++) {
        CHECK_OK(mn_describe_f32(s, f32 + k * pp, 1, one));
        CHECK(memcmp(one, desc + (NU8 + k) * D, sizeof(float) * D) == 0, "%s: %s alone differs", name,
              f32_names[k]);
    }

    /* Non-finite pixels are refused and nothing is written. */
    const float bad_values[3] = {NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 3; b++) {
        float *copy = malloc(sizeof(float) * 2 * pp), *out = malloc(sizeof(float) * 2 * D);
        memcpy(copy, f32, sizeof(float) * 2 * pp);
        copy[pp + 5 * P + 7] = bad_values[b];
        for (size_t d = 0; d < 2 * D; d++)
            out[d] = 42.0f;
        mn_status st = mn_describe_f32(s, copy, 2, out);
        CHECK(st == MN_ERR_INVALID_ARGUMENT && strstr(mn_last_error(), "mn_describe_f32(): patch 1: pixel (7, 5)"),
              "%s: pixel %g: %s: %s", name, (double)bad_values[b], mn_status_str(st), mn_last_error());
        size_t touched = 0;
        for (size_t d = 0; d < 2 * D; d++)
            touched += out[d] != 42.0f;
        CHECK(touched == 0, "%s: pixel %g: %zu descriptor values written after the refusal", name,
              (double)bad_values[b], touched);
        free(copy);
        free(out);
    }

    check_knn(s, name, "patch descriptors", desc, N, desc, N, D);
    score_all_ways(s, name, "patch descriptors", desc, N, desc, N);
    match_all_ways(s, name, "patch descriptors", desc, N);

    /* Descriptors no tower writes: extreme values straight into the metric
     * network and the matcher. */
    enum { NX = 8 };
    float *x = malloc(sizeof(float) * NX * D);
    for (size_t d = 0; d < D; d++) {
        const int odd = d & 1;
        x[0 * D + d] = 0.0f;
        x[1 * D + d] = 1e30f;
        x[2 * D + d] = odd ? 1e30f : -1e30f;
        x[3 * D + d] = FLT_MAX;
        x[4 * D + d] = -FLT_MAX;
        x[5 * D + d] = odd ? FLT_MAX : -FLT_MAX;
        x[6 * D + d] = odd ? 1e-40f : 0.0f;
        x[7 * D + d] = 1e18f * (float)(int)(rng() % 201 - 100);
    }
    check_knn(s, name, "extreme descriptors", x, NX, x, NX, D);
    check_knn(s, name, "extreme against patch descriptors", x, NX, desc, N, D);
    score_all_ways(s, name, "extreme descriptors", x, NX, x, NX);
    score_all_ways(s, name, "extreme against patch descriptors", x, NX, desc, N);
    match_all_ways(s, name, "extreme descriptors", x, NX);

    free(x);
    free(one);
    free(u8);
    free(f32);
    free(desc);
    mn_session_free(s);
    mn_model_free(model);
}

int main(void)
{
    test_model(MN_SOURCE_DIR "/models/matchnet.mnw");
    test_model(MN_TEST_DATA "/golden_original.mnw");
    return check_summary("test_numeric");
}
