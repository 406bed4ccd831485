/*
 * tower.c - the feature tower: normalisation, conv/pool stack, bottleneck.
 */
#include "internal.h"

#include <string.h>

mn_status mn_scratch_init(const mn_model *m, mn_scratch *s)
{
    memset(s, 0, sizeof *s);
    s->act0 = mn_malloc(sizeof(float) * MN_CHUNK * m->max_act);
    s->act1 = mn_malloc(sizeof(float) * MN_CHUNK * m->max_act);
    s->col = mn_malloc(sizeof(float) * (MN_CHUNK * m->max_col + 1));
    s->h0 = mn_malloc(sizeof(float) * MN_PAIR_BLOCK * m->max_metric);
    s->h1 = mn_malloc(sizeof(float) * MN_PAIR_BLOCK * m->max_metric);
    s->concat = mn_malloc(sizeof(float) * MN_PAIR_BLOCK * 2 * m->desc_dim);
    s->pack = mn_malloc(sizeof(float) * mn_gemm_pack_floats());
    if (!s->act0 || !s->act1 || !s->col || !s->h0 || !s->h1 || !s->concat || !s->pack) {
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

static void mn_tower_chunk(const mn_model *m, mn_scratch *s, const uint8_t *px8, const float *pxf,
                           int n, float *desc)
{
    const size_t pp = (size_t)m->patch * m->patch;
    float *cur = s->act0, *nxt = s->act1, *t;
    /* One input channel: [1][n][P][P] is just the patches in order. */
    mn_normalize(m, px8, pxf, (size_t)n * pp, cur);
    int c = 1, rows = 0; /* rows: activations already in [n][dim] layout */
    size_t hw = pp;
    for (int k = 0; k < m->n_layers; k++) {
        const mn_layer *l = &m->layers[k];
        if (!rows && (l->type == MN_LAYER_FC || l->type == MN_LAYER_L2NORM)) {
            mn_chunk_to_rows(c, n, hw, cur, nxt);
            t = cur, cur = nxt, nxt = t;
            rows = 1;
        }
        switch (l->type) {
        case MN_LAYER_CONV: mn_conv_fast(l, n, cur, s->col, s->pack, nxt); break;
        case MN_LAYER_MAXPOOL: mn_maxpool_fast(l, n, cur, nxt); break;
        case MN_LAYER_FC: mn_fc_fast(l, n, cur, l->in_c, nxt, s->pack); break;
        case MN_LAYER_L2NORM:
            mn_l2norm_rows(n, l->in_c, cur);
            continue;
        }
        t = cur, cur = nxt, nxt = t;
        c = l->out_c;
        hw = (size_t)l->out_h * l->out_w;
    }
    if (rows)
        memcpy(desc, cur, sizeof(float) * (size_t)n * m->desc_dim);
    else
        mn_chunk_to_rows(c, n, hw, cur, desc);
}

void mn_tower_run(const mn_model *m, mn_scratch *s, int reference, const uint8_t *px8,
                  const float *pxf, size_t begin, size_t end, float *desc)
{
    if (reference) {
        mn_tower_ref(m, s, px8, pxf, begin, end, desc);
        return;
    }
    const size_t pp = (size_t)m->patch * m->patch;
    for (size_t i = begin; i < end; i += MN_CHUNK) {
        int n = (int)(end - i < MN_CHUNK ? end - i : MN_CHUNK);
        mn_tower_chunk(m, s, px8 ? px8 + i * pp : NULL, pxf ? pxf + i * pp : NULL, n,
                       desc + i * m->desc_dim);
    }
}
