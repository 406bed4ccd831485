/*
 * common.h - what every engine file may use (common.c): error messages,
 * memory, the clock. Nothing here is part of the public API.
 */
#ifndef MN_COMMON_H
#define MN_COMMON_H

#include "matchnet.h"

#include <stddef.h>

/* Record a message for mn_last_error() and return status. */
mn_status mn_error(mn_status status, const char *func, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Every allocation goes through these (test_alloc makes them fail). */
void *mn_malloc(size_t size);
void *mn_calloc(size_t n, size_t size);
void mn_free(void *p);
/* Test hook: make the n-th allocation from now fail (n >= 1); 0 disables. */
void mn_test_fail_alloc_at(long n);

/* Monotonic clock in seconds (per-layer profile). */
double mn_seconds(void);

#endif
