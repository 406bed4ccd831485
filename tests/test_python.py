#!/usr/bin/python3
"""CTest tests of the Python package matchnet (python/matchnet), as generated
into the build tree (PYTHONPATH=BUILD_DIR/python, set by CTest).

    test_python.py --source-dir SRC --build-dir BUILD --match MATCHNET_MATCH
                   --reference PYTHON_REFERENCE [--install] [unittest options]

The package is held to independent outputs of the C side, on the bundled
image pair (samples/data): python_reference (tests/python_reference.c:
mn_image_load, mn_keypoints_detect, mn_describe_keypoints) for keypoints
and descriptors, matchnet-match's JSON for matches and match_pair(), numpy
brute force for nearest neighbours, OpenCV's SIFT for the mask rule.
--install runs only the installation test: `cmake --install` to a fresh
prefix, import from there, then from the same tree moved elsewhere.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import cv2
import numpy as np

# The libraries come from the build tree's _config.py, not the caller's environment.
for _v in ("MATCHNET_LIBRARY", "MATCHNET_PLUGIN_LIBRARY"):
    os.environ.pop(_v, None)

import matchnet  # noqa: E402  (after the environment is cleaned)

ARGS = None
CACHE = {}


def data(name):
    return os.path.join(ARGS.source_dir, "samples", "data", name)


def grey(name):
    im = cv2.imread(data(name), cv2.IMREAD_GRAYSCALE)
    assert im is not None, name
    return im


def reference(name, detector="sift", max_keypoints=2000):
    """(keypoints N x 4, descriptors N x D) from the C program."""
    key = ("ref", name, detector, max_keypoints)
    if key not in CACHE:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "ref.bin")
            subprocess.run([ARGS.reference, data(name), detector, str(max_keypoints), out], check=True)
            raw = np.fromfile(out, np.uint8)
        n, d = (int(v) for v in raw[:8].view(np.uint32))
        f = raw[8:].view(np.float32)
        assert f.size == n * 4 + n * d, (n, d, f.size)
        CACHE[key] = (f[:n * 4].reshape(n, 4), f[n * 4:].reshape(n, d))
    return CACHE[key]


def matchnet_match(*options):
    """matchnet-match's JSON on the bundled pair, parsed."""
    key = ("cli",) + options
    if key not in CACHE:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "pair.json")
            subprocess.run([ARGS.match, *options, "-o", out, data("box.png"), data("box_in_scene.png")],
                           check=True, stderr=subprocess.DEVNULL)
            with open(out) as f:
                CACHE[key] = json.load(f)
    return CACHE[key]


def net():
    if "net" not in CACHE:
        CACHE["net"] = matchnet.MatchNet()
    return CACHE["net"]


def pair_descriptors():
    """The Python path's keypoints and descriptors of the bundled pair."""
    if "pair" not in CACHE:
        CACHE["pair"] = [net().detectAndCompute(grey(n)) for n in ("box.png", "box_in_scene.png")]
    return CACHE["pair"]


def kp_array(kps):
    return np.array([(k.pt[0], k.pt[1], k.size, k.angle) for k in kps], np.float32).reshape(-1, 4)


def l2(a, b):
    """All L2 distances between rows, in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sqrt(np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0))


class DetectAndCompute(unittest.TestCase):
    def test_equals_c_api(self):
        for name in ("box.png", "box_in_scene.png"):
            kp, d = net().detectAndCompute(grey(name))
            rk, rd = reference(name)
            self.assertGreater(len(rk), 100, name)
            self.assertIsInstance(kp, tuple)
            self.assertTrue(all(isinstance(k, cv2.KeyPoint) for k in kp))
            self.assertEqual(d.dtype, np.float32)
            self.assertEqual(d.shape, (len(rk), net().descriptorSize()))
            np.testing.assert_array_equal(kp_array(kp), rk, err_msg=name)
            np.testing.assert_array_equal(d, rd, err_msg=name)
            # strongest first is the library's order; detect() alone gives the same
            np.testing.assert_array_equal(kp_array(net().detect(grey(name))), rk)

    def test_orb_detector(self):
        rk, rd = reference("box_in_scene.png", "orb", 500)
        kp, d = matchnet.MatchNet(model=net().model, detector="orb", max_keypoints=500).detectAndCompute(
            grey("box_in_scene.png"))
        np.testing.assert_array_equal(kp_array(kp), rk)
        np.testing.assert_array_equal(d, rd)

    def test_colour_and_layouts(self):
        im = grey("box.png")
        kp, d = pair_descriptors()[0]
        for variant in (cv2.cvtColor(im, cv2.COLOR_GRAY2BGR), cv2.cvtColor(im, cv2.COLOR_GRAY2BGRA),
                        im[:, :, None]):
            k2, d2 = net().detectAndCompute(variant)
            np.testing.assert_array_equal(kp_array(k2), kp_array(kp))
            np.testing.assert_array_equal(d2, d)
        # A real colour image: grey as cv2.cvtColor makes it.
        rng = np.random.default_rng(1)
        bgr = cv2.GaussianBlur(rng.integers(0, 256, (160, 200, 3), dtype=np.uint8), (0, 0), 2)
        # Blurred noise has little contrast left; stretched, SIFT finds hundreds of blobs.
        bgr = cv2.resize(cv2.normalize(bgr, None, 0, 255, cv2.NORM_MINMAX), (400, 320))
        kc, dc = net().detectAndCompute(bgr)
        kg, dg = net().detectAndCompute(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        self.assertGreater(len(kc), 10)
        np.testing.assert_array_equal(kp_array(kc), kp_array(kg))
        np.testing.assert_array_equal(dc, dg)
        # A crop is read in place (row stride); same as its contiguous copy.
        # 300 keypoints are enough to tell, in a fraction of the time.
        small = matchnet.MatchNet(model=net().model, max_keypoints=300)
        big = grey("box_in_scene.png")
        crop = big[40:300, 30:420]
        self.assertFalse(crop.flags.c_contiguous)
        kv, dv = small.detectAndCompute(crop)
        kcopy, dcopy = small.detectAndCompute(crop.copy())
        self.assertGreater(len(kv), 100)
        np.testing.assert_array_equal(kp_array(kv), kp_array(kcopy))
        np.testing.assert_array_equal(dv, dcopy)
        # A view with a pixel step (every other column) needs the copy and gets it.
        kv, dv = small.detectAndCompute(big[:, ::2])
        kcopy, dcopy = small.detectAndCompute(np.ascontiguousarray(big[:, ::2]))
        np.testing.assert_array_equal(dv, dcopy)

    def test_compute_given_keypoints(self):
        rk, rd = reference("box_in_scene.png")
        im = grey("box_in_scene.png")
        kps = [cv2.KeyPoint(float(x), float(y), float(s), float(a), 1.5, 7, 3) for x, y, s, a in rk.tolist()]
        out_kp, d = net().compute(im, kps)
        self.assertEqual(len(out_kp), len(kps))
        self.assertTrue(all(a is b for a, b in zip(out_kp, kps)))  # the given objects, response kept
        np.testing.assert_array_equal(d, rd)
        # An N x 4 array, and malformed keypoints dropped as Feature2D.compute does.
        bad = np.array([[10, 10, 0, 0], [np.nan, 5, 4, 0], [5, 5, -1, 0], [5, 5, 4, np.inf]], np.float32)
        mixed = np.concatenate([rk[:5], bad, rk[5:9]])
        out_arr, d2 = net().compute(im, mixed)
        np.testing.assert_array_equal(out_arr, np.concatenate([rk[:5], rk[5:9]]))
        np.testing.assert_allclose(d2, rd[:9], atol=1e-5)  # 9 patches: the small-block path, to rounding
        mixed_kp = kps[:5] + [cv2.KeyPoint(10, 10, 0)] + kps[5:9]
        out_kp, d3 = net().compute(im, mixed_kp)
        self.assertEqual(len(out_kp), 9)
        np.testing.assert_array_equal(d3, d2)
        # Keypoints outside the image are described (edges replicated), not dropped.
        out_kp, d4 = net().compute(im, [cv2.KeyPoint(-20, 5, 12, 30), cv2.KeyPoint(600, 500, 12)])
        self.assertEqual((len(out_kp), d4.shape[0]), (2, 2))
        self.assertTrue(np.isfinite(d4).all())
        # No keypoints: an empty N x D array.
        kp0, d0 = net().compute(im, [])
        self.assertEqual((len(kp0), d0.shape), (0, (0, net().descriptorSize())))

    def test_mask_as_sift(self):
        im = grey("box_in_scene.png")
        mask = np.zeros(im.shape, np.uint8)
        mask[:, :256] = 255
        mask[300:, :] = 0
        kp, d = net().detectAndCompute(im, mask)
        full_kp, full_d = pair_descriptors()[1]
        fa = kp_array(full_kp)
        inside = mask[(fa[:, 1] + np.float32(0.5)).astype(int), (fa[:, 0] + np.float32(0.5)).astype(int)] != 0
        self.assertTrue(0 < inside.sum() < len(fa))
        np.testing.assert_array_equal(kp_array(kp), fa[inside])
        np.testing.assert_array_equal(d, full_d[inside])
        # What the C++ plugin's detect() gets from OpenCV's SIFT with the mask
        # (no cap reached here, so the two agree exactly as sets).
        sift = cv2.SIFT_create(2000).detect(im, mask)
        self.assertLess(len(sift), 2000)
        self.assertEqual(sorted(map(tuple, kp_array(sift).tolist())), sorted(map(tuple, kp_array(kp).tolist())))
        # bool masks too; an all-zero mask gives nothing.
        kb, _ = net().detectAndCompute(im, mask.astype(bool))
        self.assertEqual(len(kb), len(kp))
        k0, d0 = net().detectAndCompute(im, np.zeros_like(mask))
        self.assertEqual((len(k0), d0.shape[0]), (0, 0))

    def test_empty_and_flat_images(self):
        for im in (np.zeros((0, 0), np.uint8), np.zeros((0, 5, 3), np.uint8), np.full((50, 60), 128, np.uint8)):
            kp, d = net().detectAndCompute(im)
            self.assertEqual(kp, ())
            self.assertEqual(d.shape, (0, net().descriptorSize()))

    def test_feature2d_properties(self):
        n = net()
        self.assertEqual(n.descriptorSize(), n.model.descriptor_dim)
        self.assertEqual(n.descriptorSize(), 256)
        self.assertEqual(n.descriptorType(), cv2.CV_32F)
        self.assertEqual(n.defaultNorm(), cv2.NORM_L2)
        self.assertEqual(n.getDefaultName(), "Feature2D.MatchNet")
        plugin = matchnet._lib.plugin()
        for name, code in matchnet._lib.DETECTORS.items():
            self.assertAlmostEqual(matchnet.MatchNet(model=n.model, detector=name).scale_factor,
                                   plugin.mn_detector_scale_factor(code), places=6)
        paths = matchnet.library_paths()
        self.assertTrue(paths["library"].startswith(ARGS.build_dir), paths)
        self.assertTrue(paths["plugin"].startswith(ARGS.build_dir), paths)
        self.assertEqual(matchnet.version(), "0.1.0")

    def test_describe_patches(self):
        rng = np.random.default_rng(2)
        p = rng.integers(0, 256, (20, 64, 64), dtype=np.uint8)
        du = net().describe_patches(p)
        df = net().describe_patches(p.astype(np.float32))
        self.assertEqual(du.shape, (20, 256))
        np.testing.assert_array_equal(du, df)
        np.testing.assert_allclose(np.linalg.norm(du, axis=1), 1, atol=1e-4)  # L2-normalised bottleneck


class Matching(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        (cls.kp1, cls.d1), (cls.kp2, cls.d2) = pair_descriptors()
        cls.dist = l2(cls.d1, cls.d2)

    def check_against_cli(self, method):
        doc = matchnet_match("--method", method)
        m = matchnet.Matcher(method, model=net().model)
        found = m.match(self.d1, self.d2)
        details = m.match_details(self.d1, self.d2)
        self.assertGreater(len(found), 20)
        self.assertEqual([(x.queryIdx, x.trainIdx) for x in found], [(i, j) for i, j, _ in doc["matches"]])
        np.testing.assert_allclose(details["probability"], [p for _, _, p in doc["matches"]], rtol=0, atol=1e-6)
        dist = np.array([x.distance for x in found])
        if method == "l2":
            np.testing.assert_allclose(dist, self.dist[details["query"], details["train"]], rtol=1e-4, atol=1e-5)
        else:
            np.testing.assert_array_equal(np.float32(dist), np.float32(1) - details["probability"])
        self.assertTrue(all(x.imgIdx == 0 for x in found))
        return m, found

    def test_match_l2_equals_matchnet_match(self):
        self.check_against_cli("l2")

    def test_match_metric_equals_matchnet_match(self):
        m, found = self.check_against_cli("metric")
        self.assertTrue(all(1 - x.distance >= 0.5 - 1e-6 for x in found))  # the preset's threshold
        self.assertEqual(len({x.trainIdx for x in found}), len(found))   # mutual: one per train

    def test_knn_l2_against_brute_force(self):
        q = self.d1[:150]
        rows = matchnet.Matcher("l2", model=net().model).knnMatch(q, self.d2, 3)
        self.assertEqual(len(rows), 150)
        for qi, row in enumerate(rows):
            self.assertEqual(len(row), 3)
            expect = np.sort(self.dist[qi])[:3]
            np.testing.assert_allclose([x.distance for x in row], expect, rtol=1e-4, atol=1e-5)
            for x in row:
                self.assertEqual(x.queryIdx, qi)
                self.assertAlmostEqual(x.distance, self.dist[qi, x.trainIdx], delta=1e-4)

    def test_knn_metric_against_scored_candidates(self):
        m = matchnet.Matcher("metric", model=net().model)  # 5 L2 candidates per query
        q = self.d1[:80]
        rows = m.knnMatch(q, self.d2, 2)
        for qi, row in enumerate(rows):
            cand = np.argsort(self.dist[qi], kind="stable")[:5]
            p = m.probabilities(q, self.d2, [(qi, int(t)) for t in cand])
            order = sorted(range(5), key=lambda r: (-p[r], cand[r]))[:2]
            # near-equal L2 distances may swap candidates; compare where the 5th and 6th differ
            d6 = np.sort(self.dist[qi])[4:6]
            if d6[1] - d6[0] > 1e-4:
                self.assertEqual([x.trainIdx for x in row], [int(cand[r]) for r in order], qi)
                np.testing.assert_array_equal(np.float32([x.distance for x in row]),
                                              np.float32(1) - p[order])
        # Every pair scored (all_pairs), against probabilities() of all pairs.
        ma = matchnet.Matcher("metric", model=net().model, all_pairs=True)
        q = self.d1[:25]
        rows = ma.knnMatch(q, self.d2, 3)
        nt = len(self.d2)
        allp = ma.probabilities(q, self.d2, np.stack(np.meshgrid(np.arange(25), np.arange(nt), indexing="ij"),
                                                     -1).reshape(-1, 2)).reshape(25, nt)
        self.assertTrue(((allp >= 0) & (allp <= 1)).all())
        for qi, row in enumerate(rows):
            expect = np.lexsort((np.arange(nt), -allp[qi]))[:3]
            self.assertEqual([x.trainIdx for x in row], expect.tolist())
            np.testing.assert_array_equal(np.float32([x.distance for x in row]), np.float32(1) - allp[qi, expect])

    def test_match_is_knn1_without_thresholds(self):
        m = matchnet.Matcher("metric", model=net().model, min_probability=0, cross_check=False)
        best = [row[0] for row in m.knnMatch(self.d1, self.d2, 1)]
        got = m.match(self.d1, self.d2)
        self.assertEqual([(x.queryIdx, x.trainIdx, x.distance) for x in got],
                         [(x.queryIdx, x.trainIdx, x.distance) for x in best])

    def test_cross_check(self):
        for method in ("l2", "metric"):
            m = matchnet.Matcher(method, model=net().model, cross_check=True, ratio=1, min_probability=0)
            found = m.match(self.d1, self.d2)
            knn = m.knnMatch(self.d1, self.d2, 1)
            self.assertEqual([(x.queryIdx, x.trainIdx) for x in found],
                             [(x.queryIdx, x.trainIdx) for r in knn for x in r], method)
            self.assertEqual(len(knn), len(self.d1))
            self.assertEqual(len(m.knnMatch(self.d1, self.d2, 1, compactResult=True)), len(found))
            with self.assertRaises(matchnet.Error):
                m.knnMatch(self.d1, self.d2, 2)
        # l2 + cross check: mutual nearest neighbours by brute force (where not near-tied)
        m = matchnet.Matcher("l2", model=net().model, cross_check=True, ratio=1)
        found = {(x.queryIdx, x.trainIdx) for x in m.match(self.d1, self.d2)}
        fwd, bwd = self.dist.argmin(1), self.dist.argmin(0)
        mutual = {(q, int(t)) for q, t in enumerate(fwd) if bwd[t] == q}
        self.assertGreater(len(found), 50)
        self.assertLessEqual(len(found ^ mutual), 2)

    def test_masks(self):
        mask = np.zeros((len(self.d1), len(self.d2)), np.uint8)
        mask[:, ::2] = 1
        for method in ("l2", "metric"):
            m = matchnet.Matcher(method, model=net().model)
            found = m.match(self.d1, self.d2, mask)
            self.assertTrue(found and all(x.trainIdx % 2 == 0 for x in found), method)
            rows = m.knnMatch(self.d1[:50], self.d2, 2, mask[:50])
            self.assertTrue(all(x.trainIdx % 2 == 0 for r in rows for x in r), method)
        rows = matchnet.Matcher("l2", model=net().model).knnMatch(self.d1[:50], self.d2, 2, mask[:50].astype(bool))
        masked = np.where(mask[:50] != 0, self.dist[:50], np.inf)
        for qi, row in enumerate(rows):
            np.testing.assert_allclose([x.distance for x in row], np.sort(masked[qi])[:2], rtol=1e-4, atol=1e-5)

    def test_probabilities(self):
        m = matchnet.Matcher("metric", model=net().model)
        found = m.match(self.d1, self.d2)
        details = m.match_details(self.d1, self.d2)
        pairs = [(x.queryIdx, x.trainIdx) for x in found]
        p = m.probabilities(self.d1, self.d2, pairs)
        self.assertEqual(p.dtype, np.float32)
        np.testing.assert_array_equal(p, details["probability"])            # bit-identical, as promised
        np.testing.assert_array_equal(np.float32(1) - p, np.float32([x.distance for x in found]))
        np.testing.assert_array_equal(m.probabilities(self.d1, self.d2, found), p)  # DMatch input
        rng = np.random.default_rng(4)
        rand = np.stack([rng.integers(0, len(self.d1), 500), rng.integers(0, len(self.d2), 500)], 1)
        pr = m.probabilities(self.d1, self.d2, rand)
        self.assertTrue(((pr >= 0) & (pr <= 1)).all())
        self.assertGreater(p.mean(), pr.mean() + 0.3)  # matches far more probable than random pairs
        self.assertEqual(m.probabilities(self.d1, self.d2, []).shape, (0,))

    def test_empty_sets(self):
        m = matchnet.Matcher("metric", model=net().model)
        empty = np.empty((0, 256), np.float32)
        self.assertEqual(m.match(empty, self.d2), [])
        self.assertEqual(m.match(self.d1, None), [])
        self.assertEqual(m.knnMatch(self.d1[:3], empty, 2), [[], [], []])
        self.assertEqual(m.knnMatch(self.d1[:3], empty, 2, compactResult=True), [])


class Errors(unittest.TestCase):
    def assertError(self, status, prefix, fn, *args, **kw):
        with self.assertRaises(matchnet.Error) as cm:
            fn(*args, **kw)
        e = cm.exception
        self.assertIsInstance(e, RuntimeError)
        self.assertEqual(e.status_name, status, str(e))
        self.assertTrue(str(e).startswith(prefix), str(e))
        return e

    def test_bad_model(self):
        e = self.assertError("MN_ERR_IO", "mn_model_load_file(): ", matchnet.MatchNet, model="/nonexistent/x.mnw")
        self.assertIn("/nonexistent/x.mnw", str(e))
        self.assertEqual(e.status, 3)
        with tempfile.TemporaryDirectory() as tmp:
            junk = os.path.join(tmp, "junk.mnw")
            with open(junk, "wb") as f:
                f.write(b"not a model file at all" * 10)
            with self.assertRaises(matchnet.Error) as cm:
                matchnet.Matcher(model=junk)
            self.assertIn(cm.exception.status_name, ("MN_ERR_FORMAT", "MN_ERR_VERSION", "MN_ERR_CHECKSUM"))
            self.assertTrue(str(cm.exception).startswith("mn_model_load_file(): "), str(cm.exception))

    def test_bad_images(self):
        n = net()
        self.assertError("MN_ERR_INVALID_ARGUMENT", "MatchNet.detectAndCompute(): ", n.detectAndCompute,
                         np.zeros((10, 10), np.float32))
        self.assertError("MN_ERR_INVALID_ARGUMENT", "MatchNet.detect(): ", n.detect, np.zeros((10, 10, 2), np.uint8))
        self.assertError("MN_ERR_INVALID_ARGUMENT", "MatchNet.compute(): ", n.compute, [[1, 2]], [])
        self.assertError("MN_ERR_INVALID_ARGUMENT", "MatchNet.compute(): ", n.compute, grey("box.png"),
                         np.zeros((3, 4), np.float64))
        self.assertError("MN_ERR_INVALID_ARGUMENT", "MatchNet.detect(): ", n.detect, grey("box.png"),
                         np.zeros((5, 5), np.uint8))
        self.assertError("MN_ERR_INVALID_ARGUMENT", "MatchNet(): ", matchnet.MatchNet, model=n.model, detector="surf")
        self.assertError("MN_ERR_INVALID_ARGUMENT", "MatchNet(): ", matchnet.MatchNet, model=n.model, max_keypoints=0)
        self.assertError("MN_ERR_INVALID_ARGUMENT", "MatchNet.describe_patches(): ", n.describe_patches,
                         np.zeros((2, 32, 32), np.uint8))
        # A library refusal: a NaN pixel in float patches (mn_describe_f32's own check and message).
        p = np.zeros((1, 64, 64), np.float32)
        p[0, 3, 4] = np.nan
        self.assertError("MN_ERR_INVALID_ARGUMENT", "mn_describe_f32(): ", n.describe_patches, p)

    def test_bad_descriptors(self):
        m = matchnet.Matcher(model=net().model)
        d = np.zeros((4, 256), np.float32)
        e = self.assertError("MN_ERR_INVALID_ARGUMENT", "Matcher.match(): ", m.match, np.zeros((4, 128), np.float32), d)
        self.assertIn("4x128", str(e))
        self.assertError("MN_ERR_INVALID_ARGUMENT", "Matcher.match(): ", m.match, d.astype(np.float64), d)
        self.assertError("MN_ERR_INVALID_ARGUMENT", "Matcher.knnMatch(): ", m.knnMatch, d, [1, 2], 1)
        self.assertError("MN_ERR_INVALID_ARGUMENT", "Matcher.match(): ", m.match, d, d, np.ones((4, 3), np.uint8))
        self.assertError("MN_ERR_INVALID_ARGUMENT", "Matcher.knnMatch(): ", m.knnMatch, d, d, 0)
        # Indices out of range: the library's check and message.
        self.assertError("MN_ERR_INVALID_ARGUMENT", "mn_metric_score_pairs(): ", m.probabilities, d, d, [(0, 4)])
        self.assertError("MN_ERR_INVALID_ARGUMENT", "Matcher.probabilities(): ", m.probabilities, d, d, [(0, -1)])
        self.assertError("MN_ERR_INVALID_ARGUMENT", "Matcher(): ", matchnet.Matcher, method="hamming")
        self.assertError("MN_ERR_INVALID_ARGUMENT", "Matcher(): ", matchnet.Matcher, model=net().model, k=300)
        # The library's own range check on k, through mn_match_knn.
        big = np.random.default_rng(5).random((300, 256)).astype(np.float32)
        self.assertError("MN_ERR_INVALID_ARGUMENT", "mn_match_knn(): ", m.knnMatch, big[:2], big, 257)

    def test_bad_files(self):
        self.assertError("MN_ERR_IO", "mn_image_load(): ", matchnet.match_pair, "/nonexistent.png", data("box.png"))
        self.assertError("MN_ERR_IO", "mn_image_load(): ", matchnet.load_image, "/nonexistent.png")
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "bad.png")
            with open(bad, "wb") as f:
                f.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
            self.assertError("MN_ERR_FORMAT", "mn_image_load(): ", matchnet.load_image, bad)
        self.assertError("MN_ERR_INVALID_ARGUMENT", "match_pair(): ", matchnet.match_pair, data("box.png"),
                         data("box.png"), geometry="affine")

    def test_messages_per_thread(self):
        got = {}

        def run(i):
            try:
                matchnet.Model("/nonexistent/thread%d.mnw" % i)
            except matchnet.Error as e:
                got[i] = str(e)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(4):
            self.assertIn("thread%d.mnw" % i, got[i])


class Threads(unittest.TestCase):
    def test_two_threads_equal_serial(self):
        im = [grey("box_in_scene.png"), grey("box.png")]
        kps = [reference("box_in_scene.png")[0], reference("box.png")[0]]
        shared = matchnet.MatchNet(model=net().model, num_threads=1)  # one library thread per call
        matcher = matchnet.Matcher("metric", model=net().model, num_threads=1)
        t0 = time.perf_counter()
        serial = [shared.compute(i, k)[1] for i, k in zip(im, kps)] * 2
        serial_matches = matcher.match(serial[0], serial[1])
        t1 = time.perf_counter()
        out = [None] * 4
        errors = []

        def work(slot):
            try:
                out[slot] = shared.compute(im[slot % 2], kps[slot % 2])[1]
                if slot == 0:
                    out.append(matcher.match(out[0], shared.compute(im[1], kps[1])[1]))
            except Exception as e:  # reported below, not lost in the thread
                errors.append(e)

        threads = [threading.Thread(target=work, args=(s,)) for s in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t2 = time.perf_counter()
        threads = [threading.Thread(target=work, args=(s,)) for s in (2, 3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for a, b in zip(out[:4], serial):
            np.testing.assert_array_equal(a, b)
        self.assertEqual([(m.queryIdx, m.trainIdx, m.distance) for m in out[4]],
                         [(m.queryIdx, m.trainIdx, m.distance) for m in serial_matches])
        print("\nthreads: serial %.2f s (describe both twice + match), two threads %.2f s "
              "(describe both once + describe and match)" % (t1 - t0, t2 - t1), file=sys.stderr)


class MatchPair(unittest.TestCase):
    def compare(self, got, doc):
        self.assertEqual(set(got), set(doc))
        for key in ("image1", "image2"):
            g, d = got[key], doc[key]
            self.assertEqual(set(g), set(d))
            self.assertEqual((g["path"], g["width"], g["height"]), (d["path"], d["width"], d["height"]))
            self.assertEqual(len(g["keypoints"]), len(d["keypoints"]))
            np.testing.assert_allclose(np.array(g["keypoints"]), np.array(d["keypoints"]), rtol=1e-7, atol=1e-6)
        self.assertGreater(len(doc["matches"]), 10)
        self.assertEqual([m[:2] for m in got["matches"]], [m[:2] for m in doc["matches"]])
        np.testing.assert_allclose([m[2] for m in got["matches"]], [m[2] for m in doc["matches"]], atol=1e-6)
        self.assertEqual(set(got["timing_ms"]), set(doc["timing_ms"]))
        self.assertTrue(all(isinstance(v, float) and v >= 0 for v in got["timing_ms"].values()))
        json.dumps(got)  # plain Python objects

    def test_default(self):
        self.compare(matchnet.match_pair(data("box.png"), data("box_in_scene.png")), matchnet_match())

    def test_affine(self):
        """affine=True: match_pair equals matchnet-match --affine, shapes included;
        MatchNet(affine=True) describes the ellipses affine_shapes() gives."""
        doc = matchnet_match("--affine")
        got = matchnet.match_pair(data("box.png"), data("box_in_scene.png"), affine=True)
        self.compare(got, doc)
        for key in ("image1", "image2"):
            np.testing.assert_allclose(np.array(got[key]["shapes"]), np.array(doc[key]["shapes"]), rtol=1e-7,
                                       atol=1e-6)
        img = grey("box.png")
        aff = matchnet.MatchNet(affine=True)
        self.assertIn("affine=True", repr(aff))
        kp, d = aff.detectAndCompute(img)
        kp0, d0 = net().detectAndCompute(img)
        self.assertEqual([k.pt for k in kp], [k.pt for k in kp0])
        self.assertGreater(np.abs(d - d0).max(), 0.01)
        shapes, results = aff.affine_shapes(img, kp)
        self.assertEqual((shapes.shape, results.shape), ((len(kp), 6), (len(kp),)))
        np.testing.assert_allclose(shapes[:, 2:], np.array(got["image1"]["shapes"]), rtol=1e-7, atol=1e-6)
        self.assertGreater((results == 0).sum(), len(kp) // 2)
        det = shapes[:, 2] * shapes[:, 5] - shapes[:, 3] * shapes[:, 4]
        np.testing.assert_allclose(det, (np.array([k.size for k in kp]) / 2) ** 2, rtol=1e-4)
        with self.assertRaises(matchnet.Error) as cm:
            aff.affine_shapes(img, np.array([[5, 5, 0, 0]], np.float32))
        self.assertEqual(cm.exception.status_name, "MN_ERR_INVALID_ARGUMENT")
        self.assertTrue(str(cm.exception).startswith("mn_affine_shape_estimate(): keypoint 0 has size 0"),
                        str(cm.exception))

    def test_metric_homography_draw(self):
        doc = matchnet_match("--method", "metric", "--geometry", "homography")
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "m.png")
            got = matchnet.match_pair(data("box.png"), data("box_in_scene.png"), method="metric",
                                      geometry="homography", model=net().model, draw=out)
            pic = cv2.imread(out)
            self.assertEqual(os.listdir(tmp), ["m.png"])
        self.compare(got, doc)
        self.assertEqual(pic.shape[:2], (384, 324 + 512))

    def test_draw_options(self):
        """draw_max and draw_keypoints draw what --draw-max and --draw-keypoints draw."""
        with tempfile.TemporaryDirectory() as tmp:
            cli, py, dflt = (os.path.join(tmp, n) for n in ("cli.png", "py.png", "default.png"))
            subprocess.run([ARGS.match, "--geometry", "homography", "--draw-max", "20", "--draw-keypoints",
                            "--draw", cli, "-o", os.path.join(tmp, "pair.json"), data("box.png"),
                            data("box_in_scene.png")], check=True, stderr=subprocess.DEVNULL)
            pair = (data("box.png"), data("box_in_scene.png"))
            matchnet.match_pair(*pair, geometry="homography", model=net().model, draw=py, draw_max=20,
                                draw_keypoints=True)
            matchnet.match_pair(*pair, geometry="homography", model=net().model, draw=dflt)
            a, b, c = cv2.imread(cli), cv2.imread(py), cv2.imread(dflt)
            for bad in (-1, 2.5, True, "all"):
                with self.assertRaises(matchnet.Error):
                    matchnet.match_pair(*pair, draw=os.path.join(tmp, "bad.png"), draw_max=bad)
            self.assertEqual(sorted(os.listdir(tmp)), ["cli.png", "default.png", "pair.json", "py.png"])
        np.testing.assert_array_equal(a, b)
        self.assertEqual(c.shape, b.shape)
        self.assertFalse(np.array_equal(b, c))

    def test_load_image_is_mn_image_load(self):
        im = matchnet.load_image(data("box.png"))
        np.testing.assert_array_equal(im, grey("box.png"))


class Sample(unittest.TestCase):
    def test_match_pair_py(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "pair.jpg")
            r = subprocess.run([sys.executable, os.path.join(ARGS.source_dir, "samples", "match_pair.py"),
                                data("box.png"), data("box_in_scene.png"), "-o", out],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"keypoints, \d+ matches, [1-9]\d+ homography inliers")
            self.assertEqual(cv2.imread(out).shape[:2], (384, 324 + 512))
            self.assertEqual(os.listdir(tmp), ["pair.jpg"])
            r = subprocess.run([sys.executable, os.path.join(ARGS.source_dir, "samples", "match_pair.py"),
                                data("box.png"), data("box_in_scene.png"), "-o", os.path.join(tmp, "no", "x.png")],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot write", r.stderr)


class Install(unittest.TestCase):
    """`cmake --install` to a fresh prefix: the package imports from
    PREFIX/lib/python3/dist-packages and loads the prefix's libraries (and,
    through them, the installed model); still after the prefix is moved."""

    CHECK = ("import matchnet, cv2, sys\n"
             "kp, d = matchnet.MatchNet(max_keypoints=50).detectAndCompute(cv2.imread(sys.argv[1], 0))\n"
             "print(matchnet.__file__)\n"
             "print(matchnet.library_paths()['library'])\n"
             "print(matchnet.library_paths()['plugin'])\n"
             "print(len(kp), d.shape[1])\n")

    def run_check(self, site, prefix):
        env = {k: v for k, v in os.environ.items()
               if k not in ("MATCHNET_LIBRARY", "MATCHNET_PLUGIN_LIBRARY", "MATCHNET_MODEL", "LD_LIBRARY_PATH")}
        env["PYTHONPATH"] = site
        r = subprocess.run([sys.executable, "-c", self.CHECK, data("box.png")], env=env, capture_output=True,
                           text=True, cwd="/")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.split("\n")
        for line in lines[:3]:
            self.assertTrue(os.path.realpath(line).startswith(os.path.realpath(prefix) + os.sep), r.stdout)
        self.assertEqual(lines[3], "50 256")

    def test_install(self):
        with tempfile.TemporaryDirectory() as tmp:
            prefix = os.path.join(tmp, "prefix")
            r = subprocess.run(["cmake", "--install", ARGS.build_dir, "--prefix", prefix], capture_output=True,
                               text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            site = os.path.join(prefix, "lib", "python3", "dist-packages")
            for f in ("__init__.py", "_lib.py", "hloc.py", "_config.py"):
                self.assertTrue(os.path.isfile(os.path.join(site, "matchnet", f)), f)
            with open(os.path.join(site, "matchnet", "_config.py")) as f:
                cfg = f.read()
            self.assertIn('LIBRARY = "%s/' % prefix, cfg)
            self.run_check(site, prefix)
            moved = os.path.join(tmp, "moved")
            os.rename(prefix, moved)
            self.run_check(os.path.join(moved, "lib", "python3", "dist-packages"), moved)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--match", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--install", action="store_true")
    ARGS, rest = ap.parse_known_args()
    ARGS.build_dir = os.path.abspath(ARGS.build_dir)
    loader = unittest.TestLoader()
    if ARGS.install:
        suite = loader.loadTestsFromTestCase(Install)
    else:
        suite = unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in
                                   (DetectAndCompute, Matching, Errors, Threads, MatchPair, Sample))
    if rest:
        suite = loader.loadTestsFromNames(rest, sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
