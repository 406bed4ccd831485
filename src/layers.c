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

/* Bias and ReLU on rows x cols of out (row stride ld). */
static void mn_bias_relu_rows(float *out, int rows, size_t cols, size_t ld, const float *bias, int relu)
{
    for (int r = 0; r < rows; r++) {
        float *o = out + (size_t)r * ld, b = bias[r];
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

/* Columns [c0, c1) of the im2col matrix, as a (c1 - c0)-wide matrix:
 * col[(ci*k + ky)*k + kx][j - c0] for column j = (img, oy, ox) is
 * in[ci][img][oy*s - pad + ky][ox*s - pad + kx], or 0 outside the image. */
static void mn_im2col_cols(const mn_layer *l, int n, const float *in, size_t c0, size_t c1, float *col)
{
    const int k = l->kernel, s = l->stride, pad = l->pad;
    const int H = l->in_h, W = l->in_w, OH = l->out_h, OW = l->out_w;
    const size_t ohw = (size_t)OH * OW, width = c1 - c0;
    for (int ci = 0; ci < l->in_c; ci++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(ci * k + ky) * k + kx) * width;
                /* Output columns whose input column is inside the image. */
                int oxa = 0, oxb = OW;
                while (oxa < OW && oxa * s - pad + kx < 0)
                    oxa++;
                while (oxb > oxa && (oxb - 1) * s - pad + kx >= W)
                    oxb--;
                /* One output row segment (img, oy, x0..x1) at a time, the
                 * first one found by division, the rest by stepping. */
                size_t img = c0 / ohw;
                int oy = (int)(c0 % ohw / (size_t)OW), x0 = (int)(c0 % (size_t)OW);
                for (size_t j = c0; j < c1; x0 = 0, oy = oy + 1 < OH ? oy + 1 : 0, img += oy == 0) {
                    const int x1 = (size_t)(OW - x0) < c1 - j ? OW : x0 + (int)(c1 - j);
                    float *dst = row + (j - c0); /* dst[ox - x0], x0 <= ox < x1 */
                    const int iy = oy * s - pad + ky;
                    j += (size_t)(x1 - x0);
                    if (iy < 0 || iy >= H) {
                        memset(dst, 0, sizeof(float) * (size_t)(x1 - x0));
                        continue;
                    }
                    const float *srow = in + ((size_t)ci * n + img) * H * W + (size_t)iy * W;
                    int lo = x0 > oxa ? x0 : oxa, hi = x1 < oxb ? x1 : oxb;
                    lo = lo < x1 ? lo : x1;
                    hi = hi > lo ? hi : lo;
                    for (int ox = x0; ox < lo; ox++)
                        dst[ox - x0] = 0.0f;
                    if (s == 1) {
                        if (hi > lo)
                            memcpy(dst + (lo - x0), srow + lo - pad + kx, sizeof(float) * (size_t)(hi - lo));
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox - x0] = srow[ox * s - pad + kx];
                    }
                    for (int ox = hi; ox < x1; ox++)
                        dst[ox - x0] = 0.0f;
                }
            }
}

void mn_conv_fast_cols(const mn_layer *l, int n, const float *in, size_t c0, size_t c1, float *col, float *pack,
                       float *out)
{
    const int K = l->in_c * l->kernel * l->kernel;
    const size_t ncols = (size_t)n * l->out_h * l->out_w, width = c1 - c0;
    const float *b = in + c0;
    size_t ldb = ncols;
    if (!(l->kernel == 1 && l->stride == 1 && l->pad == 0)) {
        mn_im2col_cols(l, n, in, c0, c1, col);
        b = col;
        ldb = width;
    }
    /* The own kernel: each output's value depends on its row, its column
     * and K only, so any split of the columns gives the same numbers. In
     * bfloat16 where the blocked path's products of this layer are. */
    if (l->weight_bf)
        mn_gemm_prepacked_rows(MN_KERNEL_AVX512_BF16, l->out_c, (int)width, K, l->weight_bf, b, (int)ldb, out + c0,
                               (int)ncols);
    else
        mn_gemm_stable(l->out_c, (int)width, K, l->weight, K, b, (int)ldb, out + c0, (int)ncols, pack);
    mn_bias_relu_rows(out + c0, l->out_c, width, ncols, l->bias, l->relu);
}

void mn_conv_fast(const mn_layer *l, int n, const float *in, float *col, float *pack, float *out)
{
    mn_conv_fast_cols(l, n, in, 0, (size_t)n * l->out_h * l->out_w, col, pack, out);
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
 * (they only overhang there in ceil mode). Max down the k rows of a window
 * row first, over whole rows (contiguous: the compiler vectorises it), then
 * across each window's k columns of that. */
static void mn_pool_plane(const mn_layer *l, const float *in, float *out, float *colmax)
{
    const int k = l->kernel, s = l->stride, H = l->in_h, W = l->in_w, OH = l->out_h, OW = l->out_w;
    for (int oy = 0; oy < OH; oy++) {
        int y0 = oy * s, y1 = y0 + k < H ? y0 + k : H;
        for (int x = 0; x < W; x++)
            colmax[x] = -FLT_MAX;
        for (int y = y0; y < y1; y++) {
            const float *r = in + (size_t)y * W;
            for (int x = 0; x < W; x++)
                colmax[x] = r[x] > colmax[x] ? r[x] : colmax[x];
        }
        float *o = out + (size_t)oy * OW;
        for (int ox = 0; ox < OW; ox++) {
            int x0 = ox * s, x1 = x0 + k < W ? x0 + k : W;
            float m = -FLT_MAX;
            for (int x = x0; x < x1; x++)
                m = colmax[x] > m ? colmax[x] : m;
            o[ox] = m;
        }
    }
}

void mn_maxpool_fast_planes(const mn_layer *l, size_t p0, size_t p1, const float *in, float *out)
{
    float colmax[MN_MAX_PATCH];
    const size_t ip = (size_t)l->in_h * l->in_w, op = (size_t)l->out_h * l->out_w;
    for (size_t p = p0; p < p1; p++)
        mn_pool_plane(l, in + p * ip, out + p * op, colmax);
}

void mn_maxpool_fast(const mn_layer *l, int n, const float *in, float *out)
{
    mn_maxpool_fast_planes(l, 0, (size_t)l->in_c * n, in, out);
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

/* bias and ReLU on n rows of an fc's output. */
static void mn_fc_bias_relu(const mn_layer *l, int n, float *out)
{
    for (int r = 0; r < n; r++) {
        float *o = out + (size_t)r * l->out_c;
        for (int j = 0; j < l->out_c; j++) {
            float v = o[j] + l->bias[j];
            o[j] = l->relu && v < 0.0f ? 0.0f : v;
        }
    }
}

void mn_fc_fast(const mn_layer *l, int n, const float *in, int ld_in, float *out, float *pack)
{
    /* The row count follows the batch: the own kernel (mn_gemm_stable), on W^T. */
    mn_gemm_stable(n, l->out_c, l->in_c, in, ld_in, l->weight_t, l->out_c, out, l->out_c, pack);
    mn_fc_bias_relu(l, n, out);
}

void mn_fc_blocked(const mn_layer *l, int n, const float *in, int ld_in, float *out, float *pack)
{
    if (!l->weight_p) {
        mn_fc_fast(l, n, in, ld_in, out, pack);
        return;
    }
    mn_gemm_stable_packed_b(n, l->out_c, l->in_c, in, ld_in, l->weight_p, out, l->out_c, pack);
    mn_fc_bias_relu(l, n, out);
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

mn_status mn_conv_prepare(const char *fn, mn_model *m)
{
    if (mn_cpu_get()->gemm_fixed != MN_KERNEL_AVX512_BF16)
        return MN_OK;
    size_t total = 0;
    for (int k = 0; k < m->n_layers; k++) {
        const mn_layer *l = &m->layers[k];
        if (l->type == MN_LAYER_CONV && l->wino_u)
            total += mn_gemm_packed_a_floats(l->out_c, l->in_c * l->kernel * l->kernel);
    }
    if (total == 0)
        return MN_OK;
    m->weights_bf = mn_malloc(total * sizeof(float));
    if (!m->weights_bf)
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu bfloat16 weights", total);
    float *dst = m->weights_bf;
    for (int k = 0; k < m->n_layers; k++) {
        mn_layer *l = &m->layers[k];
        if (l->type != MN_LAYER_CONV || !l->wino_u)
            continue;
        const int K = l->in_c * l->kernel * l->kernel;
        mn_gemm_pack_a_for(MN_KERNEL_AVX512_BF16, l->out_c, K, l->weight, K, dst);
        l->weight_bf = dst;
        dst += mn_gemm_packed_a_floats(l->out_c, K);
    }
    return MN_OK;
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
    size_t packed = 0;
    for (int k = 0; k < m->n_layers; k++)
        if (m->layers[k].type == MN_LAYER_FC)
            packed += mn_gemm_stable_packed_b_floats(m->layers[k].in_c, m->layers[k].out_c);
    if (packed == 0)
        return MN_OK;
    m->weights_p = mn_malloc(packed * sizeof(float));
    if (!m->weights_p)
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu packed weights", packed);
    dst = m->weights_p;
    for (int k = 0; k < m->n_layers; k++) {
        mn_layer *l = &m->layers[k];
        if (l->type != MN_LAYER_FC)
            continue;
        mn_gemm_stable_pack_b(l->in_c, l->out_c, l->weight_t, l->out_c, dst);
        l->weight_p = dst;
        dst += mn_gemm_stable_packed_b_floats(l->in_c, l->out_c);
    }
    return MN_OK;
}
