"""MatchNet feature matching from Python, following OpenCV's conventions.

    import cv2, matchnet
    net = matchnet.MatchNet()                                 # default model, SIFT keypoints
    kp1, d1 = net.detectAndCompute(cv2.imread("a.png", cv2.IMREAD_GRAYSCALE))
    kp2, d2 = net.detectAndCompute(cv2.imread("b.png", cv2.IMREAD_GRAYSCALE))
    matches = matchnet.Matcher().match(d1, d2)                # list of cv2.DMatch
    result = matchnet.match_pair("a.png", "b.png")           # what matchnet-match writes, as dicts

Classes and functions:

- MatchNet: a cv2.Feature2D look-alike (detect, compute, detectAndCompute):
  the library's keypoint detection (mn_keypoints_detect) and descriptors
  (mn_describe_keypoints), tuples of cv2.KeyPoint and N x D float32 arrays.
- Matcher: a cv2.DescriptorMatcher look-alike (match, knnMatch) on
  mn_match / mn_match_knn and the metric network, plus probabilities()
  (mn_metric_score_pairs) for given index pairs.
- match_pair(): the whole matchnet-match pipeline, returning its JSON
  document as Python objects.
- Model: a loaded .mnw model, to share between MatchNet and Matcher
  objects (both also take a path, or None for the default model).
- Error: every failure; str(e) is mn_last_error()'s message, e.status the
  mn_status code.
- matchnet.hloc: features and matches in the HDF5 files of
  Hierarchical-Localization (hloc), for its reconstruction step
  (`python3 -m matchnet.hloc extract|pairs|match ...`; needs h5py).

How it is built: a pure-Python package over the C library's public API
with ctypes (no compiled extension, nothing to build; needs Debian's
python3-numpy and python3-opencv). The libraries are found as _lib.py
describes: MATCHNET_LIBRARY / MATCHNET_PLUGIN_LIBRARY, else the paths
CMake wrote into _config.py (build tree: PYTHONPATH=BUILD_DIR/python;
installed: PREFIX/lib/python3/dist-packages, which Debian's python3 finds
for the prefixes /usr and /usr/local), else ctypes.util.find_library.

Threads: ctypes releases the GIL for the whole of each foreign call, so
Python threads that describe or match at the same time run in parallel.
Objects may be shared between threads: their state is their options and
an immutable model; each call takes an mn_session (per-thread scratch) from
the model's pool, or makes one, and gives it back afterwards. Each call
also splits its own work over num_threads library threads (0: the
library's default, mn_default_num_threads()).

Arrays are passed to the library in place (ndarray.ctypes) when their
layout allows: C-contiguous float32 descriptor rows, uint8 images whose
pixels in a row are adjacent (any row stride, so crops are not copied).
Otherwise np.ascontiguousarray makes the one copy the layout needs; a
wrong dtype or shape raises Error instead of being converted.
"""
import contextlib
import os
import threading
import time
import weakref

import cv2
import numpy as np

from . import _lib
from ._lib import Error

__all__ = ["Error", "Model", "MatchNet", "Matcher", "match_pair", "load_image", "version", "library_paths",
           "default_model_path", "blas_info"]

_INVALID = _lib.MN_ERR_INVALID_ARGUMENT


def _fail(func, message, status=_INVALID):
    """An Error in the library's "func(): message" form, for arguments refused before any call."""
    return Error(status, "%s(): %s" % (func, message))


def version():
    """Version of the loaded libmatchnet, e.g. "0.1.0" (mn_version_string)."""
    return _lib.core().mn_version_string().decode()


def default_model_path():
    """Where the library's installed default model lives (mn_default_model_path)."""
    return os.fsdecode(_lib.core().mn_default_model_path())


def blas_info():
    """One line naming the BLAS and the kernels in use (mn_blas_info)."""
    return _lib.core().mn_blas_info().decode("utf-8", "replace")


def library_paths():
    """{"library": ..., "plugin": ...}: the files loaded so far (the plugin
    only after its first use)."""
    return _lib.paths()


# ---- model and sessions ----

def _free_model(core, handle, pool):
    for sessions in pool.values():
        for s in sessions:
            core.mn_session_free(s)
    pool.clear()
    core.mn_model_free(handle)


class Model:
    """A loaded MatchNet model (mn_model): immutable, shared by any number
    of threads and of MatchNet / Matcher objects.

    Model(path) loads a .mnw file (mn_model_load_file, the whole file
    validated first); Model() or Model(None) the default model
    (mn_model_load_default: $MATCHNET_MODEL, else the installed model, else
    the source tree's). Raises Error (MN_ERR_IO, MN_ERR_FORMAT,
    MN_ERR_CHECKSUM, ...) with the library's message.

    Attributes: path (None for the default model), name, patch_size,
    descriptor_dim (D, the width of a descriptor row), projection_dim.
    """

    def __init__(self, path=None):
        core = _lib.core()
        handle = _lib.c_void_p()
        if path is None:
            _lib.check(core.mn_model_load_default(handle))
        else:
            _lib.check(core.mn_model_load_file(os.fsencode(path), handle))
        self._handle = handle.value
        self.path = None if path is None else os.fspath(path)
        self.name = core.mn_model_name(self._handle).decode("utf-8", "replace")
        self.patch_size = core.mn_model_patch_size(self._handle)
        self.descriptor_dim = core.mn_model_descriptor_dim(self._handle)
        self.projection_dim = core.mn_model_projection_dim(self._handle)
        # Idle sessions by thread count; a call takes one and puts it back.
        self._pool = {}
        self._pool_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _free_model, core, self._handle, self._pool)

    def __repr__(self):
        return "matchnet.Model(%r: %r, descriptor %d)" % (self.path, self.name, self.descriptor_dim)

    @contextlib.contextmanager
    def _session(self, num_threads=0):
        """An mn_session for this thread's call: from the pool, or new."""
        with self._pool_lock:
            idle = self._pool.setdefault(num_threads, [])
            s = idle.pop() if idle else None
        if s is None:
            core = _lib.core()
            params = core.mn_session_params_default()
            params.num_threads = num_threads
            out = _lib.c_void_p()
            _lib.check(core.mn_session_create(self._handle, params, out))
            s = out.value
        try:
            yield s
        finally:
            with self._pool_lock:
                self._pool.setdefault(num_threads, []).append(s)


def _model(model, func):
    if isinstance(model, Model):
        return model
    if model is None or isinstance(model, (str, bytes, os.PathLike)):
        return Model(model)
    raise _fail(func, "model must be a path, None (default model) or a matchnet.Model, got %s"
                % type(model).__name__)


def _threads(num_threads, func):
    if not isinstance(num_threads, (int, np.integer)) or isinstance(num_threads, bool) or num_threads < 0:
        raise _fail(func, "num_threads = %r, expected 0 (library default) or more" % (num_threads,))
    return int(num_threads)


def _choice(value, table, what, func):
    if value not in table:
        raise _fail(func, "%s = %r, expected one of %s" % (what, value, ", ".join(map(repr, table))))
    return table[value]


# ---- arrays ----

def _grey(image, func):
    """An image as a 2-D uint8 array whose rows the library can read in place."""
    if not isinstance(image, np.ndarray):
        raise _fail(func, "image must be a numpy array, got %s" % type(image).__name__)
    if image.dtype != np.uint8:
        raise _fail(func, "image is %s; expected uint8 (grey, BGR or BGRA)" % image.dtype)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] in (3, 4) and image.size:
        # As OpenCV (and the C++ plugin) turn colour into grey.
        code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        image = cv2.cvtColor(np.ascontiguousarray(image), code)
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        image = np.zeros(image.shape[:2], np.uint8)
    elif image.ndim != 2:
        raise _fail(func, "image has shape %s; expected H x W (grey) or H x W x 1, 3 (BGR) or 4 (BGRA)"
                    % (image.shape,))
    if image.shape[0] and image.shape[1] and (image.strides[1] != 1 or image.strides[0] < image.shape[1]):
        image = np.ascontiguousarray(image)
    return image


def _descriptors(d, dim, func, what):
    """Descriptor rows as a C-contiguous N x dim float32 array (None or an empty array: 0 rows)."""
    if d is None:
        return np.empty((0, dim), np.float32)
    if not isinstance(d, np.ndarray):
        raise _fail(func, "%s descriptors must be a numpy array, got %s" % (what, type(d).__name__))
    if d.size == 0:
        return np.empty((0, dim), np.float32)
    if d.dtype != np.float32 or d.ndim != 2 or d.shape[1] != dim:
        raise _fail(func, "%s descriptors are %s %s; this model's are N x %d float32"
                    % (what, "x".join(map(str, d.shape)), d.dtype, dim))
    return np.ascontiguousarray(d)


def _keypoint_array(keypoints, func):
    """cv2.KeyPoint sequence or N x 4 array -> C-contiguous N x 4 float32 (x, y, size, angle)."""
    if isinstance(keypoints, np.ndarray):
        if keypoints.size == 0:
            return np.empty((0, 4), np.float32)
        if keypoints.ndim != 2 or keypoints.shape[1] != 4 or keypoints.dtype != np.float32:
            raise _fail(func, "keypoints array is %s %s; expected N x 4 float32 (x, y, size, angle)"
                        % ("x".join(map(str, keypoints.shape)), keypoints.dtype))
        return np.ascontiguousarray(keypoints)
    try:
        rows = [(k.pt[0], k.pt[1], k.size, k.angle) for k in keypoints]
    except (AttributeError, TypeError, IndexError):
        raise _fail(func, "keypoints must be cv2.KeyPoint objects or an N x 4 float32 array") from None
    return np.array(rows, np.float32).reshape(-1, 4)


def _to_keypoints(arr):
    return tuple(cv2.KeyPoint(float(x), float(y), float(s), float(a)) for x, y, s, a in arr.tolist())


def load_image(path):
    """Decode an image file to a 2-D uint8 grey array with the plugin's
    mn_image_load (JPEG by TurboJPEG, PNG/BMP/PNM/TIFF/WebP by OpenCV; what
    matchnet-match reads). The pixels are copied once into numpy memory.
    Raises Error: MN_ERR_IO (cannot open), MN_ERR_FORMAT (cannot decode)."""
    with _loaded(path) as img:
        if img.width == 0 or img.height == 0:
            return np.zeros((img.height, img.width), np.uint8)
        buf = (_lib.ctypes.c_uint8 * (img.stride * img.height)).from_address(img.pixels)
        a = np.frombuffer(buf, np.uint8).reshape(img.height, img.stride)[:, :img.width]
        return a.copy()


@contextlib.contextmanager
def _loaded(path):
    plugin = _lib.plugin()
    img = _lib.Image()
    _lib.check(plugin.mn_image_load(os.fsencode(path), img))
    try:
        yield img
    finally:
        plugin.mn_image_free(img)


def _detect_image(img, detector, max_keypoints):
    """mn_keypoints_detect on an mn_image -> N x 4 float32, strongest first."""
    kp = np.empty((max_keypoints, 4), np.float32)
    n = _lib.c_size_t()
    _lib.check(_lib.plugin().mn_keypoints_detect(img, detector, max_keypoints, _lib.ptr(kp), n))
    return kp[:n.value]


def _image_struct(grey):
    return _lib.Image(grey.ctypes.data, grey.shape[1], grey.shape[0], grey.strides[0])


# ---- MatchNet: the cv2.Feature2D look-alike ----

class MatchNet:
    """MatchNet as OpenCV's Python bindings present a cv2.Feature2D:
    detect(), compute(), detectAndCompute().

    model: a .mnw path, None for the default model, or a matchnet.Model
        (shared, loaded once).
    max_keypoints: keypoints per image, the strongest by detector response
        (>= 1). Default 2000.
    detector: "sift" (default; what the shipped model is trained on), "orb"
        or "akaze": OpenCV's detectors through mn_keypoints_detect.
    scale_factor: patch side as a multiple of the keypoint size; None takes
        the detector's (mn_detector_scale_factor: 6.75 SIFT, 0.75 ORB, 5 AKAZE).
    upright: ignore keypoint orientations when cutting patches.
    num_threads: library threads per call (0: mn_default_num_threads()).
    affine: describe affine-normalised patches: each keypoint's ellipse,
        estimated from the image when it is described
        (mn_affine_shape_estimate; cv2.KeyPoint has no shape, and the
        keypoints are returned as they are); see affine_shapes(). Opt-in:
        it pays off under strong changes of viewpoint only (README).

    Images are 8-bit numpy arrays: grey (H x W or H x W x 1), BGR or BGRA
    (turned grey by cv2.cvtColor, as the C++ plugin does). Descriptors are
    N x D float32 rows (D = descriptorSize(), 256 for the shipped model); an
    image without keypoints gives a 0 x D array (OpenCV gives None).
    Errors raise matchnet.Error. Thread-safe: one object may serve many
    threads.
    """

    def __init__(self, model=None, max_keypoints=2000, detector="sift", scale_factor=None, upright=False,
                 num_threads=0, affine=False):
        func = "MatchNet"
        self._detector_name = detector
        self._detector = _choice(detector, _lib.DETECTORS, "detector", func)
        if not isinstance(max_keypoints, (int, np.integer)) or isinstance(max_keypoints, bool) or max_keypoints < 1:
            raise _fail(func, "max_keypoints = %r, expected 1 or more" % (max_keypoints,))
        self.max_keypoints = int(max_keypoints)
        self.scale_factor = float(_lib.SCALE_FACTORS[detector] if scale_factor is None else scale_factor)
        if not (self.scale_factor > 0 and np.isfinite(self.scale_factor)):
            raise _fail(func, "scale_factor = %r, expected a finite value > 0" % (scale_factor,))
        self.upright = bool(upright)
        self.affine = bool(affine)
        self.num_threads = _threads(num_threads, func)
        self.model = _model(model, func)

    def __repr__(self):
        return ("matchnet.MatchNet(model=%r, max_keypoints=%d, detector=%r, scale_factor=%g, upright=%r, affine=%r)"
                % (self.model.path, self.max_keypoints, self._detector_name, self.scale_factor, self.upright,
                   self.affine))

    def descriptorSize(self):
        """Floats per descriptor (mn_model_descriptor_dim)."""
        return self.model.descriptor_dim

    def descriptorType(self):
        """cv2.CV_32F."""
        return cv2.CV_32F

    def defaultNorm(self):
        """cv2.NORM_L2: descriptors are compared in L2 (or by the metric network)."""
        return cv2.NORM_L2

    def getDefaultName(self):
        """"Feature2D.MatchNet", the C++ plugin's name."""
        return "Feature2D.MatchNet"

    def empty(self):
        """False: a MatchNet always holds a loaded model."""
        return False

    def detect(self, image, mask=None):
        """Keypoints of an image: a tuple of cv2.KeyPoint, strongest first.

        mn_keypoints_detect finds the strongest max_keypoints; with a mask
        (uint8 or bool, the image's height x width) those whose position,
        rounded, falls on a zero mask pixel are then dropped - the rule of
        OpenCV's SIFT, which the C++ plugin's detect() passes the mask to
        (it caps first and masks after, so a mask gives fewer keypoints,
        not others). The keypoints carry pt, size and angle (mn_keypoint);
        response and octave are 0.
        """
        return _to_keypoints(self._detect(_grey(image, "MatchNet.detect"), mask, "MatchNet.detect"))

    def compute(self, image, keypoints):
        """Descriptors of given keypoints: (keypoints, N x D float32 array).

        keypoints: cv2.KeyPoint objects (any detector's; kp.size and kp.angle
        in OpenCV's convention) or an N x 4 float32 array of (x, y, size,
        angle). As Feature2D.compute, keypoints that cannot be described are
        dropped from the returned keypoints: only malformed ones (non-finite
        values, size <= 0); keypoints at or beyond the border are described.
        The returned keypoints are the given objects (or array rows) kept.
        """
        func = "MatchNet.compute"
        grey = _grey(image, func)
        arr = _keypoint_array(keypoints, func)
        keep = np.isfinite(arr).all(axis=1) & (arr[:, 2] > 0)
        if not keep.all():
            arr = np.ascontiguousarray(arr[keep])
            if isinstance(keypoints, np.ndarray):
                keypoints = arr
            else:
                keypoints = [k for k, ok in zip(keypoints, keep.tolist()) if ok]
        if not isinstance(keypoints, np.ndarray):
            keypoints = tuple(keypoints)
        return keypoints, self._describe(grey, arr)

    def detectAndCompute(self, image, mask=None, descriptors=None, useProvidedKeypoints=False):
        """detect() then compute(): (tuple of cv2.KeyPoint, N x D float32 array).

        descriptors and useProvidedKeypoints exist for OpenCV's signature
        only; providing keypoints is compute()'s job.
        """
        if useProvidedKeypoints:
            raise _fail("MatchNet.detectAndCompute", "useProvidedKeypoints: call compute(image, keypoints)")
        func = "MatchNet.detectAndCompute"
        grey = _grey(image, func)
        arr = self._detect(grey, mask, func)
        return _to_keypoints(arr), self._describe(grey, arr)

    def affine_shapes(self, image, keypoints):
        """The ellipses affine=True describes: (N x 6 float32 rows x, y, a11,
        a12, a21, a22 - mn_affine_keypoint: A maps the unit circle to the
        ellipse in pixels, the keypoint's circle where none was found -, N
        uint8 mn_affine_result codes, 0 for an ellipse). keypoints as for
        compute(); none are dropped: a malformed one raises Error."""
        func = "MatchNet.affine_shapes"
        grey = _grey(image, func)
        arr = _keypoint_array(keypoints, func)
        shapes = np.empty((len(arr), 6), np.float32)
        results = np.empty(len(arr), np.uint8)
        if len(arr):
            with self.model._session(self.num_threads) as s:
                _lib.check(_lib.core().mn_affine_shape_estimate(
                    s, _lib.ptr(grey), grey.shape[1], grey.shape[0], grey.strides[0], _lib.ptr(arr), len(arr), None,
                    _lib.ptr(shapes), _lib.ptr(results)))
        return shapes, results

    def describe_patches(self, patches):
        """Descriptors of square patches: N x P x P uint8 (mn_describe_u8) or
        float32 in 0..255 (mn_describe_f32), P = model.patch_size -> N x D
        float32."""
        func = "MatchNet.describe_patches"
        p = self.model.patch_size
        if not isinstance(patches, np.ndarray) or patches.dtype not in (np.uint8, np.float32) or \
                patches.ndim != 3 or patches.shape[1:] != (p, p):
            raise _fail(func, "patches must be an N x %d x %d uint8 or float32 array, got %s" % (
                p, p, "%s %s" % ("x".join(map(str, patches.shape)), patches.dtype)
                if isinstance(patches, np.ndarray) else type(patches).__name__))
        patches = np.ascontiguousarray(patches)
        out = np.empty((patches.shape[0], self.model.descriptor_dim), np.float32)
        if patches.shape[0] == 0:
            return out
        core = _lib.core()
        fn = core.mn_describe_u8 if patches.dtype == np.uint8 else core.mn_describe_f32
        with self.model._session(self.num_threads) as s:
            _lib.check(fn(s, _lib.ptr(patches), patches.shape[0], _lib.ptr(out)))
        return out

    def _detect(self, grey, mask, func):
        if grey.size == 0:
            return np.empty((0, 4), np.float32)
        if mask is not None:
            if not isinstance(mask, np.ndarray) or mask.dtype not in (np.uint8, np.bool_) or \
                    mask.shape != grey.shape:
                raise _fail(func, "mask must be a %d x %d uint8 array (the image's size), got %s" % (
                    grey.shape[0], grey.shape[1], "%s %s" % ("x".join(map(str, mask.shape)), mask.dtype)
                    if isinstance(mask, np.ndarray) else type(mask).__name__))
        kp = _detect_image(_image_struct(grey), self._detector, self.max_keypoints)
        if mask is not None and len(kp):
            # cv::KeyPointsFilter::runByPixelsMask: mask((int)(y + 0.5f), (int)(x + 0.5f)).
            half = np.float32(0.5)
            rows = np.clip((kp[:, 1] + half).astype(np.int64), 0, grey.shape[0] - 1)
            cols = np.clip((kp[:, 0] + half).astype(np.int64), 0, grey.shape[1] - 1)
            kp = np.ascontiguousarray(kp[mask[rows, cols] != 0])
        return kp

    def _describe(self, grey, kp):
        out = np.empty((len(kp), self.model.descriptor_dim), np.float32)
        if len(kp) == 0:
            return out
        params = _lib.ExtractParams(self.scale_factor, int(self.upright), self.model.patch_size)
        core = _lib.core()
        with self.model._session(self.num_threads) as s:
            if self.affine:
                shapes = np.empty((len(kp), 6), np.float32)
                _lib.check(core.mn_affine_shape_estimate(s, _lib.ptr(grey), grey.shape[1], grey.shape[0],
                                                         grey.strides[0], _lib.ptr(kp), len(kp), None,
                                                         _lib.ptr(shapes), None))
                _lib.check(core.mn_describe_keypoints_affine(s, _lib.ptr(grey), grey.shape[1], grey.shape[0],
                                                             grey.strides[0], _lib.ptr(shapes), len(kp), params,
                                                             _lib.ptr(out)))
            else:
                _lib.check(core.mn_describe_keypoints(s, _lib.ptr(grey), grey.shape[1], grey.shape[0],
                                                      grey.strides[0], _lib.ptr(kp), len(kp), params,
                                                      _lib.ptr(out)))
        return out


# ---- Matcher: the cv2.DescriptorMatcher look-alike ----

_MAX_CANDIDATES = 256  # mn_match_knn()'s largest k
_PAIR_BLOCK = 1 << 16  # pairs scored per call when every pair is scored


class Matcher:
    """Matching of MatchNet descriptors as OpenCV's Python bindings present a
    cv2.DescriptorMatcher: match(), knnMatch(), with cv2.DMatch results.

    method: "l2" (default; nearest neighbour in L2 with Lowe's ratio test)
        or "metric" (candidates by L2, chosen by the metric network).
        DMatch.distance is the L2 distance for "l2" and 1 - p (p: the metric
        network's match probability) for "metric", as the C++ plugin's
        MatchNetMatcher.
    model: a .mnw path, None for the default model, or a matchnet.Model;
        the metric network must be the one whose tower made the descriptors.
    k, ratio, min_probability, cross_check, all_pairs, max_all_pairs: the
        fields of mn_match_params (k: L2 candidates per query, 1..256;
        cross_check: `mutual`; knnMatch cross-checks only when it is given
        True, as cv2.BFMatcher(crossCheck=True)); None takes mn_match_params_preset(method)'s
        value: "l2": k 5, ratio 0.8, min_probability 0, no cross check;
        "metric": k 5, min_probability 0.5, cross check, ratio 1 (off).
        all_pairs: score every pair with the metric network instead of the
        k L2 candidates (at most max_all_pairs = nq * nt, default 4e6).
    num_threads: library threads per call (0: mn_default_num_threads()).

    Descriptors are N x D float32 arrays (rows of MatchNet.compute); None
    or an empty array is an empty set. Masks are nq x nt uint8 (or bool)
    arrays, 0 excluding the pair (query q, train t). Errors raise
    matchnet.Error. Thread-safe.
    """

    def __init__(self, method="l2", model=None, k=None, ratio=None, min_probability=None, cross_check=None,
                 all_pairs=False, max_all_pairs=None, num_threads=0):
        func = "Matcher"
        self.method = method
        code = _choice(method, _lib.MATCH_METHODS, "method", func)
        p = _lib.core().mn_match_params_preset(code)
        if k is not None:
            p.k = int(k)
        if ratio is not None:
            p.ratio = float(ratio)
        if min_probability is not None:
            p.min_probability = float(min_probability)
        if cross_check is not None:
            p.mutual = int(bool(cross_check))
        # knnMatch's cross check is the user's explicit choice (as cv2.BFMatcher's
        # crossCheck, off by default); the metric preset's mutual check shapes
        # match() only, so knnMatch(k > 1) works with the defaults.
        self._knn_cross_check = bool(cross_check)
        p.all_pairs = int(bool(all_pairs))
        if max_all_pairs is not None:
            p.max_all_pairs = int(max_all_pairs)
        if not 1 <= p.k <= _MAX_CANDIDATES:
            raise _fail(func, "k = %d, expected 1..%d" % (p.k, _MAX_CANDIDATES))
        self._params = p
        self.num_threads = _threads(num_threads, func)
        self.model = _model(model, func)

    # The options, read back from the parameter struct the calls use.
    k = property(lambda self: self._params.k, doc="L2 candidates per query (mn_match_params.k).")
    ratio = property(lambda self: self._params.ratio, doc="Ratio-test threshold (1 or more: off).")
    min_probability = property(lambda self: self._params.min_probability, doc="Probability threshold.")
    cross_check = property(lambda self: bool(self._params.mutual), doc="Mutual (cross) check.")
    all_pairs = property(lambda self: bool(self._params.all_pairs), doc="Score every pair (metric).")
    max_all_pairs = property(lambda self: self._params.max_all_pairs, doc="Bound on nq * nt for all_pairs.")

    def __repr__(self):
        return ("matchnet.Matcher(method=%r, k=%d, ratio=%g, min_probability=%g, cross_check=%r, all_pairs=%r)"
                % (self.method, self.k, self.ratio, self.min_probability, self.cross_check, self.all_pairs))

    def isMaskSupported(self):
        """True: match() and knnMatch() take an nq x nt mask."""
        return True

    def match(self, queryDescriptors, trainDescriptors, mask=None):
        """The best match of each query that passes the options (mn_match):
        a list of cv2.DMatch in increasing query order, at most one per query
        (and, with cross_check, per train descriptor)."""
        m = self.match_details(queryDescriptors, trainDescriptors, mask)
        dist = m["distance"] if self.method == "l2" else np.float32(1) - m["probability"]
        return [cv2.DMatch(q, t, 0, d) for q, t, d in zip(m["query"].tolist(), m["train"].tolist(), dist.tolist())]

    def match_details(self, queryDescriptors, trainDescriptors, mask=None):
        """match() as the library reports it: a structured array with fields
        query, train (uint32), probability and distance (float32, L2) - one
        row per match (mn_dmatch)."""
        func = "Matcher.match"
        q, t, mk = self._inputs(queryDescriptors, trainDescriptors, mask, func)
        out = np.empty(len(q), _lib.DMATCH_DTYPE)
        if len(q) == 0 or len(t) == 0:
            return out[:0]
        n = _lib.c_size_t()
        p = self._struct(mask=mk)
        with self.model._session(self.num_threads) as s:
            _lib.check(_lib.core().mn_match(s, _lib.ptr(q), len(q), _lib.ptr(t), len(t), p, _lib.ptr(out),
                                            len(out), n))
        return out[:n.value]

    def knnMatch(self, queryDescriptors, trainDescriptors, k, mask=None, compactResult=False):
        """The k best train descriptors of each query: a list (one per query,
        or only non-empty ones with compactResult) of lists of cv2.DMatch,
        best first. No ratio or probability threshold applies (as in OpenCV,
        the ratio test is the caller's).

        "l2": the k nearest in L2 (mn_match_knn), distance the L2 distance.
        "metric": as the C++ MatchNetMatcher - the max(k, self.k) L2
        neighbours (every allowed pair when all_pairs, or when that is more
        than 256 or covers the train set) scored by the metric network, the
        k most probable kept (ties by train index), distance 1 - p.
        With cross_check=True given, k must be 1 (as cv2.BFMatcher): each query's best
        partner kept when the query is also that partner's best (mn_match,
        mutual, no thresholds).
        """
        func = "Matcher.knnMatch"
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise _fail(func, "k = %r, expected 1 or more" % (k,))
        q, t, mk = self._inputs(queryDescriptors, trainDescriptors, mask, func)
        if self._knn_cross_check:
            if k != 1:
                raise _fail(func, "cross_check needs k = 1 (as cv2.BFMatcher)")
            rows = [[] for _ in range(len(q))]
            for m in self._cross_check(q, t, mk):
                rows[m.queryIdx].append(m)
        elif self.method == "l2":
            rows = self._knn_l2(q, t, mk, int(k))
        else:
            rows = self._knn_metric(q, t, mk, int(k))
        return [r for r in rows if r] if compactResult else rows

    def probabilities(self, queryDescriptors, trainDescriptors, pairs):
        """The metric network's match probability of each given pair
        (mn_metric_score_pairs): pairs is an N x 2 array-like of (query
        index, train index), or a sequence of cv2.DMatch; returns N float32
        values in [0, 1]. Indices are checked by the library."""
        func = "Matcher.probabilities"
        q, t, _ = self._inputs(queryDescriptors, trainDescriptors, None, func)
        if len(pairs) and isinstance(pairs[0], cv2.DMatch):
            pairs = [(m.queryIdx, m.trainIdx) for m in pairs]
        pairs = np.asarray(pairs)
        if pairs.size == 0:
            return np.empty(0, np.float32)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.dtype.kind not in "iu":
            raise _fail(func, "pairs must be N x 2 integer indices or cv2.DMatch objects, got %s %s"
                        % ("x".join(map(str, pairs.shape)), pairs.dtype))
        if pairs.min() < 0 or pairs.max() > 0xFFFFFFFF:
            raise _fail(func, "pair indices must be in 0..2^32-1, got %d..%d" % (pairs.min(), pairs.max()))
        pairs = np.ascontiguousarray(pairs, np.uint32)
        prob = np.empty(len(pairs), np.float32)
        with self.model._session(self.num_threads) as s:
            _lib.check(_lib.core().mn_metric_score_pairs(s, _lib.ptr(q), len(q), _lib.ptr(t), len(t),
                                                         _lib.ptr(pairs), len(pairs), _lib.ptr(prob)))
        return prob

    # -- helpers --

    def _inputs(self, query, train, mask, func):
        dim = self.model.descriptor_dim
        q = _descriptors(query, dim, func, "query")
        t = _descriptors(train, dim, func, "train")
        if mask is None:
            return q, t, None
        if not isinstance(mask, np.ndarray) or mask.dtype not in (np.uint8, np.bool_) or \
                mask.shape != (len(q), len(t)):
            raise _fail(func, "mask must be a %d x %d uint8 array (queries x train descriptors), got %s" % (
                len(q), len(t), "%s %s" % ("x".join(map(str, mask.shape)), mask.dtype)
                if isinstance(mask, np.ndarray) else type(mask).__name__))
        return q, t, np.ascontiguousarray(mask).view(np.uint8)

    def _struct(self, mask=None, **fields):
        p = _lib.MatchParams.from_buffer_copy(self._params)
        for name, value in fields.items():
            setattr(p, name, value)
        p.mask = _lib.ptr(mask)
        return p

    def _cross_check(self, q, t, mk):
        """MatchNetMatcher's crossCheckMatch: mutual best, no thresholds."""
        if len(q) == 0 or len(t) == 0:
            return []
        if self.method == "metric":
            every = self.all_pairs or self.k >= len(t)
            p = self._struct(mask=mk, all_pairs=int(every), k=1 if every else self.k, min_probability=0.0,
                             ratio=1.0, mutual=1, max_all_pairs=(1 << 64) - 1)
        else:
            p = self._struct(mask=mk, min_probability=0.0, ratio=1.0, mutual=1)
        out = np.empty(len(q), _lib.DMATCH_DTYPE)
        n = _lib.c_size_t()
        with self.model._session(self.num_threads) as s:
            _lib.check(_lib.core().mn_match(s, _lib.ptr(q), len(q), _lib.ptr(t), len(t), p, _lib.ptr(out),
                                            len(out), n))
        out = out[:n.value]
        dist = out["distance"] if self.method == "l2" else np.float32(1) - out["probability"]
        return [cv2.DMatch(a, b, 0, d) for a, b, d in zip(out["query"].tolist(), out["train"].tolist(),
                                                          dist.tolist())]

    def _knn(self, s, q, t, mk, k):
        idx = np.empty((len(q), k), np.uint32)
        dist = np.empty((len(q), k), np.float32)
        _lib.check(_lib.core().mn_match_knn(s, _lib.ptr(q), len(q), _lib.ptr(t), len(t), _lib.ptr(mk), k,
                                            _lib.ptr(idx), _lib.ptr(dist)))
        return idx, dist

    def _knn_l2(self, q, t, mk, k):
        rows = [[] for _ in range(len(q))]
        if len(q) == 0 or len(t) == 0:
            return rows
        k = min(k, len(t))  # the rest would be missing entries
        with self.model._session(self.num_threads) as s:
            idx, dist = self._knn(s, q, t, mk, k)
        for qi, (ir, dr) in enumerate(zip(idx.tolist(), dist.tolist())):
            rows[qi] = [cv2.DMatch(qi, ti, 0, di) for ti, di in zip(ir, dr) if ti != 0xFFFFFFFF]
        return rows

    def _knn_metric(self, q, t, mk, k):
        rows = [[] for _ in range(len(q))]
        nq, nt = len(q), len(t)
        if nq == 0 or nt == 0:
            return rows
        kc = 0 if self.all_pairs else max(k, self.k)
        if kc > _MAX_CANDIDATES or kc >= nt:
            kc = 0
        core = _lib.core()
        F = self.model.projection_dim
        with self.model._session(self.num_threads) as s:
            # Two-stage, as the C++ matcher: every descriptor projected once.
            pq = np.empty((nq, F), np.float32)
            pt = np.empty((nt, F), np.float32)
            _lib.check(core.mn_metric_project(s, _lib.ptr(q), nq, 0, _lib.ptr(pq)))
            _lib.check(core.mn_metric_project(s, _lib.ptr(t), nt, 1, _lib.ptr(pt)))
            if kc > 0:
                cand, _ = self._knn(s, q, t, mk, kc)
                per_query = kc
            else:
                per_query = nt
            block = max(1, _PAIR_BLOCK // per_query)
            for q0 in range(0, nq, block):
                q1 = min(nq, q0 + block)
                qi = np.repeat(np.arange(q0, q1, dtype=np.uint32), per_query).reshape(q1 - q0, per_query)
                ti = cand[q0:q1] if kc > 0 else np.broadcast_to(np.arange(nt, dtype=np.uint32), qi.shape)
                valid = ti != 0xFFFFFFFF
                if mk is not None and kc == 0:
                    valid = valid & (mk[q0:q1] != 0)
                pairs = np.ascontiguousarray(np.stack([qi[valid], ti[valid]], axis=1))
                prob = np.full(qi.shape, -np.inf, np.float32)
                if len(pairs):
                    pv = np.empty(len(pairs), np.float32)
                    _lib.check(core.mn_metric_score_projected(s, _lib.ptr(pq), nq, _lib.ptr(pt), nt,
                                                              _lib.ptr(pairs), len(pairs), _lib.ptr(pv)))
                    prob[valid] = pv
                # More probable first, equal probabilities by train index (MatchNetMatcher's order).
                order = np.lexsort((ti, -prob), axis=1)[:, :k]
                ts = np.take_along_axis(ti, order, axis=1)
                ps = np.take_along_axis(prob, order, axis=1)
                ok = np.isfinite(ps)
                dist = np.float32(1) - ps
                for r in range(q1 - q0):
                    n = int(ok[r].sum())
                    rows[q0 + r] = [cv2.DMatch(q0 + r, tt, 0, dd)
                                    for tt, dd in zip(ts[r, :n].tolist(), dist[r, :n].tolist())]
        return rows


# ---- match_pair: matchnet-match in Python ----

def match_pair(path1, path2, detector="sift", max_keypoints=2000, method="l2", geometry="none", upright=False,
               model=None, threads=0, draw=None, draw_max=None, draw_keypoints=False, affine=False):
    """Match two image files as `matchnet-match` does and return its JSON
    document as Python objects:

        {"image1": {"path": path1, "width": W, "height": H,
                    "keypoints": [[x, y, size, angle_deg], ...]},
         "image2": {...},
         "matches": [[i, j, probability], ...],
         "timing_ms": {"detect": ms, "describe": ms, "match": ms}}

    The options are matchnet-match's (--detector, --max-keypoints,
    --method, --geometry with its 3 px RANSAC threshold, --upright, --model,
    --threads, --draw, --draw-max, --draw-keypoints, --affine: then each
    image also has "shapes", [[a11, a12, a21, a22], ...], from
    mn_affine_shape_estimate, described by mn_describe_keypoints_affine,
    the estimate timed as detection); model may also be a
    matchnet.Model. The same C calls in the same order: mn_image_load (not
    cv2.imread: JPEG goes through TurboJPEG there, so this gives
    matchnet-match's pixels for every format), mn_keypoints_detect,
    mn_describe_keypoints, mn_match, mn_matches_filter (with a geometry only
    the inliers are listed) and, with draw, mn_matches_draw_with (written
    through a temporary file and renamed; at most draw_max lines - None: the
    library's default, 300 -, inliers first, in green, outliers red, the
    counts in the corner; draw_keypoints circles every keypoint). Numbers
    are the C floats as Python floats; the JSON holds them to 9 significant
    digits. Raises Error.
    """
    func = "match_pair"
    det = _choice(detector, _lib.DETECTORS, "detector", func)
    meth = _choice(method, _lib.MATCH_METHODS, "method", func)
    geom = _choice(geometry, _lib.GEOMETRIES, "geometry", func)
    if not isinstance(max_keypoints, (int, np.integer)) or isinstance(max_keypoints, bool) or \
            not 1 <= max_keypoints <= 1000000:
        raise _fail(func, "max_keypoints = %r, expected 1..1000000" % (max_keypoints,))
    threads = _threads(threads, func)
    if draw_max is not None and (not isinstance(draw_max, (int, np.integer)) or isinstance(draw_max, bool) or
                                 draw_max < 0):
        raise _fail(func, "draw_max = %r, expected None (the default) or 0 or more" % (draw_max,))
    core, plugin = _lib.core(), _lib.plugin()
    with _loaded(path1) as img1, _loaded(path2) as img2:
        m = _model(model, func)
        with m._session(threads) as s:
            t0 = time.perf_counter()
            kp = [_detect_image(img, det, int(max_keypoints)) for img in (img1, img2)]
            shapes = [None, None]
            if affine:
                for i, (img, k) in enumerate(zip((img1, img2), kp)):
                    shapes[i] = np.empty((len(k), 6), np.float32)
                    _lib.check(core.mn_affine_shape_estimate(s, img.pixels, img.width, img.height, img.stride,
                                                             _lib.ptr(k), len(k), None, _lib.ptr(shapes[i]), None))
            t1 = time.perf_counter()
            params = _lib.ExtractParams(plugin.mn_detector_scale_factor(det), int(bool(upright)), m.patch_size)
            desc = []
            for img, k, sh in zip((img1, img2), kp, shapes):
                d = np.empty((len(k), m.descriptor_dim), np.float32)
                if sh is not None:
                    _lib.check(core.mn_describe_keypoints_affine(s, img.pixels, img.width, img.height, img.stride,
                                                                 _lib.ptr(sh), len(k), params, _lib.ptr(d)))
                else:
                    _lib.check(core.mn_describe_keypoints(s, img.pixels, img.width, img.height, img.stride,
                                                          _lib.ptr(k), len(k), params, _lib.ptr(d)))
                desc.append(d)
            t2 = time.perf_counter()
            mp = core.mn_match_params_preset(meth)
            matches = np.empty(max(len(kp[0]), 1), _lib.DMATCH_DTYPE)
            n = _lib.c_size_t()
            _lib.check(core.mn_match(s, _lib.ptr(desc[0]), len(kp[0]), _lib.ptr(desc[1]), len(kp[1]), mp,
                                     _lib.ptr(matches), len(kp[0]), n))
            matches = matches[:n.value]
            inliers = np.empty(max(len(matches), 1), np.uint8)
            ninl = _lib.c_size_t()
            _lib.check(plugin.mn_matches_filter(geom, _lib.ptr(kp[0]), len(kp[0]), _lib.ptr(kp[1]), len(kp[1]),
                                                _lib.ptr(matches), len(matches), 3.0, None, _lib.ptr(inliers),
                                                ninl))
            t3 = time.perf_counter()
        if draw is not None:
            dp = plugin.mn_draw_params_default()
            if draw_max is not None:
                dp.max_lines = min(int(draw_max), _lib.SIZE_MAX)
            dp.keypoints = int(bool(draw_keypoints))
            _lib.check(plugin.mn_matches_draw_with(img1, _lib.ptr(kp[0]), len(kp[0]), img2, _lib.ptr(kp[1]),
                                                   len(kp[1]), _lib.ptr(matches), len(matches), _lib.ptr(inliers),
                                                   dp, os.fsencode(draw)))
        kept = matches[inliers[:len(matches)] != 0]

        def image(path, img, k, sh):
            d = {"path": os.fsdecode(path), "width": img.width, "height": img.height,
                 "keypoints": k.astype(np.float64).tolist()}
            if sh is not None:
                d["shapes"] = sh[:, 2:].astype(np.float64).tolist()
            return d

        return {
            "image1": image(path1, img1, kp[0], shapes[0]),
            "image2": image(path2, img2, kp[1], shapes[1]),
            "matches": [[q, t, p] for q, t, p in zip(kept["query"].tolist(), kept["train"].tolist(),
                                                     kept["probability"].astype(np.float64).tolist())],
            "timing_ms": {"detect": (t1 - t0) * 1e3, "describe": (t2 - t1) * 1e3, "match": (t3 - t2) * 1e3},
        }
