/*
 * matchnet/opencv.h - OpenCV services for C callers of libmatchnet.
 *
 * OpenCV 4 has no C API; libmatchnet_opencv wraps the parts a matching
 * pipeline needs behind C functions in libmatchnet's conventions (status
 * codes, messages through mn_last_error(), caller-owned buffers, no
 * printing, no exceptions crossing into C):
 *
 *   mn_image img1, img2;                         // 8-bit grey
 *   mn_image_load("a.jpg", &img1);               // JPEG: TurboJPEG; others: OpenCV imgcodecs
 *   mn_keypoint *kp1 = malloc(2000 * sizeof *kp1);
 *   size_t n1;
 *   mn_keypoints_detect(&img1, MN_DETECTOR_SIFT, 2000, kp1, &n1);
 *   ... mn_describe_keypoints() with mn_detector_scale_factor(MN_DETECTOR_SIFT)
 *   ... (or mn_affine_shape_estimate() on kp1, then mn_describe_keypoints_affine():
 *   ...  patches over each keypoint's ellipse; matchnet-match --affine),
 *   ... mn_match(), then optionally:
 *   mn_matches_filter(MN_GEOMETRY_HOMOGRAPHY, kp1, n1, kp2, n2, matches, nm, 3.0, H, inliers, &ni);
 *   mn_matches_draw(&img1, kp1, n1, &img2, kp2, n2, matches, nm, inliers, "out.png");
 *   // or mn_matches_draw_with(..., &draw_params, "out.png") for the options
 *   mn_image_free(&img1);
 *
 * mn_image_resize() shrinks an image as the training data were shrunk.
 *
 * All functions are thread-safe.
 */
#ifndef MATCHNET_OPENCV_H
#define MATCHNET_OPENCV_H

#include <matchnet.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define MN_CV_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define MN_CV_API __attribute__((visibility("default")))
#else
#  define MN_CV_API
#endif

/** An 8-bit grey image: height rows of width bytes, rows stride bytes apart. */
typedef struct mn_image {
    uint8_t *pixels;
    int width, height;
    size_t stride;
} mn_image;

/**
 * Decode an image file to 8-bit grey. JPEG files (by their first bytes, not
 * their name) are decoded by libjpeg-turbo's TurboJPEG API; PNG, BMP, PNM
 * (PGM, PPM, PBM), TIFF and WebP by OpenCV imgcodecs. Other formats are
 * refused before any decoder sees them (some of OpenCV's optional decoders
 * abort the process on malformed files). out->pixels is allocated
 * by the call; release it with mn_image_free(). On failure *out is zeroed:
 * MN_ERR_IO when the file cannot be opened or read (missing, a directory),
 * MN_ERR_FORMAT when it cannot be decoded (empty, unknown format, truncated
 * or corrupt: a JPEG that libjpeg-turbo decodes only with a warning is
 * refused, and a PNG's chunk lengths and CRCs are checked before decoding),
 * MN_ERR_INVALID_ARGUMENT for an image over the pixel limit (checked from
 * the file's header before anything is decoded or allocated for it, in
 * every format). The limit is 2^28 pixels (256 MiB of grey); the
 * environment variable MATCHNET_MAX_IMAGE_PIXELS, a positive integer read
 * at each call, sets another (MN_ERR_INVALID_ARGUMENT when it is not a
 * number). Above 2^30 pixels OpenCV's own limit applies too for formats
 * other than JPEG and PNG (OPENCV_IO_MAX_IMAGE_PIXELS raises it).
 * Note: OpenCV's codecs may print on stderr: libpng and libtiff their
 * warnings for files they decode anyway, and OpenCV itself a line for a
 * file of a format it knows (BMP, PNM, TIFF, ...) that it fails to decode.
 */
MN_CV_API mn_status mn_image_load(const char *path, mn_image *out);

/**
 * Width and height of an image file from its header, without decoding
 * it: what mn_image_load() would give, for programs that decode the file
 * some other way (in colour, say) and must not hand a decoder a
 * gigapixel header. The same formats, checks of the header and pixel limit
 * as mn_image_load(); reads a few bytes (a JPEG: the whole file). On
 * failure *width and *height are 0: MN_ERR_IO, MN_ERR_FORMAT (unknown
 * format, header truncated or corrupt), MN_ERR_INVALID_ARGUMENT (NULL
 * arguments; over the pixel limit).
 */
MN_CV_API mn_status mn_image_probe(const char *path, int *width, int *height);

/** Release the pixels of an image from mn_image_load() or mn_image_resize()
 *  and zero it. NULL is accepted. */
MN_CV_API void mn_image_free(mn_image *image);

/**
 * Resize an 8-bit grey image to width x height with cv::resize and
 * cv::INTER_AREA: shrinking averages the source pixels each output pixel
 * covers (integer factors: the exact box mean, rounded); where a side
 * grows, OpenCV's INTER_AREA interpolates (close to bilinear). The same
 * code shrinks the training images (eval/patchset.cpp) and
 * matchnet-colmap's --max-size copies. src is read in place (stride
 * honoured); dst->pixels is allocated by the call (stride = width);
 * release it with mn_image_free(). On failure *dst is zeroed (except when
 * dst is src: refused, and left as it is): MN_ERR_INVALID_ARGUMENT for a
 * NULL or empty (width or height 0) src, NULL pixels, a stride below the
 * width, width or height below 1, or more than 2^28 pixels;
 * MN_ERR_OUT_OF_MEMORY.
 */
MN_CV_API mn_status mn_image_resize(const mn_image *src, int width, int height, mn_image *dst);

/** Keypoint detectors (OpenCV's implementations). */
typedef enum mn_detector {
    MN_DETECTOR_SIFT = 0,  /**< cv::SIFT (DoG), what the shipped models are trained on */
    MN_DETECTOR_ORB = 1,   /**< cv::ORB */
    MN_DETECTOR_AKAZE = 2  /**< cv::AKAZE */
} mn_detector;

/** The extraction scale factor for a detector's keypoints: MN_SCALE_SIFT,
 *  MN_SCALE_ORB or MN_SCALE_AKAZE; 0 for a value that is not an mn_detector. */
MN_CV_API float mn_detector_scale_factor(mn_detector detector);

/**
 * Detect keypoints in an 8-bit grey image: at most max_keypoints, the
 * strongest by detector response, strongest first, in OpenCV's convention
 * (see mn_keypoint). The pixels are read in place (stride honoured).
 * keypoints: caller-owned room for max_keypoints entries; *count receives
 * the number written. An empty image (width or height 0), an image one
 * pixel wide or high, or max_keypoints 0 gives 0 keypoints. Deterministic: the same image gives the same keypoints.
 */
MN_CV_API mn_status mn_keypoints_detect(const mn_image *image, mn_detector detector,
                                        size_t max_keypoints, mn_keypoint *keypoints, size_t *count);

/** Geometric models for mn_matches_filter(). */
typedef enum mn_geometry {
    MN_GEOMETRY_NONE = 0,        /**< no filtering: every match is an inlier */
    MN_GEOMETRY_HOMOGRAPHY = 1,  /**< planar scene or rotating camera */
    MN_GEOMETRY_FUNDAMENTAL = 2  /**< general two-view geometry */
} mn_geometry;

/**
 * Fit a homography (cv::findHomography) or fundamental matrix
 * (cv::findFundamentalMat) to matches by RANSAC with the given inlier
 * threshold in pixels (> 0). matches[k].query indexes kp1 (image 1) and
 * .train kp2 (image 2); an index out of range, or a matched keypoint with a
 * non-finite coordinate, is refused with MN_ERR_INVALID_ARGUMENT.
 * model: 9 doubles, row-major, maps image 1 to image 2 (F: x2^T F x1 = 0);
 * may be NULL. inliers: nm bytes, 1 for an inlier, may be NULL.
 * *n_inliers receives their number (0, and a zero model, when too few
 * matches or no model was found: 4 for a homography, 8 for F).
 * MN_GEOMETRY_NONE marks every match an inlier and writes a zero model
 * (there is no model to report); threshold_px is then ignored.
 * Repeatable: OpenCV's RANSAC seeds its own generator on each call.
 */
MN_CV_API mn_status mn_matches_filter(mn_geometry geometry, const mn_keypoint *kp1, size_t n1,
                                      const mn_keypoint *kp2, size_t n2, const mn_dmatch *matches,
                                      size_t nm, double threshold_px, double *model, uint8_t *inliers,
                                      size_t *n_inliers);

/** The number of match lines mn_draw_params_default() draws at most. */
#define MN_DRAW_MAX_LINES 300

/**
 * Options for mn_matches_draw_with(). Start from mn_draw_params_default():
 * the defaults keep the images visible under thousands of matches.
 */
typedef struct mn_draw_params {
    size_t max_lines; /**< most match lines drawn (default MN_DRAW_MAX_LINES); 0 draws none, SIZE_MAX all.
                           Which ones: see mn_matches_draw_with() */
    int keypoints;    /**< nonzero: a small circle at every keypoint, matched or not (default 0) */
    int counts;       /**< nonzero: the counts written in the top-left corner (default 1) */
    float opacity;    /**< lines, their end marks and the keypoint circles are blended over the
                           images at this opacity, in (0, 1] (default 0.6) */
} mn_draw_params;

/** The default drawing options: at most MN_DRAW_MAX_LINES lines, no
 *  keypoint circles, the counts, opacity 0.6. */
MN_CV_API mn_draw_params mn_draw_params_default(void);

/**
 * Draw two images side by side (image 1 on the left, grey in a colour
 * picture, both at the top; the picture is w1 + w2 by max(h1, h2) pixels)
 * with a 1-pixel anti-aliased line per match and a small circle at each of
 * its ends, inliers in green and outliers in red (inliers: NULL for all
 * inliers, or nm bytes), outliers drawn first so that inliers lie on top.
 * Write the picture to path, format from its extension (.png, .jpg, ...).
 * params NULL means mn_draw_params_default().
 *
 * Which lines: all matches when nm <= params->max_lines. Otherwise inliers
 * are preferred: the first min(ni, max_lines) slots go to inliers and the
 * rest to outliers; m entries of a list of n (the inliers, or the
 * outliers, in the order of matches) are the entries at
 * floor((2k + 1) n / (2m)), k = 0 .. m-1, the middle of each of m equal
 * stretches: an even spread over the list, the same on every call.
 * With params->counts, one line in the top-left corner, on a darkened box,
 * says what is drawn: "N1 + N2 keypoints, NI inliers (green) / NM matches,
 * D drawn" (without the inlier part when every match is an inlier, without
 * "D drawn" when all are).
 *
 * The file is written through a temporary file in the same directory and
 * renamed, so a failure never leaves a partial picture. Errors: MN_ERR_IO
 * when the file cannot be written, MN_ERR_UNSUPPORTED for an extension
 * OpenCV has no encoder for, MN_ERR_INVALID_ARGUMENT for bad indices, more
 * than INT_MAX matches or an opacity outside (0, 1].
 */
MN_CV_API mn_status mn_matches_draw_with(const mn_image *image1, const mn_keypoint *kp1, size_t n1,
                                         const mn_image *image2, const mn_keypoint *kp2, size_t n2,
                                         const mn_dmatch *matches, size_t nm, const uint8_t *inliers,
                                         const mn_draw_params *params, const char *path);

/**
 * mn_matches_draw_with() with mn_draw_params_default(): at most
 * MN_DRAW_MAX_LINES lines, the counts, no keypoint circles. (It used to
 * draw every match and keypoint, opaque: params with max_lines SIZE_MAX,
 * keypoints 1, counts 0 and opacity 1 come closest.)
 */
MN_CV_API mn_status mn_matches_draw(const mn_image *image1, const mn_keypoint *kp1, size_t n1,
                                    const mn_image *image2, const mn_keypoint *kp2, size_t n2,
                                    const mn_dmatch *matches, size_t nm, const uint8_t *inliers,
                                    const char *path);

#ifdef __cplusplus
}
#endif

#endif /* MATCHNET_OPENCV_H */
