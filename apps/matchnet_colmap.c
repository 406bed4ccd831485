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
 * interrupted run leaves a consistent database and a rerun carries on:
 * images already present with keypoints and pairs already matched are
 * skipped.
 *
 * Exit status: 0 on success (unreadable images are reported, skipped and
 * counted), 1 on a runtime error, 2 on a usage error. Every error is one
 * line on stderr starting with "matchnet-colmap:".
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "colmap_db.h"
#include "matchnet.h"
#include "matchnet/opencv.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROG "matchnet-colmap"
#define MAX_KEYPOINTS_LIMIT 1000000L
/* Pairs written per transaction. */
#define PAIR_BLOCK 16
#define PI 3.14159265358979323846
/* --verify own: RANSAC threshold (full-resolution pixels, COLMAP's
 * SiftMatching.max_error) and fewest inliers for a verified pair
 * (SiftMatching.min_num_inliers). */
#define OWN_MAX_ERROR_PX 4.0
#define OWN_MIN_INLIERS 15

static const char synopsis[] =
    "usage: " PROG " --images DIR --database DB [options]\n"
    "\n"
    "Detect SIFT keypoints in every image under DIR, describe them with MatchNet,\n"
    "match the chosen pairs and write cameras, images, keypoints and matches into\n"
    "the COLMAP 3.8 database DB (created when it does not exist). Images and pairs\n"
    "already in DB are skipped, so an interrupted run can be resumed.\n"
    "\n"
    "options:\n";

#define error_line(...) mn_cli_error(PROG, __VA_ARGS__)
#define now_s mn_cli_seconds
#define parse_count mn_cli_parse_count

enum pair_mode { PAIRS_EXHAUSTIVE, PAIRS_SEQUENTIAL, PAIRS_FILE };
enum verify_mode { VERIFY_COLMAP, VERIFY_OWN };

typedef struct options {
    const char *images;
    const char *database;
    const char *model;
    const char *pairs_spec; /* --pairs as given; read into pairs, overlap, pair_file */
    const char *pair_file;
    const char *pair_list;
    enum pair_mode pairs;
    long overlap;
    int verify; /* enum verify_mode */
    int single_camera;
    int max_keypoints;
    int max_size;
    int threads;
} options;

/* --pairs SPEC into o->pairs, o->overlap and o->pair_file. Returns 0 or 2
 * (reported). */
static int parse_pairs(options *o)
{
    const char *v = o->pairs_spec;
    if (!v || strcmp(v, "exhaustive") == 0) {
        o->pairs = PAIRS_EXHAUSTIVE;
    } else if (strncmp(v, "sequential:", 11) == 0) {
        o->pairs = PAIRS_SEQUENTIAL;
        if ((o->overlap = parse_count(v + 11, 1, INT_MAX)) < 0) {
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

/* Fill o from argv. Returns 0, 1 after --help, or 2 after a usage error. */
static int parse_options(int argc, char **argv, options *o)
{
    static const mn_cli_choice verify_modes[] = {{"colmap", VERIFY_COLMAP}, {"own", VERIFY_OWN}, {NULL, 0}};
    const mn_cli_option table[] = {
        {"images", 0, MN_CLI_STRING, &o->images, .placeholder = "DIR",
         .help = "folder of images (searched recursively; names are\n"
                 "stored relative to DIR, as COLMAP does)"},
        {"database", 0, MN_CLI_STRING, &o->database, .placeholder = "DB",
         .help = "COLMAP database to create or add to"},
        {"pairs", 0, MN_CLI_STRING, &o->pairs_spec, .placeholder = "SPEC",
         .help = "exhaustive (default), sequential:N (each image with\n"
                 "the N next in name order) or a file of 'NAME1 NAME2'\n"
                 "lines (COLMAP's pair list)"},
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
        {"max-keypoints", 0, MN_CLI_INT, &o->max_keypoints, 1, MAX_KEYPOINTS_LIMIT, .placeholder = "N",
         .help = "keypoints per image, strongest first (default 8000)"},
        {"max-size", 0, MN_CLI_INT, &o->max_size, 16, 1 << 16, .placeholder = "PX",
         .help = "detect and describe on a copy whose longer side is at\n"
                 "most PX (area resize); keypoints are stored in full-\n"
                 "resolution coordinates (default: full size)"},
        {"threads", 0, MN_CLI_INT, &o->threads, 1, 64, .placeholder = "N",
         .help = "threads for describing and matching (default: cores, at most 8)"},
        {"model", 0, MN_CLI_STRING, &o->model, .placeholder = "PATH",
         .help = "model file (default: $MATCHNET_MODEL, else the\ninstalled model)"},
    };
    const mn_cli_program prog = {PROG, synopsis, table, sizeof table / sizeof *table, 0};
    int npos, rc = mn_cli_parse(&prog, argc, argv, NULL, &npos);
    if (rc == 0)
        rc = parse_pairs(o);
    if (rc == 0 && (!o->images || !o->database)) {
        error_line("--images and --database are required (try --help)");
        rc = 2;
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Image list                                                                */
/* ------------------------------------------------------------------------ */

typedef struct image_entry {
    char *name;            /* relative to --images, '/' separated */
    int64_t image_id;      /* 0 until in the database */
    int unreadable;        /* reported and skipped */
    mn_keypoint *kp;       /* full-resolution keypoints, OpenCV convention */
    size_t nkp;
    float *desc;           /* nkp descriptors, or NULL until described */
} image_entry;

typedef struct image_list {
    image_entry *v;
    size_t n, cap;
} image_list;

static int has_image_extension(const char *name)
{
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pnm", ".bmp", ".tif", ".tiff",
                                      ".webp"};
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (size_t k = 0; k < sizeof ext / sizeof *ext; k++) {
        size_t i = 0;
        while (ext[k][i] && dot[i] && (dot[i] | 0x20) == ext[k][i])
            i++;
        if (!ext[k][i] && !dot[i])
            return 1;
    }
    return 0;
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    size_t k = la;
    if (la && a[la - 1] != '/')
        s[k++] = '/';
    memcpy(s + k, b, lb + 1);
    return s;
}

/* Add the images under root/rel (rel "" for root itself). Returns 0 or -1 (reported). */
static int list_images(const char *root, const char *rel, image_list *list, int depth)
{
    char *dir_path = rel[0] ? join(root, rel) : strdup(root);
    if (!dir_path) {
        error_line("out of memory");
        return -1;
    }
    DIR *d = opendir(dir_path);
    if (!d) {
        error_line("cannot read folder '%s': %s", dir_path, strerror(errno));
        free(dir_path);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *full = join(dir_path, e->d_name), *name = rel[0] ? join(rel, e->d_name) : strdup(e->d_name);
        struct stat st;
        if (!full || !name) {
            error_line("out of memory");
            rc = -1;
        } else if (stat(full, &st) != 0) {
            /* A dangling link: not an image we could read anyway. */
        } else if (S_ISDIR(st.st_mode)) {
            if (depth < 32)
                rc = list_images(root, name, list, depth + 1);
        } else if (S_ISREG(st.st_mode) && has_image_extension(e->d_name)) {
            if (list->n == list->cap) {
                size_t cap = list->cap ? 2 * list->cap : 64;
                image_entry *v = realloc(list->v, cap * sizeof *v);
                if (!v) {
                    error_line("out of memory");
                    rc = -1;
                } else {
                    list->v = v;
                    list->cap = cap;
                }
            }
            if (rc == 0) {
                list->v[list->n++] = (image_entry){.name = name};
                name = NULL;
            }
        }
        free(full);
        free(name);
    }
    closedir(d);
    free(dir_path);
    return rc;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(((const image_entry *)a)->name, ((const image_entry *)b)->name);
}

/* ------------------------------------------------------------------------ */
/* Detection and description                                                 */
/* ------------------------------------------------------------------------ */

/* Weights of source samples that output sample o covers when n_src samples
 * shrink to n_dst (area averaging): source indices [*first, *first + count). */
static int area_span(int n_src, int n_dst, int o, int *first, float *w, int max_w)
{
    double scale = (double)n_src / n_dst, lo = o * scale, hi = (o + 1) * scale;
    int s0 = (int)floor(lo), count = 0;
    for (int s = s0; s < n_src && s < hi && count < max_w; s++) {
        double a = s > lo ? s : lo, b = s + 1 < hi ? s + 1 : hi;
        w[count++] = (float)((b - a) / scale);
    }
    *first = s0;
    return count;
}

/* Shrink src to dst (dst->width x dst->height, allocated here) by area
 * averaging. Returns 0 or -1 (out of memory). */
static int resize_area(const mn_image *src, mn_image *dst)
{
    int sw = src->width, sh = src->height, dw = dst->width, dh = dst->height;
    int max_w = (int)ceil((double)(sw > sh ? sw : sh) / (dw < dh ? dw : dh)) + 2;
    float *tmp = malloc((size_t)sh * dw * sizeof *tmp), *w = malloc((size_t)max_w * sizeof *w);
    dst->pixels = malloc((size_t)dw * dh);
    dst->stride = (size_t)dw;
    if (!tmp || !w || !dst->pixels) {
        free(tmp);
        free(w);
        free(dst->pixels);
        dst->pixels = NULL;
        return -1;
    }
    for (int x = 0; x < dw; x++) {
        int first, n = area_span(sw, dw, x, &first, w, max_w);
        for (int y = 0; y < sh; y++) {
            const uint8_t *row = src->pixels + (size_t)y * src->stride + first;
            float acc = 0;
            for (int k = 0; k < n; k++)
                acc += w[k] * row[k];
            tmp[(size_t)y * dw + x] = acc;
        }
    }
    for (int y = 0; y < dh; y++) {
        int first, n = area_span(sh, dh, y, &first, w, max_w);
        for (int x = 0; x < dw; x++) {
            float acc = 0;
            for (int k = 0; k < n; k++)
                acc += w[k] * tmp[(size_t)(first + k) * dw + x];
            int v = (int)lrintf(acc);
            dst->pixels[(size_t)y * dw + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    free(tmp);
    free(w);
    return 0;
}

typedef struct context {
    const options *o;
    colmap_db *db;
    mn_session *session;
    size_t dim;
    mn_extract_params ep;
    char err[1024];
} context;

/* Load an image and make the copy that keypoints are detected and
 * described on. *sx, *sy: full-resolution pixels per working pixel.
 * Returns 0, or -1 with the reason in mn_last_error() / ctx->err. */
static int load_working_image(context *ctx, const char *path, mn_image *full, mn_image *work, double *sx, double *sy)
{
    if (mn_image_load(path, full) != MN_OK) {
        snprintf(ctx->err, sizeof ctx->err, "%s", mn_last_error());
        return -1;
    }
    *work = *full;
    *sx = *sy = 1.0;
    int longer = full->width > full->height ? full->width : full->height;
    if (ctx->o->max_size > 0 && longer > ctx->o->max_size) {
        double s = (double)ctx->o->max_size / longer;
        mn_image small = {NULL, (int)lround(full->width * s), (int)lround(full->height * s), 0};
        if (small.width < 1)
            small.width = 1;
        if (small.height < 1)
            small.height = 1;
        if (resize_area(full, &small) != 0) {
            snprintf(ctx->err, sizeof ctx->err, "out of memory");
            mn_image_free(full);
            return -1;
        }
        *work = small;
        *sx = (double)full->width / small.width;
        *sy = (double)full->height / small.height;
    }
    return 0;
}

/* The image of an entry, ready to describe: 1 when loaded, 0 when it cannot
 * be read (reported, marked unreadable: the caller skips it), -1 when out
 * of memory (ctx->err says so). */
static int open_image(context *ctx, image_entry *im, mn_image *full, mn_image *work, double *sx, double *sy)
{
    char *path = join(ctx->o->images, im->name);
    if (!path) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory");
        return -1;
    }
    int rc = load_working_image(ctx, path, full, work, sx, sy);
    free(path);
    if (rc != 0) {
        im->unreadable = 1;
        error_line("skipping '%s': %s", im->name, ctx->err);
        return 0;
    }
    return 1;
}

static void free_working_image(mn_image *full, mn_image *work)
{
    if (work->pixels != full->pixels)
        free(work->pixels);
    mn_image_free(full);
}

/* Describe keypoints given in working-image coordinates. */
static int describe(context *ctx, image_entry *im, const mn_image *work, const mn_keypoint *kp_work)
{
    im->desc = malloc((im->nkp ? im->nkp : 1) * ctx->dim * sizeof *im->desc);
    if (!im->desc) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory for %zu descriptors", im->nkp);
        return -1;
    }
    if (mn_describe_keypoints(ctx->session, work->pixels, work->width, work->height, work->stride, kp_work, im->nkp,
                              &ctx->ep, im->desc) != MN_OK) {
        snprintf(ctx->err, sizeof ctx->err, "%s", mn_last_error());
        free(im->desc);
        im->desc = NULL;
        return -1;
    }
    return 0;
}

/* Working-image keypoint <-> full-resolution keypoint (pixel centres map
 * to pixel centres). */
static mn_keypoint scale_keypoint(mn_keypoint k, double sx, double sy, int to_full)
{
    if (to_full) {
        k.x = (float)((k.x + 0.5) * sx - 0.5);
        k.y = (float)((k.y + 0.5) * sy - 0.5);
        k.size = (float)(k.size * 0.5 * (sx + sy));
    } else {
        k.x = (float)((k.x + 0.5) / sx - 0.5);
        k.y = (float)((k.y + 0.5) / sy - 0.5);
        k.size = (float)(k.size / (0.5 * (sx + sy)));
    }
    return k;
}

/* OpenCV keypoint -> COLMAP row (x, y, a11, a12, a21, a22): +0.5 to move
 * the origin to the image corner; scale is SIFT's sigma (OpenCV's size is
 * its diameter, 2 sigma), orientation in radians in the same y-down sense. */
static void keypoint_to_colmap(const mn_keypoint *k, float *row)
{
    double scale = 0.5 * k->size, o = (k->angle < 0 ? 0.0 : k->angle) * (PI / 180.0);
    row[0] = k->x + 0.5f;
    row[1] = k->y + 0.5f;
    row[2] = (float)(scale * cos(o));
    row[3] = (float)(-scale * sin(o));
    row[4] = (float)(scale * sin(o));
    row[5] = (float)(scale * cos(o));
}

static mn_keypoint keypoint_from_colmap(const float *row)
{
    mn_keypoint k;
    double scale = hypot(row[2], row[4]), deg = atan2(row[4], row[2]) * (180.0 / PI);
    k.x = row[0] - 0.5f;
    k.y = row[1] - 0.5f;
    k.size = scale > 0 ? (float)(2 * scale) : 1.0f;
    k.angle = (float)(deg < 0 ? deg + 360 : deg);
    return k;
}

/* A camera for an image of this size: a new one, or with --single-camera
 * the first SIMPLE_RADIAL camera of the same size. */
static int camera_for(context *ctx, int width, int height, int64_t *camera_id)
{
    if (ctx->o->single_camera) {
        if (colmap_db_find_camera(ctx->db, COLMAP_SIMPLE_RADIAL, width, height, camera_id, ctx->err,
                                  sizeof ctx->err) != 0)
            return -1;
        if (*camera_id)
            return 0;
    }
    /* COLMAP's default prior when EXIF has none: focal 1.2 x the longer side. */
    double params[4] = {1.2 * (width > height ? width : height), width / 2.0, height / 2.0, 0.0};
    return colmap_db_add_camera(ctx->db, COLMAP_SIMPLE_RADIAL, width, height, params, 4, camera_id, ctx->err,
                                sizeof ctx->err);
}

/* Detect, describe and store a new image (one transaction). */
static int add_image(context *ctx, image_entry *im, int64_t existing_id, int64_t existing_camera)
{
    mn_image full = {0}, work = {0};
    mn_keypoint *kw = NULL;
    float *rows = NULL;
    double sx, sy;
    int rc = -1;
    int opened = open_image(ctx, im, &full, &work, &sx, &sy);
    if (opened <= 0)
        return opened;
    kw = malloc((size_t)ctx->o->max_keypoints * sizeof *kw);
    if (!kw) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory");
        goto done;
    }
    if (mn_keypoints_detect(&work, MN_DETECTOR_SIFT, (size_t)ctx->o->max_keypoints, kw, &im->nkp) != MN_OK) {
        snprintf(ctx->err, sizeof ctx->err, "%s: %s", im->name, mn_last_error());
        goto done;
    }
    if (describe(ctx, im, &work, kw) != 0)
        goto done;
    im->kp = malloc((im->nkp ? im->nkp : 1) * sizeof *im->kp);
    rows = malloc((im->nkp ? im->nkp : 1) * 6 * sizeof *rows);
    if (!im->kp || !rows) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < im->nkp; k++) {
        im->kp[k] = scale_keypoint(kw[k], sx, sy, 1);
        keypoint_to_colmap(&im->kp[k], rows + 6 * k);
    }

    if (colmap_db_begin(ctx->db, ctx->err, sizeof ctx->err) != 0)
        goto done;
    int64_t camera = existing_camera;
    if (existing_id) {
        int cw, ch;
        if (colmap_db_camera_size(ctx->db, existing_camera, &cw, &ch, ctx->err, sizeof ctx->err) != 0)
            goto done;
        if (cw != full.width || ch != full.height) {
            snprintf(ctx->err, sizeof ctx->err, "'%s' is %d x %d but its camera %lld in the database is %d x %d",
                     im->name, full.width, full.height, (long long)existing_camera, cw, ch);
            goto done;
        }
        im->image_id = existing_id;
    } else if (camera_for(ctx, full.width, full.height, &camera) != 0 ||
               colmap_db_add_image(ctx->db, im->name, camera, &im->image_id, ctx->err, sizeof ctx->err) != 0) {
        goto done;
    }
    if (colmap_db_write_keypoints(ctx->db, im->image_id, rows, im->nkp, ctx->err, sizeof ctx->err) != 0 ||
        colmap_db_commit(ctx->db, ctx->err, sizeof ctx->err) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0) {
        colmap_db_rollback(ctx->db);
        im->image_id = existing_id;
    }
    free(rows);
    free(kw);
    free_working_image(&full, &work);
    return rc;
}

/* Describe an image already in the database with its stored keypoints (a
 * resumed run that has pairs left for it). */
static int describe_existing(context *ctx, image_entry *im)
{
    mn_image full = {0}, work = {0};
    mn_keypoint *kw = NULL;
    float *rows = NULL;
    double sx, sy;
    int rc = -1;
    int opened = open_image(ctx, im, &full, &work, &sx, &sy);
    if (opened <= 0)
        return opened;
    if (colmap_db_read_keypoints(ctx->db, im->image_id, &rows, &im->nkp, ctx->err, sizeof ctx->err) != 0)
        goto done;
    im->kp = malloc((im->nkp ? im->nkp : 1) * sizeof *im->kp);
    kw = malloc((im->nkp ? im->nkp : 1) * sizeof *kw);
    if (!im->kp || !kw) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < im->nkp; k++) {
        im->kp[k] = keypoint_from_colmap(rows + 6 * k);
        kw[k] = scale_keypoint(im->kp[k], sx, sy, 0);
    }
    rc = describe(ctx, im, &work, kw);
done:
    free(rows);
    free(kw);
    free_working_image(&full, &work);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Pairs                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct pair_list {
    size_t (*v)[2];
    size_t n, cap;
} pair_list;

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

/* The pairs to match, each once, over readable images. Returns 0 or -1 (reported). */
static int select_pairs(const options *o, const image_list *list, pair_list *out)
{
    if (o->pairs != PAIRS_FILE) {
        for (size_t i = 0; i < list->n; i++) {
            if (list->v[i].unreadable)
                continue;
            size_t end = o->pairs == PAIRS_SEQUENTIAL && (size_t)o->overlap < list->n - i ? i + 1 + (size_t)o->overlap
                                                                                            : list->n;
            for (size_t j = i + 1; j < end; j++)
                if (!list->v[j].unreadable && pair_push(out, i, j) != 0) {
                    error_line("out of memory");
                    return -1;
                }
        }
        return 0;
    }
    FILE *f = fopen(o->pair_file, "r");
    if (!f) {
        error_line("cannot open pair list '%s': %s", o->pair_file, strerror(errno));
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
            error_line("%s:%ld: %s", o->pair_file, lineno,
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
        if (list->v[i].unreadable || list->v[j].unreadable || seen[(size_t)i * list->n + (size_t)j])
            continue;
        seen[(size_t)i * list->n + (size_t)j] = 1;
        if (pair_push(out, (size_t)i, (size_t)j) != 0) {
            error_line("out of memory");
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        error_line("cannot read pair list '%s': %s", o->pair_file, strerror(errno));
        rc = -1;
    }
    free(seen);
    fclose(f);
    return rc;
}

static int write_pair_list(const char *path, const image_list *list, const pair_list *pairs)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        error_line("cannot create '%s': %s", path, strerror(errno));
        return -1;
    }
    for (size_t k = 0; k < pairs->n; k++)
        fprintf(f, "%s %s\n", list->v[pairs->v[k][0]].name, list->v[pairs->v[k][1]].name);
    if (ferror(f) | (fclose(f) != 0)) {
        error_line("cannot write '%s': %s", path, strerror(errno));
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

/* Match one pair and write it (inside the caller's transaction). */
static int match_pair(context *ctx, const image_entry *a, const image_entry *b, mn_dmatch *m, uint32_t *i1,
                      uint32_t *i2, uint8_t *inl, size_t *n_matches)
{
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
        return 0;
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

/* ------------------------------------------------------------------------ */
/* Progress                                                                  */
/* ------------------------------------------------------------------------ */

static void progress(int tty, double t0, double phase_t0, const char *what, size_t done, size_t total)
{
    if (!tty)
        return;
    double now = now_s(), left = done ? (now - phase_t0) / done * (total - done) : 0;
    fprintf(stderr, "\r" PROG ": %s %zu/%zu, %.0f s elapsed, %.0f s left   ", what, done, total, now - t0, left);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

int main(int argc, char **argv)
{
    options o = {0};
    o.pairs = PAIRS_EXHAUSTIVE;
    o.verify = VERIFY_COLMAP;
    o.max_keypoints = 8000;
    int parsed = parse_options(argc, argv, &o);
    if (parsed)
        return parsed == 1 ? 0 : 2;

    int rc = 1, tty = isatty(STDERR_FILENO);
    image_list list = {0};
    pair_list pairs = {0};
    mn_model *model = NULL;
    context ctx = {.o = &o};
    mn_dmatch *m = NULL;
    uint32_t *i1 = NULL, *i2 = NULL;
    uint8_t *inl = NULL;
    double t0 = now_s();

    struct stat st;
    if (stat(o.images, &st) != 0 || !S_ISDIR(st.st_mode)) {
        error_line("--images '%s' is not a folder", o.images);
        return 2;
    }
    if (list_images(o.images, "", &list, 0) != 0)
        goto done;
    if (list.n == 0) {
        error_line("no images (.jpg, .png, ...) under '%s'", o.images);
        goto done;
    }
    qsort(list.v, list.n, sizeof *list.v, compare_names);

    if (colmap_db_open(o.database, &ctx.db, ctx.err, sizeof ctx.err) != 0) {
        error_line("%s: %s", o.database, ctx.err);
        goto done;
    }
    if ((o.model ? mn_model_load_file(o.model, &model) : mn_model_load_default(&model)) != MN_OK) {
        error_line("%s", mn_last_error());
        goto done;
    }
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = o.threads;
    if (mn_session_create(model, &sp, &ctx.session) != MN_OK) {
        error_line("%s", mn_last_error());
        goto done;
    }
    ctx.dim = mn_model_descriptor_dim(model);
    ctx.ep = mn_extract_params_default();
    ctx.ep.scale_factor = mn_detector_scale_factor(MN_DETECTOR_SIFT);

    /* Images: detect, describe and store those not yet in the database. */
    size_t n_new = 0, n_unreadable = 0, max_kp = 0;
    double phase_t0 = now_s();
    for (size_t i = 0; i < list.n; i++) {
        image_entry *im = &list.v[i];
        int64_t id, camera, rows;
        if (colmap_db_find_image(ctx.db, im->name, &id, &camera, &rows, ctx.err, sizeof ctx.err) != 0) {
            error_line("%s: %s", o.database, ctx.err);
            goto done;
        }
        if (id && rows >= 0) {
            im->image_id = id;
        } else {
            if (add_image(&ctx, im, id, camera) != 0) {
                error_line("%s", ctx.err);
                goto done;
            }
            n_new += !im->unreadable;
        }
        n_unreadable += im->unreadable;
        progress(tty, t0, phase_t0, "images", i + 1, list.n);
    }

    if (select_pairs(&o, &list, &pairs) != 0)
        goto done;
    if (o.pair_list && write_pair_list(o.pair_list, &list, &pairs) != 0)
        goto done;

    /* Pairs: skip those already done; describe resumed images on demand. */
    size_t n_todo = 0;
    for (size_t k = 0; k < pairs.n; k++) {
        int has_m, has_g;
        const image_entry *a = &list.v[pairs.v[k][0]], *b = &list.v[pairs.v[k][1]];
        if (colmap_db_pair_status(ctx.db, a->image_id, b->image_id, &has_m, &has_g, ctx.err, sizeof ctx.err) != 0) {
            error_line("%s: %s", o.database, ctx.err);
            goto done;
        }
        if (has_m && (has_g || o.verify != VERIFY_OWN))
            continue;
        pairs.v[n_todo][0] = pairs.v[k][0];
        pairs.v[n_todo][1] = pairs.v[k][1];
        n_todo++;
    }
    for (size_t k = 0; k < n_todo; k++)
        for (int s = 0; s < 2; s++) {
            image_entry *im = &list.v[pairs.v[k][s]];
            if (!im->desc && !im->unreadable && describe_existing(&ctx, im) != 0) {
                error_line("%s: %s", im->name, ctx.err);
                goto done;
            }
            if (im->nkp > max_kp)
                max_kp = im->nkp;
        }
    m = malloc((max_kp ? max_kp : 1) * sizeof *m);
    i1 = malloc((max_kp ? max_kp : 1) * sizeof *i1);
    i2 = malloc((max_kp ? max_kp : 1) * sizeof *i2);
    inl = malloc(max_kp ? max_kp : 1);
    if (!m || !i1 || !i2 || !inl) {
        error_line("out of memory");
        goto done;
    }
    size_t total_matches = 0, n_matched = 0, in_block = 0;
    phase_t0 = now_s();
    for (size_t k = 0; k < n_todo; k++) {
        const image_entry *a = &list.v[pairs.v[k][0]], *b = &list.v[pairs.v[k][1]];
        if (a->unreadable || b->unreadable)
            continue; /* became unreadable while resuming */
        if (in_block == 0 && colmap_db_begin(ctx.db, ctx.err, sizeof ctx.err) != 0) {
            error_line("%s: %s", o.database, ctx.err);
            goto done;
        }
        size_t nm;
        if (match_pair(&ctx, a, b, m, i1, i2, inl, &nm) != 0) {
            error_line("%s", ctx.err);
            goto done;
        }
        total_matches += nm;
        n_matched++;
        if (++in_block == PAIR_BLOCK || k + 1 == n_todo) {
            if (colmap_db_commit(ctx.db, ctx.err, sizeof ctx.err) != 0) {
                error_line("%s: %s", o.database, ctx.err);
                goto done;
            }
            in_block = 0;
        }
        progress(tty, t0, phase_t0, "pairs", k + 1, n_todo);
    }
    if (in_block && colmap_db_commit(ctx.db, ctx.err, sizeof ctx.err) != 0) {
        error_line("%s: %s", o.database, ctx.err);
        goto done;
    }

    fprintf(stderr,
            PROG ": %zu images (%zu new, %zu unreadable skipped), %zu pairs (%zu matched now, %.0f matches each), "
                 "%.1f s\n",
            list.n - n_unreadable, n_new, n_unreadable, pairs.n, n_matched,
            n_matched ? (double)total_matches / n_matched : 0.0, now_s() - t0);
    rc = 0;

done:
    free(m);
    free(i1);
    free(i2);
    free(inl);
    for (size_t i = 0; i < list.n; i++) {
        free(list.v[i].name);
        free(list.v[i].kp);
        free(list.v[i].desc);
    }
    free(list.v);
    free(pairs.v);
    colmap_db_close(ctx.db);
    mn_session_free(ctx.session);
    mn_model_free(model);
    return rc;
}
