/*
 * brown.c - UBC / Brown patch data set reader and writer (see brown.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "brown.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && len)
        vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

uint8_t *brown_read_bmp(const char *path, int *w, int *h, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    uint8_t hd[54], pal[1024];
    uint8_t *px = NULL, *row = NULL;
    if (fread(hd, 1, 54, f) != 54 || hd[0] != 'B' || hd[1] != 'M') {
        fail(err, errlen, "%s: not a BMP file", path);
        goto done;
    }
    uint32_t off = le32(hd + 10), hsize = le32(hd + 14);
    /* 64-bit: a height of INT32_MIN must not overflow when negated. */
    int64_t bw64 = (int32_t)le32(hd + 18), bh64 = (int32_t)le32(hd + 22);
    int bpp = hd[28] | hd[29] << 8;
    uint32_t comp = le32(hd + 30), ncol = le32(hd + 46);
    int top_down = bh64 < 0;
    if (top_down)
        bh64 = -bh64;
    if (hsize < 40 || comp != 0 || (bpp != 8 && bpp != 24) || bw64 <= 0 || bh64 <= 0 || bw64 > 65536 ||
        bh64 > 65536) {
        fail(err, errlen, "%s: unsupported BMP (%d bpp, compression %u, %lldx%lld)", path, bpp, comp,
             (long long)bw64, (long long)bh64);
        goto done;
    }
    int bw = (int)bw64, bh = (int)bh64;
    if (bpp == 8) {
        if (ncol == 0 || ncol > 256)
            ncol = 256;
        if (fseek(f, 14 + (long)hsize, SEEK_SET) != 0 || fread(pal, 4, ncol, f) != ncol) {
            fail(err, errlen, "%s: truncated palette", path);
            goto done;
        }
    }
    size_t stride = ((size_t)bw * (bpp / 8) + 3) & ~(size_t)3;
    px = malloc((size_t)bw * bh);
    row = malloc(stride);
    if (!px || !row || fseek(f, (long)off, SEEK_SET) != 0) {
        fail(err, errlen, "%s: out of memory or bad offset", path);
        free(px);
        px = NULL;
        goto done;
    }
    for (int y = 0; y < bh; y++) {
        if (fread(row, 1, stride, f) != stride) {
            fail(err, errlen, "%s: truncated pixel data at row %d", path, y);
            free(px);
            px = NULL;
            goto done;
        }
        uint8_t *dst = px + (size_t)(top_down ? y : bh - 1 - y) * bw;
        for (int x = 0; x < bw; x++) {
            if (bpp == 8) {
                const uint8_t *c = pal + 4 * (row[x] < ncol ? row[x] : 0);
                dst[x] = (uint8_t)((c[0] * 29 + c[1] * 150 + c[2] * 77 + 128) >> 8); /* BGR */
            } else {
                const uint8_t *c = row + 3 * x;
                dst[x] = (uint8_t)((c[0] * 29 + c[1] * 150 + c[2] * 77 + 128) >> 8);
            }
        }
    }
    *w = bw, *h = bh;
done:
    free(row);
    fclose(f);
    return px;
}

int brown_write_bmp(const char *path, const uint8_t *px, int w, int h)
{
    size_t stride = ((size_t)w + 3) & ~(size_t)3;
    uint32_t off = 54 + 1024, size = off + (uint32_t)(stride * h);
    uint8_t hd[54] = {'B', 'M'};
    put32(hd + 2, size);
    put32(hd + 10, off);
    put32(hd + 14, 40);
    put32(hd + 18, (uint32_t)w);
    put32(hd + 22, (uint32_t)h);
    hd[26] = 1;
    hd[28] = 8;
    put32(hd + 34, (uint32_t)(stride * h));
    put32(hd + 46, 256);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(hd, 1, 54, f) == 54;
    for (int i = 0; i < 256 && ok; i++) {
        uint8_t c[4] = {(uint8_t)i, (uint8_t)i, (uint8_t)i, 0};
        ok = fwrite(c, 1, 4, f) == 4;
    }
    uint8_t pad[4] = {0};
    for (int y = h - 1; y >= 0 && ok; y--)
        ok = fwrite(px + (size_t)y * w, 1, (size_t)w, f) == (size_t)w &&
             fwrite(pad, 1, stride - (size_t)w, f) == stride - (size_t)w;
    ok = (fclose(f) == 0) && ok;
    return ok ? 0 : -1;
}

static const char *kind_names[] = {"positive", "random", "spatial", "appearance", "unknown"};

int brown_load(const char *dir, const char *pairs_file, brown_set *set, char *err, size_t errlen)
{
    memset(set, 0, sizeof *set);
    char path[4096], line[512];
    snprintf(path, sizeof path, "%s/info.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, errlen, "%s: %s", path, strerror(errno));
    size_t cap = 1024;
    set->point = malloc(cap * sizeof *set->point);
    while (set->point && fgets(line, sizeof line, f)) {
        unsigned long pid;
        if (sscanf(line, "%lu", &pid) != 1)
            continue;
        if (set->n == cap) {
            uint32_t *p = realloc(set->point, 2 * cap * sizeof *p);
            if (!p)
                break;
            set->point = p, cap *= 2;
        }
        set->point[set->n++] = (uint32_t)pid;
    }
    fclose(f);
    if (!set->point || set->n == 0) {
        brown_free(set);
        return fail(err, errlen, "%s: no patches listed", path);
    }
    size_t sheets = (set->n + BROWN_PER_SHEET - 1) / BROWN_PER_SHEET;
    set->patches = malloc(set->n * BROWN_PATCH * BROWN_PATCH);
    if (!set->patches) {
        brown_free(set);
        return fail(err, errlen, "out of memory for %zu patches", set->n);
    }
    for (size_t s = 0; s < sheets; s++) {
        int w, h;
        snprintf(path, sizeof path, "%s/patches%04zu.bmp", dir, s);
        uint8_t *img = brown_read_bmp(path, &w, &h, err, errlen);
        if (!img) {
            brown_free(set);
            return -1;
        }
        if (w < BROWN_SHEET || h < BROWN_SHEET) {
            free(img);
            brown_free(set);
            return fail(err, errlen, "%s: %dx%d, expected %dx%d", path, w, h, BROWN_SHEET, BROWN_SHEET);
        }
        for (size_t t = 0; t < BROWN_PER_SHEET && s * BROWN_PER_SHEET + t < set->n; t++) {
            uint8_t *dst = set->patches + (s * BROWN_PER_SHEET + t) * BROWN_PATCH * BROWN_PATCH;
            size_t ty = t / 16, tx = t % 16;
            for (int y = 0; y < BROWN_PATCH; y++)
                memcpy(dst + y * BROWN_PATCH, img + (ty * BROWN_PATCH + y) * w + tx * BROWN_PATCH, BROWN_PATCH);
        }
        free(img);
    }
    /* Pair list. */
    char found[4096] = "";
    if (!pairs_file) {
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (strncmp(e->d_name, "m50_", 4) == 0 && strstr(e->d_name, ".txt") &&
                (!found[0] || strcmp(e->d_name, found + strlen(dir) + 1) < 0))
                snprintf(found, sizeof found, "%s/%s", dir, e->d_name);
        if (d)
            closedir(d);
        pairs_file = found;
    }
    if (!pairs_file[0])
        return 0;
    f = fopen(pairs_file, "r");
    if (!f) {
        brown_free(set);
        return fail(err, errlen, "%s: %s", pairs_file, strerror(errno));
    }
    cap = 1024;
    set->pairs = malloc(cap * sizeof *set->pairs);
    size_t lineno = 0;
    while (set->pairs && fgets(line, sizeof line, f)) {
        unsigned long a, pa, ua, b, pb, ub;
        lineno++;
        if (sscanf(line, "%lu %lu %lu %lu %lu %lu", &a, &pa, &ua, &b, &pb, &ub) != 6)
            continue;
        if (a >= set->n || b >= set->n) {
            fclose(f);
            brown_free(set);
            return fail(err, errlen, "%s:%zu: patch id outside 0..%zu", pairs_file, lineno, set->n - 1);
        }
        if (set->npairs == cap) {
            brown_pair *p = realloc(set->pairs, 2 * cap * sizeof *p);
            if (!p)
                break;
            set->pairs = p, cap *= 2;
        }
        brown_pair *p = &set->pairs[set->npairs++];
        p->a = (uint32_t)a, p->b = (uint32_t)b, p->pa = (uint32_t)pa, p->pb = (uint32_t)pb;
        p->kind = pa == pb ? BROWN_POSITIVE : BROWN_UNKNOWN;
    }
    fclose(f);
    if (!set->pairs) {
        brown_free(set);
        return fail(err, errlen, "out of memory for pairs");
    }
    /* Negative kinds, when the set has them. */
    snprintf(path, sizeof path, "%s/negative_kinds.txt", dir);
    f = fopen(path, "r");
    for (size_t i = 0; f && i < set->npairs && fgets(line, sizeof line, f); i++)
        for (int k = 0; k < 4; k++)
            if (strncmp(line, kind_names[k], strlen(kind_names[k])) == 0)
                set->pairs[i].kind = k;
    if (f)
        fclose(f);
    return 0;
}

void brown_free(brown_set *set)
{
    free(set->patches);
    free(set->point);
    free(set->pairs);
    memset(set, 0, sizeof *set);
}

static int commit_file(const char *tmp, const char *final, char *err, size_t errlen)
{
    if (rename(tmp, final) != 0) {
        remove(tmp);
        return fail(err, errlen, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
    }
    return 0;
}

int brown_save(const char *dir, const brown_set *set, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    uint8_t *sheet = malloc(BROWN_SHEET * BROWN_SHEET);
    if (!sheet)
        return fail(err, errlen, "out of memory");
    size_t sheets = (set->n + BROWN_PER_SHEET - 1) / BROWN_PER_SHEET;
    for (size_t s = 0; s < sheets; s++) {
        memset(sheet, 0, BROWN_SHEET * BROWN_SHEET);
        for (size_t t = 0; t < BROWN_PER_SHEET && s * BROWN_PER_SHEET + t < set->n; t++) {
            const uint8_t *src = set->patches + (s * BROWN_PER_SHEET + t) * BROWN_PATCH * BROWN_PATCH;
            size_t ty = t / 16, tx = t % 16;
            for (int y = 0; y < BROWN_PATCH; y++)
                memcpy(sheet + (ty * BROWN_PATCH + y) * BROWN_SHEET + tx * BROWN_PATCH, src + y * BROWN_PATCH,
                       BROWN_PATCH);
        }
        snprintf(path, sizeof path, "%s/patches%04zu.bmp", dir, s);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        if (brown_write_bmp(tmp, sheet, BROWN_SHEET, BROWN_SHEET) != 0 || commit_file(tmp, path, err, errlen) != 0) {
            free(sheet);
            remove(tmp);
            return fail(err, errlen, "cannot write %s", path);
        }
    }
    free(sheet);
    snprintf(path, sizeof path, "%s/info.txt", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return fail(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    for (size_t i = 0; i < set->n; i++)
        fprintf(f, "%u 0\n", set->point[i]);
    if (fclose(f) != 0 || commit_file(tmp, path, err, errlen) != 0)
        return fail(err, errlen, "cannot write %s", path);
    if (!set->npairs)
        return 0;
    snprintf(path, sizeof path, "%s/m50_%zu_%zu_0.txt", dir, set->npairs, set->npairs);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return fail(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    for (size_t i = 0; i < set->npairs; i++)
        fprintf(f, "%u %u 0 %u %u 0\n", set->pairs[i].a, set->pairs[i].pa, set->pairs[i].b, set->pairs[i].pb);
    if (fclose(f) != 0 || commit_file(tmp, path, err, errlen) != 0)
        return fail(err, errlen, "cannot write %s", path);
    snprintf(path, sizeof path, "%s/negative_kinds.txt", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return fail(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    for (size_t i = 0; i < set->npairs; i++)
        fprintf(f, "%s\n", kind_names[set->pairs[i].kind < 5 ? set->pairs[i].kind : 4]);
    if (fclose(f) != 0 || commit_file(tmp, path, err, errlen) != 0)
        return fail(err, errlen, "cannot write %s", path);
    return 0;
}
