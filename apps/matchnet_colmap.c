/*
 * matchnet_colmap.c - matchnet-colmap: detect, describe and match the images
 * of a folder with MatchNet and write the keypoints and matches into a
 * COLMAP 3.8 database, ready for COLMAP's geometric verification and
 * mapper (samples/sfm.sh runs the whole path).
 *
 *   matchnet-colmap --images DIR --database DB [options]
 *
 * Each image is read once, its SIFT keypoints detected (on a copy shrunk
 * to --max-size, the keypoints scaled back to the full image) and
 * described; the descriptors stay in memory for all of its pairs. Each
 * image is written in one transaction, and the pairs in blocks, so an
 * interrupted (or killed) run leaves a consistent database and a rerun
 * carries on: images already present with keypoints and pairs already
 * matched are skipped. One run per database at a time (colmap_db_open()'s
 * lock), as those decisions are taken outside the transactions. Cameras
 * are made as colmap feature_extractor makes them
 * (--camera-model, focal length from EXIF as a prior).
 *
 * --store DIR keeps the keypoints and descriptors in a file per image
 * instead (colmap_store.c), read per pair through a bounded cache, so that
 * memory does not grow with the images. --shard I/N runs a contiguous
 * block of the pairs into a database of its own, --merge joins such parts
 * (colmap_merge.c), and under mpirun the ranks share the work
 * (colmap_mpi.c); each ends with the database a single run writes.
 *
 * The pairs (colmap_pairs.c) are chosen after every image is described:
 * --pairs retrieval:K first gives each image a VLAD global descriptor
 * (colmap_retrieval.h) over --codebook or a codebook learned on a sample
 * of the images' descriptors (read back from --store one image at a time;
 * without it images an earlier run stored are described again), spatial:K
 * reads each image's EXIF GPS position.
 *
 * --reuse-keypoints instead describes the keypoints that colmap
 * feature_extractor stored (every row, so that the matches index them),
 * and adds no camera, image, keypoint or descriptor.
 *
 * --affine (as matchnet-match --affine) estimates each keypoint's ellipse
 * and describes its affine patch; the ellipses are the keypoint rows
 * (x, y, a11, a12, a21, a22). Rows read back (--reuse-keypoints, a resumed
 * run) are described as the ellipses they are, but similarity rows
 * (COLMAP's without --SiftExtraction.estimate_affine_shape, 4-column rows)
 * get their ellipse estimated (colmap_images.c). --store files record
 * whether they hold ellipses, so that a run with the other setting makes
 * them again.
 *
 * This file holds the options and the top-level flow; colmap_app.h lists
 * the other parts (images, pairs, database).
 *
 * Exit status: 0 on success (unreadable images are reported, skipped and
 * counted), 1 on a runtime error, 2 on a usage error. Every error is one
 * line on stderr starting with "matchnet-colmap:".
 */
#define _POSIX_C_SOURCE 200809L
#include "colmap_app.h"
#include "colmap_convert.h"
#include "colmap_exif.h"
#include "colmap_retrieval.h"
#include "out_file.h"
#include "test_point.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_KEYPOINTS_LIMIT 1000000L
/* Pairs written per transaction. */
#define PAIR_BLOCK 16
/* Most databases --merge takes. */
#define MAX_MERGE_PARTS 4096

static const char synopsis[] =
    "usage: " PROG " --images DIR --database DB [options]\n"
    "       " PROG " --merge OUT [--single-camera] PART.db...\n"
    "\n"
    "Detect SIFT keypoints in every image under DIR, describe them with MatchNet,\n"
    "match the chosen pairs and write cameras, images, keypoints and matches into\n"
    "the COLMAP 3.8 database DB (created when it does not exist). Images and pairs\n"
    "already in DB are skipped, so an interrupted run can be resumed. Cameras are\n"
    "made as colmap feature_extractor makes them: --camera-model, the focal length\n"
    "from a JPEG's EXIF data (FocalLengthIn35mmFilm, else FocalLength and the\n"
    "focal-plane resolution; prior_focal_length 1), else 1.2 x the longer side\n"
    "(prior 0).\n"
    "\n"
    "With --reuse-keypoints, DB comes from 'colmap feature_extractor' instead: the\n"
    "keypoints COLMAP stored (its SIFT, in its pixel convention) are described\n"
    "with MatchNet and matched; cameras, keypoints and COLMAP's descriptors stay as\n"
    "they are, and images are matched by name to the files under DIR.\n"
    "\n"
    "Large collections: --store keeps descriptors on disk instead of in memory;\n"
    "--shard I/N runs part of the pairs into a database of its own, and --merge\n"
    "joins the parts into the database a single run writes."
#ifdef MN_HAVE_MPI
    " Under mpirun with\n"
    "several ranks (and --store), the ranks share the images and pairs; rank 0\n"
    "alone writes DB.\n"
#else
    "\n"
#endif
    "\n"
    "options:\n";

/* --camera-model's names: COLMAP's, with their model ids. */
static mn_cli_choice camera_choices[COLMAP_NUM_CAMERA_MODELS + 1];

static void make_camera_choices(void)
{
    size_t k = 0;
    for (const colmap_camera_model *m = colmap_camera_models; m->name; m++, k++)
        camera_choices[k] = (mn_cli_choice){m->name, m->id};
    camera_choices[k] = (mn_cli_choice){NULL, 0};
}

/* --merge's checks; the parts are kept in o (pos lives in
 * parse_options' frame, copied). 0 or 2 (reported). */
static int merge_options(options *o, const char **pos, int npos)
{
    if (npos == 0) {
        error_line("--merge OUT needs the part databases as arguments");
        return 2;
    }
    if (o->images || o->database || o->store || o->shard_spec || o->reuse_keypoints || o->pairs_spec || o->affine) {
        error_line("--merge takes only --single-camera and the part databases (not --images, --database, --store, "
                   "--shard, --pairs, --reuse-keypoints or --affine)");
        return 2;
    }
    static const char *parts[MAX_MERGE_PARTS];
    for (int k = 0; k < npos; k++) {
        parts[k] = pos[k];
        if (strcmp(pos[k], o->merge) == 0) {
            error_line("--merge: the output '%s' is also a part", o->merge);
            return 2;
        }
    }
    o->merge_parts = parts;
    o->n_merge_parts = npos;
    return 0;
}

/* --shard I/N, and what --store and --shard allow. 0 or 2 (reported). */
static int scale_options(options *o)
{
    if (o->shard_spec) {
        const char *slash = strchr(o->shard_spec, '/');
        char idx[32];
        if (slash && (size_t)(slash - o->shard_spec) < sizeof idx) {
            memcpy(idx, o->shard_spec, (size_t)(slash - o->shard_spec));
            idx[slash - o->shard_spec] = '\0';
            o->shard_count = mn_cli_parse_count(slash + 1, 1, 1L << 20);
            o->shard_index = o->shard_count > 0 ? mn_cli_parse_count(idx, 0, o->shard_count - 1) : -1;
        }
        if (!slash || o->shard_count < 1 || o->shard_index < 0) {
            error_line("--shard: expected I/N with 0 <= I < N, got '%s'", o->shard_spec);
            return 2;
        }
        if (!o->store) {
            error_line("--shard needs --store DIR (on a file system every shard sees)");
            return 2;
        }
        if (o->single_camera) {
            error_line("--shard: give --single-camera to --merge instead (the parts keep a camera per image)");
            return 2;
        }
    }
    if (o->store && o->reuse_keypoints) {
        error_line("--store describes its own keypoints; --reuse-keypoints runs without it");
        return 2;
    }
    return 0;
}

/* Fill o from argv. Returns 0, 1 after --help, or 2 after a usage error. */
static int parse_options(int argc, char **argv, options *o)
{
    static const mn_cli_choice verify_modes[] = {{"colmap", VERIFY_COLMAP}, {"own", VERIFY_OWN}, {NULL, 0}};
    make_camera_choices();
    o->camera_model = -1;
    const mn_cli_option table[] = {
        {"images", 0, MN_CLI_STRING, &o->images, .placeholder = "DIR",
         .help = "folder of images (searched recursively; names are\n"
                 "stored relative to DIR, as COLMAP does)"},
        {"database", 0, MN_CLI_STRING, &o->database, .placeholder = "DB",
         .help = "COLMAP database to create or add to"},
        {"pairs", 0, MN_CLI_STRING, &o->pairs_spec, .placeholder = "SPEC",
         .help = "exhaustive (default); sequential:N (each image with\n"
                 "the N next in name order); retrieval:K (each image with\n"
                 "the K most similar by a VLAD global descriptor of its\n"
                 "MatchNet descriptors); spatial:K (each image with the K\n"
                 "nearest by EXIF GPS position; images without one get no\n"
                 "spatial pairs); a file of 'NAME1 NAME2' lines (COLMAP's\n"
                 "pair list); or several joined by '+', e.g.\n"
                 "retrieval:20+sequential:5, for the union of their pairs"},
        {"codebook", 0, MN_CLI_STRING, &o->codebook, .placeholder = "PATH",
         .help = "retrieval:K's codebook, saved by --codebook-out (e.g.\n"
                 "learned on other photos; default: learn one of 64 words\n"
                 "by k-means on 32768 descriptors sampled from the images,\n"
                 "with a fixed seed)"},
        {"codebook-out", 0, MN_CLI_STRING, &o->codebook_out, .placeholder = "PATH",
         .help = "learn a codebook from the images, as retrieval:K does\n"
                 "without --codebook, and save it to PATH"},
        {"verify", 0, MN_CLI_CHOICE, &o->verify, .choices = verify_modes, .placeholder = "WHAT",
         .help = "colmap (default): write the matches only, for\n"
                 "'colmap matches_importer --match_type pairs' to verify;\n"
                 "own: also write two-view geometries (fundamental\n"
                 "matrix by RANSAC, 4 px) so that the mapper can run at once"},
        {"pair-list", 0, MN_CLI_STRING, &o->pair_list, .placeholder = "PATH",
         .help = "write the selected pairs as 'NAME1 NAME2' lines to PATH\n"
                 "(the --match_list_path of colmap matches_importer)"},
        {"single-camera", 0, MN_CLI_FLAG, &o->single_camera,
         .help = "one camera for all images of the same size\n(default: one camera per image)"},
        {"camera-model", 0, MN_CLI_CHOICE, &o->camera_model, .choices = camera_choices, .placeholder = "NAME",
         .help = "COLMAP camera model of new cameras: SIMPLE_PINHOLE,\n"
                 "PINHOLE, SIMPLE_RADIAL (default), RADIAL, OPENCV,\n"
                 "OPENCV_FISHEYE, FULL_OPENCV, FOV, SIMPLE_RADIAL_FISHEYE,\n"
                 "RADIAL_FISHEYE or THIN_PRISM_FISHEYE (COLMAP's ids and\n"
                 "parameters; principal point at the centre, distortion 0,\n"
                 "FOV's omega 0.01)"},
        {"reuse-keypoints", 0, MN_CLI_FLAG, &o->reuse_keypoints,
         .help = "describe and match the keypoints already in DB (made by\n"
                 "'colmap feature_extractor'): every keypoint row is kept,\n"
                 "COLMAP's descriptors and cameras are not touched; images\n"
                 "of DIR that are not in DB are skipped"},
        {"replace-matches", 0, MN_CLI_FLAG, &o->replace_matches,
         .help = "match again the pairs that already have matches (e.g.\n"
                 "COLMAP's), replacing them and dropping their two-view\n"
                 "geometries so that they are verified again (--verify own\n"
                 "writes new ones; default: such pairs are skipped)"},
        {"max-keypoints", 0, MN_CLI_INT, &o->max_keypoints, 1, MAX_KEYPOINTS_LIMIT, .placeholder = "N",
         .help = "keypoints per image, strongest first (default 8000;\n"
                 "--reuse-keypoints takes all of COLMAP's)"},
        {"max-size", 0, MN_CLI_INT, &o->max_size, 16, 1 << 16, .placeholder = "PX",
         .help = "detect and describe on a copy whose longer side is at\n"
                 "most PX (area resize); keypoints are stored in full-\n"
                 "resolution coordinates (default: full size)"},
        {"affine", 0, MN_CLI_FLAG, &o->affine,
         .help = "estimate each keypoint's affine shape (Baumberg's\n"
                 "iteration, as matchnet-match --affine), describe its\n"
                 "affine-normalised patch and store the ellipse as the\n"
                 "keypoints row (x, y, a11, a12, a21, a22); keypoints\n"
                 "without a stable ellipse keep their circle. With\n"
                 "--reuse-keypoints: COLMAP's ellipses (feature_extractor\n"
                 "--SiftExtraction.estimate_affine_shape 1) are described\n"
                 "as they are; similarity rows (COLMAP's without it,\n"
                 "4-column rows) get their ellipse estimated here"},
        {"threads", 0, MN_CLI_INT, &o->threads, 1, 64, .placeholder = "N",
         .help = "threads for describing and matching (default: cores, at most 8)"},
        {"model", 0, MN_CLI_STRING, &o->model, .placeholder = "PATH",
         .help = "model file (default: $MATCHNET_MODEL, else the\ninstalled model)"},
        {"progress", 0, MN_CLI_CHOICE, &o->progress, .choices = mn_cli_progress_choices, .placeholder = "WHEN",
         .help = MN_CLI_PROGRESS_HELP},
        /* Scale: the descriptor store, shards and their merge. */
        {"store", 0, MN_CLI_STRING, &o->store, .placeholder = "DIR",
         .help = "keep each image's keypoints and descriptors (float16)\n"
                 "in a file of its own under DIR (created if absent) and\n"
                 "read them per pair through a cache, so memory does not\n"
                 "grow with the number of images; files made by another\n"
                 "model or settings (--affine among them) are made\n"
                 "again. DIR must be on a file system every shard sees.\n"
                 "Default: in memory (float32)"},
        {"cache-mb", 0, MN_CLI_INT, &o->cache_mb, 0, 1 << 20, .placeholder = "MB",
         .help = "--store: the read cache's size (default 1024; 0:\nonly the pair at hand)"},
        {"shard", 0, MN_CLI_STRING, &o->shard_spec, .placeholder = "I/N",
         .help = "match only part I (0 .. N-1) of the selected pairs\n"
                 "(contiguous blocks of the pair list) and describe the\n"
                 "images they need, into DB (this part's own database;\n"
                 "--pair-list: this part's pairs); needs --store; --merge\n"
                 "joins the parts"},
        {"merge", 0, MN_CLI_STRING, &o->merge, .placeholder = "OUT",
         .help = "merge the databases given as arguments (the parts of a\n"
                 "--shard run) into OUT, replacing it: the database a\n"
                 "single run would write (give --single-camera if the\n"
                 "runs had it); no --images or --database"},
    };
    const char *pos[MAX_MERGE_PARTS];
    const mn_cli_program prog = {PROG, synopsis, table, sizeof table / sizeof *table, MAX_MERGE_PARTS};
    int npos, rc = mn_cli_parse(&prog, argc, argv, pos, &npos);
    if (rc == 0 && o->merge)
        return merge_options(o, pos, npos);
    if (rc == 0 && npos > 0) {
        error_line("unexpected argument '%s' (only --merge takes databases as arguments)", pos[0]);
        rc = 2;
    }
    if (rc == 0 && o->threads == 0) /* resolved once: the session and the pair selection share it */
        o->threads = mn_default_num_threads();
    if (rc == 0)
        rc = pair_spec_parse(o);
    if (rc == 0)
        rc = scale_options(o);
    if (rc == 0 && (!o->images || !o->database)) {
        error_line("--images and --database are required (try --help)");
        rc = 2;
    }
    if (rc == 0 && o->reuse_keypoints && (o->camera_model >= 0 || o->single_camera)) {
        error_line("--reuse-keypoints keeps COLMAP's cameras: give --camera-model and --single-camera to colmap "
                   "feature_extractor (--ImageReader.camera_model, --ImageReader.single_camera)");
        rc = 2;
    }
    if (rc == 0 && o->codebook && o->codebook_out) {
        error_line("--codebook and --codebook-out: a loaded codebook is not learned again");
        rc = 2;
    }
    if (rc == 0 && o->codebook && !pair_spec_uses(o, PAIRS_RETRIEVAL)) {
        error_line("--codebook is for --pairs retrieval:K");
        rc = 2;
    }
    if (rc == 0 && pair_spec_uses(o, PAIRS_SPATIAL) && !colmap_exif_available()) {
        error_line("--pairs spatial:K needs EXIF GPS positions: built without libexif");
        rc = 2;
    }
    if (o->camera_model < 0)
        o->camera_model = colmap_camera_model_by_name(COLMAP_DEFAULT_CAMERA_MODEL)->id;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The run                                                                   */
/* ------------------------------------------------------------------------ */

/* One run's state, and its counts for the summary line. */
typedef struct run {
    context ctx;
    int rank, size; /* MPI: this process's rank, and the ranks; 0 and 1 without */
    image_list list;
    pair_list pairs; /* the selected pairs; those left to match first, n_todo of them */
    mn_model *model;
    match_buffers buf;
    store_cache cache; /* --store */
    mn_cli_progress progress;
    double t0;
    retrieval_codebook cb; /* --codebook, or learned */
    size_t n_new, n_unreadable, n_absent, n_other, n_todo, max_kp, n_matched, total_matches, n_no_gps;
} run;

/* The model, a session, the store, --codebook and the database (unless an
 * MPI worker): the database is opened (made) last, so that a bad model,
 * store or codebook leaves none. Returns 0 or -1 (reported). */
static int open_all(run *r)
{
    const options *o = r->ctx.o;
    if ((o->model ? mn_model_load_file(o->model, &r->model) : mn_model_load_default(&r->model)) != MN_OK) {
        error_line("%s", mn_last_error());
        return -1;
    }
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = o->threads;
    if (mn_session_create(r->model, &sp, &r->ctx.session) != MN_OK) {
        error_line("%s", mn_last_error());
        return -1;
    }
    r->ctx.dim = mn_model_descriptor_dim(r->model);
    r->ctx.ep = mn_extract_params_default();
    r->ctx.ep.scale_factor = mn_detector_scale_factor(MN_DETECTOR_SIFT);
    if (o->store) {
        struct stat st;
        if (mkdir(o->store, 0777) != 0 && errno != EEXIST) {
            error_line("cannot make the store folder '%s': %s", o->store, strerror(errno));
            return -1;
        }
        if (stat(o->store, &st) != 0 || !S_ISDIR(st.st_mode)) {
            error_line("--store '%s' is not a folder", o->store);
            return -1;
        }
        if (store_model_fingerprint(&r->ctx, r->model, &r->ctx.model_id) != 0) {
            error_line("%s", r->ctx.err);
            return -1;
        }
    }
    if (o->codebook) {
        if (retrieval_codebook_load(o->codebook, &r->cb, r->ctx.err, sizeof r->ctx.err) != 0) {
            error_line("%s", r->ctx.err);
            return -1;
        }
        if (r->cb.dim != r->ctx.dim) {
            error_line("codebook '%s': words of %zu floats, the model's descriptors have %zu", o->codebook,
                       r->cb.dim, r->ctx.dim);
            return -1;
        }
    }
    if (r->rank == 0 && colmap_db_open(o->database, &r->ctx.db, r->ctx.err, sizeof r->ctx.err) != 0) {
        error_line("%s: %s", o->database, r->ctx.err);
        return -1;
    }
    return 0;
}

/* --shard: select the pairs over every listed image, keep this shard's
 * contiguous block of them, and mark the images it handles: those its
 * pairs need and its contiguous block of the image list (so that an image
 * no pair needs is still in some part). Every shard computes the same list,
 * so the blocks cover it exactly once. Returns 0 or -1 (reported). */
static int shard_select(run *r)
{
    const options *o = r->ctx.o;
    if (pair_list_select(o, &r->list, &r->pairs) != 0)
        return -1;
    size_t n = r->pairs.n, lo = (size_t)((unsigned long long)n * (unsigned long long)o->shard_index /
                                         (unsigned long long)o->shard_count),
           hi = (size_t)((unsigned long long)n * (unsigned long long)(o->shard_index + 1) /
                         (unsigned long long)o->shard_count);
    memmove(r->pairs.v, r->pairs.v + lo, (hi - lo) * sizeof *r->pairs.v);
    r->pairs.n = hi - lo;
    size_t ni = r->list.n;
    for (size_t i = ni * (size_t)o->shard_index / (size_t)o->shard_count;
         i < ni * (size_t)(o->shard_index + 1) / (size_t)o->shard_count; i++)
        r->list.v[i].in_shard = 1;
    for (size_t k = 0; k < r->pairs.n; k++)
        r->list.v[r->pairs.v[k][0]].in_shard = r->list.v[r->pairs.v[k][1]].in_shard = 1;
    return 0;
}

/* --shard: drop this shard's pairs with an image that turned out
 * unreadable (the single run never selects them). */
static void shard_drop_unreadable(run *r)
{
    size_t w = 0;
    for (size_t k = 0; k < r->pairs.n; k++)
        if (image_usable(&r->list.v[r->pairs.v[k][0]]) && image_usable(&r->list.v[r->pairs.v[k][1]])) {
            r->pairs.v[w][0] = r->pairs.v[k][0];
            r->pairs.v[w][1] = r->pairs.v[k][1];
            w++;
        }
    r->pairs.n = w;
}

/* Images: detect, describe and store those not yet in the database.
 * Returns 0 or -1 (reported). */
static int add_images(run *r)
{
    context *ctx = &r->ctx;
    for (size_t i = 0; i < r->list.n; i++) {
        image_entry *im = &r->list.v[i];
        int64_t id, camera, rows;
        if (!im->in_shard) {
            r->n_other++;
            continue;
        }
        if (im->unreadable) { /* MPI: found by the rank that described it, and reported there */
            r->n_unreadable++;
            continue;
        }
        if (colmap_db_find_image(ctx->db, im->name, &id, &camera, &rows, ctx->err, sizeof ctx->err) != 0) {
            error_line("%s: %s", ctx->o->database, ctx->err);
            return -1;
        }
        if (id && rows >= 0) {
            im->image_id = id;
            im->nkp = (size_t)rows; /* --store: image_check_stored() compares them */
        } else {
            if (image_add(ctx, im, id, camera) != 0) {
                error_line("%s", ctx->err);
                return -1;
            }
            r->n_new += !im->unreadable;
        }
        r->n_unreadable += im->unreadable;
        mn_cli_progress_update(&r->progress, "images", i + 1, r->list.n, NULL);
    }
    return 0;
}

/* --reuse-keypoints: find each image in the database; those without
 * keypoints there are marked absent and skipped. Returns 0 or -1 (reported). */
static int find_images(run *r)
{
    context *ctx = &r->ctx;
    int64_t in_db = 0;
    size_t found = 0;
    for (size_t i = 0; i < r->list.n; i++) {
        image_entry *im = &r->list.v[i];
        int64_t id, camera, rows;
        if (colmap_db_find_image(ctx->db, im->name, &id, &camera, &rows, ctx->err, sizeof ctx->err) != 0) {
            error_line("%s: %s", ctx->o->database, ctx->err);
            return -1;
        }
        found += id != 0;
        if (id && rows >= 0) {
            im->image_id = id;
        } else {
            im->absent = 1;
            r->n_absent++;
            error_line("skipping '%s': %s", im->name,
                       id ? "it has no keypoints in the database" : "not in the database");
        }
    }
    if (colmap_db_count_images(ctx->db, &in_db, ctx->err, sizeof ctx->err) != 0) {
        error_line("%s: %s", ctx->o->database, ctx->err);
        return -1;
    }
    if ((size_t)in_db > found)
        error_line("%lld images of the database have no file under '%s'; not matched", (long long)in_db - (long long)found,
                   ctx->o->images);
    if (r->n_absent == r->list.n) {
        error_line("--reuse-keypoints: no image under '%s' has keypoints in %s (run colmap feature_extractor with "
                   "the same --image_path first)", ctx->o->images, ctx->o->database);
        return -1;
    }
    return 0;
}

/* Move the pairs not yet done to the front of r->pairs (r->n_todo of
 * them), describe their images that were stored by an earlier run, and
 * note their most keypoints. Returns 0 or -1 (reported). */
static int pairs_to_do(run *r)
{
    context *ctx = &r->ctx;
    pair_list *pairs = &r->pairs;
    size_t n_todo = 0;
    for (size_t k = 0; k < pairs->n; k++) {
        int has_m, has_g;
        const image_entry *a = &r->list.v[pairs->v[k][0]], *b = &r->list.v[pairs->v[k][1]];
        if (colmap_db_pair_status(ctx->db, a->image_id, b->image_id, &has_m, &has_g, ctx->err, sizeof ctx->err) !=
            0) {
            error_line("%s: %s", ctx->o->database, ctx->err);
            return -1;
        }
        if (has_m && !ctx->o->replace_matches && (has_g || ctx->o->verify != VERIFY_OWN))
            continue;
        pairs->v[n_todo][0] = pairs->v[k][0];
        pairs->v[n_todo][1] = pairs->v[k][1];
        n_todo++;
    }
    r->n_todo = n_todo;
    uint8_t *checked = ctx->o->store ? calloc(r->list.n, 1) : NULL;
    if (ctx->o->store && !checked) {
        error_line("out of memory");
        return -1;
    }
    for (size_t k = 0; k < n_todo; k++)
        for (int s = 0; s < 2; s++) {
            image_entry *im = &r->list.v[pairs->v[k][s]];
            if (ctx->o->store) {
                /* Those added now are in the store; those of an earlier
                 * run may not be (another --store, or none). */
                if (!checked[pairs->v[k][s]] && !im->unreadable && image_check_stored(ctx, im, (int64_t)im->nkp) < 0) {
                    error_line("%s", ctx->err);
                    free(checked);
                    return -1;
                }
                checked[pairs->v[k][s]] = 1;
            } else if (!im->desc && !im->unreadable && image_describe_stored(ctx, im) != 0) {
                error_line("%s: %s", im->name, ctx->err);
                return -1;
            }
            if (im->nkp > r->max_kp)
                r->max_kp = im->nkp;
        }
    free(checked);
    return 0;
}

/* A pair and its key for store_order(): tiles of the (i, j) plane. */
typedef struct tiled_pair {
    size_t ti, tj, i, j;
} tiled_pair;

static int compare_tiled(const void *pa, const void *pb)
{
    const tiled_pair *a = pa, *b = pb;
    if (a->ti != b->ti)
        return a->ti < b->ti ? -1 : 1;
    if (a->tj != b->tj)
        return a->tj < b->tj ? -1 : 1;
    if (a->i != b->i)
        return a->i < b->i ? -1 : 1;
    return a->j < b->j ? -1 : a->j > b->j;
}

/* --store: order the pairs to do by tiles of T x T image indices, T so that
 * a tile's 2 T images fit in the cache: each image is then read about
 * N / T times in all instead of once per pair. The database gets the same
 * rows in any order. Returns 0 or -1 (reported). */
static int store_order(run *r)
{
    const options *o = r->ctx.o;
    size_t per_image = r->max_kp * (sizeof(mn_keypoint) + r->ctx.dim * sizeof(float));
    size_t budget = (size_t)o->cache_mb << 20;
    size_t t = per_image ? budget / (2 * per_image) : r->list.n;
    if (t < 1)
        t = 1;
    tiled_pair *v = malloc((r->n_todo ? r->n_todo : 1) * sizeof *v);
    if (!v || store_cache_init(&r->cache, r->list.n, budget) != 0) {
        free(v);
        error_line("out of memory");
        return -1;
    }
    for (size_t k = 0; k < r->n_todo; k++) {
        size_t i = r->pairs.v[k][0], j = r->pairs.v[k][1];
        v[k] = (tiled_pair){i / t, j / t, i, j};
    }
    qsort(v, r->n_todo, sizeof *v, compare_tiled);
    for (size_t k = 0; k < r->n_todo; k++) {
        r->pairs.v[k][0] = v[k].i;
        r->pairs.v[k][1] = v[k].j;
    }
    free(v);
    return 0;
}

/* Match the pairs left to do, PAIR_BLOCK to a transaction. Returns 0 or -1
 * (reported). */
static int match_pairs(run *r)
{
    context *ctx = &r->ctx;
    if (match_buffers_alloc(&r->buf, r->max_kp) != 0 || (ctx->o->store && store_order(r) != 0))
        return -1;
    size_t in_block = 0;
    for (size_t k = 0; k < r->n_todo; k++) {
        const image_entry *a = &r->list.v[r->pairs.v[k][0]], *b = &r->list.v[r->pairs.v[k][1]];
        if (a->unreadable || b->unreadable)
            continue; /* became unreadable while resuming */
        image_entry sa, sb; /* --store: the entries with the cache's arrays */
        if (ctx->o->store) {
            const store_entry *ea, *eb;
            if (store_cache_pair(&r->cache, ctx, &r->list, r->pairs.v[k][0], r->pairs.v[k][1], &ea, &eb) != 0) {
                error_line("%s", ctx->err);
                return -1;
            }
            sa = *a;
            sb = *b;
            sa.kp = ea->kp;
            sa.desc = ea->desc;
            sb.kp = eb->kp;
            sb.desc = eb->desc;
            a = &sa;
            b = &sb;
        }
        if (in_block == 0 && colmap_db_begin(ctx->db, ctx->err, sizeof ctx->err) != 0) {
            error_line("%s: %s", ctx->o->database, ctx->err);
            return -1;
        }
        size_t nm;
        if (pair_match(ctx, a, b, &r->buf, &nm) != 0) {
            error_line("%s", ctx->err);
            return -1;
        }
        r->total_matches += nm;
        r->n_matched++;
        mn_test_point("colmap-pair-written");
        if (++in_block == PAIR_BLOCK || k + 1 == r->n_todo) {
            mn_test_point("colmap-block-commit");
            if (colmap_db_commit(ctx->db, ctx->err, sizeof ctx->err) != 0) {
                error_line("%s: %s", ctx->o->database, ctx->err);
                return -1;
            }
            mn_test_point("colmap-block-done");
            in_block = 0;
        }
        mn_cli_progress_update(&r->progress, "pairs", k + 1, r->n_todo, NULL);
    }
    if (in_block && colmap_db_commit(ctx->db, ctx->err, sizeof ctx->err) != 0) {
        error_line("%s: %s", ctx->o->database, ctx->err);
        return -1;
    }
    return 0;
}

/* The descriptors of image im for retrieval:K: from the store (made there
 * first when absent) into *e, or im->desc (described again when an earlier
 * run stored the image). *desc NULL: unreadable, skipped. Returns 0 or -1
 * (reported). */
static int image_descriptors(run *r, image_entry *im, store_entry *e, const float **desc)
{
    context *ctx = &r->ctx;
    *desc = NULL;
    if (!image_usable(im))
        return 0;
    if (ctx->o->store) {
        int rc = image_store(ctx, im, NULL, NULL, NULL);
        if (rc > 0)
            rc = store_read(ctx, im->name, 0, e);
        if (rc < 0) {
            error_line("%s: %s", im->name, ctx->err);
            return -1;
        }
        if (rc == 0 && !im->unreadable) {
            error_line("%s: its store file vanished or changed while this run read the store", im->name);
            return -1;
        }
        *desc = rc > 0 ? e->desc : NULL;
        return 0;
    }
    if (!im->desc && image_describe_stored(ctx, im) != 0) {
        error_line("%s: %s", im->name, ctx->err);
        return -1;
    }
    *desc = im->desc;
    return 0;
}

/* Learn the codebook (unless --codebook gave one) on a sample of the
 * images' descriptors, and save it to --codebook-out. Returns 0 or -1
 * (reported). */
static int learn_codebook(run *r)
{
    const options *o = r->ctx.o;
    char *err = r->ctx.err;
    size_t errlen = sizeof r->ctx.err;
    if (r->cb.centres)
        return 0;
    retrieval_sample s;
    if (retrieval_sample_init(&s, r->ctx.dim, RETRIEVAL_SAMPLE_SIZE, RETRIEVAL_SEED, err, errlen) != 0) {
        error_line("%s", err);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < r->list.n && rc == 0; i++) {
        store_entry e = {0};
        const float *d;
        rc = image_descriptors(r, &r->list.v[i], &e, &d);
        if (rc == 0 && d)
            retrieval_sample_add(&s, d, r->list.v[i].nkp);
        store_entry_free(&e);
    }
    if (rc != 0) {
        retrieval_sample_free(&s);
        return -1;
    }
    rc = retrieval_codebook_learn(s.v, s.n, s.dim, RETRIEVAL_WORDS, RETRIEVAL_SEED, &r->cb, err, errlen);
    retrieval_sample_free(&s);
    if (rc == 0 && o->codebook_out)
        rc = retrieval_codebook_save(&r->cb, o->codebook_out, err, errlen);
    if (rc != 0)
        error_line("%s", err);
    return rc;
}

/* What retrieval:K and spatial:K need before the pairs are chosen: each
 * usable image's global descriptor and GPS position. With --store the
 * descriptors are read one image at a time (twice when the codebook is
 * learned), so memory holds only the global descriptors. Returns 0 or -1
 * (reported). */
static int pair_keys(run *r)
{
    const options *o = r->ctx.o;
    if (pair_spec_uses(o, PAIRS_SPATIAL))
        for (size_t i = 0; i < r->list.n; i++) {
            image_entry *im = &r->list.v[i];
            if (!image_usable(im))
                continue;
            if (image_read_gps(&r->ctx, im) != 0) {
                error_line("%s", r->ctx.err);
                return -1;
            }
            r->n_no_gps += !im->has_gps;
        }
    if (!pair_spec_uses(o, PAIRS_RETRIEVAL) && !o->codebook_out)
        return 0;
    if (learn_codebook(r) != 0)
        return -1;
    size_t gdim = retrieval_global_dim(&r->cb);
    r->list.global_dim = gdim;
    if (!pair_spec_uses(o, PAIRS_RETRIEVAL))
        return 0;
    /* With --store: into an unlinked file in the store (list.global_fd), one
     * image's vector in memory at a time. */
    float *one = NULL;
    if (o->store) {
        size_t len = strlen(o->store) + 32;
        char *path = malloc(len);
        one = malloc(gdim * sizeof *one);
        int fd = -1;
        if (path && one) {
            snprintf(path, len, "%s/globals.tmp.XXXXXX", o->store);
            fd = mkstemp(path);
            if (fd >= 0)
                unlink(path);
        }
        if (fd < 0) {
            error_line("cannot make a file for the global descriptors in '%s': %s", o->store,
                       path && one ? strerror(errno) : "out of memory");
            free(path), free(one);
            return -1;
        }
        free(path);
        r->list.global_file = 1;
        r->list.global_fd = fd;
    }
    for (size_t i = 0; i < r->list.n; i++) {
        image_entry *im = &r->list.v[i];
        store_entry e = {0};
        const float *d;
        if (image_descriptors(r, im, &e, &d) != 0) {
            free(one);
            return -1;
        }
        if (d && !one && !(im->global = malloc(gdim * sizeof *im->global))) {
            store_entry_free(&e);
            error_line("out of memory for global descriptors");
            return -1;
        }
        if (d)
            retrieval_vlad(&r->cb, d, im->nkp, one ? one : im->global);
        store_entry_free(&e);
        if (d && one) {
            const size_t bytes = gdim * sizeof *one;
            int we = mn_out_file_write_at(r->list.global_fd, one, bytes, (off_t)(i * bytes));
            if (we != 0) {
                error_line("cannot write the global descriptors in '%s': %s", o->store, strerror(we));
                free(one);
                return -1;
            }
            im->has_global = 1;
        }
    }
    free(one);
    return 0;
}

#ifdef MN_HAVE_MPI
/* Under mpirun with several ranks (colmap_mpi.c): the images described
 * across the ranks into the store; rank 0 writes the database and hands
 * out the pairs, the others match them. Returns 0 or -1 (reported). */
static int run_mpi(run *r)
{
    context *ctx = &r->ctx;
    const options *o = ctx->o;
    if (mpi_same_list(&r->list) != 0)
        return -1;
    for (size_t i = (size_t)r->rank; i < r->list.n; i += (size_t)r->size) {
        if (image_store(ctx, &r->list.v[i], NULL, NULL, NULL) < 0) {
            error_line("%s", ctx->err);
            return -1;
        }
        if (r->rank == 0)
            mn_cli_progress_update(&r->progress, "images", i + 1, r->list.n, NULL);
    }
    if (mpi_merge_unreadable(&r->list) != 0)
        return -1;
    if (r->rank == 0) {
        for (size_t i = 0; i < r->list.n; i++)
            r->list.v[i].in_shard = 1;
        if (add_images(r) != 0 || pair_keys(r) != 0 || pair_list_select(o, &r->list, &r->pairs) != 0 ||
            (o->pair_list && pair_list_write(o->pair_list, &r->list, &r->pairs) != 0) || pairs_to_do(r) != 0 ||
            store_order(r) != 0)
            return -1;
    }
    if (mpi_share_counts(&r->list, &r->max_kp) != 0)
        return -1;
    if (r->rank != 0)
        return mpi_work(ctx, &r->list, r->max_kp);
    return mpi_serve(ctx, &r->list, &r->pairs, r->n_todo, r->max_kp, &r->progress, &r->n_matched,
                     &r->total_matches);
}
#endif

/* One process (also each --shard): images, pairs, matches. Returns 0 or
 * -1 (reported). */
static int run_local(run *r)
{
    const options *o = r->ctx.o;
    if (o->shard_spec) {
        if (pair_keys(r) != 0 || shard_select(r) != 0 || add_images(r) != 0)
            return -1;
        shard_drop_unreadable(r);
    } else {
        for (size_t i = 0; i < r->list.n; i++)
            r->list.v[i].in_shard = 1;
        if ((o->reuse_keypoints ? find_images(r) : add_images(r)) != 0 || pair_keys(r) != 0 ||
            pair_list_select(o, &r->list, &r->pairs) != 0)
            return -1;
    }
    if ((o->pair_list && pair_list_write(o->pair_list, &r->list, &r->pairs) != 0) || pairs_to_do(r) != 0 ||
        match_pairs(r) != 0)
        return -1;
    return 0;
}

/* The whole run after the options: images, pairs, matches, summary (rank
 * 0 only). Returns 0 or -1 (reported). */
static int run_all(run *r)
{
    const options *o = r->ctx.o;
    if (image_list_read(o->images, &r->list) != 0 || open_all(r) != 0)
        return -1;
#ifdef MN_HAVE_MPI
    if (r->size > 1 ? run_mpi(r) != 0 : run_local(r) != 0)
        return -1;
    if (r->rank != 0)
        return 0;
#else
    if (run_local(r) != 0)
        return -1;
#endif
    char reused[160] = "", gps[64] = "";
    if (pair_spec_uses(o, PAIRS_SPATIAL))
        snprintf(gps, sizeof gps, ", %zu without GPS position (no spatial pairs)", r->n_no_gps);
    if (o->shard_spec)
        snprintf(reused, sizeof reused, ", shard %ld/%ld: %zu of other shards", o->shard_index, o->shard_count,
                 r->n_other);
    else if (o->reuse_keypoints)
        snprintf(reused, sizeof reused, ", COLMAP's keypoints, %zu not in the database skipped", r->n_absent);
    else if (r->n_new && !colmap_exif_available())
        snprintf(reused, sizeof reused, ", no EXIF focal lengths: built without libexif");
    mn_cli_progress_clear(&r->progress);
    fprintf(stderr,
            PROG ": %zu images (%zu new, %zu unreadable skipped%s%s), %zu pairs (%zu matched now, %.0f matches each), "
                 "%.1f s\n",
            r->list.n - r->n_unreadable - r->n_absent - r->n_other, r->n_new, r->n_unreadable, reused, gps,
            r->pairs.n, r->n_matched, r->n_matched ? (double)r->total_matches / r->n_matched : 0.0, mn_cli_seconds() - r->t0);
    return 0;
}

int main(int argc, char **argv)
{
    options o = {0};
    o.verify = VERIFY_COLMAP;
    o.max_keypoints = 8000;
    o.cache_mb = 1024;
    o.shard_count = 1;
    int parsed = parse_options(argc, argv, &o);
    if (parsed)
        return parsed == 1 ? 0 : 2;
    if (o.merge)
        return merge_databases(&o) == 0 ? 0 : 1;
    run r = {.ctx = {.o = &o}, .t0 = mn_cli_seconds(), .size = 1};
    struct stat st;
    if (stat(o.images, &st) != 0 || !S_ISDIR(st.st_mode)) {
        error_line("--images '%s' is not a folder", o.images);
        return 2;
    }
    if (o.reuse_keypoints && stat(o.database, &st) != 0) {
        error_line("--reuse-keypoints: database '%s' does not exist (run colmap feature_extractor first)", o.database);
        return 2;
    }
#ifdef MN_HAVE_MPI
    int mpi = mpi_start(&argc, &argv, &r.rank, &r.size);
    if (mpi < 0)
        return 1;
    if (r.size > 1 && !o.store) {
        if (r.rank == 0)
            error_line("under mpirun with several ranks, --store DIR is needed (on a file system every rank sees)");
        mpi_end(mpi, 0);
        return 2;
    }
    if (r.size > 1 && (o.shard_spec || o.reuse_keypoints)) {
        if (r.rank == 0)
            error_line("under mpirun with several ranks, --shard and --reuse-keypoints are not available");
        mpi_end(mpi, 0);
        return 2;
    }
#endif

    mn_cli_progress_init(&r.progress, PROG, o.progress);
    int rc = run_all(&r) == 0 ? 0 : 1;
    mn_cli_progress_clear(&r.progress);
    match_buffers_free(&r.buf);
    store_cache_free(&r.cache);
    image_list_free(&r.list);
    free(r.pairs.v);
    colmap_db_close(r.ctx.db);
    mn_session_free(r.ctx.session);
    mn_model_free(r.model);
#ifdef MN_HAVE_MPI
    mpi_end(mpi, rc != 0);
#endif
    retrieval_codebook_free(&r.cb);
    return rc;
}
