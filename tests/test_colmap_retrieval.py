#!/usr/bin/python3
"""CTest test of matchnet-colmap's --pairs retrieval:K, spatial:K and their unions.

    test_colmap_retrieval.py PATH/TO/matchnet-colmap yes|no

yes|no: whether matchnet-colmap was built with libexif (spatial:K needs it).

Retrieval: eight views of two made-up scenes (a fine noise texture and a
texture of blocks and discs, each seen through four different perspective
warps), their names interleaving the scenes. retrieval:3 must pair each
view with exactly the three other views of its scene, the same pairs on a
second run and, resumed on the first run's database, with the codebook
saved by --codebook-out and loaded by --codebook (a run with
sequential:1 --codebook-out saves the same bytes); retrieval:1+sequential:1 is the union of the two.

Spatial: JPEGs whose EXIF GPS tags are written here byte by byte (an APP1
segment with IFD0 holding only the GPS IFD pointer; north/south,
east/west and below-sea-level references), one JPEG without GPS; the
expected spatial:1 pairs come from an earth-centred conversion written
here. Usage and runtime errors: one line, the right status, no database.
"""
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import cv2
import numpy as np

failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg, file=sys.stderr)


def run(cmd, want=0):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check(p.returncode == want, "%s: exit status %d, want %d: %s" % (" ".join(cmd), p.returncode, want, p.stderr))
    return p


def one_error_line(p, what, want):
    lines = p.stderr.splitlines()
    check(len(lines) == 1 and lines[0].startswith("matchnet-colmap: ") and want in lines[0],
          "%s: stderr %r, want one line with %r" % (what, p.stderr, want))


def textures():
    """Two scenes of different character, 1000 x 800 grey: rectangles, and
    discs crossed by lines."""
    rng = np.random.default_rng(5)
    scenes = []
    for kind in range(2):
        img = cv2.GaussianBlur((rng.random((800, 1000)) * 60 + 100).astype(np.uint8), (0, 0), 3)
        for _ in range(500):
            x, y = int(rng.integers(0, 1000)), int(rng.integers(0, 800))
            s, g = int(rng.integers(6, 36)), int(rng.integers(0, 256))
            if kind == 0:
                cv2.rectangle(img, (x, y), (x + s, y + int(rng.integers(4, 36))), g, -1)
            elif rng.random() < 0.6:
                cv2.circle(img, (x, y), s // 2, g, -1)
            else:
                cv2.line(img, (x, y), (x + int(rng.integers(-60, 60)), y + int(rng.integers(-60, 60))), g, 3)
        scenes.append(img)
    return scenes


def view(tex, k):
    """A 480 x 360 view: the texture's middle under a perspective warp."""
    rng = np.random.default_rng(100 + k)
    src = np.float32([[200, 150], [800, 150], [800, 650], [200, 650]])
    src += rng.uniform(-50, 50, src.shape).astype(np.float32)
    dst = np.float32([[0, 0], [480, 0], [480, 360], [0, 360]])
    return cv2.warpPerspective(tex, cv2.getPerspectiveTransform(src, dst), (480, 360))


def read_pairs(path):
    with open(path) as f:
        return [tuple(line.split()) for line in f if line.strip()]


COMMON = ["--max-keypoints", "300", "--threads", "2", "--progress", "never"]


def retrieval(exe, tmp):
    images = os.path.join(tmp, "scenes")
    os.mkdir(images)
    scene_of = {}
    tex = textures()
    for k, s in enumerate([0, 1, 1, 0, 1, 0, 0, 1]):
        name = "view%d.png" % k
        scene_of[name] = s
        cv2.imwrite(os.path.join(images, name), view(tex[s], k))

    def pairs(tag, spec, *more, want=0, db=None):
        db, out = db or os.path.join(tmp, tag + ".db"), os.path.join(tmp, tag + ".txt")
        p = run([exe, "--images", images, "--database", db, "--pairs", spec, "--pair-list", out] + COMMON + list(more),
                want)
        return (read_pairs(out) if want == 0 else None), p, db

    got, p, _ = pairs("r3", "retrieval:3", "--codebook-out", os.path.join(tmp, "cb.bin"))
    names = sorted(scene_of)
    want = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if scene_of[a] == scene_of[b]]
    check(got == want, "retrieval:3: pairs %s, want each view with the 3 others of its scene %s" % (got, want))
    again, _, _ = pairs("r3b", "retrieval:3")
    check(again == got, "retrieval:3 twice: %s, then %s" % (got, again))
    # Resumed on the first run's database: its images are described again
    # from their stored keypoints; nothing is left to match.
    loaded, p, _ = pairs("r3c", "retrieval:3", "--codebook", os.path.join(tmp, "cb.bin"),
                         db=os.path.join(tmp, "r3.db"))
    check(loaded == got, "retrieval:3 resumed, with the saved codebook: %s, learned %s" % (loaded, got))
    check("(0 new," in p.stderr and "(0 matched now" in p.stderr, "resumed run's summary: %r" % p.stderr)
    with open(os.path.join(tmp, "cb.bin"), "rb") as f:
        head = f.read(24)
    check(head[:8] == b"MNCODEBK" and struct.unpack("<4I", head[8:])[:2] == (1, 64),
          "codebook header %r" % head)

    # --codebook-out without retrieval: the same images, the same codebook.
    pairs("seq", "sequential:1", "--codebook-out", os.path.join(tmp, "cb2.bin"))
    with open(os.path.join(tmp, "cb.bin"), "rb") as f1, open(os.path.join(tmp, "cb2.bin"), "rb") as f2:
        check(f1.read() == f2.read(), "codebooks learned by two runs on the same images differ")

    # The saved codebook from here on: learning it again takes seconds.
    cb = ["--codebook", os.path.join(tmp, "cb.bin")]
    # Rows split over threads: the same pairs from 1 and 3 threads.
    one, _, _ = pairs("t1", "retrieval:2", *cb, "--threads", "1")
    three, _, _ = pairs("t3", "retrieval:2", *cb, "--threads", "3")
    check(one == three and len(one) >= 8, "retrieval:2 on 1 and 3 threads: %s, %s" % (one, three))
    r1, _, _ = pairs("r1", "retrieval:1", *cb)
    union, _, _ = pairs("u", "retrieval:1+sequential:1", *cb)
    seq = [(names[i], names[i + 1]) for i in range(len(names) - 1)]
    check(union == r1 + [q for q in seq if q not in r1],
          "retrieval:1+sequential:1: %s, want retrieval:1 %s then sequential:1's others" % (union, r1))
    check(all(scene_of[a] == scene_of[b] for a, b in r1), "retrieval:1 across scenes: %s" % r1)

    # Errors: one line, no database made.
    bad = os.path.join(tmp, "bad.bin")
    with open(bad, "wb") as f:
        f.write(b"MNCODEBK" + struct.pack("<4I", 1, 2, 3, 0) + struct.pack("<6f", *range(6)))
    for tag, args, status, msg in [
            ("cb-no-retrieval", ["--pairs", "sequential:1", "--codebook", bad], 2, "--codebook is for --pairs retrieval:K"),
            ("cb-both", ["--pairs", "retrieval:2", "--codebook", bad, "--codebook-out", bad], 2, "--codebook-out"),
            ("cb-dim", ["--pairs", "retrieval:2", "--codebook", bad], 1, "words of 3 floats, the model's descriptors have"),
            ("cb-missing", ["--pairs", "retrieval:2", "--codebook", os.path.join(tmp, "none.bin")], 1,
             "cannot open codebook"),
            ("spec", ["--pairs", "retrieval:2+"], 2, "--pairs: an empty part")]:
        db = os.path.join(tmp, tag + ".db")
        p = run([exe, "--images", images, "--database", db] + args + COMMON, status)
        one_error_line(p, tag, msg)
        check(not os.path.exists(db), "%s: a database was made" % tag)


def gps_app1(lat, lon, alt):
    """An APP1 EXIF segment (big-endian) whose IFD0 points to a GPS IFD."""
    def rationals(v):
        d = int(v)
        m = int((v - d) * 60)
        s = (v - d - m / 60.0) * 3600
        return [(d, 1), (m, 1), (int(round(s * 1000)), 1000)]
    entries = [(1, 2, 2, b"S\0" if lat < 0 else b"N\0"), (2, 5, 3, rationals(abs(lat))),
               (3, 2, 2, b"W\0" if lon < 0 else b"E\0"), (4, 5, 3, rationals(abs(lon)))]
    if alt is not None:
        entries += [(5, 1, 1, bytes([1 if alt < 0 else 0])), (6, 5, 1, [(int(round(abs(alt) * 10)), 10)])]
    ifd0 = struct.pack(">H", 1) + struct.pack(">HHII", 0x8825, 4, 1, 8 + 18) + struct.pack(">I", 0)
    gps_at = 8 + len(ifd0)
    data_at = gps_at + 2 + 12 * len(entries) + 4
    head, data = struct.pack(">H", len(entries)), b""
    for tag, typ, count, val in entries:
        raw = val if isinstance(val, bytes) else b"".join(struct.pack(">II", *r) for r in val)
        if len(raw) <= 4:
            field = raw.ljust(4, b"\0")
        else:
            field = struct.pack(">I", data_at + len(data))
            data += raw
        head += struct.pack(">HHI", tag, typ, count) + field
    tiff = b"MM" + struct.pack(">HI", 42, 8) + ifd0 + head + struct.pack(">I", 0) + data
    body = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def ecef(lat, lon, alt):
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    la, lo = math.radians(lat), math.radians(lon)
    n = a / math.sqrt(1 - e2 * math.sin(la) ** 2)
    return ((n + alt) * math.cos(la) * math.cos(lo), (n + alt) * math.cos(la) * math.sin(lo),
            (n * (1 - e2) + alt) * math.sin(la))


def spatial(exe, tmp, exif):
    images = os.path.join(tmp, "gps")
    os.mkdir(images)
    tex = textures()[0]
    # Positions: a street in Paris (100 m apart, one across the road), a
    # pair near Rio (south, west; one below sea level), one without GPS.
    places = {"a.jpg": (48.8566, 2.3522, 35.0), "b.jpg": (48.8575, 2.3522, None), "c.jpg": (48.8566, 2.3537, 35.0),
              "d.jpg": (-22.9068, -43.1729, 5.0), "e.jpg": (-22.9068, -43.1729, -20.0), "f.jpg": None,
              "g.jpg": (48.8600, 2.3522, 40.0)}
    for k, name in enumerate(sorted(places)):
        ok, buf = cv2.imencode(".jpg", view(tex, 20 + k), [cv2.IMWRITE_JPEG_QUALITY, 90])
        jpg = buf.tobytes()
        if places[name]:
            jpg = jpg[:2] + gps_app1(*places[name]) + jpg[2:]
        with open(os.path.join(images, name), "wb") as f:
            f.write(jpg)
    db, out = os.path.join(tmp, "gps.db"), os.path.join(tmp, "gps.txt")
    cmd = [exe, "--images", images, "--database", db, "--pairs", "spatial:1", "--pair-list", out] + COMMON
    if not exif:
        p = run(cmd, 2)
        one_error_line(p, "spatial without libexif", "built without libexif")
        return
    p = run(cmd)
    xyz = {n: ecef(v[0], v[1], v[2] or 0.0) for n, v in places.items() if v}
    names = sorted(xyz)
    want = set()
    for a in names:
        best = min((b for b in names if b != a), key=lambda b: (math.dist(xyz[a], xyz[b]), b))
        want.add(tuple(sorted((a, best))))
    got = read_pairs(out)
    check(got == sorted(want), "spatial:1: %s, want %s" % (got, sorted(want)))
    check("1 without GPS position (no spatial pairs)" in p.stderr, "summary: %r" % p.stderr)
    # The second nearest too, and the union with sequential pairs.
    out2 = os.path.join(tmp, "gps2.txt")
    run([exe, "--images", images, "--database", db, "--pairs", "spatial:2+sequential:1", "--pair-list", out2] + COMMON)
    want2 = set()
    for a in names:
        for b in sorted((b for b in names if b != a), key=lambda b: (math.dist(xyz[a], xyz[b]), b))[:2]:
            want2.add(tuple(sorted((a, b))))
    seq = [(x, y) for x, y in zip(sorted(places), sorted(places)[1:])]
    got2 = read_pairs(out2)
    check(got2 == sorted(want2) + [q for q in seq if q not in want2],
          "spatial:2+sequential:1: %s, want %s then %s" % (got2, sorted(want2), seq))


def main():
    exe, exif = sys.argv[1], sys.argv[2] == "yes"
    tmp = tempfile.mkdtemp(prefix="test_colmap_retrieval.")
    try:
        retrieval(exe, tmp)
        spatial(exe, tmp, exif)
    finally:
        shutil.rmtree(tmp)
    print("test_colmap_retrieval: %s" % ("ok" if failures == 0 else "%d failures" % failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
