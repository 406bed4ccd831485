/*
 * blocked_avx2.c - blocked.inc built for
 * AVX2 + FMA: 8-float vectors, two per pixel; 4 x 2 accumulators (8 of 16 ymm).
 */
#define MN_ISA_NAME avx2
#define MN_VW 8
#define MN_CB 4
#define MN_XB 2
#include "blocked.inc"
