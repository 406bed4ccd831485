/*
 * bench_layers.c - per-layer profile of the tower, one thread: each layer's
 * time per patch, multiply-adds, effective GFLOP/s and share of the total,
 * for the [C][N][H][W] im2col path (what the library ran before the blocked
 * path; it still serves blocks of fewer than MN_NB / 2 patches) and the
 * blocked path (conv0 on F(4, 7) rows, Winograd conv1-conv4, pools inside
 * the convolutions before them), in the same run.
 * Medians over repeats. Links the static library to reach the layer loop.
 *
 *   bench_layers MODEL.mnw [--repeats R] [--json]
 *
 * Environment as for the library: MN_SIMD, MN_GEMM, MN_WINOGRAD (read when
 * the model is loaded).
 */
#define _POSIX_C_SOURCE 200809L
#include "kernels/blocked.h"
#include "kernels/cpu.h"
#include "kernels/isa.h"
#include "model.h"
#include "tower.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* How the blocked path runs layer k: a conv's algorithm, "+ pool" when the
 * pooling after it runs inside it (then the pool's own row reads 0). */
static const char *blocked_path(const mn_model *m, int k)
{
    const mn_layer *l = &m->layers[k];
    const int fused = k + 1 < m->n_layers && mn_blocked_conv_pool_fits(l, &m->layers[k + 1]);
    if (l->type == MN_LAYER_MAXPOOL)
        return k > 0 && mn_blocked_conv_pool_fits(&m->layers[k - 1], l) ? "in the conv above" : "";
    if (l->type != MN_LAYER_CONV)
        return "";
    if (l->wino_u)
        return fused ? "Winograd F(4x4) + pool" : "Winograd F(4x4)";
    if (l->wino_x)
        return fused ? "Winograd F(4, 7) rows + pool" : "Winograd F(4, 7) rows";
    return fused ? "direct + pool" : "direct";
}

static double layer_macs(const mn_layer *l)
{
    if (l->type == MN_LAYER_CONV)
        return (double)l->out_c * l->out_h * l->out_w * l->in_c * l->kernel * l->kernel;
    if (l->type == MN_LAYER_FC)
        return (double)l->in_c * l->out_c;
    return 0.0;
}

static const char *layer_kind(const mn_layer *l)
{
    switch (l->type) {
    case MN_LAYER_CONV: return "conv";
    case MN_LAYER_MAXPOOL: return "maxpool";
    case MN_LAYER_FC: return "fc";
    default: return "l2norm";
    }
}

#define MAX_REP 101

/* Median seconds per patch of each layer (and of the whole) over repeats;
 * each repeat runs about 0.1 s worth of chunks. */
static int chunk_n = MN_CHUNK; /* --chunk: images per call of the [C][N][H][W] path */

static void profile(const mn_model *m, mn_scratch *s, int blocked, const uint8_t *px, int repeats, double *med,
                    double *total)
{
    const int n = blocked ? MN_NB : chunk_n;
    float *desc = malloc(sizeof(float) * (size_t)n * m->desc_dim);
    static double samples[MN_MAX_LAYERS + 1][MAX_REP];
    double prof[MN_MAX_LAYERS];
    /* Warm up and size a repeat. */
    memset(prof, 0, sizeof prof);
    double t0 = now();
    int chunks = 0;
    while (now() - t0 < 0.1 || chunks < 2) {
        mn_tower_profile_chunk(m, s, blocked, px, n, desc, prof);
        chunks++;
    }
    for (int r = 0; r < repeats; r++) {
        memset(prof, 0, sizeof prof);
        double a = now();
        for (int c = 0; c < chunks; c++)
            mn_tower_profile_chunk(m, s, blocked, px, n, desc, prof);
        double b = now();
        for (int k = 0; k < m->n_layers; k++)
            samples[k][r] = prof[k] / ((double)chunks * n);
        samples[m->n_layers][r] = (b - a) / ((double)chunks * n);
    }
    for (int k = 0; k <= m->n_layers; k++) {
        qsort(samples[k], (size_t)repeats, sizeof(double), cmp_double);
        double v = repeats % 2 ? samples[k][repeats / 2]
                               : 0.5 * (samples[k][repeats / 2 - 1] + samples[k][repeats / 2]);
        if (k < m->n_layers)
            med[k] = v;
        else
            *total = v;
    }
    free(desc);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int repeats = 7, json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--repeats") == 0 && i + 1 < argc)
            repeats = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc)
            chunk_n = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: bench_layers MODEL.mnw [--repeats R] [--chunk N] [--json]\n");
            return 2;
        }
    }
    if (!path || repeats < 1 || repeats > MAX_REP || chunk_n < 1 || chunk_n > MN_CHUNK) {
        fprintf(stderr, "usage: bench_layers MODEL.mnw [--repeats R (1..%d)] [--chunk N (1..%d)] [--json]\n", MAX_REP,
                MN_CHUNK);
        return 2;
    }
    mn_model *m = NULL;
    if (mn_model_load_file(path, &m) != MN_OK) {
        fprintf(stderr, "bench_layers: %s\n", mn_last_error());
        return 1;
    }
    mn_scratch s;
    if (mn_scratch_init(m, &s) != MN_OK) {
        fprintf(stderr, "bench_layers: out of memory\n");
        return 1;
    }
    const size_t pp = (size_t)m->patch * m->patch;
    uint8_t *px = malloc(pp * MN_NB);
    srand(1);
    for (size_t i = 0; i < pp * MN_NB; i++)
        px[i] = (uint8_t)(rand() & 255);

    double before[MN_MAX_LAYERS], after[MN_MAX_LAYERS], tb, ta, macs_total = 0.0;
    profile(m, &s, 0, px, repeats, before, &tb);
    profile(m, &s, 1, px, repeats, after, &ta);
    const char *isa;
    isa = mn_tower_blocked_name();

    if (json) {
        printf("{\"model\": \"%s\", \"blocked_isa\": \"%s\", \"gemm_kernel\": \"%s\", \"layers\": [", m->name, isa,
               mn_kernel_name(mn_cpu_get()->gemm_fixed));
        for (int k = 0; k < m->n_layers; k++)
            printf("%s{\"layer\": %d, \"kind\": \"%s\", \"shape\": \"%dx%dx%d\", \"macs\": %.0f, "
                   "\"before_us\": %.2f, \"after_us\": %.2f, \"winograd\": %s, \"path\": \"%s\"}",
                   k ? ", " : "", k, layer_kind(&m->layers[k]), m->layers[k].out_c, m->layers[k].out_h,
                   m->layers[k].out_w, layer_macs(&m->layers[k]), before[k] * 1e6, after[k] * 1e6,
                   m->layers[k].wino_u || m->layers[k].wino_x ? "true" : "false", blocked_path(m, k));
        printf("], \"before_us\": %.2f, \"after_us\": %.2f}\n", tb * 1e6, ta * 1e6);
    } else {
        for (int k = 0; k < m->n_layers; k++)
            macs_total += layer_macs(&m->layers[k]);
        printf("per-layer profile, one thread, medians of %d repeats, microseconds per patch\n", repeats);
        printf("before: [C][N][H][W] im2col + product (chunks of %d); after: blocked path '%s' (blocks of %d)\n",
               chunk_n, isa, MN_NB);
        printf("%-6s %-8s %-11s %9s %9s %8s %8s %7s %7s %s\n", "layer", "kind", "shape", "MMACs", "before", "after",
               "GFLOP/s", "share", "share", "");
        printf("%-6s %-8s %-11s %9s %9s %8s %8s %7s %7s\n", "", "", "", "", "us", "us", "after", "before", "after");
        for (int k = 0; k < m->n_layers; k++) {
            const mn_layer *l = &m->layers[k];
            double macs = layer_macs(l);
            char shape[32];
            snprintf(shape, sizeof shape, "%dx%dx%d", l->out_c, l->out_h, l->out_w);
            printf("%-6d %-8s %-11s %9.2f %9.1f %8.1f %8.1f %6.1f%% %6.1f%% %s\n", k, layer_kind(l), shape,
                   macs * 1e-6, before[k] * 1e6, after[k] * 1e6, macs > 0 ? 2.0 * macs / after[k] * 1e-9 : 0.0,
                   100.0 * before[k] / tb, 100.0 * after[k] / ta,
                   blocked_path(m, k));
        }
        printf("%-6s %-8s %-11s %9.2f %9.1f %8.1f %8.1f   (%.2fx; %.0f -> %.0f patches/s on one thread)\n",
               "total", "", "", macs_total * 1e-6, tb * 1e6, ta * 1e6, 2.0 * macs_total / ta * 1e-9, tb / ta,
               1.0 / tb, 1.0 / ta);
    }
    free(px);
    mn_scratch_release(&s);
    mn_model_free(m);
    return 0;
}
