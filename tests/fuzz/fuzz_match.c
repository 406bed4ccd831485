/*
 * fuzz_match.c - libFuzzer target: mn_match, mn_match_knn and
 * mn_metric_score_pairs on arbitrary descriptor sets and matching options.
 *
 * Input: 8 bytes of options, then descriptor values: either one signed
 * byte per value, scaled by a power of two from the options (any finite
 * value, from tiny to huge), or raw 4-byte floats (NaN, infinities and
 * denormals included). The first nq descriptors are the queries, the rest
 * the train set. Option bit 4 picks the model: the fuzz corpus' tiny model
 * (D = 8, metric 16 -> 16 -> 2; up to 39 queries and 64 train
 * descriptors) or a wide one built here (D = 24, metric 48 -> 264 -> 40 ->
 * 2; up to 6 queries and 10 train descriptors). Option bit 6 adds a mask,
 * one bit of the descriptor bytes per pair, to mn_match and mn_match_knn.
 *
 * Why a wide model and not the shipped one: the shipped model's metric
 * network (512 -> 512 -> 512 -> 2) costs 260,000 multiply-adds a pair,
 * about 50 ms for an input of 8 x 12 descriptors under ASan, and the
 * fuzzer ran at 60 to 400 inputs a second (now 1500 to 3000). The products
 * take the same paths whatever their size past a few tiles, and the
 * models' shapes reach all of them on each instruction set's kernel at a
 * fraction of the cost. Wide: 264 outputs in layer 1 (full 32- and
 * 16-wide strips and a partial one), an inner dimension of 264 in layer 2
 * (over the kernels' 256-deep K block: the accumulating pass), 40 outputs
 * in layer 2. Tiny: distance products of up to 64 columns (full strips),
 * and up to 128 pairs a block with all pairs (more rows than the 96 of an
 * M block). The kernels are built without comparison tracing in fuzz
 * builds (src/kernels/kernels.cmake): their loop bounds follow the shapes.
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
#include "crc32.h"
#include "matchnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NQ 40
#define MAX_NT 64
#define WIDE_NQ 6
#define WIDE_NT 10

static mn_model *models[2];
static mn_session *sessions[2][2]; /* [model][1 or 2 threads] */

static void violated(const char *what)
{
    fprintf(stderr, "fuzz_match: invariant violated: %s (last error: '%s')\n", what, mn_last_error());
    abort();
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The wide model as a .mnw file (models/README.md): a 4 x 4 patch, one
 * tower fc (16 -> 24), metric fc 48 -> 264 (ReLU) -> 40 (ReLU) -> 2, with
 * fixed pseudo-random weights scaled by 1 / sqrt(fan-in). */
static uint8_t *wide_model(size_t *size)
{
    enum { NL = 4, NT = 8 };
    static const uint32_t fc[NL][3] = {{24, 16, 0}, {264, 48, 1}, {40, 264, 1}, {2, 40, 0}}; /* out, in, relu */
    size_t header = 128 + 32 * NL + 64 * NT, data = 0;
    for (int l = 0; l < NL; l++)
        data += 4 * (size_t)fc[l][0] * (fc[l][1] + 1);
    *size = header + data + 4;
    uint8_t *f = calloc(1, *size);
    if (!f)
        abort();
    memcpy(f, "MATCHNET", 8);
    put32(f + 8, 1);
    put32(f + 12, (uint32_t)header);
    put32(f + 16, (uint32_t)*size);
    put32(f + 24, 1);
    put32(f + 28, NL - 1);
    put32(f + 32, NT);
    strcpy((char *)f + 40, "fuzz-match-wide");
    put32(f + 104, 1);
    put32(f + 108, 4);
    const float mean = 128.0f, divisor = 160.0f;
    memcpy(f + 112, &mean, 4);
    memcpy(f + 116, &divisor, 4);
    uint8_t *rec = f + 128, *tensor = f + 128 + 32 * NL;
    size_t off = header;
    uint32_t rng = 12345;
    for (int l = 0; l < NL; l++, rec += 32) {
        put32(rec, 3); /* fc */
        put32(rec + 4, fc[l][0]);
        put32(rec + 8, fc[l][2]);
        for (int t = 0; t < 2; t++, tensor += 64) {
            const size_t n = t ? fc[l][0] : (size_t)fc[l][0] * fc[l][1];
            strcpy((char *)tensor, t ? "bias" : "weight");
            put32(tensor + 28, t ? 1 : 2);
            put32(tensor + 32, fc[l][0]);
            put32(tensor + 36, t ? 0 : fc[l][1]);
            put32(tensor + 48, (uint32_t)off);
            put32(tensor + 56, (uint32_t)(4 * n));
            const float scale = t ? 0.1f : 1.7f / sqrtf((float)fc[l][1]);
            for (size_t e = 0; e < n; e++, off += 4) {
                rng = rng * 1103515245u + 12345u;
                const float v = ((float)((rng >> 8) & 0xFFFF) / 32768.0f - 1.0f) * scale;
                memcpy(f + off, &v, 4);
            }
        }
    }
    put32(f + *size - 4, mn_crc32(f, *size - 4));
    return f;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    size_t size;
    uint8_t *wide = wide_model(&size);
    if (mn_model_load_file(MN_SOURCE_DIR "/tests/fuzz/corpus/model/tiny.mnw", &models[0]) != MN_OK ||
        mn_model_load_memory(wide, size, &models[1]) != MN_OK) {
        fprintf(stderr, "fuzz_match: %s\n", mn_last_error());
        abort();
    }
    free(wide);
    for (int m = 0; m < 2; m++)
        for (int t = 0; t < 2; t++) {
            mn_session_params sp = mn_session_params_default();
            sp.num_threads = t + 1;
            if (mn_session_create(models[m], &sp, &sessions[m][t]) != MN_OK)
                abort();
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

    /* The wide model costs 40 times the tiny one per pair: fewer. */
    const size_t per = raw ? 4 * D : D, avail = size / per, max_nq = mi ? WIDE_NQ : MAX_NQ,
                 max_nt = mi ? WIDE_NT : MAX_NT;
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
