/*
 * sample.h - patch sampling kernels per instruction set (sample_avx2.c),
 * which patch.c calls where the CPU has them.
 */
#ifndef MN_SAMPLE_H
#define MN_SAMPLE_H

#include "patches.h"

#include <stdint.h>

/* patch.c's mn_sample_grid for a one-tap frame into bytes (levels l0, l1
 * blended by t, as mn_levels gives them), with the same values; only where
 * every offset into the image's bytes and levels fits in 32 bits. */
void mn_sample_grid8_avx2(const mn_pyramid *pyr, const mn_frame *f, int l0, int l1, float t, int g, uint8_t *out);

#endif
