/*
 * check.h - the tests' assertion idiom: print what failed, count, go on.
 */
#ifndef MN_CHECK_H
#define MN_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        check_count++;                                                          \
        if (!(cond)) {                                                          \
            check_failures++;                                                   \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
        }                                                                       \
    } while (0)

/* Status must be MN_OK; prints the library's message otherwise. */
#define CHECK_OK(expr)                                                          \
    do {                                                                        \
        mn_status st_ = (expr);                                                 \
        CHECK(st_ == MN_OK, "%s -> %s: %s", #expr, mn_status_str(st_), mn_last_error()); \
    } while (0)

/* Largest |a[i] - b[i]|, and where. */
static double max_abs_diff(const float *a, const float *b, size_t n, size_t *where)
{
    double m = 0.0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) { /* also catches NaN */
            m = isnan(d) ? INFINITY : d;
            w = i;
        }
    }
    if (where)
        *where = w;
    return m;
}

/* Whether the blocked path's Winograd products run in bfloat16 (the
 * default where the CPU has AVX512-BF16; MN_PRECISION=fp32 turns it off):
 * matchnet.h's bfloat16 bound then applies to descriptors from that path.
 * Needs matchnet.h. */
#define CHECK_BF16_ACTIVE() (strstr(mn_blas_info(), "bfloat16") != NULL)

/* matchnet.h's bound for bfloat16 descriptors: each within this fraction
 * of its largest component of the fp32 (or PyTorch) one (measured: up to
 * 0.057, test_golden's 4096-D test model). */
#define CHECK_BF16_BOUND 8e-2

/* Largest over the rows of d values of |a - b| / max |b| in the row (rows
 * of b all zero count |a - b| alone): the bfloat16 bound's measure. */
static double max_row_rel_diff(const float *a, const float *b, size_t rows, size_t d, size_t *where)
{
    double worst = 0.0;
    if (where)
        *where = 0;
    for (size_t r = 0; r < rows; r++) {
        double scale = 0.0;
        for (size_t i = 0; i < d; i++)
            scale = fabs((double)b[r * d + i]) > scale ? fabs((double)b[r * d + i]) : scale;
        size_t w;
        double e = max_abs_diff(a + r * d, b + r * d, d, &w) / (scale > 0.0 ? scale : 1.0);
        if (!(e <= worst)) {
            worst = isnan(e) ? INFINITY : e;
            if (where)
                *where = r * d + w;
        }
    }
    return worst;
}

static int check_summary(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

/* Little-endian stores, for tests that build files byte by byte. */
static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static inline void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

#endif
