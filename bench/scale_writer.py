#!/usr/bin/python3
"""The database writer's throughput, for bench/scale.sh: pairs written per second.

    scale_writer.py DONE.db IMAGES.db

Replays what matchnet-colmap's writer (rank 0 under mpirun, the one
process otherwise) does for the pairs: the matches and two_view_geometries
rows of DONE.db (a finished run) are inserted into IMAGES.db (the same
database before its match step: cameras, images, keypoints), PAIR_BLOCK =
16 pairs to a transaction, with SQLite's defaults as the program has them
(rollback journal, synchronous FULL: a commit waits for the disk). The rows
are read first, so only the writing is timed. Prints one line: pairs
seconds pairs_per_second. IMAGES.db is modified.
"""
import sqlite3
import sys
import time

PAIR_BLOCK = 16


def main():
    if len(sys.argv) != 3:
        print("usage: scale_writer.py DONE.db IMAGES.db", file=sys.stderr)
        return 2
    src = sqlite3.connect(sys.argv[1])
    matches = {r[0]: r for r in src.execute("SELECT * FROM matches")}
    geoms = {r[0]: r for r in src.execute("SELECT * FROM two_view_geometries")}
    src.close()
    pairs = sorted(set(matches) | set(geoms))
    if not pairs:
        print("scale_writer.py: no pairs in %s" % sys.argv[1], file=sys.stderr)
        return 1
    dst = sqlite3.connect(sys.argv[2], isolation_level=None)
    qm = "INSERT INTO matches VALUES (%s)" % ",".join("?" * len(next(iter(matches.values())))) if matches else None
    qg = "INSERT INTO two_view_geometries VALUES (%s)" % ",".join("?" * len(next(iter(geoms.values())))) \
        if geoms else None
    t0 = time.perf_counter()
    for b in range(0, len(pairs), PAIR_BLOCK):
        dst.execute("BEGIN")
        for p in pairs[b:b + PAIR_BLOCK]:
            if p in matches:
                dst.execute(qm, matches[p])
            if p in geoms:
                dst.execute(qg, geoms[p])
        dst.execute("COMMIT")
    t = time.perf_counter() - t0
    dst.close()
    print("%d %.4f %.1f" % (len(pairs), t, len(pairs) / t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
