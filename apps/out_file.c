/* out_file.c - see out_file.h. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* realpath */
#include "out_file.h"

#include "test_point.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mn_out_file_write_all(int fd, const void *data, size_t n)
{
    const unsigned char *p = data;
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

int mn_out_file_write_at(int fd, const void *data, size_t n, off_t off)
{
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : ENOSPC;
        p += w, off += w;
        n -= (size_t)w;
    }
    return 0;
}

int mn_out_file_read_at(int fd, void *buf, size_t n, off_t off, size_t *got)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < n) {
        ssize_t r = pread(fd, p + *got, n - *got, off + (off_t)*got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            break; /* the end of the file */
        *got += (size_t)r;
    }
    return 0;
}

/* The PID in NAME = BASE.tmp.PID.K, or 0 when NAME is not such a name. */
static long temporary_pid(const char *name, const char *base)
{
    size_t lb = strlen(base);
    if (strncmp(name, base, lb) != 0 || strncmp(name + lb, ".tmp.", 5) != 0)
        return 0;
    const char *p = name + lb + 5, *q = p;
    while (*q >= '0' && *q <= '9')
        q++;
    if (q == p || q - p > 18 || *q != '.' || !q[1])
        return 0;
    for (const char *k = q + 1; *k; k++)
        if (*k < '0' || *k > '9')
            return 0;
    return strtol(p, NULL, 10);
}

int mn_out_file_remove_stale(const char *path)
{
    char *real = realpath(path, NULL);
    const char *target = real ? real : path;
    const char *slash = strrchr(target, '/');
    char *dir = slash ? strndup(target, (size_t)(slash - target) + 1) : strdup("./");
    const char *base = slash ? slash + 1 : target;
    int removed = 0;
    DIR *d = dir && *base ? opendir(dir) : NULL;
    if (d) {
        const size_t ld = strlen(dir);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            long pid = temporary_pid(e->d_name, base);
            /* Only a process that is gone: a live one may be writing it. */
            if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                continue;
            char *full = malloc(ld + strlen(e->d_name) + 1);
            if (full) {
                memcpy(full, dir, ld);
                strcpy(full + ld, e->d_name);
                removed += unlink(full) == 0;
                free(full);
            }
        }
        closedir(d);
    }
    free(dir);
    free(real);
    return removed;
}

int mn_out_file_write(const char *path, const void *data, size_t n)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        int e = fd < 0 ? errno : mn_out_file_write_all(fd, data, n);
        if (fd >= 0 && close(fd) != 0 && e == 0)
            e = errno;
        return e;
    }
    mn_out_file_remove_stale(path);
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
        e = mn_out_file_write_all(fd, data, n);
        if (close(fd) != 0 && e == 0)
            e = errno;
        if (e == 0)
            mn_test_point("out-file-rename");
        if (e == 0 && rename(tmp, target) != 0)
            e = errno;
        if (e != 0)
            unlink(tmp);
    }
    free(tmp);
    free(real);
    return e;
}
