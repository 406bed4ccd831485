/*
 * fuzz_colmap_pairs.c - libFuzzer target: matchnet-colmap's pair selection
 * (apps/colmap_pairs.c): --pairs exhaustive, sequential:N, retrieval:K
 * and spatial:K over an image list, --pairs FILE, a pair-list file of
 * 'NAME1 NAME2' lines, read from arbitrary bytes, and '+'-joined unions of
 * them; then the selected pairs written as a pair list (--pair-list) and
 * read back.
 *
 * Input: byte 0 picks the mode (% 8: exhaustive, sequential, file,
 * retrieval, spatial, or 5-7 a union: bits 3-7 pick its parts in the order
 * exhaustive, sequential, file, retrieval, spatial, none meaning all,
 * rotated by mode - 5) and byte 1 every part's N or K (% 30; 0 is a usage
 * error); bytes 2-5 mark images unreadable or absent (skipped); byte 6 is
 * the number of images (up to 24), then their names, each ended by a NUL
 * (sorted and made unique as the folder listing makes them); the rest is
 * the pair-list file. Each image's global descriptor (2 values) and GPS
 * position (whether it has one, 3 values), small whole numbers so that
 * ties are common, come from a hash of its name; one image in four has no
 * global descriptor.
 *
 * Invariants, against a reference written here (lines split at '\n' of any
 * length, each cut at a NUL, tokens split at spaces, tabs and '\r';
 * nearest images by brute force; the union in part order, the first of
 * each pair kept): the same status, and on success the same pairs in the
 * same order, each once, smaller index first, both images usable; a
 * failure reports one line starting with "matchnet-colmap: " on stderr. The pair list written for a
 * selection reads back as the same selection when no name holds a space,
 * a tab, a line break or a leading '#' (which the format cannot carry).
 */
#define _GNU_SOURCE /* memfd_create */
#include "colmap_app.h"
#include "ref_pair_spec.h"

#include <sanitizer/common_interface_defs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_IMAGES 24

static char dir[64];

static void violated(const char *what)
{
    fprintf(stderr, "fuzz_colmap_pairs: invariant violated: %s\n", what);
    abort();
}

static void remove_dir(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/pairs.txt", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/written.txt", dir);
    unlink(p);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* A tmpfs when there is one: a file is written and read per input. */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/mn_fuzz_pairs_%d", base, (int)getpid());
    if (mkdir(dir, 0700) != 0 && access(dir, W_OK) != 0)
        abort();
    atexit(remove_dir);
    /* Sanitizer reports keep the real stderr while fd 2 is captured. */
    __sanitizer_set_report_fd((void *)(intptr_t)dup(2));
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(((const image_entry *)a)->name, ((const image_entry *)b)->name);
}

static long find(const image_list *list, const char *name, size_t len)
{
    for (size_t i = 0; i < list->n; i++)
        if (strlen(list->v[i].name) == len && memcmp(list->v[i].name, name, len) == 0)
            return (long)i;
    return -1;
}

/* Append (i, j) unless out has it already: the union keeps the first. */
static void ref_push(pair_list *out, size_t i, size_t j)
{
    for (size_t p = 0; p < out->n; p++)
        if (out->v[p][0] == i && out->v[p][1] == j)
            return;
    out->v[out->n][0] = i;
    out->v[out->n][1] = j;
    out->n++;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* The pair list file's pairs as its format says, without the program's
 * code: 0 with the pairs, or -1 at the first bad line. */
static int reference_file(const uint8_t *text, size_t size, const image_list *list, pair_list *out)
{
    size_t pos = 0;
    while (pos < size) {
        const uint8_t *nl = memchr(text + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - text) : size;
        const uint8_t *nul = memchr(text + pos, '\0', end - pos);
        size_t stop = nul ? (size_t)(nul - text) : end;
        const char *tok[2] = {NULL, NULL};
        size_t len[2] = {0, 0};
        int ntok = 0;
        for (size_t k = pos; k < stop && ntok < 2;) {
            while (k < stop && is_space((char)text[k]))
                k++;
            if (k == stop)
                break;
            tok[ntok] = (const char *)text + k;
            while (k < stop && !is_space((char)text[k]))
                k++;
            len[ntok] = (size_t)((const char *)text + k - tok[ntok]);
            ntok++;
        }
        pos = end + 1;
        if (ntok == 0 || tok[0][0] == '#')
            continue;
        long i = find(list, tok[0], len[0]), j = ntok == 2 ? find(list, tok[1], len[1]) : -1;
        if (ntok < 2 || i < 0 || j < 0 || i == j)
            return -1;
        if (i > j) {
            long t = i;
            i = j;
            j = t;
        }
        if (image_usable(&list->v[i]) && image_usable(&list->v[j]))
            ref_push(out, (size_t)i, (size_t)j);
    }
    return 0;
}

/* Exhaustive (overlap 0) or sequential:overlap, as documented. */
static void reference_generated(long overlap, const image_list *list, pair_list *out)
{
    for (size_t i = 0; i < list->n; i++)
        for (size_t j = i + 1; j < list->n; j++)
            if (image_usable(&list->v[i]) && image_usable(&list->v[j]) && (overlap == 0 || j - i <= (size_t)overlap))
                ref_push(out, i, j);
}

/* Whether image i has the key that mode compares. */
static int ref_has_key(const image_list *list, size_t i, enum pair_mode mode)
{
    return image_usable(&list->v[i]) && (mode == PAIRS_RETRIEVAL ? list->v[i].global != NULL : list->v[i].has_gps);
}

/* Larger is closer: dot product, or minus the squared distance. */
static double ref_closeness(const image_list *list, size_t i, size_t j, enum pair_mode mode)
{
    const image_entry *a = &list->v[i], *b = &list->v[j];
    if (mode == PAIRS_RETRIEVAL)
        return (double)a->global[0] * b->global[0] + (double)a->global[1] * b->global[1];
    double d = 0;
    for (int k = 0; k < 3; k++)
        d += (a->gps_xyz[k] - b->gps_xyz[k]) * (a->gps_xyz[k] - b->gps_xyz[k]);
    return -d;
}

/* retrieval:K or spatial:K by brute force: K times the closest image not
 * yet taken (the smaller index among equals); the part's pairs in index
 * order. */
static void reference_nearest(enum pair_mode mode, long k, const image_list *list, pair_list *out)
{
    uint8_t mark[MAX_IMAGES][MAX_IMAGES] = {{0}};
    for (size_t i = 0; i < list->n; i++) {
        if (!ref_has_key(list, i, mode))
            continue;
        uint8_t taken[MAX_IMAGES] = {0};
        for (long r = 0; r < k; r++) {
            long best = -1;
            for (size_t j = 0; j < list->n; j++)
                if (j != i && !taken[j] && ref_has_key(list, j, mode) &&
                    (best < 0 || ref_closeness(list, i, j, mode) > ref_closeness(list, i, (size_t)best, mode)))
                    best = (long)j;
            if (best < 0)
                break;
            taken[best] = 1;
            mark[i < (size_t)best ? i : (size_t)best][i < (size_t)best ? (size_t)best : i] = 1;
        }
    }
    for (size_t i = 0; i < list->n; i++)
        for (size_t j = i + 1; j < list->n; j++)
            if (mark[i][j])
                ref_push(out, i, j);
}

/* Hash of a name (FNV-1a), for its made-up keys. */
static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static int same_pairs(const pair_list *a, const pair_list *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

/* fd 2 goes to a memory file around a call, to check its messages. */
static int err_fd = -1, saved_fd = -1;

static void stderr_capture(void)
{
    if (err_fd < 0 && (err_fd = memfd_create("stderr", 0)) < 0)
        abort();
    if (ftruncate(err_fd, 0) != 0 || lseek(err_fd, 0, SEEK_SET) != 0)
        abort();
    fflush(stderr);
    saved_fd = dup(2);
    dup2(err_fd, 2);
}

/* Restore fd 2; the captured text (NUL-ended) in buf. */
static size_t stderr_restore(char *buf, size_t n)
{
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    ssize_t got = pread(err_fd, buf, n - 1, 0);
    buf[got > 0 ? got : 0] = '\0';
    return got > 0 ? (size_t)got : 0;
}

/* One line starting with the program's name, ending the text. */
static void check_error_line(const char *text, size_t len)
{
    static const char prefix[] = PROG ": ";
    if (len < sizeof prefix || strncmp(text, prefix, sizeof prefix - 1) != 0 || text[len - 1] != '\n')
        violated("an error is not one line starting with the program's name");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 7)
        return 0;
    const int mode = data[0] % 8;
    const uint32_t marks = (uint32_t)data[2] | (uint32_t)data[3] << 8 | (uint32_t)data[4] << 16 |
                           (uint32_t)data[5] << 24;
    size_t want = data[6] % (MAX_IMAGES + 1), pos = 7;

    /* The image list: names up to a NUL, sorted and unique like a listing. */
    image_entry entries[MAX_IMAGES];
    image_list list = {.v = entries, .n = 0, .cap = MAX_IMAGES}; /* no global descriptors */
    int plain_names = 1; /* names that a pair-list line can carry */
    while (list.n < want && pos < size) {
        const uint8_t *nul = memchr(data + pos, '\0', size - pos);
        size_t len = nul ? (size_t)(nul - data - pos) : size - pos;
        char *name = strndup((const char *)data + pos, len);
        if (!name)
            abort();
        pos += len + 1;
        if (len == 0 || find(&list, name, len) >= 0) {
            free(name);
            continue;
        }
        plain_names &= strpbrk(name, " \t\r\n") == NULL && name[0] != '#';
        list.v[list.n] = (image_entry){.name = name};
        list.n++;
    }
    qsort(list.v, list.n, sizeof *list.v, compare_names);
    for (size_t i = 0; i < list.n; i++) {
        list.v[i].unreadable = (marks >> i) & 1;
        list.v[i].absent = (marks >> (i + 8)) & 1u;
    }
    const uint8_t *text = data + (pos < size ? pos : size);
    const size_t text_len = pos < size ? size - pos : 0;

    /* Keys from the names: a global descriptor (for 3 images in 4) and a
     * GPS position (for half), small values so that ties are common. */
    float globals[MAX_IMAGES][2];
    list.global_dim = 2;
    for (size_t i = 0; i < list.n; i++) {
        uint32_t h = name_hash(list.v[i].name);
        globals[i][0] = (float)((int)(h & 7) - 3);
        globals[i][1] = (float)((int)((h >> 3) & 7) - 3);
        list.v[i].global = (h >> 6) & 3 ? globals[i] : NULL;
        list.v[i].has_gps = (h >> 8) & 1;
        for (int k = 0; k < 3; k++)
            list.v[i].gps_xyz[k] = (double)((h >> (9 + 5 * k)) & 7);
    }

    static const char *const part_names[] = {"exhaustive", "sequential", "file", "retrieval", "spatial"};
    const int count = data[1] % 30;
    int parts[5], n_parts = 0;
    if (mode < 5) {
        parts[n_parts++] = mode;
    } else {
        int bits = data[0] >> 3 ? data[0] >> 3 : 31;
        for (int k = 0; k < 5; k++) {
            int m = (k + mode - 5) % 5;
            if (bits >> m & 1)
                parts[n_parts++] = m;
        }
    }
    options o = {0};
    char spec[512], path[96], out_path[96], err[4096];
    snprintf(path, sizeof path, "%s/pairs.txt", dir);
    snprintf(out_path, sizeof out_path, "%s/written.txt", dir);
    size_t at = 0;
    int bad_count = 0, has_file = 0;
    for (int k = 0; k < n_parts; k++) {
        const char *sep = k ? "+" : "";
        if (parts[k] == 0)
            at += (size_t)snprintf(spec + at, sizeof spec - at, "%sexhaustive", sep);
        else if (parts[k] == 2)
            at += (size_t)snprintf(spec + at, sizeof spec - at, "%s%s", sep, path), has_file = 1;
        else
            at += (size_t)snprintf(spec + at, sizeof spec - at, "%s%s:%d", sep, part_names[parts[k]], count),
                bad_count |= count == 0;
    }
    o.pairs_spec = spec;
    stderr_capture();
    int parsed = pair_spec_parse(&o);
    size_t len = stderr_restore(err, sizeof err);
    pair_term want_terms[MAX_PAIR_TERMS];
    int want_n;
    if (parsed != (bad_count ? 2 : 0) || ref_pair_spec(spec, want_terms, &want_n) != parsed ||
        (parsed == 0 && !ref_same_terms(&o, want_terms, want_n)))
        violated("pair_spec_parse status or parts");
    if (parsed) {
        check_error_line(err, len);
        goto done;
    }
    if (has_file) {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(text, 1, text_len, f) != text_len || fclose(f) != 0)
            abort();
    }

    size_t max_pairs = list.n * list.n + 1;
    pair_list got = {0}, want_pairs = {malloc(max_pairs * sizeof *want_pairs.v), 0, max_pairs};
    if (!want_pairs.v)
        abort();
    int want_rc = 0;
    for (int k = 0; k < n_parts && want_rc == 0; k++) {
        if (parts[k] == 2)
            want_rc = reference_file(text, text_len, &list, &want_pairs);
        else if (parts[k] <= 1)
            reference_generated(parts[k] == 1 ? count : 0, &list, &want_pairs);
        else
            reference_nearest(parts[k] == 3 ? PAIRS_RETRIEVAL : PAIRS_SPATIAL, count, &list, &want_pairs);
    }
    stderr_capture();
    int rc = pair_list_select(&o, &list, &got);
    len = stderr_restore(err, sizeof err);
    if (rc != want_rc)
        violated("pair_list_select status differs from the reference");
    if (rc != 0)
        check_error_line(err, len);
    else if (len != 0)
        violated("a message on success");
    if (rc == 0 && !same_pairs(&got, &want_pairs))
        violated("pairs differ from the reference");

    /* --pair-list: written, then read back as a pair file. */
    if (rc == 0 && plain_names) {
        if (pair_list_write(out_path, &list, &got) != 0)
            violated("pair_list_write failed");
        options back = {.pairs_spec = out_path};
        pair_list again = {0};
        if (pair_spec_parse(&back) != 0 || pair_list_select(&back, &list, &again) != 0 || !same_pairs(&again, &got))
            violated("the written pair list reads back differently");
        free(again.v);
    }
    free(got.v);
    free(want_pairs.v);
done:
    for (size_t i = 0; i < list.n; i++)
        free(list.v[i].name);
    return 0;
}
