/*
 * cli.h - what the C command-line tools (matchnet-match, matchnet-colmap)
 * share: one-line errors, option values, counts, a clock.
 */
#ifndef MN_CLI_H
#define MN_CLI_H

#include <stddef.h>

/* "PROG: message" and a newline on stderr. */
void mn_cli_error(const char *prog, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* argv[*i] as one of names[] taking a value, given as "--name value" or
 * "--name=value". Returns 0 with *name and *value set (*i advanced past a
 * separate value); -1 when argv[*i] is none of the names (nothing reported:
 * the caller words it); 2 when the value is missing (reported). */
int mn_cli_option_value(const char *prog, int argc, char **argv, int *i, const char *const *names, size_t n,
                        const char **name, const char **value);

/* A whole decimal number in [lo, hi], or -1. */
long mn_cli_parse_count(const char *s, long lo, long hi);

/* The value of option name as mn_cli_parse_count reads it; -1 after
 * reporting "NAME must be a whole number from LO to HI, not 'VALUE'". */
long mn_cli_count_option(const char *prog, const char *name, const char *value, long lo, long hi);

/* Monotonic clock in seconds. */
double mn_cli_seconds(void);

#endif
