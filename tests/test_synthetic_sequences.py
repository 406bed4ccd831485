#!/usr/bin/python3
"""eval/synthetic_sequences.py and matchnet-eval-matching's affine variants.

    test_synthetic_sequences.py --source-dir DIR --eval-matching EXE

On copies of the bundled sample images (no shared data): the sequences have
the Oxford layout; each H1toNp maps img1 onto imgN (the views agree with
img1 warped by it, where both are image, better than with a control
homography); only held-out photos are used (--every/--offset as
matchnet-patchset's); an existing output is refused and nothing partial is
left. Then matchnet-eval-matching with affine=gradient and affine=keep
variants: the rows and the summary name them, their matches are mostly
correct on a mild sequence, each method's curve (correct matches at fixed
precisions) is printed and in the JSON, and bad values are refused.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np

failures = 0


def check(ok, what, detail=""):
    global failures
    if ok:
        print("ok   %s" % what)
    else:
        failures += 1
        print("FAIL %s%s" % (what, "\n     " + detail if detail else ""))


def ncc(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-9))


def agreement(seq, k, h):
    """NCC of imgk against img1 warped by h, on the pixels both cover (away
    from the borders); -1 when they share too few."""
    img1 = cv2.imread(os.path.join(seq, "img1.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    imgk = cv2.imread(os.path.join(seq, "img%d.png" % k), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    warped = cv2.warpPerspective(img1, h, (imgk.shape[1], imgk.shape[0]))
    mask = cv2.warpPerspective(np.ones_like(img1), h, (imgk.shape[1], imgk.shape[0]), flags=cv2.INTER_NEAREST)
    mask = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0
    mask &= imgk > 0  # the photo's own border
    if mask.sum() < 1000:
        return -1.0
    return ncc(warped[mask], imgk[mask])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--eval-matching", required=True)
    o = ap.parse_args()
    script = os.path.join(o.source_dir, "eval", "synthetic_sequences.py")
    with tempfile.TemporaryDirectory(prefix="mn_synseq_") as tmp:
        photos = os.path.join(tmp, "photos")
        os.makedirs(os.path.join(photos, "b"))
        os.makedirs(os.path.join(photos, ".hidden"))
        scene = cv2.imread(os.path.join(o.source_dir, "samples", "data", "box_in_scene.png"), cv2.IMREAD_GRAYSCALE)
        box = cv2.imread(os.path.join(o.source_dir, "samples", "data", "box.png"), cv2.IMREAD_GRAYSCALE)
        # Five photos, sorted a0, a1, b/c, b/d, d; every 2nd from offset 0
        # (matchnet-patchset's --every 2 --offset 0) is a0, b/c and d. Hidden
        # names are not photos (as matchnet-patchset's list).
        for name, img in (("a0.png", scene), ("a1.png", cv2.flip(scene, 1)),
                          ("b/c.png", cv2.resize(scene, None, fx=1.5, fy=1.5)), ("b/d.png", cv2.flip(scene, 0)),
                          ("d.png", cv2.resize(box, None, fx=2, fy=2)), (".hidden/e.png", scene), ("._f.png", scene)):
            cv2.imwrite(os.path.join(photos, name), img)
        out = os.path.join(tmp, "seq")
        r = subprocess.run([sys.executable, script, photos, out, "--every", "2"], capture_output=True, text=True)
        check(r.returncode == 0, "synthetic_sequences.py runs", r.stderr[-1000:])
        seqs = sorted(os.listdir(out)) if os.path.isdir(out) else []
        check(len(seqs) == 6 and [s[:5] for s in seqs] == ["00-a0", "00-a0", "01-c-", "01-c-", "02-d-", "02-d-"],
              "two sequences from each of the three held-out photos", str(seqs))
        kinds = [s.rsplit("-", 1)[1] for s in seqs]
        check(sorted(kinds) == ["blur", "light", "viewpoint", "viewpoint", "viewpoint", "zoom"],
              "a viewpoint sequence per photo, then zoom, blur and light by turns", str(kinds))
        for s in seqs:
            d = os.path.join(out, s)
            names = sorted(os.listdir(d))
            want = sorted(["img%d.png" % k for k in range(1, 7)] + ["H1to%dp" % k for k in range(2, 7)])
            check(names == want, "%s: img1..img6 and H1to2p..H1to6p" % s, str(names))
            img1 = cv2.imread(os.path.join(d, "img1.png"), cv2.IMREAD_GRAYSCALE)
            check(img1 is not None and img1.shape == (640, 800), "%s: 800 x 640 grey images" % s)
            for k in (2, 4, 6):
                h = np.loadtxt(os.path.join(d, "H1to%dp" % k))
                a = agreement(d, k, h)
                # Controls: the same homography shifted by 6 px, and by
                # 0.5 px each way (the fit is sharper than a 3-px match radius).
                c = agreement(d, k, np.array([[1, 0, 6], [0, 1, 6], [0, 0, 1]]) @ h)
                near = max(agreement(d, k, np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]]) @ h)
                           for dx, dy in ((0.5, 0), (-0.5, 0), (0, 0.5), (0, -0.5)))
                kind = s.rsplit("-", 1)[1]
                if kind == "blur":
                    # The control is the sharp img1: imgN is img1 blurred by sigma N - 1.
                    img1 = cv2.imread(os.path.join(d, "img1.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32)
                    imgk = cv2.imread(os.path.join(d, "img%d.png" % k), cv2.IMREAD_GRAYSCALE).astype(np.float32)
                    c = a
                    a = ncc(cv2.GaussianBlur(img1, (0, 0), k - 1.0)[20:-20, 20:-20], imgk[20:-20, 20:-20])
                    check(a > 0.98 and a > c, "%s 1-%d: img%d is img1 blurred by sigma %d (NCC %.3f, unblurred %.3f)"
                          % (s, k, k, k - 1, a, c))
                else:
                    check(a > 0.9 and a > c + 0.1 and a > near,
                          "%s 1-%d: img%d is img1 under H1to%dp (NCC %.3f; shifted 6 px %.3f, 0.5 px %.3f)"
                          % (s, k, k, k, a, c, near))
                if kind in ("blur", "light"):
                    check(np.allclose(h, np.eye(3)), "%s 1-%d: the identity" % (s, k))
        r = subprocess.run([sys.executable, script, photos, out, "--every", "2"], capture_output=True, text=True)
        check(r.returncode != 0 and "exists" in r.stderr, "an existing output is refused", r.stderr)
        for bad in (["--every", "0"], ["--offset", "-1"], ["--every", "2", "--offset", "2"]):
            r = subprocess.run([sys.executable, script, photos, os.path.join(tmp, "bad")] + bad, capture_output=True,
                               text=True)
            check(r.returncode != 0 and "expected every" in r.stderr and not os.path.exists(os.path.join(tmp, "bad")),
                  "%s is refused" % " ".join(bad), r.stderr[-300:])
        # A photo that cannot be read, after one that can: an error, and no
        # output or temporary folder left.
        with open(os.path.join(photos, "b", "c2.png"), "wb") as f:
            f.write(b"not an image")
        r = subprocess.run([sys.executable, script, photos, os.path.join(tmp, "broken"), "--every", "3"],
                           capture_output=True, text=True)
        check(r.returncode != 0 and "cannot read" in r.stderr and not os.path.exists(os.path.join(tmp, "broken")) and
              not os.path.exists(os.path.join(tmp, "broken.tmp")), "an unreadable photo: an error, nothing left",
              r.stderr[-300:])
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        r = subprocess.run([sys.executable, script, empty, os.path.join(tmp, "none")], capture_output=True, text=True)
        check(r.returncode != 0 and not os.path.exists(os.path.join(tmp, "none")) and
              not os.path.exists(os.path.join(tmp, "none.tmp")), "no photos: an error and no output")

        # matchnet-eval-matching with affine variants on the mild viewpoint sequence.
        seq = os.path.join(out, [s for s in seqs if s.endswith("viewpoint")][0])
        one = os.path.join(tmp, "one")
        shutil.copytree(seq, one)
        for k in (4, 5, 6):  # pairs 1-2 and 1-3: tilts of 15 and 25 degrees
            os.remove(os.path.join(one, "img%d.png" % k))
        r = subprocess.run([o.eval_matching, "--homography-dir", one, "--max-keypoints", "400", "--progress", "never",
                            "--variant", "default:", "--variant", "ag:affine=gradient", "--variant", "ak:affine=keep"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "matchnet-eval-matching with affine=gradient and affine=keep", r.stderr[-1000:])
        rows = [l for l in r.stdout.splitlines() if l.startswith("one ")]
        check(len(rows) == 2, "two pairs", r.stdout[-2000:])
        summary = {}  # the first row of each name: the summary table (the curves come after it)
        for l in r.stdout.splitlines():
            if l.split() and l.split()[0] in ("sift", "default", "ag", "ak"):
                summary.setdefault(l.split()[0], l.split())
        check(sorted(summary) == ["ag", "ak", "default", "sift"], "the summary names every variant", str(summary))
        for name in ("ag", "ak"):
            if name in summary:
                matches, correct, precision = (float(x) for x in summary[name][1:4])
                check(matches > 30 and precision > 0.7,
                      "%s: mostly correct matches (%.1f, precision %.3f)" % (name, matches, precision))
        # The curves, in the text and the same in the JSON.
        lines = r.stdout.splitlines()
        start = [i for i, l in enumerate(lines) if l.startswith("correct matches per pair at pooled precision")]
        curves = {}
        if start:
            for l in lines[start[0] + 2:]:
                f = l.split()
                if len(f) == 7 and f[0] in ("sift", "default", "ag", "ak"):
                    curves[f[0]] = [float(x) for x in f[1:]]
        check(sorted(curves) == ["ag", "ak", "default", "sift"], "a curve per method", "\n".join(lines[-12:]))
        try:
            js = json.loads(lines[-1])
        except ValueError as e:
            js = None
            check(False, "the last line is JSON", "%s: %r" % (e, lines[-1][:300]))
        if js:
            for name, c in curves.items():
                jc = js["methods"][name]["curve"]
                check([p for p, _, _ in jc] == [0.7, 0.8, 0.85, 0.9, 0.95, 0.98] and
                      all(abs(v - t) < 0.051 for (_, v, _), t in zip(jc, c)) and c[0] > 0,
                      "%s: the JSON's curve is the printed one (%s)" % (name, c))
        r = subprocess.run([o.eval_matching, "--homography-dir", one, "--variant", "x:affine=sideways"],
                           capture_output=True, text=True)
        check(r.returncode != 0 and "affine=sideways" in r.stderr, "affine=sideways is refused", r.stderr)
        r = subprocess.run([o.eval_matching, "--homography-dir", one, "--variant", "x:half=1,affine=keep"],
                           capture_output=True, text=True)
        check(r.returncode != 0 and "not with affine" in r.stderr, "half=1 with affine is refused", r.stderr)
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
