/*
 * blocked_avx512.c - blocked.inc built for
 * AVX-512F (+ FMA): 16-float vectors, one per pixel; 8 x 2 accumulators (16 of 32 zmm),
 * 2 x 10 for conv0 on F(4, 7) rows (20).
 */
#define MN_ISA_NAME avx512
#define MN_VW 16
#define MN_CB 8
#define MN_XB 2
#define MN_X7_CB 2
#include "blocked.inc"
