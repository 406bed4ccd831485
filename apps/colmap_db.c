/*
 * colmap_db.c - COLMAP 3.8 database access for matchnet-colmap (layout in
 * colmap_db.h).
 */
#define _DEFAULT_SOURCE /* flock, with POSIX.1-2008 */
#include "colmap_db.h"

#include "colmap_convert.h"
#include "test_point.h"

#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* COLMAP_VERSION_NUMBER of 3.8, which its Database::UpdateSchema() stores. */
#define COLMAP_USER_VERSION 3800

struct colmap_db {
    sqlite3 *sql;
    int in_transaction;
    int lock_fd; /* the database file, flock()ed for the whole run; -1 without */
};

/* COLMAP 3.8's CREATE statements (src/base/database.cc), verbatim. */
static const char *const schema_sql[] = {
    "CREATE TABLE IF NOT EXISTS cameras"
    "   (camera_id            INTEGER  PRIMARY KEY AUTOINCREMENT  NOT NULL,"
    "    model                INTEGER                             NOT NULL,"
    "    width                INTEGER                             NOT NULL,"
    "    height               INTEGER                             NOT NULL,"
    "    params               BLOB,"
    "    prior_focal_length   INTEGER                             NOT NULL)",
    "CREATE TABLE IF NOT EXISTS images"
    "   (image_id   INTEGER  PRIMARY KEY AUTOINCREMENT  NOT NULL,"
    "    name       TEXT                                NOT NULL UNIQUE,"
    "    camera_id  INTEGER                             NOT NULL,"
    "    prior_qw   REAL,"
    "    prior_qx   REAL,"
    "    prior_qy   REAL,"
    "    prior_qz   REAL,"
    "    prior_tx   REAL,"
    "    prior_ty   REAL,"
    "    prior_tz   REAL,"
    "CONSTRAINT image_id_check CHECK(image_id >= 0 and image_id < 2147483647),"
    "FOREIGN KEY(camera_id) REFERENCES cameras(camera_id))",
    "CREATE UNIQUE INDEX IF NOT EXISTS index_name ON images(name)",
    "CREATE TABLE IF NOT EXISTS keypoints"
    "   (image_id  INTEGER  PRIMARY KEY  NOT NULL,"
    "    rows      INTEGER               NOT NULL,"
    "    cols      INTEGER               NOT NULL,"
    "    data      BLOB,"
    "FOREIGN KEY(image_id) REFERENCES images(image_id) ON DELETE CASCADE)",
    "CREATE TABLE IF NOT EXISTS descriptors"
    "   (image_id  INTEGER  PRIMARY KEY  NOT NULL,"
    "    rows      INTEGER               NOT NULL,"
    "    cols      INTEGER               NOT NULL,"
    "    data      BLOB,"
    "FOREIGN KEY(image_id) REFERENCES images(image_id) ON DELETE CASCADE)",
    "CREATE TABLE IF NOT EXISTS matches"
    "   (pair_id  INTEGER  PRIMARY KEY  NOT NULL,"
    "    rows     INTEGER               NOT NULL,"
    "    cols     INTEGER               NOT NULL,"
    "    data     BLOB)",
    "CREATE TABLE IF NOT EXISTS two_view_geometries"
    "   (pair_id  INTEGER  PRIMARY KEY  NOT NULL,"
    "    rows     INTEGER               NOT NULL,"
    "    cols     INTEGER               NOT NULL,"
    "    data     BLOB,"
    "    config   INTEGER               NOT NULL,"
    "    F        BLOB,"
    "    E        BLOB,"
    "    H        BLOB,"
    "    qvec     BLOB,"
    "    tvec     BLOB)",
};

/* The columns each table must have, in order, for an existing database. */
static const struct {
    const char *table;
    const char *columns;
} expected_columns[] = {
    {"cameras", "camera_id,model,width,height,params,prior_focal_length"},
    {"images", "image_id,name,camera_id,prior_qw,prior_qx,prior_qy,prior_qz,prior_tx,prior_ty,prior_tz"},
    {"keypoints", "image_id,rows,cols,data"},
    {"descriptors", "image_id,rows,cols,data"},
    {"matches", "pair_id,rows,cols,data"},
    {"two_view_geometries", "pair_id,rows,cols,data,config,F,E,H,qvec,tvec"},
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* "WHAT: MSG" for a failed SQLite call (WHAT may be NULL). After
 * SQLITE_BUSY - SQLite's bare "database is locked", once the busy timeout
 * has passed - also who held it and what becomes of the run's work. */
static int fail_msg(colmap_db *db, char *err, size_t errlen, const char *what, const char *msg)
{
    const char *sep = what ? ": " : "";
    if (sqlite3_errcode(db->sql) == SQLITE_BUSY)
        return fail(err, errlen,
                    "%s%s%s (another program kept it locked for %d s; this step was not written: run again to "
                    "resume)",
                    what ? what : "", sep, msg, COLMAP_DB_BUSY_MS / 1000);
    return fail(err, errlen, "%s%s%s", what ? what : "", sep, msg);
}

static int fail_sql(colmap_db *db, char *err, size_t errlen, const char *what)
{
    return fail_msg(db, err, errlen, what, sqlite3_errmsg(db->sql));
}

/* An image id COLMAP can pair: 0 is "none" here, and 2147483647 or more
 * would overflow pair ids. */
static int image_id_valid(int64_t id)
{
    return id >= 1 && id < COLMAP_MAX_NUM_IMAGES;
}

int64_t colmap_pair_id(int64_t image_id1, int64_t image_id2)
{
    if (image_id1 > image_id2) {
        int64_t t = image_id1;
        image_id1 = image_id2;
        image_id2 = t;
    }
    return COLMAP_MAX_NUM_IMAGES * image_id1 + image_id2;
}

static int exec(colmap_db *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db->sql, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fail_msg(db, err, errlen, NULL, msg ? msg : sqlite3_errmsg(db->sql));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Number of tables and indexes in the file (0 for a new database). */
static int count_objects(colmap_db *db, int *n, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) != SQLITE_OK)
        return fail_sql(db, err, errlen, "cannot read the database");
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        fail_sql(db, err, errlen, "cannot read the database");
        sqlite3_finalize(st);
        return -1;
    }
    *n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* Compare each table's columns with COLMAP 3.8's. */
static int check_schema(colmap_db *db, char *err, size_t errlen)
{
    for (size_t t = 0; t < sizeof expected_columns / sizeof *expected_columns; t++) {
        char sql[128], got[512] = "";
        snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", expected_columns[t].table);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK)
            return fail_sql(db, err, errlen, "cannot read the schema");
        size_t len = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *col = (const char *)sqlite3_column_text(st, 1);
            len += (size_t)snprintf(got + len, len < sizeof got ? sizeof got - len : 0, "%s%s", len ? "," : "",
                                    col ? col : "");
            if (len >= sizeof got)
                len = sizeof got - 1;
        }
        sqlite3_finalize(st);
        if (got[0] == '\0')
            return fail(err, errlen, "not a COLMAP 3.8 database: table '%s' is missing", expected_columns[t].table);
        if (strcmp(got, expected_columns[t].columns) != 0)
            return fail(err, errlen, "not a COLMAP 3.8 database: table '%s' has columns (%s), expected (%s)",
                        expected_columns[t].table, got, expected_columns[t].columns);
    }
    return 0;
}

/*
 * One run at a time: SQLite keeps each transaction whole, but a run decides
 * outside its transactions which images and pairs are left to do, so two
 * runs at once would both add the same image (the second failing on the
 * UNIQUE name) and match the same pairs twice. So the run holds an
 * exclusive flock() on the database file itself: a second run waits as
 * long as SQLite's busy timeout and is then refused. flock() and SQLite's
 * fcntl() byte-range locks are separate on Linux, and nothing else reads
 * the lock, so COLMAP and other SQLite programs are not affected. The
 * descriptor stays open until after sqlite3_close(): closing any
 * descriptor of the file would drop the process's fcntl() locks, SQLite's
 * included. Where the file system has no flock(), the run goes on without.
 * (Linux emulates flock() on NFS with fcntl() locks, which would clash with
 * SQLite's; SQLite's own locking is unreliable on NFS anyway.)
 */
static int lock_database(colmap_db *db, const char *path, char *err, size_t errlen)
{
    db->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (db->lock_fd < 0)
        return 0;
    struct timespec t0, now, pause = {0, 50 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (flock(db->lock_fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            close(db->lock_fd);
            db->lock_fd = -1;
            return 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >= COLMAP_DB_BUSY_MS)
            return fail(err, errlen,
                        "another matchnet-colmap run is writing this database (waited %d s for it to finish); run "
                        "again when it has finished",
                        COLMAP_DB_BUSY_MS / 1000);
        nanosleep(&pause, NULL);
    }
}

int colmap_db_open(const char *path, colmap_db **out, char *err, size_t errlen)
{
    *out = NULL;
    colmap_db *db = calloc(1, sizeof *db);
    if (!db)
        return fail(err, errlen, "out of memory");
    db->lock_fd = -1;
    /* The VFS is NULL (SQLite's default) unless a crash test asks for pause
     * points inside SQLite's commits (test_point.h). */
    if (sqlite3_open_v2(path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, mn_test_sqlite_vfs()) !=
        SQLITE_OK) {
        fail(err, errlen, "cannot open: %s", db->sql ? sqlite3_errmsg(db->sql) : "out of memory");
        colmap_db_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db->sql, COLMAP_DB_BUSY_MS);
    if (lock_database(db, path, err, errlen) != 0) {
        colmap_db_close(db);
        return -1;
    }
    int n = 0;
    if (count_objects(db, &n, err, errlen) != 0) {
        colmap_db_close(db);
        return -1;
    }
    if (n == 0) {
        if (colmap_db_begin(db, err, errlen) != 0) {
            colmap_db_close(db);
            return -1;
        }
        for (size_t k = 0; k < sizeof schema_sql / sizeof *schema_sql; k++)
            if (exec(db, schema_sql[k], err, errlen) != 0) {
                colmap_db_close(db);
                return -1;
            }
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", COLMAP_USER_VERSION);
        if (exec(db, pragma, err, errlen) != 0) {
            colmap_db_close(db);
            return -1;
        }
        mn_test_point("colmap-schema-commit");
        if (colmap_db_commit(db, err, errlen) != 0) {
            colmap_db_close(db);
            return -1;
        }
    } else if (check_schema(db, err, errlen) != 0) {
        colmap_db_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

sqlite3 *colmap_db_sqlite(colmap_db *db)
{
    return db->sql;
}

void colmap_db_close(colmap_db *db)
{
    if (!db)
        return;
    colmap_db_rollback(db);
    sqlite3_close(db->sql);
    if (db->lock_fd >= 0)
        close(db->lock_fd); /* after SQLite's: see lock_database() */
    free(db);
}

int colmap_db_begin(colmap_db *db, char *err, size_t errlen)
{
    if (exec(db, "BEGIN IMMEDIATE", err, errlen) != 0)
        return -1;
    db->in_transaction = 1;
    return 0;
}

int colmap_db_commit(colmap_db *db, char *err, size_t errlen)
{
    if (exec(db, "COMMIT", err, errlen) != 0)
        return -1;
    db->in_transaction = 0;
    return 0;
}

void colmap_db_rollback(colmap_db *db)
{
    if (db && db->in_transaction) {
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        db->in_transaction = 0;
    }
}

/* Prepare sql, or report. */
static sqlite3_stmt *prepare(colmap_db *db, const char *sql, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK) {
        fail_sql(db, err, errlen, "cannot prepare a statement");
        return NULL;
    }
    return st;
}

/* Step a statement that returns no rows, finalize it. */
static int step_done(colmap_db *db, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        fail_sql(db, err, errlen, what);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int colmap_db_find_image(colmap_db *db, const char *name, int64_t *image_id, int64_t *camera_id,
                         int64_t *keypoint_rows, char *err, size_t errlen)
{
    *image_id = 0;
    *camera_id = 0;
    *keypoint_rows = -1;
    sqlite3_stmt *st = prepare(db,
                               "SELECT images.image_id, camera_id, keypoints.rows FROM images LEFT JOIN keypoints "
                               "ON keypoints.image_id = images.image_id WHERE name = ?",
                               err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st), ok = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
    if (rc == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (!image_id_valid(id)) {
            /* Another tool's table may lack COLMAP's CHECK; pair ids of
             * such ids would overflow. */
            ok = fail(err, errlen, "image '%s' has the id %lld, outside COLMAP's 1..%lld", name, (long long)id,
                      COLMAP_MAX_NUM_IMAGES - 1);
        } else {
            *image_id = id;
            *camera_id = sqlite3_column_int64(st, 1);
            if (sqlite3_column_type(st, 2) != SQLITE_NULL)
                *keypoint_rows = sqlite3_column_int64(st, 2);
        }
    } else if (rc != SQLITE_DONE) {
        fail_sql(db, err, errlen, "cannot read table images");
    }
    sqlite3_finalize(st);
    return ok;
}

int colmap_db_camera_size(colmap_db *db, int64_t camera_id, int *width, int *height, char *err, size_t errlen)
{
    *width = *height = 0;
    sqlite3_stmt *st = prepare(db, "SELECT width, height FROM cameras WHERE camera_id = ?", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, camera_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *width = sqlite3_column_int(st, 0);
        *height = sqlite3_column_int(st, 1);
    } else if (rc != SQLITE_DONE) {
        fail_sql(db, err, errlen, "cannot read table cameras");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int colmap_db_find_camera(colmap_db *db, int model, int width, int height, int64_t *camera_id, char *err,
                          size_t errlen)
{
    *camera_id = 0;
    sqlite3_stmt *st = prepare(
        db, "SELECT camera_id FROM cameras WHERE model = ? AND width = ? AND height = ? ORDER BY camera_id LIMIT 1",
        err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int(st, 1, model);
    sqlite3_bind_int(st, 2, width);
    sqlite3_bind_int(st, 3, height);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *camera_id = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        fail_sql(db, err, errlen, "cannot read table cameras");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int colmap_db_add_camera(colmap_db *db, int model, int width, int height, const double *params, int nparams,
                         int prior_focal_length, int64_t *camera_id, char *err, size_t errlen)
{
    sqlite3_stmt *st = prepare(
        db, "INSERT INTO cameras(model, width, height, params, prior_focal_length) VALUES(?, ?, ?, ?, ?)", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int(st, 1, model);
    sqlite3_bind_int(st, 2, width);
    sqlite3_bind_int(st, 3, height);
    sqlite3_bind_blob(st, 4, params, nparams * (int)sizeof *params, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 5, prior_focal_length != 0);
    if (step_done(db, st, "cannot add a camera", err, errlen) != 0)
        return -1;
    *camera_id = sqlite3_last_insert_rowid(db->sql);
    return 0;
}

int colmap_db_count_images(colmap_db *db, int64_t *n, char *err, size_t errlen)
{
    *n = 0;
    sqlite3_stmt *st = prepare(db, "SELECT count(*) FROM images", err, errlen);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else
        fail_sql(db, err, errlen, "cannot read table images");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int colmap_db_add_image(colmap_db *db, const char *name, int64_t camera_id, int64_t *image_id, char *err,
                        size_t errlen)
{
    sqlite3_stmt *st = prepare(db, "INSERT INTO images(name, camera_id) VALUES(?, ?)", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, camera_id);
    if (step_done(db, st, "cannot add an image", err, errlen) != 0)
        return -1;
    *image_id = sqlite3_last_insert_rowid(db->sql);
    if (!image_id_valid(*image_id))
        return fail(err, errlen, "image '%s' was given the id %lld, outside COLMAP's 1..%lld", name,
                    (long long)*image_id, COLMAP_MAX_NUM_IMAGES - 1);
    return 0;
}

/* INSERT OR REPLACE a (key, rows, cols, data) row. */
static int write_matrix(colmap_db *db, const char *table, const char *key, int64_t id, size_t rows, int cols,
                        const void *data, size_t bytes, char *err, size_t errlen)
{
    char sql[160];
    snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO %s(%s, rows, cols, data) VALUES(?, ?, ?, ?)", table, key);
    sqlite3_stmt *st = prepare(db, sql, err, errlen);
    if (!st)
        return -1;
    static const char empty = 0;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)rows);
    sqlite3_bind_int(st, 3, cols);
    sqlite3_bind_blob64(st, 4, bytes ? data : &empty, bytes, SQLITE_STATIC);
    char what[64];
    snprintf(what, sizeof what, "cannot write table %s", table);
    return step_done(db, st, what, err, errlen);
}

int colmap_db_write_keypoints(colmap_db *db, int64_t image_id, const float *rows6, size_t n, char *err,
                              size_t errlen)
{
    if (write_matrix(db, "keypoints", "image_id", image_id, n, 6, rows6, n * 6 * sizeof *rows6, err, errlen) != 0)
        return -1;
    return write_matrix(db, "descriptors", "image_id", image_id, 0, 128, NULL, 0, err, errlen);
}

int colmap_db_read_keypoints(colmap_db *db, int64_t image_id, float **rows6, size_t *n, char *err, size_t errlen)
{
    *rows6 = NULL;
    *n = 0;
    sqlite3_stmt *st = prepare(db, "SELECT rows, cols, data FROM keypoints WHERE image_id = ?", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, image_id);
    int rc = sqlite3_step(st), ok = -1;
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            fail(err, errlen, "image %lld has no keypoints", (long long)image_id);
        else
            fail_sql(db, err, errlen, "cannot read table keypoints");
        goto done;
    }
    sqlite3_int64 rows = sqlite3_column_int64(st, 0);
    int cols = sqlite3_column_int(st, 1);
    const void *data = sqlite3_column_blob(st, 2);
    size_t bytes = (size_t)sqlite3_column_bytes(st, 2);
    /* Compared by division: rows * cols * 4 can wrap around to the blob's size. */
    const size_t row_bytes = (size_t)cols * sizeof(float);
    if ((cols != 2 && cols != 4 && cols != 6) || rows < 0 || bytes % row_bytes != 0 ||
        (uint64_t)rows != bytes / row_bytes) {
        fail(err, errlen, "image %lld: keypoints blob of %zu bytes for %lld x %d floats", (long long)image_id, bytes,
             (long long)rows, cols);
        goto done;
    }
    float *out = malloc(((size_t)rows ? (size_t)rows : 1) * 6 * sizeof *out);
    if (!out) {
        fail(err, errlen, "out of memory");
        goto done;
    }
    for (sqlite3_int64 r = 0; r < rows; r++) {
        /* SQLite's blob is not necessarily aligned for float. */
        float in[6];
        memcpy(in, (const unsigned char *)data + (size_t)r * (size_t)cols * sizeof(float), (size_t)cols * sizeof(float));
        colmap_keypoint_row_expand(in, cols, out + (size_t)r * 6);
    }
    *rows6 = out;
    *n = (size_t)rows;
    ok = 0;
done:
    sqlite3_finalize(st);
    return ok;
}

static int row_exists(colmap_db *db, const char *table, int64_t pair_id, int *exists, char *err, size_t errlen)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE pair_id = ?", table);
    sqlite3_stmt *st = prepare(db, sql, err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, pair_id);
    int rc = sqlite3_step(st);
    *exists = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        fail_sql(db, err, errlen, "cannot read the pairs");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int colmap_db_pair_status(colmap_db *db, int64_t image_id1, int64_t image_id2, int *has_matches, int *has_geometry,
                          char *err, size_t errlen)
{
    int64_t pair = colmap_pair_id(image_id1, image_id2);
    if (row_exists(db, "matches", pair, has_matches, err, errlen) != 0)
        return -1;
    return row_exists(db, "two_view_geometries", pair, has_geometry, err, errlen);
}

/* rows x 2 uint32, column 0 into the smaller id's keypoints. */
static uint32_t *pack_pairs(int64_t image_id1, int64_t image_id2, const uint32_t *idx1, const uint32_t *idx2,
                            size_t n)
{
    uint32_t *m = malloc((n ? n : 1) * 2 * sizeof *m);
    if (!m)
        return NULL;
    int swap = image_id1 > image_id2;
    for (size_t k = 0; k < n; k++) {
        m[2 * k] = swap ? idx2[k] : idx1[k];
        m[2 * k + 1] = swap ? idx1[k] : idx2[k];
    }
    return m;
}

int colmap_db_write_matches(colmap_db *db, int64_t image_id1, int64_t image_id2, const uint32_t *idx1,
                            const uint32_t *idx2, size_t n, char *err, size_t errlen)
{
    uint32_t *m = pack_pairs(image_id1, image_id2, idx1, idx2, n);
    if (!m)
        return fail(err, errlen, "out of memory");
    int rc = write_matrix(db, "matches", "pair_id", colmap_pair_id(image_id1, image_id2), n, 2, m,
                          n * 2 * sizeof *m, err, errlen);
    free(m);
    return rc;
}

int colmap_db_delete_geometry(colmap_db *db, int64_t image_id1, int64_t image_id2, char *err, size_t errlen)
{
    sqlite3_stmt *st = prepare(db, "DELETE FROM two_view_geometries WHERE pair_id = ?", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, colmap_pair_id(image_id1, image_id2));
    return step_done(db, st, "cannot write table two_view_geometries", err, errlen);
}

int colmap_db_write_geometry(colmap_db *db, int64_t image_id1, int64_t image_id2, const uint32_t *idx1,
                             const uint32_t *idx2, size_t n, int config, const double *F, char *err,
                             size_t errlen)
{
    uint32_t *m = pack_pairs(image_id1, image_id2, idx1, idx2, n);
    if (!m)
        return fail(err, errlen, "out of memory");
    double f[9] = {0}, zero[9] = {0};
    static const double qvec[4] = {1, 0, 0, 0}, tvec[3] = {0, 0, 0};
    if (F)
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                f[3 * r + c] = image_id1 > image_id2 ? F[3 * c + r] : F[3 * r + c];
    sqlite3_stmt *st = prepare(db,
                               "INSERT OR REPLACE INTO two_view_geometries(pair_id, rows, cols, data, config, F, E, "
                               "H, qvec, tvec) VALUES(?, ?, 2, ?, ?, ?, ?, ?, ?, ?)",
                               err, errlen);
    if (!st) {
        free(m);
        return -1;
    }
    sqlite3_bind_int64(st, 1, colmap_pair_id(image_id1, image_id2));
    sqlite3_bind_int64(st, 2, (sqlite3_int64)n);
    sqlite3_bind_blob64(st, 3, m, n * 2 * sizeof *m, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, config);
    sqlite3_bind_blob(st, 5, f, sizeof f, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, zero, sizeof zero, SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, zero, sizeof zero, SQLITE_STATIC);
    sqlite3_bind_blob(st, 8, qvec, sizeof qvec, SQLITE_STATIC);
    sqlite3_bind_blob(st, 9, tvec, sizeof tvec, SQLITE_STATIC);
    int rc = step_done(db, st, "cannot write table two_view_geometries", err, errlen);
    free(m);
    return rc;
}
