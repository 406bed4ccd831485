/*
 * tower_blocked_avx512.c - tower_blocked.inc built for
 * AVX-512F (+ FMA): 16-float vectors, one per pixel; 8 x 2 accumulators (16 of 32 zmm).
 */
#define MN_ISA_NAME avx512
#define MN_VW 16
#define MN_CB 8
#define MN_XB 2
#if defined(MN_HAVE_X86_BLOCKED)
#include "tower_blocked.inc"
#else
typedef int mn_tower_blocked_avx512_unused; /* not an x86 build */
#endif
