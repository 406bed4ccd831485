/*
 * model_parse.c - reading MatchNet model files (.mnw): mn_model_parse in
 * steps (header, layers, tensors, weights, prepare).
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
#include "model_format.h"

#include "common.h"
#include "crc32.h"
#include "layers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- layers ---- */

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

/* ---- mn_model_parse, in steps ---- */

/* Here, beside the one place models are made (step 1). */
void mn_model_free(mn_model *model)
{
    if (!model)
        return;
    mn_free(model->weights);
    mn_free(model->weights_t);
    mn_free(model->weights_p);
    mn_free(model->weights_wino);
    mn_free(model->weights_bf);
    mn_free(model);
}


/* Step 1: magic, version, size, checksum, counts and the input, then a new
 * model with the header's fields. */
static mn_status mn_parse_header(const char *fn, const uint8_t *d, size_t size, mn_header *h, mn_model **out)
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

    h->header = rd32(d + 12), h->nl = rd32(d + 24), h->nm = rd32(d + 28), h->nt = rd32(d + 32);
    if (rd32(d + 36) != 0)
        return mn_error(MN_ERR_UNSUPPORTED, fn, "unknown flags %08x", rd32(d + 36));
    if (h->nl < 1 || h->nl > MN_MAX_LAYERS)
        return mn_error(MN_ERR_FORMAT, fn, "%u tower layers, expected 1..%d", h->nl, MN_MAX_LAYERS);
    if (h->nm < 1 || h->nm > MN_MAX_METRIC)
        return mn_error(MN_ERR_FORMAT, fn, "%u metric layers, expected 1..%d", h->nm, MN_MAX_METRIC);
    if (h->nt > 2 * (MN_MAX_LAYERS + MN_MAX_METRIC))
        return mn_error(MN_ERR_FORMAT, fn, "%u tensors is more than any valid model has", h->nt);
    uint64_t records_end = MN_HEADER_FIXED + (uint64_t)MN_LAYER_RECORD * (h->nl + h->nm) +
                           (uint64_t)MN_TENSOR_RECORD * h->nt;
    if (h->header < records_end || h->header > size - 4)
        return mn_error(MN_ERR_FORMAT, fn, "header size %u outside %llu..%zu", h->header,
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
    memcpy(m->name, d + 40, MN_NAME_LEN);
    m->in_c = (int)in_c;
    m->patch = (int)patch;
    m->norm_mean = mean;
    m->norm_div = div;
    m->n_layers = (int)h->nl;
    m->n_metric = (int)h->nm;
    *out = m;
    return MN_OK;
}

/* Step 2: the layer records, shapes flowing through the tower, then the
 * metric network on [a, b]; the model's dimensions and buffer sizes. */
static mn_status mn_parse_layers(const char *fn, const uint8_t *d, mn_model *m)
{
    mn_status st;
    int c = m->in_c, h = m->patch, w = m->patch, seen_vector = 0;
    size_t max_act = (size_t)c * h * w, max_col = 0;
    const uint8_t *rec = d + MN_HEADER_FIXED;
    for (int i = 0; i < m->n_layers; i++, rec += MN_LAYER_RECORD) {
        mn_layer *l = &m->layers[i];
        if ((st = mn_parse_layer(fn, "tower", i, rec, c, h, w, 0, l)) != MN_OK)
            return st;
        if ((l->type == MN_LAYER_CONV || l->type == MN_LAYER_MAXPOOL) && seen_vector)
            return mn_error(MN_ERR_FORMAT, fn, "tower layer %d (%s) follows an fc or l2norm layer", i,
                            mn_layer_name(l->type));
        if (l->type == MN_LAYER_FC || l->type == MN_LAYER_L2NORM) {
            if (!seen_vector)
                m->feature_dim = (size_t)c * h * w;
            seen_vector = 1;
        }
        if (l->type == MN_LAYER_CONV) {
            size_t col = (size_t)l->in_c * l->kernel * l->kernel * l->out_h * l->out_w;
            if (col > MN_MAX_ACTIVATION * 4)
                return mn_error(MN_ERR_FORMAT, fn, "tower layer %d (conv): im2col of %zu floats is too large", i,
                                col);
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

    c = (int)(2 * m->desc_dim);
    if (m->desc_dim > MN_MAX_FC)
        return mn_error(MN_ERR_FORMAT, fn, "descriptor dimension %zu is too large for the metric network",
                        m->desc_dim);
    size_t max_metric = 2;
    for (int i = 0; i < m->n_metric; i++, rec += MN_LAYER_RECORD) {
        mn_layer *l = &m->metric[i];
        if ((st = mn_parse_layer(fn, "metric", i, rec, c, 1, 1, 1, l)) != MN_OK)
            return st;
        c = l->out_c;
        if ((size_t)c > max_metric)
            max_metric = (size_t)c;
    }
    if (c != 2 || m->metric[m->n_metric - 1].relu)
        return mn_error(MN_ERR_FORMAT, fn, "last metric layer must have 2 outputs and no ReLU, found %d%s", c,
                        m->metric[m->n_metric - 1].relu ? " with ReLU" : "");
    m->proj_dim = (size_t)m->metric[0].out_c;
    m->max_metric = max_metric;
    return MN_OK;
}

mn_status mn_model_parse(const char *fn, const uint8_t *d, size_t size, mn_model **out)
{
    mn_header hd;
    mn_model *m = NULL;
    mn_status st = mn_parse_header(fn, d, size, &hd, &m);
    if (st != MN_OK)
        return st;
    st = mn_parse_layers(fn, d, m);
    if (st == MN_OK) /* steps 3 and 4 */
        st = mn_model_tensors(fn, d, size, &hd, m);
    /* Step 5: what the layers prepare once (layers.h). */
    if (st == MN_OK)
        st = mn_fc_prepare(fn, m);
    if (st == MN_OK)
        st = mn_winograd_prepare(fn, m);
    if (st == MN_OK)
        st = mn_conv_prepare(fn, m);
    if (st != MN_OK) {
        mn_model_free(m);
        return st;
    }
    *out = m;
    return MN_OK;
}
