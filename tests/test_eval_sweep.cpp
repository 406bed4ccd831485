// test_eval_sweep.cpp - the fair-comparison figures of matchnet-eval-matching
// (eval/sweep.h) on cases whose answers are worked out by hand: correct
// matches at a target precision, and the largest one-to-one pairing.
#include "sweep.h"

#include <cstdio>
#include <cstdlib>

static int failures = 0;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                              \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

int main()
{
    using mn_eval::Scored;
    // Sorted by score: C C W C W W C C (C correct, W wrong). Prefix
    // precisions: 1, 1, .67, .75, .6, .5, .57, .625. At target 0.6 both the
    // 5-prefix (3 correct) and the whole list (5 correct) qualify: the whole.
    std::vector<Scored> s = {{0.7, true}, {0.1, true}, {0.2, true}, {0.3, false}, {0.4, true},
                             {0.5, false}, {0.6, false}, {0.8, true}};
    mn_eval::AtPrecision a = mn_eval::best_at_precision(s, 0.6);
    CHECK(a.correct == 5 && a.matches == 8 && a.threshold == 0.8);
    a = mn_eval::best_at_precision(s, 0.7);
    CHECK(a.correct == 3 && a.matches == 4 && a.threshold == 0.4);
    a = mn_eval::best_at_precision(s, 1.0);
    CHECK(a.correct == 2 && a.matches == 2 && a.threshold == 0.2);
    // Ties stay together: a correct and a wrong match at one score cannot be split.
    std::vector<Scored> t = {{0.5, true}, {0.5, false}, {0.9, true}};
    a = mn_eval::best_at_precision(t, 0.9);
    CHECK(a.correct == 0 && a.threshold == -1);
    a = mn_eval::best_at_precision(t, 0.5);
    CHECK(a.correct == 2 && a.matches == 3);
    CHECK(mn_eval::best_at_precision({}, 0.5).correct == 0);

    // Pairing: left 0 -> {0, 1}, 1 -> {0}, 2 -> {1, 2}, 3 -> {2}. Taking 0-0
    // first (greedy) must be undone for 1-0; only three right items exist,
    // and 1-0, 0-1, 2-2 uses them all (3 then stays unpaired).
    std::vector<std::vector<int>> adj = {{0, 1}, {0}, {1, 2}, {2}};
    CHECK(mn_eval::max_one_to_one(adj, 3) == 3);
    // A perfect matching that needs a long augmenting path.
    std::vector<std::vector<int>> chain(50);
    for (int i = 0; i < 50; i++) {
        chain[(size_t)i].push_back(i);
        if (i + 1 < 50)
            chain[(size_t)i].insert(chain[(size_t)i].begin(), i + 1);
    }
    CHECK(mn_eval::max_one_to_one(chain, 50) == 50);
    CHECK(mn_eval::max_one_to_one({{}, {}}, 4) == 0);
    if (failures)
        return 1;
    std::printf("test_eval_sweep: all checks passed\n");
    return 0;
}
