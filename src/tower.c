/*
 * tower.c - the feature tower: normalisation, conv/pool stack, bottleneck,
 * over a range of patches: blocks of MN_NB on the blocked path (the layer
 * kernels of the instruction set cpu.c chose, kernels/blocked.h), smaller
 * blocks on the [C][N][H][W] path (layers.c), or the reference path.
 */
#include "tower.h"

#include "common.h"
#include "kernels/blocked.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "layers.h"
#include "winograd.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Floats per image the blocked path needs for a conv layer's framed input
 * and Winograd buffers. */
static void mn_blocked_needs(const mn_model *m, size_t *frame, size_t *wino_v, size_t *wino_m)
{
    *frame = *wino_v = *wino_m = 0;
    for (int k = 0; k < m->n_layers; k++) {
        const mn_layer *l = &m->layers[k];
        if (l->type != MN_LAYER_CONV)
            continue;
        int hp, wp;
        mn_blocked_frame(l, &hp, &wp);
        if (l->wino_u) {
            size_t a = (size_t)MN_WINO_M + l->kernel - 1;
            /* Per image: columns rounded up to whole packed strips (32). */
            const size_t cols = ((size_t)MN_WINO_TILES * MN_NB + 31) / 32 * 32;
            /* Each plane of V and row of M one line (MN_NB floats) longer (blocked.inc). */
            size_t v = (a * a * (l->in_c * cols + MN_NB) + MN_NB - 1) / MN_NB,
                   mm = (a * a * MN_WINO_TILES + 1) * l->out_c;
            *wino_v = v > *wino_v ? v : *wino_v;
            *wino_m = mm > *wino_m ? mm : *wino_m;
        }
        size_t f = (size_t)l->in_c * hp * wp;
        *frame = f > *frame ? f : *frame;
        if (k + 1 < m->n_layers && mn_blocked_conv_pool_fits(l, &m->layers[k + 1])) {
            /* conv_pool's ring, in the wino_v scratch (MN_NB * wino_v floats). */
            const size_t r = mn_blocked_ring_floats(l, &m->layers[k + 1]) / MN_NB;
            *wino_v = r > *wino_v ? r : *wino_v;
        } else if (l->wino_x) {
            const size_t r = mn_blocked_rows7_floats(l, NULL) / MN_NB;
            *wino_v = r > *wino_v ? r : *wino_v;
        }
    }
}

mn_status mn_scratch_init(const mn_model *m, mn_scratch *s)
{
    memset(s, 0, sizeof *s);
    size_t frame, wino_v, wino_m;
    mn_blocked_needs(m, &frame, &wino_v, &wino_m);
    const size_t per_act = MN_NB > MN_CHUNK ? MN_NB : MN_CHUNK;
    /* Activations, or a conv layer's input frame, which its producer may
     * write straight into (mn_tower_blocked). */
    const size_t act = per_act * m->max_act > MN_NB * frame ? per_act * m->max_act : MN_NB * frame;
    s->act0 = mn_malloc(sizeof(float) * act);
    s->act1 = mn_malloc(sizeof(float) * act);
    s->frame = mn_malloc(sizeof(float) * (MN_NB * frame + 1));
    s->wino_v = mn_malloc(sizeof(float) * (MN_NB * wino_v + 1));
    s->wino_m = mn_malloc(sizeof(float) * (MN_NB * wino_m + 1));
    s->col = mn_malloc(sizeof(float) * (MN_CHUNK * m->max_col + 1));
    s->h0 = mn_malloc(sizeof(float) * MN_PAIR_BLOCK * m->max_metric);
    s->h1 = mn_malloc(sizeof(float) * MN_PAIR_BLOCK * m->max_metric);
    s->concat = mn_malloc(sizeof(float) * MN_PAIR_BLOCK * 2 * m->desc_dim);
    s->pack = mn_malloc(sizeof(float) * mn_gemm_pack_floats());
    if (!s->act0 || !s->act1 || !s->col || !s->h0 || !s->h1 || !s->concat || !s->pack || !s->frame || !s->wino_v ||
        !s->wino_m) {
        mn_scratch_release(s);
        return MN_ERR_OUT_OF_MEMORY;
    }
    return MN_OK;
}

void mn_scratch_release(mn_scratch *s)
{
    mn_free(s->act0);
    mn_free(s->act1);
    mn_free(s->col);
    mn_free(s->h0);
    mn_free(s->h1);
    mn_free(s->concat);
    mn_free(s->pack);
    mn_free(s->frame);
    mn_free(s->wino_v);
    mn_free(s->wino_m);
    memset(s, 0, sizeof *s);
}

static void mn_normalize(const mn_model *m, const uint8_t *px8, const float *pxf, size_t count,
                         float *dst)
{
    const float mean = m->norm_mean, inv = 1.0f / m->norm_div;
    if (px8) {
        for (size_t i = 0; i < count; i++)
            dst[i] = ((float)px8[i] - mean) * inv;
    } else {
        for (size_t i = 0; i < count; i++)
            dst[i] = (pxf[i] - mean) * inv;
    }
}

/* Reference path: one image at a time, [C][H][W], plain loops. */
static void mn_tower_ref(const mn_model *m, mn_scratch *s, const uint8_t *px8, const float *pxf,
                         size_t begin, size_t end, float *desc)
{
    const size_t pp = (size_t)m->patch * m->patch;
    for (size_t i = begin; i < end; i++) {
        float *cur = s->act0, *nxt = s->act1, *t;
        mn_normalize(m, px8 ? px8 + i * pp : NULL, pxf ? pxf + i * pp : NULL, pp, cur);
        for (int k = 0; k < m->n_layers; k++) {
            const mn_layer *l = &m->layers[k];
            switch (l->type) {
            case MN_LAYER_CONV: mn_conv_ref(l, cur, nxt); break;
            case MN_LAYER_MAXPOOL: mn_maxpool_ref(l, cur, nxt); break;
            case MN_LAYER_FC: mn_fc_ref(l, 1, cur, l->in_c, nxt); break;
            case MN_LAYER_L2NORM:
                mn_l2norm_rows(1, l->in_c, cur);
                continue;
            }
            t = cur, cur = nxt, nxt = t;
        }
        memcpy(desc + i * m->desc_dim, cur, sizeof(float) * m->desc_dim);
    }
}

/* [C][n][HW] -> [n][C*HW] */
static void mn_chunk_to_rows(int c, int n, size_t hw, const float *in, float *out)
{
    for (int img = 0; img < n; img++)
        for (int ch = 0; ch < c; ch++)
            memcpy(out + ((size_t)img * c + ch) * hw, in + ((size_t)ch * n + img) * hw, sizeof(float) * hw);
}

/* The layers from k0 on (fc and L2 layers; k0 = n_layers: none) of the
 * [C][N][H][W] path: cur holds the chunk's activations, c channels of hw
 * values, nxt is a buffer of the same size; the descriptors go to desc as
 * rows. prof and t0: as in mn_tower_chunk (prof may be NULL). */
static void mn_chunk_tail(const mn_model *m, mn_scratch *s, int k0, int c, size_t hw, int n, float *cur,
                          float *nxt, float *desc, double *prof, double t0)
{
    if (k0 >= m->n_layers) {
        mn_chunk_to_rows(c, n, hw, cur, desc);
        return;
    }
    float *t;
    mn_chunk_to_rows(c, n, hw, cur, nxt);
    t = cur, cur = nxt, nxt = t;
    for (int k = k0; k < m->n_layers; k++) {
        const mn_layer *l = &m->layers[k];
        if (l->type == MN_LAYER_FC) {
            mn_fc_fast(l, n, cur, l->in_c, nxt, s->pack);
            t = cur, cur = nxt, nxt = t;
        } else {
            mn_l2norm_rows(n, l->in_c, cur);
        }
        if (prof) {
            double t1 = mn_seconds();
            prof[k] += t1 - t0;
            t0 = t1;
        }
    }
    memcpy(desc, cur, sizeof(float) * (size_t)n * m->desc_dim);
}

/* The [C][N][H][W] path: im2col + one matrix product per convolution over
 * the chunk, then bias/ReLU and pooling as separate passes. It serves the
 * blocks too small for the blocked path (see MN_NB). */
static void mn_tower_chunk(const mn_model *m, mn_scratch *s, const uint8_t *px8, const float *pxf,
                           int n, float *desc, double *prof)
{
    const size_t pp = (size_t)m->patch * m->patch;
    float *cur = s->act0, *nxt = s->act1, *t;
    double t0 = prof ? mn_seconds() : 0.0;
    /* One input channel: [1][n][P][P] is just the patches in order. */
    mn_normalize(m, px8, pxf, (size_t)n * pp, cur);
    int c = 1, k = 0;
    size_t hw = pp;
    for (; k < m->n_layers; k++) {
        const mn_layer *l = &m->layers[k];
        if (l->type == MN_LAYER_CONV)
            mn_conv_fast(l, n, cur, s->col, s->pack, nxt);
        else if (l->type == MN_LAYER_MAXPOOL)
            mn_maxpool_fast(l, n, cur, nxt);
        else
            break; /* the fc and L2 layers: mn_chunk_tail */
        t = cur, cur = nxt, nxt = t;
        c = l->out_c;
        hw = (size_t)l->out_h * l->out_w;
        if (prof) {
            double t1 = mn_seconds();
            prof[k] += t1 - t0;
            t0 = t1;
        }
    }
    mn_chunk_tail(m, s, k, c, hw, n, cur, nxt, desc, prof, t0);
}

/* ---- one small block split over threads (tower.h) ---- */

void mn_tower_split_init(mn_tower_split *j, const mn_model *m, const uint8_t *px8, const float *pxf, int n,
                         float *desc, int threads)
{
    memset(j, 0, sizeof *j);
    j->m = m, j->px8 = px8, j->pxf = pxf, j->n = n, j->desc = desc;
    /* One piece a thread: measured faster than two (fewer packings of the
     * weights), and a thread that starts late still has its piece taken. */
    const size_t want = (size_t)(threads > 1 ? threads : 1);
    int ns = 0, pieces = 0;
    j->step[ns].layer = -1, j->step[ns].total = j->step[ns].per = 1, j->step[ns].first = pieces++;
    ns++;
    for (int k = 0; k < m->n_layers; k++) {
        const mn_layer *l = &m->layers[k];
        size_t total, grain;
        if (l->type == MN_LAYER_CONV) {
            total = (size_t)n * l->out_h * l->out_w;
            grain = 32; /* whole strips of the product kernels where it can */
        } else if (l->type == MN_LAYER_MAXPOOL) {
            total = (size_t)l->in_c * n;
            grain = 1;
        } else {
            break;
        }
        size_t per = (total + want - 1) / want;
        per = (per + grain - 1) / grain * grain;
        j->step[ns].layer = k, j->step[ns].total = total, j->step[ns].per = per, j->step[ns].first = pieces;
        pieces += (int)((total + per - 1) / per);
        ns++;
    }
    /* The rest, and the descriptors' layout, on one thread. */
    j->step[ns].layer = m->n_layers, j->step[ns].total = j->step[ns].per = 1, j->step[ns].first = pieces++;
    ns++;
    j->n_steps = ns;
    j->pieces = pieces;
    atomic_init(&j->next, 0);
    atomic_init(&j->done, 0);
}

/* The input of layer k (or of the tail) within the split's buffers: they
 * swap once per conv or pool layer, starting from the normalised patches in
 * act[0]. */
static int mn_split_parity(int step)
{
    return (step - 1) & 1;
}

static void mn_split_piece(mn_tower_split *j, mn_scratch *s, int st, size_t b, size_t e)
{
    const mn_model *m = j->m;
    const int layer = j->step[st].layer;
    if (layer < 0) {
        j->act[0] = s->act0, j->act[1] = s->act1;
        mn_normalize(m, j->px8, j->pxf, (size_t)j->n * m->patch * m->patch, j->act[0]);
        return;
    }
    float *cur = j->act[mn_split_parity(st)], *nxt = j->act[!mn_split_parity(st)];
    if (layer < m->n_layers) {
        const mn_layer *l = &m->layers[layer];
        if (l->type == MN_LAYER_CONV)
            mn_conv_fast_cols(l, j->n, cur, b, e, s->col, s->pack, nxt);
        else
            mn_maxpool_fast_planes(l, b, e, cur, nxt);
        return;
    }
    /* The tail (fc and L2 layers, the descriptors' layout), as in mn_tower_chunk. */
    int k = 0, c = 1;
    size_t hw = (size_t)m->patch * m->patch;
    for (; k < m->n_layers && (m->layers[k].type == MN_LAYER_CONV || m->layers[k].type == MN_LAYER_MAXPOOL); k++)
        c = m->layers[k].out_c, hw = (size_t)m->layers[k].out_h * m->layers[k].out_w;
    mn_chunk_tail(m, s, k, c, hw, j->n, cur, nxt, j->desc, NULL, 0.0);
}

void mn_tower_split_work(mn_tower_split *j, mn_scratch *s)
{
    for (;;) {
        const int p = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (p >= j->pieces)
            return;
        int st = 0;
        while (st + 1 < j->n_steps && j->step[st + 1].first <= p)
            st++;
        /* Earlier steps' pieces were all claimed before this one, by
         * threads that are running them: wait for them. */
        for (int spin = 0; atomic_load_explicit(&j->done, memory_order_acquire) < j->step[st].first; spin++)
            if (spin > 64)
                sched_yield();
        const size_t b = (size_t)(p - j->step[st].first) * j->step[st].per;
        const size_t e = b + j->step[st].per < j->step[st].total ? b + j->step[st].per : j->step[st].total;
        mn_split_piece(j, s, st, b, e);
        atomic_fetch_add_explicit(&j->done, 1, memory_order_acq_rel);
    }
}

/* Whether the output before layer nk can go straight into the frame that
 * layer reads (a convolution whose frame holds its whole input), and where
 * (o). */
static int mn_next_frame(const mn_model *m, int nk, mn_blocked_out *o)
{
    if (nk >= m->n_layers || m->layers[nk].type != MN_LAYER_CONV)
        return 0;
    const mn_layer *c = &m->layers[nk];
    int hp, wp;
    mn_blocked_frame(c, &hp, &wp);
    if (c->pad + c->in_h > hp || c->pad + c->in_w > wp)
        return 0;
    o->hp = hp, o->wp = wp, o->top = o->left = c->pad;
    return 1;
}

/* The blocked path over one block of n <= MN_NB images: ops's layer
 * kernels for the conv and pool layers, layers.c's for fc and l2norm once
 * the activations are rows. */
static void mn_tower_blocked(const mn_blocked_ops *ops, const mn_model *m, mn_scratch *s, const uint8_t *px8,
                             const float *pxf, int n, float *desc, double *prof)
{
    float *cur = s->act0, *nxt = s->act1, *t;
    double t0 = prof ? mn_seconds() : 0.0;
    const mn_cpu *cpu = mn_cpu_get();
    const mn_isa_kernels *fixed = mn_isa_kernels_for(cpu->gemm_fixed);
    const int own = cpu->gemm_fixed != MN_KERNEL_BLAS;
    const mn_blocked_gemm g = {own ? fixed->gemm_prepacked : NULL, fixed->strip, mn_gemm_fixed,
                               own ? fixed->gemm_pairs : NULL, own ? fixed->round_pairs : NULL};
    /* framed: cur is already the next convolution's input frame. */
    mn_blocked_out fo;
    int framed = mn_next_frame(m, 0, &fo);
    ops->load(m, px8, pxf, n, cur, framed ? &fo : NULL);
    int c = m->in_c, h = m->patch, w = m->patch, rows = 0;
    for (int k = 0; k < m->n_layers; k++) {
        const mn_layer *l = &m->layers[k];
        if (!rows && (l->type == MN_LAYER_FC || l->type == MN_LAYER_L2NORM)) {
            ops->to_rows(c, h, w, n, cur, nxt);
            t = cur, cur = nxt, nxt = t;
            rows = 1;
        }
        int swap = 1, at = k; /* at: the profile's slot */
        mn_blocked_out no;
        int nf;
        if (k + 1 < m->n_layers && mn_blocked_conv_pool_fits(l, &m->layers[k + 1])) {
            /* conv + pool (conv0, conv1, conv4): the pooled output only (the layer after is done). */
            l = &m->layers[++k];
            nf = mn_next_frame(m, k + 1, &no);
            ops->conv_pool(&m->layers[at], l, &g, cur, framed, s->frame, s->wino_v, s->wino_m, s->pack, nxt,
                           nf ? &no : NULL);
        } else {
            nf = !rows && mn_next_frame(m, k + 1, &no);
            switch (l->type) {
            case MN_LAYER_CONV:
                ops->conv(l, &g, cur, framed, s->frame, s->wino_v, s->wino_m, s->pack, nxt, nf ? &no : NULL);
                break;
            case MN_LAYER_MAXPOOL: ops->pool(l, cur, nxt, nf ? &no : NULL); break;
            case MN_LAYER_FC: mn_fc_blocked(l, n, cur, l->in_c, nxt, s->pack); break;
            case MN_LAYER_L2NORM:
                mn_l2norm_rows(n, l->in_c, cur);
                swap = 0;
                break;
            }
        }
        if (swap)
            t = cur, cur = nxt, nxt = t;
        framed = nf;
        c = l->out_c;
        h = l->out_h;
        w = l->out_w;
        if (prof) {
            double t1 = mn_seconds();
            prof[at] += t1 - t0;
            t0 = t1;
        }
    }
    if (rows)
        memcpy(desc, cur, sizeof(float) * (size_t)n * m->desc_dim);
    else
        ops->to_rows(c, h, w, n, cur, desc);
}

/* The blocked layer kernels this process uses. */
static const mn_blocked_ops *mn_blocked_ops_now(void)
{
    return mn_isa_kernels_of(mn_cpu_get()->tower)->blocked;
}

void mn_tower_run(const mn_model *m, mn_scratch *s, int reference, const uint8_t *px8,
                  const float *pxf, size_t begin, size_t end, float *desc)
{
    if (reference) {
        mn_tower_ref(m, s, px8, pxf, begin, end, desc);
        return;
    }
    const size_t pp = (size_t)m->patch * m->patch;
    const mn_blocked_ops *ops = mn_blocked_ops_now();
    for (size_t i = begin; i < end; i += MN_NB) {
        int n = (int)(end - i < MN_NB ? end - i : MN_NB);
        const uint8_t *p8 = px8 ? px8 + i * pp : NULL;
        const float *pf = pxf ? pxf + i * pp : NULL;
        if (n >= MN_NB / 2) {
            mn_tower_blocked(ops, m, s, p8, pf, n, desc + i * m->desc_dim, NULL);
            continue;
        }
        for (int j = 0; j < n; j += MN_CHUNK) {
            int c = n - j < MN_CHUNK ? n - j : MN_CHUNK;
            mn_tower_chunk(m, s, p8 ? p8 + j * pp : NULL, pf ? pf + j * pp : NULL, c, desc + (i + j) * m->desc_dim,
                           NULL);
        }
    }
}

void mn_tower_profile_chunk(const mn_model *m, mn_scratch *s, int blocked, const uint8_t *px8, int n, float *desc,
                            double *prof)
{
    if (blocked)
        mn_tower_blocked(mn_blocked_ops_now(), m, s, px8, NULL, n, desc, prof);
    else
        mn_tower_chunk(m, s, px8, NULL, n, desc, prof);
}

const char *mn_tower_blocked_name(void)
{
    return mn_isa_name(mn_cpu_get()->tower);
}
