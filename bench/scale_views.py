#!/usr/bin/python3
"""Render a synthetic photo collection for bench/scale.sh.

    scale_views.py OUT_DIR N [--seed S]

Writes OUT_DIR/view00000.jpg .. view{N-1}.jpg: 640 x 480 greyscale JPEG views
(quality 92) of one large planar scene, an 8192 x 8192 canvas of
multi-octave value noise with random discs, boxes and strokes (so SIFT
finds well over 1,000 keypoints per view). Each view is a perspective warp
of a patch of about 800 x 600 canvas pixels (rotation within +-20 degrees,
scale 0.8-1.25, mild tilt) whose centre walks a serpentine path over the
canvas, 300 px a step, like an aerial survey: consecutive views overlap
by about half, the next row of the path overlaps too, and views far apart
on the path see other parts of the scene. After 576 positions the path
starts again, offset by half a step, with new angles (a second pass).
The first N views are the same for every N (fixed seed), so smaller
collections are prefixes of larger ones.
"""
import os
import sys

import cv2
import numpy as np

CANVAS = 8192
W, H = 640, 480
STEP = 300
MARGIN = 700


def canvas(rng):
    img = np.zeros((CANVAS, CANVAS), np.float32)
    for cells, amp in ((8, 0.35), (32, 0.3), (128, 0.2), (512, 0.15)):
        small = rng.random((cells, cells), dtype=np.float32)
        img += amp * cv2.resize(small, (CANVAS, CANVAS), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img * 255, 0, 255).astype(np.uint8)
    # Shapes: corners and blobs at many scales.
    n = 60000
    xs = rng.integers(0, CANVAS, n)
    ys = rng.integers(0, CANVAS, n)
    kinds = rng.integers(0, 3, n)
    sizes = (4 + 40 * rng.random(n) ** 2).astype(int)
    shades = rng.integers(0, 256, n)
    for x, y, k, s, c in zip(xs.tolist(), ys.tolist(), kinds.tolist(), sizes.tolist(), shades.tolist()):
        if k == 0:
            cv2.circle(img, (x, y), s, c, -1, cv2.LINE_AA)
        elif k == 1:
            cv2.rectangle(img, (x, y), (x + s, y + s * 2 // 3), c, -1)
        else:
            cv2.line(img, (x, y), (x + s * 2, y + s), c, 2, cv2.LINE_AA)
    return img


def positions():
    """Serpentine path of view centres, then the same offset by half a step."""
    per_axis = (CANVAS - 2 * MARGIN) // STEP
    for p in range(1000):
        off = (p % 2) * STEP // 2
        for r in range(per_axis):
            cols = range(per_axis) if r % 2 == 0 else range(per_axis - 1, -1, -1)
            for c in cols:
                yield MARGIN + off + c * STEP, MARGIN + off + r * STEP


def main():
    if len(sys.argv) not in (3, 5) or (len(sys.argv) == 5 and sys.argv[3] != "--seed"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    out, n = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[4]) if len(sys.argv) == 5 else 17
    rng = np.random.default_rng(seed)
    img = canvas(rng)
    os.makedirs(out, exist_ok=True)
    pos = positions()
    for k in range(n):
        cx, cy = next(pos)
        ang = np.deg2rad(rng.uniform(-20, 20))
        scale = np.exp(rng.uniform(np.log(0.8), np.log(1.25)))
        hw, hh = 400 * scale, 300 * scale
        # Source quadrilateral: a rotated rectangle with corners jittered (tilt).
        corners = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
        corners += rng.uniform(-0.08, 0.08, corners.shape) * np.array([hw, hh])
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        src = (corners @ rot.T + np.array([cx, cy])).astype(np.float32)
        dst = np.array([[0, 0], [W, 0], [W, H], [0, H]], np.float32)
        M = cv2.getPerspectiveTransform(src, dst)
        view = cv2.warpPerspective(img, M, (W, H), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
        path = os.path.join(out, "view%05d.jpg" % k)
        if not cv2.imwrite(path, view, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            print("scale_views.py: cannot write %s" % path, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
