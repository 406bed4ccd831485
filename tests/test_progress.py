#!/usr/bin/env python3
"""CTest test of the long-running programs' progress line (apps/cli.h).

    test_progress.py --patchset EXE --eval-patches EXE --eval-matching EXE --stitch EXE [--colmap EXE]

Each program runs twice on the same small inputs made here (a six-view
Oxford-layout sequence warped from samples/data/box_in_scene.png, two
overlapping crops of it): once with stderr on a pseudo-terminal (Python's
pty module), where its progress line must appear - a '\\r'-rewritten line
with the program's name and counts, erased at the end - and once with
stderr on a pipe, where no '\\r' and no progress text may appear. What the
programs write (stdout, files) must not depend on it. --progress never and
--progress always override the terminal test both ways; a bad value is a
usage error.
"""
import argparse
import filecmp
import os
import re
import struct
import subprocess
import sys
import tempfile

import fcntl
import termios

import cv2
import numpy as np

FAILURES = []


def check(ok, what, detail=""):
    print(("ok    " if ok else "FAIL  ") + what + ("" if ok or not detail else "\n" + detail))
    if not ok:
        FAILURES.append(what)


def run(cmd, tty):
    """Run cmd with stdout on a pipe and stderr on a pseudo-terminal (tty)
    or a pipe; returns (status, stdout, stderr) as bytes."""
    if not tty:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
        return r.returncode, r.stdout, r.stderr
    master, slave = os.openpty()
    # A wide terminal: the lines are checked whole, not cut to 80 columns.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=slave)
        os.close(slave)
        err = b""
        while True:  # until the program has exited and closed its end (EIO on Linux)
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
        os.close(master)
        status = p.wait(timeout=600)
        out.seek(0)
        return status, out.read(), err


def progress_lines(err):
    """The progress lines drawn: the text after each '\\r' that says the time elapsed."""
    return [t.decode(errors="replace") for t in re.findall(rb"\r([^\r\n]*)", err) if b" elapsed" in t]


def expect(name, cmd, patterns, tty_outputs=None, pipe_outputs=None, same_stdout=True):
    """Run cmd on a terminal and in a pipe; patterns: regular expressions
    one of the drawn progress lines must match each."""
    if tty_outputs:
        cmd_tty = [a.replace("@OUT@", tty_outputs) for a in cmd]
        cmd_pipe = [a.replace("@OUT@", pipe_outputs) for a in cmd]
    else:
        cmd_tty = cmd_pipe = cmd
    st, out_t, err_t = run(cmd_tty, True)
    check(st == 0, "%s on a terminal: exit %d" % (name, st), err_t.decode(errors="replace")[-2000:])
    lines = progress_lines(err_t)
    for pat in patterns:
        check(any(re.fullmatch(pat, l.rstrip()) for l in lines),
              "%s on a terminal: a progress line like '%s' (drawn: %s)" % (name, pat, lines[-8:]))
    # Erased at the end: the last '\r' sequence before the exit is blanks.
    check(re.search(rb"\r +\r", err_t) is not None, "%s on a terminal: the line is erased" % name)
    check(b"\r" not in out_t, "%s on a terminal: stdout has no '\\r'" % name)
    st, out_p, err_p = run(cmd_pipe, False)
    check(st == 0, "%s in a pipe: exit %d" % (name, st), err_p.decode(errors="replace")[-2000:])
    check(b"\r" not in err_p and b"elapsed" not in err_p,
          "%s in a pipe: no progress on stderr (got %r)" % (name, err_p[:300]))
    if same_stdout:  # but for the names of the outputs
        if tty_outputs:
            out_t = out_t.replace(os.fsencode(tty_outputs), os.fsencode(pipe_outputs))
        check(out_t == out_p, "%s: the same stdout on a terminal and in a pipe" % name, "%r\n%r" % (out_t, out_p))
    print("  %s: %d progress lines on the terminal, e.g. %r" % (name, len(lines), lines[len(lines) // 2] if lines
                                                                   else None))
    return out_t, out_p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    for exe in ("patchset", "eval-patches", "eval-matching", "stitch", "colmap"):
        ap.add_argument("--" + exe, default="")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="mn_progress_") as tmp:
        # An Oxford-layout sequence: img1 and five views under known homographies.
        base = cv2.imread(os.path.join(args.source_dir, "samples", "data", "box_in_scene.png"), cv2.IMREAD_GRAYSCALE)
        seq = os.path.join(tmp, "seq")
        os.mkdir(seq)
        cv2.imwrite(os.path.join(seq, "img1.png"), base)
        h, w = base.shape
        for k, (angle, scale) in ((2, (8, 0.9)), (3, (-12, 1.1)), (4, (20, 1.0)), (5, (-4, 0.8)), (6, (30, 1.2))):
            a = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
            H = np.vstack([a, [0, 0, 1]])
            cv2.imwrite(os.path.join(seq, "img%d.png" % k), cv2.warpPerspective(base, H, (w, h)))
            np.savetxt(os.path.join(seq, "H1to%dp" % k), H)

        # matchnet-patchset: view pairs; the same set either way.
        sets = os.path.join(tmp, "set_tty"), os.path.join(tmp, "set_pipe")
        expect("matchnet-patchset", [args.patchset, "--homography-dir", seq, "--out", "@OUT@", "--pairs", "300"],
               [r"matchnet-patchset: view pairs 5/5 \(100%\), \d+ s elapsed, \d+ correspondences"], *sets)
        made = all(os.path.isdir(d) for d in sets)
        cmp = filecmp.dircmp(*sets) if made else None
        check(made and sorted(cmp.left_list) == sorted(cmp.right_list) and not cmp.diff_files and cmp.left_list,
              "matchnet-patchset: the same files on a terminal and in a pipe")
        if not made:
            sys.exit("test_progress: matchnet-patchset made no set; the rest needs it")
        # The overrides, and a bad value.
        st, _, err = run([args.patchset, "--homography-dir", seq, "--out", os.path.join(tmp, "n"), "--pairs", "300",
                          "--progress", "never"], True)
        check(st == 0 and not progress_lines(err), "matchnet-patchset --progress never: none on a terminal")
        st, _, err = run([args.patchset, "--homography-dir", seq, "--out", os.path.join(tmp, "a"), "--pairs", "300",
                          "--progress", "always"], False)
        check(st == 0 and any(l.startswith("matchnet-patchset: view pairs") for l in progress_lines(err)),
              "matchnet-patchset --progress always: shown in a pipe")
        st, _, _ = run([args.patchset, "--homography-dir", seq, "--out", os.path.join(tmp, "b"),
                        "--progress", "sometimes"], False)
        check(st == 2, "matchnet-patchset --progress sometimes: usage error (exit %d)" % st)

        # matchnet-eval-patches on that set: its stdout has no timing, so it is the same.
        expect("matchnet-eval-patches", [args.eval_patches, "--dataset", sets[1]],
               [r"matchnet-eval-patches: patches described 0/\d+ \(0%\), \d+ s elapsed",
                r"matchnet-eval-patches: SIFT on patches \d+/\d+ \(\d+%\), \d+ s elapsed.*"])

        # matchnet-eval-matching: the per-pair rows are the same (the summary has timings).
        out_t, out_p = expect("matchnet-eval-matching",
                              [args.eval_matching, "--homography-dir", seq, "--max-keypoints", "300"],
                              [r"matchnet-eval-matching: pairs 0/5 \(0%\), \d+ s elapsed",
                               r"matchnet-eval-matching: pairs 5/5 \(100%\), \d+ s elapsed"], same_stdout=False)

        def rows(out):
            return [l for l in out.replace(b"\r\n", b"\n").split(b"\n") if l.startswith(b"seq ")]
        check(len(rows(out_p)) == 5 and rows(out_t) == rows(out_p),
              "matchnet-eval-matching: the same rows on a terminal and in a pipe")
        st, _, _ = run([args.eval_matching, "--homography-dir", seq, "--progress", "maybe"], False)
        check(st != 0, "matchnet-eval-matching --progress maybe: an error (exit %d)" % st)

        # matchnet-stitch: two overlapping crops; the same panorama.
        crops = []
        for i, (x0, x1) in enumerate(((0, 320), (190, 512))):
            crops.append(os.path.join(tmp, "crop%d.png" % i))
            cv2.imwrite(crops[-1], cv2.cvtColor(base[:, x0:x1], cv2.COLOR_GRAY2BGR))
        panos = os.path.join(tmp, "pano_tty.png"), os.path.join(tmp, "pano_pipe.png")
        out_t, out_p = expect("matchnet-stitch", [args.stitch, "-o", "@OUT@"] + crops,
                              [r"matchnet-stitch: describing 2/2 \(100%\), \d+ s elapsed",
                               r"matchnet-stitch: matching pairs 1/1 \(100%\), \d+ s elapsed",
                               r"matchnet-stitch: composing the panorama, \d+ s elapsed"], *panos)
        check(b'"status": "ok"' in out_p and filecmp.cmp(*panos, shallow=False),
              "matchnet-stitch: the same panorama on a terminal and in a pipe (%r)" % out_p)

        # matchnet-colmap, on the shared helper now: images and pairs.
        if args.colmap:
            images = os.path.join(tmp, "images")
            os.mkdir(images)
            for k in (1, 2, 3):
                os.link(os.path.join(seq, "img%d.png" % k), os.path.join(images, "img%d.png" % k))
            dbs = os.path.join(tmp, "tty.db"), os.path.join(tmp, "pipe.db")
            expect("matchnet-colmap", [args.colmap, "--images", images, "--database", "@OUT@", "--max-keypoints",
                                       "300"],
                   [r"matchnet-colmap: images 3/3 \(100%\), \d+ s elapsed",
                    r"matchnet-colmap: pairs 3/3 \(100%\), \d+ s elapsed"], *dbs)

    if FAILURES:
        sys.exit("test_progress: %d failed" % len(FAILURES))
    print("test_progress: all passed")


if __name__ == "__main__":
    main()
