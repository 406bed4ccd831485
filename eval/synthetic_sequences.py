#!/usr/bin/python3
"""Homography sequences in the Oxford layout, made from held-out training photos.

    /usr/bin/python3 eval/synthetic_sequences.py PHOTOS_DIR OUT_DIR [--every 8] [--offset 0]

A validation set for image-level matching: what matchnet-eval-matching
measures on ../shared/data/eval/homography/oxford, but on photographs that
no model trains on, so that matching rules, thresholds and patch options
can be chosen on it (the evaluation sets are for the final figures only).
The photos are those python/train_default.sh holds out of the synthetic
training set (every 8th of PHOTOS_DIR's images, sorted by path, from
--offset 0).

Each photo (grey, scaled so that its shorter side is 900 px) gives two
sequences of img1..img6 (800 x 640, the Oxford size) and H1to2p..H1to6p
(img1 pixels to imgN, as Oxford's): one "viewpoint" sequence (the photo as
a plane turned 15..55 degrees about a vertical axis, as graf) and, by
turns, a "zoom" (zoom 1.25..2.8 with rotation 10..50 degrees, as boat),
"blur" (Gaussian sigma 1..5, as bikes) or "light" sequence (exposure
1/1.3..1/3.5 with gamma 1..1.4, as leuven). Views are rendered from the whole photo, so the
borders are real image where the photo reaches. Deterministic; writes
OUT_DIR/NAME-KIND/ per sequence (OUT_DIR must not exist yet).
"""
import argparse
import os
import shutil
import sys

import cv2
import numpy as np

W, H = 800, 640
EXT = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def centre(w, h):
    """Translation taking image coordinates to coordinates about the centre."""
    return np.array([[1, 0, -(w - 1) / 2], [0, 1, -(h - 1) / 2], [0, 0, 1]], dtype=np.float64)


def tilt(deg, f=800.0):
    """A plane facing the camera turned by deg about the vertical axis through
    its centre (centred coordinates; focal length f, in pixels), scaled so
    that the centre keeps its scale along y."""
    t = np.radians(deg)
    return np.array([[np.cos(t), 0, 0], [0, 1, 0], [np.sin(t) / f, 0, 1]], dtype=np.float64)


def similarity(scale, deg):
    t = np.radians(deg)
    c, s = scale * np.cos(t), scale * np.sin(t)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)


def views(photo, kind):
    """img1 and the five (image, H1toN) of one sequence."""
    ph, pw = photo.shape
    # Photo coordinates -> img1: the central W x H window.
    to1 = np.linalg.inv(centre(W, H)) @ centre(pw, ph)
    img1 = cv2.warpPerspective(photo, to1, (W, H), flags=cv2.INTER_LINEAR)
    out = []
    for i in range(5):
        g = np.eye(3)
        img = photo
        if kind == "viewpoint":
            g = tilt(15 + 10 * i) @ similarity(1.0, 3 * (i % 2 * 2 - 1))
        elif kind == "zoom":
            g = similarity(1.25 * (2.8 / 1.25) ** (i / 4), 10 + 10 * i)
        elif kind == "blur":
            s = 1.0 + i
            img = cv2.GaussianBlur(photo, (0, 0), s)
        elif kind == "light":
            gamma, exposure = 1.0 + 0.1 * i, 1.3 * (3.5 / 1.3) ** (i / 4)
            img = np.clip(255.0 * (photo / 255.0) ** gamma / exposure, 0, 255).astype(np.uint8)
        # img1 -> imgN: about img1's centre.
        h1n = np.linalg.inv(centre(W, H)) @ g @ centre(W, H)
        # Rendered from the photo (photo -> img1 -> imgN), so zooming in
        # samples it more finely. Bilinear: the strongest tilt shrinks the
        # far side to about 0.57x, where it aliases slightly, as a camera
        # without an anti-aliasing filter would.
        m = h1n @ to1
        v = cv2.warpPerspective(img, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        out.append((v, h1n / h1n[2, 2]))
    return img1, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("photos")
    ap.add_argument("out")
    ap.add_argument("--every", type=int, default=8)
    ap.add_argument("--offset", type=int, default=0)
    o = ap.parse_args()
    if o.every < 1 or not 0 <= o.offset < o.every:
        sys.exit("synthetic_sequences.py: --every %d --offset %d: expected every >= 1 and 0 <= offset < every"
                 % (o.every, o.offset))
    # matchnet-patchset's list (eval/patchset.cpp, find_images): hidden
    # names skipped, linked folders followed, full paths sorted.
    paths = []
    for root, dirs, files in os.walk(o.photos, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        paths += [os.path.join(root, f) for f in files if not f.startswith(".") and f.lower().endswith(EXT)]
    paths = sorted(paths)[o.offset::o.every]
    if not paths:
        sys.exit("synthetic_sequences.py: no images in %s" % o.photos)
    if os.path.exists(o.out):
        sys.exit("synthetic_sequences.py: %s exists" % o.out)
    tmp = o.out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # a killed run's
    os.makedirs(tmp)
    second = ["zoom", "blur", "light"]
    n = 0
    try:
        for i, path in enumerate(paths):
            img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise RuntimeError("cannot read %s" % path)
            s = 900.0 / min(img.shape)  # both sides then cover W x H
            img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)),
                             interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
            name = os.path.splitext(os.path.basename(path))[0].replace(" ", "_")
            for kind in ("viewpoint", second[i % 3]):
                d = os.path.join(tmp, "%02d-%s-%s" % (i, name[:24], kind))
                os.makedirs(d)
                img1, vs = views(img, kind)
                cv2.imwrite(os.path.join(d, "img1.png"), img1)
                for k, (v, h) in enumerate(vs, start=2):
                    cv2.imwrite(os.path.join(d, "img%d.png" % k), v)
                    np.savetxt(os.path.join(d, "H1to%dp" % k), h, fmt="%.10e")
                n += 1
        os.rename(tmp, o.out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, RuntimeError):
            sys.exit("synthetic_sequences.py: %s" % e)
        raise
    print("synthetic_sequences.py: %d sequences from %d photos in %s" % (n, len(paths), o.out))


if __name__ == "__main__":
    main()
