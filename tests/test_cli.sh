#!/bin/sh
# test_cli.sh - the matchnet-match command line. Every error path exits
# non-zero (2 for usage errors, 1 for runtime errors) with exactly one line
# on stderr starting with "matchnet-match:" and leaves no output file; a run
# on samples/data/box.png and box_in_scene.png writes JSON with the
# documented schema (checked with Python's json module) and a drawing.
#
#   test_cli.sh PATH/TO/matchnet-match SOURCE_DIR
set -u
exe=$1
src=$2
name=test_cli
. "$src/tests/cli_lib.sh"
leftovers="$tmp/out.json $tmp/out.png"

printf 'not an image\n' >"$tmp/garbage.png"
head -c 5000 "$box" >"$tmp/truncated.png"
printf 'MNW? certainly not a model\n' >"$tmp/garbage.mnw"
out="-o $tmp/out.json --draw $tmp/out.png"

# Usage errors: status 2.
expect_error 2 "no arguments"
expect_error 2 "one image" "$box"
expect_error 2 "three images" "$box" "$scene" "$box"
expect_error 2 "unknown option" --frobnicate "$box" "$scene"
expect_error 2 "unknown detector" --detector surf "$box" "$scene"
expect_error 2 "unknown method" --method=cosine "$box" "$scene"
expect_error 2 "unknown geometry" --geometry affine "$box" "$scene"
expect_error 2 "zero keypoints" --max-keypoints 0 "$box" "$scene"
expect_error 2 "keypoints not a number" --max-keypoints 12x "$box" "$scene"
expect_error 2 "threads not a number" --threads many "$box" "$scene"
expect_error 2 "negative line cap" --draw-max -1 "$box" "$scene"
expect_error 2 "line cap not a number" --draw-max all "$box" "$scene"
expect_error 2 "option without its value" "$box" "$scene" -o

# Runtime errors: status 1, and no half-written output.
# shellcheck disable=SC2086
expect_error 1 "missing image" $out "$tmp/does-not-exist.png" "$scene"
# shellcheck disable=SC2086
expect_error 1 "undecodable image" $out "$box" "$tmp/garbage.png"
# shellcheck disable=SC2086
expect_error 1 "truncated PNG" $out "$tmp/truncated.png" "$scene"
# shellcheck disable=SC2086
expect_error 1 "garbage model" $out --model "$tmp/garbage.mnw" "$box" "$scene"
# shellcheck disable=SC2086
expect_error 1 "missing model" $out --model "$tmp/no-such-model.mnw" "$box" "$scene"
expect_error 1 "unwritable output" --max-keypoints 50 -o "$tmp/no-such-dir/out.json" "$box" "$scene"
expect_error 1 "unwritable drawing" --max-keypoints 50 -o "$tmp/out.json" --draw "$tmp/no-such-dir/out.png" \
    "$box" "$scene"

checks=$((checks + 1))
"$exe" --help >"$tmp/stdout" 2>"$tmp/stderr" && grep -q '^usage: matchnet-match' "$tmp/stdout" &&
    [ ! -s "$tmp/stderr" ] || fail "--help"

# A real pair with the default model and options.
checks=$((checks + 1))
if "$exe" -o "$tmp/pair.json" --draw "$tmp/pair.png" "$box" "$scene" 2>"$tmp/stderr"; then
    cat "$tmp/stderr"
    [ "$(wc -l <"$tmp/stderr")" -eq 1 ] || fail "success: more than one line on stderr"
else
    fail "success run failed: $(cat "$tmp/stderr")"
fi
# With a geometry, JSON on stdout.
checks=$((checks + 1))
"$exe" --geometry homography --max-keypoints 800 --threads 2 --draw "$tmp/keypoints.png" --draw-max 0 \
    --draw-keypoints "$box" "$scene" >"$tmp/homography.json" 2>"$tmp/stderr" ||
    fail "homography run failed: $(cat "$tmp/stderr")"
cat "$tmp/stderr"
[ -s "$tmp/keypoints.png" ] || fail "--draw-max 0 --draw-keypoints: no drawing"
# Affine shapes: the same document with "shapes", and homography inliers.
checks=$((checks + 1))
"$exe" --affine --geometry homography --max-keypoints 800 "$box" "$scene" >"$tmp/affine.json" 2>"$tmp/stderr" ||
    fail "--affine run failed: $(cat "$tmp/stderr")"
cat "$tmp/stderr"
leftovers=$(ls "$tmp" | grep '\.tmp\.')
[ -z "$leftovers" ] || fail "temporary files left: $leftovers"

if [ -x "$python" ]; then
    for json in pair.json homography.json affine.json; do
        checks=$((checks + 1))
        "$python" - "$tmp/$json" "$box" "$scene" "$tmp/pair.png" <<'EOF' || fail "$json does not follow the schema"
import json, math, struct, sys
path, box, scene, drawing = sys.argv[1:5]
d = json.load(open(path, encoding="utf-8"))
assert sorted(d) == ["image1", "image2", "matches", "timing_ms"], sorted(d)
sizes = {}
for key, image_path, (w, h) in (("image1", box, (324, 223)), ("image2", scene, (512, 384))):
    im = d[key]
    affine = path.endswith("affine.json")
    assert sorted(im) == ["height", "keypoints", "path"] + ["shapes"] * affine + ["width"], sorted(im)
    assert im["path"] == image_path, (im["path"], image_path)
    assert (im["width"], im["height"]) == (w, h), (key, im["width"], im["height"])
    assert 0 < len(im["keypoints"]) <= 2000, len(im["keypoints"])
    for k in im["keypoints"]:
        assert len(k) == 4 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in k), k
        x, y, size, angle = k
        assert -1 <= x <= w and -1 <= y <= h and size > 0 and -1 <= angle < 360, k
    sizes[key] = (w, h)
    if affine:
        # One frame per keypoint, det A = (size / 2)^2; some are ellipses,
        # the rest their keypoint's circle.
        assert len(im["shapes"]) == len(im["keypoints"])
        ellipses = 0
        for (x, y, size, angle), a in zip(im["keypoints"], im["shapes"]):
            assert len(a) == 4 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in a), a
            det = a[0] * a[3] - a[1] * a[2]
            assert abs(det - size * size / 4) <= 1e-3 * det, (size, a)
            p, q, r = a[0] ** 2 + a[1] ** 2, a[0] * a[2] + a[1] * a[3], a[2] ** 2 + a[3] ** 2
            ellipses += (p + r) / 2 + math.hypot((p - r) / 2, q) > 1.1 * det  # axes ratio above 1.1
        assert ellipses >= len(im["shapes"]) // 3, "only %d of %d ellipses" % (ellipses, len(im["shapes"]))
n1, n2 = len(d["image1"]["keypoints"]), len(d["image2"]["keypoints"])
matches = d["matches"]
assert len(matches) >= 10, "only %d matches" % len(matches)  # with a geometry: inliers
for m in matches:
    assert len(m) == 3 and isinstance(m[0], int) and isinstance(m[1], int), m
    assert 0 <= m[0] < n1 and 0 <= m[1] < n2, m
    assert 0.0 <= m[2] <= 1.0, m
assert len({m[0] for m in matches}) == len(matches), "a keypoint of image 1 matched twice"
t = d["timing_ms"]
assert sorted(t) == ["describe", "detect", "match"], sorted(t)
assert all(isinstance(v, (int, float)) and v >= 0 for v in t.values()), t
if path.endswith("pair.json"):
    png = open(drawing, "rb").read(24)
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "drawing is not a PNG"
    w, h = struct.unpack(">II", png[16:24])
    assert (w, h) == (324 + 512, 384), (w, h)
print("  %s: %d + %d keypoints, %d matches" % (path.rsplit("/", 1)[1], n1, n2, len(matches)))
EOF
    done
else
    echo "note: $python not found; the JSON was not parsed"
fi

finish
