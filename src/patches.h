/*
 * patches.h - an image's pyramid and patch sampling (patch.c), shared by
 * mn_extract_patches*, mn_describe_keypoints* and the affine shape
 * estimator (affine.c).
 */
#ifndef MN_PATCHES_H
#define MN_PATCHES_H

#include "matchnet.h"

#include <stddef.h>
#include <stdint.h>

#define MN_MAX_LEVELS 24
/* Samples averaged along an ellipse's longer axis at most. */
#define MN_MAX_TAPS 8
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

/* Where one patch's (or grid's) samples come from: sample (pu, pv),
 * relative to the grid's centre in grid pixels, is image point
 * (x, y) + J (pu, pv). `level` is the image pixels one sample spans along
 * the ellipse's shorter axis (it picks the pyramid levels); `taps` samples
 * spaced (tx, ty) apart, centred, are averaged along the longer one. */
typedef struct mn_frame {
    float x, y;
    float j11, j12, j21, j22;
    double level;
    int taps;
    float tx, ty;
} mn_frame;

/* The frame of a similarity keypoint (checked) and of an affine one
 * (checked: finite, det A > 0), as mn_extract_patches* cut them. */
void mn_frame_from_keypoint(const mn_keypoint *k, const mn_extract_params *p, mn_frame *f);
void mn_frame_from_affine(const mn_affine_keypoint *k, const mn_extract_params *p, mn_frame *f);
/* A frame from its centre and J (finite, det J > 0): level and taps from
 * J's singular values, the level times `fine` (1 for patches; below 1
 * samples from finer levels, with more taps, for less smoothing). */
void mn_frame_from_matrix(double x, double y, double j11, double j12, double j21, double j22, double fine,
                          mn_frame *f);

/* Check the image and parameters (messages name fn). */
mn_status mn_extract_check(const char *fn, const uint8_t *image, int width, int height, size_t stride,
                           const mn_extract_params *p, size_t n);
/* Build the levels frames of level up to max_level need. Nothing to
 * release on failure. */
mn_status mn_pyramid_build(const char *fn, const uint8_t *image, int width, int height, size_t stride,
                           double max_level, mn_pyramid *pyr);
/* Check the image, parameters and keypoints (messages name fn and the
 * keypoint's index), then build the levels. Nothing to release on failure.
 * Exactly one of kps and akps is non-NULL. */
mn_status mn_pyramid_init(const char *fn, const uint8_t *image, int width, int height, size_t stride,
                          const mn_keypoint *kps, const mn_affine_keypoint *akps, size_t n,
                          const mn_extract_params *p, mn_pyramid *pyr);
/* Cut n patches (keypoints checked by mn_pyramid_init; exactly one of kps
 * and akps non-NULL); read-only on pyr, so threads may cut disjoint ranges
 * at once. */
void mn_pyramid_sample(const mn_pyramid *pyr, const mn_keypoint *kps, const mn_affine_keypoint *akps, size_t n,
                       const mn_extract_params *p, uint8_t *patches);
/* The same with the sampling path chosen: vector 1 lets the CPU's vector
 * kernel (kernels/sample.h) cut one-tap patches where it has one, 0 keeps
 * the scalar code; the bytes are the same (tests compare them). */
void mn_pyramid_sample_path(const mn_pyramid *pyr, const mn_keypoint *kps, const mn_affine_keypoint *akps,
                            size_t n, const mn_extract_params *p, uint8_t *patches, int vector);
/* Sample a g x g grid through a frame into floats (not rounded). */
void mn_pyramid_sample_frame(const mn_pyramid *pyr, const mn_frame *f, int g, float *out);
void mn_pyramid_release(mn_pyramid *pyr);

#endif
