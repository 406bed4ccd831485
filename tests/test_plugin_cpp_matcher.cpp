/*
 * test_plugin_cpp_matcher.cpp - matchnet::MatchNetMatcher, the
 * cv::DescriptorMatcher: against a brute-force reference from
 * mn_metric_score_all() (candidates = 0 is the exact argmax, knnMatch
 * the exact top k, radiusMatch the exact set), candidate mode against L2
 * neighbours from brute force, ordering, masks and compactResult, train
 * collections with imgIdx, clone(), UMat descriptors, crossCheck against
 * mn_match(), and errors turned into cv::Exception.
 *
 * Descriptors are random unit vectors (seed 7) and noisy copies of them,
 * so that every query has one clear partner among distractors.
 */
#include <matchnet/opencv.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "check.h"

static const float kTol = 1e-5f; // probabilities from different batches of the same computation

struct Data {
    cv::Mat q, t;             // nq x D, nt x D
    cv::Mat prob;             // nq x nt, mn_metric_score_all()
    cv::Mat l2;               // nq x nt
};

static cv::Mat unitRows(cv::Mat m)
{
    for (int r = 0; r < m.rows; r++)
        cv::normalize(m.row(r), m.row(r));
    return m;
}

static Data makeData(const mn_model* model, int nq, int nt)
{
    const int dim = (int)mn_model_descriptor_dim(model);
    cv::RNG rng(7);
    Data d;
    d.q.create(nq, dim, CV_32F);
    rng.fill(d.q, cv::RNG::NORMAL, 0, 1);
    unitRows(d.q);
    d.t.create(nt, dim, CV_32F);
    rng.fill(d.t, cv::RNG::NORMAL, 0, 1);
    // The first nq * 2/3 train rows are noisy copies of queries, shuffled.
    std::vector<int> perm(nq);
    std::iota(perm.begin(), perm.end(), 0);
    cv::randShuffle(perm, 1.0, &rng);
    for (int i = 0; i < nq * 2 / 3 && i < nt; i++) {
        cv::Mat noise(1, dim, CV_32F);
        rng.fill(noise, cv::RNG::NORMAL, 0, 0.04);
        d.t.row(i) = d.q.row(perm[i]) + noise;
    }
    unitRows(d.t);

    mn_session* s = nullptr;
    CHECK_OK(mn_session_create(model, nullptr, &s));
    d.prob.create(nq, nt, CV_32F);
    CHECK_OK(mn_metric_score_all(s, d.q.ptr<float>(), (size_t)nq, d.t.ptr<float>(), (size_t)nt, d.prob.ptr<float>()));
    mn_session_free(s);
    d.l2.create(nq, nt, CV_32F);
    for (int i = 0; i < nq; i++)
        for (int j = 0; j < nt; j++)
            d.l2.at<float>(i, j) = (float)cv::norm(d.q.row(i), d.t.row(j), cv::NORM_L2);
    return d;
}

// Train indices of query i by decreasing probability (ties: lower index), allowed by mask.
static std::vector<int> refOrder(const Data& d, int i, const cv::Mat& mask = cv::Mat())
{
    std::vector<int> idx;
    for (int j = 0; j < d.prob.cols; j++)
        if (mask.empty() || mask.at<uchar>(i, j))
            idx.push_back(j);
    std::stable_sort(idx.begin(), idx.end(),
                     [&](int a, int b) { return d.prob.at<float>(i, a) > d.prob.at<float>(i, b); });
    return idx;
}

// The n L2-nearest train indices of query i.
static std::vector<int> nearest(const Data& d, int i, int n)
{
    std::vector<int> idx(d.l2.cols);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return d.l2.at<float>(i, a) < d.l2.at<float>(i, b); });
    idx.resize(std::min<size_t>(idx.size(), (size_t)n));
    return idx;
}

// m is query i's r-th result in the reference order, up to near-equal probabilities.
static bool agrees(const Data& d, const std::vector<int>& order, size_t r, const cv::DMatch& m, int i)
{
    if (r >= order.size() || m.queryIdx != i || m.trainIdx < 0 || m.trainIdx >= d.prob.cols)
        return false;
    const float p = d.prob.at<float>(i, m.trainIdx);
    return std::fabs((1.0f - p) - m.distance) <= kTol &&
           std::fabs(p - d.prob.at<float>(i, order[r])) <= kTol;
}

static bool increasing(const std::vector<cv::DMatch>& row)
{
    for (size_t r = 1; r < row.size(); r++)
        if (row[r].distance < row[r - 1].distance)
            return false;
    return true;
}

static void testContract()
{
    cv::Ptr<matchnet::MatchNetMatcher> m = matchnet::MatchNetMatcher::create();
    CHECK(m->isMaskSupported(), "isMaskSupported");
    CHECK(m->empty(), "no train data yet");
    CHECK(m->getCandidates() == 5 && !m->getCrossCheck(), "defaults");
    bool threw = false;
    try {
        matchnet::MatchNetMatcher::create(cv::String(), 257);
    } catch (const cv::Exception&) {
        threw = true;
    }
    CHECK(threw, "candidates = 257 is refused");
}

// candidates = 0: every pair scored, so the results are exactly the reference's.
static void testExact(const Data& d)
{
    cv::Ptr<matchnet::MatchNetMatcher> m = matchnet::MatchNetMatcher::create(cv::String(), 0);
    std::vector<cv::DMatch> best;
    m->match(d.q, d.t, best);
    CHECK((int)best.size() == d.q.rows, "%zu matches for %d queries", best.size(), d.q.rows);
    for (size_t i = 0; i < best.size(); i++) {
        std::vector<int> order = refOrder(d, (int)i);
        CHECK(agrees(d, order, 0, best[i], (int)i) && best[i].imgIdx == 0,
              "query %zu: got train %d (distance %g), argmax %d (p %g)", i, best[i].trainIdx, best[i].distance,
              order[0], d.prob.at<float>((int)i, order[0]));
    }

    std::vector<std::vector<cv::DMatch>> knn;
    const int k = 4;
    m->knnMatch(d.q, d.t, knn, k);
    CHECK((int)knn.size() == d.q.rows, "knn rows %zu", knn.size());
    for (size_t i = 0; i < knn.size(); i++) {
        std::vector<int> order = refOrder(d, (int)i);
        bool ok = knn[i].size() == (size_t)k && increasing(knn[i]);
        for (size_t r = 0; ok && r < knn[i].size(); r++)
            ok = agrees(d, order, r, knn[i][r], (int)i);
        CHECK(ok, "knnMatch query %zu differs from the exact top %d", i, k);
    }

    const float radius = 0.9f;
    std::vector<std::vector<cv::DMatch>> rad;
    m->radiusMatch(d.q, d.t, rad, radius);
    CHECK((int)rad.size() == d.q.rows, "radius rows %zu", rad.size());
    size_t total = 0;
    for (size_t i = 0; i < rad.size(); i++) {
        std::vector<int> order = refOrder(d, (int)i);
        size_t want = 0;
        for (int j : order)
            want += 1.0f - d.prob.at<float>((int)i, j) <= radius;
        bool ok = increasing(rad[i]) && rad[i].size() == want;
        for (size_t r = 0; ok && r < rad[i].size(); r++)
            ok = agrees(d, order, r, rad[i][r], (int)i) && rad[i][r].distance <= radius;
        CHECK(ok, "radiusMatch query %zu: %zu matches, reference %zu", i, rad[i].size(), want);
        total += rad[i].size();
    }
    CHECK(total > rad.size(), "radius %g should find some matches: %zu", radius, total);
}

// Candidate mode: scored neighbours are the L2-nearest, ranked by probability.
static void testCandidates(const Data& d)
{
    cv::Ptr<matchnet::MatchNetMatcher> m = matchnet::MatchNetMatcher::create(cv::String(), 5);
    std::vector<std::vector<cv::DMatch>> knn;
    m->knnMatch(d.q, d.t, knn, 3);
    for (size_t i = 0; i < knn.size(); i++) {
        std::vector<int> nn = nearest(d, (int)i, 5);
        bool ok = knn[i].size() == 3 && increasing(knn[i]);
        // The three most probable among the five nearest.
        std::vector<int> order(nn);
        std::stable_sort(order.begin(), order.end(),
                         [&](int a, int b) { return d.prob.at<float>((int)i, a) > d.prob.at<float>((int)i, b); });
        for (size_t r = 0; ok && r < knn[i].size(); r++)
            ok = agrees(d, order, r, knn[i][r], (int)i);
        CHECK(ok, "candidates=5, k=3: query %zu", i);
    }

    // k > candidates: max(k, candidates) neighbours are scored, so all k come back.
    cv::Ptr<matchnet::MatchNetMatcher> m2 = matchnet::MatchNetMatcher::create(cv::String(), 2);
    m2->knnMatch(d.q, d.t, knn, 7);
    for (size_t i = 0; i < knn.size(); i++) {
        std::vector<int> nn = nearest(d, (int)i, 7);
        bool ok = knn[i].size() == 7 && increasing(knn[i]);
        for (const cv::DMatch& x : knn[i])
            ok = ok && std::find(nn.begin(), nn.end(), x.trainIdx) != nn.end();
        CHECK(ok, "candidates=2, k=7: query %zu returned %zu, not the 7 nearest", i, knn[i].size());
    }

    // radiusMatch: the candidates within the radius.
    std::vector<std::vector<cv::DMatch>> rad;
    m->radiusMatch(d.q, d.t, rad, 0.5f);
    for (size_t i = 0; i < rad.size(); i++) {
        std::vector<int> nn = nearest(d, (int)i, 5);
        size_t want = 0;
        for (int j : nn)
            want += 1.0f - d.prob.at<float>((int)i, j) <= 0.5f;
        bool ok = rad[i].size() == want && increasing(rad[i]);
        for (const cv::DMatch& x : rad[i])
            ok = ok && x.distance <= 0.5f && std::find(nn.begin(), nn.end(), x.trainIdx) != nn.end();
        CHECK(ok, "radius 0.5, candidates 5: query %zu: %zu matches, expected %zu", i, rad[i].size(), want);
    }
}

static void testMasks(const Data& d)
{
    cv::RNG rng(11);
    cv::Mat mask(d.q.rows, d.t.rows, CV_8U);
    rng.fill(mask, cv::RNG::UNIFORM, 0, 2); // about half allowed
    mask.row(3).setTo(0);                    // query 3 fully masked out

    cv::Ptr<matchnet::MatchNetMatcher> exact = matchnet::MatchNetMatcher::create(cv::String(), 0);
    std::vector<std::vector<cv::DMatch>> knn;
    exact->knnMatch(d.q, d.t, knn, 2, mask, false);
    CHECK((int)knn.size() == d.q.rows && knn[3].empty(), "compactResult=false keeps a row per query");
    for (size_t i = 0; i < knn.size(); i++) {
        std::vector<int> order = refOrder(d, (int)i, mask);
        bool ok = knn[i].size() == std::min<size_t>(2, order.size());
        for (size_t r = 0; ok && r < knn[i].size(); r++)
            ok = mask.at<uchar>((int)i, knn[i][r].trainIdx) && agrees(d, order, r, knn[i][r], (int)i);
        CHECK(ok, "masked exact knn, query %zu", i);
    }
    exact->knnMatch(d.q, d.t, knn, 2, mask, true);
    CHECK((int)knn.size() == d.q.rows - 1, "compactResult=true drops the masked-out query: %zu rows", knn.size());

    cv::Ptr<matchnet::MatchNetMatcher> cand = matchnet::MatchNetMatcher::create(cv::String(), 5);
    std::vector<cv::DMatch> best;
    cand->match(d.q, d.t, best, mask);
    bool ok = (int)best.size() == d.q.rows - 1;
    for (const cv::DMatch& x : best)
        ok = ok && x.queryIdx != 3 && mask.at<uchar>(x.queryIdx, x.trainIdx);
    CHECK(ok, "candidate mode honours the mask (%zu matches)", best.size());
    std::vector<std::vector<cv::DMatch>> rad;
    cand->radiusMatch(d.q, d.t, rad, 1.0f, mask);
    ok = true;
    for (const auto& row : rad)
        for (const cv::DMatch& x : row)
            ok = ok && mask.at<uchar>(x.queryIdx, x.trainIdx);
    CHECK(ok, "radiusMatch honours the mask");
}

// A train collection of three images (one empty) answers as the merged set.
static void testCollection(const Data& d)
{
    const int split = d.t.rows / 3;
    cv::Mat t0 = d.t.rowRange(0, split), t2 = d.t.rowRange(split, d.t.rows);
    cv::Ptr<matchnet::MatchNetMatcher> m = matchnet::MatchNetMatcher::create(cv::String(), 0);
    m->add(std::vector<cv::Mat>{t0, cv::Mat()});
    m->add(t2.getUMat(cv::ACCESS_READ)); // a UMat image, copied by add()
    m->train();
    CHECK(m->getTrainDescriptors().size() == 3, "%zu train images", m->getTrainDescriptors().size());
    std::vector<cv::DMatch> best;
    m->match(d.q, best);
    bool ok = (int)best.size() == d.q.rows;
    for (size_t i = 0; ok && i < best.size(); i++) {
        cv::DMatch g = best[i];
        ok = (g.imgIdx == 0 && g.trainIdx < split) || (g.imgIdx == 2 && g.trainIdx < d.t.rows - split);
        g.trainIdx += g.imgIdx == 2 ? split : 0;
        ok = ok && agrees(d, refOrder(d, (int)i), 0, g, (int)i);
    }
    CHECK(ok, "collection: imgIdx/trainIdx map back to the exact argmax");

    // Per-image masks.
    std::vector<cv::Mat> masks = {cv::Mat::zeros(d.q.rows, t0.rows, CV_8U), cv::Mat(),
                                  cv::Mat::ones(d.q.rows, t2.rows, CV_8U)};
    m->match(d.q, best, masks);
    ok = (int)best.size() == d.q.rows;
    for (const cv::DMatch& x : best)
        ok = ok && x.imgIdx == 2;
    CHECK(ok, "per-image masks: every match from image 2");

    // clone(): deep copy, or the parameters alone.
    cv::Ptr<cv::DescriptorMatcher> full = m->clone(false), bare = m->clone(true);
    std::vector<cv::DMatch> again;
    full->match(d.q, again);
    m->match(d.q, best);
    ok = again.size() == best.size();
    for (size_t i = 0; ok && i < best.size(); i++)
        ok = again[i].trainIdx == best[i].trainIdx && again[i].imgIdx == best[i].imgIdx &&
             again[i].distance == best[i].distance;
    CHECK(ok, "clone(false) matches like the original");
    CHECK(bare->empty() && !full->empty(), "clone(true) has no train data");
    m->clear();
    CHECK(m->empty() && !full->empty(), "the clone owns its train data");
    cv::Ptr<matchnet::MatchNetMatcher> typed = full.dynamicCast<matchnet::MatchNetMatcher>();
    CHECK(typed && typed->getCandidates() == 0, "clone keeps the parameters");
}

// crossCheck selects as mn_match() with mutual does.
static void testCrossCheck(const Data& d, const mn_model* model)
{
    cv::Ptr<matchnet::MatchNetMatcher> m = matchnet::MatchNetMatcher::create(cv::String(), 5, true);
    std::vector<cv::DMatch> got;
    m->match(d.q, d.t, got);

    mn_session* s = nullptr;
    CHECK_OK(mn_session_create(model, nullptr, &s));
    mn_match_params p = mn_match_params_preset(MN_MATCH_METRIC);
    p.k = 5;
    p.min_probability = 0.0f;
    p.mutual = 1;
    std::vector<mn_dmatch> ref((size_t)d.q.rows);
    size_t n = 0;
    CHECK_OK(mn_match(s, d.q.ptr<float>(), (size_t)d.q.rows, d.t.ptr<float>(), (size_t)d.t.rows, &p, ref.data(),
                      ref.size(), &n));
    mn_session_free(s);
    bool ok = got.size() == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = got[i].queryIdx == (int)ref[i].query && got[i].trainIdx == (int)ref[i].train &&
             std::fabs(got[i].distance - (1.0f - ref[i].probability)) <= kTol;
    CHECK(ok, "crossCheck: %zu matches, mn_match %zu", got.size(), n);
    CHECK(n >= (size_t)d.q.rows / 2, "the planted pairs are mutual: %zu", n);

    // An all-allowing mask goes to mn_match with a mask (the kNN's masked
    // scan in both directions): same selection as no mask.
    std::vector<cv::DMatch> masked;
    m->match(d.q, d.t, masked, cv::Mat::ones(d.q.rows, d.t.rows, CV_8U));
    ok = masked.size() == got.size();
    for (size_t i = 0; ok && i < got.size(); i++)
        ok = masked[i].queryIdx == got[i].queryIdx && masked[i].trainIdx == got[i].trainIdx &&
             std::fabs(masked[i].distance - got[i].distance) <= kTol;
    CHECK(ok, "crossCheck with an all-ones mask: %zu matches, unmasked %zu", masked.size(), got.size());

    // With a mask and every pair scored: exactly the mutual argmaxes among the allowed pairs.
    cv::RNG rng(5);
    cv::Mat mask(d.q.rows, d.t.rows, CV_8U);
    rng.fill(mask, cv::RNG::UNIFORM, 0, 2);
    cv::Ptr<matchnet::MatchNetMatcher> exact = matchnet::MatchNetMatcher::create(cv::String(), 0, true);
    exact->match(d.q, d.t, got, mask);
    std::vector<int> bestT(d.q.rows, -1), bestQ(d.t.rows, -1);
    for (int i = 0; i < d.q.rows; i++)
        for (int j = 0; j < d.t.rows; j++) {
            if (!mask.at<uchar>(i, j))
                continue;
            const float p = d.prob.at<float>(i, j);
            if (bestT[i] < 0 || p > d.prob.at<float>(i, bestT[i]))
                bestT[i] = j;
            if (bestQ[j] < 0 || p > d.prob.at<float>(bestQ[j], j))
                bestQ[j] = i;
        }
    size_t mutual = 0;
    for (int i = 0; i < d.q.rows; i++)
        mutual += bestT[i] >= 0 && bestQ[bestT[i]] == i;
    ok = got.size() == mutual && mutual > 0;
    for (const cv::DMatch& x : got)
        ok = ok && bestT[x.queryIdx] == x.trainIdx && bestQ[x.trainIdx] == x.queryIdx;
    CHECK(ok, "masked crossCheck, all pairs: %zu matches, %zu mutual argmaxes", got.size(), mutual);

    // The candidate path with a mask keeps allowed, mutual-looking pairs only.
    m->match(d.q, d.t, got, mask);
    ok = !got.empty();
    std::vector<int> seen(d.t.rows, 0);
    for (const cv::DMatch& x : got)
        ok = ok && mask.at<uchar>(x.queryIdx, x.trainIdx) && !seen[x.trainIdx]++;
    CHECK(ok, "masked crossCheck, candidates: %zu matches, one per train row, all allowed", got.size());

    bool threw = false;
    try {
        std::vector<std::vector<cv::DMatch>> knn;
        m->knnMatch(d.q, d.t, knn, 2);
    } catch (const cv::Exception&) {
        threw = true;
    }
    CHECK(threw, "crossCheck with k = 2 is refused, as by cv::BFMatcher");
}

static void testErrors(const Data& d)
{
    cv::Ptr<matchnet::MatchNetMatcher> m = matchnet::MatchNetMatcher::create();
    std::vector<cv::DMatch> out;
    const char* cases[] = {"8-bit descriptors", "wrong width", "NaN"};
    for (int c = 0; c < 3; c++) {
        cv::Mat q = d.q.clone();
        if (c == 0)
            q.convertTo(q, CV_8U);
        else if (c == 1)
            q = q.colRange(0, q.cols - 1).clone();
        else
            q.at<float>(2, 5) = NAN;
        std::string what;
        try {
            m->match(q, d.t, out);
        } catch (const cv::Exception& e) {
            what = e.what();
        }
        CHECK(!what.empty(), "%s: no exception", cases[c]);
        if (c == 2)
            CHECK(what.find("mn_match_knn()") != std::string::npos, "NaN: message '%s'", what.c_str());
    }
}

int main()
{
    try {
        std::shared_ptr<const mn_model> model = matchnet::loadModel();
        const Data d = makeData(model.get(), 45, 70);
        testContract();
        testExact(d);
        testCandidates(d);
        testMasks(d);
        testCollection(d);
        testCrossCheck(d, model.get());
        testErrors(d);
    } catch (const cv::Exception& e) {
        CHECK(false, "unexpected exception: %s", e.what());
    }
    return check_summary("test_plugin_cpp_matcher");
}
