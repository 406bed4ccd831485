/*
 * colmap_pairs.c - matchnet-colmap's pairs (colmap_app.h): which image
 * pairs to match (--pairs exhaustive, sequential:N, retrieval:K,
 * spatial:K, a file of 'NAME1 NAME2' lines, or a '+'-joined union of
 * them) and the pair list for COLMAP. Retrieval and spatial take the
 * global descriptors and GPS positions that the caller put in the image
 * list. Plain C on the image list, no engine or database:
 * tests/fuzz/fuzz_colmap_pairs.c calls it.
 */
#define _POSIX_C_SOURCE 200809L
#include "colmap_app.h"
#include "out_file.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The keyword part that text (len bytes) starts with, or -1 for a file. */
static int term_keyword(const char *text, size_t len)
{
    static const struct {
        const char *word;
        enum pair_mode mode;
    } words[] = {{"sequential:", PAIRS_SEQUENTIAL}, {"retrieval:", PAIRS_RETRIEVAL}, {"spatial:", PAIRS_SPATIAL}};
    if (len == 10 && memcmp(text, "exhaustive", 10) == 0)
        return PAIRS_EXHAUSTIVE;
    for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
        size_t wl = strlen(words[w].word);
        if (len >= wl && memcmp(text, words[w].word, wl) == 0)
            return (int)words[w].mode;
    }
    return -1;
}

/* One part of the spec (len bytes at text) into *t. 0 or 2 (reported). */
static int term_parse(const char *text, size_t len, pair_term *t)
{
    static const char *const syntax[] = {[PAIRS_SEQUENTIAL] = "sequential:N needs a whole number N",
                                         [PAIRS_RETRIEVAL] = "retrieval:K needs a whole number K",
                                         [PAIRS_SPATIAL] = "spatial:K needs a whole number K"};
    int mode = term_keyword(text, len);
    *t = (pair_term){.mode = mode < 0 ? PAIRS_FILE : (enum pair_mode)mode};
    if (mode < 0) {
        t->file = text;
        t->file_len = len;
    } else if (mode != PAIRS_EXHAUSTIVE) {
        const char *colon = memchr(text, ':', len);
        size_t nl = len - (size_t)(colon + 1 - text);
        char *num = strndup(colon + 1, nl);
        if (!num) {
            error_line("out of memory");
            return 2;
        }
        t->n = mn_cli_parse_count(num, 1, INT_MAX);
        free(num);
        if (t->n < 0) {
            error_line("--pairs: %s >= 1, got '%.*s'", syntax[mode], (int)(nl < 64 ? nl : 64), colon + 1);
            return 2;
        }
    }
    return 0;
}

int pair_spec_parse(options *o)
{
    const char *v = o->pairs_spec;
    o->n_terms = 0;
    if (!v) {
        o->terms[o->n_terms++] = (pair_term){.mode = PAIRS_EXHAUSTIVE};
        return 0;
    }
    if (v[0] == '\0') {
        error_line("--pairs: expected exhaustive, sequential:N, retrieval:K, spatial:K or a file, got ''");
        return 2;
    }
    /* Split at '+' only when some part is a keyword: "a+b.txt" stays a file. */
    int split = 0;
    for (const char *p = v; !split; p++) {
        const char *end = strchr(p, '+');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        split = term_keyword(p, len) >= 0;
        if (!end)
            break;
        p = end;
    }
    if (!split)
        return term_parse(v, strlen(v), &o->terms[o->n_terms++]);
    for (const char *p = v;; p++) {
        const char *end = strchr(p, '+');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0) {
            error_line("--pairs: an empty part in '%s'", v);
            return 2;
        }
        if (o->n_terms == MAX_PAIR_TERMS) {
            error_line("--pairs: more than %d parts in '%s'", MAX_PAIR_TERMS, v);
            return 2;
        }
        if (term_parse(p, len, &o->terms[o->n_terms++]) != 0)
            return 2;
        if (!end)
            return 0;
        p = end;
    }
}

int pair_spec_uses(const options *o, enum pair_mode m)
{
    for (int t = 0; t < o->n_terms; t++)
        if (o->terms[t].mode == m)
            return 1;
    return m == PAIRS_EXHAUSTIVE && o->n_terms == 0;
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

/* exhaustive (overlap 0) or sequential:overlap. */
static int select_generated(long overlap, const image_list *list, pair_list *out)
{
    for (size_t i = 0; i < list->n; i++) {
        if (!image_usable(&list->v[i]))
            continue;
        size_t end = overlap > 0 && (size_t)overlap < list->n - i ? i + 1 + (size_t)overlap : list->n;
        for (size_t j = i + 1; j < end; j++)
            if (image_usable(&list->v[j]) && pair_push(out, i, j) != 0) {
                error_line("out of memory");
                return -1;
            }
    }
    return 0;
}

/* A candidate partner: its index and how close (larger is closer). */
typedef struct candidate {
    size_t j;
    double score;
} candidate;

/* Closest first, then the smaller index; NaN counts as farthest, so the
 * order is total whatever the inputs. */
static int compare_candidates(const void *pa, const void *pb)
{
    const candidate *a = pa, *b = pb;
    int na = isnan(a->score), nb = isnan(b->score);
    if (na != nb)
        return na - nb;
    if (!na && a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

/* By pair, then by position. */
static int compare_positioned(const void *pa, const void *pb)
{
    const size_t *a = pa, *b = pb;
    for (int d = 0; d < 3; d++)
        if (a[d] != b[d])
            return (a[d] > b[d]) - (a[d] < b[d]);
    return 0;
}

static int compare_pairs(const void *pa, const void *pb)
{
    const size_t *a = pa, *b = pb;
    if (a[0] != b[0])
        return (a[0] > b[0]) - (a[0] < b[0]);
    return (a[1] > b[1]) - (a[1] < b[1]);
}

/* Whether image i takes part in the mode's pairs. */
static int has_key(const image_list *list, size_t i, enum pair_mode mode)
{
    const image_entry *im = &list->v[i];
    return image_usable(im) && (mode == PAIRS_RETRIEVAL ? im->global != NULL || im->has_global : im->has_gps);
}

/* a . b over n floats in 16 running sums: a fixed order (the same result
 * every run, and for b . a) that compilers vectorise without -ffast-math. */
static float dot(const float *a, const float *b, size_t n)
{
    float lane[16] = {0}, s = 0;
    size_t d = 0;
    for (; d + 16 <= n; d += 16)
        for (int l = 0; l < 16; l++)
            lane[l] += a[d + l] * b[d + l];
    for (; d < n; d++)
        s += a[d] * b[d];
    for (int l = 0; l < 16; l++)
        s += lane[l];
    return s;
}

/* Squared distance between two GPS positions. */
static double gps_distance2(const image_entry *a, const image_entry *b)
{
    double s = 0;
    for (int d = 0; d < 3; d++)
        s += (a->gps_xyz[d] - b->gps_xyz[d]) * (a->gps_xyz[d] - b->gps_xyz[d]);
    return s;
}

/* Rows of images compared together: each other image's global descriptor
 * is read once for all of them while it is in cache. */
#define ROW_BLOCK 8

/* One thread's rows of select_nearest(): [r0, r1). */
typedef struct nearest_job {
    enum pair_mode mode;
    long k;
    const image_list *list;
    size_t r0, r1;
    pair_list out; /* this thread's pairs, in row order */
    int rc;
} nearest_job;

static void *nearest_rows(void *arg)
{
    nearest_job *job = arg;
    const image_list *list = job->list;
    const enum pair_mode mode = job->mode;
    const size_t n = list->n;
    candidate *c = malloc((n ? n : 1) * sizeof *c);
    double *score = malloc((n ? n : 1) * ROW_BLOCK * sizeof *score);
    job->rc = !c || !score ? -1 : 0;
    for (size_t i0 = job->r0; job->rc == 0 && i0 < job->r1; i0 += ROW_BLOCK) {
        size_t i1 = i0 + ROW_BLOCK < job->r1 ? i0 + ROW_BLOCK : job->r1;
        for (size_t j = 0; j < n; j++)
            for (size_t i = i0; i < i1; i++)
                if (i != j && has_key(list, i, mode) && has_key(list, j, mode))
                    score[(i - i0) * n + j] = mode == PAIRS_RETRIEVAL
                                                  ? dot(list->v[i].global, list->v[j].global, list->global_dim)
                                                  : -gps_distance2(&list->v[i], &list->v[j]);
        for (size_t i = i0; i < i1 && job->rc == 0; i++) {
            if (!has_key(list, i, mode))
                continue;
            size_t nc = 0;
            for (size_t j = 0; j < n; j++)
                if (j != i && has_key(list, j, mode))
                    c[nc++] = (candidate){j, score[(i - i0) * n + j]};
            qsort(c, nc, sizeof *c, compare_candidates);
            for (size_t r = 0; r < nc && r < (size_t)job->k; r++)
                if (pair_push(&job->out, i < c[r].j ? i : c[r].j, i < c[r].j ? c[r].j : i) != 0)
                    job->rc = -1;
        }
    }
    free(c), free(score);
    return NULL;
}

/* Run fn on each of the n jobs (size bytes apart from jobs): job 0 here,
 * the others on threads of their own. A job whose thread cannot start (all
 * of them, without memory for the handles) runs here after, so the work
 * is the same in any case. Returns when every job is done. */
static void run_jobs(void *(*fn)(void *), void *jobs, size_t size, size_t n)
{
    char *job = jobs;
    pthread_t *tid = n > 1 ? malloc((n - 1) * sizeof *tid) : NULL;
    char *started = n > 1 ? calloc(n - 1, 1) : NULL;
    for (size_t t = 1; tid && started && t < n; t++)
        started[t - 1] = pthread_create(&tid[t - 1], NULL, fn, job + t * size) == 0;
    if (n > 0)
        fn(job);
    for (size_t t = 1; t < n; t++) {
        if (started && started[t - 1])
            pthread_join(tid[t - 1], NULL);
        else
            fn(job + t * size);
    }
    free(tid), free(started);
}

/* ---- retrieval:K on global descriptors in a file (image_list.global_fd) ---- */

/* One thread's rows [t0, t1) of a row tile against a column tile. */
typedef struct tile_job {
    const image_list *list;
    long k;
    const float *rows, *cols; /* tiles of global_dim floats per image */
    size_t r0, c0, c1;        /* the row tile starts at image r0; columns are images [c0, c1) */
    size_t t0, t1;            /* this thread's rows, images */
    candidate *top;           /* per row of the tile: its k best so far, best first */
    size_t *ntop;
} tile_job;

/* Keep c among row's best k (compare_candidates order: the same k a full
 * sort of the row would give first). */
static void top_insert(candidate *top, size_t *n, long k, candidate c)
{
    size_t m = *n;
    if (m == (size_t)k && compare_candidates(&c, &top[m - 1]) >= 0)
        return;
    if (m < (size_t)k)
        m++;
    size_t p = m - 1;
    while (p > 0 && compare_candidates(&c, &top[p - 1]) < 0) {
        top[p] = top[p - 1];
        p--;
    }
    top[p] = c;
    *n = m;
}

static void *tile_rows(void *arg)
{
    tile_job *job = arg;
    const size_t dim = job->list->global_dim;
    for (size_t i = job->t0; i < job->t1; i++) {
        if (!has_key(job->list, i, PAIRS_RETRIEVAL))
            continue;
        const float *a = job->rows + (i - job->r0) * dim;
        candidate *top = job->top + (i - job->r0) * (size_t)job->k;
        size_t *n = job->ntop + (i - job->r0);
        for (size_t j = job->c0; j < job->c1; j++)
            if (j != i && has_key(job->list, j, PAIRS_RETRIEVAL))
                top_insert(top, n, job->k, (candidate){j, dot(a, job->cols + (j - job->c0) * dim, dim)});
    }
    return NULL;
}

/* Images [i0, i1) of the file into buf. 0 or -1 (reported). */
static int read_globals(const image_list *list, size_t i0, size_t i1, float *buf)
{
    const size_t bytes = list->global_dim * sizeof(float), want = (i1 - i0) * bytes;
    size_t got;
    int e = mn_out_file_read_at(list->global_fd, buf, want, (off_t)(i0 * bytes), &got);
    if (e != 0) {
        error_line("cannot read the global descriptors back: %s", strerror(e));
        return -1;
    }
    /* Past the last image written: a file hole's zeros (images without a
     * descriptor are never compared). */
    memset((char *)buf + got, 0, want - got);
    return 0;
}

/* select_nearest() for global descriptors in a file: a tile of rows at a
 * time against every tile of columns, each tile at most half of
 * --cache-mb, keeping each row's k best as the columns go by. The pairs
 * are those of the in-memory comparison (same dot products, same order). */
static int select_nearest_tiled(long k, const image_list *list, int threads, size_t budget, pair_list *out)
{
    const size_t n = list->n, dim = list->global_dim;
    const size_t row_bytes = dim * sizeof(float);
    size_t tile = budget / 2 / (row_bytes ? row_bytes : 1);
    tile = tile < 2 ? 2 : tile; /* --cache-mb 0: two images a tile */
    tile = tile < n ? tile : (n ? n : 1);
    if (k > (long)n)
        k = (long)(n ? n : 1);
    float *rows = malloc(tile * dim * sizeof *rows), *cols = malloc(tile * dim * sizeof *cols);
    candidate *top = malloc(tile * (size_t)k * sizeof *top);
    size_t *ntop = malloc(tile * sizeof *ntop);
    tile_job *jobs = calloc((size_t)threads, sizeof *jobs);
    int rc = rows && cols && top && ntop && jobs ? 0 : -1;
    if (rc != 0)
        error_line("out of memory for tiles of global descriptors");
    size_t first = out->n;
    for (size_t r0 = 0; rc == 0 && r0 < n; r0 += tile) {
        const size_t r1 = r0 + tile < n ? r0 + tile : n;
        if (read_globals(list, r0, r1, rows) != 0) {
            rc = -1;
            break;
        }
        memset(ntop, 0, tile * sizeof *ntop);
        for (size_t c0 = 0; rc == 0 && c0 < n; c0 += tile) {
            const size_t c1 = c0 + tile < n ? c0 + tile : n;
            const float *cb = cols;
            if (c0 == r0) {
                cb = rows; /* the row tile itself */
            } else if (read_globals(list, c0, c1, cols) != 0) {
                rc = -1;
                break;
            }
            const size_t nt = (size_t)threads < r1 - r0 ? (size_t)threads : r1 - r0;
            for (size_t t = 0; t < nt; t++)
                jobs[t] = (tile_job){list, k, rows, cb, r0, c0, c1, r0 + (r1 - r0) * t / nt,
                                     r0 + (r1 - r0) * (t + 1) / nt, top, ntop};
            run_jobs(tile_rows, jobs, sizeof *jobs, nt);
        }
        for (size_t i = r0; rc == 0 && i < r1; i++)
            for (size_t q = 0; rc == 0 && q < ntop[i - r0]; q++) {
                size_t j = top[(i - r0) * (size_t)k + q].j;
                if (pair_push(out, i < j ? i : j, i < j ? j : i) != 0) {
                    error_line("out of memory");
                    rc = -1;
                }
            }
    }
    free(rows), free(cols), free(top), free(ntop), free(jobs);
    if (rc == 0 && out->n > first)
        qsort(out->v + first, out->n - first, sizeof *out->v, compare_pairs);
    return rc;
}

/* retrieval:K or spatial:K: each image with its K closest, the pairs
 * appended sorted (a pair found from both sides is deduplicated later).
 * Rows are split over --threads threads (each row's choice depends on that
 * row alone, so the list is the same for any thread count): comparing
 * every image with every other is N^2 dot products of 16,384 floats. */
static int select_nearest(enum pair_mode mode, long k, const image_list *list, int threads, size_t budget,
                          pair_list *out)
{
    const size_t n = list->n;
    if (threads <= 0) /* matchnet-colmap resolves --threads' default; other callers get one */
        threads = 1;
    if (mode == PAIRS_RETRIEVAL && list->global_file)
        return select_nearest_tiled(k, list, threads, budget, out);
    size_t nt = (size_t)threads < n ? (size_t)threads : (n ? n : 1);
    nearest_job *jobs = calloc(nt, sizeof *jobs);
    int rc = jobs ? 0 : -1;
    for (size_t t = 0; rc == 0 && t < nt; t++)
        jobs[t] = (nearest_job){mode, k, list, n * t / nt, n * (t + 1) / nt, {0}, 0};
    if (rc == 0)
        run_jobs(nearest_rows, jobs, sizeof *jobs, nt);
    size_t first = out->n;
    for (size_t t = 0; jobs && t < nt; t++) {
        for (size_t p = 0; rc == 0 && jobs[t].rc == 0 && p < jobs[t].out.n; p++)
            rc = pair_push(out, jobs[t].out.v[p][0], jobs[t].out.v[p][1]);
        rc = rc == 0 && jobs[t].rc != 0 ? -1 : rc;
        free(jobs[t].out.v);
    }
    free(jobs);
    if (rc != 0) {
        error_line("out of memory");
        return -1;
    }
    if (out->n > first) /* out->v may still be NULL */
        qsort(out->v + first, out->n - first, sizeof *out->v, compare_pairs);
    return 0;
}

/* --pairs FILE: its pairs in file order, either way round. */
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
        if (!image_usable(&list->v[i]) || !image_usable(&list->v[j]))
            continue;
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
    fclose(f);
    return rc;
}

/* Keep the first of each pair in out, in order. 0 or -1 (reported). */
static int drop_repeats(pair_list *out)
{
    if (out->n < 2)
        return 0;
    /* Sorted copies carry their position, so that equal pairs sort in
     * the order given and the first of each is kept. */
    size_t (*s)[3] = malloc(out->n * sizeof *s);
    uint8_t *keep = calloc(out->n, 1);
    if (!s || !keep) {
        free(s), free(keep);
        error_line("out of memory");
        return -1;
    }
    for (size_t k = 0; k < out->n; k++) {
        s[k][0] = out->v[k][0];
        s[k][1] = out->v[k][1];
        s[k][2] = k;
    }
    qsort(s, out->n, sizeof *s, compare_positioned);
    for (size_t k = 0; k < out->n; k++)
        keep[s[k][2]] = k == 0 || s[k][0] != s[k - 1][0] || s[k][1] != s[k - 1][1];
    size_t n = 0;
    for (size_t k = 0; k < out->n; k++)
        if (keep[k]) {
            out->v[n][0] = out->v[k][0];
            out->v[n][1] = out->v[k][1];
            n++;
        }
    out->n = n;
    free(s), free(keep);
    return 0;
}

int pair_list_select(const options *o, const image_list *list, pair_list *out)
{
    if (o->n_terms == 0)
        return select_generated(0, list, out) != 0 ? -1 : 0;
    for (int t = 0; t < o->n_terms; t++) {
        const pair_term *term = &o->terms[t];
        int rc = 0;
        if (term->mode == PAIRS_EXHAUSTIVE || term->mode == PAIRS_SEQUENTIAL) {
            rc = select_generated(term->mode == PAIRS_SEQUENTIAL ? term->n : 0, list, out);
        } else if (term->mode == PAIRS_RETRIEVAL || term->mode == PAIRS_SPATIAL) {
            rc = select_nearest(term->mode, term->n, list, o->threads, (size_t)o->cache_mb << 20, out);
        } else {
            char *path = strndup(term->file, term->file_len);
            if (!path) {
                error_line("out of memory");
                return -1;
            }
            rc = select_from_file(path, list, out);
            free(path);
        }
        if (rc != 0)
            return -1;
    }
    return drop_repeats(out);
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
