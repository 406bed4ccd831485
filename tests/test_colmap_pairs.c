/*
 * test_colmap_pairs.c - matchnet-colmap's pair selection
 * (apps/colmap_pairs.c) on its own: --pairs SPEC, exhaustive and
 * sequential:N over an image list with skipped images, and pair-list
 * files (comments, blank lines, tabs and CRLF, pairs given twice or either
 * way round, bad lines with their line numbers), including lines longer
 * than any fixed buffer (fuzz_colmap_pairs, regress-long-line.bin: a line
 * of more than 8191 characters was read as several lines, so that the end
 * of a long comment could be taken for a pair); --pair-list read back.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "colmap_app.h"
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
    expect("empty", "", NULL, 0, 2, "--pairs: expected exhaustive, sequential:N or a file");
}

static void written_list(void)
{
    pair_list p;
    char err[256];
    CHECK(select_pairs("exhaustive", NULL, 0, &p, err, sizeof err) == 0, "exhaustive: %s", err);
    CHECK(pair_list_write(tmp_path("written.txt"), &list, &p) == 0, "pair_list_write");
    options o = {.pairs = PAIRS_FILE, .pair_file = tmp_path("written.txt")};
    pair_list back = {0};
    CHECK(pair_list_select(&o, &list, &back) == 0 && strcmp(show(&back), show(&p)) == 0,
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
    unlink(tmp_path("pairs.txt"));
    unlink(tmp_path("written.txt"));
    rmdir(tmpdir);
    return check_summary("test_colmap_pairs");
}
