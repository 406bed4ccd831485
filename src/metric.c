/*
 * metric.c - the metric network, plain and two-stage.
 *
 * Layer 0 acts on [a, b]: W0 [a; b] + c0 = W0[:, :D] a + W0[:, D:] b + c0.
 * The two products depend on one descriptor each, so the two-stage path
 * computes them once per descriptor (mn_metric_run_project) and each pair
 * then costs an addition instead of a 2D x F product in layer 0.
 */
#include "internal.h"

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
