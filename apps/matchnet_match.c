/*
 * matchnet_match.c - matchnet-match: detect, describe and match the
 * keypoints of two images, and write the matches as JSON (match_json.h).
 *
 *   matchnet-match [options] IMAGE1 IMAGE2
 *
 * A complete pipeline on the C APIs only (matchnet.h, matchnet/opencv.h):
 * mn_image_load, mn_keypoints_detect, mn_describe_keypoints, mn_match and,
 * optionally, mn_matches_filter and mn_matches_draw_with. With --affine,
 * mn_affine_shape_estimate gives each keypoint an ellipse and
 * mn_describe_keypoints_affine describes its affine-normalised patch.
 *
 * Exit status: 0 on success, 1 on a runtime error (unreadable image, bad
 * model, failed write), 2 on a usage error. Every error is one line on
 * stderr starting with "matchnet-match:".
 */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "cli.h"
#include "match_json.h"
#include "matchnet.h"
#include "matchnet/opencv.h"
#include "out_file.h"
#include "test_point.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG "matchnet-match"
#define GEOMETRY_THRESHOLD_PX 3.0
#define MAX_KEYPOINTS_LIMIT 1000000L

static const char synopsis[] =
    "usage: " PROG " [options] IMAGE1 IMAGE2\n"
    "\n"
    "Detect keypoints in two images, describe them with MatchNet and match them\n"
    "with its metric network. Writes JSON: both images' keypoints [x, y, size,\n"
    "angle_deg] (with --affine also their shapes [a11, a12, a21, a22]), the\n"
    "matches [i, j, probability] and the stage times in ms.\n"
    "\n"
    "options:\n";

/* The one line an error gets. */
#define error_line(...) mn_cli_error(PROG, __VA_ARGS__)

static double now_ms(void)
{
    return mn_cli_seconds() * 1e3;
}

typedef struct options {
    const char *image[2];
    const char *output;
    const char *draw;
    const char *model;
    int detector; /* mn_detector */
    int max_keypoints;
    int threads;
    int method;   /* mn_match_method */
    int geometry; /* mn_geometry */
    int upright;
    int affine;
    int draw_max;  /* mn_draw_params.max_lines */
    int draw_keypoints;
} options;

static const mn_cli_choice detectors[] = {
    {"sift", MN_DETECTOR_SIFT}, {"orb", MN_DETECTOR_ORB}, {"akaze", MN_DETECTOR_AKAZE}, {NULL, 0}};
static const mn_cli_choice methods[] = {{"l2", MN_MATCH_L2}, {"metric", MN_MATCH_METRIC}, {NULL, 0}};
static const mn_cli_choice geometries[] = {
    {"none", MN_GEOMETRY_NONE}, {"homography", MN_GEOMETRY_HOMOGRAPHY}, {"fundamental", MN_GEOMETRY_FUNDAMENTAL},
    {NULL, 0}};

/* Fill o from argv. Returns 0, 1 after --help, or 2 after a usage error
 * (already reported). */
static int parse_options(int argc, char **argv, options *o)
{
    const mn_cli_option table[] = {
        {"output", 'o', MN_CLI_STRING, &o->output, .placeholder = "PATH",
         .help = "write the JSON to PATH (default: standard output)"},
        {"draw", 0, MN_CLI_STRING, &o->draw, .placeholder = "PATH",
         .help = "draw the images side by side with a thin line per match\n"
                 "(inliers green, outliers red) and the counts; format\n"
                 "from the extension"},
        {"draw-max", 0, MN_CLI_INT, &o->draw_max, 0, INT_MAX, .placeholder = "N",
         .help = "lines drawn at most (default 300; 0: none): inliers\n"
                 "first, spread evenly over the match list"},
        {"draw-keypoints", 0, MN_CLI_FLAG, &o->draw_keypoints, .help = "with --draw, also circle every keypoint"},
        {"detector", 0, MN_CLI_CHOICE, &o->detector, .choices = detectors, .placeholder = "NAME",
         .help = "sift (default), orb or akaze"},
        {"max-keypoints", 0, MN_CLI_INT, &o->max_keypoints, 1, MAX_KEYPOINTS_LIMIT, .placeholder = "N",
         .help = "keypoints per image, strongest first (default 2000)"},
        {"model", 0, MN_CLI_STRING, &o->model, .placeholder = "PATH",
         .help = "model file (default: $MATCHNET_MODEL, else the\ninstalled model)"},
        {"threads", 0, MN_CLI_INT, &o->threads, 1, 64, .placeholder = "N",
         .help = "threads for describing and matching (default: cores, at most 8)"},
        {"method", 0, MN_CLI_CHOICE, &o->method, .choices = methods, .placeholder = "NAME",
         .help = "l2 (default): nearest neighbour on MatchNet descriptors\n"
                 "with the ratio test 0.8; metric: candidates by L2, chosen\n"
                 "by the metric network (p >= 0.5, mutual)"},
        {"geometry", 0, MN_CLI_CHOICE, &o->geometry, .choices = geometries, .placeholder = "NAME",
         .help = "none (default), homography or fundamental: keep only\nthe RANSAC inliers (threshold 3 px)"},
        {"upright", 0, MN_CLI_FLAG, &o->upright, .help = "ignore keypoint orientations when cutting patches"},
        {"affine", 0, MN_CLI_FLAG, &o->affine,
         .help = "estimate each keypoint's affine shape (Baumberg's\n"
                 "iteration) and describe affine-normalised patches;\n"
                 "keypoints without a stable ellipse keep their circle"},
    };
    const mn_cli_program prog = {PROG, synopsis, table, sizeof table / sizeof *table, 2};
    int npos, rc = mn_cli_parse(&prog, argc, argv, o->image, &npos);
    if (rc == 0 && npos != 2) {
        error_line("expected two images, got %d (try --help)", npos);
        rc = 2;
    }
    return rc;
}

/* Write the JSON to a stream; returns 0, or -1 with errno set. */
static int write_json_stream(FILE *f, const match_json_image *im1, const match_json_image *im2,
                             const mn_dmatch *matches, size_t nm, const match_json_timing *timing)
{
    errno = 0;
    int err = match_json_write(f, im1, im2, matches, nm, timing) != 0 || ferror(f);
    int saved = errno;
    if (fclose(f) != 0 && !err) {
        err = 1;
        saved = errno;
    }
    errno = saved ? saved : EIO;
    return err ? -1 : 0;
}

/* Write the JSON to path through mn_out_file_write() (out_file.h): a
 * failed or killed run leaves no half-written output and keeps what was
 * there; /dev/stdout, a pipe or a terminal is written in place. The text
 * is built in memory first (a few MB at most: one line a match). Returns
 * 0 or -1 (reported). */
static int write_json_file(const char *path, const match_json_image *im1, const match_json_image *im2,
                           const mn_dmatch *matches, size_t nm, const match_json_timing *timing)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f || write_json_stream(f, im1, im2, matches, nm, timing) != 0) {
        error_line("cannot write '%s': %s", path, strerror(errno ? errno : ENOMEM));
        free(text);
        return -1;
    }
    int e = mn_out_file_write(path, text, len);
    free(text);
    if (e != 0) {
        error_line("cannot write '%s': %s", path, strerror(e));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o = {0};
    o.detector = MN_DETECTOR_SIFT;
    o.max_keypoints = 2000;
    o.method = (int)mn_match_params_default().method;
    o.geometry = MN_GEOMETRY_NONE;
    o.draw_max = MN_DRAW_MAX_LINES;
    int parsed = parse_options(argc, argv, &o);
    if (parsed)
        return parsed == 1 ? 0 : 2;

    int rc = 1;
    mn_image img[2] = {{0}};
    mn_keypoint *kp[2] = {NULL, NULL};
    mn_affine_keypoint *shape[2] = {NULL, NULL};
    size_t nkp[2] = {0, 0};
    float *desc[2] = {NULL, NULL};
    mn_model *model = NULL;
    mn_session *session = NULL;
    mn_dmatch *matches = NULL, *kept = NULL;
    uint8_t *inliers = NULL;
    size_t nm = 0, nkept = 0;
    match_json_timing timing = {0, 0, 0};

    for (int i = 0; i < 2; i++)
        if (mn_image_load(o.image[i], &img[i]) != MN_OK) {
            error_line("%s", mn_last_error());
            goto done;
        }
    if ((o.model ? mn_model_load_file(o.model, &model) : mn_model_load_default(&model)) != MN_OK) {
        error_line("%s", mn_last_error());
        goto done;
    }
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = o.threads;
    if (mn_session_create(model, &sp, &session) != MN_OK) {
        error_line("%s", mn_last_error());
        goto done;
    }

    double t0 = now_ms();
    for (int i = 0; i < 2; i++) {
        if (!(kp[i] = malloc((size_t)o.max_keypoints * sizeof *kp[i]))) {
            error_line("out of memory");
            goto done;
        }
        if (mn_keypoints_detect(&img[i], (mn_detector)o.detector, (size_t)o.max_keypoints, kp[i], &nkp[i]) != MN_OK) {
            error_line("%s: %s", o.image[i], mn_last_error());
            goto done;
        }
        if (!o.affine)
            continue;
        if (!(shape[i] = malloc((nkp[i] ? nkp[i] : 1) * sizeof *shape[i]))) {
            error_line("out of memory");
            goto done;
        }
        if (mn_affine_shape_estimate(session, img[i].pixels, img[i].width, img[i].height, img[i].stride, kp[i],
                                     nkp[i], NULL, shape[i], NULL) != MN_OK) {
            error_line("%s: %s", o.image[i], mn_last_error());
            goto done;
        }
    }
    double t1 = now_ms();
    const size_t dim = mn_model_descriptor_dim(model);
    mn_extract_params ep = mn_extract_params_default();
    ep.patch_size = mn_model_patch_size(model); /* a model may take other than 64 x 64 patches */
    ep.scale_factor = mn_detector_scale_factor((mn_detector)o.detector);
    ep.upright = o.upright;
    for (int i = 0; i < 2; i++) {
        if (!(desc[i] = malloc((nkp[i] ? nkp[i] : 1) * dim * sizeof *desc[i]))) {
            error_line("out of memory for %zu descriptors", nkp[i]);
            goto done;
        }
        mn_status st = shape[i] ? mn_describe_keypoints_affine(session, img[i].pixels, img[i].width, img[i].height,
                                                               img[i].stride, shape[i], nkp[i], &ep, desc[i])
                                : mn_describe_keypoints(session, img[i].pixels, img[i].width, img[i].height,
                                                        img[i].stride, kp[i], nkp[i], &ep, desc[i]);
        if (st != MN_OK) {
            error_line("%s: %s", o.image[i], mn_last_error());
            goto done;
        }
    }
    double t2 = now_ms();
    mn_match_params mp = mn_match_params_preset((mn_match_method)o.method);
    matches = malloc((nkp[0] ? nkp[0] : 1) * sizeof *matches);
    inliers = malloc(nkp[0] ? nkp[0] : 1);
    if (!matches || !inliers) {
        error_line("out of memory");
        goto done;
    }
    if (mn_match(session, desc[0], nkp[0], desc[1], nkp[1], &mp, matches, nkp[0], &nm) != MN_OK) {
        error_line("%s", mn_last_error());
        goto done;
    }
    size_t ninl = 0;
    if (mn_matches_filter((mn_geometry)o.geometry, kp[0], nkp[0], kp[1], nkp[1], matches, nm, GEOMETRY_THRESHOLD_PX,
                          NULL, inliers, &ninl) != MN_OK) {
        error_line("%s", mn_last_error());
        goto done;
    }
    double t3 = now_ms();
    timing.detect = t1 - t0;
    timing.describe = t2 - t1;
    timing.match = t3 - t2;

    /* With a geometry only the inliers are reported; the drawing shows the
     * outliers too, in red (inliers first when --draw-max cuts). */
    if (!(kept = malloc((nm ? nm : 1) * sizeof *kept))) {
        error_line("out of memory");
        goto done;
    }
    for (size_t k = 0; k < nm; k++)
        if (inliers[k])
            kept[nkept++] = matches[k];

    mn_draw_params dp = mn_draw_params_default();
    dp.max_lines = (size_t)o.draw_max;
    dp.keypoints = o.draw_keypoints;
    /* The drawing goes through PATH.tmp.PID.K too (matchnet/opencv.h): a
     * killed run's is removed here, as for -o. */
    if (o.draw)
        mn_out_file_remove_stale(o.draw);
    if (o.draw && mn_matches_draw_with(&img[0], kp[0], nkp[0], &img[1], kp[1], nkp[1], matches, nm, inliers, &dp,
                                       o.draw) != MN_OK) {
        error_line("%s", mn_last_error());
        goto done;
    }
    match_json_image ji[2];
    for (int i = 0; i < 2; i++)
        ji[i] = (match_json_image){o.image[i], img[i].width, img[i].height, kp[i], nkp[i], shape[i]};
    if (o.output && strcmp(o.output, "-") != 0) {
        if (write_json_file(o.output, &ji[0], &ji[1], kept, nkept, &timing) != 0)
            goto done;
    } else if (match_json_write(stdout, &ji[0], &ji[1], kept, nkept, &timing) != 0 || fflush(stdout) != 0) {
        error_line("cannot write the JSON to standard output: %s", strerror(errno));
        goto done;
    }

    if (o.geometry != MN_GEOMETRY_NONE)
        fprintf(stderr, PROG ": %zu + %zu keypoints, %zu matches, %zu inliers; detect %.0f ms, describe %.0f ms, "
                        "match %.0f ms\n",
                nkp[0], nkp[1], nm, nkept, timing.detect, timing.describe, timing.match);
    else
        fprintf(stderr, PROG ": %zu + %zu keypoints, %zu matches; detect %.0f ms, describe %.0f ms, match %.0f ms\n",
                nkp[0], nkp[1], nm, timing.detect, timing.describe, timing.match);
    rc = 0;

done:
    free(kept);
    free(inliers);
    free(matches);
    for (int i = 0; i < 2; i++) {
        free(desc[i]);
        free(shape[i]);
        free(kp[i]);
        mn_image_free(&img[i]);
    }
    mn_session_free(session);
    mn_model_free(model);
    return rc;
}
