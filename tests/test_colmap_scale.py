#!/usr/bin/python3
"""CTest test of matchnet-colmap at scale: the descriptor store, shards and their merge.

    test_colmap_scale.py PATH/TO/matchnet-colmap PATH/TO/test_colmap [PATH/TO/mpirun]

test_colmap --render writes the 5 views of its scene (320 x 240); an
unreadable file is added. Checked, each database against another table by
table (cameras, images, keypoints, descriptors, matches,
two_view_geometries; every column, rows in key order):
- --store: one file per readable image; a second run into a new database
  reads them (no file rewritten) and writes the same database; a corrupt
  file and one of other settings (--max-keypoints) are made again; the
  smallest cache (--cache-mb 0) gives the same database; float16
  descriptors give the same matches as float32 (no --store) on this scene
  or at most 2% fewer.
- --shard I/N + --merge equals a single run with the same --store, for
  N = 2 and 3, with --verify own, and with --single-camera; the shards'
  --pair-list files together are the single run's list; a rerun of a
  shard resumes (nothing matched again; pairs deleted from a part are
  matched again); --merge refuses parts made with other settings, leaving
  no output; usage errors exit 2 with one line.
- retrieval:K with the store, in 2 shards (the same pairs; merged equal to
  the single run) and, with mpirun, on 2 ranks (equal to the single run).
- With mpirun (a build with MN_WITH_MPI): 2 and 3 ranks on loopback
  (--oversubscribe; as root with OMPI_ALLOW_RUN_AS_ROOT) equal the single
  run; a rerun resumes (nothing matched again; deleted pairs matched again,
  equal again); several ranks without --store are refused.
"""
import array
import glob
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

TABLES = [
    ("cameras", "camera_id"),
    ("images", "image_id"),
    ("keypoints", "image_id"),
    ("descriptors", "image_id"),
    ("matches", "pair_id"),
    ("two_view_geometries", "pair_id"),
]

failures = 0


def check(ok, what):
    global failures
    if not ok:
        failures += 1
        print("FAIL:", what)
    return ok


def run(exe, *args):
    """Run matchnet-colmap; (status, stderr)."""
    p = subprocess.run([exe, "--threads", "2", "--max-keypoints", "400"] + list(args),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stderr


def tables(path):
    db = sqlite3.connect(path)
    out = {t: db.execute(f"SELECT * FROM {t} ORDER BY {k}").fetchall() for t, k in TABLES}
    db.close()
    return out


def same_db(a, b, what):
    ta, tb = tables(a), tables(b)
    ok = True
    for t, _ in TABLES:
        if ta[t] != tb[t]:
            ok = False
            print(f"FAIL: {what}: table {t} differs ({len(ta[t])} rows in {os.path.basename(a)}, "
                  f"{len(tb[t])} in {os.path.basename(b)})")
    check(ta["matches"], f"{what}: no matches at all")
    global failures
    failures += not ok
    return ok


def store_files(store):
    return {f: os.stat(f).st_mtime_ns for f in glob.glob(os.path.join(store, "*.mnd"))}


def mpirun(launcher, ranks, exe, *args):
    """matchnet-colmap under mpirun on this machine; (status, stderr)."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1")
    cmd = [launcher, "--oversubscribe", "-n", str(ranks), exe, "--threads", "1", "--max-keypoints", "400"] + list(args)
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, timeout=240)
    return p.returncode, p.stderr


def mpi_checks(launcher, exe, common, store, p):
    """Open MPI runs of 2 and 3 ranks against the single run (p('single.db'), same store)."""
    for ranks in (2, 3):
        db = p(f"mpi{ranks}.db")
        rc, err = mpirun(launcher, ranks, exe, *common, "--database", db, "--store", store)
        check(rc == 0 and "10 pairs (10 matched now" in err, f"mpirun -n {ranks}: {rc} {err}")
        same_db(p("single.db"), db, f"mpirun -n {ranks}")
    db = p("mpi3.db")
    rc, err = mpirun(launcher, 3, exe, *common, "--database", db, "--store", store)
    check(rc == 0 and "(0 new" in err and "(0 matched now" in err, f"mpirun rerun did work: {rc} {err}")
    con = sqlite3.connect(db)
    con.execute("DELETE FROM matches WHERE pair_id % 2 = 0")
    con.execute("DELETE FROM two_view_geometries WHERE pair_id % 2 = 0")
    con.commit()
    con.close()
    rc, err = mpirun(launcher, 2, exe, *common, "--database", db, "--store", store)
    check(rc == 0 and "(0 new" in err and "(0 matched now" not in err, f"mpirun resume: {rc} {err}")
    same_db(p("single.db"), db, "mpirun resumed")
    rc, err = mpirun(launcher, 2, exe, *common, "--database", p("nostore.db"))
    check(rc != 0 and "--store DIR is needed" in err and not os.path.exists(p("nostore.db")),
          f"mpirun without --store: {rc} {err}")


def main():
    exe, renderer = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="test_colmap_scale.")
    images, store = os.path.join(tmp, "images"), os.path.join(tmp, "store")
    os.mkdir(images)
    subprocess.run([renderer, "--render", images], check=True)
    with open(os.path.join(images, "broken.png"), "w") as f:
        f.write("not an image\n")
    p = lambda name: os.path.join(tmp, name)
    common = ["--images", images, "--verify", "own"]

    # Usage errors.
    for args, want in [(["--shard", "0/2"], "--shard needs --store"), (["--shard", "2/2", "--store", store], "I/N"),
                       (["--shard", "0/2", "--store", store, "--single-camera"], "give --single-camera to --merge"),
                       (["--store", store, "--reuse-keypoints"], "--reuse-keypoints")]:
        rc, err = run(exe, *common, "--database", p("x.db"), *args)
        check(rc == 2 and err.count("\n") == 1 and err.startswith("matchnet-colmap: ") and want in err,
              f"{args}: status {rc}, stderr {err!r}")
    rc, err = run(exe, "--merge", p("x.db"))
    check(rc == 2 and "part databases" in err, f"--merge without parts: {rc} {err!r}")
    check(not os.path.exists(p("x.db")) and not os.path.exists(store), "a usage error left files")

    # The store: written once, read back, remade when stale or corrupt.
    rc, err = run(exe, *common, "--database", p("single.db"), "--store", store, "--pair-list", p("pairs.txt"))
    check(rc == 0, f"single run: {rc} {err}")
    files = store_files(store)
    check(len(files) == 5, f"{len(files)} store files, want 5 (one per readable image)")
    rc, err = run(exe, *common, "--database", p("again.db"), "--store", store, "--cache-mb", "0")
    check(rc == 0 and store_files(store) == files, f"a second run rewrote store files: {rc} {err}")
    same_db(p("single.db"), p("again.db"), "--store read back, --cache-mb 0")
    victim = sorted(files)[0]
    with open(victim, "r+b") as f:
        f.seek(os.path.getsize(victim) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x40]))
    rc, err = run(exe, *common, "--database", p("fixed.db"), "--store", store)
    check(rc == 0 and store_files(store)[victim] != files[victim], f"a corrupt store file was not made again: {err}")
    same_db(p("single.db"), p("fixed.db"), "after a corrupt store file")
    rc, err = run(exe, "--images", images, "--database", p("other.db"), "--store", store, "--max-keypoints", "300")
    check(rc == 0 and all(store_files(store)[f] != files[f] for f in files if f != victim),
          f"store files of other settings were used: {err}")
    other = tables(p("other.db"))
    check(max(r[1] for r in other["keypoints"]) <= 300, "--max-keypoints 300 ignored with a stale store")

    # float16 against float32: the matches of the in-memory run.
    rc, err = run(exe, *common, "--database", p("memory.db"))
    mem, f16 = tables(p("memory.db"))["matches"], tables(p("single.db"))["matches"]
    n32, n16 = sum(r[1] for r in mem), sum(r[1] for r in f16)
    pairs = lambda blob: set(zip(*[iter(array.array("I", blob))] * 2))
    same = sum(len(pairs(a[3]) & pairs(b[3])) for a, b in zip(mem, f16))
    print(f"float32 matches {n32}, float16 {n16}, both {same}")
    check(rc == 0 and len(mem) == len(f16) and n16 >= 0.98 * n32 and same >= 0.95 * n32,
          f"float16 changes the matches: float32 {n32}, float16 {n16}, common {same}")

    # Shards and merge, against the single run (its store was remade by the
    # --max-keypoints 300 run above: remade again here, the same files).
    for n in (2, 3):
        parts = [p(f"part{n}.{i}.db") for i in range(n)]
        lists = []
        for i in range(n):
            lists.append(p(f"pairs{n}.{i}.txt"))
            rc, err = run(exe, *common, "--database", parts[i], "--store", store, "--shard", f"{i}/{n}",
                          "--pair-list", lists[-1])
            check(rc == 0 and f"shard {i}/{n}" in err, f"shard {i}/{n}: {rc} {err}")
        joined = sorted(line for path in lists for line in open(path))
        check(joined == sorted(open(p("pairs.txt"))), f"{n} shards' pair lists are not the single run's")
        rc, err = run(exe, "--merge", p(f"merged{n}.db"), *parts)
        check(rc == 0 and "merged" in err, f"--merge of {n}: {rc} {err}")
        same_db(p("single.db"), p(f"merged{n}.db"), f"{n} shards merged")

    # A rerun of a shard resumes: nothing again, then the pairs deleted.
    rc, err = run(exe, *common, "--database", p("part2.1.db"), "--store", store, "--shard", "1/2")
    check(rc == 0 and "(0 new" in err and "(0 matched now" in err, f"rerun of shard 1/2 did work: {err}")
    db = sqlite3.connect(p("part2.0.db"))
    deleted = db.execute("SELECT count(*) FROM matches").fetchone()[0]
    db.execute("DELETE FROM matches")
    db.execute("DELETE FROM two_view_geometries")
    db.commit()
    db.close()
    rc, err = run(exe, *common, "--database", p("part2.0.db"), "--store", store, "--shard", "0/2")
    check(rc == 0 and f"({deleted} matched now" in err, f"resumed shard 0/2 did not match its {deleted} pairs: {err}")
    rc, err = run(exe, "--merge", p("merged2.db"), p("part2.0.db"), p("part2.1.db"))
    same_db(p("single.db"), p("merged2.db"), "resumed shard merged")

    # --single-camera: given to the single run and to --merge.
    rc, err = run(exe, *common, "--database", p("single_cam.db"), "--store", store, "--single-camera")
    rc2, err2 = run(exe, "--merge", p("merged_cam.db"), "--single-camera", p("part2.0.db"), p("part2.1.db"))
    check(rc == 0 and rc2 == 0, f"--single-camera: {err} {err2}")
    if same_db(p("single_cam.db"), p("merged_cam.db"), "--single-camera merged"):
        check(len(tables(p("merged_cam.db"))["cameras"]) == 1, "--single-camera: more than one camera")

    # Parts that disagree on an image (other --max-keypoints, other store)
    # are refused, leaving no output.
    rc, err = run(exe, "--images", images, "--database", p("odd.db"), "--store", p("store300"),
                  "--max-keypoints", "300", "--shard", "1/2", "--verify", "own")
    rc, err = run(exe, "--merge", p("bad.db"), p("part2.0.db"), p("odd.db"))
    check(rc == 1 and err.count("\n") == 1 and "has other" in err and not os.path.exists(p("bad.db"))
          and not glob.glob(p("bad.db.tmp.*")), f"inconsistent parts: {rc} {err!r}")

    # retrieval:K with the store: the descriptors read back one image at a
    # time; shards choose the same pairs and their merge equals the single
    # run (each shard learns the same codebook from the same store files).
    rc, err = run(exe, *common, "--database", p("ret.db"), "--store", store, "--pairs", "retrieval:2",
                  "--pair-list", p("ret.txt"))
    ret_pairs = sorted(open(p("ret.txt")))
    check(rc == 0 and 4 <= len(ret_pairs) <= 8, f"retrieval:2 with --store: {rc} {err} {ret_pairs}")
    # With the store the global descriptors go to a file and are compared in
    # tiles (two images a tile under --cache-mb 0); without it, in memory:
    # the same pairs either way.
    for tag, more in (("memory", []), ("tiles", ["--store", store, "--cache-mb", "0"])):
        rc, err = run(exe, *common, "--database", p(f"ret_{tag}.db"), "--pairs", "retrieval:2", *more,
                      "--pair-list", p(f"ret_{tag}.txt"))
        got = sorted(open(p(f"ret_{tag}.txt"))) if rc == 0 else None
        check(got == ret_pairs, f"retrieval:2, global descriptors in {tag}: {rc} {err} {got} != {ret_pairs}")
    check(not glob.glob(os.path.join(store, "globals.tmp.*")), "a global descriptor file was left in the store")
    lists = []
    for i in range(2):
        lists.append(p(f"ret{i}.txt"))
        rc, err = run(exe, *common, "--database", p(f"ret{i}.db"), "--store", store, "--pairs", "retrieval:2",
                      "--shard", f"{i}/2", "--pair-list", lists[-1])
        check(rc == 0, f"retrieval:2 shard {i}/2: {rc} {err}")
    check(sorted(line for path in lists for line in open(path)) == ret_pairs,
          "retrieval:2: the shards' pairs are not the single run's")
    rc, err = run(exe, "--merge", p("ret_merged.db"), p("ret0.db"), p("ret1.db"))
    check(rc == 0, f"--merge of retrieval shards: {rc} {err}")
    same_db(p("ret.db"), p("ret_merged.db"), "retrieval:2 shards merged")

    if len(sys.argv) > 3:
        mpi_checks(sys.argv[3], exe, common, store, p)
        rc, err = mpirun(sys.argv[3], 2, exe, *common, "--database", p("ret_mpi.db"), "--store", store,
                         "--pairs", "retrieval:2")
        check(rc == 0, f"mpirun -n 2 retrieval:2: {rc} {err}")
        same_db(p("ret.db"), p("ret_mpi.db"), "mpirun -n 2 retrieval:2")

    if failures == 0:
        shutil.rmtree(tmp)
    else:
        print("files kept in", tmp)
    print(f"test_colmap_scale: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
