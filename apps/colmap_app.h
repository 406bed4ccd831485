/*
 * colmap_app.h - what the parts of matchnet-colmap share (private to the
 * program):
 *   matchnet_colmap.c  options and the top-level flow
 *   colmap_images.c    the image list: listing the folder, loading, the
 *                      working-size copy, keypoints and descriptors
 *   colmap_pairs.c     which pairs to match (no engine, no database:
 *                      the fuzzers call it)
 *   colmap_match.c     matching one pair
 *   colmap_store.c     the descriptor store (--store) and its cache
 *   colmap_merge.c     --merge: shard databases into one
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
    int affine;           /* --affine: estimate each keypoint's ellipse, describe affine patches */
    int max_keypoints;
    int max_size;
    int threads;
    int progress; /* MN_CLI_PROGRESS_* */
    /* Scale (issue 17): the descriptor store, shards and their merge. */
    const char *store;       /* --store DIR, or NULL: descriptors in memory */
    int cache_mb;            /* --cache-mb: the store's read cache */
    const char *shard_spec;  /* --shard i/N as given */
    long shard_index, shard_count; /* 0 and 1 without --shard */
    const char *merge;       /* --merge OUT: merge the databases given as arguments */
    const char **merge_parts;
    int n_merge_parts;
} options;

typedef struct image_entry {
    char *name;            /* relative to --images, '/' separated */
    int64_t image_id;      /* 0 until in the database */
    int unreadable;        /* reported and skipped */
    int absent;            /* --reuse-keypoints: not in the database with keypoints; skipped */
    int in_shard;          /* --shard: this run handles the image (always 1 without) */
    mn_keypoint *kp;       /* full-resolution keypoints, OpenCV convention (NULL with --store;
                            * --affine: the ellipses' equivalent circles, for their positions) */
    size_t nkp;
    float *desc;           /* nkp descriptors, or NULL until described (always with --store) */
    float *global;         /* retrieval:K: its global descriptor (image_list.global_dim floats), or NULL */
    int has_global;        /* retrieval:K with --store: its global descriptor is in image_list.global_fd */
    int has_gps;           /* spatial:K: EXIF GPS position found, in gps_xyz */
    double gps_xyz[3];     /* earth-centred (ECEF) metres */
} image_entry;

typedef struct image_list {
    image_entry *v;
    size_t n, cap;
    size_t global_dim; /* floats in each image_entry.global */
    /* With --store the global descriptors are not kept in memory but in an
     * unlinked temporary file in the store folder, image i at offset
     * i * global_dim floats, and compared in tiles (colmap_pairs.c), so that
     * memory does not grow with the images. */
    int global_file;   /* 1: global_fd holds them */
    int global_fd;
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
    uint64_t model_id; /* --store: store_model_fingerprint() */
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
    uint32_t *i1, *i2; /* the matches */
    uint32_t *g1, *g2; /* --verify own: the inliers */
    uint8_t *inl;
} match_buffers;

/* One pair's outcome, before it is written: nm matches (i1, i2) and with
 * --verify own ni inliers (g1, g2), config and F (COLMAP's coordinates,
 * when config is COLMAP_CONFIG_UNCALIBRATED). */
typedef struct pair_result {
    size_t nm, ni;
    int config;
    double F[9];
    uint32_t *i1, *i2, *g1, *g2;
} pair_result;

/* colmap_images.c */

/** The images under root (recursively), sorted by name. At least one, or
 *  -1 (reported). */
int image_list_read(const char *root, image_list *list);

/** Free every entry and the list. */
void image_list_free(image_list *list);

/** Detect (with --affine also estimate the ellipses), describe and store
 *  a new image, or one in the database without keypoints (existing_id,
 *  existing_camera; 0 for none), in one transaction. 0 also when it cannot
 *  be read (reported, marked unreadable), -1 with ctx->err set. */
int image_add(context *ctx, image_entry *im, int64_t existing_id, int64_t existing_camera);

/** Describe an image already in the database with all of its stored
 *  keypoints (a resumed run that has pairs left for it, or
 *  --reuse-keypoints); with --affine the rows' ellipses, similarity rows'
 *  estimated here. 0 also when it cannot be read (reported, marked
 *  unreadable), -1 with ctx->err set. */
int image_describe_stored(context *ctx, image_entry *im);

/** Read the image's EXIF GPS position into im->has_gps and im->gps_xyz
 *  (none: has_gps 0). 0, or -1 with ctx->err set (out of memory). */
int image_read_gps(context *ctx, image_entry *im);

/** --store: detect, describe and write an image to the store unless it is
 *  there already; *nkp its keypoints, and with rows (may be NULL) their
 *  COLMAP rows (malloc'ed, 6 floats each) and the full-resolution size.
 *  1 when stored, 0 when it cannot be read (reported, marked unreadable),
 *  -1 with ctx->err set. */
int image_store(context *ctx, image_entry *im, float **rows, int *width, int *height);

/** --store, resuming: make sure the store holds an image already in the
 *  database (with db_rows keypoints there), computing it when absent, and
 *  that its keypoints are the database's; sets im->nkp. 1, 0 when it
 *  cannot be read (reported, marked unreadable), -1 with ctx->err set. */
int image_check_stored(context *ctx, image_entry *im, int64_t db_rows);

/* colmap_store.c */

/** The most keypoints a store file may hold. */
#define MAX_STORE_KEYPOINTS 1000000L

/** One image's keypoints and (float16-rounded) descriptors, read from or
 *  written to the store. */
typedef struct store_entry {
    mn_keypoint *kp; /* nkp, full resolution, OpenCV convention (--affine: akp's equivalent circles) */
    mn_affine_keypoint *akp; /* --affine: the nkp ellipses, full resolution; else NULL */
    float *desc;     /* nkp x ctx->dim */
    size_t nkp;
    int width, height; /* the full-resolution image */
} store_entry;

/** A fingerprint of the model's weights for store headers (ctx->session
 *  on model). 0 or -1 with ctx->err set. */
int store_model_fingerprint(context *ctx, const mn_model *model, uint64_t *out);

/** f rounded to float16 and back, as the store keeps descriptors. */
float store_half_round(float f);

/** An image's store file: 1 and *out filled (with header_only, nkp, width
 *  and height only; with --affine also akp) when it exists and was written
 *  by a run with the same model, settings (--affine among them) and image
 *  file; 0 when absent, stale or corrupt; -1
 *  with ctx->err set (out of memory). */
int store_read(context *ctx, const char *name, int header_only, store_entry *out);

/** Write an image's store file (through a temporary file and rename());
 *  with --affine e->akp is written (e->kp is not). 0 or -1 with ctx->err
 *  set. */
int store_write(context *ctx, const char *name, const store_entry *e);

/** Free an entry's arrays; a zeroed entry is accepted. */
void store_entry_free(store_entry *e);

typedef struct store_cached {
    size_t image; /* index into the image list */
    uint64_t tick;
    store_entry e;
} store_cached;

/** Store files read for matching, least recently used dropped first. */
typedef struct store_cache {
    store_cached *v;
    size_t n, cap;
    long *slot_of; /* per image: its index in v, or -1 */
    size_t bytes, budget;
    uint64_t clock, loads;
} store_cache;

/** An empty cache for a list of n_images holding about budget_bytes. 0 or
 *  -1 (reported). */
int store_cache_init(store_cache *c, size_t n_images, size_t budget_bytes);

/** Free the cache; a zeroed one is accepted. */
void store_cache_free(store_cache *c);

/** Images a and b of the list, read through the cache; entries beyond the
 *  budget are dropped, never these two. The pointers hold until the next
 *  call. 0 or -1 with ctx->err set. */
int store_cache_pair(store_cache *c, context *ctx, const image_list *list, size_t a, size_t b,
                     const store_entry **ea, const store_entry **eb);

/* colmap_merge.c */

/** --merge: o->merge_parts into o->merge (one transaction, a temporary file
 *  renamed over it). 0 or -1 (reported). */
int merge_databases(const options *o);

/* colmap_mpi.c (MN_WITH_MPI builds) */

/** MPI_Init when started by mpirun (its environment), else nothing: *rank
 *  0, *size 1. 1 when MPI was started, 0 when not, -1 (reported). */
int mpi_start(int *argc, char ***argv, int *rank, int *size);

/** MPI_Finalize, or MPI_Abort of the whole job when this rank failed. */
void mpi_end(int started, int failed);

/** Whether every rank lists as many images as rank 0. 0 or -1 (reported). */
int mpi_same_list(const image_list *list);

/** Every rank's unreadable marks to all. 0 or -1 (reported). */
int mpi_merge_unreadable(image_list *list);

/** Rank 0's keypoint counts and *max_kp to all. 0 or -1 (reported). */
int mpi_share_counts(image_list *list, size_t *max_kp);

/** Rank 0: hand out the first n_todo pairs in blocks and write the
 *  results; *n_pairs, *n_matches count them. 0 or -1 (reported). */
int mpi_serve(context *ctx, const image_list *list, const pair_list *pairs, size_t n_todo, size_t max_kp,
              mn_cli_progress *progress, size_t *n_pairs, size_t *n_matches);

/** The other ranks: match the blocks rank 0 sends until it says stop. 0
 *  or -1 (reported). */
int mpi_work(context *ctx, const image_list *list, size_t max_kp);

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

/** pair_match()'s two halves: match (and verify) a pair into *res, whose
 *  arrays are buf's, without the database; write a result into it. 0, or
 *  -1 with ctx->err set. */
int pair_compute(context *ctx, const image_entry *a, const image_entry *b, match_buffers *buf, pair_result *res);
int pair_write(context *ctx, const image_entry *a, const image_entry *b, const pair_result *res);

#endif /* MATCHNET_COLMAP_APP_H */
