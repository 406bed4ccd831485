#!/bin/sh
# sfm.sh - Structure-from-Motion with MatchNet matches and COLMAP 3.8:
# matchnet-colmap (keypoints, descriptors, matches into a COLMAP database),
# COLMAP's geometric verification, colmap mapper and colmap model_analyzer.
#
#   samples/sfm.sh IMAGES_DIR WORK_DIR [--max-size PX] [--verify colmap|own]
#                  [--max-keypoints N] [--single-camera] [--camera-model NAME]
#                  [--colmap-keypoints]
#
# --colmap-keypoints: COLMAP's own SIFT keypoints and cameras (colmap
# feature_extractor on the CPU; --max-keypoints, --single-camera,
# --camera-model and --max-size, as its max_num_features, single_camera,
# camera_model and max_image_size, go to it), described and matched by matchnet-colmap
# --reuse-keypoints; COLMAP's descriptors stay in the database unused.
# Otherwise matchnet-colmap detects the keypoints and makes the cameras.
#
# Writes WORK_DIR/database.db, WORK_DIR/pairs.txt and the models under
# WORK_DIR/sparse/N. The last line of its output is JSON about the largest
# model: {"images": N, "registered_images": R, "points3D": P,
# "mean_track_length": T, "mean_reprojection_error": E, "seconds": S}.
# A rerun on the same WORK_DIR reuses the images and pairs already in the
# database (matchnet-colmap resumes) and reruns the mapper.
#
# matchnet-colmap comes from $MATCHNET_BIN if set, else from PATH, else
# from build/apps beside this script's folder. colmap must be on PATH.
set -eu

usage() {
    echo "usage: $0 IMAGES_DIR WORK_DIR [--max-size PX] [--verify colmap|own] [--max-keypoints N] [--single-camera]" \
        "[--camera-model NAME] [--colmap-keypoints]" >&2
    exit 2
}
[ $# -ge 2 ] || usage
images=$1
work=$2
shift 2
extra=""       # matchnet-colmap's options, either way
own=""         # matchnet-colmap's options when it detects the keypoints
colmap_opts="" # colmap feature_extractor's, with --colmap-keypoints
verify=colmap
colmap_keypoints=0
while [ $# -gt 0 ]; do
    case $1 in
    --max-size)
        [ $# -ge 2 ] || usage
        extra="$extra $1 $2"
        colmap_opts="$colmap_opts --SiftExtraction.max_image_size $2"
        shift 2
        ;;
    --max-keypoints)
        [ $# -ge 2 ] || usage
        own="$own $1 $2"
        colmap_opts="$colmap_opts --SiftExtraction.max_num_features $2"
        shift 2
        ;;
    --camera-model)
        [ $# -ge 2 ] || usage
        own="$own $1 $2"
        colmap_opts="$colmap_opts --ImageReader.camera_model $2"
        shift 2
        ;;
    --verify)
        [ $# -ge 2 ] || usage
        verify=$2
        shift 2
        ;;
    --single-camera)
        own="$own $1"
        colmap_opts="$colmap_opts --ImageReader.single_camera 1"
        shift
        ;;
    --colmap-keypoints)
        colmap_keypoints=1
        shift
        ;;
    *) usage ;;
    esac
done
case $verify in colmap | own) ;; *) usage ;; esac
[ -d "$images" ] || { echo "$0: '$images' is not a folder" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${MATCHNET_BIN:-}" ]; then
    bin=$MATCHNET_BIN
elif command -v matchnet-colmap >/dev/null 2>&1; then
    bin=$(command -v matchnet-colmap)
else
    bin=$here/../build/apps/matchnet-colmap
fi
[ -x "$bin" ] || { echo "$0: matchnet-colmap not found (set MATCHNET_BIN, add it to PATH or build it in build/)" >&2; exit 1; }
command -v colmap >/dev/null 2>&1 || { echo "$0: colmap not found on PATH (apt-get install colmap)" >&2; exit 1; }
export QT_QPA_PLATFORM=offscreen

mkdir -p "$work"
db=$work/database.db
start=$(date +%s.%N)

if [ "$colmap_keypoints" = 1 ]; then
    # COLMAP's SIFT keypoints (and descriptors, unused) and its cameras with
    # their EXIF priors; images already in the database are skipped.
    # shellcheck disable=SC2086 # $colmap_opts holds separate words on purpose
    colmap feature_extractor --database_path "$db" --image_path "$images" --SiftExtraction.use_gpu 0 \
        $colmap_opts >"$work/extract.log" 2>&1 ||
        { tail -n 20 "$work/extract.log" >&2; echo "$0: colmap feature_extractor failed" >&2; exit 1; }
    extra="$extra --reuse-keypoints"
else
    extra="$extra $own"
fi
# shellcheck disable=SC2086 # $extra holds separate words on purpose
"$bin" --images "$images" --database "$db" --verify "$verify" --pair-list "$work/pairs.txt" $extra 2>&1 |
    tee "$work/matchnet.log" >&2
# The pipe hides matchnet-colmap's status: its summary line says it finished.
grep -q '^matchnet-colmap: [0-9]* images (' "$work/matchnet.log" || exit 1
if [ "$verify" = colmap ]; then
    # Pairs whose matches are in the database are only verified (no SIFT
    # matching happens; the descriptors table is empty).
    colmap matches_importer --database_path "$db" --match_list_path "$work/pairs.txt" --match_type pairs \
        --SiftMatching.use_gpu 0 >"$work/verify.log" 2>&1 ||
        { tail -n 20 "$work/verify.log" >&2; echo "$0: colmap matches_importer failed" >&2; exit 1; }
fi

rm -rf "$work/sparse"
mkdir -p "$work/sparse"
colmap mapper --database_path "$db" --image_path "$images" --output_path "$work/sparse" >"$work/mapper.log" 2>&1 ||
    { tail -n 20 "$work/mapper.log" >&2; echo "$0: colmap mapper failed" >&2; exit 1; }
end=$(date +%s.%N)

# The largest model: most registered images, then most points.
best=""
best_key=-1
for m in "$work"/sparse/*; do
    [ -d "$m" ] || continue
    colmap model_analyzer --path "$m" >"$m.analysis" 2>&1 || continue
    key=$(awk -F': ' '/Registered images:/ { r = $2 } /Points:/ { p = $2 } END { printf "%d", r * 1000000 + p }' "$m.analysis")
    if [ "$key" -gt "$best_key" ]; then
        best=$m
        best_key=$key
    fi
done
# Images in the database, from matchnet-colmap's summary line.
nimages=$(sed -n 's/^matchnet-colmap: \([0-9]*\) images (.*/\1/p' "$work/matchnet.log" | tail -n 1)
if [ -z "$best" ]; then
    echo "$0: the mapper made no model" >&2
    awk -v n="${nimages:-0}" -v s="$start" -v e="$end" 'BEGIN { printf "{\"images\": %d, \"registered_images\": 0, \"points3D\": 0, \"mean_track_length\": 0, \"mean_reprojection_error\": 0, \"seconds\": %.1f}\n", n, e - s }'
    exit 1
fi
awk -F': ' -v n="${nimages:-0}" -v s="$start" -v e="$end" '
    /Registered images:/ { r = $2 }
    /Points:/ { p = $2 }
    /Mean track length:/ { t = $2 }
    /Mean reprojection error:/ { sub(/px/, "", $2); err = $2 }
    END { printf "{\"images\": %d, \"registered_images\": %d, \"points3D\": %d, \"mean_track_length\": %.3f, \"mean_reprojection_error\": %.3f, \"seconds\": %.1f}\n", n, r, p, t, err, e - s }' "$best.analysis"
