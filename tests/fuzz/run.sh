#!/bin/sh
# Build the libFuzzer targets with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, and run each for SECONDS (default 30) on its
# seed corpus (tests/fuzz/corpus/<target>, new finds kept in build-fuzz/).
#   tests/fuzz/run.sh [SECONDS]
# With FUZZ_RUNS=N set, each target instead runs N inputs from a fixed seed
# (reproducible: what CI uses), within SECONDS at most.
# Needs clang and libclang-rt-14-dev (apt-get install -y clang libclang-rt-14-dev).
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-30}
out=build-fuzz
mkdir -p "$out"
CC=${CC:-clang}
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11 -Iinclude -Isrc -Itools"
blas_inc=$(dirname "$(find /usr/include -name cblas.h -path '*openblas*' | head -n1)")
src=$(ls src/*.c)
$CC $flags -I"$blas_inc" -DMN_HAVE_OPENBLAS=1 tests/fuzz/fuzz_model.c $src -o "$out/fuzz_model" -lopenblas -lpthread -lm
$CC $flags -I"$blas_inc" -DMN_HAVE_OPENBLAS=1 tests/fuzz/fuzz_patches.c $src -o "$out/fuzz_patches" -lopenblas -lpthread -lm
$CC $flags tests/fuzz/fuzz_bmp.c tools/brown.c -o "$out/fuzz_bmp"
status=0
for t in model patches bmp; do
    mkdir -p "$out/corpus_$t"
    echo "== fuzz_$t for ${secs}s"
    limits="-max_total_time=$secs"
    [ -n "${FUZZ_RUNS:-}" ] && limits="$limits -runs=$FUZZ_RUNS -seed=1"
    if ! "$out/fuzz_$t" $limits -max_len=65536 -rss_limit_mb=4096 -print_final_stats=1 \
        "$out/corpus_$t" "tests/fuzz/corpus/$t" 2>"$out/fuzz_$t.log"; then
        status=1
        tail -n 40 "$out/fuzz_$t.log"
    fi
    grep -E "stat::number_of_executed_units|cov:" "$out/fuzz_$t.log" | tail -n 2
done
exit $status
