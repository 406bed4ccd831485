/*
 * stitch.cpp - matchnet-stitch: cv::Stitcher with MatchNet features and
 * metric-network matching in place of its own.
 *
 *   matchnet-stitch [--mode panorama|scans] [--model PATH] [--threads N] -o pano.jpg IMAGE...
 *
 * Writes the panorama, and prints as its last line a JSON summary:
 *   {"status": "ok", "images": 6, "kept": 6, "width": 1510, "height": 452}
 * where kept counts the input images in the panorama (the Stitcher leaves
 * out images it cannot connect to the others), and status names the
 * failure otherwise: read_error, need_more_imgs, homography_est_fail,
 * camera_params_adjust_fail, write_error or exception. Exits non-zero on
 * failure.
 */
#include <matchnet/opencv.hpp>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/stitching.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static int report(const char* status, size_t images, size_t kept, const cv::Mat& pano)
{
    std::printf("{\"status\": \"%s\", \"images\": %zu, \"kept\": %zu, \"width\": %d, \"height\": %d}\n", status,
                images, kept, pano.cols, pano.rows);
    return std::strcmp(status, "ok") == 0 ? 0 : 1;
}

static const char* statusName(cv::Stitcher::Status status)
{
    switch (status) {
    case cv::Stitcher::OK: return "ok";
    case cv::Stitcher::ERR_NEED_MORE_IMGS: return "need_more_imgs";
    case cv::Stitcher::ERR_HOMOGRAPHY_EST_FAIL: return "homography_est_fail";
    case cv::Stitcher::ERR_CAMERA_PARAMS_ADJUST_FAIL: return "camera_params_adjust_fail";
    }
    return "unknown";
}

static int usage(const char* argv0)
{
    std::fprintf(stderr, "usage: %s [--mode panorama|scans] [--model PATH] [--threads N] -o pano.jpg IMAGE...\n",
                 argv0);
    return 2;
}

int main(int argc, char** argv)
{
    std::string mode = "panorama", model, out;
    int threads = 0;
    std::vector<std::string> paths;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if ((a == "--mode" || a == "--model" || a == "--threads" || a == "-o") && i + 1 < argc) {
            std::string v = argv[++i];
            if (a == "--mode")
                mode = v;
            else if (a == "--model")
                model = v;
            else if (a == "--threads")
                threads = std::atoi(v.c_str());
            else
                out = v;
        } else if (a.size() > 1 && a[0] == '-') {
            return usage(argv[0]);
        } else {
            paths.push_back(a);
        }
    }
    if (out.empty() || paths.empty() || (mode != "panorama" && mode != "scans"))
        return usage(argv[0]);

    std::vector<cv::Mat> images;
    for (const std::string& p : paths) {
        images.push_back(cv::imread(p, cv::IMREAD_COLOR));
        if (images.back().empty()) {
            std::fprintf(stderr, "cannot read %s\n", p.c_str());
            return report("read_error", paths.size(), 0, cv::Mat());
        }
    }

    const bool scans = mode == "scans";
    cv::Mat pano;
    try {
        cv::Ptr<cv::Stitcher> stitcher = cv::Stitcher::create(scans ? cv::Stitcher::SCANS : cv::Stitcher::PANORAMA);

        // Features: SIFT keypoints, MatchNet descriptors (at the Stitcher's
        // registration resolution, 0.6 Mpx by default).
        stitcher->setFeaturesFinder(matchnet::MatchNet::create(model, 2000, MN_SCALE_SIFT, false, threads));

        // Pairwise matching: mutual best matches with probability >= 0.5, then
        // the geometry each mode's estimator expects: a homography for
        // panoramas, a rotation + scale + translation for scans.
        stitcher->setFeaturesMatcher(cv::makePtr<matchnet::MatchNetFeaturesMatcher>(
            model, false, 0.5f, 6, 6,
            scans ? matchnet::MatchNetFeaturesMatcher::AFFINE_PARTIAL : matchnet::MatchNetFeaturesMatcher::HOMOGRAPHY,
            threads));

        cv::Stitcher::Status status = stitcher->stitch(images, pano);
        size_t kept = stitcher->component().size();
        if (status != cv::Stitcher::OK)
            return report(statusName(status), images.size(), kept, cv::Mat());
        if (!cv::imwrite(out, pano)) {
            std::fprintf(stderr, "cannot write %s\n", out.c_str());
            return report("write_error", images.size(), kept, pano);
        }
        return report("ok", images.size(), kept, pano);
    } catch (const cv::Exception& e) {
        // libmatchnet's failures (e.g. a model that does not load) arrive here.
        std::fprintf(stderr, "%s\n", e.what());
        return report("exception", images.size(), 0, cv::Mat());
    }
}
