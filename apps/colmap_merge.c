/*
 * colmap_merge.c - matchnet-colmap --merge OUT PART.db... (colmap_app.h):
 * the databases of a --shard run joined into the one a single run writes.
 *
 * Images go in by name order (strcmp, as the single run lists them), so
 * they get the single run's ids; each has its part's camera (one per
 * image), or with --single-camera the first camera of its model and size,
 * as the single run shares them. Keypoints and descriptors are copied as
 * they are; an image in several parts must have the same camera and
 * keypoints in each (the same settings and store), else the merge is
 * refused. Matches and two-view geometries are copied with their pair ids
 * recomputed; where the ids' order flips, the match columns are swapped
 * and F, E transposed, H inverted. The result is built in a temporary file
 * beside OUT and renamed over it at the end, so OUT is the old one or the
 * complete merge, never half of one.
 */
#define _POSIX_C_SOURCE 200809L
#include "colmap_app.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An image of a part, and its id in the output. */
typedef struct part_image {
    char *name;
    int part;
    int64_t id, camera, new_id;
} part_image;

typedef struct merge {
    const options *o;
    colmap_db **parts, *out;
    part_image *im;
    size_t n, cap;
    int64_t **map; /* per part: old image id -> index into im, sorted by old id */
    size_t *map_n;
    char err[1024];
} merge;

static int compare_images(const void *pa, const void *pb)
{
    const part_image *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c ? c : a->part - b->part;
}

/* Report an SQLite error of a connection; -1. */
static int sql_fail(sqlite3 *db, const char *path, const char *what)
{
    error_line("%s: %s: %s", path, what, sqlite3_errmsg(db));
    return -1;
}

/* The images with keypoints of part p into m->im. 0 or -1 (reported). */
static int list_part(merge *m, int p)
{
    sqlite3 *db = colmap_db_sqlite(m->parts[p]);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT images.image_id, images.name, images.camera_id FROM images JOIN keypoints "
                           "ON keypoints.image_id = images.image_id",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(db, m->o->merge_parts[p], "cannot read its images");
    int rc, ok = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (m->n == m->cap) {
            size_t cap = m->cap ? 2 * m->cap : 256;
            part_image *v = realloc(m->im, cap * sizeof *v);
            if (!v)
                break;
            m->im = v;
            m->cap = cap;
        }
        const char *name = (const char *)sqlite3_column_text(st, 1);
        m->im[m->n] = (part_image){.name = strdup(name ? name : ""), .part = p, .id = sqlite3_column_int64(st, 0),
                                   .camera = sqlite3_column_int64(st, 2)};
        if (!m->im[m->n].name)
            break;
        m->n++;
    }
    ok = rc == SQLITE_DONE;
    sqlite3_finalize(st);
    if (ok)
        return 0;
    if (rc == SQLITE_ROW) { /* stopped for memory */
        error_line("out of memory");
        return -1;
    }
    return sql_fail(db, m->o->merge_parts[p], "cannot read its images");
}

/* One row of a query with a single id parameter, as its columns' values;
 * NULL when there is no such row. */
static sqlite3_stmt *row_of(sqlite3 *db, const char *sql, int64_t id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Whether two rows have the same values, column by column. */
static int same_row(sqlite3_stmt *a, sqlite3_stmt *b)
{
    int n = sqlite3_column_count(a);
    for (int c = 0; c < n; c++) {
        int la = sqlite3_column_bytes(a, c), lb = sqlite3_column_bytes(b, c);
        const void *va = sqlite3_column_blob(a, c), *vb = sqlite3_column_blob(b, c);
        if (sqlite3_column_type(a, c) != sqlite3_column_type(b, c) || la != lb || (la && memcmp(va, vb, (size_t)la)))
            return 0;
    }
    return 1;
}

static const char camera_sql[] =
    "SELECT model, width, height, params, prior_focal_length FROM cameras WHERE camera_id = ?";
static const char keypoints_sql[] = "SELECT rows, cols, data FROM keypoints WHERE image_id = ?";
static const char descriptors_sql[] = "SELECT rows, cols, data FROM descriptors WHERE image_id = ?";

/* Whether image b of its part has image a's camera, keypoints and
 * descriptors. 1, 0 (reported), -1 (reported). */
static int same_image(merge *m, const part_image *a, const part_image *b)
{
    static const char *const sql[3] = {camera_sql, keypoints_sql, descriptors_sql};
    static const char *const what[3] = {"camera", "keypoints", "descriptors"};
    for (int t = 0; t < 3; t++) {
        sqlite3_stmt *ra = row_of(colmap_db_sqlite(m->parts[a->part]), sql[t], t ? a->id : a->camera);
        sqlite3_stmt *rb = row_of(colmap_db_sqlite(m->parts[b->part]), sql[t], t ? b->id : b->camera);
        int same = ra && rb && same_row(ra, rb);
        sqlite3_finalize(ra);
        sqlite3_finalize(rb);
        if (!same) {
            error_line("'%s' has other %s in %s than in %s (parts made with other settings or --store?)", a->name,
                       what[t], m->o->merge_parts[b->part], m->o->merge_parts[a->part]);
            return 0;
        }
    }
    return 1;
}

/* Copy a keypoints or descriptors row of image a into the output as
 * new_id. 0 or -1 (reported). */
static int copy_matrix(merge *m, const part_image *a, const char *select_sql, const char *table)
{
    sqlite3 *out = colmap_db_sqlite(m->out);
    sqlite3_stmt *r = row_of(colmap_db_sqlite(m->parts[a->part]), select_sql, a->id), *w = NULL;
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO %s(image_id, rows, cols, data) VALUES(?, ?, ?, ?)", table);
    if (!r) {
        error_line("%s: '%s' has no %s row", m->o->merge_parts[a->part], a->name, table);
        return -1;
    }
    int ok = sqlite3_prepare_v2(out, sql, -1, &w, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(w, 1, a->new_id);
        sqlite3_bind_int64(w, 2, sqlite3_column_int64(r, 0));
        sqlite3_bind_int64(w, 3, sqlite3_column_int64(r, 1));
        /* An empty blob reads as NULL: bind a zero-length one, not NULL. */
        const void *data = sqlite3_column_blob(r, 2);
        sqlite3_bind_blob(w, 4, data ? data : "", sqlite3_column_bytes(r, 2), SQLITE_TRANSIENT);
        ok = sqlite3_step(w) == SQLITE_DONE;
    }
    sqlite3_finalize(w);
    sqlite3_finalize(r);
    return ok ? 0 : sql_fail(out, m->o->merge, "cannot write its images");
}

/* The camera of image a in the output: its part's camera as a new one,
 * or with --single-camera the first of its model and size. 0 or -1
 * (reported). */
static int output_camera(merge *m, const part_image *a, int64_t *camera)
{
    sqlite3_stmt *r = row_of(colmap_db_sqlite(m->parts[a->part]), camera_sql, a->camera);
    if (!r) {
        error_line("%s: '%s' has no camera", m->o->merge_parts[a->part], a->name);
        return -1;
    }
    int model = sqlite3_column_int(r, 0), w = sqlite3_column_int(r, 1), h = sqlite3_column_int(r, 2);
    int rc = 0;
    *camera = 0;
    if (m->o->single_camera)
        rc = colmap_db_find_camera(m->out, model, w, h, camera, m->err, sizeof m->err);
    if (rc == 0 && *camera == 0) {
        int nparams = sqlite3_column_bytes(r, 3) / (int)sizeof(double);
        double params[64];
        if (nparams > 64)
            nparams = 64;
        if (nparams)
            memcpy(params, sqlite3_column_blob(r, 3), (size_t)nparams * sizeof(double));
        rc = colmap_db_add_camera(m->out, model, w, h, params, nparams, sqlite3_column_int(r, 4), camera, m->err,
                                  sizeof m->err);
    }
    sqlite3_finalize(r);
    if (rc != 0)
        error_line("%s: %s", m->o->merge, m->err);
    return rc;
}

/* Every image, in name order. 0 or -1 (reported). */
static int merge_images(merge *m)
{
    qsort(m->im, m->n, sizeof *m->im, compare_images);
    for (size_t k = 0; k < m->n;) {
        size_t end = k + 1;
        while (end < m->n && strcmp(m->im[end].name, m->im[k].name) == 0)
            end++;
        for (size_t j = k + 1; j < end; j++)
            if (same_image(m, &m->im[k], &m->im[j]) != 1)
                return -1;
        int64_t camera;
        if (output_camera(m, &m->im[k], &camera) != 0)
            return -1;
        if (colmap_db_add_image(m->out, m->im[k].name, camera, &m->im[k].new_id, m->err, sizeof m->err) != 0) {
            error_line("%s: %s", m->o->merge, m->err);
            return -1;
        }
        if (copy_matrix(m, &m->im[k], keypoints_sql, "keypoints") != 0 ||
            copy_matrix(m, &m->im[k], descriptors_sql, "descriptors") != 0)
            return -1;
        for (size_t j = k + 1; j < end; j++)
            m->im[j].new_id = m->im[k].new_id;
        k = end;
    }
    return 0;
}

static int compare_ids(const void *pa, const void *pb)
{
    const int64_t *a = pa, *b = pb;
    return (a[0] > b[0]) - (a[0] < b[0]);
}

/* Per part, (old id, new id) pairs sorted by old id. 0 or -1 (reported). */
static int build_maps(merge *m)
{
    int np = m->o->n_merge_parts;
    m->map = calloc((size_t)np, sizeof *m->map);
    m->map_n = calloc((size_t)np, sizeof *m->map_n);
    if (!m->map || !m->map_n) {
        error_line("out of memory");
        return -1;
    }
    for (size_t k = 0; k < m->n; k++)
        m->map_n[m->im[k].part]++;
    for (int p = 0; p < np; p++) {
        m->map[p] = malloc((m->map_n[p] ? m->map_n[p] : 1) * 2 * sizeof **m->map);
        if (!m->map[p]) {
            error_line("out of memory");
            return -1;
        }
        m->map_n[p] = 0;
    }
    for (size_t k = 0; k < m->n; k++) {
        int p = m->im[k].part;
        m->map[p][2 * m->map_n[p]] = m->im[k].id;
        m->map[p][2 * m->map_n[p] + 1] = m->im[k].new_id;
        m->map_n[p]++;
    }
    for (int p = 0; p < np; p++)
        qsort(m->map[p], m->map_n[p], 2 * sizeof **m->map, compare_ids);
    return 0;
}

/* An image's new id in the output, or 0 when the part has no such image
 * with keypoints. */
static int64_t new_id(const merge *m, int p, int64_t old)
{
    const int64_t *e = bsearch(&old, m->map[p], m->map_n[p], 2 * sizeof **m->map, compare_ids);
    return e ? e[1] : 0;
}

/* 3 x 3 transpose in place. */
static void transpose3(double *a)
{
    for (int r = 0; r < 3; r++)
        for (int c = r + 1; c < 3; c++) {
            double t = a[3 * r + c];
            a[3 * r + c] = a[3 * c + r];
            a[3 * c + r] = t;
        }
}

/* 3 x 3 inverse in place (a zero matrix, "none", stays zero). */
static void invert3(double *a)
{
    double c[9] = {a[4] * a[8] - a[5] * a[7], a[2] * a[7] - a[1] * a[8], a[1] * a[5] - a[2] * a[4],
                   a[5] * a[6] - a[3] * a[8], a[0] * a[8] - a[2] * a[6], a[2] * a[3] - a[0] * a[5],
                   a[3] * a[7] - a[4] * a[6], a[1] * a[6] - a[0] * a[7], a[0] * a[4] - a[1] * a[3]};
    double det = a[0] * c[0] + a[1] * c[3] + a[2] * c[6];
    if (det != 0)
        for (int k = 0; k < 9; k++)
            a[k] = c[k] / det;
}

/* The pairs of one table (matches, two_view_geometries) of part p. 0 or
 * -1 (reported). */
static int merge_pairs(merge *m, int p, const char *table, int geometry)
{
    sqlite3 *in = colmap_db_sqlite(m->parts[p]), *out = colmap_db_sqlite(m->out);
    const char *path = m->o->merge_parts[p];
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT pair_id, rows, cols, data%s FROM %s",
             geometry ? ", config, F, E, H, qvec, tvec" : "", table);
    sqlite3_stmt *r, *w = NULL, *old = NULL;
    if (sqlite3_prepare_v2(in, sql, -1, &r, NULL) != SQLITE_OK)
        return sql_fail(in, path, "cannot read its pairs");
    snprintf(sql, sizeof sql, "INSERT INTO %s(pair_id, rows, cols, data%s) VALUES(?, ?, ?, ?%s)", table,
             geometry ? ", config, F, E, H, qvec, tvec" : "", geometry ? ", ?, ?, ?, ?, ?, ?" : "");
    char old_sql[128];
    snprintf(old_sql, sizeof old_sql, "SELECT rows, cols, data FROM %s WHERE pair_id = ?", table);
    int rc = -1, step;
    if (sqlite3_prepare_v2(out, sql, -1, &w, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(out, old_sql, -1, &old, NULL) != SQLITE_OK) {
        sql_fail(out, m->o->merge, "cannot write its pairs");
        goto done;
    }
    while ((step = sqlite3_step(r)) == SQLITE_ROW) {
        int64_t pair = sqlite3_column_int64(r, 0), id2 = pair % COLMAP_MAX_NUM_IMAGES,
                id1 = (pair - id2) / COLMAP_MAX_NUM_IMAGES;
        int64_t n1 = new_id(m, p, id1), n2 = new_id(m, p, id2), rows = sqlite3_column_int64(r, 1);
        if (!n1 || !n2 || sqlite3_column_int64(r, 2) != 2 ||
            (size_t)sqlite3_column_bytes(r, 3) != (size_t)rows * 2 * sizeof(uint32_t)) {
            error_line("%s: pair %lld of table %s is not a pair of its images with keypoints, or not 2 columns",
                       path, (long long)pair, table);
            goto done;
        }
        size_t bytes = (size_t)rows * 2 * sizeof(uint32_t);
        uint32_t *data = malloc(bytes ? bytes : 1);
        if (!data) {
            error_line("out of memory");
            goto done;
        }
        if (bytes)
            memcpy(data, sqlite3_column_blob(r, 3), bytes);
        double mat[3][9] = {{0}};
        if (n1 > n2) { /* column 0 belongs to the smaller id */
            for (int64_t k = 0; k < rows; k++) {
                uint32_t t = data[2 * k];
                data[2 * k] = data[2 * k + 1];
                data[2 * k + 1] = t;
            }
        }
        int64_t out_pair = colmap_pair_id(n1, n2);
        sqlite3_reset(old);
        sqlite3_bind_int64(old, 1, out_pair);
        if (sqlite3_step(old) == SQLITE_ROW) {
            /* The same pair from two parts (overlapping shards): the same
             * rows, or the parts disagree. */
            int same = sqlite3_column_int64(old, 0) == rows && (size_t)sqlite3_column_bytes(old, 2) == bytes &&
                       (bytes == 0 || memcmp(sqlite3_column_blob(old, 2), data, bytes) == 0);
            free(data);
            if (!same) {
                error_line("the pair %lld of %s has other %s than in an earlier part", (long long)pair, path, table);
                goto done;
            }
            continue;
        }
        sqlite3_reset(w);
        sqlite3_bind_int64(w, 1, out_pair);
        sqlite3_bind_int64(w, 2, rows);
        sqlite3_bind_int(w, 3, 2);
        sqlite3_bind_blob(w, 4, bytes ? (const void *)data : "", (int)bytes, SQLITE_TRANSIENT);
        free(data);
        if (geometry) {
            sqlite3_bind_int64(w, 5, sqlite3_column_int64(r, 4));
            for (int t = 0; t < 3; t++) {
                if (sqlite3_column_bytes(r, 5 + t) == 9 * (int)sizeof(double))
                    memcpy(mat[t], sqlite3_column_blob(r, 5 + t), sizeof mat[t]);
                if (n1 > n2) {
                    if (t < 2)
                        transpose3(mat[t]); /* F, E of the other direction */
                    else
                        invert3(mat[t]);
                }
                sqlite3_bind_blob(w, 6 + t, mat[t], sizeof mat[t], SQLITE_TRANSIENT);
            }
            const double *q = sqlite3_column_blob(r, 8), *tv = sqlite3_column_blob(r, 9);
            int nq = sqlite3_column_bytes(r, 8), nt = sqlite3_column_bytes(r, 9);
            int identity = nq == 4 * (int)sizeof(double) && nt == 3 * (int)sizeof(double) && q[0] == 1 && !q[1] &&
                           !q[2] && !q[3] && !tv[0] && !tv[1] && !tv[2];
            if (n1 > n2 && !identity) {
                /* matchnet-colmap writes none; COLMAP's relative poses are
                 * not reversed here. */
                error_line("%s: pair %lld has a relative pose and its images' order changes; not merged", path,
                           (long long)pair);
                goto done;
            }
            sqlite3_bind_blob(w, 9, q ? (const void *)q : "", nq, SQLITE_TRANSIENT);
            sqlite3_bind_blob(w, 10, tv ? (const void *)tv : "", nt, SQLITE_TRANSIENT);
        }
        if (sqlite3_step(w) != SQLITE_DONE) {
            sql_fail(out, m->o->merge, "cannot write its pairs");
            goto done;
        }
    }
    if (step != SQLITE_DONE) {
        sql_fail(in, path, "cannot read its pairs");
        goto done;
    }
    rc = 0;
done:
    sqlite3_finalize(r);
    sqlite3_finalize(w);
    sqlite3_finalize(old);
    return rc;
}

/* Open the parts (each must exist and be a COLMAP 3.8 database). 0 or -1
 * (reported). */
static int open_parts(merge *m)
{
    int np = m->o->n_merge_parts;
    m->parts = calloc((size_t)np, sizeof *m->parts);
    if (!m->parts) {
        error_line("out of memory");
        return -1;
    }
    for (int p = 0; p < np; p++) {
        struct stat st;
        const char *path = m->o->merge_parts[p];
        /* colmap_db_open() would create a missing one. */
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
            error_line("--merge: part '%s' %s", path, stat(path, &st) != 0 ? "does not exist" : "is not a database");
            return -1;
        }
        if (colmap_db_open(path, &m->parts[p], m->err, sizeof m->err) != 0) {
            error_line("%s: %s", path, m->err);
            return -1;
        }
        if (list_part(m, p) != 0)
            return -1;
    }
    return 0;
}

int merge_databases(const options *o)
{
    merge m = {.o = o};
    size_t len = strlen(o->merge);
    char *tmp = malloc(len + 16);
    int fd = -1, rc = -1;
    if (!tmp) {
        error_line("out of memory");
        return -1;
    }
    snprintf(tmp, len + 16, "%s.tmp.XXXXXX", o->merge);
    if (open_parts(&m) != 0)
        goto done;
    if ((fd = mkstemp(tmp)) < 0) {
        error_line("cannot create a file beside '%s': %s", o->merge, strerror(errno));
        goto done;
    }
    /* mkstemp() makes it 0600; a database gets a plain file's mode. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    close(fd);
    if (colmap_db_open(tmp, &m.out, m.err, sizeof m.err) != 0) {
        error_line("%s: %s", tmp, m.err);
        goto done;
    }
    if (colmap_db_begin(m.out, m.err, sizeof m.err) != 0) {
        error_line("%s: %s", tmp, m.err);
        goto done;
    }
    if (merge_images(&m) != 0 || build_maps(&m) != 0)
        goto done;
    for (int p = 0; p < o->n_merge_parts; p++)
        if (merge_pairs(&m, p, "matches", 0) != 0 || merge_pairs(&m, p, "two_view_geometries", 1) != 0)
            goto done;
    if (colmap_db_commit(m.out, m.err, sizeof m.err) != 0) {
        error_line("%s: %s", tmp, m.err);
        goto done;
    }
    int64_t n_pairs = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(colmap_db_sqlite(m.out), "SELECT count(*) FROM matches", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n_pairs = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    colmap_db_close(m.out);
    m.out = NULL;
    if (rename(tmp, o->merge) != 0) {
        error_line("cannot rename '%s' to '%s': %s", tmp, o->merge, strerror(errno));
        goto done;
    }
    size_t n_images = 0;
    for (size_t k = 0; k < m.n; k++)
        n_images += k == 0 || strcmp(m.im[k].name, m.im[k - 1].name) != 0;
    fprintf(stderr, PROG ": merged %d parts into %s: %zu images, %lld pairs with matches\n", o->n_merge_parts,
            o->merge, n_images, (long long)n_pairs);
    rc = 0;
done:
    colmap_db_close(m.out);
    if (rc != 0 && fd >= 0)
        unlink(tmp);
    for (int p = 0; m.parts && p < o->n_merge_parts; p++) {
        colmap_db_close(m.parts[p]);
        free(m.map ? m.map[p] : NULL);
    }
    for (size_t k = 0; k < m.n; k++)
        free(m.im[k].name);
    free(m.im);
    free(m.map);
    free(m.map_n);
    free(m.parts);
    free(tmp);
    return rc;
}
