/*
 * test_affine.c - affine keypoints: the frame convention (exact on a
 * linear ramp), circles equal to mn_keypoint patches, shape estimation
 * covariant under known affine maps of a rendered texture (anisotropic
 * scaling, shear, rotation), affine-normalised patches that agree where
 * similarity ones do not, isotropic and elliptic blobs, degenerate
 * windows, thread invariance, bad input.
 */
#include "matchnet.h"
#include "check.h"

#include <stdint.h>

#define W 512
#define H 512
#define PI 3.14159265358979323846
#define NBLOB 300
#define NKP 48

/* ---- a texture as a continuous function, rendered under exact maps ---- */

static double blob_x[NBLOB], blob_y[NBLOB], blob_s[NBLOB], blob_a[NBLOB];
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

/* Gaussian blobs of sigma 2..8 px, light and dark: structure at every
 * scale the keypoints below look at, and no straight edges. */
static double texture(double x, double y)
{
    double v = 128.0;
    for (int i = 0; i < NBLOB; i++) {
        double dx = x - blob_x[i], dy = y - blob_y[i], d2 = dx * dx + dy * dy;
        if (d2 < 36.0 * blob_s[i] * blob_s[i])
            v += blob_a[i] * exp(-d2 / (2.0 * blob_s[i] * blob_s[i]));
    }
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* Image of the texture under x' = T (x - c) + c, c the image centre. */
static void render(uint8_t *img, const double T[4])
{
    const double det = T[0] * T[3] - T[1] * T[2];
    const double Ti[4] = {T[3] / det, -T[1] / det, -T[2] / det, T[0] / det};
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double dx = x - W / 2, dy = y - H / 2;
            img[(size_t)y * W + x] =
                (uint8_t)lrint(texture(Ti[0] * dx + Ti[1] * dy + W / 2, Ti[2] * dx + Ti[3] * dy + H / 2));
        }
}

/* T = R(a) diag(sx, sy) R(b) S(shear): rotation, anisotropic scaling, shear. */
static void make_map(double a_deg, double sx, double sy, double b_deg, double shear, double T[4])
{
    double a = a_deg * PI / 180, b = b_deg * PI / 180;
    double Rb[4] = {cos(b), -sin(b), sin(b), cos(b)}, S[4] = {1, shear, 0, 1}, M[4], D[4];
    M[0] = Rb[0] * S[0] + Rb[1] * S[2], M[1] = Rb[0] * S[1] + Rb[1] * S[3];
    M[2] = Rb[2] * S[0] + Rb[3] * S[2], M[3] = Rb[2] * S[1] + Rb[3] * S[3];
    D[0] = sx * M[0], D[1] = sx * M[1], D[2] = sy * M[2], D[3] = sy * M[3];
    T[0] = cos(a) * D[0] - sin(a) * D[2], T[1] = cos(a) * D[1] - sin(a) * D[3];
    T[2] = sin(a) * D[0] + cos(a) * D[2], T[3] = sin(a) * D[1] + cos(a) * D[3];
}

/* A keypoint of the reference image in the image rendered with T: the
 * position mapped, the size by sqrt(det T), the angle as a gradient
 * direction (T^-T), which is what a detector would measure. */
static mn_keypoint map_keypoint(const mn_keypoint *k, const double T[4])
{
    const double det = T[0] * T[3] - T[1] * T[2], dx = k->x - W / 2, dy = k->y - H / 2;
    const double th = k->angle * PI / 180, gx = cos(th), gy = sin(th);
    const double g2x = (T[3] * gx - T[2] * gy) / det, g2y = (-T[1] * gx + T[0] * gy) / det;
    double deg = atan2(g2y, g2x) * 180 / PI;
    mn_keypoint o;
    o.x = (float)(W / 2 + T[0] * dx + T[1] * dy);
    o.y = (float)(H / 2 + T[2] * dx + T[3] * dy);
    o.size = (float)(k->size * sqrt(det));
    o.angle = (float)(deg < 0 ? deg + 360 : deg);
    return o;
}

/* ||B - T A|| / ||T A|| (Frobenius) for frames A (reference) and B. */
static double frame_error(const double T[4], const mn_affine_keypoint *a, const mn_affine_keypoint *b)
{
    double TA[4] = {T[0] * a->a11 + T[1] * a->a21, T[0] * a->a12 + T[1] * a->a22, T[2] * a->a11 + T[3] * a->a21,
                    T[2] * a->a12 + T[3] * a->a22};
    double B[4] = {b->a11, b->a12, b->a21, b->a22}, e = 0, n = 0;
    for (int i = 0; i < 4; i++)
        e += (B[i] - TA[i]) * (B[i] - TA[i]), n += TA[i] * TA[i];
    return sqrt(e / n);
}

/* The ellipse alone (no rotation): || B B^T - T A A^T T^T || / || T A A^T T^T ||. */
static double shape_error(const double T[4], const mn_affine_keypoint *a, const mn_affine_keypoint *b)
{
    double TA[4] = {T[0] * a->a11 + T[1] * a->a21, T[0] * a->a12 + T[1] * a->a22, T[2] * a->a11 + T[3] * a->a21,
                    T[2] * a->a12 + T[3] * a->a22};
    double P[3] = {TA[0] * TA[0] + TA[1] * TA[1], TA[0] * TA[2] + TA[1] * TA[3], TA[2] * TA[2] + TA[3] * TA[3]};
    double Q[3] = {b->a11 * b->a11 + b->a12 * b->a12, b->a11 * b->a21 + b->a12 * b->a22,
                   b->a21 * b->a21 + b->a22 * b->a22};
    double e = (P[0] - Q[0]) * (P[0] - Q[0]) + 2 * (P[1] - Q[1]) * (P[1] - Q[1]) + (P[2] - Q[2]) * (P[2] - Q[2]);
    double n = P[0] * P[0] + 2 * P[1] * P[1] + P[2] * P[2];
    return sqrt(e / n);
}

static double ncc(const uint8_t *a, const uint8_t *b, int n)
{
    double ma = 0, mb = 0, ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++)
        ma += a[i], mb += b[i];
    ma /= n, mb /= n;
    for (int i = 0; i < n; i++)
        ab += (a[i] - ma) * (b[i] - mb), aa += (a[i] - ma) * (a[i] - ma), bb += (b[i] - mb) * (b[i] - mb);
    return ab / sqrt(aa * bb + 1e-9);
}

static double anisotropy(const mn_affine_keypoint *a)
{
    double p = a->a11 * a->a11 + a->a21 * a->a21, q = a->a11 * a->a12 + a->a21 * a->a22,
           r = a->a12 * a->a12 + a->a22 * a->a22;
    double l1 = 0.5 * (p + r) + hypot(0.5 * (p - r), q), det = fabs(a->a11 * a->a22 - a->a12 * a->a21);
    return l1 / det;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- the parts ---- */

/* Frame convention, exactly: on a linear ramp every sampling step
 * (bilinear, pyramid levels, taps) is exact, so patch pixel (u, v) must
 * equal the ramp at (x, y) + A (2 sf / P) (u + 0.5 - P/2, v + 0.5 - P/2)
 * to rounding. */
static void check_convention(void)
{
    enum { RW = 300, RH = 300 };
    uint8_t *ramp = malloc((size_t)RW * RH), patch[64 * 64], turned[64 * 64];
    for (int y = 0; y < RH; y++)
        for (int x = 0; x < RW; x++) {
            int v = x + y - 200; /* exact where 0 < v < 255 */
            ramp[(size_t)y * RW + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    /* Shear, anisotropy and rotation; each case reaches another part of
     * the sampler. Supports stay where the ramp is exact. */
    static const struct {
        mn_affine_keypoint a;
        float sf;
        int P;
        const char *what;
    } cases[] = {
        {{150.0f, 150.0f, 1.2f, 0.5f, -0.3f, 0.9f}, 4.0f, 64, "level 0, one tap"},
        {{150.0f, 150.0f, 12.0f, -1.0f, 1.0f, 2.0f}, 4.0f, 64, "level 0, taps along the long axis"},
        {{150.5f, 149.25f, 12.0f, 3.0f, -4.0f, 11.0f}, 4.0f, 64, "levels 0 and 1"},
        {{150.0f, 150.0f, 9.0f, 2.0f, -3.0f, 10.0f}, 4.0f, 16, "levels 2 and 3"},
        {{150.0f, 150.0f, 18.0f, 2.0f, 0.5f, 3.0f}, 4.0f, 16, "level 0 and 1, 7 taps"},
    };
    for (size_t f = 0; f < sizeof cases / sizeof *cases; f++) {
        const mn_affine_keypoint *a = &cases[f].a;
        mn_extract_params ep = mn_extract_params_default();
        ep.scale_factor = cases[f].sf;
        ep.patch_size = cases[f].P;
        const int P = cases[f].P;
        const double q = 2.0 * ep.scale_factor / P;
        mn_affine_keypoint t = *a; /* the transposed matrix must not pass: the check sees the convention */
        t.a12 = a->a21, t.a21 = a->a12;
        CHECK_OK(mn_extract_patches_affine(ramp, RW, RH, RW, a, 1, &ep, patch));
        CHECK_OK(mn_extract_patches_affine(ramp, RW, RH, RW, &t, 1, &ep, turned));
        double worst = 0, worst_t = 0;
        int outside = 0;
        for (int v = 0; v < P; v++)
            for (int u = 0; u < P; u++) {
                double pu = u + 0.5 - 0.5 * P, pv = v + 0.5 - 0.5 * P;
                double x = a->x + q * (a->a11 * pu + a->a12 * pv), y = a->y + q * (a->a21 * pu + a->a22 * pv);
                double want = x + y - 200;
                outside |= want < 8 || want > 247 || x < 8 || y < 8 || x > RW - 9 || y > RH - 9;
                worst = fmax(worst, fabs(patch[v * P + u] - want));
                worst_t = fmax(worst_t, fabs(turned[v * P + u] - want));
            }
        CHECK(!outside, "case %zu (%s): the support leaves the exact part of the ramp", f, cases[f].what);
        CHECK(worst <= 0.75, "case %zu (%s): patch differs from the ramp through A by %.2f grey levels", f,
              cases[f].what, worst);
        CHECK(worst_t > 5, "case %zu (%s): the transposed frame gives the same patch (%.2f)", f, cases[f].what,
              worst_t);
        /* Upright turns the frame so that its x axis is the image's: the
         * patch of A R(psi), psi = atan2(-a21, a22). */
        double psi = atan2(-a->a21, a->a22), c = cos(psi), s = sin(psi);
        mn_affine_keypoint r = *a;
        r.a11 = (float)(a->a11 * c + a->a12 * s), r.a12 = (float)(-a->a11 * s + a->a12 * c);
        r.a21 = (float)(a->a21 * c + a->a22 * s), r.a22 = (float)(-a->a21 * s + a->a22 * c);
        CHECK(fabs(r.a21) < 1e-5 * fabs(r.a11), "case %zu: turned a21 = %g", f, r.a21);
        mn_extract_params up = ep;
        up.upright = 1;
        CHECK_OK(mn_extract_patches_affine(ramp, RW, RH, RW, a, 1, &up, patch));
        CHECK_OK(mn_extract_patches_affine(ramp, RW, RH, RW, &r, 1, &ep, turned));
        int maxd = 0;
        for (int i = 0; i < P * P; i++)
            maxd = abs(patch[i] - turned[i]) > maxd ? abs(patch[i] - turned[i]) : maxd;
        CHECK(maxd <= 1, "case %zu: upright differs from the patch of A R(psi) by %d", f, maxd);
    }
    free(ramp);
}

/* Circles: mn_affine_from_keypoint / mn_affine_to_keypoint, and the patch
 * of a circle is the patch of its mn_keypoint. */
static void check_circles(const uint8_t *img)
{
    const mn_keypoint kps[] = {{200.5f, 180.25f, 9.0f, 30.0f}, {256, 256, 40.0f, 300.0f},
                               {100, 300, 3.0f, -1.0f},        {300, 140, 150.0f, 359.9f}};
    const size_t n = sizeof kps / sizeof *kps;
    mn_affine_keypoint a[4];
    uint8_t pk[4 * 64 * 64], pa[4 * 64 * 64];
    for (size_t i = 0; i < n; i++) {
        a[i] = mn_affine_from_keypoint(&kps[i]);
        mn_keypoint back = mn_affine_to_keypoint(&a[i]);
        double want_angle = kps[i].angle == -1.0f ? 0.0 : kps[i].angle;
        double dang = fabs(remainder(back.angle - want_angle, 360.0));
        CHECK(back.x == kps[i].x && back.y == kps[i].y && fabs(back.size - kps[i].size) < 1e-5 * kps[i].size &&
                  dang < 1e-3 && back.angle >= 0 && back.angle < 360,
              "keypoint %zu: (%g, %g, %g, %g) -> affine -> (%g, %g, %g, %g)", i, kps[i].x, kps[i].y, kps[i].size,
              kps[i].angle, back.x, back.y, back.size, back.angle);
        double det = (double)a[i].a11 * a[i].a22 - (double)a[i].a12 * a[i].a21;
        CHECK(fabs(det - 0.25 * kps[i].size * kps[i].size) < 1e-5 * det, "keypoint %zu: det A %g, (size/2)^2 %g", i,
              det, 0.25 * kps[i].size * kps[i].size);
    }
    for (int upright = 0; upright < 2; upright++) {
        mn_extract_params ep = mn_extract_params_default();
        ep.upright = upright;
        CHECK_OK(mn_extract_patches(img, W, H, W, kps, n, &ep, pk));
        CHECK_OK(mn_extract_patches_affine(img, W, H, W, a, n, &ep, pa));
        for (size_t i = 0; i < n; i++) {
            int maxd = 0;
            double sum = 0;
            for (int j = 0; j < 64 * 64; j++) {
                int d = abs(pk[i * 4096 + j] - pa[i * 4096 + j]);
                maxd = d > maxd ? d : maxd;
                sum += d;
            }
            CHECK(maxd <= 1 && sum / 4096 < 0.05, "upright %d keypoint %zu: circle patch differs by %d (mean %.3f)",
                  upright, i, maxd, sum / 4096);
        }
    }
}

/* Blobs: an isotropic Gaussian gives a circle, an elliptic one its ellipse
 * (A A^T proportional to the blob's covariance), both with the keypoint's
 * scale. */
static void check_blobs(uint8_t *img)
{
    const double cx = 250.3, cy = 240.7;
    /* sigma 6 isotropic; then axes 9 and 4 at 30 degrees; then 12 and 3 at -70. */
    const double axes[3][3] = {{6, 6, 0}, {9, 4, 30}, {10, 3.3, -70}};
    for (int b = 0; b < 3; b++) {
        double th = axes[b][2] * PI / 180, c = cos(th), s = sin(th);
        double l1 = axes[b][0] * axes[b][0], l2 = axes[b][1] * axes[b][1];
        double S[3] = {c * c * l1 + s * s * l2, c * s * (l1 - l2), s * s * l1 + c * c * l2}; /* covariance */
        double det = S[0] * S[2] - S[1] * S[1], Si[3] = {S[2] / det, -S[1] / det, S[0] / det};
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double dx = x - cx, dy = y - cy;
                double q = Si[0] * dx * dx + 2 * Si[1] * dx * dy + Si[2] * dy * dy;
                img[(size_t)y * W + x] = (uint8_t)lrint(40 + 180 * exp(-0.5 * q));
            }
        /* SIFT finds a blob of sigma s at size 2 s: its radius. */
        mn_keypoint k = {(float)cx, (float)cy, (float)(2 * sqrt(axes[b][0] * axes[b][1])), 45};
        mn_affine_keypoint a;
        uint8_t r = 255;
        CHECK_OK(mn_affine_shape_estimate(NULL, img, W, H, W, &k, 1, NULL, &a, &r));
        CHECK(r == MN_AFFINE_CONVERGED, "blob %d: result %d", b, r);
        double adet = (double)a.a11 * a.a22 - (double)a.a12 * a.a21;
        CHECK(fabs(adet - 0.25 * k.size * k.size) < 1e-4 * adet, "blob %d: det A %g, want (size/2)^2 = %g", b, adet,
              0.25 * k.size * k.size);
        /* A A^T / sqrt(det) against S / sqrt(det S). */
        double P[3] = {a.a11 * a.a11 + a.a12 * a.a12, a.a11 * a.a21 + a.a12 * a.a22, a.a21 * a.a21 + a.a22 * a.a22};
        double np = sqrt(P[0] * P[2] - P[1] * P[1]), ns = sqrt(det), e = 0, n = 0;
        for (int i = 0; i < 3; i++) {
            double d = P[i] / np - S[i] / ns, w = i == 1 ? 2 : 1;
            e += w * d * d, n += w * (S[i] / ns) * (S[i] / ns);
        }
        double want_aniso = axes[b][0] / axes[b][1];
        CHECK(sqrt(e / n) < 0.03, "blob %d (axes %g, %g at %g deg): A A^T off the covariance by %.3f, anisotropy %.3f "
              "(want %.3f)", b, axes[b][0], axes[b][1], axes[b][2], sqrt(e / n), anisotropy(&a), want_aniso);
        if (b == 0)
            CHECK(anisotropy(&a) < 1.03, "isotropic blob: anisotropy %.4f", anisotropy(&a));
        /* One iteration is not enough for an ellipse: the frame after one
         * step comes back, part of the way from the circle to the blob's
         * shape, with the keypoint's scale. */
        if (b > 0) {
            mn_affine_params one = mn_affine_params_default();
            one.max_iterations = 1;
            CHECK_OK(mn_affine_shape_estimate(NULL, img, W, H, W, &k, 1, &one, &a, &r));
            adet = (double)a.a11 * a.a22 - (double)a.a12 * a.a21;
            CHECK(r == MN_AFFINE_NOT_CONVERGED && anisotropy(&a) > 1.05 && anisotropy(&a) < want_aniso &&
                      fabs(adet - 0.25 * k.size * k.size) < 1e-4 * adet,
                  "blob %d, one iteration: result %d, anisotropy %.3f (the blob's %.3f), det A %g", b, r,
                  anisotropy(&a), want_aniso, adet);
        }
        /* The same blob with max_anisotropy below its shape: every step is
         * brought back to the bound, so the frame ends exactly that
         * elongated, along the blob's long axis, with the keypoint's scale. */
        if (b == 2) {
            mn_affine_params tight = mn_affine_params_default();
            tight.max_anisotropy = 2.0f;
            CHECK_OK(mn_affine_shape_estimate(NULL, img, W, H, W, &k, 1, &tight, &a, &r));
            adet = (double)a.a11 * a.a22 - (double)a.a12 * a.a21;
            double P2[3] = {a.a11 * a.a11 + a.a12 * a.a12, a.a11 * a.a21 + a.a12 * a.a22,
                            a.a21 * a.a21 + a.a22 * a.a22};
            double axis = 0.5 * atan2(2 * P2[1], P2[0] - P2[2]) * 180 / PI; /* A A^T's major axis, degrees */
            double off = fabs(remainder(axis - axes[b][2], 180.0));
            CHECK(r == MN_AFFINE_TOO_ANISOTROPIC && fabs(anisotropy(&a) - 2.0) < 1e-3 && off < 3.0 &&
                      fabs(adet - 0.25 * k.size * k.size) < 1e-4 * adet,
                  "blob %d, max_anisotropy 2: result %d, anisotropy %.4f, major axis %.1f deg (blob %.0f), det A %g", b,
                  r, anisotropy(&a), axis, axes[b][2], adet);
        }
    }
}

/* Flat windows and far-away keypoints keep their circle; straight edges
 * the frame the iteration reached, within max_anisotropy. */
static void check_degenerate(uint8_t *img)
{
    memset(img, 90, (size_t)W * H);
    mn_keypoint k[3] = {{100, 100, 10, 20}, {-4000, 50, 8, 0}, {256, 256, 1e7f, 0}};
    mn_affine_keypoint a[3];
    uint8_t r[3];
    CHECK_OK(mn_affine_shape_estimate(NULL, img, W, H, W, k, 3, NULL, a, r));
    for (int i = 0; i < 3; i++) {
        mn_affine_keypoint c = mn_affine_from_keypoint(&k[i]);
        CHECK(r[i] == MN_AFFINE_FLAT && memcmp(&a[i], &c, sizeof c) == 0, "flat image, keypoint %d: result %d", i, r[i]);
    }
    /* A straight step edge through the keypoint, at an angle. */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            img[(size_t)y * W + x] = (0.8 * (x - 200) + 0.6 * (y - 200)) < 0 ? 50 : 200;
    mn_keypoint e = {200, 200, 12, 10};
    CHECK_OK(mn_affine_shape_estimate(NULL, img, W, H, W, &e, 1, NULL, a, r));
    double edet = (double)a[0].a11 * a[0].a22 - (double)a[0].a12 * a[0].a21;
    CHECK(r[0] == MN_AFFINE_TOO_ANISOTROPIC && anisotropy(&a[0]) <= 6.0 * (1 + 1e-5) &&
              fabs(edet - 0.25 * e.size * e.size) < 1e-4 * edet,
          "straight edge: result %d, anisotropy %.4f (bound 6), det A %g", r[0], anisotropy(&a[0]), edet);
    /* The keypoint far outside sees the replicated border: also no ellipse. */
    mn_keypoint far = {-3000, -3000, 10, 0};
    CHECK_OK(mn_affine_shape_estimate(NULL, img, W, H, W, &far, 1, NULL, a, r));
    CHECK(r[0] != MN_AFFINE_CONVERGED, "keypoint far outside: an ellipse from the replicated border");
    /* A 1x1 image. */
    uint8_t one = 7;
    CHECK_OK(mn_affine_shape_estimate(NULL, &one, 1, 1, 1, k, 1, NULL, a, r));
    CHECK(r[0] == MN_AFFINE_FLAT, "1x1 image: result %d", r[0]);
}

/* The main property: shapes estimated on two renderings of the texture
 * map to each other through the known transform, and their patches agree. */
static void check_covariance(uint8_t *ref, uint8_t *img)
{
    static const double I[4] = {1, 0, 0, 1};
    render(ref, I);
    mn_keypoint k1[NKP], k2[NKP];
    for (int i = 0; i < NKP; i++) {
        k1[i].x = (float)(200 + rnd() * 112), k1[i].y = (float)(200 + rnd() * 112);
        k1[i].size = (float)(6 + rnd() * 6), k1[i].angle = (float)(rnd() * 360);
    }
    mn_affine_keypoint a1[NKP], a2[NKP];
    uint8_t r1[NKP], r2[NKP];
    /* Give each keypoint the angle a detector would: a dominant gradient
     * direction, here the one its frame found (the gradient direction e1
     * of the frame is A^-T e1 in the image). */
    CHECK_OK(mn_affine_shape_estimate(NULL, ref, W, H, W, k1, NKP, NULL, a1, r1));
    for (int i = 0; i < NKP; i++) {
        double deg = atan2(-a1[i].a12, a1[i].a22) * 180 / PI;
        k1[i].angle = (float)(deg < 0 ? deg + 360 : deg);
    }
    CHECK_OK(mn_affine_shape_estimate(NULL, ref, W, H, W, k1, NKP, NULL, a1, r1));
    /* rotation, anisotropic scale, shear; the last two strongly anisotropic */
    const double maps[][5] = {{70, 1, 1, 0, 0}, {-40, 1.3, 0.8, 10, 0}, {30, 1.6, 0.6, -20, 0.2}, {30, 2, 0.5, -20, 0},
                              {-15, 1.5, 0.55, 50, -0.3}};
    for (size_t m = 0; m < sizeof maps / sizeof *maps; m++) {
        double T[4];
        make_map(maps[m][0], maps[m][1], maps[m][2], maps[m][3], maps[m][4], T);
        render(img, T);
        /* Angles off by up to 8 degrees, as a detector measures them on
         * the circle: the orientation is measured again in the frame. */
        for (int i = 0; i < NKP; i++) {
            k2[i] = map_keypoint(&k1[i], T);
            k2[i].angle = (float)fmod(k2[i].angle + 360.0 + (rnd() - 0.5) * 16.0, 360.0);
        }
        CHECK_OK(mn_affine_shape_estimate(NULL, img, W, H, W, k2, NKP, NULL, a2, r2));
        double ferr[NKP], serr[NKP], cerr[NKP];
        int both = 0, good = 0;
        double ncc_sim = 0, ncc_aff = 0;
        for (int i = 0; i < NKP; i++) {
            if (r1[i] != MN_AFFINE_CONVERGED || r2[i] != MN_AFFINE_CONVERGED)
                continue;
            ferr[both] = frame_error(T, &a1[i], &a2[i]);
            serr[both] = shape_error(T, &a1[i], &a2[i]);
            /* Control: the similarity frames do not map to each other. */
            mn_affine_keypoint c1 = mn_affine_from_keypoint(&k1[i]), c2 = mn_affine_from_keypoint(&k2[i]);
            cerr[both] = frame_error(T, &c1, &c2);
            good += ferr[both] < 0.15;
            uint8_t p1[4096], p2[4096];
            CHECK_OK(mn_extract_patches(ref, W, H, W, &k1[i], 1, NULL, p1));
            CHECK_OK(mn_extract_patches(img, W, H, W, &k2[i], 1, NULL, p2));
            ncc_sim += ncc(p1, p2, 4096);
            CHECK_OK(mn_extract_patches_affine(ref, W, H, W, &a1[i], 1, NULL, p1));
            CHECK_OK(mn_extract_patches_affine(img, W, H, W, &a2[i], 1, NULL, p2));
            ncc_aff += ncc(p1, p2, 4096);
            both++;
        }
        double aniso = (maps[m][1] > maps[m][2] ? maps[m][1] / maps[m][2] : maps[m][2] / maps[m][1]);
        CHECK(both >= NKP * 3 / 4, "map %zu: %d of %d keypoints converged in both images", m, both, NKP);
        if (both == 0)
            continue;
        qsort(ferr, (size_t)both, sizeof *ferr, cmp_double);
        qsort(serr, (size_t)both, sizeof *serr, cmp_double);
        qsort(cerr, (size_t)both, sizeof *cerr, cmp_double);
        ncc_sim /= both, ncc_aff /= both;
        printf("map %zu (anisotropy %.2f, shear %.1f): %d/%d converged, frame error median %.3f, shape error "
               "median %.3f, %d under 0.15; similarity frames %.3f; NCC similarity %.3f affine %.3f\n",
               m, aniso, maps[m][4], both, NKP, ferr[both / 2], serr[both / 2], good, cerr[both / 2], ncc_sim,
               ncc_aff);
        CHECK(serr[both / 2] < 0.04, "map %zu: median shape error %.3f", m, serr[both / 2]);
        CHECK(ferr[both / 2] < 0.05, "map %zu: median frame error %.3f", m, ferr[both / 2]);
        CHECK(good >= both * 17 / 20, "map %zu: %d of %d frames within 0.15", m, good, both);
        CHECK(ncc_aff > 0.9, "map %zu: affine-normalised patches agree only to NCC %.3f", m, ncc_aff);
        /* The controls: where the map is anisotropic, similarity frames do
         * not map to each other and their patches differ. */
        if (aniso > 2) {
            CHECK(cerr[both / 2] > 0.4, "map %zu: the control (similarity frames) fits too (%.3f)", m, cerr[both / 2]);
            CHECK(ncc_aff > ncc_sim + 0.4, "map %zu: NCC affine %.3f is not far above similarity %.3f", m, ncc_aff,
                  ncc_sim);
        } else if (aniso > 1.5) {
            CHECK(cerr[both / 2] > 0.2, "map %zu: the control (similarity frames) fits too (%.3f)", m, cerr[both / 2]);
            CHECK(ncc_aff > ncc_sim + 0.15, "map %zu: NCC affine %.3f is not far above similarity %.3f", m, ncc_aff,
                  ncc_sim);
        }
    }

    /* MN_AFFINE_ORIENT_KEEP: the same ellipses, x axis along the keypoint's angle. */
    mn_affine_params keep = mn_affine_params_default();
    keep.orientation = MN_AFFINE_ORIENT_KEEP;
    mn_affine_keypoint ak[NKP];
    uint8_t rk[NKP];
    CHECK_OK(mn_affine_shape_estimate(NULL, ref, W, H, W, k1, NKP, &keep, ak, rk));
    int same = 1, along = 1;
    for (int i = 0; i < NKP; i++) {
        same &= rk[i] == r1[i];
        if (rk[i] != MN_AFFINE_CONVERGED)
            continue;
        same &= shape_error(I, &a1[i], &ak[i]) < 1e-5;
        double th = k1[i].angle * PI / 180, n = hypot(ak[i].a11, ak[i].a21);
        along &= fabs(ak[i].a11 / n - cos(th)) < 1e-4 && fabs(ak[i].a21 / n - sin(th)) < 1e-4;
    }
    CHECK(same, "orientation KEEP changes the ellipses or the results");
    CHECK(along, "orientation KEEP: the frame's x axis is not along the keypoint's angle");
}

/* Threads, order and batching do not change a bit; describe = extract + describe_u8. */
static void check_threads(const uint8_t *img)
{
    enum { N = 64 };
    mn_keypoint k[N], kr[N];
    for (int i = 0; i < N; i++) {
        k[i].x = (float)(40 + rnd() * 430), k[i].y = (float)(40 + rnd() * 430);
        k[i].size = (float)(4 + rnd() * 20), k[i].angle = (float)(rnd() * 360);
        kr[N - 1 - i] = k[i];
    }
    mn_model *m = NULL;
    CHECK_OK(mn_model_load_file(MN_SOURCE_DIR "/models/matchnet.mnw", &m));
    if (!m)
        return;
    mn_affine_keypoint ref[N], got[N], rev[N];
    uint8_t rr[N], rg[N], rv[N];
    CHECK_OK(mn_affine_shape_estimate(NULL, img, W, H, W, k, N, NULL, ref, rr));
    const size_t D = mn_model_descriptor_dim(m);
    float *d1 = malloc(N * D * sizeof *d1), *d2 = malloc(N * D * sizeof *d2);
    uint8_t *patches = malloc((size_t)N * 4096);
    CHECK_OK(mn_extract_patches_affine(img, W, H, W, ref, N, NULL, patches));
    mn_session *s1 = NULL;
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = 1;
    CHECK_OK(mn_session_create(m, &sp, &s1));
    CHECK_OK(mn_describe_u8(s1, patches, N, d1));
    for (int t = 1; t <= 5; t += 2) {
        mn_session *s = NULL;
        sp.num_threads = t;
        CHECK_OK(mn_session_create(m, &sp, &s));
        if (!s)
            continue;
        memset(got, 0, sizeof got);
        CHECK_OK(mn_affine_shape_estimate(s, img, W, H, W, k, N, NULL, got, rg));
        CHECK(memcmp(got, ref, sizeof ref) == 0 && memcmp(rg, rr, sizeof rr) == 0,
              "%d threads: shapes differ from the calling thread's", t);
        CHECK_OK(mn_affine_shape_estimate(s, img, W, H, W, kr, N, NULL, rev, rv));
        int order = 1;
        for (int i = 0; i < N; i++)
            order &= memcmp(&rev[N - 1 - i], &ref[i], sizeof *ref) == 0 && rv[N - 1 - i] == rr[i];
        CHECK(order, "%d threads: reversed keypoints give other shapes", t);
        /* One at a time. */
        int single = 1;
        for (int i = 0; i < N; i += 7) {
            mn_affine_keypoint one;
            uint8_t r1;
            CHECK_OK(mn_affine_shape_estimate(s, img, W, H, W, &k[i], 1, NULL, &one, &r1));
            single &= memcmp(&one, &ref[i], sizeof one) == 0 && r1 == rr[i];
        }
        CHECK(single, "%d threads: a keypoint alone gets another shape", t);
        memset(d2, 0, N * D * sizeof *d2);
        CHECK_OK(mn_describe_keypoints_affine(s, img, W, H, W, ref, N, NULL, d2));
        CHECK(memcmp(d1, d2, N * D * sizeof *d1) == 0,
              "%d threads: mn_describe_keypoints_affine differs from extract + describe_u8", t);
        mn_session_free(s);
    }
    /* Circles through the affine path describe like mn_describe_keypoints. */
    mn_affine_keypoint circles[N];
    for (int i = 0; i < N; i++)
        circles[i] = mn_affine_from_keypoint(&k[i]);
    CHECK_OK(mn_describe_keypoints(s1, img, W, H, W, k, N, NULL, d1));
    CHECK_OK(mn_describe_keypoints_affine(s1, img, W, H, W, circles, N, NULL, d2));
    size_t where;
    double diff = max_abs_diff(d1, d2, N * D, &where);
    CHECK(diff < 0.05, "circles: descriptors differ by %g (element %zu)", diff, where);
    /* Bad input to the describe call. */
    mn_extract_params ep = mn_extract_params_default();
    ep.patch_size = 32;
    CHECK(mn_describe_keypoints_affine(s1, img, W, H, W, ref, N, &ep, d2) == MN_ERR_INVALID_ARGUMENT,
          "patch size 32 accepted by a 64-px model");
    CHECK(mn_describe_keypoints_affine(NULL, img, W, H, W, ref, N, NULL, d2) == MN_ERR_INVALID_ARGUMENT,
          "NULL session accepted");
    CHECK(mn_describe_keypoints_affine(s1, img, W, H, W, NULL, N, NULL, d2) == MN_ERR_INVALID_ARGUMENT,
          "NULL keypoints accepted");
    CHECK_OK(mn_describe_keypoints_affine(s1, img, W, H, W, NULL, 0, NULL, NULL));
    mn_session_free(s1);
    free(patches);
    free(d1);
    free(d2);
    mn_model_free(m);
}

static void check_bad_input(const uint8_t *img)
{
    mn_keypoint k[3] = {{10, 10, 5, 0}, {20, 20, 5, 0}, {30, 30, 5, 0}};
    mn_affine_keypoint out[3];
    uint8_t res[3];
    memset(out, 0xAB, sizeof out);
    k[1].y = NAN;
    CHECK(mn_affine_shape_estimate(NULL, img, W, H, W, k, 3, NULL, out, res) == MN_ERR_INVALID_ARGUMENT, "NaN y");
    CHECK(strstr(mn_last_error(), "mn_affine_shape_estimate(): keypoint 1 has a non-finite value") != NULL, "%s",
          mn_last_error());
    CHECK(((uint8_t *)out)[0] == 0xAB, "output written despite the error");
    k[1].y = 20, k[1].size = 0;
    CHECK(mn_affine_shape_estimate(NULL, img, W, H, W, k, 3, NULL, out, res) == MN_ERR_INVALID_ARGUMENT, "size 0");
    CHECK(strstr(mn_last_error(), "keypoint 1 has size 0") != NULL, "%s", mn_last_error());
    k[1].size = 5, k[1].angle = INFINITY;
    CHECK(mn_affine_shape_estimate(NULL, img, W, H, W, k, 3, NULL, out, res) == MN_ERR_INVALID_ARGUMENT, "inf angle");
    k[1].angle = 0;
    CHECK(mn_affine_shape_estimate(NULL, NULL, W, H, W, k, 3, NULL, out, res) == MN_ERR_INVALID_ARGUMENT, "NULL image");
    CHECK(mn_affine_shape_estimate(NULL, img, W, H, W, NULL, 3, NULL, out, res) == MN_ERR_INVALID_ARGUMENT, "NULL kps");
    CHECK(mn_affine_shape_estimate(NULL, img, W, H, W, k, 3, NULL, NULL, res) == MN_ERR_INVALID_ARGUMENT, "NULL out");
    CHECK(mn_affine_shape_estimate(NULL, img, W, H, W - 1, k, 3, NULL, out, res) == MN_ERR_INVALID_ARGUMENT,
          "stride < width");
    CHECK(mn_affine_shape_estimate(NULL, img, 0, H, W, k, 3, NULL, out, res) == MN_ERR_INVALID_ARGUMENT, "width 0");
    CHECK_OK(mn_affine_shape_estimate(NULL, NULL, 0, 0, 0, NULL, 0, NULL, NULL, NULL)); /* empty request */
    CHECK_OK(mn_affine_shape_estimate(NULL, img, W, H, W, k, 3, NULL, out, NULL));      /* results optional */
    mn_affine_params d = mn_affine_params_default();
    CHECK(d.max_iterations == 16 && d.convergence == 1.03f && d.max_anisotropy == 6.0f && d.integration_sigma == 3.0f &&
              d.derivative_sigma == 1.0f && d.orientation == MN_AFFINE_ORIENT_GRADIENT,
          "defaults");
    mn_affine_params bad[9];
    for (int i = 0; i < 9; i++)
        bad[i] = d;
    bad[0].max_iterations = 0, bad[1].max_iterations = 101, bad[2].convergence = 1.0f, bad[3].convergence = NAN;
    bad[4].max_anisotropy = 0.5f, bad[5].integration_sigma = 0.1f, bad[6].derivative_sigma = 4.0f;
    bad[7].derivative_sigma = 0.1f, bad[8].orientation = (mn_affine_orientation)7;
    for (int i = 0; i < 9; i++)
        CHECK(mn_affine_shape_estimate(NULL, img, W, H, W, k, 3, &bad[i], out, res) == MN_ERR_INVALID_ARGUMENT,
              "bad parameter set %d accepted", i);

    /* Affine keypoints for extraction: finite, det A > 0. */
    mn_affine_keypoint a[3] = {{10, 10, 3, 0, 0, 3}, {20, 20, 3, 1, 1, 3}, {30, 30, 3, 0, 0, 3}};
    uint8_t patches[4 * 64 * 64];
    memset(patches, 0xAB, sizeof patches);
    a[1].a12 = NAN;
    CHECK(mn_extract_patches_affine(img, W, H, W, a, 3, NULL, patches) == MN_ERR_INVALID_ARGUMENT, "NaN a12");
    CHECK(strstr(mn_last_error(), "mn_extract_patches_affine(): affine keypoint 1 has a non-finite value") != NULL,
          "%s", mn_last_error());
    a[1].a12 = 3; /* det 3 * 3 - 3 * 1 = 6 > 0 */
    CHECK_OK(mn_extract_patches_affine(img, W, H, W, a, 3, NULL, patches));
    a[1].a21 = 3; /* det 0 */
    CHECK(mn_extract_patches_affine(img, W, H, W, a, 3, NULL, patches) == MN_ERR_INVALID_ARGUMENT, "singular A");
    CHECK(strstr(mn_last_error(), "affine keypoint 1 has det A = 0") != NULL, "%s", mn_last_error());
    a[1].a12 = 1, a[1].a21 = 1, a[1].a11 = -3; /* a reflection */
    CHECK(mn_extract_patches_affine(img, W, H, W, a, 3, NULL, patches) == MN_ERR_INVALID_ARGUMENT, "det < 0");
    a[1].a11 = 3;
    CHECK(mn_extract_patches_affine(img, W, H, W, NULL, 3, NULL, patches) == MN_ERR_INVALID_ARGUMENT, "NULL kps");
    CHECK(mn_extract_patches_affine(img, W, H, W, a, 3, NULL, NULL) == MN_ERR_INVALID_ARGUMENT, "NULL patches");
    CHECK_OK(mn_extract_patches_affine(img, W, H, W, NULL, 0, NULL, NULL));
    /* Huge and tiny frames, and frames thinner than MN_MAX_TAPS allows: defined patches. */
    mn_affine_keypoint odd[4] = {{5, 5, 3e37f, 0, 0, 3e37f}, {100, 100, 1e-20f, 0, 0, 1e-20f},
                                 {256, 256, 500.0f, 0.0f, 0.0f, 0.5f}, {256, 256, 1e6f, 2e6f, 1e-6f, 1e-3f}};
    CHECK_OK(mn_extract_patches_affine(img, W, H, W, odd, 4, NULL, patches));
}

int main(void)
{
    for (int i = 0; i < NBLOB; i++) {
        blob_x[i] = rnd() * W, blob_y[i] = rnd() * H;
        blob_s[i] = 2 + rnd() * 6, blob_a[i] = (rnd() - 0.5) * 160;
    }
    uint8_t *ref = malloc((size_t)W * H), *img = malloc((size_t)W * H);
    check_convention();
    check_covariance(ref, img); /* renders ref: the texture itself */
    check_circles(ref);
    check_threads(ref);
    check_bad_input(ref);
    check_blobs(img);
    check_degenerate(img);
    free(ref);
    free(img);
    return check_summary("test_affine");
}
