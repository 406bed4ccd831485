/*
 * fuzz_match.c - libFuzzer target: mn_match, mn_match_knn and
 * mn_metric_score_pairs on arbitrary descriptor sets and matching options.
 *
 * Input: 8 bytes of options, then descriptor values: either one signed
 * byte per value, scaled by a power of two from the options (any finite
 * value, from tiny to huge), or raw 4-byte floats (NaN, infinities and
 * denormals included). The first nq descriptors are the queries, the rest
 * (up to 64) the train set. The model is the fuzz corpus' tiny model
 * (D = 8) or the shipped one (D = 256, at most 8 queries and 12 train
 * descriptors, to keep the pace). Option bit 6 adds a mask, one bit of the
 * descriptor bytes per pair, to mn_match and mn_match_knn.
 *
 * Invariants: a success writes at most min(nq, capacity) matches in
 * increasing query order, indices in range, probability finite, in
 * [min_probability, 1], distance not NaN and >= 0, no train index twice
 * with the mutual check; a failure is INVALID_ARGUMENT with count 0 (or
 * the needed count when capacity is short); a session with 2 threads gives
 * bit-identical results; no match or knn entry is a masked pair; knn
 * indices are in range or UINT32_MAX (then at distance INFINITY), nearest
 * first; probabilities of finite descriptors are in [0, 1].
 */
#include "matchnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NQ 40
#define MAX_NT 64

static mn_model *models[2];
static mn_session *sessions[2][2]; /* [model][1 or 2 threads] */

static void violated(const char *what)
{
    fprintf(stderr, "fuzz_match: invariant violated: %s (last error: '%s')\n", what, mn_last_error());
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const paths[2] = {MN_SOURCE_DIR "/tests/fuzz/corpus/model/tiny.mnw",
                                         MN_SOURCE_DIR "/models/matchnet.mnw"};
    for (int m = 0; m < 2; m++) {
        if (mn_model_load_file(paths[m], &models[m]) != MN_OK) {
            fprintf(stderr, "fuzz_match: %s\n", mn_last_error());
            abort();
        }
        for (int t = 0; t < 2; t++) {
            mn_session_params sp = mn_session_params_default();
            sp.num_threads = t + 1;
            if (mn_session_create(models[m], &sp, &sessions[m][t]) != MN_OK)
                abort();
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    const uint8_t flags = data[0];
    const int mi = (flags >> 4) & 1, raw = (flags >> 3) & 1;
    const size_t D = mn_model_descriptor_dim(models[mi]);
    mn_match_params p = mn_match_params_preset((flags & 1) ? MN_MATCH_METRIC : MN_MATCH_L2);
    p.mutual = (flags >> 1) & 1;
    p.all_pairs = (flags >> 2) & 1;
    p.k = (int)(data[1] % 20) - 1;             /* -1 and 0 are refused */
    p.min_probability = (float)data[2] / 250.0f; /* over 1 is refused */
    p.ratio = (float)data[3] / 128.0f;         /* 0 is refused */
    size_t nq = data[4] % MAX_NQ;
    p.max_all_pairs = (size_t)data[6] * 8;
    const float scale = ldexpf(1.0f, (int)(data[7] % 160) - 40);
    const uint8_t cap_byte = data[5];
    const int use_mask = (flags >> 6) & 1;
    data += 8, size -= 8;

    /* The shipped model costs 500 times the tiny one per descriptor: fewer. */
    const size_t per = raw ? 4 * D : D, avail = size / per, max_nq = mi ? 8 : MAX_NQ, max_nt = mi ? 12 : MAX_NT;
    if (nq > max_nq)
        nq = max_nq;
    if (nq > avail)
        nq = avail;
    size_t nt = avail - nq;
    if (nt > max_nt)
        nt = max_nt;
    const size_t capacity = (flags >> 5) & 1 ? cap_byte % (nq + 1) : nq;
    float *desc = malloc(sizeof(float) * (nq + nt) * D + 1);
    mn_dmatch *m1 = malloc(sizeof(mn_dmatch) * (nq + 1)), *m2 = malloc(sizeof(mn_dmatch) * (nq + 1));
    if (!desc || !m1 || !m2)
        abort();
    for (size_t i = 0; i < (nq + nt) * D; i++) {
        if (raw)
            memcpy(&desc[i], data + 4 * i, 4);
        else
            desc[i] = (float)(int8_t)data[i] * scale;
    }
    const float *q = desc, *t = desc + nq * D;
    /* Bit (r mod 8) of descriptor byte r mod size allows pair r: masks
     * follow the input, full and empty rows included. */
    uint8_t *mask = malloc(nq * nt + 1);
    if (!mask)
        abort();
    for (size_t r = 0; r < nq * nt; r++)
        mask[r] = (data[r % size] >> (r & 7)) & 1;
    p.mask = use_mask ? mask : NULL;
    int finite = 1;
    for (size_t i = 0; i < (nq + nt) * D; i++)
        finite &= isfinite(desc[i]) != 0;

    size_t n1 = 77, n2 = 77;
    mn_status s1 = mn_match(sessions[mi][0], q, nq, t, nt, &p, m1, capacity, &n1);
    mn_status s2 = mn_match(sessions[mi][1], q, nq, t, nt, &p, m2, capacity, &n2);
    if (s1 != s2 || n1 != n2 || (s1 == MN_OK && n1 && memcmp(m1, m2, sizeof(mn_dmatch) * n1) != 0))
        violated("1 and 2 threads differ");
    if (s1 == MN_OK) {
        if (n1 > nq || n1 > capacity)
            violated("more matches than queries or capacity");
        for (size_t r = 0; r < n1; r++) {
            const mn_dmatch *d = &m1[r];
            if (d->query >= nq || d->train >= nt || (r && d->query <= m1[r - 1].query))
                violated("match index out of range or out of order");
            if (!(d->probability >= 0.0f && d->probability <= 1.0f) || d->probability < p.min_probability)
                violated("probability outside [min_probability, 1]");
            if (!(d->distance >= 0.0f))
                violated("distance NaN or negative");
            if (p.mask && !p.mask[d->query * nt + d->train])
                violated("match on a masked pair");
            if (p.mutual)
                for (size_t o = 0; o < r; o++)
                    if (m1[o].train == d->train)
                        violated("train index twice with mutual");
        }
    } else {
        if (s1 != MN_ERR_INVALID_ARGUMENT)
            violated("unexpected status");
        if (n1 != 0 && n1 <= capacity)
            violated("count set after a failure");
        if (strncmp(mn_last_error(), "mn_match(): ", 12) != 0)
            violated("message without the function name");
    }

    /* Candidate search on its own. */
    const int k = p.k >= 1 ? p.k : 1;
    uint32_t *idx = malloc(sizeof(uint32_t) * nq * (size_t)k + 1);
    float *dist = malloc(sizeof(float) * nq * (size_t)k + 1);
    if (!idx || !dist)
        abort();
    mn_status sk = mn_match_knn(sessions[mi][1], q, nq, t, nt, p.mask, k, idx, dist);
    if (sk == MN_OK) {
        for (size_t i = 0; i < nq; i++)
            for (int r = 0; r < k; r++) {
                uint32_t j = idx[i * (size_t)k + r];
                float dd = dist[i * (size_t)k + r];
                if (j == UINT32_MAX ? dd != INFINITY : (j >= nt || !(dd >= 0.0f)))
                    violated("knn entry out of range");
                if (j != UINT32_MAX && p.mask && !p.mask[i * nt + j])
                    violated("knn entry on a masked pair");
                if (r && !(dd >= dist[i * (size_t)k + r - 1]))
                    violated("knn list not nearest first");
            }
    } else if (sk != MN_ERR_INVALID_ARGUMENT || finite) {
        violated("knn refused finite descriptors");
    }

    /* Every query against its mirror-index train descriptor. */
    if (finite && nq && nt) {
        mn_pair pairs[MAX_NQ];
        float prob[MAX_NQ];
        for (size_t i = 0; i < nq; i++)
            pairs[i] = (mn_pair){(uint32_t)i, (uint32_t)(i % nt)};
        if (mn_metric_score_pairs(sessions[mi][0], q, nq, t, nt, pairs, nq, prob) != MN_OK)
            violated("mn_metric_score_pairs failed");
        for (size_t i = 0; i < nq; i++)
            if (!(prob[i] >= 0.0f && prob[i] <= 1.0f))
                violated("mn_metric_score_pairs probability outside [0, 1]");
    }
    free(idx);
    free(dist);
    free(mask);
    free(desc);
    free(m1);
    free(m2);
    return 0;
}
