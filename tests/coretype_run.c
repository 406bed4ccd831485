/*
 * coretype_run.c - run a test under one OpenBLAS core:
 *
 *   coretype_run CORE PROGRAM [ARGS...]
 *
 * sets OPENBLAS_CORETYPE=CORE and executes PROGRAM, or exits 77 (CTest's
 * SKIP_RETURN_CODE) when this CPU lacks the instructions that core's kernels
 * use: OpenBLAS would take the name and die of an illegal instruction.
 * The names are those of Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH).
 * This program does not link OpenBLAS, so nothing is initialised before the
 * variable is set.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int cpu_runs(const char *core)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    if (strcasecmp(core, "Prescott") == 0)
        return __builtin_cpu_supports("sse3");
    if (strcasecmp(core, "Sandybridge") == 0)
        return __builtin_cpu_supports("avx");
    if (strcasecmp(core, "Haswell") == 0 || strcasecmp(core, "Zen") == 0)
        return avx2;
    if (strcasecmp(core, "SkylakeX") == 0)
        return avx2 && avx512;
    if (strcasecmp(core, "Cooperlake") == 0)
        return avx2 && avx512 && __builtin_cpu_supports("avx512bf16");
    return -1;
#else
    (void)core;
    return 0; /* the x86 core names mean nothing elsewhere */
#endif
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: coretype_run CORE PROGRAM [ARGS...]\n");
        return 2;
    }
    const int runs = cpu_runs(argv[1]);
    if (runs < 0) {
        fprintf(stderr, "coretype_run: unknown OpenBLAS core '%s'\n", argv[1]);
        return 2;
    }
    if (!runs) {
        printf("coretype_run: this CPU cannot run OpenBLAS's %s kernels: skipped\n", argv[1]);
        return 77;
    }
    if (setenv("OPENBLAS_CORETYPE", argv[1], 1) != 0) {
        perror("coretype_run: setenv");
        return 2;
    }
    execv(argv[2], argv + 2);
    perror("coretype_run: execv");
    return 2;
}
