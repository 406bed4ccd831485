/*
 * cli.c - helpers shared by the C command-line tools (see cli.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int mn_cli_option_value(const char *prog, int argc, char **argv, int *i, const char *const *names, size_t n,
                        const char **name, const char **value)
{
    const char *a = argv[*i];
    size_t name_len = strcspn(a, "=");
    *name = NULL;
    for (size_t k = 0; k < n; k++)
        if (strlen(names[k]) == name_len && strncmp(a, names[k], name_len) == 0)
            *name = names[k];
    if (!*name)
        return -1;
    if (a[name_len] == '=')
        *value = a + name_len + 1;
    else if (*i + 1 < argc)
        *value = argv[++*i];
    else {
        mn_cli_error(prog, "option %s needs a value (try --help)", *name);
        return 2;
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

long mn_cli_count_option(const char *prog, const char *name, const char *value, long lo, long hi)
{
    long v = mn_cli_parse_count(value, lo, hi);
    if (v < 0)
        mn_cli_error(prog, "%s must be a whole number from %ld to %ld, not '%s'", name, lo, hi, value);
    return v;
}

double mn_cli_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
