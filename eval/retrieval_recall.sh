#!/bin/sh
# retrieval_recall.sh - recall of matchnet-colmap's --pairs retrieval:K on
# the evaluation photographs mixed together, against the fraction of the
# exhaustive pairs it matches.
#
#   eval/retrieval_recall.sh MATCHNET_COLMAP DATA_DIR WORK_DIR [K...]
#
# DATA_DIR is ../shared/data: its eval/ photographs (the Oxford sequences,
# the SfM and panorama sets) are linked into WORK_DIR/mixed as SET__NAME;
# the codebook is learned on train/ only (WORK_DIR/codebook.bin, from a
# run with --pairs sequential:1 --codebook-out on train/). The true pairs
# are those that exhaustive matching verifies (--verify own: at least 15
# RANSAC inliers, WORK_DIR/eval.db), and, for comparison, all pairs within
# a set. Each K (default 1 2 3 5 10) then selects its pairs on the same
# database (already matched, so only the descriptors are computed again)
# and writes WORK_DIR/pairs_K.txt. Prints one line per K: pairs, fraction
# of the exhaustive pairs, recall of the verified pairs and of the
# same-set pairs. Steps whose outputs exist are not run again.
#
# Small and gentle on a shared machine: 640 px, 1000 keypoints, nice 10;
# MN_THREADS (default 2) threads.
set -eu

[ $# -ge 3 ] || { echo "usage: $0 MATCHNET_COLMAP DATA_DIR WORK_DIR [K...]" >&2; exit 2; }
exe=$1
data=$2
work=$3
shift 3
ks=${*:-1 2 3 5 10}
common="--max-size 640 --max-keypoints 1000 --threads ${MN_THREADS:-2} --progress never --verify own"
mkdir -p "$work/mixed"

# The mixed collection: every image of every eval set, named SET__FILE.
for dir in "$data"/eval/homography/oxford/* "$data"/eval/sfm/* "$data"/eval/pano/*; do
    set_name=$(basename "$dir")
    for f in "$dir"/*; do
        case $f in
        *.png | *.jpg | *.JPG | *.ppm | *.pgm) ln -sf "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" \
            "$work/mixed/${set_name}__$(basename "$f")" ;;
        esac
    done
done

if [ ! -s "$work/codebook.bin" ]; then
    nice -n 10 "$exe" --images "$data/train" --database "$work/train.db" --pairs sequential:1 \
        --codebook-out "$work/codebook.bin" $common
fi
if [ ! -e "$work/eval.done" ]; then
    nice -n 10 "$exe" --images "$work/mixed" --database "$work/eval.db" --pairs exhaustive $common
    touch "$work/eval.done"
fi
for k in $ks; do
    nice -n 10 "$exe" --images "$work/mixed" --database "$work/eval.db" --pairs "retrieval:$k" \
        --codebook "$work/codebook.bin" --pair-list "$work/pairs_$k.txt" $common
done

/usr/bin/python3 - "$work" $ks <<'EOF'
import itertools
import sqlite3
import sys

work, ks = sys.argv[1], sys.argv[2:]
db = sqlite3.connect(work + "/eval.db")
names = {i: n for i, n in db.execute("SELECT image_id, name FROM images")}
verified = set()
for pair_id, rows in db.execute("SELECT pair_id, rows FROM two_view_geometries WHERE rows >= 15"):
    a, b = pair_id // 2147483647, pair_id % 2147483647
    verified.add(tuple(sorted((names[a], names[b]))))
all_names = sorted(names.values())
exhaustive = len(all_names) * (len(all_names) - 1) // 2
same_set = {(a, b) for a, b in itertools.combinations(all_names, 2) if a.split("__")[0] == b.split("__")[0]}
print("%d images, %d exhaustive pairs, %d verified (15+ inliers), %d within a set"
      % (len(all_names), exhaustive, len(verified), len(same_set)))
print("K\tpairs\tfraction\trecall_verified\trecall_same_set")
for k in ks:
    with open("%s/pairs_%s.txt" % (work, k)) as f:
        pairs = {tuple(sorted(line.split())) for line in f if line.strip()}
    print("%s\t%d\t%.3f\t%.3f\t%.3f" % (k, len(pairs), len(pairs) / exhaustive,
                                        len(pairs & verified) / max(1, len(verified)),
                                        len(pairs & same_set) / max(1, len(same_set))))
EOF
