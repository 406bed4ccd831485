/*
 * fuzz_patches.c - libFuzzer target: mn_extract_patches with an arbitrary
 * small image and arbitrary keypoints (any float bit patterns, including
 * NaN, infinities and huge values) and options; the same bytes as affine
 * keypoints for mn_extract_patches_affine, and mn_affine_shape_estimate on
 * the first keypoints (few iterations: each costs a 60 x 60 grid).
 */
#include "matchnet.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    int w = 1 + data[0] % 96, h = 1 + data[1] % 96, upright = data[2] & 1;
    const uint8_t flags = data[2];
    int patch = 1 + data[3] % 64;
    float scale;
    memcpy(&scale, data + 4, 4);
    data += 8, size -= 8;
    size_t npx = (size_t)w * h;
    uint8_t *img = calloc(npx, 1);
    if (!img)
        return 0;
    memcpy(img, data, size < npx ? size : npx);
    size_t rest = size > npx ? size - npx : 0;
    size_t n = rest / sizeof(mn_keypoint);
    if (n > 16)
        n = 16;
    mn_keypoint kp[16];
    memcpy(kp, data + (size - rest), n * sizeof(mn_keypoint));
    mn_extract_params ep = mn_extract_params_default();
    ep.upright = upright;
    ep.patch_size = patch;
    if (scale == scale && scale > 0 && scale < 1e6f)
        ep.scale_factor = scale;
    /* Keep sizes from asking for pyramids deeper than the fuzzer's patience. */
    uint8_t *out = malloc(16 * (size_t)patch * patch + 1);
    if (out) {
        mn_extract_patches(img, w, h, (size_t)w, kp, n, &ep, out);
        size_t na = rest / sizeof(mn_affine_keypoint);
        mn_affine_keypoint ak[16];
        na = na > 16 ? 16 : na;
        memcpy(ak, data + (size - rest), na * sizeof *ak);
        mn_extract_patches_affine(img, w, h, (size_t)w, ak, na, &ep, out);
        mn_affine_params ap = mn_affine_params_default();
        ap.max_iterations = 1 + (flags >> 1) % 4;
        ap.orientation = (flags >> 3) & 1 ? MN_AFFINE_ORIENT_KEEP : MN_AFFINE_ORIENT_GRADIENT;
        uint8_t res[2];
        mn_affine_shape_estimate(NULL, img, w, h, (size_t)w, kp, n < 2 ? n : 2, &ap, ak, res);
    }
    free(out);
    free(img);
    return 0;
}
