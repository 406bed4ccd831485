/*
 * patch.c - cutting keypoint patches: affine sampling with anti-aliasing.
 *
 * Patch pixel (u, v), centre (u + 0.5 - P/2, v + 0.5 - P/2) in patch units,
 * maps to image point  k + s R(angle) (pu, pv),  s = size * scale_factor / P.
 * For s <= 1 the image is sampled bilinearly. For s > 1 a sample spacing of
 * s pixels would alias, so samples come from a pyramid whose level L is the
 * image low-passed and decimated by 2^L: levels floor(log2 s) and the next
 * are each sampled bilinearly and blended by the fractional part (as in
 * trilinear mip-mapping), which keeps patches continuous as scale changes.
 *
 * Level L+1 pixel i sits at level-L position 2i + 0.5 and is the separable
 * binomial [1 3 3 1] / 8 of level-L pixels 2i-1 .. 2i+2 (edges replicated):
 * with pixel centres at integers, level-L coordinates are
 * x_L = (x + 0.5) / 2^L - 0.5.
 */
#include "patches.h"

#include "common.h"
#include "model.h" /* MN_MAX_PATCH: the same bound as a model's patch */

#include <math.h>
#include <string.h>


mn_extract_params mn_extract_params_default(void)
{
    mn_extract_params p;
    p.scale_factor = MN_SCALE_SIFT;
    p.upright = 0;
    p.patch_size = 64;
    return p;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Decimate src (w x h) by 2 into dst ((w+1)/2 x (h+1)/2). tmp: (w+1)/2 * h floats. */
static void mn_pyr_down(const float *src, const uint8_t *src8, size_t stride8, int w, int h, float *tmp,
                        float *dst)
{
    const int dw = (w + 1) / 2, dh = (h + 1) / 2;
    for (int y = 0; y < h; y++) {
        for (int i = 0; i < dw; i++) {
            int x0 = clampi(2 * i - 1, 0, w - 1), x1 = clampi(2 * i, 0, w - 1);
            int x2 = clampi(2 * i + 1, 0, w - 1), x3 = clampi(2 * i + 2, 0, w - 1);
            float a, b, c, d;
            if (src8) {
                const uint8_t *r = src8 + (size_t)y * stride8;
                a = r[x0], b = r[x1], c = r[x2], d = r[x3];
            } else {
                const float *r = src + (size_t)y * w;
                a = r[x0], b = r[x1], c = r[x2], d = r[x3];
            }
            tmp[(size_t)y * dw + i] = (a + 3.0f * (b + c) + d) * 0.125f;
        }
    }
    for (int j = 0; j < dh; j++) {
        const float *r0 = tmp + (size_t)clampi(2 * j - 1, 0, h - 1) * dw;
        const float *r1 = tmp + (size_t)clampi(2 * j, 0, h - 1) * dw;
        const float *r2 = tmp + (size_t)clampi(2 * j + 1, 0, h - 1) * dw;
        const float *r3 = tmp + (size_t)clampi(2 * j + 2, 0, h - 1) * dw;
        float *o = dst + (size_t)j * dw;
        for (int i = 0; i < dw; i++)
            o[i] = (r0[i] + 3.0f * (r1[i] + r2[i]) + r3[i]) * 0.125f;
    }
}

/* Bilinear sample at (x, y) in level coordinates, edges replicated. */
static float mn_sample(const mn_level *l, const uint8_t *img8, size_t stride8, float x, float y)
{
    /* Clamp first: far-away coordinates must not overflow the int conversion,
     * and NaN (from an infinite support) must not reach it either. */
    if (!(x >= 0.0f))
        x = 0.0f;
    if (!(y >= 0.0f))
        y = 0.0f;
    if (x > (float)(l->w - 1))
        x = (float)(l->w - 1);
    if (y > (float)(l->h - 1))
        y = (float)(l->h - 1);
    int x0 = (int)x, y0 = (int)y;
    int x1 = x0 + 1 < l->w ? x0 + 1 : x0, y1 = y0 + 1 < l->h ? y0 + 1 : y0;
    float fx = x - (float)x0, fy = y - (float)y0, a, b, c, d;
    if (img8) {
        const uint8_t *r0 = img8 + (size_t)y0 * stride8, *r1 = img8 + (size_t)y1 * stride8;
        a = r0[x0], b = r0[x1], c = r1[x0], d = r1[x1];
    } else {
        const float *r0 = l->px + (size_t)y0 * l->w, *r1 = l->px + (size_t)y1 * l->w;
        a = r0[x0], b = r0[x1], c = r1[x0], d = r1[x1];
    }
    float top = a + (b - a) * fx, bot = c + (d - c) * fx;
    return top + (bot - top) * fy;
}

/* Validate the keypoints and build the pyramid levels they need. */
mn_status mn_pyramid_init(const char *fn, const uint8_t *image, int width, int height, size_t stride,
                          const mn_keypoint *kps, size_t n, const mn_extract_params *p, mn_pyramid *pyr)
{
    memset(pyr, 0, sizeof *pyr);
    if (!image || !kps)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !image ? "image" : "keypoints");
    if (width < 1 || height < 1 || stride < (size_t)width)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "image %dx%d with stride %zu", width, height, stride);
    if (!(p->scale_factor > 0.0f) || !isfinite(p->scale_factor))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "scale_factor %g must be positive", p->scale_factor);
    if (p->patch_size < 1 || p->patch_size > MN_MAX_PATCH)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "patch_size %d, expected 1..%d", p->patch_size, MN_MAX_PATCH);
    const int P = p->patch_size;
    if (n > SIZE_MAX / ((size_t)P * P))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "n = %zu keypoints is too many", n);

    /* Validate every keypoint before writing anything; find the deepest level needed. */
    int need = 0;
    for (size_t i = 0; i < n; i++) {
        const mn_keypoint *k = &kps[i];
        if (!isfinite(k->x) || !isfinite(k->y) || !isfinite(k->size) || !isfinite(k->angle))
            return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "keypoint %zu has a non-finite value (%g, %g, size %g, angle %g)",
                            i, k->x, k->y, k->size, k->angle);
        if (!(k->size > 0.0f))
            return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "keypoint %zu has size %g; sizes must be positive", i, k->size);
        double s = (double)k->size * p->scale_factor / P;
        if (s > 1.0) {
            int l = (int)floor(log2(s)) + 1;
            if (l > need)
                need = l;
        }
    }
    /* Levels stop once the image is a single pixel: deeper ones equal it. */
    mn_level *lv = pyr->lv;
    pyr->image = image;
    pyr->stride = stride;
    pyr->n = 1;
    lv[0].w = width, lv[0].h = height, lv[0].px = NULL;
    while (pyr->n <= need && pyr->n < MN_MAX_LEVELS && (lv[pyr->n - 1].w > 1 || lv[pyr->n - 1].h > 1)) {
        lv[pyr->n].w = (lv[pyr->n - 1].w + 1) / 2;
        lv[pyr->n].h = (lv[pyr->n - 1].h + 1) / 2;
        lv[pyr->n].px = NULL;
        pyr->n++;
    }
    if (pyr->n == 1)
        return MN_OK;
    float *tmp = mn_malloc(sizeof(float) * (size_t)lv[1].w * height);
    if (!tmp) {
        pyr->n = 1;
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for a %dx%d pyramid", width, height);
    }
    for (int l = 1; l < pyr->n; l++) {
        lv[l].px = mn_malloc(sizeof(float) * (size_t)lv[l].w * lv[l].h);
        if (!lv[l].px) {
            mn_free(tmp);
            mn_pyramid_release(pyr);
            return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for a %dx%d pyramid", width, height);
        }
        mn_pyr_down(lv[l - 1].px, l == 1 ? image : NULL, stride, lv[l - 1].w, lv[l - 1].h, tmp, lv[l].px);
    }
    mn_free(tmp);
    return MN_OK;
}

void mn_pyramid_release(mn_pyramid *pyr)
{
    for (int l = 1; l < pyr->n; l++)
        mn_free(pyr->lv[l].px);
    memset(pyr, 0, sizeof *pyr);
}

/* Cut the patches of keypoints already validated by mn_pyramid_init. */
void mn_pyramid_sample(const mn_pyramid *pyr, const mn_keypoint *kps, size_t n, const mn_extract_params *p,
                       uint8_t *patches)
{
    const mn_level *lv = pyr->lv;
    const int P = p->patch_size, nlev = pyr->n;
    const uint8_t *image = pyr->image;
    const size_t stride = pyr->stride;
    for (size_t i = 0; i < n; i++) {
        const mn_keypoint *k = &kps[i];
        /* In double: size * scale_factor can overflow a float. */
        const double s = (double)k->size * p->scale_factor / P;
        float a = (p->upright || k->angle == -1.0f) ? 0.0f : k->angle * (float)(3.14159265358979323846 / 180.0);
        const float ca = (float)(cos(a) * s), sa = (float)(sin(a) * s);
        /* Levels and blend weight. */
        int l0 = 0;
        float t = 0.0f;
        if (s > 1.0) {
            double lf = log2(s);
            if (lf >= nlev - 1) {
                l0 = nlev - 1;
            } else {
                l0 = (int)floor(lf);
                t = (float)(lf - l0);
            }
        }
        int l1 = l0 + 1;
        if (l0 >= nlev - 1) {
            l0 = l1 = nlev - 1;
            t = 0.0f;
        }
        uint8_t *out = patches + i * (size_t)P * P;
        const float half = 0.5f * (float)P;
        for (int v = 0; v < P; v++) {
            const float pv = (float)v + 0.5f - half;
            for (int u = 0; u < P; u++) {
                const float pu = (float)u + 0.5f - half;
                const float x = k->x + ca * pu - sa * pv, y = k->y + sa * pu + ca * pv;
                float val;
                {
                    float sc = 1.0f / (float)(1 << l0);
                    val = mn_sample(&lv[l0], l0 == 0 ? image : NULL, stride, (x + 0.5f) * sc - 0.5f,
                                    (y + 0.5f) * sc - 0.5f);
                }
                if (t > 0.0f) {
                    float sc = 1.0f / (float)(1 << l1);
                    float v1 = mn_sample(&lv[l1], NULL, stride, (x + 0.5f) * sc - 0.5f, (y + 0.5f) * sc - 0.5f);
                    val += (v1 - val) * t;
                }
                int q = (int)lrintf(val);
                out[(size_t)v * P + u] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
            }
        }
    }
}

mn_status mn_extract_patches(const uint8_t *image, int width, int height, size_t stride,
                             const mn_keypoint *kps, size_t n, const mn_extract_params *params,
                             uint8_t *patches)
{
    static const char fn[] = "mn_extract_patches";
    mn_extract_params p = params ? *params : mn_extract_params_default();
    if (n == 0)
        return MN_OK;
    if (!image || !kps || !patches)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !image ? "image" : !kps ? "keypoints" : "patches");
    mn_pyramid pyr;
    mn_status st = mn_pyramid_init(fn, image, width, height, stride, kps, n, &p, &pyr);
    if (st != MN_OK)
        return st;
    mn_pyramid_sample(&pyr, kps, n, &p, patches);
    mn_pyramid_release(&pyr);
    return MN_OK;
}
