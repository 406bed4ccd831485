#!/bin/sh
# The multi-view training and validation patch sets, from the COLMAP models
# python/multiview_reconstruct.py made:
#
#   eval/multiview_patchsets.sh PATCHSET_BIN PHOTOS_ROOT RECON_DIR OUT_DIR
#
# OUT_DIR/train: the six scenes other than strecha-entry-P10, one set (each
# scene's tracks get point ids of their own); OUT_DIR/val: strecha-entry-P10
# alone, held out so that validation sees a scene training never saw. Both
# with the three kinds of same-scene negatives; seed 0.
set -eu
if [ $# -ne 4 ]; then
    echo "usage: eval/multiview_patchsets.sh PATCHSET_BIN PHOTOS_ROOT RECON_DIR OUT_DIR" >&2
    exit 2
fi
bin=$1 photos=$2 recon=$3 out=$4
val_scene=strecha-entry-P10
train_scenes="strecha-castle-P30 strecha-Herz-Jesus-P25 alicevision-monstree alicevision-buddha
middlebury-templeSparseRing middlebury-dinoSparseRing"
for s in $val_scene $train_scenes; do
    if [ ! -f "$recon/$s/sparse_txt/images.txt" ]; then
        echo "multiview_patchsets: no model $recon/$s/sparse_txt (run python/multiview_reconstruct.py first)" >&2
        exit 1
    fi
done
mkdir -p "$out"
args=
for s in $train_scenes; do
    args="$args --colmap $recon/$s/sparse_txt --images $photos/$s/images"
done
# shellcheck disable=SC2086 # split on purpose: PHOTOS_ROOT and RECON_DIR must not contain spaces
nice -n 19 "$bin" --seed 0 $args --out "$out/train"
nice -n 19 "$bin" --seed 0 --colmap "$recon/$val_scene/sparse_txt" --images "$photos/$val_scene/images" \
    --out "$out/val"
