/*
 * colmap_retrieval.h - global image descriptors for matchnet-colmap's
 * --pairs retrieval:K: VLAD (Jegou et al. 2010, with the normalisations
 * of Arandjelovic and Zisserman, "All about VLAD", 2013) over a k-means
 * codebook of MatchNet's own local descriptors.
 *
 * Plain C on float arrays, no engine or database, and one image at a
 * time, so that a caller that reads descriptors from disk never holds
 * more than one image's:
 *
 *   retrieval_sample s;                       pass 1: learn the codebook
 *   retrieval_sample_init(&s, dim, RETRIEVAL_SAMPLE_SIZE, seed, ...);
 *   for each image: retrieval_sample_add(&s, desc, n);
 *   retrieval_codebook_learn(s.v, s.n, dim, RETRIEVAL_WORDS, seed, &cb, ...);
 *   (or retrieval_codebook_load(path, &cb, ...))
 *   for each image: retrieval_vlad(&cb, desc, n, global);   pass 2
 *
 * Two global descriptors are compared by their dot product (cosine: each
 * is unit length, or zero for an image without descriptors).
 *
 * Functions that fail return -1 with a one-line reason in err.
 */
#ifndef MATCHNET_COLMAP_RETRIEVAL_H
#define MATCHNET_COLMAP_RETRIEVAL_H

#include <stddef.h>
#include <stdint.h>

/* Codebook words when matchnet-colmap learns one. */
#define RETRIEVAL_WORDS 64
/* Local descriptors sampled to learn a codebook (512 a word). */
#define RETRIEVAL_SAMPLE_SIZE 32768
/* The sampling and k-means seed: the same images give the same codebook. */
#define RETRIEVAL_SEED 0x4d4e564c4144ULL

/* k cluster centres of dim floats (k x dim, row-major), caller-owned. */
typedef struct retrieval_codebook {
    size_t k, dim;
    float *centres;
} retrieval_codebook;

/* A uniform random sample of at most cap descriptors from a stream of
 * images (reservoir sampling): n of them in v (n x dim). */
typedef struct retrieval_sample {
    size_t dim, cap, n;
    uint64_t seen, rng;
    float *v;
} retrieval_sample;

/** An empty sample of at most cap descriptors of dim floats. 0 or -1. */
int retrieval_sample_init(retrieval_sample *s, size_t dim, size_t cap, uint64_t seed, char *err, size_t errlen);

/** Offer one image's n descriptors (n x dim floats, read only) to the
 *  sample. Deterministic for a given seed and order of calls. */
void retrieval_sample_add(retrieval_sample *s, const float *desc, size_t n);

/** Free the sample's memory; a zeroed struct is accepted. */
void retrieval_sample_free(retrieval_sample *s);

/**
 * Learn k centres from the n descriptors x (n x dim floats) by k-means
 * (k-means++ seeding, then Lloyd iterations until no assignment changes,
 * at most 30; a word left empty takes the descriptor farthest from its
 * centre). With fewer than k descriptors, n words. Deterministic for a
 * seed. 0 with *out filled (free with retrieval_codebook_free()), or -1.
 */
int retrieval_codebook_learn(const float *x, size_t n, size_t dim, size_t k, uint64_t seed, retrieval_codebook *out,
                             char *err, size_t errlen);

/**
 * Save the codebook to path (whole or not at all). The format, all
 * little-endian:
 *   bytes 0-7    magic "MNCODEBK"
 *   bytes 8-11   uint32 version, 1
 *   bytes 12-15  uint32 k, words (1 to 65536)
 *   bytes 16-19  uint32 dim, floats a word (1 to 65536)
 *   bytes 20-23  uint32 0 (reserved)
 *   then k x dim float32, word by word; nothing after.
 * 0 or -1.
 */
int retrieval_codebook_save(const retrieval_codebook *cb, const char *path, char *err, size_t errlen);

/** Load a codebook saved by retrieval_codebook_save(), checking its magic,
 *  version, sizes against the file's length and that every value is
 *  finite. 0 with *out filled, or -1 (out zeroed). */
int retrieval_codebook_load(const char *path, retrieval_codebook *out, char *err, size_t errlen);

/** Free the centres; a zeroed struct is accepted. */
void retrieval_codebook_free(retrieval_codebook *cb);

/** The global descriptor's length: k x dim floats. */
size_t retrieval_global_dim(const retrieval_codebook *cb);

/**
 * One image's VLAD vector from its n local descriptors (n x dim floats):
 * each descriptor's residual to its nearest word summed per word, then a
 * signed square root of every value, each word's block scaled to unit
 * length (intra-normalisation) and the whole to unit length. out:
 * retrieval_global_dim() floats, written (all zero when n is 0).
 */
void retrieval_vlad(const retrieval_codebook *cb, const float *desc, size_t n, float *out);

#endif /* MATCHNET_COLMAP_RETRIEVAL_H */
