/*
 * test_vfs.c - test-only: an SQLite VFS that calls mn_test_point() before
 * each write, sync and delete of the database's files (the database, its
 * rollback journal, its write-ahead log), so that tests/test_crash.py can
 * kill matchnet-colmap in the middle of SQLite's own commit - after the
 * journal is written and before the database is, between two pages of
 * the database, before the journal is deleted - not only between our
 * statements. Every call is passed on to the default VFS unchanged.
 * colmap_db_open() uses it only when mn_test_points_active().
 *
 * Points: "sqlite-write-F" and "sqlite-sync-F", F the file: "db", "journal"
 * (rollback journal), "wal" (write-ahead log) or "other" (temporary
 * files); "sqlite-delete" (a file deleted: the rollback journal at the end
 * of a commit). In the default journal mode a commit writes and syncs the
 * journal, then writes and syncs the database, then deletes the journal:
 * "sqlite-write-db" points lie inside commits only.
 */
#include "test_point.h"

#include <sqlite3.h>

#include <stddef.h>

/* The default VFS's file follows ours in the same allocation. */
typedef struct shim_file {
    sqlite3_file base;
    sqlite3_file *real;
    const char *write_point, *sync_point;
} shim_file;

static sqlite3_vfs *real_vfs;

#define REAL(f) (((shim_file *)(f))->real)

static int shim_close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}
static int shim_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}
static int shim_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    mn_test_point(((shim_file *)f)->write_point);
    return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int shim_sync(sqlite3_file *f, int flags)
{
    mn_test_point(((shim_file *)f)->sync_point);
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int shim_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int shim_lock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xLock(REAL(f), lock);
}
static int shim_unlock(sqlite3_file *f, int lock)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}
static int shim_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int shim_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int shim_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int shim_device_characteristics(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int shim_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **p)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), region, size, extend, p);
}
static int shim_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void shim_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int shim_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, p);
}
static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

/* Version 3 for files with memory-mapped I/O and shared memory (the unix
 * VFS's), version 1 for any other: SQLite then calls no method the real
 * file lacks. */
static const sqlite3_io_methods shim_methods3 = {
    3,
    shim_close,
    shim_read,
    shim_write,
    shim_truncate,
    shim_sync,
    shim_file_size,
    shim_lock,
    shim_unlock,
    shim_check_reserved,
    shim_file_control,
    shim_sector_size,
    shim_device_characteristics,
    shim_shm_map,
    shim_shm_lock,
    shim_shm_barrier,
    shim_shm_unmap,
    shim_fetch,
    shim_unfetch,
};
static const sqlite3_io_methods shim_methods1 = {
    1,
    shim_close,
    shim_read,
    shim_write,
    shim_truncate,
    shim_sync,
    shim_file_size,
    shim_lock,
    shim_unlock,
    shim_check_reserved,
    shim_file_control,
    shim_sector_size,
    shim_device_characteristics,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    shim_file *s = (shim_file *)f;
    s->real = (sqlite3_file *)(s + 1);
    s->write_point = flags & SQLITE_OPEN_MAIN_DB        ? "sqlite-write-db"
                     : flags & SQLITE_OPEN_MAIN_JOURNAL ? "sqlite-write-journal"
                     : flags & SQLITE_OPEN_WAL          ? "sqlite-write-wal"
                                                        : "sqlite-write-other";
    s->sync_point = flags & SQLITE_OPEN_MAIN_DB        ? "sqlite-sync-db"
                    : flags & SQLITE_OPEN_MAIN_JOURNAL ? "sqlite-sync-journal"
                    : flags & SQLITE_OPEN_WAL          ? "sqlite-sync-wal"
                                                       : "sqlite-sync-other";
    int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out_flags);
    /* A real file with methods is closed through ours, even after a failed
     * open (SQLite's rule for xOpen). */
    const sqlite3_io_methods *m = s->real->pMethods;
    s->base.pMethods = !m ? NULL : m->iVersion >= 3 ? &shim_methods3 : &shim_methods1;
    return rc;
}

static int shim_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    mn_test_point("sqlite-delete");
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

const char *mn_test_sqlite_vfs(void)
{
    static sqlite3_vfs shim;
    static const char name[] = "matchnet-test-points";
    if (!mn_test_points_active())
        return NULL;
    if (!real_vfs) {
        sqlite3_vfs *def = sqlite3_vfs_find(NULL);
        if (!def)
            return NULL;
        shim = *def; /* the default's other methods, which take our vfs pointer as theirs */
        shim.szOsFile = (int)sizeof(shim_file) + def->szOsFile;
        shim.zName = name;
        shim.pNext = NULL;
        shim.xOpen = shim_open;
        shim.xDelete = shim_delete;
        real_vfs = def;
        if (sqlite3_vfs_register(&shim, 0) != SQLITE_OK) {
            real_vfs = NULL;
            return NULL;
        }
    }
    return name;
}
