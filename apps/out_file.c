/* out_file.c - see out_file.h. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* realpath */
#include "out_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int mn_out_file_write(const char *path, const void *data, size_t n)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        int e = fd < 0 ? errno : write_all(fd, data, n);
        if (fd >= 0 && close(fd) != 0 && e == 0)
            e = errno;
        return e;
    }
    char *real = realpath(path, NULL); /* NULL for a new file: path itself */
    const char *target = real ? real : path;
    const size_t len = strlen(target) + 48;
    char *tmp = malloc(len);
    if (!tmp) {
        free(real);
        return ENOMEM;
    }
    int fd = -1, e = 0;
    for (unsigned k = 0; k < 100 && fd < 0; k++) {
        snprintf(tmp, len, "%s.tmp.%ld.%u", target, (long)getpid(), k);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        e = errno;
    } else {
        e = write_all(fd, data, n);
        if (close(fd) != 0 && e == 0)
            e = errno;
        if (e == 0 && rename(tmp, target) != 0)
            e = errno;
        if (e != 0)
            unlink(tmp);
    }
    free(tmp);
    free(real);
    return e;
}
