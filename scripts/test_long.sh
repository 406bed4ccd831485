#!/bin/sh
# The checks too long for CI (.ci/run stays under 20 minutes), run by hand
# before a release or after changing what they cover; their figures go in
# the session note:
#
#   scripts/test_long.sh [FUZZ_SECONDS]
#
#   1. with MN_TEST_LONG=1: test_affine_views with its reference columns,
#      COLMAP's SIFT with and without --SiftExtraction.estimate_affine_shape
#      on the same tilted views (needs colmap on PATH), and test_crash_colmap
#      with every exact kill point and 8 timed kills (CTest runs a subset);
#   2. every fuzz target for FUZZ_SECONDS (default 600) each, unseeded, on
#      its corpus (CI runs 20000 inputs from a fixed seed).
# Builds and tests build/ as scripts/test.sh does first.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-600}
scripts/training.sh pause
trap 'scripts/training.sh resume' EXIT
scripts/test.sh
command -v colmap >/dev/null || echo "test_long.sh: no colmap on PATH: test_affine_views prints no COLMAP columns"
echo "== long CTest runs (MN_TEST_LONG=1)"
MN_TEST_LONG=1 ctest --test-dir build --output-on-failure -V -R '^(test_affine_views|test_crash_colmap)$'
echo "== fuzz targets, $secs s each"
scripts/setup.sh --fuzz
tests/fuzz/run.sh "$secs"
