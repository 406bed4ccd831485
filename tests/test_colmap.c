/*
 * test_colmap.c - matchnet-colmap's COLMAP 3.8 database, checked with the
 * SQLite C API against COLMAP's documented layout: tables and columns,
 * cameras, keypoints (+0.5 and the affine shape, against
 * mn_keypoints_detect() on the same image), descriptors, pair ids and
 * match indices (against the ground truth of a rendered scene, which also
 * checks the column order of swapped pairs), resuming without duplicates,
 * an unreadable image, --single-camera, --max-size (keypoints back in
 * full-resolution coordinates), --affine (its ellipses against
 * mn_affine_shape_estimate(), its --store descriptors against
 * mn_describe_keypoints_affine(), --reuse-keypoints --affine on its own
 * rows and on similarity rows of 6 and 4 columns, a store of the other
 * setting made again), and refusal of foreign databases.
 * With --colmap (test_colmap_reuse): --reuse-keypoints on the database
 * colmap feature_extractor makes of the views - its keypoints,
 * descriptors, cameras and images untouched, every pair matched with
 * indices into COLMAP's keypoint rows that agree with the scene, a rerun
 * skips, --replace-matches writes them again (and drops stale two-view
 * geometries), 4-column keypoint rows, a file colmap has not seen, and
 * --affine on COLMAP's (similarity) rows.
 *
 *   test_colmap PATH/TO/matchnet-colmap      run the checks
 *   test_colmap PATH/TO/matchnet-colmap --colmap PATH/TO/colmap
 *   test_colmap --render DIR                 only write the views to DIR
 *
 * The views are ray-traced here: a box in front of a wall, both with a
 * solid value-noise texture, seen by 5 cameras (320 x 240, f = 280 px).
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "matchnet/opencv.h"

#include <sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define W 320
#define H 240
#define FOCAL 280.0
#define NVIEWS 5
#define MAX_KP 500
#define PAIR_ID_BASE 2147483647LL

typedef struct view {
    double R[9]; /* world -> camera rows */
    double C[3]; /* centre */
} view;

static view views[NVIEWS];

static void make_views(void)
{
    static const double cx[NVIEWS] = {-1.2, -0.6, 0.0, 0.6, 1.2}, cy[NVIEWS] = {0.0, 0.25, -0.15, 0.2, -0.25};
    for (int k = 0; k < NVIEWS; k++) {
        view *v = &views[k];
        v->C[0] = cx[k];
        v->C[1] = cy[k];
        v->C[2] = -4.0;
        double z[3] = {-v->C[0], -v->C[1], 0.3 - v->C[2]}, n = sqrt(z[0] * z[0] + z[1] * z[1] + z[2] * z[2]);
        for (int i = 0; i < 3; i++)
            z[i] /= n;
        /* x = down x z, y = z x x: y points down in the image as in the world. */
        double x[3] = {z[2], 0, -z[0]};
        n = sqrt(x[0] * x[0] + x[2] * x[2]);
        x[0] /= n;
        x[2] /= n;
        double y[3] = {z[1] * x[2] - z[2] * x[1], z[2] * x[0] - z[0] * x[2], z[0] * x[1] - z[1] * x[0]};
        for (int i = 0; i < 3; i++) {
            v->R[i] = x[i];
            v->R[3 + i] = y[i];
            v->R[6 + i] = z[i];
        }
    }
}

static double lattice(int x, int y, int z)
{
    uint32_t h = (uint32_t)x * 73856093u ^ (uint32_t)y * 19349663u ^ (uint32_t)z * 83492791u;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return (h & 0xffff) / 65535.0;
}

static double value_noise(double x, double y, double z)
{
    int ix = (int)floor(x), iy = (int)floor(y), iz = (int)floor(z);
    double fx = x - ix, fy = y - iy, fz = z - iz, r = 0;
    fx = fx * fx * (3 - 2 * fx);
    fy = fy * fy * (3 - 2 * fy);
    fz = fz * fz * (3 - 2 * fz);
    for (int c = 0; c < 8; c++) {
        int dx = c & 1, dy = (c >> 1) & 1, dz = c >> 2;
        r += (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy) * (dz ? fz : 1 - fz) * lattice(ix + dx, iy + dy, iz + dz);
    }
    return r;
}

static double texture(const double *p)
{
    double v = 0, a = 1, f = 3;
    for (int o = 0; o < 4; o++, a *= 0.6, f *= 2)
        v += a * value_noise(p[0] * f + 17 * o, p[1] * f, p[2] * f);
    return v / 2.2;
}

/* World point that the ray through COLMAP image coordinates (u, v) of a
 * view hits: the wall z = 1 or the box [-0.7, 0.7]^2 x [-0.6, 1]. */
static int trace(const view *v, double u, double vv, double *X)
{
    double dc[3] = {(u - W / 2.0) / FOCAL, (vv - H / 2.0) / FOCAL, 1}, d[3];
    for (int i = 0; i < 3; i++)
        d[i] = v->R[i] * dc[0] + v->R[3 + i] * dc[1] + v->R[6 + i] * dc[2];
    double t = (1.0 - v->C[2]) / d[2];
    static const double lo[3] = {-0.7, -0.7, -0.6}, hi[3] = {0.7, 0.7, 1.0};
    double tmin = -1e30, tmax = 1e30;
    for (int i = 0; i < 3; i++) {
        double t1 = (lo[i] - v->C[i]) / d[i], t2 = (hi[i] - v->C[i]) / d[i];
        if (t1 > t2) {
            double s = t1;
            t1 = t2;
            t2 = s;
        }
        tmin = t1 > tmin ? t1 : tmin;
        tmax = t2 < tmax ? t2 : tmax;
    }
    if (tmin <= tmax && tmin > 0 && tmin < t)
        t = tmin;
    for (int i = 0; i < 3; i++)
        X[i] = v->C[i] + t * d[i];
    return 0;
}

static void project(const view *v, const double *X, double *u, double *vv)
{
    double p[3];
    for (int i = 0; i < 3; i++)
        p[i] = v->R[3 * i] * (X[0] - v->C[0]) + v->R[3 * i + 1] * (X[1] - v->C[1]) + v->R[3 * i + 2] * (X[2] - v->C[2]);
    *u = FOCAL * p[0] / p[2] + W / 2.0;
    *vv = FOCAL * p[1] / p[2] + H / 2.0;
}

static int render(const char *dir)
{
    make_views();
    uint8_t *img = malloc(W * H);
    if (!img)
        return -1;
    for (int k = 0; k < NVIEWS; k++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double acc = 0, X[3];
                for (int s = 0; s < 4; s++) { /* 2 x 2 samples per pixel */
                    trace(&views[k], x + 0.25 + 0.5 * (s & 1), y + 0.25 + 0.5 * (s >> 1), X);
                    acc += texture(X);
                }
                double g = 255 * (acc / 4 - 0.25) / 0.5;
                img[y * W + x] = (uint8_t)(g < 0 ? 0 : g > 255 ? 255 : g);
            }
        char path[512];
        snprintf(path, sizeof path, "%s/view%d.pgm", dir, k);
        FILE *f = fopen(path, "wb");
        if (!f)
            return -1;
        fprintf(f, "P5\n%d %d\n255\n", W, H);
        fwrite(img, 1, W * H, f);
        if (fclose(f) != 0)
            return -1;
    }
    free(img);
    return 0;
}

/* ------------------------------------------------------------------------ */

static char tmpdir[64];
static const char *exe;

/* Run matchnet-colmap with args; stderr into tmpdir/stderr. Exit status. */
static int run(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' --threads 2 --max-keypoints %d %s 2>'%s/stderr' >/dev/null", exe, MAX_KP, args,
             tmpdir);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *stderr_text(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/stderr", tmpdir);
    size_t n;
    char *s = read_file(path, &n);
    if (!s)
        return calloc(1, 1);
    char *t = realloc(s, n + 1);
    t[n] = '\0';
    return t;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        CHECK(0, "cannot open %s", path);
        return NULL;
    }
    return db;
}

static long long query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        CHECK(0, "%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return v;
}

/* COLMAP 3.8's tables and columns (src/base/database.cc). */
static void check_schema(sqlite3 *db)
{
    static const char *const expected[][2] = {
        {"cameras", "camera_id model width height params prior_focal_length"},
        {"images", "image_id name camera_id prior_qw prior_qx prior_qy prior_qz prior_tx prior_ty prior_tz"},
        {"keypoints", "image_id rows cols data"},
        {"descriptors", "image_id rows cols data"},
        {"matches", "pair_id rows cols data"},
        {"two_view_geometries", "pair_id rows cols data config F E H qvec tvec"},
    };
    for (size_t t = 0; t < sizeof expected / sizeof *expected; t++) {
        char sql[128], got[512] = "";
        snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", expected[t][0]);
        sqlite3_stmt *st;
        sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (got[0])
                strcat(got, " ");
            strncat(got, (const char *)sqlite3_column_text(st, 1), sizeof got - strlen(got) - 2);
        }
        sqlite3_finalize(st);
        CHECK(strcmp(got, expected[t][1]) == 0, "table %s: columns '%s', expected '%s'", expected[t][0], got,
              expected[t][1]);
    }
    CHECK(query_int(db, "PRAGMA user_version") == 3800, "user_version %lld", query_int(db, "PRAGMA user_version"));
    CHECK(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'index_name'") == 1, "no index_name");
}

typedef struct db_image {
    long long id, camera;
    char name[64];
    float *kp; /* rows x 6 */
    long long nkp;
} db_image;

/* Read images (by name order) with their keypoints, as rows of 6 (COLMAP's
 * 4-column rows (x, y, scale, orientation) are expanded here, written out
 * from COLMAP's FeatureKeypoint constructor). want_cols: the columns every
 * keypoints row must have. Returns their number. */
static int read_images_cols(sqlite3 *db, db_image *out, int max, int want_cols)
{
    sqlite3_stmt *st;
    int n = 0;
    sqlite3_prepare_v2(db,
                       "SELECT images.image_id, camera_id, name, rows, cols, data FROM images JOIN keypoints ON "
                       "keypoints.image_id = images.image_id ORDER BY name",
                       -1, &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW && n < max) {
        db_image *im = &out[n++];
        im->id = sqlite3_column_int64(st, 0);
        im->camera = sqlite3_column_int64(st, 1);
        snprintf(im->name, sizeof im->name, "%s", (const char *)sqlite3_column_text(st, 2));
        im->nkp = sqlite3_column_int64(st, 3);
        int cols = sqlite3_column_int(st, 4), bytes = sqlite3_column_bytes(st, 5);
        CHECK(want_cols ? cols == want_cols : cols == 4 || cols == 6, "%s: keypoints have %d columns", im->name, cols);
        CHECK(bytes == im->nkp * cols * 4, "%s: keypoint blob %d bytes for %lld rows", im->name, bytes, im->nkp);
        im->kp = malloc((size_t)im->nkp * 6 * sizeof *im->kp + 4);
        const float *in = sqlite3_column_blob(st, 5);
        for (long long r = 0; r < im->nkp && bytes == im->nkp * cols * 4; r++) {
            float *o = im->kp + 6 * r;
            if (cols == 6) {
                memcpy(o, in + 6 * r, 6 * sizeof *o);
            } else {
                const float *k = in + 4 * r;
                o[0] = k[0], o[1] = k[1];
                o[2] = k[2] * cosf(k[3]), o[3] = -k[2] * sinf(k[3]), o[4] = k[2] * sinf(k[3]), o[5] = k[2] * cosf(k[3]);
            }
        }
    }
    sqlite3_finalize(st);
    return n;
}

static int read_images(sqlite3 *db, db_image *out, int max)
{
    return read_images_cols(db, out, max, 6);
}

static void check_cameras_and_keypoints(sqlite3 *db, const db_image *im, int n)
{
    for (int k = 0; k < n; k++) {
        char sql[256];
        sqlite3_stmt *st;
        snprintf(sql, sizeof sql,
                 "SELECT model, width, height, params, prior_focal_length FROM cameras WHERE camera_id = %lld",
                 im[k].camera);
        sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        CHECK(sqlite3_step(st) == SQLITE_ROW, "%s: no camera %lld", im[k].name, im[k].camera);
        CHECK(sqlite3_column_int(st, 0) == 2, "%s: camera model %d, want 2 (SIMPLE_RADIAL)", im[k].name,
              sqlite3_column_int(st, 0));
        CHECK(sqlite3_column_int(st, 1) == W && sqlite3_column_int(st, 2) == H, "%s: camera %d x %d", im[k].name,
              sqlite3_column_int(st, 1), sqlite3_column_int(st, 2));
        CHECK(sqlite3_column_bytes(st, 3) == 32, "%s: params blob %d bytes", im[k].name, sqlite3_column_bytes(st, 3));
        if (sqlite3_column_bytes(st, 3) == 32) {
            double p[4];
            memcpy(p, sqlite3_column_blob(st, 3), sizeof p);
            CHECK(p[0] == 1.2 * W && p[1] == W / 2.0 && p[2] == H / 2.0 && p[3] == 0, "%s: params %g %g %g %g",
                  im[k].name, p[0], p[1], p[2], p[3]);
        }
        CHECK(sqlite3_column_int(st, 4) == 0, "%s: prior_focal_length %d", im[k].name, sqlite3_column_int(st, 4));
        sqlite3_finalize(st);
        for (int j = 0; j < k; j++)
            CHECK(im[j].camera != im[k].camera, "%s and %s share camera %lld", im[j].name, im[k].name, im[k].camera);

        /* The same keypoints as the C API's detector on the same image. */
        char path[256];
        snprintf(path, sizeof path, "%s/images/%s", tmpdir, im[k].name);
        mn_image img;
        CHECK_OK(mn_image_load(path, &img));
        static mn_keypoint kp[MAX_KP];
        size_t nkp = 0;
        CHECK_OK(mn_keypoints_detect(&img, MN_DETECTOR_SIFT, MAX_KP, kp, &nkp));
        mn_image_free(&img);
        CHECK((long long)nkp == im[k].nkp, "%s: %lld keypoints in the database, detector gives %zu", im[k].name,
              im[k].nkp, nkp);
        int bad = 0;
        for (size_t i = 0; i < nkp && (long long)i < im[k].nkp; i++) {
            const float *r = im[k].kp + 6 * i;
            double s = kp[i].size / 2, a = kp[i].angle * 3.14159265358979323846 / 180;
            double want[6] = {kp[i].x + 0.5, kp[i].y + 0.5, s * cos(a), -s * sin(a), s * sin(a), s * cos(a)};
            for (int c = 0; c < 6; c++)
                if (fabs(r[c] - want[c]) > 1e-3 * (1 + fabs(want[c])) && bad++ < 3)
                    fprintf(stderr, "%s keypoint %zu column %d: %g, want %g (OpenCV %g %g %g %g)\n", im[k].name, i,
                            c, r[c], want[c], kp[i].x, kp[i].y, kp[i].size, kp[i].angle);
        }
        CHECK(bad == 0, "%s: %d keypoint values differ", im[k].name, bad);
        snprintf(sql, sizeof sql, "SELECT rows * 1000 + cols FROM descriptors WHERE image_id = %lld", im[k].id);
        CHECK(query_int(db, sql) == 128, "%s: descriptors rows*1000+cols = %lld, want 0 x 128", im[k].name,
              query_int(db, sql));
    }
}

static const db_image *by_id(const db_image *im, int n, long long id)
{
    for (int k = 0; k < n; k++)
        if (im[k].id == id)
            return &im[k];
    return NULL;
}

/* Every pair once, valid ids, indices in range, and column 0 in the
 * smaller id's image: the ground truth scene maps most matches within 2 px. */
static void check_matches(sqlite3 *db, const db_image *im, int n, const char *table, int want_pairs)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pair_id, rows, cols, data FROM %s", table);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    int pairs = 0;
    long total = 0, good = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        long long pid = sqlite3_column_int64(st, 0), rows = sqlite3_column_int64(st, 1);
        long long id1 = pid / PAIR_ID_BASE, id2 = pid % PAIR_ID_BASE;
        const db_image *a = by_id(im, n, id1), *b = by_id(im, n, id2);
        pairs++;
        CHECK(a && b && id1 < id2, "%s: pair_id %lld decodes to images %lld, %lld", table, pid, id1, id2);
        CHECK(sqlite3_column_int(st, 2) == 2, "%s: pair %lld has %d columns", table, pid, sqlite3_column_int(st, 2));
        CHECK(sqlite3_column_bytes(st, 3) == rows * 8, "%s: pair %lld blob %d bytes for %lld rows", table, pid,
              sqlite3_column_bytes(st, 3), rows);
        if (!a || !b || sqlite3_column_bytes(st, 3) != rows * 8)
            continue;
        const uint32_t *m = sqlite3_column_blob(st, 3);
        int va = atoi(a->name + 4), vb = atoi(b->name + 4), out_of_range = 0;
        for (long long r = 0; r < rows; r++) {
            if (m[2 * r] >= a->nkp || m[2 * r + 1] >= b->nkp) {
                out_of_range++;
                continue;
            }
            const float *p = a->kp + 6 * m[2 * r], *q = b->kp + 6 * m[2 * r + 1];
            double X[3], u, v;
            trace(&views[va], p[0], p[1], X);
            project(&views[vb], X, &u, &v);
            total++;
            good += hypot(u - q[0], v - q[1]) < 2.0;
        }
        CHECK(out_of_range == 0, "%s: pair %s/%s: %d indices out of range", table, a->name, b->name, out_of_range);
    }
    sqlite3_finalize(st);
    CHECK(pairs == want_pairs, "%s: %d pairs, want %d", table, pairs, want_pairs);
    CHECK(total > 100 * pairs / 2 && good > 0.8 * total, "%s: %ld of %ld matches agree with the scene within 2 px",
          table, good, total);
    printf("%s: %d pairs, %ld matches, %ld agree with the scene within 2 px\n", table, pairs, total, good);
}

static void expect_refusal(const char *what, const char *setup_sql, const char *want)
{
    char db_path[128], args[512];
    snprintf(db_path, sizeof db_path, "%s/foreign.db", tmpdir);
    unlink(db_path);
    sqlite3 *db = open_db(db_path);
    if (!db)
        return;
    CHECK(sqlite3_exec(db, setup_sql, NULL, NULL, NULL) == SQLITE_OK, "%s: setup: %s", what, sqlite3_errmsg(db));
    sqlite3_close(db);
    snprintf(args, sizeof args, "--images '%s/images' --database '%s'", tmpdir, db_path);
    int rc = run(args);
    char *err = stderr_text();
    CHECK(rc == 1, "%s: exit status %d, want 1", what, rc);
    CHECK(count_lines(err) == 1 && strncmp(err, "matchnet-colmap: ", 17) == 0 && strstr(err, want),
          "%s: stderr '%s', want one line with '%s'", what, err, want);
    free(err);
}

/* ------------------------------------------------------------------------ */
/* --reuse-keypoints on a database made by colmap feature_extractor          */
/* ------------------------------------------------------------------------ */

/* Every value of every row a query returns, concatenated: a table's
 * content to compare before and after. */
static char *table_dump(sqlite3 *db, const char *sql, size_t *len)
{
    sqlite3_stmt *st;
    size_t n = 0, cap = 1024;
    char *out = malloc(cap);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        CHECK(0, "%s: %s", sql, sqlite3_errmsg(db));
        *len = 0;
        return out;
    }
    while (sqlite3_step(st) == SQLITE_ROW)
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const void *v = sqlite3_column_blob(st, c);
            size_t b = (size_t)sqlite3_column_bytes(st, c);
            while (n + b + 1 > cap)
                out = realloc(out, cap *= 2);
            if (b)
                memcpy(out + n, v, b);
            n += b;
            out[n++] = '|';
        }
    sqlite3_finalize(st);
    *len = n;
    return out;
}

static int same_dump(sqlite3 *db, const char *sql, const char *before, size_t before_len)
{
    size_t len;
    char *now = table_dump(db, sql, &len);
    int same = len == before_len && memcmp(now, before, len) == 0;
    free(now);
    return same;
}

static const char *const colmap_tables[] = {
    "SELECT image_id, rows, cols, data FROM keypoints ORDER BY image_id",
    "SELECT image_id, rows, cols, data FROM descriptors ORDER BY image_id",
    "SELECT * FROM cameras ORDER BY camera_id",
    "SELECT * FROM images ORDER BY image_id",
};
#define N_COLMAP_TABLES (sizeof colmap_tables / sizeof *colmap_tables)
#define MATCHES_SQL "SELECT pair_id, rows, cols, data FROM matches ORDER BY pair_id"

/* The tables colmap feature_extractor wrote are as they were. */
static void check_colmap_tables(sqlite3 *db, char *const *dump, const size_t *len, const char *when)
{
    for (size_t t = 0; t < N_COLMAP_TABLES; t++)
        CHECK(same_dump(db, colmap_tables[t], dump[t], len[t]), "%s: '%s' changed", when, colmap_tables[t]);
}

static void free_images(db_image *im, int n)
{
    for (int k = 0; k < n; k++)
        free(im[k].kp);
}

/* Write an image's keypoint rows as COLMAP's older 4 columns (x, y, scale,
 * orientation). */
static void make_rows_4(sqlite3 *db, const db_image *v)
{
    float *r4 = malloc((size_t)v->nkp * 4 * sizeof *r4 + 4);
    for (long long r = 0; r < v->nkp; r++) {
        const float *k6 = v->kp + 6 * r;
        r4[4 * r] = k6[0];
        r4[4 * r + 1] = k6[1];
        r4[4 * r + 2] = hypotf(k6[2], k6[4]);
        r4[4 * r + 3] = atan2f(k6[4], k6[2]);
    }
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "UPDATE keypoints SET cols = 4, data = ? WHERE image_id = ?", -1, &st, NULL);
    sqlite3_bind_blob(st, 1, r4, (int)(v->nkp * 16), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, v->id);
    CHECK(sqlite3_step(st) == SQLITE_DONE, "cannot write 4-column keypoints: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    free(r4);
}

static int reuse_run(const char *images, const char *db_path, const char *more)
{
    char args[1024];
    snprintf(args, sizeof args, "--images '%s' --database '%s' --reuse-keypoints %s", images, db_path, more);
    return run(args);
}

/* Run colmap feature_extractor (cmd, which writes db_path) under a time
 * limit: COLMAP 3.8's feature_extractor now and then hangs after its work
 * is done (its thread pool's shutdown), so a run that does not end is
 * killed and retried with a fresh database. Returns 0 when one succeeded. */
static int run_colmap_extractor(const char *cmd, const char *db_path)
{
    char full[2048], rm[512];
    snprintf(full, sizeof full, "timeout -s KILL 120 %s", cmd);
    snprintf(rm, sizeof rm, "rm -f '%s' '%s-wal' '%s-shm'", db_path, db_path, db_path);
    for (int attempt = 0; attempt < 3; attempt++) {
        if (system(rm) != 0)
            return -1;
        int st = system(full);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            return 0;
        if (!WIFEXITED(st) || (WEXITSTATUS(st) != 137 && WEXITSTATUS(st) != 124))
            return -1;
        fprintf(stderr, "colmap feature_extractor did not end in 120 s; retried\n");
    }
    return -1;
}

static int run_reuse_checks(const char *colmap)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_colmap_reuse.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    char images[128], db_path[128], cmd[1024];
    snprintf(images, sizeof images, "%s/images", tmpdir);
    snprintf(db_path, sizeof db_path, "%s/colmap.db", tmpdir);
    mkdir(images, 0777);
    CHECK(render(images) == 0, "cannot render the views into %s", images);

    /* A database missing: refused, none made. */
    int rc = reuse_run(images, db_path, "");
    CHECK(rc == 2 && access(db_path, F_OK) != 0, "--reuse-keypoints without a database: status %d", rc);

    snprintf(cmd, sizeof cmd,
             "env QT_QPA_PLATFORM=offscreen '%s' feature_extractor --database_path '%s' --image_path '%s' "
             "--SiftExtraction.use_gpu 0 --SiftExtraction.num_threads 1 --SiftExtraction.max_num_features 1000 "
             ">'%s/colmap.log' 2>&1",
             colmap, db_path, images, tmpdir);
    CHECK(run_colmap_extractor(cmd, db_path) == 0, "%s failed (log in %s)", cmd, tmpdir);
    /* A file colmap has not seen: skipped, reported. */
    snprintf(cmd, sizeof cmd, "cp '%s/view0.pgm' '%s/zz_extra.pgm'", images, images);
    CHECK(system(cmd) == 0, "%s", cmd);

    sqlite3 *db = open_db(db_path);
    if (!db)
        return check_summary("test_colmap_reuse");
    char *dump[N_COLMAP_TABLES];
    size_t len[N_COLMAP_TABLES];
    for (size_t t = 0; t < N_COLMAP_TABLES; t++)
        dump[t] = table_dump(db, colmap_tables[t], &len[t]);
    CHECK(query_int(db, "SELECT count(*) FROM keypoints WHERE cols = 6") == NVIEWS &&
              query_int(db, "SELECT count(*) FROM descriptors WHERE cols = 128 AND rows > 100") == NVIEWS,
          "colmap feature_extractor did not store 6-column keypoints and SIFT descriptors for %d views", NVIEWS);
    sqlite3_close(db);

    /* 1. Describe COLMAP's keypoints and match every pair. */
    rc = reuse_run(images, db_path, "");
    char *err = stderr_text();
    CHECK(rc == 0, "--reuse-keypoints: status %d: %s", rc, err);
    CHECK(strstr(err, "skipping 'zz_extra.pgm': not in the database") &&
              strstr(err, "5 images (0 new, 0 unreadable skipped, COLMAP's keypoints, 1 not in the database skipped), "
                          "10 pairs (10 matched now"),
          "--reuse-keypoints: stderr '%s'", err);
    free(err);
    db_image im[NVIEWS + 1];
    int n = 0;
    char *matches = NULL;
    size_t matches_len = 0;
    make_views();
    if ((db = open_db(db_path)) != NULL) {
        check_colmap_tables(db, dump, len, "--reuse-keypoints");
        CHECK(query_int(db, "SELECT count(*) FROM images") == NVIEWS, "images added");
        CHECK(query_int(db, "SELECT count(*) FROM keypoints JOIN descriptors USING(image_id) WHERE "
                            "keypoints.rows = descriptors.rows") == NVIEWS,
              "keypoint rows no longer those of COLMAP's descriptors");
        n = read_images(db, im, NVIEWS + 1);
        CHECK(n == NVIEWS, "%d images with keypoints", n);
        /* Indices in range, each pair once, matches agree with the scene. */
        check_matches(db, im, n, "matches", NVIEWS * (NVIEWS - 1) / 2);
        CHECK(query_int(db, "SELECT count(*) FROM two_view_geometries") == 0, "two-view geometries written");
        matches = table_dump(db, MATCHES_SQL, &matches_len);
        /* Spoil one pair's matches, to see --replace-matches write them again. */
        CHECK(sqlite3_exec(db, "UPDATE matches SET rows = 1, data = zeroblob(8) WHERE pair_id = 2147483649", NULL, NULL,
                           NULL) == SQLITE_OK,
              "cannot update matches: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
    }

    /* 2. A rerun skips every pair (the spoilt one has matches too). */
    rc = reuse_run(images, db_path, "");
    err = stderr_text();
    CHECK(rc == 0 && strstr(err, "10 pairs (0 matched now"), "rerun: status %d, stderr '%s'", rc, err);
    free(err);
    if ((db = open_db(db_path)) != NULL) {
        CHECK(query_int(db, "SELECT rows FROM matches WHERE pair_id = 2147483649") == 1, "rerun rewrote a pair");
        sqlite3_close(db);
    }

    /* 3. --replace-matches --verify own: every pair again, the same matches
     * as the first time (the descriptors are the same), geometries written. */
    rc = reuse_run(images, db_path, "--replace-matches --verify own");
    err = stderr_text();
    CHECK(rc == 0 && strstr(err, "10 pairs (10 matched now"), "--replace-matches: status %d, stderr '%s'", rc, err);
    free(err);
    if ((db = open_db(db_path)) != NULL) {
        check_colmap_tables(db, dump, len, "--replace-matches");
        CHECK(matches && same_dump(db, MATCHES_SQL, matches, matches_len),
              "--replace-matches: the matches are not those of the first run");
        CHECK(query_int(db, "SELECT count(*) FROM two_view_geometries WHERE config = 3") == 10,
              "--verify own: %lld verified pairs", query_int(db, "SELECT count(*) FROM two_view_geometries WHERE config = 3"));
        sqlite3_close(db);
    }

    /* 4. --replace-matches (COLMAP verifies): the old geometries go, since
     * they belong to the matches being replaced. */
    rc = reuse_run(images, db_path, "--replace-matches --pairs sequential:1");
    err = stderr_text();
    CHECK(rc == 0 && strstr(err, "4 pairs (4 matched now"), "--replace-matches sequential:1: status %d, stderr '%s'",
          rc, err);
    free(err);
    if ((db = open_db(db_path)) != NULL) {
        CHECK(query_int(db, "SELECT count(*) FROM two_view_geometries") == 6,
              "--replace-matches: %lld geometries left, want the 6 pairs not matched again",
              query_int(db, "SELECT count(*) FROM two_view_geometries"));
        /* 5. COLMAP's older 4-column rows (x, y, scale, orientation) for one
         * view: every row still described, matches still right. */
        free_images(im, n);
        n = read_images(db, im, NVIEWS + 1);
        const db_image *v2 = NULL;
        for (int k = 0; k < n; k++)
            if (strcmp(im[k].name, "view2.pgm") == 0)
                v2 = &im[k];
        if (v2)
            make_rows_4(db, v2);
        CHECK(v2 != NULL, "view2.pgm not in the database");
        CHECK(sqlite3_exec(db, "DELETE FROM matches; DELETE FROM two_view_geometries", NULL, NULL, NULL) == SQLITE_OK,
              "cannot clear the matches");
        sqlite3_close(db);
    }
    rc = reuse_run(images, db_path, "");
    err = stderr_text();
    CHECK(rc == 0 && strstr(err, "10 pairs (10 matched now"), "4-column keypoints: status %d, stderr '%s'", rc, err);
    free(err);
    if ((db = open_db(db_path)) != NULL) {
        db_image im4[NVIEWS + 1];
        int n4 = read_images_cols(db, im4, NVIEWS + 1, 0);
        CHECK(query_int(db, "SELECT cols FROM keypoints JOIN images USING(image_id) WHERE name = 'view2.pgm'") == 4,
              "view2's 4-column keypoints were rewritten");
        check_matches(db, im4, n4, "matches", NVIEWS * (NVIEWS - 1) / 2);
        free_images(im4, n4);
        free(matches);
        matches = table_dump(db, MATCHES_SQL, &matches_len);
        sqlite3_close(db);
    }

    /* 6. --affine on COLMAP's similarity rows (and view2's 4 columns):
     * ellipses estimated, so other matches, still right; rows untouched. */
    char *rows_before = NULL, *rows_after;
    size_t rows_len = 0;
    if ((db = open_db(db_path)) != NULL) {
        rows_before = table_dump(db, colmap_tables[0], &rows_len);
        sqlite3_close(db);
    }
    rc = reuse_run(images, db_path, "--affine --replace-matches");
    err = stderr_text();
    CHECK(rc == 0 && strstr(err, "10 pairs (10 matched now"), "--affine: status %d, stderr '%s'", rc, err);
    free(err);
    if ((db = open_db(db_path)) != NULL) {
        db_image ima[NVIEWS + 1];
        int na = read_images_cols(db, ima, NVIEWS + 1, 0);
        size_t len_after;
        rows_after = table_dump(db, colmap_tables[0], &len_after);
        CHECK(rows_before && len_after == rows_len && memcmp(rows_after, rows_before, rows_len) == 0,
              "--affine: COLMAP's keypoints changed");
        free(rows_after);
        CHECK(matches && !same_dump(db, MATCHES_SQL, matches, matches_len),
              "--affine: the matches of similarity rows are those without --affine (no ellipse estimated?)");
        check_matches(db, ima, na, "matches", NVIEWS * (NVIEWS - 1) / 2);
        free_images(ima, na);
        sqlite3_close(db);
    }
    free(rows_before);

    free_images(im, n);
    free(matches);
    for (size_t t = 0; t < N_COLMAP_TABLES; t++)
        free(dump[t]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (check_failures == 0 && system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    return check_summary("test_colmap_reuse");
}

/* ------------------------------------------------------------------------ */
/* --affine                                                                  */
/* ------------------------------------------------------------------------ */

/* The matches of a database's only pair (malloc'ed rows x 2), or NULL. */
static uint32_t *only_pair_matches(const char *db_path, long long *rows)
{
    sqlite3 *db = open_db(db_path);
    uint32_t *m = NULL;
    *rows = 0;
    if (!db)
        return NULL;
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT rows, data FROM matches", -1, &st, NULL);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) == sqlite3_column_int64(st, 0) * 8) {
        *rows = sqlite3_column_int64(st, 0);
        m = malloc((size_t)*rows * 8 + 8);
        memcpy(m, sqlite3_column_blob(st, 1), (size_t)*rows * 8);
    }
    CHECK(m && sqlite3_step(st) == SQLITE_DONE, "%s: want the matches of one pair", db_path);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return m;
}

/* The matches of a --reuse-keypoints --affine run (got) are the --affine
 * run's (want): each set within 1% of the other (the rows' frames
 * reach the descriptors through +0.5 and back, or are estimated again
 * from circles; describing circles instead keeps about 95%). */
static void check_same_matches(const char *what, const uint32_t *got, long long ng, const uint32_t *want,
                               long long nw)
{
    long long common = 0;
    for (long long i = 0; i < ng; i++)
        for (long long j = 0; j < nw; j++)
            if (got[2 * i] == want[2 * j] && got[2 * i + 1] == want[2 * j + 1]) {
                common++;
                break;
            }
    CHECK(nw > 100 && common >= 0.99 * ng && common >= 0.99 * nw,
          "%s: %lld matches, %lld of them among the %lld of the --affine run", what, ng, common, nw);
    printf("%s: %lld matches, %lld of them among the %lld of the --affine run\n", what, ng, common, nw);
}

static float half_to_float(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? INFINITY : ldexpf((float)(m | 0x400), e - 25);
    return h & 0x8000 ? -v : v;
}

/* The store file of an image: its flags word and (flag 1) its ellipses
 * and float16 descriptors as floats, read by the layout colmap_store.c
 * documents. Returns nkp, or -1. */
static long long read_store_file(const char *store, const char *name, size_t dim, uint32_t *flags,
                                 mn_affine_keypoint **akp, float **desc)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    char path[256];
    snprintf(path, sizeof path, "%s/%016llx.mnd", store, (unsigned long long)h);
    size_t n;
    unsigned char *f = read_file(path, &n);
    *akp = NULL;
    *desc = NULL;
    if (!f || n < 88) {
        CHECK(0, "no store file %s for %s", path, name);
        free(f);
        return -1;
    }
    uint64_t nkp;
    uint32_t len;
    memcpy(flags, f + 76, 4);
    memcpy(&nkp, f + 64, 8);
    memcpy(&len, f + 72, 4);
    size_t off = 80 + ((len + 3u) & ~3u);
    if (*flags != 1 || n != off + nkp * (24 + 2 * dim) + 8) {
        free(f);
        return (long long)nkp;
    }
    *akp = malloc(nkp * 24 + 1);
    *desc = malloc(nkp * dim * sizeof **desc + 1);
    memcpy(*akp, f + off, nkp * 24);
    for (size_t i = 0; i < nkp * dim; i++) {
        uint16_t v;
        memcpy(&v, f + off + nkp * 24 + 2 * i, 2);
        (*desc)[i] = half_to_float(v);
    }
    free(f);
    return (long long)nkp;
}

/* An --affine database and store of the views in dir: 6-column rows that
 * are mn_affine_shape_estimate()'s ellipses of the detector's keypoints
 * (+0.5), many of them anisotropic, and store descriptors that are
 * mn_describe_keypoints_affine()'s of those rows, rounded to float16. */
static void check_affine_rows(const char *db_path, const char *dir, const char *store)
{
    sqlite3 *db = open_db(db_path);
    if (!db)
        return;
    db_image im[2];
    int n = read_images(db, im, 2);
    sqlite3_close(db);
    CHECK(n == 2, "--affine: %d images with keypoints", n);
    mn_model *model = NULL;
    mn_session *session = NULL;
    CHECK_OK(mn_model_load_default(&model));
    CHECK_OK(mn_session_create(model, NULL, &session));
    size_t dim = model ? mn_model_descriptor_dim(model) : 0;
    mn_extract_params ep = mn_extract_params_default();
    ep.scale_factor = mn_detector_scale_factor(MN_DETECTOR_SIFT);
    for (int k = 0; k < n && session; k++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, im[k].name);
        mn_image img;
        CHECK_OK(mn_image_load(path, &img));
        static mn_keypoint kp[MAX_KP];
        static mn_affine_keypoint want[MAX_KP];
        size_t nkp = 0;
        CHECK_OK(mn_keypoints_detect(&img, MN_DETECTOR_SIFT, MAX_KP, kp, &nkp));
        CHECK_OK(mn_affine_shape_estimate(NULL, img.pixels, img.width, img.height, img.stride, kp, nkp, NULL, want,
                                          NULL));
        CHECK((long long)nkp == im[k].nkp, "--affine: %s: %lld rows, the detector gives %zu", im[k].name, im[k].nkp,
              nkp);
        int bad = 0, anisotropic = 0;
        for (size_t i = 0; i < nkp && (long long)i < im[k].nkp; i++) {
            /* The same bits: the same image, estimation and +0.5. */
            const float *r = im[k].kp + 6 * i;
            const float w[6] = {want[i].x + 0.5f, want[i].y + 0.5f, want[i].a11, want[i].a12, want[i].a21, want[i].a22};
            for (int c = 0; c < 6; c++)
                if (r[c] != w[c] && bad++ < 3)
                    fprintf(stderr, "--affine: %s keypoint %zu column %d: %.9g, want %.9g\n", im[k].name, i, c, r[c],
                            w[c]);
            /* The axes' ratio from A A^T's eigenvalues. */
            double p = r[2] * r[2] + r[3] * r[3], q = r[4] * r[4] + r[5] * r[5], o = r[2] * r[4] + r[3] * r[5];
            double d = sqrt((p - q) * (p - q) / 4 + o * o), l1 = (p + q) / 2 + d, l2 = (p + q) / 2 - d;
            anisotropic += l2 > 0 && sqrt(l1 / l2) > 1.3;
        }
        CHECK(bad == 0, "--affine: %s: %d keypoint values are not mn_affine_shape_estimate()'s", im[k].name, bad);
        CHECK(anisotropic > im[k].nkp / 5, "--affine: %s: %d of %lld ellipses have axes more than 1.3:1",
              im[k].name, anisotropic, im[k].nkp);
        printf("--affine: %s: %d of %lld ellipses have axes more than 1.3:1\n", im[k].name, anisotropic, im[k].nkp);

        uint32_t flags = 0;
        mn_affine_keypoint *sk;
        float *sd, *wd = malloc((nkp ? nkp : 1) * dim * sizeof *wd);
        long long sn = read_store_file(store, im[k].name, dim, &flags, &sk, &sd);
        CHECK(flags == 1 && sk && sn == (long long)nkp, "--affine: %s: store file flags %u, %lld keypoints", im[k].name,
              flags, sn);
        if (sk && sn == (long long)nkp) {
            /* The store's ellipses are the rows (less 0.5), described here. */
            int differ = 0;
            for (size_t i = 0; i < nkp && (long long)i < im[k].nkp; i++) {
                const float *r = im[k].kp + 6 * i;
                differ += sk[i].x + 0.5f != r[0] || sk[i].y + 0.5f != r[1] || sk[i].a11 != r[2] ||
                          sk[i].a12 != r[3] || sk[i].a21 != r[4] || sk[i].a22 != r[5];
            }
            CHECK(differ == 0, "--affine: %s: %d of the store's ellipses are not the database's", im[k].name, differ);
            CHECK_OK(mn_describe_keypoints_affine(session, img.pixels, img.width, img.height, img.stride, sk, nkp, &ep,
                                                  wd));
            size_t off = 0;
            int far = 0;
            for (size_t i = 0; i < nkp * dim; i++)
                if (fabsf(sd[i] - wd[i]) > fabsf(wd[i]) / 1024 + 1e-6f && far++ == 0)
                    off = i;
            CHECK(far == 0, "--affine: %s: %d store descriptor values differ from mn_describe_keypoints_affine()'s "
                  "by more than float16 rounding (first: keypoint %zu value %zu, %g for %g)", im[k].name, far,
                  off / dim, off % dim, far ? sd[off] : 0.0, far ? wd[off] : 0.0);
        }
        free(sk);
        free(sd);
        free(wd);
        mn_image_free(&img);
    }
    mn_session_free(session);
    mn_model_free(model);
    free_images(im, n);
}

/* --affine on the two views in dir (1 pair): with --store after a run
 * without it on the same store, then without again (each made the other's
 * files again), in memory, and --reuse-keypoints --affine on its rows and
 * on the similarity rows (6 and 4 columns) of the run without it. */
static void check_affine(const char *dir)
{
    char args[1024], plain[128], plain2[128], affst[128], aff[128], reuse_aff[128], reuse_sim[128], store[128],
        cmd[512];
    snprintf(plain, sizeof plain, "%s/plain.db", tmpdir);
    snprintf(plain2, sizeof plain2, "%s/plain2.db", tmpdir);
    snprintf(affst, sizeof affst, "%s/affst.db", tmpdir);
    snprintf(aff, sizeof aff, "%s/aff.db", tmpdir);
    snprintf(reuse_aff, sizeof reuse_aff, "%s/reuse_aff.db", tmpdir);
    snprintf(reuse_sim, sizeof reuse_sim, "%s/reuse_sim.db", tmpdir);
    snprintf(store, sizeof store, "%s/affstore", tmpdir);
    const struct {
        const char *db, *affine, *store;
    } runs[4] = {{plain, "", store}, {affst, "--affine", store}, {plain2, "", store}, {aff, "--affine", NULL}};
    for (int r = 0; r < 4; r++) {
        snprintf(args, sizeof args, "--images '%s' --database '%s' %s %s %s", dir, runs[r].db, runs[r].affine,
                 runs[r].store ? "--store" : "", runs[r].store ? runs[r].store : "");
        int rc = run(args);
        CHECK(rc == 0, "%s: status %d", args, rc);
        if (r == 1) /* before the next run makes the store files again */
            check_affine_rows(affst, dir, store);
    }
    /* Without --affine again on the --affine store: the similarity rows. */
    char *dump = NULL;
    size_t len = 0;
    sqlite3 *db = open_db(plain);
    if (db) {
        dump = table_dump(db, colmap_tables[0], &len);
        sqlite3_close(db);
    }
    if ((db = open_db(plain2)) != NULL) {
        CHECK(len > 1000 && same_dump(db, colmap_tables[0], dump, len),
              "without --affine on a store made with it: keypoints differ from the first run's");
        sqlite3_close(db);
    }
    free(dump);

    long long n_want = 0, n_got = 0;
    uint32_t *want = only_pair_matches(aff, &n_want), *got;
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cp '%s' '%s'", aff, reuse_aff, plain, reuse_sim);
    CHECK(system(cmd) == 0, "%s", cmd);
    if ((db = open_db(reuse_sim)) != NULL) {
        db_image im[2];
        int n = read_images(db, im, 2);
        if (n == 2)
            make_rows_4(db, &im[1]);
        CHECK(n == 2, "%s: %d images", reuse_sim, n);
        free_images(im, n);
        sqlite3_close(db);
    }
    const char *reuse[2] = {reuse_aff, reuse_sim};
    const char *what[2] = {"--reuse-keypoints --affine on --affine's rows",
                           "--reuse-keypoints --affine on similarity rows of 6 and 4 columns"};
    for (int r = 0; r < 2; r++) {
        if ((db = open_db(reuse[r])) != NULL) {
            CHECK(sqlite3_exec(db, "DELETE FROM matches; DELETE FROM two_view_geometries", NULL, NULL, NULL) ==
                      SQLITE_OK,
                  "cannot clear the matches");
            sqlite3_close(db);
        }
        snprintf(args, sizeof args, "--images '%s' --database '%s' --reuse-keypoints --affine", dir, reuse[r]);
        int rc = run(args);
        CHECK(rc == 0, "%s: status %d", args, rc);
        got = only_pair_matches(reuse[r], &n_got);
        check_same_matches(what[r], got, n_got, want, n_want);
        free(got);
    }
    free(want);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--render") == 0)
        return render(argv[2]) == 0 ? 0 : 1;
    if (argc == 4 && strcmp(argv[2], "--colmap") == 0) {
        exe = argv[1];
        return run_reuse_checks(argv[3]);
    }
    if (argc != 2) {
        fprintf(stderr, "usage: test_colmap PATH/TO/matchnet-colmap [--colmap PATH/TO/colmap] | --render DIR\n");
        return 2;
    }
    exe = argv[1];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_colmap.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    char images[128], sub[128], db_path[128], args[512], cmd[256];
    snprintf(images, sizeof images, "%s/images", tmpdir);
    snprintf(sub, sizeof sub, "%s/first", tmpdir);
    snprintf(db_path, sizeof db_path, "%s/db.db", tmpdir);
    mkdir(images, 0777);
    mkdir(sub, 0777);
    CHECK(render(images) == 0, "cannot render the views into %s", images);

    /* Usage errors: exit 2, one line. */
    int rc = run("--images");
    char *err = stderr_text();
    CHECK(rc == 2 && count_lines(err) == 1 && strncmp(err, "matchnet-colmap: ", 17) == 0,
          "missing value: status %d, stderr '%s'", rc, err);
    free(err);
    snprintf(args, sizeof args, "--images '%s' --database '%s' --pairs sequential:0", images, db_path);
    rc = run(args);
    CHECK(rc == 2, "sequential:0: status %d", rc);

    /* First run on view4 alone, so that it gets image id 1 and the pairs
     * (viewK, view4) have their ids in the opposite order of their names. */
    snprintf(cmd, sizeof cmd, "cp '%s/view4.pgm' '%s/'", images, sub);
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(args, sizeof args, "--images '%s' --database '%s' --verify own", sub, db_path);
    CHECK((rc = run(args)) == 0, "first run: status %d", rc);

    /* Then all views and an unreadable file: resumed, view4 not duplicated. */
    snprintf(cmd, sizeof cmd, "echo 'not an image' > '%s/broken.png'", images);
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(args, sizeof args, "--images '%s' --database '%s' --verify own", images, db_path);
    CHECK((rc = run(args)) == 0, "second run: status %d", rc);
    err = stderr_text();
    CHECK(strstr(err, "skipping 'broken.png'") && strstr(err, "1 unreadable"), "stderr does not report broken.png: %s",
          err);
    free(err);

    make_views();
    sqlite3 *db = open_db(db_path);
    db_image im[NVIEWS + 1];
    int n = 0;
    if (db) {
        check_schema(db);
        n = read_images(db, im, NVIEWS + 1);
        CHECK(n == NVIEWS, "%d images with keypoints, want %d", n, NVIEWS);
        CHECK(query_int(db, "SELECT count(*) FROM images") == NVIEWS, "images has %lld rows",
              query_int(db, "SELECT count(*) FROM images"));
        CHECK(query_int(db, "SELECT image_id FROM images WHERE name = 'view4.pgm'") == 1, "view4 is not image 1");
        check_cameras_and_keypoints(db, im, n);
        check_matches(db, im, n, "matches", NVIEWS * (NVIEWS - 1) / 2);
        check_matches(db, im, n, "two_view_geometries", NVIEWS * (NVIEWS - 1) / 2);
        CHECK(query_int(db, "SELECT count(*) FROM two_view_geometries WHERE config = 3") == NVIEWS * (NVIEWS - 1) / 2,
              "not every pair verified (config 3)");
        sqlite3_close(db);
    }

    /* A third run adds nothing. */
    CHECK((rc = run(args)) == 0, "third run: status %d", rc);
    err = stderr_text();
    CHECK(strstr(err, "(0 new, 1 unreadable skipped), 10 pairs (0 matched now"), "third run did work: %s", err);
    free(err);
    if ((db = open_db(db_path)) != NULL) {
        CHECK(query_int(db, "SELECT count(*) FROM images") == NVIEWS, "images duplicated");
        CHECK(query_int(db, "SELECT count(*) FROM cameras") == NVIEWS, "cameras duplicated");
        CHECK(query_int(db, "SELECT count(*) FROM keypoints") == NVIEWS, "keypoints duplicated");
        CHECK(query_int(db, "SELECT count(*) FROM matches") == 10, "matches duplicated");
        sqlite3_close(db);
    }

    /* --single-camera: one camera for images of the same size (two views
     * in a folder of their own, to keep the test short). */
    snprintf(cmd, sizeof cmd, "mkdir '%s/two' && cp '%s/view0.pgm' '%s/view1.pgm' '%s/two/'", tmpdir, images, images,
             tmpdir);
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(args, sizeof args, "--images '%s/two' --database '%s/single.db' --single-camera --pairs sequential:1",
             tmpdir, tmpdir);
    CHECK((rc = run(args)) == 0, "--single-camera: status %d", rc);
    snprintf(db_path, sizeof db_path, "%s/single.db", tmpdir);
    if ((db = open_db(db_path)) != NULL) {
        CHECK(query_int(db, "SELECT count(*) FROM cameras") == 1, "--single-camera: %lld cameras",
              query_int(db, "SELECT count(*) FROM cameras"));
        CHECK(query_int(db, "SELECT count(DISTINCT camera_id) FROM images") == 1, "--single-camera: images use "
              "several cameras");
        CHECK(query_int(db, "SELECT count(*) FROM matches") == 1, "sequential:1: %lld pairs",
              query_int(db, "SELECT count(*) FROM matches"));
        sqlite3_close(db);
    }

    /* --max-size: detected and described on a 200 x 150 copy (mn_image_resize),
     * stored in full-resolution coordinates: keypoints beyond the copy's
     * width, and matches that agree with the full-size scene. */
    snprintf(args, sizeof args, "--images '%s/two' --database '%s/small.db' --max-size 200", tmpdir, tmpdir);
    CHECK((rc = run(args)) == 0, "--max-size: status %d", rc);
    snprintf(db_path, sizeof db_path, "%s/small.db", tmpdir);
    if ((db = open_db(db_path)) != NULL) {
        db_image sm[2];
        int ns = read_images(db, sm, 2);
        CHECK(ns == 2, "--max-size: %d images with keypoints", ns);
        for (int k = 0; k < ns; k++) {
            float max_x = 0;
            int outside = 0;
            for (long long i = 0; i < sm[k].nkp; i++) {
                const float *r = sm[k].kp + 6 * i;
                max_x = r[0] > max_x ? r[0] : max_x;
                outside += !(r[0] >= 0 && r[0] <= W && r[1] >= 0 && r[1] <= H);
            }
            CHECK(sm[k].nkp > 50 && max_x > 250 && outside == 0,
                  "--max-size: %s: %lld keypoints, largest x %g, %d outside %d x %d", sm[k].name, sm[k].nkp, max_x,
                  outside, W, H);
        }
        check_matches(db, sm, ns, "matches", 1);
        for (int k = 0; k < ns; k++)
            free(sm[k].kp);
        sqlite3_close(db);
    }

    char two[160];
    snprintf(two, sizeof two, "%s/two", tmpdir);
    check_affine(two);

    /* Foreign databases are refused. */
    expect_refusal("missing table", "CREATE TABLE cameras(camera_id INTEGER, model INTEGER)", "not a COLMAP 3.8 database");
    expect_refusal("other columns",
                   "CREATE TABLE cameras(camera_id INTEGER, model INTEGER, width INTEGER, height INTEGER, params BLOB,"
                   " prior_focal_length INTEGER);"
                   "CREATE TABLE images(image_id INTEGER, name TEXT, camera_id INTEGER);",
                   "table 'images' has columns");

    for (int k = 0; k < n; k++)
        free(im[k].kp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (check_failures == 0 && system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    return check_summary("test_colmap");
}
