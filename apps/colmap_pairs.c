/*
 * colmap_pairs.c - matchnet-colmap's pairs (colmap_app.h): which image
 * pairs to match (--pairs exhaustive, sequential:N or a file of
 * 'NAME1 NAME2' lines), the pair list for COLMAP, and matching one pair
 * into its matches and, with --verify own, its two-view geometry.
 */
#define _POSIX_C_SOURCE 200809L
#include "colmap_app.h"
#include "out_file.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --verify own: RANSAC threshold (full-resolution pixels, COLMAP's
 * SiftMatching.max_error) and fewest inliers for a verified pair
 * (SiftMatching.min_num_inliers). */
#define OWN_MAX_ERROR_PX 4.0
#define OWN_MIN_INLIERS 15

int pair_spec_parse(options *o)
{
    const char *v = o->pairs_spec;
    if (!v || strcmp(v, "exhaustive") == 0) {
        o->pairs = PAIRS_EXHAUSTIVE;
    } else if (strncmp(v, "sequential:", 11) == 0) {
        o->pairs = PAIRS_SEQUENTIAL;
        if ((o->overlap = mn_cli_parse_count(v + 11, 1, INT_MAX)) < 0) {
            error_line("--pairs: sequential:N needs a whole number N >= 1, got '%s'", v + 11);
            return 2;
        }
    } else if (v[0] != '\0') {
        o->pairs = PAIRS_FILE;
        o->pair_file = v;
    } else {
        error_line("--pairs: expected exhaustive, sequential:N or a file, got ''");
        return 2;
    }
    return 0;
}

static int pair_push(pair_list *p, size_t i, size_t j)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        size_t(*v)[2] = realloc(p->v, cap * sizeof *v);
        if (!v)
            return -1;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n][0] = i;
    p->v[p->n][1] = j;
    p->n++;
    return 0;
}

static long find_name(const image_list *list, const char *name)
{
    size_t lo = 0, hi = list->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(list->v[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* --pairs exhaustive or sequential:N. */
static int select_generated(const options *o, const image_list *list, pair_list *out)
{
    for (size_t i = 0; i < list->n; i++) {
        if (!image_usable(&list->v[i]))
            continue;
        size_t end = o->pairs == PAIRS_SEQUENTIAL && (size_t)o->overlap < list->n - i ? i + 1 + (size_t)o->overlap
                                                                                        : list->n;
        for (size_t j = i + 1; j < end; j++)
            if (image_usable(&list->v[j]) && pair_push(out, i, j) != 0) {
                error_line("out of memory");
                return -1;
            }
    }
    return 0;
}

/* --pairs FILE: its pairs in file order, each once, either way round. */
static int select_from_file(const char *path, const image_list *list, pair_list *out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        error_line("cannot open pair list '%s': %s", path, strerror(errno));
        return -1;
    }
    char line[8192];
    long lineno = 0;
    int rc = 0;
    uint8_t *seen = calloc(list->n ? list->n * list->n : 1, 1);
    if (!seen) {
        error_line("out of memory");
        fclose(f);
        return -1;
    }
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *a = strtok(line, " \t\r\n"), *b = a ? strtok(NULL, " \t\r\n") : NULL;
        if (!a || a[0] == '#')
            continue;
        long i = find_name(list, a), j = b ? find_name(list, b) : -1;
        if (!b || i < 0 || j < 0 || i == j) {
            error_line("%s:%ld: %s", path, lineno,
                       !b ? "expected two image names" : i == j && i >= 0 ? "an image paired with itself"
                                                                          : "unknown image name");
            rc = -1;
            break;
        }
        if (i > j) {
            long t = i;
            i = j;
            j = t;
        }
        if (!image_usable(&list->v[i]) || !image_usable(&list->v[j]) || seen[(size_t)i * list->n + (size_t)j])
            continue;
        seen[(size_t)i * list->n + (size_t)j] = 1;
        if (pair_push(out, (size_t)i, (size_t)j) != 0) {
            error_line("out of memory");
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        error_line("cannot read pair list '%s': %s", path, strerror(errno));
        rc = -1;
    }
    free(seen);
    fclose(f);
    return rc;
}

int pair_list_select(const options *o, const image_list *list, pair_list *out)
{
    return o->pairs == PAIRS_FILE ? select_from_file(o->pair_file, list, out) : select_generated(o, list, out);
}

/* Made in memory and written through a temporary file (out_file.h): a
 * killed run leaves the older list or none, never half of one. */
int pair_list_write(const char *path, const image_list *list, const pair_list *pairs)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        error_line("out of memory");
        return -1;
    }
    for (size_t k = 0; k < pairs->n; k++)
        fprintf(f, "%s %s\n", list->v[pairs->v[k][0]].name, list->v[pairs->v[k][1]].name);
    if (ferror(f) | (fclose(f) != 0)) {
        error_line("out of memory");
        free(text);
        return -1;
    }
    int e = mn_out_file_write(path, text, len);
    free(text);
    if (e != 0) {
        error_line("cannot write '%s': %s", path, strerror(e));
        return -1;
    }
    return 0;
}

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
