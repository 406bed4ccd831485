#!/bin/sh
# test_hostile.sh - matchnet-match on hostile inputs and outputs, beyond
# test_cli.sh:
# - images with no keypoints (flat) give valid JSON with empty lists and
#   exit 0; 0 x 0 PGM and PNG are refused in one line; 100000 x 1, 16-bit
#   and colour images work (PGM/PPM/PNG written here with printf);
# - models of other architectures (the 4096-D golden_original, the 16-px
#   fuzz seed) work; a header claiming more bytes than the file, or a cut
#   file, is refused;
# - a failed run leaves an existing output file byte-identical (missing
#   image, unwritable drawing, unknown drawing format), an output path that
#   is a directory is refused, and nothing half-written or temporary is
#   left; a full device (a /dev/full node made here, when mknod is
#   allowed) gives "No space left on device" and stays a device; a pipe,
#   a link to /dev/null and a link to a regular file are written through,
#   not replaced.
#
#   test_hostile.sh PATH/TO/matchnet-match SOURCE_DIR
set -u
exe=$1
src=$2
name=test_hostile_cli
. "$src/tests/cli_lib.sh"

# expect_ok DESCRIPTION ARGS...: exit status 0.
expect_ok() {
    what=$1
    shift
    checks=$((checks + 1))
    if "$exe" "$@" >"$tmp/stdout" 2>"$tmp/stderr"; then
        echo "  $what -> 0: $(tail -n 1 "$tmp/stderr")"
    else
        fail "$what: exit status $? (args: $*): $(cat "$tmp/stderr")"
    fi
}

# json_check FILE WIDTH1 HEIGHT1 WIDTH2 HEIGHT2 EMPTY: the file parses, the
# sizes match, and with EMPTY=1 both keypoint lists and the matches are empty.
json_check() {
    checks=$((checks + 1))
    if [ ! -x "$python" ]; then
        grep -q '"matches"' "$1" || fail "$1: no matches key"
        return
    fi
    "$python" - "$@" <<'EOF' || fail "$1: bad JSON (see above)"
import json, sys
path, w1, h1, w2, h2, empty = sys.argv[1:7]
d = json.load(open(path, encoding="utf-8"))
assert (d["image1"]["width"], d["image1"]["height"]) == (int(w1), int(h1)), d["image1"]
assert (d["image2"]["width"], d["image2"]["height"]) == (int(w2), int(h2)), d["image2"]
n1, n2 = len(d["image1"]["keypoints"]), len(d["image2"]["keypoints"])
for i, j, p in d["matches"]:
    assert 0 <= i < n1 and 0 <= j < n2 and 0 <= p <= 1, (i, j, p)
if empty == "1":
    assert n1 == 0 and n2 == 0 and d["matches"] == [], (n1, n2, len(d["matches"]))
EOF
}

# pgm NAME WIDTH HEIGHT MAXVAL OCTAL: a flat binary PGM (P5), every byte of
# every sample OCTAL (an octal number, as tr takes it).
pgm() {
    bytes=$(($2 * $3))
    [ "$4" -gt 255 ] && bytes=$((bytes * 2))
    printf 'P5\n%d %d\n%d\n' "$2" "$3" "$4" >"$tmp/$1"
    head -c "$bytes" /dev/zero | tr '\0' "\\$5" >>"$tmp/$1"
}

echo "images"
pgm flat.pgm 64 48 255 310
pgm flat2.pgm 80 40 255 144
expect_ok "flat images (no keypoints)" -o "$tmp/flat.json" --draw "$tmp/flat.png" "$tmp/flat.pgm" "$tmp/flat2.pgm"
json_check "$tmp/flat.json" 64 48 80 40 1
[ -s "$tmp/flat.png" ] || fail "flat images: no drawing"
expect_ok "flat images, metric, homography, JSON on stdout" --method metric --geometry homography \
    "$tmp/flat.pgm" "$tmp/flat2.pgm"
cp "$tmp/stdout" "$tmp/flat-stdout.json"
json_check "$tmp/flat-stdout.json" 64 48 80 40 1
printf 'P5\n0 0\n255\n' >"$tmp/zero.pgm"
expect_error 1 "0 x 0 PGM" -o "$tmp/zero.json" "$tmp/zero.pgm" "$tmp/flat.pgm"
[ -e "$tmp/zero.json" ] && fail "0 x 0 PGM: output written"
# A PNG of 0 x 0 pixels (signature, IHDR, IEND): refused before libpng,
# which would print its own lines.
printf '\211\120\116\107\015\012\032\012\000\000\000\015\111\110\104\122\000\000\000\000\000\000\000\000\010\000\000\000\000\036\340\043\316\000\000\000\000\111\105\116\104\256\102\140\202' \
    >"$tmp/zero.png"
expect_error 1 "0 x 0 PNG" "$tmp/zero.png" "$tmp/flat.pgm"
pgm wide.pgm 100000 1 255 226
expect_ok "100000 x 1 PGM" -o "$tmp/wide.json" "$tmp/wide.pgm" "$tmp/flat.pgm"
json_check "$tmp/wide.json" 100000 1 64 48 0
pgm deep.pgm 64 48 65535 311
expect_ok "16-bit PGM" -o "$tmp/deep.json" "$tmp/deep.pgm" "$tmp/flat.pgm"
json_check "$tmp/deep.json" 64 48 64 48 1
{ printf 'P6\n40 30\n255\n'; head -c 3600 /dev/zero | tr '\0' '\77'; } >"$tmp/colour.ppm"
expect_ok "colour PPM" -o "$tmp/colour.json" "$tmp/colour.ppm" "$tmp/flat.pgm"
json_check "$tmp/colour.json" 40 30 64 48 1

echo "models"
expect_ok "4096-D model (golden_original)" --max-keypoints 40 --model "$src/tests/data/golden_original.mnw" \
    -o "$tmp/orig.json" "$box" "$scene"
json_check "$tmp/orig.json" 324 223 512 384 0
expect_ok "16 x 16 patch model (fuzz seed)" --max-keypoints 40 --model "$src/tests/fuzz/corpus/model/tiny.mnw" \
    -o "$tmp/tiny.json" "$box" "$scene"
json_check "$tmp/tiny.json" 324 223 512 384 0
cp "$src/tests/fuzz/corpus/model/tiny.mnw" "$tmp/claims.mnw"
# File size field (offset 16, 8 bytes little-endian) set to 2^64 - 1.
printf '\377\377\377\377\377\377\377\377' | dd of="$tmp/claims.mnw" bs=1 seek=16 conv=notrunc 2>/dev/null
expect_error 1 "model header claiming 2^64 - 1 bytes" --model "$tmp/claims.mnw" "$tmp/flat.pgm" "$tmp/flat.pgm"
head -c 3000 "$src/tests/fuzz/corpus/model/tiny.mnw" >"$tmp/cut.mnw"
expect_error 1 "model cut short" --model "$tmp/cut.mnw" "$tmp/flat.pgm" "$tmp/flat.pgm"

echo "outputs"
args="--max-keypoints 60 $box $scene"
# shellcheck disable=SC2086
expect_ok "good run" -o "$tmp/keep.json" --draw "$tmp/keep.png" $args
cp "$tmp/keep.json" "$tmp/keep.json.orig"
cp "$tmp/keep.png" "$tmp/keep.png.orig"
unchanged() {
    checks=$((checks + 1))
    cmp -s "$tmp/keep.json" "$tmp/keep.json.orig" || fail "$1: existing JSON changed"
    cmp -s "$tmp/keep.png" "$tmp/keep.png.orig" || fail "$1: existing drawing changed"
}
expect_error 1 "missing image, existing outputs" -o "$tmp/keep.json" --draw "$tmp/keep.png" \
    "$tmp/no-such.png" "$scene"
unchanged "missing image"
# shellcheck disable=SC2086
expect_error 1 "unwritable drawing, existing JSON" -o "$tmp/keep.json" --draw "$tmp/no-such-dir/x.png" $args
unchanged "unwritable drawing"
# shellcheck disable=SC2086
expect_error 1 "unknown drawing format, existing JSON" -o "$tmp/keep.json" --draw "$tmp/keep.xyz" $args
unchanged "unknown drawing format"
[ -e "$tmp/keep.xyz" ] && fail "unknown drawing format: file written"
mkdir "$tmp/a-dir"
# shellcheck disable=SC2086
expect_error 1 "output is a directory" -o "$tmp/a-dir" $args
[ -d "$tmp/a-dir" ] && [ -z "$(ls "$tmp/a-dir")" ] || fail "output is a directory: directory changed"
# shellcheck disable=SC2086
expect_error 1 "drawing is a directory" --draw "$tmp/a-dir" $args
mkdir "$tmp/dir.png"
# shellcheck disable=SC2086
expect_error 1 "drawing is a directory named .png" --draw "$tmp/dir.png" $args
[ -d "$tmp/dir.png" ] || fail "drawing is a directory named .png: directory replaced"
# shellcheck disable=SC2086
expect_error 1 "output in a missing directory" -o "/nonexistent-dir/x/out.json" $args
grep -q "/nonexistent-dir/x/out.json" "$tmp/stderr" || fail "output in a missing directory: path not named"

# (The node must act as /dev/full: not on a nodev file system.)
if mknod "$tmp/full.json" c 1 7 2>/dev/null && mknod "$tmp/full.png" c 1 7 2>/dev/null &&
    dd if=/dev/zero of="$tmp/full.json" bs=1 count=1 2>&1 | grep -q "No space left"; then
    expect_error 1 "output on a full device" -o "$tmp/full.json" "$tmp/flat.pgm" "$tmp/flat.pgm"
    grep -q "No space left on device" "$tmp/stderr" || fail "full device: message does not say why"
    expect_error 1 "drawing on a full device" --draw "$tmp/full.png" -o "$tmp/flat-again.json" \
        "$tmp/flat.pgm" "$tmp/flat.pgm"
    [ -c "$tmp/full.json" ] && [ -c "$tmp/full.png" ] || fail "full device: replaced by a file"
    [ -e "$tmp/flat-again.json" ] && fail "drawing on a full device: JSON written anyway"
else
    echo "  note: no device nodes here (mknod not allowed, or nodev); the full-device case was skipped"
fi

# Written through, not replaced: a pipe, a link to /dev/null, a link to a file.
mkfifo "$tmp/pipe.json"
(timeout 120 cat "$tmp/pipe.json" >"$tmp/from-pipe.json") &
reader=$!
expect_ok "output is a pipe" -o "$tmp/pipe.json" "$tmp/flat.pgm" "$tmp/flat2.pgm"
[ -p "$tmp/pipe.json" ] || fail "output is a pipe: pipe replaced (the reader waits for its timeout)"
wait "$reader"
json_check "$tmp/from-pipe.json" 64 48 80 40 1
ln -s /dev/null "$tmp/null.json"
expect_ok "output is a link to /dev/null" -o "$tmp/null.json" "$tmp/flat.pgm" "$tmp/flat2.pgm"
[ -L "$tmp/null.json" ] && [ -c /dev/null ] || fail "link to /dev/null replaced"
echo old >"$tmp/target.json"
ln -s target.json "$tmp/link.json"
expect_ok "output is a link to a file" -o "$tmp/link.json" "$tmp/flat.pgm" "$tmp/flat2.pgm"
[ -L "$tmp/link.json" ] || fail "link to a file replaced by a file"
json_check "$tmp/target.json" 64 48 80 40 1

leftovers=$(ls -a "$tmp" "$tmp/a-dir" | grep '\.tmp\.')
[ -z "$leftovers" ] || fail "temporary files left: $leftovers"

finish
