/*
 * common.c - status strings, thread-local error messages, version, and the
 * allocation wrappers (with a failure-injection hook for tests).
 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MN_STR2(x) #x
#define MN_STR(x) MN_STR2(x)

const char *mn_version_string(void)
{
    return MN_STR(MN_VERSION_MAJOR) "." MN_STR(MN_VERSION_MINOR) "." MN_STR(MN_VERSION_PATCH);
}

const char *mn_status_str(mn_status status)
{
    switch (status) {
    case MN_OK: return "MN_OK";
    case MN_ERR_INVALID_ARGUMENT: return "MN_ERR_INVALID_ARGUMENT";
    case MN_ERR_OUT_OF_MEMORY: return "MN_ERR_OUT_OF_MEMORY";
    case MN_ERR_IO: return "MN_ERR_IO";
    case MN_ERR_FORMAT: return "MN_ERR_FORMAT";
    case MN_ERR_VERSION: return "MN_ERR_VERSION";
    case MN_ERR_CHECKSUM: return "MN_ERR_CHECKSUM";
    case MN_ERR_UNSUPPORTED: return "MN_ERR_UNSUPPORTED";
    }
    return "MN_ERR_UNKNOWN";
}

static _Thread_local char mn_error_buf[512];

const char *mn_last_error(void)
{
    return mn_error_buf;
}

mn_status mn_error(mn_status status, const char *func, const char *fmt, ...)
{
    int len = snprintf(mn_error_buf, sizeof mn_error_buf, "%s(): ", func);
    if (len < 0 || (size_t)len >= sizeof mn_error_buf)
        return status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mn_error_buf + len, sizeof mn_error_buf - (size_t)len, fmt, ap);
    va_end(ap);
    return status;
}

mn_status mn_error_set(mn_status status, const char *func, const char *message)
{
    return mn_error(status, func ? func : "?", "%s", message ? message : "");
}

/* Failure injection: a countdown shared by all threads. Tests that use it
 * run single-threaded, so a plain counter suffices. */
static long mn_fail_countdown;

void mn_test_fail_alloc_at(long n)
{
    mn_fail_countdown = n > 0 ? n : 0;
}

static int mn_should_fail(void)
{
    if (mn_fail_countdown <= 0)
        return 0;
    return --mn_fail_countdown == 0;
}

void *mn_malloc(size_t size)
{
    if (mn_should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *mn_calloc(size_t n, size_t size)
{
    if (mn_should_fail())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void mn_free(void *p)
{
    free(p);
}

double mn_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
