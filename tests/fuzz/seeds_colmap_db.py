#!/usr/bin/python3
"""Write the seed corpus of fuzz_colmap_db (tests/fuzz/corpus/colmap_db/).

  /usr/bin/python3 tests/fuzz/seeds_colmap_db.py tests/fuzz/corpus/colmap_db

Raw files (mode 0): small COLMAP 3.8 databases (512-byte pages) with
cameras, images, keypoints of 6, 4 and 2 columns, descriptors, matches and
a two-view geometry; the same cut short; a COLMAP 3.9-style database
(priors in their own table); an empty-schema file. Mode 1: a database and
the hot journal of a transaction left open. Modes 2 and 3: operation lists
(fuzz_colmap_db.c describes their bytes).
"""
import os
import shutil
import sqlite3
import struct
import sys
import tempfile

SCHEMA = [
    "CREATE TABLE cameras (camera_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, model INTEGER NOT NULL,"
    " width INTEGER NOT NULL, height INTEGER NOT NULL, params BLOB, prior_focal_length INTEGER NOT NULL)",
    "CREATE TABLE images (image_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, name TEXT NOT NULL UNIQUE,"
    " camera_id INTEGER NOT NULL, prior_qw REAL, prior_qx REAL, prior_qy REAL, prior_qz REAL, prior_tx REAL,"
    " prior_ty REAL, prior_tz REAL, CONSTRAINT image_id_check CHECK(image_id >= 0 and image_id < 2147483647),"
    " FOREIGN KEY(camera_id) REFERENCES cameras(camera_id))",
    "CREATE UNIQUE INDEX index_name ON images(name)",
    "CREATE TABLE keypoints (image_id INTEGER PRIMARY KEY NOT NULL, rows INTEGER NOT NULL, cols INTEGER NOT NULL,"
    " data BLOB, FOREIGN KEY(image_id) REFERENCES images(image_id) ON DELETE CASCADE)",
    "CREATE TABLE descriptors (image_id INTEGER PRIMARY KEY NOT NULL, rows INTEGER NOT NULL, cols INTEGER NOT NULL,"
    " data BLOB, FOREIGN KEY(image_id) REFERENCES images(image_id) ON DELETE CASCADE)",
    "CREATE TABLE matches (pair_id INTEGER PRIMARY KEY NOT NULL, rows INTEGER NOT NULL, cols INTEGER NOT NULL,"
    " data BLOB)",
    "CREATE TABLE two_view_geometries (pair_id INTEGER PRIMARY KEY NOT NULL, rows INTEGER NOT NULL,"
    " cols INTEGER NOT NULL, data BLOB, config INTEGER NOT NULL, F BLOB, E BLOB, H BLOB, qvec BLOB, tvec BLOB)",
]


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def pair_id(a, b):
    return 2147483647 * min(a, b) + max(a, b)


def make_db(path, schema=SCHEMA, rows=True, keep_open=False):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA page_size = 512")
    db.execute("PRAGMA journal_mode = DELETE")
    for s in schema:
        db.execute(s)
    db.execute("PRAGMA user_version = 3800")
    if rows:
        db.execute("INSERT INTO cameras VALUES(1, 2, 64, 48, ?, 0)", (struct.pack("<4d", 76.8, 32, 24, 0),))
        for i, name in enumerate(["a.jpg", "b.jpg", "sub/c.png"], 1):
            db.execute("INSERT INTO images(image_id, name, camera_id) VALUES(?, ?, 1)", (i, name))
        db.execute("INSERT INTO keypoints VALUES(1, 2, 6, ?)", (f32(10.5, 20.5, 2, 0, 0, 2, 30, 5, 0, -3, 3, 0),))
        db.execute("INSERT INTO keypoints VALUES(2, 2, 4, ?)", (f32(11, 21, 1.5, 0.3, 31, 6, 2.5, -2),))
        db.execute("INSERT INTO keypoints VALUES(3, 1, 2, ?)", (f32(12, 22),))
        db.execute("INSERT INTO descriptors VALUES(1, 2, 128, ?)", (bytes(256),))
        db.execute("INSERT INTO descriptors VALUES(2, 0, 128, ?)", (b"",))
        m = struct.pack("<4I", 0, 1, 1, 0)
        db.execute("INSERT INTO matches VALUES(?, 2, 2, ?)", (pair_id(1, 2), m))
        db.execute("INSERT INTO two_view_geometries VALUES(?, 2, 2, ?, 3, ?, ?, ?, ?, ?)",
                   (pair_id(1, 2), m, bytes(72), bytes(72), bytes(72), struct.pack("<4d", 1, 0, 0, 0), bytes(24)))
    db.execute("VACUUM")
    if keep_open:
        return db
    db.close()


def ops(mode, name, *items):
    """Mode 2 or 3 input: the new image's name, then operations."""
    return bytes([mode, len(name)]) + name + b"".join(items)


def val_null():
    return b"\x00"


def val_int(v):
    return b"\x01" + struct.pack("<q", v)


def val_small(v):
    return b"\x02" + struct.pack("<b", v)


def val_text(s):
    return b"\x05" + bytes([len(s)]) + s


def val_blob(b):
    return b"\x06" + bytes([len(b)]) + b


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp()
    try:
        p = os.path.join(tmp, "a.db")
        make_db(p)
        full = open(p, "rb").read()
        open(os.path.join(out, "colmap38"), "wb").write(b"\x00" + full)
        open(os.path.join(out, "colmap38-cut"), "wb").write(b"\x00" + full[:len(full) // 2])
        os.unlink(p)
        make_db(p, rows=False)
        open(os.path.join(out, "colmap38-empty"), "wb").write(b"\x00" + open(p, "rb").read())
        os.unlink(p)
        # COLMAP 3.9 and later keep the pose priors in a table of their own.
        schema39 = [SCHEMA[0],
                    "CREATE TABLE images (image_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,"
                    " name TEXT NOT NULL UNIQUE, camera_id INTEGER NOT NULL)",
                    "CREATE TABLE pose_priors (image_id INTEGER PRIMARY KEY NOT NULL, position BLOB,"
                    " coordinate_system INTEGER NOT NULL)"] + SCHEMA[3:]
        make_db(p, schema=schema39, rows=False)
        open(os.path.join(out, "colmap39"), "wb").write(b"\x00" + open(p, "rb").read())
        os.unlink(p)
        # A transaction left open: the file and its hot journal.
        make_db(p)
        db = sqlite3.connect(p, isolation_level=None)
        db.execute("BEGIN")
        db.execute("DELETE FROM keypoints")
        db.execute("UPDATE images SET name = 'renamed-' || name")
        db.execute("INSERT INTO images(name, camera_id) VALUES('d.jpg', 1)")
        snap_db = open(p, "rb").read()
        snap_journal = open(p + "-journal", "rb").read()
        db.execute("ROLLBACK")
        db.close()
        open(os.path.join(out, "hot-journal"), "wb").write(
            b"\x01" + struct.pack("<H", len(snap_db)) + snap_db + snap_journal)
        # Operations on COLMAP's schema (mode 2) and on an empty file (mode 3).
        kp = f32(1.5, 2.5, 2, 0, 0, 2)
        open(os.path.join(out, "ops-rows"), "wb").write(ops(
            2, b"new.jpg",
            b"\x00\x00" + val_int(1) + val_small(2) + val_int(64) + val_int(48) + val_null() + val_small(0),
            b"\x01\x01" + val_int(1) + val_text(b"a.jpg") + val_int(1) + val_null() * 7,
            b"\x02\x02" + val_int(1) + val_small(1) + val_small(6) + val_blob(kp),
            b"\x04\x04" + val_int(pair_id(1, 2)) + val_small(0) + val_small(2) + val_blob(b"")))
        open(os.path.join(out, "ops-update"), "wb").write(ops(
            2, b"caf\xc3\xa9 \xff.jpg",
            b"\x01\x01" + val_int(7) + val_text(b"x.png") + val_int(3) + val_null() * 7,
            b"\x02\x02" + val_int(7) + val_small(1) + val_small(4) + val_blob(f32(3, 4, 2, 1)),
            b"\x0e\x02\x01" + b"\x03\x05",  # UPDATE keypoints SET rows = 6
            b"\x0c\x00" + b"\x00" * 8))  # PRAGMA user_version = 0
        open(os.path.join(out, "ops-schema"), "wb").write(ops(
            2, b"s.jpg",
            b"\x07\x03\x01",  # ALTER TABLE descriptors ADD COLUMN
            b"\x08\x04\x02",  # a matches column renamed
            b"\x09\x05\x01"))  # two_view_geometries without its last column
        open(os.path.join(out, "ops-view-trigger"), "wb").write(ops(
            2, b"v.jpg",
            b"\x01\x01" + val_int(1) + val_text(b"a.jpg") + val_int(1) + val_null() * 7,
            b"\x0a\x02",  # keypoints as a view
            b"\x7b\x04",  # a trigger refusing inserts into matches
            b"\x0f\x00"))  # journal_mode DELETE
        # COLMAP's column names without its types and constraints (another
        # tool's database), and one with a column more.
        open(os.path.join(out, "ops-foreign"), "wb").write(ops(
            3, b"f.jpg",
            b"\x09\x00\x00", b"\x09\x01\x00", b"\x09\x02\x00", b"\x09\x03\x00", b"\x09\x04\x00", b"\x09\x05\x00",
            b"\x01\x01" + val_int(2 ** 40) + val_text(b"a.jpg") + val_int(1) + val_null() * 7))
        open(os.path.join(out, "ops-foreign-extra"), "wb").write(ops(
            3, b"g.jpg",
            b"\x09\x00\x00", b"\x09\x01\x02", b"\x09\x02\x03", b"\x09\x03\x00", b"\x09\x04\x00", b"\x09\x05\x00"))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
