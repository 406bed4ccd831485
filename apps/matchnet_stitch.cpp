/*
 * matchnet_stitch.cpp - matchnet-stitch: cv::Stitcher with MatchNet features
 * and metric-network matching in place of its own.
 *
 *   matchnet-stitch [--mode panorama|scans] [--model PATH] [--threads N] -o pano.jpg IMAGE...
 *
 * Writes the panorama, and prints as its last line a JSON summary:
 *   {"status": "ok", "images": 6, "kept": 6, "width": 1510, "height": 452}
 * where kept counts the input images in the panorama (the Stitcher leaves
 * out images it cannot connect to the others), and status names the
 * failure otherwise: read_error, need_more_imgs, homography_est_fail,
 * camera_params_adjust_fail, write_error or exception. Exits 1 on such a
 * failure and 2, with one line on stderr and no summary, on a usage error.
 * On a terminal (--progress) a line on stderr follows the images described
 * and the pairs matched; the Stitcher's later steps have no count.
 */
#include "cli.h"
#include "out_file.h"

#include <matchnet/opencv.h>
#include <matchnet/opencv.hpp>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/stitching.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#define PROG "matchnet-stitch"

// The progress line on stderr (--progress).
static mn_cli_progress progress;

static int report(const char* status, size_t images, size_t kept, const cv::Mat& pano)
{
    mn_cli_progress_clear(&progress); // the summary starts a line of its own on a shared terminal
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

// The Stitcher's features finder, counting the images it detects and
// describes for the progress line (it calls detect, then compute, once per
// image, through the base class's vector overloads).
class ProgressFeatures : public cv::Feature2D
{
public:
    ProgressFeatures(cv::Ptr<cv::Feature2D> inner, size_t images) : inner_(inner), images_(images)
    {
    }
    using cv::Feature2D::compute;
    using cv::Feature2D::detect;
    void detect(cv::InputArray image, std::vector<cv::KeyPoint>& kp, cv::InputArray mask) override
    {
        inner_->detect(image, kp, mask);
        mn_cli_progress_update(&progress, "detecting", ++detected_, images_, nullptr);
    }
    void compute(cv::InputArray image, std::vector<cv::KeyPoint>& kp, cv::OutputArray desc) override
    {
        inner_->compute(image, kp, desc);
        mn_cli_progress_update(&progress, "describing", ++described_, images_, nullptr);
    }
    void detectAndCompute(cv::InputArray image, cv::InputArray mask, std::vector<cv::KeyPoint>& kp,
                          cv::OutputArray desc, bool useProvidedKeypoints) override
    {
        inner_->detectAndCompute(image, mask, kp, desc, useProvidedKeypoints);
    }
    int descriptorSize() const override { return inner_->descriptorSize(); }
    int descriptorType() const override { return inner_->descriptorType(); }
    int defaultNorm() const override { return inner_->defaultNorm(); }
    bool empty() const override { return inner_->empty(); }
    cv::String getDefaultName() const override { return inner_->getDefaultName(); }

private:
    cv::Ptr<cv::Feature2D> inner_;
    size_t images_, detected_ = 0, described_ = 0;
};

// The Stitcher's pairwise matcher, counting the pairs it matches. The
// Stitcher matches pairs in parallel when the matcher is thread-safe, as
// MatchNetFeaturesMatcher is: the count and the line are under a lock.
class ProgressMatcher : public cv::detail::FeaturesMatcher
{
public:
    ProgressMatcher(cv::Ptr<cv::detail::FeaturesMatcher> inner, size_t pairs)
        : cv::detail::FeaturesMatcher(inner->isThreadSafe()), inner_(inner), pairs_(pairs)
    {
    }
    void collectGarbage() override { inner_->collectGarbage(); }

protected:
    void match(const cv::detail::ImageFeatures& features1, const cv::detail::ImageFeatures& features2,
               cv::detail::MatchesInfo& matchesInfo) override
    {
        (*inner_)(features1, features2, matchesInfo);
        std::lock_guard<std::mutex> lock(mutex_);
        mn_cli_progress_update(&progress, "matching pairs", ++matched_, pairs_, nullptr);
    }

private:
    cv::Ptr<cv::detail::FeaturesMatcher> inner_;
    std::mutex mutex_;
    size_t pairs_, matched_ = 0;
};

static const char synopsis[] =
    "usage: " PROG " [--mode panorama|scans] [--model PATH] [--threads N] [--progress WHEN]\n"
    "       -o pano.jpg IMAGE...\n"
    "\n"
    "Stitch the images into a panorama with cv::Stitcher, MatchNet descriptors on\n"
    "SIFT keypoints and metric-network matching; prints a JSON summary last.\n"
    "\n"
    "options:\n";

enum { MODE_PANORAMA, MODE_SCANS };

int main(int argc, char** argv)
{
    static const mn_cli_choice modes[] = {{"panorama", MODE_PANORAMA}, {"scans", MODE_SCANS}, {nullptr, 0}};
    int mode = MODE_PANORAMA, threads = 0, when = MN_CLI_PROGRESS_AUTO;
    const char *model = "", *out = nullptr;
    // C++17 has no designated initializers: every field in order (name,
    // letter, kind, dest, lo, hi, choices, placeholder, help).
    const mn_cli_option table[] = {
        {nullptr, 'o', MN_CLI_STRING, &out, 0, 0, nullptr, "PATH", "write the panorama to PATH (required)"},
        {"mode", 0, MN_CLI_CHOICE, &mode, 0, 0, modes, "NAME",
         "panorama (default; homographies between the images)\nor scans (rotation, scale and translation)"},
        {"model", 0, MN_CLI_STRING, &model, 0, 0, nullptr, "PATH",
         "model file (default: $MATCHNET_MODEL, else the\ninstalled model)"},
        {"threads", 0, MN_CLI_INT, &threads, 0, 64, nullptr, "N",
         "threads for describing and matching (default 0: cores,\nat most 8)"},
        {"progress", 0, MN_CLI_CHOICE, &when, 0, 0, mn_cli_progress_choices, "WHEN", MN_CLI_PROGRESS_HELP},
    };
    std::vector<const char*> paths((size_t)argc);
    const mn_cli_program prog = {PROG, synopsis, table, sizeof table / sizeof *table, argc};
    int npaths = 0, parsed = mn_cli_parse(&prog, argc, argv, paths.data(), &npaths);
    if (parsed)
        return parsed == 1 ? 0 : 2;
    paths.resize((size_t)npaths);
    if (!out || paths.empty()) {
        mn_cli_error(PROG, "-o PATH and at least one image are required (try --help)");
        return 2;
    }

    std::vector<cv::Mat> images;
    for (const char* p : paths) {
        // The header's size against the library's pixel limit first: OpenCV
        // would allocate whatever a (tiny) file's header asks for.
        int w = 0, h = 0;
        if (mn_image_probe(p, &w, &h) != MN_OK) {
            mn_cli_error(PROG, "%s", mn_last_error());
            return report("read_error", paths.size(), 0, cv::Mat());
        }
        images.push_back(cv::imread(p, cv::IMREAD_COLOR));
        if (images.back().empty()) {
            mn_cli_error(PROG, "cannot read %s", p);
            return report("read_error", paths.size(), 0, cv::Mat());
        }
    }

    const bool scans = mode == MODE_SCANS;
    cv::Mat pano;
    mn_cli_progress_init(&progress, PROG, when);
    try {
        cv::Ptr<cv::Stitcher> stitcher = cv::Stitcher::create(scans ? cv::Stitcher::SCANS : cv::Stitcher::PANORAMA);

        // Features: SIFT keypoints, MatchNet descriptors (at the Stitcher's
        // registration resolution, 0.6 Mpx by default).
        stitcher->setFeaturesFinder(cv::makePtr<ProgressFeatures>(
            matchnet::MatchNet::create(model, 2000, MN_SCALE_SIFT, false, threads), images.size()));

        // Pairwise matching: mutual best matches with probability >= 0.5, then
        // the geometry each mode's estimator expects: a homography for
        // panoramas, a rotation + scale + translation for scans.
        stitcher->setFeaturesMatcher(cv::makePtr<ProgressMatcher>(
            cv::makePtr<matchnet::MatchNetFeaturesMatcher>(model, false, 0.5f, 6, 6,
                                                           scans ? matchnet::MatchNetFeaturesMatcher::AFFINE_PARTIAL
                                                                 : matchnet::MatchNetFeaturesMatcher::HOMOGRAPHY,
                                                           threads),
            images.size() * (images.size() - 1) / 2));

        cv::Stitcher::Status status = stitcher->estimateTransform(images);
        if (status == cv::Stitcher::OK) {
            mn_cli_progress_update(&progress, "composing the panorama", 0, 0, nullptr);
            status = stitcher->composePanorama(pano);
        }
        size_t kept = stitcher->component().size();
        if (status != cv::Stitcher::OK)
            return report(statusName(status), images.size(), kept, cv::Mat());
        // Encoded in memory and written through a temporary file: a full
        // disk or a kill never leaves half a panorama (cv::imwrite would).
        const char* dot = std::strrchr(out, '.');
        std::vector<uchar> bytes;
        if (!dot || std::strchr(dot, '/') || !cv::haveImageWriter(out) || !cv::imencode(dot, pano, bytes)) {
            mn_cli_error(PROG, "cannot write %s: no image format for its extension", out);
            return report("write_error", images.size(), kept, pano);
        }
        if (int e = mn_out_file_write(out, bytes.data(), bytes.size())) {
            mn_cli_error(PROG, "cannot write %s: %s", out, std::strerror(e));
            return report("write_error", images.size(), kept, pano);
        }
        return report("ok", images.size(), kept, pano);
    } catch (const cv::Exception& e) {
        // libmatchnet's failures (e.g. a model that does not load) arrive here.
        std::string what = e.what(); // OpenCV's message ends with a newline: one line here
        while (!what.empty() && what.back() == '\n')
            what.pop_back();
        mn_cli_error(PROG, "%s", what.c_str());
        return report("exception", images.size(), 0, cv::Mat());
    }
}
