/*
 * test_colmap_pairs.c - matchnet-colmap's pair selection
 * (apps/colmap_pairs.c) on its own: --pairs SPEC, exhaustive and
 * sequential:N over an image list with skipped images, and pair-list
 * files (comments, blank lines, tabs and CRLF, pairs given twice or either
 * way round, bad lines with their line numbers), including lines longer
 * than any fixed buffer (fuzz_colmap_pairs, regress-long-line.bin: a line
 * of more than 8191 characters was read as several lines, so that the end
 * of a long comment could be taken for a pair); --pair-list read back.
 * retrieval:K and spatial:K on global descriptors and GPS positions set
 * here, '+'-joined specs (the union, in part order, each pair once) and
 * their parse errors; the VLAD and k-means code (apps/colmap_retrieval.c):
 * a VLAD vector worked out by hand, k-means finding separated clusters,
 * determinism, the reservoir sample and codebook files (round trip and
 * damaged ones).
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "colmap_app.h"
#include "colmap_retrieval.h"
#include "tmp_files.h"

#include <unistd.h>

static char *names[] = {"a.jpg", "b.jpg", "c.jpg", "d.jpg", "sub/e.png"};
#define N_IMAGES 5

static image_entry entries[N_IMAGES];
static image_list list = {entries, N_IMAGES, N_IMAGES};

/* Select with spec (a file's text when file is not NULL) into out; the
 * status, with stderr's text in err. */
static int select_pairs(const char *spec, const char *file, size_t file_len, pair_list *out, char *err, size_t n)
{
    options o = {.pairs_spec = spec};
    if (file) {
        write_bytes(tmp_path("pairs.txt"), file, file_len);
        o.pairs_spec = tmp_path("pairs.txt");
    }
    *out = (pair_list){0};
    fflush(stderr);
    FILE *ef = tmpfile();
    int saved = dup(2);
    dup2(fileno(ef), 2);
    int rc = pair_spec_parse(&o);
    if (rc == 0)
        rc = pair_list_select(&o, &list, out);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(ef);
    size_t got = fread(err, 1, n - 1, ef);
    err[got] = '\0';
    fclose(ef);
    return rc;
}

/* The pairs as "01 03 ..." (index pairs). */
static const char *show(const pair_list *p)
{
    static char buf[512];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < p->n && len < sizeof buf - 8; k++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%zu%zu", k ? " " : "", p->v[k][0], p->v[k][1]);
    return buf;
}

static void expect(const char *what, const char *spec, const char *file, size_t file_len, int want_rc,
                   const char *want)
{
    pair_list p;
    char err[1024];
    int rc = select_pairs(spec, file, file_len, &p, err, sizeof err);
    if (want_rc == 0)
        CHECK(rc == 0 && strcmp(show(&p), want) == 0 && !err[0], "%s: status %d, pairs '%s', want '%s'; '%s'", what,
              rc, show(&p), want, err);
    else
        CHECK(rc == want_rc && strstr(err, want) && strchr(err, '\n') == err + strlen(err) - 1,
              "%s: status %d (want %d), message '%s', want one line with '%s'", what, rc, want_rc, err, want);
    free(p.v);
}

static void text_pairs(void)
{
    static const char basic[] = "a.jpg b.jpg\n# a comment\n\nc.jpg\ta.jpg\r\nb.jpg a.jpg\n  d.jpg   b.jpg extra\n"
                                "sub/e.png c.jpg\nsub/e.png a.jpg";
    expect("a pair list", "file", basic, strlen(basic), 0, "01 13 04");
    expect("a line with one name", "file", "a.jpg b.jpg\nc.jpg\n", 18, -1, "pairs.txt:2: expected two image names");
    expect("an unknown name", "file", "a.jpg x.jpg\n", 12, -1, "pairs.txt:1: unknown image name");
    expect("an image with itself", "file", "\n\nb.jpg b.jpg\n", 14, -1, "pairs.txt:3: an image paired with itself");
    expect("no file", "/nonexistent/pairs.txt", NULL, 0, -1, "cannot open pair list '/nonexistent/pairs.txt'");

    /* Lines far longer than any buffer: a comment whose end looks like a
     * pair (8191 characters used to end a line), a pair whose names are
     * far apart, and the line numbers after them. */
    size_t n = 3 * 8192, len = 0;
    char *text = malloc(2 * n + 100);
    text[len++] = '#';
    memset(text + len, 'x', 8190), len += 8190;
    len += (size_t)sprintf(text + len, " d.jpg sub/e.png\na.jpg");
    memset(text + len, ' ', n), len += n;
    len += (size_t)sprintf(text + len, "b.jpg\n");
    expect("long lines", "file", text, len, 0, "01");
    len += (size_t)sprintf(text + len, "c.jpg\n");
    expect("a bad line after long lines", "file", text, len, -1, "pairs.txt:3: expected two image names");
    free(text);
}

static void generated_pairs(void)
{
    expect("exhaustive", "exhaustive", NULL, 0, 0, "01 03 04 13 14 34");
    expect("default", NULL, NULL, 0, 0, "01 03 04 13 14 34");
    expect("sequential:1", "sequential:1", NULL, 0, 0, "01 34");
    expect("sequential:2", "sequential:2", NULL, 0, 0, "01 13 34");
    expect("sequential:9", "sequential:9", NULL, 0, 0, "01 03 04 13 14 34");
    expect("sequential:0", "sequential:0", NULL, 0, 2, "--pairs: sequential:N needs a whole number N >= 1");
    expect("sequential:x", "sequential:x", NULL, 0, 2, "got 'x'");
    expect("empty", "", NULL, 0, 2, "--pairs: expected exhaustive, sequential:N, retrieval:K, spatial:K or a file");
}

/* Global descriptors (2-D, not normalised: only dot products count) and
 * GPS positions on a line; c.jpg (unreadable) would be everyone's
 * nearest. */
static float globals[N_IMAGES][2] = {{1, 0}, {0.9f, 0.1f}, {1, 0.01f}, {0, 1}, {0.1f, 0.9f}};

static void set_keys(void)
{
    static const double x[N_IMAGES] = {0, 10, 1, 25, 100};
    list.global_dim = 2;
    for (size_t i = 0; i < N_IMAGES; i++) {
        entries[i].global = globals[i];
        entries[i].has_gps = i != 1; /* b.jpg has none */
        entries[i].gps_xyz[0] = 6378137.0;
        entries[i].gps_xyz[1] = x[i];
        entries[i].gps_xyz[2] = -x[i];
    }
}

static void nearest_pairs(void)
{
    set_keys();
    /* a: b .9, e .1, d 0; b: a .9, e .18, d .1; d: e .9, b .1; e: d .9, b .18 */
    expect("retrieval:1", "retrieval:1", NULL, 0, 0, "01 34");
    expect("retrieval:2", "retrieval:2", NULL, 0, 0, "01 04 13 14 34");
    expect("retrieval:9", "retrieval:9", NULL, 0, 0, "01 03 04 13 14 34");
    entries[3].global = NULL; /* d.jpg: no descriptor, no retrieval pairs */
    expect("retrieval:1 without d", "retrieval:1", NULL, 0, 0, "01 14");
    entries[3].global = globals[3];
    /* a-d 25, d-e 75: b.jpg has no position */
    expect("spatial:1", "spatial:1", NULL, 0, 0, "03 34");
    expect("spatial:2", "spatial:2", NULL, 0, 0, "03 04 34");
    entries[4].gps_xyz[1] = -25; /* e as far from a as d is: the smaller index wins */
    entries[4].gps_xyz[2] = 25;
    expect("spatial:1 tie", "spatial:1", NULL, 0, 0, "03 04");
    set_keys();

    expect("union in part order", "spatial:1+sequential:1", NULL, 0, 0, "03 34 01");
    expect("union, repeated parts", "sequential:1+retrieval:1+sequential:1", NULL, 0, 0, "01 34");
    expect("exhaustive covers all", "retrieval:1+exhaustive+spatial:2", NULL, 0, 0, "01 34 03 04 13 14");
    char spec[300];
    write_bytes(tmp_path("p.txt"), "d.jpg a.jpg\nb.jpg a.jpg\n", 24);
    snprintf(spec, sizeof spec, "retrieval:1+%s", tmp_path("p.txt"));
    expect("with a file", spec, NULL, 0, 0, "01 34 03");
    snprintf(spec, sizeof spec, "%s+sequential:1", tmp_path("p.txt"));
    expect("a file first", spec, NULL, 0, 0, "03 01 34");
    unlink(tmp_path("p.txt"));
    expect("a name with '+'", "/nonexistent/a+b.txt", NULL, 0, -1, "cannot open pair list '/nonexistent/a+b.txt'");
    expect("a file part with '+'", "/nonexistent/a+spatial:1", NULL, 0, -1, "cannot open pair list '/nonexistent/a'");

    expect("retrieval:0", "retrieval:0", NULL, 0, 2, "--pairs: retrieval:K needs a whole number K >= 1, got '0'");
    expect("retrieval:", "retrieval:", NULL, 0, 2, "--pairs: retrieval:K needs a whole number K >= 1, got ''");
    expect("spatial:x", "spatial:x", NULL, 0, 2, "--pairs: spatial:K needs a whole number K >= 1, got 'x'");
    expect("bad part", "retrieval:5+sequential:-1", NULL, 0, 2, "sequential:N needs a whole number N >= 1, got '-1'");
    expect("empty last part", "exhaustive+", NULL, 0, 2, "--pairs: an empty part in 'exhaustive+'");
    expect("empty first part", "+spatial:2", NULL, 0, 2, "--pairs: an empty part in '+spatial:2'");
    expect("empty middle part", "spatial:2++exhaustive", NULL, 0, 2, "an empty part");
    expect("too many parts", "spatial:1+spatial:2+spatial:3+spatial:4+spatial:5+spatial:6+spatial:7+spatial:8+spatial:9",
           NULL, 0, 2, "--pairs: more than 8 parts");
    for (size_t i = 0; i < N_IMAGES; i++)
        entries[i].global = NULL, entries[i].has_gps = 0;
    expect("no keys, no pairs", "retrieval:3+spatial:3", NULL, 0, 0, "");
}

/* ------------------------------------------------------------------------ */
/* colmap_retrieval.c                                                        */
/* ------------------------------------------------------------------------ */

static void vlad_by_hand(void)
{
    /* Words (0,0) and (10,0); descriptors (1,0), (0,4), (9,0): residual
     * sums (1,4) and (-1,0), signed roots (1,2) and (-1,0), each word to
     * unit length, then the whole: /sqrt(2). */
    float centres[] = {0, 0, 10, 0}, desc[] = {1, 0, 0, 4, 9, 0}, out[4];
    retrieval_codebook cb = {2, 2, centres};
    retrieval_vlad(&cb, desc, 3, out);
    const float want[] = {(float)(1 / sqrt(10)), (float)(2 / sqrt(10)), (float)(-1 / sqrt(2)), 0};
    CHECK(max_abs_diff(out, want, 4, NULL) < 1e-6, "vlad: %g %g %g %g, want %g %g %g %g", out[0], out[1], out[2],
          out[3], want[0], want[1], want[2], want[3]);
    retrieval_vlad(&cb, desc, 0, out);
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0 && out[3] == 0, "vlad of no descriptors: not zero");
    CHECK(retrieval_global_dim(&cb) == 4, "global dim %zu", retrieval_global_dim(&cb));
}

/* Deterministic noise in [-0.5, 0.5). */
static float noise(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / 16777216.0f - 0.5f;
}

#define CLUSTERS 3
#define PER_CLUSTER 100
#define DIM 4

static void kmeans(void)
{
    static const float truth[CLUSTERS][DIM] = {{5, 0, 0, 0}, {0, 5, 0, 0}, {0, 0, -5, 5}};
    float x[CLUSTERS * PER_CLUSTER][DIM];
    uint32_t st = 7;
    for (int i = 0; i < CLUSTERS * PER_CLUSTER; i++)
        for (int d = 0; d < DIM; d++)
            x[i][d] = truth[i % CLUSTERS][d] + noise(&st);
    char err[256];
    for (uint64_t seed = 1; seed <= 3; seed++) {
        retrieval_codebook a, b;
        CHECK(retrieval_codebook_learn(&x[0][0], CLUSTERS * PER_CLUSTER, DIM, CLUSTERS, seed, &a, err, sizeof err) == 0,
              "learn: %s", err);
        CHECK(retrieval_codebook_learn(&x[0][0], CLUSTERS * PER_CLUSTER, DIM, CLUSTERS, seed, &b, err, sizeof err) == 0,
              "learn: %s", err);
        CHECK(a.k == CLUSTERS && a.dim == DIM && memcmp(a.centres, b.centres, sizeof(float) * CLUSTERS * DIM) == 0,
              "seed %llu: two runs differ", (unsigned long long)seed);
        for (int c = 0; c < CLUSTERS; c++) {
            double best = 1e30;
            for (size_t w = 0; w < a.k; w++) {
                double d = max_abs_diff(a.centres + w * DIM, truth[c], DIM, NULL);
                best = d < best ? d : best;
            }
            CHECK(best < 0.1, "seed %llu: no word within 0.1 of cluster %d (nearest %g)", (unsigned long long)seed, c,
                  best);
        }
        /* Images are alike when their descriptors sit alike around the
         * words: two with the same offset from the cluster centres, one
         * with the opposite offset. */
        float img[3][30][DIM], g[3][CLUSTERS * DIM];
        for (int m = 0; m < 3; m++) {
            for (int i = 0; i < 30; i++)
                for (int d = 0; d < DIM; d++)
                    img[m][i][d] = truth[i % CLUSTERS][d] + (m == 2 ? -0.3f : 0.3f) * (d == 3) + 0.2f * noise(&st);
            retrieval_vlad(&a, &img[m][0][0], 30, g[m]);
        }
        double s01 = 0, s02 = 0, n0 = 0;
        for (int d = 0; d < CLUSTERS * DIM; d++)
            s01 += g[0][d] * g[1][d], s02 += g[0][d] * g[2][d], n0 += g[0][d] * g[0][d];
        CHECK(fabs(n0 - 1) < 1e-5 && s01 > 0.5 && s02 < s01 - 0.5, "vlad: |g0|^2 %g, alike %g, opposite %g", n0, s01,
              s02);
        retrieval_codebook_free(&a);
        retrieval_codebook_free(&b);
    }
    retrieval_codebook few;
    CHECK(retrieval_codebook_learn(&x[0][0], 2, DIM, 64, 1, &few, err, sizeof err) == 0 && few.k == 2,
          "2 descriptors, 64 words: %zu words (%s)", few.k, err);
    retrieval_codebook_free(&few);
    CHECK(retrieval_codebook_learn(&x[0][0], 0, DIM, 64, 1, &few, err, sizeof err) == -1 && few.centres == NULL &&
              strstr(err, "no descriptors"),
          "no descriptors: '%s'", err);
}

static void sample(void)
{
    float x[50][2];
    for (int i = 0; i < 50; i++)
        x[i][0] = (float)i, x[i][1] = (float)-i;
    char err[128];
    retrieval_sample all, s1, s2;
    CHECK(retrieval_sample_init(&all, 2, 64, 9, err, sizeof err) == 0, "%s", err);
    retrieval_sample_add(&all, &x[0][0], 20);
    retrieval_sample_add(&all, &x[20][0], 30);
    CHECK(all.n == 50 && memcmp(all.v, x, sizeof x) == 0, "a sample with room for all: %zu kept", all.n);
    CHECK(retrieval_sample_init(&s1, 2, 10, 9, err, sizeof err) == 0, "%s", err);
    CHECK(retrieval_sample_init(&s2, 2, 10, 9, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < 50; i += 5)
        retrieval_sample_add(&s1, &x[i][0], 5), retrieval_sample_add(&s2, &x[i][0], 5);
    int from_input = 1, late = 0;
    for (size_t k = 0; k < s1.n; k++) {
        float v = s1.v[2 * k];
        from_input &= v == (float)(int)v && v >= 0 && v < 50 && s1.v[2 * k + 1] == -v;
        late += v >= 10;
    }
    CHECK(s1.n == 10 && from_input && late > 0 && memcmp(s1.v, s2.v, 20 * sizeof(float)) == 0,
          "reservoir: %zu kept, from the input %d, %d after the first 10, same twice %d", s1.n, from_input, late,
          memcmp(s1.v, s2.v, 20 * sizeof(float)) == 0);
    retrieval_sample_free(&all);
    retrieval_sample_free(&s1);
    retrieval_sample_free(&s2);
}

/* Load path; the status, with the message in err. */
static int load(const char *path, retrieval_codebook *cb, char *err, size_t n)
{
    err[0] = '\0';
    return retrieval_codebook_load(path, cb, err, n);
}

static void codebook_files(void)
{
    float centres[6] = {1.5f, -2, 0, 3, 1e-30f, -7};
    retrieval_codebook cb = {3, 2, centres}, back;
    char err[512];
    const char *path = tmp_path("cb.bin");
    CHECK(retrieval_codebook_save(&cb, path, err, sizeof err) == 0, "save: %s", err);
    CHECK(load(path, &back, err, sizeof err) == 0 && back.k == 3 && back.dim == 2 &&
              memcmp(back.centres, centres, sizeof centres) == 0,
          "round trip: %s", err);
    retrieval_codebook_free(&back);

    unsigned char good[24 + sizeof centres], bad[sizeof good + 4];
    FILE *f = fopen(path, "rb");
    CHECK(f && fread(good, 1, sizeof good, f) == sizeof good, "read back %s", path);
    if (f)
        fclose(f);
    CHECK(good[8] == 1 && good[12] == 3 && good[16] == 2 && memcmp(good, "MNCODEBK", 8) == 0,
          "header as documented");
    static const struct {
        const char *what;
        size_t at, len; /* a byte to change (at < 24, to 0x7f) or the length to write */
        const char *want;
    } cases[] = {{"bad magic", 0, 0, "not a codebook file"},
                 {"version 127", 8, 0, "version 127, this program reads version 1"},
                 {"more words than bytes", 12, 0, "127 words of 2 floats need 1040 bytes, the file has 48"},
                 {"zero words", 13, 0, "need"},
                 {"truncated", 99, 47, "need 48 bytes, the file has 47"},
                 {"a byte too many", 99, 49, "the file has 49"},
                 {"header only", 99, 20, "not a codebook file"},
                 {"not finite", 47, 0, "not finite"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        memcpy(bad, good, sizeof good);
        bad[sizeof good] = 0;
        size_t len = sizeof good;
        if (cases[c].at == 13) {
            memset(bad + 12, 0, 4);
        } else if (cases[c].at < sizeof good) {
            bad[cases[c].at] = 0x7f;
            if (cases[c].at == 47)
                bad[46] = 0xc0; /* the last float: 0x7fc0.... a NaN */
        } else {
            len = cases[c].len;
        }
        write_bytes(path, bad, len);
        CHECK(load(path, &back, err, sizeof err) == -1 && back.centres == NULL && strstr(err, cases[c].want) &&
                  strstr(err, path),
              "%s: '%s', want '%s'", cases[c].what, err, cases[c].want);
    }
    CHECK(load(tmp_path("none.bin"), &back, err, sizeof err) == -1 && strstr(err, "cannot open codebook"),
          "missing file: '%s'", err);
    unlink(path);
}

static void written_list(void)
{
    pair_list p;
    char err[256];
    CHECK(select_pairs("exhaustive", NULL, 0, &p, err, sizeof err) == 0, "exhaustive: %s", err);
    CHECK(pair_list_write(tmp_path("written.txt"), &list, &p) == 0, "pair_list_write");
    options o = {.pairs_spec = tmp_path("written.txt")};
    pair_list back = {0};
    CHECK(pair_spec_parse(&o) == 0 && pair_list_select(&o, &list, &back) == 0 && strcmp(show(&back), show(&p)) == 0,
          "--pair-list read back: '%s', wrote '%s'", show(&back), show(&p));
    free(back.v);
    free(p.v);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mn_test_colmap_pairs_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    for (size_t i = 0; i < N_IMAGES; i++)
        entries[i] = (image_entry){.name = names[i]};
    entries[2].unreadable = 1; /* c.jpg: in no pair */
    text_pairs();
    generated_pairs();
    written_list();
    nearest_pairs();
    vlad_by_hand();
    kmeans();
    sample();
    codebook_files();
    unlink(tmp_path("pairs.txt"));
    unlink(tmp_path("written.txt"));
    rmdir(tmpdir);
    return check_summary("test_colmap_pairs");
}
