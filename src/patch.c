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
 *
 * Affine keypoints (mn_extract_patches_affine) map the patch through a
 * general J = (2 scale_factor / P) A, whose singular values s1 >= s2 are
 * the image pixels one patch pixel spans along the ellipse's longer and
 * shorter axes. The level follows s2, so the short axis is not blurred
 * more than it must, and up to MN_MAX_TAPS samples spread over s1 along
 * the long axis are averaged so that it does not alias either (the
 * anisotropic filtering of texture mapping). A similarity keypoint has
 * s1 = s2 and takes one sample: the patches of mn_keypoint are unchanged.
 */
#include "patches.h"

#include "common.h"
#include "model.h" /* MN_MAX_PATCH: the same bound as a model's patch */
#include "kernels/cpu.h"
#include "kernels/sample.h"

#include <math.h>
#include <stdint.h>
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

/* ---- frames ---- */

void mn_frame_from_keypoint(const mn_keypoint *k, const mn_extract_params *p, mn_frame *f)
{
    /* In double: size * scale_factor can overflow a float. */
    const double s = (double)k->size * p->scale_factor / p->patch_size;
    float a = (p->upright || k->angle == -1.0f) ? 0.0f : k->angle * (float)(3.14159265358979323846 / 180.0);
    const float ca = (float)(cos(a) * s), sa = (float)(sin(a) * s);
    f->x = k->x, f->y = k->y;
    f->j11 = ca, f->j12 = -sa, f->j21 = sa, f->j22 = ca;
    f->level = s;
    f->taps = 1;
    f->tx = f->ty = 0.0f;
}

void mn_frame_from_matrix(double x, double y, double j11, double j12, double j21, double j22, double fine,
                          mn_frame *f)
{
    f->x = (float)x, f->y = (float)y;
    f->j11 = (float)j11, f->j12 = (float)j12, f->j21 = (float)j21, f->j22 = (float)j22;
    /* Singular values and the longer axis from J J^T = [a b; b c]; scaled
     * first, as its entries can overflow a double for huge supports. */
    double m = fmax(fmax(fabs(j11), fabs(j12)), fmax(fabs(j21), fabs(j22)));
    double s1 = 0.0, s2 = 0.0, ux = 1.0, uy = 0.0;
    if (m > 0.0 && isfinite(m)) {
        double b11 = j11 / m, b12 = j12 / m, b21 = j21 / m, b22 = j22 / m;
        double a = b11 * b11 + b12 * b12, b = b11 * b21 + b12 * b22, c = b21 * b21 + b22 * b22;
        double mid = 0.5 * (a + c), r = hypot(0.5 * (a - c), b);
        double det = fabs(b11 * b22 - b12 * b21);
        double l1 = mid + r;
        s1 = sqrt(l1) * m;
        s2 = l1 > 0.0 ? det / sqrt(l1) * m : 0.0; /* det / s1: no cancellation for thin ellipses */
        double th = 0.5 * atan2(2.0 * b, a - c);
        ux = cos(th), uy = sin(th);
    }
    double lvl = fine * fmax(s2, s1 / MN_MAX_TAPS);
    int taps = 1;
    if (s1 > fmax(lvl, 1.0) * 1.001) {
        double t = ceil(s1 / fmax(lvl, 1.0) - 1e-3);
        taps = t > MN_MAX_TAPS ? MN_MAX_TAPS : (int)t;
    }
    f->level = lvl;
    f->taps = taps;
    f->tx = (float)(s1 * ux), f->ty = (float)(s1 * uy);
}

void mn_frame_from_affine(const mn_affine_keypoint *k, const mn_extract_params *p, mn_frame *f)
{
    double a11 = k->a11, a12 = k->a12, a21 = k->a21, a22 = k->a22;
    if (p->upright) {
        /* Turn the frame by psi so that A R(psi) e1 lies along the image's x. */
        double psi = atan2(-a21, a22), c = cos(psi), s = sin(psi);
        double b11 = a11 * c + a12 * s, b12 = -a11 * s + a12 * c;
        double b21 = a21 * c + a22 * s, b22 = -a21 * s + a22 * c;
        a11 = b11, a12 = b12, a21 = b21, a22 = b22;
    }
    const double q = 2.0 * p->scale_factor / p->patch_size;
    mn_frame_from_matrix(k->x, k->y, q * a11, q * a12, q * a21, q * a22, 1.0, f);
}

/* ---- checks and the pyramid ---- */

mn_status mn_extract_check(const char *fn, const uint8_t *image, int width, int height, size_t stride,
                           const mn_extract_params *p, size_t n)
{
    if (!image)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "image is NULL");
    if (width < 1 || height < 1 || stride < (size_t)width)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "image %dx%d with stride %zu", width, height, stride);
    if (!(p->scale_factor > 0.0f) || !isfinite(p->scale_factor))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "scale_factor %g must be positive", p->scale_factor);
    if (p->patch_size < 1 || p->patch_size > MN_MAX_PATCH)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "patch_size %d, expected 1..%d", p->patch_size, MN_MAX_PATCH);
    const int P = p->patch_size;
    if (n > SIZE_MAX / ((size_t)P * P))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "n = %zu keypoints is too many", n);
    return MN_OK;
}

mn_status mn_pyramid_build(const char *fn, const uint8_t *image, int width, int height, size_t stride,
                           double max_level, mn_pyramid *pyr)
{
    memset(pyr, 0, sizeof *pyr);
    int need = 0;
    if (max_level > 1.0)
        need = isfinite(max_level) ? (int)fmin(floor(log2(max_level)) + 1, MN_MAX_LEVELS) : MN_MAX_LEVELS;
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

/* Validate the keypoints and build the pyramid levels they need. */
mn_status mn_pyramid_init(const char *fn, const uint8_t *image, int width, int height, size_t stride,
                          const mn_keypoint *kps, const mn_affine_keypoint *akps, size_t n,
                          const mn_extract_params *p, mn_pyramid *pyr)
{
    memset(pyr, 0, sizeof *pyr);
    if (!image || !(kps || akps))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !image ? "image" : "keypoints");
    mn_status st = mn_extract_check(fn, image, width, height, stride, p, n);
    if (st != MN_OK)
        return st;

    /* Validate every keypoint before writing anything; find the deepest level needed. */
    double max_level = 0.0;
    for (size_t i = 0; i < n; i++) {
        mn_frame f;
        if (kps) {
            const mn_keypoint *k = &kps[i];
            if (!isfinite(k->x) || !isfinite(k->y) || !isfinite(k->size) || !isfinite(k->angle))
                return mn_error(MN_ERR_INVALID_ARGUMENT, fn,
                                "keypoint %zu has a non-finite value (%g, %g, size %g, angle %g)", i, k->x, k->y,
                                k->size, k->angle);
            if (!(k->size > 0.0f))
                return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "keypoint %zu has size %g; sizes must be positive", i,
                                k->size);
            f.level = (double)k->size * p->scale_factor / p->patch_size;
        } else {
            const mn_affine_keypoint *k = &akps[i];
            if (!isfinite(k->x) || !isfinite(k->y) || !isfinite(k->a11) || !isfinite(k->a12) || !isfinite(k->a21) ||
                !isfinite(k->a22))
                return mn_error(MN_ERR_INVALID_ARGUMENT, fn,
                                "affine keypoint %zu has a non-finite value (%g, %g, A = [%g %g; %g %g])", i, k->x,
                                k->y, k->a11, k->a12, k->a21, k->a22);
            double det = (double)k->a11 * k->a22 - (double)k->a12 * k->a21;
            if (!(det > 0.0))
                return mn_error(MN_ERR_INVALID_ARGUMENT, fn,
                                "affine keypoint %zu has det A = %g (A = [%g %g; %g %g]); it must be positive", i,
                                det, k->a11, k->a12, k->a21, k->a22);
            mn_frame_from_affine(k, p, &f);
        }
        if (f.level > max_level)
            max_level = f.level;
    }
    return mn_pyramid_build(fn, image, width, height, stride, max_level, pyr);
}

void mn_pyramid_release(mn_pyramid *pyr)
{
    for (int l = 1; l < pyr->n; l++)
        mn_free(pyr->lv[l].px);
    memset(pyr, 0, sizeof *pyr);
}

/* ---- sampling ---- */

/* The two levels and blend weight for a sample spanning s image pixels. */
static void mn_levels(int nlev, double s, int *l0_out, int *l1_out, float *t_out)
{
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
    *l0_out = l0, *l1_out = l1, *t_out = t;
}

/* Image point (x, y) from levels l0 and l1 blended by t. */
static float mn_sample_levels(const mn_pyramid *pyr, int l0, int l1, float t, float x, float y)
{
    float val;
    {
        float sc = 1.0f / (float)(1 << l0);
        val = mn_sample(&pyr->lv[l0], l0 == 0 ? pyr->image : NULL, pyr->stride, (x + 0.5f) * sc - 0.5f,
                        (y + 0.5f) * sc - 0.5f);
    }
    if (t > 0.0f) {
        float sc = 1.0f / (float)(1 << l1);
        float v1 = mn_sample(&pyr->lv[l1], NULL, pyr->stride, (x + 0.5f) * sc - 0.5f, (y + 0.5f) * sc - 0.5f);
        val += (v1 - val) * t;
    }
    return val;
}

/* Whether sample_avx2.c may cut this pyramid's patches: AVX2 (and not
 * MN_SIMD=generic), and every byte offset of the image in 32 bits. */
static int mn_sample_vector(const mn_pyramid *pyr)
{
#if defined(MN_HAVE_X86_KERNELS)
    const mn_cpu *cpu = mn_cpu_get();
    const size_t bytes = (size_t)(pyr->lv[0].h - 1) * pyr->stride + (size_t)pyr->lv[0].w;
    return cpu->has_avx2 && cpu->tower != MN_ISA_GENERIC && bytes <= (size_t)INT32_MAX && bytes >= 4;
#else
    (void)pyr;
    return 0;
#endif
}

/* A g x g grid through frame f, into bytes (rounded) or floats; vector: the
 * vector kernel may do it (the same values). */
static void mn_sample_grid(const mn_pyramid *pyr, const mn_frame *f, int g, uint8_t *out8, float *outf, int vector)
{
    int l0, l1;
    float t;
    mn_levels(pyr->n, f->level, &l0, &l1, &t);
#if defined(MN_HAVE_X86_KERNELS)
    if (vector && f->taps == 1 && out8) {
        mn_sample_grid8_avx2(pyr, f, l0, l1, t, g, out8);
        return;
    }
#else
    (void)vector;
#endif
    const float half = 0.5f * (float)g, inv_taps = 1.0f / (float)f->taps;
    for (int v = 0; v < g; v++) {
        const float pv = (float)v + 0.5f - half;
        for (int u = 0; u < g; u++) {
            const float pu = (float)u + 0.5f - half;
            const float x = f->x + f->j11 * pu + f->j12 * pv, y = f->y + f->j21 * pu + f->j22 * pv;
            float val;
            if (f->taps == 1) {
                val = mn_sample_levels(pyr, l0, l1, t, x, y);
            } else {
                val = 0.0f;
                for (int i = 0; i < f->taps; i++) {
                    const float o = ((float)i + 0.5f) * inv_taps - 0.5f;
                    val += mn_sample_levels(pyr, l0, l1, t, x + o * f->tx, y + o * f->ty);
                }
                val *= inv_taps;
            }
            if (outf) {
                outf[(size_t)v * g + u] = val;
            } else {
                int q = (int)lrintf(val);
                out8[(size_t)v * g + u] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
            }
        }
    }
}

/* Cut the patches of keypoints already validated by mn_pyramid_init. */
void mn_pyramid_sample(const mn_pyramid *pyr, const mn_keypoint *kps, const mn_affine_keypoint *akps, size_t n,
                       const mn_extract_params *p, uint8_t *patches)
{
    mn_pyramid_sample_path(pyr, kps, akps, n, p, patches, mn_sample_vector(pyr));
}

void mn_pyramid_sample_path(const mn_pyramid *pyr, const mn_keypoint *kps, const mn_affine_keypoint *akps,
                            size_t n, const mn_extract_params *p, uint8_t *patches, int vector)
{
    const int P = p->patch_size;
    for (size_t i = 0; i < n; i++) {
        mn_frame f;
        if (kps)
            mn_frame_from_keypoint(&kps[i], p, &f);
        else
            mn_frame_from_affine(&akps[i], p, &f);
        mn_sample_grid(pyr, &f, P, patches + i * (size_t)P * P, NULL, vector);
    }
}

void mn_pyramid_sample_frame(const mn_pyramid *pyr, const mn_frame *f, int g, float *out)
{
    mn_sample_grid(pyr, f, g, NULL, out, 0);
}

static mn_status mn_extract(const char *fn, const uint8_t *image, int width, int height, size_t stride,
                            const mn_keypoint *kps, const mn_affine_keypoint *akps, size_t n,
                            const mn_extract_params *params, uint8_t *patches)
{
    mn_extract_params p = params ? *params : mn_extract_params_default();
    if (n == 0)
        return MN_OK;
    if (!image || !(kps || akps) || !patches)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL",
                        !image ? "image" : !(kps || akps) ? "keypoints" : "patches");
    mn_pyramid pyr;
    mn_status st = mn_pyramid_init(fn, image, width, height, stride, kps, akps, n, &p, &pyr);
    if (st != MN_OK)
        return st;
    mn_pyramid_sample(&pyr, kps, akps, n, &p, patches);
    mn_pyramid_release(&pyr);
    return MN_OK;
}

mn_status mn_extract_patches(const uint8_t *image, int width, int height, size_t stride,
                             const mn_keypoint *kps, size_t n, const mn_extract_params *params,
                             uint8_t *patches)
{
    return mn_extract("mn_extract_patches", image, width, height, stride, kps, NULL, n, params, patches);
}

mn_status mn_extract_patches_affine(const uint8_t *image, int width, int height, size_t stride,
                                    const mn_affine_keypoint *kps, size_t n, const mn_extract_params *params,
                                    uint8_t *patches)
{
    if (n && !kps)
        return mn_error(MN_ERR_INVALID_ARGUMENT, "mn_extract_patches_affine", "keypoints is NULL");
    return mn_extract("mn_extract_patches_affine", image, width, height, stride, NULL, kps, n, params, patches);
}

/* ---- conversions ---- */

mn_affine_keypoint mn_affine_from_keypoint(const mn_keypoint *k)
{
    const double r = 0.5 * (double)k->size;
    const double a = (k->angle == -1.0f ? 0.0 : (double)k->angle) * (3.14159265358979323846 / 180.0);
    const double c = cos(a), s = sin(a);
    mn_affine_keypoint o;
    o.x = k->x, o.y = k->y;
    o.a11 = (float)(r * c), o.a12 = (float)(-r * s);
    o.a21 = (float)(r * s), o.a22 = (float)(r * c);
    return o;
}

mn_keypoint mn_affine_to_keypoint(const mn_affine_keypoint *k)
{
    const double det = (double)k->a11 * k->a22 - (double)k->a12 * k->a21;
    double deg = atan2((double)k->a21, (double)k->a11) * (180.0 / 3.14159265358979323846);
    if (deg < 0.0)
        deg += 360.0;
    mn_keypoint o;
    o.x = k->x, o.y = k->y;
    o.size = (float)(2.0 * sqrt(fabs(det)));
    o.angle = (float)deg;
    if (o.angle >= 360.0f) /* just under 360 may round up to it */
        o.angle = 0.0f;
    return o;
}
