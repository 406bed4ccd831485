/*
 * model_io.c - reading MatchNet model files (.mnw).
 *
 * File layout, format version 1. All integers are unsigned little-endian,
 * floats are IEEE-754 little-endian. Offsets are from the start of the file.
 *
 *   offset size  field
 *   0      8     magic "MATCHNET"
 *   8      4     format version (1)
 *   12     4     header size H: bytes before the first tensor's data
 *   16     8     file size in bytes, checksum included
 *   24     4     L: number of tower layer records (1..32)
 *   28     4     M: number of metric layer records (1..16)
 *   32     4     T: number of tensor records (must equal 2 x the number of
 *                conv and fc layers, tower and metric)
 *   36     4     flags (0)
 *   40     64    model name, UTF-8, NUL-terminated, NUL-padded
 *   104    4     input channels (1)
 *   108    4     patch size P (input is P x P)
 *   112    4     f32 normalisation mean   (input = (pixel - mean) / divisor)
 *   116    4     f32 normalisation divisor (> 0)
 *   120    8     reserved (0)
 *   128    32L   tower layer records, in execution order
 *   ...    32M   metric layer records, in execution order
 *   ...    64T   tensor records
 *   H      ...   tensor data
 *   end-4  4     CRC-32 (IEEE 802.3, as zlib's crc32) of every byte before it
 *
 * Layer record (32 bytes): u32 type, then 7 u32 parameters, unused ones 0.
 *   type 1 conv:    out_channels, kernel, stride, pad, relu (0/1)
 *   type 2 maxpool: kernel, stride, pad (must be 0), ceil_mode (1 = Caffe,
 *                   output size rounded up; 0 = floor, PyTorch's default)
 *   type 3 fc:      out_features, relu (0/1)
 *   type 4 l2norm:  (none) - divides each vector by max(||x||, 1e-12)
 * Tower layers take a P x P x in_channels image; conv and maxpool layers come
 * before any fc or l2norm layer; the output of the last conv/maxpool layer is
 * flattened in (channel, row, column) order: its size is the "feature
 * dimension", and the tower's final output the "descriptor dimension" D.
 * Metric layers are all fc; the first takes 2D inputs ([a, b] concatenated),
 * the last has 2 outputs and no ReLU; the match probability is
 * softmax(output)[1].
 *
 * Tensor record (64 bytes): char name[24] (NUL-padded, informative only),
 * u32 dtype (0 = f32, 1 = f16), u32 ndim (1..4), u32 dims[4] (unused 0),
 * u64 offset of the data (>= H, multiple of 4), u64 size of the data in bytes.
 * Tensors appear in layer order, tower then metric, each conv or fc layer
 * contributing its weight (conv: [out, in, k, k]; fc: [out, in], PyTorch
 * layout) then its bias ([out]).
 *
 * The loader checks, in this order: magic, version, declared against actual
 * file size, checksum, then every record and every tensor's shape and extent
 * against the architecture, and reports the first problem found.
 */
#define _GNU_SOURCE /* dladdr */
#include "internal.h"

#include <dlfcn.h>

#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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
#define MN_MAX_TOTAL_WEIGHTS (1ull << 30)
#define MN_MAX_ACTIVATION (1ull << 26)
/* Largest file: every weight at 4 bytes plus generous room for headers. */
#define MN_MAX_FILE_SIZE (4 * MN_MAX_TOTAL_WEIGHTS + (1ull << 20))

/* ---- CRC-32 ---- */

/* Slicing-by-8: eight table lookups per 8 bytes, about 3x the speed of the
 * byte-at-a-time loop, which matters for 40 MB model files. */
static uint32_t mn_crc_table[8][256];
static pthread_once_t mn_crc_once = PTHREAD_ONCE_INIT;

static void mn_crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        mn_crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            mn_crc_table[t][i] = (mn_crc_table[t - 1][i] >> 8) ^ mn_crc_table[0][mn_crc_table[t - 1][i] & 0xFF];
}

uint32_t mn_crc32(const void *data, size_t size)
{
    pthread_once(&mn_crc_once, mn_crc_init);
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (; size >= 8; size -= 8, p += 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = mn_crc_table[7][lo & 0xFF] ^ mn_crc_table[6][(lo >> 8) & 0xFF] ^ mn_crc_table[5][(lo >> 16) & 0xFF] ^
            mn_crc_table[4][lo >> 24] ^ mn_crc_table[3][hi & 0xFF] ^ mn_crc_table[2][(hi >> 8) & 0xFF] ^
            mn_crc_table[1][(hi >> 16) & 0xFF] ^ mn_crc_table[0][hi >> 24];
    }
    while (size--)
        c = mn_crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---- little-endian readers ---- */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static float rdf32(const uint8_t *p)
{
    uint32_t u = rd32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

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

/* ---- parsing ---- */

static const char *mn_layer_name(mn_layer_type t)
{
    switch (t) {
    case MN_LAYER_CONV: return "conv";
    case MN_LAYER_MAXPOOL: return "maxpool";
    case MN_LAYER_FC: return "fc";
    case MN_LAYER_L2NORM: return "l2norm";
    }
    return "?";
}

int mn_pool_out_size(int in, int kernel, int stride, int pad, int ceil_mode)
{
    int span = in + 2 * pad - kernel;
    if (span < 0)
        return 0;
    int out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    /* Caffe and PyTorch: the last window must start inside the input. */
    if (ceil_mode && (out - 1) * stride >= in + pad)
        out--;
    return out;
}

/* Parse one layer record and resolve its output shape from (c, h, w).
 * Returns MN_OK or an error with the message already set. */
static mn_status mn_parse_layer(const char *fn, const char *where, int idx, const uint8_t *rec,
                                int c, int h, int w, int metric, mn_layer *l)
{
    uint32_t type = rd32(rec), p[7];
    for (int i = 0; i < 7; i++)
        p[i] = rd32(rec + 4 + 4 * i);
    memset(l, 0, sizeof *l);
    l->type = (mn_layer_type)type;
    l->in_c = c;
    l->in_h = h;
    l->in_w = w;
    int used;
    switch (type) {
    case MN_LAYER_CONV:
    case MN_LAYER_MAXPOOL:
        used = type == MN_LAYER_CONV ? 5 : 4;
        break;
    case MN_LAYER_FC: used = 2; break;
    case MN_LAYER_L2NORM: used = 0; break;
    default:
        return mn_error(MN_ERR_FORMAT, fn, "%s layer %d: unknown layer type %u", where, idx, type);
    }
    if (metric && type != MN_LAYER_FC)
        return mn_error(MN_ERR_FORMAT, fn, "%s layer %d: metric layers must be fc, found %s", where,
                        idx, mn_layer_name(l->type));
    for (int i = used; i < 7; i++)
        if (p[i] != 0)
            return mn_error(MN_ERR_FORMAT, fn, "%s layer %d (%s): unused parameter %d is %u, expected 0",
                            where, idx, mn_layer_name(l->type), i, p[i]);
    if (type == MN_LAYER_CONV) {
        if (p[0] < 1 || p[0] > MN_MAX_CHANNELS)
            return mn_error(MN_ERR_FORMAT, fn, "%s layer %d (conv): %u output channels, expected 1..%d",
                            where, idx, p[0], MN_MAX_CHANNELS);
        if (p[1] < 1 || p[1] > MN_MAX_KERNEL || p[2] < 1 || p[2] > MN_MAX_STRIDE || p[3] >= p[1] || p[4] > 1)
            return mn_error(MN_ERR_FORMAT, fn,
                            "%s layer %d (conv): kernel %u, stride %u, pad %u, relu %u out of range",
                            where, idx, p[1], p[2], p[3], p[4]);
        l->out_c = (int)p[0];
        l->kernel = (int)p[1];
        l->stride = (int)p[2];
        l->pad = (int)p[3];
        l->relu = (int)p[4];
        l->out_h = (h + 2 * l->pad - l->kernel) / l->stride + 1;
        l->out_w = (w + 2 * l->pad - l->kernel) / l->stride + 1;
        if (h + 2 * l->pad < l->kernel || w + 2 * l->pad < l->kernel)
            l->out_h = l->out_w = 0;
    } else if (type == MN_LAYER_MAXPOOL) {
        if (p[0] < 1 || p[0] > MN_MAX_KERNEL || p[1] < 1 || p[1] > MN_MAX_STRIDE || p[3] > 1)
            return mn_error(MN_ERR_FORMAT, fn,
                            "%s layer %d (maxpool): kernel %u, stride %u, ceil_mode %u out of range",
                            where, idx, p[0], p[1], p[3]);
        if (p[2] != 0)
            return mn_error(MN_ERR_UNSUPPORTED, fn, "%s layer %d (maxpool): padding %u is not supported",
                            where, idx, p[2]);
        l->kernel = (int)p[0];
        l->stride = (int)p[1];
        l->ceil_mode = (int)p[3];
        l->out_c = c;
        l->out_h = mn_pool_out_size(h, l->kernel, l->stride, 0, l->ceil_mode);
        l->out_w = mn_pool_out_size(w, l->kernel, l->stride, 0, l->ceil_mode);
    } else if (type == MN_LAYER_FC) {
        if (p[0] < 1 || p[0] > MN_MAX_FC || p[1] > 1)
            return mn_error(MN_ERR_FORMAT, fn, "%s layer %d (fc): %u outputs, relu %u out of range",
                            where, idx, p[0], p[1]);
        l->in_c = c * h * w;
        l->in_h = l->in_w = 1;
        l->out_c = (int)p[0];
        l->out_h = l->out_w = 1;
        l->relu = (int)p[1];
    } else {
        l->in_c = c * h * w;
        l->in_h = l->in_w = 1;
        l->out_c = l->in_c;
        l->out_h = l->out_w = 1;
    }
    if (l->out_h < 1 || l->out_w < 1)
        return mn_error(MN_ERR_FORMAT, fn, "%s layer %d (%s): input %dx%d is smaller than the kernel",
                        where, idx, mn_layer_name(l->type), h, w);
    if (l->out_h > MN_MAX_PATCH || l->out_w > MN_MAX_PATCH)
        return mn_error(MN_ERR_FORMAT, fn, "%s layer %d (%s): output %dx%d is wider than %d", where, idx,
                        mn_layer_name(l->type), l->out_h, l->out_w, MN_MAX_PATCH);
    if ((uint64_t)l->out_c * (uint64_t)l->out_h * (uint64_t)l->out_w > MN_MAX_ACTIVATION)
        return mn_error(MN_ERR_FORMAT, fn, "%s layer %d (%s): output %dx%dx%d is too large", where, idx,
                        mn_layer_name(l->type), l->out_c, l->out_h, l->out_w);
    return MN_OK;
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

/* Every fully connected layer runs on the own kernels (the determinism rule
 * in internal.h: its row count follows the batch), which take B
 * untransposed, so keep a [in][out] copy of each weight. Transposed in
 * 32 x 32 tiles: row by row, the 8192 x 1024 metric layer of the original
 * model took about 95 ms. */
static mn_status mn_transpose_fc(const char *fn, mn_model *m)
{
    size_t total = 0;
    for (int k = 0; k < m->n_layers + m->n_metric; k++) {
        const mn_layer *l = k < m->n_layers ? &m->layers[k] : &m->metric[k - m->n_layers];
        if (l->type == MN_LAYER_FC)
            total += (size_t)l->in_c * l->out_c;
    }
    if (total == 0)
        return MN_OK;
    m->weights_t = mn_malloc(total * sizeof(float));
    if (!m->weights_t)
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu transposed weights", total);
    float *dst = m->weights_t;
    for (int k = 0; k < m->n_layers + m->n_metric; k++) {
        mn_layer *l = k < m->n_layers ? &m->layers[k] : &m->metric[k - m->n_layers];
        if (l->type != MN_LAYER_FC)
            continue;
        const int O = l->out_c, I = l->in_c;
        for (int o0 = 0; o0 < O; o0 += 32)
            for (int i0 = 0; i0 < I; i0 += 32)
                for (int o = o0; o < O && o < o0 + 32; o++)
                    for (int i = i0; i < I && i < i0 + 32; i++)
                        dst[(size_t)i * O + o] = l->weight[(size_t)o * I + i];
        l->weight_t = dst;
        dst += (size_t)I * O;
    }
    return MN_OK;
}

static mn_status mn_parse(const char *fn, const uint8_t *d, size_t size, mn_model **out)
{
    if (size < MN_HEADER_FIXED + 4)
        return mn_error(MN_ERR_FORMAT, fn, "file is %zu bytes, too short for a model header (%u)", size,
                        MN_HEADER_FIXED + 4);
    if (memcmp(d, "MATCHNET", 8) != 0)
        return mn_error(MN_ERR_FORMAT, fn, "bad magic: not a MatchNet model file (.mnw)");
    uint32_t version = rd32(d + 8);
    if (version != MN_FORMAT_VERSION)
        return mn_error(MN_ERR_VERSION, fn, "file format version %u, this library reads version %u%s",
                        version, MN_FORMAT_VERSION, version > MN_FORMAT_VERSION ? " (newer file)" : "");
    uint64_t declared = rd64(d + 16);
    if (declared != size)
        return mn_error(MN_ERR_FORMAT, fn, "file is %zu bytes but its header says %llu%s", size,
                        (unsigned long long)declared, declared > size ? " (truncated)" : " (trailing data)");
    uint32_t stored_crc = rd32(d + size - 4), crc = mn_crc32(d, size - 4);
    if (stored_crc != crc)
        return mn_error(MN_ERR_CHECKSUM, fn, "checksum mismatch: stored %08x, computed %08x (corrupt file)",
                        stored_crc, crc);

    uint32_t header = rd32(d + 12), nl = rd32(d + 24), nm = rd32(d + 28), nt = rd32(d + 32);
    if (rd32(d + 36) != 0)
        return mn_error(MN_ERR_UNSUPPORTED, fn, "unknown flags %08x", rd32(d + 36));
    if (nl < 1 || nl > MN_MAX_LAYERS)
        return mn_error(MN_ERR_FORMAT, fn, "%u tower layers, expected 1..%d", nl, MN_MAX_LAYERS);
    if (nm < 1 || nm > MN_MAX_METRIC)
        return mn_error(MN_ERR_FORMAT, fn, "%u metric layers, expected 1..%d", nm, MN_MAX_METRIC);
    if (nt > 2 * (MN_MAX_LAYERS + MN_MAX_METRIC))
        return mn_error(MN_ERR_FORMAT, fn, "%u tensors is more than any valid model has", nt);
    uint64_t records_end = MN_HEADER_FIXED + (uint64_t)MN_LAYER_RECORD * (nl + nm) +
                           (uint64_t)MN_TENSOR_RECORD * nt;
    if (header < records_end || header > size - 4)
        return mn_error(MN_ERR_FORMAT, fn, "header size %u outside %llu..%zu", header,
                        (unsigned long long)records_end, size - 4);
    if (rd64(d + 120) != 0)
        return mn_error(MN_ERR_FORMAT, fn, "reserved header bytes 120..127 are not zero");
    if (d[40 + MN_NAME_LEN - 1] != 0)
        return mn_error(MN_ERR_FORMAT, fn, "model name is not NUL-terminated");
    uint32_t in_c = rd32(d + 104), patch = rd32(d + 108);
    float mean = rdf32(d + 112), div = rdf32(d + 116);
    if (in_c != 1)
        return mn_error(MN_ERR_UNSUPPORTED, fn, "%u input channels; only grey (1) is supported", in_c);
    if (patch < 1 || patch > MN_MAX_PATCH)
        return mn_error(MN_ERR_FORMAT, fn, "patch size %u, expected 1..%d", patch, MN_MAX_PATCH);
    if (!isfinite(mean) || !isfinite(div) || !(div > 0))
        return mn_error(MN_ERR_FORMAT, fn, "normalisation mean %g divisor %g is not usable", mean, div);

    mn_model *m = mn_calloc(1, sizeof *m);
    if (!m)
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory");
    mn_status st = MN_OK;
    memcpy(m->name, d + 40, MN_NAME_LEN);
    m->in_c = (int)in_c;
    m->patch = (int)patch;
    m->norm_mean = mean;
    m->norm_div = div;
    m->n_layers = (int)nl;
    m->n_metric = (int)nm;

    /* Tower: shapes flow through the layers. */
    int c = m->in_c, h = m->patch, w = m->patch, seen_vector = 0;
    size_t max_act = (size_t)c * h * w, max_col = 0;
    const uint8_t *rec = d + MN_HEADER_FIXED;
    for (int i = 0; i < m->n_layers; i++, rec += MN_LAYER_RECORD) {
        mn_layer *l = &m->layers[i];
        if ((st = mn_parse_layer(fn, "tower", i, rec, c, h, w, 0, l)) != MN_OK)
            goto fail;
        if ((l->type == MN_LAYER_CONV || l->type == MN_LAYER_MAXPOOL) && seen_vector) {
            st = mn_error(MN_ERR_FORMAT, fn, "tower layer %d (%s) follows an fc or l2norm layer", i,
                          mn_layer_name(l->type));
            goto fail;
        }
        if (l->type == MN_LAYER_FC || l->type == MN_LAYER_L2NORM) {
            if (!seen_vector)
                m->feature_dim = (size_t)c * h * w;
            seen_vector = 1;
        }
        if (l->type == MN_LAYER_CONV) {
            size_t col = (size_t)l->in_c * l->kernel * l->kernel * l->out_h * l->out_w;
            if (col > MN_MAX_ACTIVATION * 4) {
                st = mn_error(MN_ERR_FORMAT, fn, "tower layer %d (conv): im2col of %zu floats is too large", i, col);
                goto fail;
            }
            if (col > max_col)
                max_col = col;
        }
        c = l->out_c;
        h = l->out_h;
        w = l->out_w;
        if ((size_t)c * h * w > max_act)
            max_act = (size_t)c * h * w;
    }
    if (!seen_vector)
        m->feature_dim = (size_t)c * h * w;
    m->desc_dim = (size_t)c * h * w;
    m->max_act = max_act;
    m->max_col = max_col;

    /* Metric: first layer takes [a, b]. */
    c = (int)(2 * m->desc_dim);
    if (m->desc_dim > MN_MAX_FC) {
        st = mn_error(MN_ERR_FORMAT, fn, "descriptor dimension %zu is too large for the metric network",
                      m->desc_dim);
        goto fail;
    }
    size_t max_metric = 2;
    for (int i = 0; i < m->n_metric; i++, rec += MN_LAYER_RECORD) {
        mn_layer *l = &m->metric[i];
        if ((st = mn_parse_layer(fn, "metric", i, rec, c, 1, 1, 1, l)) != MN_OK)
            goto fail;
        c = l->out_c;
        if ((size_t)c > max_metric)
            max_metric = (size_t)c;
    }
    if (c != 2 || m->metric[m->n_metric - 1].relu) {
        st = mn_error(MN_ERR_FORMAT, fn, "last metric layer must have 2 outputs and no ReLU, found %d%s", c,
                      m->metric[m->n_metric - 1].relu ? " with ReLU" : "");
        goto fail;
    }
    m->proj_dim = (size_t)m->metric[0].out_c;
    m->max_metric = max_metric;

    /* Tensors: expected list from the architecture. */
    mn_tensor_expect exp[2 * (MN_MAX_LAYERS + MN_MAX_METRIC)];
    float *slots[2 * (MN_MAX_LAYERS + MN_MAX_METRIC)];
    int owner[2 * (MN_MAX_LAYERS + MN_MAX_METRIC)];
    memset(exp, 0, sizeof exp);
    int ne = 0;
    for (int i = 0; i < m->n_layers + m->n_metric; i++) {
        mn_layer *l = i < m->n_layers ? &m->layers[i] : &m->metric[i - m->n_layers];
        int k = mn_expect_layer(l, exp + ne, slots + ne);
        for (int j = 0; j < k; j++)
            owner[ne + j] = i;
        ne += k;
    }
    if ((int)nt != ne) {
        st = mn_error(MN_ERR_FORMAT, fn, "file has %u tensors, the architecture needs %d", nt, ne);
        goto fail;
    }
    uint64_t total = 0;
    size_t elems[2 * (MN_MAX_LAYERS + MN_MAX_METRIC)];
    const uint8_t *trec = d + MN_HEADER_FIXED + (size_t)MN_LAYER_RECORD * (nl + nm);
    for (int t = 0; t < ne; t++) {
        const uint8_t *r = trec + (size_t)t * MN_TENSOR_RECORD;
        int li = owner[t];
        char where[64];
        mn_tensor_where(m, li, exp[t].what, where, sizeof where);
        uint32_t dtype = rd32(r + 24), ndim = rd32(r + 28), dims[4];
        uint64_t off = rd64(r + 48), nbytes = rd64(r + 56), n = 1;
        for (int k = 0; k < 4; k++)
            dims[k] = rd32(r + 32 + 4 * k);
        if (dtype > 1) {
            st = mn_error(MN_ERR_FORMAT, fn, "%s: unknown data type %u", where, dtype);
            goto fail;
        }
        if (ndim < 1 || ndim > 4) {
            st = mn_error(MN_ERR_FORMAT, fn, "%s: %u dimensions, expected 1..4", where, ndim);
            goto fail;
        }
        int overflow = 0;
        for (uint32_t k = 0; k < ndim; k++) {
            if (dims[k] && n > UINT64_MAX / dims[k])
                overflow = 1;
            n *= dims[k];
        }
        uint64_t esize = dtype == 0 ? 4 : 2;
        if (overflow || n > (1ull << 40) / esize) {
            st = mn_error(MN_ERR_FORMAT, fn, "%s: absurd size (%s elements)", where,
                          overflow ? "over 2^64" : "over 2^40");
            goto fail;
        }
        if (n * esize != nbytes) {
            char ds[64];
            mn_format_dims(ds, sizeof ds, (int)ndim, dims);
            st = mn_error(MN_ERR_FORMAT, fn, "%s: shape %s needs %llu bytes, record declares %llu", where, ds,
                          (unsigned long long)(n * esize), (unsigned long long)nbytes);
            goto fail;
        }
        if (off < header || off % 4 || off > size - 4 || nbytes > size - 4 - off) {
            st = mn_error(MN_ERR_FORMAT, fn, "%s: data at offset %llu, %llu bytes, lies outside %u..%zu",
                          where, (unsigned long long)off, (unsigned long long)nbytes, header, size - 4);
            goto fail;
        }
        int same = (int)ndim == exp[t].ndim;
        for (int k = 0; same && k < exp[t].ndim; k++)
            same = dims[k] == exp[t].dims[k];
        if (!same) {
            char got[64], want[64];
            mn_format_dims(got, sizeof got, (int)ndim, dims);
            mn_format_dims(want, sizeof want, exp[t].ndim, exp[t].dims);
            st = mn_error(MN_ERR_FORMAT, fn, "%s: shape %s, expected %s", where, got, want);
            goto fail;
        }
        elems[t] = (size_t)n;
        total += n;
    }
    if (total > MN_MAX_TOTAL_WEIGHTS) {
        st = mn_error(MN_ERR_FORMAT, fn, "%llu weights in all is more than supported",
                      (unsigned long long)total);
        goto fail;
    }
    /* 16 floats of padding between tensors keeps each one 64-byte aligned. */
    size_t alloc = 0;
    for (int t = 0; t < ne; t++)
        alloc += (elems[t] + 15) / 16 * 16;
    m->weights = mn_malloc(alloc * sizeof(float) + 64);
    if (!m->weights) {
        st = mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu weights", alloc);
        goto fail;
    }
    float *base = (float *)(((uintptr_t)m->weights + 63) & ~(uintptr_t)63), *dst = base;
    for (int t = 0; t < ne; t++) {
        const uint8_t *r = trec + (size_t)t * MN_TENSOR_RECORD;
        const uint8_t *src = d + rd64(r + 48);
        if (rd32(r + 24) == 0) {
            for (size_t k = 0; k < elems[t]; k++)
                dst[k] = rdf32(src + 4 * k);
        } else {
            for (size_t k = 0; k < elems[t]; k++)
                dst[k] = mn_half_to_float((uint16_t)(src[2 * k] | src[2 * k + 1] << 8));
        }
        for (size_t k = 0; k < elems[t]; k++) {
            if (!isfinite(dst[k])) {
                char where[64];
                mn_tensor_where(m, owner[t], exp[t].what, where, sizeof where);
                st = mn_error(MN_ERR_FORMAT, fn, "%s: element %zu is not finite", where, k);
                goto fail;
            }
        }
        *exp[t].dst = dst;
        dst += (elems[t] + 15) / 16 * 16;
    }
    for (int t = 0; t < ne; t += 2) {
        int li = owner[t];
        mn_layer *l = li < m->n_layers ? &m->layers[li] : &m->metric[li - m->n_layers];
        l->weight = slots[t];
        l->bias = slots[t + 1];
    }
    if ((st = mn_transpose_fc(fn, m)) != MN_OK)
        goto fail;
    if ((st = mn_winograd_prepare(fn, m)) != MN_OK)
        goto fail;
    *out = m;
    return MN_OK;
fail:
    mn_model_free(m);
    return st;
}

mn_status mn_model_load_memory(const void *data, size_t size, mn_model **out)
{
    static const char fn[] = "mn_model_load_memory";
    if (!out)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!data)
        return mn_error(MN_ERR_INVALID_ARGUMENT, fn, "data is NULL");
    return mn_parse(fn, data, size, out);
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
    st = mn_parse(fn, buf, len, out);
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

void mn_model_free(mn_model *model)
{
    if (!model)
        return;
    mn_free(model->weights);
    mn_free(model->weights_t);
    mn_free(model->weights_wino);
    mn_free(model);
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
