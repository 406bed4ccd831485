/*
 * test_colmap_db.c - matchnet-colmap's database code (apps/colmap_db.c) on
 * databases made hostile with SQLite here, the cases fuzz_colmap_db found
 * or guards:
 *   - image ids outside COLMAP's 1..2147483646 in a table without its
 *     CHECK (another tool's database: regress-image-id-overflow.bin, where
 *     the pair id of such an id overflowed): refused when looked up, and
 *     when the database hands one out for a new image;
 *   - keypoints rows whose count times columns wraps around 2^64 to the
 *     blob's size (regress-keypoint-rows-wrap.bin: a huge count with an
 *     empty blob passed the size check and was read past the blob):
 *     refused; sound rows of 2, 4 and 6 columns read back.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "colmap_db.h"

#include <sqlite3.h>
#include <unistd.h>

static char path[96];

/* A database as colmap_db_open makes it, changed by sql; then opened. */
static colmap_db *make(const char *sql, int fresh)
{
    unlink(path);
    char err[512];
    colmap_db *db = NULL;
    if (fresh) {
        CHECK(colmap_db_open(path, &db, err, sizeof err) == 0, "create: %s", err);
        colmap_db_close(db);
    }
    sqlite3 *s;
    char *msg = NULL;
    CHECK(sqlite3_open(path, &s) == SQLITE_OK && sqlite3_exec(s, sql, NULL, NULL, &msg) == SQLITE_OK, "setup: %s",
          msg ? msg : sqlite3_errmsg(s));
    sqlite3_free(msg);
    sqlite3_close(s);
    db = NULL;
    CHECK(colmap_db_open(path, &db, err, sizeof err) == 0, "open: %s", err);
    return db;
}

/* COLMAP's tables with its column names but none of its types or
 * constraints, as another tool might write them. */
#define FOREIGN_TABLES                                                                                        \
    "CREATE TABLE cameras(camera_id, model, width, height, params, prior_focal_length);"                      \
    "CREATE TABLE keypoints(image_id, rows, cols, data);"                                                     \
    "CREATE TABLE descriptors(image_id, rows, cols, data);"                                                   \
    "CREATE TABLE matches(pair_id, rows, cols, data);"                                                        \
    "CREATE TABLE two_view_geometries(pair_id, rows, cols, data, config, F, E, H, qvec, tvec);"

static void image_ids(void)
{
    colmap_db *db = make(FOREIGN_TABLES
                         "CREATE TABLE images(image_id, name, camera_id, prior_qw, prior_qx, prior_qy, prior_qz, "
                         "prior_tx, prior_ty, prior_tz);"
                         "INSERT INTO images(image_id, name, camera_id) VALUES(-936747622981435392, 'neg.jpg', 1),"
                         "(2147483647, 'big.jpg', 1), (9223372036854775807, 'max.jpg', 1), (0, 'zero.jpg', 1),"
                         "(NULL, 'null.jpg', 1), (5, 'ok.jpg', 1);",
                         0);
    if (!db)
        return;
    static const char *const bad[] = {"neg.jpg", "big.jpg", "max.jpg", "zero.jpg", "null.jpg"};
    char err[512];
    int64_t id, cam, rows;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        int rc = colmap_db_find_image(db, bad[i], &id, &cam, &rows, err, sizeof err);
        CHECK(rc == -1 && id == 0 && strstr(err, "outside COLMAP's 1..2147483646") && strstr(err, bad[i]),
              "%s: status %d, id %lld, '%s'", bad[i], rc, (long long)id, err);
    }
    CHECK(colmap_db_find_image(db, "ok.jpg", &id, &cam, &rows, err, sizeof err) == 0 && id == 5 && cam == 1 &&
              rows == -1,
          "ok.jpg: id %lld: %s", (long long)id, err);
    colmap_db_close(db);

    /* The next id past COLMAP's range, from a table without its CHECK. */
    db = make(FOREIGN_TABLES
              "CREATE TABLE images(image_id INTEGER PRIMARY KEY, name, camera_id, prior_qw, prior_qx, prior_qy, "
              "prior_qz, prior_tx, prior_ty, prior_tz);"
              "INSERT INTO images(image_id, name, camera_id) VALUES(2147483646, 'last.jpg', 1);",
              0);
    if (!db)
        return;
    CHECK(colmap_db_begin(db, err, sizeof err) == 0, "begin: %s", err);
    err[0] = '\0';
    id = 0;
    int rc = colmap_db_add_image(db, "new.jpg", 1, &id, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "'new.jpg' was given the id 2147483647"), "add_image: status %d, id %lld, '%s'",
          rc, (long long)id, err);
    colmap_db_rollback(db);
    CHECK(colmap_db_find_image(db, "new.jpg", &id, &cam, &rows, err, sizeof err) == 0 && id == 0,
          "the refused image was kept: %s", err);
    colmap_db_close(db);
}

static void keypoint_rows(void)
{
    /* 2^62 rows x 4 columns x 4 bytes is 2^66: 0 modulo 2^64, the size of
     * an empty blob; likewise 2^61 x 2 x 4 bytes and 2^62 x 6 x 4. */
    colmap_db *db = make("INSERT INTO images(image_id, name, camera_id) VALUES(1, 'a.jpg', 1), (2, 'b.jpg', 1),"
                         "(3, 'c.jpg', 1), (4, 'd.jpg', 1), (5, 'e.jpg', 1), (6, 'f.jpg', 1);"
                         "INSERT INTO keypoints VALUES(1, 4611686018427387904, 4, x''),"
                         "(2, 2305843009213693952, 2, NULL), (3, 4611686018427387904, 6, x''),"
                         "(4, 1, 2, x'0000803f00000040'), (5, 0, 6, x''), (6, -1, 6, x'');",
                         1);
    if (!db)
        return;
    char err[512];
    for (int64_t id = 1; id <= 6; id++) {
        float *rows6 = (float *)&err;
        size_t n = 7;
        err[0] = '\0';
        int rc = colmap_db_read_keypoints(db, id, &rows6, &n, err, sizeof err);
        if (id == 4)
            CHECK(rc == 0 && n == 1 && rows6[0] == 1 && rows6[1] == 2 && rows6[2] == 1 && rows6[5] == 1,
                  "one 2-column row: status %d, %zu rows: %s", rc, n, err);
        else if (id == 5)
            CHECK(rc == 0 && n == 0 && rows6, "no rows: status %d, %zu rows: %s", rc, n, err);
        else
            CHECK(rc == -1 && n == 0 && !rows6 && strstr(err, "keypoints blob of"),
                  "image %lld: status %d, %zu rows, '%s'", (long long)id, rc, n, err);
        free(rc == 0 ? rows6 : NULL);
    }
    colmap_db_close(db);
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/mn_test_colmap_db_%d.db", (int)getpid());
    image_ids();
    keypoint_rows();
    unlink(path);
    return check_summary("test_colmap_db");
}
