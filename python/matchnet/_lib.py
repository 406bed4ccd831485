"""ctypes bindings of libmatchnet (matchnet.h) and libmatchnet_opencv
(matchnet/opencv.h): struct layouts, prototypes, finding and loading the
shared libraries, and turning a failed status into matchnet.Error.

Private to the package; the public API is matchnet/__init__.py.

Where the libraries come from, first found wins (library_paths() says
which were loaded):

1. MATCHNET_LIBRARY / MATCHNET_PLUGIN_LIBRARY: a file path (or a name the
   dynamic loader resolves). Set, they are the only candidate, so a wrong
   value is an error instead of a silent fallback.
2. _config.py, written by CMake: the build tree's libraries in the package
   CMake generates into BUILD_DIR/python, the installed libraries in the
   package `cmake --install` writes (absolute path, then the same path
   relative to the package, for a prefix moved after installing).
3. ctypes.util.find_library("matchnet") / ("matchnet_opencv"): the
   dynamic loader's cache (an installed prefix known to ldconfig).

The plugin is loaded on first use only: the descriptor and matcher calls
need nothing but libmatchnet.
"""
import ctypes
import ctypes.util
import os
import threading

import numpy as np

__all__ = []  # nothing public: matchnet/__init__.py re-exports what users see

c_int, c_float, c_double, c_size_t = ctypes.c_int, ctypes.c_float, ctypes.c_double, ctypes.c_size_t
c_void_p, c_char_p = ctypes.c_void_p, ctypes.c_char_p
SIZE_MAX = (1 << (8 * ctypes.sizeof(c_size_t))) - 1

# mn_status (matchnet.h)
MN_OK = 0
MN_ERR_INVALID_ARGUMENT = 1
MN_ERR_OUT_OF_MEMORY = 2
MN_ERR_IO = 3
MN_ERR_FORMAT = 4
MN_ERR_VERSION = 5
MN_ERR_CHECKSUM = 6
MN_ERR_UNSUPPORTED = 7
STATUS_NAMES = {0: "MN_OK", 1: "MN_ERR_INVALID_ARGUMENT", 2: "MN_ERR_OUT_OF_MEMORY", 3: "MN_ERR_IO",
                4: "MN_ERR_FORMAT", 5: "MN_ERR_VERSION", 6: "MN_ERR_CHECKSUM", 7: "MN_ERR_UNSUPPORTED"}

# Enumerations (matchnet.h, matchnet/opencv.h), by the names the Python API takes.
MATCH_METHODS = {"metric": 0, "l2": 1}                           # mn_match_method
DETECTORS = {"sift": 0, "orb": 1, "akaze": 2}                    # mn_detector
GEOMETRIES = {"none": 0, "homography": 1, "fundamental": 2}      # mn_geometry
# MN_SCALE_SIFT, MN_SCALE_ORB, MN_SCALE_AKAZE: mn_detector_scale_factor()'s
# values, here so that describing needs no plugin.
SCALE_FACTORS = {"sift": 6.75, "orb": 0.75, "akaze": 5.0}


class Error(RuntimeError):
    """A failed libmatchnet call, or arguments refused before one.

    str(error) is the message (mn_last_error()'s text for a library call,
    e.g. "mn_model_load_file(): cannot open 'x.mnw': No such file or
    directory"); .status is the mn_status code (an int, e.g. 3) and
    .status_name its name (e.g. "MN_ERR_IO").
    """

    def __init__(self, status, message):
        super().__init__(message)
        self.status = int(status)
        self.status_name = STATUS_NAMES.get(self.status, "MN_ERR_%d" % self.status)
        self.message = message


Error.__module__ = "matchnet"


# ---- struct layouts (LP64; checked below) ----

class SessionParams(ctypes.Structure):
    _fields_ = [("num_threads", c_int), ("reference", c_int)]


class ExtractParams(ctypes.Structure):
    _fields_ = [("scale_factor", c_float), ("upright", c_int), ("patch_size", c_int)]


class MatchParams(ctypes.Structure):
    _fields_ = [("method", c_int), ("k", c_int), ("min_probability", c_float), ("ratio", c_float),
                ("mutual", c_int), ("all_pairs", c_int), ("max_all_pairs", c_size_t), ("mask", c_void_p)]


class Image(ctypes.Structure):
    _fields_ = [("pixels", c_void_p), ("width", c_int), ("height", c_int), ("stride", c_size_t)]


class DrawParams(ctypes.Structure):
    _fields_ = [("max_lines", c_size_t), ("keypoints", c_int), ("counts", c_int), ("opacity", c_float)]


# mn_keypoint is 4 floats (x, y, size, angle): an N x 4 float32 array.
# mn_pair is 2 uint32 (a, b): an N x 2 uint32 array.
# mn_dmatch:
DMATCH_DTYPE = np.dtype([("query", "<u4"), ("train", "<u4"), ("probability", "<f4"), ("distance", "<f4")])

if ctypes.sizeof(c_void_p) == 8:
    assert ctypes.sizeof(MatchParams) == 40 and ctypes.sizeof(Image) == 24 and ctypes.sizeof(DrawParams) == 24

P = ctypes.POINTER
_CORE_PROTOTYPES = {
    "mn_version_string": (c_char_p, []),
    "mn_status_str": (c_char_p, [c_int]),
    "mn_last_error": (c_char_p, []),
    "mn_model_load_file": (c_int, [c_char_p, P(c_void_p)]),
    "mn_model_load_default": (c_int, [P(c_void_p)]),
    "mn_default_model_path": (c_char_p, []),
    "mn_model_free": (None, [c_void_p]),
    "mn_model_name": (c_char_p, [c_void_p]),
    "mn_model_patch_size": (c_int, [c_void_p]),
    "mn_model_descriptor_dim": (c_size_t, [c_void_p]),
    "mn_model_projection_dim": (c_size_t, [c_void_p]),
    "mn_session_params_default": (SessionParams, []),
    "mn_session_create": (c_int, [c_void_p, P(SessionParams), P(c_void_p)]),
    "mn_session_free": (None, [c_void_p]),
    "mn_default_num_threads": (c_int, []),
    "mn_blas_info": (c_char_p, []),
    "mn_describe_u8": (c_int, [c_void_p, c_void_p, c_size_t, c_void_p]),
    "mn_describe_f32": (c_int, [c_void_p, c_void_p, c_size_t, c_void_p]),
    "mn_extract_params_default": (ExtractParams, []),
    "mn_describe_keypoints": (c_int, [c_void_p, c_void_p, c_int, c_int, c_size_t, c_void_p, c_size_t,
                                      P(ExtractParams), c_void_p]),
    "mn_affine_shape_estimate": (c_int, [c_void_p, c_void_p, c_int, c_int, c_size_t, c_void_p, c_size_t, c_void_p,
                                         c_void_p, c_void_p]),
    "mn_describe_keypoints_affine": (c_int, [c_void_p, c_void_p, c_int, c_int, c_size_t, c_void_p, c_size_t,
                                             P(ExtractParams), c_void_p]),
    "mn_metric_project": (c_int, [c_void_p, c_void_p, c_size_t, c_int, c_void_p]),
    "mn_metric_score_projected": (c_int, [c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, c_void_p, c_size_t,
                                          c_void_p]),
    "mn_metric_score_pairs": (c_int, [c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, c_void_p, c_size_t,
                                      c_void_p]),
    "mn_match_params_default": (MatchParams, []),
    "mn_match_params_preset": (MatchParams, [c_int]),
    "mn_match": (c_int, [c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, P(MatchParams), c_void_p, c_size_t,
                         P(c_size_t)]),
    "mn_match_knn": (c_int, [c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, c_void_p, c_int, c_void_p,
                             c_void_p]),
}
_PLUGIN_PROTOTYPES = {
    "mn_image_load": (c_int, [c_char_p, P(Image)]),
    "mn_image_free": (None, [P(Image)]),
    "mn_detector_scale_factor": (c_float, [c_int]),
    "mn_keypoints_detect": (c_int, [P(Image), c_int, c_size_t, c_void_p, P(c_size_t)]),
    "mn_matches_filter": (c_int, [c_int, c_void_p, c_size_t, c_void_p, c_size_t, c_void_p, c_size_t, c_double,
                                  c_void_p, c_void_p, P(c_size_t)]),
    "mn_matches_draw": (c_int, [P(Image), c_void_p, c_size_t, P(Image), c_void_p, c_size_t, c_void_p, c_size_t,
                                c_void_p, c_char_p]),
    "mn_draw_params_default": (DrawParams, []),
    "mn_matches_draw_with": (c_int, [P(Image), c_void_p, c_size_t, P(Image), c_void_p, c_size_t, c_void_p, c_size_t,
                                     c_void_p, P(DrawParams), c_char_p]),
}


# ---- finding and loading ----

def _config():
    try:
        from . import _config as cfg
    except ImportError:  # the source tree's package: no CMake-written paths
        return None
    return cfg


def _candidates(env, key):
    """Paths to try for one library, each with where it came from."""
    value = os.environ.get(env)
    if value:
        return [(value, "$" + env)]
    found = []
    cfg = _config()
    if cfg is not None:
        path = getattr(cfg, key, "")
        if path:
            found.append((path, "_config.py"))
        rel = getattr(cfg, key + "_RELATIVE", "")
        if rel:
            found.append((os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), rel)),
                          "_config.py (relative to the package)"))
    name = ctypes.util.find_library({"LIBRARY": "matchnet", "PLUGIN_LIBRARY": "matchnet_opencv"}[key])
    if name:
        found.append((name, "ctypes.util.find_library"))
    return found


def _load(env, key, prototypes):
    tried = []
    for path, origin in _candidates(env, key):
        if os.sep in path and not os.path.exists(path):
            tried.append("%s (%s): no such file" % (path, origin))
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s): %s" % (path, origin, e))
            continue
        for name, (restype, argtypes) in prototypes.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        return lib, path
    what = {"LIBRARY": "libmatchnet", "PLUGIN_LIBRARY": "libmatchnet_opencv"}[key]
    raise Error(MN_ERR_UNSUPPORTED, "matchnet: cannot load %s (%s; set %s to its path)"
                % (what, "; ".join(tried) if tried else "no candidate found", env))


_lock = threading.Lock()
_core = None
_plugin = None
_paths = {}


def core():
    """libmatchnet, loaded on the first call."""
    global _core
    if _core is None:
        with _lock:
            if _core is None:
                lib, _paths["library"] = _load("MATCHNET_LIBRARY", "LIBRARY", _CORE_PROTOTYPES)
                _core = lib
    return _core


def plugin():
    """libmatchnet_opencv (decoding, detection, RANSAC, drawing), loaded on
    the first call, after libmatchnet: the plugin's dependency on
    libmatchnet.so.0 resolves to the copy already loaded (same soname), so
    both share one thread-local mn_last_error()."""
    global _plugin
    core()
    if _plugin is None:
        with _lock:
            if _plugin is None:
                lib, _paths["plugin"] = _load("MATCHNET_PLUGIN_LIBRARY", "PLUGIN_LIBRARY", _PLUGIN_PROTOTYPES)
                _plugin = lib
    return _plugin


def paths():
    """{"library": path, "plugin": path} of what is loaded so far."""
    return dict(_paths)


def last_error():
    return core().mn_last_error().decode("utf-8", "replace")


def check(status):
    """Raise Error with the calling thread's mn_last_error() unless status is MN_OK.

    ctypes releases the GIL during the foreign call but the call and this
    read run on the same OS thread, which is what the thread-local message
    needs."""
    if status != MN_OK:
        raise Error(status, last_error())


def ptr(array):
    """Address of an array's data, or None (NULL) for None."""
    return None if array is None else array.ctypes.data
