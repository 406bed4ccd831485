/*
 * matchnet/opencv.hpp - MatchNet as OpenCV classes, for C++ callers.
 *
 * Three drop-in classes; the numerical work is libmatchnet's (matchnet.h),
 * these only convert types and turn failures into cv::Exception carrying
 * mn_last_error()'s message.
 *
 *   matchnet::MatchNet                 a cv::Feature2D: SIFT keypoints, MatchNet descriptors
 *   matchnet::MatchNetMatcher          a cv::DescriptorMatcher scored by the metric network
 *   matchnet::MatchNetFeaturesMatcher  a cv::detail::FeaturesMatcher for cv::Stitcher
 *
 * Usage
 * -----
 *
 *   cv::Ptr<matchnet::MatchNet> net = matchnet::MatchNet::create();   // default model
 *   std::vector<cv::KeyPoint> kp1, kp2;
 *   cv::Mat d1, d2;
 *   net->detectAndCompute(img1, cv::noArray(), kp1, d1);
 *   net->detectAndCompute(img2, cv::noArray(), kp2, d2);
 *
 *   cv::Ptr<matchnet::MatchNetMatcher> matcher = matchnet::MatchNetMatcher::create();
 *   std::vector<cv::DMatch> matches;
 *   matcher->match(d1, d2, matches);         // DMatch::distance = 1 - p(match)
 *
 *   cv::Ptr<cv::Stitcher> st = cv::Stitcher::create(cv::Stitcher::PANORAMA);
 *   st->setFeaturesFinder(matchnet::MatchNet::create());
 *   st->setFeaturesMatcher(cv::makePtr<matchnet::MatchNetFeaturesMatcher>());
 *
 * Descriptors are rows of mn_model_descriptor_dim() floats (CV_32F). Only
 * descriptors computed by MatchNet with the same model as the matcher's
 * may be matched: the metric network scores its own tower's output.
 *
 * Thread-safety: a loaded model is immutable and shared (std::shared_ptr,
 * also between clones); every call creates its own mn_session. So one
 * MatchNet, and one MatchNetFeaturesMatcher, may be used from any number of
 * threads at once, as long as no setter runs concurrently. A
 * MatchNetMatcher's train collection is mutable state, as in every
 * cv::DescriptorMatcher: give each thread its own clone(), or use the
 * const match(query, train, ...) overloads.
 */
#ifndef MATCHNET_OPENCV_HPP
#define MATCHNET_OPENCV_HPP

#include <matchnet.h>

#include <memory>

#include <opencv2/core.hpp>
#include <opencv2/features2d.hpp>
#include <opencv2/stitching/detail/matchers.hpp>

#ifndef MN_CV_API
#  if defined(_WIN32)
#    define MN_CV_API __declspec(dllexport)
#  elif defined(__GNUC__)
#    define MN_CV_API __attribute__((visibility("default")))
#  else
#    define MN_CV_API
#  endif
#endif

namespace matchnet {

/**
 * Load a model: the default model (mn_model_load_default()) when path is
 * empty, else the .mnw file at path. The model is freed with the last copy
 * of the pointer. Throws cv::Exception with mn_last_error()'s message.
 */
MN_CV_API std::shared_ptr<const mn_model> loadModel(const cv::String& path = cv::String());

/**
 * MatchNet descriptors as a cv::Feature2D.
 *
 * detect() finds SIFT keypoints (cv::SIFT) and keeps the maxKeypoints
 * strongest; compute() cuts a patch per keypoint (side size * scaleFactor
 * pixels, turned by the keypoint's angle unless upright) and runs the
 * feature tower: one row of descriptorSize() floats per keypoint. Keypoints
 * from another detector need that detector's scale factor (MN_SCALE_ORB,
 * MN_SCALE_AKAZE, ...).
 *
 * Affine shapes (affine = true, opt-in): compute() cuts each patch over the
 * keypoint's ellipse instead of its circle (mn_describe_keypoints_affine).
 * cv::KeyPoint has no room for a shape, so the plugin does not carry one:
 * compute() estimates it from the image for each keypoint it is given
 * (mn_affine_shape_estimate with mn_affine_params_default(), using the
 * keypoint's position, size and angle). The estimate is deterministic, so
 * detect() then compute(), detectAndCompute() and a cv::Stitcher's calls
 * all describe the same ellipses, and the keypoints themselves are left as
 * they are (size, angle and all: their circles, for drawing and RANSAC).
 * estimateAffineShapes() gives the ellipses, as COLMAP's and VLFeat's
 * frames. Keypoints whose ellipse cannot be found (edges, flat windows) are
 * described on their circle.
 *
 * Images: 8-bit, grey or BGR/BGRA (converted to grey), Mat or UMat. An
 * empty image gives no keypoints and an empty descriptor matrix. Keypoints
 * at or beyond the image border are kept (the border is replicated);
 * compute() removes only keypoints no patch can be cut for: a non-finite
 * position, size or angle, or a size <= 0.
 */
class MN_CV_API MatchNet : public cv::Feature2D
{
public:
    /**
     * @param modelPath    .mnw file; empty for the default model (mn_model_load_default())
     * @param maxKeypoints keypoints detect() keeps, the strongest by response; 0 keeps all
     * @param scaleFactor  patch side / keypoint size (MN_SCALE_SIFT for SIFT keypoints)
     * @param upright      ignore keypoint angles
     * @param numThreads   threads per call (mn_session_params::num_threads; 0 = library default)
     * @param affine       describe affine-normalised patches (each keypoint's ellipse, estimated
     *                     from the image by compute())
     * Throws cv::Exception when the model cannot be loaded.
     */
    static cv::Ptr<MatchNet> create(const cv::String& modelPath = cv::String(), int maxKeypoints = 2000,
                                    float scaleFactor = MN_SCALE_SIFT, bool upright = false,
                                    int numThreads = 0, bool affine = false);

    /** The path given to create(); empty for the default model. */
    virtual cv::String getModelPath() const = 0;
    /** The loaded model, e.g. to call libmatchnet's C functions on the descriptors. */
    virtual std::shared_ptr<const mn_model> getModel() const = 0;

    virtual void setMaxKeypoints(int maxKeypoints) = 0;
    virtual int getMaxKeypoints() const = 0;
    virtual void setScaleFactor(float scaleFactor) = 0;
    virtual float getScaleFactor() const = 0;
    virtual void setUpright(bool upright) = 0;
    virtual bool getUpright() const = 0;
    virtual void setNumThreads(int numThreads) = 0;
    virtual int getNumThreads() const = 0;
    virtual void setAffine(bool affine) = 0;
    virtual bool getAffine() const = 0;

    /**
     * The affine shape of each keypoint, as compute() with affine = true
     * estimates it: shapes becomes a keypoints.size() x 6 CV_32F matrix of
     * rows (x, y, a11, a12, a21, a22) (mn_affine_keypoint: A maps the unit
     * circle to the ellipse in pixels; a keypoint's circle where no ellipse
     * was found), and results, if needed, keypoints.size() x 1 CV_8U of
     * mn_affine_result. Keypoints are not removed: a malformed one (a
     * non-finite value, size <= 0) throws, as in the C API.
     */
    virtual void estimateAffineShapes(cv::InputArray image, const std::vector<cv::KeyPoint>& keypoints,
                                      cv::OutputArray shapes, cv::OutputArray results = cv::noArray()) const = 0;

    /** "Feature2D.MatchNet" */
    cv::String getDefaultName() const override;
};

/**
 * A cv::DescriptorMatcher that ranks by the metric network: usable wherever
 * cv::BFMatcher is, on descriptors from MatchNet with the same model.
 *
 * For each query the `candidates` nearest train descriptors in L2 distance
 * are scored by the metric network (mn_match_knn() then the two-stage
 * mn_metric_project() / mn_metric_score_projected()); candidates == 0
 * scores every pair instead (exact, cost nq * nt). DMatch::distance is
 * 1 - p(match), so smaller is better as everywhere in OpenCV.
 *
 * - knnMatch: the k most probable among the candidates (when candidates < k,
 *   max(k, candidates) neighbours are scored), most probable first; equal
 *   probabilities are ordered by train index (over the whole collection).
 * - radiusMatch: the candidates with distance <= maxDistance, i.e.
 *   p >= 1 - maxDistance, most probable first.
 * - match (k = 1) with crossCheck keeps (q, t) only when q is also t's most
 *   probable partner among the allowed pairs scored in either direction
 *   (t's `candidates` nearest allowed queries are scored too): this is
 *   mn_match() with the MN_MATCH_METRIC preset, k = candidates (all_pairs
 *   when candidates is 0 or at least the train set's size), the mask and
 *   no probability threshold.
 * Masks (CV_8U, one per train image, nq x nt_i) are honoured; train
 * collections (add(), imgIdx) work as with BFMatcher.
 */
class MN_CV_API MatchNetMatcher : public cv::DescriptorMatcher
{
public:
    /**
     * @param modelPath  .mnw file; empty for the default model
     * @param candidates L2 neighbours scored per query, 1..256; 0 = score every pair
     * @param crossCheck keep mutual best matches only: match() and knnMatch with k = 1;
     *                   knnMatch refuses other k (as cv::BFMatcher), radiusMatch ignores it
     * @param numThreads threads per call (0 = library default)
     * Throws cv::Exception when the model cannot be loaded or candidates is out of range.
     */
    static cv::Ptr<MatchNetMatcher> create(const cv::String& modelPath = cv::String(), int candidates = 5,
                                           bool crossCheck = false, int numThreads = 0);

    virtual cv::String getModelPath() const = 0;
    virtual std::shared_ptr<const mn_model> getModel() const = 0;

    virtual void setCandidates(int candidates) = 0;
    virtual int getCandidates() const = 0;
    virtual void setCrossCheck(bool crossCheck) = 0;
    virtual bool getCrossCheck() const = 0;
    virtual void setNumThreads(int numThreads) = 0;
    virtual int getNumThreads() const = 0;

    /** "DescriptorMatcher.MatchNetMatcher" */
    cv::String getDefaultName() const override;
};

/**
 * Pairwise image matching for cv::Stitcher (setFeaturesMatcher) on
 * features from MatchNet (setFeaturesFinder(MatchNet::create())).
 *
 * match() keeps the mutual best matches of mn_match() with the metric
 * network's preset (mn_match_params_preset(MN_MATCH_METRIC): each
 * keypoint's 5 L2 neighbours scored, the most probable kept) and
 * probability >= matchConf, then, when there are at least numMatchesThresh1, fits the
 * geometry by RANSAC (3 px), as the cv::detail matchers do:
 *
 * - HOMOGRAPHY (for Stitcher::PANORAMA): cv::findHomography on keypoints
 *   relative to each image's centre, the convention the Stitcher's
 *   estimators expect, refitted on the inliers when there are at least
 *   numMatchesThresh2 (as BestOf2NearestMatcher).
 * - AFFINE_PARTIAL / AFFINE (for Stitcher::SCANS): cv::estimateAffinePartial2D
 *   / cv::estimateAffine2D on pixel coordinates, H extended to 3 x 3 (as
 *   AffineBestOf2NearestMatcher).
 *
 * confidence = num_inliers / (8 + 0.3 * matches) (Brown and Lowe), kept
 * whatever its size. BestOf2NearestMatcher zeroes confidences above 3 to
 * drop near-duplicate images, but that rule fires whenever num_inliers >
 * 24 + 0.9 * matches, i.e. on any clean set of a few hundred matches,
 * which the metric network's matches often are; it is not applied, and no
 * other near-identity test replaces it: a near-duplicate image is simply
 * registered onto its twin.
 *
 * DMatch::distance = 1 - p(match); inliers_mask has one entry per match
 * (all zero when no geometry was fitted); src_img_idx and dst_img_idx are
 * left to the caller, as by every FeaturesMatcher. Thread-safe (a session
 * per call), so the Stitcher matches image pairs in parallel; each call
 * uses numThreads threads.
 */
class MN_CV_API MatchNetFeaturesMatcher : public cv::detail::FeaturesMatcher
{
public:
    enum Geometry
    {
        HOMOGRAPHY = 0,     //!< planar projective, centred coordinates (PANORAMA)
        AFFINE_PARTIAL = 1, //!< rotation, uniform scale, translation (SCANS)
        AFFINE = 2          //!< full affine
    };

    /**
     * @param modelPath         .mnw file; empty for the default model
     * @param tryUseGpu         ignored (for BestOf2NearestMatcher's signature)
     * @param matchConf         minimum match probability, 0..1
     * @param numMatchesThresh1 matches needed to fit the geometry
     * @param numMatchesThresh2 inliers needed to refit it on the inliers
     * @param geometry          HOMOGRAPHY, AFFINE_PARTIAL or AFFINE
     * @param numThreads        threads per call (0 = library default)
     * Throws cv::Exception when the model cannot be loaded.
     */
    explicit MatchNetFeaturesMatcher(const cv::String& modelPath = cv::String(), bool tryUseGpu = false,
                                     float matchConf = 0.5f, int numMatchesThresh1 = 6,
                                     int numMatchesThresh2 = 6, Geometry geometry = HOMOGRAPHY,
                                     int numThreads = 0);

    static cv::Ptr<MatchNetFeaturesMatcher> create(const cv::String& modelPath = cv::String(),
                                                   bool tryUseGpu = false, float matchConf = 0.5f,
                                                   int numMatchesThresh1 = 6, int numMatchesThresh2 = 6,
                                                   Geometry geometry = HOMOGRAPHY, int numThreads = 0);

    std::shared_ptr<const mn_model> getModel() const { return model_; }
    float getMatchConf() const { return matchConf_; }
    Geometry getGeometry() const { return geometry_; }

protected:
    void match(const cv::detail::ImageFeatures& features1, const cv::detail::ImageFeatures& features2,
               cv::detail::MatchesInfo& matchesInfo) override;

private:
    std::shared_ptr<const mn_model> model_;
    float matchConf_;
    int numMatchesThresh1_, numMatchesThresh2_;
    Geometry geometry_;
    int numThreads_;
};

} // namespace matchnet

#endif // MATCHNET_OPENCV_HPP
