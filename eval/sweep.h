// sweep.h - the two fair-comparison figures of matchnet-eval-matching:
// correct matches at a given precision (each method's own threshold swept
// over the same pairs) and the ceiling no descriptor can pass (the largest
// one-to-one pairing of keypoints within the ground-truth tolerance).
// Header-only so that tests/test_eval_sweep.cpp checks them on cases whose
// answers are known.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <vector>

namespace mn_eval {

/** One tentative match of a sweep: its score (lower = more confident: a
 *  ratio of distances, or 1 - probability) and whether it is correct. */
struct Scored {
    double score;
    bool correct;
};

/** The loosest threshold at which the matches, pooled over all pairs, still
 *  have at least the target precision (correct / matches): of all score
 *  thresholds t (a match is kept when score <= t), the one with the most
 *  correct matches among those whose pooled precision is >= target. */
struct AtPrecision {
    size_t correct = 0;    // correct matches kept, over all pairs
    size_t matches = 0;    // matches kept
    double threshold = -1; // the score threshold; -1 when no threshold reaches the target
};

inline AtPrecision best_at_precision(std::vector<Scored> all, double target)
{
    std::sort(all.begin(), all.end(), [](const Scored &a, const Scored &b) { return a.score < b.score; });
    AtPrecision best;
    size_t correct = 0;
    for (size_t i = 0; i < all.size(); i++) {
        correct += all[i].correct;
        // A threshold sits between distinct scores: ties are kept together.
        if (i + 1 < all.size() && all[i + 1].score == all[i].score)
            continue;
        if ((double)correct >= target * (double)(i + 1) && correct > best.correct) {
            best.correct = correct;
            best.matches = i + 1;
            best.threshold = all[i].score;
        }
    }
    return best;
}

/** Size of the largest one-to-one pairing of left items with nb right
 *  items, where adj[i] lists the right items left item i may pair with
 *  (maximum bipartite matching by Kuhn's augmenting paths; fine for the
 *  few candidates per keypoint a 3-px tolerance gives). */
inline size_t max_one_to_one(const std::vector<std::vector<int>> &adj, size_t nb)
{
    std::vector<int> owner(nb, -1);
    std::vector<int> seen(nb, -1);
    std::function<bool(int, int)> augment = [&](int i, int stamp) {
        for (int j : adj[(size_t)i]) {
            if (seen[(size_t)j] == stamp)
                continue;
            seen[(size_t)j] = stamp;
            if (owner[(size_t)j] < 0 || augment(owner[(size_t)j], stamp)) {
                owner[(size_t)j] = i;
                return true;
            }
        }
        return false;
    };
    size_t n = 0;
    for (size_t i = 0; i < adj.size(); i++)
        n += augment((int)i, (int)i);
    return n;
}

} // namespace mn_eval
