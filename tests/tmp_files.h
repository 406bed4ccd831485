/*
 * tmp_files.h - a test's scratch directory and file writer (test_plugin_c,
 * test_hostile). Include after check.h; the test fills tmpdir (mkdtemp).
 */
#ifndef MN_TMP_FILES_H
#define MN_TMP_FILES_H

#include <stdio.h>

static char tmpdir[64];

/* tmpdir/name; eight results stay valid at a time. */
static const char *tmp_path(const char *name)
{
    static char buf[8][256];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot create %s", path);
    if (!f)
        return;
    /* An empty vector's data() may be NULL, which fwrite must not get. */
    if (n > 0)
        CHECK(fwrite(data, 1, n, f) == n, "short write to %s", path);
    fclose(f);
}

#endif
