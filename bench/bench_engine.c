/*
 * bench_engine.c - libmatchnet throughput: tower patches/s at several batch
 * sizes, metric pairs/s (two-stage and plain), and the machine's sgemm
 * GFLOP/s as a yardstick. Medians over repeated runs. Prints one JSON line.
 *
 *   bench_engine MODEL.mnw [--threads N] [--repeats R] [--blas-threads N]
 *   bench_engine --blas-core      (prints OpenBLAS's core name)
 *
 * sgemm is measured with --blas-threads (default 2) threads; the engine
 * then runs with --threads library threads and single-threaded BLAS.
 */
#define _POSIX_C_SOURCE 200809L
#include "matchnet.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int n);
char *openblas_get_corename(void);


static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Repeat fn until about min_s seconds have passed per sample; rate = items / s. */
#define MAX_REP 64
typedef struct stat { double med, lo, hi; } stat;

static stat measure_rates(double *rates, int r)
{
    stat s;
    s.med = median(rates, r);
    s.lo = rates[0];
    s.hi = rates[r - 1];
    return s;
}

static double sgemm_gflops(int size, int repeats)
{
    float *a = malloc(sizeof(float) * size * size), *b = malloc(sizeof(float) * size * size),
          *c = malloc(sizeof(float) * size * size);
    for (int i = 0; i < size * size; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    double r[MAX_REP];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, size, size, size, 1, a, size, b, size, 0, c, size);
    for (int k = 0; k < repeats; k++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, size, size, size, 1, a, size, b, size, 0, c,
                    size);
        r[k] = 2.0 * size * size * (double)size / (now() - t) * 1e-9;
    }
    free(a);
    free(b);
    free(c);
    return median(r, repeats);
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--blas-core")) {
        printf("%s\n", openblas_get_corename());
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.mnw [--threads N] [--blas-threads N] [--repeats R]\n", argv[0]);
        return 2;
    }
    int threads = 2, blas_threads = 2, repeats = 7;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--blas-threads"))
            blas_threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeats"))
            repeats = atoi(argv[i + 1]);
    }
    if (repeats < 1 || repeats > MAX_REP)
        repeats = 7;
    openblas_set_num_threads(blas_threads);
    double gf = sgemm_gflops(1024, repeats);

    mn_model *m = NULL;
    if (mn_model_load_file(argv[1], &m) != MN_OK) {
        fprintf(stderr, "%s\n", mn_last_error());
        return 1;
    }
    mn_session_params sp = mn_session_params_default();
    sp.num_threads = threads;
    mn_session *s = NULL;
    if (mn_session_create(m, &sp, &s) != MN_OK) {
        fprintf(stderr, "%s\n", mn_last_error());
        return 1;
    }
    const int P = mn_model_patch_size(m);
    const size_t D = mn_model_descriptor_dim(m);
    const int batches[3] = {1, 64, 256};
    const int maxb = 256;
    uint8_t *px = malloc((size_t)maxb * P * P);
    srand(1);
    for (size_t i = 0; i < (size_t)maxb * P * P; i++)
        px[i] = (uint8_t)(rand() & 255);
    float *desc = malloc(sizeof(float) * maxb * D);
    stat tower[3];
    for (int bi = 0; bi < 3; bi++) {
        int b = batches[bi];
        double r[MAX_REP];
        mn_describe_u8(s, px, (size_t)b, desc); /* warm-up */
        for (int k = 0; k < repeats; k++) {
            int iters = b == 1 ? 32 : 1;
            double t = now();
            for (int it = 0; it < iters; it++)
                mn_describe_u8(s, px, (size_t)b, desc);
            r[k] = (double)b * iters / (now() - t);
        }
        tower[bi] = measure_rates(r, repeats);
    }
    /* Metric: 256 x 256 descriptors, 16384 candidate pairs (64 per row). */
    const size_t na = 256, npairs = 256 * 64;
    mn_pair *pairs = malloc(sizeof *pairs * npairs);
    for (size_t k = 0; k < npairs; k++) {
        pairs[k].a = (uint32_t)(k / 64);
        pairs[k].b = (uint32_t)((k * 7919) % na);
    }
    float *prob = malloc(sizeof(float) * npairs);
    stat metric[2];
    for (int plain = 0; plain <= 1; plain++) {
        double r[MAX_REP];
        for (int k = 0; k < repeats; k++) {
            double t = now();
            if (plain)
                mn_metric_score_pairs_plain(s, desc, na, desc, na, pairs, npairs, prob);
            else
                mn_metric_score_pairs(s, desc, na, desc, na, pairs, npairs, prob);
            r[k] = (double)npairs / (now() - t);
        }
        metric[plain] = measure_rates(r, repeats);
    }
    printf("{\"blas\": \"%s\", \"engine_threads\": %d, \"sgemm_threads\": %d, \"repeats\": %d, \"sgemm_gflops\": %.1f, "
           "\"tower_b1_patches_per_s\": %.1f, \"tower_b64_patches_per_s\": %.1f, "
           "\"tower_b64_min\": %.1f, \"tower_b64_max\": %.1f, \"tower_b256_patches_per_s\": %.1f, "
           "\"metric_two_stage_pairs_per_s\": %.0f, \"metric_plain_pairs_per_s\": %.0f}\n",
           mn_blas_info(), threads, blas_threads, repeats, gf, tower[0].med, tower[1].med, tower[1].lo, tower[1].hi,
           tower[2].med, metric[0].med, metric[1].med);
    free(px);
    free(desc);
    free(pairs);
    free(prob);
    mn_session_free(s);
    mn_model_free(m);
    return 0;
}
