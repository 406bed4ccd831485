#!/usr/bin/python3
"""test_affine_views: matchnet-match with and without --affine on views of
samples/data/box_in_scene.png under a strong change of viewpoint.

    test_affine_views.py MATCHNET_MATCH SOURCE_DIR [COLMAP]

(CTest runs it without COLMAP; MN_TEST_LONG=1, as scripts/test_long.sh
sets, takes colmap from PATH.)

Each view is the photograph turned by 20 degrees, tilted by t (blurred
across the tilt as a camera would, sigma 0.8 sqrt(t^2 - 1) as in ASIFT,
then shrunk by t with INTER_AREA) and turned by 30 degrees (50 in all), or
by -20 (a tilt along a 20-degree axis, no turn): an exact affine map A, so
a match is correct when A takes its first keypoint within 3 px of its
second. Prints correct / reported matches per tilt for similarity
patches, affine-normalised patches (--affine) and, for reference, OpenCV's
SIFT with Lowe's ratio test 0.8 and, given
colmap, COLMAP's SIFT with and without --SiftExtraction.estimate_affine_shape
(2000 features, CPU, the same ratio test on its descriptors): the fair
baseline for affine shapes (COLMAP 3.8's CPU path with affine shapes is not
rotation invariant: turned views defeat it). Fails when affine shapes stop paying
off where they should: at tilt 4 --affine must find at least twice the
correct matches of similarity patches (measured: 5-7x), at tilt 2.5 at
least as many. With the shipped model (trained on similarity patches)
--affine loses matches on mild changes: turned 50 degrees without tilt it
must keep 60% of them (measured: about 80%); the table shows where the two
cross."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import cv2
import numpy as np

exe, src = sys.argv[1], sys.argv[2]
colmap = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
if colmap is None and os.environ.get("MN_TEST_LONG") == "1":  # scripts/test_long.sh
    colmap = shutil.which("colmap")
photo = cv2.imread(os.path.join(src, "samples", "data", "box_in_scene.png"), cv2.IMREAD_GRAYSCALE)
assert photo is not None


def rotation(img, deg):
    """img turned by deg about its centre onto a canvas that holds it all: (image, 2x3 map)."""
    h, w = img.shape
    a = np.deg2rad(deg)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = (np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]]) - [(w - 1) / 2, (h - 1) / 2]) @ R.T
    lo, hi = corners.min(0), corners.max(0)
    M = np.hstack([R, (-lo - R @ [(w - 1) / 2, (h - 1) / 2])[:, None]])
    size = (int(np.ceil(hi[0] - lo[0])) + 1, int(np.ceil(hi[1] - lo[1])) + 1)
    return cv2.warpAffine(img, M, size, flags=cv2.INTER_LINEAR, borderValue=0), M


def compose(M2, M1):
    """x -> M2 (M1 x) for 2x3 maps."""
    return np.hstack([M2[:, :2] @ M1[:, :2], (M2[:, :2] @ M1[:, 2] + M2[:, 2])[:, None]])


def view(tilt, turn):
    img, M = rotation(photo, 20)
    if tilt > 1:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=1e-3, sigmaY=0.8 * np.sqrt(tilt * tilt - 1))
        h = int(round(img.shape[0] / tilt))
        s = h / img.shape[0]
        img = cv2.resize(img, (img.shape[1], h), interpolation=cv2.INTER_AREA)
        # resize's pixel centres: y' = (y + 0.5) s - 0.5
        M = compose(np.array([[1, 0, 0], [0, s, 0.5 * s - 0.5]]), M)
    img, M3 = rotation(img, turn - 20)
    return img, compose(M3, M)


def correct(p1, p2, A):
    if len(p1) == 0:
        return 0
    q = p1 @ A[:, :2].T + A[:, 2]
    return int((np.linalg.norm(q - p2, axis=1) < 3.0).sum())


def matchnet(a, b, A, extra, tmp):
    out = os.path.join(tmp, "m.json")
    r = subprocess.run([exe, "-o", out] + extra + [a, b], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.load(open(out))
    k1 = np.array(d["image1"]["keypoints"])[:, :2]
    k2 = np.array(d["image2"]["keypoints"])[:, :2]
    m = np.array(d["matches"], dtype=np.float64).reshape(-1, 3).astype(int)
    return correct(k1[m[:, 0]], k2[m[:, 1]], A), len(m)


def sift(i1, i2, A):
    s = cv2.SIFT_create(2000)
    k1, d1 = s.detectAndCompute(i1, None)
    k2, d2 = s.detectAndCompute(i2, None)
    good = [x for x, y in cv2.BFMatcher().knnMatch(d1, d2, k=2) if x.distance < 0.8 * y.distance]
    p1 = np.array([k1[x.queryIdx].pt for x in good]).reshape(-1, 2)
    p2 = np.array([k2[x.trainIdx].pt for x in good]).reshape(-1, 2)
    return correct(p1, p2, A), len(good)


def colmap_sift(a, b, A, affine, tmp):
    """COLMAP's SIFT on the pair (CPU, 2000 features), its descriptors
    matched with the ratio test 0.8; None when colmap fails."""
    images = os.path.join(tmp, "colmap_images")
    os.makedirs(images, exist_ok=True)
    for name, path in (("a.png", a), ("b.png", b)):
        cv2.imwrite(os.path.join(images, name), cv2.imread(path, cv2.IMREAD_GRAYSCALE))
    db = os.path.join(tmp, "colmap.db")
    # COLMAP 3.8's feature_extractor now and then hangs after its work is
    # done (test_colmap_keypoints.c): a time limit and a retry.
    for attempt in range(3):
        for f in (db, db + "-wal", db + "-shm"):
            if os.path.exists(f):
                os.remove(f)
        try:
            r = subprocess.run([colmap, "feature_extractor", "--database_path", db, "--image_path", images,
                                "--SiftExtraction.use_gpu", "0", "--SiftExtraction.max_num_features", "2000",
                                "--SiftExtraction.estimate_affine_shape", "1" if affine else "0"],
                               capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            continue
        if r.returncode == 0:
            break
    else:
        return None
    con = sqlite3.connect(db)
    ids = dict(con.execute("SELECT name, image_id FROM images"))
    kp, desc = [], []
    for name in ("a.png", "b.png"):
        rows, cols, data = con.execute("SELECT rows, cols, data FROM keypoints WHERE image_id = ?",
                                       (ids[name],)).fetchone()
        kp.append(np.frombuffer(data, np.float32).reshape(rows, cols)[:, :2] - 0.5)  # COLMAP's corner origin
        rows, cols, data = con.execute("SELECT rows, cols, data FROM descriptors WHERE image_id = ?",
                                       (ids[name],)).fetchone()
        desc.append(np.frombuffer(data, np.uint8).reshape(rows, cols).astype(np.float32))
    con.close()
    good = [x for x, y in cv2.BFMatcher().knnMatch(desc[0], desc[1], k=2) if x.distance < 0.8 * y.distance]
    p1 = np.array([kp[0][x.queryIdx] for x in good]).reshape(-1, 2)
    p2 = np.array([kp[1][x.trainIdx] for x in good]).reshape(-1, 2)
    return correct(p1, p2, A), len(good)


failures = 0


def check(cond, message):
    global failures
    if not cond:
        failures += 1
        print("FAIL: " + message)


results = {}
with tempfile.TemporaryDirectory() as tmp:
    a = os.path.join(tmp, "a.png")
    cv2.imwrite(a, photo)
    print("tilt turn  similarity      --affine        SIFT (OpenCV)   " +
          ("COLMAP SIFT     COLMAP affine   " if colmap else "") + "(correct / matches)")
    # The checked views; MN_TEST_LONG=1 adds the two the table only shows.
    views = ((1.0, 50), (2.0, 50), (4.0, 50), (1.6, 0), (2.5, 0), (4.0, 0))
    if os.environ.get("MN_TEST_LONG") != "1":
        views = tuple(v for v in views if v not in ((2.0, 50), (1.6, 0)))
    for tilt, turn in views:
        img, A = view(tilt, turn)
        b = os.path.join(tmp, "b.png")
        cv2.imwrite(b, img)
        sim = matchnet(a, b, A, [], tmp)
        aff = matchnet(a, b, A, ["--affine"], tmp)
        ref = sift(photo, img, A)
        results[tilt, turn] = (sim[0], aff[0])
        line = "%-4.1f %-4d %4d / %-8d %4d / %-8d %4d / %-8d" % (tilt, turn, sim[0], sim[1], aff[0], aff[1], ref[0], ref[1])
        if colmap:
            for affine in (False, True):
                c = colmap_sift(a, b, A, affine, tmp)
                line += " %4d / %-8d" % c if c else " (colmap failed)"
        print(line, flush=True)
sim1, aff1 = results[1.0, 50]
check(sim1 >= 300, "tilt 1: only %d correct matches without --affine" % sim1)
check(aff1 >= 0.6 * sim1, "tilt 1: --affine keeps %d of %d correct matches" % (aff1, sim1))
sim25, aff25 = results[2.5, 0]
check(aff25 >= sim25, "tilt 2.5: --affine finds %d correct matches, similarity patches %d" % (aff25, sim25))
for turn in (0, 50):
    sim4, aff4 = results[4.0, turn]
    check(aff4 >= 2 * sim4 and aff4 >= 15,
          "tilt 4 turn %d: --affine finds %d correct matches, similarity patches %d" % (turn, aff4, sim4))
print("test_affine_views: %s" % ("FAILED" if failures else "passed"))
sys.exit(1 if failures else 0)
