#!/usr/bin/python3
"""CTest tests of matchnet.hloc (python/matchnet/hloc.py): MatchNet features
and matches in the files of Hierarchical-Localization (hloc).

    test_hloc.py --source-dir SRC [unittest options]     (PYTHONPATH=BUILD_DIR/python)

hloc and pycolmap are not in Debian, so the files are checked the way
hloc's own readers index them, re-stated below from hloc's utils/io.py,
utils/parsers.py and triangulation.py (hloc_* functions, h5py only, never
the module under test); values are held to matchnet.MatchNet and
matchnet.Matcher run on the same images. Images: the bundled pair
(samples/data) and copies rendered from it (a perspective warp written as
JPEG, Gaussian blobs at known pixel centres), fixed seeds.
"""
import argparse
import hashlib
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import cv2
import h5py
import numpy as np

for _v in ("MATCHNET_LIBRARY", "MATCHNET_PLUGIN_LIBRARY"):
    os.environ.pop(_v, None)

import matchnet  # noqa: E402
from matchnet import hloc  # noqa: E402

ARGS = None
CACHE = {}
# The warp from sub/b.png to sub/deeper/c.jpg.
H_BC = np.array([[0.98, -0.08, 12.0], [0.07, 0.97, -6.0], [1e-5, 2e-5, 1.0]])
NAMES = ["a.png", "sub/b.png", "sub/deeper/c.jpg"]


# ---- hloc's readers, as its code indexes the files (h5py only) ----

def hloc_list_h5_names(path):
    """utils/io.py list_h5_names: the parent group of every dataset."""
    names = []
    with h5py.File(path, "r") as fd:
        fd.visititems(lambda _, obj: names.append(obj.parent.name.strip("/"))
                      if isinstance(obj, h5py.Dataset) else None)
    return set(names)


def hloc_get_keypoints(path, name):
    """utils/io.py get_keypoints: hfile[name]["keypoints"] as stored."""
    with h5py.File(path, "r", libver="latest") as hfile:
        dset = hfile[name]["keypoints"]
        return dset.__array__(), dset.attrs.get("uncertainty")


def hloc_names_to_pair(name0, name1, separator="/"):
    return separator.join((name0.replace("/", "-"), name1.replace("/", "-")))


def hloc_find_pair(hfile, name0, name1):
    """utils/io.py find_pair: new names both ways, then the old "_" names."""
    tries = [(hloc_names_to_pair(name0, name1), False), (hloc_names_to_pair(name1, name0), True),
             (hloc_names_to_pair(name0, name1, "_"), False), (hloc_names_to_pair(name1, name0, "_"), True)]
    for pair, rev in tries:
        if pair in hfile:
            return pair, rev
    raise ValueError("Could not find pair %r" % ((name0, name1),))


def hloc_get_matches(path, name0, name1):
    """utils/io.py get_matches: (idx0, idx1) rows where matches0 != -1,
    flipped for a reversed pair; scores of those rows."""
    with h5py.File(path, "r", libver="latest") as hfile:
        pair, rev = hloc_find_pair(hfile, name0, name1)
        matches = hfile[pair]["matches0"].__array__()
        scores = hfile[pair]["matching_scores0"].__array__()
    idx = np.where(matches != -1)[0]
    matches = np.stack([idx, matches[idx]], -1)
    if rev:
        matches = np.flip(matches, -1)
    return matches, scores[idx]


def hloc_parse_retrieval(path):
    """utils/parsers.py parse_retrieval: {query: [references]}."""
    out = {}
    with open(path) as f:
        for p in f.read().rstrip("\n").split("\n"):
            if len(p) == 0:
                continue
            q, r = p.split()
            out.setdefault(q, []).append(r)
    return out


# ---- fixtures ----

def data(name):
    return os.path.join(ARGS.source_dir, "samples", "data", name)


def cli(*args, cwd=None, check=False):
    r = subprocess.run([sys.executable, "-m", "matchnet.hloc", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd)
    if check and r.returncode != 0:
        raise AssertionError("matchnet.hloc %s: exit %d\n%s" % (" ".join(map(str, args)), r.returncode, r.stderr))
    return r


def make_images(folder):
    """The image folder: a.png, sub/b.png, sub/deeper/c.jpg (b warped by
    H_BC), plus files hloc's globs leave out."""
    os.makedirs(os.path.join(folder, "sub", "deeper"))
    os.makedirs(os.path.join(folder, "dir.png"))                   # a folder, not an image
    shutil.copy(data("box.png"), os.path.join(folder, "a.png"))
    shutil.copy(data("box_in_scene.png"), os.path.join(folder, "sub", "b.png"))
    b = cv2.imread(data("box_in_scene.png"), cv2.IMREAD_GRAYSCALE)
    c = cv2.warpPerspective(b, H_BC, (b.shape[1], b.shape[0]))
    assert cv2.imwrite(os.path.join(folder, "sub", "deeper", "c.jpg"), c, [cv2.IMWRITE_JPEG_QUALITY, 95])
    shutil.copy(data("box.png"), os.path.join(folder, ".hidden.png"))
    shutil.copy(os.path.join(folder, "sub", "deeper", "c.jpg"), os.path.join(folder, "upper.JPEG"))
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("not an image\n")


def pipeline():
    """extract, pairs, match through the command line, once for all tests."""
    if "run" not in CACHE:
        tmp = CACHE["tmp"] = tempfile.mkdtemp(prefix="test_hloc_")
        images = os.path.join(tmp, "images")
        make_images(images)
        out = {"images": images, "features": os.path.join(tmp, "features.h5"),
               "pairs": os.path.join(tmp, "pairs.txt"), "matches": os.path.join(tmp, "matches.h5"),
               "metric": os.path.join(tmp, "matches-metric.h5")}
        cli("extract", images, out["features"], check=True, cwd="/")
        cli("pairs", out["features"], out["pairs"], check=True)
        cli("match", out["pairs"], out["features"], out["matches"], check=True)
        cli("match", out["pairs"], out["features"], out["metric"], "--method", "metric", check=True)
        CACHE["run"] = out
    return CACHE["run"]


def net():
    if "net" not in CACHE:
        CACHE["net"] = matchnet.MatchNet(max_keypoints=8000)
    return CACHE["net"]


def reference(name):
    """MatchNet's keypoints (N x 4) and descriptors of one image of the folder."""
    key = ("ref", name)
    if key not in CACHE:
        grey = matchnet.load_image(os.path.join(pipeline()["images"], name))
        kp, d = net().detectAndCompute(grey)
        CACHE[key] = (np.array([(k.pt[0], k.pt[1], k.size, k.angle) for k in kp], np.float32).reshape(-1, 4), d,
                      grey)
    return CACHE[key]


def file_descriptors(path, name):
    """Descriptors as a matcher needs them: the file's D x N, transposed, float32."""
    with h5py.File(path, "r") as f:
        return np.ascontiguousarray(f[name]["descriptors"][()].T.astype(np.float32))


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def listing(folder):
    return sorted(os.listdir(folder))


def o_tmpfile(folder):
    """Whether folder's file system makes unnamed (O_TMPFILE) files."""
    try:
        os.close(os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600))
        return True
    except (AttributeError, OSError):
        return False


def tearDownModule():
    if "tmp" in CACHE:
        shutil.rmtree(CACHE["tmp"], ignore_errors=True)


# ---- tests ----

class FeatureFile(unittest.TestCase):
    def test_names_as_hloc_globs_find_them(self):
        # .hidden.png, upper.JPEG, notes.txt and the folder dir.png are not hloc's images.
        self.assertEqual(hloc_list_h5_names(pipeline()["features"]), set(NAMES))
        self.assertEqual(hloc.list_images(pipeline()["images"]), NAMES)
        with h5py.File(pipeline()["features"], "r") as f:
            # "/" in a name is a group path, as h5py's create_group makes it.
            self.assertIsInstance(f["sub"]["deeper"]["c.jpg"], h5py.Group)

    def test_layout_and_dtypes(self):
        for name in NAMES:
            kp, _, grey = reference(name)
            p, unc = hloc_get_keypoints(pipeline()["features"], name)
            with h5py.File(pipeline()["features"], "r") as f:
                g = f[name]
                self.assertEqual(p.dtype, np.float32, name)
                self.assertEqual(p.shape, (len(kp), 2), name)
                self.assertEqual(unc, 1.0)
                self.assertEqual(g["descriptors"].dtype, np.float16)          # as_half, hloc's default
                self.assertEqual(g["descriptors"].shape, (256, len(kp)))        # D x N
                self.assertEqual(g["scores"].dtype, np.float16)
                self.assertEqual(g["scores"].shape, (len(kp),))
                self.assertEqual(g["image_size"].dtype, np.int64)
                np.testing.assert_array_equal(g["image_size"][()], [grey.shape[1], grey.shape[0]])  # (w, h)
                self.assertGreater(len(kp), 300, name)

    def test_equals_matchnet(self):
        for name in NAMES:
            kp, d, _ = reference(name)
            with h5py.File(pipeline()["features"], "r") as f:
                g = f[name]
                np.testing.assert_array_equal(g["keypoints"][()], kp[:, :2], err_msg=name)
                # float16 of MatchNet's descriptors, exactly.
                np.testing.assert_array_equal(g["descriptors"][()], d.T.astype(np.float16), err_msg=name)
                np.testing.assert_array_equal(g["scales"][()], kp[:, 2] / 2)
                np.testing.assert_array_equal(g["oris"][()], kp[:, 3])
            self.assertLess(np.abs(file_descriptors(pipeline()["features"], name) - d).max(), 1e-3)

    def test_full_precision(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "f32.h5")
            cli("extract", pipeline()["images"], out, "--no-half", check=True)
            kp, d, _ = reference("sub/b.png")
            with h5py.File(out, "r") as f:
                self.assertEqual(f["sub/b.png/descriptors"].dtype, np.float32)
                self.assertEqual(f["sub/b.png/scores"].dtype, np.float32)
                np.testing.assert_array_equal(f["sub/b.png/descriptors"][()], d.T)
            r = hloc.read_features(out, "sub/b.png")
            np.testing.assert_array_equal(r["descriptors"], d)
            self.assertEqual(r["image_size"], (512, 384))

    def test_max_keypoints(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "f.h5")
            cli("extract", pipeline()["images"], out, "--max-keypoints", "100", check=True)
            grey = reference("a.png")[2]
            kp, d = matchnet.MatchNet(max_keypoints=100, model=net().model).detectAndCompute(grey)
            self.assertEqual(len(kp), 100)
            np.testing.assert_array_equal(hloc.read_keypoints(out, "a.png"),
                                          np.array([k.pt for k in kp], np.float32))
            np.testing.assert_array_equal(hloc.read_features(out, "a.png")["descriptors"],
                                          d.astype(np.float16).astype(np.float32))

    def test_pixel_origin(self):
        """Keypoints are in OpenCV's convention, the one hloc stores (its
        import_features adds 0.5 for COLMAP): blobs centred on pixels
        (30, 40), (70, 25) come back there, not half a pixel further (OpenCV's
        SIFT puts them 0.24 px right of and below the centre itself)."""
        with tempfile.TemporaryDirectory() as tmp:
            os.mkdir(os.path.join(tmp, "img"))
            yy, xx = np.mgrid[0:80, 0:100]
            centres = [(30.0, 40.0), (70.0, 25.0)]
            img = sum(200 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 3.0 ** 2)) for cx, cy in centres)
            cv2.imwrite(os.path.join(tmp, "img", "blobs.png"), np.clip(img + 20, 0, 255).astype(np.uint8))
            cli("extract", os.path.join(tmp, "img"), os.path.join(tmp, "f.h5"), check=True)
            p, _ = hloc_get_keypoints(os.path.join(tmp, "f.h5"), "blobs.png")
            for cx, cy in centres:
                err = np.abs(p - [cx, cy]).max(axis=1).min()
                self.assertLess(err, 0.4, (cx, cy, p))


class Pairs(unittest.TestCase):
    def test_exhaustive_pairs_file(self):
        with open(pipeline()["pairs"]) as f:
            self.assertEqual(f.read(), "a.png sub/b.png\na.png sub/deeper/c.jpg\nsub/b.png sub/deeper/c.jpg\n")
        self.assertEqual(hloc_parse_retrieval(pipeline()["pairs"]),
                         {"a.png": ["sub/b.png", "sub/deeper/c.jpg"], "sub/b.png": ["sub/deeper/c.jpg"]})

    def test_read_pairs(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "p.txt")
            with open(p, "w") as f:
                f.write("a.png  sub/b.png\r\n\n   \nx y\t\n")
            self.assertEqual(hloc.read_pairs(p), [("a.png", "sub/b.png"), ("x", "y")])
            with open(p, "w") as f:
                f.write("a b\na b c\n")
            with self.assertRaisesRegex(matchnet.Error, "line 2"):
                hloc.read_pairs(p)


class MatchFile(unittest.TestCase):
    PAIRS = [("a.png", "sub/b.png"), ("a.png", "sub/deeper/c.jpg"), ("sub/b.png", "sub/deeper/c.jpg")]

    def test_group_names(self):
        path = pipeline()["matches"]
        self.assertEqual(hloc_list_h5_names(path),
                         {"a.png/sub-b.png", "a.png/sub-deeper-c.jpg", "sub-b.png/sub-deeper-c.jpg"})
        with h5py.File(path, "r") as f:
            self.assertIsInstance(f["sub-b.png"]["sub-deeper-c.jpg"], h5py.Group)

    def check_matcher(self, path, method):
        matcher = matchnet.Matcher(method=method, model=net().model)
        for a, b in self.PAIRS:
            d0 = file_descriptors(pipeline()["features"], a)
            d1 = file_descriptors(pipeline()["features"], b)
            with h5py.File(path, "r") as f:
                g = f[hloc_names_to_pair(a, b)]
                m0, s0 = g["matches0"][()], g["matching_scores0"][()]
            self.assertEqual(m0.dtype, np.int16)
            self.assertEqual(s0.dtype, np.float16)
            self.assertEqual(m0.shape, (len(d0),))
            expect = np.full(len(d0), -1)
            ms = matcher.match(d0, d1)
            for m in ms:
                expect[m.queryIdx] = m.trainIdx
            np.testing.assert_array_equal(m0, expect, err_msg="%s %s" % (a, b))
            self.assertTrue((m0 == -1).any() and (m0 >= 0).sum() > 20, (a, b, (m0 >= 0).sum()))
            np.testing.assert_array_equal(s0[m0 == -1], 0)
            # Scores: the metric network's probability of each match.
            prob = matcher.probabilities(d0, d1, ms)
            np.testing.assert_allclose(s0[[m.queryIdx for m in ms]].astype(np.float32), prob, atol=1e-3)
            if method == "metric":
                self.assertTrue((prob >= 0.5).all())

    def test_matches_equal_matcher_l2(self):
        self.check_matcher(pipeline()["matches"], "l2")

    def test_matches_equal_matcher_metric(self):
        self.check_matcher(pipeline()["metric"], "metric")

    def test_geometry_through_hloc_reader(self):
        """Read as hloc does, in the order not stored (c.jpg first: the group
        is sub-b.png/sub-deeper-c.jpg, so find_pair flips it): the matches
        still follow the warp b -> c."""
        kp_b = hloc_get_keypoints(pipeline()["features"], "sub/b.png")[0]
        kp_c = hloc_get_keypoints(pipeline()["features"], "sub/deeper/c.jpg")[0]
        for reader in (hloc_get_matches, hloc.read_matches):
            m, s = reader(pipeline()["matches"], "sub/deeper/c.jpg", "sub/b.png")
            self.assertGreater(len(m), 100)
            proj = cv2.perspectiveTransform(kp_b[m[:, 1]].reshape(-1, 1, 2).astype(np.float64), H_BC).reshape(-1, 2)
            ok = np.linalg.norm(proj - kp_c[m[:, 0]], axis=1) < 3
            self.assertGreater(ok.mean(), 0.9, reader.__name__)
            m2, s2 = reader(pipeline()["matches"], "sub/b.png", "sub/deeper/c.jpg")
            np.testing.assert_array_equal(m2, m[:, ::-1])
            np.testing.assert_array_equal(s2, s)

    def test_reconstruction_inputs(self):
        """What hloc's reconstruction.main reads through triangulation's
        import_features and import_matches: keypoints of every image name
        (+0.5, COLMAP's origin) and, for each pairs line split on
        whitespace, get_matches with indices inside both keypoint lists."""
        kps = {}
        for name in NAMES:
            p = hloc_get_keypoints(pipeline()["features"], name)[0]
            p += 0.5
            kps[name] = p
        with open(pipeline()["pairs"]) as f:
            pairs = [p.split() for p in f.readlines()]
        self.assertEqual(len(pairs), 3)
        for name0, name1 in pairs:
            m, s = hloc_get_matches(pipeline()["matches"], name0, name1)
            self.assertTrue(len(m) > 0 and m.shape[1] == 2)
            self.assertTrue((m[:, 0] < len(kps[name0])).all() and (m[:, 1] < len(kps[name1])).all())
            self.assertTrue(((s > 0) & (s <= 1)).all())
            # each keypoint matched at most once on either side
            self.assertEqual(len(np.unique(m[:, 0])), len(m))


class Readers(unittest.TestCase):
    """The module's readers take what hloc's readers take."""

    def test_pair_orders_and_old_names(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.h5")
            m0 = np.array([2, -1, 0], np.int16)
            s0 = np.array([0.9, 0, 0.7], np.float16)
            with h5py.File(path, "w") as f:
                for pair in ("x.png/d-y.png", "q-r.png/p.png", "m.png_n.png", "n2.png_m2.png"):
                    g = f.create_group(pair)
                    g.create_dataset("matches0", data=m0)
                    g.create_dataset("matching_scores0", data=s0)
                # both orders stored: (u, v) finds u/v itself, not reversed
                for pair, m in (("u.png/v.png", m0), ("v.png/u.png", np.array([-1, -1, -1], np.int16))):
                    g = f.create_group(pair)
                    g.create_dataset("matches0", data=m)
                    g.create_dataset("matching_scores0", data=s0)
            straight = np.array([[0, 2], [2, 0]])
            for a, b, expect in (("x.png", "d/y.png", straight), ("d/y.png", "x.png", straight[:, ::-1]),
                                 ("q/r.png", "p.png", straight), ("p.png", "q/r.png", straight[:, ::-1]),
                                 ("m.png", "n.png", straight), ("n.png", "m.png", straight[:, ::-1]),
                                 ("m2.png", "n2.png", straight[:, ::-1]), ("u.png", "v.png", straight)):
                m, s = hloc.read_matches(path, a, b)
                hm, hs = hloc_get_matches(path, a, b)
                np.testing.assert_array_equal(m, expect, err_msg="%s %s" % (a, b))
                np.testing.assert_array_equal(m, hm)
                np.testing.assert_array_equal(s, hs.astype(np.float32))
                self.assertEqual(s.dtype, np.float32)
            with self.assertRaisesRegex(matchnet.Error, "not in"):
                hloc.read_matches(path, "x.png", "p.png")

    def test_write_read_roundtrip(self):
        with tempfile.TemporaryDirectory() as tmp:
            rng = np.random.default_rng(3)
            kp = rng.uniform(0, 100, (7, 2)).astype(np.float32)
            d = rng.normal(size=(7, 256)).astype(np.float32)
            hloc.write_features(os.path.join(tmp, "f.h5"), {"s/t.png": {"keypoints": kp, "descriptors": d,
                                                                        "image_size": (100, 90)}})
            r = hloc.read_features(os.path.join(tmp, "f.h5"), "s/t.png")
            np.testing.assert_array_equal(r["keypoints"], kp)
            np.testing.assert_array_equal(r["descriptors"], d.astype(np.float16).astype(np.float32))
            self.assertEqual(r["descriptors"].dtype, np.float32)
            self.assertEqual(r["image_size"], (100, 90))
            self.assertIsNone(r["scales"])
            hloc.write_matches(os.path.join(tmp, "m.h5"), {("s/t.png", "u.png"): (np.array([3, -1]),
                                                                                 np.array([0.5, 0]))})
            with h5py.File(os.path.join(tmp, "m.h5"), "r") as f:
                self.assertEqual(f["s-t.png/u.png/matches0"].dtype, np.int16)
            # more keypoints in image 2 than int16 holds: int32, not wrapped
            hloc.write_matches(os.path.join(tmp, "m.h5"), {("a", "b"): (np.array([40000, -1]), np.array([0.5, 0]))})
            m, _ = hloc_get_matches(os.path.join(tmp, "m.h5"), "a", "b")
            np.testing.assert_array_equal(m, [[0, 40000]])


def write_other(path, names, images, layout, seed=5):
    """Another extractor's hloc feature file: float16 keypoints (hloc's
    as_half), 128-D float16 descriptors, scores, image_size; layout "xy"
    (SuperPoint-like) or "dog" (also scales and oris in degrees)."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        for name in names:
            grey = cv2.imread(os.path.join(images, name), cv2.IMREAD_GRAYSCALE)
            p = cv2.goodFeaturesToTrack(grey, 300, 0.01, 4).reshape(-1, 2)
            p = p + rng.uniform(-0.4, 0.4, p.shape)            # sub-pixel positions
            n = len(p)
            g = f.create_group(name)
            g.create_dataset("keypoints", data=p.astype(np.float16))
            g["keypoints"].attrs["uncertainty"] = np.float32(1.5)
            g.create_dataset("scores", data=rng.uniform(0, 1, n).astype(np.float16))
            g.create_dataset("descriptors", data=rng.normal(size=(128, n)).astype(np.float16))
            g.create_dataset("image_size", data=np.array([grey.shape[1], grey.shape[0]]))
            if layout == "dog":
                g.create_dataset("scales", data=rng.uniform(1, 4, n).astype(np.float32))
                g.create_dataset("oris", data=rng.uniform(-180, 180, n).astype(np.float32))


class OtherKeypoints(unittest.TestCase):
    """extract --keypoints OTHER.h5: exactly the other file's keypoints, described by MatchNet.compute."""

    def check(self, layout, extra=(), size=hloc.DEFAULT_KEYPOINT_SIZE):
        images = pipeline()["images"]
        with tempfile.TemporaryDirectory() as tmp:
            other = os.path.join(tmp, "other.h5")
            out = os.path.join(tmp, "out.h5")
            write_other(other, NAMES, images, layout)
            cli("extract", images, out, "--keypoints", other, *extra, check=True)
            self.assertEqual(hloc_list_h5_names(out), set(NAMES))
            for name in NAMES:
                with h5py.File(other, "r") as f:
                    g = f[name]
                    kp = g["keypoints"][()].astype(np.float32)
                    scores = g["scores"][()]
                    scales = g["scales"][()] if layout == "dog" else None
                    oris = g["oris"][()] if layout == "dog" else None
                p, unc = hloc_get_keypoints(out, name)
                np.testing.assert_array_equal(p, kp, err_msg=name)       # same points, same order, no shift
                self.assertEqual(unc, 1.5)
                with h5py.File(out, "r") as f:
                    np.testing.assert_array_equal(f[name]["scores"][()], scores)
                    desc = f[name]["descriptors"][()]
                grey = matchnet.load_image(os.path.join(images, name))
                arr = np.zeros((len(kp), 4), np.float32)
                arr[:, :2] = kp
                if layout == "dog":
                    arr[:, 2] = scales * 2
                    arr[:, 3] = np.mod(oris, 360)
                else:
                    arr[:, 2] = size
                _, d = net().compute(grey, arr)
                np.testing.assert_array_equal(desc, d.T.astype(np.float16), err_msg=name)
                # half a pixel (hloc's shift into COLMAP's convention) would
                # change descriptors far beyond float16 rounding
                shifted = arr.copy()
                shifted[:, :2] += 0.5
                _, ds = net().compute(grey, shifted)
                self.assertGreater(np.abs(ds - d).max(), 0.01)

    def test_xy_keypoints(self):
        self.check("xy")

    def test_xy_keypoint_size(self):
        self.check("xy", ("--keypoint-size", "6"), 6.0)

    def test_dog_scales_and_oris(self):
        self.check("dog")

    def test_errors(self):
        images = pipeline()["images"]
        with tempfile.TemporaryDirectory() as tmp:
            other = os.path.join(tmp, "other.h5")
            write_other(other, NAMES[:2], images, "xy")
            r = cli("extract", images, os.path.join(tmp, "out.h5"), "--keypoints", other)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("sub/deeper/c.jpg", r.stderr)
            write_other(other, NAMES, images, "xy")
            with h5py.File(other, "r+") as f:
                f["a.png/image_size"][...] = [100, 100]
            r = cli("extract", images, os.path.join(tmp, "out.h5"), "--keypoints", other)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("100 x 100", r.stderr)
            r = cli("extract", images, os.path.join(tmp, "out.h5"), "--keypoints", other, "--max-keypoints", "5")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertEqual(listing(tmp), ["other.h5"])


def hloc_get_global(path, names):
    """pairs_from_retrieval.py get_descriptors: each name's
    "global_descriptor" as stored, stacked."""
    with h5py.File(path, "r", libver="latest") as fd:
        return np.stack([fd[n]["global_descriptor"].__array__() for n in names])


def write_codebook(path, words, version=1):
    """A codebook file as apps/colmap_retrieval.h lays it out."""
    words = np.asarray(words, np.float32)
    with open(path, "wb") as f:
        f.write(b"MNCODEBK" + struct.pack("<4I", version, words.shape[0], words.shape[1], 0) +
                words.astype("<f4").tobytes())


class GlobalFile(unittest.TestCase):
    """python3 -m matchnet.hloc global: VLAD worked out by hand (the case of
    test_colmap_pairs for the C code), read back as hloc's retrieval reads it."""

    def test_vlad_by_hand(self):
        # Words (0,0), (10,0); descriptors (1,0), (0,4), (9,0): residual
        # sums (1,4), (-1,0); roots (1,2), (-1,0); per word, then all, to
        # unit length.
        want = np.array([1 / np.sqrt(10), 2 / np.sqrt(10), -1 / np.sqrt(2), 0])
        with tempfile.TemporaryDirectory() as tmp:
            feats, cb = os.path.join(tmp, "f.h5"), os.path.join(tmp, "cb.bin")
            write_codebook(cb, [[0, 0], [10, 0]])
            hloc.write_features(feats, {
                "a.png": {"keypoints": np.zeros((3, 2)), "descriptors": np.array([[1, 0], [0, 4], [9, 0]], np.float32),
                          "image_size": (8, 8)},
                "sub/b.png": {"keypoints": np.zeros((0, 2)), "descriptors": np.zeros((0, 2), np.float32),
                              "image_size": (8, 8)}}, as_half=False)
            for half in (True, False):
                g = os.path.join(tmp, "g%d.h5" % half)
                cli("global", feats, g, "--codebook", cb, *([] if half else ["--no-half"]), check=True)
                got = hloc_get_global(g, ["a.png", "sub/b.png"])
                self.assertEqual(got.dtype, np.float16 if half else np.float32)
                self.assertEqual(got.shape, (2, 4))
                np.testing.assert_allclose(got[0], want, atol=1e-3 if half else 1e-6)
                np.testing.assert_array_equal(got[1], np.zeros(4))

    def test_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            feats, cb, g = os.path.join(tmp, "f.h5"), os.path.join(tmp, "cb.bin"), os.path.join(tmp, "g.h5")
            hloc.write_features(feats, {"a.png": {"keypoints": np.zeros((1, 2)), "descriptors": np.ones((1, 2)),
                                                  "image_size": (8, 8)}})
            for words, version, want in [([[0, 0, 0]], 1, "2 dimensions"), ([[0, 0]], 2, "version 2"),
                                         ([[np.nan, 0]], 1, "not finite")]:
                write_codebook(cb, words, version)
                r = cli("global", feats, g, "--codebook", cb)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(want, r.stderr)
                self.assertEqual(len(r.stderr.strip().split("\n")), 1, r.stderr)
                self.assertFalse(os.path.exists(g))
            with open(cb, "wb") as f:
                f.write(b"MNCODEBK" + struct.pack("<4I", 1, 2, 2, 0) + b"\0" * 15)
            r = cli("global", feats, g, "--codebook", cb)
            self.assertIn("need 40 bytes, the file has 39", r.stderr)
            r = cli("global", feats, g, "--codebook", os.path.join(tmp, "none.bin"))
            self.assertIn("cannot open codebook", r.stderr)
            self.assertEqual(cli("global", feats, g).returncode, 2)


class CommandLineErrors(unittest.TestCase):
    def expect_error(self, args, rc, text, tmp):
        before = listing(tmp)
        r = cli(*args)
        self.assertEqual(r.returncode, rc, (args, r.stderr))
        self.assertIn(text, r.stderr, args)
        self.assertNotIn("Traceback", r.stderr, args)
        if rc == 1:
            self.assertEqual(len(r.stderr.strip().split("\n")), 1, r.stderr)
        self.assertEqual(listing(tmp), before, args)

    def test_errors(self):
        run = pipeline()
        with tempfile.TemporaryDirectory() as tmp:
            feats = os.path.join(tmp, "f.h5")
            os.mkdir(os.path.join(tmp, "empty"))
            self.expect_error(["extract", os.path.join(tmp, "none"), feats], 1, "does not exist", tmp)
            self.expect_error(["extract", os.path.join(tmp, "empty"), feats], 1, "no images", tmp)
            self.expect_error(["extract", run["images"], os.path.join(tmp, "no", "f.h5")], 1, "does not exist", tmp)
            self.expect_error(["extract", run["images"], feats, "--max-keypoints", "0"], 2, "--max-keypoints", tmp)
            self.expect_error(["extract", run["images"], feats, "--model", os.path.join(tmp, "x.mnw")], 1,
                              "x.mnw", tmp)
            self.expect_error(["bogus"], 2, "invalid choice", tmp)
            self.expect_error(["match", run["pairs"]], 2, "required", tmp)
            self.expect_error(["match", run["pairs"], run["features"], feats, "--method", "x"], 2, "invalid choice",
                              tmp)
            m = os.path.join(tmp, "m.h5")
            self.expect_error(["match", os.path.join(tmp, "none.txt"), run["features"], m], 1, "none.txt", tmp)
            self.expect_error(["match", run["pairs"], os.path.join(tmp, "none.h5"), m], 1, "does not exist", tmp)
            bad = os.path.join(tmp, "bad.txt")
            with open(bad, "w") as f:
                f.write("a.png sub/b.png\na.png\n")
            self.expect_error(["match", bad, run["features"], m], 1, "line 2", tmp)
            with open(bad, "w") as f:
                f.write("a.png sub/missing.png\n")
            self.expect_error(["match", bad, run["features"], m], 1, "'sub/missing.png'", tmp)
            with open(bad, "w") as f:
                f.write("not hdf5\n")
            self.expect_error(["match", run["pairs"], bad, m], 1, "not a readable HDF5", tmp)
            self.expect_error(["extract", run["images"], bad], 1, "not a readable HDF5", tmp)
            # another extractor's 128-D descriptors
            other = os.path.join(tmp, "other.h5")
            write_other(other, NAMES, run["images"], "xy")
            self.expect_error(["match", run["pairs"], other, m], 1, "128 dimensions", tmp)
            self.expect_error(["extract", run["images"], other, "--overwrite"], 1, "128-dimensional", tmp)


class Replacement(unittest.TestCase):
    """Outputs are never left partial: a failed, killed or terminated run
    leaves the file as it was and no other file."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test_hloc_")
        self.images = os.path.join(self.tmp, "images")
        os.mkdir(self.images)
        self.feats = os.path.join(self.tmp, "f.h5")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_failed_run(self):
        shutil.copy(data("box.png"), os.path.join(self.images, "a.png"))
        cli("extract", self.images, self.feats, check=True)
        before, files = digest(self.feats), listing(self.tmp)
        shutil.copy(data("box_in_scene.png"), os.path.join(self.images, "b.png"))
        with open(os.path.join(self.images, "z.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)    # not decodable, described last
        r = cli("extract", self.images, self.feats, "--overwrite")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("z.png", r.stderr)
        self.assertIn("[2/3] b.png", r.stderr)                  # b.png was done before it failed
        self.assertEqual(digest(self.feats), before)
        self.assertEqual(listing(self.tmp), files)
        self.assertEqual(hloc_list_h5_names(self.feats), {"a.png"})

    def killed(self, sig):
        shutil.copy(data("box.png"), os.path.join(self.images, "a.png"))
        cli("extract", self.images, self.feats, check=True)
        before, files = digest(self.feats), listing(self.tmp)
        for i in range(4):
            shutil.copy(data("box_in_scene.png"), os.path.join(self.images, "b%02d.png" % i))
        p = subprocess.Popen([sys.executable, "-m", "matchnet.hloc", "extract", self.images, self.feats],
                             stderr=subprocess.PIPE, text=True)
        seen = []
        for line in p.stderr:
            seen.append(line)
            if "[2/4]" in line:
                p.send_signal(sig)
                break
        rest = p.stderr.read()
        rc = p.wait()
        p.stderr.close()
        self.assertTrue(any("[2/4]" in s for s in seen), "".join(seen) + rest)
        self.assertEqual(rc, -sig if sig == signal.SIGKILL else 128 + sig, rest)
        self.assertNotIn("Traceback", rest)
        self.assertEqual(digest(self.feats), before)
        left = listing(self.tmp)
        if sig == signal.SIGKILL and not o_tmpfile(self.tmp):
            # Without unnamed files a killed run leaves its hidden temporary file.
            left = [n for n in left if not (n.startswith(".matchnet-hloc-") and n.endswith(".partial"))]
        self.assertEqual(left, files)
        # a rerun adds the 4 images to the one already there
        cli("extract", self.images, self.feats, check=True)
        self.assertEqual(len(hloc_list_h5_names(self.feats)), 5)

    def test_killed_run(self):
        self.killed(signal.SIGKILL)

    def test_terminated_run(self):
        self.killed(signal.SIGTERM)

    def test_skip_and_append(self):
        """hloc's rule: names already in the file are skipped (the file is not
        rewritten when nothing is new), new names are added, old groups kept."""
        shutil.copy(data("box.png"), os.path.join(self.images, "a.png"))
        cli("extract", self.images, self.feats, check=True)
        before = digest(self.feats)
        mtime = os.stat(self.feats).st_mtime_ns
        time.sleep(0.01)
        r = cli("extract", self.images, self.feats, check=True)
        self.assertIn("already", r.stderr)
        self.assertEqual((digest(self.feats), os.stat(self.feats).st_mtime_ns), (before, mtime))
        old = hloc.read_features(self.feats, "a.png")
        os.chmod(self.feats, 0o640)
        shutil.copy(data("box_in_scene.png"), os.path.join(self.images, "b.png"))
        r = cli("extract", self.images, self.feats, check=True)
        self.assertIn("[1/1] b.png", r.stderr)
        self.assertEqual(hloc_list_h5_names(self.feats), {"a.png", "b.png"})
        np.testing.assert_array_equal(hloc.read_features(self.feats, "a.png")["descriptors"], old["descriptors"])
        self.assertEqual(os.stat(self.feats).st_mode & 0o777, 0o640)    # the replaced file's mode is kept

    def test_match_skip_and_overwrite(self):
        run = pipeline()
        m = os.path.join(self.tmp, "m.h5")
        with h5py.File(m, "w") as f:                                    # an older run's reversed, old-style pair
            g = f.create_group("sub-b.png_a.png")
            g.create_dataset("matches0", data=np.zeros(3, np.int16))
            g.create_dataset("matching_scores0", data=np.zeros(3, np.float16))
        pairs = os.path.join(self.tmp, "p.txt")
        with open(pairs, "w") as f:
            f.write("a.png sub/b.png\nsub/b.png a.png\na.png sub/b.png\n")   # one pair, three times
        r = cli("match", pairs, run["features"], m, check=True)
        self.assertIn("1 already there", r.stderr)
        self.assertEqual(hloc_list_h5_names(m), {"sub-b.png_a.png"})
        r = cli("match", pairs, run["features"], m, "--overwrite", check=True)
        self.assertIn("[1/1] a.png sub/b.png", r.stderr)
        self.assertEqual(hloc_list_h5_names(m), {"a.png/sub-b.png"})
        with h5py.File(m, "r") as f, h5py.File(run["matches"], "r") as g:
            np.testing.assert_array_equal(f["a.png/sub-b.png/matches0"][()], g["a.png/sub-b.png/matches0"][()])


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ARGS, rest = ap.parse_known_args()
    ARGS.source_dir = os.path.abspath(ARGS.source_dir)
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromNames(rest, sys.modules[__name__]) if rest else \
        loader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    tearDownModule()
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
