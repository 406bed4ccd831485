/*
 * crc32.c - CRC-32 (crc32.h).
 *
 * Slicing-by-8: eight table lookups per 8 bytes, about 3x the speed of the
 * byte-at-a-time loop, which matters for 40 MB model files.
 */
#include "crc32.h"

#include <pthread.h>

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
