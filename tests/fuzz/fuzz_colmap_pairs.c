/*
 * fuzz_colmap_pairs.c - libFuzzer target: matchnet-colmap's pair selection
 * (apps/colmap_pairs.c): --pairs exhaustive and sequential:N over an image
 * list, and --pairs FILE, a pair-list file of 'NAME1 NAME2' lines, read
 * from arbitrary bytes; then the selected pairs written as a pair list
 * (--pair-list) and read back.
 *
 * Input: byte 0 picks the mode (exhaustive, sequential, file) and byte 1
 * the overlap N; bytes 2-5 mark images unreadable or absent (skipped);
 * byte 6 is the number of images (up to 24), then their names, each ended
 * by a NUL (sorted and made unique as the folder listing makes them); the
 * rest is the pair-list file.
 *
 * Invariants, against a reference written here (lines split at '\n' of any
 * length, each cut at a NUL, tokens split at spaces, tabs and '\r'): the
 * same status, and on success the same pairs in the same order, each once,
 * smaller index first, both images usable; a failure reports one line
 * starting with "matchnet-colmap: " on stderr. The pair list written for a
 * selection reads back as the same selection when no name holds a space,
 * a tab, a line break or a leading '#' (which the format cannot carry).
 */
#define _GNU_SOURCE /* memfd_create */
#include "colmap_app.h"

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
        if (!image_usable(&list->v[i]) || !image_usable(&list->v[j]))
            continue;
        int seen = 0;
        for (size_t p = 0; p < out->n && !seen; p++)
            seen = out->v[p][0] == (size_t)i && out->v[p][1] == (size_t)j;
        if (!seen) {
            out->v[out->n][0] = (size_t)i;
            out->v[out->n][1] = (size_t)j;
            out->n++;
        }
    }
    return 0;
}

/* Exhaustive or sequential:overlap, as documented. */
static void reference_generated(const options *o, const image_list *list, pair_list *out)
{
    for (size_t i = 0; i < list->n; i++)
        for (size_t j = i + 1; j < list->n; j++)
            if (image_usable(&list->v[i]) && image_usable(&list->v[j]) &&
                (o->pairs == PAIRS_EXHAUSTIVE || j - i <= (size_t)o->overlap)) {
                out->v[out->n][0] = i;
                out->v[out->n][1] = j;
                out->n++;
            }
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
    const int mode = data[0] % 3;
    const uint32_t marks = (uint32_t)data[2] | (uint32_t)data[3] << 8 | (uint32_t)data[4] << 16 |
                           (uint32_t)data[5] << 24;
    size_t want = data[6] % (MAX_IMAGES + 1), pos = 7;

    /* The image list: names up to a NUL, sorted and unique like a listing. */
    image_entry entries[MAX_IMAGES];
    image_list list = {entries, 0, MAX_IMAGES};
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

    options o = {0};
    char spec[64], path[96], out_path[96], err[4096];
    snprintf(path, sizeof path, "%s/pairs.txt", dir);
    snprintf(out_path, sizeof out_path, "%s/written.txt", dir);
    if (mode == 0)
        snprintf(spec, sizeof spec, "exhaustive");
    else if (mode == 1)
        snprintf(spec, sizeof spec, "sequential:%d", data[1] % 30);
    o.pairs_spec = mode == 2 ? path : spec;
    stderr_capture();
    int parsed = pair_spec_parse(&o);
    size_t len = stderr_restore(err, sizeof err);
    if (parsed != (mode == 1 && data[1] % 30 == 0 ? 2 : 0))
        violated("pair_spec_parse status");
    if (parsed) {
        check_error_line(err, len);
        goto done;
    }
    if (mode == 2) {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(text, 1, text_len, f) != text_len || fclose(f) != 0)
            abort();
    }

    size_t max_pairs = list.n * list.n + 1;
    pair_list got = {0}, want_pairs = {malloc(max_pairs * sizeof *want_pairs.v), 0, max_pairs};
    if (!want_pairs.v)
        abort();
    int want_rc = mode == 2 ? reference_file(text, text_len, &list, &want_pairs) : 0;
    if (mode != 2)
        reference_generated(&o, &list, &want_pairs);
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
        options back = {.pairs = PAIRS_FILE, .pair_file = out_path};
        pair_list again = {0};
        if (pair_list_select(&back, &list, &again) != 0 || !same_pairs(&again, &got))
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
