// matchnet-eval-patches - error at 95% recall on a patch-pair data set in
// the UBC / Brown layout (as in the MatchNet paper), for the metric
// network's score, L2 distance between MatchNet descriptors, and OpenCV SIFT
// and RootSIFT descriptors computed on the same patches.
//
//   matchnet-eval-patches --dataset DIR [--pairs FILE] [--model PATH] [--half] [--progress WHEN]
//
// --half rounds the MatchNet descriptors to float16 before scoring (what
// matchnet-colmap --store keeps).
// Without --model: the library's default model (mn_model_load_default).
// FPR95: false positive rate at the threshold that accepts 95% of the
// matching pairs. FDR95: FP / (TP + FP) there (the variant the original
// release's evaluation printed). Reported overall and, when the set has
// negative_kinds.txt (sets made by matchnet-patchset), per kind of negative.
// Last line: JSON with fractions. On a terminal, a progress line on stderr
// follows the patches described (--progress auto|always|never, apps/cli.h).
//
// SIFT on a 64x64 patch: one keypoint at the centre (31.5, 31.5), angle 0
// (the patch is already oriented), size 64 / MN_SCALE_SIFT = 9.48 px, so the
// descriptor covers the same image region SIFT would describe around the
// original keypoint (its 4x4 grid of 3-sigma bins spans 6 x size).
#include "brown.h"
#include "cli.h"
#include "half.h"
#include "matchnet.h"

#include <opencv2/core.hpp>
#include <opencv2/features2d.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#define PROG "matchnet-eval-patches"

namespace {

/* Patches per mn_describe_u8() call, for the progress line: a multiple of
 * the tower's block of 16, so that every descriptor has the bits one call
 * for all patches would give (matchnet.h). */
constexpr size_t kDescribeBlock = 4096;

struct Rates {
    double fpr, fdr;
};

// Higher score = more likely a match.
Rates at95(const std::vector<double> &score, const std::vector<int> &label, const std::vector<char> &use)
{
    std::vector<double> pos;
    for (size_t i = 0; i < score.size(); i++)
        if (use[i] && label[i])
            pos.push_back(score[i]);
    size_t nneg = 0;
    for (size_t i = 0; i < score.size(); i++)
        nneg += use[i] && !label[i];
    if (pos.empty() || nneg == 0)
        return {NAN, NAN};
    std::sort(pos.begin(), pos.end(), std::greater<double>());
    double t = pos[(size_t)std::ceil(0.95 * pos.size()) - 1];
    size_t fp = 0, tp = 0;
    for (size_t i = 0; i < score.size(); i++)
        if (use[i] && score[i] >= t)
            (label[i] ? tp : fp)++;
    return {(double)fp / nneg, (double)fp / (double)(tp + fp)};
}

cv::Mat sift_on_patches(const brown_set &s, const std::vector<uint32_t> &ids, mn_cli_progress &progress)
{
    cv::Ptr<cv::SIFT> sift = cv::SIFT::create();
    cv::Mat out((int)ids.size(), 128, CV_32F, cv::Scalar(0));
    for (size_t k = 0; k < ids.size(); k++) {
        if (k % 256 == 0)
            mn_cli_progress_update(&progress, "SIFT on patches", k, ids.size(), nullptr);
        cv::Mat patch(BROWN_PATCH, BROWN_PATCH, CV_8U, s.patches + (size_t)ids[k] * BROWN_PATCH * BROWN_PATCH);
        std::vector<cv::KeyPoint> kp{cv::KeyPoint(31.5f, 31.5f, 64.0f / MN_SCALE_SIFT, 0.0f)};
        cv::Mat d;
        sift->compute(patch, kp, d);
        if (d.rows == 1)
            d.copyTo(out.row((int)k));
    }
    return out;
}

std::string fmt(double v)
{
    char b[32];
    std::snprintf(b, sizeof b, std::isnan(v) ? "null" : "%.4f", v);
    return b;
}

} // namespace

int main(int argc, char **argv)
{
    std::string dataset, pairs_file, model_path;
    int when = MN_CLI_PROGRESS_AUTO;
    bool half = false;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--half")
            half = true;
        else if (i + 1 < argc && a == "--dataset")
            dataset = argv[++i];
        else if (i + 1 < argc && a == "--pairs")
            pairs_file = argv[++i];
        else if (i + 1 < argc && a == "--model")
            model_path = argv[++i];
        else if (i + 1 < argc && a == "--progress" && (when = mn_cli_progress_when(argv[++i])) >= 0)
            continue;
        else {
            dataset.clear();
            break;
        }
    }
    if (dataset.empty()) {
        std::fprintf(stderr, "usage: " PROG " --dataset DIR [--pairs FILE] [--model PATH] [--half]\n"
                             "       [--progress auto|always|never]\n");
        return 2;
    }
    mn_cli_progress progress;
    mn_cli_progress_init(&progress, PROG, when);
    mn_cli_progress_update(&progress, "reading the data set", 0, 0, nullptr);
    brown_set set;
    char err[512];
    if (brown_load(dataset.c_str(), pairs_file.empty() ? nullptr : pairs_file.c_str(), &set, err, sizeof err) != 0) {
        mn_cli_error(PROG, "%s", err);
        return 1;
    }
    if (set.npairs == 0) {
        mn_cli_error(PROG, "%s has no pair list (m50_*.txt)", dataset.c_str());
        brown_free(&set);
        return 1;
    }
    mn_model *model = nullptr;
    mn_session *sess = nullptr;
    mn_status st = model_path.empty() ? mn_model_load_default(&model) : mn_model_load_file(model_path.c_str(), &model);
    if (st != MN_OK || mn_session_create(model, nullptr, &sess) != MN_OK) {
        mn_cli_error(PROG, "%s", mn_last_error());
        brown_free(&set);
        mn_model_free(model);
        return 1;
    }
    // Describe each patch used by a pair once.
    std::vector<long> slot(set.n, -1);
    std::vector<uint32_t> ids;
    for (size_t i = 0; i < set.npairs; i++)
        for (uint32_t id : {set.pairs[i].a, set.pairs[i].b})
            if (slot[id] < 0) {
                slot[id] = (long)ids.size();
                ids.push_back(id);
            }
    const size_t D = mn_model_descriptor_dim(model), PP = BROWN_PATCH * BROWN_PATCH;
    std::vector<uint8_t> px(ids.size() * PP);
    for (size_t k = 0; k < ids.size(); k++)
        std::memcpy(&px[k * PP], set.patches + (size_t)ids[k] * PP, PP);
    std::vector<float> desc(ids.size() * D), prob(set.npairs);
    std::vector<mn_pair> pairs(set.npairs);
    for (size_t i = 0; i < set.npairs; i++)
        pairs[i] = mn_pair{(uint32_t)slot[set.pairs[i].a], (uint32_t)slot[set.pairs[i].b]};
    st = MN_OK;
    for (size_t k0 = 0; k0 < ids.size() && st == MN_OK; k0 += kDescribeBlock) {
        mn_cli_progress_update(&progress, "patches described", k0, ids.size(), nullptr);
        st = mn_describe_u8(sess, px.data() + k0 * PP, std::min(kDescribeBlock, ids.size() - k0), desc.data() + k0 * D);
    }
    if (half)
        std::transform(desc.begin(), desc.end(), desc.begin(), mn_eval::half_round);
    mn_cli_progress_update(&progress, "scoring pairs", 0, 0, nullptr);
    if (st != MN_OK || mn_metric_score_pairs(sess, desc.data(), ids.size(), desc.data(), ids.size(), pairs.data(),
                                             pairs.size(), prob.data()) != MN_OK) {
        mn_cli_error(PROG, "%s", mn_last_error());
        return 1;
    }
    cv::Mat sift = sift_on_patches(set, ids, progress), root = sift.clone();
    mn_cli_progress_clear(&progress);
    for (int r = 0; r < root.rows; r++) {
        float *p = root.ptr<float>(r);
        double l1 = 0;
        for (int c = 0; c < 128; c++)
            l1 += std::fabs(p[c]);
        for (int c = 0; c < 128; c++)
            p[c] = (float)std::sqrt(std::fabs(p[c]) / (l1 > 0 ? l1 : 1.0));
    }
    const char *names[4] = {"metric", "l2", "sift", "rootsift"};
    std::vector<std::vector<double>> score(4, std::vector<double>(set.npairs));
    std::vector<int> label(set.npairs);
    for (size_t i = 0; i < set.npairs; i++) {
        uint32_t a = pairs[i].a, b = pairs[i].b;
        label[i] = set.pairs[i].pa == set.pairs[i].pb;
        score[0][i] = prob[i];
        double l2 = 0;
        for (size_t k = 0; k < D; k++) {
            double d = desc[a * D + k] - desc[b * D + k];
            l2 += d * d;
        }
        score[1][i] = -std::sqrt(l2);
        score[2][i] = -cv::norm(sift.row((int)a), sift.row((int)b), cv::NORM_L2);
        score[3][i] = -cv::norm(root.row((int)a), root.row((int)b), cv::NORM_L2);
    }
    // Overall and per negative kind.
    const char *kind_names[] = {"random", "spatial", "appearance"};
    std::vector<char> all(set.npairs, 1);
    bool has_kinds = false;
    for (size_t i = 0; i < set.npairs; i++)
        has_kinds |= set.pairs[i].kind >= BROWN_RANDOM && set.pairs[i].kind <= BROWN_APPEARANCE;
    size_t npos = 0;
    for (int l : label)
        npos += l;
    std::printf("%s: %zu pairs (%zu matching), model %s (%zu-D%s)\n", dataset.c_str(), set.npairs, npos,
                mn_model_name(model), D, half ? ", rounded to float16" : "");
    std::printf("%-22s %10s %10s %10s %10s\n", "error at 95% recall", "metric", "l2", "sift", "rootsift");
    Rates overall[4];
    for (int m = 0; m < 4; m++)
        overall[m] = at95(score[m], label, all);
    std::printf("%-22s", "FPR95 all");
    for (auto &r : overall)
        std::printf(" %10.4f", r.fpr);
    std::printf("\n%-22s", "FDR95 all");
    for (auto &r : overall)
        std::printf(" %10.4f", r.fdr);
    std::printf("\n");
    std::string by_kind;
    if (has_kinds) {
        for (int k = 0; k < 3; k++) {
            std::vector<char> use(set.npairs);
            for (size_t i = 0; i < set.npairs; i++)
                use[i] = label[i] || set.pairs[i].kind == k + 1;
            std::printf("FPR95 %-16s", kind_names[k]);
            by_kind += std::string(k ? ", " : "") + "\"" + kind_names[k] + "\": {";
            for (int m = 0; m < 4; m++) {
                Rates r = at95(score[m], label, use);
                std::printf(" %10.4f", r.fpr);
                by_kind += std::string(m ? ", " : "") + "\"" + names[m] + "\": " + fmt(r.fpr);
            }
            by_kind += "}";
            std::printf("\n");
        }
    }
    std::string json = "{\"pairs\": " + std::to_string(set.npairs) + ", \"fpr95\": {";
    for (int m = 0; m < 4; m++)
        json += std::string(m ? ", " : "") + "\"" + names[m] + "\": " + fmt(overall[m].fpr);
    json += "}, \"fdr95\": {";
    for (int m = 0; m < 4; m++)
        json += std::string(m ? ", " : "") + "\"" + names[m] + "\": " + fmt(overall[m].fdr);
    json += "}, \"fpr95_by_negative\": {" + by_kind + "}}";
    std::printf("%s\n", json.c_str());
    mn_session_free(sess);
    mn_model_free(model);
    brown_free(&set);
    return 0;
}
