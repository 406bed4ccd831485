/*
 * patches.h - an image's pyramid and patch sampling (patch.c), shared by
 * mn_extract_patches and mn_describe_keypoints.
 */
#ifndef MN_PATCHES_H
#define MN_PATCHES_H

#include "matchnet.h"

#include <stddef.h>
#include <stdint.h>

#define MN_MAX_LEVELS 24
typedef struct mn_level {
    int w, h;
    float *px; /* level >= 1; level 0 reads the caller's bytes */
} mn_level;
/* An image with the pyramid levels a set of keypoints needs. */
typedef struct mn_pyramid {
    int n; /* levels, >= 1 */
    mn_level lv[MN_MAX_LEVELS];
    const uint8_t *image;
    size_t stride;
} mn_pyramid;
/* Check the image, parameters and keypoints (messages name fn and the
 * keypoint's index), then build the levels. Nothing to release on failure. */
mn_status mn_pyramid_init(const char *fn, const uint8_t *image, int width, int height, size_t stride,
                          const mn_keypoint *kps, size_t n, const mn_extract_params *p, mn_pyramid *pyr);
/* Cut n patches (keypoints checked by mn_pyramid_init); read-only on pyr,
 * so threads may cut disjoint ranges at once. */
void mn_pyramid_sample(const mn_pyramid *pyr, const mn_keypoint *kps, size_t n, const mn_extract_params *p,
                       uint8_t *patches);
void mn_pyramid_release(mn_pyramid *pyr);

#endif
