// matchnet-eval-matching - image-level matching on homography sequences:
// MatchNet against OpenCV SIFT + ratio test on the same SIFT keypoints.
//
//   matchnet-eval-matching --homography-dir DIR [--model PATH] [--max-keypoints N]
//                          [--threads N] [--variant NAME:key=value,...]... [--progress WHEN]
//
// DIR holds sequences in the Oxford layout (img1..img6, H1to2p..H1to6p
// mapping img1 to imgN), or is one such sequence. For every pair (1, k):
// OpenCV SIFT detects up to N keypoints (default 2000) in each image; those
// keypoints are described by SIFT and by MatchNet (mn_describe_keypoints,
// MN_SCALE_SIFT). SIFT matches by nearest neighbour with Lowe's ratio test
// 0.8; MatchNet by mn_match() with each variant's parameters (default
// variants: "default" = mn_match_params_default(), "metric" =
// mn_match_params_preset(MN_MATCH_METRIC)). Keys: method=metric|l2 (that
// method's preset; put it first), k=N, p=MIN_PROBABILITY, ratio=R, mutual=0|1,
// half=1 (the descriptors rounded to float16 first, as matchnet-colmap
// --store keeps them), affine=0|1|gradient|keep (affine-normalised patches:
// mn_affine_shape_estimate with that orientation, 1 = gradient, then
// mn_describe_keypoints_affine; not with half).
//
// Per pair and method: matches, correct matches (the ground-truth homography
// maps the first keypoint within 3 px of the second), precision, and the
// mean corner error of the homography that RANSAC (cv::findHomography, 3 px)
// fits to the matches (inf when fewer than 4 matches or no fit). Summary:
// mean correct, mean precision, share of pairs with corner error <= 3/5/10 px,
// and the matching time per pair.
//
// Fair comparison (eval/sweep.h). Methods differ in how many matches they
// keep at their default thresholds, and a method with higher precision
// would find more at a looser one; so each method's threshold is also swept
// over the same pairs: SIFT's ratio, the ratio of the MatchNet L2 variants
// (the match kept when best / second-best L2 distance <= t; their other
// settings as given) and the probability of the metric variants (kept when
// 1 - p <= t; their ratio test on 1 - p, off in the preset, as given). "corr@P" is the mean number of correct
// matches per pair at the loosest threshold whose precision, pooled over
// all pairs, is still SIFT's at ratio 0.8 (P). "ceiling" is the mean, per
// pair, of the largest one-to-one pairing of the two images' keypoints
// within 3 px under the true homography: what a perfect descriptor on these
// keypoints could reach. Then the curves: each method's correct matches per
// pair at pooled precisions 0.7 .. 0.98 (the same sweep). Last line: JSON.
// On a terminal, a progress line on stderr counts the pairs (--progress
// auto|always|never, apps/cli.h).
#include "cli.h"
#include "matchnet.h"
#include "half.h"
#include "sweep.h"

#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <opencv2/features2d.hpp>
#include <opencv2/imgcodecs.hpp>

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Variant {
    std::string name;
    bool sift = false; // SIFT descriptors + ratio test (the peer)
    mn_match_params p = mn_match_params_default();
    bool half = false; // descriptors rounded to float16
    int affine = -1;   // -1: similarity patches; else affine-normalised ones with this mn_affine_orientation
};

struct PairResult {
    int matches = 0, correct = 0;
    double precision = 0, corner_error = INFINITY, ms = 0;
    std::vector<mn_eval::Scored> sweep; // the tentative matches with the threshold relaxed
};

#define PROG "matchnet-eval-matching"

[[noreturn]] void die(const std::string &msg)
{
    mn_cli_error(PROG, "%s", msg.c_str());
    std::exit(1);
}

bool is_dir(const std::string &p)
{
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string &p)
{
    return std::ifstream(p).good();
}

std::vector<std::string> sequences(const std::string &dir)
{
    if (exists(dir + "/H1to2p"))
        return {dir};
    std::vector<std::string> out;
    if (DIR *d = opendir(dir.c_str())) {
        while (dirent *e = readdir(d)) {
            std::string n = e->d_name;
            if (n[0] != '.' && is_dir(dir + "/" + n) && exists(dir + "/" + n + "/H1to2p"))
                out.push_back(dir + "/" + n);
        }
        closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string image_path(const std::string &seq, int k)
{
    for (const char *ext : {".png", ".ppm", ".pgm", ".jpg"}) {
        std::string p = seq + "/img" + std::to_string(k) + ext;
        if (exists(p))
            return p;
    }
    return "";
}

cv::Matx33d read_h(const std::string &path)
{
    std::ifstream f(path);
    cv::Matx33d h;
    for (int i = 0; i < 9; i++)
        if (!(f >> h.val[i]))
            die("cannot read homography " + path);
    return h;
}

cv::Point2d apply(const cv::Matx33d &h, cv::Point2d p)
{
    cv::Vec3d v = h * cv::Vec3d(p.x, p.y, 1.0);
    return {v[0] / v[2], v[1] / v[2]};
}

Variant parse_variant(const std::string &spec)
{
    Variant v;
    size_t colon = spec.find(':');
    v.name = spec.substr(0, colon);
    if (colon == std::string::npos)
        return v;
    std::string rest = spec.substr(colon + 1);
    size_t pos = 0;
    while (pos < rest.size()) {
        size_t comma = rest.find(',', pos);
        std::string kv = rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        pos = comma == std::string::npos ? rest.size() : comma + 1;
        size_t eq = kv.find('=');
        if (eq == std::string::npos)
            die("variant " + spec + ": expected key=value, got " + kv);
        std::string k = kv.substr(0, eq), val = kv.substr(eq + 1);
        if (k == "method") /* the method's preset; keys after it adjust it */
            v.p = mn_match_params_preset(val == "l2" ? MN_MATCH_L2 : MN_MATCH_METRIC);
        else if (k == "k")
            v.p.k = std::atoi(val.c_str());
        else if (k == "p")
            v.p.min_probability = (float)std::atof(val.c_str());
        else if (k == "ratio")
            v.p.ratio = (float)std::atof(val.c_str());
        else if (k == "mutual")
            v.p.mutual = std::atoi(val.c_str());
        else if (k == "half")
            v.half = std::atoi(val.c_str()) != 0;
        else if (k == "affine") {
            if (val == "0")
                v.affine = -1;
            else if (val == "1" || val == "gradient")
                v.affine = MN_AFFINE_ORIENT_GRADIENT;
            else if (val == "keep")
                v.affine = MN_AFFINE_ORIENT_KEEP;
            else
                die("variant " + spec + ": affine=" + val + ", expected 0, 1 (gradient) or keep");
        } else
            die("variant " + spec + ": unknown key " + k);
    }
    if (v.half && v.affine >= 0)
        die("variant " + spec + ": half=1 applies to similarity patches only, not with affine");
    return v;
}

struct Image {
    cv::Mat gray;
    std::vector<cv::KeyPoint> kps;
    cv::Mat sift;             // SIFT descriptors
    std::vector<float> mdesc;   // MatchNet descriptors
    std::vector<float> mdesc16; // the same rounded to float16 (half=1)
    std::vector<float> adesc[2]; // of affine-normalised patches, by mn_affine_orientation (affine=...)
};

} // namespace

int main(int argc, char **argv)
{
    std::string dir, model_path;
    int max_kp = 2000, threads = 0, when = MN_CLI_PROGRESS_AUTO;
    std::vector<Variant> variants;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc)
                die("option " + a + " needs a value");
            return argv[++i];
        };
        if (a == "--homography-dir")
            dir = next();
        else if (a == "--model")
            model_path = next();
        else if (a == "--max-keypoints")
            max_kp = std::atoi(next().c_str());
        else if (a == "--threads")
            threads = std::atoi(next().c_str());
        else if (a == "--variant")
            variants.push_back(parse_variant(next()));
        else if (a == "--progress") {
            if ((when = mn_cli_progress_when(next().c_str())) < 0)
                die("--progress: expected auto, always or never");
        } else if (a == "-h" || a == "--help") {
            std::printf("usage: matchnet-eval-matching --homography-dir DIR [--model PATH] [--max-keypoints N]\n"
                        "       [--threads N]\n"
                        "       [--variant NAME:method=metric|l2,k=N,p=P,ratio=R,mutual=0|1,half=0|1,\n"
                        "                  affine=0|gradient|keep]...\n"
                        "       [--progress auto|always|never]\n");
            return 0;
        } else
            die("unknown option " + a);
    }
    if (dir.empty())
        die("--homography-dir is required");
    if (variants.empty()) {
        variants.push_back(parse_variant("default"));
        variants.push_back(parse_variant("metric:method=metric"));
    }
    Variant sift;
    sift.name = "sift";
    sift.sift = true;
    variants.insert(variants.begin(), sift);

    mn_model *model = nullptr;
    mn_status st = model_path.empty() ? mn_model_load_default(&model) : mn_model_load_file(model_path.c_str(), &model);
    if (st != MN_OK)
        die(mn_last_error());
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = threads;
    mn_session *session = nullptr;
    if (mn_session_create(model, &sp, &session) != MN_OK)
        die(mn_last_error());
    const size_t dim = mn_model_descriptor_dim(model);
    cv::Ptr<cv::SIFT> detector = cv::SIFT::create(max_kp);

    auto load = [&](const std::string &path) {
        Image im;
        im.gray = cv::imread(path, cv::IMREAD_GRAYSCALE);
        if (im.gray.empty())
            die("cannot read " + path);
        detector->detect(im.gray, im.kps);
        cv::KeyPointsFilter::retainBest(im.kps, max_kp);
        if ((int)im.kps.size() > max_kp)
            im.kps.resize(max_kp);
        detector->compute(im.gray, im.kps, im.sift);
        std::vector<mn_keypoint> k(im.kps.size());
        for (size_t r = 0; r < k.size(); r++)
            k[r] = {im.kps[r].pt.x, im.kps[r].pt.y, im.kps[r].size, im.kps[r].angle};
        im.mdesc.resize(k.size() * dim);
        if (mn_describe_keypoints(session, im.gray.data, im.gray.cols, im.gray.rows, im.gray.step, k.data(), k.size(),
                                  nullptr, im.mdesc.data()) != MN_OK)
            die(mn_last_error());
        im.mdesc16.resize(im.mdesc.size());
        std::transform(im.mdesc.begin(), im.mdesc.end(), im.mdesc16.begin(), mn_eval::half_round);
        for (int o : {MN_AFFINE_ORIENT_GRADIENT, MN_AFFINE_ORIENT_KEEP}) {
            if (std::none_of(variants.begin(), variants.end(), [o](const Variant &v) { return v.affine == o; }))
                continue;
            mn_affine_params ap = mn_affine_params_default();
            ap.orientation = (mn_affine_orientation)o;
            std::vector<mn_affine_keypoint> ak(k.size());
            im.adesc[o].resize(k.size() * dim);
            if (mn_affine_shape_estimate(session, im.gray.data, im.gray.cols, im.gray.rows, im.gray.step, k.data(),
                                         k.size(), &ap, ak.data(), nullptr) != MN_OK ||
                mn_describe_keypoints_affine(session, im.gray.data, im.gray.cols, im.gray.rows, im.gray.step,
                                             ak.data(), ak.size(), nullptr, im.adesc[o].data()) != MN_OK)
                die(mn_last_error());
        }
        return im;
    };

    std::vector<std::string> seqs = sequences(dir);
    if (seqs.empty())
        die("no sequences (img1.. + H1to2p..) under " + dir);
    size_t npairs = 0, done = 0;
    for (const std::string &seq : seqs)
        for (int k = 2; k <= 6; k++)
            npairs += !image_path(seq, k).empty() && exists(seq + "/H1to" + std::to_string(k) + "p");
    mn_cli_progress progress;
    mn_cli_progress_init(&progress, PROG, when);
    std::map<std::string, std::vector<PairResult>> results;
    std::vector<double> ceilings;
    std::printf("%-8s %-4s", "sequence", "pair");
    for (const Variant &v : variants)
        std::printf(" | %-10s %5s %5s %6s %7s", v.name.c_str(), "match", "corr", "prec", "err_px");
    std::printf("\n");
    std::fflush(stdout);
    mn_cli_progress_update(&progress, "pairs", 0, npairs, nullptr);
    for (const std::string &seq : seqs) {
        std::string name = seq.substr(seq.find_last_of('/') + 1);
        Image a = load(image_path(seq, 1));
        for (int k = 2; k <= 6; k++) {
            std::string pb = image_path(seq, k);
            std::string hp = seq + "/H1to" + std::to_string(k) + "p";
            if (pb.empty() || !exists(hp))
                continue;
            Image b = load(pb);
            cv::Matx33d h = read_h(hp);
            {
                // The ceiling: keypoints of b bucketed in 3-px cells.
                std::map<std::pair<int, int>, std::vector<int>> grid;
                for (size_t j = 0; j < b.kps.size(); j++)
                    grid[{(int)std::floor(b.kps[j].pt.x / 3), (int)std::floor(b.kps[j].pt.y / 3)}].push_back((int)j);
                std::vector<std::vector<int>> adj(a.kps.size());
                for (size_t i = 0; i < a.kps.size(); i++) {
                    cv::Point2d hx = apply(h, a.kps[i].pt);
                    if (!std::isfinite(hx.x) || !std::isfinite(hx.y) || std::fabs(hx.x) > 1e6 || std::fabs(hx.y) > 1e6)
                        continue;
                    int gx = (int)std::floor(hx.x / 3), gy = (int)std::floor(hx.y / 3);
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dx = -1; dx <= 1; dx++) {
                            auto it = grid.find({gx + dx, gy + dy});
                            if (it != grid.end())
                                for (int j : it->second)
                                    if (std::hypot(hx.x - b.kps[(size_t)j].pt.x, hx.y - b.kps[(size_t)j].pt.y) <= 3.0)
                                        adj[i].push_back(j);
                        }
                }
                ceilings.push_back((double)mn_eval::max_one_to_one(adj, b.kps.size()));
            }
            // The row is printed whole: stdout and the progress line may share a terminal.
            char cell[128];
            std::snprintf(cell, sizeof cell, "%-8s 1-%-2d", name.c_str(), k);
            std::string row = cell;
            for (const Variant &v : variants) {
                auto descriptors = [&v](const Image &im) {
                    return v.affine >= 0 ? im.adesc[v.affine].data() : v.half ? im.mdesc16.data() : im.mdesc.data();
                };
                const float *da = descriptors(a), *db = descriptors(b);
                auto t0 = std::chrono::steady_clock::now();
                std::vector<std::pair<int, int>> m;
                std::vector<std::pair<std::pair<int, int>, double>> relaxed; // (match, score) for the sweep
                if (v.sift) {
                    cv::BFMatcher bf(cv::NORM_L2);
                    std::vector<std::vector<cv::DMatch>> knn;
                    bf.knnMatch(a.sift, b.sift, knn, 2);
                    for (auto &c : knn)
                        if (c.size() == 2) {
                            if (c[0].distance < 0.8f * c[1].distance)
                                m.push_back({c[0].queryIdx, c[0].trainIdx});
                            relaxed.push_back({{c[0].queryIdx, c[0].trainIdx},
                                               c[1].distance > 0 ? c[0].distance / c[1].distance : 1.0});
                        }
                } else {
                    std::vector<mn_dmatch> out(a.kps.size());
                    size_t n = 0;
                    if (mn_match(session, da, a.kps.size(), db, b.kps.size(), &v.p, out.data(),
                                 out.size(), &n) != MN_OK)
                        die(mn_last_error());
                    for (size_t r = 0; r < n; r++)
                        m.push_back({(int)out[r].query, (int)out[r].train});
                }
                double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
                if (!v.sift) {
                    // The same variant with its threshold relaxed (L2: ratio off;
                    // metric: min_probability 0, its ratio test as given), each
                    // match scored by what the threshold compares.
                    mn_match_params rp = v.p;
                    if (rp.method == MN_MATCH_METRIC)
                        rp.min_probability = 0.0f;
                    else
                        rp.ratio = 1.0f;
                    std::vector<mn_dmatch> out(a.kps.size());
                    size_t n = 0;
                    if (mn_match(session, da, a.kps.size(), db, b.kps.size(), &rp, out.data(),
                                 out.size(), &n) != MN_OK)
                        die(mn_last_error());
                    std::vector<uint32_t> idx(a.kps.size() * 2);
                    std::vector<float> dist(a.kps.size() * 2);
                    if (rp.method != MN_MATCH_METRIC &&
                        mn_match_knn(session, da, a.kps.size(), db, b.kps.size(), nullptr, 2,
                                     idx.data(), dist.data()) != MN_OK)
                        die(mn_last_error());
                    for (size_t r = 0; r < n; r++) {
                        double score;
                        if (rp.method == MN_MATCH_METRIC)
                            score = 1.0 - out[r].probability;
                        else {
                            float d2 = dist[out[r].query * 2 + 1];
                            score = std::isfinite(d2) && d2 > 0 ? out[r].distance / d2 : 1.0;
                        }
                        relaxed.push_back({{(int)out[r].query, (int)out[r].train}, score});
                    }
                }
                PairResult r;
                r.ms = ms;
                r.matches = (int)m.size();
                std::vector<cv::Point2f> p1, p2;
                for (auto &c : m) {
                    cv::Point2d x = a.kps[c.first].pt, y = b.kps[c.second].pt;
                    cv::Point2d hx = apply(h, x);
                    r.correct += std::hypot(hx.x - y.x, hx.y - y.y) <= 3.0;
                    p1.push_back(a.kps[c.first].pt);
                    p2.push_back(b.kps[c.second].pt);
                }
                r.precision = m.empty() ? 0 : (double)r.correct / m.size();
                for (auto &c : relaxed) {
                    cv::Point2d hx = apply(h, a.kps[c.first.first].pt), y = b.kps[c.first.second].pt;
                    r.sweep.push_back({c.second, std::hypot(hx.x - y.x, hx.y - y.y) <= 3.0});
                }
                if (m.size() >= 4) {
                    cv::Mat he = cv::findHomography(p1, p2, cv::RANSAC, 3.0);
                    if (!he.empty()) {
                        cv::Matx33d hm((double *)he.clone().ptr());
                        const double w = a.gray.cols - 1, hh = a.gray.rows - 1;
                        double err = 0;
                        for (cv::Point2d c : {cv::Point2d(0, 0), cv::Point2d(w, 0), cv::Point2d(w, hh), cv::Point2d(0, hh)}) {
                            cv::Point2d e = apply(hm, c), g = apply(h, c);
                            err += std::hypot(e.x - g.x, e.y - g.y) / 4;
                        }
                        r.corner_error = std::isfinite(err) ? err : INFINITY;
                    }
                }
                results[v.name].push_back(r);
                std::snprintf(cell, sizeof cell, " | %-10s %5d %5d %6.3f %7.2f", "", r.matches, r.correct,
                              r.precision, std::min(r.corner_error, 9999.0));
                row += cell;
            }
            mn_cli_progress_clear(&progress);
            std::printf("%s\n", row.c_str());
            std::fflush(stdout);
            mn_cli_progress_update(&progress, "pairs", ++done, npairs, nullptr);
        }
    }
    mn_cli_progress_clear(&progress);
    // SIFT's pooled precision at ratio 0.8: the target of every sweep.
    double target = 0;
    {
        size_t c = 0, n = 0;
        for (const PairResult &r : results["sift"]) {
            c += (size_t)r.correct;
            n += (size_t)r.matches;
        }
        target = n ? (double)c / (double)n : 0;
    }
    double ceiling = 0;
    for (double c : ceilings)
        ceiling += c / (double)ceilings.size();
    std::printf("\nceiling (one-to-one keypoint pairs within 3 px): %.1f per pair; sweep target: SIFT's pooled "
                "precision %.4f\n",
                ceiling, target);
    std::printf("%-24s %8s %8s %8s %8s %8s %8s %9s %8s %8s %8s\n", "method", "matches", "correct", "precis.",
                "H<=3px", "H<=5px", "H<=10px", "ms/pair", "corr@P", "thresh", "of ceil");
    char head[256];
    std::snprintf(head, sizeof head, "{\"pairs\": %zu, \"max_keypoints\": %d, \"ceiling\": %.2f, "
                                     "\"sift_pooled_precision\": %.4f, \"methods\": {",
                  results[variants[0].name].size(), max_kp, ceiling, target);
    std::string json = head;
    static const double curve_precisions[] = {0.7, 0.8, 0.85, 0.9, 0.95, 0.98};
    std::vector<std::string> curves;
    for (size_t vi = 0; vi < variants.size(); vi++) {
        const std::vector<PairResult> &rs = results[variants[vi].name];
        double n = (double)rs.size(), mm = 0, mc = 0, mp = 0, h3 = 0, h5 = 0, h10 = 0;
        std::vector<double> ms;
        for (const PairResult &r : rs) {
            mm += r.matches / n;
            mc += r.correct / n;
            mp += r.precision / n;
            h3 += (r.corner_error <= 3) / n;
            h5 += (r.corner_error <= 5) / n;
            h10 += (r.corner_error <= 10) / n;
            ms.push_back(r.ms);
        }
        std::sort(ms.begin(), ms.end());
        double med = ms.empty() ? 0 : ms[ms.size() / 2];
        std::vector<mn_eval::Scored> pooled;
        for (const PairResult &r : rs)
            pooled.insert(pooled.end(), r.sweep.begin(), r.sweep.end());
        mn_eval::AtPrecision at = mn_eval::best_at_precision(pooled, target);
        double cp = n > 0 ? (double)at.correct / n : 0;
        std::printf("%-24s %8.1f %8.1f %8.3f %8.2f %8.2f %8.2f %9.1f %8.1f %8.3f %8.3f\n", variants[vi].name.c_str(), mm,
                    mc, mp, h3, h5, h10, med, cp, at.threshold, ceiling > 0 ? cp / ceiling : 0);
        char buf[640];
        std::snprintf(buf, sizeof buf,
                      "%s\"%s\": {\"matches\": %.2f, \"correct\": %.2f, \"precision\": %.4f, \"h_within_3px\": %.3f, "
                      "\"h_within_5px\": %.3f, \"h_within_10px\": %.3f, \"match_ms_median\": %.2f, "
                      "\"correct_at_sift_precision\": %.2f, \"threshold_at_sift_precision\": %.4f, \"curve\": [",
                      vi ? ", " : "", variants[vi].name.c_str(), mm, mc, mp, h3, h5, h10, med, cp, at.threshold);
        json += buf;
        std::snprintf(buf, sizeof buf, "%-24s", variants[vi].name.c_str());
        std::string line = buf;
        for (size_t c = 0; c < sizeof curve_precisions / sizeof *curve_precisions; c++) {
            mn_eval::AtPrecision q = mn_eval::best_at_precision(pooled, curve_precisions[c]);
            double qc = n > 0 ? (double)q.correct / n : 0;
            std::snprintf(buf, sizeof buf, " %8.1f", qc);
            line += buf;
            std::snprintf(buf, sizeof buf, "%s[%.2f, %.2f, %.4f]", c ? ", " : "", curve_precisions[c], qc, q.threshold);
            json += buf;
        }
        curves.push_back(line);
        json += "]}";
    }
    json += "}}";
    // The trade each method offers: its correct matches at fixed precisions.
    std::printf("\ncorrect matches per pair at pooled precision (each method's threshold swept):\n%-24s", "method");
    for (double c : curve_precisions)
        std::printf(" %8.2f", c);
    std::printf("\n");
    for (const std::string &c : curves)
        std::printf("%s\n", c.c_str());
    std::printf("%s\n", json.c_str());
    mn_session_free(session);
    mn_model_free(model);
    return 0;
}
