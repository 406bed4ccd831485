// bench_match - matching and end-to-end cost against OpenCV SIFT, same run.
//
//   bench_match IMAGE [--repeats R] [--threads N] [--keypoints K] [--scale S]
//
// The pair: IMAGE enlarged S times (default 2; 4 gives box_in_scene 8000
// keypoints), and the same view rotated by 20 degrees and
// zoomed by 0.9 (so both have about K keypoints). Medians over R runs of:
// SIFT detect + compute on both, BFMatcher knnMatch(k = 2) + ratio 0.8; and
// MatchNet: the same SIFT detection, mn_describe_keypoints, mn_match with
// the default and with the metric preset. Prints one JSON object.
#include "matchnet.h"

#include <opencv2/core.hpp>
#include <opencv2/features2d.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

double now_ms()
{
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

[[noreturn]] void die(const char *msg)
{
    std::fprintf(stderr, "bench_match: %s\n", msg);
    std::exit(1);
}

} // namespace

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: bench_match IMAGE [--repeats R] [--threads N] [--keypoints K] [--scale S]");
    int repeats = 5, threads = 2, kp_max = 2000;
    double scale = 2.0;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--repeats")
            repeats = std::atoi(argv[i + 1]);
        else if (a == "--threads")
            threads = std::atoi(argv[i + 1]);
        else if (a == "--keypoints")
            kp_max = std::atoi(argv[i + 1]);
        else if (a == "--scale")
            scale = std::atof(argv[i + 1]);
        else
            die("unknown option");
    }
    cv::Mat src = cv::imread(argv[1], cv::IMREAD_GRAYSCALE);
    if (src.empty())
        die("cannot read the image");
    cv::Mat a, b;
    if (!(scale > 0.1 && scale <= 8.0))
        die("--scale: expected 0.1..8");
    cv::resize(src, a, cv::Size(), scale, scale, cv::INTER_CUBIC);
    cv::Mat rot = cv::getRotationMatrix2D(cv::Point2f(a.cols / 2.0f, a.rows / 2.0f), 20.0, 0.9);
    cv::warpAffine(a, b, rot, a.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
    cv::setNumThreads(threads);

    mn_model *model = nullptr;
    if (mn_model_load_default(&model) != MN_OK)
        die(mn_last_error());
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = threads;
    mn_session *s = nullptr;
    if (mn_session_create(model, &sp, &s) != MN_OK)
        die(mn_last_error());
    const size_t dim = mn_model_descriptor_dim(model);
    cv::Ptr<cv::SIFT> sift = cv::SIFT::create(kp_max);

    std::vector<double> t_sift, t_bf, t_detect, t_describe, t_match, t_metric;
    std::vector<double> r_match, r_e2e; // per-repeat ratios, for the spread
    size_t n1 = 0, n2 = 0, m_bf = 0, m_mn = 0;
    for (int r = 0; r < repeats; r++) {
        // OpenCV SIFT pipeline.
        std::vector<cv::KeyPoint> k1, k2;
        cv::Mat d1, d2;
        double t0 = now_ms();
        sift->detectAndCompute(a, cv::noArray(), k1, d1);
        sift->detectAndCompute(b, cv::noArray(), k2, d2);
        double t1 = now_ms();
        cv::BFMatcher bf(cv::NORM_L2);
        std::vector<std::vector<cv::DMatch>> knn;
        bf.knnMatch(d1, d2, knn, 2);
        size_t good = 0;
        for (auto &c : knn)
            good += c.size() == 2 && c[0].distance < 0.8f * c[1].distance;
        double t2 = now_ms();
        t_sift.push_back(t1 - t0);
        t_bf.push_back(t2 - t1);
        m_bf = good;

        // MatchNet pipeline on SIFT keypoints.
        std::vector<cv::KeyPoint> q1, q2;
        t0 = now_ms();
        sift->detect(a, q1);
        sift->detect(b, q2);
        t1 = now_ms();
        std::vector<mn_keypoint> p1(q1.size()), p2(q2.size());
        for (size_t i = 0; i < q1.size(); i++)
            p1[i] = {q1[i].pt.x, q1[i].pt.y, q1[i].size, q1[i].angle};
        for (size_t i = 0; i < q2.size(); i++)
            p2[i] = {q2[i].pt.x, q2[i].pt.y, q2[i].size, q2[i].angle};
        std::vector<float> e1(p1.size() * dim), e2(p2.size() * dim);
        if (mn_describe_keypoints(s, a.data, a.cols, a.rows, a.step, p1.data(), p1.size(), nullptr, e1.data()) != MN_OK ||
            mn_describe_keypoints(s, b.data, b.cols, b.rows, b.step, p2.data(), p2.size(), nullptr, e2.data()) != MN_OK)
            die(mn_last_error());
        t2 = now_ms();
        std::vector<mn_dmatch> out(p1.size());
        size_t nm = 0;
        mn_match_params dp = mn_match_params_default();
        if (mn_match(s, e1.data(), p1.size(), e2.data(), p2.size(), &dp, out.data(), out.size(), &nm) != MN_OK)
            die(mn_last_error());
        double t3 = now_ms();
        mn_match_params mp = mn_match_params_preset(MN_MATCH_METRIC);
        size_t nmm = 0;
        if (mn_match(s, e1.data(), p1.size(), e2.data(), p2.size(), &mp, out.data(), out.size(), &nmm) != MN_OK)
            die(mn_last_error());
        double t4 = now_ms();
        t_detect.push_back(t1 - t0);
        t_describe.push_back(t2 - t1);
        t_match.push_back(t3 - t2);
        t_metric.push_back(t4 - t3);
        r_match.push_back((t3 - t2) / t_bf.back());
        r_e2e.push_back((t3 - t0) / (t_sift.back() + t_bf.back()));
        n1 = p1.size(), n2 = p2.size(), m_mn = nm;
    }
    double sift_total = median(t_sift) + median(t_bf);
    double mn_total = median(t_detect) + median(t_describe) + median(t_match);
    std::printf("{\"keypoints\": [%zu, %zu], \"sift_detect_compute_ms\": %.1f, \"bfmatcher_ratio_ms\": %.1f, "
                "\"mn_detect_ms\": %.1f, \"mn_describe_ms\": %.1f, \"mn_match_ms\": %.1f, \"mn_match_metric_ms\": %.1f, "
                "\"sift_matches\": %zu, \"mn_matches\": %zu, \"match_ratio_vs_bfmatcher\": %.3f, "
                "\"match_metric_ratio_vs_bfmatcher\": %.3f, \"end_to_end_ratio_vs_sift\": %.2f, "
                "\"match_ratio_spread\": [%.3f, %.3f], \"end_to_end_ratio_spread\": [%.2f, %.2f]}\n",
                n1, n2, median(t_sift), median(t_bf), median(t_detect), median(t_describe), median(t_match),
                median(t_metric), m_bf, m_mn, median(t_match) / median(t_bf), median(t_metric) / median(t_bf),
                mn_total / sift_total, *std::min_element(r_match.begin(), r_match.end()),
                *std::max_element(r_match.begin(), r_match.end()), *std::min_element(r_e2e.begin(), r_e2e.end()),
                *std::max_element(r_e2e.begin(), r_e2e.end()));
    mn_session_free(s);
    mn_model_free(model);
    return 0;
}
