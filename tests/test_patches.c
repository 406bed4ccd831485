/*
 * test_patches.c - keypoint patch extraction: exact crops, rotation and
 * scale invariance on synthetic images with known transforms, the angle
 * convention, anti-aliasing, border policy, and bad keypoints.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "matchnet.h"
#include "patches.h"
#include "check.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define W 400
#define H 400
#define PI 3.14159265358979323846

/* A smooth texture as a continuous function: a few low-frequency waves
 * and Gaussian blobs, so that resampling it at any scale used here is
 * close to exact and differences come from the extractor. */
static double texture(double x, double y)
{
    double v = 128.0;
    static const double waves[6][4] = {
        {0.061, 0.023, 0.0, 30}, {-0.031, 0.072, 1.0, 25}, {0.044, -0.051, 2.0, 20},
        {0.013, 0.037, 0.5, 25}, {0.082, 0.011, 1.7, 12}, {-0.02, -0.09, 0.3, 12}};
    for (int i = 0; i < 6; i++)
        v += waves[i][3] * sin(waves[i][0] * x + waves[i][1] * y + waves[i][2]);
    static const double blobs[4][4] = {{200, 190, 14, 40}, {150, 240, 9, -45}, {260, 160, 20, 30}, {210, 215, 6, 35}};
    for (int i = 0; i < 4; i++) {
        double dx = x - blobs[i][0], dy = y - blobs[i][1];
        v += blobs[i][3] * exp(-(dx * dx + dy * dy) / (2 * blobs[i][2] * blobs[i][2]));
    }
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* Render I(x, y) = texture(A^-1 ((x, y) - c) + c): the texture rotated by
 * theta (clockwise on screen, y down) and zoomed by k about c. */
static void render(uint8_t *img, double theta, double k)
{
    const double cx = 200, cy = 200, c = cos(theta), s = sin(theta);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double dx = (x - cx) / k, dy = (y - cy) / k;
            double u = c * dx + s * dy + cx, v = -s * dx + c * dy + cy;
            img[(size_t)y * W + x] = (uint8_t)lrint(texture(u, v));
        }
}

static void diff_stats(const uint8_t *a, const uint8_t *b, size_t n, double *mean, int *maxd)
{
    double sum = 0;
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        sum += d;
        m = d > m ? d : m;
    }
    *mean = sum / n;
    *maxd = m;
}

/* Keypoint (p, angle) in the reference image -> the same point in the
 * image rendered with (theta, k). */
static mn_keypoint map_kp(mn_keypoint kp, double theta, double k)
{
    const double c = cos(theta), s = sin(theta), dx = kp.x - 200, dy = kp.y - 200;
    mn_keypoint o;
    o.x = (float)(200 + k * (c * dx - s * dy));
    o.y = (float)(200 + k * (s * dx + c * dy));
    o.size = (float)(kp.size * k);
    o.angle = (float)fmod(kp.angle + theta * 180 / PI + 360.0, 360.0);
    return o;
}

/* The vector sampling path (kernels/sample_avx2.c, where the CPU has it)
 * against the scalar code: the same bytes for keypoints inside, across and
 * outside the image, at every pyramid level and blend, on images whose
 * buffer ends at the last pixel (the dword gathers must not read past it),
 * with strides over the width and patch sides off the vector width. */
static void test_sample_paths(int w, int h, size_t stride, int patch)
{
    const size_t bytes = (size_t)(h - 1) * stride + (size_t)w;
    /* The image's last byte right before an inaccessible page: a read past it faults. */
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), span = (bytes + page - 1) / page * page;
    uint8_t *map = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(map != MAP_FAILED && mprotect(map + span, page, PROT_NONE) == 0, "guard page");
    uint8_t *im = map + span - bytes;
    unsigned r = 12345u + (unsigned)(w * 7 + h);
    for (size_t i = 0; i < bytes; i++)
        im[i] = (uint8_t)((r = r * 1103515245u + 12345u) >> 16);
    enum { N = 60 };
    mn_keypoint kps[N];
    for (int i = 0; i < N; i++) {
        r = r * 1103515245u + 12345u;
        kps[i].x = (float)((double)(r >> 8) / (1 << 24) * (w + 40) - 20);
        r = r * 1103515245u + 12345u;
        kps[i].y = (float)((double)(r >> 8) / (1 << 24) * (h + 40) - 20);
        r = r * 1103515245u + 12345u;
        kps[i].size = (float)(0.3 + (double)(r >> 8) / (1 << 24) * (i % 3 == 0 ? 300.0 : 20.0));
        r = r * 1103515245u + 12345u;
        kps[i].angle = i % 5 == 0 ? -1.0f : (float)((double)(r >> 8) / (1 << 24) * 360.0);
    }
    kps[0].x = (float)w - 0.5f, kps[0].y = (float)h - 0.5f; /* the last pixel, at unit scale */
    kps[0].size = (float)patch / MN_SCALE_SIFT, kps[0].angle = 0.0f;
    mn_extract_params ep = mn_extract_params_default();
    ep.patch_size = patch;
    mn_pyramid pyr;
    CHECK_OK(mn_pyramid_init("test", im, w, h, stride, kps, NULL, N, &ep, &pyr));
    const size_t pp = (size_t)patch * patch;
    uint8_t *a = malloc(N * pp), *b = malloc(N * pp);
    mn_pyramid_sample_path(&pyr, kps, NULL, N, &ep, a, 0);
    mn_pyramid_sample_path(&pyr, kps, NULL, N, &ep, b, 1);
    int differ = 0;
    for (int i = 0; i < N; i++)
        differ += memcmp(a + i * pp, b + i * pp, pp) != 0;
    CHECK(differ == 0, "%dx%d stride %zu patch %d: %d of %d patches differ between the vector and scalar paths", w, h,
          stride, patch, differ, N);
    mn_pyramid_release(&pyr);
    munmap(map, span + page);
    free(a), free(b);
}

int main(void)
{
    uint8_t *ref = malloc(W * H), *img = malloc(W * H);
    uint8_t pa[64 * 64], pb[64 * 64];
    mn_extract_params ep = mn_extract_params_default();
    CHECK(ep.patch_size == 64 && ep.scale_factor == MN_SCALE_SIFT && !ep.upright, "defaults");
    render(ref, 0, 1);

    /* Exact crop: centre at a half-pixel, unit scale, no rotation -> the
     * patch is the image window [cx-32, cx+32) exactly. */
    mn_keypoint kp = {100.5f, 120.5f, 64.0f / MN_SCALE_SIFT, 0.0f};
    CHECK_OK(mn_extract_patches(ref, W, H, W, &kp, 1, NULL, pa));
    int exact = 1;
    for (int v = 0; v < 64; v++)
        for (int u = 0; u < 64; u++)
            exact &= pa[v * 64 + u] == ref[(size_t)(120 - 32 + 1 + v) * W + (100 - 32 + 1 + u)];
    CHECK(exact, "unit-scale patch at a half-pixel centre is not an exact crop");

    /* Stride: the same image inside a wider buffer gives the same patch. */
    uint8_t *wide = calloc((W + 13) * H, 1);
    for (int y = 0; y < H; y++)
        memcpy(wide + (size_t)y * (W + 13), ref + (size_t)y * W, W);
    CHECK_OK(mn_extract_patches(wide, W, H, W + 13, &kp, 1, NULL, pb));
    CHECK(memcmp(pa, pb, sizeof pa) == 0, "stride changes the patch");
    free(wide);

    /* Rotation and scale invariance: the same physical keypoint in a
     * rotated / zoomed rendering gives the same patch. */
    const double cases[][2] = {{30, 1}, {90, 1}, {200, 1}, {0, 2}, {0, 0.5}, {45, 1.6}, {-70, 0.7}, {120, 2.5}};
    /* Supports stay inside the image in every rendering (zoom up to 2.5). */
    const mn_keypoint base[3] = {{200, 200, 8, 15}, {188, 209, 10, 250}, {211, 194, 11, 100}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double theta = cases[c][0] * PI / 180, k = cases[c][1];
        render(img, theta, k);
        for (int b = 0; b < 3; b++) {
            mn_keypoint k2 = map_kp(base[b], theta, k);
            CHECK_OK(mn_extract_patches(ref, W, H, W, &base[b], 1, NULL, pa));
            CHECK_OK(mn_extract_patches(img, W, H, W, &k2, 1, NULL, pb));
            double mean;
            int maxd;
            diff_stats(pa, pb, sizeof pa, &mean, &maxd);
            CHECK(mean < 1.0 && maxd < 8, "rotation %.0f zoom %.1f keypoint %d: mean diff %.2f, max %d", cases[c][0],
                  k, b, mean, maxd);
            /* Control: the wrong sense of rotation must not match. */
            if (cases[c][0] != 0 && cases[c][0] != 200 && b == 0) {
                mn_keypoint wrong = k2;
                wrong.angle = (float)(base[b].angle - cases[c][0]);
                CHECK_OK(mn_extract_patches(img, W, H, W, &wrong, 1, NULL, pb));
                diff_stats(pa, pb, sizeof pa, &mean, &maxd);
                CHECK(mean > 8, "rotation %.0f: opposite angle also matches (mean diff %.2f)", cases[c][0], mean);
            }
        }
    }

    /* Upright ignores the angle; angle -1 means no orientation. */
    mn_keypoint k90 = {200, 200, 20, 90}, k0 = {200, 200, 20, 0}, kn = {200, 200, 20, -1};
    mn_extract_params up = ep;
    up.upright = 1;
    CHECK_OK(mn_extract_patches(ref, W, H, W, &k90, 1, &up, pa));
    CHECK_OK(mn_extract_patches(ref, W, H, W, &k0, 1, NULL, pb));
    CHECK(memcmp(pa, pb, sizeof pa) == 0, "upright patch depends on the angle");
    CHECK_OK(mn_extract_patches(ref, W, H, W, &kn, 1, NULL, pa));
    CHECK(memcmp(pa, pb, sizeof pa) == 0, "angle -1 is not treated as no orientation");

    /* Anti-aliasing: a 2-px checkerboard seen with 4 image px per patch px
     * must come out flat grey, not as a moire pattern. */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            img[(size_t)y * W + x] = ((x + y) & 1) ? 230 : 26;
    mn_keypoint big = {200.3f, 199.6f, 256.0f / MN_SCALE_SIFT, 33};
    CHECK_OK(mn_extract_patches(img, W, H, W, &big, 1, NULL, pa));
    double sum = 0, sq = 0;
    for (int i = 0; i < 64 * 64; i++)
        sum += pa[i], sq += (double)pa[i] * pa[i];
    double mean = sum / 4096, sd = sqrt(sq / 4096 - mean * mean);
    CHECK(fabs(mean - 128) < 4 && sd < 4, "checkerboard at 4x: mean %.1f sd %.1f (aliasing)", mean, sd);

    /* Border policy: at the corner, beyond the image, and huge support. */
    mn_keypoint edge[4] = {{0, 0, 20, 0}, {-5000, 30, 20, 0}, {200, 200, 1e7f, 10}, {W - 1, H - 1, 0.01f, 0}};
    uint8_t four[4 * 64 * 64];
    CHECK_OK(mn_extract_patches(ref, W, H, W, edge, 4, NULL, four));
    /* Far left of the image: every column repeats column 0 of rows near y = 30. */
    int flat_rows = 1;
    for (int v = 0; v < 64; v++)
        for (int u = 1; u < 64; u++)
            flat_rows &= four[64 * 64 + v * 64 + u] == four[64 * 64 + v * 64];
    CHECK(flat_rows, "keypoint far outside: rows are not the replicated edge");
    /* The part of the corner patch outside the image is one replicated value. */
    int flat_corner = 1;
    for (int v = 0; v < 24; v++)
        for (int u = 0; u < 24; u++)
            flat_corner &= four[v * 64 + u] == four[0];
    CHECK(flat_corner, "corner patch: the part outside the image is not flat");
    int lo = 255, hi = 0;
    for (int i = 0; i < 64 * 64; i++) {
        int v = four[2 * 64 * 64 + i];
        lo = v < lo ? v : lo, hi = v > hi ? v : hi;
    }
    CHECK(hi - lo <= 1, "huge support: patch should be one grey level, spans %d..%d", lo, hi);
    CHECK(four[3 * 64 * 64] == ref[(size_t)(H - 1) * W + W - 1], "tiny keypoint at the last pixel");

    /* Sizes whose support overflows a float (found by fuzz_patches). */
    mn_keypoint huge[2] = {{5, 5, 3e38f, 30}, {1e30f, -1e30f, 1e-30f, 0}};
    CHECK_OK(mn_extract_patches(ref, W, H, W, huge, 2, NULL, four));

    /* Bad keypoints: error naming the keypoint, output untouched. */
    mn_keypoint bad[3] = {{10, 10, 5, 0}, {NAN, 10, 5, 0}, {10, 10, 5, 0}};
    memset(four, 0xAB, sizeof four);
    CHECK(mn_extract_patches(ref, W, H, W, bad, 3, NULL, four) == MN_ERR_INVALID_ARGUMENT, "NaN x accepted");
    CHECK(strstr(mn_last_error(), "mn_extract_patches(): keypoint 1 has a non-finite value") != NULL, "%s",
          mn_last_error());
    CHECK(four[0] == 0xAB && four[sizeof four - 1] == 0xAB, "output written despite the error");
    bad[1].x = 10, bad[1].size = 0;
    CHECK(mn_extract_patches(ref, W, H, W, bad, 3, NULL, four) == MN_ERR_INVALID_ARGUMENT, "size 0 accepted");
    CHECK(strstr(mn_last_error(), "keypoint 1 has size 0") != NULL, "%s", mn_last_error());
    bad[1].size = -3;
    CHECK(mn_extract_patches(ref, W, H, W, bad, 3, NULL, four) == MN_ERR_INVALID_ARGUMENT, "negative size");
    bad[1].size = 5, bad[1].angle = INFINITY;
    CHECK(mn_extract_patches(ref, W, H, W, bad, 3, NULL, four) == MN_ERR_INVALID_ARGUMENT, "inf angle");
    CHECK_OK(mn_extract_patches(ref, W, H, W, NULL, 0, NULL, NULL)); /* empty request */
    CHECK(mn_extract_patches(NULL, W, H, W, &kp, 1, NULL, pa) == MN_ERR_INVALID_ARGUMENT, "NULL image");
    CHECK(mn_extract_patches(ref, W, H, W - 1, &kp, 1, NULL, pa) == MN_ERR_INVALID_ARGUMENT, "stride < width");
    CHECK(mn_extract_patches(ref, 0, H, W, &kp, 1, NULL, pa) == MN_ERR_INVALID_ARGUMENT, "zero width");
    mn_extract_params badp = ep;
    badp.scale_factor = 0;
    CHECK(mn_extract_patches(ref, W, H, W, &kp, 1, &badp, pa) == MN_ERR_INVALID_ARGUMENT, "scale factor 0");
    /* A 1x1 image works for any keypoint. */
    uint8_t one = 77;
    CHECK_OK(mn_extract_patches(&one, 1, 1, 1, &big, 1, NULL, pa));
    CHECK(pa[0] == 77 && pa[4095] == 77, "1x1 image");

    test_sample_paths(200, 150, 200, 64);
    test_sample_paths(37, 29, 41, 13);
    test_sample_paths(3, 2, 5, 64);
    test_sample_paths(640, 7, 640, 32);
    test_sample_paths(1, 9, 1, 64);

    free(ref);
    free(img);
    return check_summary("test_patches");
}
