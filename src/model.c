/*
 * model.c - loading models: from memory, a file or the default places, and
 * the public accessors. The format itself is model_parse.c's.
 */
#define _GNU_SOURCE /* dladdr */
#include "model.h"

#include "common.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

mn_status mn_model_load_memory(const void *data, size_t size, mn_model **out)
{
    static const char fn[] = "mn_model_load_memory";
    if (!out)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!data)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "data is NULL");
    return mn_model_parse(fn, data, size, out);
}

mn_status mn_model_load_file(const char *path, mn_model **out)
{
    static const char fn[] = "mn_model_load_file";
    if (!out)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!path)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return mn_error(MN_ERR_IO, fn, "cannot open '%s': %s", path, strerror(errno));
    mn_status st;
    uint8_t *buf = NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = mn_error(MN_ERR_IO, fn, "'%s' is not a regular file", path);
        goto done;
    }
    if ((uint64_t)sb.st_size > (uint64_t)MN_MAX_FILE_SIZE) {
        st = mn_error(MN_ERR_FORMAT, fn, "'%s' is %lld bytes, more than any model file (%llu)", path,
                      (long long)sb.st_size, (unsigned long long)MN_MAX_FILE_SIZE);
        goto done;
    }
    size_t len = (size_t)sb.st_size;
    buf = mn_malloc((size_t)len);
    if (!buf) {
        st = mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory reading %zu bytes of '%s'", len, path);
        goto done;
    }
    if (fread(buf, 1, len, f) != len) {
        st = mn_error(MN_ERR_IO, fn, "cannot read '%s'", path);
        goto done;
    }
    st = mn_model_parse(fn, buf, len, out);
done:
    mn_free(buf);
    fclose(f);
    return st;
}

#ifndef MN_INSTALLED_MODEL
#define MN_INSTALLED_MODEL "/usr/local/share/matchnet/matchnet.mnw"
#endif

const char *mn_default_model_path(void)
{
    return MN_INSTALLED_MODEL;
}

mn_status mn_model_load_default(mn_model **out)
{
    static const char fn[] = "mn_model_load_default";
    if (!out)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    const char *env = getenv("MATCHNET_MODEL");
    if (env && env[0]) {
        mn_status st = mn_model_load_file(env, out);
        if (st != MN_OK) {
            char why[512]; /* the message buffer is about to be rewritten */
            snprintf(why, sizeof why, "%s", mn_last_error());
            return mn_error(st, fn, "MATCHNET_MODEL=%s: %s", env, why);
        }
        return MN_OK;
    }
    /* The configured install path; the same place relative to this
     * library's own file (an install moved to another prefix); the
     * source tree's model (a build that is not installed). */
    char rel[4096] = "";
    Dl_info info;
    if (dladdr((void *)&mn_model_load_default, &info) && info.dli_fname && strrchr(info.dli_fname, '/')) {
        int dir = (int)(strrchr(info.dli_fname, '/') - info.dli_fname);
        snprintf(rel, sizeof rel, "%.*s/../share/matchnet/matchnet.mnw", dir, info.dli_fname);
    }
    const char *paths[3] = {MN_INSTALLED_MODEL, rel[0] ? rel : NULL, NULL};
#ifdef MN_SOURCE_MODEL
    paths[2] = MN_SOURCE_MODEL;
#endif
    for (int i = 0; i < 3; i++) {
        if (!paths[i])
            continue;
        FILE *f = fopen(paths[i], "rb");
        if (!f)
            continue;
        fclose(f);
        mn_status st = mn_model_load_file(paths[i], out);
        if (st != MN_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", mn_last_error());
            return mn_error(st, fn, "%s: %s", paths[i], why);
        }
        return MN_OK;
    }
    return mn_error(MN_ERR_IO, fn, "no model at %s%s%s%s%s; set MATCHNET_MODEL", MN_INSTALLED_MODEL,
                    paths[1] ? " or " : "", paths[1] ? paths[1] : "", paths[2] ? " or " : "",
                    paths[2] ? paths[2] : "");
}

const char *mn_model_name(const mn_model *m) { return m ? m->name : ""; }
int mn_model_patch_size(const mn_model *m) { return m ? m->patch : 0; }
size_t mn_model_feature_dim(const mn_model *m) { return m ? m->feature_dim : 0; }
size_t mn_model_descriptor_dim(const mn_model *m) { return m ? m->desc_dim : 0; }
size_t mn_model_projection_dim(const mn_model *m) { return m ? m->proj_dim : 0; }

void mn_model_normalization(const mn_model *m, float *mean, float *divisor)
{
    if (mean)
        *mean = m ? m->norm_mean : 0.0f;
    if (divisor)
        *divisor = m ? m->norm_div : 1.0f;
}
