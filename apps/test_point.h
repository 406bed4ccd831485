/*
 * test_point.h - test-only pause points, for the crash tests
 * (tests/test_crash.py). Not for users: nothing here changes what a
 * program does unless one of the two variables below is set.
 *
 * The programs call mn_test_point("name") at the moments where a kill must
 * be tried: inside a database transaction, between blocks of pairs, before
 * an output's rename (the names are listed in tests/test_crash.py). A test
 * cannot land a SIGKILL at such a moment by timing alone, so:
 *
 *   MATCHNET_TEST_PAUSE=NAME:N   the Nth time (counted from 1) that the
 *                                program reaches point NAME, it says so on
 *                                stderr and stops itself (SIGSTOP); the test
 *                                then kills it (SIGKILL) or lets it go on
 *                                (SIGCONT). NAME alone means NAME:1.
 *   MATCHNET_TEST_POINTS=FILE    every point reached is appended to FILE as
 *                                a line "NAME" (a test counts them to spread
 *                                its kills over a whole run).
 *
 * With neither set, mn_test_point() costs one getenv() on its first call
 * and a test of a static flag after that. Single-threaded use only (the
 * programs call it from their main thread).
 */
#ifndef MN_APPS_TEST_POINT_H
#define MN_APPS_TEST_POINT_H

#ifdef __cplusplus
extern "C" {
#endif

/** A named point reached: stop here if MATCHNET_TEST_PAUSE says so, log it
 *  if MATCHNET_TEST_POINTS says so; otherwise nothing. */
void mn_test_point(const char *name);

/** Whether either variable is set (matchnet-colmap then routes SQLite's
 *  file I/O through a VFS that calls mn_test_point(): colmap_db.c). */
int mn_test_points_active(void);

/** matchnet-colmap only (test_vfs.c, which links SQLite): the name of an
 *  SQLite VFS that calls mn_test_point() before each write, sync and
 *  delete of the database's files ("sqlite-write-db", "sqlite-sync-journal",
 *  ..., "sqlite-delete": test_vfs.c) and otherwise is the default VFS;
 *  NULL unless mn_test_points_active(). */
const char *mn_test_sqlite_vfs(void);

#ifdef __cplusplus
}
#endif

#endif
