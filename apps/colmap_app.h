/*
 * colmap_app.h - what the parts of matchnet-colmap share (private to the
 * program):
 *   matchnet_colmap.c  options and the top-level flow
 *   colmap_images.c    the image list: listing the folder, loading, the
 *                      working-size copy, keypoints and descriptors
 *   colmap_pairs.c     which pairs to match (no engine, no database:
 *                      the fuzzers call it)
 *   colmap_match.c     matching one pair
 *   colmap_db.c        the COLMAP database (colmap_db.h)
 *   colmap_convert.c   COLMAP's keypoint and camera conventions
 *                      (colmap_convert.h)
 *   colmap_exif.c      the EXIF focal-length prior and GPS position
 *                      (colmap_exif.h)
 *   colmap_retrieval.c global image descriptors for retrieval:K
 *                      (colmap_retrieval.h)
 * Functions that fail return -1 (or 2 for a usage error) with the reason
 * reported, or in ctx->err where they say so.
 */
#ifndef MATCHNET_COLMAP_APP_H
#define MATCHNET_COLMAP_APP_H

#include "cli.h"
#include "colmap_db.h"
#include "matchnet.h"
#include "matchnet/opencv.h"

#include <stddef.h>
#include <stdint.h>

#define PROG "matchnet-colmap"
#define error_line(...) mn_cli_error(PROG, __VA_ARGS__)

enum pair_mode { PAIRS_EXHAUSTIVE, PAIRS_SEQUENTIAL, PAIRS_RETRIEVAL, PAIRS_SPATIAL, PAIRS_FILE };
enum verify_mode { VERIFY_COLMAP, VERIFY_OWN };

/* Parts of a --pairs SPEC joined by '+'. */
#define MAX_PAIR_TERMS 8

/* One part of --pairs: a mode, its N or K, or a file (file_len bytes of
 * options.pairs_spec, not NUL-ended there). */
typedef struct pair_term {
    enum pair_mode mode;
    long n;
    const char *file;
    size_t file_len;
} pair_term;

typedef struct options {
    const char *images;
    const char *database;
    const char *model;
    const char *pairs_spec; /* --pairs as given; read into terms (none: exhaustive) */
    pair_term terms[MAX_PAIR_TERMS];
    int n_terms;
    const char *pair_list;
    const char *codebook;     /* --codebook: the retrieval codebook to load */
    const char *codebook_out; /* --codebook-out: where to save the learned one */
    int verify; /* enum verify_mode */
    int single_camera;
    int camera_model;     /* COLMAP model id (colmap_convert.h); default SIMPLE_RADIAL */
    int reuse_keypoints;  /* describe the keypoints already in the database, add no image */
    int replace_matches;  /* match pairs again that already have matches */
    int max_keypoints;
    int max_size;
    int threads;
    int progress; /* MN_CLI_PROGRESS_* */
} options;

typedef struct image_entry {
    char *name;            /* relative to --images, '/' separated */
    int64_t image_id;      /* 0 until in the database */
    int unreadable;        /* reported and skipped */
    int absent;            /* --reuse-keypoints: not in the database with keypoints; skipped */
    mn_keypoint *kp;       /* full-resolution keypoints, OpenCV convention */
    size_t nkp;
    float *desc;           /* nkp descriptors, or NULL until described */
    float *global;         /* retrieval:K: its global descriptor (image_list.global_dim floats), or NULL */
    int has_gps;           /* spatial:K: EXIF GPS position found, in gps_xyz */
    double gps_xyz[3];     /* earth-centred (ECEF) metres */
} image_entry;

typedef struct image_list {
    image_entry *v;
    size_t n, cap;
    size_t global_dim; /* floats in each image_entry.global */
} image_list;

/** Whether an entry takes part in pairs (neither unreadable nor absent). */
static inline int image_usable(const image_entry *im)
{
    return !im->unreadable && !im->absent;
}

/* What describing and writing an image or a pair needs. */
typedef struct context {
    const options *o;
    colmap_db *db;
    mn_session *session;
    size_t dim;
    mn_extract_params ep;
    char err[1024];
} context;

/* Pairs of indices into an image_list, the smaller first. */
typedef struct pair_list {
    size_t (*v)[2];
    size_t n, cap;
} pair_list;

/* Room for matching one pair of images of at most n keypoints each. */
typedef struct match_buffers {
    mn_dmatch *m;
    uint32_t *i1, *i2;
    uint8_t *inl;
} match_buffers;

/* colmap_images.c */

/** The images under root (recursively), sorted by name. At least one, or
 *  -1 (reported). */
int image_list_read(const char *root, image_list *list);

/** Free every entry and the list. */
void image_list_free(image_list *list);

/** Detect, describe and store a new image, or one in the database without
 *  keypoints (existing_id, existing_camera; 0 for none), in one
 *  transaction. 0 also when it cannot be read (reported, marked
 *  unreadable), -1 with ctx->err set. */
int image_add(context *ctx, image_entry *im, int64_t existing_id, int64_t existing_camera);

/** Describe an image already in the database with all of its stored
 *  keypoints (a resumed run that has pairs left for it, or
 *  --reuse-keypoints). 0 also when it cannot be read (reported, marked
 *  unreadable), -1 with ctx->err set. */
int image_describe_stored(context *ctx, image_entry *im);

/** Read the image's EXIF GPS position into im->has_gps and im->gps_xyz
 *  (none: has_gps 0). 0, or -1 with ctx->err set (out of memory). */
int image_read_gps(context *ctx, image_entry *im);

/* colmap_pairs.c */

/** --pairs SPEC (o->pairs_spec; NULL for exhaustive) into o->terms: a
 *  '+'-joined list of exhaustive, sequential:N, retrieval:K, spatial:K and
 *  FILE parts, or one FILE when no part is one of the others (so that a
 *  file name may hold '+'). 0, or 2 after a usage error (reported). */
int pair_spec_parse(options *o);

/** Whether o->terms has a part of mode m. */
int pair_spec_uses(const options *o, enum pair_mode m);

/** The pairs to match: the union of the parts' pairs, each once, smaller
 *  index first, over usable images, in the order the parts give them
 *  (exhaustive and sequential in index order, retrieval and spatial
 *  sorted, a file in its order). retrieval:K pairs each image that has a
 *  global descriptor with the K whose descriptors have the largest dot
 *  products with its own, spatial:K each image with a GPS position with
 *  its K nearest (ties: the smaller index first). 0 or -1 (reported). */
int pair_list_select(const options *o, const image_list *list, pair_list *out);

/** Write the pairs as 'NAME1 NAME2' lines to path. 0 or -1 (reported). */
int pair_list_write(const char *path, const image_list *list, const pair_list *pairs);

/* colmap_match.c */

/** Allocate buffers for images of at most n keypoints. 0 or -1 (reported). */
int match_buffers_alloc(match_buffers *b, size_t n);

/** Free the buffers; a zeroed or partly allocated struct is accepted. */
void match_buffers_free(match_buffers *b);

/** Match one pair and write its matches (and, with --verify own, its
 *  two-view geometry; otherwise any earlier two-view geometry of the pair
 *  is deleted, as it belongs to other matches) inside the caller's
 *  transaction. *n_matches: the matches written. 0, or -1 with ctx->err
 *  set. */
int pair_match(context *ctx, const image_entry *a, const image_entry *b, match_buffers *buf, size_t *n_matches);

#endif /* MATCHNET_COLMAP_APP_H */
