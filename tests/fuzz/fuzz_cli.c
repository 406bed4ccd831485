/*
 * fuzz_cli.c - libFuzzer target: the programs' command lines (apps/cli.c's
 * mn_cli_parse with a table of every kind of option the programs use,
 * mn_cli_parse_count, mn_cli_progress_when), matchnet-colmap's --pairs
 * SPEC (pair_spec_parse in apps/colmap_pairs.c) and the progress line
 * (mn_cli_progress_update with any text, count and terminal width).
 *
 * Input: byte 0: room for positional arguments (0..3); byte 1: the
 * progress line's width; then the arguments, each ended by a NUL.
 *
 * Invariants, against a reference parser written here from cli.h's
 * description: the same status (0, 1 for help, 2 for a usage error) and,
 * on success, the same values and positional arguments; help on stdout
 * and nothing on stderr for 1; for 2 one message on stderr, a single line
 * starting with "fuzz_cli: " (when no argument holds a line break) and
 * nothing on stdout; nothing printed for 0. pair_spec_parse and
 * mn_cli_parse_count agree with the documented forms. Each redraw of the
 * progress line starts with '\r' and fits the terminal's width.
 */
#define _GNU_SOURCE /* memfd_create, open_memstream */
#include "colmap_app.h"
#include "ref_pair_spec.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sanitizer/common_interface_defs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ARGS 24
#define NAME "fuzz_cli"

static void violated(const char *what, int argc, char **argv)
{
    fprintf(stderr, "fuzz_cli: invariant violated: %s; arguments:", what);
    for (int i = 1; i < argc; i++)
        fprintf(stderr, " '%s'", argv[i]);
    fputc('\n', stderr);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* Sanitizer reports keep the real stderr while fds 1 and 2 are captured. */
    __sanitizer_set_report_fd((void *)(intptr_t)dup(2));
    return 0;
}

/* ---- what the parser fills: every kind, as the programs' tables have them ---- */

typedef struct values {
    const char *output, *pairs, *xshort;
    int threads, draw_max, max_kp, method, progress, upright, single;
    double ratio, scale;
} values;

static const mn_cli_choice methods[] = {{"l2", 0}, {"metric", 1}, {"metric-plain", 7}, {NULL, 0}};

enum { O_OUTPUT, O_PAIRS, O_XSHORT, O_THREADS, O_DRAW_MAX, O_MAX_KP, O_METHOD, O_PROGRESS, O_UPRIGHT, O_SINGLE,
       O_RATIO, O_SCALE, N_OPTIONS };

static void make_table(values *v, mn_cli_option *t)
{
    t[O_OUTPUT] = (mn_cli_option){"output", 'o', MN_CLI_STRING, &v->output, .placeholder = "PATH", .help = "out"};
    t[O_PAIRS] = (mn_cli_option){"pairs", 0, MN_CLI_STRING, &v->pairs, .placeholder = "SPEC", .help = "a\nb"};
    t[O_XSHORT] = (mn_cli_option){NULL, 'x', MN_CLI_STRING, &v->xshort, .placeholder = "X", .help = "short only"};
    t[O_THREADS] = (mn_cli_option){"threads", 0, MN_CLI_INT, &v->threads, 1, 64, .placeholder = "N"};
    t[O_DRAW_MAX] = (mn_cli_option){"draw-max", 0, MN_CLI_INT, &v->draw_max, 0, INT_MAX, .placeholder = "N"};
    t[O_MAX_KP] = (mn_cli_option){"max-keypoints", 'k', MN_CLI_INT, &v->max_kp, -5, 1000000, .placeholder = "N"};
    t[O_METHOD] = (mn_cli_option){"method", 'm', MN_CLI_CHOICE, &v->method, .choices = methods, .placeholder = "M"};
    t[O_PROGRESS] = (mn_cli_option){"progress", 0, MN_CLI_CHOICE, &v->progress, .choices = mn_cli_progress_choices,
                                    .placeholder = "WHEN", .help = MN_CLI_PROGRESS_HELP};
    t[O_UPRIGHT] = (mn_cli_option){"upright", 'u', MN_CLI_FLAG, &v->upright, .help = "flag"};
    t[O_SINGLE] = (mn_cli_option){"a-rather-long-flag-name-for-the-help", 0, MN_CLI_FLAG, &v->single, .help = "below"};
    t[O_RATIO] = (mn_cli_option){"ratio", 'r', MN_CLI_DOUBLE, &v->ratio, 0, 1, .placeholder = "R"};
    t[O_SCALE] = (mn_cli_option){"scale", 0, MN_CLI_DOUBLE, &v->scale, -1e300, 1e300, .placeholder = "S"};
}

static const values defaults = {"default", NULL, NULL, 3, 300, 2000, 1, MN_CLI_PROGRESS_NEVER, 0, 0, 0.5, 1.0};

/* ---- the reference: cli.h's description, written again ---- */

/* A whole decimal number (strtol's form: leading white space, a sign,
 * digits) in [lo, hi]. */
static int ref_integer(const char *s, double lo, double hi, long *out)
{
    while (isspace((unsigned char)*s))
        s++;
    int neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    if (!isdigit((unsigned char)*s))
        return 0;
    long double v = 0;
    for (; isdigit((unsigned char)*s); s++)
        v = v * 10 + (*s - '0');
    if (*s != '\0')
        return 0;
    if (neg)
        v = -v;
    if (v < (long double)LONG_MIN || v > (long double)LONG_MAX || v < lo || v > hi)
        return 0;
    *out = (long)v;
    return 1;
}

/* The option an argument names, its spelling ended at the first '=', or -1. */
static int ref_find(const mn_cli_option *t, const char *a, size_t len)
{
    for (int k = 0; k < N_OPTIONS; k++) {
        if (a[1] == '-') {
            if (t[k].name && strlen(t[k].name) == len - 2 && memcmp(t[k].name, a + 2, len - 2) == 0)
                return k;
        } else if (len == 2 && t[k].letter && a[1] == t[k].letter) {
            return k;
        }
    }
    return -1;
}

/* Store into v (reference copies of the options); 0 or 2. */
static int ref_set(const mn_cli_option *t, int k, const char *val, values *v)
{
    long n;
    double d;
    char *end;
    switch (k) {
    case O_OUTPUT: v->output = val; return 0;
    case O_PAIRS: v->pairs = val; return 0;
    case O_XSHORT: v->xshort = val; return 0;
    case O_UPRIGHT: v->upright = 1; return 0;
    case O_SINGLE: v->single = 1; return 0;
    case O_THREADS:
    case O_DRAW_MAX:
    case O_MAX_KP:
        if (!ref_integer(val, t[k].lo, t[k].hi, &n))
            return 2;
        *(k == O_THREADS ? &v->threads : k == O_DRAW_MAX ? &v->draw_max : &v->max_kp) = (int)n;
        return 0;
    case O_RATIO:
    case O_SCALE:
        errno = 0;
        d = strtod(val, &end);
        if (errno || end == val || *end || !isfinite(d) || d < t[k].lo || d > t[k].hi)
            return 2;
        *(k == O_RATIO ? &v->ratio : &v->scale) = d;
        return 0;
    case O_METHOD:
    case O_PROGRESS:
        for (const mn_cli_choice *c = t[k].choices; c->name; c++)
            if (strcmp(c->name, val) == 0) {
                *(k == O_METHOD ? &v->method : &v->progress) = c->value;
                return 0;
            }
        return 2;
    }
    return 2;
}

static int ref_parse(const mn_cli_option *t, int maxpos, int argc, char **argv, values *v, const char **pos,
                     int *npos)
{
    int only_pos = 0;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            if (*npos == maxpos)
                return 2;
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if ((len == 2 && memcmp(a, "-h", 2) == 0) || (len == 6 && memcmp(a, "--help", 6) == 0))
            return eq ? 2 : 1;
        int k = ref_find(t, a, len);
        if (k < 0)
            return 2;
        if (t[k].kind == MN_CLI_FLAG) {
            if (eq)
                return 2;
            ref_set(t, k, NULL, v);
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc)
                return 2;
            val = argv[++i];
        }
        if (ref_set(t, k, val, v) != 0)
            return 2;
    }
    return 0;
}

static int same_values(const values *a, const values *b)
{
    return a->output == b->output && a->pairs == b->pairs && a->xshort == b->xshort && a->threads == b->threads &&
           a->draw_max == b->draw_max && a->max_kp == b->max_kp && a->method == b->method &&
           a->progress == b->progress && a->upright == b->upright && a->single == b->single &&
           memcmp(&a->ratio, &b->ratio, sizeof a->ratio) == 0 && memcmp(&a->scale, &b->scale, sizeof a->scale) == 0;
}

/* ---- stdout and stderr into memory files around a call ---- */

static int cap_fd[2] = {-1, -1}, saved[2];

static void capture(void)
{
    fflush(stdout);
    fflush(stderr);
    for (int s = 0; s < 2; s++) {
        if (cap_fd[s] < 0 && (cap_fd[s] = memfd_create("out", 0)) < 0)
            abort();
        if (ftruncate(cap_fd[s], 0) != 0 || lseek(cap_fd[s], 0, SEEK_SET) != 0)
            abort();
        saved[s] = dup(1 + s);
        dup2(cap_fd[s], 1 + s);
    }
}

/* Restore fds 1 and 2; what went to them (NUL-ended, cut to n - 1 bytes)
 * in out and err, their lengths returned in len[]. */
static void restore(char *out, char *err, size_t n, size_t len[2])
{
    fflush(stdout);
    fflush(stderr);
    for (int s = 0; s < 2; s++) {
        dup2(saved[s], 1 + s);
        close(saved[s]);
        char *buf = s ? err : out;
        ssize_t got = pread(cap_fd[s], buf, n - 1, 0);
        buf[got > 0 ? got : 0] = '\0';
        struct stat st;
        len[s] = fstat(cap_fd[s], &st) == 0 ? (size_t)st.st_size : 0;
    }
}

/* ---- the progress line ---- */

static void check_progress(int argc, char **argv, int columns, const uint8_t *data, size_t size)
{
    char *text = NULL;
    size_t text_len = 0;
    FILE *f = open_memstream(&text, &text_len);
    if (!f)
        abort();
    mn_cli_progress p;
    mn_cli_progress_init(&p, NAME, MN_CLI_PROGRESS_ALWAYS);
    p.out = f;
    p.columns = columns;
    for (int i = 1; i < argc; i++) {
        size_t total = size ? data[i % size] % 5 : 0, done = size ? data[(i * 7) % size] % 7 : 0;
        mn_cli_progress_update(&p, argv[i], done, total, i % 3 == 0 ? argv[argc - i] : NULL);
    }
    /* And all of the input as one text: lines far longer than any screen. */
    char *all = malloc(size + 1);
    if (!all)
        abort();
    memcpy(all, data, size);
    all[size] = '\0';
    for (size_t k = 0; k < size; k++)
        all[k] = all[k] ? all[k] : ' ';
    mn_cli_progress_update(&p, all, 1, 2, all);
    free(all);
    mn_cli_progress_clear(&p);
    fclose(f);
    /* Each redraw: '\r', then at most the width's text (the padding that
     * erases a longer earlier line included). */
    const size_t width = columns - 1 > 0 ? (size_t)columns - 1 : 1;
    size_t seg = 0;
    for (size_t k = 0; k < text_len; k++) {
        if (k == 0 && text[k] != '\r')
            violated("progress output not starting with '\\r'", argc, argv);
        seg = text[k] == '\r' ? 0 : seg + 1;
        if (seg > width)
            violated("progress line wider than the terminal", argc, argv);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const int maxpos = data[0] % 4, columns = data[1];
    char *argv[MAX_ARGS + 1] = {(char *)NAME};
    int argc = 1, newline = 0;
    char *copy = malloc(size - 2 + 1);
    if (!copy)
        abort();
    memcpy(copy, data + 2, size - 2);
    copy[size - 2] = '\0';
    for (size_t k = 0; k < size - 2 && argc < MAX_ARGS;) {
        argv[argc++] = copy + k;
        newline |= strchr(copy + k, '\n') != NULL;
        k += strlen(copy + k) + 1;
    }
    argv[argc] = NULL;

    values got = defaults, want = defaults;
    mn_cli_option table[N_OPTIONS], ref_table[N_OPTIONS];
    make_table(&got, table);
    make_table(&want, ref_table);
    const mn_cli_program prog = {NAME, "usage: " NAME " [options] [ARG...]\n\noptions:\n", table, N_OPTIONS, maxpos};
    const char *pos[3] = {NULL, NULL, NULL}, *want_pos[3] = {NULL, NULL, NULL};
    int npos = -1, want_npos = 0;
    static char out[1 << 16], err[1 << 16];
    size_t len[2];
    capture();
    int rc = mn_cli_parse(&prog, argc, argv, pos, &npos);
    restore(out, err, sizeof out, len);
    int want_rc = ref_parse(ref_table, maxpos, argc, argv, &want, want_pos, &want_npos);
    if (rc != want_rc)
        violated("status differs from the reference", argc, argv);
    if (rc == 0 && (len[0] || len[1]))
        violated("output on success", argc, argv);
    if (rc == 1 && (len[1] || strncmp(out, prog.synopsis, strlen(prog.synopsis)) != 0 || !strstr(out, "--help")))
        violated("help not on stdout alone", argc, argv);
    if (rc == 2) {
        if (len[0] || len[1] < sizeof NAME + 2 || strncmp(err, NAME ": ", sizeof NAME + 1) != 0 ||
            (len[1] < sizeof err && err[len[1] - 1] != '\n'))
            violated("usage error not a message on stderr starting with the program's name", argc, argv);
        if (!newline && memchr(err, '\n', len[1] < sizeof err ? len[1] - 1 : sizeof err - 1))
            violated("usage error over more than one line", argc, argv);
    }
    if (rc == 0 && (npos != want_npos || memcmp(pos, want_pos, sizeof pos) != 0 || !same_values(&got, &want)))
        violated("values differ from the reference", argc, argv);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* --pairs SPEC, as matchnet-colmap reads it after the options. */
        options o = {.pairs_spec = a};
        pair_term want_terms[MAX_PAIR_TERMS];
        int want_n;
        long n = 0;
        int want_prc = ref_pair_spec(a, want_terms, &want_n);
        capture();
        int prc = pair_spec_parse(&o);
        restore(out, err, sizeof out, len);
        if (prc != want_prc || (prc == 2) != (len[1] > 0))
            violated("pair_spec_parse status", argc, argv);
        if (prc == 0 && !ref_same_terms(&o, want_terms, want_n))
            violated("pair_spec_parse result", argc, argv);
        /* Counts and --progress's names on their own. */
        long c = mn_cli_parse_count(a, -7, 1000);
        if (ref_integer(a, -7, 1000, &n) ? c != n : c != -1)
            violated("mn_cli_parse_count", argc, argv);
        int when = mn_cli_progress_when(a);
        static const mn_cli_choice whens[] = {{"auto", MN_CLI_PROGRESS_AUTO}, {"always", MN_CLI_PROGRESS_ALWAYS},
                                              {"never", MN_CLI_PROGRESS_NEVER}, {NULL, -1}};
        const mn_cli_choice *ch = whens;
        while (ch->name && strcmp(a, ch->name) != 0)
            ch++;
        const int want_when = ch->value;
        if (when != want_when)
            violated("mn_cli_progress_when", argc, argv);
    }
    check_progress(argc, argv, columns, data, size);
    free(copy);
    return 0;
}
