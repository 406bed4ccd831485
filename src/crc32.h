/*
 * crc32.h - CRC-32 (IEEE 802.3, as zlib's crc32), the one implementation:
 * the model loader checks .mnw files with it and the OpenCV plugin checks
 * PNG chunks (crc32.c is compiled into both libraries, hidden in each).
 */
#ifndef MN_CRC32_H
#define MN_CRC32_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CRC-32 of size bytes; thread-safe. */
uint32_t mn_crc32(const void *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif
