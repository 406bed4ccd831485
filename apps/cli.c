/*
 * cli.c - the programs' shared command-line helpers (see cli.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Where option descriptions start in --help, as the programs' help texts
 * always had them. */
#define HELP_COLUMN 26

void mn_cli_error(const char *prog, const char *fmt, ...)
{
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
