/*
 * colmap_db.h - the parts of a COLMAP 3.8 database that a feature matcher
 * writes: cameras, images, keypoints, (empty) descriptors, matches and
 * two-view geometries, through the SQLite C API.
 *
 *   colmap_db *db = NULL;
 *   char err[512];
 *   if (colmap_db_open("db.db", &db, err, sizeof err) != 0) { puts(err); ... }
 *   colmap_db_begin(db, err, sizeof err);
 *   int64_t cam, img;
 *   colmap_db_add_camera(db, COLMAP_SIMPLE_RADIAL, w, h, params, 4, 0, &cam, err, sizeof err);
 *   colmap_db_add_image(db, "a.jpg", cam, &img, err, sizeof err);
 *   colmap_db_write_keypoints(db, img, kp, n, err, sizeof err);
 *   colmap_db_commit(db, err, sizeof err);
 *   colmap_db_close(db);
 *
 * Layout (COLMAP 3.8, src/base/database.cc; PRAGMA user_version 3800):
 * - cameras(camera_id, model, width, height, params, prior_focal_length):
 *   params is a blob of float64 in the camera model's order (SIMPLE_RADIAL,
 *   model 2: f, cx, cy, k; colmap_convert.h lists the models);
 *   prior_focal_length 1 when f came from EXIF data, 0 when guessed.
 * - images(image_id, name UNIQUE, camera_id, prior_q*, prior_t*): name is
 *   the path relative to the image folder, '/' separated.
 * - keypoints(image_id, rows, cols, data): rows x cols float32, row-major;
 *   cols 6 is (x, y, a11, a12, a21, a22) with pixel centres at +0.5 (the
 *   image's top-left corner is (0, 0)) and the affine shape
 *   [a11 a12; a21 a22] = scale * [cos o, -sin o; sin o, cos o]; COLMAP
 *   also reads 4 (x, y, scale, o) and 2 (x, y) columns (colmap_convert.h).
 * - descriptors(image_id, rows, cols, data): rows x cols uint8 (COLMAP's
 *   SIFT: 128 columns; matchnet-colmap writes 0 rows for its own keypoints
 *   and never touches the descriptors of keypoints it reuses).
 * - matches(pair_id, rows, cols, data): rows x 2 uint32 keypoint indices,
 *   column 0 into the image with the smaller id; pair_id =
 *   2147483647 * min(id1, id2) + max(id1, id2).
 * - two_view_geometries: as matches (the inliers), plus config (the
 *   TwoViewGeometry enum), F, E, H (3 x 3 float64, row-major, mapping the
 *   smaller id's image to the larger's), qvec (4 float64) and tvec (3).
 *
 * Every function returns 0 on success, or -1 with a one-line message in err.
 * Not thread-safe: one connection, used by one thread.
 */
#ifndef MATCHNET_COLMAP_DB_H
#define MATCHNET_COLMAP_DB_H

#include <stddef.h>
#include <stdint.h>

/** COLMAP's default camera model's id (all of them: colmap_convert.h). */
#define COLMAP_SIMPLE_RADIAL 2

/** COLMAP's TwoViewGeometry::ConfigurationType. */
#define COLMAP_CONFIG_DEGENERATE 1
#define COLMAP_CONFIG_UNCALIBRATED 3

/** How long a connection waits for a lock another holds: SQLite's busy
 *  timeout, and colmap_db_open()'s wait for another run. */
#define COLMAP_DB_BUSY_MS 10000

/** The largest image id + 1 in a pair id (COLMAP's kMaxNumImages). */
#define COLMAP_MAX_NUM_IMAGES 2147483647LL

typedef struct colmap_db colmap_db;

/** pair_id of two image ids, in either order; ids in 1 ..
 *  COLMAP_MAX_NUM_IMAGES - 1, as colmap_db_find_image() and
 *  colmap_db_add_image() give them. */
int64_t colmap_pair_id(int64_t image_id1, int64_t image_id2);

/**
 * Open a database, creating it with COLMAP 3.8's schema when the file does
 * not exist or is empty. An existing database must have every table with
 * exactly COLMAP 3.8's columns; anything else is refused. One connection
 * per database file at a time (an flock() on the file, held until
 * colmap_db_close()): while another has it open this waits up to
 * COLMAP_DB_BUSY_MS and then fails. Other SQLite programs (COLMAP) are
 * not held off by it, only by SQLite's own locks, with the same timeout.
 */
int colmap_db_open(const char *path, colmap_db **out, char *err, size_t errlen);

/** The SQLite connection, for reading and copying whole rows (--merge);
 *  owned by db. */
struct sqlite3 *colmap_db_sqlite(colmap_db *db);

/** Close. NULL is accepted. An open transaction is rolled back. */
void colmap_db_close(colmap_db *db);

int colmap_db_begin(colmap_db *db, char *err, size_t errlen);
int colmap_db_commit(colmap_db *db, char *err, size_t errlen);
/** Roll back an open transaction; never fails visibly. */
void colmap_db_rollback(colmap_db *db);

/**
 * Look an image up by name: *image_id and *camera_id (0 when absent) and
 * *keypoint_rows (-1 when it has no keypoints row). An image whose id is
 * outside 1 .. COLMAP_MAX_NUM_IMAGES - 1 (a table without COLMAP's CHECK)
 * is an error.
 */
int colmap_db_find_image(colmap_db *db, const char *name, int64_t *image_id, int64_t *camera_id,
                         int64_t *keypoint_rows, char *err, size_t errlen);

/** Width and height of a camera; 0 x 0 when it does not exist. */
int colmap_db_camera_size(colmap_db *db, int64_t camera_id, int *width, int *height, char *err, size_t errlen);

/** A camera of this model and size, or *camera_id 0. */
int colmap_db_find_camera(colmap_db *db, int model, int width, int height, int64_t *camera_id, char *err,
                          size_t errlen);

/** A new camera; prior_focal_length 1 when params' focal length is known
 *  (EXIF), 0 when guessed. */
int colmap_db_add_camera(colmap_db *db, int model, int width, int height, const double *params, int nparams,
                         int prior_focal_length, int64_t *camera_id, char *err, size_t errlen);

/** Number of rows of table images. */
int colmap_db_count_images(colmap_db *db, int64_t *n, char *err, size_t errlen);

/** A new image; an id the database gives outside 1 ..
 *  COLMAP_MAX_NUM_IMAGES - 1 is an error (roll the transaction back). */
int colmap_db_add_image(colmap_db *db, const char *name, int64_t camera_id, int64_t *image_id, char *err,
                        size_t errlen);

/** Replace an image's keypoints (n rows of 6 floats) and write an empty
 *  (0 x 128) descriptors row, so that COLMAP sees the image as extracted. */
int colmap_db_write_keypoints(colmap_db *db, int64_t image_id, const float *rows6, size_t n, char *err,
                              size_t errlen);

/**
 * Read an image's keypoints as rows of 6 floats (2- and 4-column rows are
 * expanded as COLMAP reads them: colmap_keypoint_row_expand()). *rows6 is
 * malloc'ed (free it), *n their number: every row stored.
 */
int colmap_db_read_keypoints(colmap_db *db, int64_t image_id, float **rows6, size_t *n, char *err,
                             size_t errlen);

/** Whether a matches row (has_matches) and a two_view_geometries row
 *  (has_geometry) exist for the pair. */
int colmap_db_pair_status(colmap_db *db, int64_t image_id1, int64_t image_id2, int *has_matches, int *has_geometry,
                          char *err, size_t errlen);

/**
 * Replace a pair's matches: idx1[k] into image_id1's keypoints, idx2[k] into
 * image_id2's (either order of ids; columns are swapped as COLMAP wants).
 */
int colmap_db_write_matches(colmap_db *db, int64_t image_id1, int64_t image_id2, const uint32_t *idx1,
                            const uint32_t *idx2, size_t n, char *err, size_t errlen);

/** Delete a pair's two-view geometry, if any (its matches are about to
 *  change, so COLMAP's verification must run on it again). */
int colmap_db_delete_geometry(colmap_db *db, int64_t image_id1, int64_t image_id2, char *err, size_t errlen);

/**
 * Replace a pair's two-view geometry: inlier matches as for
 * colmap_db_write_matches(), config, and F (9 float64, row-major, with
 * x2^T F x1 = 0 for image_id1 -> image_id2 in COLMAP's +0.5 coordinates;
 * NULL for none). When the ids are swapped F is transposed.
 */
int colmap_db_write_geometry(colmap_db *db, int64_t image_id1, int64_t image_id2, const uint32_t *idx1,
                             const uint32_t *idx2, size_t n, int config, const double *F, char *err,
                             size_t errlen);

#endif /* MATCHNET_COLMAP_DB_H */
