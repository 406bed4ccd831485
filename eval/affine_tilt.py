#!/usr/bin/python3
"""Affine against similarity patches on synthetic tilts of photographs.

    /usr/bin/python3 eval/affine_tilt.py PHOTO [PHOTO ...] [--model M] [--keypoints N]

Each photograph (grey, longer side 800 px) is warped by two affine maps
(tilt 2:1 turned 0.5 rad, tilt 1.67:1 turned -0.8 rad); SIFT keypoints
(the library's detector) are found independently in each view and paired
through the map (1.5 px, size within 0.7-1.4x of the map's scale). For the
pairs, descriptors of similarity patches (MatchNet.compute) and of
affine-normalised ones (affine=True) are compared: the median distance of
the pairs, and the share of pairs farther apart than the nearest 5% of
non-matching pairs (each view-1 keypoint against a shuffled view-2 one),
in all and split by the two views' mn_affine_result codes. Uses the
library built in build/ (PYTHONPATH=build/python) or the installed one.
Use training photographs, never the evaluation sets.
"""
import argparse
import os
import sys

import cv2
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "build", "python"))
import matchnet as mn  # noqa: E402

RESULTS = ["converged", "not converged", "too anisotropic", "flat"]


def warp(img, tilt, rot):
    h, w = img.shape
    c = np.array([w / 2, h / 2])
    r = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
    a = r @ np.diag([1.0, tilt])
    m = np.eye(3)
    m[:2, :2] = a
    m[:2, 2] = c - a @ c
    return cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR), m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("photos", nargs="+")
    ap.add_argument("--model", default=None)
    ap.add_argument("--keypoints", type=int, default=1500)
    o = ap.parse_args()
    model = mn.Model(o.model) if o.model else None
    sim = mn.MatchNet(model=model, max_keypoints=o.keypoints)
    aff = mn.MatchNet(model=model, max_keypoints=o.keypoints, affine=True)
    pos = {"similarity": [], "affine": []}
    neg = {"similarity": [], "affine": []}
    codes = []
    rng = np.random.default_rng(0)
    for path in o.photos:
        img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if img is None:
            sys.exit("affine_tilt.py: cannot read %s" % path)
        s = 800 / max(img.shape)
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        for tilt, rot in [(0.5, 0.5), (0.6, -0.8)]:
            img2, m = warp(img, tilt, rot)
            k1, k2 = sim.detect(img), sim.detect(img2)
            if not k1 or not k2:
                continue
            p1 = np.array([k.pt for k in k1])
            p2 = np.array([k.pt for k in k2])
            q = cv2.perspectiveTransform(p1.reshape(-1, 1, 2), m).reshape(-1, 2)
            d = np.linalg.norm(q[:, None, :] - p2[None, :, :], axis=2)
            j = d.argmin(1)
            scale = np.sqrt(abs(np.linalg.det(m[:2, :2])))
            ratio = np.array([k2[jj].size / (k1[i].size * scale) for i, jj in enumerate(j)])
            ok = (d[np.arange(len(j)), j] < 1.5) & (ratio > 0.7) & (ratio < 1.4)
            i1 = np.where(ok)[0]
            i2 = j[i1]
            shuffled = rng.permutation(i2)
            for name, net in (("similarity", sim), ("affine", aff)):
                d1, d2 = net.compute(img, k1)[1], net.compute(img2, k2)[1]
                pos[name] += list(np.linalg.norm(d1[i1] - d2[i2], axis=1))
                neg[name] += list(np.linalg.norm(d1[i1] - d2[shuffled], axis=1))
            r1, r2 = sim.affine_shapes(img, k1)[1], sim.affine_shapes(img2, k2)[1]
            codes += list(zip(r1[i1], r2[i2]))
    codes = np.array(codes).reshape(-1, 2)
    print("%d matching pairs from %d photographs" % (len(codes), len(o.photos)))
    far = {}
    for name in pos:
        p, n = np.array(pos[name]), np.array(neg[name])
        far[name] = np.percentile(n, 5)
        print("%-10s median distance %.3f, beyond the nearest 5%% of non-matching pairs %.3f" % (
            name, np.median(p), (p > far[name]).mean()))
    for c1 in range(4):
        for c2 in range(c1, 4):
            sel = ((codes[:, 0] == c1) & (codes[:, 1] == c2)) | ((codes[:, 0] == c2) & (codes[:, 1] == c1))
            if sel.sum() < 20:
                continue
            row = ["%s / %s: %d pairs" % (RESULTS[c1], RESULTS[c2], sel.sum())]
            for name in pos:
                p = np.array(pos[name])[sel]
                row.append("%s median %.3f beyond %.3f" % (name, np.median(p), (p > far[name]).mean()))
            print("  " + "; ".join(row))


if __name__ == "__main__":
    main()
