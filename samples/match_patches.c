/*
 * match_patches.c - the smallest complete use of libmatchnet: describe the
 * 64x64 tiles of a patch sheet (a grey PGM image whose tiles are patches in
 * row-major order, as in the UBC/Brown data set) and, for each tile, report
 * the other tile the metric network scores highest.
 *
 *   match_patches MODEL.mnw SHEET.pgm [MAX_TILES]
 */
#include "matchnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read a binary 8-bit PGM (P5). Returns pixels (caller frees) or NULL. */
static unsigned char *read_pgm(const char *path, int *w, int *h)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    int maxval = 0, c;
    char magic[3] = {0};
    unsigned char *px = NULL;
    if (fread(magic, 1, 2, f) != 2 || strcmp(magic, "P5") != 0)
        goto done;
    int vals[3], n = 0;
    while (n < 3 && (c = fgetc(f)) != EOF) {
        if (c == '#') {
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
        } else if (c >= '0' && c <= '9') {
            ungetc(c, f);
            if (fscanf(f, "%d", &vals[n++]) != 1)
                goto done;
        }
    }
    fgetc(f); /* the single whitespace after maxval */
    *w = vals[0], *h = vals[1], maxval = vals[2];
    if (n != 3 || *w <= 0 || *h <= 0 || *w > 1 << 15 || *h > 1 << 15 || maxval != 255)
        goto done;
    px = malloc((size_t)*w * *h);
    if (px && fread(px, 1, (size_t)*w * *h, f) != (size_t)*w * *h) {
        free(px);
        px = NULL;
    }
done:
    fclose(f);
    return px;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.mnw SHEET.pgm [MAX_TILES]\n", argv[0]);
        return 2;
    }
    mn_model *model = NULL;
    if (mn_model_load_file(argv[1], &model) != MN_OK) {
        fprintf(stderr, "%s\n", mn_last_error());
        return 1;
    }
    int w, h, P = mn_model_patch_size(model);
    unsigned char *img = read_pgm(argv[2], &w, &h);
    if (!img) {
        fprintf(stderr, "%s: cannot read an 8-bit binary PGM\n", argv[2]);
        mn_model_free(model);
        return 1;
    }
    size_t cols = (size_t)(w / P), rows = (size_t)(h / P), n = cols * rows;
    if (argc > 3 && (size_t)atoi(argv[3]) < n)
        n = (size_t)atoi(argv[3]);
    if (n < 2) {
        fprintf(stderr, "%s: fewer than two %dx%d tiles\n", argv[2], P, P);
        free(img);
        mn_model_free(model);
        return 1;
    }
    /* Tiles -> contiguous patches, as the library expects. */
    unsigned char *patches = malloc(n * P * P);
    for (size_t i = 0; i < n; i++)
        for (int y = 0; y < P; y++)
            memcpy(patches + (i * P + y) * P, img + ((i / cols) * P + y) * w + (i % cols) * P, (size_t)P);

    mn_session *s = NULL;
    size_t D = mn_model_descriptor_dim(model);
    float *desc = malloc(n * D * sizeof *desc), *prob = malloc(n * n * sizeof *prob);
    int rc = 1;
    if (mn_session_create(model, NULL, &s) != MN_OK || mn_describe_u8(s, patches, n, desc) != MN_OK ||
        mn_metric_score_all(s, desc, n, desc, n, prob) != MN_OK) {
        fprintf(stderr, "%s\n", mn_last_error());
        goto done;
    }
    printf("%s: %zu tiles, %zu-D descriptors, model %s\n", argv[2], n, D, mn_model_name(model));
    for (size_t i = 0; i < n; i++) {
        size_t best = i == 0 ? 1 : 0;
        for (size_t j = 0; j < n; j++)
            if (j != i && prob[i * n + j] > prob[i * n + best])
                best = j;
        printf("tile %3zu: best match tile %3zu, p = %.3f\n", i, best, prob[i * n + best]);
    }
    rc = 0;
done:
    mn_session_free(s);
    mn_model_free(model);
    free(img);
    free(patches);
    free(desc);
    free(prob);
    return rc;
}
