#!/bin/sh
# Build the libFuzzer targets with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, and run each for SECONDS (default 30) on its
# seed corpus (tests/fuzz/corpus/<target>, new finds kept in $FUZZ_OUT,
# default build-fuzz/).
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
# TARGET is model, patches, bmp, match or image (default: all).
# With FUZZ_RUNS=N set, each target instead runs N inputs from a fixed seed
# (reproducible: what CI uses), within SECONDS at most.
# Needs clang and libclang-rt-14-dev (apt-get install -y clang libclang-rt-14-dev);
# fuzz_image also needs OpenCV and TurboJPEG (pkg-config opencv4 libturbojpeg).
# OpenCV's own code is not instrumented: the fuzzer sees our code and
# TurboJPEG's calls into it, and crashes anywhere.
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-30}
[ $# -gt 0 ] && shift
targets=${*:-model patches bmp match image}
out=${FUZZ_OUT:-build-fuzz}
mkdir -p "$out"
CC=${CC:-clang}
CXX=${CXX:-clang++}
san="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
flags="$san -std=c11 -Iinclude -Isrc -Itools"
blas_inc=$(dirname "$(find /usr/include -name cblas.h -path '*openblas*' | head -n1)")
src=$(ls src/*.c)
for t in $targets; do
    case $t in
    model | patches)
        $CC $flags -I"$blas_inc" -DMN_HAVE_OPENBLAS=1 "tests/fuzz/fuzz_$t.c" $src -o "$out/fuzz_$t" \
            -lopenblas -lpthread -lm ;;
    match)
        $CC $flags -I"$blas_inc" -DMN_HAVE_OPENBLAS=1 -DMN_SOURCE_DIR="\"$PWD\"" tests/fuzz/fuzz_match.c $src \
            -o "$out/fuzz_match" -lopenblas -lpthread -lm ;;
    bmp)
        $CC $flags tests/fuzz/fuzz_bmp.c eval/brown.c -o "$out/fuzz_bmp" ;;
    image)
        # fuzz_image.cc includes plugin/src/c_api.cpp; the engine's error
        # functions come from src/common.c.
        $CC $flags -c src/common.c -o "$out/common.o"
        # shellcheck disable=SC2046
        $CXX $san -std=c++17 -Iinclude -Iplugin/include $(pkg-config --cflags opencv4 libturbojpeg) \
            tests/fuzz/fuzz_image.cc "$out/common.o" -o "$out/fuzz_image" \
            $(pkg-config --libs opencv4 libturbojpeg) -lpthread ;;
    *)
        echo "run.sh: unknown target '$t'" >&2
        exit 2 ;;
    esac
done
status=0
for t in $targets; do
    mkdir -p "$out/corpus_$t"
    echo "== fuzz_$t for ${secs}s"
    limits="-max_total_time=$secs"
    [ -n "${FUZZ_RUNS:-}" ] && limits="$limits -runs=$FUZZ_RUNS -seed=1"
    max_len=65536
    [ "$t" = image ] && max_len=200000 # room for real photos' headers and tables
    if ! "$out/fuzz_$t" $limits -max_len=$max_len -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 \
        "$out/corpus_$t" "tests/fuzz/corpus/$t" 2>"$out/fuzz_$t.log"; then
        status=1
        tail -n 40 "$out/fuzz_$t.log"
    fi
    grep -E "stat::number_of_executed_units|cov:" "$out/fuzz_$t.log" | tail -n 2
done
exit $status
