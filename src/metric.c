/*
 * metric.c - the metric network, plain and two-stage.
 *
 * Layer 0 acts on [a, b]: W0 [a; b] + c0 = W0[:, :D] a + W0[:, D:] b + c0.
 * The two products depend on one descriptor each, so the two-stage path
 * computes them once per descriptor (mn_metric_run_project) and each pair
 * then costs an addition instead of a 2D x F product in layer 0.
 *
 * The mn_metric_* calls (matchnet.h) check their arguments and split the
 * pairs over the session's threads in whole blocks of MN_PAIR_BLOCK.
 */
#include "metric.h"

#include "common.h"
#include "kernels/gemm.h"
#include "layers.h"
#include "session.h"

#include <stdint.h>

#include <math.h>
#include <string.h>

void mn_metric_run_project(const mn_model *m, mn_scratch *s, int reference, const float *desc, mn_side side,
                           size_t begin, size_t end, float *proj)
{
    const mn_layer *l0 = &m->metric[0];
    const int D = (int)m->desc_dim, F = l0->out_c, ld = l0->in_c;
    const float *w = l0->weight + (side == MN_SIDE_B ? D : 0);
    const float *x = desc + begin * (size_t)D;
    float *y = proj + begin * (size_t)F;
    const int n = (int)(end - begin);
    if (n <= 0)
        return;
    if (!reference) {
        /* n follows the thread split: the own kernel (mn_gemm_stable). W0^T is
         * [2D][F]: side A's half is its first D rows, side B's the next D. */
        mn_gemm_stable(n, F, D, x, D, l0->weight_t + (side == MN_SIDE_B ? (size_t)D * F : 0), F, y, F, s->pack);
        return;
    }
    for (int r = 0; r < n; r++)
        for (int j = 0; j < F; j++) {
            float acc = 0.0f;
            for (int i = 0; i < D; i++)
                acc += w[(size_t)j * ld + i] * x[(size_t)r * D + i];
            y[(size_t)r * F + j] = acc;
        }
}

/* Layers 1.. on n rows of h (layer-0 outputs), then softmax class 1. */
static void mn_metric_tail(const mn_model *m, mn_scratch *s, int reference, float *h, int n,
                           float *prob)
{
    float *cur = h, *nxt = cur == s->h0 ? s->h1 : s->h0, *t;
    for (int k = 1; k < m->n_metric; k++) {
        const mn_layer *l = &m->metric[k];
        if (reference)
            mn_fc_ref(l, n, cur, l->in_c, nxt);
        else
            mn_fc_fast(l, n, cur, l->in_c, nxt, s->pack);
        t = cur, cur = nxt, nxt = t;
    }
    /* Descriptors far beyond anything the tower writes (values of 1e30 and
     * more) overflow the layers to inf - inf: NaN logits. Report those
     * pairs as no match rather than pass NaN on as a probability. */
    for (int r = 0; r < n; r++) {
        float z0 = cur[2 * r], z1 = cur[2 * r + 1];
        float p = 1.0f / (1.0f + expf(z0 - z1));
        prob[r] = p == p ? p : 0.0f;
    }
}

void mn_metric_run_projected(const mn_model *m, mn_scratch *s, int reference,
                             const float *proj_a, const float *proj_b, const mn_pair *pairs,
                             size_t begin, size_t end, float *prob)
{
    const mn_layer *l0 = &m->metric[0];
    const size_t F = (size_t)l0->out_c;
    for (size_t p = begin; p < end; p += MN_PAIR_BLOCK) {
        int n = (int)(end - p < MN_PAIR_BLOCK ? end - p : MN_PAIR_BLOCK);
        for (int r = 0; r < n; r++) {
            const float *pa = proj_a + pairs[p + r].a * F, *pb = proj_b + pairs[p + r].b * F;
            float *h = s->h0 + r * F;
            for (size_t j = 0; j < F; j++) {
                float v = pa[j] + pb[j] + l0->bias[j];
                h[j] = l0->relu && v < 0.0f ? 0.0f : v;
            }
        }
        mn_metric_tail(m, s, reference, s->h0, n, prob + p);
    }
}

void mn_metric_run_plain(const mn_model *m, mn_scratch *s, int reference, const float *desc_a,
                         const float *desc_b, const mn_pair *pairs, size_t begin, size_t end,
                         float *prob)
{
    const mn_layer *l0 = &m->metric[0];
    const size_t D = m->desc_dim;
    for (size_t p = begin; p < end; p += MN_PAIR_BLOCK) {
        int n = (int)(end - p < MN_PAIR_BLOCK ? end - p : MN_PAIR_BLOCK);
        for (int r = 0; r < n; r++) {
            memcpy(s->concat + 2 * D * r, desc_a + pairs[p + r].a * D, sizeof(float) * D);
            memcpy(s->concat + 2 * D * r + D, desc_b + pairs[p + r].b * D, sizeof(float) * D);
        }
        if (reference)
            mn_fc_ref(l0, n, s->concat, (int)(2 * D), s->h0);
        else
            mn_fc_fast(l0, n, s->concat, (int)(2 * D), s->h0, s->pack);
        mn_metric_tail(m, s, reference, s->h0, n, prob + p);
    }
}

/* ---- the public calls: work split over the session's threads ---- */

static mn_status mn_check_pairs(const char *fn, const mn_pair *pairs, size_t npairs, size_t na,
                                size_t nb)
{
    if (!pairs)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "pairs is NULL");
    for (size_t k = 0; k < npairs; k++)
        if (pairs[k].a >= na || pairs[k].b >= nb)
            return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "pair %zu = (%u, %u) is outside %zu x %zu", k,
                            pairs[k].a, pairs[k].b, na, nb);
    return MN_OK;
}

/* One call's work for the session's threads. */
typedef struct mn_metric_job {
    const mn_model *m;
    int reference, plain;
    const float *a, *b;
    mn_side side;
    const mn_pair *pairs;
    float *out;
} mn_metric_job;

static void mn_project_task(void *ctx, mn_scratch *scratch, int thread, size_t begin, size_t end)
{
    const mn_metric_job *j = ctx;
    (void)thread;
    mn_metric_run_project(j->m, scratch, j->reference, j->a, j->side, begin, end, j->out);
}

static void mn_score_task(void *ctx, mn_scratch *scratch, int thread, size_t begin, size_t end)
{
    const mn_metric_job *j = ctx;
    (void)thread;
    if (j->plain)
        mn_metric_run_plain(j->m, scratch, j->reference, j->a, j->b, j->pairs, begin, end, j->out);
    else
        mn_metric_run_projected(j->m, scratch, j->reference, j->a, j->b, j->pairs, begin, end, j->out);
}

static void mn_project(mn_session *s, const float *desc, size_t n, mn_side side, float *proj)
{
    mn_metric_job job = {mn_session_model(s), mn_session_reference(s), 0, desc, NULL, side, NULL, proj};
    mn_session_parallel(s, mn_project_task, &job, n, 16);
}

static void mn_score(mn_session *s, int plain, const float *a, const float *b, const mn_pair *pairs, size_t npairs,
                     float *prob)
{
    mn_metric_job job = {mn_session_model(s), mn_session_reference(s), plain, a, b, MN_SIDE_A, pairs, prob};
    mn_session_parallel(s, mn_score_task, &job, npairs, MN_PAIR_BLOCK);
}

mn_status mn_metric_project(mn_session *s, const float *desc, size_t n, mn_side side, float *proj)
{
    static const char fn[] = "mn_metric_project";
    if (!s)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    if (side != MN_SIDE_A && side != MN_SIDE_B)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "side = %d, expected MN_SIDE_A or MN_SIDE_B", (int)side);
    if (n == 0)
        return MN_OK;
    if (!desc || !proj)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", desc ? "projections" : "descriptors");
    mn_project(s, desc, n, side, proj);
    return MN_OK;
}

mn_status mn_metric_score_projected(mn_session *s, const float *proj_a, size_t na,
                                    const float *proj_b, size_t nb, const mn_pair *pairs,
                                    size_t npairs, float *prob)
{
    static const char fn[] = "mn_metric_score_projected";
    if (!s)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    if (npairs == 0)
        return MN_OK;
    if (!proj_a || !proj_b || !prob)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !prob ? "prob" : "a projection");
    mn_status st = mn_check_pairs(fn, pairs, npairs, na, nb);
    if (st != MN_OK)
        return st;
    mn_score(s, 0, proj_a, proj_b, pairs, npairs, prob);
    return MN_OK;
}

static mn_status mn_check_sets(const char *fn, mn_session *s, const float *da, size_t na,
                               const float *db, size_t nb, float *prob)
{
    if (!s)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    if (!da || !db || !prob)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !prob ? "prob" : "a descriptor set");
    if (na == 0 || nb == 0)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "descriptor set %s is empty", na == 0 ? "A" : "B");
    return MN_OK;
}

mn_status mn_metric_score_pairs(mn_session *s, const float *da, size_t na, const float *db, size_t nb,
                                const mn_pair *pairs, size_t npairs, float *prob)
{
    static const char fn[] = "mn_metric_score_pairs";
    if (npairs == 0)
        return s ? MN_OK : mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    mn_status st = mn_check_sets(fn, s, da, na, db, nb, prob);
    if (st == MN_OK)
        st = mn_check_pairs(fn, pairs, npairs, na, nb);
    float *pa = NULL, *pb = NULL;
    if (st == MN_OK)
        st = mn_session_proj(fn, s, na, nb, &pa, &pb);
    if (st != MN_OK)
        return st;
    mn_project(s, da, na, MN_SIDE_A, pa);
    mn_project(s, db, nb, MN_SIDE_B, pb);
    mn_score(s, 0, pa, pb, pairs, npairs, prob);
    return MN_OK;
}

mn_status mn_metric_score_pairs_plain(mn_session *s, const float *da, size_t na, const float *db,
                                      size_t nb, const mn_pair *pairs, size_t npairs, float *prob)
{
    static const char fn[] = "mn_metric_score_pairs_plain";
    if (npairs == 0)
        return s ? MN_OK : mn_error(MN_ERR_INVALID_ARGUMENT, fn, "session is NULL");
    mn_status st = mn_check_sets(fn, s, da, na, db, nb, prob);
    if (st == MN_OK)
        st = mn_check_pairs(fn, pairs, npairs, na, nb);
    if (st != MN_OK)
        return st;
    mn_score(s, 1, da, db, pairs, npairs, prob);
    return MN_OK;
}

mn_status mn_metric_score_all(mn_session *s, const float *da, size_t na, const float *db, size_t nb,
                              float *prob)
{
    static const char fn[] = "mn_metric_score_all";
    mn_status st = mn_check_sets(fn, s, da, na, db, nb, prob);
    if (st != MN_OK)
        return st;
    if (na > UINT32_MAX || nb > UINT32_MAX || na > SIZE_MAX / sizeof(mn_pair) / nb)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%zu x %zu pairs is too many", na, nb);
    float *pa = NULL, *pb = NULL;
    if ((st = mn_session_proj(fn, s, na, nb, &pa, &pb)) != MN_OK)
        return st;
    mn_pair *pairs = mn_malloc(na * nb * sizeof *pairs);
    if (!pairs)
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu pairs", na * nb);
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++) {
            pairs[i * nb + j].a = (uint32_t)i;
            pairs[i * nb + j].b = (uint32_t)j;
        }
    mn_project(s, da, na, MN_SIDE_A, pa);
    mn_project(s, db, nb, MN_SIDE_B, pb);
    mn_score(s, 0, pa, pb, pairs, na * nb, prob);
    mn_free(pairs);
    return MN_OK;
}
