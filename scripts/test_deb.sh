#!/bin/sh
# The Debian packages end to end: build them in a fresh build directory,
# install them with apt, use what they installed - /usr/bin/matchnet-match
# on the bundled pair, the Python module from outside the source tree, a C
# program built with pkg-config and a CMake one with find_package - and
# purge them again, checking that nothing of theirs is left.
#
#   scripts/test_deb.sh [--lintian] [BUILD_DIR]     (default build-deb/; as root or with sudo)
#
# lintian runs when it is installed (--lintian installs it): its errors
# fail the run, its warnings are shown. The packages are purged on every
# exit, failures and interrupts included - installed, they would shadow the
# build tree in other tests (libmatchnet.so.0 in the loader's path, the model
# in /usr/share) - and any of them installed before the run is replaced and
# purged too. The last line is "test_deb: N passed, N failed".
# shellcheck disable=SC2086 # lists of packages and files are split on purpose
set -u
cd "$(dirname "$0")/.." || exit 2
src=$(pwd)
dir=build-deb
want_lintian=0
for arg in "$@"; do
    case "$arg" in
    --lintian) want_lintian=1 ;;
    -*) echo "usage: $0 [--lintian] [BUILD_DIR]" >&2; exit 2 ;;
    *) dir=$arg ;;
    esac
done
case "$dir" in /*) ;; *) dir=$src/$dir ;; esac
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
# What the checks use must come from the packages, not from this shell.
unset MATCHNET_MODEL MATCHNET_LIBRARY MATCHNET_PLUGIN_LIBRARY PYTHONPATH LD_LIBRARY_PATH PKG_CONFIG_PATH \
    CMAKE_PREFIX_PATH
export DEBIAN_FRONTEND=noninteractive

pkgs="libmatchnet0 libmatchnet-opencv0 libmatchnet-dev libmatchnet-tools libmatchnet-model python3-matchnet"
passed=0
failed=0
finished=0
t0=$(date +%s)
tmp=$(mktemp -d)
box=$src/samples/data/box.png
scene=$src/samples/data/box_in_scene.png

pass() {
    passed=$((passed + 1))
    echo "ok: $*"
}
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*"
}
# check WHAT COMMAND...: one check; the command's output is shown when it fails.
check() {
    what=$1
    shift
    if "$@" >"$tmp/out" 2>&1; then
        pass "$what"
    else
        fail "$what"
        tail -n 25 "$tmp/out" | sed 's/^/    /'
    fi
}
abort() {
    fail "$*"
    exit 1
}
installed() {
    dpkg-query -W -f='${Package} ${db:Status-Status}\n' $pkgs 2>/dev/null | awk '$2 != "not-installed" { print $1 }'
}
purge() {
    left=$(installed)
    [ -z "$left" ] || $SUDO apt-get purge -y -qq $left >"$tmp/purge.log" 2>&1
}
on_exit() {
    if [ -n "$(installed)" ]; then
        echo "test_deb: purging the packages"
        purge || { cat "$tmp/purge.log"; fail "purge after an early exit"; }
    fi
    rm -rf "$tmp"
    if [ "$finished" = 0 ]; then
        [ "$failed" -gt 0 ] || fail "stopped early"
        echo "test_deb: $passed passed, $failed failed"
        exit 1
    fi
}
trap on_exit EXIT
trap 'fail "interrupted"; exit 130' INT TERM HUP

# ---- what the build and the checks need --------------------------------
scripts/setup.sh || abort "scripts/setup.sh"
has() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
apt_install() {
    echo "test_deb: installing $*"
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "$@"; } >"$tmp/apt.log" 2>&1
}
# dpkg-shlibdeps, and file for CPack to find the binaries
if ! has dpkg-dev || ! has file; then
    apt_install dpkg-dev file || { cat "$tmp/apt.log"; abort "apt-get install dpkg-dev file"; }
fi
# lintian is optional: without it (or without the network) its check is skipped.
if [ "$want_lintian" = 1 ] && ! has lintian; then
    apt_install lintian || echo "test_deb: lintian could not be installed: $(tail -n 1 "$tmp/apt.log")"
fi
left=$(installed)
if [ -n "$left" ]; then
    echo "test_deb: removing the packages installed before this run:" $left
    purge || abort "purge of the packages installed before"
fi

# ---- build and package ---------------------------------------------------
echo "== build ($dir) and cpack -G DEB"
rm -rf "$dir"
cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    -DMN_BUILD_TESTS=OFF -DMN_BUILD_EVAL=OFF -DMN_BUILD_SAMPLES=OFF >"$tmp/configure.log" 2>&1 ||
    { tail -n 30 "$tmp/configure.log"; abort "configure"; }
cmake --build "$dir" -j"$(nproc)" >"$tmp/build.log" 2>&1 || { tail -n 30 "$tmp/build.log"; abort "build"; }
(cd "$dir" && cpack -G DEB) >"$tmp/cpack.log" 2>&1 || { tail -n 30 "$tmp/cpack.log"; abort "cpack -G DEB"; }
pass "build and cpack -G DEB"

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$dir/CMakeCache.txt")-$(sed -n 's/^MN_DEB_REVISION:STRING=//p' "$dir/CMakeCache.txt")
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
deb() { # deb PACKAGE: its file, as Debian names it (NAME_VERSION-REVISION_ARCH.deb)
    a=$arch
    [ "$1" = libmatchnet-model ] && a=all
    echo "$dir/${1}_${version}_${a}.deb"
}
debs=""
for p in $pkgs; do
    f=$(deb "$p")
    if [ -f "$f" ]; then
        debs="$debs $f"
        echo "    $(basename "$f") $(du -k "$f" | cut -f1) KiB"
    else
        fail "no $(basename "$f") (Debian-style name)"
    fi
done
n=$(find "$dir" -maxdepth 1 -name '*.deb' | wc -l)
[ "$n" = 6 ] || abort "cpack made $n packages, expected 6"
pass "six packages named NAME_VERSION-REVISION_ARCH.deb"

# ---- the packages' metadata and contents, before installing ---------------
paths_of() { dpkg-deb -c "$1" | awk '{ print $6 }' | sed 's,^\.,,; s,/$,,' | grep .; }
copyright_carries_license() {
    dpkg-deb --fsys-tarfile "$1" | tar -xO "./usr/share/doc/$2/copyright" >"$tmp/copyright" &&
        grep -q '^License: BSD-2-Clause' "$tmp/copyright" &&
        grep -q 'Copyright (c) 2026 The libmatchnet authors' "$tmp/copyright" &&
        grep -q 'trained on synthetic' "$tmp/copyright"
}
under_usr_only() { # nothing outside /usr, nothing in /usr/local
    bad=$(paths_of "$1" | grep -v -x -e /usr -e '/usr/.*'; paths_of "$1" | grep '^/usr/local')
    [ -z "$bad" ] || { echo "$bad"; return 1; }
}
depends_has() { dpkg-deb -f "$(deb "$1")" Depends | tr ',' '\n' | sed 's/^ *//' | grep -q -x -e "$2"; }
inter_package_depends() {
    depends_has libmatchnet-tools "libmatchnet0 (= $version)" && depends_has libmatchnet-tools "libmatchnet-model (= $version)" &&
        depends_has libmatchnet-opencv0 "libmatchnet0 (= $version)" &&
        depends_has libmatchnet-dev "libmatchnet-opencv0 (= $version)" &&
        depends_has python3-matchnet "libmatchnet-opencv0 (= $version)" && depends_has python3-matchnet python3-opencv
}
shlibdeps_depends() {
    depends_has libmatchnet0 'libopenblas.*' && depends_has libmatchnet0 'libc6 .*' &&
        depends_has libmatchnet-opencv0 'libopencv-core.*' && depends_has libmatchnet-tools 'libsqlite3.*'
}
shlibs_files() {
    dpkg-deb -I "$(deb libmatchnet0)" shlibs | grep -q -x "libmatchnet 0 libmatchnet0 (= $version)" &&
        dpkg-deb -I "$(deb libmatchnet-opencv0)" shlibs |
        grep -q -x "libmatchnet_opencv 0 libmatchnet-opencv0 (= $version)"
}
for p in $pkgs; do
    check "$p: usr/share/doc/$p/copyright carries LICENSE and the training data's licences" \
        copyright_carries_license "$(deb "$p")" "$p"
    check "$p: files under /usr only" under_usr_only "$(deb "$p")"
done
check "Depends among the packages: exact versions" inter_package_depends
check "Depends from dpkg-shlibdeps (libc6, OpenBLAS, OpenCV, SQLite)" shlibdeps_depends
check "shlibs files of the library packages" shlibs_files
check "libmatchnet-model is Architecture: all" test "$(dpkg-deb -f "$(deb libmatchnet-model)" Architecture)" = all
# Every path the packages hold, and whether it existed before installing:
# after the purge, the ones that did not must be gone.
for f in $debs; do paths_of "$f"; done | sort -u >"$tmp/paths"
while read -r f; do [ -e "$f" ] || [ -L "$f" ] || echo "$f"; done <"$tmp/paths" >"$tmp/new-paths"

# ---- install -------------------------------------------------------------
echo "== apt-get install ./*.deb"
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $debs >"$tmp/install.log" 2>&1 || { tail -n 30 "$tmp/install.log"; abort "apt-get install"; }
[ "$(installed | wc -l)" = 6 ] || abort "installed: $(installed | tr '\n' ' ')"
pass "apt-get install of the six packages"

every_file_there() {
    dpkg -L "$1" | while read -r f; do [ -e "$f" ] || [ -L "$f" ] || { echo "missing: $f"; return 1; }; done
}
lists() { dpkg -L "$1" | grep -q -x "$2" || { echo "dpkg -L $1 has no $2"; return 1; }; }
main_files() {
    lists libmatchnet0 "$lib/libmatchnet.so.0" && lists libmatchnet-opencv0 "$lib/libmatchnet_opencv.so.0" &&
        lists libmatchnet-dev /usr/include/matchnet.h && lists libmatchnet-dev /usr/include/matchnet/opencv.hpp &&
        lists libmatchnet-dev "$lib/libmatchnet.so" && lists libmatchnet-dev "$lib/pkgconfig/matchnet.pc" &&
        lists libmatchnet-dev "$lib/pkgconfig/matchnet-opencv.pc" &&
        lists libmatchnet-dev "$lib/cmake/matchnet/matchnetConfig.cmake" &&
        lists libmatchnet-tools /usr/bin/matchnet-match && lists libmatchnet-tools /usr/bin/matchnet-stitch &&
        lists libmatchnet-tools /usr/share/man/man1/matchnet-match.1.gz &&
        lists libmatchnet-tools /usr/share/man/man1/matchnet-stitch.1.gz &&
        lists libmatchnet-model /usr/share/matchnet/matchnet.mnw &&
        lists python3-matchnet /usr/lib/python3/dist-packages/matchnet/__init__.py
}
links_installed_libraries() { # /lib is /usr/lib on Debian 12 (merged /usr): the loader may name either
    ldd /usr/bin/matchnet-match | tee "$tmp/ldd" &&
        grep -q -E "libmatchnet.so.0 => (/usr)?/lib/$multiarch/libmatchnet.so.0" "$tmp/ldd" &&
        grep -q -E "libmatchnet_opencv.so.0 => (/usr)?/lib/$multiarch/libmatchnet_opencv.so.0" "$tmp/ldd" &&
        ! readelf -d /usr/bin/matchnet-match | grep -e RUNPATH -e RPATH
}
man_pages() {
    for p in $(dpkg -L libmatchnet-tools | sed -n 's,^/usr/bin/,,p'); do
        P=$(echo "$p" | tr '[:lower:]' '[:upper:]')
        gzip -dc "/usr/share/man/man1/$p.1.gz" | grep -q "^\.TH $P 1" || { echo "no man page of $p"; return 1; }
    done
}
lib=/usr/lib/$multiarch
for p in $pkgs; do
    check "dpkg -L $p: every file there" every_file_there "$p"
done
check "dpkg -L: each package's main files" main_files
check "matchnet-match links the installed libraries (no RUNPATH)" links_installed_libraries
check "a man page for each program, gzipped" man_pages

# ---- use them --------------------------------------------------------------
cd "$tmp" || abort "cd $tmp"
check "/usr/bin/matchnet-match on the bundled pair" \
    /usr/bin/matchnet-match --geometry homography -o "$tmp/pair.json" "$box" "$scene"
check "its JSON: both images, 100+ keypoints each, 30+ homography inliers" /usr/bin/python3 -I - "$tmp/pair.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert sorted(d) == ["image1", "image2", "matches", "timing_ms"], sorted(d)
assert (d["image1"]["width"], d["image1"]["height"], d["image2"]["width"], d["image2"]["height"]) == (324, 223, 512, 384)
n1, n2 = len(d["image1"]["keypoints"]), len(d["image2"]["keypoints"])
assert n1 > 100 and n2 > 100, (n1, n2)
m = d["matches"]
assert len(m) >= 30, len(m)
assert all(0 <= i < n1 and 0 <= j < n2 and 0.0 <= p <= 1.0 for i, j, p in m)
print(n1, n2, len(m))
EOF
cat "$tmp/out"

# The module from /usr/lib/python3/dist-packages, no PYTHONPATH, run from
# outside the source tree: the installed libraries and model, and the same
# matches as the installed program.
check "python3: import matchnet, the installed libraries and model, describe and match" \
    /usr/bin/python3 - "$box" "$scene" "$tmp/pair.json" "$lib" <<'EOF'
import json, sys
import cv2
import matchnet
box, scene, pair_json, lib = sys.argv[1:5]
assert matchnet.__file__ == "/usr/lib/python3/dist-packages/matchnet/__init__.py", matchnet.__file__
assert matchnet.default_model_path() == "/usr/share/matchnet/matchnet.mnw", matchnet.default_model_path()
net = matchnet.MatchNet()
kp, desc = net.detectAndCompute(cv2.imread(box, cv2.IMREAD_GRAYSCALE))
assert len(kp) > 100 and desc.shape == (len(kp), 256), (len(kp), desc.shape)
paths = matchnet.library_paths()
assert paths == {"library": lib + "/libmatchnet.so.0", "plugin": lib + "/libmatchnet_opencv.so.0"}, paths
got = matchnet.match_pair(box, scene, geometry="homography")
want = json.load(open(pair_json))
assert [m[:2] for m in got["matches"]] == [m[:2] for m in want["matches"]], (len(got["matches"]), len(want["matches"]))
print(matchnet.version(), len(kp), desc.shape, len(got["matches"]), "matches")
EOF
cat "$tmp/out"

cc=${CC:-cc}
# shellcheck disable=SC2046 # pkg-config's flags are split on purpose
pkg_config_consumer() {
    [ "$(pkg-config --modversion matchnet)" = "${version%-*}" ] &&
        $cc "$src/tests/package/consumer.c" -o "$tmp/consumer" $(pkg-config --cflags --libs matchnet) &&
        "$tmp/consumer" | tee "$tmp/consumer.out" && grep -q 'descriptor 256$' "$tmp/consumer.out"
}
# shellcheck disable=SC2046
pkg_config_opencv_consumer() {
    $cc -DUSE_OPENCV_PLUGIN "$src/tests/package/consumer.c" -o "$tmp/consumer_cv" \
        $(pkg-config --cflags --libs matchnet-opencv) &&
        "$tmp/consumer_cv" | tee "$tmp/consumer.out" &&
        grep -q 'descriptor 256, SIFT scale factor 6.75' "$tmp/consumer.out"
}
find_package_consumer() {
    cmake -S "$src/tests/package" -B "$tmp/consumer-build" -DCMAKE_BUILD_TYPE=Release &&
        cmake --build "$tmp/consumer-build" && "$tmp/consumer-build/consumer_c" &&
        "$tmp/consumer-build/consumer_cpp" | tee "$tmp/consumer.out" && grep -q 'Feature2D.MatchNet 256' "$tmp/consumer.out"
}
check "pkg-config matchnet: build and run a C program (default model)" pkg_config_consumer
check "pkg-config matchnet-opencv: build and run a C program on the plugin" pkg_config_opencv_consumer
check "find_package(matchnet COMPONENTS opencv): build and run C and C++ programs" find_package_consumer
cd "$src" || abort "cd $src"

# ---- lintian ----------------------------------------------------------------
if command -v lintian >/dev/null 2>&1; then
    root=""
    [ "$(id -u)" = 0 ] && root=--allow-root
    # shellcheck disable=SC2086
    lintian $root --no-tag-display-limit $debs >"$tmp/lintian.log" 2>&1
    errors=$(grep -c '^E:' "$tmp/lintian.log")
    warnings=$(grep -c '^W:' "$tmp/lintian.log")
    grep -e '^E:' -e '^W:' "$tmp/lintian.log" | sed 's/^/    lintian /'
    if [ "$errors" = 0 ]; then
        pass "lintian: no errors ($warnings warnings)"
    else
        fail "lintian: $errors errors ($warnings warnings)"
    fi
else
    echo "test_deb: lintian is not installed, skipped (scripts/test_deb.sh --lintian installs it)"
fi

# ---- purge -------------------------------------------------------------------
echo "== apt-get purge"
if purge; then
    pass "apt-get purge"
else
    cat "$tmp/purge.log"
    fail "apt-get purge"
fi
nothing_left() {
    while read -r f; do
        if [ -e "$f" ] || [ -L "$f" ]; then echo "left: $f"; fi
    done <"$tmp/new-paths" | grep . && return 1
    return 0
}
check "no package left (dpkg -l)" test -z "$(installed)"
check "nothing of theirs left in /usr" nothing_left
check "the loader forgot libmatchnet (ldconfig trigger)" sh -c '! ldconfig -p | grep libmatchnet'

finished=1
echo "test_deb: $(($(date +%s) - t0)) s"
echo "test_deb: $passed passed, $failed failed"
[ "$failed" = 0 ]
