#!/bin/sh
# Build the libFuzzer targets with CMake (clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, the library's own sources and flags: every
# instruction set's kernels) into $FUZZ_OUT (default build-fuzz/), and run
# each for SECONDS (default 30) on its seed corpus (tests/fuzz/corpus/<target>,
# new finds kept in $FUZZ_OUT/corpus_<target>).
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
# TARGET is one of the engine's (model, patches, match), the data-set
# tools' BMP reader (bmp), the plugin's image decoding (image) or the
# programs' code (cli: option parser and progress line; colmap_pairs and
# colmap_db: matchnet-colmap's pair lists and database; json:
# matchnet-match's JSON writer); default: all. The engine targets run once
# on the best instruction set this CPU has and once more with MN_SIMD=avx2
# MN_GEMM=avx2 where that is a different path (an AVX-512 CPU), so both
# vector builds are fuzzed.
# With FUZZ_RUNS=N set, each run instead takes N inputs from a fixed seed
# (reproducible: what CI uses), within SECONDS at most; colmap_db and
# patches take N / 10 (150 to 500 inputs a second under ASan, where the
# others do 1000 to 10000).
# Needs clang and libclang-rt-14-dev (scripts/setup.sh --fuzz installs them).
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-30}
[ $# -gt 0 ] && shift
targets=${*:-model patches bmp match image cli colmap_pairs colmap_db json}
out=${FUZZ_OUT:-build-fuzz}
CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMN_BUILD_FUZZ=ON -DMN_SANITIZE=address,undefined -DMN_BUILD_TESTS=OFF -DMN_BUILD_APPS=OFF \
    -DMN_BUILD_EVAL=OFF -DMN_BUILD_SAMPLES=OFF >"$out.configure.log" 2>&1 || {
    cat "$out.configure.log" >&2
    exit 1
}
for t in $targets; do
    case $t in
    model | patches | bmp | match | image | cli | colmap_pairs | colmap_db | json) ;;
    *)
        echo "run.sh: unknown target '$t'" >&2
        exit 2 ;;
    esac
    cmake --build "$out" -j"$(nproc)" --target "fuzz_$t" >/dev/null
done
avx512=$(grep -c avx512f /proc/cpuinfo 2>/dev/null || true)
status=0
# run NAME TARGET [VAR=VALUE...]: one fuzzing run, its log in $out/NAME.log
run() {
    name=$1 t=$2
    shift 2
    mkdir -p "$out/corpus_$t"
    echo "== $name for ${secs}s${*:+ ($*)}"
    limits="-max_total_time=$secs"
    runs=${FUZZ_RUNS:-}
    # colmap_db opens SQLite files several times an input, patches runs the
    # network: 130 to 500 inputs a second under ASan, where the others do
    # 1000 to 10000.
    [ -n "$runs" ] && { [ "$t" = colmap_db ] || [ "$t" = patches ]; } && runs=$((runs / 10))
    [ -n "$runs" ] && limits="$limits -runs=$runs -seed=1"
    max_len=65536
    [ "$t" = image ] && max_len=200000 # room for real photos' headers and tables
    if ! env "$@" "$out/tests/fuzz/fuzz_$t" $limits -max_len=$max_len -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 \
        "$out/corpus_$t" "tests/fuzz/corpus/$t" 2>"$out/$name.log"; then
        status=1
        tail -n 40 "$out/$name.log"
    fi
    grep -E "stat::number_of_executed_units|cov:" "$out/$name.log" | tail -n 2
}
for t in $targets; do
    run "fuzz_$t" "$t"
    case $t in
    model | patches | match)
        [ "${avx512:-0}" -gt 0 ] && run "fuzz_${t}_avx2" "$t" MN_SIMD=avx2 MN_GEMM=avx2 ;;
    esac
done
exit $status
