/*
 * test_colmap_keypoints.c - COLMAP keypoint rows -> mn_keypoint
 * (apps/colmap_convert.c), checked against geometry the test knows:
 *
 *   1. Rows: 2-, 4- and 6-column rows of frames with a known position,
 *      scale, orientation (and affine shape) give the expected keypoint
 *      (and, kept as ellipses, the expected mn_affine_keypoint);
 *      degenerate rows give placeholders; the program's own rows go back
 *      and forth unchanged.
 *   2. Patches: an image is rendered with a pattern under a known
 *      similarity (centre in COLMAP's corner convention, scale, angle); the
 *      COLMAP row of that frame, converted, must cut the same patch as the
 *      canonical rendering, and the conversions that forget the 0.5 shift,
 *      the factor 2 or the angle's sign must cut clearly worse ones. The
 *      same with frames under known affine maps, kept as ellipses
 *      (colmap_keypoint_to_affine, mn_extract_patches_affine): the circle
 *      and the transposed matrix must cut clearly worse patches.
 *   3. With colmap installed (argument: its path): colmap feature_extractor
 *      (CPU) on images whose geometry is known, read back through
 *      colmap_db_read_keypoints() as matchnet-colmap reads them:
 *      - Gaussian blobs at known sub-pixel centres: the converted keypoints
 *        sit on the centres (OpenCV convention) and their size is about
 *        twice the blob's sigma;
 *      - a texture and the same pixels turned 90 degrees clockwise: a
 *        keypoint at (x, y) must reappear at (H - 1 - y, x) - the turn of
 *        the pixel grid in OpenCV coordinates, which a conversion without
 *        the 0.5 shift misses by a pixel - with its angle increased by 90
 *        degrees (clockwise, the way cv::KeyPoint::angle turns);
 *      - OpenCV's SIFT (mn_keypoints_detect) on the same texture: sizes
 *        equal to the converted ones (median ratio 1), angles equal, and
 *        positions 0.25 px right of and below them (OpenCV's own bias,
 *        colmap_convert.h);
 *      - elliptic blobs of known covariance, with
 *        --SiftExtraction.estimate_affine_shape 1: colmap's frames, kept
 *        as ellipses, point their long axis along the blob's (the
 *        convention: the transposed matrix would not), and
 *        mn_affine_shape_estimate() on the same keypoints finds shapes at
 *        least as close to the covariance as colmap's.
 *
 *   test_colmap_keypoints [PATH/TO/colmap]
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "colmap_convert.h"
#include "colmap_db.h"
#include "matchnet.h"
#include "matchnet/opencv.h"

#include <float.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PI 3.14159265358979323846

static double wrap180(double d)
{
    d = fmod(d, 360.0);
    if (d > 180)
        d -= 360;
    if (d <= -180)
        d += 360;
    return d;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------------------ */
/* 1. Rows                                                                   */
/* ------------------------------------------------------------------------ */

/* Expand a row of cols columns and convert it. */
static int convert(const float *in, int cols, mn_keypoint *k)
{
    float row[6];
    if (colmap_keypoint_row_expand(in, cols, row) != 0)
        return -2;
    return colmap_keypoint_to_mn(row, k);
}

static void expect_keypoint(const char *what, const mn_keypoint *k, double x, double y, double size, double angle)
{
    CHECK(fabs(k->x - x) < 1e-4 && fabs(k->y - y) < 1e-4 && fabs(k->size - size) < 1e-4 * size &&
              fabs(wrap180(k->angle - angle)) < 1e-3 && k->angle >= 0 && k->angle < 360,
          "%s: keypoint (%g, %g, size %g, angle %g), want (%g, %g, %g, %g)", what, k->x, k->y, k->size, k->angle, x, y,
          size, angle);
}

static void check_rows(void)
{
    static const double angles[] = {0, 30, 90, 135, 179.5, 180, 200, 270, 359, -45, 725};
    for (size_t i = 0; i < sizeof angles / sizeof *angles; i++) {
        double u = 100.25 + i, v = 40.75 + 2 * i, s = 1.6 + 0.7 * i, o = angles[i] * PI / 180;
        double want = fmod(fmod(angles[i], 360) + 360, 360);
        char what[64];
        /* 4 columns: (x, y, scale, orientation in radians). */
        float r4[4] = {(float)u, (float)v, (float)s, (float)o};
        mn_keypoint k;
        snprintf(what, sizeof what, "4 columns, angle %g", angles[i]);
        CHECK(convert(r4, 4, &k) == 0, "%s: refused", what);
        expect_keypoint(what, &k, u - 0.5, v - 0.5, 2 * s, want);
        /* 6 columns: the affine frame s R(o), written out here. */
        float r6[6] = {(float)u, (float)v, (float)(s * cos(o)), (float)(-s * sin(o)), (float)(s * sin(o)),
                       (float)(s * cos(o))};
        snprintf(what, sizeof what, "6 columns, angle %g", angles[i]);
        CHECK(convert(r6, 6, &k) == 0, "%s: refused", what);
        expect_keypoint(what, &k, u - 0.5, v - 0.5, 2 * s, want);
        /* The program's own rows go back and forth. */
        float back[6];
        colmap_keypoint_from_mn(&k, back);
        for (int c = 0; c < 6; c++)
            CHECK(fabsf(back[c] - r6[c]) < 1e-4f * (1 + fabsf(r6[c])), "%s: round trip column %d: %g, was %g", what, c,
                  back[c], r6[c]);
        /* An affine frame R(o) diag(a, b): the frame's first axis gives the
         * angle, the area the size. */
        double a = 1.5 * s, b = s / 1.5;
        float ra[6] = {(float)u, (float)v, (float)(a * cos(o)), (float)(-b * sin(o)), (float)(a * sin(o)),
                       (float)(b * cos(o))};
        snprintf(what, sizeof what, "affine 6 columns, angle %g", angles[i]);
        CHECK(convert(ra, 6, &k) == 0, "%s: refused", what);
        expect_keypoint(what, &k, u - 0.5, v - 0.5, 2 * sqrt(a * b), want);
        /* Kept as an ellipse: the frame itself, and back. */
        mn_affine_keypoint ak;
        CHECK(colmap_keypoint_to_affine(ra, &ak) == 0, "%s: refused as an ellipse", what);
        CHECK(fabs(ak.x - (u - 0.5)) < 1e-4 && fabs(ak.y - (v - 0.5)) < 1e-4 && ak.a11 == ra[2] && ak.a12 == ra[3] &&
                  ak.a21 == ra[4] && ak.a22 == ra[5],
              "%s: ellipse (%g, %g, [%g %g; %g %g])", what, ak.x, ak.y, ak.a11, ak.a12, ak.a21, ak.a22);
        colmap_keypoint_from_affine(&ak, back);
        for (int c = 0; c < 6; c++)
            CHECK(fabsf(back[c] - ra[c]) < 1e-4f * (1 + fabsf(ra[c])), "%s: ellipse round trip column %d: %g, was %g",
                  what, c, back[c], ra[c]);
        /* A circle through mn_affine_keypoint is the circle's row. */
        mn_keypoint circle = {(float)(u - 0.5), (float)(v - 0.5), (float)(2 * s), (float)want};
        mn_affine_keypoint ac = mn_affine_from_keypoint(&circle);
        float via[6];
        colmap_keypoint_from_affine(&ac, via);
        colmap_keypoint_from_mn(&circle, back);
        for (int c = 0; c < 6; c++)
            CHECK(fabsf(via[c] - back[c]) < 1e-4f * (1 + fabsf(back[c])), "%s: circle's row column %d: %g, want %g",
                  what, c, via[c], back[c]);
    }
    /* 2 columns: FeatureKeypoint(x, y), scale 1 and orientation 0. */
    float r2[2] = {10.5f, 20.5f};
    mn_keypoint k;
    CHECK(convert(r2, 2, &k) == 0, "2 columns refused");
    expect_keypoint("2 columns", &k, 10, 20, 2, 0);
    /* The centre of the top-left pixel. */
    float corner[4] = {0.5f, 0.5f, 1, 0};
    convert(corner, 4, &k);
    expect_keypoint("top-left pixel centre", &k, 0, 0, 2, 0);
    CHECK(convert(r2, 3, &k) == -2, "3 columns accepted");
    CHECK(convert(r2, 5, &k) == -2, "5 columns accepted");

    /* Degenerate rows: -1 and a placeholder mn_describe_keypoints() takes. */
    const float degenerate[][6] = {
        {5, 6, 0, 0, 0, 0}, {5, 6, 1, 2, 2, 4}, {NAN, 6, 1, 0, 0, 1}, {5, INFINITY, 1, 0, 0, 1}, {5, 6, NAN, 0, 0, 1},
        /* Sizes past FLT_MAX (fuzz_colmap_db, regress-keypoint-size-overflow.bin:
         * the size was infinite and the row accepted). */
        {5, 6, 3e38f, 0, 0, 3e38f}, {5, 6, -3e38f, 3e38f, -3e38f, -3e38f}, {5, 6, FLT_MAX, 0, 0, FLT_MAX}};
    for (size_t i = 0; i < sizeof degenerate / sizeof *degenerate; i++) {
        int rc = colmap_keypoint_to_mn(degenerate[i], &k);
        CHECK(rc == -1 && isfinite(k.x) && isfinite(k.y) && k.size > 0 && isfinite(k.size) && k.angle >= 0 &&
                  k.angle < 360,
              "degenerate row %zu: rc %d, keypoint (%g, %g, %g, %g)", i, rc, k.x, k.y, k.size, k.angle);
    }
    /* Kept as ellipses, the same rows are refused, with a usable circle;
     * so is a reflected frame (det < 0), whose circle colmap_keypoint_to_mn
     * accepts. */
    const float reflected[6] = {5, 6, -2, 0, 0, 2};
    for (size_t i = 0; i <= sizeof degenerate / sizeof *degenerate; i++) {
        const float *row = i < sizeof degenerate / sizeof *degenerate ? degenerate[i] : reflected;
        mn_affine_keypoint a;
        int rc = colmap_keypoint_to_affine(row, &a);
        double det = (double)a.a11 * a.a22 - (double)a.a12 * a.a21;
        CHECK(rc == -1 && isfinite(a.x) && isfinite(a.y) && det > 0 && isfinite(det),
              "degenerate row %zu as an ellipse: rc %d, (%g, %g, [%g %g; %g %g])", i, rc, a.x, a.y, a.a11, a.a12,
              a.a21, a.a22);
    }
    CHECK(colmap_keypoint_to_mn(reflected, &k) == 0 && fabs(k.size - 4) < 1e-5, "reflected frame's circle");

    /* A row whose angle is just under 360 degrees stays below 360 in float. */
    float near360[4] = {1, 1, 1, (float)(2 * PI - 1e-7)};
    convert(near360, 4, &k);
    CHECK(k.angle >= 0 && k.angle < 360, "angle %g for an orientation just under 2 pi", k.angle);
}

/* ------------------------------------------------------------------------ */
/* 2. Patches of a pattern under a known similarity                          */
/* ------------------------------------------------------------------------ */

#define PW 160
#define PH 160

/* The pattern in frame units (1 = the frame's scale, sigma): asymmetric
 * blobs, so that any rotation, flip or scale error shows. */
static double pattern(double qx, double qy)
{
    static const double blobs[][4] = {
        {1.5, 0.0, 0.8, 1.0}, {-0.6, 1.3, 0.6, 0.7}, {0.4, -2.1, 0.9, 0.85}, {-2.4, -0.9, 0.7, 0.5}, {3.0, 2.6, 1.0, 0.6},
        {-3.2, 3.0, 1.1, 0.4}, {2.4, -4.0, 1.2, 0.7}, {-1.0, -4.6, 0.8, 0.3}};
    double v = 0.1;
    for (size_t i = 0; i < sizeof blobs / sizeof *blobs; i++) {
        double dx = qx - blobs[i][0], dy = qy - blobs[i][1], s = blobs[i][2];
        v += blobs[i][3] * exp(-(dx * dx + dy * dy) / (2 * s * s));
    }
    return v;
}

/* The image of the pattern under the frame (centre cx, cy in COLMAP's
 * corner coordinates, scale s, angle deg clockwise on screen): pixel
 * (px, py) has its centre at (px + 0.5, py + 0.5) and shows the pattern at
 * q = R(-angle) (p - c) / s; 4 x 4 samples per pixel. */
static void render_frame(uint8_t *img, double cx, double cy, double s, double deg)
{
    double c = cos(deg * PI / 180), sn = sin(deg * PI / 180);
    for (int py = 0; py < PH; py++)
        for (int px = 0; px < PW; px++) {
            double acc = 0;
            for (int j = 0; j < 16; j++) {
                double x = px + (0.125 + 0.25 * (j & 3)) - cx, y = py + (0.125 + 0.25 * (j >> 2)) - cy;
                acc += pattern((c * x + sn * y) / s, (-sn * x + c * y) / s);
            }
            double g = acc / 16 * 200;
            img[py * PW + px] = (uint8_t)(g > 255 ? 255 : g + 0.5);
        }
}

/* The pattern under a general frame: pixel (px, py) shows the pattern at
 * q = A^-1 (p - c), c in COLMAP's corner coordinates. */
static void render_affine(uint8_t *img, double cx, double cy, const double A[4])
{
    const double det = A[0] * A[3] - A[1] * A[2];
    const double Ai[4] = {A[3] / det, -A[1] / det, -A[2] / det, A[0] / det};
    for (int py = 0; py < PH; py++)
        for (int px = 0; px < PW; px++) {
            double acc = 0;
            for (int j = 0; j < 16; j++) {
                double x = px + (0.125 + 0.25 * (j & 3)) - cx, y = py + (0.125 + 0.25 * (j >> 2)) - cy;
                acc += pattern(Ai[0] * x + Ai[1] * y, Ai[2] * x + Ai[3] * y);
            }
            double g = acc / 16 * 200;
            img[py * PW + px] = (uint8_t)(g > 255 ? 255 : g + 0.5);
        }
}

static double patch_error(const uint8_t *a, const uint8_t *b, int n)
{
    double e = 0;
    for (int i = 0; i < n; i++)
        e += fabs((double)a[i] - b[i]);
    return e / n;
}

static void check_patches(void)
{
    mn_extract_params ep = mn_extract_params_default();
    int side = ep.patch_size, n = side * side;
    uint8_t *img = malloc(PW * PH), *ref = malloc((size_t)n), *got = malloc((size_t)n);
    /* The canonical view: frame at the image centre, scale 2, angle 0. */
    render_frame(img, PW / 2.0, PH / 2.0, 2.0, 0);
    float row0[4] = {PW / 2.0f, PH / 2.0f, 2.0f, 0};
    mn_keypoint k0;
    convert(row0, 4, &k0);
    CHECK_OK(mn_extract_patches(img, PW, PH, PW, &k0, 1, &ep, ref));

    static const double frames[][4] = {
        {80.3, 77.6, 2.0, 0}, {71.25, 84.5, 2.5, 37}, {88.0, 79.0, 3.0, 150}, {76.6, 73.3, 2.2, 250}, {83.5, 81.5, 3.5, 300}};
    for (size_t f = 0; f < sizeof frames / sizeof *frames; f++) {
        double cx = frames[f][0], cy = frames[f][1], s = frames[f][2], deg = frames[f][3], o = deg * PI / 180;
        render_frame(img, cx, cy, s, deg);
        /* The frame as colmap would store it: 6 columns, s R(o). */
        float row[6] = {(float)cx, (float)cy, (float)(s * cos(o)), (float)(-s * sin(o)), (float)(s * sin(o)),
                        (float)(s * cos(o))};
        mn_keypoint k, wrong[3];
        CHECK(colmap_keypoint_to_mn(row, &k) == 0, "frame %zu refused", f);
        CHECK_OK(mn_extract_patches(img, PW, PH, PW, &k, 1, &ep, got));
        double e = patch_error(ref, got, n);
        /* What a conversion would cut that keeps COLMAP's corner origin,
         * takes the scale for the size, or turns the angle the other way. */
        wrong[0] = k, wrong[0].x += 0.5f, wrong[0].y += 0.5f;
        wrong[1] = k, wrong[1].size *= 0.5f;
        wrong[2] = k, wrong[2].angle = (float)fmod(360.0 - k.angle, 360.0);
        double ew[3];
        for (int w = 0; w < 3; w++) {
            CHECK_OK(mn_extract_patches(img, PW, PH, PW, &wrong[w], 1, &ep, got));
            ew[w] = patch_error(ref, got, n);
        }
        printf("frame (%.2f, %.2f, scale %.1f, %.0f deg): patch error %.2f grey levels; without the 0.5 shift %.2f, "
               "size = scale %.2f, angle negated %.2f\n",
               cx, cy, s, deg, e, ew[0], ew[1], ew[2]);
        CHECK(e < 2.0, "frame %zu: the converted keypoint's patch differs from the canonical one by %.2f", f, e);
        CHECK(ew[0] > 1.5 * e && ew[1] > 3 * e, "frame %zu: the wrong conversions are not worse: %.2f %.2f vs %.2f", f,
              ew[0], ew[1], e);
        if (fmod(deg, 180) != 0)
            CHECK(ew[2] > 3 * e, "frame %zu: the negated angle cuts as good a patch: %.2f vs %.2f", f, ew[2], e);
    }

    /* Affine frames: A = R(o) diag(a, b) R(t), kept as ellipses. */
    static const double affine[][6] = {
        {80.3, 77.6, 3.0, 1.5, 20, 0}, {71.25, 84.5, 2.0, 4.0, 120, 35}, {83.5, 78.5, 4.5, 2.0, 250, -60}};
    for (size_t f = 0; f < sizeof affine / sizeof *affine; f++) {
        double cx = affine[f][0], cy = affine[f][1], a = affine[f][2], b = affine[f][3];
        double o = affine[f][4] * PI / 180, t = affine[f][5] * PI / 180;
        double D[4] = {a * cos(t), -a * sin(t), b * sin(t), b * cos(t)}; /* diag(a, b) R(t) */
        double A[4] = {cos(o) * D[0] - sin(o) * D[2], cos(o) * D[1] - sin(o) * D[3], sin(o) * D[0] + cos(o) * D[2],
                       sin(o) * D[1] + cos(o) * D[3]};
        render_affine(img, cx, cy, A);
        float row[6] = {(float)cx, (float)cy, (float)A[0], (float)A[1], (float)A[2], (float)A[3]};
        mn_affine_keypoint ak, tr;
        mn_keypoint circle;
        CHECK(colmap_keypoint_to_affine(row, &ak) == 0 && colmap_keypoint_to_mn(row, &circle) == 0,
              "affine frame %zu refused", f);
        CHECK_OK(mn_extract_patches_affine(img, PW, PH, PW, &ak, 1, &ep, got));
        double e = patch_error(ref, got, n);
        tr = ak, tr.a12 = ak.a21, tr.a21 = ak.a12;
        CHECK_OK(mn_extract_patches_affine(img, PW, PH, PW, &tr, 1, &ep, got));
        double et = patch_error(ref, got, n);
        CHECK_OK(mn_extract_patches(img, PW, PH, PW, &circle, 1, &ep, got));
        double ec = patch_error(ref, got, n);
        printf("affine frame (%.2f, %.2f, axes %.1f %.1f, %.0f / %.0f deg): patch error %.2f grey levels; as a circle "
               "%.2f, transposed %.2f\n",
               cx, cy, a, b, affine[f][4], affine[f][5], e, ec, et);
        CHECK(e < 2.0, "affine frame %zu: the ellipse's patch differs from the canonical one by %.2f", f, e);
        CHECK(ec > 3 * e && et > 3 * e, "affine frame %zu: circle %.2f or transposed %.2f not worse than %.2f", f, ec,
              et, e);
    }
    free(img);
    free(ref);
    free(got);
}

/* ------------------------------------------------------------------------ */
/* 3. colmap feature_extractor on images of known geometry                   */
/* ------------------------------------------------------------------------ */

static char tmpdir[64];

static int write_pgm(const char *name, const uint8_t *img, int w, int h)
{
    char path[256];
    snprintf(path, sizeof path, "%s/images/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fprintf(f, "P5\n%d %d\n255\n", w, h);
    fwrite(img, 1, (size_t)w * h, f);
    return fclose(f);
}

/* The keypoints of an image as matchnet-colmap reads them. */
static mn_keypoint *read_converted(colmap_db *db, const char *name, size_t *n)
{
    char err[512];
    int64_t id, camera, rows;
    float *r6 = NULL;
    *n = 0;
    if (colmap_db_find_image(db, name, &id, &camera, &rows, err, sizeof err) != 0 || !id ||
        colmap_db_read_keypoints(db, id, &r6, n, err, sizeof err) != 0) {
        CHECK(0, "%s: no keypoints in colmap's database (%s)", name, id ? err : "not there");
        return NULL;
    }
    mn_keypoint *k = malloc((*n ? *n : 1) * sizeof *k);
    size_t bad = 0;
    for (size_t i = 0; i < *n; i++)
        bad += colmap_keypoint_to_mn(r6 + 6 * i, &k[i]) != 0;
    CHECK(bad == 0, "%s: %zu of colmap's %zu keypoints refused", name, bad, *n);
    free(r6);
    return k;
}

/* Value noise, for a texture with corners and blobs at many scales. */
static double lattice(int x, int y, int o)
{
    uint32_t h = (uint32_t)x * 73856093u ^ (uint32_t)y * 19349663u ^ (uint32_t)o * 83492791u;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return (h & 0xffff) / 65535.0;
}

static double noise(double x, double y, int o)
{
    int ix = (int)floor(x), iy = (int)floor(y);
    double fx = x - ix, fy = y - iy;
    fx = fx * fx * (3 - 2 * fx);
    fy = fy * fy * (3 - 2 * fy);
    return (1 - fy) * ((1 - fx) * lattice(ix, iy, o) + fx * lattice(ix + 1, iy, o)) +
           fy * ((1 - fx) * lattice(ix, iy + 1, o) + fx * lattice(ix + 1, iy + 1, o));
}

#define TW 240
#define TH 180

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

/* Direction of the longer axis of the ellipse M = [p q; q r] (degrees,
 * 0..180) and its axis ratio. */
static double ellipse_axis(double p, double q, double r, double *ratio)
{
    double mid = 0.5 * (p + r), h = hypot(0.5 * (p - r), q);
    *ratio = sqrt((mid + h) / (mid - h));
    double d = 0.5 * atan2(2 * q, p - r) * 180 / PI;
    return d < 0 ? d + 180 : d;
}

/* || M / sqrt(det M) - S / sqrt(det S) || / || S / sqrt(det S) || for 2x2 symmetric [p q; q r]. */
static double ellipse_error(const double M[3], const double S[3])
{
    double dm = sqrt(M[0] * M[2] - M[1] * M[1]), ds = sqrt(S[0] * S[2] - S[1] * S[1]), e = 0, n = 0;
    for (int i = 0; i < 3; i++) {
        double w = i == 1 ? 2 : 1, d = M[i] / dm - S[i] / ds;
        e += w * d * d, n += w * (S[i] / ds) * (S[i] / ds);
    }
    return sqrt(e / n);
}

/* colmap feature_extractor --SiftExtraction.estimate_affine_shape 1 on
 * elliptic blobs of known covariance: its frames, kept as ellipses, against
 * the truth and against mn_affine_shape_estimate on the same keypoints.
 * img: TW x TH bytes to draw in. */
static void check_colmap_affine(const char *colmap, uint8_t *img)
{
    enum { NB = 10 };
    double bx[NB], by[NB], S[NB][3], Si[NB][3];
    for (int b = 0; b < NB; b++) {
        double a = 4.0 + 0.25 * b, ratio = 1.6 + 0.15 * b, th = (17 + 37 * b) % 180 * PI / 180;
        double l1 = a * a, l2 = a * a / (ratio * ratio), c = cos(th), sn = sin(th);
        bx[b] = 30.4 + 45.0 * (b % 5) + 0.3 * b, by[b] = 45.7 + 90.0 * (b / 5) - 0.2 * b;
        S[b][0] = c * c * l1 + sn * sn * l2, S[b][1] = c * sn * (l1 - l2), S[b][2] = sn * sn * l1 + c * c * l2;
        double det = S[b][0] * S[b][2] - S[b][1] * S[b][1];
        Si[b][0] = S[b][2] / det, Si[b][1] = -S[b][1] / det, Si[b][2] = S[b][0] / det;
    }
    for (int y = 0; y < TH; y++)
        for (int x = 0; x < TW; x++) {
            double v = 30;
            for (int b = 0; b < NB; b++) {
                double dx = x - bx[b], dy = y - by[b];
                double q = Si[b][0] * dx * dx + 2 * Si[b][1] * dx * dy + Si[b][2] * dy * dy;
                if (q < 60)
                    v += 190 * exp(-0.5 * q);
            }
            img[y * TW + x] = (uint8_t)(v > 255 ? 255 : v + 0.5);
        }
    char dir[256], path[512], cmd[2048], err[512];
    snprintf(dir, sizeof dir, "%s/affine_images", tmpdir);
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/ellipses.pgm", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f)
        return;
    fprintf(f, "P5\n%d %d\n255\n", TW, TH);
    fwrite(img, 1, (size_t)TW * TH, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/affine.db", tmpdir);
    snprintf(cmd, sizeof cmd,
             "env QT_QPA_PLATFORM=offscreen '%s' feature_extractor --database_path '%s' --image_path '%s' "
             "--SiftExtraction.use_gpu 0 --SiftExtraction.num_threads 1 --SiftExtraction.estimate_affine_shape 1 "
             ">'%s/colmap_affine.log' 2>&1",
             colmap, path, dir, tmpdir);
    CHECK(run_colmap_extractor(cmd, path) == 0, "%s failed (log in %s)", cmd, tmpdir);
    colmap_db *db = NULL;
    if (colmap_db_open(path, &db, err, sizeof err) != 0) {
        CHECK(0, "colmap's database: %s", err);
        return;
    }
    int64_t id = 0, camera, rows;
    float *r6 = NULL;
    size_t n = 0;
    if (colmap_db_find_image(db, "ellipses.pgm", &id, &camera, &rows, err, sizeof err) != 0 || !id ||
        colmap_db_read_keypoints(db, id, &r6, &n, err, sizeof err) != 0) {
        CHECK(0, "ellipses.pgm: no keypoints in colmap's database");
        colmap_db_close(db);
        return;
    }
    /* Each blob's nearest colmap keypoint, as an ellipse and as a circle. */
    mn_affine_keypoint theirs[NB];
    mn_keypoint circles[NB];
    int which[NB], found = 0;
    for (int b = 0; b < NB; b++) {
        double best = 1.0;
        for (size_t i = 0; i < n; i++) {
            mn_affine_keypoint a;
            if (colmap_keypoint_to_affine(r6 + 6 * i, &a) != 0)
                continue;
            double d = hypot(a.x - bx[b], a.y - by[b]);
            if (d < best) {
                best = d, theirs[found] = a;
                colmap_keypoint_to_mn(r6 + 6 * i, &circles[found]);
            }
        }
        if (best < 1.0)
            which[found++] = b;
    }
    free(r6);
    colmap_db_close(db);
    CHECK(found >= NB - 2, "only %d of %d elliptic blobs have a colmap keypoint", found, NB);
    mn_affine_keypoint ours[NB];
    uint8_t res[NB];
    CHECK_OK(mn_affine_shape_estimate(NULL, img, TW, TH, TW, circles, (size_t)found, NULL, ours, res));
    double e_theirs[NB], e_ours[NB], worst_dir = 0, worst_dir_t = 0;
    int converged = 0;
    for (int k = 0; k < found; k++) {
        const double *T = S[which[k]];
        const mn_affine_keypoint *a = &theirs[k], *o = &ours[k];
        double M[3] = {a->a11 * a->a11 + a->a12 * a->a12, a->a11 * a->a21 + a->a12 * a->a22,
                       a->a21 * a->a21 + a->a22 * a->a22};
        double Mt[3] = {a->a11 * a->a11 + a->a21 * a->a21, a->a11 * a->a12 + a->a21 * a->a22,
                        a->a12 * a->a12 + a->a22 * a->a22}; /* the transposed frame's ellipse */
        double O[3] = {o->a11 * o->a11 + o->a12 * o->a12, o->a11 * o->a21 + o->a12 * o->a22,
                       o->a21 * o->a21 + o->a22 * o->a22};
        double rt, rm, rmt, ro;
        double dt = ellipse_axis(T[0], T[1], T[2], &rt), dm = ellipse_axis(M[0], M[1], M[2], &rm);
        double dmt = ellipse_axis(Mt[0], Mt[1], Mt[2], &rmt), dout = ellipse_axis(O[0], O[1], O[2], &ro);
        double diff = fabs(wrap180(2 * (dm - dt)) / 2), diff_t = fabs(wrap180(2 * (dmt - dt)) / 2);
        worst_dir = fmax(worst_dir, diff);
        worst_dir_t = fmax(worst_dir_t, diff_t);
        e_theirs[k] = ellipse_error(M, T);
        e_ours[k] = res[k] == MN_AFFINE_CONVERGED ? ellipse_error(O, T) : 1.0;
        converged += res[k] == MN_AFFINE_CONVERGED;
        printf("ellipse %d: axis ratio %.2f at %5.1f deg; colmap %.2f at %5.1f (transposed: %5.1f); ours %.2f at "
               "%5.1f\n",
               which[k], rt, dt, rm, dm, dmt, ro, dout);
    }
    double mt = median(e_theirs, (size_t)found), mo = median(e_ours, (size_t)found);
    printf("elliptic blobs: %d found; shape error median: colmap %.3f, mn_affine_shape_estimate %.3f (%d converged)\n",
           found, mt, mo, converged);
    CHECK(worst_dir < 5, "colmap's ellipses read as mn_affine_keypoint: long axis up to %.1f deg off the blob's",
          worst_dir);
    CHECK(worst_dir_t > 10, "the transposed frames fit as well (%.1f deg): the check cannot see the convention",
          worst_dir_t);
    CHECK(converged == found, "%d of %d blobs without an ellipse", found - converged, found);
    CHECK(mo <= mt && mo < 0.1, "shape error median %.3f, colmap's %.3f", mo, mt);
}

static void check_with_colmap(const char *colmap)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_colmap_keypoints.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    char path[256], cmd[1024];
    snprintf(path, sizeof path, "%s/images", tmpdir);
    mkdir(path, 0777);

    /* Blobs of sigma 3 at known sub-pixel centres (OpenCV coordinates). */
    enum { NBX = 5, NBY = 3 };
    const double sigma = 3.0;
    double bx[NBX * NBY], by[NBX * NBY];
    uint8_t *img = malloc(TW * TH), *rot = malloc(TW * TH);
    for (int j = 0; j < NBY; j++)
        for (int i = 0; i < NBX; i++) {
            bx[j * NBX + i] = 30.3 + 45.0 * i + 0.17 * j;
            by[j * NBX + i] = 35.6 + 55.0 * j - 0.23 * i;
        }
    for (int y = 0; y < TH; y++)
        for (int x = 0; x < TW; x++) {
            double v = 20;
            for (int b = 0; b < NBX * NBY; b++) {
                double dx = x - bx[b], dy = y - by[b];
                v += 200 * exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
            }
            img[y * TW + x] = (uint8_t)(v > 255 ? 255 : v + 0.5);
        }
    CHECK(write_pgm("blobs.pgm", img, TW, TH) == 0, "cannot write blobs.pgm");

    /* A texture, and the same pixels turned 90 degrees clockwise: pixel
     * (x, y) of the texture is pixel (TH - 1 - y, x) of the turned image,
     * which is TH wide and TW high. */
    for (int y = 0; y < TH; y++)
        for (int x = 0; x < TW; x++) {
            double v = 0, a = 1, f = 1.0 / 24;
            for (int o = 0; o < 4; o++, a *= 0.55, f *= 2)
                v += a * noise(x * f, y * f, o);
            img[y * TW + x] = (uint8_t)(255 * fmin(1, fmax(0, (v / 2.0 - 0.15) / 0.7)));
        }
    for (int y = 0; y < TH; y++)
        for (int x = 0; x < TW; x++)
            rot[x * TH + (TH - 1 - y)] = img[y * TW + x];
    CHECK(write_pgm("texture.pgm", img, TW, TH) == 0 && write_pgm("turned.pgm", rot, TH, TW) == 0,
          "cannot write the texture");

    snprintf(cmd, sizeof cmd,
             "env QT_QPA_PLATFORM=offscreen '%s' feature_extractor --database_path '%s/db.db' --image_path '%s/images' "
             "--SiftExtraction.use_gpu 0 --SiftExtraction.num_threads 1 >'%s/colmap.log' 2>&1",
             colmap, tmpdir, tmpdir, tmpdir);
    snprintf(path, sizeof path, "%s/db.db", tmpdir);
    CHECK(run_colmap_extractor(cmd, path) == 0, "%s failed (log in %s)", cmd, tmpdir);
    char err[512];
    colmap_db *db = NULL;
    if (colmap_db_open(path, &db, err, sizeof err) != 0) {
        CHECK(0, "colmap's database: %s", err);
        free(img);
        free(rot);
        return;
    }

    /* Blobs: a keypoint on each centre, size about 2 sigma. */
    size_t n;
    mn_keypoint *k = read_converted(db, "blobs.pgm", &n);
    double worst = 0, sizes[NBX * NBY];
    int found = 0;
    for (int b = 0; k && b < NBX * NBY; b++) {
        double best = 1e9, size = 0;
        for (size_t i = 0; i < n; i++) {
            double d = hypot(k[i].x - bx[b], k[i].y - by[b]);
            if (d < best)
                best = d, size = k[i].size;
        }
        if (best < 1.0)
            sizes[found++] = size / (2 * sigma);
        worst = best > worst ? best : worst;
    }
    double msize = median(sizes, (size_t)found);
    printf("blobs: %zu keypoints; %d of %d centres found, farthest %.3f px; size / (2 sigma) median %.3f\n", n, found,
           NBX * NBY, worst, msize);
    CHECK(found == NBX * NBY && worst < 0.1, "blob centres: %d of %d found, farthest keypoint %.3f px away", found,
          NBX * NBY, worst);
    CHECK(msize > 0.8 && msize < 1.25, "blob keypoint size / (2 sigma) = %.3f, want about 1", msize);
    free(k);

    /* The texture and its turned copy: positions and angles follow. */
    size_t na, nb;
    mn_keypoint *ka = read_converted(db, "texture.pgm", &na), *kb = read_converted(db, "turned.pgm", &nb);
    size_t pairs = 0, plus90 = 0, minus90 = 0;
    double *dpos = malloc((na ? na : 1) * sizeof *dpos);
    for (size_t i = 0; ka && kb && i < na; i++) {
        /* Where the turn puts it; COLMAP may store several orientations
         * at one place, so every keypoint there of the same size counts. */
        double ex = TH - 1 - ka[i].y, ey = ka[i].x, best = 1e9;
        int plus = 0, minus = 0;
        for (size_t j = 0; j < nb; j++) {
            double d = hypot(kb[j].x - ex, kb[j].y - ey);
            if (d < 0.5 && fabs(kb[j].size / ka[i].size - 1) < 0.02) {
                best = d < best ? d : best;
                plus |= fabs(wrap180(kb[j].angle - ka[i].angle - 90)) < 3;
                minus |= fabs(wrap180(kb[j].angle - ka[i].angle + 90)) < 3;
            }
        }
        if (best < 0.5) {
            dpos[pairs++] = best;
            plus90 += plus;
            minus90 += minus;
        }
    }
    double mpos = median(dpos, pairs);
    printf("texture %zu and turned %zu keypoints: %zu at the turned position (median %.4f px); angle turned by +90 "
           "degrees: %zu, by -90: %zu\n",
           na, nb, pairs, mpos, plus90, minus90);
    CHECK(pairs > na / 2 && mpos < 0.05, "turned texture: %zu of %zu keypoints where the turn puts them (median "
          "distance %.3f px)", pairs, na, mpos);
    CHECK(plus90 > 0.8 * pairs && minus90 < 0.2 * pairs,
          "turned texture: of %zu keypoints, %zu have their angle turned by +90 degrees and %zu by -90", pairs, plus90,
          minus90);
    free(dpos);
    free(kb);

    /* OpenCV's SIFT on the texture: same sizes and angles, positions
     * 0.25 px right and down. */
    mn_image im = {.width = TW, .height = TH, .stride = TW, .pixels = img};
    mn_keypoint *kc = malloc(4000 * sizeof *kc);
    size_t nc = 0;
    CHECK_OK(mn_keypoints_detect(&im, MN_DETECTOR_SIFT, 4000, kc, &nc));
    double *ratio = malloc((nc ? nc : 1) * sizeof *ratio), *dang = malloc((nc ? nc : 1) * sizeof *dang),
           *dx = malloc((nc ? nc : 1) * sizeof *dx), *dy = malloc((nc ? nc : 1) * sizeof *dy);
    size_t m = 0;
    for (size_t c = 0; ka && c < nc; c++) {
        double best = 1.0;
        size_t bi = 0;
        for (size_t i = 0; i < na; i++) {
            double d = hypot(kc[c].x - ka[i].x, kc[c].y - ka[i].y);
            if (d < best && fabs(log(kc[c].size / ka[i].size)) < 0.15 && fabs(wrap180(kc[c].angle - ka[i].angle)) < 10)
                best = d, bi = i;
        }
        if (best < 1.0) {
            ratio[m] = kc[c].size / ka[bi].size;
            dang[m] = wrap180(kc[c].angle - ka[bi].angle);
            dx[m] = kc[c].x - ka[bi].x;
            dy[m] = kc[c].y - ka[bi].y;
            m++;
        }
    }
    double mr = median(ratio, m), ma = median(dang, m), mx = median(dx, m), my = median(dy, m);
    printf("OpenCV SIFT: %zu keypoints, %zu paired with colmap's: size ratio median %.4f, angle difference median %.2f "
           "deg, offset median (%.3f, %.3f) px\n",
           nc, m, mr, ma, mx, my);
    CHECK(m > 50, "only %zu OpenCV keypoints pair with colmap's", m);
    CHECK(fabs(mr - 1) < 0.03, "OpenCV size / converted size: median %.4f, want 1", mr);
    CHECK(fabs(ma) < 1.0, "OpenCV angle - converted angle: median %.2f deg, want 0", ma);
    CHECK(fabs(mx - 0.25) < 0.1 && fabs(my - 0.25) < 0.1, "OpenCV position - converted: median (%.3f, %.3f), want "
          "OpenCV's (0.25, 0.25)", mx, my);
    free(ratio);
    free(dang);
    free(dx);
    free(dy);
    free(kc);
    free(ka);
    colmap_db_close(db);
    check_colmap_affine(colmap, img);
    free(img);
    free(rot);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (check_failures == 0 && system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
}

int main(int argc, char **argv)
{
    check_rows();
    check_patches();
    if (argc > 1)
        check_with_colmap(argv[1]);
    else
        printf("colmap not given: the checks against colmap feature_extractor are skipped\n");
    return check_summary("test_colmap_keypoints");
}
