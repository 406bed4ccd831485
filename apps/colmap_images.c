/*
 * colmap_images.c - matchnet-colmap's images (colmap_app.h): the list of
 * image files under --images, each image loaded with the copy that
 * keypoints are detected and described on (shrunk to --max-size), its
 * keypoints and descriptors, and its camera, image and keypoints rows.
 *
 * --affine: each detected keypoint's ellipse is estimated
 * (mn_affine_shape_estimate(), default parameters, as matchnet-match
 * --affine) on the working copy, its affine patch described, and the
 * ellipse is the keypoints row. Rows read back from the database (a
 * resumed run, --reuse-keypoints) are described as the ellipses they are,
 * except exact similarity frames (a11 = a22, a12 = -a21: 2- and 4-column
 * rows, colmap feature_extractor's rows without
 * --SiftExtraction.estimate_affine_shape, a circle of ours where no ellipse
 * was found), whose ellipse is estimated here as for a new image.
 */
#define _POSIX_C_SOURCE 200809L
#include "colmap_app.h"
#include "colmap_convert.h"
#include "colmap_exif.h"
#include "test_point.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------ */
/* Image list                                                                */
/* ------------------------------------------------------------------------ */

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

int image_list_read(const char *root, image_list *list)
{
    if (list_images(root, "", list, 0) != 0)
        return -1;
    if (list->n == 0) {
        error_line("no images (.jpg, .png, ...) under '%s'", root);
        return -1;
    }
    qsort(list->v, list->n, sizeof *list->v, compare_names);
    return 0;
}

void image_list_free(image_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->v[i].name);
        free(list->v[i].kp);
        free(list->v[i].desc);
        free(list->v[i].global);
    }
    if (list->global_file)
        close(list->global_fd);
    free(list->v);
    *list = (image_list){0};
}

/* ------------------------------------------------------------------------ */
/* Loading, and the working-size copy                                        */
/* ------------------------------------------------------------------------ */

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
        int w = (int)lround(full->width * s), h = (int)lround(full->height * s);
        mn_image small;
        /* The library's resize (cv::resize, INTER_AREA): the same shrinking
         * as the training images had (eval/patchset.cpp). */
        if (mn_image_resize(full, w < 1 ? 1 : w, h < 1 ? 1 : h, &small) != MN_OK) {
            snprintf(ctx->err, sizeof ctx->err, "%s", mn_last_error());
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
        mn_image_free(work);
    mn_image_free(full);
}

/* ------------------------------------------------------------------------ */
/* Keypoints, descriptors and the database rows                              */
/* ------------------------------------------------------------------------ */

/* Describe keypoints given in working-image coordinates: the circles
 * kp_work, or with --affine the ellipses aff_work. */
static int describe(context *ctx, image_entry *im, const mn_image *work, const mn_keypoint *kp_work,
                    const mn_affine_keypoint *aff_work)
{
    im->desc = malloc((im->nkp ? im->nkp : 1) * ctx->dim * sizeof *im->desc);
    if (!im->desc) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory for %zu descriptors", im->nkp);
        return -1;
    }
    mn_status st = aff_work ? mn_describe_keypoints_affine(ctx->session, work->pixels, work->width, work->height,
                                                           work->stride, aff_work, im->nkp, &ctx->ep, im->desc)
                            : mn_describe_keypoints(ctx->session, work->pixels, work->width, work->height,
                                                    work->stride, kp_work, im->nkp, &ctx->ep, im->desc);
    if (st != MN_OK) {
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

/* scale_keypoint() for an ellipse: x and y as there, A's rows (the image's
 * x and y) by sx and sy. */
static mn_affine_keypoint scale_affine(mn_affine_keypoint a, double sx, double sy, int to_full)
{
    if (!to_full) {
        sx = 1.0 / sx;
        sy = 1.0 / sy;
    }
    a.x = (float)((a.x + 0.5) * sx - 0.5);
    a.y = (float)((a.y + 0.5) * sy - 0.5);
    a.a11 = (float)(a.a11 * sx), a.a12 = (float)(a.a12 * sx);
    a.a21 = (float)(a.a21 * sy), a.a22 = (float)(a.a22 * sy);
    return a;
}

/* --affine: the ellipses of n keypoints of the working image. 0, or -1
 * with ctx->err set. */
static int estimate_shapes(context *ctx, const mn_image *work, const mn_keypoint *kw, size_t n,
                           mn_affine_keypoint *out)
{
    if (mn_affine_shape_estimate(ctx->session, work->pixels, work->width, work->height, work->stride, kw, n, NULL,
                                 out, NULL) != MN_OK) {
        snprintf(ctx->err, sizeof ctx->err, "%s", mn_last_error());
        return -1;
    }
    return 0;
}

/* A camera for an image of this size, as COLMAP's feature_extractor makes
 * it: --camera-model (SIMPLE_RADIAL), the focal length from the EXIF data
 * with prior_focal_length 1, else 1.2 x the longer side with 0; with
 * --single-camera the first camera of the same model and size. */
static int camera_for(context *ctx, const image_entry *im, int width, int height, int64_t *camera_id)
{
    const colmap_camera_model *model = colmap_camera_model_by_id(ctx->o->camera_model);
    if (ctx->o->single_camera) {
        if (colmap_db_find_camera(ctx->db, model->id, width, height, camera_id, ctx->err, sizeof ctx->err) != 0)
            return -1;
        if (*camera_id)
            return 0;
    }
    char *path = join(ctx->o->images, im->name);
    if (!path) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory");
        return -1;
    }
    double focal, params[COLMAP_MAX_CAMERA_PARAMS];
    int prior = colmap_exif_focal(path, width, height, &focal);
    free(path);
    if (!prior)
        focal = colmap_default_focal(width, height);
    colmap_camera_params_init(model, focal, width, height, params);
    return colmap_db_add_camera(ctx->db, model->id, width, height, params, model->num_params, prior, camera_id,
                                ctx->err, sizeof ctx->err);
}

/* Write an image's camera (unless it has one), image and keypoints rows,
 * in one transaction; a camera already in the database must be the
 * image's size. Returns 0, or -1 with ctx->err set (the caller rolls back). */
static int store_image(context *ctx, image_entry *im, int width, int height, const float *rows, int64_t existing_id,
                       int64_t existing_camera)
{
    if (colmap_db_begin(ctx->db, ctx->err, sizeof ctx->err) != 0)
        return -1;
    int64_t camera = existing_camera;
    if (existing_id) {
        int cw, ch;
        if (colmap_db_camera_size(ctx->db, existing_camera, &cw, &ch, ctx->err, sizeof ctx->err) != 0)
            return -1;
        if (cw != width || ch != height) {
            snprintf(ctx->err, sizeof ctx->err, "'%s' is %d x %d but its camera %lld in the database is %d x %d",
                     im->name, width, height, (long long)existing_camera, cw, ch);
            return -1;
        }
        im->image_id = existing_id;
    } else if (camera_for(ctx, im, width, height, &camera) != 0 ||
               colmap_db_add_image(ctx->db, im->name, camera, &im->image_id, ctx->err, sizeof ctx->err) != 0) {
        return -1;
    }
    if (colmap_db_write_keypoints(ctx->db, im->image_id, rows, im->nkp, ctx->err, sizeof ctx->err) != 0)
        return -1;
    mn_test_point("colmap-image-commit");
    if (colmap_db_commit(ctx->db, ctx->err, sizeof ctx->err) != 0)
        return -1;
    mn_test_point("colmap-image-stored");
    return 0;
}

/* Detect and describe an image: *e gets its full-resolution keypoints,
 * descriptors and size. 1, 0 when it cannot be read (reported, marked
 * unreadable), -1 with ctx->err set. */
static int detect_and_describe(context *ctx, image_entry *im, store_entry *e)
{
    mn_image full = {0}, work = {0};
    double sx, sy;
    *e = (store_entry){0};
    int opened = open_image(ctx, im, &full, &work, &sx, &sy);
    if (opened <= 0)
        return opened;
    int rc = -1;
    mn_keypoint *kw = malloc((size_t)ctx->o->max_keypoints * sizeof *kw);
    if (!kw) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory");
        goto done;
    }
    if (mn_keypoints_detect(&work, MN_DETECTOR_SIFT, (size_t)ctx->o->max_keypoints, kw, &e->nkp) != MN_OK) {
        snprintf(ctx->err, sizeof ctx->err, "%s: %s", im->name, mn_last_error());
        goto done;
    }
    e->desc = malloc((e->nkp ? e->nkp : 1) * ctx->dim * sizeof *e->desc);
    e->kp = malloc((e->nkp ? e->nkp : 1) * sizeof *e->kp);
    if (ctx->o->affine)
        e->akp = malloc((e->nkp ? e->nkp : 1) * sizeof *e->akp);
    if (!e->desc || !e->kp || (ctx->o->affine && !e->akp)) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory for %zu descriptors", e->nkp);
        goto done;
    }
    if (ctx->o->affine && estimate_shapes(ctx, &work, kw, e->nkp, e->akp) != 0)
        goto done;
    mn_status st = e->akp ? mn_describe_keypoints_affine(ctx->session, work.pixels, work.width, work.height,
                                                         work.stride, e->akp, e->nkp, &ctx->ep, e->desc)
                          : mn_describe_keypoints(ctx->session, work.pixels, work.width, work.height, work.stride, kw,
                                                  e->nkp, &ctx->ep, e->desc);
    if (st != MN_OK) {
        snprintf(ctx->err, sizeof ctx->err, "%s", mn_last_error());
        goto done;
    }
    for (size_t k = 0; k < e->nkp; k++) {
        if (e->akp) {
            /* The equivalent circle, as a store file read back gives it. */
            e->akp[k] = scale_affine(e->akp[k], sx, sy, 1);
            e->kp[k] = mn_affine_to_keypoint(&e->akp[k]);
        } else {
            e->kp[k] = scale_keypoint(kw[k], sx, sy, 1);
        }
    }
    e->width = full.width;
    e->height = full.height;
    rc = 1;
done:
    if (rc != 1)
        store_entry_free(e);
    free(kw);
    free_working_image(&full, &work);
    return rc;
}

/* COLMAP's rows of an entry's keypoints (malloc'ed; its ellipses when it
 * has them), or NULL when out of memory. */
static float *keypoint_rows(const store_entry *e)
{
    float *rows = malloc((e->nkp ? e->nkp : 1) * 6 * sizeof *rows);
    if (rows)
        for (size_t k = 0; k < e->nkp; k++) {
            if (e->akp)
                colmap_keypoint_from_affine(&e->akp[k], rows + 6 * k);
            else
                colmap_keypoint_from_mn(&e->kp[k], rows + 6 * k);
        }
    return rows;
}

int image_store(context *ctx, image_entry *im, float **rows, int *width, int *height)
{
    store_entry e;
    int rc = store_read(ctx, im->name, rows == NULL, &e);
    if (rc == 0) {
        rc = detect_and_describe(ctx, im, &e);
        if (rc == 1 && store_write(ctx, im->name, &e) != 0)
            rc = -1;
    }
    if (rc == 1) {
        im->nkp = e.nkp;
        if (rows) {
            *width = e.width;
            *height = e.height;
            if (!(*rows = keypoint_rows(&e))) {
                snprintf(ctx->err, sizeof ctx->err, "out of memory");
                rc = -1;
            }
        }
    }
    store_entry_free(&e);
    return rc;
}

int image_add(context *ctx, image_entry *im, int64_t existing_id, int64_t existing_camera)
{
    float *rows = NULL;
    int width = 0, height = 0, rc;
    if (ctx->o->store) {
        /* The keypoints and descriptors stay in the store, not in memory. */
        rc = image_store(ctx, im, &rows, &width, &height);
    } else {
        store_entry e;
        rc = detect_and_describe(ctx, im, &e);
        if (rc == 1) {
            im->kp = e.kp;
            im->desc = e.desc;
            im->nkp = e.nkp;
            width = e.width;
            height = e.height;
            if (!(rows = keypoint_rows(&e))) {
                snprintf(ctx->err, sizeof ctx->err, "out of memory");
                rc = -1;
            }
            free(e.akp); /* matching needs the positions only */
        }
    }
    if (rc <= 0) {
        free(rows);
        return rc;
    }
    mn_test_point("colmap-image-described");
    rc = store_image(ctx, im, width, height, rows, existing_id, existing_camera);
    if (rc != 0) {
        colmap_db_rollback(ctx->db);
        im->image_id = existing_id;
    }
    free(rows);
    return rc;
}

int image_check_stored(context *ctx, image_entry *im, int64_t db_rows)
{
    store_entry e;
    int rc = store_read(ctx, im->name, 1, &e);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        im->nkp = e.nkp;
        if ((int64_t)e.nkp != db_rows) {
            snprintf(ctx->err, sizeof ctx->err,
                     "'%s' has %lld keypoints in the database but %zu in the store: the database was made with "
                     "other settings (--max-keypoints, --max-size, --affine, the model); use another --store",
                     im->name, (long long)db_rows, e.nkp);
            return -1;
        }
        return 1;
    }
    float *rows = NULL, *db = NULL;
    int width, height;
    size_t n_db = 0;
    rc = image_store(ctx, im, &rows, &width, &height);
    if (rc == 1 && colmap_db_read_keypoints(ctx->db, im->image_id, &db, &n_db, ctx->err, sizeof ctx->err) != 0)
        rc = -1;
    if (rc == 1 && (n_db != im->nkp || memcmp(db, rows, n_db * 6 * sizeof *db) != 0)) {
        snprintf(ctx->err, sizeof ctx->err,
                 "'%s': its keypoints in the database differ from a detection with these settings "
                 "(--max-keypoints, --max-size, --affine, another program?); use it without --store",
                 im->name);
        rc = -1;
    }
    free(rows);
    free(db);
    return rc;
}

/* Whether a row's shape is a similarity (a rotation and a scale), exactly
 * as COLMAP's FeatureKeypoint(x, y, scale, orientation) and
 * colmap_keypoint_from_mn() write one. */
static int is_similarity_row(const float row[6])
{
    return row[2] == row[5] && row[3] == -row[4];
}

/* --affine: rows -> ellipses of the working image in aw (n of them): the
 * rows' own (colmap_keypoint_to_affine()), or for similarity rows that
 * convert to a circle the ellipse estimated from that circle (kw is
 * scratch for n keypoints, idx for n indices). Returns the rows that gave
 * placeholders or circles in place of their shape (degenerate, reflected
 * or not finite), or -1 with ctx->err set. */
static long rows_to_ellipses(context *ctx, const mn_image *work, const float *rows, size_t n, double sx, double sy,
                             mn_keypoint *kw, size_t *idx, mn_affine_keypoint *aw)
{
    long bad = 0;
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        const float *r = rows + 6 * k;
        mn_keypoint circle;
        if (is_similarity_row(r) && colmap_keypoint_to_mn(r, &circle) == 0) {
            idx[m] = k;
            kw[m++] = scale_keypoint(circle, sx, sy, 0);
            continue;
        }
        mn_affine_keypoint a;
        bad += colmap_keypoint_to_affine(r, &a) != 0;
        aw[k] = scale_affine(a, sx, sy, 0);
    }
    /* The similarity rows' ellipses, found together (the session's threads),
     * then put in their rows' places. */
    mn_affine_keypoint *est = malloc((m ? m : 1) * sizeof *est);
    if (!est) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory");
        return -1;
    }
    if (estimate_shapes(ctx, work, kw, m, est) != 0) {
        free(est);
        return -1;
    }
    for (size_t j = 0; j < m; j++)
        aw[idx[j]] = est[j];
    free(est);
    return bad;
}

int image_describe_stored(context *ctx, image_entry *im)
{
    mn_image full = {0}, work = {0};
    mn_keypoint *kw = NULL;
    mn_affine_keypoint *aw = NULL;
    size_t *idx = NULL;
    float *rows = NULL;
    double sx, sy;
    int rc = -1;
    int opened = open_image(ctx, im, &full, &work, &sx, &sy);
    if (opened <= 0)
        return opened;
    if (colmap_db_read_keypoints(ctx->db, im->image_id, &rows, &im->nkp, ctx->err, sizeof ctx->err) != 0)
        goto done;
    size_t n1 = im->nkp ? im->nkp : 1;
    im->kp = malloc(n1 * sizeof *im->kp);
    kw = malloc(n1 * sizeof *kw);
    if (ctx->o->affine) {
        aw = malloc(n1 * sizeof *aw);
        idx = malloc(n1 * sizeof *idx);
    }
    if (!im->kp || !kw || (ctx->o->affine && (!aw || !idx))) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory");
        goto done;
    }
    long bad = 0;
    for (size_t k = 0; k < im->nkp; k++) {
        bad += colmap_keypoint_to_mn(rows + 6 * k, &im->kp[k]) != 0;
        kw[k] = scale_keypoint(im->kp[k], sx, sy, 0);
    }
    if (ctx->o->affine && (bad = rows_to_ellipses(ctx, &work, rows, im->nkp, sx, sy, kw, idx, aw)) < 0)
        goto done;
    if (bad)
        error_line("'%s': %ld of its %zu keypoints in the database are degenerate%s or not finite; described as %s",
                   im->name, bad, im->nkp, aw ? ", reflected" : "", aw ? "circles or placeholders" : "placeholders");
    rc = describe(ctx, im, &work, kw, aw);
done:
    free(rows);
    free(kw);
    free(aw);
    free(idx);
    free_working_image(&full, &work);
    return rc;
}


int image_read_gps(context *ctx, image_entry *im)
{
    char *path = join(ctx->o->images, im->name);
    if (!path) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory");
        return -1;
    }
    double lla[3];
    im->has_gps = colmap_exif_gps(path, lla);
    if (im->has_gps)
        colmap_gps_to_ecef(lla, im->gps_xyz);
    free(path);
    return 0;
}
