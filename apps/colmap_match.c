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
    b->inl = malloc(n);
    if (!b->m || !b->i1 || !b->i2 || !b->inl) {
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
    free(b->inl);
    *b = (match_buffers){0};
}

int pair_match(context *ctx, const image_entry *a, const image_entry *b, match_buffers *buf, size_t *n_matches)
{
    mn_dmatch *m = buf->m;
    uint32_t *i1 = buf->i1, *i2 = buf->i2;
    uint8_t *inl = buf->inl;
    mn_match_params mp = mn_match_params_default();
    size_t nm = 0;
    if (mn_match(ctx->session, a->desc, a->nkp, b->desc, b->nkp, &mp, m, a->nkp, &nm) != MN_OK) {
        snprintf(ctx->err, sizeof ctx->err, "%s / %s: %s", a->name, b->name, mn_last_error());
        return -1;
    }
    for (size_t k = 0; k < nm; k++) {
        i1[k] = m[k].query;
        i2[k] = m[k].train;
    }
    *n_matches = nm;
    if (colmap_db_write_matches(ctx->db, a->image_id, b->image_id, i1, i2, nm, ctx->err, sizeof ctx->err) != 0)
        return -1;
    if (ctx->o->verify != VERIFY_OWN)
        return colmap_db_delete_geometry(ctx->db, a->image_id, b->image_id, ctx->err, sizeof ctx->err);
    double F[9], Fc[9];
    size_t ni = 0;
    if (mn_matches_filter(MN_GEOMETRY_FUNDAMENTAL, a->kp, a->nkp, b->kp, b->nkp, m, nm, OWN_MAX_ERROR_PX, F, inl,
                          &ni) != MN_OK) {
        snprintf(ctx->err, sizeof ctx->err, "%s / %s: %s", a->name, b->name, mn_last_error());
        return -1;
    }
    int config = COLMAP_CONFIG_DEGENERATE;
    if (ni >= OWN_MIN_INLIERS) {
        size_t w = 0;
        for (size_t k = 0; k < nm; k++)
            if (inl[k]) {
                i1[w] = m[k].query;
                i2[w] = m[k].train;
                w++;
            }
        ni = w;
        config = COLMAP_CONFIG_UNCALIBRATED;
        fundamental_to_colmap(F, Fc);
    } else {
        ni = 0;
    }
    return colmap_db_write_geometry(ctx->db, a->image_id, b->image_id, i1, i2, ni, config,
                                    config == COLMAP_CONFIG_UNCALIBRATED ? Fc : NULL, ctx->err, sizeof ctx->err);
}
