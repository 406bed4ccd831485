/*
 * winograd.c - the weight side of the Winograd convolutions: U = G g G^T
 * for every eligible conv layer, and G g per kernel row for conv0's F(4, 7)
 * along the rows, computed once per model in double.
 */
#include "layers.h"

#include "common.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "winograd.h"

#include <stdlib.h>
#include <string.h>

static int mn_winograd_eligible(const mn_layer *l)
{
    /* One input channel (conv0) gains nothing in 2-D: the output transform
     * is paid per output channel with no channel sum to spread it over. */
    return l->type == MN_LAYER_CONV && l->stride == 1 && (l->kernel == 3 || l->kernel == 5) && l->in_c >= 4;
}

/* conv0: F(4, 7) along the rows, where the 7 kernel rows are the sum that
 * pays for the output transform (2.8x fewer multiply-adds than direct). */
static int mn_winograd_rows_eligible(const mn_layer *l)
{
    return l->type == MN_LAYER_CONV && l->stride == 1 && l->kernel == 7 && l->in_c == 1 && l->out_w % 4 == 0;
}

mn_status mn_winograd_prepare(const char *fn, mn_model *m)
{
    if (!mn_cpu_get()->winograd)
        return MN_OK;
    /* With the own product kernels the weights are kept packed as those
     * kernels read them, so no block repacks them. */
    const int packed = mn_cpu_get()->gemm_fixed != MN_KERNEL_BLAS;
    size_t total = 0, scratch = 0;
    for (int k = 0; k < m->n_layers; k++) {
        const mn_layer *l = &m->layers[k];
        if (mn_winograd_rows_eligible(l))
            total += (size_t)l->out_c * 7 * 10;
        if (mn_winograd_eligible(l)) {
            size_t a = (size_t)MN_WINO_M + l->kernel - 1;
            size_t plane = packed ? mn_gemm_packed_a_floats(l->out_c, l->in_c) : (size_t)l->out_c * l->in_c;
            total += a * a * plane;
            if (a * a * l->out_c * l->in_c > scratch)
                scratch = a * a * l->out_c * l->in_c;
        }
    }
    if (total == 0)
        return MN_OK;
    m->weights_wino = mn_malloc(total * sizeof(float));
    float *u = packed && scratch ? mn_malloc(scratch * sizeof(float)) : NULL;
    if (!m->weights_wino || (packed && scratch && !u)) {
        mn_free(u);
        return mn_error(MN_ERR_OUT_OF_MEMORY, fn, "out of memory for %zu Winograd weights", total);
    }
    float *dst = m->weights_wino;
    for (int k = 0; k < m->n_layers; k++) {
        mn_layer *l = &m->layers[k];
        if (mn_winograd_rows_eligible(l)) {
            /* U[co][ky][i] = sum_x G[i][x] w[co][ky][x]. */
            for (int co = 0; co < l->out_c; co++)
                for (int ky = 0; ky < 7; ky++)
                    for (int i = 0; i < 10; i++) {
                        double s = 0.0;
                        for (int x = 0; x < 7; x++)
                            s += mn_wino47_g[i][x] * l->weight[((size_t)co * 7 + ky) * 7 + x];
                        dst[((size_t)co * 7 + ky) * 10 + i] = (float)s;
                    }
            l->wino_x = dst;
            dst += (size_t)l->out_c * 7 * 10;
        }
        if (!mn_winograd_eligible(l))
            continue;
        const int r = l->kernel, a = MN_WINO_M + r - 1;
        const double *g = r == 3 ? &mn_wino43_g[0][0] : &mn_wino45_g[0][0];
        const size_t plane = (size_t)l->out_c * l->in_c;
        const size_t stored = packed ? mn_gemm_packed_a_floats(l->out_c, l->in_c) : plane;
        /* U[xi][co][ci] = (G g G^T)[i][j], xi = i * a + j: into u, to be
         * packed per position, or in place. */
        float *uu = packed ? u : dst;
        for (int co = 0; co < l->out_c; co++)
            for (int ci = 0; ci < l->in_c; ci++) {
                const float *w = l->weight + ((size_t)co * l->in_c + ci) * r * r;
                double gw[8][5]; /* G g */
                for (int i = 0; i < a; i++)
                    for (int x = 0; x < r; x++) {
                        double s = 0.0;
                        for (int y = 0; y < r; y++)
                            s += g[i * r + y] * w[y * r + x];
                        gw[i][x] = s;
                    }
                for (int i = 0; i < a; i++)
                    for (int j = 0; j < a; j++) {
                        double s = 0.0;
                        for (int x = 0; x < r; x++)
                            s += gw[i][x] * g[j * r + x];
                        uu[(size_t)(i * a + j) * plane + (size_t)co * l->in_c + ci] = (float)s;
                    }
            }
        if (packed)
            for (int xi = 0; xi < a * a; xi++)
                mn_gemm_pack_a_for(mn_cpu_get()->gemm_fixed, l->out_c, l->in_c, u + (size_t)xi * plane, l->in_c,
                                   dst + (size_t)xi * stored);
        l->wino_u = dst;
        l->wino_packed = packed;
        dst += (size_t)a * a * stored;
    }
    mn_free(u);
    return MN_OK;
}
