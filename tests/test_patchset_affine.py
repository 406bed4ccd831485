#!/usr/bin/python3
"""CTest test of `matchnet-patchset --affine-orientation` and its frame test.

    test_patchset_affine.py PATH_TO_MATCHNET_PATCHSET SAMPLE_IMAGE

With affine patches, a keypoint pair is a correspondence only where the two
estimated frames agree with the homography (frames_agree in
eval/patchset.cpp: Ab^-1 J Aa within 20 degrees and a 1.3 stretch of the
identity). Two Oxford-layout sequences made from the sample image check
that rule where its answer is known:
- a quarter turn (np.rot90, exact): with the detector's angle kept, the
  frames turn with the image, so almost no pair may be left out (a
  Jacobian applied the wrong way round would leave out nearly all: they
  would disagree by 180 degrees);
- a 1.6:1 stretch along x: the estimated ellipses follow the stretch, so
  most pairs agree (without J, M would stretch by 1.6 > 1.3 and all be
  left out), yet some are left out (the test runs).
Similarity sets print no such count; a bad orientation name is refused.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np


def write_sequence(d, img1, img2, h):
    """The Oxford layout needs img1..img6: views 2-6 are all img2."""
    os.makedirs(d)
    cv2.imwrite(os.path.join(d, "img1.png"), img1)
    for k in range(2, 7):
        cv2.imwrite(os.path.join(d, "img%d.png" % k), img2)
        np.savetxt(os.path.join(d, "H1to%dp" % k), h)


def run(exe, seq, out, *extra):
    r = subprocess.run([exe, "--homography-dir", seq, "--out", out, "--pairs", "4000", "--seed", "0",
                        "--progress", "never", *extra], capture_output=True, text=True, timeout=240)
    if r.returncode != 0:
        sys.exit("matchnet-patchset failed (%d): %s" % (r.returncode, r.stderr))
    m = re.search(r"(\d+) correspondences in all", r.stdout)
    left = re.search(r"(\d+) keypoint pairs left out", r.stdout)
    return int(m.group(1)), (int(left.group(1)) if left else None)


def main():
    exe, sample = sys.argv[1], sys.argv[2]
    img = cv2.imread(sample, cv2.IMREAD_GRAYSCALE)
    if img is None:
        sys.exit("cannot read " + sample)
    h_img, w_img = img.shape
    tmp = tempfile.mkdtemp(prefix="mn_patchset_affine_")
    failures = []
    try:
        # np.rot90 (counter-clockwise): img2[r, c] = img1[c, W - 1 - r], so img1's (x, y) is img2's (y, W - 1 - x).
        rot = os.path.join(tmp, "rot")
        write_sequence(rot, img, np.ascontiguousarray(np.rot90(img)),
                       np.array([[0, 1, 0], [-1, 0, w_img - 1], [0, 0, 1]], float))
        # cv2.resize maps pixel centres: x2 = (x + 0.5) fx - 0.5.
        fx = 1.6
        stretch = os.path.join(tmp, "stretch")
        write_sequence(stretch, img, cv2.resize(img, (int(round(w_img * fx)), h_img), interpolation=cv2.INTER_CUBIC),
                       np.array([[fx, 0, 0.5 * fx - 0.5], [0, 1, 0], [0, 0, 1]], float))

        kept, left = run(exe, rot, os.path.join(tmp, "rot_keep"), "--affine-orientation", "keep")
        print("quarter turn, keep: %d correspondences, %s left out" % (kept, left))
        if left is None or kept < 200 or left > 0.05 * (kept + left):
            failures.append("quarter turn (keep): %d kept, %s left out; expected 200+ kept, under 5%% out" % (kept, left))
        # The gradient rule picks, of the histogram's peaks within 80% of the highest, the one nearest the
        # detector's angle: where two peaks are near-equal (often opposite, a bar's two edges), views can
        # pick different ones even under an exact quarter turn (about 15% of pairs here) - pairs this test
        # exists to leave out; the rule's own stability is measured in README, "Affine shapes".
        kept, left = run(exe, rot, os.path.join(tmp, "rot_gradient"), "--affine-orientation", "gradient")
        print("quarter turn, gradient: %d correspondences, %s left out" % (kept, left))
        if left is None or kept < 200 or left > 0.3 * (kept + left):
            failures.append("quarter turn (gradient): %d kept, %s left out" % (kept, left))

        kept, left = run(exe, stretch, os.path.join(tmp, "stretch_keep"), "--affine-orientation", "keep")
        print("1.6:1 stretch, keep: %d correspondences, %s left out" % (kept, left))
        if left is None or kept < 100 or not 0 < left < kept:
            failures.append("stretch (keep): %d kept, %s left out; expected most kept, some out" % (kept, left))

        kept_sim, left_sim = run(exe, stretch, os.path.join(tmp, "stretch_similarity"))
        print("1.6:1 stretch, similarity: %d correspondences" % kept_sim)
        if left_sim is not None:
            failures.append("similarity set printed a frame count")

        r = subprocess.run([exe, "--homography-dir", rot, "--out", os.path.join(tmp, "bad"), "--affine-orientation",
                            "sideways"], capture_output=True, text=True, timeout=60)
        if r.returncode != 2 or "expected gradient or keep" not in r.stderr or os.path.exists(os.path.join(tmp, "bad")):
            failures.append("bad --affine-orientation: rc %d, %r" % (r.returncode, r.stderr))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("test_patchset_affine: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
