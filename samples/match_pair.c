/*
 * match_pair.c - two image files to a list of matches, in C only.
 *
 *   match_pair IMAGE1 IMAGE2 [MODEL]
 *
 * Decodes both images to grey (libmatchnet_opencv: TurboJPEG for JPEG,
 * OpenCV imgcodecs otherwise), detects SIFT keypoints, describes them with
 * MatchNet, matches with the library's default rule, keeps the homography
 * inliers, and prints one line per match: x1 y1 x2 y2 probability.
 * Build: link matchnet_opencv (CMake target matchnet::opencv, or
 * `pkg-config --cflags --libs matchnet-opencv`).
 */
#include <matchnet.h>
#include <matchnet/opencv.h>

#include <stdio.h>
#include <stdlib.h>

#define MAX_KEYPOINTS 2000

/* Keypoints and descriptors of one image. */
static int describe(mn_session *s, size_t dim, const char *path, mn_image *img, mn_keypoint *kp, size_t *n,
                    float **desc)
{
    if (mn_image_load(path, img) != MN_OK ||
        mn_keypoints_detect(img, MN_DETECTOR_SIFT, MAX_KEYPOINTS, kp, n) != MN_OK)
        return -1;
    *desc = malloc((*n ? *n : 1) * dim * sizeof **desc);
    if (!*desc)
        return -1;
    mn_extract_params ep = mn_extract_params_default();
    ep.scale_factor = mn_detector_scale_factor(MN_DETECTOR_SIFT);
    return mn_describe_keypoints(s, img->pixels, img->width, img->height, img->stride, kp, *n, &ep, *desc) == MN_OK
               ? 0
               : -1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s IMAGE1 IMAGE2 [MODEL]\n", argv[0]);
        return 2;
    }
    mn_model *model = NULL;
    mn_session *s = NULL;
    mn_image img1 = {0}, img2 = {0};
    static mn_keypoint kp1[MAX_KEYPOINTS], kp2[MAX_KEYPOINTS];
    static mn_dmatch matches[MAX_KEYPOINTS];
    static uint8_t inlier[MAX_KEYPOINTS];
    float *d1 = NULL, *d2 = NULL;
    size_t n1 = 0, n2 = 0, nm = 0, ni = 0;
    int rc = 1;

    mn_status st = argc > 3 ? mn_model_load_file(argv[3], &model) : mn_model_load_default(&model);
    if (st != MN_OK || mn_session_create(model, NULL, &s) != MN_OK)
        goto done;
    size_t dim = mn_model_descriptor_dim(model);
    if (describe(s, dim, argv[1], &img1, kp1, &n1, &d1) != 0 || describe(s, dim, argv[2], &img2, kp2, &n2, &d2) != 0)
        goto done;

    /* Default: nearest neighbour on MatchNet descriptors with the ratio test;
     * mn_match_params_preset(MN_MATCH_METRIC) lets the metric network choose. */
    mn_match_params mp = mn_match_params_default();
    if (mn_match(s, d1, n1, d2, n2, &mp, matches, MAX_KEYPOINTS, &nm) != MN_OK)
        goto done;
    double h[9];
    if (mn_matches_filter(MN_GEOMETRY_HOMOGRAPHY, kp1, n1, kp2, n2, matches, nm, 3.0, h, inlier, &ni) != MN_OK)
        goto done;

    fprintf(stderr, "%zu and %zu keypoints, %zu matches, %zu homography inliers\n", n1, n2, nm, ni);
    for (size_t r = 0; r < nm; r++)
        if (inlier[r])
            printf("%.2f %.2f %.2f %.2f %.3f\n", kp1[matches[r].query].x, kp1[matches[r].query].y,
                   kp2[matches[r].train].x, kp2[matches[r].train].y, matches[r].probability);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "match_pair: %s\n", mn_last_error());
    free(d1);
    free(d2);
    mn_image_free(&img1);
    mn_image_free(&img2);
    mn_session_free(s);
    mn_model_free(model);
    return rc;
}
