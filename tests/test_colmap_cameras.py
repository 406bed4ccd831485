#!/usr/bin/python3
"""CTest test of matchnet-colmap's cameras: EXIF focal-length priors and --camera-model.

    test_colmap_cameras.py PATH/TO/matchnet-colmap yes|no [PATH/TO/colmap]

yes|no: whether matchnet-colmap was built with libexif. The test writes its
own JPEGs (OpenCV encodes the pixels, the EXIF APP1 segment is built here
byte by byte, in both byte orders) with the tags COLMAP 3.8 reads:
FocalLengthIn35mmFilm, FocalLength, PixelXDimension, FocalPlaneXResolution,
FocalPlaneResolutionUnit. Expected cameras come from COLMAP's rules as
written out below (Bitmap::ExifFocalLength, ImageReader's default 1.2 x the
longer side, the camera models' ids, parameter counts and initial values
from src/base/camera_models.h); with colmap given, the cameras table of
`colmap feature_extractor` on the same files must be identical (model,
size, parameter bytes, prior_focal_length), for every --camera-model.
"""
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile

import cv2
import numpy as np

# COLMAP 3.8's camera models: name -> (id, number of parameters, number of
# focal parameters, extra parameters' initial values).
MODELS = {
    "SIMPLE_PINHOLE": (0, 3, 1, []),
    "PINHOLE": (1, 4, 2, []),
    "SIMPLE_RADIAL": (2, 4, 1, [0]),
    "RADIAL": (3, 5, 1, [0, 0]),
    "OPENCV": (4, 8, 2, [0] * 4),
    "OPENCV_FISHEYE": (5, 8, 2, [0] * 4),
    "FULL_OPENCV": (6, 12, 2, [0] * 8),
    "FOV": (7, 5, 2, [1e-2]),
    "SIMPLE_RADIAL_FISHEYE": (8, 4, 1, [0]),
    "RADIAL_FISHEYE": (9, 5, 1, [0, 0]),
    "THIN_PRISM_FISHEYE": (10, 12, 2, [0] * 8),
}

SHORT, LONG, RATIONAL = 3, 4, 5
FOCAL_35, FOCAL, PIXEL_X, FP_XRES, FP_UNIT = 0xA405, 0x920A, 0xA002, 0xA20E, 0xA210


def exif_app1(tags, big_endian):
    """An APP1 segment: IFD0 holding only the Exif IFD pointer, then the Exif IFD with tags [(tag, type, value)]."""
    e = ">" if big_endian else "<"

    def ifd(entries, start):
        entries = sorted(entries)
        data_at = start + 2 + 12 * len(entries) + 4
        head, data = struct.pack(e + "H", len(entries)), b""
        for tag, typ, val in entries:
            raw = {SHORT: lambda v: struct.pack(e + "H", v), LONG: lambda v: struct.pack(e + "I", v),
                   RATIONAL: lambda v: struct.pack(e + "II", *v)}[typ](val)
            if len(raw) <= 4:
                field = raw.ljust(4, b"\0")
            else:
                field = struct.pack(e + "I", data_at + len(data))
                data += raw
            head += struct.pack(e + "HHI", tag, typ, 1) + field
        return head + struct.pack(e + "I", 0) + data

    exif_at = 8 + len(ifd([(0x8769, LONG, 0)], 8))
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    tiff += ifd([(0x8769, LONG, exif_at)], 8) + ifd(tags, exif_at)
    body = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def write_jpeg(path, img, tags, big_endian=False):
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    jpg = buf.tobytes()
    assert ok and jpg[:2] == b"\xff\xd8"
    if tags:
        jpg = jpg[:2] + exif_app1(tags, big_endian) + jpg[2:]
    with open(path, "wb") as f:
        f.write(jpg)


def expected_focal(tags, w, h):
    """COLMAP 3.8's Bitmap::ExifFocalLength (camera database aside), or None."""
    t = {tag: val for tag, _, val in tags}
    m = max(w, h)
    if t.get(FOCAL_35, 0) > 0:
        return t[FOCAL_35] / 35.0 * m
    if FOCAL not in t:
        return None
    mm = float("%.1f" % (t[FOCAL][0] / t[FOCAL][1]))  # FreeImage formats it "%.1f mm"
    if PIXEL_X not in t or FP_XRES not in t or t.get(FP_UNIT) not in (2, 3):
        return None
    sensor = t[FP_XRES][1] / t[FP_XRES][0] * t[PIXEL_X] * (25.4 if t[FP_UNIT] == 2 else 10.0)
    return mm / sensor * m


def cameras(db_path):
    db = sqlite3.connect(db_path)
    rows = db.execute("SELECT name, model, width, height, params, prior_focal_length "
                      "FROM images JOIN cameras USING(camera_id) ORDER BY name").fetchall()
    db.close()
    return {r[0]: r[1:] for r in rows}


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


def colmap_cameras(colmap, images, db, model=None):
    cmd = [colmap, "feature_extractor", "--database_path", db, "--image_path", images,
           "--SiftExtraction.use_gpu", "0", "--SiftExtraction.num_threads", "1"]
    if model:
        cmd += ["--ImageReader.camera_model", model]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    # COLMAP 3.8's feature_extractor now and then hangs after its work is
    # done (its thread pool's shutdown); such a run is retried.
    for attempt in range(3):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=60)
            break
        except subprocess.TimeoutExpired:
            print("%s: no exit after 60 s, retried" % " ".join(cmd), file=sys.stderr)
    else:
        check(False, "%s hangs" % " ".join(cmd))
        return {}
    check(p.returncode == 0, "%s failed: %s" % (" ".join(cmd), p.stdout[-2000:]))
    return cameras(db)


def main():
    exe, exif = sys.argv[1], sys.argv[2] == "yes"
    colmap = sys.argv[3] if len(sys.argv) > 3 else None
    tmp = tempfile.mkdtemp(prefix="test_colmap_cameras.")
    rng = np.random.default_rng(5)
    land = cv2.GaussianBlur((rng.random((120, 160)) * 255).astype(np.uint8), (0, 0), 2)
    portrait = np.ascontiguousarray(land.T)
    W = 160
    # name -> (image, tags, big endian)
    cases = {
        "f35.jpg": (land, [(FOCAL_35, SHORT, 50)], False),
        "f35_motorola.jpg": (land, [(FOCAL_35, SHORT, 28)], True),
        "f35_portrait.jpg": (portrait, [(FOCAL_35, SHORT, 24)], False),
        "plane_inch.jpg": (land, [(FOCAL, RATIONAL, (585, 100)), (PIXEL_X, SHORT, W), (FP_XRES, RATIONAL, (4000, 3)),
                                  (FP_UNIT, SHORT, 2)], False),
        "plane_inch_int.jpg": (land, [(FOCAL, RATIONAL, (58, 10)), (PIXEL_X, LONG, W), (FP_XRES, RATIONAL, (2000, 1)),
                                      (FP_UNIT, SHORT, 2)], True),
        "plane_cm.jpg": (land, [(FOCAL, RATIONAL, (4321, 1000)), (PIXEL_X, LONG, 2 * W), (FP_XRES, RATIONAL, (8000, 6)),
                                (FP_UNIT, SHORT, 3)], False),
        "f35_zero_then_plane.jpg": (land, [(FOCAL_35, SHORT, 0), (FOCAL, RATIONAL, (585, 100)), (PIXEL_X, SHORT, W),
                                           (FP_XRES, RATIONAL, (4000, 3)), (FP_UNIT, SHORT, 2)], False),
        "focal_only.jpg": (land, [(FOCAL, RATIONAL, (585, 100))], False),
        "plane_no_unit.jpg": (land, [(FOCAL, RATIONAL, (585, 100)), (PIXEL_X, SHORT, W), (FP_XRES, RATIONAL, (4000, 3)),
                                     (FP_UNIT, SHORT, 1)], False),
        "no_exif.jpg": (land, [], False),
    }
    images = os.path.join(tmp, "images")
    os.mkdir(images)
    for name, (img, tags, be) in cases.items():
        write_jpeg(os.path.join(images, name), img, tags, be)
    cv2.imwrite(os.path.join(images, "plain.png"), land)

    # Default camera model (SIMPLE_RADIAL) on every case.
    db = os.path.join(tmp, "matchnet.db")
    run([exe, "--images", images, "--database", db, "--max-keypoints", "40", "--threads", "1", "--pairs",
         "sequential:1"])
    got = cameras(db)
    for name, (img, tags, _) in list(cases.items()) + [("plain.png", (land, [], False))]:
        h, w = img.shape
        f = expected_focal(tags, w, h) if exif else None
        want = (2, w, h, [f if f else 1.2 * max(w, h), w / 2, h / 2, 0.0], 1 if f else 0)
        if name not in got:
            check(False, "%s: no camera" % name)
            continue
        model, gw, gh, params, prior = got[name]
        p = list(np.frombuffer(params, np.float64))
        ok = (model, gw, gh, prior) == (want[0], want[1], want[2], want[4]) and np.allclose(p, want[3], rtol=1e-12)
        check(ok, "%s: camera (model %d, %d x %d, params %s, prior %d), want (model %d, %d x %d, %s, prior %d)"
              % (name, model, gw, gh, p, prior, want[0], want[1], want[2], want[3], want[4]))
        print("%-26s f = %9.4f prior %d" % (name, p[0], prior))
    if colmap:
        theirs = colmap_cameras(colmap, images, os.path.join(tmp, "colmap.db"))
        for name in sorted(got):
            if not exif and cases.get(name, (None, []))[1]:
                continue  # without libexif only the images without EXIF agree
            check(got[name] == theirs.get(name), "%s: matchnet-colmap's camera %s, colmap feature_extractor's %s"
                  % (name, got[name], theirs.get(name)))
        print("colmap feature_extractor writes the same cameras for %d images" % len(got))

    # --camera-model: each of COLMAP's models on one image with a known prior.
    one = os.path.join(tmp, "one")
    os.mkdir(one)
    shutil.copy(os.path.join(images, "f35.jpg"), one)
    f = 50 / 35.0 * 160 if exif else 1.2 * 160
    for name, (mid, nparams, nfocal, extra) in MODELS.items():
        db = os.path.join(tmp, "model_%s.db" % name)
        run([exe, "--images", one, "--database", db, "--max-keypoints", "40", "--threads", "1", "--camera-model", name])
        got = cameras(db).get("f35.jpg")
        want = [f] * nfocal + [80.0, 60.0] + extra
        if not got:
            check(False, "--camera-model %s: no camera" % name)
            continue
        p = list(np.frombuffer(got[3], np.float64))
        check(got[0] == mid and len(p) == nparams and np.allclose(p, want, rtol=1e-12),
              "--camera-model %s: model %d with %d params %s, want model %d with %s" % (name, got[0], len(p), p, mid,
                                                                                         want))
        if colmap:
            theirs = colmap_cameras(colmap, one, os.path.join(tmp, "colmap_%s.db" % name), name).get("f35.jpg")
            check(got == theirs, "--camera-model %s: camera %s, colmap's %s" % (name, got, theirs))
    print("--camera-model: %d models checked%s" % (len(MODELS), " against colmap" if colmap else ""))

    # --single-camera with a model: one camera for the images of one size.
    two = os.path.join(tmp, "two")
    os.mkdir(two)
    for n in ("no_exif.jpg", "plain.png"):
        shutil.copy(os.path.join(images, n), two)
    db = os.path.join(tmp, "single.db")
    run([exe, "--images", two, "--database", db, "--max-keypoints", "40", "--single-camera", "--camera-model", "PINHOLE"])
    c = sqlite3.connect(db)
    n_cam, model = c.execute("SELECT count(*), max(model) FROM cameras").fetchone()
    c.close()
    check(n_cam == 1 and model == 1, "--single-camera --camera-model PINHOLE: %d cameras, model %s" % (n_cam, model))

    # Usage errors: exit status 2, one line, no database made.
    p = run([exe, "--images", one, "--database", os.path.join(tmp, "bad.db"), "--camera-model", "PINHOL"], want=2)
    check(p.stderr.count("\n") == 1 and "SIMPLE_RADIAL" in p.stderr, "unknown model: stderr %r" % p.stderr)
    p = run([exe, "--images", one, "--database", os.path.join(tmp, "matchnet.db"), "--reuse-keypoints",
             "--camera-model", "PINHOLE"], want=2)
    check(p.stderr.count("\n") == 1, "--reuse-keypoints with --camera-model: stderr %r" % p.stderr)
    check(not os.path.exists(os.path.join(tmp, "bad.db")), "a usage error made a database")

    if failures == 0:
        shutil.rmtree(tmp)
        print("test_colmap_cameras: passed")
    else:
        print("test_colmap_cameras: %d failures (files in %s)" % (failures, tmp))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
