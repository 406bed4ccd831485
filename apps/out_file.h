/*
 * out_file.h - whole-file outputs of the programs: written through a
 * temporary file beside the target and renamed over it, so that a failed
 * or killed run never leaves half a file, and keeps what was there. A
 * killed run leaves its temporary file (PATH.tmp.PID.K); the next write of
 * the same output removes it.
 */
#ifndef MN_APPS_OUT_FILE_H
#define MN_APPS_OUT_FILE_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Write n bytes to path. A regular file, or a new one, is replaced through
 * PATH.tmp.PID.K (beside the file a symbolic link leads to; mode 0666
 * before the umask, as a plain write) and rename(); anything else that
 * exists (/dev/stdout, a pipe) is written in place, as rename() would
 * replace the device itself. Returns 0, or the errno of the step that
 * failed (the temporary file removed). */
int mn_out_file_write(const char *path, const void *data, size_t n);

/* Write all n bytes to fd, again after EINTR and short writes. Returns 0
 * or an errno (EIO when write() wrote nothing). */
int mn_out_file_write_all(int fd, const void *data, size_t n);

/* Write all n bytes to fd at offset off (pwrite(), again after EINTR and
 * short writes). Returns 0 or an errno (ENOSPC when pwrite() wrote
 * nothing). */
int mn_out_file_write_at(int fd, const void *data, size_t n, off_t off);

/* Read up to n bytes of fd at offset off (pread(), again after EINTR and
 * short reads) into buf, stopping only at the end of the file; *got: the
 * bytes read. Returns 0 or an errno. */
int mn_out_file_read_at(int fd, void *buf, size_t n, off_t off, size_t *got);

/* Remove the temporary files that killed runs left beside path's target:
 * PATH.tmp.PID.K (this file's and mn_matches_draw_with()'s naming) whose
 * process PID no longer exists. mn_out_file_write() calls it; programs
 * that write an output another way call it before. A PID since reused by
 * another process keeps its file until a later run. Returns the number of
 * files removed. */
int mn_out_file_remove_stale(const char *path);

#ifdef __cplusplus
}
#endif

#endif
