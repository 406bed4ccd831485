/*
 * test_plugin_cpp_feature2d.cpp - matchnet::MatchNet, the cv::Feature2D:
 * the contract OpenCV code relies on (sizes, type, norm, name, empty
 * images, keypoint caps, masks), compute() against libmatchnet's own
 * mn_describe_keypoints(), border keypoints, grey/colour/UMat inputs,
 * concurrent use of one object, rotation invariance measured as in
 * OpenCV xfeatures2d's test_rotation_and_scale_invariance, and affine
 * shapes (create(..., affine)): the C API's ellipses, re-estimated by
 * compute(), and more consistent matches on a strongly tilted view.
 */
#include <matchnet/opencv.hpp>

#include <opencv2/calib3d.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "check.h"

static cv::Mat loadGrey(const char* name)
{
    std::string path = std::string(MN_SOURCE_DIR) + "/samples/data/" + name;
    cv::Mat img = cv::imread(path, cv::IMREAD_GRAYSCALE);
    if (img.empty()) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        std::exit(1);
    }
    return img;
}

static bool allFinite(const cv::Mat& m)
{
    return cv::checkRange(m, true, nullptr, -1e30, 1e30);
}

static bool sameMat(const cv::Mat& a, const cv::Mat& b)
{
    return a.size() == b.size() && a.type() == b.type() && (a.empty() || cv::norm(a, b, cv::NORM_INF) == 0.0);
}

static void testContract(const cv::Ptr<matchnet::MatchNet>& net)
{
    const mn_model* model = net->getModel().get();
    CHECK(model != nullptr, "getModel() is NULL");
    CHECK(net->descriptorSize() == (int)mn_model_descriptor_dim(model), "descriptorSize %d, model %zu",
          net->descriptorSize(), mn_model_descriptor_dim(model));
    CHECK(net->descriptorType() == CV_32F, "descriptorType %d", net->descriptorType());
    CHECK(net->defaultNorm() == cv::NORM_L2, "defaultNorm %d", net->defaultNorm());
    CHECK(net->getDefaultName() == "Feature2D.MatchNet", "name %s", net->getDefaultName().c_str());
    CHECK(!net->empty(), "empty() with a model");
    CHECK(net->getModelPath().empty(), "default model path '%s'", net->getModelPath().c_str());
    CHECK(net->getScaleFactor() == MN_SCALE_SIFT && !net->getUpright(), "defaults");

    bool threw = false;
    try {
        matchnet::MatchNet::create("/nonexistent/model.mnw");
    } catch (const cv::Exception& e) {
        threw = std::string(e.what()).find("mn_model_load_file()") != std::string::npos;
        if (!threw)
            std::fprintf(stderr, "message: %s\n", e.what());
    }
    CHECK(threw, "a missing model throws cv::Exception with libmatchnet's message");
}

static void testEmpty(const cv::Ptr<matchnet::MatchNet>& net)
{
    std::vector<cv::KeyPoint> kps = {cv::KeyPoint(5, 5, 10)};
    cv::Mat desc = cv::Mat::ones(3, 3, CV_32F);
    net->detectAndCompute(cv::Mat(), cv::noArray(), kps, desc);
    CHECK(kps.empty() && desc.empty(), "empty image: %zu keypoints, %dx%d descriptors", kps.size(), desc.rows,
          desc.cols);

    kps = {cv::KeyPoint(5, 5, 10)};
    net->detect(cv::Mat(), kps);
    CHECK(kps.empty(), "detect on an empty image: %zu keypoints", kps.size());

    // A flat image has no keypoints: empty descriptors, no throw.
    cv::Mat flat(64, 64, CV_8U, cv::Scalar(128));
    net->detectAndCompute(flat, cv::noArray(), kps, desc);
    CHECK(kps.empty() && desc.empty(), "flat image: %zu keypoints, %d rows", kps.size(), desc.rows);
}

static void testDetect(const cv::Mat& img)
{
    // The strongest maxKeypoints, exactly.
    cv::Ptr<matchnet::MatchNet> net = matchnet::MatchNet::create(cv::String(), 100);
    std::vector<cv::KeyPoint> kps, all;
    net->detect(img, kps);
    cv::SIFT::create()->detect(img, all);
    CHECK(all.size() > 100 && kps.size() == 100, "%zu of %zu keypoints kept", kps.size(), all.size());
    std::vector<float> resp;
    for (const cv::KeyPoint& k : all)
        resp.push_back(k.response);
    std::sort(resp.begin(), resp.end(), std::greater<float>());
    float weakest = 1e30f;
    for (const cv::KeyPoint& k : kps)
        weakest = std::min(weakest, k.response);
    CHECK(resp.size() > 100 && weakest >= resp[99], "weakest kept response %g, 100th strongest %g", weakest,
          resp.size() > 100 ? resp[99] : 0.0f);

    // The mask is honoured.
    cv::Mat mask = cv::Mat::zeros(img.size(), CV_8U);
    mask(cv::Rect(0, 0, img.cols / 2, img.rows)).setTo(255);
    net->detect(img, kps, mask);
    int outside = 0;
    for (const cv::KeyPoint& k : kps)
        outside += k.pt.x > img.cols / 2 + 1;
    CHECK(!kps.empty() && outside == 0, "mask: %d of %zu keypoints outside", outside, kps.size());
}

// compute() is mn_describe_keypoints() with the object's parameters.
static void testComputeMatchesC(const cv::Ptr<matchnet::MatchNet>& net, const cv::Mat& img)
{
    const float w = (float)img.cols, h = (float)img.rows;
    std::vector<cv::KeyPoint> kps = {
        cv::KeyPoint(w / 2, h / 2, 12, 30),   cv::KeyPoint(40.5f, 33.25f, 20, -1),
        cv::KeyPoint(0, 0, 10, 0),            cv::KeyPoint(w - 1, h - 1, 30, 45),   // corners
        cv::KeyPoint(-3, 5, 12, 90),          cv::KeyPoint(w + 2, h / 2, 20, 180),  // beyond the border
        cv::KeyPoint(w / 3, h / 3, 200, 270), cv::KeyPoint(w / 4, h / 2, 2.5f, 359), // huge, tiny
    };
    std::vector<cv::KeyPoint> given = kps;
    cv::Mat desc;
    net->compute(img, kps, desc);
    CHECK(kps.size() == given.size() && desc.rows == (int)given.size() && desc.cols == net->descriptorSize() &&
              desc.type() == CV_32F,
          "%zu keypoints in, %zu out, descriptors %dx%d", given.size(), kps.size(), desc.rows, desc.cols);
    CHECK(allFinite(desc), "border keypoints give finite descriptors");

    std::vector<mn_keypoint> ck;
    for (const cv::KeyPoint& k : given)
        ck.push_back({k.pt.x, k.pt.y, k.size, k.angle});
    cv::Mat ref((int)ck.size(), net->descriptorSize(), CV_32F);
    mn_session* s = nullptr;
    CHECK_OK(mn_session_create(net->getModel().get(), nullptr, &s));
    mn_extract_params p = mn_extract_params_default();
    CHECK_OK(mn_describe_keypoints(s, img.ptr<uint8_t>(), img.cols, img.rows, img.step[0], ck.data(), ck.size(), &p,
                                   ref.ptr<float>()));
    mn_session_free(s);
    CHECK(sameMat(desc, ref), "compute() differs from mn_describe_keypoints() by %g",
          desc.size() == ref.size() ? cv::norm(desc, ref, cv::NORM_INF) : -1.0);

    // Upright and the scale factor reach the C library.
    net->setUpright(true);
    net->setScaleFactor(MN_SCALE_ORB * 8);
    cv::Mat upright;
    net->compute(img, kps, upright);
    s = nullptr;
    CHECK_OK(mn_session_create(net->getModel().get(), nullptr, &s));
    p.upright = 1;
    p.scale_factor = MN_SCALE_ORB * 8;
    CHECK_OK(mn_describe_keypoints(s, img.ptr<uint8_t>(), img.cols, img.rows, img.step[0], ck.data(), ck.size(), &p,
                                   ref.ptr<float>()));
    mn_session_free(s);
    CHECK(sameMat(upright, ref), "upright / scale factor not passed on");
    net->setUpright(false);
    net->setScaleFactor(MN_SCALE_SIFT);

    // Keypoints no patch can be cut for are removed, the rest kept in order.
    std::vector<cv::KeyPoint> bad = given;
    bad.insert(bad.begin() + 1, cv::KeyPoint(10, 10, 0));
    bad.insert(bad.begin() + 3, cv::KeyPoint(NAN, 10, 5));
    bad.push_back(cv::KeyPoint(10, 10, 5, INFINITY));
    net->compute(img, bad, upright);
    bool same = bad.size() == given.size();
    for (size_t i = 0; same && i < bad.size(); i++)
        same = bad[i].pt == given[i].pt && bad[i].size == given[i].size;
    CHECK(same && sameMat(upright, desc), "invalid keypoints: %zu kept of %zu valid", bad.size(), given.size());

    // A view into a larger image (row stride != width) describes the same pixels.
    cv::Mat big(img.rows + 10, img.cols + 30, CV_8U, cv::Scalar(0));
    img.copyTo(big(cv::Rect(7, 3, img.cols, img.rows)));
    cv::Mat roiDesc;
    std::vector<cv::KeyPoint> kr = given;
    net->compute(big(cv::Rect(7, 3, img.cols, img.rows)), kr, roiDesc);
    CHECK(sameMat(roiDesc, desc), "ROI input differs");
}

static void testInputs(const cv::Ptr<matchnet::MatchNet>& net, const cv::Mat& grey)
{
    cv::Mat bgr, bgra;
    cv::cvtColor(grey, bgr, cv::COLOR_GRAY2BGR);
    cv::cvtColor(grey, bgra, cv::COLOR_GRAY2BGRA);
    cv::Ptr<matchnet::MatchNet> small = matchnet::MatchNet::create(cv::String(), 40);
    std::vector<cv::KeyPoint> k1, k2, k3, k4;
    cv::Mat d1, d2, d3;
    cv::UMat d4;
    small->detectAndCompute(grey, cv::noArray(), k1, d1);
    small->detectAndCompute(bgr, cv::noArray(), k2, d2);
    small->detectAndCompute(bgra, cv::noArray(), k3, d3);
    small->detectAndCompute(grey.getUMat(cv::ACCESS_READ), cv::noArray(), k4, d4);
    CHECK(k1.size() == 40 && d1.rows == 40, "%zu keypoints", k1.size());
    CHECK(k2.size() == k1.size() && sameMat(d1, d2), "BGR input differs from grey");
    CHECK(k3.size() == k1.size() && sameMat(d1, d3), "BGRA input differs from grey");
    CHECK(k4.size() == k1.size() && sameMat(d1, d4.getMat(cv::ACCESS_READ)), "UMat input/output differs");

    bool threw = false;
    try {
        std::vector<cv::KeyPoint> k = k1;
        cv::Mat d;
        small->compute(cv::Mat(grey.size(), CV_32F, cv::Scalar(0)), k, d);
    } catch (const cv::Exception&) {
        threw = true;
    }
    CHECK(threw, "a float image is refused");
    (void)net;
}

// One object, several threads: each call has its own session.
static void testThreads(const cv::Mat& img)
{
    cv::Ptr<matchnet::MatchNet> net = matchnet::MatchNet::create(cv::String(), 60, MN_SCALE_SIFT, false, 1);
    std::vector<cv::KeyPoint> kref;
    cv::Mat dref;
    net->detectAndCompute(img, cv::noArray(), kref, dref);
    const int n = 3;
    std::vector<std::vector<cv::KeyPoint>> k(n);
    std::vector<cv::Mat> d(n);
    std::vector<std::thread> threads;
    for (int t = 0; t < n; t++)
        threads.emplace_back([&, t] { net->detectAndCompute(img, cv::noArray(), k[t], d[t]); });
    for (std::thread& t : threads)
        t.join();
    for (int t = 0; t < n; t++)
        CHECK(k[t].size() == kref.size() && sameMat(d[t], dref), "thread %d differs", t);
}

/*
 * Rotation invariance, end to end: detect and describe an image and its
 * rotations about the centre, match with MatchNetMatcher (mutual best,
 * p >= 0.5), and count the matches whose keypoints agree with the known
 * rotation within 3 px. Measured on box_in_scene.png with 400 keypoints
 * (the lines printed): 222-339 matches, 0.987-1.000 of them consistent, at
 * each angle. Upright patches (orientation ignored) give 10-20 matches,
 * 0-0.8 consistent. The thresholds leave a wide margin on both sides.
 */
static void testRotationInvariance(const cv::Mat& img)
{
    const double minRatio = 0.85;
    const int minMatches = 100;
    cv::Ptr<matchnet::MatchNet> net = matchnet::MatchNet::create(cv::String(), 400);
    cv::Ptr<matchnet::MatchNetMatcher> matcher = matchnet::MatchNetMatcher::create(cv::String(), 5, true);
    std::vector<cv::KeyPoint> k0;
    cv::Mat d0;
    net->detectAndCompute(img, cv::noArray(), k0, d0);
    const cv::Point2f centre(img.cols * 0.5f, img.rows * 0.5f);
    for (double angle : {30.0, 90.0, 165.0, 250.0}) {
        cv::Mat R = cv::getRotationMatrix2D(centre, angle, 1.0), rotated;
        cv::warpAffine(img, rotated, R, img.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
        std::vector<cv::KeyPoint> k1;
        cv::Mat d1;
        net->detectAndCompute(rotated, cv::noArray(), k1, d1);
        std::vector<cv::DMatch> all;
        matcher->match(d0, d1, all);
        int matches = 0, good = 0;
        for (const cv::DMatch& m : all) {
            if (m.distance > 0.5f)
                continue;
            matches++;
            const cv::Point2f p = k0[m.queryIdx].pt;
            cv::Point2f q((float)(R.at<double>(0, 0) * p.x + R.at<double>(0, 1) * p.y + R.at<double>(0, 2)),
                          (float)(R.at<double>(1, 0) * p.x + R.at<double>(1, 1) * p.y + R.at<double>(1, 2)));
            good += cv::norm(q - k1[m.trainIdx].pt) <= 3.0;
        }
        const double ratio = matches ? (double)good / matches : 0.0;
        std::printf("rotation %5.1f deg: %zu / %zu keypoints, %d matches, %d consistent, ratio %.3f\n", angle,
                    k0.size(), k1.size(), matches, good, ratio);
        CHECK(matches >= minMatches && ratio >= minRatio, "rotation %.1f: %d matches, ratio %.3f (minimum %d, %.2f)",
              angle, matches, ratio, minMatches, minRatio);
    }
}

// Matches of img against its view through the 2x3 map A that agree with A
// within 3 px (mutual best, p >= 0.5).
static int consistentMatches(const cv::Ptr<matchnet::MatchNet>& net, const cv::Mat& img, const cv::Mat& view,
                             const cv::Mat& A)
{
    cv::Ptr<matchnet::MatchNetMatcher> matcher = matchnet::MatchNetMatcher::create(cv::String(), 5, true);
    std::vector<cv::KeyPoint> k0, k1;
    cv::Mat d0, d1;
    net->detectAndCompute(img, cv::noArray(), k0, d0);
    net->detectAndCompute(view, cv::noArray(), k1, d1);
    std::vector<cv::DMatch> all;
    matcher->match(d0, d1, all);
    int good = 0;
    for (const cv::DMatch& m : all) {
        const cv::Point2f p = k0[m.queryIdx].pt;
        cv::Point2f q((float)(A.at<double>(0, 0) * p.x + A.at<double>(0, 1) * p.y + A.at<double>(0, 2)),
                      (float)(A.at<double>(1, 0) * p.x + A.at<double>(1, 1) * p.y + A.at<double>(1, 2)));
        good += m.distance <= 0.5f && cv::norm(q - k1[m.trainIdx].pt) <= 3.0;
    }
    return good;
}

static void testAffine(const cv::Mat& img)
{
    cv::Ptr<matchnet::MatchNet> plain = matchnet::MatchNet::create(cv::String(), 300);
    cv::Ptr<matchnet::MatchNet> net = matchnet::MatchNet::create(cv::String(), 300, MN_SCALE_SIFT, false, 0, true);
    CHECK(!plain->getAffine() && net->getAffine(), "affine flag of create()");
    std::vector<cv::KeyPoint> kp, ka;
    cv::Mat dp, da;
    plain->detectAndCompute(img, cv::noArray(), kp, dp);
    net->detectAndCompute(img, cv::noArray(), ka, da);
    bool sameKeypoints = kp.size() == ka.size();
    for (size_t i = 0; sameKeypoints && i < kp.size(); i++)
        sameKeypoints = kp[i].pt == ka[i].pt && kp[i].size == ka[i].size && kp[i].angle == ka[i].angle;
    CHECK(sameKeypoints, "affine changes the keypoints");
    CHECK(da.rows == (int)ka.size() && !sameMat(da, dp), "affine descriptors equal the circles'");

    // The C API's ellipses and descriptors, and compute() re-estimating them.
    std::vector<mn_keypoint> ck;
    for (const cv::KeyPoint& k : ka)
        ck.push_back({k.pt.x, k.pt.y, k.size, k.angle});
    std::vector<mn_affine_keypoint> ak(ck.size());
    std::vector<uint8_t> res(ck.size());
    cv::Mat ref((int)ck.size(), net->descriptorSize(), CV_32F);
    mn_session* s = nullptr;
    CHECK_OK(mn_session_create(net->getModel().get(), nullptr, &s));
    CHECK_OK(mn_affine_shape_estimate(s, img.ptr<uint8_t>(), img.cols, img.rows, img.step[0], ck.data(), ck.size(),
                                      nullptr, ak.data(), res.data()));
    mn_extract_params p = mn_extract_params_default();
    CHECK_OK(mn_describe_keypoints_affine(s, img.ptr<uint8_t>(), img.cols, img.rows, img.step[0], ak.data(),
                                          ak.size(), &p, ref.ptr<float>()));
    mn_session_free(s);
    CHECK(sameMat(da, ref), "affine compute() differs from mn_describe_keypoints_affine()");
    std::vector<cv::KeyPoint> again = kp;
    cv::Mat dc;
    net->compute(img, again, dc);
    CHECK(sameMat(dc, da), "detect() then compute() differs from detectAndCompute()");
    net->setAffine(false);
    net->compute(img, again, dc);
    CHECK(sameMat(dc, dp), "setAffine(false) still describes ellipses");
    net->setAffine(true);

    cv::Mat shapes, results;
    net->estimateAffineShapes(img, ka, shapes, results);
    CHECK(shapes.rows == (int)ka.size() && shapes.cols == 6 && shapes.type() == CV_32F && results.type() == CV_8U &&
              results.rows == (int)ka.size(),
          "estimateAffineShapes: %dx%d %s", shapes.rows, shapes.cols, cv::typeToString(shapes.type()).c_str());
    bool same = shapes.rows == (int)ak.size();
    int ellipses = 0;
    for (int i = 0; same && i < shapes.rows; i++) {
        same = std::memcmp(shapes.ptr<float>(i), &ak[i], sizeof ak[i]) == 0 && results.at<uint8_t>(i) == res[i];
        ellipses += res[i] == MN_AFFINE_CONVERGED;
    }
    CHECK(same, "estimateAffineShapes differs from mn_affine_shape_estimate");
    CHECK(ellipses >= shapes.rows / 2, "only %d of %d keypoints have an ellipse", ellipses, shapes.rows);
    cv::Mat none;
    net->estimateAffineShapes(img, std::vector<cv::KeyPoint>(), none);
    CHECK(none.rows == 0 && none.cols == 6, "no keypoints: %dx%d shapes", none.rows, none.cols);
    bool threw = false;
    try {
        net->estimateAffineShapes(img, std::vector<cv::KeyPoint>{cv::KeyPoint(10, 10, 0)}, none);
    } catch (const cv::Exception& e) {
        threw = std::string(e.what()).find("mn_affine_shape_estimate(): keypoint 0 has size 0") != std::string::npos;
    }
    CHECK(threw, "a keypoint of size 0 is not refused with the library's message");

    // A view tilted by 3 (a plane at 70 degrees; blurred across the tilt
    // first, as a camera would): affine shapes find more consistent matches
    // (measured: 22 against 4 with circles, 1000 keypoints).
    cv::Mat blurred, view;
    cv::GaussianBlur(img, blurred, cv::Size(), 1e-3, 0.8 * std::sqrt(8.0));
    const double a = 25 * CV_PI / 180, t = 3;
    cv::Mat A = (cv::Mat_<double>(2, 3) << std::cos(a), -std::sin(a), 0, std::sin(a) / t, std::cos(a) / t, 0);
    A.at<double>(0, 2) = img.cols * 0.3;
    A.at<double>(1, 2) = img.rows * 0.1;
    cv::warpAffine(blurred, view, A, cv::Size(img.cols + img.rows / 2, img.rows), cv::INTER_AREA);
    plain->setMaxKeypoints(1000);
    net->setMaxKeypoints(1000);
    const int gp = consistentMatches(plain, img, view, A), ga = consistentMatches(net, img, view, A);
    std::printf("tilt 3: %d consistent matches with circles, %d with ellipses\n", gp, ga);
    CHECK(ga >= 15 && ga >= 2 * gp, "tilt 3: %d consistent matches with ellipses, %d with circles", ga, gp);
}

int main()
{
    const cv::Mat box = loadGrey("box.png"), scene = loadGrey("box_in_scene.png");
    try {
        cv::Ptr<matchnet::MatchNet> net = matchnet::MatchNet::create();
        testContract(net);
        testEmpty(net);
        testDetect(scene);
        testComputeMatchesC(net, box);
        testInputs(net, box);
        testThreads(box);
        testRotationInvariance(scene);
        testAffine(scene);
    } catch (const cv::Exception& e) {
        CHECK(false, "unexpected exception: %s", e.what());
    }
    return check_summary("test_plugin_cpp_feature2d");
}
