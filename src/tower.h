/*
 * tower.h - a worker thread's scratch, and the feature tower over a range
 * of patches (tower.c): the reference path, the [C][N][H][W] path for small
 * blocks, and the blocked path (kernels/blocked.h) for blocks of MN_NB.
 */
#ifndef MN_TOWER_H
#define MN_TOWER_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

/* Images processed together by the [C][N][H][W] path: wide enough to give
 * the product long rows, small enough to keep the im2col buffer in the tens
 * of MB. */
#define MN_CHUNK 8
/* Pairs scored together by the metric network (metric.c). */
#define MN_PAIR_BLOCK 128

/* Scratch one worker thread needs for tower and metric work. */
typedef struct mn_scratch {
    float *act0, *act1, *col; /* tower: MN_CHUNK images each */
    float *pack;              /* packing buffer of the product kernels */
    float *h0, *h1;           /* metric: MN_PAIR_BLOCK rows of max_metric */
    float *concat;            /* metric plain path: MN_PAIR_BLOCK rows of 2 * desc_dim */
    float *frame;             /* blocked path: a padded convolution input */
    float *wino_v, *wino_m;   /* blocked path: Winograd-transformed input and output */
} mn_scratch;

mn_status mn_scratch_init(const mn_model *m, mn_scratch *s);
void mn_scratch_release(mn_scratch *s);

/* Describe patches [begin, end); pixels as u8 or f32 (exactly one non-NULL). */
void mn_tower_run(const mn_model *m, mn_scratch *s, int reference, const uint8_t *px8, const float *pxf,
                  size_t begin, size_t end, float *desc);
/* A block of fewer than MN_NB / 2 patches (single patches, small batches)
 * on the [C][N][H][W] path, split over threads inside the tower: each
 * convolution by output columns, each pooling by planes, the rest (the
 * normalisation, fully connected layers, L2) on one thread. Threads claim
 * pieces in order and wait only for earlier layers' pieces, so a thread
 * that starts late or never just finds less to do. Every piece computes
 * exactly what the whole-chunk call does: results equal mn_tower_run's on
 * one thread, bit for bit. */
typedef struct mn_tower_split {
    const mn_model *m;
    const uint8_t *px8;
    const float *pxf;
    int n;
    float *desc;
    float *act[2]; /* the activations: the scratch of the thread that normalises */
    int n_steps;
    struct {
        int layer;         /* -1: normalise; n_layers: from the first fc / L2 layer to the end */
        size_t total, per; /* columns or planes, per piece */
        int first;         /* index of the step's first piece */
    } step[MN_MAX_LAYERS + 2];
    int pieces;
    _Atomic int next, done;
} mn_tower_split;

/* Plans the split of n (1..MN_CHUNK) patches for the given thread count. */
void mn_tower_split_init(mn_tower_split *j, const mn_model *m, const uint8_t *px8, const float *pxf, int n,
                         float *desc, int threads);
/* One thread's share: claims and runs pieces until none are left. */
void mn_tower_split_work(mn_tower_split *j, mn_scratch *s);

/* One chunk through either fast path (blocked: n <= MN_NB, else n <= MN_CHUNK);
 * prof, when not NULL, gets each layer's seconds added (layer 0's includes
 * the normalisation). For the per-layer profile (bench/bench_layers.c). */
void mn_tower_profile_chunk(const mn_model *m, mn_scratch *s, int blocked, const uint8_t *px8, int n, float *desc,
                            double *prof);
/* The name of the blocked path's build this process uses (mn_cpu_get()->tower). */
const char *mn_tower_blocked_name(void);

#endif
