/*
 * matchnet.h - MatchNet patch descriptor and learned metric, in C.
 *
 * libmatchnet runs MatchNet (Han et al., "MatchNet: Unifying feature and
 * metric learning for patch-based matching", CVPR 2015): a convolutional
 * feature tower that turns a 64x64 grey patch into a feature vector, and a
 * metric network that turns a pair of feature vectors into the probability
 * that the two patches show the same physical point.
 *
 * Usage
 * -----
 *
 *   mn_model *model = NULL;
 *   if (mn_model_load_file("models/matchnet.mnw", &model) != MN_OK) {
 *       fprintf(stderr, "%s\n", mn_last_error());
 *       return 1;
 *   }
 *   mn_session *s = NULL;
 *   mn_session_create(model, NULL, &s);          // one per thread
 *
 *   size_t d = mn_model_descriptor_dim(model);
 *   float *da = malloc(na * d * sizeof *da), *db = malloc(nb * d * sizeof *db);
 *   mn_describe_u8(s, patches_a, na, da);         // na patches of 64x64 bytes
 *   mn_describe_u8(s, patches_b, nb, db);
 *
 *   mn_pair pairs[] = {{0, 3}, {1, 7}};           // candidate (a, b) pairs
 *   float prob[2];
 *   mn_metric_score_pairs(s, da, na, db, nb, pairs, 2, prob);
 *
 *   mn_session_free(s);
 *   mn_model_free(model);
 *
 * Two-stage scoring
 * -----------------
 * The metric network's first layer acts on the concatenation [fa, fb]; it
 * equals W_a fa + W_b fb + b. mn_metric_project() computes W_a fa (or W_b fb)
 * once per descriptor, and mn_metric_score_projected() combines the halves
 * for any number of pairs. mn_metric_score_pairs() and mn_metric_score_all()
 * do both steps in one call.
 *
 * Conventions
 * -----------
 * - Every fallible function returns an mn_status. On failure, mn_last_error()
 *   gives a message for the calling thread, prefixed with the function name,
 *   and every output handle is set to NULL.
 * - The caller owns every buffer it passes; sizes come from the query
 *   functions. The library never keeps a pointer to caller memory.
 * - An mn_model is immutable once loaded and may be shared by any number of
 *   threads. An mn_session holds scratch memory and must be used by one
 *   thread at a time; create one session per thread.
 * - The library never prints, exits or aborts.
 */
#ifndef MATCHNET_H
#define MATCHNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define MN_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define MN_API __attribute__((visibility("default")))
#else
#  define MN_API
#endif

#define MN_VERSION_MAJOR 0
#define MN_VERSION_MINOR 1
#define MN_VERSION_PATCH 0
/** Version as one number, e.g. 100 for 0.1.0. */
#define MN_VERSION (MN_VERSION_MAJOR * 10000 + MN_VERSION_MINOR * 100 + MN_VERSION_PATCH)

/** Version of the library actually linked, "MAJOR.MINOR.PATCH". */
MN_API const char *mn_version_string(void);

/** Status codes. MN_OK is zero; every error is positive. */
typedef enum mn_status {
    MN_OK = 0,
    MN_ERR_INVALID_ARGUMENT = 1, /**< NULL pointer, zero size, out-of-range index */
    MN_ERR_OUT_OF_MEMORY = 2,    /**< an allocation failed; nothing was changed */
    MN_ERR_IO = 3,               /**< a file could not be opened or read */
    MN_ERR_FORMAT = 4,           /**< a model or image file is truncated, corrupt or inconsistent */
    MN_ERR_VERSION = 5,          /**< a model file has a format version this library cannot read */
    MN_ERR_CHECKSUM = 6,         /**< a model file's checksum does not match its contents */
    MN_ERR_UNSUPPORTED = 7       /**< valid request this build or model cannot serve */
} mn_status;

/** Name of a status code, e.g. "MN_ERR_FORMAT". Never NULL. */
MN_API const char *mn_status_str(mn_status status);

/**
 * Message describing the last error on the calling thread, such as
 * "mn_model_load_file(): tower layer 3 (conv): weight has shape [96,64,3,3],
 * expected [96,96,3,3]". Empty string if no call has failed on this thread.
 * The pointer stays valid until the next failing call on the same thread.
 */
MN_API const char *mn_last_error(void);

/**
 * Record a message for mn_last_error() on the calling thread, as
 * "func(): message", and return status. For libraries built on libmatchnet
 * (the OpenCV plugin) so that their failures read like the library's own.
 */
MN_API mn_status mn_error_set(mn_status status, const char *func, const char *message);

/* ------------------------------------------------------------------------ */
/* Model                                                                     */
/* ------------------------------------------------------------------------ */

/** A loaded network: immutable, shareable between threads. */
typedef struct mn_model mn_model;

/**
 * Load a model from a .mnw file (layout documented in src/model_parse.c and
 * models/README.md). The whole file is validated (size, magic, version,
 * checksum, architecture and every tensor shape) before *out is set.
 */
MN_API mn_status mn_model_load_file(const char *path, mn_model **out);

/**
 * Load the default model: the file named by the environment variable
 * MATCHNET_MODEL if it is set, else the model installed with the library
 * (mn_default_model_path()), else share/matchnet/matchnet.mnw beside the
 * lib/ directory this library was loaded from (an installed tree moved to
 * another prefix), else the copy in the source tree the library was built
 * from (for use without installing).
 */
MN_API mn_status mn_model_load_default(mn_model **out);

/** Where the library's installed default model lives, e.g.
 *  "/usr/local/share/matchnet/matchnet.mnw". Never NULL. */
MN_API const char *mn_default_model_path(void);

/** Load a model from a .mnw image in memory. The bytes are copied. */
MN_API mn_status mn_model_load_memory(const void *data, size_t size, mn_model **out);

/** Release a model. NULL is accepted. All sessions on it must be freed first. */
MN_API void mn_model_free(mn_model *model);

/** Model name stored in the file (UTF-8, never NULL). */
MN_API const char *mn_model_name(const mn_model *model);

/** Side of the square input patch in pixels (64 for MatchNet). */
MN_API int mn_model_patch_size(const mn_model *model);

/**
 * Dimension of the convolutional tower's output before any bottleneck
 * (4096 for the original Caffe-pooled layout, 3136 for floor pooling).
 */
MN_API size_t mn_model_feature_dim(const mn_model *model);

/**
 * Dimension of the descriptor that mn_describe_*() writes per patch: the
 * bottleneck width when the model has one, else mn_model_feature_dim().
 * This is the input of each half of the metric network.
 */
MN_API size_t mn_model_descriptor_dim(const mn_model *model);

/** Width of the metric network's first layer: the length of one projection. */
MN_API size_t mn_model_projection_dim(const mn_model *model);

/** Pixel normalisation applied to the input: (x - mean) / divisor. */
MN_API void mn_model_normalization(const mn_model *model, float *mean, float *divisor);

/* ------------------------------------------------------------------------ */
/* Session                                                                   */
/* ------------------------------------------------------------------------ */

/** Per-thread working state: scratch buffers and worker threads. */
typedef struct mn_session mn_session;

/**
 * Options for mn_session_create(). Start from mn_session_params_default().
 *
 * A session splits each call's patches or pairs over its threads. What is
 * repeatable, exactly (tests/test_determinism.c, run under each OpenBLAS core):
 *  - A patch's descriptor is bit-identical whatever the thread count, the
 *    batch size and the patch's place in the batch, as long as the block of
 *    16 holding it has 8 or more patches. Patches go through the tower in
 *    blocks of 16 (the block's images are the lanes of the vector
 *    arithmetic); a block of fewer than 8 (a small call, or a call's last
 *    block) takes an im2col path that costs no empty lanes; when a whole
 *    call is that small, its threads share each layer's work instead of
 *    the patches (so batch 1 uses them too). Among such blocks the same
 *    holds; between the two paths results agree to rounding
 *    (about 1e-7 relative), not to the last bit.
 *  - Metric projections and probabilities, and the matcher's neighbours and
 *    distances, are bit-identical whatever the thread count and however
 *    many descriptors, pairs or queries share the call, in any order.
 *  - Across machines and kernels: the same bits wherever mn_blas_info()
 *    names the same kernels and instruction set. Between instruction sets,
 *    product kernels (OpenBLAS or own, so between OpenBLAS cores) and with
 *    MN_GEMM, MN_SIMD or MN_WINOGRAD overrides, results agree to rounding
 *    (about 1e-6 relative; test_golden holds each to PyTorch within 1e-4).
 *  - Precision: on AMD CPUs with AVX512-BF16 (Zen 4) the blocked path's
 *    Winograd products and fully connected layer run in bfloat16 by
 *    default, where it is 1.3x faster, and so do the im2col path's
 *    products of the same convolutions (1.4x at batch 1)
 *    (MN_PRECISION=fp32 turns it off; MN_PRECISION=bf16 turns it on on
 *    other CPUs with AVX512-BF16; mn_blas_info() says which runs). Every
 *    promise above holds in bfloat16 except that the blocked and im2col
 *    paths then agree to 8% of a descriptor's largest component, and the
 *    results are bfloat16's, within the same bound of fp32's and PyTorch's
 *    (test_golden, test_determinism; the shipped model on real patches:
 *    cosine >= 0.9997 with fp32, Oxford patch FPR95 and correct matches
 *    unchanged, bench/README.md).
 * Creating a session sets OpenBLAS to one thread
 * (openblas_set_num_threads(1)): BLAS threads inside the library's threads
 * would only contend for the cores.
 */
typedef struct mn_session_params {
    /** Threads that work on one call (the calling thread included).
     *  0 means the value of mn_default_num_threads(). Default 0. */
    int num_threads;
    /** Run every layer with its plain reference loop instead of the fast
     *  path. Slow; for validation. Default 0. */
    int reference;
} mn_session_params;

/** Default session options. */
MN_API mn_session_params mn_session_params_default(void);

/**
 * Create a session on a model. params may be NULL for defaults. The model
 * must outlive the session.
 */
MN_API mn_status mn_session_create(const mn_model *model, const mn_session_params *params,
                                   mn_session **out);

/** Release a session. NULL is accepted. */
MN_API void mn_session_free(mn_session *session);

/**
 * Set the number of threads new sessions use by default (1..64). Call it
 * before creating sessions; it is not synchronised with concurrent
 * mn_session_create() calls.
 */
MN_API mn_status mn_set_num_threads(int n);

/** Threads a session with num_threads == 0 uses (initially the number of
 *  online processors, at most 8). */
MN_API int mn_default_num_threads(void);

/**
 * One line describing the compute kernels in use: the BLAS and its core,
 * the kernel of the Winograd products, the kernel of the other products and
 * the tower's instruction set, e.g. "OpenBLAS 0.3.21 ...; core Haswell;
 * Winograd products: libmatchnet's AVX-512 kernel; other products (fully
 * connected, metric, matching, small blocks): libmatchnet's AVX-512 kernel;
 * tower: avx512 blocked path".
 * Products whose shape follows the batch or the thread split (fully
 * connected layers, metric network, matching, small blocks) always run on
 * libmatchnet's own AVX-512, AVX2 or plain C kernel. The Winograd products
 * (shapes fixed by the model) run on OpenBLAS where its core keeps the same
 * promise and is faster (SkylakeX, Cooperlake; and the SSE/AVX cores of CPUs
 * without AVX2), else on the own kernel (OpenBLAS's Haswell and Zen kernels
 * would make a patch's result depend on its place in the batch; Debian 12's
 * OpenBLAS falls back to SSE kernels on CPUs newer than itself). Overrides,
 * for comparison and debugging: MN_GEMM=blas (Winograd products on OpenBLAS, which keeps
 * the thread-count promise but, on the Haswell and Zen cores, not the
 * batch-place one), avx2, avx512 or generic; MN_SIMD=generic, avx2 or
 * avx512 (the tower's vector code); MN_WINOGRAD=0, read when a model is
 * loaded, makes every convolution direct; MN_PRECISION=fp32|bf16 chooses
 * the Winograd products' precision where the CPU has AVX512-BF16 (bf16:
 * "libmatchnet's AVX-512 BF16 kernel (bfloat16)", the default on AMD
 * CPUs; see mn_session_params).
 * Never NULL.
 */
MN_API const char *mn_blas_info(void);

/* ------------------------------------------------------------------------ */
/* Descriptors                                                               */
/* ------------------------------------------------------------------------ */

/**
 * Run the feature tower (and bottleneck, if any) on n patches.
 * patches: n * P * P bytes, row-major, P = mn_model_patch_size().
 * descriptors: n * mn_model_descriptor_dim() floats, written by the call.
 */
MN_API mn_status mn_describe_u8(mn_session *session, const uint8_t *patches, size_t n,
                                float *descriptors);

/** As mn_describe_u8() for float pixels in the same 0..255 units. Fails
 *  with MN_ERR_INVALID_ARGUMENT, writing nothing, when a pixel is NaN or
 *  infinite (the message names the first). */
MN_API mn_status mn_describe_f32(mn_session *session, const float *patches, size_t n,
                                 float *descriptors);

/* ------------------------------------------------------------------------ */
/* Patches                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * A keypoint in OpenCV's convention (cv::KeyPoint): pixel centres at integer
 * coordinates; size is the diameter of the meaningful neighbourhood in
 * pixels; angle in degrees, clockwise in the displayed image (y down), so
 * the patch's x axis points along (cos angle, sin angle); -1 means "no
 * orientation" and is treated as 0.
 */
typedef struct mn_keypoint {
    float x, y;
    float size;
    float angle;
} mn_keypoint;

/**
 * Side of the patch's support, as a multiple of the keypoint size, per
 * detector (the factors OpenCV's VGG and BoostDesc descriptors use; the
 * shipped models are trained on SIFT keypoints with MN_SCALE_SIFT).
 * SIFT's size is twice its scale sigma and its own descriptor spans about
 * 6 x size; ORB's size is its 31-px patch at the keypoint's pyramid level.
 */
#define MN_SCALE_SIFT 6.75f
#define MN_SCALE_KAZE 6.25f
#define MN_SCALE_SURF 6.25f
#define MN_SCALE_AKAZE 5.0f
#define MN_SCALE_ORB 0.75f

/** Options for mn_extract_patches(). Start from mn_extract_params_default(). */
typedef struct mn_extract_params {
    /** Patch side covers size * scale_factor image pixels. Default MN_SCALE_SIFT. */
    float scale_factor;
    /** Ignore keypoint angles (upright patches). Default 0. */
    int upright;
    /** Side of the output patches in pixels. Default 64. */
    int patch_size;
} mn_extract_params;

/** Default extraction options. */
MN_API mn_extract_params mn_extract_params_default(void);

/**
 * Cut one patch per keypoint from an 8-bit grey image: an affine map from
 * the keypoint's position, size * scale_factor and angle, sampled
 * bilinearly. When the support is larger than the patch, samples come from
 * a Gaussian pyramid (trilinear between levels), so large keypoints are
 * low-passed instead of aliased. Pixels outside the image repeat the
 * nearest edge pixel (border replicate), so keypoints at or beyond the
 * border still give a defined patch.
 *
 * image: height rows of width bytes, rows stride bytes apart (stride >= width).
 * patches: n * patch_size * patch_size bytes, written by the call.
 * Fails with MN_ERR_INVALID_ARGUMENT, writing nothing, when a keypoint has a
 * non-finite coordinate, size or angle, or a size <= 0 (the message names
 * the first such keypoint). n == 0 is a valid empty request.
 * Thread-safe; allocates a temporary pyramid when one is needed.
 */
MN_API mn_status mn_extract_patches(const uint8_t *image, int width, int height, size_t stride,
                                    const mn_keypoint *keypoints, size_t n,
                                    const mn_extract_params *params, uint8_t *patches);

/* ------------------------------------------------------------------------ */
/* Affine shape                                                              */
/* ------------------------------------------------------------------------ */

/*
 * A keypoint detector such as SIFT gives circles: a position, a size and an
 * angle. Under a change of viewpoint a circle on one image is an ellipse on
 * the other, and a patch cut around the circle shows a different piece of
 * the surface. Affine adaptation (Baumberg, CVPR 2000; Mikolajczyk and
 * Schmid, IJCV 2004; VLFeat's covdet) finds for each keypoint the ellipse
 * over which the image's gradients are isotropic; patches cut over those
 * ellipses, mapped to the square, agree between views up to the remaining
 * rotation, which the orientation takes out.
 *
 *   mn_affine_keypoint *ak = malloc(n * sizeof *ak);
 *   mn_affine_shape_estimate(session, img, w, h, stride, kps, n, NULL, ak, NULL);
 *   mn_describe_keypoints_affine(session, img, w, h, stride, ak, n, NULL, desc);
 *
 * Opt-in: the shipped model is trained on similarity patches (circles).
 */

/**
 * A keypoint with an affine shape: the position in mn_keypoint's
 * convention (pixel centres at integer coordinates, y down) and the 2x2
 * matrix A = [a11 a12; a21 a22] that maps the keypoint's canonical frame
 * to image pixels: frame point (u, v) is image point
 * (x + a11 u + a12 v, y + a21 u + a22 v). The unit circle of the frame is
 * the keypoint's ellipse, and the frame's u axis is the patch's x axis.
 *
 * An mn_keypoint is the case A = (size / 2) R(angle), R the rotation by
 * angle (clockwise on screen, as mn_keypoint's): sqrt(det A) is half the
 * equivalent size, atan2(a21, a11) the angle (mn_affine_from_keypoint(),
 * mn_affine_to_keypoint()). A patch spans frame coordinates
 * [-scale_factor, scale_factor] on both axes, so such a keypoint gives the
 * very patch mn_extract_patches() cuts for its mn_keypoint. This is
 * COLMAP's and VLFeat's frame (COLMAP's 6-column keypoint rows a11 a12
 * a21 a22 are this A; its x and y are these plus 0.5). det A must be
 * positive: a reflected frame would mirror the patch.
 */
typedef struct mn_affine_keypoint {
    float x, y;
    float a11, a12, a21, a22;
} mn_affine_keypoint;

/** The circle of an mn_keypoint as an affine keypoint: A = (size / 2)
 *  R(angle); angle -1 ("no orientation") is taken as 0. Non-finite input
 *  gives non-finite output; nothing is checked. */
MN_API mn_affine_keypoint mn_affine_from_keypoint(const mn_keypoint *keypoint);

/** The equivalent circle of an affine keypoint: size = 2 sqrt|det A|,
 *  angle = atan2(a21, a11) in degrees, in [0, 360) (the direction of the
 *  patch's x axis in the image). Exact inverse of mn_affine_from_keypoint()
 *  up to rounding. Nothing is checked. */
MN_API mn_keypoint mn_affine_to_keypoint(const mn_affine_keypoint *keypoint);

/**
 * How mn_affine_shape_estimate() orients the ellipse it finds (an ellipse
 * fixes the frame only up to a rotation).
 */
typedef enum mn_affine_orientation {
    /** The dominant gradient orientation measured in the affine-normalised
     *  patch, as SIFT measures it on the circular one (36-bin histogram of
     *  gradient directions, Gaussian window of 1.5 units): of the peaks
     *  within 80% of the highest, the one nearest the keypoint's own angle
     *  carried into the normalised frame, so that SIFT's duplicate
     *  keypoints (one per strong peak) keep their distinct orientations.
     *  Covariant with affine maps of the image (the default). On real
     *  multi-view photographs it turns one view of about 8% of the
     *  matching pairs to another peak (strecha-entry-P10; README,
     *  "Affine shapes"). */
    MN_AFFINE_ORIENT_GRADIENT = 0,
    /** Keep the keypoint's angle as an image direction: the patch's x axis
     *  points along (cos angle, sin angle) in the image, as with
     *  mn_keypoint. Cheaper, and as stable as the detector's angle (1% of
     *  strecha-entry-P10's matching pairs turned), but not covariant under
     *  anisotropic maps (the detector's angle is measured on the circle):
     *  it loses most of the affine patches' gain beyond 2:1. */
    MN_AFFINE_ORIENT_KEEP = 1
} mn_affine_orientation;

/** What mn_affine_shape_estimate() found for one keypoint. */
typedef enum mn_affine_result {
    /** The iteration reached an isotropic frame: the ellipse is returned. */
    MN_AFFINE_CONVERGED = 0,
    /** max_iterations passed without reaching it: the last frame of the
     *  iteration is returned. */
    MN_AFFINE_NOT_CONVERGED = 1,
    /** The ellipse would grow more elongated than max_anisotropy (an edge,
     *  a one-dimensional texture): the iteration went on with each frame
     *  brought back to max_anisotropy (axes' ratio; det A kept), and its
     *  last frame is returned; or, for a straight edge (no gradient across
     *  it), the frame it had reached. Not the circle: where one view of a
     *  point stays within the bound and another does not, the two frames
     *  then still roughly agree. */
    MN_AFFINE_TOO_ANISOTROPIC = 2,
    /** No gradient in the window (a flat region, or one outside the image
     *  where the replicated border is constant): the circle is returned. */
    MN_AFFINE_FLAT = 3
} mn_affine_result;

/** Options for mn_affine_shape_estimate(). Start from mn_affine_params_default(). */
typedef struct mn_affine_params {
    /** Iterations at most (1..100). Default 16. */
    int max_iterations;
    /** The frame is isotropic when the second-moment matrix's eigenvalues,
     *  measured in it, are within this ratio (> 1). Default 1.03. */
    float convergence;
    /** Largest accepted ratio of the ellipse's axes (>= 1). Default 6: a
     *  round structure on a plane seen 80 degrees from its normal. */
    float max_anisotropy;
    /** Gaussian window of the second-moment matrix, sigma in frame units
     *  (the keypoint's radius, size / 2: SIFT's sigma). Default 3, VLFeat's.
     *  0.5 .. 8. */
    float integration_sigma;
    /** Gaussian smoothing before the gradients, sigma in frame units.
     *  Default 1, VLFeat's. 0.25 .. integration_sigma. */
    float derivative_sigma;
    /** MN_AFFINE_ORIENT_GRADIENT or MN_AFFINE_ORIENT_KEEP. Default
     *  MN_AFFINE_ORIENT_GRADIENT. */
    mn_affine_orientation orientation;
} mn_affine_params;

/** Default affine estimation options (see mn_affine_params). */
MN_API mn_affine_params mn_affine_params_default(void);

/**
 * Estimate the affine shape of each keypoint (Baumberg's iteration, as
 * Mikolajczyk and Schmid's Harris-Affine and VLFeat's covdet run it): in
 * the keypoint's current frame, sample the image around it, smooth it by
 * derivative_sigma, and sum the second-moment matrix M of its gradients
 * under a Gaussian window of integration_sigma; when M's eigenvalues are
 * within `convergence` of each other the frame is isotropic and the
 * iteration stops, else the frame is multiplied by M^(-1/2), scaled to keep
 * its determinant. The keypoint's position and scale are kept (det A =
 * (size / 2)^2); the orientation follows params->orientation. Samples come
 * from a Gaussian pyramid, so large keypoints are low-passed as in
 * mn_extract_patches(); outside the image the border is replicated.
 *
 * out[k] is keypoints[k]'s affine keypoint, one usable entry per
 * keypoint: where the iteration did not converge (results[k]), the frame
 * it reached, at most max_anisotropy elongated (see mn_affine_result);
 * for a flat window, the keypoint's circle, mn_affine_from_keypoint().
 * Drop the failed ones if only converged ellipses are wanted.
 * results: NULL, or n bytes receiving an mn_affine_result each.
 *
 * session: NULL to work on the calling thread, or a session whose threads
 * share the keypoints (its model is not used); the results are the same
 * bits either way, and whatever the keypoints' order and number.
 * image: height rows of width bytes, rows stride bytes apart. Fails with
 * MN_ERR_INVALID_ARGUMENT, writing nothing, for a keypoint with a
 * non-finite value or a size <= 0 (the message names the first), or
 * parameters out of range. n == 0 is a valid empty request. Thread-safe
 * (a session: one thread at a time, as always); allocates a pyramid and a
 * small work area per thread (about 60 KB) per call. About half a
 * millisecond per SIFT keypoint and thread (most converge in 4 to 10
 * iterations; about a quarter are edges, kept as circles).
 */
MN_API mn_status mn_affine_shape_estimate(mn_session *session, const uint8_t *image, int width, int height,
                                          size_t stride, const mn_keypoint *keypoints, size_t n,
                                          const mn_affine_params *params, mn_affine_keypoint *out,
                                          uint8_t *results);

/**
 * mn_extract_patches() for affine keypoints: patch pixel (u, v) samples
 * image point (x, y) + A (2 scale_factor / patch_size) (u + 0.5 - P/2,
 * v + 0.5 - P/2), so the frame's [-scale_factor, scale_factor] square fills
 * the patch. Anti-aliased along both axes of the ellipse: the pyramid level
 * follows the shorter axis, and up to 8 samples are averaged along the
 * longer one (beyond an 8:1 ratio the level follows the longer axis / 8).
 * params->upright turns each frame about its centre so that the patch's x
 * axis lies along the image's x axis (A R(psi), psi = atan2(-a21, a22));
 * the ellipse stays. Fails with MN_ERR_INVALID_ARGUMENT, writing nothing,
 * for a keypoint with a non-finite value or det A <= 0 (the message names
 * the first). Otherwise as mn_extract_patches(): border replicated,
 * thread-safe.
 */
MN_API mn_status mn_extract_patches_affine(const uint8_t *image, int width, int height, size_t stride,
                                           const mn_affine_keypoint *keypoints, size_t n,
                                           const mn_extract_params *params, uint8_t *patches);

/* ------------------------------------------------------------------------ */
/* Metric network                                                            */
/* ------------------------------------------------------------------------ */

/** Which half of the metric network's input a descriptor is fed to. */
typedef enum mn_side {
    MN_SIDE_A = 0, /**< first (left) input */
    MN_SIDE_B = 1  /**< second (right) input */
} mn_side;

/** A candidate pair: index into set A and index into set B. */
typedef struct mn_pair {
    uint32_t a;
    uint32_t b;
} mn_pair;

/**
 * First stage: project n descriptors through their half of the metric
 * network's first layer. projections: n * mn_model_projection_dim() floats.
 */
MN_API mn_status mn_metric_project(mn_session *session, const float *descriptors, size_t n,
                                   mn_side side, float *projections);

/**
 * Second stage: match probability of each pair from projections made by
 * mn_metric_project() (set A with MN_SIDE_A, set B with MN_SIDE_B).
 * prob[k] in [0, 1] for pairs[k]; 0 where the network's output is not a
 * number, which only descriptors far outside the tower's range (values of
 * 1e30 and more) cause. Indices are checked against na and nb.
 */
MN_API mn_status mn_metric_score_projected(mn_session *session, const float *proj_a, size_t na,
                                           const float *proj_b, size_t nb,
                                           const mn_pair *pairs, size_t npairs, float *prob);

/**
 * Match probability of each candidate pair between descriptor sets A and B
 * (two-stage: each descriptor is projected once, whatever the number of
 * pairs it appears in).
 */
MN_API mn_status mn_metric_score_pairs(mn_session *session, const float *desc_a, size_t na,
                                       const float *desc_b, size_t nb,
                                       const mn_pair *pairs, size_t npairs, float *prob);

/**
 * Match probability of every pair of two sets: prob[i * nb + j] scores
 * (a_i, b_j). Meant for small sets; cost grows with na * nb.
 */
MN_API mn_status mn_metric_score_all(mn_session *session, const float *desc_a, size_t na,
                                     const float *desc_b, size_t nb, float *prob);

/**
 * Reference evaluation of the metric network on the explicit concatenation
 * [a, b] of each pair, as the network was trained. Same results as
 * mn_metric_score_pairs() within float rounding; slower. For validation.
 */
MN_API mn_status mn_metric_score_pairs_plain(mn_session *session, const float *desc_a, size_t na,
                                             const float *desc_b, size_t nb,
                                             const mn_pair *pairs, size_t npairs, float *prob);

/* ------------------------------------------------------------------------ */
/* Keypoints to descriptors                                                  */
/* ------------------------------------------------------------------------ */

/**
 * mn_extract_patches() and mn_describe_u8() in one call: descriptors[k *
 * mn_model_descriptor_dim()] for keypoints[k]. params NULL means
 * mn_extract_params_default(); params->patch_size must equal the model's
 * patch size. Patches are cut and described in blocks, so the temporary
 * memory stays small whatever n is. n == 0 is a valid empty request.
 */
MN_API mn_status mn_describe_keypoints(mn_session *session, const uint8_t *image, int width, int height,
                                       size_t stride, const mn_keypoint *keypoints, size_t n,
                                       const mn_extract_params *params, float *descriptors);

/**
 * mn_describe_keypoints() for affine keypoints: mn_extract_patches_affine()
 * and mn_describe_u8() in one call, in blocks, on the session's threads.
 * The same results whatever the thread count.
 */
MN_API mn_status mn_describe_keypoints_affine(mn_session *session, const uint8_t *image, int width,
                                              int height, size_t stride, const mn_affine_keypoint *keypoints,
                                              size_t n, const mn_extract_params *params, float *descriptors);

/* ------------------------------------------------------------------------ */
/* Matching                                                                  */
/* ------------------------------------------------------------------------ */

/** How mn_match() decides between candidates. */
typedef enum mn_match_method {
    /** Candidates by L2 distance, chosen by the metric network's probability. */
    MN_MATCH_METRIC = 0,
    /** Plain nearest neighbour in L2 distance (the metric network only
     *  reports the probability of the kept matches). */
    MN_MATCH_L2 = 1
} mn_match_method;

/**
 * Options for mn_match(). Start from mn_match_params_default() or
 * mn_match_params_preset().
 *
 * Measured on the Oxford homography sequences (20 pairs, 2000 SIFT
 * keypoints, eval/eval_matching.cpp; figures in bench/README.md): L2
 * nearest neighbour on MatchNet descriptors with the ratio test 0.8 found
 * the most correct matches (457 per pair against 442 for the metric
 * network's choice and 418 for SIFT with the same ratio test), so it is the
 * default; the metric network's preset gives slightly fewer matches.
 */
typedef struct mn_match_params {
    /** MN_MATCH_METRIC or MN_MATCH_L2. Default MN_MATCH_L2. */
    mn_match_method method;
    /** Candidates per query: its k nearest descriptors in L2 distance
     *  (1..256). MN_MATCH_METRIC scores each with the metric network.
     *  Default 5. */
    int k;
    /** Keep a match only if its probability is at least this (with
     *  MN_MATCH_L2: the probability of the L2 choice, so the metric network
     *  verifies it; 0 gives plain L2 matching). Default 0 (MN_MATCH_METRIC
     *  preset: 0.5). */
    float min_probability;
    /** Keep a match only if its ratio of best to second-best "distance"
     *  is below this: L2 distance with MN_MATCH_L2 (Lowe's ratio test),
     *  1 - probability with MN_MATCH_METRIC. 1 or more disables it.
     *  Default 0.8 (MN_MATCH_METRIC preset: 1, off). */
    float ratio;
    /** Keep (q, t) only if q is also t's best match in the other direction
     *  (cross check). Default 0 (MN_MATCH_METRIC preset: 1). */
    int mutual;
    /** MN_MATCH_METRIC only: score every query against every train
     *  descriptor instead of its k L2 neighbours. Refused with
     *  MN_ERR_INVALID_ARGUMENT when nq * nt exceeds max_all_pairs. Default 0. */
    int all_pairs;
    /** Largest nq * nt that all_pairs accepts: a bound on the time, not the
     *  memory (pairs are scored in blocks of queries). Default 4,000,000. */
    size_t max_all_pairs;
    /** NULL (every pair allowed), or nq * nt bytes where mask[q * nt + t]
     *  == 0 excludes the pair (query q, train t) from the candidates, the
     *  scores and the mutual check - the layout mn_match_knn() takes. A
     *  query with no allowed pair gets no match. Default NULL. */
    const uint8_t *mask;
} mn_match_params;

/** Default matching options: mn_match_params_preset(MN_MATCH_L2). */
MN_API mn_match_params mn_match_params_default(void);

/**
 * The measured settings for a method: MN_MATCH_L2: k 5, ratio 0.8, no
 * mutual check, min_probability 0 (Lowe's nearest neighbour rule on
 * MatchNet descriptors). MN_MATCH_METRIC: k 5, min_probability 0.5, mutual
 * check, no ratio test. Both: all_pairs off, max_all_pairs 4,000,000, mask
 * NULL. An unknown method gives the MN_MATCH_L2 preset.
 */
MN_API mn_match_params mn_match_params_preset(mn_match_method method);

/** One match: like cv::DMatch, with the metric network's probability. */
typedef struct mn_dmatch {
    uint32_t query;    /**< index into the query set */
    uint32_t train;    /**< index into the train set */
    float probability; /**< metric network's match probability, 0..1 */
    float distance;    /**< L2 distance between the two descriptors */
} mn_dmatch;

/**
 * Match two descriptor sets (rows of mn_model_descriptor_dim() floats, as
 * written by mn_describe_*()): for each query its k nearest train
 * descriptors (one matrix product per block of queries), scored by the
 * metric network with the two-stage first layer, the best kept when it
 * passes min_probability, ratio and mutual. At most one match per query
 * and, with mutual, per train descriptor.
 *
 * With params->mask, only allowed pairs are candidates in either
 * direction: a query's k nearest allowed train descriptors, a train
 * descriptor's k nearest allowed queries (mutual), every allowed pair
 * (all_pairs).
 *
 * matches: caller-owned room for `capacity` entries; capacity >= nq always
 * suffices. *count receives the number written, in increasing query order.
 * Empty sets give *count = 0. params NULL means mn_match_params_default().
 * Uses the session's threads; temporary memory is O((nq + nt) * (k + F)),
 * with all_pairs O((nq + nt) * F) plus a block of 65,536 pairs (or nt).
 */
MN_API mn_status mn_match(mn_session *session, const float *query, size_t nq, const float *train,
                          size_t nt, const mn_match_params *params, mn_dmatch *matches,
                          size_t capacity, size_t *count);

/**
 * The candidate search mn_match() uses: for each query row its k nearest
 * train rows in L2 distance, nearest first. index[q * k + r] and
 * distance[q * k + r] (L2, not squared) for q < nq, r < k; when nt < k (or
 * the mask leaves fewer, or a squared distance overflows a float), the
 * missing entries get index UINT32_MAX and distance INFINITY. mask: NULL, or nq * nt bytes where mask[q * nt + t] == 0
 * excludes the pair. distance may be NULL.
 */
MN_API mn_status mn_match_knn(mn_session *session, const float *query, size_t nq, const float *train,
                              size_t nt, const uint8_t *mask, int k, uint32_t *index, float *distance);

#ifdef __cplusplus
}
#endif

#endif /* MATCHNET_H */
