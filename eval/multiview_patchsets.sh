#!/bin/sh
# The multi-view training and validation patch sets, from the COLMAP models
# python/multiview_reconstruct.py made:
#
#   eval/multiview_patchsets.sh PATCHSET_BIN PHOTOS_ROOT RECON_DIR OUT_DIR [OPTION...]
#
# OUT_DIR/train: the six scenes other than strecha-entry-P10 (those
# reconstructed: see the warning), one set (each
# scene's tracks get point ids of their own); OUT_DIR/val: strecha-entry-P10
# alone, held out so that validation sees a scene training never saw. Both
# with the three kinds of same-scene negatives; seed 0. OPTIONs go to both
# matchnet-patchset runs (e.g. --affine-orientation keep for affine sets).
set -eu
if [ $# -lt 4 ]; then
    echo "usage: eval/multiview_patchsets.sh PATCHSET_BIN PHOTOS_ROOT RECON_DIR OUT_DIR [OPTION...]" >&2
    exit 2
fi
bin=$1 photos=$2 recon=$3 out=$4
shift 4
val_scene=strecha-entry-P10
train_scenes="strecha-castle-P30 strecha-Herz-Jesus-P25 alicevision-monstree alicevision-buddha
middlebury-templeSparseRing middlebury-dinoSparseRing"
if [ ! -f "$recon/$val_scene/sparse_txt/images.txt" ]; then
    echo "multiview_patchsets: no model $recon/$val_scene/sparse_txt (run python/multiview_reconstruct.py first)" >&2
    exit 1
fi
mkdir -p "$out"
args= missing=
for s in $train_scenes; do
    if [ -f "$recon/$s/sparse_txt/images.txt" ]; then
        args="$args --colmap $recon/$s/sparse_txt --images $photos/$s/images"
    else
        missing="$missing $s"
    fi
done
# A scene whose reconstruction is not there yet (monstree's mapper is the
# longest step) is left out with a warning rather than holding up the rest.
[ -z "$missing" ] || echo "multiview_patchsets: WARNING: no model for$missing; the training set leaves it out" >&2
[ -n "$args" ] || { echo "multiview_patchsets: no training scene reconstructed" >&2; exit 1; }
# shellcheck disable=SC2086 # split on purpose: PHOTOS_ROOT and RECON_DIR must not contain spaces
nice -n 19 "$bin" --seed 0 "$@" $args --out "$out/train"
nice -n 19 "$bin" --seed 0 "$@" --colmap "$recon/$val_scene/sparse_txt" --images "$photos/$val_scene/images" \
    --out "$out/val"
