/*
 * brown.h - the UBC / Brown patch data set layout, read and written.
 *
 * A data set is a folder with
 *   patchesNNNN.bmp  1024x1024 8-bit grey sheets, each 16 x 16 patches of
 *                    64x64 in row-major order; patch i is tile i % 256 of
 *                    sheet i / 256 (NNNN = 0000, 0001, ...)
 *   info.txt         one line per patch: "3D-point-id unused"
 *   m50_*.txt        pair lists, one line per pair:
 *                    "patch-id point-id unused patch-id point-id unused";
 *                    a pair matches when the point ids are equal
 * Sets made by matchnet-patchset add negative_kinds.txt: one word per line
 * of the pair list (positive, random, spatial, appearance).
 *
 * Used by the command-line tools; not part of the library's API.
 */
#ifndef MN_BROWN_H
#define MN_BROWN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BROWN_PATCH 64
#define BROWN_SHEET 1024
#define BROWN_PER_SHEET 256

typedef struct brown_pair {
    uint32_t a, b;       /* patch ids */
    uint32_t pa, pb;     /* 3D point ids */
    int kind;            /* BROWN_* below; BROWN_UNKNOWN for UBC sets' negatives */
} brown_pair;

enum { BROWN_POSITIVE = 0, BROWN_RANDOM = 1, BROWN_SPATIAL = 2, BROWN_APPEARANCE = 3, BROWN_UNKNOWN = 4 };

typedef struct brown_set {
    size_t n;            /* patches */
    uint8_t *patches;    /* n * 64 * 64 */
    uint32_t *point;     /* n point ids */
    size_t npairs;
    brown_pair *pairs;
} brown_set;

/* Read an 8-bit grey (palette) or 24-bit BMP as grey. Returns pixels or NULL, with a
 * message in err. */
uint8_t *brown_read_bmp(const char *path, int *w, int *h, char *err, size_t errlen);
/* Write an 8-bit grey BMP. Returns 0 on success. */
int brown_write_bmp(const char *path, const uint8_t *px, int w, int h);

/* Load patches and info.txt from dir, and the pair list pairs_file (a path,
 * or NULL for the first m50_*.txt in dir; "" for none). Returns 0, or -1
 * with a message in err. */
int brown_load(const char *dir, const char *pairs_file, brown_set *set, char *err, size_t errlen);
void brown_free(brown_set *set);

/* Write patches, info.txt, pairs to m50_<npairs>_<npairs>_0.txt and the kinds.
 * Files are written to temporary names and renamed. Returns 0 or -1. */
int brown_save(const char *dir, const brown_set *set, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
