/*
 * match_json.h - the JSON that matchnet-match writes for an image pair.
 *
 *   {"image1": {"path": "a.png", "width": 640, "height": 480,
 *               "keypoints": [[x, y, size, angle_deg], ...]},
 *    "image2": {...},
 *    "matches": [[i, j, probability], ...],
 *    "timing_ms": {"detect": 12.5, "describe": 340, "match": 20.1}}
 *
 * With affine shapes (matchnet-match --affine) each image also has
 * "shapes": [[a11, a12, a21, a22], ...], keypoint k's frame (mn_affine_keypoint;
 * the keypoint's circle where no ellipse was found), after "keypoints".
 *
 * x, y follow OpenCV's pixel convention (pixel centres at integers); i and
 * j index image1's and image2's keypoint lists. Strings are valid UTF-8
 * whatever the bytes of the path (invalid sequences become U+FFFD), with
 * quotes, backslashes and control characters escaped. Floats are written
 * with 9 significant digits, enough to read back the same float; a
 * non-finite value (never produced by the pipeline) is written as null, as
 * JSON has no NaN or infinity.
 */
#ifndef MATCH_JSON_H
#define MATCH_JSON_H

#include "matchnet.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One image's part of the output. */
typedef struct match_json_image {
    const char *path;               /**< as given on the command line (any bytes) */
    int width, height;
    const mn_keypoint *keypoints;
    size_t n;
    const mn_affine_keypoint *shapes; /**< NULL, or n affine frames: written as "shapes" */
} match_json_image;

/** Wall-clock times of the pipeline's stages, in milliseconds. */
typedef struct match_json_timing {
    double detect, describe, match;
} match_json_timing;

/** Write s as a JSON string literal, quotes included. Returns 0, or -1 on a write error. */
int match_json_write_string(FILE *f, const char *s);

/** Write the whole document, ending with a newline. Returns 0, or -1 on a
 *  write error (check ferror()/fflush() as well when f is buffered). */
int match_json_write(FILE *f, const match_json_image *image1, const match_json_image *image2,
                     const mn_dmatch *matches, size_t nm, const match_json_timing *timing);

#ifdef __cplusplus
}
#endif

#endif
