/*
 * match.c - candidate search and the matcher.
 *
 * Candidate search: squared L2 distances |q|^2 + |t|^2 - 2 q.t for a block
 * of queries against all train rows come from one matrix product (the
 * train set is transposed once so the convolution kernel can run it); each
 * row is scanned once to keep its k smallest. With mutual checking the same
 * scan also keeps, per train row, its k nearest queries (per thread, merged
 * afterwards), so both directions cost one product.
 *
 * Every top-k list is ordered by (distance, index): a new entry goes after
 * equal ones and a tie with the last kept entry loses, which is the order a
 * single scan in increasing index produces. Merging per-thread lists in
 * thread order keeps that order, so results do not depend on the number
 * of threads.
 *
 * Selection: every scored pair (i, j) - i's candidates and, with mutual,
 * j's - updates the best and second-best partner of both i and j. A match
 * (i, j) is kept when j is i's best, passes the probability and ratio
 * tests, and (mutual) i is j's best.
 */
#include "common.h"
#include "kernels/gemm.h"
#include "metric.h"
#include "session.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MN_KNN_BLOCK 32 /* queries per distance block */
#define MN_KNN_SPAN 16  /* train entries per test of a row's distances against its lists */
#define MN_KNN_COLS 512 /* train entries per pass over the queries (mn_knn_task) */

/* ---- candidate search ---- */

typedef struct mn_knn {
    const float *query, *train_t; /* train_t: [D][nt] */
    const float *train_p;         /* train_t packed once for the product kernel, or NULL: */
    size_t pass_floats;           /* pass_floats apart, one packing per MN_KNN_COLS columns */
    const float *qnorm, *tnorm;   /* squared norms */
    const uint8_t *mask;
    size_t nq, nt;
    int dim, k, kb;               /* kb: per-train list length, 0 = none */
    uint32_t *fidx;               /* [nq][k] */
    float *fdist;                 /* [nq][k], squared */
    uint32_t *bidx;               /* [threads][nt][kb] */
    float *bdist;
    float *bworst;                /* [threads][nt]: the last of each per-train list */
    float *block;                 /* [threads][MN_KNN_BLOCK][MN_KNN_COLS] */
} mn_knn;

static void mn_topk_insert(uint32_t *idx, float *dist, int k, uint32_t j, float v)
{
    if (!(v < dist[k - 1]))
        return;
    int p = k - 1;
    while (p > 0 && v < dist[p - 1]) {
        dist[p] = dist[p - 1];
        idx[p] = idx[p - 1];
        p--;
    }
    dist[p] = v;
    idx[p] = j;
}

static void mn_topk_clear(uint32_t *idx, float *dist, size_t n)
{
    for (size_t r = 0; r < n; r++) {
        idx[r] = UINT32_MAX;
        dist[r] = INFINITY;
    }
}

/* Squared L2 distance of a row and a column of train_t, summed directly:
 * the fallback for descriptors whose squared norms overflow a float, where
 * |q|^2 + |t|^2 - 2 q.t is NaN or infinite whatever the distance (the NaN
 * used to become 0: descriptors 1e30 apart reported as identical). */
static float mn_sq_dist_strided(const float *q, const float *t, size_t stride, int dim)
{
    float acc = 0.0f;
    for (int d = 0; d < dim; d++) {
        float e = q[d] - t[(size_t)d * stride];
        acc += e * e;
    }
    return acc;
}

/* Distances of query q to train entries [j0, j1) (dot[t - j0] the products) into its list and, with
 * bidx, the per-train lists of this thread (bworst: their last entries). */
static void mn_knn_scan(const mn_knn *c, size_t q, const float *dot, size_t j0, size_t j1, uint32_t *bidx,
                        float *bdist, float *bworst)
{
    const size_t nt = c->nt;
    const uint8_t *mask = c->mask ? c->mask + q * nt : NULL;
    uint32_t *fi = c->fidx + q * (size_t)c->k;
    float *fd = c->fdist + q * (size_t)c->k;
    const float qn = c->qnorm[q];
    for (size_t t0 = j0; t0 < j1; t0 += MN_KNN_SPAN) {
        const size_t t1 = j1 - t0 < MN_KNN_SPAN ? j1 : t0 + MN_KNN_SPAN;
        /* Whether any distance of the span can enter a list (NaN counts: it
         * takes the fallback), without branches so that it vectorises; once
         * the lists fill, few spans can. */
        const float thr = fd[c->k - 1];
        int any = 0;
        if (bworst)
            for (size_t t = t0; t < t1; t++) {
                const float v = qn + c->tnorm[t] - 2.0f * dot[t - j0];
                any |= !(v >= thr) | !(v >= bworst[t]);
            }
        else
            for (size_t t = t0; t < t1; t++)
                any |= !(qn + c->tnorm[t] - 2.0f * dot[t - j0] >= thr);
        if (!any)
            continue;
        for (size_t t = t0; t < t1; t++) {
            if (mask && !mask[t])
                continue;
            float v = qn + c->tnorm[t] - 2.0f * dot[t - j0];
            if (!(v < INFINITY)) /* NaN or inf: a norm or the product overflowed (values over ~1e19) */
                v = mn_sq_dist_strided(c->query + q * (size_t)c->dim, c->train_t + t, nt, c->dim);
            v = v > 0.0f ? v : 0.0f;
            mn_topk_insert(fi, fd, c->k, (uint32_t)t, v);
            if (bidx) {
                float *bd = bdist + t * (size_t)c->kb;
                mn_topk_insert(bidx + t * (size_t)c->kb, bd, c->kb, (uint32_t)q, v);
                bworst[t] = bd[c->kb - 1];
            }
        }
    }
}

static void mn_knn_task(void *arg, mn_scratch *scratch, int thread, size_t begin, size_t end)
{
    mn_knn *c = arg;
    const size_t nt = c->nt;
    float *d = c->block + (size_t)thread * MN_KNN_BLOCK * MN_KNN_COLS;
    uint32_t *bidx = c->kb ? c->bidx + (size_t)thread * nt * (size_t)c->kb : NULL;
    float *bdist = c->kb ? c->bdist + (size_t)thread * nt * (size_t)c->kb : NULL;
    float *bworst = c->kb ? c->bworst + (size_t)thread * nt : NULL;
    /* MN_KNN_COLS train entries at a time against every query of the
     * range: their packed columns stay in L2 for all the range's blocks,
     * where all of them (2 MB for 2000 x 256) went through L3 for each
     * block. Each row still meets the train entries in order, and each
     * train entry the queries, so the lists are the same. */
    for (size_t j0 = 0; j0 < nt; j0 += MN_KNN_COLS) {
        const size_t j1 = nt - j0 < MN_KNN_COLS ? nt : j0 + MN_KNN_COLS;
        const int nc = (int)(j1 - j0);
        for (size_t q0 = begin; q0 < end; q0 += MN_KNN_BLOCK) {
            int m = (int)(end - q0 < MN_KNN_BLOCK ? end - q0 : MN_KNN_BLOCK);
            if (c->train_p)
                mn_gemm_stable_fp32_packed_b(m, nc, c->dim, c->query + q0 * (size_t)c->dim, c->dim,
                                             c->train_p + j0 / MN_KNN_COLS * c->pass_floats, d, nc, scratch->pack);
            else
                mn_gemm_stable(m, nc, c->dim, c->query + q0 * (size_t)c->dim, c->dim, c->train_t + j0, (int)nt, d,
                               nc, scratch->pack);
            for (int r = 0; r < m; r++)
                mn_knn_scan(c, q0 + (size_t)r, d + (size_t)r * nc, j0, j1, bidx, bdist, bworst);
        }
    }
}

static void mn_sq_norms(const float *x, size_t n, int dim, float *out)
{
    for (size_t i = 0; i < n; i++) {
        float acc = 0.0f;
        for (int d = 0; d < dim; d++)
            acc += x[i * (size_t)dim + d] * x[i * (size_t)dim + d];
        out[i] = acc;
    }
}

/* Forward lists (and per-train lists when kb > 0) into fidx/fdist and
 * bidx/bdist (merged into thread 0's part). Distances stay squared. */
static mn_status mn_knn_run(const char *fn, mn_session *s, const float *query, size_t nq, const float *train,
                            size_t nt, const uint8_t *mask, int k, int kb, uint32_t *fidx, float *fdist,
                            uint32_t **bidx_out, float **bdist_out)
{
    const mn_model *m = mn_session_model(s);
    const int dim = (int)m->desc_dim;
    const int threads = mn_session_threads(s);
    mn_knn c;
    memset(&c, 0, sizeof c);
    c.query = query;
    c.mask = mask;
    c.nq = nq;
    c.nt = nt;
    c.dim = dim;
    c.k = k;
    c.kb = kb;
    c.fidx = fidx;
    c.fdist = fdist;
    size_t tb = kb ? (size_t)threads * nt * (size_t)kb : 0;
    float *train_t = mn_malloc(sizeof(float) * nt * (size_t)dim);
    /* The train set packed once for all blocks of queries, not per block
     * (as many packings as blocks: a fifth of the time at 2000 x 2000). */
    const size_t pass = mn_gemm_stable_fp32_packed_b_floats(dim, MN_KNN_COLS),
                 packed = pass ? (nt - 1) / MN_KNN_COLS * pass +
                                     mn_gemm_stable_fp32_packed_b_floats(dim, (int)((nt - 1) % MN_KNN_COLS + 1))
                               : 0;
    float *train_p = packed ? mn_malloc(sizeof(float) * packed) : NULL;
    float *norms = mn_malloc(sizeof(float) * (nq + nt));
    float *block = mn_malloc(sizeof(float) * (size_t)threads * MN_KNN_BLOCK * MN_KNN_COLS);
    uint32_t *bidx = tb ? mn_malloc(sizeof(uint32_t) * tb) : NULL;
    float *bdist = tb ? mn_malloc(sizeof(float) * tb) : NULL;
    float *bworst = tb ? mn_malloc(sizeof(float) * (size_t)threads * nt) : NULL;
    if (!train_t || (packed && !train_p) || !norms || !block || (tb && (!bidx || !bdist || !bworst))) {
        mn_free(bworst);
        mn_free(train_t);
        mn_free(train_p);
        mn_free(norms);
        mn_free(block);
        mn_free(bidx);
        mn_free(bdist);
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for the distances of %zu x %zu descriptors",
                        nq, nt);
    }
    for (size_t t = 0; t < nt; t++)
        for (int d = 0; d < dim; d++)
            train_t[(size_t)d * nt + t] = train[t * (size_t)dim + d];
    mn_sq_norms(query, nq, dim, norms);
    mn_sq_norms(train, nt, dim, norms + nq);
    for (size_t j0 = 0; train_p && j0 < nt; j0 += MN_KNN_COLS)
        mn_gemm_stable_fp32_pack_b(dim, (int)(nt - j0 < MN_KNN_COLS ? nt - j0 : MN_KNN_COLS), train_t + j0, (int)nt,
                                   train_p + j0 / MN_KNN_COLS * pass);
    c.pass_floats = pass;
    c.train_t = train_t;
    c.train_p = train_p;
    c.qnorm = norms;
    c.tnorm = norms + nq;
    c.block = block;
    c.bidx = bidx;
    c.bdist = bdist;
    mn_topk_clear(fidx, fdist, nq * (size_t)k);
    if (tb) {
        mn_topk_clear(bidx, bdist, tb);
        for (size_t i = 0; i < (size_t)threads * nt; i++)
            bworst[i] = INFINITY;
    }
    c.bworst = bworst;
    mn_session_parallel(s, mn_knn_task, &c, nq, MN_KNN_BLOCK);
    /* Merge the per-thread lists into thread 0's, in thread order. */
    for (int t = 1; t < threads && tb; t++)
        for (size_t j = 0; j < nt; j++) {
            const uint32_t *si = bidx + ((size_t)t * nt + j) * (size_t)kb;
            const float *sd = bdist + ((size_t)t * nt + j) * (size_t)kb;
            for (int r = 0; r < kb && si[r] != UINT32_MAX; r++)
                mn_topk_insert(bidx + j * (size_t)kb, bdist + j * (size_t)kb, kb, si[r], sd[r]);
        }
    mn_free(train_t);
    mn_free(train_p);
    mn_free(norms);
    mn_free(block);
    mn_free(bworst);
    if (bidx_out) {
        *bidx_out = bidx;
        *bdist_out = bdist;
    } else {
        mn_free(bidx);
        mn_free(bdist);
    }
    return MN_OK;
}

static mn_status mn_check_sets(const char *fn, mn_session *s, const float *q, size_t nq, const float *t,
                               size_t nt)
{
    if (!s)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    if ((nq && !q) || (nt && !t))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s descriptors are NULL", nq && !q ? "query" : "train");
    if (nq > INT32_MAX || nt > INT32_MAX || (nt && nq > SIZE_MAX / sizeof(float) / nt))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%zu x %zu descriptors is too many", nq, nt);
    for (size_t i = 0; i < nq * mn_session_model(s)->desc_dim; i++)
        if (!isfinite(q[i]))
            return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "query descriptor %zu is not finite",
                            i / mn_session_model(s)->desc_dim);
    for (size_t i = 0; i < nt * mn_session_model(s)->desc_dim; i++)
        if (!isfinite(t[i]))
            return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "train descriptor %zu is not finite",
                            i / mn_session_model(s)->desc_dim);
    return MN_OK;
}

mn_status mn_match_knn(mn_session *s, const float *query, size_t nq, const float *train, size_t nt,
                       const uint8_t *mask, int k, uint32_t *index, float *distance)
{
    static const char fn[] = "mn_match_knn";
    mn_status st = mn_check_sets(fn, s, query, nq, train, nt);
    if (st != MN_OK)
        return st;
    if (k < 1 || k > 256)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "k = %d, expected 1..256", k);
    if (nq == 0)
        return MN_OK;
    if (!index)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "index is NULL");
    float *dist = distance ? distance : mn_malloc(sizeof(float) * nq * (size_t)k);
    if (!dist)
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu distances", nq * (size_t)k);
    if (nt == 0)
        mn_topk_clear(index, dist, nq * (size_t)k);
    else if ((st = mn_knn_run(fn, s, query, nq, train, nt, mask, k, 0, index, dist, NULL, NULL)) == MN_OK)
        for (size_t r = 0; r < nq * (size_t)k; r++)
            dist[r] = sqrtf(dist[r]);
    if (dist != distance)
        mn_free(dist);
    return st;
}

/* ---- matcher ---- */

mn_match_params mn_match_params_preset(mn_match_method method)
{
    mn_match_params p;
    memset(&p, 0, sizeof p);
    p.k = 5;
    p.all_pairs = 0;
    p.max_all_pairs = 4000000;
    p.mask = NULL; /* memset's zero bytes need not be a null pointer */
    if (method == MN_MATCH_METRIC) {
        p.method = MN_MATCH_METRIC;
        p.min_probability = 0.5f;
        p.ratio = 1.0f;
        p.mutual = 1;
    } else {
        p.method = MN_MATCH_L2;
        p.min_probability = 0.0f;
        p.ratio = 0.8f;
        p.mutual = 0;
    }
    return p;
}

mn_match_params mn_match_params_default(void)
{
    return mn_match_params_preset(MN_MATCH_L2);
}

/* Best and second-best partner of one descriptor; larger score is better,
 * ties go to the smaller index. */
typedef struct mn_best {
    uint32_t j1, j2;
    float s1, s2;
} mn_best;

static int mn_better(float s, uint32_t j, float s0, uint32_t j0)
{
    return s > s0 || (s == s0 && j < j0);
}

static void mn_best_update(mn_best *b, uint32_t j, float score)
{
    if (j == b->j1)
        return;
    if (mn_better(score, j, b->s1, b->j1)) {
        b->j2 = b->j1;
        b->s2 = b->s1;
        b->j1 = j;
        b->s1 = score;
    } else if (j != b->j2 && mn_better(score, j, b->s2, b->j2)) {
        b->j2 = j;
        b->s2 = score;
    }
}

static float mn_l2(const float *a, const float *b, size_t dim)
{
    float acc = 0.0f;
    for (size_t d = 0; d < dim; d++)
        acc += (a[d] - b[d]) * (a[d] - b[d]);
    return sqrtf(acc);
}

/* Pairs per all_pairs block: the most all_pairs holds at once (or nt pairs,
 * one query's, if more), so max_all_pairs bounds time, not memory. */
#define MN_ALL_PAIRS_BLOCK 65536

/* The allowed pairs of queries q0 .. q1 - 1 with every train row, query-major. */
static size_t mn_all_pairs(size_t q0, size_t q1, size_t nt, const uint8_t *mask, mn_pair *pairs)
{
    size_t np = 0;
    for (size_t i = q0; i < q1; i++)
        for (size_t j = 0; j < nt; j++)
            if (!mask || mask[i * nt + j]) {
                pairs[np].a = (uint32_t)i;
                pairs[np++].b = (uint32_t)j;
            }
    return np;
}

mn_status mn_match(mn_session *s, const float *query, size_t nq, const float *train, size_t nt,
                   const mn_match_params *params, mn_dmatch *matches, size_t capacity, size_t *count)
{
    static const char fn[] = "mn_match";
    if (count)
        *count = 0;
    if (!count)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "count is NULL");
    mn_status st = mn_check_sets(fn, s, query, nq, train, nt);
    if (st != MN_OK)
        return st;
    mn_match_params p = params ? *params : mn_match_params_default();
    if (p.method != MN_MATCH_METRIC && p.method != MN_MATCH_L2)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "method = %d, expected MN_MATCH_METRIC or MN_MATCH_L2",
                        (int)p.method);
    if (!p.all_pairs && (p.k < 1 || p.k > 256))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "k = %d, expected 1..256", p.k);
    if (!(p.min_probability >= 0.0f && p.min_probability <= 1.0f) || !(p.ratio > 0.0f))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "min_probability = %g (expected 0..1), ratio = %g (expected > 0)",
                        (double)p.min_probability, (double)p.ratio);
    if (p.all_pairs && p.method != MN_MATCH_METRIC)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "all_pairs needs method MN_MATCH_METRIC");
    if (p.all_pairs && nt && nq > p.max_all_pairs / nt)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "all_pairs: %zu x %zu pairs exceeds max_all_pairs = %zu",
                        nq, nt, p.max_all_pairs);
    if (nq == 0 || nt == 0)
        return MN_OK;
    if (!matches)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "matches is NULL");

    const mn_model *m = mn_session_model(s);
    const size_t dim = m->desc_dim, F = m->proj_dim;
    const int metric = p.method == MN_MATCH_METRIC;
    const int k = p.all_pairs ? 0 : (p.k < (int)nt ? p.k : (int)nt);
    const int kb = p.all_pairs || !p.mutual ? 0 : (p.k < (int)nq ? p.k : (int)nq);
    /* all_pairs scores blocks of qb queries; the candidate lists are one
     * block of all queries (and room for the L2 path's nout <= nq pairs). */
    const size_t qb = !p.all_pairs ? nq : nt < MN_ALL_PAIRS_BLOCK ? MN_ALL_PAIRS_BLOCK / nt : 1;
    size_t npairs = p.all_pairs ? (qb < nq ? qb : nq) * nt : nq * (size_t)k + nt * (size_t)kb;

    uint32_t *fidx = NULL, *bidx = NULL, *tmap = NULL;
    float *fdist = NULL, *bdist = NULL, *proj = NULL, *sel = NULL;
    mn_pair *pairs = mn_malloc(sizeof(mn_pair) * npairs);
    float *score = mn_malloc(sizeof(float) * npairs);
    mn_best *best = mn_malloc(sizeof(mn_best) * (nq + nt));
    mn_dmatch *out = mn_malloc(sizeof(mn_dmatch) * nq);
    if (!pairs || !score || !best || !out) {
        st = mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu candidate pairs", npairs);
        goto done;
    }
    if (k) {
        fidx = mn_malloc(sizeof(uint32_t) * nq * (size_t)k);
        fdist = mn_malloc(sizeof(float) * nq * (size_t)k);
        if (!fidx || !fdist) {
            st = mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu candidates", nq * (size_t)k);
            goto done;
        }
        /* The scan skips masked pairs for both lists, so each train row's
         * kb nearest queries are its allowed ones with no transposed mask. */
        st = mn_knn_run(fn, s, query, nq, train, nt, p.mask, k, kb, fidx, fdist, kb ? &bidx : NULL,
                        kb ? &bdist : NULL);
        if (st != MN_OK)
            goto done;
    }

    /* Candidate pairs, query always on side A, and their scores. */
    size_t np = 0;
    for (size_t i = 0; i < nq * (size_t)k; i++)
        if (fidx[i] != UINT32_MAX) {
            pairs[np].a = (uint32_t)(i / (size_t)k);
            pairs[np].b = fidx[i];
            score[np++] = -sqrtf(fdist[i]);
        }
    for (size_t i = 0; i < nt * (size_t)kb; i++)
        if (bidx[i] != UINT32_MAX) {
            pairs[np].a = bidx[i];
            pairs[np].b = (uint32_t)(i / (size_t)kb);
            score[np++] = -sqrtf(bdist[i]);
        }
    if (metric) {
        proj = mn_malloc(sizeof(float) * (nq + nt) * F);
        if (!proj) {
            st = mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu projections", nq + nt);
            goto done;
        }
        if ((st = mn_metric_project(s, query, nq, MN_SIDE_A, proj)) != MN_OK ||
            (st = mn_metric_project(s, train, nt, MN_SIDE_B, proj + nq * F)) != MN_OK)
            goto done;
    }

    for (size_t r = 0; r < nq + nt; r++) {
        best[r].j1 = best[r].j2 = UINT32_MAX;
        best[r].s1 = best[r].s2 = -INFINITY;
    }
    /* Pairs reach the best lists in the same order (query-major for
     * all_pairs) whatever the blocking, so blocks change no result. */
    for (size_t q0 = 0; q0 < nq; q0 += qb) {
        if (p.all_pairs)
            np = mn_all_pairs(q0, nq - q0 < qb ? nq : q0 + qb, nt, p.mask, pairs);
        if (metric && (st = mn_metric_score_projected(s, proj, nq, proj + nq * F, nt, pairs, np, score)) != MN_OK)
            goto done;
        for (size_t r = 0; r < np; r++) {
            mn_best_update(&best[pairs[r].a], pairs[r].b, score[r]);
            mn_best_update(&best[nq + pairs[r].b], pairs[r].a, score[r]);
        }
    }
    size_t nout = 0;
    for (size_t i = 0; i < nq; i++) {
        const mn_best *b = &best[i];
        if (b->j1 == UINT32_MAX)
            continue;
        if (metric && b->s1 < p.min_probability)
            continue;
        if (p.mutual && best[nq + b->j1].j1 != (uint32_t)i)
            continue;
        if (p.ratio < 1.0f && b->j2 != UINT32_MAX) {
            /* distances: 1 - p (metric) or L2 */
            float d1 = metric ? 1.0f - b->s1 : -b->s1, d2 = metric ? 1.0f - b->s2 : -b->s2;
            if (!(d1 < p.ratio * d2))
                continue;
        }
        out[nout].query = (uint32_t)i;
        out[nout].train = b->j1;
        out[nout].probability = metric ? b->s1 : 0.0f;
        out[nout].distance = mn_l2(query + i * dim, train + (size_t)b->j1 * dim, dim);
        nout++;
    }
    if (!metric && nout) {
        /* The metric network's probability of each kept L2 match, from the
         * projections of the descriptors those matches use only (each
         * projection is the same whatever else is projected with it):
         * queries r, and the distinct trains in order of first use. */
        size_t ntu = 0;
        sel = mn_malloc(sizeof(float) * 2 * nout * dim);
        tmap = mn_malloc(sizeof(uint32_t) * nt);
        proj = mn_malloc(sizeof(float) * 2 * nout * F);
        if (!sel || !tmap || !proj) {
            st = mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for the projections of %zu matches", nout);
            goto done;
        }
        for (size_t j = 0; j < nt; j++)
            tmap[j] = UINT32_MAX;
        for (size_t r = 0; r < nout; r++) {
            const uint32_t j = out[r].train;
            if (tmap[j] == UINT32_MAX) {
                tmap[j] = (uint32_t)ntu;
                memcpy(sel + (nout + ntu++) * dim, train + (size_t)j * dim, sizeof(float) * dim);
            }
            memcpy(sel + r * dim, query + (size_t)out[r].query * dim, sizeof(float) * dim);
            pairs[r].a = (uint32_t)r;
            pairs[r].b = tmap[j];
        }
        if ((st = mn_metric_project(s, sel, nout, MN_SIDE_A, proj)) != MN_OK ||
            (st = mn_metric_project(s, sel + nout * dim, ntu, MN_SIDE_B, proj + nout * F)) != MN_OK ||
            (st = mn_metric_score_projected(s, proj, nout, proj + nout * F, ntu, pairs, nout, score)) != MN_OK)
            goto done;
        size_t kept = 0;
        for (size_t r = 0; r < nout; r++)
            if (score[r] >= p.min_probability) {
                out[kept] = out[r];
                out[kept++].probability = score[r];
            }
        nout = kept;
    }
    if (nout > capacity) {
        *count = nout;
        st = mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%zu matches do not fit capacity %zu (nq = %zu always does)",
                      nout, capacity, nq);
        goto done;
    }
    memcpy(matches, out, sizeof(mn_dmatch) * nout);
    *count = nout;
done:
    mn_free(fidx);
    mn_free(fdist);
    mn_free(bidx);
    mn_free(bdist);
    mn_free(proj);
    mn_free(sel);
    mn_free(tmap);
    mn_free(pairs);
    mn_free(score);
    mn_free(best);
    mn_free(out);
    return st;
}
