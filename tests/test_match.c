/*
 * test_match.c - the matcher: candidate search against brute force,
 * selection against exhaustive scoring, mutual and ratio rules, masks
 * against brute force, thread invariance, a synthetic image pair with a
 * known warp, mn_describe_keypoints, and argument errors.
 */
#include "matchnet.h"
#include "check.h"

#include <float.h>
#include <stdint.h>

#define PI 3.14159265358979323846

static uint64_t rng_state = 42;
static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Random unit rows, like the shipped model's L2-normalised descriptors. */
static float *random_descriptors(size_t n, size_t dim)
{
    float *d = malloc(sizeof(float) * n * dim);
    for (size_t i = 0; i < n; i++) {
        double norm = 0;
        for (size_t k = 0; k < dim; k++) {
            d[i * dim + k] = (float)(urand() * 2 - 1);
            norm += (double)d[i * dim + k] * d[i * dim + k];
        }
        for (size_t k = 0; k < dim; k++)
            d[i * dim + k] = (float)(d[i * dim + k] / sqrt(norm));
    }
    return d;
}

/* ---- candidate search ---- */

static void test_knn(mn_session *s, size_t dim)
{
    const size_t nq = 77, nt = 131;
    const int k = 7;
    float *q = random_descriptors(nq, dim), *t = random_descriptors(nt, dim);
    uint32_t *idx = malloc(sizeof(uint32_t) * nq * k);
    float *dist = malloc(sizeof(float) * nq * k);
    uint8_t *mask = malloc(nq * nt);
    for (size_t r = 0; r < nq * nt; r++)
        mask[r] = urand() < 0.7;
    for (int use_mask = 0; use_mask < 2; use_mask++) {
        CHECK_OK(mn_match_knn(s, q, nq, t, nt, use_mask ? mask : NULL, k, idx, dist));
        int bad = 0;
        for (size_t i = 0; i < nq && !bad; i++) {
            /* Brute force in double: the k smallest distances among allowed rows. */
            double ref[131];
            int order[131], n = 0;
            for (size_t j = 0; j < nt; j++) {
                if (use_mask && !mask[i * nt + j])
                    continue;
                double acc = 0;
                for (size_t c = 0; c < dim; c++) {
                    double e = (double)q[i * dim + c] - t[j * dim + c];
                    acc += e * e;
                }
                ref[n] = sqrt(acc);
                order[n++] = (int)j;
            }
            for (int a = 0; a < n; a++) /* selection sort of the first k */
                for (int b = a + 1; b < n && a < k; b++)
                    if (ref[b] < ref[a]) {
                        double tr = ref[a]; ref[a] = ref[b]; ref[b] = tr;
                        int to = order[a]; order[a] = order[b]; order[b] = to;
                    }
            for (int r = 0; r < k; r++) {
                uint32_t got = idx[i * k + r];
                float gd = dist[i * k + r];
                if (r >= n) {
                    if (got != UINT32_MAX || !isinf(gd))
                        bad = 1;
                    continue;
                }
                /* Allow a swap between near-equal distances. */
                if (fabs(gd - ref[r]) > 1e-4 || (got != (uint32_t)order[r] &&
                                                  !(r + 1 < n && fabs(ref[r + 1] - ref[r]) < 1e-5))) {
                    CHECK(0, "mask %d query %zu rank %d: got %u (%.6f), want %d (%.6f)", use_mask, i, r,
                          got, gd, order[r], ref[r]);
                    bad = 1;
                }
            }
        }
        CHECK(!bad, "mn_match_knn disagrees with brute force (mask %d)", use_mask);
    }
    /* Fewer train rows than k: missing entries are marked. */
    CHECK_OK(mn_match_knn(s, q, 3, t, 2, NULL, 4, idx, dist));
    CHECK(idx[2] == UINT32_MAX && idx[3] == UINT32_MAX && isinf(dist[3]) && idx[0] < 2 && idx[1] < 2,
          "k > nt: %u %u %u %u", idx[0], idx[1], idx[2], idx[3]);
    free(q), free(t), free(idx), free(dist), free(mask);
}

/* ---- selection against exhaustive scoring ---- */

static int same_matches(const mn_dmatch *a, size_t na, const mn_dmatch *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t r = 0; r < na; r++)
        if (a[r].query != b[r].query || a[r].train != b[r].train || a[r].probability != b[r].probability)
            return 0;
    return 1;
}

static void test_selection(mn_session *s, size_t dim)
{
    /* Descriptor sets with planted near-duplicates so that there are real matches. */
    const size_t nq = 60, nt = 70;
    float *q = random_descriptors(nq, dim), *t = random_descriptors(nt, dim);
    for (size_t i = 0; i < 40; i++) {
        size_t j = (i * 3) % nt;
        double norm = 0;
        for (size_t c = 0; c < dim; c++) {
            t[j * dim + c] = q[i * dim + c] + (float)(0.3 * (urand() - 0.5) / sqrt((double)dim));
            norm += (double)t[j * dim + c] * t[j * dim + c];
        }
        for (size_t c = 0; c < dim; c++)
            t[j * dim + c] = (float)(t[j * dim + c] / sqrt(norm));
    }
    float *prob = malloc(sizeof(float) * nq * nt);
    CHECK_OK(mn_metric_score_all(s, q, nq, t, nt, prob));
    /* Exhaustive references: row argmax, column argmax (ties to the smaller index). */
    uint32_t rowbest[60], colbest[70];
    for (size_t i = 0; i < nq; i++) {
        rowbest[i] = 0;
        for (size_t j = 1; j < nt; j++)
            if (prob[i * nt + j] > prob[i * nt + rowbest[i]])
                rowbest[i] = (uint32_t)j;
    }
    for (size_t j = 0; j < nt; j++) {
        colbest[j] = 0;
        for (size_t i = 1; i < nq; i++)
            if (prob[i * nt + j] > prob[colbest[j] * nt + j])
                colbest[j] = (uint32_t)i;
    }
    mn_dmatch all[60], knn[60];
    size_t nall = 0, nknn = 0;
    mn_match_params p = mn_match_params_preset(MN_MATCH_METRIC);
    p.mutual = 0;
    p.min_probability = 0.0f;
    p.all_pairs = 1;
    CHECK_OK(mn_match(s, q, nq, t, nt, &p, all, nq, &nall));
    CHECK(nall == nq, "all_pairs without thresholds keeps every query: %zu of %zu", nall, nq);
    int bad = 0;
    for (size_t r = 0; r < nall; r++) {
        size_t i = all[r].query, j = all[r].train;
        if (i != r || j != rowbest[i] || fabsf(all[r].probability - prob[i * nt + j]) > 1e-6f)
            bad++;
    }
    CHECK(bad == 0, "all_pairs differs from the argmax of mn_metric_score_all in %d queries", bad);
    /* k = nt candidates is the same exhaustive search. */
    p.all_pairs = 0;
    p.k = (int)nt;
    CHECK_OK(mn_match(s, q, nq, t, nt, &p, knn, nq, &nknn));
    CHECK(same_matches(all, nall, knn, nknn), "k = nt differs from all_pairs");

    /* Mutual on all pairs: exactly the pairs that are each other's argmax. */
    p.all_pairs = 1;
    p.mutual = 1;
    CHECK_OK(mn_match(s, q, nq, t, nt, &p, all, nq, &nall));
    size_t want = 0;
    for (size_t i = 0; i < nq; i++)
        want += colbest[rowbest[i]] == i;
    CHECK(nall == want, "mutual: %zu matches, brute force %zu", nall, want);
    for (size_t r = 0; r < nall; r++)
        CHECK(colbest[all[r].train] == all[r].query && rowbest[all[r].query] == all[r].train,
              "mutual match (%u, %u) is not mutual", all[r].query, all[r].train);
    CHECK(want >= 30, "planted duplicates should mostly be mutual best matches: %zu", want);

    /* Probability threshold and ratio test only remove matches. */
    mn_dmatch strict[60];
    size_t nstrict = 0;
    p.min_probability = 0.9f;
    p.ratio = 0.5f;
    CHECK_OK(mn_match(s, q, nq, t, nt, &p, strict, nq, &nstrict));
    CHECK(nstrict <= nall, "stricter thresholds gave more matches");
    for (size_t r = 0; r < nstrict; r++) {
        size_t i = strict[r].query, j = strict[r].train;
        CHECK(strict[r].probability >= 0.9f && rowbest[i] == j, "strict match (%zu, %zu) p %g", i, j,
              strict[r].probability);
        float second = -1;
        for (size_t jj = 0; jj < nt; jj++)
            if (jj != j && prob[i * nt + jj] > second)
                second = prob[i * nt + jj];
        CHECK(1 - strict[r].probability < 0.5f * (1 - second) + 1e-6f, "ratio test let (%zu, %zu) through",
              i, j);
    }

    /* L2 method: nearest neighbour, probability reported, distance exact. */
    p = mn_match_params_default();
    CHECK(p.method == MN_MATCH_L2 && p.ratio == 0.8f && !p.mutual && p.min_probability == 0.0f,
          "default is the L2 preset");
    p.ratio = 1.0f;
    p.k = 2;
    CHECK_OK(mn_match(s, q, nq, t, nt, &p, knn, nq, &nknn));
    CHECK(nknn == nq, "L2 without ratio keeps every query: %zu", nknn);
    for (size_t r = 0; r < nknn; r++) {
        size_t i = knn[r].query, j = knn[r].train;
        double dj = 0;
        for (size_t c = 0; c < dim; c++)
            dj += ((double)q[i * dim + c] - t[j * dim + c]) * ((double)q[i * dim + c] - t[j * dim + c]);
        int nearest = 1;
        for (size_t jj = 0; jj < nt; jj++) {
            double d = 0;
            for (size_t c = 0; c < dim; c++)
                d += ((double)q[i * dim + c] - t[jj * dim + c]) * ((double)q[i * dim + c] - t[jj * dim + c]);
            if (d < dj - 1e-6)
                nearest = 0;
        }
        CHECK(nearest && fabs(sqrt(dj) - knn[r].distance) < 1e-4 &&
                  fabsf(knn[r].probability - prob[i * nt + j]) < 1e-6f,
              "L2 match (%zu, %zu): nearest %d, distance %g vs %g, p %g vs %g", i, j, nearest,
              knn[r].distance, sqrt(dj), knn[r].probability, prob[i * nt + j]);
    }
    /* With a probability threshold the metric network verifies the L2 choice. */
    mn_dmatch verified[60];
    size_t nver = 0;
    p.min_probability = 0.5f;
    CHECK_OK(mn_match(s, q, nq, t, nt, &p, verified, nq, &nver));
    size_t want_ver = 0;
    for (size_t r = 0; r < nknn; r++)
        want_ver += knn[r].probability >= 0.5f;
    CHECK(nver == want_ver, "L2 + min_probability 0.5: %zu matches, expected %zu", nver, want_ver);
    for (size_t r = 0; r < nver; r++)
        CHECK(verified[r].probability >= 0.5f, "verified match with p %g", verified[r].probability);
    p.min_probability = 0.0f;
    p.ratio = 0.8f;
    size_t nratio = 0;
    CHECK_OK(mn_match(s, q, nq, t, nt, &p, all, nq, &nratio));
    CHECK(nratio < nknn && nratio >= 30, "L2 ratio 0.8 keeps the planted matches only: %zu", nratio);

    /* Capacity too small: an error, and the count needed. */
    size_t need = 0;
    p = mn_match_params_default();
    CHECK_OK(mn_match(s, q, nq, t, nt, &p, all, nq, &need));
    size_t got = 0;
    mn_status st = mn_match(s, q, nq, t, nt, &p, all, need ? need - 1 : 0, &got);
    CHECK(need == 0 || (st == MN_ERR_INVALID_ARGUMENT && got == need), "capacity %zu: %s, count %zu",
          need ? need - 1 : 0, mn_status_str(st), got);
    free(q), free(t), free(prob);
}

/* ---- masks against brute force ---- */

/* Values in {-2, -1, 0, 1, 2} / 16 (norms near 1.4, like descriptors),
 * every other query copied into a train row with a fifth of its values
 * redrawn (real matches): every squared distance is then exact in float
 * whatever the order of summation, so the reference ranks candidates
 * exactly as the library does, ties included. */
static void quantized_sets(size_t nq, size_t nt, size_t dim, float **q, float **t)
{
    *q = malloc(sizeof(float) * nq * dim);
    *t = malloc(sizeof(float) * nt * dim);
    for (size_t i = 0; i < nq * dim; i++)
        (*q)[i] = (float)((int)(urand() * 5) - 2) * 0.0625f;
    for (size_t i = 0; i < nt * dim; i++)
        (*t)[i] = (float)((int)(urand() * 5) - 2) * 0.0625f;
    for (size_t i = 0; i < nq && 2 * i + 1 < nt; i += 2)
        for (size_t c = 0; c < dim; c++)
            if (urand() < 0.8)
                (*t)[(2 * i + 1) * dim + c] = (*q)[i * dim + c];
}

/* Marks in cand[] the k allowed partners nearest by (distance, index), the
 * candidate lists' order: n entries from `first`, `step` apart, walk a row
 * (a query's list) or a column (a train row's list) of the nq x nt arrays. */
static void mark_nearest(const double *sq, const uint8_t *mask, uint8_t *cand, size_t n, size_t first,
                         size_t step, int k)
{
    uint8_t *taken = calloc(n, 1);
    for (int r = 0; r < k; r++) {
        size_t best = n;
        for (size_t j = 0; j < n; j++) {
            size_t e = first + j * step;
            if (mask[e] && !taken[j] && (best == n || sq[e] < sq[first + best * step]))
                best = j;
        }
        if (best == n)
            break;
        taken[best] = 1;
        cand[first + best * step] = 1;
    }
    free(taken);
}

/* The best and second-best partner over the marked pairs of a row or
 * column: larger score first, ties to the smaller index. */
static void best_two(const float *score, const uint8_t *cand, size_t n, size_t first, size_t step, size_t *b1,
                     size_t *b2)
{
    *b1 = *b2 = n;
    for (size_t j = 0; j < n; j++) {
        size_t e = first + j * step;
        if (!cand[e])
            continue;
        if (*b1 == n || score[e] > score[first + *b1 * step]) {
            *b2 = *b1;
            *b1 = j;
        } else if (*b2 == n || score[e] > score[first + *b2 * step]) {
            *b2 = j;
        }
    }
}

/* mn_match's rules applied by brute force to every allowed pair; returns the match count. */
static size_t reference_match(const float *q, size_t nq, const float *t, size_t nt, size_t dim,
                              const uint8_t *mask, const float *prob, const mn_match_params *p, mn_dmatch *out)
{
    const int metric = p->method == MN_MATCH_METRIC;
    double *sq = malloc(sizeof(double) * nq * nt);
    float *score = malloc(sizeof(float) * nq * nt);
    uint8_t *cand = calloc(nq * nt, 1);
    for (size_t i = 0; i < nq; i++)
        for (size_t j = 0; j < nt; j++) {
            double acc = 0;
            for (size_t c = 0; c < dim; c++)
                acc += ((double)q[i * dim + c] - t[j * dim + c]) * ((double)q[i * dim + c] - t[j * dim + c]);
            sq[i * nt + j] = acc;
            score[i * nt + j] = metric ? prob[i * nt + j] : -sqrtf((float)acc);
            if (p->all_pairs)
                cand[i * nt + j] = mask[i * nt + j];
        }
    for (size_t i = 0; i < nq && !p->all_pairs; i++)
        mark_nearest(sq, mask, cand, nt, i * nt, 1, p->k);
    for (size_t j = 0; j < nt && !p->all_pairs && p->mutual; j++)
        mark_nearest(sq, mask, cand, nq, j, nt, p->k);
    size_t n = 0;
    for (size_t i = 0; i < nq; i++) {
        size_t j1, j2, i1, i2;
        best_two(score, cand, nt, i * nt, 1, &j1, &j2);
        if (j1 == nt)
            continue;
        float s1 = score[i * nt + j1], s2 = j2 < nt ? score[i * nt + j2] : 0.0f;
        best_two(score, cand, nq, j1, nt, &i1, &i2);
        if ((metric && s1 < p->min_probability) || (p->mutual && i1 != i))
            continue;
        if (p->ratio < 1.0f && j2 < nt && !((metric ? 1.0f - s1 : -s1) < p->ratio * (metric ? 1.0f - s2 : -s2)))
            continue;
        if (!metric && prob[i * nt + j1] < p->min_probability)
            continue;
        out[n++] = (mn_dmatch){(uint32_t)i, (uint32_t)j1, prob[i * nt + j1], (float)sqrt(sq[i * nt + j1])};
    }
    free(sq), free(score), free(cand);
    return n;
}

static void test_mask(mn_session *s, size_t dim)
{
    for (int size = 0; size < 2; size++) {
        const size_t nq = size ? 260 : 37, nt = size ? 270 : 45; /* 260 x 270: all_pairs in two blocks */
        float *q, *t;
        quantized_sets(nq, nt, dim, &q, &t);
        uint8_t *mask = malloc(nq * nt);
        for (size_t r = 0; r < nq * nt; r++)
            mask[r] = urand() < 0.6 ? (uint8_t)(1 + urand() * 255) : 0; /* any non-zero byte allows */
        for (size_t j = 0; j < nt; j++)
            mask[3 * nt + j] = 0; /* query 3: no allowed pair */
        for (size_t i = 0; i < nq; i++)
            mask[i * nt + 5] = 0; /* train 5: none either */
        for (size_t j = 2; j < nt; j++)
            mask[7 * nt + j] = 0; /* query 7: fewer allowed than k */
        /* Every allowed pair scored once, the masked ones left NaN. */
        float *prob = malloc(sizeof(float) * nq * nt);
        mn_pair *pairs = malloc(sizeof(mn_pair) * nq * nt);
        size_t np = 0;
        for (size_t r = 0; r < nq * nt; r++) {
            prob[r] = NAN;
            if (mask[r])
                pairs[np++] = (mn_pair){(uint32_t)(r / nt), (uint32_t)(r % nt)};
        }
        float *pp = malloc(sizeof(float) * (np + 1));
        CHECK_OK(mn_metric_score_pairs(s, q, nq, t, nt, pairs, np, pp));
        for (size_t r = 0; r < np; r++)
            prob[pairs[r].a * nt + pairs[r].b] = pp[r];
        mn_dmatch *got = malloc(sizeof(mn_dmatch) * nq), *want = malloc(sizeof(mn_dmatch) * nq);
        size_t ncase = 0, nmatched = 0;
        for (int method = 0; method < 2; method++)
        for (int all = 0; all < 2 - method; all++)
        for (int mutual = 0; mutual < 2; mutual++)
        for (int variant = 0; variant < 2; variant++) {
            if (size == 1 && !all)
                continue;
            mn_match_params p = mn_match_params_preset(method ? MN_MATCH_L2 : MN_MATCH_METRIC);
            p.mask = mask;
            p.all_pairs = all;
            p.max_all_pairs = nq * nt;
            p.mutual = mutual;
            p.k = variant ? 1 : 4;
            p.ratio = variant ? 0.9f : 1.0f;
            p.min_probability = variant ? 0.5f : 0.0f;
            size_t ngot = 0, nwant = reference_match(q, nq, t, nt, dim, mask, prob, &p, want);
            CHECK_OK(mn_match(s, q, nq, t, nt, &p, got, nq, &ngot));
            int same = ngot == nwant;
            for (size_t r = 0; same && r < ngot; r++)
                same = got[r].query == want[r].query && got[r].train == want[r].train &&
                       got[r].probability == want[r].probability &&
                       fabsf(got[r].distance - want[r].distance) <= 1e-5f * want[r].distance;
            CHECK(same, "%zu x %zu, method %d, all_pairs %d, mutual %d, variant %d: %zu matches, reference %zu",
                  nq, nt, method, all, mutual, variant, ngot, nwant);
            for (size_t r = 0; r < ngot; r++)
                CHECK(mask[got[r].query * nt + got[r].train] && got[r].query != 3 && got[r].train != 5,
                      "masked pair (%u, %u) matched", got[r].query, got[r].train);
            ncase++;
            nmatched += nwant;
        }
        CHECK(nmatched >= ncase * 3, "%zu x %zu: the planted copies should match: %zu over %zu cases", nq, nt,
              nmatched, ncase);
        free(q), free(t), free(mask), free(prob), free(pairs), free(pp), free(got), free(want);
    }

    /* An all-ones mask is no mask, bit for bit (all_pairs in two blocks). */
    const size_t nq = 300, nt = 280;
    float *q = random_descriptors(nq, dim), *t = random_descriptors(nt, dim);
    uint8_t *ones = malloc(nq * nt);
    memset(ones, 1, nq * nt);
    mn_dmatch *a = malloc(sizeof(mn_dmatch) * nq), *b = malloc(sizeof(mn_dmatch) * nq);
    for (int method = 0; method < 2; method++)
    for (int all = 0; all < 2 - method; all++)
    for (int mutual = 0; mutual < 2; mutual++) {
        mn_match_params p = mn_match_params_preset(method ? MN_MATCH_L2 : MN_MATCH_METRIC);
        p.all_pairs = all;
        p.max_all_pairs = nq * nt;
        p.mutual = mutual;
        size_t na = 0, nb = 0;
        CHECK_OK(mn_match(s, q, nq, t, nt, &p, a, nq, &na));
        p.mask = ones;
        CHECK_OK(mn_match(s, q, nq, t, nt, &p, b, nq, &nb));
        CHECK(na == nb && memcmp(a, b, sizeof(mn_dmatch) * na) == 0,
              "method %d, all_pairs %d, mutual %d: all-ones mask %zu matches, no mask %zu", method, all, mutual,
              nb, na);
    }
    free(q), free(t), free(ones), free(a), free(b);
}

/* ---- thread invariance ---- */

static void test_threads(const mn_model *model, size_t dim)
{
    const size_t nq = 300, nt = 280;
    float *q = random_descriptors(nq, dim), *t = random_descriptors(nt, dim);
    mn_dmatch *ref = malloc(sizeof(mn_dmatch) * nq), *got = malloc(sizeof(mn_dmatch) * nq);
    size_t nref = 0, ngot = 0;
    for (int method = 0; method < 2; method++)
    for (int threads = 1; threads <= 4; threads++) {
        mn_match_params p = mn_match_params_preset(method ? MN_MATCH_L2 : MN_MATCH_METRIC);
        p.min_probability = 0.0f;
        p.ratio = 1.0f;
        p.mutual = 1; /* exercises the merge of the per-thread reverse lists */
        mn_session_params sp = mn_session_params_default();
        sp.num_threads = threads;
        mn_session *s = NULL;
        CHECK_OK(mn_session_create(model, &sp, &s));
        CHECK_OK(mn_match(s, q, nq, t, nt, &p, threads == 1 ? ref : got, nq, threads == 1 ? &nref : &ngot));
        if (threads > 1)
            CHECK(ngot == nref && memcmp(ref, got, sizeof(mn_dmatch) * nref) == 0,
                  "method %d, %d threads: %zu matches differ from 1 thread's %zu", method, threads, ngot, nref);
        mn_session_free(s);
    }
    CHECK(nref > 0, "no mutual matches among random descriptors at all");
    free(q), free(t), free(ref), free(got);
}

/* ---- a synthetic image pair with a known warp ---- */

#define IW 400
#define IH 400
#define GRID 64

/* Value noise: three octaves of bilinearly interpolated random grids. */
static float noise_grid[3][GRID][GRID];
static double texture(double x, double y)
{
    static const double cell[3] = {6.0, 13.0, 29.0}, amp[3] = {45, 60, 70};
    double v = 128;
    for (int o = 0; o < 3; o++) {
        double u = x / cell[o] + 8, w = y / cell[o] + 8;
        int i = (int)floor(u), j = (int)floor(w);
        double fu = u - i, fw = w - j;
        i = ((i % GRID) + GRID) % GRID, j = ((j % GRID) + GRID) % GRID;
        int i1 = (i + 1) % GRID, j1 = (j + 1) % GRID;
        double a = noise_grid[o][j][i] * (1 - fu) + noise_grid[o][j][i1] * fu;
        double b = noise_grid[o][j1][i] * (1 - fu) + noise_grid[o][j1][i1] * fu;
        v += amp[o] * (a * (1 - fw) + b * fw);
    }
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* I2(p) = texture(A^-1 (p - c) + c): rotated by theta (clockwise on
 * screen) and zoomed by k about the centre c. */
static void render(uint8_t *img, double theta, double k)
{
    const double cx = IW / 2.0, cy = IH / 2.0, c = cos(theta), s = sin(theta);
    for (int y = 0; y < IH; y++)
        for (int x = 0; x < IW; x++) {
            double dx = (x - cx) / k, dy = (y - cy) / k;
            img[(size_t)y * IW + x] = (uint8_t)lrint(texture(c * dx + s * dy + cx, -s * dx + c * dy + cy));
        }
}

static void test_warp(mn_session *s, size_t dim)
{
    for (int o = 0; o < 3; o++)
        for (int j = 0; j < GRID; j++)
            for (int i = 0; i < GRID; i++)
                noise_grid[o][j][i] = (float)(urand() * 2 - 1);
    const double theta = 25 * PI / 180, zoom = 1.25;
    uint8_t *im1 = malloc(IW * IH), *im2 = malloc(IW * IH);
    render(im1, 0, 1);
    render(im2, theta, zoom);
    enum { NK = 100 };
    mn_keypoint k1[NK], k2[NK];
    int perm[NK];
    for (int r = 0; r < NK; r++)
        perm[r] = r;
    for (int r = NK - 1; r > 0; r--) {
        int o = (int)(urand() * (r + 1)), tmp = perm[r];
        perm[r] = perm[o];
        perm[o] = tmp;
    }
    const double cx = IW / 2.0, cy = IH / 2.0, c = cos(theta), sn = sin(theta);
    for (int r = 0; r < NK; r++) {
        /* a 10 x 10 grid around the centre, where the warped view sees it too */
        double x = cx + ((r % 10) - 4.5) * 20, y = cy + ((r / 10) - 4.5) * 20;
        k1[r] = (mn_keypoint){(float)x, (float)y, 9.0f, 0.0f};
        double dx = x - cx, dy = y - cy;
        mn_keypoint w = {(float)(cx + zoom * (c * dx - sn * dy)), (float)(cy + zoom * (sn * dx + c * dy)),
                         (float)(9.0 * zoom), (float)(theta * 180 / PI)};
        k2[perm[r]] = w;
    }
    float *d1 = malloc(sizeof(float) * NK * dim), *d2 = malloc(sizeof(float) * NK * dim);
    CHECK_OK(mn_describe_keypoints(s, im1, IW, IH, IW, k1, NK, NULL, d1));
    CHECK_OK(mn_describe_keypoints(s, im2, IW, IH, IW, k2, NK, NULL, d2));
    for (int method = 0; method < 2; method++) {
        mn_match_params p = mn_match_params_preset(method ? MN_MATCH_L2 : MN_MATCH_METRIC);
        mn_dmatch m[NK];
        size_t n = 0;
        CHECK_OK(mn_match(s, d1, NK, d2, NK, &p, m, NK, &n));
        int correct = 0;
        for (size_t r = 0; r < n; r++)
            correct += m[r].train == (uint32_t)perm[m[r].query];
        printf("warp (rotation 25 deg, zoom 1.25), %s: %zu matches, %d correct\n", method ? "L2" : "metric", n,
               correct);
        CHECK(correct >= 70 && correct >= 0.9 * n, "%s: %d of %zu matches correct (of %d true pairs)",
              method ? "L2" : "metric", correct, n, NK);
    }
    /* The opposite rotation in image 2's keypoints is a control: the patches
     * no longer correspond, so far fewer correct matches. */
    for (int r = 0; r < NK; r++)
        k2[r].angle = (float)(-theta * 180 / PI);
    CHECK_OK(mn_describe_keypoints(s, im2, IW, IH, IW, k2, NK, NULL, d2));
    mn_dmatch m[NK];
    size_t n = 0;
    CHECK_OK(mn_match(s, d1, NK, d2, NK, NULL, m, NK, &n));
    int correct = 0;
    for (size_t r = 0; r < n; r++)
        correct += m[r].train == (uint32_t)perm[m[r].query];
    CHECK(correct < 50, "control with wrong orientations still matched %d", correct);

    /* mn_describe_keypoints = mn_extract_patches + mn_describe_u8. */
    uint8_t *patches = malloc((size_t)NK * 64 * 64);
    float *ref = malloc(sizeof(float) * NK * dim);
    mn_extract_params ep = mn_extract_params_default();
    CHECK_OK(mn_extract_patches(im1, IW, IH, IW, k1, NK, &ep, patches));
    CHECK_OK(mn_describe_u8(s, patches, NK, ref));
    CHECK(memcmp(ref, d1, sizeof(float) * NK * dim) == 0, "mn_describe_keypoints differs from the two calls");
    ep.patch_size = 32;
    CHECK(mn_describe_keypoints(s, im1, IW, IH, IW, k1, NK, &ep, d1) == MN_ERR_INVALID_ARGUMENT,
          "patch size other than the model's accepted");
    k1[7].x = NAN;
    CHECK(mn_describe_keypoints(s, im1, IW, IH, IW, k1, NK, NULL, d1) == MN_ERR_INVALID_ARGUMENT &&
              strstr(mn_last_error(), "mn_describe_keypoints(): ") == mn_last_error() &&
              strstr(mn_last_error(), "7") != NULL,
          "NaN keypoint: %s", mn_last_error());
    free(im1), free(im2), free(d1), free(d2), free(patches), free(ref);
}

/* ---- errors ---- */

static void test_errors(mn_session *s, size_t dim)
{
    float *q = random_descriptors(4, dim), *t = random_descriptors(5, dim);
    mn_dmatch m[4];
    size_t n = 99;
    uint32_t idx[8];
    mn_match_params p = mn_match_params_default();
    CHECK(mn_match(NULL, q, 4, t, 5, NULL, m, 4, &n) == MN_ERR_INVALID_ARGUMENT && n == 0, "NULL session");
    CHECK(mn_match(s, q, 4, t, 5, NULL, m, 4, NULL) == MN_ERR_INVALID_ARGUMENT, "NULL count");
    CHECK(mn_match(s, NULL, 4, t, 5, NULL, m, 4, &n) == MN_ERR_INVALID_ARGUMENT, "NULL query");
    CHECK(mn_match(s, q, 4, t, 5, NULL, NULL, 4, &n) == MN_ERR_INVALID_ARGUMENT, "NULL matches");
    CHECK_OK(mn_match(s, q, 0, t, 5, NULL, m, 0, &n));
    CHECK(n == 0, "empty query set gives %zu matches", n);
    CHECK_OK(mn_match(s, q, 4, NULL, 0, NULL, m, 4, &n));
    CHECK(n == 0, "empty train set gives %zu matches", n);
    p.k = 0;
    CHECK(mn_match(s, q, 4, t, 5, &p, m, 4, &n) == MN_ERR_INVALID_ARGUMENT, "k = 0");
    p.k = 257;
    CHECK(mn_match(s, q, 4, t, 5, &p, m, 4, &n) == MN_ERR_INVALID_ARGUMENT, "k = 257");
    p = mn_match_params_default();
    p.method = (mn_match_method)7;
    CHECK(mn_match(s, q, 4, t, 5, &p, m, 4, &n) == MN_ERR_INVALID_ARGUMENT, "method 7");
    p = mn_match_params_default();
    p.min_probability = NAN;
    CHECK(mn_match(s, q, 4, t, 5, &p, m, 4, &n) == MN_ERR_INVALID_ARGUMENT, "NaN min_probability");
    p.all_pairs = 1;
    CHECK(mn_match(s, q, 4, t, 5, &p, m, 4, &n) == MN_ERR_INVALID_ARGUMENT, "all_pairs with MN_MATCH_L2");
    p = mn_match_params_preset(MN_MATCH_METRIC);
    p.all_pairs = 1;
    p.max_all_pairs = 19;
    CHECK(mn_match(s, q, 4, t, 5, &p, m, 4, &n) == MN_ERR_INVALID_ARGUMENT &&
              strstr(mn_last_error(), "max_all_pairs"),
          "all_pairs over the limit: %s", mn_last_error());
    p.max_all_pairs = 20;
    CHECK_OK(mn_match(s, q, 4, t, 5, &p, m, 4, &n));
    q[dim + 3] = NAN;
    CHECK(mn_match(s, q, 4, t, 5, NULL, m, 4, &n) == MN_ERR_INVALID_ARGUMENT &&
              strstr(mn_last_error(), "query descriptor 1"),
          "NaN descriptor: %s", mn_last_error());
    CHECK(mn_match_knn(s, t, 5, t, 5, NULL, 0, idx, NULL) == MN_ERR_INVALID_ARGUMENT, "knn k = 0");
    CHECK(mn_match_knn(s, t, 5, t, 5, NULL, 1, NULL, NULL) == MN_ERR_INVALID_ARGUMENT, "knn NULL index");
    CHECK_OK(mn_match_knn(s, t, 5, t, 5, NULL, 1, idx, NULL));
    for (int r = 0; r < 5; r++)
        CHECK(idx[r] == (uint32_t)r, "a set's nearest neighbour in itself is itself: %d -> %u", r, idx[r]);
    free(q), free(t);
}

int main(void)
{
    mn_model *model = NULL;
    CHECK_OK(mn_model_load_file(MN_SOURCE_DIR "/models/matchnet.mnw", &model));
    if (!model)
        return check_summary("test_match");
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = 2;
    mn_session *s = NULL;
    CHECK_OK(mn_session_create(model, &sp, &s));
    size_t dim = mn_model_descriptor_dim(model);
    test_knn(s, dim);
    test_selection(s, dim);
    test_mask(s, dim);
    test_threads(model, dim);
    test_warp(s, dim);
    test_errors(s, dim);
    mn_session_free(s);
    mn_model_free(model);
    return check_summary("test_match");
}
