/*
 * fuzz_bmp.c - libFuzzer target: the BMP sheet reader of the Brown-layout
 * data set tools, on arbitrary files.
 */
#define _POSIX_C_SOURCE 200809L
#include "brown.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/mn_fuzz_bmp_%d.bmp", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    int w, h;
    char err[256];
    uint8_t *px = brown_read_bmp(path, &w, &h, err, sizeof err);
    free(px);
    return 0;
}
