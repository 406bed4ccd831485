#!/usr/bin/python3
"""The programs when resources run out (issue 15, item 3).

    test_resources.py --match M --stitch S --colmap C --patchset P --source-dir DIR

Full file system, for every program's outputs and matchnet-colmap's
database, in two ways so that the test always runs:
  - tmpfs: a tmpfs of a few kB mounted in a mount namespace of the test's
    own (unshare -m), where the machine allows it (root, no seccomp
    refusal): writes fail with ENOSPC, as on a full disk;
  - fsize: RLIMIT_FSIZE with SIGXFSZ ignored, which works everywhere:
    writes past the limit fail with EFBIG through the kernel, whichever
    code path (stdio, SQLite's own I/O, OpenCV) makes them.
Each program must fail with a clear message and a failure status, leave
no output file and no temporary file, and keep an older output as it was;
matchnet-colmap's database must pass PRAGMA integrity_check and, moved to
a roomy folder and run again, end equal to an uninterrupted run's
(cameras, images, keypoints, descriptors, matches; same ids).

Address space: under RLIMIT_AS = 1 GiB (ulimit -v; plain builds only, the
sanitizers reserve more) a 14000 x 14000 image, under the pixel limit, makes
matchnet-match, matchnet-stitch and matchnet-colmap fail with an out-of-
memory message and status 1, not a crash; matchnet-colmap's database stays
consistent.
"""
import argparse
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile

import cv2
import numpy as np

ARGS = None
FAILURES = []
CHECKS = 0


def check(cond, what):
    global CHECKS
    CHECKS += 1
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, flush=True)


def textured(seed, w, h, cells=(100, 130)):
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.integers(0, 256, cells, dtype=np.uint8), (0, 0), 1.2)
    return cv2.resize(cv2.normalize(t, None, 0, 255, cv2.NORM_MINMAX), (w, h), interpolation=cv2.INTER_CUBIC)


def run(cmd, limit=None, as_limit=None):
    """Run cmd; limit: RLIMIT_FSIZE bytes (SIGXFSZ ignored), as_limit: RLIMIT_AS bytes."""
    def pre():
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        if as_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))
    r = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=pre, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"))
    run.stdout = r.stdout
    return r.returncode, r.stderr


def leftovers(d, keep=()):
    return sorted(n for n in os.listdir(d) if n not in keep)


def db_dump(path):
    """The database's content by ids: what an uninterrupted run must equal."""
    con = sqlite3.connect(path)
    out = {}
    for table, order in (("cameras", "camera_id"), ("images", "image_id"), ("keypoints", "image_id"),
                         ("descriptors", "image_id"), ("matches", "pair_id"), ("two_view_geometries", "pair_id")):
        out[table] = con.execute("SELECT * FROM %s ORDER BY %s" % (table, order)).fetchall()
    con.close()
    return out


def integrity(path):
    con = sqlite3.connect(path)
    r = con.execute("PRAGMA integrity_check").fetchall()
    con.close()
    return r


class Full:
    """A folder whose writes fail: a small tmpfs (mode "tmpfs") or a plain
    folder with the programs' RLIMIT_FSIZE (mode "fsize")."""

    def __init__(self, mode, root, name, kib):
        self.mode, self.kib = mode, kib
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.limit = None
        if mode == "tmpfs":
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % kib, "tmpfs", self.dir], check=True)
        else:
            self.limit = kib * 1024

    def reason_ok(self, err):
        return ("No space left on device" in err or "disk is full" in err or "database or disk is full" in err) \
            if self.mode == "tmpfs" else ("File too large" in err or "disk I/O error" in err or "disk is full" in err)

    def close(self):
        if self.mode == "tmpfs":
            subprocess.run(["umount", self.dir], check=False)


def full_disk(mode, work, images, photos, pano_in, clean_db):
    box = os.path.join(ARGS.source_dir, "samples", "data", "box.png")
    scene = os.path.join(ARGS.source_dir, "samples", "data", "box_in_scene.png")
    root = os.path.join(work, mode)
    roomy = os.path.join(root, "roomy")
    os.makedirs(roomy)

    # matchnet-match: the JSON (about 100 kB for the bundled pair) into 16 kB.
    f = Full(mode, root, "match", 16)
    old = os.path.join(f.dir, "old.json")
    with open(old, "w") as fh:
        fh.write('{"old": true}\n')
    for target in (os.path.join(f.dir, "m.json"), old):
        rc, err = run([ARGS.match, "-o", target, box, scene], f.limit)
        check(rc == 1 and "cannot write" in err and f.reason_ok(err),
              "%s: matchnet-match -o %s: exit %d, stderr %r" % (mode, target, rc, err[-300:]))
    check(leftovers(f.dir) == ["old.json"], "%s: matchnet-match left %s" % (mode, leftovers(f.dir)))
    check(open(old).read() == '{"old": true}\n', "%s: matchnet-match changed the older output" % mode)
    # --draw into the full folder, the JSON elsewhere.
    rc, err = run([ARGS.match, "-o", os.path.join(roomy, "m.json"), "--draw", os.path.join(f.dir, "d.png"), box,
                   scene], f.limit if mode == "tmpfs" else None)
    if mode == "tmpfs":
        check(rc == 1 and f.reason_ok(err), "%s: matchnet-match --draw: exit %d, stderr %r" % (mode, rc, err[-300:]))
        check(leftovers(f.dir) == ["old.json"], "%s: --draw left %s" % (mode, leftovers(f.dir)))
    f.close()

    # matchnet-stitch: a 780 x 360 colour PNG panorama (about 800 kB) into 64 kB.
    f = Full(mode, root, "stitch", 64)
    rc, err = run([ARGS.stitch, "--mode", "scans", "-o", os.path.join(f.dir, "pano.png")] + pano_in, f.limit)
    check(rc == 1 and "cannot write" in err and f.reason_ok(err) and '"status": "write_error"' in run.stdout,
          "%s: matchnet-stitch: exit %d, stderr %r, stdout %r" % (mode, rc, err[-300:], run.stdout[-200:]))
    check(leftovers(f.dir) == [], "%s: matchnet-stitch left %s" % (mode, leftovers(f.dir)))
    f.close()

    # matchnet-patchset: a set of two BMP sheets (about 2 MB) into 256 kB.
    f = Full(mode, root, "patchset", 256)
    out = os.path.join(f.dir, "set")
    rc, err = run([ARGS.patchset, "--photos", photos, "--out", out, "--views", "4", "--pairs", "100",
                   "--max-keypoints", "200", "--seed", "1", "--progress", "never"], f.limit)
    check(rc == 1 and "cannot write" in err, "%s: matchnet-patchset: exit %d, stderr %r" % (mode, rc, err[-300:]))
    check(leftovers(f.dir) == [], "%s: matchnet-patchset left %s" % (mode, leftovers(f.dir)))
    f.close()

    # matchnet-colmap: the database (about 300 kB) into 96 kB, then resumed.
    f = Full(mode, root, "colmap", 96)
    db = os.path.join(f.dir, "db.db")
    rc, err = run([ARGS.colmap, "--images", images, "--database", db, "--progress", "never"], f.limit)
    check(rc != 0 and rc < 128 and f.reason_ok(err), "%s: matchnet-colmap: exit %d, stderr %r" % (mode, rc, err[-300:]))
    moved = os.path.join(roomy, "db.db")
    for n in os.listdir(f.dir):  # the database with its journal, as a user would move it
        shutil.copy(os.path.join(f.dir, n), os.path.join(roomy, n))
    f.close()
    if os.path.exists(moved):
        check(integrity(moved) == [("ok",)], "%s: integrity after a full disk: %s" % (mode, integrity(moved)))
    rc, err = run([ARGS.colmap, "--images", images, "--database", moved, "--progress", "never"])
    check(rc == 0, "%s: matchnet-colmap resumed: exit %d, stderr %r" % (mode, rc, err[-300:]))
    check(integrity(moved) == [("ok",)], "%s: integrity after the resume" % mode)
    check(db_dump(moved) == clean_db, "%s: resumed database differs from an uninterrupted run's" % mode)


def address_space(work, images):
    """RLIMIT_AS 1 GiB and a 14000 x 14000 image (196 Mpx, under 2^28)."""
    big = os.path.join(work, "big", "big.png")
    os.makedirs(os.path.dirname(big))
    img = np.full((14000, 14000), 128, np.uint8)
    cv2.circle(img, (7000, 7000), 3000, 40, -1)
    cv2.imwrite(big, img)
    shutil.copy(os.path.join(images, os.listdir(images)[0]), os.path.join(work, "big", "small.png"))
    small = os.path.join(work, "big", "small.png")
    gib = 1 << 30
    out = os.path.join(work, "big-out")
    os.makedirs(out)
    rc, err = run([ARGS.match, "-o", os.path.join(out, "m.json"), big, small], as_limit=gib)
    check(rc == 1 and "out of memory" in err, "ulimit -v: matchnet-match: exit %d, stderr %r" % (rc, err[-300:]))
    # cv::Stitcher registers at 0.6 Mpx: depending on the threads it runs out
    # of memory or gets as far as finding that the images do not overlap;
    # either way a status, not a crash.
    rc, err = run([ARGS.stitch, "-o", os.path.join(out, "p.jpg"), big, small], as_limit=gib)
    check(rc == 1 and '"status": "' in run.stdout and '"status": "ok"' not in run.stdout and
          ('"status": "exception"' not in run.stdout or "nsufficient memory" in err or "out of memory" in err),
          "ulimit -v: matchnet-stitch: exit %d, stderr %r, stdout %r" % (rc, err[-300:], run.stdout[-200:]))
    db = os.path.join(out, "db.db")
    rc, err = run([ARGS.colmap, "--images", os.path.dirname(big), "--database", db, "--progress", "never"],
                  as_limit=gib)
    check(rc == 1 and "out of memory" in err, "ulimit -v: matchnet-colmap: exit %d, stderr %r" % (rc, err[-300:]))
    if os.path.exists(db):
        check(integrity(db) == [("ok",)], "ulimit -v: matchnet-colmap database integrity")
    check(leftovers(out, keep=("db.db",)) == [], "ulimit -v: left %s" % leftovers(out, keep=("db.db",)))


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    for a in ("match", "stitch", "colmap", "patchset", "source-dir"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--inner", help=argparse.SUPPRESS)  # the run inside the mount namespace
    ARGS = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mn_resources_")
    try:
        images = os.path.join(work, "images")
        photos = os.path.join(work, "photos")
        os.makedirs(images)
        os.makedirs(photos)
        base = textured(3, 1000, 500, (150, 300))
        for i in range(3):  # overlapping views for matchnet-colmap
            cv2.imwrite(os.path.join(images, "v%d.png" % i), base[:, 150 * i:150 * i + 600])
            cv2.imwrite(os.path.join(photos, "p%d.png" % i), textured(10 + i, 520, 400))
        t = textured(3, 780, 360, (120, 260))
        bgr = cv2.merge([t, 255 - t, t // 2 + 60])
        pano_in = [os.path.join(work, "s1.png"), os.path.join(work, "s2.png")]
        cv2.imwrite(pano_in[0], bgr[:, :450])
        cv2.imwrite(pano_in[1], bgr[:, 300:])
        clean = os.path.join(work, "clean.db")
        rc, err = run([ARGS.colmap, "--images", images, "--database", clean, "--progress", "never"])
        check(rc == 0, "uninterrupted matchnet-colmap: exit %d, %r" % (rc, err[-300:]))
        clean_db = db_dump(clean)
        check(len(clean_db["images"]) == 3 and len(clean_db["matches"]) == 3, "uninterrupted run: %d images, %d pairs"
              % (len(clean_db["images"]), len(clean_db["matches"])))

        # A set whose folder cannot be made is refused before the work, not after it.
        missing = os.path.join(work, "no-such-folder", "set")
        rc, err = run([ARGS.patchset, "--photos", photos, "--out", missing, "--views", "4", "--progress", "never"])
        check(rc == 1 and "no such folder" in err and "views" not in run.stdout,
              "matchnet-patchset into a missing folder: exit %d, stderr %r" % (rc, err[-300:]))
        full_disk("fsize", work, images, photos, pano_in, clean_db)
        # tmpfs in a private mount namespace: nothing stays mounted whatever happens.
        probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                "d=$(mktemp -d) && mount -t tmpfs -o size=16k tmpfs $d && umount $d && rmdir $d"],
                               capture_output=True)
        if probe.returncode == 0:
            inner = [sys.executable, os.path.abspath(__file__)]
            for a in ("match", "stitch", "colmap", "patchset", "source_dir"):
                inner += ["--" + a.replace("_", "-"), getattr(ARGS, a)]
            r = subprocess.run(["unshare", "-m", "--propagation", "private"] + inner + ["--inner", work],
                               capture_output=True, text=True)
            sys.stdout.write(r.stdout)
            check(r.returncode == 0, "tmpfs run: exit %d, %s" % (r.returncode, r.stderr[-500:]))
        else:
            print("tmpfs: cannot mount here (%s); the fsize run stands for it" % probe.stderr.decode().strip())
        address_space(work, images)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("test_resources: %d checks, %d failed" % (CHECKS, len(FAILURES)))
    return 1 if FAILURES else 0


def inner_main():
    """The tmpfs scenarios, inside the mount namespace (argv: --inner WORK ...)."""
    global ARGS
    ap = argparse.ArgumentParser()
    for a in ("match", "stitch", "colmap", "patchset", "source-dir"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--inner", required=True)
    ARGS = ap.parse_args()
    work = ARGS.inner
    clean_db = db_dump(os.path.join(work, "clean.db"))
    pano_in = [os.path.join(work, "s1.png"), os.path.join(work, "s2.png")]
    full_disk("tmpfs", work, os.path.join(work, "images"), os.path.join(work, "photos"), pano_in, clean_db)
    print("tmpfs: %d checks, %d failed" % (CHECKS, len(FAILURES)))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(inner_main() if "--inner" in sys.argv else main())
