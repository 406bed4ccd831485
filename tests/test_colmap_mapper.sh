#!/bin/sh
# test_colmap_mapper.sh - samples/sfm.sh on 5 rendered views (test_colmap
# --render): matchnet-colmap, colmap's verification and mapper must
# register every view with a mean reprojection error under 1 px; then the
# same with --verify own, and with --colmap-keypoints (colmap
# feature_extractor's keypoints described and matched by matchnet-colmap).
#
#   test_colmap_mapper.sh PATH/TO/matchnet-colmap PATH/TO/test_colmap SOURCE_DIR
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_colmap_mapper.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/images"
"$2" --render "$tmp/images" || { echo "FAIL: cannot render the views" >&2; exit 1; }
failures=0
for run in "--verify colmap" "--verify own" "--colmap-keypoints"; do
    name=$(echo "$run" | tr -d ' -')
    # shellcheck disable=SC2086 # $run holds separate words on purpose
    MATCHNET_BIN=$1 sh "$3/samples/sfm.sh" "$tmp/images" "$tmp/work-$name" $run \
        --max-keypoints 300 >"$tmp/out" 2>&1
    json=$(tail -n 1 "$tmp/out")
    echo "$run: $json"
    reg=$(echo "$json" | sed -n 's/.*"registered_images": \([0-9]*\).*/\1/p')
    err=$(echo "$json" | sed -n 's/.*"mean_reprojection_error": \([0-9.]*\).*/\1/p')
    if [ "${reg:-0}" -ne 5 ] || ! awk -v e="${err:-9}" 'BEGIN { exit !(e < 1) }'; then
        echo "FAIL: $run: want 5 registered views and error < 1 px:" >&2
        cat "$tmp/out" >&2
        failures=$((failures + 1))
    fi
done
# --colmap-keypoints described COLMAP's keypoints: its log says so.
grep -q "COLMAP's keypoints" "$tmp/work-colmapkeypoints/matchnet.log" ||
    { echo "FAIL: --colmap-keypoints did not run matchnet-colmap --reuse-keypoints" >&2; failures=$((failures + 1)); }
[ "$failures" -eq 0 ] && echo "test_colmap_mapper: passed"
exit "$failures"
