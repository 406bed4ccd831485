/*
 * model_tensors.c - the tensor records and weights of a .mnw file (steps 3
 * and 4 of mn_model_parse; the format is described in model_parse.c).
 */
#include "model_format.h"

#include "common.h"

#include <math.h>
#include <stdio.h>

#define MN_MAX_TENSORS (2 * (MN_MAX_LAYERS + MN_MAX_METRIC))

float mn_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            u = sign | exp << 23 | (man & 0x3FF) << 13;
        }
    } else if (exp == 31) {
        u = sign | 0x7F800000u | man << 13;
    } else {
        u = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* "tower layer 3 (conv) weight" / "metric layer 0 (fc) bias": where a tensor
 * belongs, for messages. li counts tower layers then metric layers. */
static void mn_tensor_where(const mn_model *m, int li, const char *what, char *buf, size_t len)
{
    if (li < m->n_layers)
        snprintf(buf, len, "tower layer %d (%s) %s", li, mn_layer_name(m->layers[li].type), what);
    else
        snprintf(buf, len, "metric layer %d (fc) %s", li - m->n_layers, what);
}

typedef struct mn_tensor_expect {
    const char *what;  /* "tower layer 3 (conv) weight" */
    int ndim;
    uint32_t dims[4];
    float **dst;       /* where the pointer into model->weights goes */
} mn_tensor_expect;

static void mn_format_dims(char *buf, size_t len, int ndim, const uint32_t *dims)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ",%u" : "%u", dims[i]);
    if (o < len)
        snprintf(buf + o, len - o, "]");
}

/* Expected tensors of one layer: weight then bias. */
static int mn_expect_layer(mn_layer *l, mn_tensor_expect *e, float **slots)
{
    if (l->type == MN_LAYER_CONV) {
        e[0].ndim = 4;
        e[0].dims[0] = (uint32_t)l->out_c;
        e[0].dims[1] = (uint32_t)l->in_c;
        e[0].dims[2] = e[0].dims[3] = (uint32_t)l->kernel;
    } else if (l->type == MN_LAYER_FC) {
        e[0].ndim = 2;
        e[0].dims[0] = (uint32_t)l->out_c;
        e[0].dims[1] = (uint32_t)l->in_c;
    } else {
        return 0;
    }
    e[0].what = "weight";
    e[1].what = "bias";
    e[1].ndim = 1;
    e[1].dims[0] = (uint32_t)l->out_c;
    e[0].dst = &slots[0];
    e[1].dst = &slots[1];
    return 2;
}


/* The tensors the architecture needs, in file order (step 3's plan). */
typedef struct mn_tensor_plan {
    int n;
    mn_tensor_expect exp[MN_MAX_TENSORS];
    float *slots[MN_MAX_TENSORS];
    int owner[MN_MAX_TENSORS]; /* layer index, tower then metric */
    size_t elems[MN_MAX_TENSORS];
} mn_tensor_plan;

/* Step 3: every tensor record against the plan: type, shape, extent. */
static mn_status mn_parse_tensors(const char *fn, const uint8_t *d, size_t size, const mn_header *hd, mn_model *m,
                                  mn_tensor_plan *tp)
{
    memset(tp->exp, 0, sizeof tp->exp);
    tp->n = 0;
    for (int i = 0; i < m->n_layers + m->n_metric; i++) {
        mn_layer *l = i < m->n_layers ? &m->layers[i] : &m->metric[i - m->n_layers];
        int k = mn_expect_layer(l, tp->exp + tp->n, tp->slots + tp->n);
        for (int j = 0; j < k; j++)
            tp->owner[tp->n + j] = i;
        tp->n += k;
    }
    if ((int)hd->nt != tp->n)
        return mn_error(MN_ERR_FORMAT, fn, "file has %u tensors, the architecture needs %d", hd->nt, tp->n);
    uint64_t total = 0;
    const uint8_t *trec = d + MN_HEADER_FIXED + (size_t)MN_LAYER_RECORD * (hd->nl + hd->nm);
    for (int t = 0; t < tp->n; t++) {
        const uint8_t *r = trec + (size_t)t * MN_TENSOR_RECORD;
        const mn_tensor_expect *e = &tp->exp[t];
        char where[64];
        mn_tensor_where(m, tp->owner[t], e->what, where, sizeof where);
        uint32_t dtype = rd32(r + 24), ndim = rd32(r + 28), dims[4];
        uint64_t off = rd64(r + 48), nbytes = rd64(r + 56), n = 1;
        for (int k = 0; k < 4; k++)
            dims[k] = rd32(r + 32 + 4 * k);
        if (dtype > 1)
            return mn_error(MN_ERR_FORMAT, fn, "%s: unknown data type %u", where, dtype);
        if (ndim < 1 || ndim > 4)
            return mn_error(MN_ERR_FORMAT, fn, "%s: %u dimensions, expected 1..4", where, ndim);
        int overflow = 0;
        for (uint32_t k = 0; k < ndim; k++) {
            if (dims[k] && n > UINT64_MAX / dims[k])
                overflow = 1;
            n *= dims[k];
        }
        uint64_t esize = dtype == 0 ? 4 : 2;
        if (overflow || n > (1ull << 40) / esize)
            return mn_error(MN_ERR_FORMAT, fn, "%s: absurd size (%s elements)", where,
                            overflow ? "over 2^64" : "over 2^40");
        if (n * esize != nbytes) {
            char ds[64];
            mn_format_dims(ds, sizeof ds, (int)ndim, dims);
            return mn_error(MN_ERR_FORMAT, fn, "%s: shape %s needs %llu bytes, record declares %llu", where, ds,
                            (unsigned long long)(n * esize), (unsigned long long)nbytes);
        }
        if (off < hd->header || off % 4 || off > size - 4 || nbytes > size - 4 - off)
            return mn_error(MN_ERR_FORMAT, fn, "%s: data at offset %llu, %llu bytes, lies outside %u..%zu", where,
                            (unsigned long long)off, (unsigned long long)nbytes, hd->header, size - 4);
        int same = (int)ndim == e->ndim;
        for (int k = 0; same && k < e->ndim; k++)
            same = dims[k] == e->dims[k];
        if (!same) {
            char got[64], want[64];
            mn_format_dims(got, sizeof got, (int)ndim, dims);
            mn_format_dims(want, sizeof want, e->ndim, e->dims);
            return mn_error(MN_ERR_FORMAT, fn, "%s: shape %s, expected %s", where, got, want);
        }
        tp->elems[t] = (size_t)n;
        total += n;
    }
    if (total > MN_MAX_TOTAL_WEIGHTS)
        return mn_error(MN_ERR_FORMAT, fn, "%llu weights in all is more than supported", (unsigned long long)total);
    return MN_OK;
}

/* Step 4: the weights into one aligned block, f16 widened, every value
 * finite; each layer's weight and bias pointers. */
static mn_status mn_load_weights(const char *fn, const uint8_t *d, const mn_header *hd, mn_model *m,
                                 mn_tensor_plan *tp)
{
    /* 16 floats of padding between tensors keeps each one 64-byte aligned. */
    size_t alloc = 0;
    for (int t = 0; t < tp->n; t++)
        alloc += (tp->elems[t] + 15) / 16 * 16;
    m->weights = mn_malloc(alloc * sizeof(float) + 64);
    if (!m->weights)
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu weights", alloc);
    const uint8_t *trec = d + MN_HEADER_FIXED + (size_t)MN_LAYER_RECORD * (hd->nl + hd->nm);
    float *dst = (float *)(((uintptr_t)m->weights + 63) & ~(uintptr_t)63);
    for (int t = 0; t < tp->n; t++) {
        const uint8_t *r = trec + (size_t)t * MN_TENSOR_RECORD;
        const uint8_t *src = d + rd64(r + 48);
        if (rd32(r + 24) == 0) {
            for (size_t k = 0; k < tp->elems[t]; k++)
                dst[k] = rdf32(src + 4 * k);
        } else {
            for (size_t k = 0; k < tp->elems[t]; k++)
                dst[k] = mn_half_to_float((uint16_t)(src[2 * k] | src[2 * k + 1] << 8));
        }
        for (size_t k = 0; k < tp->elems[t]; k++) {
            if (!isfinite(dst[k])) {
                char where[64];
                mn_tensor_where(m, tp->owner[t], tp->exp[t].what, where, sizeof where);
                return mn_error(MN_ERR_FORMAT, fn, "%s: element %zu is not finite", where, k);
            }
        }
        *tp->exp[t].dst = dst;
        dst += (tp->elems[t] + 15) / 16 * 16;
    }
    for (int t = 0; t < tp->n; t += 2) {
        int li = tp->owner[t];
        mn_layer *l = li < m->n_layers ? &m->layers[li] : &m->metric[li - m->n_layers];
        l->weight = tp->slots[t];
        l->bias = tp->slots[t + 1];
    }
    return MN_OK;
}

mn_status mn_model_tensors(const char *fn, const uint8_t *d, size_t size, const mn_header *hd, mn_model *m)
{
    mn_tensor_plan plan;
    mn_status st = mn_parse_tensors(fn, d, size, hd, m, &plan);
    return st == MN_OK ? mn_load_weights(fn, d, hd, m, &plan) : st;
}
