/*
 * colmap_pairs.c - matchnet-colmap's pairs (colmap_app.h): which image
 * pairs to match (--pairs exhaustive, sequential:N or a file of
 * 'NAME1 NAME2' lines) and the pair list for COLMAP. Plain C on the image
 * list, no engine or database: tests/fuzz/fuzz_colmap_pairs.c calls it.
 */
#define _POSIX_C_SOURCE 200809L
#include "colmap_app.h"
#include "out_file.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pair_spec_parse(options *o)
{
    const char *v = o->pairs_spec;
    if (!v || strcmp(v, "exhaustive") == 0) {
        o->pairs = PAIRS_EXHAUSTIVE;
    } else if (strncmp(v, "sequential:", 11) == 0) {
        o->pairs = PAIRS_SEQUENTIAL;
        if ((o->overlap = mn_cli_parse_count(v + 11, 1, INT_MAX)) < 0) {
            error_line("--pairs: sequential:N needs a whole number N >= 1, got '%s'", v + 11);
            return 2;
        }
    } else if (v[0] != '\0') {
        o->pairs = PAIRS_FILE;
        o->pair_file = v;
    } else {
        error_line("--pairs: expected exhaustive, sequential:N or a file, got ''");
        return 2;
    }
    return 0;
}

static int pair_push(pair_list *p, size_t i, size_t j)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        size_t(*v)[2] = realloc(p->v, cap * sizeof *v);
        if (!v)
            return -1;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n][0] = i;
    p->v[p->n][1] = j;
    p->n++;
    return 0;
}

static long find_name(const image_list *list, const char *name)
{
    size_t lo = 0, hi = list->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(list->v[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* --pairs exhaustive or sequential:N. */
static int select_generated(const options *o, const image_list *list, pair_list *out)
{
    for (size_t i = 0; i < list->n; i++) {
        if (!image_usable(&list->v[i]))
            continue;
        size_t end = o->pairs == PAIRS_SEQUENTIAL && (size_t)o->overlap < list->n - i ? i + 1 + (size_t)o->overlap
                                                                                        : list->n;
        for (size_t j = i + 1; j < end; j++)
            if (image_usable(&list->v[j]) && pair_push(out, i, j) != 0) {
                error_line("out of memory");
                return -1;
            }
    }
    return 0;
}

/* --pairs FILE: its pairs in file order, each once, either way round. */
static int select_from_file(const char *path, const image_list *list, pair_list *out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        error_line("cannot open pair list '%s': %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL; /* any length: a fixed buffer cut long lines into "lines" of their own */
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    uint8_t *seen = calloc(list->n ? list->n * list->n : 1, 1);
    if (!seen) {
        error_line("out of memory");
        fclose(f);
        return -1;
    }
    while (rc == 0 && getline(&line, &cap, f) != -1) {
        lineno++;
        char *a = strtok(line, " \t\r\n"), *b = a ? strtok(NULL, " \t\r\n") : NULL;
        if (!a || a[0] == '#')
            continue;
        long i = find_name(list, a), j = b ? find_name(list, b) : -1;
        if (!b || i < 0 || j < 0 || i == j) {
            error_line("%s:%ld: %s", path, lineno,
                       !b ? "expected two image names" : i == j && i >= 0 ? "an image paired with itself"
                                                                          : "unknown image name");
            rc = -1;
            break;
        }
        if (i > j) {
            long t = i;
            i = j;
            j = t;
        }
        if (!image_usable(&list->v[i]) || !image_usable(&list->v[j]) || seen[(size_t)i * list->n + (size_t)j])
            continue;
        seen[(size_t)i * list->n + (size_t)j] = 1;
        if (pair_push(out, (size_t)i, (size_t)j) != 0) {
            error_line("out of memory");
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        error_line("cannot read pair list '%s': %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    free(seen);
    fclose(f);
    return rc;
}

int pair_list_select(const options *o, const image_list *list, pair_list *out)
{
    return o->pairs == PAIRS_FILE ? select_from_file(o->pair_file, list, out) : select_generated(o, list, out);
}

/* Made in memory and written through a temporary file (out_file.h): a
 * killed run leaves the older list or none, never half of one. */
int pair_list_write(const char *path, const image_list *list, const pair_list *pairs)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        error_line("out of memory");
        return -1;
    }
    for (size_t k = 0; k < pairs->n; k++)
        fprintf(f, "%s %s\n", list->v[pairs->v[k][0]].name, list->v[pairs->v[k][1]].name);
    if (ferror(f) | (fclose(f) != 0)) {
        error_line("out of memory");
        free(text);
        return -1;
    }
    int e = mn_out_file_write(path, text, len);
    free(text);
    if (e != 0) {
        error_line("cannot write '%s': %s", path, strerror(e));
        return -1;
    }
    return 0;
}
