/*
 * sample_avx2.c - patch sampling (patch.c's mn_sample_grid) eight grid
 * points at a time with AVX2 gathers, for the common case: one tap, bytes
 * out. The values are the scalar code's to the bit: the same float
 * operations in the same order (this file is built with -ffp-contract=off,
 * as patch.c, built for the baseline instruction set, has no FMA to fuse
 * with), truncation for the integer coordinates and round to nearest even
 * (lrintf's mode) for the bytes. test_patches compares the two paths on
 * every kind of frame.
 *
 * Level 0 is the caller's bytes: a dword gather reads three bytes past each
 * pixel, so lanes whose pixel lies in the last three bytes of the image are
 * read one byte at a time instead.
 *
 * Built with -mavx2 -mfma -ffp-contract=off (kernels.cmake); called only
 * where cpu.c found AVX2 and the image's offsets fit in 32 bits (patch.c).
 */
#include "patches.h"
#include "sample.h"

#include <immintrin.h>
#include <stdint.h>

/* Eight bilinear samples of level lv at (x, y), as patch.c's mn_sample;
 * img8: level 0's bytes (stride8 apart, bytes in all), else NULL. */
static __m256 sample8(const mn_level *lv, const uint8_t *img8, size_t stride8, size_t bytes, __m256 x, __m256 y)
{
    const __m256 zero = _mm256_setzero_ps();
    /* !(x >= 0) -> 0 (NaN too), then x > w - 1 -> w - 1. */
    x = _mm256_blendv_ps(zero, x, _mm256_cmp_ps(x, zero, _CMP_GE_OQ));
    y = _mm256_blendv_ps(zero, y, _mm256_cmp_ps(y, zero, _CMP_GE_OQ));
    const __m256 xmax = _mm256_set1_ps((float)(lv->w - 1)), ymax = _mm256_set1_ps((float)(lv->h - 1));
    x = _mm256_blendv_ps(x, xmax, _mm256_cmp_ps(x, xmax, _CMP_GT_OQ));
    y = _mm256_blendv_ps(y, ymax, _mm256_cmp_ps(y, ymax, _CMP_GT_OQ));
    const __m256i x0 = _mm256_cvttps_epi32(x), y0 = _mm256_cvttps_epi32(y), one = _mm256_set1_epi32(1);
    const __m256i x1 = _mm256_min_epi32(_mm256_add_epi32(x0, one), _mm256_set1_epi32(lv->w - 1));
    const __m256i y1 = _mm256_min_epi32(_mm256_add_epi32(y0, one), _mm256_set1_epi32(lv->h - 1));
    const __m256 fx = _mm256_sub_ps(x, _mm256_cvtepi32_ps(x0)), fy = _mm256_sub_ps(y, _mm256_cvtepi32_ps(y0));
    __m256 a, b, c, d;
    if (img8) {
        const __m256i s = _mm256_set1_epi32((int)stride8);
        const __m256i r0 = _mm256_mullo_epi32(y0, s), r1 = _mm256_mullo_epi32(y1, s);
        const __m256i ia = _mm256_add_epi32(r0, x0), ib = _mm256_add_epi32(r0, x1);
        const __m256i ic = _mm256_add_epi32(r1, x0), id = _mm256_add_epi32(r1, x1);
        __m256i v[4];
        const __m256i idx[4] = {ia, ib, ic, id};
        /* id is each lane's largest offset: a dword from it must end inside the image. */
        if (!_mm256_movemask_epi8(_mm256_cmpgt_epi32(id, _mm256_set1_epi32((int)(bytes - 4))))) {
            const __m256i lo = _mm256_set1_epi32(0xFF);
            for (int k = 0; k < 4; k++)
                v[k] = _mm256_and_si256(_mm256_i32gather_epi32((const int *)(const void *)img8, idx[k], 1), lo);
        } else {
            for (int k = 0; k < 4; k++) {
                int32_t at[8], px[8];
                _mm256_storeu_si256((__m256i *)(void *)at, idx[k]);
                for (int i = 0; i < 8; i++)
                    px[i] = img8[at[i]];
                v[k] = _mm256_loadu_si256((const __m256i *)(const void *)px);
            }
        }
        a = _mm256_cvtepi32_ps(v[0]), b = _mm256_cvtepi32_ps(v[1]);
        c = _mm256_cvtepi32_ps(v[2]), d = _mm256_cvtepi32_ps(v[3]);
    } else {
        const __m256i w = _mm256_set1_epi32(lv->w);
        const __m256i r0 = _mm256_mullo_epi32(y0, w), r1 = _mm256_mullo_epi32(y1, w);
        a = _mm256_i32gather_ps(lv->px, _mm256_add_epi32(r0, x0), 4);
        b = _mm256_i32gather_ps(lv->px, _mm256_add_epi32(r0, x1), 4);
        c = _mm256_i32gather_ps(lv->px, _mm256_add_epi32(r1, x0), 4);
        d = _mm256_i32gather_ps(lv->px, _mm256_add_epi32(r1, x1), 4);
    }
    const __m256 top = _mm256_add_ps(a, _mm256_mul_ps(_mm256_sub_ps(b, a), fx));
    const __m256 bot = _mm256_add_ps(c, _mm256_mul_ps(_mm256_sub_ps(d, c), fx));
    return _mm256_add_ps(top, _mm256_mul_ps(_mm256_sub_ps(bot, top), fy));
}

/* Level l's sample of the points (x, y) of the image, as patch.c's
 * mn_sample_levels: ((x + 0.5) / 2^l - 0.5, likewise y). */
static __m256 level8(const mn_pyramid *pyr, int l, size_t bytes, __m256 x, __m256 y)
{
    const __m256 sc = _mm256_set1_ps(1.0f / (float)(1 << l)), h = _mm256_set1_ps(0.5f);
    const __m256 xs = _mm256_sub_ps(_mm256_mul_ps(_mm256_add_ps(x, h), sc), h);
    const __m256 ys = _mm256_sub_ps(_mm256_mul_ps(_mm256_add_ps(y, h), sc), h);
    return sample8(&pyr->lv[l], l == 0 ? pyr->image : NULL, pyr->stride, bytes, xs, ys);
}

void mn_sample_grid8_avx2(const mn_pyramid *pyr, const mn_frame *f, int l0, int l1, float t, int g, uint8_t *out)
{
    /* Offsets fit in 32 bits (the caller checked), so the last byte's does. */
    const size_t bytes = (size_t)(pyr->lv[0].h - 1) * pyr->stride + (size_t)pyr->lv[0].w;
    const float half = 0.5f * (float)g;
    const __m256 vx = _mm256_set1_ps(f->x), vy = _mm256_set1_ps(f->y), vt = _mm256_set1_ps(t);
    const __m256 j11 = _mm256_set1_ps(f->j11), j12 = _mm256_set1_ps(f->j12);
    const __m256 j21 = _mm256_set1_ps(f->j21), j22 = _mm256_set1_ps(f->j22);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), zero = _mm256_setzero_si256();
    const __m256i top = _mm256_set1_epi32(255);
    for (int v = 0; v < g; v++) {
        const float pv = (float)v + 0.5f - half;
        const __m256 jv1 = _mm256_mul_ps(j12, _mm256_set1_ps(pv)), jv2 = _mm256_mul_ps(j22, _mm256_set1_ps(pv));
        for (int u0 = 0; u0 < g; u0 += 8) {
            /* Lanes past the grid's edge sample clamped points and are not stored. */
            const __m256 u = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_set1_epi32(u0), lanes));
            const __m256 pu = _mm256_sub_ps(_mm256_add_ps(u, _mm256_set1_ps(0.5f)), _mm256_set1_ps(half));
            const __m256 x = _mm256_add_ps(_mm256_add_ps(vx, _mm256_mul_ps(j11, pu)), jv1);
            const __m256 y = _mm256_add_ps(_mm256_add_ps(vy, _mm256_mul_ps(j21, pu)), jv2);
            __m256 val = level8(pyr, l0, bytes, x, y);
            if (t > 0.0f) {
                const __m256 v1 = level8(pyr, l1, bytes, x, y);
                val = _mm256_add_ps(val, _mm256_mul_ps(_mm256_sub_ps(v1, val), vt));
            }
            __m256i q = _mm256_cvtps_epi32(val); /* nearest even: lrintf in the default mode */
            q = _mm256_min_epi32(_mm256_max_epi32(q, zero), top);
            int32_t qs[8];
            _mm256_storeu_si256((__m256i *)(void *)qs, q);
            const int n = g - u0 < 8 ? g - u0 : 8;
            for (int i = 0; i < n; i++)
                out[(size_t)v * g + u0 + i] = (uint8_t)qs[i];
        }
    }
}
