/*
 * colmap_store.c - matchnet-colmap's descriptor store (--store DIR,
 * colmap_app.h): each image's keypoints and descriptors in a file of its
 * own, written once and read back per pair through a bounded LRU cache, so
 * that memory does not grow with the number of images. DIR must be on a
 * file system that every process of a run sees (shards, MPI ranks): an
 * image is described by whichever process needs it first, and the others
 * read the file.
 *
 * One file per image, DIR/HHHHHHHHHHHHHHHH.mnd (H: FNV-1a 64 of the image
 * name, hex), host byte order (a file of another byte order fails the
 * version check and is recomputed):
 *
 *   offset  size       field
 *   0       8          magic "MNSTORE\0"
 *   8       4          u32 version (1)
 *   12      4          u32 descriptor dim
 *   16      8          u64 model fingerprint (store_model_fingerprint())
 *   24      4          i32 --max-keypoints
 *   28      4          i32 --max-size (0: full size)
 *   32      4          f32 patch scale factor
 *   36      4          i32 patch size
 *   40      8          i64 image file size in bytes
 *   48      8          i64 image file mtime, nanoseconds
 *   56      4          i32 image width, full resolution
 *   60      4          i32 image height
 *   64      8          u64 number of keypoints n
 *   72      4          u32 name length L
 *   76      4          u32 flags: 1 with --affine, else 0 (files of
 *                      earlier versions have 0 here: still read)
 *   80      L          image name (relative to --images, no NUL)
 *   80+L    16 n       n keypoints (x, y, size, angle: f32, full resolution,
 *                      OpenCV convention), from a 4-aligned offset (L
 *                      padded with zeros to a multiple of 4); with flag 1,
 *           24 n       n ellipses instead (x, y, a11, a12, a21, a22: f32,
 *                      mn_affine_keypoint, full resolution)
 *   ...     2 n dim    n x dim descriptors, IEEE float16
 *   end-8   8          u64 FNV-1a 64 of every byte before it
 *
 * A file whose header differs from what this run would write, whose size
 * is not what its counts say, or whose checksum fails is treated as absent
 * and written again. Writers go through a temporary file (mkstemp) and
 * rename(), so concurrent writers of one image (whose results are the same)
 * are harmless and a reader never sees half a file.
 *
 * float16 keeps 11 significant bits; the descriptors are the outputs of a
 * ReLU/bottleneck layer of magnitude about 0.01 .. 10, well inside its
 * range (6e-5 .. 65504); values beyond saturate to +-65504.
 */
#define _POSIX_C_SOURCE 200809L
#include "colmap_app.h"
#include "out_file.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_MAGIC "MNSTORE"
#define STORE_VERSION 1u
#define HEADER_BYTES 80
/* The header's flags. */
#define STORE_FLAG_AFFINE 1u

/* The header fields that must equal this run's for a file to be used. */
typedef struct store_header {
    char magic[8];
    uint32_t version, dim;
    uint64_t model;
    int32_t max_keypoints, max_size;
    float scale_factor;
    int32_t patch_size;
    int64_t file_size, file_mtime_ns;
    int32_t width, height;
    uint64_t nkp;
    uint32_t name_len, flags;
} store_header;

_Static_assert(sizeof(store_header) == HEADER_BYTES, "store header layout");
_Static_assert(sizeof(mn_keypoint) == 16 && sizeof(mn_affine_keypoint) == 24, "store keypoint layout");

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#define FNV_BASIS 0xcbf29ce484222325ull

/* float -> IEEE binary16, round to nearest even; NaN stays NaN, beyond the
 * range saturates to the largest finite value (a descriptor never gets an
 * infinity it did not have). */
static uint16_t half_from_float(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t a = x & 0x7fffffff;
    if (a > 0x7f800000)
        return sign | 0x7e00;
    if (a >= 0x477ff000) /* rounds to 65520 or more */
        return a == 0x7f800000 ? sign | 0x7c00 : sign | 0x7bff;
    if (a < 0x38800000) { /* below the smallest normal half: a subnormal or 0 */
        if (a < 0x33000000)
            return sign;
        uint32_t m = (a & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(a >> 23); /* 14 .. 24: units of 2^-24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (r & 1)))
            r++;
        return sign | (uint16_t)r;
    }
    uint32_t r = ((a >> 13) - ((127 - 15) << 10));
    uint32_t rem = a & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++;
    return sign | (uint16_t)r;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
    if (e == 0) {
        float v = ldexpf((float)m, -24);
        return sign ? -v : v;
    }
    if (e == 31)
        x = sign | 0x7f800000 | (m << 13);
    else
        x = sign | ((e + 127 - 15) << 23) | (m << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

float store_half_round(float f)
{
    return half_to_float(half_from_float(f));
}

int store_model_fingerprint(context *ctx, const mn_model *model, uint64_t *out)
{
    /* Two fixed patches described by the model, each value rounded to 1/64:
     * the same weights give the same fingerprint on every machine whatever
     * its kernels (they differ in the last bits), other weights almost
     * surely another. Cheaper and sturdier than finding the model's file,
     * which mn_model_load_default() may take from several places. */
    enum { NPATCH = 2 };
    const int ps = mn_model_patch_size(model);
    size_t dim = mn_model_descriptor_dim(model);
    uint8_t *patch = malloc((size_t)NPATCH * ps * ps);
    float *d = malloc(NPATCH * dim * sizeof *d);
    int rc = -1;
    if (!patch || !d) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory");
        goto done;
    }
    uint32_t s = 12345;
    for (size_t i = 0; i < (size_t)NPATCH * ps * ps; i++) {
        s = s * 1664525u + 1013904223u;
        patch[i] = (uint8_t)(i < (size_t)ps * ps ? (s >> 24) : (i % ps) * 255 / ps);
    }
    if (mn_describe_u8(ctx->session, patch, NPATCH, d) != MN_OK) {
        snprintf(ctx->err, sizeof ctx->err, "%s", mn_last_error());
        goto done;
    }
    uint64_t h = fnv1a(FNV_BASIS, mn_model_name(model), strlen(mn_model_name(model)));
    h = fnv1a(h, &dim, sizeof dim);
    for (size_t i = 0; i < NPATCH * dim; i++) {
        int64_t q = llroundf(d[i] * 64.0f);
        h = fnv1a(h, &q, sizeof q);
    }
    *out = h;
    rc = 0;
done:
    free(patch);
    free(d);
    return rc;
}

/* DIR/HASH.mnd for an image name; malloc'ed. */
static char *entry_path(const context *ctx, const char *name)
{
    const char *dir = ctx->o->store;
    size_t n = strlen(dir) + 32;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%016llx.mnd", dir, (unsigned long long)fnv1a(FNV_BASIS, name, strlen(name)));
    return p;
}

/* The header this run would write for an image (nkp, width and height
 * left 0), from the image file's size and time. 0, or -1 when the image
 * cannot be stat'ed (then it is not in the store). */
static int expected_header(const context *ctx, const char *name, store_header *h)
{
    size_t la = strlen(ctx->o->images), lb = strlen(name);
    char *path = malloc(la + lb + 2);
    if (!path)
        return -1;
    snprintf(path, la + lb + 2, "%s/%s", ctx->o->images, name);
    struct stat st;
    int rc = stat(path, &st);
    free(path);
    if (rc != 0)
        return -1;
    *h = (store_header){.version = STORE_VERSION,
                        .dim = (uint32_t)ctx->dim,
                        .model = ctx->model_id,
                        .max_keypoints = ctx->o->max_keypoints,
                        .max_size = ctx->o->max_size,
                        .scale_factor = ctx->ep.scale_factor,
                        .patch_size = ctx->ep.patch_size,
                        .file_size = (int64_t)st.st_size,
                        .file_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                        .name_len = (uint32_t)lb,
                        .flags = ctx->o->affine ? STORE_FLAG_AFFINE : 0};
    memcpy(h->magic, STORE_MAGIC, 8);
    return 0;
}

static size_t name_padded(uint32_t len)
{
    return ((size_t)len + 3) & ~(size_t)3;
}

/* Bytes of one keypoint in a file with this header. */
static size_t keypoint_bytes(const store_header *h)
{
    return h->flags & STORE_FLAG_AFFINE ? sizeof(mn_affine_keypoint) : sizeof(mn_keypoint);
}

/* Bytes of a file with this header, or 0 when its counts overflow. */
static size_t file_bytes(const store_header *h)
{
    if (h->nkp > (uint64_t)MAX_STORE_KEYPOINTS || h->dim == 0 || h->dim > 1u << 16)
        return 0;
    return HEADER_BYTES + name_padded(h->name_len) + (size_t)h->nkp * (keypoint_bytes(h) + 2 * (size_t)h->dim) + 8;
}

/* Whether a file's header is this run's for the image (counts aside). */
static int header_matches(const store_header *got, const store_header *want, const char *name, const char *file_name)
{
    return memcmp(got->magic, want->magic, 8) == 0 && got->version == want->version && got->dim == want->dim &&
           got->model == want->model && got->max_keypoints == want->max_keypoints &&
           got->max_size == want->max_size && got->scale_factor == want->scale_factor &&
           got->patch_size == want->patch_size && got->file_size == want->file_size &&
           got->file_mtime_ns == want->file_mtime_ns && got->name_len == want->name_len && got->flags == want->flags &&
           memcmp(file_name, name, want->name_len) == 0;
}

int store_read(context *ctx, const char *name, int header_only, store_entry *out)
{
    *out = (store_entry){0};
    store_header want, got;
    if (expected_header(ctx, name, &want) != 0)
        return 0;
    char *path = entry_path(ctx, name);
    if (!path) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory");
        return -1;
    }
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f)
        return 0;
    unsigned char *buf = NULL;
    int rc = 0;
    struct stat st;
    char name_buf[4096];
    if (fstat(fileno(f), &st) != 0 || fread(&got, sizeof got, 1, f) != 1 || got.name_len > sizeof name_buf ||
        fread(name_buf, 1, got.name_len, f) != got.name_len || !header_matches(&got, &want, name, name_buf) ||
        file_bytes(&got) == 0 || (uint64_t)st.st_size != file_bytes(&got))
        goto done;
    out->nkp = (size_t)got.nkp;
    out->width = got.width;
    out->height = got.height;
    if (header_only) {
        rc = 1;
        goto done;
    }
    size_t n = file_bytes(&got);
    buf = malloc(n);
    out->kp = malloc((out->nkp ? out->nkp : 1) * sizeof *out->kp);
    out->desc = malloc((out->nkp ? out->nkp : 1) * ctx->dim * sizeof *out->desc);
    if (got.flags & STORE_FLAG_AFFINE)
        out->akp = malloc((out->nkp ? out->nkp : 1) * sizeof *out->akp);
    if (!buf || !out->kp || !out->desc || ((got.flags & STORE_FLAG_AFFINE) && !out->akp)) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory for the %zu descriptors of '%s'", out->nkp, name);
        rc = -1;
        goto done;
    }
    rewind(f);
    uint64_t sum;
    if (fread(buf, 1, n, f) != n)
        goto done;
    memcpy(&sum, buf + n - 8, 8);
    if (sum != fnv1a(FNV_BASIS, buf, n - 8))
        goto done;
    const unsigned char *p = buf + HEADER_BYTES + name_padded(got.name_len);
    if (out->akp) {
        memcpy(out->akp, p, out->nkp * sizeof *out->akp);
        for (size_t k = 0; k < out->nkp; k++)
            out->kp[k] = mn_affine_to_keypoint(&out->akp[k]);
    } else {
        memcpy(out->kp, p, out->nkp * sizeof *out->kp);
    }
    p += out->nkp * keypoint_bytes(&got);
    for (size_t i = 0; i < out->nkp * ctx->dim; i++) {
        uint16_t hv;
        memcpy(&hv, p + 2 * i, 2);
        out->desc[i] = half_to_float(hv);
    }
    rc = 1;
done:
    fclose(f);
    free(buf);
    if (rc != 1)
        store_entry_free(out);
    return rc;
}

void store_entry_free(store_entry *e)
{
    free(e->kp);
    free(e->akp);
    free(e->desc);
    *e = (store_entry){0};
}

int store_write(context *ctx, const char *name, const store_entry *e)
{
    store_header h;
    if (expected_header(ctx, name, &h) != 0) {
        snprintf(ctx->err, sizeof ctx->err, "cannot stat '%s/%s': %s", ctx->o->images, name, strerror(errno));
        return -1;
    }
    if ((h.flags & STORE_FLAG_AFFINE) && !e->akp) {
        snprintf(ctx->err, sizeof ctx->err, "'%s': no affine shapes to store", name);
        return -1;
    }
    h.nkp = e->nkp;
    h.width = e->width;
    h.height = e->height;
    size_t n = file_bytes(&h);
    unsigned char *buf = n ? calloc(1, n) : NULL;
    char *path = entry_path(ctx, name), *tmp = path ? malloc(strlen(path) + 16) : NULL;
    int rc = -1, fd = -1;
    if (!buf || !tmp) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory");
        goto done;
    }
    memcpy(buf, &h, sizeof h);
    memcpy(buf + HEADER_BYTES, name, h.name_len);
    unsigned char *p = buf + HEADER_BYTES + name_padded(h.name_len);
    if (h.flags & STORE_FLAG_AFFINE)
        memcpy(p, e->akp, e->nkp * sizeof *e->akp);
    else
        memcpy(p, e->kp, e->nkp * sizeof *e->kp);
    p += e->nkp * keypoint_bytes(&h);
    for (size_t i = 0; i < e->nkp * ctx->dim; i++) {
        uint16_t hv = half_from_float(e->desc[i]);
        memcpy(p + 2 * i, &hv, 2);
    }
    uint64_t sum = fnv1a(FNV_BASIS, buf, n - 8);
    memcpy(buf + n - 8, &sum, 8);
    /* mkstemp's O_EXCL name: unique across the hosts that share DIR, where
     * a PID-based name is not. */
    snprintf(tmp, strlen(path) + 16, "%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp);
    int e_no = fd < 0 ? errno : 0;
    if (fd >= 0) {
        /* mkstemp() makes it 0600: other users' runs read the store too. */
        mode_t mask = umask(0);
        umask(mask);
        if (fchmod(fd, 0666 & ~mask) != 0 || (e_no = mn_out_file_write_all(fd, buf, n)) != 0)
            e_no = e_no ? e_no : errno;
    }
    if (fd >= 0 && e_no == 0 && fsync(fd) != 0)
        e_no = errno;
    if (fd >= 0 && close(fd) != 0 && e_no == 0)
        e_no = errno;
    if (e_no == 0 && rename(tmp, path) != 0)
        e_no = errno;
    if (e_no != 0) {
        if (fd >= 0)
            unlink(tmp);
        snprintf(ctx->err, sizeof ctx->err, "cannot write the store file '%s' of '%s': %s", path, name,
                 strerror(e_no));
        goto done;
    }
    rc = 0;
done:
    free(buf);
    free(path);
    free(tmp);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The cache                                                                 */
/* ------------------------------------------------------------------------ */

int store_cache_init(store_cache *c, size_t n_images, size_t budget_bytes)
{
    *c = (store_cache){.budget = budget_bytes};
    c->slot_of = malloc((n_images ? n_images : 1) * sizeof *c->slot_of);
    if (!c->slot_of) {
        error_line("out of memory");
        return -1;
    }
    for (size_t i = 0; i < n_images; i++)
        c->slot_of[i] = -1;
    return 0;
}

void store_cache_free(store_cache *c)
{
    for (size_t s = 0; s < c->n; s++)
        store_entry_free(&c->v[s].e);
    free(c->v);
    free(c->slot_of);
    *c = (store_cache){0};
}

static size_t entry_bytes(const store_entry *e, size_t dim)
{
    return e->nkp * (sizeof *e->kp + dim * sizeof *e->desc);
}

/* Drop least recently used entries, never images a and b, until the cache
 * is within its budget (or holds only those two). */
static void evict(store_cache *c, size_t dim, size_t a, size_t b)
{
    while (c->bytes > c->budget) {
        size_t lru = c->n;
        for (size_t s = 0; s < c->n; s++)
            if (c->v[s].image != a && c->v[s].image != b && (lru == c->n || c->v[s].tick < c->v[lru].tick))
                lru = s;
        if (lru == c->n)
            return;
        c->bytes -= entry_bytes(&c->v[lru].e, dim);
        c->slot_of[c->v[lru].image] = -1;
        store_entry_free(&c->v[lru].e);
        c->v[lru] = c->v[--c->n];
        if (lru < c->n)
            c->slot_of[c->v[lru].image] = (long)lru;
    }
}

/* Image i in the cache, read from the store when absent. 0 or -1 with
 * ctx->err set. */
static int cache_load(store_cache *c, context *ctx, const image_list *list, size_t i)
{
    long s = c->slot_of[i];
    if (s < 0) {
        store_entry e;
        int found = store_read(ctx, list->v[i].name, 0, &e);
        if (found < 0)
            return -1;
        /* Matching needs the positions only: the ellipses go. */
        free(e.akp);
        e.akp = NULL;
        if (found == 0 || e.nkp != list->v[i].nkp) {
            /* Checked before matching began: another run has since written
             * the file with other settings. */
            snprintf(ctx->err, sizeof ctx->err,
                     "'%s': its store file in '%s' changed during the run (another run with other settings or "
                     "model on the same --store?)",
                     list->v[i].name, ctx->o->store);
            store_entry_free(&e);
            return -1;
        }
        if (c->n == c->cap) {
            size_t cap = c->cap ? 2 * c->cap : 16;
            void *v = realloc(c->v, cap * sizeof *c->v);
            if (!v) {
                store_entry_free(&e);
                snprintf(ctx->err, sizeof ctx->err, "out of memory");
                return -1;
            }
            c->v = v;
            c->cap = cap;
        }
        s = (long)c->n++;
        c->v[s] = (store_cached){.image = i, .e = e};
        c->slot_of[i] = s;
        c->bytes += entry_bytes(&e, ctx->dim);
        c->loads++;
    }
    c->v[s].tick = ++c->clock;
    return 0;
}

int store_cache_pair(store_cache *c, context *ctx, const image_list *list, size_t a, size_t b,
                     const store_entry **ea, const store_entry **eb)
{
    if (cache_load(c, ctx, list, a) != 0 || cache_load(c, ctx, list, b) != 0)
        return -1;
    evict(c, ctx->dim, a, b);
    *ea = &c->v[c->slot_of[a]].e;
    *eb = &c->v[c->slot_of[b]].e;
    return 0;
}
