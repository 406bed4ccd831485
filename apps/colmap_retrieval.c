/*
 * colmap_retrieval.c - VLAD global descriptors over a k-means codebook
 * (colmap_retrieval.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "colmap_retrieval.h"
#include "out_file.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITERATIONS 30
#define FILE_HEADER 24
#define FILE_VERSION 1u
#define MAX_FILE_SIZE 65536u

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* splitmix64: small, seedable, and the same on every platform. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n); the modulo bias is below 2^-40 for the sizes here. */
static uint64_t random_below(uint64_t *state, uint64_t n)
{
    return next_random(state) % n;
}

/* |a - b|^2 in 16 running sums: a fixed order (the same result every run)
 * that compilers vectorise without -ffast-math; k-means spends its time
 * here. */
static float sq_distance(const float *a, const float *b, size_t dim)
{
    float lane[16] = {0}, s = 0;
    size_t d = 0;
    for (; d + 16 <= dim; d += 16)
        for (int l = 0; l < 16; l++) {
            float t = a[d + l] - b[d + l];
            lane[l] += t * t;
        }
    for (; d < dim; d++)
        s += (a[d] - b[d]) * (a[d] - b[d]);
    for (int l = 0; l < 16; l++)
        s += lane[l];
    return s;
}

/* The nearest centre to x (the first of equals), its squared distance in
 * *dist. */
static size_t nearest(const float *centres, size_t k, size_t dim, const float *x, float *dist)
{
    size_t best = 0;
    float best_d = FLT_MAX;
    for (size_t c = 0; c < k; c++) {
        float d = sq_distance(centres + c * dim, x, dim);
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    *dist = best_d;
    return best;
}

int retrieval_sample_init(retrieval_sample *s, size_t dim, size_t cap, uint64_t seed, char *err, size_t errlen)
{
    *s = (retrieval_sample){.dim = dim, .cap = cap, .rng = seed};
    if (dim == 0 || cap == 0 || cap > SIZE_MAX / sizeof(float) / dim)
        return fail(err, errlen, "retrieval_sample_init(): bad size %zu x %zu", cap, dim);
    if (!(s->v = malloc(cap * dim * sizeof *s->v)))
        return fail(err, errlen, "retrieval_sample_init(): out of memory");
    return 0;
}

void retrieval_sample_add(retrieval_sample *s, const float *desc, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t slot = s->seen < s->cap ? s->seen : random_below(&s->rng, s->seen + 1);
        s->seen++;
        if (slot < s->cap) {
            memcpy(s->v + slot * s->dim, desc + i * s->dim, s->dim * sizeof *s->v);
            if (slot == s->n)
                s->n++;
        }
    }
}

void retrieval_sample_free(retrieval_sample *s)
{
    free(s->v);
    *s = (retrieval_sample){0};
}

/* k-means++: each next centre a descriptor drawn with probability
 * proportional to its squared distance from the centres so far. */
static void seed_centres(const float *x, size_t n, size_t dim, size_t k, uint64_t *rng, float *centres, float *d2)
{
    memcpy(centres, x + random_below(rng, n) * dim, dim * sizeof *centres);
    for (size_t i = 0; i < n; i++)
        d2[i] = sq_distance(x + i * dim, centres, dim);
    for (size_t c = 1; c < k; c++) {
        double total = 0;
        for (size_t i = 0; i < n; i++)
            total += d2[i];
        size_t pick = 0;
        if (total > 0) {
            double r = (double)(next_random(rng) >> 11) / 9007199254740992.0 * total, acc = 0;
            for (pick = 0; pick + 1 < n; pick++) {
                acc += d2[pick];
                if (acc > r && d2[pick] > 0)
                    break;
            }
        } else {
            pick = random_below(rng, n); /* all descriptors equal */
        }
        float *ce = centres + c * dim;
        memcpy(ce, x + pick * dim, dim * sizeof *ce);
        for (size_t i = 0; i < n; i++) {
            float d = sq_distance(x + i * dim, ce, dim);
            if (d < d2[i])
                d2[i] = d;
        }
    }
}

int retrieval_codebook_learn(const float *x, size_t n, size_t dim, size_t k, uint64_t seed, retrieval_codebook *out,
                             char *err, size_t errlen)
{
    *out = (retrieval_codebook){0};
    if (n == 0 || dim == 0 || k == 0)
        return fail(err, errlen, "retrieval_codebook_learn(): no descriptors to learn a codebook from");
    if (k > n)
        k = n;
    float *centres = malloc(k * dim * sizeof *centres), *sum = malloc(k * dim * sizeof *sum), *d2 = malloc(n * sizeof *d2);
    size_t *assign = malloc(n * sizeof *assign), *count = malloc(k * sizeof *count);
    if (!centres || !sum || !d2 || !assign || !count) {
        free(centres), free(sum), free(d2), free(assign), free(count);
        return fail(err, errlen, "retrieval_codebook_learn(): out of memory");
    }
    uint64_t rng = seed;
    seed_centres(x, n, dim, k, &rng, centres, d2);
    for (size_t i = 0; i < n; i++)
        assign[i] = SIZE_MAX;
    for (int it = 0; it < MAX_ITERATIONS; it++) {
        size_t changed = 0;
        for (size_t i = 0; i < n; i++) {
            size_t c = nearest(centres, k, dim, x + i * dim, &d2[i]);
            changed += c != assign[i];
            assign[i] = c;
        }
        if (changed == 0)
            break;
        memset(sum, 0, k * dim * sizeof *sum);
        memset(count, 0, k * sizeof *count);
        for (size_t i = 0; i < n; i++) {
            float *s = sum + assign[i] * dim;
            for (size_t d = 0; d < dim; d++)
                s[d] += x[i * dim + d];
            count[assign[i]]++;
        }
        for (size_t c = 0; c < k; c++) {
            float *ce = centres + c * dim;
            if (count[c]) {
                for (size_t d = 0; d < dim; d++)
                    ce[d] = sum[c * dim + d] / (float)count[c];
                continue;
            }
            /* An empty word takes the worst-served descriptor, which then
             * no longer counts as far. */
            size_t far = 0;
            for (size_t i = 1; i < n; i++)
                if (d2[i] > d2[far])
                    far = i;
            memcpy(ce, x + far * dim, dim * sizeof *ce);
            d2[far] = 0;
        }
    }
    free(sum), free(d2), free(assign), free(count);
    *out = (retrieval_codebook){k, dim, centres};
    return 0;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int b = 0; b < 4; b++)
        p[b] = (unsigned char)(v >> (8 * b));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int retrieval_codebook_save(const retrieval_codebook *cb, const char *path, char *err, size_t errlen)
{
    if (cb->k == 0 || cb->k > MAX_FILE_SIZE || cb->dim == 0 || cb->dim > MAX_FILE_SIZE)
        return fail(err, errlen, "retrieval_codebook_save(): bad codebook size %zu x %zu", cb->k, cb->dim);
    size_t nv = cb->k * cb->dim, len = FILE_HEADER + 4 * nv;
    unsigned char *buf = malloc(len);
    if (!buf)
        return fail(err, errlen, "retrieval_codebook_save(): out of memory");
    memcpy(buf, "MNCODEBK", 8);
    put_u32(buf + 8, FILE_VERSION);
    put_u32(buf + 12, (uint32_t)cb->k);
    put_u32(buf + 16, (uint32_t)cb->dim);
    put_u32(buf + 20, 0);
    for (size_t i = 0; i < nv; i++) {
        uint32_t bits;
        memcpy(&bits, &cb->centres[i], 4);
        put_u32(buf + FILE_HEADER + 4 * i, bits);
    }
    int e = mn_out_file_write(path, buf, len);
    free(buf);
    if (e != 0)
        return fail(err, errlen, "cannot write codebook '%s': %s", path, strerror(e));
    return 0;
}

int retrieval_codebook_load(const char *path, retrieval_codebook *out, char *err, size_t errlen)
{
    *out = (retrieval_codebook){0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errlen, "cannot open codebook '%s': %s", path, strerror(errno));
    unsigned char head[FILE_HEADER];
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    rewind(f);
    if (size < FILE_HEADER || fread(head, 1, FILE_HEADER, f) != FILE_HEADER || memcmp(head, "MNCODEBK", 8) != 0) {
        fclose(f);
        return fail(err, errlen, "codebook '%s': not a codebook file (no MNCODEBK header)", path);
    }
    uint32_t version = get_u32(head + 8), k = get_u32(head + 12), dim = get_u32(head + 16);
    if (version != FILE_VERSION) {
        fclose(f);
        return fail(err, errlen, "codebook '%s': version %u, this program reads version %u", path, version,
                    FILE_VERSION);
    }
    if (k == 0 || k > MAX_FILE_SIZE || dim == 0 || dim > MAX_FILE_SIZE ||
        (uint64_t)size != FILE_HEADER + 4 * (uint64_t)k * dim) {
        fclose(f);
        return fail(err, errlen, "codebook '%s': %u words of %u floats need %llu bytes, the file has %ld", path, k,
                    dim, (unsigned long long)(FILE_HEADER + 4 * (uint64_t)k * dim), size);
    }
    size_t nv = (size_t)k * dim;
    unsigned char *raw = malloc(4 * nv);
    float *centres = malloc(nv * sizeof *centres);
    if (!raw || !centres) {
        free(raw), free(centres), fclose(f);
        return fail(err, errlen, "codebook '%s': out of memory", path);
    }
    int ok = fread(raw, 4, nv, f) == nv;
    fclose(f);
    for (size_t i = 0; ok && i < nv; i++) {
        uint32_t bits = get_u32(raw + 4 * i);
        memcpy(&centres[i], &bits, 4);
        ok = isfinite(centres[i]);
    }
    free(raw);
    if (!ok) {
        free(centres);
        return fail(err, errlen, "codebook '%s': cannot be read, or holds a value that is not finite", path);
    }
    *out = (retrieval_codebook){k, dim, centres};
    return 0;
}

void retrieval_codebook_free(retrieval_codebook *cb)
{
    free(cb->centres);
    *cb = (retrieval_codebook){0};
}

size_t retrieval_global_dim(const retrieval_codebook *cb)
{
    return cb->k * cb->dim;
}

/* Scale v (n floats) to unit length; a zero vector stays zero. */
static void normalise(float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (size_t i = 0; i < n; i++)
            v[i] *= inv;
    }
}

void retrieval_vlad(const retrieval_codebook *cb, const float *desc, size_t n, float *out)
{
    const size_t k = cb->k, dim = cb->dim;
    memset(out, 0, k * dim * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        float d;
        const float *x = desc + i * dim;
        size_t c = nearest(cb->centres, k, dim, x, &d);
        for (size_t j = 0; j < dim; j++)
            out[c * dim + j] += x[j] - cb->centres[c * dim + j];
    }
    /* The signed square root damps bursts (repeated texture); the
     * per-word scaling keeps one crowded word from outweighing the rest. */
    for (size_t i = 0; i < k * dim; i++)
        out[i] = out[i] < 0 ? -sqrtf(-out[i]) : sqrtf(out[i]);
    for (size_t c = 0; c < k; c++)
        normalise(out + c * dim, dim);
    normalise(out, k * dim);
}
