/*
 * colmap_convert.h - COLMAP 3.8's conventions that matchnet-colmap
 * translates: keypoint rows <-> mn_keypoint, and camera models. No I/O:
 * plain functions, tested on their own (tests/test_colmap_keypoints.c).
 *
 * Keypoints. COLMAP stores a keypoint as (x, y, a11, a12, a21, a22) in
 * the camera models' pixel convention (src/base/camera_models.h: the
 * image's top-left corner is (0, 0), the top-left pixel's centre
 * (0.5, 0.5)); older rows have 4 columns (x, y, scale, orientation) or 2
 * (x, y), read as FeatureKeypoint(x, y, scale, orientation) and
 * FeatureKeypoint(x, y) do (src/feature/types.cc):
 *   [a11 a12; a21 a22] = scale * [cos o, -sin o; sin o, cos o]
 * and scale 1, orientation 0 for 2 columns. Its SIFT (VLFeat,
 * src/feature/sift.cc) stores x + 0.5, y + 0.5, scale = VLFeat's sigma
 * and orientation = VLFeat's angle in radians (atan2(gy, gx) with y down).
 * An mn_keypoint is OpenCV's cv::KeyPoint: the top-left pixel's centre is
 * (0, 0), size = the SIFT diameter 2 sigma, angle in degrees [0, 360),
 * clockwise on screen (also y down). So
 *   x = x_colmap - 0.5, y = y_colmap - 0.5,
 *   size = 2 sqrt(|a11 a22 - a12 a21|)  (= 2 scale for a rotation-scale),
 *   angle = atan2(a21, a11) in degrees, in [0, 360).
 * Measured (tests/test_colmap_keypoints.c, and README): on the same
 * images, OpenCV's SIFT sizes are 2.00 x COLMAP's scales and their angles
 * agree (median difference under 0.2 degrees); OpenCV's SIFT positions lie
 * 0.25 px right of and below COLMAP's after the 0.5 shift - OpenCV's own
 * bias (it doubles the image with centre-aligned interpolation but halves
 * coordinates as if corner-aligned), not a difference of conventions.
 * For an affine-adapted frame (--SiftExtraction.estimate_affine_shape) the
 * size keeps the region's area and the angle is the frame's first axis,
 * which is how COLMAP orients its own descriptor of that frame.
 *
 * Cameras. COLMAP's camera models (src/base/camera_models.h): id, name,
 * parameter count and the parameters CameraModelInitializeParams() gives
 * from a focal length and the image size: every focal parameter f, the
 * principal point at (width / 2, height / 2), extra parameters 0 (FOV's
 * omega 1e-2).
 */
#ifndef MATCHNET_COLMAP_CONVERT_H
#define MATCHNET_COLMAP_CONVERT_H

#include "matchnet.h"

#include <stddef.h>

/** The most parameters a COLMAP 3.8 camera model has. */
#define COLMAP_MAX_CAMERA_PARAMS 12

/** One of COLMAP's camera models. */
typedef struct colmap_camera_model {
    const char *name;   /* "SIMPLE_RADIAL" */
    int id;             /* the cameras table's model column */
    int num_params;
    int num_focal;      /* focal parameters first: 1 (f) or 2 (fx, fy) */
    const char *params; /* "f, cx, cy, k" */
} colmap_camera_model;

/** COLMAP's default model (ImageReaderOptions::camera_model). */
#define COLMAP_DEFAULT_CAMERA_MODEL "SIMPLE_RADIAL"

/** The models in id order, ended by a {NULL} entry. */
#define COLMAP_NUM_CAMERA_MODELS 11
extern const colmap_camera_model colmap_camera_models[COLMAP_NUM_CAMERA_MODELS + 1];

/** The model of this name (exact, upper case) or NULL. */
const colmap_camera_model *colmap_camera_model_by_name(const char *name);

/** The model of this id, or NULL. */
const colmap_camera_model *colmap_camera_model_by_id(int id);

/** COLMAP's initial parameters for a model: params[0 .. num_params). */
void colmap_camera_params_init(const colmap_camera_model *model, double focal, int width, int height, double *params);

/** COLMAP's focal length for an image without an EXIF prior:
 *  ImageReaderOptions::default_focal_length_factor (1.2) x the longer side. */
double colmap_default_focal(int width, int height);

/**
 * A keypoints row of cols = 2, 4 or 6 floats as 6 columns (x, y, a11, a12,
 * a21, a22), as COLMAP reads it (FeatureKeypointsFromBlob). Returns 0, or
 * -1 for any other column count.
 */
int colmap_keypoint_row_expand(const float *in, int cols, float out[6]);

/**
 * A 6-column row -> mn_keypoint (OpenCV convention, above). Returns 0, or
 * -1 when the row has a non-finite value or a degenerate shape: then *k is
 * a placeholder (the row's position if finite, else 0, size 1, angle 0)
 * that mn_describe_keypoints() accepts, so that keypoint indices stay
 * those of the database.
 */
int colmap_keypoint_to_mn(const float row[6], mn_keypoint *k);

/** mn_keypoint -> 6-column row (x + 0.5, y + 0.5, the rotation-scale
 *  shape with scale = size / 2 and orientation = angle; angle -1, "none",
 *  is 0). */
void colmap_keypoint_from_mn(const mn_keypoint *k, float row[6]);

/**
 * A 6-column row -> mn_affine_keypoint, the shape kept: COLMAP's
 * [a11 a12; a21 a22] is mn_affine_keypoint's A (the map from the unit
 * circle to the ellipse, in pixels, y down; checked against colmap's
 * --SiftExtraction.estimate_affine_shape in tests/test_colmap_keypoints.c),
 * x and y less 0.5. Returns 0, or -1 when the row has a non-finite value
 * or det A <= 0: then *a is the circle colmap_keypoint_to_mn() gives (a
 * reflected frame's equivalent circle, else its placeholder), which
 * mn_describe_keypoints_affine() accepts.
 */
int colmap_keypoint_to_affine(const float row[6], mn_affine_keypoint *a);

/** mn_affine_keypoint -> 6-column row (x + 0.5, y + 0.5, A): what
 *  mn_affine_shape_estimate() finds, in COLMAP's database. */
void colmap_keypoint_from_affine(const mn_affine_keypoint *a, float row[6]);

#endif /* MATCHNET_COLMAP_CONVERT_H */
