/* test_point.c - see test_point.h (test-only). */
#define _POSIX_C_SOURCE 200809L
#include "test_point.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int initialised, active;
static char pause_name[128];
static long pause_count, seen;
static int log_fd = -1;

static void init(void)
{
    initialised = 1;
    const char *p = getenv("MATCHNET_TEST_PAUSE"), *l = getenv("MATCHNET_TEST_POINTS");
    if (p && *p) {
        const char *colon = strrchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (n < sizeof pause_name) {
            memcpy(pause_name, p, n);
            pause_name[n] = '\0';
            pause_count = colon ? atol(colon + 1) : 1;
        }
    }
    if (l && *l)
        log_fd = open(l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    active = pause_count > 0 || log_fd >= 0;
}

int mn_test_points_active(void)
{
    if (!initialised)
        init();
    return active;
}

void mn_test_point(const char *name)
{
    if (!mn_test_points_active())
        return;
    if (log_fd >= 0) {
        /* One write per line, O_APPEND: lines stay whole whatever kills us. */
        char line[160];
        int n = snprintf(line, sizeof line, "%s\n", name);
        if (n > 0 && (size_t)n < sizeof line && write(log_fd, line, (size_t)n) < 0) {
            /* A test's log that cannot be written: the test sees the gap. */
        }
    }
    if (pause_count > 0 && strcmp(name, pause_name) == 0 && ++seen == pause_count) {
        fprintf(stderr, "test point %s:%ld reached: stopping (pid %ld)\n", name, seen, (long)getpid());
        fflush(stderr);
        raise(SIGSTOP);
    }
}
