/*
 * cli.c - the programs' shared command-line helpers (see cli.h).
 */
#define _DEFAULT_SOURCE /* TIOCGWINSZ, with POSIX.1-2008 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* Where option descriptions start in --help, as the programs' help texts
 * always had them. */
#define HELP_COLUMN 26

/* The progress line on the screen, if any: mn_cli_error() erases it first. */
static mn_cli_progress *shown_progress;

void mn_cli_error(const char *prog, const char *fmt, ...)
{
    if (shown_progress)
        mn_cli_progress_clear(shown_progress);
    va_list ap;
    va_start(ap, fmt);
    fputs(prog, stderr);
    fputs(": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* One option's line(s) of --help: "  -o, --output PATH", then its help at
 * HELP_COLUMN, each '\n' in it continued at HELP_COLUMN. */
static void print_option_help(FILE *f, char letter, const char *name, const char *placeholder, const char *help)
{
    int col = fprintf(f, "  ");
    col += letter ? fprintf(f, "-%c%s", letter, name ? ", " : "") : fprintf(f, "    ");
    if (name)
        col += fprintf(f, "--%s", name);
    if (placeholder)
        col += fprintf(f, " %s", placeholder);
    if (col > HELP_COLUMN - 2) { /* no room for the usual two spaces: the help goes below */
        fputc('\n', f);
        col = 0;
    }
    fprintf(f, "%*s", HELP_COLUMN - col, "");
    for (const char *s = help ? help : ""; *s; s++) {
        fputc(*s, f);
        if (*s == '\n')
            fprintf(f, "%*s", HELP_COLUMN, "");
    }
    fputc('\n', f);
}

static void print_help(const mn_cli_program *p)
{
    fputs(p->synopsis, stdout);
    for (size_t k = 0; k < p->n_options; k++) {
        const mn_cli_option *op = &p->options[k];
        print_option_help(stdout, op->letter, op->name, op->kind == MN_CLI_FLAG ? NULL : op->placeholder, op->help);
    }
    print_option_help(stdout, 'h', "help", NULL, "show this help");
}

/* The option that an argument names, spelled in its first len characters
 * ("--name" or "-c"), or NULL. */
static const mn_cli_option *find_option(const mn_cli_program *p, const char *a, size_t len)
{
    for (size_t k = 0; k < p->n_options; k++) {
        const mn_cli_option *op = &p->options[k];
        if (a[1] == '-' ? op->name && strlen(op->name) == len - 2 && strncmp(a + 2, op->name, len - 2) == 0
                        : op->letter && len == 2 && a[1] == op->letter)
            return op;
    }
    return NULL;
}

/* "a, b or c": the names of a choice option, for its error message. */
static void choice_list(const mn_cli_choice *c, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t k = 0; c[k].name && used < n; k++) {
        const char *sep = k == 0 ? "" : c[k + 1].name ? ", " : " or ";
        int w = snprintf(buf + used, n - used, "%s%s", sep, c[k].name);
        used += w > 0 ? (size_t)w : 0;
    }
}

/* Store value v into option op, spelled as the first len characters of
 * spelled. Returns 0 or 2 (reported). */
static int set_value(const mn_cli_program *p, const mn_cli_option *op, const char *spelled, int len, const char *v)
{
    char *end;
    switch (op->kind) {
    case MN_CLI_FLAG:
        *(int *)op->dest = 1;
        return 0;
    case MN_CLI_STRING:
        *(const char **)op->dest = v;
        return 0;
    case MN_CLI_INT: {
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end != '\0' || x < op->lo || x > op->hi) {
            mn_cli_error(p->name, "%.*s: expected an integer %.0f..%.0f, got '%s'", len, spelled, op->lo, op->hi, v);
            return 2;
        }
        *(int *)op->dest = (int)x;
        return 0;
    }
    case MN_CLI_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end != '\0' || !isfinite(x) || x < op->lo || x > op->hi) {
            mn_cli_error(p->name, "%.*s: expected a number %g..%g, got '%s'", len, spelled, op->lo, op->hi, v);
            return 2;
        }
        *(double *)op->dest = x;
        return 0;
    }
    case MN_CLI_CHOICE:
        for (size_t k = 0; op->choices[k].name; k++)
            if (strcmp(v, op->choices[k].name) == 0) {
                *(int *)op->dest = op->choices[k].value;
                return 0;
            }
        char names[256];
        choice_list(op->choices, names, sizeof names);
        mn_cli_error(p->name, "%.*s: expected %s, got '%s'", len, spelled, names, v);
        return 2;
    }
    return 2;
}

/* The option argument argv[*i] (starting with '-'), with its value from
 * "=value" or from the next argument (*i then advanced). Returns 0, 1
 * (help printed) or 2 (reported). */
static int parse_option(const mn_cli_program *p, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const size_t len = strcspn(a, "=");
    const char *inline_value = a[len] == '=' ? a + len + 1 : NULL;
    const int is_help = (len == 2 && strncmp(a, "-h", 2) == 0) || (len == 6 && strncmp(a, "--help", 6) == 0);
    const mn_cli_option *op = is_help ? NULL : find_option(p, a, len);
    if (!is_help && !op) {
        mn_cli_error(p->name, "unknown option '%s' (try --help)", a);
        return 2;
    }
    if (is_help || op->kind == MN_CLI_FLAG) {
        if (inline_value) {
            mn_cli_error(p->name, "%.*s: expected no value, got '%s'", (int)len, a, inline_value);
            return 2;
        }
        if (is_help) {
            print_help(p);
            return 1;
        }
        return set_value(p, op, a, (int)len, NULL);
    }
    const char *v = inline_value;
    if (!v) {
        if (*i + 1 >= argc) {
            mn_cli_error(p->name, "%.*s: missing its value%s%s (try --help)", (int)len, a, op->placeholder ? " " : "",
                         op->placeholder ? op->placeholder : "");
            return 2;
        }
        v = argv[++*i];
    }
    return set_value(p, op, a, (int)len, v);
}

int mn_cli_parse(const mn_cli_program *p, int argc, char **argv, const char **pos, int *npos)
{
    int only_positional = 0;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == '\0') {
            if (*npos == p->max_positional) {
                if (p->max_positional == 0)
                    mn_cli_error(p->name, "unexpected argument '%s' (try --help)", a);
                else
                    mn_cli_error(p->name, "too many arguments at '%s' (try --help)", a);
                return 2;
            }
            pos[(*npos)++] = a;
        } else if (strcmp(a, "--") == 0) {
            only_positional = 1;
        } else {
            int rc = parse_option(p, argc, argv, &i);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

long mn_cli_parse_count(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    return v;
}

double mn_cli_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- the progress line ---- */

/* Redraws per second at most: enough to look alive, little terminal traffic. */
#define PROGRESS_INTERVAL 0.2

const mn_cli_choice mn_cli_progress_choices[] = {
    {"auto", MN_CLI_PROGRESS_AUTO}, {"always", MN_CLI_PROGRESS_ALWAYS}, {"never", MN_CLI_PROGRESS_NEVER}, {NULL, 0}};

int mn_cli_progress_when(const char *name)
{
    for (size_t k = 0; mn_cli_progress_choices[k].name; k++)
        if (strcmp(name, mn_cli_progress_choices[k].name) == 0)
            return mn_cli_progress_choices[k].value;
    return -1;
}

void mn_cli_progress_init(mn_cli_progress *p, const char *prog, int when)
{
    memset(p, 0, sizeof *p);
    p->out = stderr;
    p->prog = prog;
    const int tty = isatty(STDERR_FILENO);
    p->on = when == MN_CLI_PROGRESS_ALWAYS || (when == MN_CLI_PROGRESS_AUTO && tty);
    struct winsize ws;
    p->columns = tty && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    p->t_start = p->t_phase = p->t_called = mn_cli_seconds();
    p->t_drawn = -1e300;
}

/* "42 s", "3 min 05 s", "2 h 07 min". */
static void duration(char *buf, size_t n, double s)
{
    long t = s > 0 ? (long)(s + 0.5) : 0;
    if (t < 60)
        snprintf(buf, n, "%ld s", t);
    else if (t < 3600)
        snprintf(buf, n, "%ld min %02ld s", t / 60, t % 60);
    else
        snprintf(buf, n, "%ld h %02ld min", t / 3600, t / 60 % 60);
}

/* printf to buf (n bytes) at *used, cut at the end of buf: *used stays
 * within it whatever the text's length (snprintf returns the length the
 * text would have had). */
static void append(char *buf, size_t n, size_t *used, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void append(char *buf, size_t n, size_t *used, const char *fmt, ...)
{
    if (*used + 1 >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *used, n - *used, fmt, ap);
    va_end(ap);
    if (w > 0)
        *used = *used + (size_t)w < n - 1 ? *used + (size_t)w : n - 1;
}

void mn_cli_progress_update(mn_cli_progress *p, const char *what, size_t done, size_t total, const char *extra)
{
    if (!p->on)
        return;
    const double now = mn_cli_seconds();
    const int new_phase = strncmp(what, p->phase, sizeof p->phase - 1) != 0 || done < p->last_done;
    if (new_phase) { /* it began when the last one ended: the first count already took time */
        snprintf(p->phase, sizeof p->phase, "%s", what);
        p->t_phase = p->t_called;
    }
    p->last_done = done;
    p->t_called = now;
    if (!new_phase && !(total > 0 && done == total) && now - p->t_drawn < PROGRESS_INTERVAL)
        return;
    p->t_drawn = now;

    char line[512], t[32];
    size_t used = 0;
    line[0] = '\0';
    append(line, sizeof line, &used, "%s: %s", p->prog, what);
    if (total > 0)
        append(line, sizeof line, &used, " %zu/%zu (%d%%)", done, total, (int)(100.0 * (double)done / (double)total));
    else if (done > 0)
        append(line, sizeof line, &used, " %zu", done);
    duration(t, sizeof t, now - p->t_start);
    append(line, sizeof line, &used, ", %s elapsed", t);
    /* The rate of the phase so far, once it has run long enough to mean something. */
    if (total > 0 && done > 0 && done < total && now - p->t_phase >= 1.0) {
        duration(t, sizeof t, (now - p->t_phase) / (double)done * (double)(total - done));
        append(line, sizeof line, &used, ", ~%s left", t);
    }
    if (extra)
        append(line, sizeof line, &used, ", %s", extra);
    int len = (int)used;
    if (len > p->columns - 1) /* a wrapped line would not be rewritten in place */
        len = p->columns - 1 > 0 ? p->columns - 1 : 0;
    fprintf(p->out, "\r%.*s%*s", len, line, p->shown > len ? p->shown - len : 0, "");
    fflush(p->out);
    p->shown = len > 0 ? len : 1;
    shown_progress = p;
}

void mn_cli_progress_clear(mn_cli_progress *p)
{
    if (p->shown) {
        fprintf(p->out, "\r%*s\r", p->shown, "");
        fflush(p->out);
        p->shown = 0;
    }
    if (shown_progress == p)
        shown_progress = NULL;
}
