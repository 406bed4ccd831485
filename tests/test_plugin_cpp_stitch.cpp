/*
 * test_plugin_cpp_stitch.cpp - matchnet::MatchNetFeaturesMatcher, the
 * cv::detail::FeaturesMatcher for cv::Stitcher: a synthetic pair with a
 * known homography (H recovered in the Stitcher's centred coordinates,
 * confidence above 1, inlier mask), the affine geometry on a known
 * similarity, an unrelated pair, empty features, the pairwise operator the
 * Stitcher calls, and a whole cv::Stitcher run on two views of a rotating
 * camera synthesised from one image.
 */
#include <matchnet/opencv.hpp>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/stitching.hpp>

#include <cmath>
#include <vector>

#include "check.h"

using cv::detail::ImageFeatures;
using cv::detail::MatchesInfo;
using matchnet::MatchNetFeaturesMatcher;

static cv::Mat loadColour(const char* name)
{
    std::string path = std::string(MN_SOURCE_DIR) + "/samples/data/" + name;
    cv::Mat img = cv::imread(path, cv::IMREAD_COLOR);
    if (img.empty()) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        std::exit(1);
    }
    return img;
}

static cv::Point2d apply(const cv::Matx33d& H, cv::Point2d p)
{
    cv::Vec3d v = H * cv::Vec3d(p.x, p.y, 1.0);
    return cv::Point2d(v[0] / v[2], v[1] / v[2]);
}

// Largest distance between truth(p) and estimate(p) over a grid of image-1
// points that truth maps inside image 2.
template <class F>
static double maxError(const cv::Matx33d& truth, cv::Size s1, cv::Size s2, F estimate)
{
    double worst = 0;
    for (int y = 20; y < s1.height - 20; y += 20)
        for (int x = 20; x < s1.width - 20; x += 20) {
            cv::Point2d t = apply(truth, cv::Point2d(x, y));
            if (t.x < 0 || t.y < 0 || t.x >= s2.width || t.y >= s2.height)
                continue;
            worst = std::max(worst, cv::norm(t - estimate(cv::Point2d(x, y))));
        }
    return worst;
}

static bool consistent(const MatchesInfo& m, float matchConf)
{
    int n = 0;
    for (uchar in : m.inliers_mask)
        n += in != 0;
    bool distances = true;
    for (const cv::DMatch& d : m.matches)
        distances = distances && d.distance >= 0 && d.distance <= 1 - matchConf + 1e-6f;
    return m.inliers_mask.size() == m.matches.size() && n == m.num_inliers && distances;
}

static ImageFeatures features(const cv::Ptr<matchnet::MatchNet>& net, const cv::Mat& img, int idx)
{
    ImageFeatures f;
    cv::detail::computeImageFeatures(net, img, f); // the Stitcher's path: detect(), then compute() to a UMat
    f.img_idx = idx;
    return f;
}

static void testHomography(const cv::Ptr<matchnet::MatchNet>& net, const cv::Mat& img, const ImageFeatures& f1)
{
    const cv::Matx33d H(0.95, -0.12, 30, 0.10, 0.93, 12, 1.5e-4, -1.0e-4, 1.0);
    cv::Mat warped;
    cv::warpPerspective(img, warped, cv::Mat(H), img.size());
    ImageFeatures f2 = features(net, warped, 1);

    cv::Ptr<MatchNetFeaturesMatcher> matcher = MatchNetFeaturesMatcher::create();
    CHECK(matcher->isThreadSafe(), "thread-safe");
    MatchesInfo m;
    (*matcher)(f1, f2, m);
    CHECK(consistent(m, 0.5f), "matches %zu, mask %zu, inliers %d", m.matches.size(), m.inliers_mask.size(),
          m.num_inliers);
    CHECK(m.confidence > 1.0, "confidence %g (%d inliers of %zu)", m.confidence, m.num_inliers, m.matches.size());
    CHECK(m.H.rows == 3 && m.H.cols == 3 && m.H.type() == CV_64F, "H %dx%d", m.H.rows, m.H.cols);
    if (m.H.rows != 3 || m.H.cols != 3)
        return;
    // H is between image-centred coordinates, as cv::Stitcher's estimators expect.
    const cv::Point2d c1(f1.img_size.width * 0.5, f1.img_size.height * 0.5),
        c2(f2.img_size.width * 0.5, f2.img_size.height * 0.5);
    const cv::Matx33d Hc(m.H);
    double err = maxError(H, img.size(), warped.size(), [&](cv::Point2d p) { return apply(Hc, p - c1) + c2; });
    std::printf("homography: %zu matches, %d inliers, confidence %.2f, max error %.3f px\n", m.matches.size(),
                m.num_inliers, m.confidence, err);
    CHECK(err < 1.5, "H maps points %.3f px from the truth", err);

    // The pairwise operator cv::Stitcher calls: both directions filled, the reverse H inverted.
    std::vector<ImageFeatures> all = {f1, f2};
    std::vector<MatchesInfo> pairwise;
    (*matcher)(all, pairwise);
    CHECK(pairwise.size() == 4, "%zu pairwise entries", pairwise.size());
    if (pairwise.size() == 4) {
        const MatchesInfo &fwd = pairwise[1], &rev = pairwise[2];
        CHECK(fwd.src_img_idx == 0 && fwd.dst_img_idx == 1 && fwd.confidence > 1.0 && !rev.H.empty(),
              "pairwise: %d->%d confidence %g", fwd.src_img_idx, fwd.dst_img_idx, fwd.confidence);
        if (!rev.H.empty())
            CHECK(cv::norm(cv::Mat(rev.H * fwd.H), cv::Mat::eye(3, 3, CV_64F), cv::NORM_INF) < 1e-6,
                  "reverse H is not the inverse");
    }
}

static void testAffine(const cv::Ptr<matchnet::MatchNet>& net, const cv::Mat& img, const ImageFeatures& f1)
{
    const double a = -12 * CV_PI / 180, s = 1.1;
    const cv::Matx33d S(s * std::cos(a), -s * std::sin(a), 40, s * std::sin(a), s * std::cos(a), -35, 0, 0, 1);
    cv::Mat warped;
    cv::warpAffine(img, warped, cv::Mat(S).rowRange(0, 2), img.size());
    ImageFeatures f2 = features(net, warped, 1);

    MatchNetFeaturesMatcher matcher(cv::String(), false, 0.5f, 6, 6, MatchNetFeaturesMatcher::AFFINE_PARTIAL);
    MatchesInfo m;
    matcher(f1, f2, m);
    CHECK(consistent(m, 0.5f) && m.confidence > 1.0, "affine: %zu matches, %d inliers, confidence %g",
          m.matches.size(), m.num_inliers, m.confidence);
    CHECK(m.H.rows == 3 && m.H.cols == 3, "affine H is %dx%d, expected 3x3", m.H.rows, m.H.cols);
    if (m.H.rows != 3 || m.H.cols != 3)
        return;
    const cv::Matx33d A(m.H);
    CHECK(A(2, 0) == 0 && A(2, 1) == 0 && A(2, 2) == 1, "last row of the affine H");
    // Pixel coordinates, as cv::detail::AffineBestOf2NearestMatcher.
    double err = maxError(S, img.size(), warped.size(), [&](cv::Point2d p) { return apply(A, p); });
    std::printf("affine: %zu matches, %d inliers, confidence %.2f, max error %.3f px\n", m.matches.size(),
                m.num_inliers, m.confidence, err);
    CHECK(err < 1.5, "affine H maps points %.3f px from the truth", err);
}

static void testUnrelatedAndEmpty(const cv::Ptr<matchnet::MatchNet>& net, const ImageFeatures& f1)
{
    cv::Mat noise(300, 400, CV_8UC3);
    cv::RNG(3).fill(noise, cv::RNG::UNIFORM, 0, 256);
    cv::GaussianBlur(noise, noise, cv::Size(5, 5), 1.5);
    ImageFeatures f2 = features(net, noise, 1);
    MatchNetFeaturesMatcher matcher;
    MatchesInfo m;
    matcher(f1, f2, m);
    std::printf("unrelated: %zu keypoints, %zu matches, %d inliers, confidence %.2f\n", f2.keypoints.size(),
                m.matches.size(), m.num_inliers, m.confidence);
    CHECK(consistent(m, 0.5f) && m.confidence < 1.0, "unrelated images: confidence %g", m.confidence);

    ImageFeatures none;
    none.img_size = cv::Size(100, 100);
    m.confidence = 7;
    m.matches.resize(3);
    matcher(f1, none, m);
    CHECK(m.matches.empty() && m.H.empty() && m.confidence == 0 && m.num_inliers == 0, "empty features");
}

// Two views of a camera turning about its centre, f = 600 px: what
// Stitcher::PANORAMA models.
static void testStitcher(const cv::Mat& img)
{
    const double f = 600;
    const cv::Matx33d K(f, 0, img.cols * 0.5, 0, f, img.rows * 0.5, 0, 0, 1);
    std::vector<cv::Mat> views;
    for (double deg : {-9.0, 9.0}) {
        const double a = deg * CV_PI / 180;
        const cv::Matx33d R(std::cos(a), 0, std::sin(a), 0, 1, 0, -std::sin(a), 0, std::cos(a));
        cv::Mat v;
        cv::warpPerspective(img, v, cv::Mat(K * R * K.inv()), cv::Size(360, img.rows));
        views.push_back(v);
    }
    cv::Ptr<cv::Stitcher> stitcher = cv::Stitcher::create(cv::Stitcher::PANORAMA);
    stitcher->setFeaturesFinder(matchnet::MatchNet::create(cv::String(), 400));
    stitcher->setFeaturesMatcher(cv::makePtr<MatchNetFeaturesMatcher>());
    cv::Mat pano;
    cv::Stitcher::Status st = stitcher->stitch(views, pano);
    std::printf("stitcher: status %d, kept %zu, panorama %dx%d\n", (int)st, stitcher->component().size(), pano.cols,
                pano.rows);
    CHECK(st == cv::Stitcher::OK && stitcher->component().size() == 2 && pano.cols > views[0].cols,
          "stitch: status %d, kept %zu, width %d", (int)st, stitcher->component().size(), pano.cols);
}

int main()
{
    const cv::Mat scene = loadColour("box_in_scene.png");
    try {
        cv::Ptr<matchnet::MatchNet> net = matchnet::MatchNet::create(cv::String(), 400);
        const ImageFeatures f1 = features(net, scene, 0);
        testHomography(net, scene, f1);
        testAffine(net, scene, f1);
        testUnrelatedAndEmpty(net, f1);
        testStitcher(scene);
    } catch (const cv::Exception& e) {
        CHECK(false, "unexpected exception: %s", e.what());
    }
    return check_summary("test_plugin_cpp_stitch");
}
