#!/usr/bin/python3
"""Match two images with MatchNet from Python and draw the matches.

    PYTHONPATH=build/python samples/match_pair.py IMAGE1 IMAGE2 [-o matches.png]
        [--method l2|metric] [--max-keypoints N] [--no-homography]

(no PYTHONPATH needed once `cmake --install` has put the package where
python3 looks). Detects SIFT keypoints and describes them with
matchnet.MatchNet, matches them with matchnet.Matcher, keeps the inliers of
a RANSAC homography (cv2.findHomography, 3 px) and draws them with
cv2.drawMatches. The picture is written to a temporary file beside the
output and renamed over it, so a failed run never leaves half a file.
Prints one line: keypoints, matches, inliers.
"""
import argparse
import os
import sys
import tempfile

import cv2
import numpy as np

import matchnet


def write_atomically(path, image):
    """cv2.imencode the image in path's format, write it beside path, rename."""
    ext = os.path.splitext(path)[1] or ".png"
    ok, data = cv2.imencode(ext, image)
    if not ok:
        raise RuntimeError("cannot encode a %s image" % ext)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.tobytes())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image1")
    ap.add_argument("image2")
    ap.add_argument("-o", "--output", default="matches.png", help="picture to write (default matches.png)")
    ap.add_argument("--method", default="l2", choices=["l2", "metric"])
    ap.add_argument("--max-keypoints", type=int, default=2000)
    ap.add_argument("--no-homography", action="store_true", help="draw every match, no RANSAC")
    args = ap.parse_args()

    images = [cv2.imread(p, cv2.IMREAD_GRAYSCALE) for p in (args.image1, args.image2)]
    for p, im in zip((args.image1, args.image2), images):
        if im is None:
            sys.exit("match_pair.py: cannot read %s" % p)
    try:
        net = matchnet.MatchNet(max_keypoints=args.max_keypoints)
        (kp1, d1), (kp2, d2) = (net.detectAndCompute(im) for im in images)
        matches = matchnet.Matcher(args.method, model=net.model).match(d1, d2)
    except matchnet.Error as e:
        sys.exit("match_pair.py: %s" % e)

    inliers = [1] * len(matches)
    if not args.no_homography and len(matches) >= 4:
        src = np.float32([kp1[m.queryIdx].pt for m in matches])
        dst = np.float32([kp2[m.trainIdx].pt for m in matches])
        H, mask = cv2.findHomography(src, dst, cv2.RANSAC, 3.0)
        inliers = mask.ravel().tolist() if H is not None else [0] * len(matches)
    kept = [m for m, ok in zip(matches, inliers) if ok]
    picture = cv2.drawMatches(images[0], kp1, images[1], kp2, kept, None, matchColor=(0, 255, 0),
                              flags=cv2.DrawMatchesFlags_NOT_DRAW_SINGLE_POINTS)
    try:
        write_atomically(args.output, picture)
    except (OSError, RuntimeError) as e:
        sys.exit("match_pair.py: cannot write %s: %s" % (args.output, e))
    print("%d + %d keypoints, %d matches, %d %s -> %s" % (
        len(kp1), len(kp2), len(matches), len(kept),
        "drawn" if args.no_homography else "homography inliers", args.output))


if __name__ == "__main__":
    main()
