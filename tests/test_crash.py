#!/usr/bin/python3
"""Killed runs and two runs at once (issue 15, items 1 and 2).

    test_crash.py colmap  --colmap EXE [--colmap-exe COLMAP]
    test_crash.py outputs --match EXE --stitch EXE --patchset EXE --source-dir DIR

colmap: matchnet-colmap (--verify own, so that two-view geometries are
written too, and --pair-list) on 9 overlapping views, 36 pairs in 3 blocks.
  - exact kills: a run is stopped at a named point (apps/test_point.h:
    MATCHNET_TEST_PAUSE=NAME:N) and killed with SIGKILL there: before the
    schema's commit; after describing an image, inside its transaction,
    after its commit; after writing a pair, before and after a block's
    commit; before the pair list's rename; and inside SQLite's own commits
    (the test VFS's points, apps/test_vfs.c: writing and syncing the
    journal, and inside commits - the database written page by page,
    synced, the journal not yet deleted -, spread over the counts an
    instrumented run logged). After each kill
    the database passes PRAGMA integrity_check, the pair list is the whole
    one or none, a rerun finishes, and the database then equals an
    uninterrupted run's table by table - cameras, images, keypoints,
    descriptors, matches, two-view geometries, with the same ids (a
    killed transaction rolls back with its AUTOINCREMENT counters, and the
    rerun adds the rest in the same order) - and nothing else is left
    beside it. The same at a few points with the database in WAL mode
    (as COLMAP leaves a database it opened).
  - kills at times drawn from a fixed seed over the length of a run, each
    run resuming the database the previous kill left.
  - two runs at once: started together, the second waits for the first
    (its lock on the database) and then finds nothing left to do, or is
    refused after 10 s; one stopped inside a transaction makes the second
    wait 10 s and be refused with a clear message, and then finishes; a
    reader holding a read transaction delays a commit (the run finishes
    after it ends) or, held past the busy timeout, makes the run fail
    with a clear message, the database intact and resumable; COLMAP
    (colmap database_merger, which reads every table of a database and
    switches it to WAL mode as every COLMAP command does) reading while
    a run writes. Each ends equal to an uninterrupted run's database.
outputs: matchnet-match (-o and --draw), matchnet-stitch, matchnet-patchset:
  stopped and killed just before the rename of their output (and, for the
  patch set, just after the exchange), and killed at times drawn from a
  fixed seed: the output is the older one, the new complete one or none,
  never a partial one; the next run removes the temporary files (or
  folders) the kill left, keeps one whose process is alive, and puts an
  older patch set moved aside back.

Every run gets OMP_NUM_THREADS=1 and at most 2 threads. Figures (kills,
integrity checks, comparisons) are printed at the end.

CI runs a subset of the exact kill points (one of each kind) and 5 timed
kills; MN_TEST_LONG=1 (scripts/test_long.sh) runs them all and 8 timed
kills.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

ARGS = None
FAILURES = []
COUNT = {"checks": 0, "kills": 0, "exact kills": 0, "timed kills": 0, "runs finished before their kill": 0,
         "kills inside SQLite's commit": 0, "kills leaving a hot journal or log": 0,
         "integrity checks": 0, "database comparisons": 0, "output comparisons": 0}
CHILDREN = []
LONG = os.environ.get("MN_TEST_LONG") == "1"


def check(cond, what):
    COUNT["checks"] += 1
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, flush=True)
    return cond


def base_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATCHNET_TEST_")}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return env


class Run:
    """A program run we can stop, kill and reap ourselves (os.waitpid, so
    that a stopped child is seen)."""

    def __init__(self, cmd, work, pause=None, points_log=None):
        env = base_env()
        if pause:
            env["MATCHNET_TEST_PAUSE"] = pause
        if points_log:
            env["MATCHNET_TEST_POINTS"] = points_log
        fd, self.errpath = tempfile.mkstemp(prefix="stderr_", dir=work)
        self.out = tempfile.TemporaryFile()
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(cmd, stdout=self.out, stderr=fd, env=env)
        os.close(fd)
        self.rc = None
        self.pause = pause
        CHILDREN.append(self)

    def _reap(self, flags):
        pid, status = os.waitpid(self.p.pid, flags)
        if pid == 0:
            return None
        if os.WIFSTOPPED(status):
            return "stopped"
        self.rc = os.waitstatus_to_exitcode(status)
        self.p.returncode = self.rc  # Popen must not wait for it again
        self.seconds = time.monotonic() - self.t0
        return "exited"

    def wait_event(self, timeout=300):
        """'stopped', 'exited', or None after timeout."""
        end = time.monotonic() + timeout
        while True:
            ev = self._reap(os.WNOHANG | os.WUNTRACED)
            if ev or time.monotonic() > end:
                return ev
            time.sleep(0.01)

    def wait(self, timeout=300):
        ev = None
        while self.rc is None and ev is None:
            ev = self.wait_event(timeout)
            if ev == "stopped":
                ev = None  # a stop it was not asked for: wait on
        if self.rc is None:
            self.kill()
            return None
        return self.rc

    def kill(self):
        if self.rc is None:
            os.kill(self.p.pid, signal.SIGKILL)
            while self.rc is None:
                self._reap(0)

    def cont(self):
        os.kill(self.p.pid, signal.SIGCONT)

    def kill_after(self, delay):
        """SIGKILL after delay s, counted as a timed kill; False (counted as a
        run that finished first) when it finished before."""
        if self.wait_event(delay) == "exited":
            COUNT["runs finished before their kill"] += 1
            return False
        self.kill()
        COUNT["kills"] += 1
        COUNT["timed kills"] += 1
        return True

    def err(self):
        with open(self.errpath) as f:
            return f.read()

    def stdout(self):
        self.out.seek(0)
        return self.out.read().decode(errors="replace")


def stop_and_kill(r, what):
    """The run must stop at its pause point; it is killed there."""
    ev = r.wait_event()
    ok = check(ev == "stopped", "%s: did not stop at %s (%s, exit %s): %s" % (what, r.pause, ev, r.rc, r.err()[-300:]))
    r.kill()
    COUNT["kills"] += 1
    COUNT["exact kills"] += ok
    return ok


def textured(seed, w, h, cells=(100, 130)):
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.integers(0, 256, cells, dtype=np.uint8), (0, 0), 1.2)
    return cv2.resize(cv2.normalize(t, None, 0, 255, cv2.NORM_MINMAX), (w, h), interpolation=cv2.INTER_CUBIC)


def listing(d):
    return sorted(os.listdir(d))


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


# ---------------------------------------------------------------------------
# matchnet-colmap
# ---------------------------------------------------------------------------

TABLES = (("cameras", "camera_id"), ("images", "image_id"), ("keypoints", "image_id"), ("descriptors", "image_id"),
          ("matches", "pair_id"), ("two_view_geometries", "pair_id"))


def db_dump(path):
    con = sqlite3.connect(path)
    out = {t: con.execute("SELECT * FROM %s ORDER BY %s" % (t, key)).fetchall() for t, key in TABLES}
    con.close()
    return out


def integrity(path, what):
    COUNT["integrity checks"] += 1
    try:
        con = sqlite3.connect(path, timeout=30)
        r = con.execute("PRAGMA integrity_check").fetchall()
        con.close()
    except sqlite3.Error as e:
        r = [("error: %s" % e,)]
    return check(r == [("ok",)], "%s: integrity_check: %s" % (what, r))


def same_db(path, ref, what):
    COUNT["database comparisons"] += 1
    got = db_dump(path)
    diff = [t for t, _ in TABLES if got[t] != ref[t]]
    return check(not diff, "%s: differs from the uninterrupted run in %s (rows %s, expected %s)"
                 % (what, diff, [len(got[t]) for t in diff], [len(ref[t]) for t in diff]))


class Colmap:
    def __init__(self, work):
        self.work = work
        self.images = os.path.join(work, "images")
        os.makedirs(self.images)
        base = textured(3, 1200, 400, (120, 360))
        for i in range(9):  # 36 pairs: blocks of 16, 16 and 4
            cv2.imwrite(os.path.join(self.images, "v%d.png" % i), base[40:280, 100 * i:100 * i + 320])
        self.n = 0

    def cmd(self, d):
        return [ARGS.colmap, "--images", self.images, "--database", os.path.join(d, "db.db"), "--max-keypoints", "64",
                "--verify", "own", "--threads", "2", "--progress", "never", "--pair-list", os.path.join(d, "pairs.txt")]

    def fresh(self, wal=False):
        self.n += 1
        d = os.path.join(self.work, "run%03d" % self.n)
        os.makedirs(d)
        if wal:  # as COLMAP leaves a database: journal_mode is kept in the file
            con = sqlite3.connect(os.path.join(d, "db.db"))
            con.execute("PRAGMA journal_mode=WAL")
            con.close()
        return d

    def run(self, d, **kw):
        return Run(self.cmd(d), self.work, **kw)

    def reference(self):
        d = self.fresh()
        r = self.run(d)
        check(r.wait() == 0, "uninterrupted run: exit %s: %s" % (r.rc, r.err()[-300:]))
        self.seconds = r.seconds
        self.ref = db_dump(os.path.join(d, "db.db"))
        self.ref_pairs = read_bytes(os.path.join(d, "pairs.txt"))
        check(len(self.ref["images"]) == 9 and len(self.ref["matches"]) == 36 and
              len(self.ref["two_view_geometries"]) == 36 and sum(1 for g in self.ref["two_view_geometries"] if g[4] == 3) >= 5,
              "uninterrupted run: %d images, %d matches, %d geometries" % (
                  len(self.ref["images"]), len(self.ref["matches"]), len(self.ref["two_view_geometries"])))
        # The points an instrumented run passes, through the test VFS (the
        # same database), in both journal modes.
        self.points, self.wal_points = self.count_points(False), self.count_points(True)
        print("points of one run: %s; in WAL mode: %s; %.1f s a run" % (self.points, self.wal_points, self.seconds),
              flush=True)

    def count_points(self, wal):
        d = self.fresh(wal)
        log = os.path.join(d, "points.log")
        r = self.run(d, points_log=log)
        check(r.wait() == 0, "instrumented run: exit %s: %s" % (r.rc, r.err()[-300:]))
        same_db(os.path.join(d, "db.db"), self.ref, "instrumented run (test VFS)")
        points = {}
        for line in open(log).read().split():
            points[line] = points.get(line, 0) + 1
        return points

    def after_kill(self, d, what):
        db = os.path.join(d, "db.db")
        # A kill inside SQLite's commit leaves a hot journal (or a log)
        # for the next connection to roll back (or recover): counted, to
        # show that the kills got there.
        for side in ("-journal", "-wal"):
            if os.path.exists(db + side) and os.path.getsize(db + side) > 0:
                COUNT["kills leaving a hot journal or log"] += 1
                break
        if os.path.exists(db):
            integrity(db, what)
        pl = read_bytes(os.path.join(d, "pairs.txt"))
        check(pl is None or pl == self.ref_pairs, "%s: a partial pair list (%d bytes)" % (what, len(pl or b"")))

    def finish(self, d, what, wal=False):
        """Rerun to the end; the database must equal the reference and
        nothing but it and the pair list be left."""
        r = self.run(d)
        check(r.wait() == 0, "%s: rerun: exit %s: %s" % (what, r.rc, r.err()[-300:]))
        db = os.path.join(d, "db.db")
        integrity(db, what + ", rerun")
        same_db(db, self.ref, what + ", rerun")
        COUNT["output comparisons"] += 1
        check(read_bytes(os.path.join(d, "pairs.txt")) == self.ref_pairs, "%s: pair list differs after the rerun" % what)
        left = [n for n in listing(d) if n not in ("db.db", "pairs.txt") and not n.startswith("points")]
        check(left == [], "%s: left beside the database: %s" % (what, left))
        if wal:
            con = sqlite3.connect(db)
            check(con.execute("PRAGMA journal_mode").fetchone()[0] == "wal", "%s: no longer in WAL mode" % what)
            con.close()

    def exact_points(self):
        def spread(pts, name, k):
            n = pts.get(name, 0)
            return ["%s:%d" % (name, max(1, round((i + 0.5) * n / k))) for i in range(k)] if n else []
        names = ["colmap-schema-commit:1", "colmap-image-described:1", "colmap-image-commit:9",
                 "colmap-image-stored:9", "out-file-rename:1", "colmap-pair-written:1", "colmap-block-commit:3",
                 "colmap-block-done:1"]
        if LONG:
            names += ["colmap-image-described:9", "colmap-image-commit:1", "colmap-pair-written:36",
                      "colmap-block-commit:1", "colmap-block-done:2"]
        # Inside SQLite: writing the journal; inside commits (journal
        # synced, the database written page by page, synced, the journal
        # about to be deleted).
        k = 2 if LONG else 1
        names += spread(self.points, "sqlite-write-journal", 3 if LONG else 1) + \
            spread(self.points, "sqlite-sync-journal", 1) + spread(self.points, "sqlite-write-db", 2 * k) + \
            spread(self.points, "sqlite-sync-db", 1) + spread(self.points, "sqlite-delete", k)
        for p in names:
            d = self.fresh()
            what = "kill at %s" % p
            if stop_and_kill(self.run(d, pause=p), what):
                self.after_kill(d, what)
                COUNT["kills inside SQLite's commit"] += p.startswith(("sqlite-write-db", "sqlite-sync-db",
                                                                        "sqlite-delete"))
            self.finish(d, what)
        # WAL mode: a block's commit, inside SQLite's writes to the log
        # and the checkpoint into the database.
        wal_names = ["colmap-block-commit:2"] + spread(self.wal_points, "sqlite-write-wal", 2 if LONG else 1) + \
            spread(self.wal_points, "sqlite-write-db", 1)
        for p in wal_names:
            d = self.fresh(wal=True)
            what = "WAL mode: kill at %s" % p
            if stop_and_kill(self.run(d, pause=p), what):
                self.after_kill(d, what)
            self.finish(d, what, wal=True)
        return len(names) + len(wal_names)

    def timed_kills(self, n=8, seed=15):
        rng = random.Random(seed)
        d = self.fresh()
        kills = chains = 0
        for i in range(n):
            # Within the first 60% of a fresh run's time: a resumed run
            # has less to do, and the chain carries the kills through it.
            delay = rng.uniform(0.05, 0.6 * self.seconds)
            what = "timed kill %d after %.2f s" % (i + 1, delay)
            r = self.run(d)
            if r.kill_after(delay):
                kills += 1
                self.after_kill(d, what)
            else:  # this resumed run got to the end first: check it, start again
                check(r.rc == 0, "%s: exit %s: %s" % (what, r.rc, r.err()[-300:]))
                self.after_kill(d, what)
                same_db(os.path.join(d, "db.db"), self.ref, what + ", finished")
                chains += 1
                d = self.fresh()
        self.finish(d, "timed kills")
        print("timed kills: %d of %d landed, %d chains finished early" % (kills, n, chains), flush=True)

    def two_at_once(self):
        # Started together: the second waits for the first's lock, then has
        # nothing left to do (or, past 10 s, is refused); nothing twice.
        d = self.fresh()
        a = self.run(d)
        time.sleep(0.3)
        b = self.run(d)
        a.wait(), b.wait()
        check(a.rc == 0, "two at once: first: exit %s: %s" % (a.rc, a.err()[-300:]))
        refused = b.rc == 1 and "another matchnet-colmap run is writing this database" in b.err()
        check(b.rc == 0 or refused, "two at once: second: exit %s: %s" % (b.rc, b.err()[-300:]))
        new = sum(int(m) for r in (a, b) for m in re.findall(r"\((\d+) new", r.err()))
        matched = sum(int(m) for r in (a, b) for m in re.findall(r"(\d+) matched now", r.err()))
        check(new == 9 and matched == 36, "two at once: %d images added, %d pairs matched in all" % (new, matched))
        integrity(os.path.join(d, "db.db"), "two at once")
        same_db(os.path.join(d, "db.db"), self.ref, "two at once")

        # One stopped inside a transaction: the other waits 10 s and is
        # refused. Meanwhile, on another database, a reader holds a read
        # transaction past the busy timeout of a run's commit.
        d1, d2 = self.fresh(), self.fresh()
        a = self.run(d1, pause="colmap-block-commit:1")
        c = self.run(d2, pause="colmap-block-commit:1")
        stopped = a.wait_event() == "stopped" and c.wait_event() == "stopped"
        check(stopped, "two at once: runs did not stop inside their transactions")
        if stopped:
            b = self.run(d1)
            reader = sqlite3.connect(os.path.join(d2, "db.db"), isolation_level=None)
            reader.execute("BEGIN")
            seen = reader.execute("SELECT count(*) FROM matches").fetchone()[0]
            c.cont()
            b.wait(60)
            check(b.rc == 1 and "another matchnet-colmap run is writing this database (waited 10 s" in b.err()
                  and b.seconds >= 9.5, "second run while the first holds the database: exit %s after %.1f s: %s"
                  % (b.rc, b.seconds, b.err()[-300:]))
            integrity(os.path.join(d1, "db.db"), "second run refused")
            a.cont()
            check(a.wait() == 0, "first run, let go on: exit %s: %s" % (a.rc, a.err()[-300:]))
            same_db(os.path.join(d1, "db.db"), self.ref, "first run after the second was refused")
            c.wait(60)
            check(c.rc == 1 and "database is locked" in c.err() and "run again to resume" in c.err(),
                  "run whose commit a reader holds off past 10 s: exit %s: %s" % (c.rc, c.err()[-300:]))
            check(reader.execute("SELECT count(*) FROM matches").fetchone()[0] == seen,
                  "the reader's snapshot changed under it")
            reader.execute("COMMIT")
            reader.close()
            integrity(os.path.join(d2, "db.db"), "after the reader held the commit off")
            self.finish(d2, "after the reader held the commit off")
        else:
            a.kill(), c.kill()

        # A reader for 1.5 s: the run's commit waits for it, then the run
        # finishes; the reader sees the same snapshot throughout.
        d = self.fresh()
        a = self.run(d, pause="colmap-block-commit:2")
        if check(a.wait_event() == "stopped", "short reader: run did not stop"):
            reader = sqlite3.connect(os.path.join(d, "db.db"), isolation_level=None)
            reader.execute("BEGIN")
            snap = reader.execute("SELECT pair_id, rows, length(data) FROM matches ORDER BY pair_id").fetchall()
            check(len(snap) == 16 and all(rows * 8 == n for _, rows, n in snap),
                  "short reader: %d matches rows before the second block's commit" % len(snap))
            a.cont()
            time.sleep(1.5)
            check(a.rc is None and a.wait_event(0) is None, "short reader: the run did not wait for the reader")
            check(reader.execute("SELECT pair_id, rows, length(data) FROM matches ORDER BY pair_id").fetchall() == snap,
                  "short reader: snapshot changed")
            reader.execute("COMMIT")
            reader.close()
            check(a.wait() == 0, "short reader: run: exit %s: %s" % (a.rc, a.err()[-300:]))
            integrity(os.path.join(d, "db.db"), "short reader")
            same_db(os.path.join(d, "db.db"), self.ref, "short reader")
        else:
            a.kill()

    def colmap_reading(self):
        """COLMAP reads the database while runs write it."""
        if not ARGS.colmap_exe:
            print("colmap not installed: COLMAP reading not tried", flush=True)
            return
        empty = os.path.join(self.work, "empty.db")

        def merge(db, tag):
            out = os.path.join(self.work, "merged_%s.db" % tag)
            for n in (out, empty):
                if os.path.exists(n):
                    os.remove(n)
            r = subprocess.run([ARGS.colmap_exe, "database_merger", "--database_path1", db, "--database_path2", empty,
                                "--merged_database_path", out], capture_output=True, text=True, timeout=120,
                               env=dict(base_env(), QT_QPA_PLATFORM="offscreen"))
            images = None
            if os.path.exists(out):
                con = sqlite3.connect(out)
                images = con.execute("SELECT count(*) FROM images").fetchone()[0]
                con.close()
            return r.returncode, images, r.stderr

        # Inside a transaction of ours (stopped there): COLMAP reads the
        # committed state; its writes on opening (WAL mode, user_version)
        # meet our lock.
        d = self.fresh()
        a = self.run(d, pause="colmap-block-commit:1")
        if check(a.wait_event() == "stopped", "COLMAP reading: run did not stop"):
            rc, images, err = merge(os.path.join(d, "db.db"), "stopped")
            print("colmap database_merger beside a stopped transaction: exit %d, %s images read" % (rc, images),
                  flush=True)
            check(rc != 0 or images == 9, "COLMAP read %s images of 9 committed" % images)
            a.cont()
            check(a.wait() == 0, "COLMAP reading: run let go on: exit %s: %s" % (a.rc, a.err()[-300:]))
            integrity(os.path.join(d, "db.db"), "COLMAP read inside a transaction")
            same_db(os.path.join(d, "db.db"), self.ref, "COLMAP read inside a transaction")
        else:
            a.kill()

        # Free-running: COLMAP reads over and over while a run writes.
        d = self.fresh()
        db = os.path.join(d, "db.db")
        a = self.run(d)
        reads = ok = 0
        while a.wait_event(0) is None:
            if os.path.exists(db):
                rc, images, err = merge(db, "loop")
                reads += 1
                ok += rc == 0
        print("colmap database_merger while a run writes: %d reads, %d succeeded" % (reads, ok), flush=True)
        check(a.rc == 0, "run with COLMAP reading: exit %s: %s" % (a.rc, a.err()[-300:]))
        integrity(db, "COLMAP reading during a run")
        same_db(db, self.ref, "COLMAP reading during a run")
        self.finish(d, "COLMAP reading during a run")


def colmap_main(work):
    c = Colmap(work)
    c.reference()
    t = time.monotonic()
    n = c.exact_points()
    print("exact kill points: %d (%.0f s)" % (n, time.monotonic() - t), flush=True)
    t = time.monotonic()
    c.timed_kills(8 if LONG else 5)
    print("timed kills: %.0f s" % (time.monotonic() - t), flush=True)
    t = time.monotonic()
    c.two_at_once()
    print("two at once: %.0f s" % (time.monotonic() - t), flush=True)
    t = time.monotonic()
    c.colmap_reading()
    print("COLMAP reading: %.0f s" % (time.monotonic() - t), flush=True)


# ---------------------------------------------------------------------------
# matchnet-match, matchnet-stitch, matchnet-patchset
# ---------------------------------------------------------------------------

def dead_pid():
    """A PID that no process has now (a child just reaped)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def match_json(text):
    try:
        j = json.loads(text)
    except (ValueError, TypeError):
        return None
    j.pop("timing_ms", None)
    return j


def outputs_match(work):
    box = os.path.join(ARGS.source_dir, "samples", "data", "box.png")
    scene = os.path.join(ARGS.source_dir, "samples", "data", "box_in_scene.png")
    d = os.path.join(work, "match")
    os.makedirs(d)
    js, draw = os.path.join(d, "m.json"), os.path.join(d, "d.png")
    cmd = [ARGS.match, "--max-keypoints", "200", "--threads", "2", "-o", js, "--draw", draw, box, scene]
    r = Run(cmd, work)
    check(r.wait() == 0, "matchnet-match: exit %s: %s" % (r.rc, r.err()[-300:]))
    ref_json, ref_draw, seconds = match_json(read_bytes(js)), read_bytes(draw), r.seconds
    old_json, old_draw = b'{"old": true}\n', b"old drawing"

    def outputs_ok(what):
        COUNT["output comparisons"] += 2
        j, p = read_bytes(js), read_bytes(draw)
        check(j is None or j == old_json or match_json(j) == ref_json, "%s: -o holds a partial file" % what)
        check(p is None or p == old_draw or p == ref_draw, "%s: --draw holds a partial file" % what)

    # Stopped before the JSON's rename (the drawing is written by then).
    for had_old in (True, False):
        for n in (js, draw):
            if os.path.exists(n):
                os.remove(n)
        if had_old:
            open(js, "wb").write(old_json)
            open(draw, "wb").write(old_draw)
        what = "matchnet-match killed before its rename (%s)" % ("older outputs" if had_old else "no outputs")
        r = Run(cmd, work, pause="out-file-rename:1")
        if stop_and_kill(r, what):
            check(read_bytes(js) == (old_json if had_old else None), "%s: -o changed" % what)
            check(read_bytes(draw) == ref_draw, "%s: --draw not the new drawing" % what)
            tmp = os.path.join(d, "m.json.tmp.%d.0" % r.p.pid)
            check(match_json(read_bytes(tmp)) == ref_json, "%s: expected a complete %s, found %s" % (what, tmp, listing(d)))
        outputs_ok(what)
    # Temporary files: a dead process's removed, a live one's kept.
    live = "m.json.tmp.%d.0" % os.getpid()
    dead = ["m.json.tmp.%d.3" % dead_pid(), "d.png.tmp.%d.0" % dead_pid()]
    for n in [live] + dead:
        open(os.path.join(d, n), "w").write("x")
    r = Run(cmd, work)
    check(r.wait() == 0, "matchnet-match after kills: exit %s: %s" % (r.rc, r.err()[-300:]))
    check(listing(d) == sorted(["m.json", "d.png", live]), "matchnet-match left %s (expected only %s of the "
          "temporary files: its process is alive)" % (listing(d), live))
    os.remove(os.path.join(d, live))
    check(match_json(read_bytes(js)) == ref_json and read_bytes(draw) == ref_draw, "matchnet-match: outputs differ")
    # Killed at times from a fixed seed.
    rng = random.Random(5)
    for i in range(4):
        open(js, "wb").write(old_json)
        open(draw, "wb").write(old_draw)
        r = Run(cmd, work)
        r.kill_after(rng.uniform(0.05, seconds))
        outputs_ok("matchnet-match, timed kill %d" % (i + 1))
    r = Run(cmd, work)
    check(r.wait() == 0 and listing(d) == ["d.png", "m.json"], "matchnet-match after timed kills: exit %s, left %s"
          % (r.rc, listing(d)))


def outputs_stitch(work):
    d = os.path.join(work, "stitch")
    os.makedirs(d)
    t = textured(3, 780, 360, (120, 260))
    bgr = cv2.merge([t, 255 - t, t // 2 + 60])
    ins = [os.path.join(work, "s1.png"), os.path.join(work, "s2.png")]
    cv2.imwrite(ins[0], bgr[:, :450])
    cv2.imwrite(ins[1], bgr[:, 300:])
    pano = os.path.join(d, "pano.png")
    cmd = [ARGS.stitch, "--mode", "scans", "--threads", "2", "-o", pano] + ins
    r = Run(cmd, work)
    check(r.wait() == 0, "matchnet-stitch: exit %s: %s" % (r.rc, r.err()[-300:]))
    ref, seconds, old = read_bytes(pano), r.seconds, b"old panorama"
    open(pano, "wb").write(old)
    what = "matchnet-stitch killed before its rename"
    if stop_and_kill(Run(cmd, work, pause="out-file-rename:1"), what):
        COUNT["output comparisons"] += 1
        check(read_bytes(pano) == old, "%s: the panorama changed" % what)
        tmps = [n for n in listing(d) if n.startswith("pano.png.tmp.")]
        check(len(tmps) == 1 and read_bytes(os.path.join(d, tmps[0])) == ref, "%s: temporary files %s" % (what, tmps))
    rng = random.Random(7)
    for i in range(3):
        r = Run(cmd, work)
        r.kill_after(rng.uniform(0.05, seconds))
        COUNT["output comparisons"] += 1
        check(read_bytes(pano) in (old, ref), "matchnet-stitch, timed kill %d: partial panorama" % (i + 1))
    r = Run(cmd, work)
    check(r.wait() == 0 and listing(d) == ["pano.png"] and read_bytes(pano) == ref,
          "matchnet-stitch after kills: exit %s, left %s" % (r.rc, listing(d)))


def read_set(path):
    if not os.path.isdir(path):
        return None
    return {n: read_bytes(os.path.join(path, n)) for n in listing(path)}


def outputs_patchset(work):
    photos = os.path.join(work, "photos")
    os.makedirs(photos)
    for i in range(3):
        cv2.imwrite(os.path.join(photos, "p%d.png" % i), textured(10 + i, 520, 400))
    d = os.path.join(work, "patchset")
    os.makedirs(d)
    out = os.path.join(d, "set")
    cmd = [ARGS.patchset, "--photos", photos, "--out", out, "--views", "4", "--pairs", "100", "--max-keypoints", "200",
           "--seed", "1", "--progress", "never"]
    r = Run(cmd, work)
    check(r.wait() == 0, "matchnet-patchset: exit %s: %s" % (r.rc, r.err()[-300:]))
    ref, seconds = read_set(out), r.seconds
    old = {"info.txt": b"an older set\n"}

    def put_old(path):
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(path)
        for n, b in old.items():
            open(os.path.join(path, n), "wb").write(b)

    def rerun(what):
        r = Run(cmd, work)
        check(r.wait() == 0 and listing(d) == ["set"] and read_set(out) == ref,
              "%s, rerun: exit %s, left %s: %s" % (what, r.rc, listing(d), r.err()[-300:]))
        return r

    # Before the exchange: the older set; after it: the new one, the older
    # under the temporary name. Both whole.
    for point, expect in (("patchset-rename:1", old), ("patchset-renamed:1", ref)):
        put_old(out)
        what = "matchnet-patchset killed at %s" % point
        r = Run(cmd, work, pause=point)
        if stop_and_kill(r, what):
            COUNT["output comparisons"] += 1
            tmp = "set.tmp.%d" % r.p.pid
            check(read_set(out) == expect and listing(d) == sorted(["set", tmp]),
                  "%s: found %s" % (what, listing(d)))
            check(read_set(os.path.join(d, tmp)) == (ref if expect is old else old),
                  "%s: %s is not the whole other set" % (what, tmp))
        r = rerun(what)
        check("removed" in r.err() and "left by an interrupted run" in r.err(), "%s: rerun did not say what it removed"
              % what)
    # A run killed between two renames (file systems without an exchange)
    # left no OUT, the older set as OUT.old.PID, the new as OUT.tmp.PID: the
    # next run puts the older set back before it writes.
    shutil.rmtree(out)
    pid = dead_pid()
    put_old(os.path.join(d, "set.old.%d" % pid))
    os.makedirs(os.path.join(d, "set.tmp.%d" % pid))
    open(os.path.join(d, "set.tmp.%d" % pid, "patches0000.bmp"), "wb").write(b"BM partial")
    what = "matchnet-patchset after a kill between two renames"
    r = Run(cmd, work, pause="patchset-rename:1")
    if stop_and_kill(r, what):
        COUNT["output comparisons"] += 1
        check(read_set(out) == old and listing(d) == sorted(["set", "set.tmp.%d" % r.p.pid]),
              "%s: found %s, the older set %sput back" % (what, listing(d), "" if read_set(out) == old else "not "))
    rerun(what)
    rng = random.Random(9)
    for i in range(3):
        put_old(out)
        r = Run(cmd, work)
        r.kill_after(rng.uniform(0.05, seconds))
        COUNT["output comparisons"] += 1
        check(read_set(out) in (old, ref), "matchnet-patchset, timed kill %d: a partial set at OUT" % (i + 1))
        rerun("matchnet-patchset, timed kill %d" % (i + 1))


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=("colmap", "outputs"))
    for a in ("colmap", "colmap-exe", "match", "stitch", "patchset", "source-dir"):
        ap.add_argument("--" + a)
    ARGS = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mn_crash_")
    t0 = time.monotonic()
    try:
        if ARGS.part == "colmap":
            colmap_main(work)
        else:
            for f in (outputs_match, outputs_stitch, outputs_patchset):
                t = time.monotonic()
                f(work)
                print("%s: %.0f s" % (f.__name__, time.monotonic() - t), flush=True)
    finally:
        for r in CHILDREN:
            if r.rc is None:
                try:
                    os.kill(r.p.pid, signal.SIGKILL)
                    os.waitpid(r.p.pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
        shutil.rmtree(work, ignore_errors=True)
    print("test_crash %s: %s; %d failed, %.0f s" % (
        ARGS.part, ", ".join("%s %d" % kv for kv in COUNT.items()), len(FAILURES), time.monotonic() - t0))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
