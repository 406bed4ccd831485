/*
 * model_format.h - the .mnw format's constants and readers, shared by the
 * two halves of the parser (model_parse.c: header and layer records, the
 * format's description; model_tensors.c: tensor records and weights).
 */
#ifndef MN_MODEL_FORMAT_H
#define MN_MODEL_FORMAT_H

#include "model.h"

#include <stdint.h>
#include <string.h>

#define MN_FORMAT_VERSION 1u
#define MN_HEADER_FIXED 128u
#define MN_LAYER_RECORD 32u
#define MN_TENSOR_RECORD 64u
/* Sanity bounds: far beyond any MatchNet variant, small enough that no
 * product of them overflows 64 bits. */
#define MN_MAX_CHANNELS 4096
#define MN_MAX_KERNEL 15
#define MN_MAX_STRIDE 8
#define MN_MAX_FC 65536
#define MN_MAX_ACTIVATION (1ull << 26)

/* ---- little-endian readers ---- */

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static inline float rdf32(const uint8_t *p)
{
    uint32_t u = rd32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* What the fixed header says. */
typedef struct mn_header {
    uint32_t header, nl, nm, nt;
} mn_header;

static inline const char *mn_layer_name(mn_layer_type t)
{
    switch (t) {
    case MN_LAYER_CONV: return "conv";
    case MN_LAYER_MAXPOOL: return "maxpool";
    case MN_LAYER_FC: return "fc";
    case MN_LAYER_L2NORM: return "l2norm";
    }
    return "?";
}

/* Steps 3 and 4 of mn_model_parse (model_tensors.c): every tensor record
 * against the architecture (type, shape, extent), then the weights into one
 * aligned block, f16 widened, every value finite, and each layer's weight
 * and bias pointers. */
mn_status mn_model_tensors(const char *fn, const uint8_t *d, size_t size, const mn_header *hd, mn_model *m);

#endif
