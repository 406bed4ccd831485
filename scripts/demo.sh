#!/bin/sh
# The main job on the bundled sample pair: set up, build, and match
# samples/data/box.png against samples/data/box_in_scene.png with
# matchnet-match, writing the match list and a drawing to OUT_DIR.
#   scripts/demo.sh [OUT_DIR]        (default: out/)
set -eu
cd "$(dirname "$0")/.."
out=${1:-out}
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target matchnet-match
mkdir -p "$out"
build/apps/matchnet-match --draw "$out/matches.png" -o "$out/matches.json" \
    samples/data/box.png samples/data/box_in_scene.png
echo "wrote $out/matches.json and $out/matches.png"
