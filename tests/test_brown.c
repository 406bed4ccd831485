/*
 * test_brown.c - the UBC / Brown patch data set reader and writer: a set
 * written and read back is unchanged (sheets, tiles in row-major order,
 * point ids, pairs and negative kinds), BMP variants (palette, 24-bit,
 * top-down) decode to the right grey levels, and broken sets are refused.
 */
#define _POSIX_C_SOURCE 200809L
#include "brown.h"
#include "check.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* A 3x2 24-bit BMP, top-down when top_down, pixels (B,G,R) grey levels. */
static void write_bmp24(const char *path, int top_down)
{
    uint8_t hd[54] = {'B', 'M'};
    const int w = 3, h = 2, stride = 12;
    put32(hd + 2, 54 + stride * h);
    put32(hd + 10, 54);
    put32(hd + 14, 40);
    put32(hd + 18, w);
    put32(hd + 22, top_down ? (uint32_t)-h : (uint32_t)h);
    hd[26] = 1;
    hd[28] = 24;
    FILE *f = fopen(path, "wb");
    fwrite(hd, 1, 54, f);
    /* Rows as stored: bottom-up unless top_down. Row r (image) has grey 10*r + x. */
    for (int s = 0; s < h; s++) {
        int r = top_down ? s : h - 1 - s;
        uint8_t row[12] = {0};
        for (int x = 0; x < w; x++)
            row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = (uint8_t)(10 * r + x);
        fwrite(row, 1, stride, f);
    }
    fclose(f);
}

int main(void)
{
    char dir[] = "/tmp/mn_brown_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[256], err[512];
    /* 300 patches: two sheets, the second partly filled. */
    brown_set s = {0};
    s.n = 300;
    s.patches = malloc(s.n * 64 * 64);
    s.point = malloc(s.n * sizeof *s.point);
    for (size_t i = 0; i < s.n; i++) {
        s.point[i] = (uint32_t)(i / 2);
        for (int k = 0; k < 64 * 64; k++)
            s.patches[i * 4096 + k] = (uint8_t)(i * 7 + k * 13 + (k >> 6));
    }
    brown_pair pairs[4] = {{0, 1, 0, 0, BROWN_POSITIVE}, {2, 5, 1, 2, BROWN_RANDOM},
                           {10, 11, 5, 5, BROWN_POSITIVE}, {256, 299, 128, 149, BROWN_APPEARANCE}};
    s.npairs = 4;
    s.pairs = pairs;
    CHECK(brown_save(dir, &s, err, sizeof err) == 0, "save: %s", err);

    brown_set r;
    CHECK(brown_load(dir, NULL, &r, err, sizeof err) == 0, "load: %s", err);
    CHECK(r.n == 300, "%zu patches read", r.n);
    CHECK(r.n == 300 && memcmp(r.patches, s.patches, s.n * 4096) == 0, "patches differ after a round trip");
    CHECK(r.n == 300 && memcmp(r.point, s.point, s.n * sizeof *s.point) == 0, "point ids differ");
    CHECK(r.npairs == 4, "%zu pairs read", r.npairs);
    for (size_t i = 0; i < r.npairs && i < 4; i++)
        CHECK(r.pairs[i].a == pairs[i].a && r.pairs[i].b == pairs[i].b && r.pairs[i].pa == pairs[i].pa &&
                  r.pairs[i].pb == pairs[i].pb && r.pairs[i].kind == pairs[i].kind,
              "pair %zu: (%u %u %u %u kind %d)", i, r.pairs[i].a, r.pairs[i].b, r.pairs[i].pa, r.pairs[i].pb,
              r.pairs[i].kind);
    /* Tile layout: patch 17 is row 1, column 1 of sheet 0. */
    int w, h;
    snprintf(path, sizeof path, "%s/patches0000.bmp", dir);
    uint8_t *sheet = brown_read_bmp(path, &w, &h, err, sizeof err);
    CHECK(sheet && w == 1024 && h == 1024, "sheet 0: %s", sheet ? "wrong size" : err);
    if (sheet)
        CHECK(sheet[(64 + 5) * 1024 + 64 + 9] == s.patches[17 * 4096 + 5 * 64 + 9], "tile order is not row-major");
    free(sheet);
    brown_free(&r);

    /* Without negative_kinds.txt (a UBC set), non-matching pairs are of unknown kind. */
    snprintf(path, sizeof path, "%s/negative_kinds.txt", dir);
    unlink(path);
    CHECK(brown_load(dir, NULL, &r, err, sizeof err) == 0, "load without kinds: %s", err);
    CHECK(r.npairs == 4 && r.pairs[1].kind == BROWN_UNKNOWN && r.pairs[0].kind == BROWN_POSITIVE, "kinds default");
    brown_free(&r);

    /* A pair naming a patch that does not exist. */
    snprintf(path, sizeof path, "%s/m50_bad.txt", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "0 0 0 1 0 0\n5 2 0 300 150 0\n");
    fclose(f);
    CHECK(brown_load(dir, path, &r, err, sizeof err) != 0 && strstr(err, "m50_bad.txt:2: patch id outside"),
          "bad pair accepted or unclear: %s", err);

    /* 24-bit BMPs, bottom-up and top-down. */
    for (int td = 0; td <= 1; td++) {
        snprintf(path, sizeof path, "%s/rgb%d.bmp", dir, td);
        write_bmp24(path, td);
        uint8_t *px = brown_read_bmp(path, &w, &h, err, sizeof err);
        CHECK(px && w == 3 && h == 2 && px[0] == 0 && px[2] == 2 && px[3] == 10 && px[5] == 12,
              "24-bit BMP top_down=%d decoded wrong", td);
        free(px);
    }
    /* Height INT32_MIN (found by fuzz_bmp): refused, no overflow. */
    {
        static const uint8_t hd[54] = {'B', 'M', 0x26, 5, 0, 0, 0, 0, 0, 0, 0x36, 4, 0, 0, 40, 0, 0, 0, 20, 0, 0, 0,
                                       0, 0, 0, 0x80, 1, 0, 8, 0};
        snprintf(path, sizeof path, "%s/intmin.bmp", dir);
        FILE *fb = fopen(path, "wb");
        fwrite(hd, 1, sizeof hd, fb);
        fclose(fb);
        uint8_t *px = brown_read_bmp(path, &w, &h, err, sizeof err);
        CHECK(px == NULL && strstr(err, "unsupported BMP"), "INT32_MIN height: %s", px ? "accepted" : err);
        free(px);
    }
    /* Missing sheet. */
    snprintf(path, sizeof path, "%s/patches0001.bmp", dir);
    unlink(path);
    CHECK(brown_load(dir, NULL, &r, err, sizeof err) != 0 && strstr(err, "patches0001.bmp"), "missing sheet: %s", err);
    /* Truncated sheet. */
    snprintf(path, sizeof path, "%s/patches0000.bmp", dir);
    if (truncate(path, 5000) == 0)
        CHECK(brown_load(dir, NULL, &r, err, sizeof err) != 0 && strstr(err, "truncated"), "truncated sheet: %s", err);
    CHECK(brown_load("/nonexistent", NULL, &r, err, sizeof err) != 0, "missing folder");

    free(s.patches);
    free(s.point);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_brown");
}
