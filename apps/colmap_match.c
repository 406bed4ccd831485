/*
 * colmap_match.c - matchnet-colmap's matching of one pair (colmap_app.h):
 * its matches and, with --verify own, its two-view geometry.
 */
#define _POSIX_C_SOURCE 200809L
#include "colmap_app.h"

#include <stdio.h>
#include <stdlib.h>

/* --verify own: RANSAC threshold (full-resolution pixels, COLMAP's
 * SiftMatching.max_error) and fewest inliers for a verified pair
 * (SiftMatching.min_num_inliers). */
#define OWN_MAX_ERROR_PX 4.0
#define OWN_MIN_INLIERS 15

/* F for OpenCV coordinates -> F for COLMAP's (+0.5): T^T F T with
 * x_opencv = T x_colmap. */
static void fundamental_to_colmap(const double *F, double *out)
{
    static const double T[9] = {1, 0, -0.5, 0, 1, -0.5, 0, 0, 1};
    double FT[9];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            FT[3 * r + c] = F[3 * r] * T[c] + F[3 * r + 1] * T[3 + c] + F[3 * r + 2] * T[6 + c];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            out[3 * r + c] = T[r] * FT[c] + T[3 + r] * FT[3 + c] + T[6 + r] * FT[6 + c];
}

int match_buffers_alloc(match_buffers *b, size_t n)
{
    if (n == 0)
        n = 1;
    b->m = malloc(n * sizeof *b->m);
    b->i1 = malloc(n * sizeof *b->i1);
    b->i2 = malloc(n * sizeof *b->i2);
    b->g1 = malloc(n * sizeof *b->g1);
    b->g2 = malloc(n * sizeof *b->g2);
    b->inl = malloc(n);
    if (!b->m || !b->i1 || !b->i2 || !b->g1 || !b->g2 || !b->inl) {
        error_line("out of memory");
        return -1;
    }
    return 0;
}

void match_buffers_free(match_buffers *b)
{
    free(b->m);
    free(b->i1);
    free(b->i2);
    free(b->g1);
    free(b->g2);
    free(b->inl);
    *b = (match_buffers){0};
}

int pair_compute(context *ctx, const image_entry *a, const image_entry *b, match_buffers *buf, pair_result *res)
{
    mn_dmatch *m = buf->m;
    mn_match_params mp = mn_match_params_default();
    size_t nm = 0;
    *res = (pair_result){.i1 = buf->i1, .i2 = buf->i2, .g1 = buf->g1, .g2 = buf->g2,
                         .config = COLMAP_CONFIG_DEGENERATE};
    if (mn_match(ctx->session, a->desc, a->nkp, b->desc, b->nkp, &mp, m, a->nkp, &nm) != MN_OK) {
        snprintf(ctx->err, sizeof ctx->err, "%s / %s: %s", a->name, b->name, mn_last_error());
        return -1;
    }
    for (size_t k = 0; k < nm; k++) {
        buf->i1[k] = m[k].query;
        buf->i2[k] = m[k].train;
    }
    res->nm = nm;
    if (ctx->o->verify != VERIFY_OWN)
        return 0;
    double F[9];
    size_t ni = 0;
    if (mn_matches_filter(MN_GEOMETRY_FUNDAMENTAL, a->kp, a->nkp, b->kp, b->nkp, m, nm, OWN_MAX_ERROR_PX, F,
                          buf->inl, &ni) != MN_OK) {
        snprintf(ctx->err, sizeof ctx->err, "%s / %s: %s", a->name, b->name, mn_last_error());
        return -1;
    }
    if (ni >= OWN_MIN_INLIERS) {
        size_t w = 0;
        for (size_t k = 0; k < nm; k++)
            if (buf->inl[k]) {
                buf->g1[w] = m[k].query;
                buf->g2[w] = m[k].train;
                w++;
            }
        res->ni = w;
        res->config = COLMAP_CONFIG_UNCALIBRATED;
        fundamental_to_colmap(F, res->F);
    }
    return 0;
}

int pair_write(context *ctx, const image_entry *a, const image_entry *b, const pair_result *res)
{
    if (colmap_db_write_matches(ctx->db, a->image_id, b->image_id, res->i1, res->i2, res->nm, ctx->err,
                                sizeof ctx->err) != 0)
        return -1;
    if (ctx->o->verify != VERIFY_OWN)
        return colmap_db_delete_geometry(ctx->db, a->image_id, b->image_id, ctx->err, sizeof ctx->err);
    return colmap_db_write_geometry(ctx->db, a->image_id, b->image_id, res->g1, res->g2, res->ni, res->config,
                                    res->config == COLMAP_CONFIG_UNCALIBRATED ? res->F : NULL, ctx->err,
                                    sizeof ctx->err);
}

int pair_match(context *ctx, const image_entry *a, const image_entry *b, match_buffers *buf, size_t *n_matches)
{
    pair_result res;
    if (pair_compute(ctx, a, b, buf, &res) != 0)
        return -1;
    *n_matches = res.nm;
    return pair_write(ctx, a, b, &res);
}
