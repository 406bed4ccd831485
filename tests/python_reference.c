/*
 * python_reference.c - the C API path that test_python.py holds the Python
 * package to: mn_image_load, mn_keypoints_detect and mn_describe_keypoints
 * with the default model, as matchnet-match runs them.
 *
 *   python_reference IMAGE DETECTOR(sift|orb|akaze) MAX_KEYPOINTS OUT
 *
 * OUT: uint32 n, uint32 d, then n x 4 float32 keypoints (x, y, size,
 * angle), then n x d float32 descriptors, little-endian as the host writes.
 */
#include "matchnet.h"
#include "matchnet/opencv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: python_reference IMAGE sift|orb|akaze MAX_KEYPOINTS OUT\n");
        return 2;
    }
    mn_detector det = !strcmp(argv[2], "orb") ? MN_DETECTOR_ORB
                      : !strcmp(argv[2], "akaze") ? MN_DETECTOR_AKAZE : MN_DETECTOR_SIFT;
    size_t max = (size_t)strtoul(argv[3], NULL, 10);
    mn_image img = {0};
    mn_model *model = NULL;
    mn_session *s = NULL;
    mn_keypoint *kp = malloc((max ? max : 1) * sizeof *kp);
    float *desc = NULL;
    size_t n = 0;
    int rc = 1;
    if (!kp || mn_image_load(argv[1], &img) != MN_OK || mn_model_load_default(&model) != MN_OK ||
        mn_session_create(model, NULL, &s) != MN_OK || mn_keypoints_detect(&img, det, max, kp, &n) != MN_OK) {
        fprintf(stderr, "python_reference: %s\n", mn_last_error());
        goto done;
    }
    const size_t d = mn_model_descriptor_dim(model);
    mn_extract_params ep = mn_extract_params_default();
    ep.scale_factor = mn_detector_scale_factor(det);
    ep.patch_size = mn_model_patch_size(model);
    if (!(desc = malloc((n ? n : 1) * d * sizeof *desc)) ||
        mn_describe_keypoints(s, img.pixels, img.width, img.height, img.stride, kp, n, &ep, desc) != MN_OK) {
        fprintf(stderr, "python_reference: %s\n", mn_last_error());
        goto done;
    }
    FILE *f = fopen(argv[4], "wb");
    unsigned hdr[2] = {(unsigned)n, (unsigned)d};
    if (!f || fwrite(hdr, sizeof hdr, 1, f) != 1 || fwrite(kp, sizeof *kp, n, f) != n ||
        fwrite(desc, sizeof *desc * d, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "python_reference: cannot write %s\n", argv[4]);
        goto done;
    }
    rc = 0;
done:
    free(desc);
    free(kp);
    mn_image_free(&img);
    mn_session_free(s);
    mn_model_free(model);
    return rc;
}
