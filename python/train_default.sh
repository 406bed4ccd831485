#!/usr/bin/env bash
# Train the default model from scratch: data sets, training, evaluation.
#
#   python/train_default.sh PHOTOS_DIR OXFORD_DIR WORK_DIR [MINUTES]
#
# PHOTOS_DIR: training photographs (e.g. ../shared/data/train/photos);
# OXFORD_DIR: Oxford homography sequences, for the evaluation only (never
# for training); WORK_DIR: data sets, checkpoints and logs (rerunning resumes
# from the checkpoint); MINUTES: stage-1 training time (default 82).
# Needs a Release build in build/ (scripts/test.sh) and scripts/setup.sh --bench.
set -euo pipefail
cd "$(dirname "$0")/.."
photos=$1 oxford=$2 work=$3 minutes=${4:-82}
bin=build/eval
mkdir -p "$work"
# Every 8th photo (sorted by path) is held out for validation.
[ -s "$work/val/info.txt" ] || $bin/matchnet-patchset --photos "$photos" --out "$work/val" --every 8 --offset 0 \
    --views 150 --pairs 12000 --seed 2 --max-keypoints 2000
[ -s "$work/train/info.txt" ] || $bin/matchnet-patchset --photos "$photos" --out "$work/train" --every 8 --offset -1 \
    --views 2400 --pairs 600000 --seed 1 --max-keypoints 2000 --positives-only
[ -s "$work/oxford/info.txt" ] || $bin/matchnet-patchset --homography-dir "$oxford" --out "$work/oxford" --pairs 10000 --seed 0
/usr/bin/python3 python/train.py --train "$work/train" --val "$work/val" --out "$work/run" --minutes "$minutes" --seed 0
$bin/matchnet-eval-patches --dataset "$work/oxford" --model "$work/run/matchnet.mnw"
