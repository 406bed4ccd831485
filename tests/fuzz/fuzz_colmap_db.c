/*
 * fuzz_colmap_db.c - libFuzzer target: matchnet-colmap's database code
 * (apps/colmap_db.c, apps/colmap_convert.c) on foreign, truncated, corrupt
 * and odd databases, through the calls a resumed run makes.
 *
 * Input: byte 0 picks how the database file is made:
 *   0  the rest of the input is the file (truncated and corrupt SQLite
 *      files: the seeds are small COLMAP databases to mutate);
 *   1  the same, with a hot rollback journal: bytes 1-2 (little-endian)
 *      say how many of the remaining bytes are the file, the rest is
 *      FILE-journal (a run killed in a transaction);
 *   2  a database as colmap_db_open creates it (COLMAP 3.8's schema), then
 *      edited by the operations in the rest of the input;
 *   3  an empty file edited by the operations (a foreign schema).
 * An operation is a byte (what, on which table) and its values: rows with
 * any SQLite type (integers of every size, reals, text, blobs of any
 * length, NULL), dropped, renamed, added or recreated columns and tables,
 * views in place of tables, triggers that fail or delete, user_version,
 * journal modes.
 *
 * Then, as a resumed matchnet-colmap run: open (schema check), look up
 * each image name in the file and two that are not, its camera's size and
 * a camera like it, its stored keypoints (each row converted to an
 * mn_keypoint), the pair status of the images found; then, in one
 * transaction, a new camera and image with a name from the input, its
 * keypoints, matches and a two-view geometry with an image found, and a
 * deleted geometry; rolled back on the first failure, as the program does.
 *
 * Invariants: no crash, leak or undefined behaviour; a failure leaves a
 * message and a NULL handle; keypoints read back are as many rows as the
 * row's count says, converted to finite keypoints (size > 0, angle in
 * [0, 360)) or flagged placeholders; on COLMAP's schema with rows only
 * (mode 2 without schema edits), what the transaction wrote reads back the
 * same.
 */
#define _GNU_SOURCE
#include "colmap_convert.h"
#include "colmap_db.h"

#include <sqlite3.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_NAMES 8

static char path[96], journal[112], wal[112], shm[112];
static uint8_t *fresh; /* a database as colmap_db_open creates it */
static size_t fresh_size;

static void violated(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_colmap_db: invariant violated: %s (err: '%s')\n", what, err ? err : "");
    abort();
}

static void remove_files(void)
{
    unlink(path);
    unlink(journal);
    unlink(wal);
    unlink(shm);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* A tmpfs when there is one: the database is written, synced and read
     * several times per input. */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/mn_fuzz_colmap_db_%d.db", base, (int)getpid());
    snprintf(journal, sizeof journal, "%s-journal", path);
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    /* SQLite's lookaside buffers cost an ASan allocation per connection
     * and the fuzzer opens several per input. */
    sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0);
    /* Mode 2's starting point, made once. */
    colmap_db *db = NULL;
    char err[512];
    unlink(path);
    if (colmap_db_open(path, &db, err, sizeof err) != 0)
        violated("cannot create a database", err);
    colmap_db_close(db);
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0 || (fresh_size = (size_t)ftell(f)) == 0 || fseek(f, 0, SEEK_SET) != 0 ||
        !(fresh = malloc(fresh_size)) || fread(fresh, 1, fresh_size, f) != fresh_size)
        abort();
    fclose(f);
    unlink(path);
    atexit(remove_files);
    return 0;
}

static void write_file(const char *p, const uint8_t *d, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f) != 0)
        abort();
}

/* ---- operations on the file before the program opens it ---- */

typedef struct reader {
    const uint8_t *d;
    size_t pos, size;
} reader;

static int more(const reader *r)
{
    return r->pos < r->size;
}

static uint8_t byte(reader *r)
{
    return r->pos < r->size ? r->d[r->pos++] : 0;
}

static uint64_t u64(reader *r)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)byte(r) << (8 * k);
    return v;
}

static const char *const tables[6] = {"cameras", "images", "keypoints", "descriptors", "matches",
                                      "two_view_geometries"};
static const char *const columns[6] = {
    "camera_id,model,width,height,params,prior_focal_length",
    "image_id,name,camera_id,prior_qw,prior_qx,prior_qy,prior_qz,prior_tx,prior_ty,prior_tz",
    "image_id,rows,cols,data",
    "image_id,rows,cols,data",
    "pair_id,rows,cols,data",
    "pair_id,rows,cols,data,config,F,E,H,qvec,tvec",
};

/* Integers where sizes and ids go wrong. */
static const int64_t interesting[] = {0, 1, -1, 2, 4, 6, 128, 255, 65536, 2147483647, 2147483648LL, -2147483648LL,
                                      4294967295LL, 4294967296LL, 2147483647LL * 2 + 3, 1LL << 40, 1LL << 61,
                                      1LL << 62, INT64_MAX, INT64_MIN};

/* Bind parameter k to a value read from the input: any SQLite type. */
static void bind_value(sqlite3_stmt *st, int k, reader *r)
{
    uint8_t type = byte(r);
    switch (type % 8) {
    case 0: sqlite3_bind_null(st, k); break;
    case 1: sqlite3_bind_int64(st, k, (int64_t)u64(r)); break;
    case 2: sqlite3_bind_int64(st, k, (int8_t)byte(r)); break;
    case 3: sqlite3_bind_int64(st, k, interesting[byte(r) % (sizeof interesting / sizeof *interesting)]); break;
    case 4: {
        uint64_t bits = u64(r);
        double d;
        memcpy(&d, &bits, sizeof d);
        sqlite3_bind_double(st, k, d);
        break;
    }
    case 5:
    case 6: {
        size_t len = byte(r);
        if (len > r->size - (r->pos < r->size ? r->pos : r->size))
            len = r->pos < r->size ? r->size - r->pos : 0;
        const void *p = r->d + (r->pos < r->size ? r->pos : r->size);
        if (type % 8 == 5)
            sqlite3_bind_text(st, k, p, (int)len, SQLITE_TRANSIENT);
        else
            sqlite3_bind_blob(st, k, len ? p : "", (int)len, SQLITE_TRANSIENT);
        r->pos += len;
        break;
    }
    case 7: { /* a longer blob: 4-byte multiples of one byte */
        size_t len = 4 * (size_t)(byte(r) | byte(r) << 8) % 65536;
        uint8_t fill = byte(r);
        uint8_t *b = malloc(len + 1);
        if (!b)
            abort();
        memset(b, fill, len);
        sqlite3_bind_blob(st, k, b, (int)len, SQLITE_TRANSIENT);
        free(b);
        break;
    }
    }
}

static void run_sql(sqlite3 *db, const char *sql)
{
    sqlite3_exec(db, sql, NULL, NULL, NULL); /* failures are part of the game */
}

/* Up to MAX_NAMES image names stored in the file: the ones the program
 * finds there (it looks up the names of the files in its folder). */
static size_t stored_names(sqlite3 *db, char names[][256])
{
    size_t n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT name FROM images LIMIT 8", -1, &st, NULL) == SQLITE_OK)
        while (n < MAX_NAMES && sqlite3_step(st) == SQLITE_ROW) {
            const unsigned char *s = sqlite3_column_text(st, 0);
            snprintf(names[n++], 256, "%s", s ? (const char *)s : "");
        }
    sqlite3_finalize(st);
    return n;
}

/* Apply the input's operations (none: just read), and find the image
 * names stored; returns whether any changed the schema (then nothing
 * written need read back the same). */
static int edit(reader *r, char names[][256], size_t *nn)
{
    sqlite3 *db;
    *nn = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return 1;
    }
    int schema = 0;
    char sql[1024];
    for (int ops = 0; more(r) && ops < 32; ops++) {
        const uint8_t op = byte(r), t = byte(r) % 6;
        const char *tab = tables[t];
        sql[0] = '\0';
        switch (op % 16) {
        case 0: case 1: case 2: case 3: case 4: case 5: { /* a row, or a value changed */
            int n = 1;
            for (const char *c = columns[t]; *c; c++)
                n += *c == ',';
            int len = snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO %s VALUES(?", tab);
            for (int k = 1; k < n; k++)
                len += snprintf(sql + len, sizeof sql - (size_t)len, ", ?");
            snprintf(sql + len, sizeof sql - (size_t)len, ")");
            sqlite3_stmt *st;
            if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
                for (int k = 1; k <= n; k++)
                    bind_value(st, k, r);
                sqlite3_step(st);
            }
            sqlite3_finalize(st);
            continue;
        }
        case 6: snprintf(sql, sizeof sql, "DROP TABLE %s", tab); break;
        case 7: snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN extra%d BLOB", tab, byte(r)); break;
        case 8: { /* one column renamed */
            char list[160], *c = list;
            snprintf(list, sizeof list, "%s", columns[t]);
            for (int k = byte(r) % 4; k > 0 && strchr(c, ','); k--)
                c = strchr(c, ',') + 1;
            char *end = strchr(c, ',');
            if (end)
                *end = '\0';
            snprintf(sql, sizeof sql, "ALTER TABLE %s RENAME COLUMN %s TO renamed", tab, c);
            break;
        }
        case 9: { /* recreated with COLMAP's column names in another form */
            char list[160];
            const uint8_t form = byte(r) % 4;
            snprintf(list, sizeof list, "%s", columns[t]);
            if (form == 1) /* the last column dropped */
                *strrchr(list, ',') = '\0';
            snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s; CREATE TABLE %s(%s%s%s)", tab, tab,
                     form == 2 ? "extra, " : "", list, form == 3 ? ", extra" : "");
            break;
        }
        case 10: { /* a view with the table's columns */
            char list[512] = "", cols[160];
            snprintf(cols, sizeof cols, "%s", columns[t]);
            int k = 0;
            for (char *c = strtok(cols, ","); c; c = strtok(NULL, ","), k++) {
                size_t len = strlen(list);
                snprintf(list + len, sizeof list - len, "%s%s AS %s", k ? ", " : "",
                         k == 0 ? "1" : k == 1 ? "2" : k == 2 ? "6" : "x''", c);
            }
            snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s; CREATE VIEW %s AS SELECT %s", tab, tab, list);
            break;
        }
        case 11:
            snprintf(sql, sizeof sql, "CREATE TRIGGER IF NOT EXISTS t%d %s %s ON %s BEGIN %s; END", t,
                     op & 16 ? "BEFORE" : "AFTER", op & 32 ? "INSERT" : "DELETE", tab,
                     op & 64 ? "SELECT RAISE(ABORT, 'refused by a trigger')" : "DELETE FROM images");
            break;
        case 12: snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)(int32_t)u64(r)); break;
        case 13: snprintf(sql, sizeof sql, "DELETE FROM %s", tab); break;
        case 14: { /* one value of every row changed */
            char cols[160], *c;
            snprintf(cols, sizeof cols, "%s", columns[t]);
            c = strtok(cols, ",");
            for (int k = byte(r) % 4; k > 0 && c; k--)
                c = strtok(NULL, ",");
            snprintf(sql, sizeof sql, "UPDATE %s SET %s = ?", tab, c ? c : "rows");
            sqlite3_stmt *st;
            if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
                bind_value(st, 1, r);
                sqlite3_step(st);
            }
            sqlite3_finalize(st);
            continue;
        }
        case 15:
            snprintf(sql, sizeof sql, "PRAGMA journal_mode = %s", op & 16 ? "WAL" : "DELETE");
            break;
        }
        if (op % 16 != 12 && op % 16 != 13)
            schema = 1;
        run_sql(db, sql);
    }
    *nn = stored_names(db, names);
    sqlite3_close(db);
    return schema;
}

static void check_failure(int rc, const char *err)
{
    if (rc != 0 && rc != -1)
        violated("status neither 0 nor -1", err);
    if (rc != 0 && err[0] == '\0')
        violated("a failure without a message", err);
}

/* nn: the names stored, or SIZE_MAX to read them once the file is open
 * (a hot journal is then the program's to roll back). */
static void resume(const char *name, char names[][256], size_t nn, int check_round_trip)
{
    char err[512] = "";
    colmap_db *db = (colmap_db *)1;
    int rc = colmap_db_open(path, &db, err, sizeof err);
    check_failure(rc, err);
    if (rc != 0) {
        if (db)
            violated("a handle after a failed open", err);
        return;
    }
    if (nn == SIZE_MAX) {
        sqlite3 *reader_db;
        nn = 0;
        if (sqlite3_open_v2(path, &reader_db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK)
            nn = stored_names(reader_db, names);
        sqlite3_close(reader_db);
    }
    snprintf(names[nn++], 256, "not-there.jpg");
    snprintf(names[nn++], 256, "%s", "");

    int64_t count, found[MAX_NAMES + 2];
    size_t nf = 0;
    check_failure(colmap_db_count_images(db, &count, err, sizeof err), err);
    for (size_t i = 0; i < nn; i++) {
        int64_t id, cam, rows;
        err[0] = '\0';
        rc = colmap_db_find_image(db, names[i], &id, &cam, &rows, err, sizeof err);
        check_failure(rc, err);
        if (rc != 0 || id == 0)
            continue;
        found[nf++] = id;
        int w, h;
        int64_t like;
        if (colmap_db_camera_size(db, cam, &w, &h, err, sizeof err) == 0)
            check_failure(colmap_db_find_camera(db, COLMAP_SIMPLE_RADIAL, w, h, &like, err, sizeof err), err);
        if (rows < 0)
            continue;
        float *rows6 = (float *)1;
        size_t n = 7;
        err[0] = '\0';
        rc = colmap_db_read_keypoints(db, id, &rows6, &n, err, sizeof err);
        check_failure(rc, err);
        if (rc != 0 && (rows6 || n))
            violated("keypoints after a failed read", err);
        if (rc == 0 && (!rows6 || (int64_t)n != rows))
            violated("keypoints read are not the row's count", err);
        for (size_t k = 0; rc == 0 && k < n; k++) {
            mn_keypoint kp;
            int bad = colmap_keypoint_to_mn(rows6 + 6 * k, &kp);
            if (!isfinite(kp.x) || !isfinite(kp.y) || !(kp.size > 0) || !isfinite(kp.size) ||
                !(kp.angle >= 0 && kp.angle < 360))
                violated(bad ? "a placeholder keypoint the describer refuses" : "a converted keypoint out of range",
                         NULL);
        }
        free(rows6);
    }
    for (size_t i = 0; i + 1 < nf; i++) {
        int m, g;
        check_failure(colmap_db_pair_status(db, found[i], found[i + 1], &m, &g, err, sizeof err), err);
    }

    /* A new image with keypoints, matched with one found, in a transaction. */
    const float rows6[3][6] = {{1.5f, 2.5f, 2, 0, 0, 2}, {10, 20, -1, 0, 0, -1}, {0.5f, 0.5f, 0, 1, -1, 0}};
    const uint32_t i1[2] = {0, 2}, i2[2] = {1, 0};
    const double F[9] = {0, -1, 2, 1, 0, -3, -2, 3, 0}, params[4] = {100, 50, 40, 0};
    int64_t cam = 0, img = 0;
    err[0] = '\0';
    rc = colmap_db_begin(db, err, sizeof err);
    if (rc == 0)
        rc = colmap_db_add_camera(db, COLMAP_SIMPLE_RADIAL, 100, 80, params, 4, 0, &cam, err, sizeof err);
    if (rc == 0)
        rc = colmap_db_add_image(db, name, cam, &img, err, sizeof err);
    if (rc == 0)
        rc = colmap_db_write_keypoints(db, img, &rows6[0][0], 3, err, sizeof err);
    if (rc == 0 && nf)
        rc = colmap_db_write_matches(db, img, found[0], i1, i2, 2, err, sizeof err);
    if (rc == 0 && nf)
        rc = colmap_db_write_geometry(db, found[0], img, i1, i2, 2, COLMAP_CONFIG_UNCALIBRATED, F, err, sizeof err);
    if (rc == 0 && nf > 1)
        rc = colmap_db_delete_geometry(db, found[0], found[1], err, sizeof err);
    if (rc == 0)
        rc = colmap_db_commit(db, err, sizeof err);
    check_failure(rc, err);
    if (rc != 0) {
        colmap_db_rollback(db);
    } else if (check_round_trip) {
        int64_t id, c, rows;
        float *back = NULL;
        size_t n = 0;
        int m = 0, g = 0;
        if (colmap_db_find_image(db, name, &id, &c, &rows, err, sizeof err) != 0 || id != img || c != cam ||
            rows != 3 || colmap_db_read_keypoints(db, img, &back, &n, err, sizeof err) != 0 || n != 3 ||
            memcmp(back, rows6, sizeof rows6) != 0)
            violated("the new image does not read back", err);
        free(back);
        if (nf && (colmap_db_pair_status(db, img, found[0], &m, &g, err, sizeof err) != 0 || !m || !g))
            violated("the new pair does not read back", err);
    }
    colmap_db_close(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    remove_files();
    reader r = {data, 1, size};
    int round_trip = 0;
    char name[64] = "new.jpg", names[MAX_NAMES + 2][256];
    size_t nn = SIZE_MAX; /* modes 0 and 1: read once the program has opened the file */
    if (data[0] % 4 >= 2) { /* the new image's name: any bytes but NUL */
        size_t len = byte(&r) % 32, k;
        for (k = 0; k < len && more(&r); k++)
            name[k] = (char)(byte(&r) | 1);
        name[k] = '\0';
    }
    switch (data[0] % 4) {
    case 0:
        write_file(path, data + 1, size - 1);
        r.pos = size;
        break;
    case 1: {
        size_t split = size >= 3 ? (size_t)(data[1] | data[2] << 8) : 0, rest = size >= 3 ? size - 3 : 0;
        if (split > rest)
            split = rest;
        write_file(path, data + 3, split);
        write_file(journal, data + 3 + split, rest - split);
        r.pos = size;
        break;
    }
    case 2:
        write_file(path, fresh, fresh_size);
        round_trip = !edit(&r, names, &nn);
        break;
    case 3:
        write_file(path, NULL, 0);
        edit(&r, names, &nn);
        break;
    }
    resume(name, names, nn, round_trip);
    remove_files();
    return 0;
}
