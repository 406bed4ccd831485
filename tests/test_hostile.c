/*
 * test_hostile.c - hostile inputs through the C pipeline (matchnet.h and
 * matchnet/opencv.h), beyond what test_plugin_c and test_match cover:
 *
 * - images: PNGs of 0 x 0, 0 x 5 and 5 x 0 pixels are refused by the
 *   IHDR check (before libpng, which would print), one declaring 20000 x
 *   20000 before decompression; 100000 x 1 and 1 x 100000 decode exactly
 *   and go through detection (0 keypoints for ORB and AKAZE, whose
 *   pyramids used to throw) and description; 16-bit grey PNG and PGM
 *   decode to their high byte; RGB, RGBA, grey+alpha and 16-bit RGB PNGs
 *   decode to BT.601 grey. (PNGs written here with zlib, independent of
 *   OpenCV's encoder.)
 * - keypoints: all far outside the image give finite descriptors;
 *   duplicated keypoints give bit-identical descriptors, no L2 match
 *   (the ratio test sees a tie) and metric matches that pick the first
 *   copy; NaN or infinite coordinates, sizes or angles and sizes <= 0 are
 *   refused naming the keypoint; drawing skips non-finite keypoints and
 *   clamps far-off ones.
 * - empty sets: matching, filtering and drawing with no keypoints.
 * - model files whose header claims more bytes than the file has, or a
 *   file size of 2^64 - 1, are refused without a large allocation.
 */
#define _POSIX_C_SOURCE 200809L
#include "matchnet/opencv.h"
#include "check.h"
#include "tmp_files.h"

#include <float.h>
#include <stdint.h>
#include <unistd.h>
#include <zlib.h>

static mn_model *model;
static mn_session *session;
static size_t D;

/* ---- PNG writer (zlib): any size, bit depth 8 or 16, colour types 0, 2, 4, 6 ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void put_chunk(FILE *f, const char *type, const uint8_t *data, size_t n)
{
    uint8_t head[8], crc[4];
    put_be32(head, (uint32_t)n);
    memcpy(head + 4, type, 4);
    uLong c = crc32(0L, head + 4, 4);
    if (n) /* zlib's crc32() with a NULL buffer returns its initial value */
        c = crc32(c, data, (uInt)n);
    put_be32(crc, (uint32_t)c);
    fwrite(head, 1, 8, f);
    if (n)
        fwrite(data, 1, n, f);
    fwrite(crc, 1, 4, f);
}

/* samples: height rows of width * channels samples (16-bit: big-endian pairs). */
static void png_write(const char *path, uint32_t w, uint32_t h, int depth, int colour_type, const uint8_t *samples)
{
    const int channels = colour_type == 0 ? 1 : colour_type == 2 ? 3 : colour_type == 4 ? 2 : 4;
    const size_t row = (size_t)w * channels * (depth / 8);
    const size_t raw_n = (row + 1) * h;
    uint8_t *raw = malloc(raw_n + 1);
    for (uint32_t y = 0; y < h; y++) {
        raw[y * (row + 1)] = 0; /* filter: none */
        memcpy(raw + y * (row + 1) + 1, samples + y * row, row);
    }
    uLongf zn = compressBound((uLong)raw_n);
    uint8_t *z = malloc(zn);
    CHECK(compress2(z, &zn, raw, (uLong)raw_n, 6) == Z_OK, "compress2 for %s", path);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot create %s", path);
    if (f) {
        static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
        uint8_t ihdr[13];
        put_be32(ihdr, w);
        put_be32(ihdr + 4, h);
        ihdr[8] = (uint8_t)depth, ihdr[9] = (uint8_t)colour_type, ihdr[10] = ihdr[11] = ihdr[12] = 0;
        fwrite(sig, 1, 8, f);
        put_chunk(f, "IHDR", ihdr, 13);
        put_chunk(f, "IDAT", z, zn);
        put_chunk(f, "IEND", NULL, 0);
        fclose(f);
    }
    free(z);
    free(raw);
}

static int image_is_zero(const mn_image *im)
{
    return !im->pixels && !im->width && !im->height && !im->stride;
}

/* ---- images ---- */

static void test_degenerate_sizes(void)
{
    const uint8_t one[1] = {0};
    const uint32_t sizes[3][2] = {{0, 0}, {0, 5}, {5, 0}};
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "empty-%ux%u.png", sizes[k][0], sizes[k][1]);
        png_write(tmp_path(name), sizes[k][0], sizes[k][1], 8, 0, one);
        mn_image im;
        memset(&im, 0xAB, sizeof im);
        mn_status st = mn_image_load(tmp_path(name), &im);
        CHECK(st == MN_ERR_FORMAT && image_is_zero(&im) && strncmp(mn_last_error(), "mn_image_load(): ", 17) == 0 &&
                  strstr(mn_last_error(), "IHDR"),
              "%s: %s: %s", name, mn_status_str(st), mn_last_error());
        printf("  %s -> %s: %s\n", name, mn_status_str(st), mn_last_error());
        if (st == MN_OK)
            mn_image_free(&im);
    }
    /* 20000 x 20000 declared in a file of a few bytes: refused before
     * decompression. */
    FILE *f = fopen(tmp_path("huge.png"), "wb");
    if (f) {
        static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
        uint8_t ihdr[13] = {0}, z[64];
        put_be32(ihdr, 20000);
        put_be32(ihdr + 4, 20000);
        ihdr[8] = 8;
        uLongf zn = sizeof z;
        compress2(z, &zn, one, 1, 6); /* one filter byte: the data is cut short */
        fwrite(sig, 1, 8, f);
        put_chunk(f, "IHDR", ihdr, 13);
        put_chunk(f, "IDAT", z, zn);
        put_chunk(f, "IEND", NULL, 0);
        fclose(f);
    }
    mn_image im;
    mn_status st = mn_image_load(tmp_path("huge.png"), &im);
    CHECK(st == MN_ERR_INVALID_ARGUMENT && image_is_zero(&im) && strstr(mn_last_error(), "more than the limit of 268435456 pixels (2^28"),
          "PNG of 20000 x 20000: %s: %s", mn_status_str(st), mn_last_error());
    printf("  huge.png -> %s: %s\n", mn_status_str(st), mn_last_error());
}

/* All values finite; the count of those that are not. */
static size_t count_nonfinite(const float *v, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !isfinite(v[i]);
    return bad;
}

/* 100000 x 1 and 1 x 100000: exact pixels, detection, description. */
static void test_thin(void)
{
    const int L = 100000;
    uint8_t *px = malloc((size_t)L);
    for (int i = 0; i < L; i++)
        px[i] = (uint8_t)((i * 7 + (i / 50) * 13) ^ (i >> 3));
    for (int vertical = 0; vertical < 2; vertical++) {
        const int w = vertical ? 1 : L, h = vertical ? L : 1;
        const char *name = vertical ? "thin-1x100000.png" : "thin-100000x1.png";
        png_write(tmp_path(name), (uint32_t)w, (uint32_t)h, 8, 0, px);
        mn_image im;
        CHECK_OK(mn_image_load(tmp_path(name), &im));
        CHECK(im.width == w && im.height == h && im.pixels, "%s: %dx%d", name, im.width, im.height);
        if (!im.pixels || im.width != w || im.height != h) {
            mn_image_free(&im);
            continue;
        }
        int bad = 0;
        for (int i = 0; i < L; i++)
            bad += im.pixels[vertical ? (size_t)i * im.stride : (size_t)i] != px[i];
        CHECK(bad == 0, "%s: %d pixels differ", name, bad);
        static const char *const det_names[3] = {"SIFT", "ORB", "AKAZE"};
        mn_keypoint kp[64];
        for (int d = 0; d < 3; d++) {
            size_t n = 99;
            CHECK_OK(mn_keypoints_detect(&im, (mn_detector)d, 64, kp, &n));
            int outside = 0;
            for (size_t i = 0; i < n && n <= 64; i++)
                outside += !(kp[i].x >= -1 && kp[i].x <= im.width && kp[i].y >= -1 && kp[i].y <= im.height &&
                             kp[i].size > 0);
            CHECK(n <= 64 && outside == 0, "%s, %s: %zu keypoints, %d outside", name, det_names[d], n, outside);
        }
        /* Patches along the line (the rest is border replication), small to
         * large supports. */
        mn_keypoint k3[3] = {{0, 0, 2, 0}, {L / 2.0f, 0, 30, 45}, {L - 1.0f, 0, 400, 90}};
        for (int i = 0; vertical && i < 3; i++) {
            float t = k3[i].x;
            k3[i].x = k3[i].y;
            k3[i].y = t;
        }
        float *desc = malloc(sizeof(float) * 3 * D);
        CHECK_OK(mn_describe_keypoints(session, im.pixels, im.width, im.height, im.stride, k3, 3, NULL, desc));
        CHECK(count_nonfinite(desc, 3 * D) == 0, "%s: non-finite descriptors", name);
        free(desc);
        mn_image_free(&im);
    }
    free(px);
}

/* 16-bit and colour PNGs, 16-bit PGM: decoded to 8-bit grey. */
static void test_depth_and_colour(void)
{
    enum { W = 20, H = 8 };
    /* Grey 16-bit: v * 257 must decode to v. */
    uint8_t g16[W * H * 2], want[W * H];
    for (int i = 0; i < W * H; i++) {
        want[i] = (uint8_t)(i * 37 + 11);
        g16[2 * i] = g16[2 * i + 1] = want[i];
    }
    png_write(tmp_path("grey16.png"), W, H, 16, 0, g16);
    char header[32];
    int hn = snprintf(header, sizeof header, "P5\n%d %d\n65535\n", W, H);
    uint8_t pgm[32 + sizeof g16];
    memcpy(pgm, header, (size_t)hn);
    memcpy(pgm + hn, g16, sizeof g16);
    write_bytes(tmp_path("grey16.pgm"), pgm, (size_t)hn + sizeof g16);
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "grey16.pgm" : "grey16.png";
        mn_image im;
        CHECK_OK(mn_image_load(tmp_path(name), &im));
        int worst = im.pixels ? 0 : 999;
        for (int y = 0; im.pixels && y < H && im.width == W && im.height == H; y++)
            for (int x = 0; x < W; x++) {
                int d = abs((int)im.pixels[(size_t)y * im.stride + x] - want[y * W + x]);
                worst = d > worst ? d : worst;
            }
        CHECK(im.width == W && im.height == H && worst <= 1, "%s: %dx%d, max error %d", name, im.width, im.height,
              worst);
        mn_image_free(&im);
    }

    /* Colour: four bands, red, green, blue, white; BT.601 grey 76, 150, 29, 255. */
    static const uint8_t rgb[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
    static const int grey[4] = {76, 150, 29, 255};
    static const struct {
        const char *name;
        int depth, type;
    } forms[4] = {{"rgb8.png", 8, 2}, {"rgb16.png", 16, 2}, {"rgba8.png", 8, 6}, {"grey-alpha8.png", 8, 4}};
    for (int f = 0; f < 4; f++) {
        const int ch = forms[f].type == 2 ? 3 : forms[f].type == 6 ? 4 : 2, bytes = forms[f].depth / 8;
        uint8_t *s = malloc((size_t)W * H * ch * bytes);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const int band = x * 4 / W;
                uint8_t v[4];
                if (forms[f].type == 4) {
                    v[0] = (uint8_t)grey[band], v[1] = 255;
                } else {
                    memcpy(v, rgb[band], 3);
                    v[3] = 255; /* opaque: alpha must not matter */
                }
                for (int c = 0; c < ch; c++)
                    for (int b = 0; b < bytes; b++)
                        s[((size_t)(y * W + x) * ch + c) * bytes + b] = v[c];
            }
        png_write(tmp_path(forms[f].name), W, H, forms[f].depth, forms[f].type, s);
        free(s);
        mn_image im;
        CHECK_OK(mn_image_load(tmp_path(forms[f].name), &im));
        int worst = im.pixels ? 0 : 999;
        for (int y = 0; im.pixels && y < H && im.width == W && im.height == H; y++)
            for (int x = 0; x < W; x++) {
                int d = abs((int)im.pixels[(size_t)y * im.stride + x] - grey[x * 4 / W]);
                worst = d > worst ? d : worst;
            }
        CHECK(im.width == W && im.height == H && worst <= 2, "%s: %dx%d, max error %d from BT.601 grey",
              forms[f].name, im.width, im.height, worst);
        mn_image_free(&im);
    }
}

/* ---- keypoints ---- */

enum { IW = 96, IH = 80 };

static uint8_t *textured(void)
{
    uint8_t *im = malloc(IW * IH);
    uint32_t s = 77;
    for (int y = 0; y < IH; y++)
        for (int x = 0; x < IW; x++) {
            s = s * 1103515245u + 12345u;
            im[y * IW + x] = (uint8_t)(128 + 90 * sin(x * 0.31 + y * 0.07) * cos(y * 0.23 - x * 0.05) +
                                       (int)((s >> 16) % 21) - 10);
        }
    return im;
}

static void test_outside_and_duplicates(const uint8_t *im)
{
    /* Far outside the image, on every side, small and enormous supports. */
    const mn_keypoint outside[6] = {{-100, -100, 10, 0}, {1e6f, 20, 10, 0},   {20, -1e7f, 10, 45},
                                    {1e30f, 1e30f, 5, 0}, {-3e38f, 3e38f, 5, 0}, {50, 40, 1e30f, 270}};
    float *desc = malloc(sizeof(float) * 12 * D);
    CHECK_OK(mn_describe_keypoints(session, im, IW, IH, IW, outside, 6, NULL, desc));
    for (int i = 0; i < 6; i++)
        CHECK(count_nonfinite(desc + i * D, D) == 0, "keypoint (%g, %g, size %g) outside: non-finite descriptor",
              (double)outside[i].x, (double)outside[i].y, (double)outside[i].size);

    /* Each of 6 keypoints twice in a row: identical descriptors within the
     * call (one block). Described alone (6 patches: a block too small for
     * the blocked path) they agree to rounding (fp32), or to bfloat16's
     * bound where the blocked path runs in bfloat16. */
    const mn_keypoint base[6] = {{20, 20, 8, 0}, {40, 30, 12, 30}, {70, 50, 6, 300},
                                 {30, 60, 10, -1}, {80, 15, 9, 90}, {50, 45, 14, 180}};
    mn_keypoint dup[12];
    for (int i = 0; i < 6; i++)
        dup[2 * i] = dup[2 * i + 1] = base[i];
    float *q = malloc(sizeof(float) * 6 * D);
    CHECK_OK(mn_describe_keypoints(session, im, IW, IH, IW, base, 6, NULL, q));
    CHECK_OK(mn_describe_keypoints(session, im, IW, IH, IW, dup, 12, NULL, desc));
    int same = 0;
    for (int i = 0; i < 6; i++) {
        size_t where;
        if (CHECK_BF16_ACTIVE()) { /* bfloat16's products on both paths, rounded differently */
            double e = max_row_rel_diff(desc + 2 * i * D, q + i * D, 1, D, &where);
            CHECK(e <= CHECK_BF16_BOUND, "keypoint %d described alone and in a batch (bfloat16): differs by %.3g of "
                  "its largest component at %zu", i, e, where);
        } else {
            double e = max_abs_diff(desc + 2 * i * D, q + i * D, D, &where);
            CHECK(e <= 1e-5, "keypoint %d described alone and in a batch: differs by %.3g at %zu", i, e, where);
        }
        same += memcmp(desc + 2 * i * D, desc + (2 * i + 1) * D, sizeof(float) * D) == 0;
        memcpy(q + i * D, desc + 2 * i * D, sizeof(float) * D);
    }
    CHECK(same == 6, "duplicated keypoints: %d of 6 descriptors identical", same);

    mn_dmatch m[6];
    size_t n = 99;
    /* L2 with the ratio test: best and second best tie, so nothing passes. */
    CHECK_OK(mn_match(session, q, 6, desc, 12, NULL, m, 6, &n));
    CHECK(n == 0, "duplicates: %zu L2 matches pass the ratio test against a tie", n);
    /* Without the ratio test each query finds its first copy, at distance 0. */
    mn_match_params p = mn_match_params_default();
    p.ratio = 1.0f;
    CHECK_OK(mn_match(session, q, 6, desc, 12, &p, m, 6, &n));
    int first = 0;
    for (size_t r = 0; r < n; r++)
        first += m[r].train == 2 * m[r].query && m[r].distance == 0.0f;
    CHECK(n == 6 && first == 6, "duplicates, L2 without ratio: %zu matches, %d to the first copy", n, first);
    /* Metric preset (mutual): ties go to the smaller index, the first copy. */
    p = mn_match_params_preset(MN_MATCH_METRIC);
    p.min_probability = 0.0f;
    CHECK_OK(mn_match(session, q, 6, desc, 12, &p, m, 6, &n));
    int even = 0;
    for (size_t r = 0; r < n; r++)
        even += m[r].train % 2 == 0;
    CHECK(n > 0 && even == (int)n, "duplicates, metric: %zu matches, %d to a first copy", n, even);
    /* The doubled set against itself, all pairs: both sides tie, so only
     * first copies match, and each train copy at most once (mutual). */
    mn_dmatch m12[12];
    p.all_pairs = 1;
    CHECK_OK(mn_match(session, desc, 12, desc, 12, &p, m12, 12, &n));
    even = 0;
    for (size_t r = 0; r < n; r++)
        even += m12[r].query % 2 == 0 && m12[r].train % 2 == 0;
    CHECK(n > 0 && n <= 6 && even == (int)n, "duplicates against themselves: %zu matches, %d between first copies",
          n, even);
    free(q);
    free(desc);
}

static void test_nonfinite_keypoints(const uint8_t *im)
{
    const float bad[5] = {NAN, INFINITY, -INFINITY, 0.0f, -1.0f};
    const char *const field[4] = {"x", "y", "size", "angle"};
    float *desc = malloc(sizeof(float) * 4 * D);
    for (int f = 0; f < 4; f++)
        for (int b = 0; b < 5; b++) {
            if (b >= 3 && f != 2)
                continue; /* 0 and -1 are fine coordinates and angles */
            mn_keypoint kp[4] = {{20, 20, 8, 0}, {30, 30, 8, 0}, {40, 40, 8, 0}, {50, 50, 8, 0}};
            float *v = f == 0 ? &kp[2].x : f == 1 ? &kp[2].y : f == 2 ? &kp[2].size : &kp[2].angle;
            *v = bad[b];
            for (size_t i = 0; i < 4 * D; i++)
                desc[i] = 42.0f;
            mn_status st = mn_describe_keypoints(session, im, IW, IH, IW, kp, 4, NULL, desc);
            CHECK(st == MN_ERR_INVALID_ARGUMENT && strstr(mn_last_error(), "mn_describe_keypoints(): ") &&
                      strstr(mn_last_error(), "2"),
                  "keypoint 2 with %s = %g: %s: %s", field[f], (double)bad[b], mn_status_str(st), mn_last_error());
        }
    free(desc);

    /* Filtering checks only matched keypoints; drawing skips non-finite
     * ones and clamps far-off ones. */
    mn_keypoint k1[5] = {{10, 10, 5, 0}, {NAN, 3, 5, 0}, {1e30f, -1e30f, 5, 0}, {20, 30, 5, 0}, {INFINITY, 0, 5, 0}};
    mn_keypoint k2[3] = {{12, 11, 5, 0}, {-3e38f, 5, 5, 0}, {25, 28, 5, 0}};
    const mn_dmatch m[3] = {{0, 0, 0.9f, 0.1f}, {2, 1, 0.8f, 0.2f}, {3, 2, 0.7f, 0.3f}};
    size_t ni = 99;
    uint8_t inl[3];
    CHECK_OK(mn_matches_filter(MN_GEOMETRY_NONE, k1, 5, k2, 3, m, 3, 3.0, NULL, inl, &ni));
    CHECK(ni == 3, "filter none with far-off matched keypoints: %zu inliers", ni);
    CHECK_OK(mn_matches_filter(MN_GEOMETRY_HOMOGRAPHY, k1, 5, k2, 3, m, 3, 3.0, NULL, inl, &ni));
    CHECK(ni == 0, "3 matches cannot give a homography: %zu inliers", ni);
    mn_image a = {(uint8_t *)im, IW, IH, IW}, b = {(uint8_t *)im, 40, 30, IW};
    const char *out = tmp_path("farpoints.png");
    CHECK_OK(mn_matches_draw(&a, k1, 5, &b, k2, 3, m, 3, NULL, out));
    mn_image back;
    CHECK_OK(mn_image_load(out, &back));
    CHECK(back.width == IW + 40 && back.height == IH, "drawing %dx%d", back.width, back.height);
    mn_image_free(&back);
    const mn_dmatch with_nan[1] = {{1, 0, 0.5f, 1.0f}};
    CHECK(mn_matches_draw(&a, k1, 5, &b, k2, 3, with_nan, 1, NULL, tmp_path("nan.png")) == MN_ERR_INVALID_ARGUMENT &&
              access(tmp_path("nan.png"), F_OK) != 0,
          "drawing a match to a NaN keypoint: %s", mn_last_error());
}

/* ---- empty sets ---- */

static void test_empty(const uint8_t *im)
{
    mn_dmatch m[1];
    size_t n = 99, ni = 99;
    float d[1] = {0};
    CHECK_OK(mn_describe_keypoints(session, im, IW, IH, IW, NULL, 0, NULL, NULL));
    CHECK_OK(mn_match(session, d, 0, d, 0, NULL, m, 0, &n));
    CHECK(n == 0, "0 x 0 descriptors: %zu matches", n);
    mn_match_params p = mn_match_params_preset(MN_MATCH_METRIC);
    p.all_pairs = 1;
    CHECK_OK(mn_match(session, NULL, 0, NULL, 0, &p, NULL, 0, &n));
    for (int g = 0; g < 3; g++) {
        double H[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
        CHECK_OK(mn_matches_filter((mn_geometry)g, NULL, 0, NULL, 0, NULL, 0, 3.0, H, NULL, &ni));
        CHECK(ni == 0 && H[0] == 0 && H[8] == 0, "geometry %d with no matches: %zu inliers", g, ni);
    }
    mn_image a = {(uint8_t *)im, IW, IH, IW}, none = {NULL, 0, 0, 0};
    CHECK_OK(mn_matches_draw(&a, NULL, 0, &a, NULL, 0, NULL, 0, NULL, tmp_path("empty-draw.png")));
    CHECK_OK(mn_matches_draw(&a, NULL, 0, &none, NULL, 0, NULL, 0, NULL, tmp_path("empty-draw2.png")));
    mn_image back;
    CHECK_OK(mn_image_load(tmp_path("empty-draw2.png"), &back));
    CHECK(back.width == IW && back.height == IH, "drawing beside an empty image: %dx%d", back.width, back.height);
    mn_image_free(&back);
    CHECK(mn_matches_draw(&none, NULL, 0, &none, NULL, 0, NULL, 0, NULL, tmp_path("nothing.png")) ==
                  MN_ERR_INVALID_ARGUMENT &&
              access(tmp_path("nothing.png"), F_OK) != 0,
          "drawing two empty images: %s", mn_last_error());
}

/* ---- model files ---- */

static void test_model_sizes(void)
{
    size_t n = 0;
    uint8_t *base = read_file(MN_SOURCE_DIR "/tests/fuzz/corpus/model/tiny.mnw", &n);
    CHECK(base && n > 128, "tiny.mnw");
    if (!base || n <= 128)
        return;
    const uint64_t claims[3] = {(uint64_t)n + 1, (uint64_t)n * 1000, UINT64_MAX};
    for (int k = 0; k < 3; k++) {
        uint8_t *d = malloc(n);
        memcpy(d, base, n);
        for (int b = 0; b < 8; b++)
            d[16 + b] = (uint8_t)(claims[k] >> (8 * b));
        write_bytes(tmp_path("claims.mnw"), d, n);
        mn_model *m = (mn_model *)d; /* must be set to NULL */
        mn_status st = mn_model_load_file(tmp_path("claims.mnw"), &m);
        CHECK(st == MN_ERR_FORMAT && m == NULL && strstr(mn_last_error(), "mn_model_load_file(): "),
              "header claims %llu bytes, file has %zu: %s: %s", (unsigned long long)claims[k], n,
              mn_status_str(st), mn_last_error());
        m = (mn_model *)d;
        st = mn_model_load_memory(d, n, &m);
        CHECK(st == MN_ERR_FORMAT && m == NULL, "in memory, header claims %llu bytes: %s",
              (unsigned long long)claims[k], mn_status_str(st));
        printf("  header claims %llu bytes -> %s: %s\n", (unsigned long long)claims[k], mn_status_str(st),
               mn_last_error());
        free(d);
    }
    /* The file cut short of what its header says. */
    write_bytes(tmp_path("cut.mnw"), base, n / 2);
    mn_model *m = NULL;
    CHECK(mn_model_load_file(tmp_path("cut.mnw"), &m) == MN_ERR_FORMAT && !m, "cut file: %s", mn_last_error());
    free(base);
}

int main(void)
{
    CHECK_OK(mn_model_load_file(MN_SOURCE_DIR "/models/matchnet.mnw", &model));
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = 2;
    if (model)
        CHECK_OK(mn_session_create(model, &sp, &session));
    if (!session)
        return check_summary("test_hostile");
    D = mn_model_descriptor_dim(model);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_hostile.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }

    test_degenerate_sizes();
    test_thin();
    test_depth_and_colour();
    uint8_t *im = textured();
    test_outside_and_duplicates(im);
    test_nonfinite_keypoints(im);
    test_empty(im);
    test_model_sizes();
    free(im);

    mn_session_free(session);
    mn_model_free(model);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary("test_hostile");
}
