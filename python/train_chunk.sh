#!/usr/bin/env bash
# One resumable chunk of the default model's training (the recipe of
# models/README.md), warm-started from the latest exported weights:
#
#   python/train_chunk.sh SYN_DIR MV_DIR WORK_DIR [MINUTES]
#
# SYN_DIR holds the synthetic sets train/ and val/ (python/train_default.sh
# makes them), MV_DIR the multi-view sets train/ and val/
# (eval/multiview_patchsets.sh); WORK_DIR gets the chunk's checkpoint and
# log (chunk-N/). MINUTES: stage-1 training time (default 120; at most 150,
# so that a chunk fits in a working session).
#
# The chunk starts from models/train/latest.mnw (the shipped
# models/matchnet.mnw before the first chunk), writes its weights there at
# every checkpoint (10 minutes) and at the end, and appends its figures to
# models/train/runs.jsonl. Rerunning the command after an interruption
# resumes the chunk from its checkpoint; after a completed chunk it starts
# the next. Runs under nice -n 19; scripts/training.sh pauses it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 3 ]; then
    echo "usage: python/train_chunk.sh SYN_DIR MV_DIR WORK_DIR [MINUTES]" >&2
    exit 2
fi
syn=$1 mv=$2 work=$3 minutes=${4:-120}
if [ "${minutes%.*}" -gt 150 ]; then
    echo "train_chunk.sh: a chunk is at most 150 minutes" >&2
    exit 2
fi
for d in "$syn/train" "$syn/val" "$mv/train" "$mv/val"; do
    [ -s "$d/info.txt" ] || { echo "train_chunk.sh: no patch set in $d" >&2; exit 1; }
done
latest=models/train/latest.mnw runs=models/train/runs.jsonl
mkdir -p models/train "$work"
n=$(( $( [ -f "$runs" ] && wc -l < "$runs" || echo 0 ) + 1 ))
out=$work/chunk-$n
init=$latest
[ -s "$init" ] || init=models/matchnet.mnw
# The chunk's starting weights, kept for the resume: models/train/latest.mnw
# moves on at every checkpoint.
if [ ! -s "$out/init.mnw" ]; then
    mkdir -p "$out"
    echo "$init $(sha256sum < "$init" | cut -c1-16)" > "$out/init.txt"
    cp "$init" "$out/init.mnw.tmp" && mv "$out/init.mnw.tmp" "$out/init.mnw"
fi
nice -n 19 /usr/bin/python3 python/train.py --train "$syn/train" --multiview "$mv/train" \
    --val "$mv/val" "$syn/val" --out "$out" --init "$out/init.mnw" --export "$latest" \
    --minutes "$minutes" --batch 512 --run 32 --multiview-fraction 0.5 --augment 1 --sos 1 \
    --bf16 1 --channels-last 1 --lr 2e-4 --val-every 100 --seed "$n"
/usr/bin/python3 - "$out/log.jsonl" "$n" "$(cat "$out/init.txt")" "$minutes" >> "$runs" <<'PY'
import json, platform, sys
log = [json.loads(l) for l in open(sys.argv[1])]
done = [e for e in log if e.get("event") == "done"][-1]
start = [e for e in log if e.get("event") == "start"][0]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(json.dumps({"chunk": int(sys.argv[2]), "init": sys.argv[3], "minutes": float(sys.argv[4]),
                  "steps": done["step"], "train_seconds": done["time"], "started": start["wall"],
                  "finished": done["wall"], "cpu": cpu, "val": done["val"]}))
PY
echo "train_chunk.sh: chunk $n done; models/train/latest.mnw updated, figures in $runs"
