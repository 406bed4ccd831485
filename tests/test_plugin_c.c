/*
 * test_plugin_c.c - matchnet/opencv.h: image decoding (PNG, PGM and JPEG
 * files written here by independent encoders: a hand-rolled PNG writer and
 * TurboJPEG's compressor), every decoding failure, resizing (against box
 * and area means computed here), keypoint detection, geometric filtering
 * against known models, and drawing.
 */
#define _POSIX_C_SOURCE 200809L
#include "matchnet/opencv.h"
#include "check.h"
#include "tmp_files.h"

#include <stdint.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>


/* Fixed-seed generator (xorshift32). */
static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}
static double uniform(double lo, double hi)
{
    return lo + (hi - lo) * (rng() / 4294967296.0);
}

/* ---- A minimal PNG writer: 8-bit grey, stored (uncompressed) deflate. ---- */

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static size_t put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
    return 4;
}

static size_t put_chunk(uint8_t *out, const char *type, const uint8_t *data, size_t n)
{
    size_t o = put_be32(out, (uint32_t)n);
    memcpy(out + o, type, 4);
    if (n)
        memcpy(out + o + 4, data, n);
    o += 4 + n;
    return o + put_be32(out + o, crc32_update(0, out + 4, 4 + n));
}

/* Encode w x h grey pixels; returns the size written to out (caller sizes
 * out generously: raw size + 1 KiB). */
static size_t png_encode(const uint8_t *px, int w, int h, uint8_t *out)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    size_t o = 0;
    memcpy(out, sig, 8);
    o += 8;
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8, ihdr[9] = 0, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0; /* 8-bit grey, no interlace */
    o += put_chunk(out + o, "IHDR", ihdr, 13);

    size_t raw_n = (size_t)h * (w + 1);
    uint8_t *raw = malloc(raw_n), *z = malloc(raw_n + raw_n / 65535 * 5 + 16);
    for (int y = 0; y < h; y++) {
        raw[(size_t)y * (w + 1)] = 0; /* filter: none */
        memcpy(raw + (size_t)y * (w + 1) + 1, px + (size_t)y * w, (size_t)w);
    }
    size_t zn = 0;
    z[zn++] = 0x78, z[zn++] = 0x01;
    for (size_t done = 0; done < raw_n;) {
        size_t len = raw_n - done < 65535 ? raw_n - done : 65535;
        z[zn++] = done + len == raw_n; /* BFINAL, BTYPE 00 (stored) */
        z[zn++] = (uint8_t)len, z[zn++] = (uint8_t)(len >> 8);
        z[zn++] = (uint8_t)~len, z[zn++] = (uint8_t)(~len >> 8);
        memcpy(z + zn, raw + done, len);
        zn += len, done += len;
    }
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < raw_n; i++)
        a = (a + raw[i]) % 65521, b = (b + a) % 65521;
    zn += put_be32(z + zn, b << 16 | a);
    o += put_chunk(out + o, "IDAT", z, zn);
    o += put_chunk(out + o, "IEND", NULL, 0);
    free(raw);
    free(z);
    return o;
}

/* A textured image: bilinear value noise plus random rectangles. */
static uint8_t *textured_image(int w, int h, uint32_t seed)
{
    rng_state = seed;
    enum { G = 17 };
    float grid[G][G];
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++)
            grid[i][j] = (float)uniform(0, 200);
    uint8_t *px = malloc((size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float gx = (float)x * (G - 1) / w, gy = (float)y * (G - 1) / h;
            int ix = (int)gx, iy = (int)gy;
            float fx = gx - ix, fy = gy - iy;
            float v = (1 - fy) * ((1 - fx) * grid[iy][ix] + fx * grid[iy][ix + 1]) +
                      fy * ((1 - fx) * grid[iy + 1][ix] + fx * grid[iy + 1][ix + 1]);
            px[(size_t)y * w + x] = (uint8_t)v;
        }
    for (int r = 0; r < 40; r++) {
        int x0 = (int)uniform(0, w - 8), y0 = (int)uniform(0, h - 8);
        int rw = (int)uniform(4, w / 6), rh = (int)uniform(4, h / 6);
        uint8_t v = (uint8_t)uniform(0, 255);
        for (int y = y0; y < y0 + rh && y < h; y++)
            for (int x = x0; x < x0 + rw && x < w; x++)
                px[(size_t)y * w + x] = v;
    }
    return px;
}

/* The image struct must be all zero after a failed load. */
static int image_is_zero(const mn_image *im)
{
    return im->pixels == NULL && im->width == 0 && im->height == 0 && im->stride == 0;
}

static void expect_load_failure(const char *path, mn_status want, const char *what)
{
    mn_image im;
    memset(&im, 0xAB, sizeof im);
    mn_status st = mn_image_load(path, &im);
    CHECK(st == want, "%s (%s): got %s, want %s: %s", what, path, mn_status_str(st), mn_status_str(want),
          mn_last_error());
    CHECK(image_is_zero(&im), "%s: image not zeroed after failure", what);
    CHECK(strncmp(mn_last_error(), "mn_image_load(): ", 17) == 0 && strlen(mn_last_error()) > 17,
          "%s: message '%s'", what, mn_last_error());
    printf("  %s -> %s: %s\n", what, mn_status_str(st), mn_last_error());
    if (st == MN_OK)
        mn_image_free(&im);
}

static void test_load(void)
{
    /* PNG: exact pixels. */
    const int w = 37, h = 23;
    uint8_t *px = textured_image(w, h, 7);
    uint8_t *png = malloc((size_t)(w + 1) * h + 1024);
    size_t png_n = png_encode(px, w, h, png);
    write_bytes(tmp_path("a.png"), png, png_n);
    mn_image im;
    CHECK_OK(mn_image_load(tmp_path("a.png"), &im));
    CHECK(im.width == w && im.height == h && im.stride >= (size_t)w && im.pixels, "png %dx%d stride %zu", im.width,
          im.height, im.stride);
    if (im.pixels && im.width == w && im.height == h) {
        int bad = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                bad += im.pixels[(size_t)y * im.stride + x] != px[(size_t)y * w + x];
        CHECK(bad == 0, "png: %d pixels differ", bad);
    }
    mn_image_free(&im);
    CHECK(image_is_zero(&im), "mn_image_free zeroes the struct");
    mn_image_free(&im); /* freeing a zeroed image is harmless */
    mn_image_free(NULL);

    /* PGM (another OpenCV codec): exact pixels. */
    char header[32];
    int hn = snprintf(header, sizeof header, "P5\n%d %d\n255\n", w, h);
    uint8_t *pgm = malloc((size_t)hn + (size_t)w * h);
    memcpy(pgm, header, (size_t)hn);
    memcpy(pgm + hn, px, (size_t)w * h);
    write_bytes(tmp_path("a.pgm"), pgm, (size_t)hn + (size_t)w * h);
    CHECK_OK(mn_image_load(tmp_path("a.pgm"), &im));
    CHECK(im.width == w && im.height == h && im.pixels && memcmp(im.pixels, px, (size_t)w * h) == 0 &&
              im.stride == (size_t)w,
          "pgm pixels");
    mn_image_free(&im);

    /* JPEG through TurboJPEG's encoder: a smooth image, pixels within tolerance. */
    const int jw = 64, jh = 48;
    uint8_t *smooth = malloc((size_t)jw * jh);
    for (int y = 0; y < jh; y++)
        for (int x = 0; x < jw; x++)
            smooth[y * jw + x] = (uint8_t)(40 + 2 * x + y);
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long jpg_n = 0;
    CHECK(tj && tjCompress2(tj, smooth, jw, jw, jh, TJPF_GRAY, &jpg, &jpg_n, TJSAMP_GRAY, 95, 0) == 0,
          "tjCompress2: %s", tjGetErrorStr2(tj));
    write_bytes(tmp_path("a.jpg"), jpg, jpg_n);
    /* The name does not matter: JPEG is recognised by its first bytes. */
    write_bytes(tmp_path("jpeg-named.png"), jpg, jpg_n);
    for (int k = 0; k < 2; k++) {
        const char *path = tmp_path(k ? "jpeg-named.png" : "a.jpg");
        CHECK_OK(mn_image_load(path, &im));
        CHECK(im.width == jw && im.height == jh && im.pixels, "jpeg %dx%d", im.width, im.height);
        if (im.pixels && im.width == jw && im.height == jh) {
            int worst = 0;
            double sum = 0;
            for (int y = 0; y < jh; y++)
                for (int x = 0; x < jw; x++) {
                    int d = abs((int)im.pixels[(size_t)y * im.stride + x] - smooth[y * jw + x]);
                    worst = d > worst ? d : worst;
                    sum += d;
                }
            CHECK(worst <= 6 && sum / (jw * jh) < 1.5, "%s: max error %d, mean %.2f", path, worst,
                  sum / (jw * jh));
        }
        mn_image_free(&im);
    }

    /* Failures. */
    expect_load_failure(tmp_path("does-not-exist.png"), MN_ERR_IO, "missing file");
    expect_load_failure(tmpdir, MN_ERR_IO, "directory");
    write_bytes(tmp_path("empty.png"), "", 0);
    expect_load_failure(tmp_path("empty.png"), MN_ERR_FORMAT, "zero-byte file");
    uint8_t garbage[4096];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (uint8_t)rng();
    garbage[0] = 'x'; /* no format starts so */
    write_bytes(tmp_path("garbage.png"), garbage, sizeof garbage);
    expect_load_failure(tmp_path("garbage.png"), MN_ERR_FORMAT, "garbage bytes");
    /* A broken DICOM file (the "DICM" tag at offset 128): OpenCV's GDCM
     * decoder asserts on it and aborts (found by fuzz_image); it must be
     * refused before any decoder sees it. */
    uint8_t dicom[132];
    memset(dicom, 0xFF, sizeof dicom);
    memcpy(dicom + 128, "DICM", 4);
    write_bytes(tmp_path("broken.dcm"), dicom, sizeof dicom);
    expect_load_failure(tmp_path("broken.dcm"), MN_ERR_FORMAT, "a broken DICOM file");
    garbage[0] = 0xFF, garbage[1] = 0xD8, garbage[2] = 0xFF;
    write_bytes(tmp_path("garbage.jpg"), garbage, sizeof garbage);
    expect_load_failure(tmp_path("garbage.jpg"), MN_ERR_FORMAT, "garbage after the JPEG magic");
    write_bytes(tmp_path("trunc-header.jpg"), jpg, 20);
    expect_load_failure(tmp_path("trunc-header.jpg"), MN_ERR_FORMAT, "JPEG cut in its header");
    write_bytes(tmp_path("trunc-data.jpg"), jpg, jpg_n * 2 / 3);
    expect_load_failure(tmp_path("trunc-data.jpg"), MN_ERR_FORMAT, "JPEG cut in its data");
    write_bytes(tmp_path("trunc.png"), png, png_n / 2);
    expect_load_failure(tmp_path("trunc.png"), MN_ERR_FORMAT, "PNG cut in its data");
    png[png_n / 2] ^= 0x10; /* a flipped bit in the image data */
    write_bytes(tmp_path("flipped.png"), png, png_n);
    expect_load_failure(tmp_path("flipped.png"), MN_ERR_FORMAT, "PNG with a flipped bit");
    png[png_n / 2] ^= 0x10;
    write_bytes(tmp_path("trunc-sig.png"), png, 12);
    expect_load_failure(tmp_path("trunc-sig.png"), MN_ERR_FORMAT, "PNG cut after its signature");

    /* A JPEG whose frame header claims 65500 x 65500 pixels (> 2^28) is
     * refused before any decoding. */
    unsigned char *big = malloc(jpg_n);
    memcpy(big, jpg, jpg_n);
    int patched = 0;
    for (unsigned long i = 2; i + 9 < jpg_n && !patched; i++)
        if (big[i] == 0xFF && big[i + 1] == 0xC0) { /* SOF0: length(2) precision(1) height(2) width(2) */
            big[i + 5] = 0xFF, big[i + 6] = 0xDC, big[i + 7] = 0xFF, big[i + 8] = 0xDC;
            patched = 1;
        }
    CHECK(patched, "no SOF0 marker in TurboJPEG's output");
    write_bytes(tmp_path("huge.jpg"), big, jpg_n);
    expect_load_failure(tmp_path("huge.jpg"), MN_ERR_INVALID_ARGUMENT, "JPEG larger than 2^28 pixels");
    free(big);

    CHECK(mn_image_load(NULL, &im) == MN_ERR_INVALID_ARGUMENT && image_is_zero(&im), "NULL path");
    CHECK(mn_image_load(tmp_path("a.png"), NULL) == MN_ERR_INVALID_ARGUMENT, "NULL out");

    tjFree(jpg);
    tjDestroy(tj);
    free(smooth);
    free(pgm);
    free(png);
    free(px);
}

/* The mean of src over the area that output pixel (ox, oy) covers when
 * src shrinks to dw x dh: each source pixel weighted by its overlap, in
 * double precision (what INTER_AREA approximates in float). */
static double area_mean(const mn_image *src, int dw, int dh, int ox, int oy)
{
    const double sx = (double)src->width / dw, sy = (double)src->height / dh;
    double acc = 0;
    for (int y = (int)floor(oy * sy); y < src->height && y < (oy + 1) * sy; y++) {
        double wy = fmin(y + 1, (oy + 1) * sy) - fmax(y, oy * sy);
        for (int x = (int)floor(ox * sx); x < src->width && x < (ox + 1) * sx; x++) {
            double wx = fmin(x + 1, (ox + 1) * sx) - fmax(x, ox * sx);
            acc += wx * wy * src->pixels[(size_t)y * src->stride + x];
        }
    }
    return acc / (sx * sy);
}

/* Pixels of a resize of src that differ from area_mean(), rounded, by more
 * than tolerance. */
static int resize_errors(const mn_image *src, const mn_image *dst, int tolerance)
{
    int bad = 0;
    for (int y = 0; y < dst->height; y++)
        for (int x = 0; x < dst->width; x++) {
            int want = (int)floor(area_mean(src, dst->width, dst->height, x, y) + 0.5);
            int got = dst->pixels[(size_t)y * dst->stride + x];
            if (abs(got - want) > tolerance && bad++ < 3)
                fprintf(stderr, "  %d x %d -> %d x %d: pixel (%d, %d) is %d, want %d\n", src->width, src->height,
                        dst->width, dst->height, x, y, got, want);
        }
    return bad;
}

static void expect_resize_failure(const mn_image *src, int w, int h, const char *what)
{
    mn_image dst;
    memset(&dst, 0xAB, sizeof dst);
    mn_status st = mn_image_resize(src, w, h, &dst);
    CHECK(st == MN_ERR_INVALID_ARGUMENT, "resize, %s: got %s: %s", what, mn_status_str(st), mn_last_error());
    CHECK(image_is_zero(&dst), "resize, %s: dst not zeroed after failure", what);
    CHECK(strncmp(mn_last_error(), "mn_image_resize(): ", 19) == 0 && strlen(mn_last_error()) > 19,
          "resize, %s: message '%s'", what, mn_last_error());
    printf("  resize, %s -> %s: %s\n", what, mn_status_str(st), mn_last_error());
    if (st == MN_OK)
        mn_image_free(&dst);
}

static void test_resize(void)
{
    /* Integer factors: exactly the box mean, rounded. Every box has an odd
     * number of pixels, so no mean lies halfway between two values and
     * the rounding rule cannot matter. */
    const int w = 60, h = 45;
    uint8_t *px = textured_image(w, h, 23);
    mn_image src = {px, w, h, (size_t)w}, dst;
    static const int factors[][2] = {{1, 1}, {3, 1}, {1, 3}, {3, 5}, {5, 5}, {15, 9}};
    for (size_t f = 0; f < sizeof factors / sizeof *factors; f++) {
        const int dw = w / factors[f][0], dh = h / factors[f][1];
        memset(&dst, 0xAB, sizeof dst);
        CHECK_OK(mn_image_resize(&src, dw, dh, &dst));
        CHECK(dst.width == dw && dst.height == dh && dst.stride == (size_t)dw && dst.pixels,
              "%d x %d: got %d x %d, stride %zu", dw, dh, dst.width, dst.height, dst.stride);
        if (dst.width == dw && dst.height == dh)
            CHECK(resize_errors(&src, &dst, 0) == 0, "%d x %d -> %d x %d: not the box mean", w, h, dw, dh);
        mn_image_free(&dst);
        CHECK(image_is_zero(&dst), "mn_image_free did not zero the image");
    }

    /* Other factors: the area mean to within one step (float weights). */
    static const int sizes[][2] = {{23, 17}, {59, 44}, {7, 45}, {1, 1}};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        CHECK_OK(mn_image_resize(&src, sizes[k][0], sizes[k][1], &dst));
        if (dst.width == sizes[k][0] && dst.height == sizes[k][1])
            CHECK(resize_errors(&src, &dst, 1) == 0, "%d x %d -> %d x %d: not the area mean", w, h, sizes[k][0],
                  sizes[k][1]);
        mn_image_free(&dst);
    }

    /* The stride is honoured: padding of 255 changes nothing. */
    const size_t stride = (size_t)w + 7;
    uint8_t *padded = malloc(stride * h);
    memset(padded, 255, stride * h);
    for (int y = 0; y < h; y++)
        memcpy(padded + (size_t)y * stride, px + (size_t)y * w, (size_t)w);
    mn_image psrc = {padded, w, h, stride}, a, b;
    CHECK_OK(mn_image_resize(&src, 23, 17, &a));
    CHECK_OK(mn_image_resize(&psrc, 23, 17, &b));
    CHECK(a.pixels && b.pixels && memcmp(a.pixels, b.pixels, 23 * 17) == 0, "a padded source resizes differently");
    mn_image_free(&a);
    mn_image_free(&b);

    /* Enlarging: a flat image stays flat. */
    memset(padded, 137, stride * h);
    CHECK_OK(mn_image_resize(&psrc, 2 * w + 1, 3 * h, &a));
    int off = 0;
    for (size_t i = 0; a.pixels && i < (size_t)a.width * a.height; i++)
        off += a.pixels[i] != 137;
    CHECK(a.width == 2 * w + 1 && a.height == 3 * h && off == 0, "flat image enlarged: %d x %d, %d pixels not 137",
          a.width, a.height, off);
    mn_image_free(&a);

    /* Bad arguments. */
    expect_resize_failure(NULL, 10, 10, "NULL src");
    expect_resize_failure(&src, 0, 10, "width 0");
    expect_resize_failure(&src, 10, -1, "height -1");
    expect_resize_failure(&src, 65536, 65536, "2^32 pixels");
    mn_image empty = {NULL, 0, 0, 0}, no_pixels = {NULL, w, h, (size_t)w}, narrow = {px, w, h, (size_t)w - 1},
             negative = {px, -w, h, (size_t)w};
    expect_resize_failure(&empty, 10, 10, "0 x 0 src");
    expect_resize_failure(&no_pixels, 10, 10, "src->pixels NULL");
    expect_resize_failure(&narrow, 10, 10, "stride below width");
    expect_resize_failure(&negative, 10, 10, "negative width");
    CHECK(mn_image_resize(&src, 10, 10, NULL) == MN_ERR_INVALID_ARGUMENT, "NULL dst");
    mn_image same = src;
    CHECK(mn_image_resize(&same, 10, 10, &same) == MN_ERR_INVALID_ARGUMENT && same.pixels == px && same.width == w,
          "dst == src: %s", mn_last_error());
    free(padded);
    free(px);
}

static void test_detect(void)
{
    static const char *names[] = {"SIFT", "ORB", "AKAZE"};
    const int w = 320, h = 240;
    uint8_t *px = textured_image(w, h, 99);
    mn_image im = {px, w, h, (size_t)w};
    mn_keypoint kp[200], kp2[200];
    size_t n = 0, n2 = 0;

    CHECK(mn_detector_scale_factor(MN_DETECTOR_SIFT) == MN_SCALE_SIFT, "SIFT scale");
    CHECK(mn_detector_scale_factor(MN_DETECTOR_ORB) == MN_SCALE_ORB, "ORB scale");
    CHECK(mn_detector_scale_factor(MN_DETECTOR_AKAZE) == MN_SCALE_AKAZE, "AKAZE scale");
    CHECK(mn_detector_scale_factor((mn_detector)9) == 0.0f, "unknown detector scale");

    for (int d = 0; d < 3; d++) {
        const size_t caps[] = {50, 5};
        for (int c = 0; c < 2; c++) {
            n = 12345;
            CHECK_OK(mn_keypoints_detect(&im, (mn_detector)d, caps[c], kp, &n));
            CHECK(n > 0 && n <= caps[c], "%s: %zu keypoints with max %zu", names[d], n, caps[c]);
            int bad = 0;
            for (size_t i = 0; i < n && i <= caps[c]; i++)
                bad += !(kp[i].x >= 0 && kp[i].x < w && kp[i].y >= 0 && kp[i].y < h && kp[i].size > 0 &&
                         kp[i].angle >= -1 && kp[i].angle < 360);
            CHECK(bad == 0, "%s: %d keypoints out of the image or with bad size/angle", names[d], bad);
            printf("  %s, max %zu: %zu keypoints\n", names[d], caps[c], n);
        }

        /* The caller's stride is honoured: the same image inside a wider
         * buffer gives the same keypoints. */
        const size_t stride = (size_t)w + 13;
        uint8_t *wide = malloc(stride * h);
        memset(wide, 255, stride * h);
        for (int y = 0; y < h; y++)
            memcpy(wide + (size_t)y * stride, px + (size_t)y * w, (size_t)w);
        mn_image wim = {wide, w, h, stride};
        CHECK_OK(mn_keypoints_detect(&im, (mn_detector)d, 50, kp, &n));
        CHECK_OK(mn_keypoints_detect(&wim, (mn_detector)d, 50, kp2, &n2));
        CHECK(n == n2 && memcmp(kp, kp2, n * sizeof *kp) == 0, "%s: stride %zu changes the keypoints (%zu vs %zu)",
              names[d], stride, n, n2);
        free(wide);

        /* Nothing to find. */
        uint8_t flat[64 * 64];
        memset(flat, 128, sizeof flat);
        mn_image fim = {flat, 64, 64, 64};
        CHECK_OK(mn_keypoints_detect(&fim, (mn_detector)d, 50, kp, &n));
        CHECK(n == 0, "%s: %zu keypoints on a flat image", names[d], n);
        mn_image empty = {NULL, 0, 0, 0};
        n = 7;
        CHECK_OK(mn_keypoints_detect(&empty, (mn_detector)d, 50, kp, &n));
        CHECK(n == 0, "%s: %zu keypoints on an empty image", names[d], n);
        /* Tiny images are not an error. */
        mn_image tiny = {px, 3, 2, (size_t)w};
        CHECK_OK(mn_keypoints_detect(&tiny, (mn_detector)d, 50, kp, &n));
        CHECK(n == 0, "%s: %zu keypoints on a 3x2 image", names[d], n);
    }
    CHECK_OK(mn_keypoints_detect(&im, MN_DETECTOR_SIFT, 0, NULL, &n));
    CHECK(n == 0, "max_keypoints 0");
    CHECK(mn_keypoints_detect(&im, (mn_detector)3, 50, kp, &n) == MN_ERR_INVALID_ARGUMENT && n == 0,
          "unknown detector");
    CHECK(mn_keypoints_detect(&im, MN_DETECTOR_SIFT, 50, NULL, &n) == MN_ERR_INVALID_ARGUMENT, "NULL keypoints");
    CHECK(mn_keypoints_detect(&im, MN_DETECTOR_SIFT, 50, kp, NULL) == MN_ERR_INVALID_ARGUMENT, "NULL count");
    CHECK(mn_keypoints_detect(NULL, MN_DETECTOR_SIFT, 50, kp, &n) == MN_ERR_INVALID_ARGUMENT, "NULL image");
    mn_image narrow = {px, w, h, (size_t)w - 1};
    CHECK(mn_keypoints_detect(&narrow, MN_DETECTOR_SIFT, 50, kp, &n) == MN_ERR_INVALID_ARGUMENT, "stride < width");
    CHECK(strstr(mn_last_error(), "mn_keypoints_detect(): ") == mn_last_error(), "%s", mn_last_error());
    free(px);
}

static void apply_h(const double H[9], double x, double y, double *u, double *v)
{
    double s = H[6] * x + H[7] * y + H[8];
    *u = (H[0] * x + H[1] * y + H[2]) / s;
    *v = (H[3] * x + H[4] * y + H[5]) / s;
}

static void test_filter_homography(void)
{
    enum { N = 80 };
    const double H[9] = {0.9, 0.1, 20, -0.05, 1.1, 10, 1e-4, 2e-4, 1};
    mn_keypoint kp1[N], kp2[N];
    mn_dmatch m[N];
    uint8_t outlier[N], inl[N];
    rng_state = 2024;
    for (int i = 0; i < N; i++) {
        double x = uniform(0, 640), y = uniform(0, 480), u, v;
        apply_h(H, x, y, &u, &v);
        outlier[i] = i % 4 == 1; /* 25% */
        if (outlier[i]) {
            double a = uniform(0, 6.2832), r = uniform(30, 200);
            u += r * cos(a), v += r * sin(a);
        }
        kp1[i] = (mn_keypoint){(float)x, (float)y, 4, 0};
        /* Matches index a shuffled train list: kp2[N-1-i] goes with kp1[i]. */
        kp2[N - 1 - i] = (mn_keypoint){(float)u, (float)v, 4, 0};
        m[i] = (mn_dmatch){(uint32_t)i, (uint32_t)(N - 1 - i), 0.9f, 1.0f};
    }
    double model[9];
    size_t ni = 0;
    CHECK_OK(mn_matches_filter(MN_GEOMETRY_HOMOGRAPHY, kp1, N, kp2, N, m, N, 3.0, model, inl, &ni));
    CHECK(ni == N - N / 4, "homography: %zu inliers, want %d", ni, N - N / 4);
    int wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += inl[i] != !outlier[i];
    CHECK(wrong == 0, "homography: %d inlier flags wrong", wrong);
    double worst = 0;
    for (int k = 0; k < 9 && model[8] != 0; k++) {
        double d = fabs(model[k] / model[8] - H[k]) / (fabs(H[k]) > 1 ? fabs(H[k]) : 1);
        worst = d > worst ? d : worst;
    }
    CHECK(model[8] != 0 && worst < 1e-3, "homography: relative error %g (h = %g %g %g / %g %g %g / %g %g %g)", worst,
          model[0], model[1], model[2], model[3], model[4], model[5], model[6], model[7], model[8]);

    /* Without geometry every match is an inlier and the model is zero. */
    CHECK_OK(mn_matches_filter(MN_GEOMETRY_NONE, kp1, N, kp2, N, m, N, 0.0, model, inl, &ni));
    int zeros = 0, ones = 0;
    for (int k = 0; k < 9; k++)
        zeros += model[k] == 0.0;
    for (int i = 0; i < N; i++)
        ones += inl[i] == 1;
    CHECK(ni == N && ones == N && zeros == 9, "none: %zu inliers, %d flags, %d zeros", ni, ones, zeros);

    /* Too few matches: no model, no inliers, no error. */
    model[0] = 5;
    CHECK_OK(mn_matches_filter(MN_GEOMETRY_HOMOGRAPHY, kp1, N, kp2, N, m, 3, 3.0, model, inl, &ni));
    CHECK(ni == 0 && model[0] == 0 && inl[0] == 0, "3 matches: %zu inliers", ni);
    CHECK_OK(mn_matches_filter(MN_GEOMETRY_FUNDAMENTAL, kp1, N, kp2, N, m, 7, 3.0, NULL, NULL, &ni));
    CHECK(ni == 0, "F from 7 matches: %zu inliers", ni);
    CHECK_OK(mn_matches_filter(MN_GEOMETRY_HOMOGRAPHY, NULL, 0, NULL, 0, NULL, 0, 3.0, model, NULL, &ni));
    CHECK(ni == 0, "no matches");

    /* Indices are checked. */
    mn_dmatch bad = m[5];
    bad.train = N;
    mn_dmatch two[2] = {m[0], bad};
    CHECK(mn_matches_filter(MN_GEOMETRY_HOMOGRAPHY, kp1, N, kp2, N, two, 2, 3.0, model, inl, &ni) ==
              MN_ERR_INVALID_ARGUMENT,
          "train index out of range");
    CHECK(strstr(mn_last_error(), "mn_matches_filter(): match 1 = (5, 80) is outside 80 x 80") == mn_last_error(),
          "%s", mn_last_error());
    two[1].train = 0, two[1].query = N + 5;
    CHECK(mn_matches_filter(MN_GEOMETRY_NONE, kp1, N, kp2, N, two, 2, 3.0, model, inl, &ni) ==
              MN_ERR_INVALID_ARGUMENT,
          "query index out of range (no geometry)");
    CHECK(mn_matches_filter(MN_GEOMETRY_HOMOGRAPHY, kp1, N, kp2, N, m, N, 0.0, model, inl, &ni) ==
              MN_ERR_INVALID_ARGUMENT,
          "zero threshold");
    CHECK(mn_matches_filter(MN_GEOMETRY_HOMOGRAPHY, kp1, N, kp2, N, m, N, NAN, model, inl, &ni) ==
              MN_ERR_INVALID_ARGUMENT,
          "NaN threshold");
    CHECK(mn_matches_filter((mn_geometry)7, kp1, N, kp2, N, m, N, 3.0, model, inl, &ni) == MN_ERR_INVALID_ARGUMENT,
          "unknown geometry");
    CHECK(mn_matches_filter(MN_GEOMETRY_HOMOGRAPHY, kp1, N, kp2, N, m, N, 3.0, model, inl, NULL) ==
              MN_ERR_INVALID_ARGUMENT,
          "NULL n_inliers");
    kp1[3].x = NAN;
    CHECK(mn_matches_filter(MN_GEOMETRY_HOMOGRAPHY, kp1, N, kp2, N, m, N, 3.0, model, inl, &ni) ==
              MN_ERR_INVALID_ARGUMENT,
          "NaN keypoint");
}

/* Two views of random 3D points; outliers kept far from their epipolar lines. */
static void test_filter_fundamental(void)
{
    enum { N = 60 };
    const double f = 500, cx = 320, cy = 240, a = 0.15;
    const double R[9] = {cos(a), 0, sin(a), 0, 1, 0, -sin(a), 0, cos(a)}, t[3] = {-1.0, 0.1, 0.05};
    /* F = K^-T [t]x R K^-1 */
    const double Kinv[9] = {1 / f, 0, -cx / f, 0, 1 / f, -cy / f, 0, 0, 1};
    const double tx[9] = {0, -t[2], t[1], t[2], 0, -t[0], -t[1], t[0], 0};
    double E[9] = {0}, A[9] = {0}, F[9] = {0};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++)
                E[i * 3 + j] += tx[i * 3 + k] * R[k * 3 + j];
    for (int i = 0; i < 3; i++) /* A = E K^-1 */
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++)
                A[i * 3 + j] += E[i * 3 + k] * Kinv[k * 3 + j];
    for (int i = 0; i < 3; i++) /* F = K^-T A */
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++)
                F[i * 3 + j] += Kinv[k * 3 + i] * A[k * 3 + j];

    mn_keypoint kp1[N], kp2[N];
    mn_dmatch m[N];
    uint8_t outlier[N], inl[N];
    rng_state = 77;
    for (int i = 0; i < N; i++) {
        double X = uniform(-3, 3), Y = uniform(-2, 2), Z = uniform(5, 12);
        double x1 = f * X / Z + cx, y1 = f * Y / Z + cy;
        double P[3] = {R[0] * X + R[1] * Y + R[2] * Z + t[0], R[3] * X + R[4] * Y + R[5] * Z + t[1],
                       R[6] * X + R[7] * Y + R[8] * Z + t[2]};
        double x2 = f * P[0] / P[2] + cx, y2 = f * P[1] / P[2] + cy;
        outlier[i] = i % 5 == 2; /* 20% */
        while (outlier[i]) {
            x2 = uniform(0, 640), y2 = uniform(0, 480);
            double l[3] = {F[0] * x1 + F[1] * y1 + F[2], F[3] * x1 + F[4] * y1 + F[5], F[6] * x1 + F[7] * y1 + F[8]};
            if (fabs(l[0] * x2 + l[1] * y2 + l[2]) / hypot(l[0], l[1]) > 25)
                break;
        }
        kp1[i] = (mn_keypoint){(float)x1, (float)y1, 4, -1};
        kp2[i] = (mn_keypoint){(float)x2, (float)y2, 4, -1};
        m[i] = (mn_dmatch){(uint32_t)i, (uint32_t)i, 0.8f, 1.0f};
    }
    double model[9];
    size_t ni = 0;
    CHECK_OK(mn_matches_filter(MN_GEOMETRY_FUNDAMENTAL, kp1, N, kp2, N, m, N, 1.0, model, inl, &ni));
    int wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += inl[i] != !outlier[i];
    CHECK(ni == N - N / 5 && wrong == 0, "fundamental: %zu inliers (want %d), %d flags wrong", ni, N - N / 5, wrong);
    /* The model maps image 1 to image 2: every inlier is on its epipolar line. */
    double worst = 0;
    for (int i = 0; i < N; i++) {
        if (outlier[i])
            continue;
        double x1 = kp1[i].x, y1 = kp1[i].y, x2 = kp2[i].x, y2 = kp2[i].y;
        double l[3] = {model[0] * x1 + model[1] * y1 + model[2], model[3] * x1 + model[4] * y1 + model[5],
                       model[6] * x1 + model[7] * y1 + model[8]};
        double d = fabs(l[0] * x2 + l[1] * y2 + l[2]) / hypot(l[0], l[1]);
        worst = d > worst ? d : worst;
    }
    CHECK(worst < 0.5, "fundamental: inlier %g px from its epipolar line", worst);
}

static void test_draw(void)
{
    const int w1 = 120, h1 = 90, w2 = 100, h2 = 130;
    uint8_t *p1 = textured_image(w1, h1, 5), *p2 = textured_image(w2, h2, 6);
    mn_image a = {p1, w1, h1, (size_t)w1}, b = {p2, w2, h2, (size_t)w2};
    mn_keypoint k1[3] = {{10, 10, 4, 0}, {50, 60, 8, 90}, {119, 89, 2, -1}};
    mn_keypoint k2[2] = {{20, 30, 4, 0}, {99, 129, 4, 0}};
    mn_dmatch m[3] = {{0, 1, 0.9f, 1}, {1, 0, 0.7f, 2}, {2, 1, 0.6f, 3}};
    uint8_t inl[3] = {1, 0, 1};
    const char *out = tmp_path("draw.png");
    CHECK_OK(mn_matches_draw(&a, k1, 3, &b, k2, 2, m, 3, inl, out));
    mn_image back;
    CHECK_OK(mn_image_load(out, &back));
    CHECK(back.width == w1 + w2 && back.height == h2, "drawing is %dx%d, want %dx%d", back.width, back.height,
          w1 + w2, h2);
    /* Away from the drawn marks, the left half is image 1 (grey to BGR and back). */
    if (back.pixels && back.width == w1 + w2)
        CHECK(abs((int)back.pixels[80 * back.stride + 100] - p1[80 * w1 + 100]) <= 1, "left pixel %d vs %d",
              back.pixels[80 * back.stride + 100], p1[80 * w1 + 100]);
    mn_image_free(&back);
    CHECK_OK(mn_matches_draw(&a, k1, 3, &b, k2, 2, m, 3, NULL, tmp_path("draw-all-inliers.jpg")));
    CHECK_OK(mn_matches_draw(&a, NULL, 0, &b, NULL, 0, NULL, 0, NULL, tmp_path("draw-nothing.png")));

    /* Failures leave nothing behind. */
    CHECK(mn_matches_draw(&a, k1, 3, &b, k2, 2, m, 3, inl, "/nonexistent-dir/x/draw.png") == MN_ERR_IO,
          "unwritable path: %s", mn_last_error());
    CHECK(strstr(mn_last_error(), "mn_matches_draw(): ") == mn_last_error() && strstr(mn_last_error(), "draw.png"),
          "message '%s'", mn_last_error());
    printf("  unwritable -> %s\n", mn_last_error());
    CHECK(mn_matches_draw(&a, k1, 3, &b, k2, 2, m, 3, inl, tmp_path("draw.unknown-ext")) == MN_ERR_UNSUPPORTED,
          "unknown extension: %s", mn_last_error());
    CHECK(mn_matches_draw(&a, k1, 3, &b, k2, 2, m, 3, inl, tmp_path("no-extension")) == MN_ERR_UNSUPPORTED,
          "no extension: %s", mn_last_error());
    CHECK(access(tmp_path("draw.unknown-ext"), F_OK) != 0 && access(tmp_path("no-extension"), F_OK) != 0,
          "failed draws left files");
    m[2].train = 2;
    CHECK(mn_matches_draw(&a, k1, 3, &b, k2, 2, m, 3, inl, tmp_path("bad-index.png")) == MN_ERR_INVALID_ARGUMENT,
          "index out of range");
    CHECK(mn_matches_draw(NULL, k1, 3, &b, k2, 2, m, 2, inl, tmp_path("x.png")) == MN_ERR_INVALID_ARGUMENT,
          "NULL image");
    CHECK(mn_matches_draw(&a, k1, 3, &b, k2, 2, m, 2, inl, NULL) == MN_ERR_INVALID_ARGUMENT, "NULL path");
    free(p1);
    free(p2);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_plugin_c.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_load();
    test_resize();
    test_detect();
    test_filter_homography();
    test_filter_fundamental();
    test_draw();

    /* Clean up: the directory holds only files this test wrote. */
    static const char *files[] = {"a.png", "a.pgm", "a.jpg", "jpeg-named.png", "empty.png", "garbage.png",
                                  "garbage.jpg", "trunc-header.jpg", "trunc-data.jpg", "trunc.png",
                                  "trunc-sig.png", "flipped.png", "huge.jpg", "draw.png", "draw-all-inliers.jpg",
                                  "draw-nothing.png"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(tmp_path(files[i]));
    if (rmdir(tmpdir) != 0)
        fprintf(stderr, "note: %s not removed (unexpected files in it)\n", tmpdir);
    return check_summary("test_plugin_c");
}
