#!/bin/sh
# eval_sfm.sh - COLMAP's own SIFT pipeline against MatchNet (samples/sfm.sh)
# on the same image folder: registered images, 3D points, mean track length
# and mean reprojection error of each pipeline's largest model, side by side.
#
#   eval/eval_sfm.sh IMAGES_DIR WORK_DIR [--max-size PX] [sfm.sh options...]
#
# COLMAP: feature_extractor (CPU SIFT; --SiftExtraction.max_image_size PX
# with --max-size), exhaustive_matcher (CPU), mapper, model_analyzer, in
# WORK_DIR/colmap. MatchNet: samples/sfm.sh in WORK_DIR/matchnet (extra
# options such as --verify own are passed on). Prints a table, and as the
# last line JSON {"colmap_sift": {...}, "matchnet": {...}} with sfm.sh's
# fields for each.
set -eu

[ $# -ge 2 ] || { echo "usage: $0 IMAGES_DIR WORK_DIR [--max-size PX] [sfm.sh options...]" >&2; exit 2; }
images=$1
work=$2
shift 2
max_size=""
sfm_args=""
while [ $# -gt 0 ]; do
    case $1 in
    --max-size)
        [ $# -ge 2 ] || { echo "$0: --max-size needs a value" >&2; exit 2; }
        max_size=$2
        sfm_args="$sfm_args --max-size $2"
        shift 2
        ;;
    *)
        sfm_args="$sfm_args $1"
        shift
        ;;
    esac
done
here=$(cd "$(dirname "$0")" && pwd)
export QT_QPA_PLATFORM=offscreen

# --- COLMAP SIFT ---
cw=$work/colmap
rm -rf "$cw"
mkdir -p "$cw/sparse"
start=$(date +%s.%N)
set -- --database_path "$cw/database.db" --image_path "$images" --SiftExtraction.use_gpu 0
[ -n "$max_size" ] && set -- "$@" --SiftExtraction.max_image_size "$max_size"
colmap feature_extractor "$@" >"$cw/extract.log" 2>&1 || { tail -n 20 "$cw/extract.log" >&2; exit 1; }
colmap exhaustive_matcher --database_path "$cw/database.db" --SiftMatching.use_gpu 0 >"$cw/match.log" 2>&1 ||
    { tail -n 20 "$cw/match.log" >&2; exit 1; }
colmap mapper --database_path "$cw/database.db" --image_path "$images" --output_path "$cw/sparse" \
    >"$cw/mapper.log" 2>&1 || { tail -n 20 "$cw/mapper.log" >&2; exit 1; }
end=$(date +%s.%N)
nimages=$(find "$images" -type f | grep -ciE '\.(jpe?g|png|pgm|ppm|pnm|bmp|tiff?|webp)$' || true)
best=""
best_key=-1
for m in "$cw"/sparse/*; do
    [ -d "$m" ] || continue
    colmap model_analyzer --path "$m" >"$m.analysis" 2>&1 || continue
    key=$(awk -F': ' '/Registered images:/ { r = $2 } /Points:/ { p = $2 } END { printf "%d", r * 1000000 + p }' "$m.analysis")
    if [ "$key" -gt "$best_key" ]; then
        best=$m
        best_key=$key
    fi
done
if [ -n "$best" ]; then
    colmap_json=$(awk -F': ' -v n="$nimages" -v s="$start" -v e="$end" '
        /Registered images:/ { r = $2 }
        /Points:/ { p = $2 }
        /Mean track length:/ { t = $2 }
        /Mean reprojection error:/ { sub(/px/, "", $2); err = $2 }
        END { printf "{\"images\": %d, \"registered_images\": %d, \"points3D\": %d, \"mean_track_length\": %.3f, \"mean_reprojection_error\": %.3f, \"seconds\": %.1f}", n, r, p, t, err, e - s }' "$best.analysis")
else
    colmap_json=$(awk -v n="$nimages" -v s="$start" -v e="$end" 'BEGIN { printf "{\"images\": %d, \"registered_images\": 0, \"points3D\": 0, \"mean_track_length\": 0, \"mean_reprojection_error\": 0, \"seconds\": %.1f}", n, e - s }')
fi

# --- MatchNet ---
mw=$work/matchnet
rm -rf "$mw"
# shellcheck disable=SC2086 # $sfm_args holds separate words on purpose
"$here/../samples/sfm.sh" "$images" "$mw" $sfm_args >"$work/matchnet_sfm.log" 2>&1 ||
    { tail -n 20 "$work/matchnet_sfm.log" >&2; echo "$0: samples/sfm.sh failed" >&2; }
matchnet_json=$(tail -n 1 "$work/matchnet_sfm.log" | grep '^{' || echo '{"images": 0, "registered_images": 0, "points3D": 0, "mean_track_length": 0, "mean_reprojection_error": 0, "seconds": 0}')

field() { echo "$1" | sed -n "s/.*\"$2\": \\([0-9.]*\\).*/\\1/p"; }
printf '%-26s %14s %14s\n' "$(basename "$images")" "COLMAP SIFT" "MatchNet"
for f in images registered_images points3D mean_track_length mean_reprojection_error seconds; do
    printf '%-26s %14s %14s\n' "$f" "$(field "$colmap_json" $f)" "$(field "$matchnet_json" $f)"
done
echo "{\"colmap_sift\": $colmap_json, \"matchnet\": $matchnet_json}"
