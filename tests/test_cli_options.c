/*
 * test_cli_options.c - apps/cli.c's table-driven option parser, the one
 * matchnet-match, matchnet-colmap and matchnet-stitch read their command
 * lines with: every accepted form of every kind, positional arguments and
 * "--", the generated --help, and the one-line message and status 2 of
 * every kind of usage error; the progress line (what it shows, how often,
 * its erasing, off unless asked for or on a terminal).
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "cli.h"

#include <stdarg.h>
#include <unistd.h>

typedef struct values {
    int flag, count, choice;
    double ratio;
    const char *path;
} values;

static values v;
static const char *pos[2];
static int npos;
static char err[512], out[4096];

static const mn_cli_choice colours[] = {{"red", 10}, {"green", 20}, {"blue", 30}, {NULL, 0}};

/* A file's text into buf (at most n - 1 bytes), then the file emptied. */
static void take(FILE *f, char *buf, size_t n)
{
    fflush(f);
    rewind(f);
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    rewind(f);
    CHECK(ftruncate(fileno(f), 0) == 0, "ftruncate");
}

/* Parse the NULL-ended arguments after "prog" from fresh defaults, with
 * stderr in err and stdout in out. Returns mn_cli_parse()'s status. */
static int parse(const char *first, ...)
{
    const mn_cli_option table[] = {
        {"flag", 'f', MN_CLI_FLAG, &v.flag, .help = "a flag"},
        {"count", 'c', MN_CLI_INT, &v.count, -3, 64, .placeholder = "N", .help = "a count\nover two lines"},
        {"ratio", 0, MN_CLI_DOUBLE, &v.ratio, 0, 1, .placeholder = "R", .help = "a ratio"},
        {"colour", 0, MN_CLI_CHOICE, &v.choice, .choices = colours, .placeholder = "NAME", .help = "a colour"},
        {NULL, 'o', MN_CLI_STRING, &v.path, .placeholder = "PATH", .help = "a path, short form only"},
        {"a-rather-long-option-name", 0, MN_CLI_STRING, &v.path, .placeholder = "PATH", .help = "below"},
    };
    const mn_cli_program prog = {"prog", "usage: prog [options] [A [B]]\n\noptions:\n", table,
                                 sizeof table / sizeof *table, 2};
    char *argv[32] = {(char *)"prog"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    v = (values){0, 7, 20, 0.5, "default"};
    pos[0] = pos[1] = NULL;

    static FILE *ef, *of;
    if (!ef) {
        ef = tmpfile();
        of = tmpfile();
    }
    fflush(stderr);
    fflush(stdout);
    int saved_err = dup(2), saved_out = dup(1);
    dup2(fileno(ef), 2);
    dup2(fileno(of), 1);
    int rc = mn_cli_parse(&prog, argc, argv, pos, &npos);
    fflush(stderr);
    fflush(stdout);
    dup2(saved_err, 2);
    dup2(saved_out, 1);
    close(saved_err);
    close(saved_out);
    take(ef, err, sizeof err);
    take(of, out, sizeof out);
    return rc;
}

/* Status 2, nothing on stdout, and exactly the line "prog: " want. */
static void expect_error(int rc, const char *want)
{
    char line[512];
    snprintf(line, sizeof line, "prog: %s\n", want);
    CHECK(rc == 2 && strcmp(err, line) == 0 && out[0] == '\0', "status %d, stderr '%s', want 2 and '%s'", rc, err,
          line);
}

static void test_forms(void)
{
    int rc = parse(NULL);
    CHECK(rc == 0 && npos == 0 && v.count == 7 && v.choice == 20 && v.ratio == 0.5 && !v.flag &&
              strcmp(v.path, "default") == 0 && !err[0],
          "no arguments: defaults changed (status %d, '%s')", rc, err);

    rc = parse("--flag", "--count", "12", "--ratio=0.25", "--colour", "blue", "-o", "x.txt", "A", NULL);
    CHECK(rc == 0 && v.flag == 1 && v.count == 12 && v.ratio == 0.25 && v.choice == 30 &&
              strcmp(v.path, "x.txt") == 0 && npos == 1 && strcmp(pos[0], "A") == 0 && !err[0],
          "long forms: status %d, '%s'", rc, err);

    rc = parse("A", "-f", "-c=-3", "-o=y", "--colour=red", "B", NULL);
    CHECK(rc == 0 && v.flag == 1 && v.count == -3 && v.choice == 10 && strcmp(v.path, "y") == 0 && npos == 2 &&
              strcmp(pos[0], "A") == 0 && strcmp(pos[1], "B") == 0,
          "short forms, options between positionals: status %d, '%s'", rc, err);

    rc = parse("--count", "1", "--count", "64", "--ratio", "1", NULL);
    CHECK(rc == 0 && v.count == 64 && v.ratio == 1.0, "the last repeat wins, range ends included: %d %g", v.count,
          v.ratio);

    rc = parse("--", "--flag", "-", NULL);
    CHECK(rc == 0 && !v.flag && npos == 2 && strcmp(pos[0], "--flag") == 0 && strcmp(pos[1], "-") == 0,
          "after --: status %d, %d positional", rc, npos);

    rc = parse("-", "--count", "-1", NULL);
    CHECK(rc == 0 && npos == 1 && strcmp(pos[0], "-") == 0 && v.count == -1, "'-' and a negative value: %d, %d", rc,
          v.count);

    rc = parse("-o", "", "--a-rather-long-option-name=", NULL);
    CHECK(rc == 0 && v.path && v.path[0] == '\0', "empty string values: status %d", rc);
}

static void test_errors(void)
{
    expect_error(parse("--frob", NULL), "unknown option '--frob' (try --help)");
    expect_error(parse("-x", NULL), "unknown option '-x' (try --help)");
    expect_error(parse("-fc", NULL), "unknown option '-fc' (try --help)");
    expect_error(parse("--fla", NULL), "unknown option '--fla' (try --help)");
    expect_error(parse("--o", "z", NULL), "unknown option '--o' (try --help)");
    expect_error(parse("A", "B", "C", NULL), "too many arguments at 'C' (try --help)");
    expect_error(parse("--count", NULL), "--count: missing its value N (try --help)");
    expect_error(parse("A", "-o", NULL), "-o: missing its value PATH (try --help)");
    expect_error(parse("--flag=1", NULL), "--flag: expected no value, got '1'");
    expect_error(parse("--help=yes", NULL), "--help: expected no value, got 'yes'");
    expect_error(parse("--count", "x", NULL), "--count: expected an integer -3..64, got 'x'");
    expect_error(parse("-c", "65", NULL), "-c: expected an integer -3..64, got '65'");
    expect_error(parse("--count=-4", NULL), "--count: expected an integer -3..64, got '-4'");
    expect_error(parse("--count=12x", NULL), "--count: expected an integer -3..64, got '12x'");
    expect_error(parse("--count=", NULL), "--count: expected an integer -3..64, got ''");
    expect_error(parse("--count", "99999999999999999999", NULL),
                 "--count: expected an integer -3..64, got '99999999999999999999'");
    expect_error(parse("--ratio", "1.5", NULL), "--ratio: expected a number 0..1, got '1.5'");
    expect_error(parse("--ratio", "nan", NULL), "--ratio: expected a number 0..1, got 'nan'");
    expect_error(parse("--ratio", "0.5x", NULL), "--ratio: expected a number 0..1, got '0.5x'");
    expect_error(parse("--colour", "Red", NULL), "--colour: expected red, green or blue, got 'Red'");

    /* An error stops the parse: nothing after it is read. */
    int rc = parse("--count", "x", "--flag", NULL);
    CHECK(rc == 2 && !v.flag, "an option after the error was read");

    /* No room for positional arguments: "unexpected" rather than "too many". */
    const mn_cli_option none[] = {{"flag", 0, MN_CLI_FLAG, &v.flag, .help = "a flag"}};
    const mn_cli_program prog = {"prog", "usage: prog\n", none, 1, 0};
    char *argv[] = {(char *)"prog", (char *)"stray", NULL};
    fflush(stderr);
    FILE *ef = tmpfile();
    int saved = dup(2);
    dup2(fileno(ef), 2);
    rc = mn_cli_parse(&prog, 2, argv, NULL, &npos);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    take(ef, err, sizeof err);
    fclose(ef);
    CHECK(rc == 2 && strcmp(err, "prog: unexpected argument 'stray' (try --help)\n") == 0, "no positionals: %d '%s'",
          rc, err);
}

static void test_help(void)
{
    static const char want[] = "usage: prog [options] [A [B]]\n"
                               "\n"
                               "options:\n"
                               "  -f, --flag              a flag\n"
                               "  -c, --count N           a count\n"
                               "                          over two lines\n"
                               "      --ratio R           a ratio\n"
                               "      --colour NAME       a colour\n"
                               "  -o PATH                 a path, short form only\n"
                               "      --a-rather-long-option-name PATH\n"
                               "                          below\n"
                               "  -h, --help              show this help\n";
    for (int k = 0; k < 2; k++) {
        int rc = parse("--count", "3", k ? "-h" : "--help", "--frob", NULL);
        CHECK(rc == 1 && strcmp(out, want) == 0 && !err[0], "%s: status %d, stdout:\n%s\nstderr: '%s'",
              k ? "-h" : "--help", rc, out, err);
    }
}

/* Everything written to f since the last call (f is then emptied). */
static const char *written(FILE *f)
{
    static char buf[2048];
    take(f, buf, sizeof buf);
    return buf;
}

static void test_progress(void)
{
    FILE *f = tmpfile();
    mn_cli_progress p;

    mn_cli_progress_init(&p, "prog", MN_CLI_PROGRESS_NEVER);
    p.out = f;
    mn_cli_progress_update(&p, "images", 1, 10, NULL);
    mn_cli_progress_clear(&p);
    CHECK(written(f)[0] == '\0', "never: something was written");
    mn_cli_progress_init(&p, "prog", MN_CLI_PROGRESS_AUTO);
    CHECK(p.on == isatty(2), "auto: on %d, stderr a terminal %d", p.on, isatty(2));

    mn_cli_progress_init(&p, "prog", MN_CLI_PROGRESS_ALWAYS);
    p.out = f;
    p.columns = 100;
    mn_cli_progress_update(&p, "images", 0, 10, NULL);
    const char *w = written(f);
    CHECK(strcmp(w, "\rprog: images 0/10 (0%), 0 s elapsed") == 0, "first update: '%s'", w);
    mn_cli_progress_update(&p, "images", 1, 10, NULL);
    CHECK(written(f)[0] == '\0', "a second update at once was drawn");
    mn_cli_progress_update(&p, "images", 10, 10, NULL);
    w = written(f);
    CHECK(strcmp(w, "\rprog: images 10/10 (100%), 0 s elapsed") == 0, "the last count is always drawn: '%s'", w);

    /* A new phase is drawn at once; the elapsed time and the time left. */
    p.t_start -= 3725;
    mn_cli_progress_update(&p, "pairs", 1, 4, "x");
    written(f);
    p.t_phase -= 30; /* 30 s for 2 pairs: 30 s for the other 2 */
    p.t_drawn -= 1;
    mn_cli_progress_update(&p, "pairs", 2, 4, "9 matches");
    w = written(f);
    CHECK(strcmp(w, "\rprog: pairs 2/4 (50%), 1 h 02 min elapsed, ~30 s left, 9 matches") == 0, "'%s'", w);
    p.t_drawn -= 1;
    mn_cli_progress_update(&p, "pairs", 3, 0, NULL);
    w = written(f);
    CHECK(strncmp(w, "\rprog: pairs 3, 1 h 02 min elapsed", 34) == 0 && strspn(w + 34, " ") == strlen(w + 34) &&
              strlen(w) == 1 + strlen("prog: pairs 2/4 (50%), 1 h 02 min elapsed, ~30 s left, 9 matches"),
          "unknown total, padded over the longer line: '%s'", w);

    /* Cut to the terminal's width; erased by clear and by mn_cli_error(). */
    p.columns = 60;
    p.t_drawn -= 1;
    mn_cli_progress_update(&p, "pairs", 4, 0, "a long remark that cannot fit in sixty columns");
    w = written(f);
    CHECK(strcmp(w, "\rprog: pairs 4, 1 h 02 min elapsed, a long remark that canno") == 0,
          "not cut to 59 columns: '%s' (%zu)", w, strlen(w));
    fflush(stderr);
    int saved = dup(2);
    FILE *ef = tmpfile();
    dup2(fileno(ef), 2);
    mn_cli_error("prog", "boom");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    w = written(f);
    CHECK(strlen(w) == 61 && w[0] == '\r' && w[60] == '\r' && strspn(w + 1, " ") == 59, "not erased: '%s'", w);
    CHECK(strcmp(written(ef), "prog: boom\n") == 0, "the error line");
    mn_cli_progress_clear(&p);
    CHECK(written(f)[0] == '\0', "erased twice");
    fclose(ef);
    fclose(f);

    /* Texts longer than the line itself (fuzz_cli, regress-progress-long-text.bin:
     * the pieces after one were written past the line's buffer, which the
     * sanitizer build of this test reports): cut at 511 characters. */
    f = tmpfile();
    mn_cli_progress_init(&p, "prog", MN_CLI_PROGRESS_ALWAYS);
    p.out = f;
    p.columns = 4000;
    static char what[3000], extra[3000];
    memset(what, 'w', sizeof what - 1);
    memset(extra, 'x', sizeof extra - 1);
    mn_cli_progress_update(&p, what, 1, 2, extra);
    w = written(f);
    CHECK(strncmp(w, "\rprog: www", 10) == 0 && strlen(w) == 512 && strspn(w + 7, "w") == 505,
          "a text longer than the line: %zu characters '%.20s...'", strlen(w), w);
    p.shown = 0;
    mn_cli_progress_update(&p, "pairs", 1, 2, extra);
    w = written(f);
    CHECK(strncmp(w, "\rprog: pairs 1/2 (50%), 0 s elapsed, xxx", 40) == 0 && strlen(w) == 512 &&
              strspn(w + 37, "x") == 475,
          "a remark longer than the line: %zu characters '%.50s...'", strlen(w), w);
    fclose(f);

    CHECK(mn_cli_progress_when("auto") == MN_CLI_PROGRESS_AUTO &&
              mn_cli_progress_when("never") == MN_CLI_PROGRESS_NEVER &&
              mn_cli_progress_when("always") == MN_CLI_PROGRESS_ALWAYS && mn_cli_progress_when("yes") == -1,
          "mn_cli_progress_when");
}

int main(void)
{
    test_forms();
    test_errors();
    test_help();
    test_progress();
    CHECK(mn_cli_parse_count("42", 1, 64) == 42 && mn_cli_parse_count("0", 1, 64) == -1 &&
              mn_cli_parse_count("4x", 1, 64) == -1 && mn_cli_parse_count("", 1, 64) == -1,
          "mn_cli_parse_count");
    return check_summary("test_cli_options");
}
