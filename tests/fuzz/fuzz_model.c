/*
 * fuzz_model.c - libFuzzer target: mn_model_load_memory on arbitrary bytes.
 * A file the loader accepts must also describe patches (one: the im2col
 * path; MN_NB / 2: the blocked path, half its lanes empty) and score a pair.
 * The checksum is repaired first when the input is long enough, so the
 * fuzzer reaches the structural checks instead of stopping at the CRC.
 */
#include "crc32.h"
#include "kernels/blocked.h"
#include "matchnet.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (size >= 132) {
        uint32_t c = mn_crc32(buf, size - 4);
        buf[size - 4] = (uint8_t)c, buf[size - 3] = (uint8_t)(c >> 8);
        buf[size - 2] = (uint8_t)(c >> 16), buf[size - 1] = (uint8_t)(c >> 24);
    }
    mn_model *m = NULL;
    if (mn_model_load_memory(buf, size, &m) == MN_OK) {
        mn_session_params sp = mn_session_params_default();
        sp.num_threads = 1;
        mn_session *s = NULL;
        if (mn_session_create(m, &sp, &s) == MN_OK) {
            int p = mn_model_patch_size(m);
            size_t d = mn_model_descriptor_dim(m);
            const size_t nb = MN_NB / 2;
            uint8_t *px = malloc((size_t)p * p * nb);
            float *desc = calloc(d * nb, sizeof(float)), prob;
            mn_pair pair = {0, 0};
            for (size_t i = 0; px && i < (size_t)p * p * nb; i++)
                px[i] = (uint8_t)(i * 37 + (i >> 7));
            if (px && desc && mn_describe_u8(s, px, 1, desc) == MN_OK)
                mn_metric_score_pairs(s, desc, 1, desc, 1, &pair, 1, &prob);
            if (px && desc)
                mn_describe_u8(s, px, nb, desc);
            free(px);
            free(desc);
        }
        mn_session_free(s);
    }
    mn_model_free(m);
    free(buf);
    return 0;
}
