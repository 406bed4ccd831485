/*
 * winograd.h - transform matrices of the Winograd convolutions F(4x4, 3x3)
 * and F(4x4, 5x5) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2016), by Toom-Cook on the points 0, 1, -1, 2, -2 (and 1/2,
 * -1/2 for 5x5) and infinity; and F(2, 7) along the rows of conv0 (one
 * input channel, 7x7: the 7 kernel rows sum in the transformed domain, as
 * input channels do in 2-D), on the 5x5 points, so BT is the 5x5 one.
 *
 * For one input tile d (alpha x alpha), filter g (r x r) and output tile y
 * (4 x 4), alpha = 4 + r - 1:  y = AT [(G g G^T) .* (BT d BT^T)] AT^T,
 * which is the cross-correlation conv2d computes. Every entry is an exact
 * binary fraction except G's, which are applied once, in double, when a
 * model is loaded. python/winograd.py derives them and checks them exactly
 * (CTest: test_winograd_tables).
 *
 * Static tables, so that code which unrolls over them with constant indices
 * folds the zeros and ones away (the per-instruction-set tower files do).
 */
#ifndef MN_WINOGRAD_H
#define MN_WINOGRAD_H

#if defined(__GNUC__)
#define MN_MAYBE_UNUSED __attribute__((unused))
#else
#define MN_MAYBE_UNUSED
#endif

#define MN_WINO_M 4 /* output tile side */

MN_MAYBE_UNUSED static const float mn_wino43_bt[6][6] = {
    {4.0, 0.0, -5.0, 0.0, 1.0, 0.0},
    {0.0, -4.0, -4.0, 1.0, 1.0, 0.0},
    {0.0, 4.0, -4.0, -1.0, 1.0, 0.0},
    {0.0, -2.0, -1.0, 2.0, 1.0, 0.0},
    {0.0, 2.0, -1.0, -2.0, 1.0, 0.0},
    {0.0, 4.0, 0.0, -5.0, 0.0, 1.0}};
MN_MAYBE_UNUSED static const float mn_wino43_at[4][6] = {
    {1.0, 1.0, 1.0, 1.0, 1.0, 0.0},
    {0.0, 1.0, -1.0, 2.0, -2.0, 0.0},
    {0.0, 1.0, 1.0, 4.0, 4.0, 0.0},
    {0.0, 1.0, -1.0, 8.0, -8.0, 1.0}};
MN_MAYBE_UNUSED static const double mn_wino43_g[6][3] = {
    {1.0 / 4.0, 0.0, 0.0},
    {-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0},
    {-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0},
    {1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0},
    {1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0},
    {0.0, 0.0, 1.0}};
MN_MAYBE_UNUSED static const float mn_wino45_bt[8][8] = {
    {-1.0, 0.0, 21.0 / 4.0, 0.0, -21.0 / 4.0, 0.0, 1.0, 0.0},
    {0.0, 1.0, 1.0, -17.0 / 4.0, -17.0 / 4.0, 1.0, 1.0, 0.0},
    {0.0, -1.0, 1.0, 17.0 / 4.0, -17.0 / 4.0, -1.0, 1.0, 0.0},
    {0.0, 1.0 / 2.0, 1.0 / 4.0, -5.0 / 2.0, -5.0 / 4.0, 2.0, 1.0, 0.0},
    {0.0, -1.0 / 2.0, 1.0 / 4.0, 5.0 / 2.0, -5.0 / 4.0, -2.0, 1.0, 0.0},
    {0.0, 2.0, 4.0, -5.0 / 2.0, -5.0, 1.0 / 2.0, 1.0, 0.0},
    {0.0, -2.0, 4.0, 5.0 / 2.0, -5.0, -1.0 / 2.0, 1.0, 0.0},
    {0.0, -1.0, 0.0, 21.0 / 4.0, 0.0, -21.0 / 4.0, 0.0, 1.0}};
MN_MAYBE_UNUSED static const float mn_wino45_at[4][8] = {
    {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0},
    {0.0, 1.0, -1.0, 2.0, -2.0, 1.0 / 2.0, -1.0 / 2.0, 0.0},
    {0.0, 1.0, 1.0, 4.0, 4.0, 1.0 / 4.0, 1.0 / 4.0, 0.0},
    {0.0, 1.0, -1.0, 8.0, -8.0, 1.0 / 8.0, -1.0 / 8.0, 1.0}};
MN_MAYBE_UNUSED static const double mn_wino45_g[8][5] = {
    {-1.0, 0.0, 0.0, 0.0, 0.0},
    {-2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0},
    {-2.0 / 9.0, 2.0 / 9.0, -2.0 / 9.0, 2.0 / 9.0, -2.0 / 9.0},
    {1.0 / 90.0, 1.0 / 45.0, 2.0 / 45.0, 4.0 / 45.0, 8.0 / 45.0},
    {1.0 / 90.0, -1.0 / 45.0, 2.0 / 45.0, -4.0 / 45.0, 8.0 / 45.0},
    {32.0 / 45.0, 16.0 / 45.0, 8.0 / 45.0, 4.0 / 45.0, 2.0 / 45.0},
    {32.0 / 45.0, -16.0 / 45.0, 8.0 / 45.0, -4.0 / 45.0, 2.0 / 45.0},
    {0.0, 0.0, 0.0, 0.0, 1.0}};
MN_MAYBE_UNUSED static const float mn_wino27_bt[8][8] = {
    {-1.0, 0.0, 21.0 / 4.0, 0.0, -21.0 / 4.0, 0.0, 1.0, 0.0},
    {0.0, 1.0, 1.0, -17.0 / 4.0, -17.0 / 4.0, 1.0, 1.0, 0.0},
    {0.0, -1.0, 1.0, 17.0 / 4.0, -17.0 / 4.0, -1.0, 1.0, 0.0},
    {0.0, 1.0 / 2.0, 1.0 / 4.0, -5.0 / 2.0, -5.0 / 4.0, 2.0, 1.0, 0.0},
    {0.0, -1.0 / 2.0, 1.0 / 4.0, 5.0 / 2.0, -5.0 / 4.0, -2.0, 1.0, 0.0},
    {0.0, 2.0, 4.0, -5.0 / 2.0, -5.0, 1.0 / 2.0, 1.0, 0.0},
    {0.0, -2.0, 4.0, 5.0 / 2.0, -5.0, -1.0 / 2.0, 1.0, 0.0},
    {0.0, -1.0, 0.0, 21.0 / 4.0, 0.0, -21.0 / 4.0, 0.0, 1.0}};
MN_MAYBE_UNUSED static const float mn_wino27_at[2][8] = {
    {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0},
    {0.0, 1.0, -1.0, 2.0, -2.0, 1.0 / 2.0, -1.0 / 2.0, 1.0}};
MN_MAYBE_UNUSED static const double mn_wino27_g[8][7] = {
    {-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0},
    {-2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0},
    {-2.0 / 9.0, 2.0 / 9.0, -2.0 / 9.0, 2.0 / 9.0, -2.0 / 9.0, 2.0 / 9.0, -2.0 / 9.0},
    {1.0 / 90.0, 1.0 / 45.0, 2.0 / 45.0, 4.0 / 45.0, 8.0 / 45.0, 16.0 / 45.0, 32.0 / 45.0},
    {1.0 / 90.0, -1.0 / 45.0, 2.0 / 45.0, -4.0 / 45.0, 8.0 / 45.0, -16.0 / 45.0, 32.0 / 45.0},
    {32.0 / 45.0, 16.0 / 45.0, 8.0 / 45.0, 4.0 / 45.0, 2.0 / 45.0, 1.0 / 45.0, 1.0 / 90.0},
    {32.0 / 45.0, -16.0 / 45.0, 8.0 / 45.0, -4.0 / 45.0, 2.0 / 45.0, -1.0 / 45.0, 1.0 / 90.0},
    {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0}};

#endif
