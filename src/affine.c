/*
 * affine.c - the affine shape of keypoints (mn_affine_shape_estimate).
 *
 * Baumberg's iteration (CVPR 2000), the shape step of Mikolajczyk and
 * Schmid's Harris-Affine (IJCV 2004) and of VLFeat's covdet: a frame A
 * maps frame coordinates to the image around the keypoint. In it, the
 * second-moment matrix of the gradients, M = sum_w g g^T (g the gradient
 * with respect to frame coordinates, w a Gaussian window), transforms as
 * M_A = A^T M_image A. The frame in which the image looks isotropic has
 * M_A proportional to the identity, and A M_A^(-1/2) is one step towards
 * it; the window moves with the frame, so the step is repeated until M's
 * eigenvalues agree. Its fixed points are covariant: if image 2 is image 1
 * under an affine map T, T A is a fixed point on image 2 when A is one on
 * image 1, up to a rotation of the frame, which the orientation fixes.
 *
 * Position and scale stay the detector's (each step is normalised to keep
 * det A); only the shape and orientation change. The frame is sampled on
 * a grid of (2 R + 1)^2 points over +-3 integration sigmas (R = 20, the
 * resolution VLFeat uses), through the pyramid of patch.c, so large
 * keypoints are low-passed and elongated frames are filtered along their
 * long axis as patches are.
 */
#include "common.h"
#include "patches.h"
#include "session.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846
/* Grid pixels from the centre to the edge of the window. */
#define MN_AFFINE_R 20
/* The window reaches this many integration sigmas. */
#define MN_AFFINE_EXTENT 3.0
#define MN_ORI_BINS 36
/* SIFT's orientation window: sigma 1.5 frame units, out to 3 sigmas. */
#define MN_ORI_SIGMA 1.5
/* A peak within this fraction of the highest is a candidate orientation. */
#define MN_ORI_PEAK 0.8
/* Below this mean squared gradient (grey levels per frame unit) the window is flat. */
#define MN_FLAT_ENERGY 1e-6

mn_affine_params mn_affine_params_default(void)
{
    mn_affine_params p;
    p.max_iterations = 16;
    p.convergence = 1.03f;
    p.max_anisotropy = 6.0f;
    p.integration_sigma = 3.0f;
    p.derivative_sigma = 1.0f;
    p.orientation = MN_AFFINE_ORIENT_GRADIENT;
    return p;
}

/* The per-call work area: grid, blur, gradients and their weights. */
typedef struct mn_affine_work {
    int R, K, G;     /* window radius, blur radius, sampled grid side (grid pixels) */
    double step;     /* frame units per grid pixel */
    float *grid;     /* G * G samples, then blurred in place row-wise into tmp and back */
    float *tmp;      /* G * G */
    float *kernel;   /* 2K + 1 Gaussian taps */
    float *gx, *gy;  /* (2R + 1)^2 gradients, frame units */
    float *win;      /* (2R + 1)^2 window weights */
    float *ori_w;    /* (2R + 1)^2 orientation window weights (0 outside its reach) */
} mn_affine_work;

static mn_status mn_affine_work_init(const char *fn, const mn_affine_params *p, mn_affine_work *w)
{
    memset(w, 0, sizeof *w);
    w->R = MN_AFFINE_R;
    w->step = MN_AFFINE_EXTENT * p->integration_sigma / w->R;
    const double sg = p->derivative_sigma / w->step; /* blur sigma in grid pixels */
    w->K = (int)ceil(3.0 * sg);
    if (w->K < 1)
        w->K = 1;
    w->G = 2 * (w->R + w->K + 1) + 1;
    const size_t gg = (size_t)w->G * w->G, ww = (size_t)(2 * w->R + 1) * (2 * w->R + 1);
    float *mem = mn_malloc(sizeof(float) * (2 * gg + (size_t)(2 * w->K + 1) + 4 * ww));
    if (!mem)
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for the work area");
    w->grid = mem;
    w->tmp = w->grid + gg;
    w->kernel = w->tmp + gg;
    w->gx = w->kernel + 2 * w->K + 1;
    w->gy = w->gx + ww;
    w->win = w->gy + ww;
    w->ori_w = w->win + ww;
    double ksum = 0.0;
    for (int i = -w->K; i <= w->K; i++)
        ksum += exp(-0.5 * i * i / (sg * sg));
    for (int i = -w->K; i <= w->K; i++)
        w->kernel[i + w->K] = (float)(exp(-0.5 * i * i / (sg * sg)) / ksum);
    const double si = p->integration_sigma, so = MN_ORI_SIGMA;
    for (int j = -w->R; j <= w->R; j++)
        for (int i = -w->R; i <= w->R; i++) {
            double d2 = (i * i + j * j) * w->step * w->step;
            size_t k = (size_t)(j + w->R) * (2 * w->R + 1) + (size_t)(i + w->R);
            w->win[k] = (float)exp(-0.5 * d2 / (si * si));
            w->ori_w[k] = d2 <= 9.0 * so * so ? (float)exp(-0.5 * d2 / (so * so)) : 0.0f;
        }
    return MN_OK;
}

/* Sample the image through frame A around (x, y), blur it by the
 * derivative sigma and take central differences: w->gx, w->gy. */
static void mn_affine_gradients(const mn_pyramid *pyr, mn_affine_work *w, double x, double y, const double A[4])
{
    const int G = w->G, K = w->K, R = w->R, D = 2 * R + 1;
    mn_frame f;
    /* From a level of half the spacing: the pyramid's smoothing is
     * isotropic in the image and rounds ellipses towards circles (by 4% on
     * a 9:4 blob at the spacing's level, under 1% at half); the smoothing
     * that counts, derivative_sigma, is applied in the frame below. */
    mn_frame_from_matrix(x, y, w->step * A[0], w->step * A[1], w->step * A[2], w->step * A[3], 0.5, &f);
    mn_pyramid_sample_frame(pyr, &f, G, w->grid);
    /* Rows, then columns; only the part the differences read is kept:
     * grid pixels K .. G-K-1 on both axes. */
    for (int v = 0; v < G; v++)
        for (int u = K; u < G - K; u++) {
            const float *r = w->grid + (size_t)v * G + u - K;
            float acc = 0.0f;
            for (int i = 0; i <= 2 * K; i++)
                acc += w->kernel[i] * r[i];
            w->tmp[(size_t)v * G + u] = acc;
        }
    for (int v = K; v < G - K; v++)
        for (int u = K; u < G - K; u++) {
            float acc = 0.0f;
            for (int i = 0; i <= 2 * K; i++)
                acc += w->kernel[i] * w->tmp[(size_t)(v - K + i) * G + u];
            w->grid[(size_t)v * G + u] = acc;
        }
    /* Window point (i, j), |i|, |j| <= R, is grid pixel c + i with c = (G - 1) / 2. */
    const int c = (G - 1) / 2;
    const float inv = (float)(0.5 / w->step);
    for (int j = -R; j <= R; j++)
        for (int i = -R; i <= R; i++) {
            const float *b = w->grid + (size_t)(c + j) * G + (c + i);
            size_t k = (size_t)(j + R) * D + (size_t)(i + R);
            w->gx[k] = (b[1] - b[-1]) * inv;
            w->gy[k] = (b[G] - b[-G]) * inv;
        }
}

/* Symmetric 2x2 [a b; b c]: eigenvalues l1 >= l2 and l1's unit eigenvector. */
static void mn_eig2(double a, double b, double c, double *l1, double *l2, double *vx, double *vy)
{
    const double mid = 0.5 * (a + c), r = hypot(0.5 * (a - c), b);
    *l1 = mid + r;
    *l2 = mid - r;
    const double th = 0.5 * atan2(2.0 * b, a - c);
    *vx = cos(th), *vy = sin(th);
}

/* Where A is more elongated than max_ratio (the ratio of its singular
 * values; A is never singular here: each step keeps det A), A := A V
 * diag(c1, c2) V^T, V the right singular vectors of A: its singular values
 * brought to the ratio max_ratio, their product (det A, the keypoint's
 * scale) kept. Returns whether it did. */
static int mn_clamp_anisotropy(double A[4], double max_ratio)
{
    const double a = A[0] * A[0] + A[2] * A[2], b = A[0] * A[1] + A[2] * A[3], c = A[1] * A[1] + A[3] * A[3];
    double l1, l2, vx, vy;
    mn_eig2(a, b, c, &l1, &l2, &vx, &vy);
    const double det = fabs(A[0] * A[3] - A[1] * A[2]);
    if (!(det > 0.0) || !(l1 / det > max_ratio))
        return 0;
    const double s1 = sqrt(l1), s2 = det / s1; /* singular values, s1 >= s2 */
    const double c1 = sqrt(det * max_ratio) / s1, c2 = sqrt(det / max_ratio) / s2;
    /* B = c1 v v^T + c2 u u^T, v = (vx, vy), u = (-vy, vx). */
    const double b11 = c1 * vx * vx + c2 * vy * vy, b12 = (c1 - c2) * vx * vy, b22 = c1 * vy * vy + c2 * vx * vx;
    const double n0 = A[0] * b11 + A[1] * b12, n1 = A[0] * b12 + A[1] * b22;
    const double n2 = A[2] * b11 + A[3] * b12, n3 = A[2] * b12 + A[3] * b22;
    A[0] = n0, A[1] = n1, A[2] = n2, A[3] = n3;
    return 1;
}

/* A := A R(phi). */
static void mn_rotate_frame(double A[4], double phi)
{
    const double c = cos(phi), s = sin(phi);
    const double b0 = A[0] * c + A[1] * s, b1 = -A[0] * s + A[1] * c;
    const double b2 = A[2] * c + A[3] * s, b3 = -A[2] * s + A[3] * c;
    A[0] = b0, A[1] = b1, A[2] = b2, A[3] = b3;
}

/* The dominant gradient orientation in the frame (radians), of the
 * histogram's peaks the one nearest `predicted`; `predicted` itself when
 * the histogram is empty. */
static double mn_frame_orientation(const mn_affine_work *w, double predicted)
{
    const int D = 2 * w->R + 1;
    double hist[MN_ORI_BINS] = {0}, sm[MN_ORI_BINS];
    for (int k = 0; k < D * D; k++) {
        if (w->ori_w[k] == 0.0f)
            continue;
        const double gx = w->gx[k], gy = w->gy[k], mag = sqrt(gx * gx + gy * gy);
        if (!(mag > 0.0))
            continue;
        /* Split between the two nearest bins: less quantisation of the
         * peak than SIFT's nearest bin. */
        const double a = atan2(gy, gx) * (MN_ORI_BINS / (2.0 * PI)), fl = floor(a), t = a - fl;
        const int b0 = (((int)fl % MN_ORI_BINS) + MN_ORI_BINS) % MN_ORI_BINS, b1 = (b0 + 1) % MN_ORI_BINS;
        hist[b0] += (1.0 - t) * w->ori_w[k] * mag;
        hist[b1] += t * w->ori_w[k] * mag;
    }
    /* SIFT's smoothing of the histogram, [1 4 6 4 1] / 16, circular. */
    double top = 0.0;
    for (int i = 0; i < MN_ORI_BINS; i++) {
        const double v = (hist[(i + MN_ORI_BINS - 2) % MN_ORI_BINS] + hist[(i + 2) % MN_ORI_BINS]) / 16.0 +
                         (hist[(i + MN_ORI_BINS - 1) % MN_ORI_BINS] + hist[(i + 1) % MN_ORI_BINS]) * (4.0 / 16.0) +
                         hist[i] * (6.0 / 16.0);
        sm[i] = v;
        top = v > top ? v : top;
    }
    if (!(top > 0.0))
        return predicted;
    double best = predicted, best_d = INFINITY;
    for (int i = 0; i < MN_ORI_BINS; i++) {
        const double l = sm[(i + MN_ORI_BINS - 1) % MN_ORI_BINS], r = sm[(i + 1) % MN_ORI_BINS], v = sm[i];
        if (!(v > l && v > r && v >= MN_ORI_PEAK * top))
            continue;
        const double bin = i + 0.5 * (l - r) / (l - 2.0 * v + r); /* parabola through the three */
        const double phi = bin * (2.0 * PI / MN_ORI_BINS);
        double d = fabs(remainder(phi - predicted, 2.0 * PI));
        if (d < best_d)
            best_d = d, best = phi;
    }
    return best;
}

/* One keypoint: its affine keypoint and result. */
static uint8_t mn_affine_one(const mn_pyramid *pyr, mn_affine_work *w, const mn_affine_params *p,
                             const mn_keypoint *k, mn_affine_keypoint *out)
{
    const double r = 0.5 * (double)k->size;
    const double theta = (k->angle == -1.0f ? 0.0 : (double)k->angle) * (PI / 180.0);
    const double ct = cos(theta), st = sin(theta);
    /* Start from the keypoint's own circle: the grid then turns with the
     * image, and rotated images give the same samples. */
    double A[4] = {r * ct, -r * st, r * st, r * ct};
    const int D = 2 * w->R + 1;
    uint8_t result = MN_AFFINE_NOT_CONVERGED;
    for (int it = 0; it < p->max_iterations; it++) {
        mn_affine_gradients(pyr, w, k->x, k->y, A);
        double m11 = 0.0, m12 = 0.0, m22 = 0.0, wsum = 0.0;
        for (int i = 0; i < D * D; i++) {
            const double gx = w->gx[i], gy = w->gy[i], wt = w->win[i];
            m11 += wt * gx * gx, m12 += wt * gx * gy, m22 += wt * gy * gy;
            wsum += wt;
        }
        m11 /= wsum, m12 /= wsum, m22 /= wsum;
        double l1, l2, vx, vy;
        mn_eig2(m11, m12, m22, &l1, &l2, &vx, &vy);
        if (!(m11 + m22 > MN_FLAT_ENERGY)) {
            result = MN_AFFINE_FLAT;
            break;
        }
        if (!(l2 > 0.0)) {
            /* A straight edge: the step would stretch the frame without bound. */
            result = MN_AFFINE_TOO_ANISOTROPIC;
            break;
        }
        if (l1 <= l2 * p->convergence) {
            result = MN_AFFINE_CONVERGED;
            break;
        }
        /* A := A M^(-1/2), M normalised to det 1: the eigenvector of l1
         * shrinks by (l2 / l1)^(1/4), the other grows by its inverse. */
        const double q = sqrt(sqrt(l2 / l1)), qa = q, qb = 1.0 / q;
        const double u11 = qa * vx * vx + qb * vy * vy, u12 = (qa - qb) * vx * vy, u22 = qa * vy * vy + qb * vx * vx;
        const double b0 = A[0] * u11 + A[1] * u12, b1 = A[0] * u12 + A[1] * u22;
        const double b2 = A[2] * u11 + A[3] * u12, b3 = A[2] * u12 + A[3] * u22;
        A[0] = b0, A[1] = b1, A[2] = b2, A[3] = b3;
        result = mn_clamp_anisotropy(A, p->max_anisotropy) ? MN_AFFINE_TOO_ANISOTROPIC : MN_AFFINE_NOT_CONVERGED;
    }
    if (result == MN_AFFINE_FLAT) {
        *out = mn_affine_from_keypoint(k);
        return result;
    }
    /* Every step was brought within max_anisotropy above; after the last
     * one the gradients are not yet A's, and only the gradient
     * orientation reads them. */
    if (result != MN_AFFINE_CONVERGED && p->orientation == MN_AFFINE_ORIENT_GRADIENT)
        mn_affine_gradients(pyr, w, k->x, k->y, A);
    /* The ellipse is A's; now its rotation. The keypoint's angle is an
     * image direction d = (cos theta, sin theta): a gradient direction for
     * SIFT, which in the frame is A^T d. */
    double phi;
    if (p->orientation == MN_AFFINE_ORIENT_KEEP) {
        /* A R(phi) e1 along d: (cos phi, sin phi) along A^-1 d. */
        phi = atan2(-A[2] * ct + A[0] * st, A[3] * ct - A[1] * st);
    } else {
        const double predicted = atan2(A[1] * ct + A[3] * st, A[0] * ct + A[2] * st);
        phi = mn_frame_orientation(w, predicted);
    }
    mn_rotate_frame(A, phi);
    out->x = k->x, out->y = k->y;
    out->a11 = (float)A[0], out->a12 = (float)A[1], out->a21 = (float)A[2], out->a22 = (float)A[3];
    return result;
}

/* Keypoints per task of the session's threads. */
#define MN_AFFINE_GRAIN 8

typedef struct mn_affine_job {
    const mn_pyramid *pyr;
    mn_affine_work *work; /* one per thread */
    const mn_affine_params *p;
    const mn_keypoint *kps;
    mn_affine_keypoint *out;
    uint8_t *results;
} mn_affine_job;

static void mn_affine_task(void *ctx, mn_scratch *scratch, int thread, size_t begin, size_t end)
{
    const mn_affine_job *j = ctx;
    (void)scratch;
    for (size_t i = begin; i < end; i++) {
        uint8_t r = mn_affine_one(j->pyr, &j->work[thread], j->p, &j->kps[i], &j->out[i]);
        if (j->results)
            j->results[i] = r;
    }
}

mn_status mn_affine_shape_estimate(mn_session *session, const uint8_t *image, int width, int height, size_t stride,
                                   const mn_keypoint *kps, size_t n, const mn_affine_params *params,
                                   mn_affine_keypoint *out, uint8_t *results)
{
    static const char fn[] = "mn_affine_shape_estimate";
    const mn_affine_params p = params ? *params : mn_affine_params_default();
    if (n == 0)
        return MN_OK;
    if (!image || !kps || !out)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !image ? "image" : !kps ? "keypoints" : "out");
    if (width < 1 || height < 1 || stride < (size_t)width)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "image %dx%d with stride %zu", width, height, stride);
    if (p.max_iterations < 1 || p.max_iterations > 100)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "max_iterations = %d, expected 1..100", p.max_iterations);
    if (!(p.convergence > 1.0f) || !isfinite(p.convergence))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "convergence = %g, expected a finite ratio > 1", p.convergence);
    if (!(p.max_anisotropy >= 1.0f) || !isfinite(p.max_anisotropy))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "max_anisotropy = %g, expected a finite ratio >= 1",
                        p.max_anisotropy);
    if (!(p.integration_sigma >= 0.5f && p.integration_sigma <= 8.0f))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "integration_sigma = %g, expected 0.5 .. 8",
                        p.integration_sigma);
    if (!(p.derivative_sigma >= 0.25f && p.derivative_sigma <= p.integration_sigma))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "derivative_sigma = %g, expected 0.25 .. integration_sigma (%g)",
                        p.derivative_sigma, p.integration_sigma);
    if (p.orientation != MN_AFFINE_ORIENT_GRADIENT && p.orientation != MN_AFFINE_ORIENT_KEEP)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "orientation = %d, expected MN_AFFINE_ORIENT_GRADIENT or "
                        "MN_AFFINE_ORIENT_KEEP", (int)p.orientation);
    double rmax = 0.0;
    for (size_t i = 0; i < n; i++) {
        const mn_keypoint *k = &kps[i];
        if (!isfinite(k->x) || !isfinite(k->y) || !isfinite(k->size) || !isfinite(k->angle))
            return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "keypoint %zu has a non-finite value (%g, %g, size %g, angle %g)",
                            i, k->x, k->y, k->size, k->angle);
        if (!(k->size > 0.0f))
            return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "keypoint %zu has size %g; sizes must be positive", i, k->size);
        if (0.5 * k->size > rmax)
            rmax = 0.5 * k->size;
    }
    const int nt = session ? mn_session_threads(session) : 1;
    mn_affine_work work[64];
    if (nt < 1 || nt > (int)(sizeof work / sizeof *work))
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "a session of %d threads", nt);
    mn_status st = MN_OK;
    int made = 0;
    for (; made < nt && st == MN_OK; made++)
        st = mn_affine_work_init(fn, &p, &work[made]);
    if (st != MN_OK) {
        for (int t = 0; t < made - 1; t++)
            mn_free(work[t].grid);
        return st;
    }
    const mn_affine_work w = work[0];
    /* The deepest level a frame within max_anisotropy can ask for (see
     * mn_frame_from_matrix: the shorter axis, or the longer / MN_MAX_TAPS). */
    const double a = sqrt((double)p.max_anisotropy);
    const double max_level = w.step * rmax * fmax(1.0, a / MN_MAX_TAPS);
    mn_pyramid pyr;
    st = mn_pyramid_build(fn, image, width, height, stride, max_level, &pyr);
    if (st == MN_OK) {
        mn_affine_job job = {&pyr, work, &p, kps, out, results};
        if (session)
            mn_session_parallel(session, mn_affine_task, &job, n, MN_AFFINE_GRAIN);
        else
            mn_affine_task(&job, NULL, 0, 0, n);
        mn_pyramid_release(&pyr);
    }
    for (int t = 0; t < nt; t++)
        mn_free(work[t].grid);
    return st;
}
