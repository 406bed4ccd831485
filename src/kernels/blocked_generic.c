/*
 * blocked_generic.c - blocked.inc built for
 * no instruction-set flags, 4-float vectors: the compiler's baseline (SSE2 on
 * x86-64, NEON on arm64); 4 x 2 accumulators (8 of 16 xmm).
 */
#define MN_ISA_NAME generic
#define MN_VW 4
#define MN_CB 4
#define MN_XB 2
#include "blocked.inc"
