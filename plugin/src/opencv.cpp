/*
 * opencv.cpp - matchnet/opencv.hpp: MatchNet as cv::Feature2D,
 * cv::DescriptorMatcher and cv::detail::FeaturesMatcher.
 *
 * Type and error conversion only: patches, descriptors, candidate search
 * and scoring are libmatchnet calls. Every object's state is its
 * parameters and a shared, immutable model; each call makes its own
 * mn_session, which is what keeps the classes thread-safe (the house style
 * avoids xfeatures2d's per-call image members).
 */
#include "matchnet/opencv.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <opencv2/calib3d.hpp>
#include <opencv2/imgproc.hpp>

namespace matchnet {
namespace {

int cvErrorCode(mn_status st)
{
    switch (st) {
    case MN_ERR_INVALID_ARGUMENT: return cv::Error::StsBadArg;
    case MN_ERR_OUT_OF_MEMORY: return cv::Error::StsNoMem;
    case MN_ERR_FORMAT:
    case MN_ERR_VERSION:
    case MN_ERR_CHECKSUM: return cv::Error::StsParseError;
    case MN_ERR_UNSUPPORTED: return cv::Error::StsNotImplemented;
    default: return cv::Error::StsError;
    }
}

// A failed libmatchnet call becomes a cv::Exception with its message.
#define MN_CV_CHECK(call)                                          \
    do {                                                           \
        mn_status st_ = (call);                                    \
        if (st_ != MN_OK)                                          \
            CV_Error(cvErrorCode(st_), mn_last_error());           \
    } while (0)

struct SessionFree {
    void operator()(mn_session* s) const { mn_session_free(s); }
};
using Session = std::unique_ptr<mn_session, SessionFree>;

Session makeSession(const mn_model* model, int numThreads)
{
    mn_session_params p = mn_session_params_default();
    p.num_threads = numThreads;
    mn_session* s = nullptr;
    MN_CV_CHECK(mn_session_create(model, &p, &s));
    return Session(s);
}

size_t descriptorDim(const std::shared_ptr<const mn_model>& model)
{
    return mn_model_descriptor_dim(model.get());
}

// Rows of float descriptors as one continuous CV_32F matrix, or an error
// naming what is wrong with them.
cv::Mat descriptorRows(const cv::Mat& d, size_t dim, const char* what)
{
    if (d.empty())
        return cv::Mat(0, (int)dim, CV_32F);
    if (d.type() != CV_32FC1 || (size_t)d.cols != dim)
        CV_Error(cv::Error::StsBadArg,
                 cv::format("%s descriptors are %dx%d %s; MatchNet's are rows of %zu CV_32F values", what, d.rows,
                            d.cols, cv::typeToString(d.type()).c_str(), dim));
    return d.isContinuous() ? d : d.clone();
}

} // namespace

std::shared_ptr<const mn_model> loadModel(const cv::String& path)
{
    mn_model* m = nullptr;
    mn_status st = path.empty() ? mn_model_load_default(&m) : mn_model_load_file(path.c_str(), &m);
    if (st != MN_OK)
        CV_Error(cvErrorCode(st), mn_last_error());
    return std::shared_ptr<const mn_model>(m, mn_model_free);
}

/* ---- MatchNet: cv::Feature2D ---- */

namespace {

class MatchNet_Impl final : public MatchNet
{
public:
    MatchNet_Impl(const cv::String& path, int maxKeypoints, float scaleFactor, bool upright, int numThreads,
                  bool affine)
        : path_(path), model_(loadModel(path)), maxKeypoints_(maxKeypoints), scaleFactor_(scaleFactor),
          upright_(upright), numThreads_(numThreads), affine_(affine)
    {
    }

    int descriptorSize() const override { return (int)descriptorDim(model_); }
    int descriptorType() const override { return CV_32F; }
    int defaultNorm() const override { return cv::NORM_L2; }
    bool empty() const override { return !model_; }

    void detectAndCompute(cv::InputArray image, cv::InputArray mask, std::vector<cv::KeyPoint>& keypoints,
                          cv::OutputArray descriptors, bool useProvidedKeypoints) override;

    cv::String getModelPath() const override { return path_; }
    std::shared_ptr<const mn_model> getModel() const override { return model_; }
    void setMaxKeypoints(int n) override { maxKeypoints_ = n; }
    int getMaxKeypoints() const override { return maxKeypoints_; }
    void setScaleFactor(float f) override { scaleFactor_ = f; }
    float getScaleFactor() const override { return scaleFactor_; }
    void setUpright(bool u) override { upright_ = u; }
    bool getUpright() const override { return upright_; }
    void setNumThreads(int n) override { numThreads_ = n; }
    int getNumThreads() const override { return numThreads_; }
    void setAffine(bool a) override { affine_ = a; }
    bool getAffine() const override { return affine_; }

    void estimateAffineShapes(cv::InputArray image, const std::vector<cv::KeyPoint>& keypoints,
                              cv::OutputArray shapes, cv::OutputArray results) const override;

private:
    cv::String path_;
    std::shared_ptr<const mn_model> model_;
    int maxKeypoints_;
    float scaleFactor_;
    bool upright_;
    int numThreads_;
    bool affine_;
};

// The image as 8-bit grey, sharing its pixels when it already is.
cv::Mat greyImage(cv::InputArray image)
{
    cv::Mat img = image.getMat();
    if (img.dims != 2 || img.depth() != CV_8U)
        CV_Error(cv::Error::StsUnsupportedFormat,
                 "MatchNet: expected a 2-D 8-bit image, got " + cv::typeToString(img.type()));
    cv::Mat grey;
    switch (img.channels()) {
    case 1: return img;
    case 3: cv::cvtColor(img, grey, cv::COLOR_BGR2GRAY); return grey;
    case 4: cv::cvtColor(img, grey, cv::COLOR_BGRA2GRAY); return grey;
    default:
        CV_Error(cv::Error::StsUnsupportedFormat,
                 cv::format("MatchNet: expected 1, 3 or 4 channels, got %d", img.channels()));
    }
}

std::vector<mn_keypoint> toKeypoints(const std::vector<cv::KeyPoint>& keypoints)
{
    std::vector<mn_keypoint> kps(keypoints.size());
    for (size_t i = 0; i < keypoints.size(); i++)
        kps[i] = {keypoints[i].pt.x, keypoints[i].pt.y, keypoints[i].size, keypoints[i].angle};
    return kps;
}

bool describable(const cv::KeyPoint& k)
{
    return std::isfinite(k.pt.x) && std::isfinite(k.pt.y) && std::isfinite(k.size) && k.size > 0 &&
           std::isfinite(k.angle);
}

void MatchNet_Impl::detectAndCompute(cv::InputArray image, cv::InputArray mask, std::vector<cv::KeyPoint>& keypoints,
                                     cv::OutputArray descriptors, bool useProvidedKeypoints)
{
    if (image.empty()) {
        keypoints.clear();
        if (descriptors.needed())
            descriptors.release();
        return;
    }
    const cv::Mat grey = greyImage(image);

    if (!useProvidedKeypoints) {
        // SIFT's own cap (retainBest) keeps ties, so it can return a few more.
        cv::SIFT::create(std::max(maxKeypoints_, 0))->detect(grey, keypoints, mask);
        if (maxKeypoints_ > 0 && keypoints.size() > (size_t)maxKeypoints_) {
            std::stable_sort(keypoints.begin(), keypoints.end(),
                             [](const cv::KeyPoint& a, const cv::KeyPoint& b) { return a.response > b.response; });
            keypoints.resize((size_t)maxKeypoints_);
        }
    }
    if (!descriptors.needed())
        return;

    // Feature2D::compute may drop keypoints it cannot describe; only
    // malformed ones qualify, border keypoints are described.
    keypoints.erase(std::remove_if(keypoints.begin(), keypoints.end(),
                                   [](const cv::KeyPoint& k) { return !describable(k); }),
                    keypoints.end());
    if (keypoints.empty()) {
        descriptors.release();
        return;
    }
    std::vector<mn_keypoint> kps = toKeypoints(keypoints);

    mn_extract_params params = mn_extract_params_default();
    params.scale_factor = scaleFactor_;
    params.upright = upright_ ? 1 : 0;
    params.patch_size = mn_model_patch_size(model_.get());

    cv::Mat desc((int)kps.size(), descriptorSize(), CV_32F);
    Session s = makeSession(model_.get(), numThreads_);
    if (affine_) {
        // cv::KeyPoint carries no shape: estimated here, from the image.
        std::vector<mn_affine_keypoint> ak(kps.size());
        MN_CV_CHECK(mn_affine_shape_estimate(s.get(), grey.ptr<uint8_t>(), grey.cols, grey.rows, grey.step[0],
                                             kps.data(), kps.size(), nullptr, ak.data(), nullptr));
        MN_CV_CHECK(mn_describe_keypoints_affine(s.get(), grey.ptr<uint8_t>(), grey.cols, grey.rows, grey.step[0],
                                                 ak.data(), ak.size(), &params, desc.ptr<float>()));
    } else {
        MN_CV_CHECK(mn_describe_keypoints(s.get(), grey.ptr<uint8_t>(), grey.cols, grey.rows, grey.step[0],
                                          kps.data(), kps.size(), &params, desc.ptr<float>()));
    }
    desc.copyTo(descriptors);
}

void MatchNet_Impl::estimateAffineShapes(cv::InputArray image, const std::vector<cv::KeyPoint>& keypoints,
                                         cv::OutputArray shapes, cv::OutputArray results) const
{
    std::vector<mn_keypoint> kps = toKeypoints(keypoints);
    std::vector<mn_affine_keypoint> ak(kps.size());
    std::vector<uint8_t> res(kps.size());
    if (!kps.empty()) {
        if (image.empty())
            CV_Error(cv::Error::StsBadArg, "MatchNet::estimateAffineShapes: keypoints on an empty image");
        const cv::Mat grey = greyImage(image);
        Session s = makeSession(model_.get(), numThreads_);
        MN_CV_CHECK(mn_affine_shape_estimate(s.get(), grey.ptr<uint8_t>(), grey.cols, grey.rows, grey.step[0],
                                             kps.data(), kps.size(), nullptr, ak.data(), res.data()));
    }
    static_assert(sizeof(mn_affine_keypoint) == 6 * sizeof(float), "mn_affine_keypoint is six floats");
    if (ak.empty()) { // copyTo() would leave 0 x 0
        shapes.create(0, 6, CV_32F);
        if (results.needed())
            results.create(0, 1, CV_8U);
        return;
    }
    cv::Mat((int)ak.size(), 6, CV_32F, ak.data()).copyTo(shapes);
    if (results.needed())
        cv::Mat((int)res.size(), 1, CV_8U, res.data()).copyTo(results);
}

} // namespace

cv::Ptr<MatchNet> MatchNet::create(const cv::String& modelPath, int maxKeypoints, float scaleFactor, bool upright,
                                   int numThreads, bool affine)
{
    return cv::makePtr<MatchNet_Impl>(modelPath, maxKeypoints, scaleFactor, upright, numThreads, affine);
}

cv::String MatchNet::getDefaultName() const
{
    return "Feature2D.MatchNet";
}

/* ---- MatchNetMatcher: cv::DescriptorMatcher ---- */

namespace {

const int kMaxCandidates = 256; // mn_match_knn()'s largest k

// One scored pair: global train index and match probability.
struct Scored {
    uint32_t t;
    float p;
};

// More probable first; equal probabilities by train index, as mn_match().
bool moreProbable(const Scored& a, const Scored& b)
{
    return a.p > b.p || (a.p == b.p && a.t < b.t);
}

// Query and train sets of one match call, the train collection merged, and
// (project()) both projected once through the metric network's first layer.
struct MatchProblem {
    cv::Mat query, train;              // continuous CV_32F rows
    std::vector<int> start;            // first global row of each train image, then nt
    std::vector<uint8_t> mask;         // nq x nt, empty when nothing is masked
    std::vector<float> projQ, projT;   // mn_metric_project() of each side
    size_t nq = 0, nt = 0;
    Session session;

    const uint8_t* maskPtr() const { return mask.empty() ? nullptr : mask.data(); }

    void project(const mn_model* model)
    {
        const size_t F = mn_model_projection_dim(model);
        if (projQ.size() == nq * F && projT.size() == nt * F)
            return;
        projQ.resize(nq * F);
        projT.resize(nt * F);
        if (nq)
            MN_CV_CHECK(mn_metric_project(session.get(), query.ptr<float>(), nq, MN_SIDE_A, projQ.data()));
        if (nt)
            MN_CV_CHECK(mn_metric_project(session.get(), train.ptr<float>(), nt, MN_SIDE_B, projT.data()));
    }
    bool allowed(size_t q, size_t t) const { return mask.empty() || mask[q * nt + t]; }

    cv::DMatch toDMatch(size_t q, const Scored& s) const
    {
        int img = (int)(std::upper_bound(start.begin(), start.end(), (int)s.t) - start.begin()) - 1;
        return cv::DMatch((int)q, (int)s.t - start[img], img, 1.0f - s.p);
    }
};

class MatchNetMatcher_Impl final : public MatchNetMatcher
{
public:
    MatchNetMatcher_Impl(const cv::String& path, std::shared_ptr<const mn_model> model, int candidates,
                         bool crossCheck, int numThreads)
        : path_(path), model_(std::move(model)), crossCheck_(crossCheck), numThreads_(numThreads)
    {
        setCandidates(candidates);
    }

    bool isMaskSupported() const override { return true; }

    // UMat train descriptors are copied to host memory once, here, so
    // every match call reads one collection.
    void add(cv::InputArrayOfArrays descriptors) override
    {
        if (descriptors.isUMatVector()) {
            std::vector<cv::UMat> v;
            descriptors.getUMatVector(v);
            for (const cv::UMat& u : v)
                trainDescCollection.push_back(u.getMat(cv::ACCESS_READ).clone());
        } else if (descriptors.isUMat()) {
            trainDescCollection.push_back(descriptors.getUMat().getMat(cv::ACCESS_READ).clone());
        } else {
            DescriptorMatcher::add(descriptors);
        }
    }

    cv::Ptr<cv::DescriptorMatcher> clone(bool emptyTrainData) const override
    {
        cv::Ptr<MatchNetMatcher_Impl> m =
            cv::makePtr<MatchNetMatcher_Impl>(path_, model_, candidates_, crossCheck_, numThreads_);
        if (!emptyTrainData) {
            for (const cv::Mat& d : trainDescCollection)
                m->trainDescCollection.push_back(d.clone());
            for (const cv::UMat& d : utrainDescCollection)
                m->utrainDescCollection.push_back(d.clone());
        }
        return m;
    }

    cv::String getModelPath() const override { return path_; }
    std::shared_ptr<const mn_model> getModel() const override { return model_; }
    void setCandidates(int c) override
    {
        if (c < 0 || c > kMaxCandidates)
            CV_Error(cv::Error::StsOutOfRange,
                     cv::format("MatchNetMatcher: candidates = %d, expected 0 (all pairs) or 1..%d", c, kMaxCandidates));
        candidates_ = c;
    }
    int getCandidates() const override { return candidates_; }
    void setCrossCheck(bool c) override { crossCheck_ = c; }
    bool getCrossCheck() const override { return crossCheck_; }
    void setNumThreads(int n) override { numThreads_ = n; }
    int getNumThreads() const override { return numThreads_; }

protected:
    void knnMatchImpl(cv::InputArray queryDescriptors, std::vector<std::vector<cv::DMatch>>& matches, int k,
                      cv::InputArrayOfArrays masks, bool compactResult) override;
    void radiusMatchImpl(cv::InputArray queryDescriptors, std::vector<std::vector<cv::DMatch>>& matches,
                         float maxDistance, cv::InputArrayOfArrays masks, bool compactResult) override;

private:
    MatchProblem prepare(cv::InputArray queryDescriptors, cv::InputArrayOfArrays masks) const;
    template <class Visit>
    void scoreForward(MatchProblem& pb, int kc, Visit visit) const;
    void crossCheckMatch(MatchProblem& pb, std::vector<std::vector<cv::DMatch>>& matches, bool compactResult) const;

    cv::String path_;
    std::shared_ptr<const mn_model> model_;
    int candidates_ = 5;
    bool crossCheck_;
    int numThreads_;
};

MatchProblem MatchNetMatcher_Impl::prepare(cv::InputArray queryDescriptors, cv::InputArrayOfArrays masks) const
{
    const size_t dim = descriptorDim(model_);
    MatchProblem pb;
    pb.query = descriptorRows(queryDescriptors.getMat(), dim, "MatchNetMatcher: query");
    pb.nq = (size_t)pb.query.rows;

    std::vector<cv::Mat> train;
    for (const cv::Mat& d : trainDescCollection)
        train.push_back(descriptorRows(d, dim, "MatchNetMatcher: train"));
    for (const cv::UMat& d : utrainDescCollection) // only if a caller filled it directly
        train.push_back(descriptorRows(d.getMat(cv::ACCESS_READ).clone(), dim, "MatchNetMatcher: train"));
    pb.start.push_back(0);
    for (const cv::Mat& d : train)
        pb.start.push_back(pb.start.back() + d.rows);
    pb.nt = (size_t)pb.start.back();
    if (train.size() == 1)
        pb.train = train[0];
    else
        cv::vconcat(train, pb.train);
    if (pb.train.empty())
        pb.train = cv::Mat(0, (int)dim, CV_32F);

    std::vector<cv::Mat> m;
    if (!masks.empty())
        masks.getMatVector(m);
    bool anyMask = false;
    for (size_t i = 0; i < m.size() && i < train.size(); i++)
        anyMask = anyMask || !m[i].empty();
    if (anyMask && pb.nq && pb.nt) {
        pb.mask.assign(pb.nq * pb.nt, 1);
        for (size_t i = 0; i < m.size() && i < train.size(); i++) {
            if (m[i].empty())
                continue;
            CV_Assert(m[i].type() == CV_8UC1 && (size_t)m[i].rows == pb.nq && m[i].cols == train[i].rows);
            for (size_t q = 0; q < pb.nq; q++)
                std::memcpy(&pb.mask[q * pb.nt + (size_t)pb.start[i]], m[i].ptr<uint8_t>((int)q),
                            (size_t)train[i].rows);
        }
    }

    pb.session = makeSession(model_.get(), numThreads_);
    return pb;
}

// Score each query's candidates - its kc nearest train rows in L2, or every
// allowed train row when kc == 0 - and call visit(q, scored) once per query
// with all of them, in query order. Works in blocks of queries so memory
// stays bounded whatever nq * nt is.
template <class Visit>
void MatchNetMatcher_Impl::scoreForward(MatchProblem& pb, int kc, Visit visit) const
{
    const size_t kMaxPairs = 1 << 16;
    pb.project(model_.get());
    std::vector<uint32_t> knn;
    if (kc > 0 && pb.nq && pb.nt) {
        knn.resize(pb.nq * (size_t)kc);
        MN_CV_CHECK(mn_match_knn(pb.session.get(), pb.query.ptr<float>(), pb.nq, pb.train.ptr<float>(), pb.nt,
                                 pb.maskPtr(), kc, knn.data(), nullptr));
    }
    const size_t perQuery = kc > 0 ? (size_t)kc : std::max<size_t>(pb.nt, 1);
    const size_t block = std::max<size_t>(1, kMaxPairs / perQuery);
    std::vector<mn_pair> pairs;
    std::vector<float> prob;
    std::vector<Scored> scored;
    for (size_t q0 = 0; q0 < pb.nq; q0 += block) {
        const size_t q1 = std::min(pb.nq, q0 + block);
        pairs.clear();
        for (size_t q = q0; q < q1 && pb.nt; q++) {
            if (kc > 0) {
                for (int r = 0; r < kc; r++)
                    if (knn[q * kc + r] != UINT32_MAX)
                        pairs.push_back({(uint32_t)q, knn[q * kc + r]});
            } else {
                for (size_t t = 0; t < pb.nt; t++)
                    if (pb.allowed(q, t))
                        pairs.push_back({(uint32_t)q, (uint32_t)t});
            }
        }
        prob.resize(pairs.size());
        if (!pairs.empty())
            MN_CV_CHECK(mn_metric_score_projected(pb.session.get(), pb.projQ.data(), pb.nq, pb.projT.data(), pb.nt,
                                                  pairs.data(), pairs.size(), prob.data()));
        size_t r = 0;
        for (size_t q = q0; q < q1; q++) {
            scored.clear();
            for (; r < pairs.size() && pairs[r].a == q; r++)
                scored.push_back({pairs[r].b, prob[r]});
            visit(q, scored);
        }
    }
}

void appendResult(std::vector<std::vector<cv::DMatch>>& matches, std::vector<cv::DMatch>&& row, bool compactResult)
{
    if (!row.empty() || !compactResult)
        matches.push_back(std::move(row));
}

void MatchNetMatcher_Impl::knnMatchImpl(cv::InputArray queryDescriptors, std::vector<std::vector<cv::DMatch>>& matches,
                                        int k, cv::InputArrayOfArrays masks, bool compactResult)
{
    matches.clear();
    CV_Assert(k > 0);
    MatchProblem pb = prepare(queryDescriptors, masks);
    matches.reserve(pb.nq);
    if (crossCheck_) {
        if (k != 1)
            CV_Error(cv::Error::StsBadArg, "MatchNetMatcher: crossCheck needs k = 1 (as cv::BFMatcher)");
        crossCheckMatch(pb, matches, compactResult);
        return;
    }
    // Score max(k, candidates) neighbours; beyond mn_match_knn()'s range,
    // or beyond the train set, scoring every pair is the same or cheaper.
    int kc = candidates_ == 0 ? 0 : std::max(k, candidates_);
    if (kc > kMaxCandidates || (size_t)kc >= pb.nt)
        kc = 0;
    scoreForward(pb, kc, [&](size_t q, std::vector<Scored>& s) {
        const size_t n = std::min(s.size(), (size_t)k);
        std::partial_sort(s.begin(), s.begin() + (ptrdiff_t)n, s.end(), moreProbable);
        std::vector<cv::DMatch> row;
        for (size_t i = 0; i < n; i++)
            row.push_back(pb.toDMatch(q, s[i]));
        appendResult(matches, std::move(row), compactResult);
    });
}

void MatchNetMatcher_Impl::radiusMatchImpl(cv::InputArray queryDescriptors,
                                           std::vector<std::vector<cv::DMatch>>& matches, float maxDistance,
                                           cv::InputArrayOfArrays masks, bool compactResult)
{
    matches.clear();
    MatchProblem pb = prepare(queryDescriptors, masks);
    matches.reserve(pb.nq);
    const int kc = (size_t)candidates_ >= pb.nt ? 0 : candidates_;
    scoreForward(pb, kc, [&](size_t q, std::vector<Scored>& s) {
        std::sort(s.begin(), s.end(), moreProbable);
        std::vector<cv::DMatch> row;
        for (const Scored& c : s)
            if (1.0f - c.p <= maxDistance)
                row.push_back(pb.toDMatch(q, c));
        appendResult(matches, std::move(row), compactResult);
    });
}

// k = 1 with cross check: (q, t) is kept when t is q's most probable partner
// and q is t's, over the allowed pairs scored from q's candidates and from
// t's (its `candidates` nearest allowed queries) - mn_match()'s mutual
// selection with no thresholds. Every allowed pair is scored when candidates
// is 0, or covers the train set (its candidate lists hold every pair anyway).
void MatchNetMatcher_Impl::crossCheckMatch(MatchProblem& pb, std::vector<std::vector<cv::DMatch>>& matches,
                                           bool compactResult) const
{
    mn_match_params p = mn_match_params_preset(MN_MATCH_METRIC);
    p.all_pairs = candidates_ == 0 || (size_t)candidates_ >= pb.nt;
    p.k = p.all_pairs ? 1 : candidates_;
    // candidates = 0 asks for every pair whatever it costs; mn_match()
    // scores them in blocks, so memory stays bounded.
    p.max_all_pairs = std::numeric_limits<size_t>::max();
    p.min_probability = 0.0f;
    p.ratio = 1.0f;
    p.mutual = 1;
    p.mask = pb.maskPtr();
    std::vector<mn_dmatch> found(pb.nq);
    size_t n = 0;
    MN_CV_CHECK(mn_match(pb.session.get(), pb.query.ptr<float>(), pb.nq, pb.train.ptr<float>(), pb.nt, &p,
                         found.data(), found.size(), &n));
    for (size_t q = 0, r = 0; q < pb.nq; q++) {
        std::vector<cv::DMatch> row;
        if (r < n && found[r].query == q) {
            row.push_back(pb.toDMatch(q, {found[r].train, found[r].probability}));
            r++;
        }
        appendResult(matches, std::move(row), compactResult);
    }
}

} // namespace

cv::Ptr<MatchNetMatcher> MatchNetMatcher::create(const cv::String& modelPath, int candidates, bool crossCheck,
                                                 int numThreads)
{
    return cv::makePtr<MatchNetMatcher_Impl>(modelPath, loadModel(modelPath), candidates, crossCheck, numThreads);
}

cv::String MatchNetMatcher::getDefaultName() const
{
    return "DescriptorMatcher.MatchNetMatcher";
}

/* ---- MatchNetFeaturesMatcher: cv::detail::FeaturesMatcher ---- */

MatchNetFeaturesMatcher::MatchNetFeaturesMatcher(const cv::String& modelPath, bool /* tryUseGpu */, float matchConf,
                                                 int numMatchesThresh1, int numMatchesThresh2, Geometry geometry,
                                                 int numThreads)
    : FeaturesMatcher(true), model_(loadModel(modelPath)), matchConf_(matchConf),
      numMatchesThresh1_(numMatchesThresh1), numMatchesThresh2_(numMatchesThresh2), geometry_(geometry),
      numThreads_(numThreads)
{
    if (!(matchConf >= 0.0f && matchConf <= 1.0f))
        CV_Error(cv::Error::StsOutOfRange, cv::format("MatchNetFeaturesMatcher: matchConf = %g, expected 0..1",
                                                      (double)matchConf));
    if (geometry != HOMOGRAPHY && geometry != AFFINE_PARTIAL && geometry != AFFINE)
        CV_Error(cv::Error::StsBadArg, cv::format("MatchNetFeaturesMatcher: unknown geometry %d", (int)geometry));
}

cv::Ptr<MatchNetFeaturesMatcher> MatchNetFeaturesMatcher::create(const cv::String& modelPath, bool tryUseGpu,
                                                                 float matchConf, int numMatchesThresh1,
                                                                 int numMatchesThresh2, Geometry geometry,
                                                                 int numThreads)
{
    return cv::makePtr<MatchNetFeaturesMatcher>(modelPath, tryUseGpu, matchConf, numMatchesThresh1,
                                                numMatchesThresh2, geometry, numThreads);
}

void MatchNetFeaturesMatcher::match(const cv::detail::ImageFeatures& features1,
                                    const cv::detail::ImageFeatures& features2, cv::detail::MatchesInfo& info)
{
    info.matches.clear();
    info.inliers_mask.clear();
    info.num_inliers = 0;
    info.H.release();
    info.confidence = 0;

    const size_t dim = descriptorDim(model_);
    const cv::Mat d1 = descriptorRows(features1.descriptors.getMat(cv::ACCESS_READ), dim,
                                      "MatchNetFeaturesMatcher: features1");
    const cv::Mat d2 = descriptorRows(features2.descriptors.getMat(cv::ACCESS_READ), dim,
                                      "MatchNetFeaturesMatcher: features2");
    if (d1.rows == 0 || d2.rows == 0)
        return;
    CV_Assert((size_t)d1.rows == features1.keypoints.size() && (size_t)d2.rows == features2.keypoints.size());

    // The metric network's choice among each keypoint's 5 L2 neighbours, mutual.
    mn_match_params params = mn_match_params_preset(MN_MATCH_METRIC);
    params.min_probability = matchConf_;
    params.mutual = 1;
    params.ratio = 1.0f;
    std::vector<mn_dmatch> found((size_t)d1.rows);
    size_t count = 0;
    Session s = makeSession(model_.get(), numThreads_);
    MN_CV_CHECK(mn_match(s.get(), d1.ptr<float>(), (size_t)d1.rows, d2.ptr<float>(), (size_t)d2.rows, &params,
                         found.data(), found.size(), &count));
    for (size_t i = 0; i < count; i++)
        info.matches.emplace_back((int)found[i].query, (int)found[i].train, 1.0f - found[i].probability);
    // One entry per match even when no geometry is fitted (OpenCV leaves it empty then).
    info.inliers_mask.assign(info.matches.size(), 0);
    if (info.matches.size() < (size_t)std::max(numMatchesThresh1_, 4))
        return;

    // The Stitcher's homography estimators take H between image-centred
    // coordinates; its affine ones take pixel coordinates.
    const bool centred = geometry_ == HOMOGRAPHY;
    const cv::Point2f c1 = centred ? cv::Point2f(features1.img_size.width * 0.5f, features1.img_size.height * 0.5f)
                                   : cv::Point2f();
    const cv::Point2f c2 = centred ? cv::Point2f(features2.img_size.width * 0.5f, features2.img_size.height * 0.5f)
                                   : cv::Point2f();
    std::vector<cv::Point2f> src, dst;
    for (const cv::DMatch& m : info.matches) {
        src.push_back(features1.keypoints[(size_t)m.queryIdx].pt - c1);
        dst.push_back(features2.keypoints[(size_t)m.trainIdx].pt - c2);
    }
    const double threshold = 3.0;
    if (geometry_ == HOMOGRAPHY)
        info.H = cv::findHomography(src, dst, info.inliers_mask, cv::RANSAC, threshold);
    else if (geometry_ == AFFINE_PARTIAL)
        info.H = cv::estimateAffinePartial2D(src, dst, info.inliers_mask, cv::RANSAC, threshold);
    else
        info.H = cv::estimateAffine2D(src, dst, info.inliers_mask, cv::RANSAC, threshold);
    // A singular transform is no registration (OpenCV's test for homographies).
    if (info.H.empty() || std::abs(cv::determinant(info.H.colRange(0, info.H.rows))) <
                              std::numeric_limits<double>::epsilon()) {
        info.H.release();
        info.inliers_mask.assign(info.matches.size(), 0);
        return;
    }
    for (uchar in : info.inliers_mask)
        info.num_inliers += in ? 1 : 0;
    // Brown and Lowe, "Automatic panoramic image stitching using invariant
    // features", as OpenCV - but without zeroing values above 3 (see the header).
    info.confidence = info.num_inliers / (8 + 0.3 * (double)info.matches.size());

    if (geometry_ != HOMOGRAPHY) {
        cv::Mat last = (cv::Mat_<double>(1, 3) << 0, 0, 1);
        info.H.push_back(last);
        return;
    }
    if (info.num_inliers < numMatchesThresh2_)
        return;
    // Refit on the inliers only, as BestOf2NearestMatcher does.
    std::vector<cv::Point2f> srcIn, dstIn;
    for (size_t i = 0; i < info.matches.size(); i++)
        if (info.inliers_mask[i]) {
            srcIn.push_back(src[i]);
            dstIn.push_back(dst[i]);
        }
    cv::Mat refined = cv::findHomography(srcIn, dstIn, cv::RANSAC, threshold);
    if (!refined.empty())
        info.H = refined;
}

} // namespace matchnet
