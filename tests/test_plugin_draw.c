/*
 * test_plugin_draw.c - mn_matches_draw_with() and mn_matches_draw() on a
 * synthetic pair with thousands of matches (a texture and its shifted copy,
 * a quarter of the matches wrong): the cap draws exactly the documented
 * choice of lines, the images stay visible, keypoint circles appear only
 * when asked, the colours, the counts in the corner, bad options, and no
 * file (partial or temporary) left by a failure. Pictures are written as
 * binary PPM and read back here, so no decoder of the library is involved.
 * MN_TEST_PICTURES=DIR also writes the default picture to
 * DIR/test_plugin_draw.png, to look at.
 */
#define _POSIX_C_SOURCE 200809L
#include "matchnet/opencv.h"
#include "check.h"
#include "tmp_files.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

enum { W = 640, H = 480, N = 3000, DX = 9, DY = 6 };

/* Fixed-seed generator (Numerical Recipes' LCG, high bits). */
static uint32_t rng_state = 2024;
static uint32_t rng(void)
{
    return (rng_state = rng_state * 1664525u + 1013904223u) >> 8;
}

/* A texture with structure at several scales, values 20..235. */
static void texture(uint8_t *px, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int v = 40 + ((x / 16 + y / 16) % 2) * 90 + (int)(30 * sin(x * 0.21) * cos(y * 0.17)) + (int)(rng() % 40);
            px[(size_t)y * w + x] = (uint8_t)(v < 20 ? 20 : v > 235 ? 235 : v);
        }
}

/* A decoded picture: width x height RGB pixels (PPM's order). */
typedef struct picture {
    int w, h;
    uint8_t *rgb;
} picture;

/* Read a binary PPM as OpenCV writes it ("P6\n<w> <h>\n255\n" + RGB rows). */
static int read_ppm(const char *path, picture *p)
{
    memset(p, 0, sizeof *p);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int maxval = 0;
    int ok = fscanf(f, "P6 %d %d %d", &p->w, &p->h, &maxval) == 3 && maxval == 255 && fgetc(f) != EOF &&
             p->w > 0 && p->h > 0;
    if (ok) {
        size_t n = (size_t)p->w * p->h * 3;
        p->rgb = malloc(n);
        ok = p->rgb && fread(p->rgb, 1, n, f) == n;
    }
    fclose(f);
    if (!ok) {
        free(p->rgb);
        p->rgb = NULL;
    }
    return ok ? 0 : -1;
}

static const uint8_t *at(const picture *p, int x, int y)
{
    return p->rgb + ((size_t)y * p->w + x) * 3;
}

/* The two greys side by side, as the drawing lays them out. */
static uint8_t base_grey(const uint8_t *a, const uint8_t *b, int x, int y)
{
    return x < W ? a[(size_t)y * W + x] : b[(size_t)y * W + x - W];
}

/* Draw with params to name.ppm and read it back; 0 or -1 (reported). */
static int draw(const mn_image *a, const mn_keypoint *k1, const mn_image *b, const mn_keypoint *k2,
                const mn_dmatch *m, size_t nm, const uint8_t *inl, const mn_draw_params *dp, const char *name,
                picture *out)
{
    const char *path = tmp_path(name);
    mn_status st = mn_matches_draw_with(a, k1, N, b, k2, N, m, nm, inl, dp, path);
    CHECK(st == MN_OK, "%s: %s", name, mn_last_error());
    if (st != MN_OK || read_ppm(path, out) != 0) {
        CHECK(0, "%s: cannot read the picture back", name);
        return -1;
    }
    CHECK(out->w == 2 * W && out->h == H, "%s: %d x %d, want %d x %d", name, out->w, out->h, 2 * W, H);
    unlink(path);
    return out->w == 2 * W && out->h == H ? 0 : -1;
}

static int same(const picture *p, const picture *q)
{
    return p->w == q->w && p->h == q->h && memcmp(p->rgb, q->rgb, (size_t)p->w * p->h * 3) == 0;
}

/* Mean |picture - the undrawn greys| over all pixels and channels. */
static double mean_abs_diff(const picture *p, const uint8_t *a, const uint8_t *b)
{
    double s = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < 2 * W; x++)
            for (int c = 0; c < 3; c++)
                s += abs((int)at(p, x, y)[c] - base_grey(a, b, x, y));
    return s / ((double)H * 2 * W * 3);
}

/* The rule mn_matches_draw_with() documents, written again from its
 * comment: all when nm <= cap, else min(ni, cap) inliers and the rest
 * outliers, m of a list of n at floor((2k + 1) n / (2m)); list order. */
static size_t documented_choice(const uint8_t *inl, size_t nm, size_t cap, size_t *chosen)
{
    size_t in[N], out[N], ni = 0, no = 0, c = 0;
    for (size_t k = 0; k < nm; k++) {
        if (inl[k])
            in[ni++] = k;
        else
            out[no++] = k;
    }
    if (nm <= cap) {
        for (size_t k = 0; k < nm; k++)
            chosen[c++] = k;
        return c;
    }
    size_t mi = ni < cap ? ni : cap, mo = cap - mi;
    char *mark = calloc(nm, 1);
    for (size_t k = 0; k < mi; k++)
        mark[in[(2 * k + 1) * ni / (2 * mi)]] = 1;
    for (size_t k = 0; k < mo; k++)
        mark[out[(2 * k + 1) * no / (2 * mo)]] = 1;
    for (size_t k = 0; k < nm; k++)
        if (mark[k])
            chosen[c++] = k;
    free(mark);
    return c;
}

/* Files in tmpdir whose name contains ".tmp." (what a failed write could leave). */
static int temporaries_left(void)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static uint8_t px1[W * H], px2[W * H];
static mn_keypoint k1[N], k2[N];
static mn_dmatch m[N], sub[N];
static uint8_t inl[N], sub_inl[N];

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_plugin_draw.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    /* Image 2 is image 1 moved by (DX, DY); three matches in four follow
     * the move, the others point anywhere. */
    texture(px1, W, H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int sx = x - DX, sy = y - DY;
            px2[(size_t)y * W + x] = sx >= 0 && sy >= 0 ? px1[(size_t)sy * W + sx] : 0;
        }
    mn_image a = {px1, W, H, W}, b = {px2, W, H, W};
    size_t ni = 0;
    for (int i = 0; i < N; i++) {
        float x = (float)(rng() % (W - DX - 4)) + 2, y = (float)(rng() % (H - DY - 4)) + 2;
        k1[i] = (mn_keypoint){x, y, 4, 0};
        inl[i] = i % 4 != 3;
        k2[i] = inl[i] ? (mn_keypoint){x + DX, y + DY, 4, 0}
                       : (mn_keypoint){(float)(rng() % (W - 4)) + 2, (float)(rng() % (H - 4)) + 2, 4, 0};
        m[i] = (mn_dmatch){(uint32_t)i, (uint32_t)i, 0.9f, 0.1f};
        ni += inl[i];
    }

    mn_draw_params bare = mn_draw_params_default();
    CHECK(bare.max_lines == MN_DRAW_MAX_LINES && MN_DRAW_MAX_LINES == 300 && !bare.keypoints && bare.counts &&
              bare.opacity == 0.6f,
          "defaults: %zu lines, keypoints %d, counts %d, opacity %g", bare.max_lines, bare.keypoints, bare.counts,
          bare.opacity);
    bare.max_lines = 0;
    bare.counts = 0;

    /* Nothing asked for: the picture is the two images, exactly. */
    picture none, pic, ref;
    if (draw(&a, k1, &b, k2, m, N, inl, &bare, "none.ppm", &none) == 0) {
        int wrong = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < 2 * W; x++)
                for (int c = 0; c < 3; c++)
                    wrong += at(&none, x, y)[c] != base_grey(px1, px2, x, y);
        CHECK(wrong == 0, "no lines, no keypoints, no counts: %d values differ from the images", wrong);
    }

    /* Keypoint circles only when asked, and only at keypoints. */
    mn_draw_params kp = bare;
    kp.keypoints = 1;
    if (draw(&a, k1, &b, k2, m, N, inl, &kp, "keypoints.ppm", &pic) == 0 && none.rgb) {
        /* Where a circle of radius 2 (anti-aliased) can reach. */
        static uint8_t near[H][2 * W];
        for (int i = 0; i < N; i++)
            for (int side = 0; side < 2; side++) {
                const mn_keypoint *k = side ? &k2[i] : &k1[i];
                for (int dy = -4; dy <= 4; dy++)
                    for (int dx = -4; dx <= 4; dx++) {
                        int x = (int)k->x + dx + side * W, y = (int)k->y + dy;
                        if (x >= 0 && x < 2 * W && y >= 0 && y < H)
                            near[y][x] = 1;
                    }
            }
        int changed = 0, stray = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < 2 * W; x++)
                if (memcmp(at(&pic, x, y), at(&none, x, y), 3) != 0) {
                    changed++;
                    stray += !near[y][x];
                }
        CHECK(changed > 10000 && stray == 0, "keypoints: %d pixels changed (want > 10000), %d away from keypoints",
              changed, stray);
        free(pic.rgb);
    }

    /* The cap draws exactly the documented choice: the capped picture of
     * all matches equals the uncapped picture of the chosen ones. Once with
     * more inliers than the cap, once with fewer (outliers fill up). */
    static const size_t caps[] = {300, 2500};
    for (size_t c = 0; c < 2; c++) {
        static size_t chosen[N];
        size_t n = documented_choice(inl, N, caps[c], chosen);
        for (size_t k = 0; k < n; k++) {
            sub[k] = m[chosen[k]];
            sub_inl[k] = inl[chosen[k]];
        }
        mn_draw_params capped = bare, all = bare;
        capped.max_lines = caps[c];
        all.max_lines = SIZE_MAX;
        char name[64];
        snprintf(name, sizeof name, "cap%zu.ppm", caps[c]);
        if (draw(&a, k1, &b, k2, m, N, inl, &capped, name, &pic) == 0 &&
            draw(&a, k1, &b, k2, sub, n, sub_inl, &all, "chosen.ppm", &ref) == 0) {
            CHECK(n == caps[c] && same(&pic, &ref), "cap %zu: not the documented %zu lines", caps[c], n);
            free(ref.rgb);
            /* And the test can tell: the first cap matches make another picture. */
            if (draw(&a, k1, &b, k2, m, caps[c], inl, &all, "first.ppm", &ref) == 0)
                CHECK(!same(&pic, &ref), "cap %zu: the first matches draw the same picture", caps[c]);
            free(ref.rgb);
        }
        free(pic.rgb);
    }

    /* Visible: under a small cap the images stay close to undrawn, and
     * more lines cover more; every line opaque covers them (the bound
     * would catch that). */
    const double visible_bound = 10.0;
    static const size_t visible_caps[] = {100, MN_DRAW_MAX_LINES, SIZE_MAX};
    double mad[3] = {0, 0, 0};
    for (size_t c = 0; c < 3; c++) {
        mn_draw_params dp = bare;
        dp.max_lines = visible_caps[c];
        dp.opacity = mn_draw_params_default().opacity;
        if (draw(&a, k1, &b, k2, m, N, inl, &dp, "visible.ppm", &pic) == 0)
            mad[c] = mean_abs_diff(&pic, px1, px2);
        free(pic.rgb);
    }
    mn_draw_params opaque = bare;
    opaque.max_lines = SIZE_MAX;
    opaque.opacity = 1.0f;
    double mo = 0;
    if (draw(&a, k1, &b, k2, m, N, inl, &opaque, "opaque.ppm", &pic) == 0)
        mo = mean_abs_diff(&pic, px1, px2);
    free(pic.rgb);
    printf("  mean |drawn - images|: %.2f (100 lines), %.2f (%d, the default), %.2f (all %d), %.2f (all, opaque)\n",
           mad[0], mad[1], MN_DRAW_MAX_LINES, mad[2], N, mo);
    CHECK(mad[0] > 0.2 && mad[0] < visible_bound, "100 lines: mean difference %.2f, want (0.2, %.0f)", mad[0],
          visible_bound);
    CHECK(mad[0] < mad[1] && mad[1] < mad[2] && mad[2] < mo, "mean differences do not grow with the lines drawn");
    CHECK(mo > 3 * visible_bound, "all lines opaque: mean difference %.2f, want > %.0f", mo, 3 * visible_bound);

    /* Colours: an inlier green, an outlier red, on a flat grey pair. */
    {
        static uint8_t flat[W * H];
        memset(flat, 128, sizeof flat);
        mn_image fa = {flat, W, H, W};
        mn_keypoint p1[1] = {{40, 100, 4, 0}}, p2[1] = {{280, 100, 4, 0}};
        mn_dmatch one[1] = {{0, 0, 0.9f, 0.1f}};
        for (int outlier = 0; outlier < 2; outlier++) {
            uint8_t flag[1] = {(uint8_t)!outlier};
            mn_draw_params dp = bare;
            dp.max_lines = 1;
            const char *path = tmp_path("colour.ppm");
            CHECK_OK(mn_matches_draw_with(&fa, p1, 1, &fa, p2, 1, one, 1, flag, &dp, path));
            if (read_ppm(path, &pic) == 0) {
                const uint8_t *c = at(&pic, 200, 100); /* on the line from (40, 100) to (W + 280, 100) */
                int r = c[0], g = c[1], bl = c[2];
                if (outlier)
                    CHECK(r > g + 60 && r > bl + 60, "outlier line is (%d, %d, %d), want red", r, g, bl);
                else
                    CHECK(g > r + 60 && g > bl + 60, "inlier line is (%d, %d, %d), want green", r, g, bl);
                /* Partly transparent: the grey shows through (0.6 colour +
                 * 0.4 grey, less where anti-aliasing spreads the line). */
                const int colour_g = outlier ? 0 : 200, colour_r = outlier ? 230 : 0;
                CHECK(abs(g - (int)(0.6 * colour_g + 0.4 * 128)) <= 12 && abs(r - (int)(0.6 * colour_r + 0.4 * 128)) <= 12,
                      "line pixel (%d, %d, %d) is not 0.6 colour + 0.4 grey", r, g, bl);
                free(pic.rgb);
            } else {
                CHECK(0, "cannot read %s", path);
            }
            unlink(path);
        }
    }

    /* The counts: only in the top-left corner, white text on a darkened box. */
    mn_draw_params counted = bare;
    counted.counts = 1;
    if (draw(&a, k1, &b, k2, m, N, inl, &counted, "counts.ppm", &pic) == 0 && none.rgb) {
        int changed = 0, outside = 0, white = 0, dark = 0, bottom = 0, right = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < 2 * W; x++) {
                const uint8_t *c = at(&pic, x, y);
                if (memcmp(c, at(&none, x, y), 3) == 0)
                    continue;
                changed++;
                bottom = y > bottom ? y : bottom;
                right = x > right ? x : right;
                outside += y >= H / 4;
                white += c[0] >= 200 && c[1] >= 200 && c[2] >= 200;
                dark += c[0] <= 77 && c[1] <= 77 && c[2] <= 77;
            }
        printf("  counts box: %d x %d px, %d text pixels\n", right + 1, bottom + 1, white);
        CHECK(changed > 0 && outside == 0, "counts: %d pixels changed, %d below the top quarter", changed, outside);
        CHECK(white >= 30 && dark > changed / 2, "counts: %d white (text) and %d dark of %d changed pixels", white,
              dark, changed);
        free(pic.rgb);
    }
    free(none.rgb);

    /* The legacy call draws with the defaults. */
    {
        const char *p1 = tmp_path("legacy.ppm"), *p2 = tmp_path("with-null.ppm");
        picture l, w;
        CHECK_OK(mn_matches_draw(&a, k1, N, &b, k2, N, m, N, inl, p1));
        CHECK_OK(mn_matches_draw_with(&a, k1, N, &b, k2, N, m, N, inl, NULL, p2));
        CHECK(read_ppm(p1, &l) == 0 && read_ppm(p2, &w) == 0 && same(&l, &w),
              "mn_matches_draw differs from mn_matches_draw_with(NULL)");
        free(l.rgb);
        free(w.rgb);
        unlink(p1);
        unlink(p2);
    }

    /* For a person to look at: MN_TEST_PICTURES=DIR keeps the default picture. */
    const char *keep_dir = getenv("MN_TEST_PICTURES");
    if (keep_dir) {
        char path[512];
        snprintf(path, sizeof path, "%s/test_plugin_draw.png", keep_dir);
        CHECK_OK(mn_matches_draw(&a, k1, N, &b, k2, N, m, N, inl, path));
        printf("  wrote %s\n", path);
    }

    /* Bad options are refused before anything is written. */
    static const float bad_opacity[] = {0.0f, -0.5f, 1.5f, NAN};
    for (size_t i = 0; i < 4; i++) {
        mn_draw_params dp = mn_draw_params_default();
        dp.opacity = bad_opacity[i];
        CHECK(mn_matches_draw_with(&a, k1, N, &b, k2, N, m, N, inl, &dp, tmp_path("bad.ppm")) ==
                      MN_ERR_INVALID_ARGUMENT &&
                  strstr(mn_last_error(), "mn_matches_draw_with(): ") == mn_last_error(),
              "opacity %g: %s", bad_opacity[i], mn_last_error());
        CHECK(access(tmp_path("bad.ppm"), F_OK) != 0, "opacity %g: a file was written", bad_opacity[i]);
    }

    /* Failures leave no file, no temporary, and an existing picture as it was. */
    CHECK(mn_matches_draw_with(&a, k1, N, &b, k2, N, m, N, inl, NULL, "/nonexistent-dir/x/draw.png") == MN_ERR_IO,
          "unwritable directory: %s", mn_last_error());
    const char *keep = tmp_path("keep.png");
    CHECK_OK(mn_matches_draw_with(&a, k1, N, &b, k2, N, m, N, inl, NULL, keep));
    struct stat before, after;
    CHECK(stat(keep, &before) == 0, "keep.png not written");
    mn_draw_params broken = mn_draw_params_default();
    broken.opacity = 2.0f;
    CHECK(mn_matches_draw_with(&a, k1, N, &b, k2, N, m, N, inl, &broken, keep) == MN_ERR_INVALID_ARGUMENT,
          "opacity 2 over an existing file");
    const char *dir_png = tmp_path("dir.png");
    mkdir(dir_png, 0700);
    CHECK(mn_matches_draw_with(&a, k1, N, &b, k2, N, m, N, inl, NULL, dir_png) == MN_ERR_IO,
          "a directory named .png: %s", mn_last_error());
    if (geteuid() != 0) { /* root writes into read-only directories */
        const char *ro = tmp_path("read-only");
        mkdir(ro, 0500);
        char path[300];
        snprintf(path, sizeof path, "%s/x.png", ro);
        CHECK(mn_matches_draw_with(&a, k1, N, &b, k2, N, m, N, inl, NULL, path) == MN_ERR_IO &&
                  access(path, F_OK) != 0,
              "read-only directory: %s", mn_last_error());
        rmdir(ro);
    }
    CHECK(stat(keep, &after) == 0 && after.st_size == before.st_size && after.st_mtime == before.st_mtime &&
              after.st_ino == before.st_ino,
          "a failed draw changed the existing picture");
    CHECK(temporaries_left() == 0, "%d temporary files left in %s", temporaries_left(), tmpdir);
    rmdir(dir_png);
    unlink(keep);

    if (rmdir(tmpdir) != 0)
        fprintf(stderr, "note: %s not removed (unexpected files in it)\n", tmpdir);
    return check_summary("test_plugin_draw");
}
