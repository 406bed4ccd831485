#!/bin/sh
# Set up, build and run the tests.
#   scripts/test.sh              Release build in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
#   scripts/test.sh --tsan       ThreadSanitizer build in build-tsan/, the threading tests only
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
dir=build
opts="-DCMAKE_BUILD_TYPE=Release"
only=""
case "${1:-}" in
--sanitize)
    dir=build-asan
    opts="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMN_SANITIZE=address,undefined" ;;
--tsan)
    dir=build-tsan
    opts="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMN_SANITIZE=thread -DMN_BUILD_APPS=OFF -DMN_BUILD_EVAL=OFF -DMN_BUILD_SAMPLES=OFF -DMN_BUILD_PLUGIN=OFF"
    only="test_threads|test_api|test_match|test_stress" ;;
esac
cmake -S . -B "$dir" $opts >/dev/null
cmake --build "$dir" -j"$(nproc)"
if [ -n "$only" ]; then
    ctest --test-dir "$dir" --output-on-failure -R "$only"
else
    ctest --test-dir "$dir" --output-on-failure -j2
fi
