// half.h - IEEE float16 rounding for the evaluators: what descriptors lose
// when matchnet-colmap --store keeps them as float16 (apps/colmap_store.c
// does the same rounding on bits; test_colmap_store checks it against
// numpy).
#ifndef MN_EVAL_HALF_H
#define MN_EVAL_HALF_H

#include <algorithm>
#include <cmath>

namespace mn_eval {

// f rounded to the nearest float16 (ties to even; 11 significant bits,
// steps of 2^-24 below 2^-14, saturating at +-65504), back as a float.
inline float half_round(float f)
{
    if (!std::isfinite(f) || f == 0)
        return f;
    int e;
    std::frexp(f, &e);
    int q = std::max(e - 11, -24);
    float out = std::ldexp(std::nearbyint(std::ldexp(f, -q)), q);
    return std::fabs(out) > 65504.0f ? std::copysign(65504.0f, f) : out;
}

} // namespace mn_eval

#endif
