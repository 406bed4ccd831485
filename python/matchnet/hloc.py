"""MatchNet features and matches in the files of Hierarchical-Localization
(hloc, github.com/cvg/Hierarchical-Localization), so that hloc's
reconstruction and triangulation steps take them as they take its own.

    python3 -m matchnet.hloc extract IMAGE_DIR FEATURES.h5 [--max-keypoints N]
    python3 -m matchnet.hloc extract IMAGE_DIR FEATURES.h5 --keypoints OTHER.h5 [--keypoint-size PX]
    python3 -m matchnet.hloc pairs FEATURES.h5 PAIRS.txt
    python3 -m matchnet.hloc match PAIRS.txt FEATURES.h5 MATCHES.h5 [--method l2|metric]
    python3 -m matchnet.hloc global FEATURES.h5 GLOBAL.h5 --codebook CODEBOOK.bin [--no-half]

The files, as hloc's extract_features.py and match_features.py write them
and its utils/io.py, utils/parsers.py and triangulation.py read them:

Feature file (HDF5): one group per image, named by the image's path
relative to IMAGE_DIR with "/" separators ("sub/a.jpg" is group "a.jpg"
inside group "sub", as h5py's create_group makes it), holding
  keypoints    N x 2 float32, pixels, OpenCV's convention (the centre of
               the top-left pixel is (0, 0)): what hloc stores for every
               extractor, which triangulation.import_features shifts by
               +0.5 into COLMAP's convention. Attribute "uncertainty":
               1.0 (hloc: the detector's noise in pixels, 1 unless the
               extractor says otherwise, times the resize factor).
  descriptors  D x N (one column per keypoint), float16 with as_half
               (hloc's default) or float32.
  scores       N, float16 / float32: zeros for the library's detector,
               whose keypoints carry no response (hloc's own SIFT
               extractor, extractors/dog.py, writes zeros too); the keypoint
               order is strongest first.
  scales, oris N float32: half the keypoint's OpenCV size (SIFT's sigma)
               and its angle in degrees, the layout of hloc's DoG extractor.
  image_size   2 int64: (width, height) of the image as decoded.
Match file (HDF5): one group per pair, names_to_pair(name0, name1) =
name0 + "/" + name1 with "/" inside each name replaced by "-" (so again a
group inside a group), holding
  matches0          N0 int16 (int32 when image 2 has more than 32767
                    keypoints, where hloc's int16 would wrap): for each
                    keypoint of image 1 the index of its match among image
                    2's keypoints, -1 for none.
  matching_scores0  N0 float16: the metric network's match probability
                    (mn_dmatch.probability, for both methods), 0 for none;
                    hloc's min_match_score thresholds it.
Global descriptor file (HDF5, as hloc's extract_features.py writes a
global extractor's output, e.g. NetVLAD's, for pairs_from_retrieval.py):
one group per image, named as in the feature file, holding
  global_descriptor  D float16 with as_half, else float32: the VLAD vector
                     of matchnet-colmap's --pairs retrieval:K (the same
                     definition and codebook file, apps/colmap_retrieval.h)
                     of the image's descriptors in FEATURES.h5.
Pairs file: text, one "name0 name1" line per pair (whitespace-separated,
empty lines skipped), as hloc's pairs_from_*.py write and
parsers.parse_retrieval reads it.

Readers accept what hloc's readers accept: a pair stored in either order
(find_pair: name0/name1, then name1/name0 with the matches flipped) and
under the older "name0_name1" names; float16 or float32 arrays.

Where this differs from hloc, and why:
- as_half halves descriptors and scores only. hloc halves every float32
  array, keypoints included, which rounds coordinates from 1024 px on to
  whole pixels and from 2048 px on to even ones; its readers take float32
  keypoints unchanged.
- Images are decoded by mn_image_load (as matchnet-match and
  matchnet-colmap), as stored: no EXIF rotation, as COLMAP reads them
  (hloc's cv2.imread turns them). There is no resizing option.
- Files are replaced, not edited: every run builds the new version of the
  file beside it (an unnamed O_TMPFILE file where the kernel and file
  system have them, otherwise a hidden ".matchnet-hloc-*.partial" file
  removed on any error, Ctrl-C or SIGTERM) and renames it over the old one
  at the end. A failed or killed run leaves the file exactly as it was and,
  with O_TMPFILE, nothing else - but also keeps none of its own work (hloc
  writes image by image and resumes, at the risk of a damaged file).
  Names already in the file are skipped, as hloc does, unless overwrite;
  overwriting a pair removes it under all four of its possible names, so
  no stale copy is found first.
"""
import argparse
import collections
import contextlib
import glob
import os
import shutil
import signal
import stat
import sys
import tempfile

import numpy as np

import matchnet
from . import _lib

try:
    import h5py
except ImportError:  # reported when a file is opened, not at import
    h5py = None

__all__ = ["IMAGE_GLOBS", "DEFAULT_KEYPOINT_SIZE", "read_codebook", "vlad", "write_global", "names_to_pair", "names_to_pair_old", "find_pair", "list_images",
           "list_names", "read_pairs", "write_pairs", "exhaustive_pairs", "read_keypoints", "read_features",
           "write_features", "read_matches", "write_matches", "extract", "match", "main"]

# hloc's ImageDataset globs (extract_features.py), searched recursively.
IMAGE_GLOBS = ("*.jpg", "*.png", "*.jpeg", "*.JPG", "*.PNG")

# Size (px, OpenCV's diameter) given to keypoints whose file has no scales,
# e.g. SuperPoint's. On a warped copy of box_in_scene.png with GFTT and FAST
# corners, MatchNet's correct matches peaked at 4 px among 2..32 px.
DEFAULT_KEYPOINT_SIZE = 4.0

_INVALID, _IO, _FORMAT = _lib.MN_ERR_INVALID_ARGUMENT, _lib.MN_ERR_IO, _lib.MN_ERR_FORMAT
_INT16_MAX = np.iinfo(np.int16).max


def _error(message, status=_INVALID):
    return matchnet.Error(status, "matchnet.hloc: " + message)


def _need_h5py():
    if h5py is None:
        raise _error("needs h5py (Debian: apt-get install python3-h5py)", _lib.MN_ERR_UNSUPPORTED)


@contextlib.contextmanager
def _open_h5(path, what):
    """An existing HDF5 file opened for reading, with errors that name it."""
    _need_h5py()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise _error("%s %s %s" % (what, path, "is not a file" if os.path.exists(path) else "does not exist"), _IO)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise _error("%s %s is not a readable HDF5 file (%s)" % (what, path, e), _FORMAT) from None
    with f:
        yield f


# ---- names, as hloc's parsers.py and io.py make and find them ----

def names_to_pair(name0, name1, separator="/"):
    """The match file's group name of a pair (hloc's names_to_pair): the two
    image names with "/" inside each replaced by "-", joined by separator."""
    return separator.join((name0.replace("/", "-"), name1.replace("/", "-")))


def names_to_pair_old(name0, name1):
    """The older group name of a pair, joined by "_" (hloc's names_to_pair_old)."""
    return names_to_pair(name0, name1, separator="_")


def find_pair(h5file, name0, name1):
    """(group name, reversed) of a pair in an open match file, tried in
    hloc's order: name0/name1, name1/name0 (reversed), name0_name1,
    name1_name0 (reversed). Raises Error when none is there."""
    for pair, rev in ((names_to_pair(name0, name1), False), (names_to_pair(name1, name0), True),
                      (names_to_pair_old(name0, name1), False), (names_to_pair_old(name1, name0), True)):
        if pair in h5file:
            return pair, rev
    raise _error("pair (%r, %r) is not in %s (matched with another pairs list?)"
                 % (name0, name1, h5file.filename), _FORMAT)


def list_names(path):
    """The names an hloc file holds (hloc's list_h5_names): every group
    that holds a dataset, by its path without the leading "/" - image names
    in a feature file, pair names in a match file. Sorted."""
    names = set()
    with _open_h5(path, "file") as f:
        def visit(_, obj):
            if isinstance(obj, h5py.Dataset):
                names.add(obj.parent.name.strip("/"))
        f.visititems(visit)
    return sorted(names)


def list_images(image_dir):
    """Image names under image_dir as hloc's extract_features finds them:
    files matching IMAGE_GLOBS in it or any folder below (hidden ones
    excepted, as glob does), as paths relative to image_dir with "/"
    separators, sorted."""
    root = os.fspath(image_dir)
    if not os.path.isdir(root):
        raise _error("image folder %s does not exist" % root, _IO)
    found = set()
    for pattern in IMAGE_GLOBS:
        found.update(glob.glob(os.path.join(glob.escape(root), "**", pattern), recursive=True))
    names = sorted(os.path.relpath(p, root).replace(os.sep, "/") for p in found if os.path.isfile(p))
    if not names:
        raise _error("no images (%s) in %s" % (" ".join(IMAGE_GLOBS), root), _IO)
    return names


# ---- pairs ----

def read_pairs(path):
    """The pairs of a pairs file: a list of (name0, name1) in file order.
    Lines are "name0 name1", split on whitespace; empty lines are skipped
    (hloc's parse_retrieval); any other line is an error."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise _error("cannot read pairs file %s: %s" % (path, e.strerror or e), _IO) from None
    except UnicodeDecodeError:
        raise _error("pairs file %s is not UTF-8 text" % path, _FORMAT) from None
    pairs = []
    for number, line in enumerate(text.split("\n"), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise _error("%s line %d: expected \"name0 name1\", got %r" % (path, number, line.strip()), _FORMAT)
        pairs.append((fields[0], fields[1]))
    return pairs


def exhaustive_pairs(names):
    """Every pair of distinct names once, (names[i], names[j]) for i < j:
    the order of hloc's pairs_from_exhaustive for one list."""
    names = list(names)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]


def write_pairs(path, pairs):
    """Write a pairs file ("name0 name1" lines), replacing path in one
    rename. Names must be non-empty and free of whitespace."""
    lines = []
    for a, b in pairs:
        for n in (a, b):
            if not n or len(n.split()) != 1 or n != n.strip():
                raise _error("image name %r cannot go into a pairs file (empty or with whitespace)" % (n,))
        lines.append("%s %s\n" % (a, b))
    with _replacement(path) as f:
        f.write("".join(lines).encode("utf-8"))


# ---- replacing a file in one rename ----

class _NewFile:
    """The next version of a file, written beside it (same file system) and
    renamed over it by publish(); discard() drops it."""

    def __init__(self, target):
        self.target = os.path.abspath(os.fspath(target))
        self.folder = os.path.dirname(self.target)
        if not os.path.isdir(self.folder):
            raise _error("cannot write %s: folder %s does not exist" % (target, self.folder), _IO)
        if os.path.isdir(self.target):
            raise _error("cannot write %s: it is a folder" % target, _IO)
        self.name = None  # set while the file has a name
        try:
            # Unnamed until published: a killed process leaves nothing.
            fd = os.open(self.folder, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o666)
        except (AttributeError, OSError):
            fd, self.name = self._named()
        self.file = os.fdopen(fd, "w+b")

    def _named(self):
        try:
            return tempfile.mkstemp(dir=self.folder, prefix=".matchnet-hloc-", suffix=".partial")
        except OSError as e:
            raise _error("cannot write in %s: %s" % (self.folder, e.strerror or e), _IO) from None

    def publish(self):
        f = self.file
        f.flush()
        try:
            mode = stat.S_IMODE(os.stat(self.target).st_mode)
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(f.fileno(), mode)
        os.fsync(f.fileno())
        if self.name is None:
            self._link()
        os.replace(self.name, self.target)
        self.name = None
        with contextlib.suppress(OSError):
            dfd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def _link(self):
        """Give the unnamed file a (hidden, temporary) name to rename."""
        dfd = os.open(self.folder, os.O_RDONLY)
        try:
            for _ in range(100):
                name = os.path.join(self.folder, ".matchnet-hloc-%d-%s.partial"
                                    % (os.getpid(), os.urandom(4).hex()))
                try:
                    # src_dir_fd makes os.link use linkat(AT_SYMLINK_FOLLOW),
                    # which links the file /proc/self/fd/N stands for.
                    os.link("/proc/self/fd/%d" % self.file.fileno(), name, src_dir_fd=dfd,
                            follow_symlinks=True)
                    self.name = name
                    return
                except FileExistsError:
                    continue
                except OSError:
                    break  # no /proc: copy it into a named file instead
        finally:
            os.close(dfd)
        fd, self.name = self._named()
        with os.fdopen(fd, "wb") as out:
            self.file.seek(0)
            shutil.copyfileobj(self.file, out, 1 << 20)
            out.flush()
            os.fchmod(out.fileno(), os.fstat(self.file.fileno()).st_mode & 0o7777)
            os.fsync(out.fileno())

    def discard(self):
        with contextlib.suppress(OSError):
            self.file.close()
        if self.name is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.name)
            self.name = None


@contextlib.contextmanager
def _replacement(path):
    """A binary file object whose content replaces path when the block ends
    without an exception; path is untouched otherwise."""
    new = _NewFile(path)
    try:
        yield new.file
        new.publish()
    finally:
        new.discard()


@contextlib.contextmanager
def _h5_replacement(path):
    """An h5py.File holding a copy of path's HDF5 content (empty if there is
    no such file) that replaces path when the block ends without an
    exception; path is untouched otherwise."""
    _need_h5py()
    path = os.fspath(path)
    new = _NewFile(path)
    try:
        mode = "w"
        if os.path.exists(path):
            try:
                with open(path, "rb") as old:
                    shutil.copyfileobj(old, new.file, 1 << 20)
            except OSError as e:
                raise _error("cannot read %s: %s" % (path, e.strerror or e), _IO) from None
            new.file.seek(0)
            mode = "r+"
        try:
            h5 = h5py.File(new.file, mode, libver="latest")
        except OSError as e:
            raise _error("%s is not a readable HDF5 file (%s)" % (path, e), _FORMAT) from None
        with h5:
            yield h5
        new.publish()
    finally:
        new.discard()


# ---- features ----

def _keypoint_columns(keypoints):
    """keypoints (N x 2 or N x 4 array, or cv2.KeyPoint objects) -> N x 2 or N x 4 float32."""
    if isinstance(keypoints, np.ndarray) and keypoints.ndim == 2 and keypoints.shape[1] in (2, 4):
        return np.ascontiguousarray(keypoints, np.float32)
    if isinstance(keypoints, np.ndarray) and keypoints.size == 0:
        return np.empty((0, 2), np.float32)
    try:
        rows = [(k.pt[0], k.pt[1], k.size, k.angle) for k in keypoints]
    except (AttributeError, TypeError, IndexError):
        raise _error("keypoints must be an N x 2 (x, y) or N x 4 (x, y, size, angle) array or cv2.KeyPoint "
                     "objects") from None
    return np.array(rows, np.float32).reshape(-1, 4)


def _write_image(h5, name, keypoints, descriptors, image_size, scores=None, uncertainty=1.0, as_half=True):
    """One image's group (replaced if there), in hloc's layout."""
    kp = _keypoint_columns(keypoints)
    n = len(kp)
    d = np.asarray(descriptors)
    if d.ndim != 2 or d.shape[0] != n or d.dtype.kind != "f":
        raise _error("%s: descriptors must be %d x D floats (one row per keypoint), got %s %s"
                     % (name, n, "x".join(map(str, d.shape)), d.dtype))
    half = np.float16 if as_half else np.float32
    scores = np.zeros(n, np.float32) if scores is None else np.asarray(scores, np.float32).reshape(-1)
    if len(scores) != n:
        raise _error("%s: %d scores for %d keypoints" % (name, len(scores), n))
    w, h = (int(v) for v in image_size)
    if name in h5:
        del h5[name]
    g = h5.create_group(name)
    g.create_dataset("keypoints", data=kp[:, :2])
    g["keypoints"].attrs["uncertainty"] = np.float32(uncertainty)
    g.create_dataset("descriptors", data=np.ascontiguousarray(d.T, half))
    g.create_dataset("scores", data=scores.astype(half))
    if kp.shape[1] == 4:
        g.create_dataset("scales", data=kp[:, 2] / np.float32(2))
        g.create_dataset("oris", data=kp[:, 3])
    g.create_dataset("image_size", data=np.array([w, h], np.int64))


def write_features(path, features, as_half=True):
    """Add images to an hloc feature file (created if missing), replacing
    those already there, in one rename (see the module's notes).

    features: {name: {"keypoints": N x 2 (x, y) or N x 4 (x, y, size,
    angle) array or cv2.KeyPoint objects, "descriptors": N x D array (rows,
    as MatchNet.compute returns them; stored D x N), "image_size": (width,
    height), optional "scores": N values}}. as_half stores descriptors and
    scores as float16 (hloc's default)."""
    with _h5_replacement(path) as h5:
        for name, feat in features.items():
            _write_image(h5, name, feat["keypoints"], feat["descriptors"], feat["image_size"],
                         feat.get("scores"), as_half=as_half)


def _group(h5, name, path):
    if name not in h5 or not isinstance(h5[name], h5py.Group) or "keypoints" not in h5[name]:
        raise _error("image %r is not in %s" % (name, path), _FORMAT)
    return h5[name]


def _read_keypoints(g, name, path):
    kp = g["keypoints"][()]
    if kp.ndim != 2 or kp.shape[1] != 2 or kp.dtype.kind != "f":
        raise _error("%s: %r keypoints are %s %s, expected N x 2 floats"
                     % (path, name, "x".join(map(str, kp.shape)), kp.dtype), _FORMAT)
    return np.ascontiguousarray(kp, np.float32)


def read_keypoints(path, name):
    """An image's keypoints from an hloc feature file, as hloc's
    get_keypoints reads them: N x 2 (x, y) in OpenCV's pixel convention,
    here always float32 (float16 files widen exactly)."""
    with _open_h5(path, "feature file") as h5:
        return _read_keypoints(_group(h5, name, path), name, path)


def _read_descriptors(g, name, path, n, dim=None):
    if "descriptors" not in g:
        raise _error("%s: %r has no descriptors" % (path, name), _FORMAT)
    d = g["descriptors"][()]
    if d.ndim != 2 or d.shape[1] != n or d.dtype.kind != "f":
        raise _error("%s: %r descriptors are %s %s, expected D x %d floats (one column per keypoint)"
                     % (path, name, "x".join(map(str, d.shape)), d.dtype, n), _FORMAT)
    if dim is not None and d.shape[0] != dim:
        raise _error("%s: %r descriptors have %d dimensions; this model's have %d (another extractor's file?)"
                     % (path, name, d.shape[0], dim), _FORMAT)
    # Matching needs float32 rows; float16 widens exactly.
    return np.ascontiguousarray(d.T, np.float32)


def read_features(path, name):
    """One image of an hloc feature file as a dict: "keypoints" N x 2
    float32, "descriptors" N x D float32 (rows, transposed back from the
    file's D x N, float16 widened), "scores" N float32 or None,
    "image_size" (width, height) or None, "scales" and "oris" N float32 or
    None, "uncertainty" (the keypoints' attribute) or None."""
    with _open_h5(path, "feature file") as h5:
        g = _group(h5, name, path)
        kp = _read_keypoints(g, name, path)
        out = {"keypoints": kp, "descriptors": _read_descriptors(g, name, path, len(kp))}
        for key in ("scores", "scales", "oris"):
            out[key] = np.asarray(g[key][()], np.float32).reshape(-1) if key in g else None
        out["image_size"] = tuple(int(v) for v in g["image_size"][()]) if "image_size" in g else None
        u = g["keypoints"].attrs.get("uncertainty")
        out["uncertainty"] = None if u is None else float(u)
    return out


# ---- global descriptors ----

def read_codebook(path):
    """The k x d float32 words of a codebook file of matchnet-colmap
    (--codebook-out; layout in apps/colmap_retrieval.h: "MNCODEBK", uint32
    version 1, k, d, 0, then k x d float32, little-endian), checked as the
    program checks it."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise _error("cannot open codebook %s: %s" % (path, e.strerror or e), _IO) from None
    if len(raw) < 24 or raw[:8] != b"MNCODEBK":
        raise _error("codebook %s: not a codebook file (no MNCODEBK header)" % path, _FORMAT)
    version, k, d, _ = np.frombuffer(raw, "<u4", 4, 8)
    if version != 1:
        raise _error("codebook %s: version %d, this reads version 1" % (path, version), _FORMAT)
    if not (1 <= k <= 65536 and 1 <= d <= 65536) or len(raw) != 24 + 4 * int(k) * int(d):
        raise _error("codebook %s: %d words of %d floats need %d bytes, the file has %d"
                     % (path, k, d, 24 + 4 * int(k) * int(d), len(raw)), _FORMAT)
    words = np.frombuffer(raw, "<f4", int(k) * int(d), 24).reshape(int(k), int(d)).astype(np.float32)
    if not np.all(np.isfinite(words)):
        raise _error("codebook %s: holds a value that is not finite" % path, _FORMAT)
    return words


def _unit(v):
    n = np.sqrt(np.sum(v.astype(np.float64) ** 2, axis=-1, keepdims=True))
    return np.where(n > 0, v / np.where(n > 0, n, 1), 0)


def vlad(descriptors, words):
    """The VLAD vector of descriptors (N x d) over words (k x d), as
    apps/colmap_retrieval.c's retrieval_vlad() defines it: each
    descriptor's residual to its nearest word (the first of equals) summed
    per word; a signed square root of every value; each word's block, then
    the whole, scaled to unit length (zero where empty). k*d float32."""
    x = np.asarray(descriptors, np.float32).reshape(-1, words.shape[1])
    k, d = words.shape
    out = np.zeros((k, d), np.float64)
    for start in range(0, len(x), 1024):  # N x k x d at once would be gigabytes
        chunk = x[start:start + 1024]
        nearest = np.argmin(((chunk[:, None, :] - words[None, :, :]) ** 2).sum(-1), axis=1)
        np.add.at(out, nearest, chunk - words[nearest])
    out = np.sign(out) * np.sqrt(np.abs(out))
    out = _unit(out)
    return _unit(out.reshape(-1)).astype(np.float32)


def write_global(features_path, global_path, words, as_half=True):
    """Write a global descriptor file (see the module's notes) for every
    image of an hloc feature file; returns how many."""
    names = list_names(features_path)
    out = {}
    with _open_h5(features_path, "feature file") as h5:
        for name in names:
            g = _group(h5, name, features_path)
            n = len(_read_keypoints(g, name, features_path))
            out[name] = vlad(_read_descriptors(g, name, features_path, n, dim=words.shape[1]), words)
    with _h5_replacement(global_path) as h5:
        for name, v in out.items():
            if name in h5:
                del h5[name]
            h5.create_group(name).create_dataset("global_descriptor", data=v.astype(np.float16 if as_half
                                                                                    else np.float32))
    return len(out)


# ---- matches ----

def _write_pair(h5, name0, name1, matches0, scores0, replace_all=False):
    """One pair's group, under names_to_pair(name0, name1)."""
    if replace_all:
        for other in {names_to_pair(name0, name1), names_to_pair(name1, name0), names_to_pair_old(name0, name1),
                      names_to_pair_old(name1, name0)}:
            if other in h5:
                del h5[other]
    pair = names_to_pair(name0, name1)
    if pair in h5:
        del h5[pair]
    m = np.asarray(matches0).reshape(-1)
    s = np.asarray(scores0, np.float32).reshape(-1)
    if m.dtype.kind not in "iu" or len(s) != len(m) or (len(m) and m.min() < -1):
        raise _error("pair (%r, %r): matches0 must be integers >= -1 and scores0 as many floats" % (name0, name1))
    # hloc writes int16 (torch .short()); wider only where int16 would wrap.
    dtype = np.int16 if not len(m) or m.max() <= _INT16_MAX else np.int32
    g = h5.create_group(pair)
    g.create_dataset("matches0", data=m.astype(dtype))
    g.create_dataset("matching_scores0", data=s.astype(np.float16))


def write_matches(path, matches):
    """Add pairs to an hloc match file (created if missing) in one rename,
    replacing each pair under any of its four names.

    matches: {(name0, name1): (matches0, scores0)}: matches0 has one entry
    per keypoint of name0, the index of its match among name1's keypoints
    or -1; scores0 as many scores (0 where there is no match)."""
    with _h5_replacement(path) as h5:
        for (a, b), (m, s) in matches.items():
            _write_pair(h5, a, b, m, s, replace_all=True)


def read_matches(path, name0, name1):
    """The matches of a pair as hloc's get_matches returns them: (M x 2
    array of (index in name0, index in name1), M scores), found under
    either order or the old names (find_pair) and flipped when stored the
    other way round. Scores are float32."""
    with _open_h5(path, "match file") as h5:
        pair, rev = find_pair(h5, name0, name1)
        m = h5[pair]["matches0"][()]
        s = h5[pair]["matching_scores0"][()]
    idx = np.nonzero(m != -1)[0]
    pairs = np.stack([idx, m[idx].astype(np.int64)], -1)
    if rev:
        pairs = pairs[:, ::-1]
    return np.ascontiguousarray(pairs), np.asarray(s[idx], np.float32)


# ---- extract ----

def _say(progress, message):
    if progress is not None:
        progress(message)


def _check_existing_dim(h5, names, dim, path):
    """Refuse to add MatchNet descriptors to a file of other descriptors."""
    for name in names:
        g = h5.get(name)
        if isinstance(g, h5py.Group) and "descriptors" in g:
            d = g["descriptors"]
            if d.ndim == 2 and d.shape[0] != dim:
                raise _error("%s holds %d-dimensional descriptors (%r); this model's have %d: write to another file"
                             % (path, d.shape[0], name, dim), _FORMAT)
            return


def _other_keypoints(h5, name, path, image_size, keypoint_size):
    """(N x 4 keypoints, scores or None, uncertainty or None) of one image of another feature file."""
    g = _group(h5, name, path)
    kp = _read_keypoints(g, name, path)
    n = len(kp)
    if not np.isfinite(kp).all():
        raise _error("%s: %r has non-finite keypoints" % (path, name), _FORMAT)
    if "image_size" in g:
        size = tuple(int(v) for v in g["image_size"][()])
        if size != tuple(image_size):
            raise _error("%s: %r was %d x %d px there, the image is %d x %d px (keypoints of a resized copy?)"
                         % (path, name, size[0], size[1], image_size[0], image_size[1]), _FORMAT)
    arr = np.empty((n, 4), np.float32)
    arr[:, :2] = kp
    if "scales" in g and "oris" in g and g["scales"].shape == (n,) and g["oris"].shape == (n,):
        # hloc's DoG layout: scale = SIFT sigma (px), ori in degrees.
        scales = np.asarray(g["scales"][()], np.float32)
        oris = np.asarray(g["oris"][()], np.float32)
        if not (np.isfinite(scales).all() and np.isfinite(oris).all() and (scales > 0).all()):
            raise _error("%s: %r has scales <= 0 or non-finite scales or oris" % (path, name), _FORMAT)
        arr[:, 2] = scales * np.float32(2)
        arr[:, 3] = np.mod(oris, np.float32(360))
    else:
        arr[:, 2] = keypoint_size
        arr[:, 3] = 0
    scores = None
    if "scores" in g and g["scores"].shape == (n,):
        scores = np.asarray(g["scores"][()], np.float32)
    u = g["keypoints"].attrs.get("uncertainty")
    return arr, scores, (None if u is None else float(u))


def extract(image_dir, features_path, max_keypoints=8000, keypoints_from=None, keypoint_size=DEFAULT_KEYPOINT_SIZE,
            model=None, detector="sift", upright=False, as_half=True, overwrite=False, num_threads=0, progress=None):
    """Describe the images of image_dir with MatchNet into an hloc feature
    file, as hloc's extract_features.main(conf, image_dir,
    feature_path=features_path, as_half=..., overwrite=...) does for its
    extractors. Returns {"images": written, "skipped": already there,
    "keypoints": total written}.

    Images: list_images(image_dir) (hloc's globs), decoded by
    matchnet.load_image. Keypoints: the library's detector (MatchNet.detect:
    detector, max_keypoints strongest), or with keypoints_from the keypoints
    that another hloc feature file holds for the same image name - all of
    them, in its order, unshifted (both files use OpenCV's pixel
    convention), with its scores and uncertainty; their size and angle come
    from its scales and oris when it has both (hloc's DoG layout: size =
    2 x scale, angle = ori in degrees), else size keypoint_size px and
    angle 0. Descriptors: MatchNet.compute on those keypoints (model,
    upright, num_threads as MatchNet takes them).

    Names already in features_path are skipped unless overwrite (hloc's
    rule); the file is replaced in one rename at the end (see the module's
    notes). progress: None or a function called with one line per image.
    Raises matchnet.Error.
    """
    _need_h5py()
    features_path = os.fspath(features_path)
    names = list_images(image_dir)
    existing = set(list_names(features_path)) if os.path.exists(features_path) else set()
    todo = [n for n in names if overwrite or n not in existing]
    skipped = len(names) - len(todo)
    if not todo:
        _say(progress, "all %d images are already in %s" % (len(names), features_path))
        return {"images": 0, "skipped": skipped, "keypoints": 0}
    if keypoint_size is None or not (np.isfinite(keypoint_size) and keypoint_size > 0):
        raise _error("keypoint size must be a finite value > 0 px, got %r" % (keypoint_size,))
    net = matchnet.MatchNet(model=model, max_keypoints=max_keypoints, detector=detector, upright=upright,
                            num_threads=num_threads)
    dim = net.descriptorSize()
    with contextlib.ExitStack() as stack:
        other = None
        if keypoints_from is not None:
            other = stack.enter_context(_open_h5(keypoints_from, "keypoint file"))
            missing = [n for n in todo if n not in other]
            if missing:
                raise _error("%d of the images are not in %s, e.g. %r" % (len(missing), keypoints_from, missing[0]),
                             _FORMAT)
        out = stack.enter_context(_h5_replacement(features_path))
        _check_existing_dim(out, sorted(existing), dim, features_path)
        total = 0
        for i, name in enumerate(todo, 1):
            grey = matchnet.load_image(os.path.join(os.fspath(image_dir), *name.split("/")))
            image_size = (grey.shape[1], grey.shape[0])
            scores = None
            uncertainty = 1.0
            if other is None:
                kp, desc = net.detectAndCompute(grey)
                kp = np.array([(k.pt[0], k.pt[1], k.size, k.angle) for k in kp], np.float32).reshape(-1, 4)
            else:
                kp, scores, u = _other_keypoints(other, name, keypoints_from, image_size, keypoint_size)
                uncertainty = 1.0 if u is None else u
                kept, desc = net.compute(grey, kp)
                if len(kept) != len(kp):  # cannot happen: every keypoint was checked
                    raise _error("%r: %d of %d keypoints could not be described" % (name, len(kp) - len(kept),
                                                                                      len(kp)))
            _write_image(out, name, kp, desc, image_size, scores, uncertainty, as_half)
            total += len(kp)
            _say(progress, "[%d/%d] %s: %d keypoints" % (i, len(todo), name, len(kp)))
    return {"images": len(todo), "skipped": skipped, "keypoints": total}


# ---- match ----

class _Descriptors:
    """Descriptors of a feature file by image name, the last few kept (a
    pairs list usually repeats its first name line after line)."""

    def __init__(self, h5, path, dim, capacity=16):
        self.h5, self.path, self.dim, self.capacity = h5, path, dim, capacity
        self.cache = collections.OrderedDict()

    def __getitem__(self, name):
        if name in self.cache:
            self.cache.move_to_end(name)
            return self.cache[name]
        g = _group(self.h5, name, self.path)
        n = g["keypoints"].shape[0]
        d = _read_descriptors(g, name, self.path, n, self.dim)
        self.cache[name] = d
        if len(self.cache) > self.capacity:
            self.cache.popitem(last=False)
        return d


def _unique_pairs(pairs):
    """Pairs in file order, each once whatever its order (hloc's find_unique_new_pairs keeps one of (a, b), (b, a))."""
    seen = set()
    out = []
    for a, b in pairs:
        if (a, b) in seen or (b, a) in seen:
            continue
        seen.add((a, b))
        out.append((a, b))
    return out


def match(pairs_path, features_path, matches_path, method="l2", model=None, overwrite=False, num_threads=0,
          progress=None):
    """Match the pairs of a pairs file with matchnet.Matcher into an hloc
    match file, as hloc's match_features.main(conf, pairs, features,
    matches=matches_path, overwrite=...) does. Returns {"pairs": written,
    "skipped": already there, "matches": total}.

    Each pair (name0, name1) once (also when listed both ways), descriptors
    from features_path (widened to float32), matched by
    Matcher(method).match_details (method "l2": nearest neighbour with
    Lowe's ratio test; "metric": the metric network; the presets of
    mn_match_params_preset). matches0 is the train index of each query's
    match, or -1; matching_scores0 the match probability. Pairs already in
    matches_path under any of their four names are skipped unless
    overwrite; the file is replaced in one rename at the end. Raises
    matchnet.Error.
    """
    _need_h5py()
    matches_path = os.fspath(matches_path)
    pairs = _unique_pairs(read_pairs(pairs_path))
    with _open_h5(features_path, "feature file") as feats:
        for a, b in pairs:
            for n in (a, b):
                if n not in feats:
                    raise _error("image %r of pairs file %s is not in %s" % (n, os.fspath(pairs_path),
                                                                            os.fspath(features_path)), _FORMAT)
        todo = pairs
        if not overwrite and os.path.exists(matches_path):
            with _open_h5(matches_path, "match file") as old:
                todo = [(a, b) for a, b in pairs
                        if not any(p in old for p in (names_to_pair(a, b), names_to_pair(b, a),
                                                      names_to_pair_old(a, b), names_to_pair_old(b, a)))]
        skipped = len(pairs) - len(todo)
        if not todo:
            _say(progress, "all %d pairs are already in %s" % (len(pairs), matches_path))
            return {"pairs": 0, "skipped": skipped, "matches": 0}
        matcher = matchnet.Matcher(method=method, model=model, num_threads=num_threads)
        desc = _Descriptors(feats, os.fspath(features_path), matcher.model.descriptor_dim)
        total = 0
        with _h5_replacement(matches_path) as out:
            for i, (a, b) in enumerate(todo, 1):
                d0, d1 = desc[a], desc[b]
                m = matcher.match_details(d0, d1)
                matches0 = np.full(len(d0), -1, np.int64)
                scores0 = np.zeros(len(d0), np.float32)
                matches0[m["query"]] = m["train"]
                scores0[m["query"]] = m["probability"]
                _write_pair(out, a, b, matches0, scores0, replace_all=overwrite)
                total += len(m)
                _say(progress, "[%d/%d] %s %s: %d matches" % (i, len(todo), a, b, len(m)))
    return {"pairs": len(todo), "skipped": skipped, "matches": total}


# ---- command line ----

def _parser():
    p = argparse.ArgumentParser(
        prog="python3 -m matchnet.hloc",
        description="MatchNet features and matches in hloc's (Hierarchical-Localization) HDF5 files.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{extract,pairs,match,global}")

    e = sub.add_parser("extract", help="describe the images of a folder into a feature file",
                       description="Detect and describe every image under IMAGE_DIR (hloc's globs: %s) into "
                                   "FEATURES.h5, one group per name relative to IMAGE_DIR. Names already there are "
                                   "skipped unless --overwrite." % " ".join(IMAGE_GLOBS))
    e.add_argument("image_dir", metavar="IMAGE_DIR")
    e.add_argument("features", metavar="FEATURES.h5")
    e.add_argument("--max-keypoints", type=int, default=None, metavar="N",
                   help="strongest keypoints per image (default 8000)")
    e.add_argument("--detector", choices=sorted(_lib.DETECTORS), default="sift", help="default sift")
    e.add_argument("--keypoints", metavar="OTHER.h5",
                   help="describe the keypoints another hloc feature file holds for each image instead of detecting")
    e.add_argument("--keypoint-size", type=float, default=DEFAULT_KEYPOINT_SIZE, metavar="PX",
                   help="with --keypoints: size of keypoints the file gives no scales for (default %g)"
                        % DEFAULT_KEYPOINT_SIZE)
    e.add_argument("--upright", action="store_true", help="ignore keypoint angles")
    e.add_argument("--no-half", action="store_true", help="store descriptors and scores as float32, not float16")
    e.add_argument("--overwrite", action="store_true", help="describe again images already in FEATURES.h5")
    e.add_argument("--model", metavar="PATH", help=".mnw model (default: the installed model)")
    e.add_argument("--threads", type=int, default=0, metavar="N", help="library threads (default: all cores)")

    q = sub.add_parser("pairs", help="write every pair of the images of a feature file",
                       description="Write PAIRS.txt with every pair of distinct images of FEATURES.h5 once "
                                   "(sorted names; hloc's pairs_from_exhaustive).")
    q.add_argument("features", metavar="FEATURES.h5")
    q.add_argument("pairs", metavar="PAIRS.txt")

    m = sub.add_parser("match", help="match the pairs of a pairs file into a match file",
                       description="Match each pair of PAIRS.txt (\"name0 name1\" lines) with the descriptors of "
                                   "FEATURES.h5 into MATCHES.h5. Pairs already there are skipped unless --overwrite.")
    m.add_argument("pairs", metavar="PAIRS.txt")
    m.add_argument("features", metavar="FEATURES.h5")
    m.add_argument("matches", metavar="MATCHES.h5")
    m.add_argument("--method", choices=sorted(_lib.MATCH_METHODS), default="l2",
                   help="l2: nearest neighbour and ratio test (default); metric: the metric network")
    m.add_argument("--overwrite", action="store_true", help="match again pairs already in MATCHES.h5")
    m.add_argument("--model", metavar="PATH", help=".mnw model (default: the installed model)")
    m.add_argument("--threads", type=int, default=0, metavar="N", help="library threads (default: all cores)")
    _add_global_parser(sub)
    return p


def _add_global_parser(sub):
    g = sub.add_parser("global", help="VLAD global descriptors of a feature file's images, for hloc's retrieval",
                       description="Write GLOBAL.h5 with a \"global_descriptor\" for every image of FEATURES.h5: "
                                   "the VLAD vector of its descriptors over CODEBOOK.bin, as matchnet-colmap's "
                                   "--pairs retrieval:K makes it (matchnet-colmap --codebook-out saves a codebook). "
                                   "Images already there are replaced.")
    g.add_argument("features", metavar="FEATURES.h5")
    g.add_argument("global_out", metavar="GLOBAL.h5")
    g.add_argument("--codebook", required=True, metavar="CODEBOOK.bin", help="matchnet-colmap --codebook-out's file")
    g.add_argument("--no-half", action="store_true", help="store float32, not float16")


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    """The command line (see the module's docstring). Returns the exit
    status: 0, 1 for an error (one line on stderr), 2 for a usage error,
    130 when interrupted."""
    p = _parser()
    args = p.parse_args(argv)
    if getattr(args, "threads", 0) < 0:
        p.error("--threads must be 0 or more")
    # SIGTERM unwinds like an error: a named temporary file is removed.
    signal.signal(signal.SIGTERM, _sigterm)

    def progress(line):
        print("matchnet.hloc %s: %s" % (args.command, line), file=sys.stderr, flush=True)

    try:
        if args.command == "extract":
            if args.keypoints is not None and args.max_keypoints is not None:
                p.error("--max-keypoints applies to detected keypoints, not to --keypoints")
            if args.max_keypoints is not None and args.max_keypoints < 1:
                p.error("--max-keypoints must be 1 or more")
            r = extract(args.image_dir, args.features, max_keypoints=args.max_keypoints or 8000,
                        keypoints_from=args.keypoints, keypoint_size=args.keypoint_size, model=args.model,
                        detector=args.detector, upright=args.upright, as_half=not args.no_half,
                        overwrite=args.overwrite, num_threads=args.threads, progress=progress)
            progress("%d images written (%d keypoints), %d already there" % (r["images"], r["keypoints"],
                                                                             r["skipped"]))
        elif args.command == "global":
            n = write_global(args.features, args.global_out, read_codebook(args.codebook), as_half=not args.no_half)
            progress("%d global descriptors written" % n)
        elif args.command == "pairs":
            names = list_names(args.features)
            pairs = exhaustive_pairs(names)
            write_pairs(args.pairs, pairs)
            progress("%d pairs of %d images" % (len(pairs), len(names)))
        else:
            r = match(args.pairs, args.features, args.matches, method=args.method, model=args.model,
                      overwrite=args.overwrite, num_threads=args.threads, progress=progress)
            progress("%d pairs written (%d matches), %d already there" % (r["pairs"], r["matches"], r["skipped"]))
    except matchnet.Error as e:
        msg = str(e)
        print("matchnet.hloc %s: error: %s" % (args.command, msg[len("matchnet.hloc: "):]
                                               if msg.startswith("matchnet.hloc: ") else msg),
              file=sys.stderr)
        return 1
    except OSError as e:  # e.g. a full disk while writing
        print("matchnet.hloc %s: error: %s" % (args.command, e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("matchnet.hloc %s: interrupted; output files left as they were" % args.command, file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
