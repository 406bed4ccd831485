#!/bin/sh
# Install the Debian 12 packages libmatchnet needs (as root, or through sudo).
#   scripts/setup.sh           build and test: compilers, CMake, OpenBLAS, OpenCV and TurboJPEG
#                            (plugin and tools), SQLite, libexif and Open MPI (matchnet-colmap), Python 3
#                            (the tests check JSON output with it), COLMAP (test_colmap_mapper and
#                            test_colmap_reuse run matchnet-colmap's databases through it; CTest leaves
#                            them out where it is missing)
#   scripts/setup.sh --bench   also the benchmark's peers and training: PyTorch, Python OpenCV
#   scripts/setup.sh --fuzz    also clang and its sanitizer runtimes (tests/fuzz/run.sh)
# Packages already installed are skipped, so a second run is quick.
set -eu
pkgs="build-essential g++ cmake pkg-config libopenblas-dev libopencv-dev libturbojpeg0-dev libsqlite3-dev libexif-dev openmpi-bin libopenmpi-dev python3 python3-numpy python3-opencv python3-h5py colmap"
for arg in "$@"; do
    case "$arg" in
    --bench) pkgs="$pkgs python3-torch python3-numpy python3-opencv" ;;
    --fuzz) pkgs="$pkgs clang libclang-rt-14-dev" ;;
    *) echo "usage: $0 [--bench] [--fuzz]" >&2; exit 2 ;;
    esac
done
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "scripts/setup.sh: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
