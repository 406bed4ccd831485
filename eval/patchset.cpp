// matchnet-patchset - make patch-pair data sets in the UBC / Brown layout
// from images related by known homographies.
//
//   matchnet-patchset --homography-dir DIR --out OUTDIR [--pairs N] [--seed S]
//   matchnet-patchset --photos DIR --out OUTDIR [--views N] [--pairs N] [--seed S]
//                     [--every K --offset J]
//   matchnet-patchset --colmap SPARSE_TXT_DIR --images IMAGES_DIR [--colmap ... --images ...]
//                     --out OUTDIR [--pairs N] [--max-keypoints N] [--seed S]
//   (each also takes --progress auto|always|never: on a terminal, a progress
//   line on stderr counts the view pairs or images; apps/cli.h)
//
// --colmap: real multi-view scenes, the way the UBC/Brown set was made. Each
// SPARSE_TXT_DIR is a COLMAP text model (cameras.txt, images.txt,
// points3D.txt; python/multiview_reconstruct.py makes them) of the images in
// the IMAGES_DIR after it; several pairs make one set. In each image the
// inference detector runs (mn_image_load, mn_keypoints_detect SIFT, up to
// --max-keypoints, default 8000 as matchnet-colmap) and each keypoint is
// associated with the nearest COLMAP observation of a 3D point within 2 px.
// These keypoints, not COLMAP's own, are cut: COLMAP's come from another
// SIFT implementation with its own positions and scales, which the model
// would never see at inference. A 3D point seen by such keypoints in 2+
// images is a track; sizes must agree within 25% after the expected scale
// change between views, estimated as the ratio of focal length / depth of
// the point (so size * depth / focal is compared; foreshortening is
// ignored, and orientations are not checked: no reference is known for
// them); the largest set of views agreeing pairwise is kept. All its
// patches share one point id in info.txt; positives pair consecutive views
// (by image id). Negatives, in the second view of each positive: random
// (as below), spatial (a keypoint 4-32 px away), appearance (of keypoints
// of other 3D points of that image, the highest NCC, 3+ px away). --pairs
// defaults to everything the scenes give.
//
// --homography-dir: DIR holds sequences in the Oxford layout (img1..img6 with
// H1to2p..H1to6p mapping img1 to imgN), or is one such sequence; each
// (img1, imgN) is a view pair.
// --photos: synthetic view pairs from the photographs under DIR (searched
// recursively): each photo is warped by
// random homographies (viewpoint, scale 0.4-2.5x, any rotation) with
// independent photometric changes (brightness, contrast, gamma and tone
// curves, illumination gradients, blur, noise, JPEG) for each view.
// --positives-only skips the negatives (training sets need only
// correspondences: their negatives are mined during training).
// --every K --offset J uses only photos whose index i (sorted by path) has
// i % K == J, and --every K --offset -1 those with i % K != 0: disjoint
// validation (offset 0) and training (offset -1) photos.
//
// In each view pair, SIFT (OpenCV, DoG) detects keypoints in each view
// independently; a keypoint pair is a correspondence when the homography
// maps one onto the other within 2 px, with sizes within 25% and
// orientations within 20 degrees (so detector noise is part of the data, as
// in the UBC set). Patches are cut by libmatchnet's mn_extract_patches with
// MN_SCALE_SIFT, exactly as at inference time; with --affine (every mode) at
// each keypoint's estimated ellipse, as --affine cuts them at inference
// (the correspondences are those of the keypoints, less the pairs whose two
// ellipses disagree with the homography: frames_agree).
//
// Pairs: half matching; the non-matching half in three equal kinds, none
// chosen with a descriptor: random (another point), spatial (a keypoint 4-32
// px from the true position in the second view), appearance (the patch of
// the second view with the highest normalised cross-correlation, excluding
// keypoints within 3 px of the true position). Writes patchesNNNN.bmp,
// info.txt, m50_N_N_0.txt and negative_kinds.txt.
#include "brown.h"
#include "cli.h"
#include "matchnet.h"
#include "matchnet/opencv.h"
#include "test_point.h"

#include <opencv2/core.hpp>
#include <opencv2/features2d.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <random>
#include <string>
#include <csignal>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#define PROG "matchnet-patchset"

namespace {

// cv::imread with the library's pixel limit checked from the header first
// (mn_image_probe): OpenCV allocates whatever a file's header asks for.
// An empty Mat when the file cannot be read; the reason goes to stderr.
cv::Mat imread_limited(const std::string &path, int flags)
{
    int w = 0, h = 0;
    if (mn_image_probe(path.c_str(), &w, &h) != MN_OK) {
        mn_cli_error(PROG, "%s", mn_last_error());
        return cv::Mat();
    }
    return cv::imread(path, flags);
}

const int P = 64;
const size_t PP = (size_t)P * P;

// The progress line on stderr (--progress).
mn_cli_progress progress;

struct ViewPair {
    cv::Mat a, b;  // 8-bit grey
    cv::Matx33d h; // a -> b
};

struct Side {
    std::vector<mn_keypoint> kps;
    std::vector<uint8_t> patches;           // kps.size() * PP
    std::vector<mn_affine_keypoint> frames; // with --affine: each keypoint's estimated ellipse
};

struct Corr {
    int ia, ib;
};

// Data gathered from all view pairs.
struct Pool {
    std::vector<uint8_t> patches;
    std::vector<uint32_t> point;
    uint32_t next_point = 0;
    std::vector<brown_pair> positives;
    std::vector<brown_pair> spatial, appearance;
    size_t frame_rejects = 0; // --affine: keypoint pairs whose frames disagree (frames_agree)
    size_t add(const uint8_t *p, uint32_t pid)
    {
        patches.insert(patches.end(), p, p + PP);
        point.push_back(pid);
        return point.size() - 1;
    }
};

// The progress line's extra: "12345 correspondences".
std::string correspondences(const Pool &pool)
{
    return std::to_string(pool.positives.size()) + " correspondences";
}

// --affine: patches cut at each keypoint's estimated ellipse
// (mn_affine_shape_estimate, default parameters, then
// mn_extract_patches_affine), as matchnet-match --affine and
// matchnet-colmap --affine cut them at inference; else similarity frames.
bool g_affine = false;
// --affine-orientation keep|gradient (mn_affine_params.orientation): how the
// ellipses are turned; the library's default, gradient, unless asked.
mn_affine_orientation g_affine_orientation = MN_AFFINE_ORIENT_GRADIENT;

// The patches (PP bytes each) of keypoints k of a grey image; with
// --affine, frames (if not null) gets the ellipses they were cut at.
mn_status cut_patches(const cv::Mat &grey, const std::vector<mn_keypoint> &k, uint8_t *out,
                      std::vector<mn_affine_keypoint> *frames = nullptr)
{
    if (k.empty())
        return MN_OK;
    if (!g_affine)
        return mn_extract_patches(grey.data, grey.cols, grey.rows, grey.step, k.data(), k.size(), nullptr, out);
    std::vector<mn_affine_keypoint> local, &a = frames ? *frames : local;
    a.resize(k.size());
    mn_affine_params params = mn_affine_params_default();
    params.orientation = g_affine_orientation;
    mn_status st = mn_affine_shape_estimate(nullptr, grey.data, grey.cols, grey.rows, grey.step, k.data(), k.size(),
                                            &params, a.data(), nullptr);
    return st != MN_OK ? st
                       : mn_extract_patches_affine(grey.data, grey.cols, grey.rows, grey.step, a.data(), a.size(),
                                                   nullptr, out);
}

bool is_dir(const std::string &p)
{
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> list_dir(const std::string &dir);

// A folder of plain files (a patch set), removed; false if anything stays.
bool remove_flat_dir(const std::string &dir)
{
    for (const std::string &name : list_dir(dir))
        std::remove((dir + "/" + name).c_str());
    return rmdir(dir.c_str()) == 0;
}

// OUT.tmp.PID and OUT.old.PID folders that killed runs left beside OUT
// (their process is gone) are removed before a new run starts - except an
// OUT.old.PID where OUT is missing: a run killed between its two renames
// (where the file system cannot exchange them) had moved the older set
// there, and it is put back.
void remove_stale_sets(const std::string &out)
{
    const size_t slash = out.find_last_of('/');
    const std::string parent = slash == std::string::npos ? "./" : out.substr(0, slash + 1);
    const std::string base = slash == std::string::npos ? out : out.substr(slash + 1);
    for (const char *kind : {".old.", ".tmp."}) {
        const std::string prefix = base + kind;
        for (const std::string &name : list_dir(parent)) {
            if (name.compare(0, prefix.size(), prefix) != 0 || name.size() == prefix.size() ||
                name.find_first_not_of("0123456789", prefix.size()) != std::string::npos)
                continue;
            const long pid = std::atol(name.c_str() + prefix.size());
            if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                continue;
            if (kind[1] == 'o' && !is_dir(out) && rename((parent + name).c_str(), out.c_str()) == 0)
                mn_cli_error(PROG, "put back %s as %s: an interrupted run had moved it aside",
                             (parent + name).c_str(), out.c_str());
            else if (remove_flat_dir(parent + name))
                mn_cli_error(PROG, "removed %s%s, left by an interrupted run", parent.c_str(), name.c_str());
        }
    }
}

std::vector<std::string> list_dir(const std::string &dir)
{
    std::vector<std::string> out;
    if (DIR *d = opendir(dir.c_str())) {
        while (dirent *e = readdir(d))
            if (e->d_name[0] != '.')
                out.push_back(e->d_name);
        closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

cv::Point2d apply(const cv::Matx33d &h, double x, double y)
{
    cv::Vec3d v = h * cv::Vec3d(x, y, 1.0);
    return cv::Point2d(v[0] / v[2], v[1] / v[2]);
}

// The Jacobian of h at (x, y), by forward differences over half a pixel:
// columns the images of the x and y steps.
cv::Matx22d jacobian(const cv::Matx33d &h, double x, double y)
{
    const double e = 0.5;
    cv::Point2d c = apply(h, x, y), dx = (apply(h, x + e, y) - c) / e, dy = (apply(h, x, y + e) - c) / e;
    return cv::Matx22d(dx.x, dy.x, dx.y, dy.y);
}

// Local scale and rotation of a map with Jacobian j, for a keypoint angle.
void local_affine(const cv::Matx22d &j, double angle_deg, double *scale, double *angle_out)
{
    *scale = std::sqrt(std::fabs(cv::determinant(j)));
    double a = angle_deg * CV_PI / 180.0;
    double vx = j(0, 0) * std::cos(a) + j(0, 1) * std::sin(a), vy = j(1, 0) * std::cos(a) + j(1, 1) * std::sin(a);
    *angle_out = std::atan2(vy, vx) * 180.0 / CV_PI;
}

// With --affine, a keypoint pair is a correspondence only where the two
// estimated frames agree with the homography beyond what the similarity
// tests above check: M = Ab^-1 J Aa (J the homography's Jacobian at the
// keypoint; the identity for frames that agree) must turn by at most 20
// degrees (as the SIFT angles may) and stretch one axis against the other
// by at most 1.3 (sizes are already within 25%). Otherwise the two patches
// show the point differently - an ellipse that one view's iteration did
// not reach, or a gradient orientation that turned to another peak - and
// the pair would teach the model label noise.
const double AFFINE_MAX_TURN = 20.0, AFFINE_MAX_STRETCH = 1.3;

bool frames_agree(const cv::Matx22d &j, const mn_affine_keypoint &a, const mn_affine_keypoint &b)
{
    cv::Matx22d fa(a.a11, a.a12, a.a21, a.a22), fb(b.a11, b.a12, b.a21, b.a22);
    if (!(std::fabs(cv::determinant(fb)) > 0))
        return false;
    cv::Matx22d m = fb.inv() * j * fa;
    // The polar decomposition of a 2x2 matrix m = R P: R's angle is that of
    // (m11 + m22, m21 - m12); P's singular values those of m.
    double turn = std::atan2(m(1, 0) - m(0, 1), m(0, 0) + m(1, 1)) * 180.0 / CV_PI;
    cv::Vec2d sv;
    cv::SVD::compute(m, sv, cv::SVD::NO_UV);
    return std::fabs(turn) <= AFFINE_MAX_TURN && sv[1] > 0 && sv[0] <= AFFINE_MAX_STRETCH * sv[1];
}

double angle_diff(double a, double b)
{
    double d = std::fmod(std::fabs(a - b), 360.0);
    return d > 180.0 ? 360.0 - d : d;
}

Side describe_side(const cv::Mat &img, cv::Ptr<cv::SIFT> &sift)
{
    std::vector<cv::KeyPoint> kp;
    sift->detect(img, kp);
    Side s;
    for (const auto &k : kp)
        if (k.size > 0)
            s.kps.push_back(mn_keypoint{k.pt.x, k.pt.y, k.size, k.angle});
    s.patches.resize(s.kps.size() * PP);
    if (cut_patches(img, s.kps, s.patches.data(), &s.frames) != MN_OK) {
        mn_cli_error(PROG, "%s", mn_last_error());
        std::exit(1);
    }
    return s;
}

// Zero-mean unit-norm patch vectors, one row each.
cv::Mat normalized_rows(const Side &s)
{
    cv::Mat m((int)s.kps.size(), (int)PP, CV_32F);
    for (int i = 0; i < m.rows; i++) {
        const uint8_t *p = &s.patches[(size_t)i * PP];
        float *r = m.ptr<float>(i);
        double mean = 0;
        for (size_t k = 0; k < PP; k++)
            mean += p[k];
        mean /= PP;
        double ss = 0;
        for (size_t k = 0; k < PP; k++) {
            r[k] = (float)(p[k] - mean);
            ss += (double)r[k] * r[k];
        }
        float inv = ss > 1e-6 ? (float)(1.0 / std::sqrt(ss)) : 0.f;
        for (size_t k = 0; k < PP; k++)
            r[k] *= inv;
    }
    return m;
}

void process(const ViewPair &vp, cv::Ptr<cv::SIFT> &sift, Pool &pool, std::mt19937 &rng, bool negatives,
             size_t max_pos)
{
    Side A = describe_side(vp.a, sift), B = describe_side(vp.b, sift);
    if (A.kps.empty() || B.kps.empty())
        return;
    // Grid of B keypoints for radius queries.
    const double cell = 32.0;
    int gw = vp.b.cols / (int)cell + 1, gh = vp.b.rows / (int)cell + 1;
    std::vector<std::vector<int>> grid((size_t)gw * gh);
    for (int j = 0; j < (int)B.kps.size(); j++) {
        int gx = std::min(gw - 1, std::max(0, (int)(B.kps[j].x / cell)));
        int gy = std::min(gh - 1, std::max(0, (int)(B.kps[j].y / cell)));
        grid[(size_t)gy * gw + gx].push_back(j);
    }
    auto near = [&](cv::Point2d q, double r, std::vector<std::pair<double, int>> &out) {
        out.clear();
        int x0 = (int)std::floor((q.x - r) / cell), x1 = (int)std::floor((q.x + r) / cell);
        int y0 = (int)std::floor((q.y - r) / cell), y1 = (int)std::floor((q.y + r) / cell);
        for (int gy = std::max(0, y0); gy <= std::min(gh - 1, y1); gy++)
            for (int gx = std::max(0, x0); gx <= std::min(gw - 1, x1); gx++)
                for (int j : grid[(size_t)gy * gw + gx]) {
                    double d = std::hypot(B.kps[j].x - q.x, B.kps[j].y - q.y);
                    if (d <= r)
                        out.push_back({d, j});
                }
    };
    std::vector<Corr> corr;
    std::vector<int> used(B.kps.size(), 0);
    std::vector<cv::Point2d> proj(A.kps.size());
    std::vector<std::pair<double, int>> cand;
    for (int i = 0; i < (int)A.kps.size(); i++) {
        const mn_keypoint &a = A.kps[i];
        proj[i] = apply(vp.h, a.x, a.y);
        if (proj[i].x < 0 || proj[i].y < 0 || proj[i].x >= vp.b.cols || proj[i].y >= vp.b.rows)
            continue;
        double sc, ang;
        const cv::Matx22d j = jacobian(vp.h, a.x, a.y);
        local_affine(j, a.angle, &sc, &ang);
        near(proj[i], 2.0, cand);
        std::sort(cand.begin(), cand.end());
        for (auto &c : cand) {
            const mn_keypoint &b = B.kps[c.second];
            if (used[c.second] || std::fabs(std::log(b.size / (a.size * sc))) > std::log(1.25) ||
                angle_diff(b.angle, ang) > 20.0)
                continue;
            if (g_affine && !frames_agree(j, A.frames[(size_t)i], B.frames[(size_t)c.second])) {
                pool.frame_rejects++;
                continue;
            }
            used[c.second] = 1;
            corr.push_back({i, c.second});
            break;
        }
    }
    std::shuffle(corr.begin(), corr.end(), rng);
    if (corr.size() > max_pos)
        corr.resize(max_pos);
    if (corr.empty())
        return;
    // Patch ids in the pool for B keypoints added so far.
    std::vector<long> b_id(B.kps.size(), -1);
    std::vector<uint32_t> corr_point(corr.size());
    for (size_t k = 0; k < corr.size(); k++) {
        uint32_t pid = pool.next_point++;
        size_t ia = pool.add(&A.patches[(size_t)corr[k].ia * PP], pid);
        size_t ib = pool.add(&B.patches[(size_t)corr[k].ib * PP], pid);
        b_id[corr[k].ib] = (long)ib;
        corr_point[k] = pid;
        pool.positives.push_back(brown_pair{(uint32_t)ia, (uint32_t)ib, pid, pid, BROWN_POSITIVE});
    }
    if (!negatives)
        return;
    auto b_patch = [&](int j) -> std::pair<uint32_t, uint32_t> {
        if (b_id[j] < 0)
            b_id[j] = (long)pool.add(&B.patches[(size_t)j * PP], pool.next_point++);
        return {(uint32_t)b_id[j], pool.point[(size_t)b_id[j]]};
    };
    // Appearance: NCC of each corresponding A patch against every B patch.
    cv::Mat na = normalized_rows(A), nb = normalized_rows(B), sel((int)corr.size(), (int)PP, CV_32F), ncc;
    for (size_t k = 0; k < corr.size(); k++)
        na.row(corr[k].ia).copyTo(sel.row((int)k));
    cv::gemm(sel, nb, 1.0, cv::noArray(), 0.0, ncc, cv::GEMM_2_T);
    for (size_t k = 0; k < corr.size(); k++) {
        int ia = corr[k].ia;
        uint32_t a_id = (uint32_t)(pool.positives.size() - corr.size() + k);
        a_id = pool.positives[a_id].a;
        cv::Point2d q = proj[ia];
        // Spatial: keypoints 4-32 px from the true position.
        near(q, 32.0, cand);
        std::vector<int> sp;
        for (auto &c : cand)
            if (c.first >= 4.0)
                sp.push_back(c.second);
        if (!sp.empty()) {
            auto bp = b_patch(sp[rng() % sp.size()]);
            pool.spatial.push_back(brown_pair{a_id, bp.first, corr_point[k], bp.second, BROWN_SPATIAL});
        }
        const float *r = ncc.ptr<float>((int)k);
        int best = -1;
        for (int j = 0; j < (int)B.kps.size(); j++) {
            if (std::hypot(B.kps[j].x - q.x, B.kps[j].y - q.y) < 3.0)
                continue;
            if (best < 0 || r[j] > r[best])
                best = j;
        }
        if (best >= 0) {
            auto bp = b_patch(best);
            pool.appearance.push_back(brown_pair{a_id, bp.first, corr_point[k], bp.second, BROWN_APPEARANCE});
        }
    }
}

std::vector<ViewPair> oxford_pairs(const std::string &dir)
{
    std::vector<std::string> seqs;
    if (!list_dir(dir).empty() && is_dir(dir) && std::ifstream(dir + "/H1to2p").good())
        seqs.push_back(dir);
    else
        for (auto &n : list_dir(dir))
            if (std::ifstream(dir + "/" + n + "/H1to2p").good())
                seqs.push_back(dir + "/" + n);
    std::vector<ViewPair> out;
    auto find_img = [](const std::string &seq, int k) {
        for (const char *ext : {"png", "ppm", "pgm", "jpg"}) {
            std::string p = seq + "/img" + std::to_string(k) + "." + ext;
            if (std::ifstream(p).good())
                return p;
        }
        return std::string();
    };
    for (auto &seq : seqs) {
        cv::Mat a = imread_limited(find_img(seq, 1), cv::IMREAD_GRAYSCALE);
        if (a.empty()) {
            mn_cli_error(PROG, "cannot read %s/img1", seq.c_str());
            std::exit(1);
        }
        for (int k = 2; k <= 6; k++) {
            std::ifstream hf(seq + "/H1to" + std::to_string(k) + "p");
            cv::Matx33d h;
            for (int i = 0; i < 9; i++)
                hf >> h.val[i];
            cv::Mat b = imread_limited(find_img(seq, k), cv::IMREAD_GRAYSCALE);
            if (!hf || b.empty()) {
                mn_cli_error(PROG, "%s: missing img%d or H1to%dp", seq.c_str(), k, k);
                std::exit(1);
            }
            out.push_back(ViewPair{a, b, h});
        }
    }
    return out;
}

// ---- synthetic views ----

cv::Matx33d random_homography(std::mt19937 &rng, cv::Size in, cv::Size out, double scale, double persp)
{
    std::uniform_real_distribution<double> U(-1, 1);
    double th = CV_PI * U(rng);
    cv::Matx33d T1(1, 0, -in.width / 2.0, 0, 1, -in.height / 2.0, 0, 0, 1);
    cv::Matx33d R(std::cos(th) * scale, -std::sin(th) * scale, 0, std::sin(th) * scale, std::cos(th) * scale, 0, 0, 0, 1);
    // Viewpoint: foreshortening by a projective term, and anisotropic shear.
    double sh = 0.15 * U(rng), an = std::exp(0.15 * U(rng));
    cv::Matx33d A(an, sh, 0, 0, 1.0 / an, 0, persp * U(rng) / in.width, persp * U(rng) / in.height, 1);
    cv::Matx33d T2(1, 0, out.width / 2.0 + 0.1 * out.width * U(rng), 0, 1, out.height / 2.0 + 0.1 * out.height * U(rng),
                   0, 0, 1);
    return T2 * R * A * T1;
}

cv::Mat photometric(const cv::Mat &src, std::mt19937 &rng)
{
    std::uniform_real_distribution<double> U(0, 1);
    cv::Mat f;
    src.convertTo(f, CV_32F, 1.0 / 255);
    // Tone: gamma, contrast, brightness, and an S-curve.
    double gamma = std::exp(0.4 * (2 * U(rng) - 1)), contrast = 0.7 + 0.6 * U(rng), bright = 0.15 * (2 * U(rng) - 1);
    double s_curve = U(rng) < 0.3 ? 0.5 * U(rng) : 0.0;
    cv::pow(f, gamma, f);
    // Illumination gradient across the image.
    double gx = 0.5 * (2 * U(rng) - 1), gy = 0.5 * (2 * U(rng) - 1);
    for (int y = 0; y < f.rows; y++) {
        float *r = f.ptr<float>(y);
        for (int x = 0; x < f.cols; x++) {
            double v = r[x];
            if (s_curve > 0)
                v = v + s_curve * (v - 0.5) * (1 - std::fabs(2 * v - 1));
            double light = 1.0 + gx * (x / (double)f.cols - 0.5) + gy * (y / (double)f.rows - 0.5);
            r[x] = (float)((v - 0.5) * contrast + 0.5 + bright) * (float)light;
        }
    }
    if (U(rng) < 0.4) {
        double sigma = 0.3 + 1.5 * U(rng);
        cv::GaussianBlur(f, f, cv::Size(0, 0), sigma);
    }
    if (U(rng) < 0.5) {
        cv::Mat n(f.size(), CV_32F);
        cv::randn(n, 0, 0.005 + 0.025 * U(rng));
        f += n;
    }
    cv::Mat out;
    f.convertTo(out, CV_8U, 255);
    if (U(rng) < 0.4) {
        std::vector<uchar> buf;
        cv::imencode(".jpg", out, buf, {cv::IMWRITE_JPEG_QUALITY, 30 + (int)(65 * U(rng))});
        out = cv::imdecode(buf, cv::IMREAD_GRAYSCALE);
    }
    return out;
}

// Image files under dir (recursively), sorted by path.
void find_images(const std::string &dir, std::vector<std::string> &out)
{
    for (auto &n : list_dir(dir)) {
        std::string path = dir + "/" + n;
        if (is_dir(path)) {
            find_images(path, out);
            continue;
        }
        std::string l = n;
        std::transform(l.begin(), l.end(), l.begin(), ::tolower);
        for (const char *ext : {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
            if (l.size() > std::strlen(ext) && l.compare(l.size() - std::strlen(ext), std::string::npos, ext) == 0) {
                out.push_back(path);
                break;
            }
    }
}

std::vector<std::string> photo_list(const std::string &dir, int every, int offset)
{
    std::vector<std::string> all, out;
    find_images(dir, all);
    std::sort(all.begin(), all.end());
    for (size_t i = 0; i < all.size(); i++)
        if (offset >= 0 ? (int)(i % (size_t)every) == offset : (int)(i % (size_t)every) != 0)
            out.push_back(all[i]);
    return out;
}

// ---- COLMAP reconstructions ----
//
// Keypoints: OpenCV SIFT detected by the plugin's mn_keypoints_detect on the
// image decoded by mn_image_load, exactly what matchnet-colmap describes at
// inference (same decoder, detector settings and strongest-first cut), not
// COLMAP's own keypoints: their positions and scales come from another SIFT
// implementation, and a model trained on them would see keypoints it never
// meets in use. COLMAP's observations only say which keypoints belong to one
// 3D point.

struct ColmapImage {
    std::string name;
    double f = 0;                  // focal length in pixels (geometric mean of fx, fy)
    int width = 0, height = 0;     // the camera's image size
    cv::Matx33d R;                 // world to camera
    cv::Vec3d t;
    std::vector<cv::Point2d> xy;   // observations, OpenCV pixel-centre convention
    std::vector<long long> point;  // their 3D point ids (-1: none)
};

struct ColmapModel {
    std::map<long long, ColmapImage> images;
    std::map<long long, cv::Vec3d> points;  // 3D point id -> position
};

[[noreturn]] void die(const std::string &msg)
{
    mn_cli_error(PROG, "%s", msg.c_str());
    std::exit(1);
}

// Non-comment lines of a COLMAP text file; empty lines are kept (an image
// with no observations has an empty second line in images.txt).
std::vector<std::string> colmap_lines(const std::string &path)
{
    std::ifstream f(path);
    if (!f)
        die("cannot read " + path);
    std::vector<std::string> out;
    std::string line;
    while (std::getline(f, line)) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.empty() || line[0] != '#')
            out.push_back(line);
    }
    while (!out.empty() && out.back().empty())
        out.pop_back();
    return out;
}

ColmapModel read_colmap(const std::string &dir)
{
    ColmapModel m;
    // Focal length per camera: models with fx, fy first, or a single f.
    std::map<long long, double> focal;
    std::map<long long, std::pair<int, int>> size;
    for (auto &line : colmap_lines(dir + "/cameras.txt")) {
        if (line.empty())
            continue;
        std::istringstream s(line);
        long long id;
        std::string model;
        double w, h, p0, p1;
        if (!(s >> id >> model >> w >> h >> p0 >> p1))
            die(dir + "/cameras.txt: bad line '" + line + "'");
        static const char *two[] = {"PINHOLE", "OPENCV", "OPENCV_FISHEYE", "FULL_OPENCV", "FOV", "THIN_PRISM_FISHEYE"};
        static const char *one[] = {"SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "SIMPLE_RADIAL_FISHEYE",
                                    "RADIAL_FISHEYE"};
        if (std::find(std::begin(two), std::end(two), model) != std::end(two))
            focal[id] = std::sqrt(p0 * p1);
        else if (std::find(std::begin(one), std::end(one), model) != std::end(one))
            focal[id] = p0;
        else
            die(dir + "/cameras.txt: unknown camera model " + model);
        size[id] = {(int)w, (int)h};
    }
    std::vector<std::string> lines = colmap_lines(dir + "/images.txt");
    for (size_t i = 0; i < lines.size(); i += 2) {
        std::istringstream s(lines[i]);
        long long id, cam;
        double q[4], t[3];
        ColmapImage im;
        if (!(s >> id >> q[0] >> q[1] >> q[2] >> q[3] >> t[0] >> t[1] >> t[2] >> cam >> im.name))
            die(dir + "/images.txt: bad image line '" + lines[i] + "'");
        if (!focal.count(cam))
            die(dir + "/images.txt: image " + std::to_string(id) + " has unknown camera " + std::to_string(cam));
        im.f = focal[cam];
        im.width = size[cam].first;
        im.height = size[cam].second;
        double n = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
        double w = q[0] / n, x = q[1] / n, y = q[2] / n, z = q[3] / n;
        im.R = cv::Matx33d(1 - 2 * y * y - 2 * z * z, 2 * x * y - 2 * w * z, 2 * x * z + 2 * w * y,
                           2 * x * y + 2 * w * z, 1 - 2 * x * x - 2 * z * z, 2 * y * z - 2 * w * x,
                           2 * x * z - 2 * w * y, 2 * y * z + 2 * w * x, 1 - 2 * x * x - 2 * y * y);
        im.t = cv::Vec3d(t[0], t[1], t[2]);
        if (i + 1 < lines.size()) {
            std::istringstream o(lines[i + 1]);
            double px, py;
            long long pid;
            while (o >> px >> py >> pid) {
                // COLMAP puts the centre of the top-left pixel at (0.5, 0.5).
                im.xy.push_back(cv::Point2d(px - 0.5, py - 0.5));
                im.point.push_back(pid);
            }
            if (!o.eof())
                die(dir + "/images.txt: bad observations of image " + std::to_string(id));
        }
        m.images[id] = std::move(im);
    }
    for (auto &line : colmap_lines(dir + "/points3D.txt")) {
        if (line.empty())
            continue;
        std::istringstream s(line);
        long long id;
        double x, y, z;
        if (!(s >> id >> x >> y >> z))
            die(dir + "/points3D.txt: bad line '" + line + "'");
        m.points[id] = cv::Vec3d(x, y, z);
    }
    if (m.images.empty())
        die(dir + ": no images in images.txt");
    return m;
}

// One SIFT keypoint of a scene image and the 3D point it was associated with.
struct SceneKp {
    mn_keypoint kp;
    long long point = -1;  // COLMAP 3D point id, -1 when no observation lies within 2 px
    double obs_dist = 0;   // distance to that observation
    long pool_id = -1;     // patch id in the pool, once cut
};

struct SceneImage {
    long long id;
    const ColmapImage *cam;
    cv::Mat grey;
    std::vector<SceneKp> kps;
};

// Cut the patches of keypoints `which` of image im (indices into im.kps).
std::vector<uint8_t> cut(const SceneImage &im, const std::vector<int> &which)
{
    std::vector<mn_keypoint> k;
    for (int i : which)
        k.push_back(im.kps[(size_t)i].kp);
    std::vector<uint8_t> out(k.size() * PP);
    if (cut_patches(im.grey, k, out.data()) != MN_OK)
        die(mn_last_error());
    return out;
}

// Zero-mean unit-norm rows of patches (n * PP bytes).
cv::Mat normalized(const uint8_t *patches, size_t n)
{
    Side s;
    s.kps.resize(n);
    s.patches.assign(patches, patches + n * PP);
    return normalized_rows(s);
}

// One scene: every 3D point seen by SIFT keypoints in 2+ images whose sizes
// agree gives a track of patches; positives are consecutive views of a
// track; negatives are taken in the second view of each positive.
void process_colmap(const std::string &model_dir, const std::string &image_dir, int max_kp, Pool &pool,
                    std::mt19937 &rng, bool negatives, size_t *n_tracks, size_t *n_track_patches)
{
    ColmapModel model = read_colmap(model_dir);
    std::vector<SceneImage> ims;
    std::map<long long, size_t> index;
    std::vector<mn_keypoint> buf((size_t)max_kp);
    for (auto &e : model.images) {
        SceneImage im;
        im.id = e.first;
        im.cam = &e.second;
        std::string path = image_dir + "/" + e.second.name;
        mn_image img = {};
        if (mn_image_load(path.c_str(), &img) != MN_OK)
            die(path + ": " + mn_last_error());
        if (img.width != e.second.width || img.height != e.second.height) {
            mn_image_free(&img);
            die(path + " is not the size of its camera in " + model_dir + "/cameras.txt (another image folder?)");
        }
        cv::Mat(img.height, img.width, CV_8U, img.pixels, img.stride).copyTo(im.grey);
        size_t n = 0;
        mn_status st = mn_keypoints_detect(&img, MN_DETECTOR_SIFT, buf.size(), buf.data(), &n);
        mn_image_free(&img);
        if (st != MN_OK)
            die(path + ": " + mn_last_error());
        // Associate each keypoint with the nearest observation of a 3D point
        // within 2 px (a grid of 4 px cells over the observations).
        const double cell = 4.0;
        std::map<std::pair<int, int>, std::vector<size_t>> grid;
        for (size_t o = 0; o < e.second.xy.size(); o++)
            if (e.second.point[o] >= 0 && model.points.count(e.second.point[o]))
                grid[{(int)std::floor(e.second.xy[o].x / cell), (int)std::floor(e.second.xy[o].y / cell)}].push_back(o);
        for (size_t i = 0; i < n; i++) {
            SceneKp k;
            k.kp = buf[i];
            double best = 2.0;
            int gx = (int)std::floor(k.kp.x / cell), gy = (int)std::floor(k.kp.y / cell);
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    auto it = grid.find({gx + dx, gy + dy});
                    if (it == grid.end())
                        continue;
                    for (size_t o : it->second) {
                        double d = std::hypot(e.second.xy[o].x - k.kp.x, e.second.xy[o].y - k.kp.y);
                        if (d <= best) {
                            best = d;
                            k.point = e.second.point[o];
                            k.obs_dist = d;
                        }
                    }
                }
            im.kps.push_back(k);
        }
        index[im.id] = ims.size();
        ims.push_back(std::move(im));
        mn_cli_progress_update(&progress, (model_dir + ": images").c_str(), ims.size(), model.images.size(), nullptr);
    }
    // Per 3D point and image, the keypoints at its observation: the nearest
    // within 2 px and any others within 0.5 px of that one (SIFT puts
    // several keypoints at one place when it finds several orientations).
    struct View {
        size_t im;
        int kp;
        double u;  // log of the keypoint's size in world units: size * depth / f
    };
    struct Candidates {
        size_t im;
        std::vector<int> kps;
        double depth;
        double phi;  // image angle (degrees) of the point's reference direction, see below
    };
    std::map<long long, std::vector<Candidates>> cands;
    for (size_t a = 0; a < ims.size(); a++) {
        std::map<long long, double> best;
        for (const SceneKp &k : ims[a].kps)
            if (k.point >= 0 && (!best.count(k.point) || k.obs_dist < best[k.point]))
                best[k.point] = k.obs_dist;
        std::map<long long, std::vector<int>> at_point;
        for (int i = 0; i < (int)ims[a].kps.size(); i++) {
            const SceneKp &k = ims[a].kps[(size_t)i];
            if (k.point >= 0 && k.obs_dist <= best[k.point] + 0.5)
                at_point[k.point].push_back(i);
        }
        for (auto &b : at_point) {
            cv::Vec3d X = ims[a].cam->R * model.points[b.first] + ims[a].cam->t;
            if (X[2] > 0)
                cands[b.first].push_back(Candidates{a, b.second, X[2], 0.0});
        }
    }
    // The in-image rotation between views: a 3D direction d at the point
    // (the first view's image y axis, so parallel to that image plane) is
    // projected into each view; the angle of its image phi turns with the
    // camera's roll. A keypoint angle minus phi is the same in all views of
    // a point up to foreshortening (OpenCV's angles, like phi, are
    // atan2(dy, dx) in degrees with y pointing down).
    for (auto &e : cands) {
        const cv::Vec3d &P = model.points[e.first];
        cv::Vec3d d = ims[e.second[0].im].cam->R.t() * cv::Vec3d(0, 1, 0);
        for (Candidates &c : e.second) {
            cv::Vec3d X = ims[c.im].cam->R * P + ims[c.im].cam->t;
            cv::Vec3d v = ims[c.im].cam->R * d;
            c.phi = std::atan2(v[1] - X[1] / X[2] * v[2], v[0] - X[0] / X[2] * v[2]) * 180.0 / M_PI;
        }
    }
    // Orientations must agree: a patch pair rotated against each other is
    // not a correspondence at inference time, where each view's keypoint
    // brings its own orientation. With the rotation between views taken out
    // (angle - phi), the reference angle is the one most views have a
    // keypoint within 30 degrees of; each view keeps its keypoint nearest
    // it, and views with none within 30 degrees are dropped.
    auto angle_diff = [](double a, double b) {
        double d = std::fmod(std::fabs(a - b), 360.0);
        return d > 180 ? 360 - d : d;
    };
    const double max_angle = 30.0;
    std::map<long long, std::vector<View>> views;
    size_t dropped_angle = 0;
    for (auto &e : cands) {
        double ref = 0;
        size_t ref_support = 0;
        for (const Candidates &c : e.second)
            for (int i : c.kps) {
                double th = ims[c.im].kps[(size_t)i].kp.angle - c.phi;
                size_t support = 0;
                for (const Candidates &c2 : e.second)
                    for (int j : c2.kps)
                        if (angle_diff(th, ims[c2.im].kps[(size_t)j].kp.angle - c2.phi) <= max_angle) {
                            support++;
                            break;
                        }
                if (support > ref_support) {
                    ref_support = support;
                    ref = th;
                }
            }
        for (const Candidates &c : e.second) {
            int pick = -1;
            double pick_d = max_angle;
            for (int i : c.kps) {
                double d = angle_diff(ref, ims[c.im].kps[(size_t)i].kp.angle - c.phi);
                if (d <= pick_d) {
                    pick_d = d;
                    pick = i;
                }
            }
            if (pick < 0) {
                dropped_angle++;
                continue;
            }
            double u = std::log(ims[c.im].kps[(size_t)pick].kp.size * c.depth / ims[c.im].cam->f);
            views[e.first].push_back(View{c.im, pick, u});
        }
    }
    // Sizes agree when, scaled by depth / focal length (the expected scale
    // change between two views of one point, foreshortening aside), any two
    // are within 25%: the largest such window of views forms the track.
    struct Track {
        long long point;
        std::vector<View> v;
    };
    std::vector<Track> tracks;
    for (auto &e : views) {
        std::vector<View> v = e.second;
        std::sort(v.begin(), v.end(), [](const View &x, const View &y) { return x.u < y.u; });
        size_t bi = 0, bn = 0;
        for (size_t i = 0, j = 0; i < v.size(); i++) {
            while (v[i].u - v[j].u > std::log(1.25))
                j++;
            if (i - j + 1 > bn) {
                bn = i - j + 1;
                bi = j;
            }
        }
        if (bn < 2)
            continue;
        std::vector<View> g(v.begin() + (long)bi, v.begin() + (long)(bi + bn));
        std::sort(g.begin(), g.end(), [](const View &x, const View &y) { return x.im < y.im; });
        tracks.push_back(Track{e.first, g});
    }
    // Number tracks by their first two images, so that runs of consecutive
    // point ids come from one image pair (python/train.py batches runs).
    std::stable_sort(tracks.begin(), tracks.end(), [](const Track &x, const Track &y) {
        return std::make_pair(x.v[0].im, x.v[1].im) < std::make_pair(y.v[0].im, y.v[1].im);
    });
    std::vector<std::vector<int>> need(ims.size());
    for (auto &t : tracks)
        for (auto &v : t.v)
            need[v.im].push_back(v.kp);
    std::vector<std::vector<uint8_t>> cutp(ims.size());
    std::vector<std::map<int, size_t>> at(ims.size());
    for (size_t a = 0; a < ims.size(); a++) {
        cutp[a] = cut(ims[a], need[a]);
        for (size_t k = 0; k < need[a].size(); k++)
            at[a][need[a][k]] = k;
    }
    struct Pos {
        size_t ia;  // pool ids
        size_t ib;
        uint32_t pid;
        size_t im_b;
        int kp_b;
        long long point;
    };
    std::vector<Pos> pos;
    for (auto &t : tracks) {
        uint32_t pid = pool.next_point++;
        std::vector<size_t> ids;
        for (auto &v : t.v) {
            size_t id = pool.add(&cutp[v.im][at[v.im][v.kp] * PP], pid);
            ims[v.im].kps[(size_t)v.kp].pool_id = (long)id;
            ids.push_back(id);
        }
        for (size_t k = 0; k + 1 < t.v.size(); k++) {
            pool.positives.push_back(brown_pair{(uint32_t)ids[k], (uint32_t)ids[k + 1], pid, pid, BROWN_POSITIVE});
            pos.push_back(Pos{ids[k], ids[k + 1], pid, t.v[k + 1].im, t.v[k + 1].kp, t.point});
        }
        *n_track_patches += t.v.size();
    }
    *n_tracks += tracks.size();
    mn_cli_progress_clear(&progress);
    std::fprintf(stderr, "%s: %zu images, %zu tracks, %zu positives (%zu views dropped: orientation)\n",
                 model_dir.c_str(), ims.size(), tracks.size(), pos.size(), dropped_angle);
    if (!negatives)
        return;
    // Negatives in the second view b of each positive (a, b). Spatial: a
    // keypoint 4-32 px from b (any keypoint: at 4 px it is another place).
    // Appearance: of the keypoints of other 3D points in that image (other
    // tracks, so surely another point; untracked keypoints could be this
    // point missed by COLMAP), the patch most like a by NCC, 3 px or more
    // from b.
    auto pool_patch = [&](size_t im, int kp) -> std::pair<uint32_t, uint32_t> {
        SceneKp &k = ims[im].kps[(size_t)kp];
        if (k.pool_id < 0) {
            std::vector<uint8_t> p = cut(ims[im], {kp});
            // Not in a track's window: a point id of its own, so that no
            // correspondence is made of it.
            k.pool_id = (long)pool.add(p.data(), pool.next_point++);
        }
        return {(uint32_t)k.pool_id, pool.point[(size_t)k.pool_id]};
    };
    for (size_t b = 0; b < ims.size(); b++) {
        std::vector<size_t> mine;
        for (size_t k = 0; k < pos.size(); k++)
            if (pos[k].im_b == b)
                mine.push_back(k);
        if (mine.empty())
            continue;
        std::vector<int> cand;
        for (int i = 0; i < (int)ims[b].kps.size(); i++)
            if (ims[b].kps[(size_t)i].point >= 0)
                cand.push_back(i);
        std::vector<uint8_t> cp = cut(ims[b], cand);
        cv::Mat nc = normalized(cp.data(), cand.size());
        std::vector<uint8_t> ap(mine.size() * PP);
        for (size_t k = 0; k < mine.size(); k++)
            std::memcpy(&ap[k * PP], &pool.patches[pos[mine[k]].ia * PP], PP);
        cv::Mat na = normalized(ap.data(), mine.size()), ncc;
        cv::gemm(na, nc, 1.0, cv::noArray(), 0.0, ncc, cv::GEMM_2_T);
        for (size_t k = 0; k < mine.size(); k++) {
            const Pos &p = pos[mine[k]];
            const mn_keypoint &kb = ims[b].kps[(size_t)p.kp_b].kp;
            std::vector<int> sp;
            for (int i = 0; i < (int)ims[b].kps.size(); i++) {
                const SceneKp &o = ims[b].kps[(size_t)i];
                double d = std::hypot(o.kp.x - kb.x, o.kp.y - kb.y);
                if (d >= 4.0 && d <= 32.0 && o.point != p.point)
                    sp.push_back(i);
            }
            if (!sp.empty()) {
                auto q = pool_patch(b, sp[rng() % sp.size()]);
                pool.spatial.push_back(brown_pair{(uint32_t)p.ia, q.first, p.pid, q.second, BROWN_SPATIAL});
            }
            const float *r = ncc.ptr<float>((int)k);
            int best = -1;
            for (int j = 0; j < (int)cand.size(); j++) {
                const SceneKp &o = ims[b].kps[(size_t)cand[(size_t)j]];
                if (o.point == p.point || std::hypot(o.kp.x - kb.x, o.kp.y - kb.y) < 3.0)
                    continue;
                if (best < 0 || r[j] > r[best])
                    best = j;
            }
            if (best >= 0) {
                auto q = pool_patch(b, cand[(size_t)best]);
                pool.appearance.push_back(brown_pair{(uint32_t)p.ia, q.first, p.pid, q.second, BROWN_APPEARANCE});
            }
        }
    }
}

int usage()
{
    std::fprintf(stderr,
                 "usage: matchnet-patchset --homography-dir DIR --out OUTDIR [--pairs N] [--seed S]\n"
                 "       matchnet-patchset --photos DIR --out OUTDIR [--views N] [--pairs N] [--seed S]\n"
                 "                         [--every K --offset J] [--max-keypoints N] [--positives-only]\n"
                 "       matchnet-patchset --colmap SPARSE_TXT_DIR --images IMAGES_DIR [--colmap ... --images ...]\n"
                 "                         --out OUTDIR [--pairs N] [--max-keypoints N] [--seed S] [--positives-only]\n"
                 "       (and --progress auto|always|never; --affine: affine-normalised patches,\n"
                 "       --affine-orientation gradient|keep: their orientation rule, implies --affine)\n");
    return 2;
}

} // namespace

int main(int argc, char **argv)
{
    std::string hdir, photos, out;
    std::vector<std::string> colmap_dirs, image_dirs;
    long pairs = -1, views = 200;  // pairs: 10000, or for --colmap all the scenes give
    unsigned seed = 0;
    int every = 1, offset = 0, max_kp = -1;  // 1500, or for --colmap 8000 as matchnet-colmap
    bool positives_only = false;
    int when = MN_CLI_PROGRESS_AUTO;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                mn_cli_error(PROG, "%s needs a value", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--homography-dir")
            hdir = val();
        else if (a == "--photos")
            photos = val();
        else if (a == "--colmap")
            colmap_dirs.push_back(val());
        else if (a == "--images")
            image_dirs.push_back(val());
        else if (a == "--out")
            out = val();
        else if (a == "--pairs")
            pairs = std::atol(val().c_str());
        else if (a == "--views")
            views = std::atol(val().c_str());
        else if (a == "--seed")
            seed = (unsigned)std::atol(val().c_str());
        else if (a == "--every")
            every = std::atoi(val().c_str());
        else if (a == "--offset")
            offset = std::atoi(val().c_str());
        else if (a == "--positives-only")
            positives_only = true;
        else if (a == "--affine")
            g_affine = true;
        else if (a == "--affine-orientation") {
            std::string o = val();
            if (o != "gradient" && o != "keep") {
                mn_cli_error(PROG, "--affine-orientation %s: expected gradient or keep", o.c_str());
                return 2;
            }
            g_affine = true;
            g_affine_orientation = o == "keep" ? MN_AFFINE_ORIENT_KEEP : MN_AFFINE_ORIENT_GRADIENT;
        }
        else if (a == "--max-keypoints")
            max_kp = std::atoi(val().c_str());
        else if (a == "--progress") {
            if ((when = mn_cli_progress_when(val().c_str())) < 0)
                return usage();
        } else
            return usage();
    }
    const bool colmap = !colmap_dirs.empty();
    if (colmap_dirs.size() != image_dirs.size()) {
        mn_cli_error(PROG, "each --colmap needs its --images");
        return 2;
    }
    if (max_kp < 0)
        max_kp = colmap ? 8000 : 1500;
    if (out.empty() || (int)!hdir.empty() + (int)!photos.empty() + (int)colmap != 1 || (pairs != -1 && pairs < 2) ||
        views < 1 || every < 1 || offset < -1 || offset >= every || max_kp < 1)
        return usage();
    {
        // The set is written beside OUT at the end: a missing or read-only
        // parent folder is found now, not after the whole run's work.
        const size_t slash = out.find_last_of('/');
        const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : out.substr(0, slash);
        if (!is_dir(parent) || access(parent.c_str(), W_OK) != 0) {
            mn_cli_error(PROG, "cannot write the set into %s: %s", parent.c_str(),
                         is_dir(parent) ? std::strerror(errno) : "no such folder");
            return 1;
        }
    }
    mn_cli_progress_init(&progress, PROG, when);
    cv::setNumThreads(1);
    cv::theRNG().state = seed + 1;
    std::mt19937 rng(seed);
    cv::Ptr<cv::SIFT> sift = cv::SIFT::create(max_kp);
    Pool pool;
    size_t npos = pairs < 0 ? (colmap ? (size_t)-1 : 5000) : (size_t)pairs / 2;
    if (colmap) {
        size_t tracks = 0, track_patches = 0;
        for (size_t k = 0; k < colmap_dirs.size(); k++)
            process_colmap(colmap_dirs[k], image_dirs[k], max_kp, pool, rng, !positives_only, &tracks, &track_patches);
        std::fprintf(stderr, "%zu tracks, %zu track patches (%.2f per track)\n", tracks, track_patches,
                     tracks ? (double)track_patches / (double)tracks : 0.0);
        if (pool.positives.empty()) {
            mn_cli_error(PROG, "no correspondences in the COLMAP models");
            return 1;
        }
    } else if (!hdir.empty()) {
        std::vector<ViewPair> vps = oxford_pairs(hdir);
        if (vps.empty()) {
            mn_cli_error(PROG, "no Oxford-layout sequence in %s", hdir.c_str());
            return 1;
        }
        for (size_t k = 0; k < vps.size(); k++) {
            process(vps[k], sift, pool, rng, true, (size_t)-1);
            mn_cli_progress_update(&progress, "view pairs", k + 1, vps.size(), correspondences(pool).c_str());
        }
    } else {
        std::vector<std::string> list = photo_list(photos, every, offset);
        if (list.empty()) {
            mn_cli_error(PROG, "no photos in %s", photos.c_str());
            return 1;
        }
        // Spread the view pairs over the photos; cap each pair's share so
        // no single texture dominates.
        size_t per_view = std::max<size_t>(20, 2 * npos / (size_t)views + 1);
        std::vector<cv::Mat> cache(list.size());
        for (long v = 0; v < views; v++) {
            const size_t pi = (size_t)v % list.size();
            if (cache[pi].empty()) {
                // Decode once (photos are up to 6000 px), keep at most 1600 px.
                cv::Mat full = imread_limited(list[pi], cv::IMREAD_GRAYSCALE);
                if (full.empty()) {
                    mn_cli_error(PROG, "skipping unreadable %s", list[pi].c_str());
                    continue;
                }
                double f = 1600.0 / std::max(full.cols, full.rows);
                if (f < 1.0)
                    cv::resize(full, cache[pi], cv::Size(), f, f, cv::INTER_AREA);
                else
                    cache[pi] = full;
            }
            cv::Mat photo = cache[pi];
            std::uniform_real_distribution<double> U(0, 1);
            // Base resolution: longest side 700-1600 px of the photo.
            double base = (700 + 900 * U(rng)) / std::max(photo.cols, photo.rows);
            if (base < 1.0)
                cv::resize(photo, photo, cv::Size(), base, base, cv::INTER_AREA);
            cv::Size vs(640, 480);
            double sa = std::exp(std::log(0.7) + (std::log(1.3) - std::log(0.7)) * U(rng));
            double r = std::exp(std::log(0.4) + (std::log(2.5) - std::log(0.4)) * U(rng));
            cv::Matx33d ha = random_homography(rng, photo.size(), vs, sa, 0.2);
            cv::Matx33d hb = random_homography(rng, photo.size(), vs, sa * r, 0.6);
            cv::Mat a, b;
            cv::warpPerspective(photo, a, cv::Mat(ha), vs, cv::INTER_AREA, cv::BORDER_REFLECT);
            cv::warpPerspective(photo, b, cv::Mat(hb), vs, cv::INTER_AREA, cv::BORDER_REFLECT);
            ViewPair vp{photometric(a, rng), photometric(b, rng), hb * ha.inv()};
            process(vp, sift, pool, rng, !positives_only, per_view);
            mn_cli_progress_update(&progress, "views", (size_t)v + 1, (size_t)views, correspondences(pool).c_str());
        }
    }
    mn_cli_progress_clear(&progress);
    // Half positives, the other half in three equal kinds of negatives.
    std::shuffle(pool.positives.begin(), pool.positives.end(), rng);
    std::shuffle(pool.spatial.begin(), pool.spatial.end(), rng);
    std::shuffle(pool.appearance.begin(), pool.appearance.end(), rng);
    size_t nneg_kind = positives_only ? 0 : std::min({npos / 3, pool.spatial.size(), pool.appearance.size(),
                                                      pool.positives.size() / 3});
    npos = std::min(npos, pool.positives.size());
    std::vector<brown_pair> list(pool.positives.begin(), pool.positives.begin() + (long)npos);
    for (size_t k = 0; k < nneg_kind; k++) {
        // Random: the A patch of one correspondence, the B patch of another.
        const brown_pair &p = pool.positives[rng() % pool.positives.size()];
        const brown_pair *q = &pool.positives[rng() % pool.positives.size()];
        while (q->pa == p.pa)
            q = &pool.positives[rng() % pool.positives.size()];
        list.push_back(brown_pair{p.a, q->b, p.pa, q->pb, BROWN_RANDOM});
        list.push_back(pool.spatial[k]);
        list.push_back(pool.appearance[k]);
    }
    std::shuffle(list.begin(), list.end(), rng);
    brown_set set;
    set.n = pool.point.size();
    set.patches = pool.patches.data();
    set.point = pool.point.data();
    set.npairs = list.size();
    set.pairs = list.data();
    // The set is written to OUT.tmp.PID beside OUT and renamed to OUT when
    // complete, so that a failed or killed run never leaves a partial set
    // (nor spoils an older one) at OUT; the next run removes what a killed
    // one left. An existing OUT is exchanged with the new set in one step
    // (renameat2 RENAME_EXCHANGE), then removed under the temporary name;
    // where the file system cannot exchange, it is moved aside to
    // OUT.old.PID for the moment between two renames (a run killed there
    // leaves no OUT, and the next run puts the older set back).
    remove_stale_sets(out);
    const std::string pid = std::to_string((long)getpid());
    const std::string tmp = out + ".tmp." + pid, old = out + ".old." + pid;
    if (mkdir(tmp.c_str(), 0777) != 0) {
        mn_cli_error(PROG, "cannot create %s: %s", tmp.c_str(), std::strerror(errno));
        return 1;
    }
    char err[512];
    if (brown_save(tmp.c_str(), &set, err, sizeof err) != 0) {
        mn_cli_error(PROG, "%s", err);
        remove_flat_dir(tmp);
        return 1;
    }
    const bool had = is_dir(out);
    mn_test_point("patchset-rename");
    if (had && renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, out.c_str(), RENAME_EXCHANGE) == 0) {
        mn_test_point("patchset-renamed");
        if (!remove_flat_dir(tmp))
            mn_cli_error(PROG, "warning: could not remove the old set, now %s", tmp.c_str());
    } else {
        bool ok = !had || rename(out.c_str(), old.c_str()) == 0;
        if (ok && had)
            mn_test_point("patchset-renamed");
        if (!ok || rename(tmp.c_str(), out.c_str()) != 0) {
            mn_cli_error(PROG, "cannot rename %s to %s: %s", tmp.c_str(), out.c_str(), std::strerror(errno));
            if (had && !is_dir(out))
                rename(old.c_str(), out.c_str());
            remove_flat_dir(tmp);
            return 1;
        }
        if (had && !remove_flat_dir(old))
            mn_cli_error(PROG, "warning: could not remove the old set, now %s", old.c_str());
    }
    std::printf("%s: %zu patches, %zu pairs (%zu matching, %zu per negative kind), %zu correspondences in all\n",
                out.c_str(), set.n, list.size(), npos, nneg_kind, pool.positives.size());
    if (g_affine && !colmap)
        std::printf("%s: %zu keypoint pairs left out: their affine frames disagree with the homography\n",
                    out.c_str(), pool.frame_rejects);
    return 0;
}
