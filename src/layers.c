/*
 * layers.c - convolution, max-pooling, fully connected and L2 layers.
 *
 * Each layer has a fast version and a plain reference loop; tests compare
 * them. The fast tower keeps a chunk of n images in [C][N][H][W] layout so
 * one im2col matrix and one sgemm cover the whole chunk: the matrix product
 * then has n * H * W columns instead of H * W, which keeps BLAS efficient
 * on the 16x16 layers.
 */
#include "layers.h"

#include "common.h"
#include "kernels/gemm.h"

#include <float.h>
#include <math.h>
#include <string.h>

static void mn_bias_relu_rows(float *out, int rows, size_t cols, const float *bias, int relu)
{
    for (int r = 0; r < rows; r++) {
        float *o = out + (size_t)r * cols, b = bias[r];
        if (relu) {
            for (size_t i = 0; i < cols; i++) {
                float v = o[i] + b;
                o[i] = v > 0.0f ? v : 0.0f;
            }
        } else {
            for (size_t i = 0; i < cols; i++)
                o[i] += b;
        }
    }
}

/* col[(ci*k + ky)*k + kx][img][oy][ox] = in[ci][img][oy*s - pad + ky][ox*s - pad + kx] or 0. */
static void mn_im2col(const mn_layer *l, int n, const float *in, float *col)
{
    const int k = l->kernel, s = l->stride, pad = l->pad;
    const int H = l->in_h, W = l->in_w, OH = l->out_h, OW = l->out_w;
    const size_t ncols = (size_t)n * OH * OW;
    for (int ci = 0; ci < l->in_c; ci++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(ci * k + ky) * k + kx) * ncols;
                /* Output columns whose input column is inside the image. */
                int ox0 = 0, ox1 = OW;
                while (ox0 < OW && ox0 * s - pad + kx < 0)
                    ox0++;
                while (ox1 > ox0 && (ox1 - 1) * s - pad + kx >= W)
                    ox1--;
                for (int img = 0; img < n; img++) {
                    const float *src = in + ((size_t)ci * n + img) * H * W;
                    for (int oy = 0; oy < OH; oy++) {
                        float *dst = row + ((size_t)img * OH + oy) * OW;
                        int iy = oy * s - pad + ky;
                        if (iy < 0 || iy >= H) {
                            memset(dst, 0, sizeof(float) * (size_t)OW);
                            continue;
                        }
                        const float *srow = src + (size_t)iy * W;
                        for (int ox = 0; ox < ox0; ox++)
                            dst[ox] = 0.0f;
                        if (s == 1) {
                            memcpy(dst + ox0, srow + ox0 - pad + kx, sizeof(float) * (size_t)(ox1 - ox0));
                        } else {
                            for (int ox = ox0; ox < ox1; ox++)
                                dst[ox] = srow[ox * s - pad + kx];
                        }
                        for (int ox = ox1; ox < OW; ox++)
                            dst[ox] = 0.0f;
                    }
                }
            }
}

void mn_conv_fast(const mn_layer *l, int n, const float *in, float *col, float *pack, float *out)
{
    const int K = l->in_c * l->kernel * l->kernel;
    const size_t ncols = (size_t)n * l->out_h * l->out_w;
    const float *b = in;
    if (!(l->kernel == 1 && l->stride == 1 && l->pad == 0)) {
        mn_im2col(l, n, in, col);
        b = col;
    }
    mn_gemm_stable(l->out_c, (int)ncols, K, l->weight, K, b, (int)ncols, out, (int)ncols, pack);
    mn_bias_relu_rows(out, l->out_c, ncols, l->bias, l->relu);
}

void mn_conv_ref(const mn_layer *l, const float *in, float *out)
{
    const int k = l->kernel;
    for (int co = 0; co < l->out_c; co++)
        for (int oy = 0; oy < l->out_h; oy++)
            for (int ox = 0; ox < l->out_w; ox++) {
                float acc = l->bias[co];
                for (int ci = 0; ci < l->in_c; ci++)
                    for (int ky = 0; ky < k; ky++) {
                        int iy = oy * l->stride - l->pad + ky;
                        if (iy < 0 || iy >= l->in_h)
                            continue;
                        for (int kx = 0; kx < k; kx++) {
                            int ix = ox * l->stride - l->pad + kx;
                            if (ix < 0 || ix >= l->in_w)
                                continue;
                            acc += l->weight[((size_t)(co * l->in_c + ci) * k + ky) * k + kx] *
                                   in[((size_t)ci * l->in_h + iy) * l->in_w + ix];
                        }
                    }
                if (l->relu && acc < 0.0f)
                    acc = 0.0f;
                out[((size_t)co * l->out_h + oy) * l->out_w + ox] = acc;
            }
}

/* Pool one H x W plane. Windows are clipped at the bottom and right edges
 * (they only overhang there in ceil mode). Max over rows first, then over
 * the k rows, so each input is read about twice instead of k*k times. */
static void mn_pool_plane(const mn_layer *l, const float *in, float *out, float *rowmax)
{
    const int k = l->kernel, s = l->stride, H = l->in_h, W = l->in_w, OH = l->out_h, OW = l->out_w;
    for (int oy = 0; oy < OH; oy++) {
        int y0 = oy * s, y1 = y0 + k < H ? y0 + k : H;
        for (int ox = 0; ox < OW; ox++)
            rowmax[ox] = -FLT_MAX;
        for (int y = y0; y < y1; y++) {
            const float *r = in + (size_t)y * W;
            for (int ox = 0; ox < OW; ox++) {
                int x0 = ox * s, x1 = x0 + k < W ? x0 + k : W;
                float m = rowmax[ox];
                for (int x = x0; x < x1; x++)
                    m = r[x] > m ? r[x] : m;
                rowmax[ox] = m;
            }
        }
        memcpy(out + (size_t)oy * OW, rowmax, sizeof(float) * (size_t)OW);
    }
}

void mn_maxpool_fast(const mn_layer *l, int n, const float *in, float *out)
{
    float rowmax[MN_MAX_PATCH];
    const size_t ip = (size_t)l->in_h * l->in_w, op = (size_t)l->out_h * l->out_w;
    for (size_t p = 0; p < (size_t)l->in_c * n; p++)
        mn_pool_plane(l, in + p * ip, out + p * op, rowmax);
}

void mn_maxpool_ref(const mn_layer *l, const float *in, float *out)
{
    for (int c = 0; c < l->in_c; c++)
        for (int oy = 0; oy < l->out_h; oy++)
            for (int ox = 0; ox < l->out_w; ox++) {
                float m = -FLT_MAX;
                for (int ky = 0; ky < l->kernel; ky++)
                    for (int kx = 0; kx < l->kernel; kx++) {
                        int iy = oy * l->stride + ky, ix = ox * l->stride + kx;
                        if (iy < l->in_h && ix < l->in_w) {
                            float v = in[((size_t)c * l->in_h + iy) * l->in_w + ix];
                            if (v > m)
                                m = v;
                        }
                    }
                out[((size_t)c * l->out_h + oy) * l->out_w + ox] = m;
            }
}

void mn_fc_fast(const mn_layer *l, int n, const float *in, int ld_in, float *out, float *pack)
{
    /* The row count follows the batch: the own kernel (mn_gemm_stable), on W^T. */
    mn_gemm_stable(n, l->out_c, l->in_c, in, ld_in, l->weight_t, l->out_c, out, l->out_c, pack);
    for (int r = 0; r < n; r++) {
        float *o = out + (size_t)r * l->out_c;
        for (int j = 0; j < l->out_c; j++) {
            float v = o[j] + l->bias[j];
            o[j] = l->relu && v < 0.0f ? 0.0f : v;
        }
    }
}

void mn_fc_ref(const mn_layer *l, int n, const float *in, int ld_in, float *out)
{
    for (int r = 0; r < n; r++)
        for (int j = 0; j < l->out_c; j++) {
            const float *x = in + (size_t)r * ld_in, *w = l->weight + (size_t)j * l->in_c;
            float acc = 0.0f;
            for (int i = 0; i < l->in_c; i++)
                acc += w[i] * x[i];
            acc += l->bias[j];
            out[(size_t)r * l->out_c + j] = l->relu && acc < 0.0f ? 0.0f : acc;
        }
}

void mn_l2norm_rows(int n, int dim, float *x)
{
    for (int r = 0; r < n; r++) {
        float *v = x + (size_t)r * dim;
        double ss = 0.0;
        for (int i = 0; i < dim; i++)
            ss += (double)v[i] * v[i];
        double norm = sqrt(ss);
        float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
        for (int i = 0; i < dim; i++)
            v[i] *= inv;
    }
}

/* ---- shapes and prepared weights ---- */

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

/* Every fully connected layer runs on the own kernels (the determinism rule
 * in kernels/gemm.h: its row count follows the batch), which take B
 * untransposed, so keep a [in][out] copy of each weight. Transposed in
 * 32 x 32 tiles: row by row, the 8192 x 1024 metric layer of the original
 * model took about 95 ms. */
mn_status mn_fc_prepare(const char *fn, mn_model *m)
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
