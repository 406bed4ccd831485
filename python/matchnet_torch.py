"""MatchNet in PyTorch, and the writer for libmatchnet's model files (.mnw).

This module is the independent implementation the C engine is tested
against, and the bridge from trained PyTorch weights to the C library.
Run with Debian's interpreter: /usr/bin/python3 (python3-torch).

Architectures (see models/README.md):
  original   - the CVPR 2015 release: Caffe (ceil) pooling, 64->32->16->8,
               4096-D feature, metric 8192->1024->1024->2
  pytorch    - the widely copied PyTorch reproduction: floor pooling,
               64->31->15->7, 3136-D feature, metric 6272->1024->1024->2,
               orthogonal init (gain 0.6), bias 0.01
  bottleneck - Caffe pooling plus a bottleneck fc of B dims after the tower
               (optionally L2-normalised), metric 2B->F->F->2
"""
import struct
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

MAGIC = b"MATCHNET"
FORMAT_VERSION = 1
LAYER_CONV, LAYER_MAXPOOL, LAYER_FC, LAYER_L2NORM = 1, 2, 3, 4
DTYPE_F32, DTYPE_F16 = 0, 1


def tower_spec(ceil_mode, bottleneck=0, bottleneck_relu=False, l2norm=False):
    """Tower layer list: tuples (kind, params...) in execution order."""
    spec = [
        ("conv", 24, 7, 1, 3, True), ("pool", 3, 2, ceil_mode),
        ("conv", 64, 5, 1, 2, True), ("pool", 3, 2, ceil_mode),
        ("conv", 96, 3, 1, 1, True),
        ("conv", 96, 3, 1, 1, True),
        ("conv", 64, 3, 1, 1, True), ("pool", 3, 2, ceil_mode),
    ]
    if bottleneck:
        spec.append(("fc", bottleneck, bottleneck_relu))
    if l2norm:
        spec.append(("l2norm",))
    return spec


class L2Norm(nn.Module):
    def forward(self, x):
        return F.normalize(x, p=2, dim=1, eps=1e-12)


class Tower(nn.Module):
    """Feature tower built from a spec; input N x 1 x P x P, already normalised."""

    def __init__(self, spec, patch=64):
        super().__init__()
        self.spec = spec
        layers, c, h, flat = [], 1, patch, False
        for item in spec:
            kind = item[0]
            if kind == "conv":
                _, out, k, s, p, relu = item
                layers.append(nn.Conv2d(c, out, k, stride=s, padding=p))
                if relu:
                    layers.append(nn.ReLU())
                c, h = out, (h + 2 * p - k) // s + 1
            elif kind == "pool":
                _, k, s, ceil = item
                layers.append(nn.MaxPool2d(k, s, ceil_mode=bool(ceil)))
                h = pool_out(h, k, s, ceil)
            elif kind == "fc":
                _, out, relu = item
                if not flat:
                    layers.append(nn.Flatten())
                    flat = True
                layers.append(nn.Linear(c * h * h, out))
                if relu:
                    layers.append(nn.ReLU())
                c, h = out, 1
            elif kind == "l2norm":
                if not flat:
                    layers.append(nn.Flatten())
                    flat = True
                layers.append(L2Norm())
        if not flat:
            layers.append(nn.Flatten())
        self.net = nn.Sequential(*layers)
        self.feature_dim = c * h * h

    def forward(self, x):
        return self.net(x)


class Metric(nn.Module):
    """Metric network on [fa, fb]: fc-ReLU-...-fc(2); returns logits."""

    def __init__(self, desc_dim, widths=(1024, 1024)):
        super().__init__()
        dims = [2 * desc_dim] + list(widths) + [2]
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, fa, fb):
        x = torch.cat([fa, fb], dim=1)
        for i, fc in enumerate(self.fcs):
            x = fc(x)
            if i + 1 < len(self.fcs):
                x = F.relu(x)
        return x


class MatchNet(nn.Module):
    def __init__(self, arch="original", bottleneck=256, metric_width=512, l2norm=False,
                 bottleneck_relu=False, patch=64, mean=128.0, divisor=160.0, name=None):
        super().__init__()
        if arch == "original":
            spec, widths = tower_spec(True), (1024, 1024)
        elif arch == "pytorch":
            spec, widths = tower_spec(False), (1024, 1024)
        elif arch == "bottleneck":
            spec = tower_spec(True, bottleneck, bottleneck_relu, l2norm)
            widths = (metric_width, metric_width)
        else:
            raise ValueError("unknown architecture %r" % arch)
        self.arch, self.patch, self.mean, self.divisor = arch, patch, mean, divisor
        self.name = name or "matchnet-" + arch
        self.tower = Tower(spec, patch)
        self.metric = Metric(self.tower.feature_dim, widths)

    def normalize(self, pixels):
        """uint8 or float pixels N x P x P (0..255) -> N x 1 x P x P network input."""
        return ((pixels.float() - self.mean) / self.divisor).unsqueeze(1)

    def describe(self, pixels):
        return self.tower(self.normalize(pixels))

    def match_prob(self, da, db):
        return torch.softmax(self.metric(da, db), dim=1)[:, 1]


def pool_out(n, k, s, ceil):
    span = n - k
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= n:
        out -= 1
    return out


def init_weights(model, scheme, gain=0.6, bias=0.01):
    """'orthogonal': orthogonal(gain), constant bias (the PyTorch reproduction);
    'kaiming': He normal for ReLU layers, small constant bias."""
    for mod in model.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            if scheme == "orthogonal":
                nn.init.orthogonal_(mod.weight, gain=gain)
            else:
                nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            nn.init.constant_(mod.bias, bias)


# ---- .mnw writer (layout: src/model_io.c, models/README.md) ----

def _layer_records(model):
    recs, tensors = [], []
    mods = [m for m in model.tower.net if isinstance(m, (nn.Conv2d, nn.Linear))]
    mi = 0
    for item in model.tower.spec:
        kind = item[0]
        if kind == "conv":
            _, out, k, s, p, relu = item
            recs.append((LAYER_CONV, out, k, s, p, int(relu)))
            tensors.append(mods[mi]); mi += 1
        elif kind == "pool":
            _, k, s, ceil = item
            recs.append((LAYER_MAXPOOL, k, s, 0, int(ceil)))
        elif kind == "fc":
            _, out, relu = item
            recs.append((LAYER_FC, out, int(relu)))
            tensors.append(mods[mi]); mi += 1
        elif kind == "l2norm":
            recs.append((LAYER_L2NORM,))
    metric = []
    for i, fc in enumerate(model.metric.fcs):
        metric.append((LAYER_FC, fc.out_features, int(i + 1 < len(model.metric.fcs))))
        tensors.append(fc)
    return recs, metric, tensors


def mnw_bytes(model, fp16=False):
    """Serialise a MatchNet model to the .mnw format (bytes)."""
    recs, metric, mods = _layer_records(model)
    tensors = []
    for m in mods:
        tensors.append(("weight", m.weight.detach().cpu().float()))
        tensors.append(("bias", m.bias.detach().cpu().float()))
    nt = len(tensors)
    header = 128 + 32 * (len(recs) + len(metric)) + 64 * nt
    header = (header + 63) // 64 * 64
    dtype = DTYPE_F16 if fp16 else DTYPE_F32
    esize = 2 if fp16 else 4
    datas, offsets, off = [], [], header
    for _, t in tensors:
        arr = t.contiguous().numpy().astype("<f2" if fp16 else "<f4").tobytes()
        offsets.append(off)
        datas.append(arr)
        off += len(arr)
        off = (off + 63) // 64 * 64
    file_size = off + 4
    name = model.name.encode("utf-8")[:63]
    out = bytearray()
    out += MAGIC + struct.pack("<IIQIIII", FORMAT_VERSION, header, file_size, len(recs), len(metric), nt, 0)
    out += name + b"\0" * (64 - len(name))
    out += struct.pack("<IIffQ", 1, model.patch, model.mean, model.divisor, 0)
    assert len(out) == 128
    for r in recs + metric:
        vals = list(r) + [0] * (8 - len(r))
        out += struct.pack("<8I", *vals)
    for (kind, t), o, d in zip(tensors, offsets, datas):
        dims = list(t.shape) + [0] * (4 - t.dim())
        out += kind.encode().ljust(24, b"\0")
        out += struct.pack("<II4IQQ", dtype, t.dim(), *dims, o, len(d))
    out += b"\0" * (header - len(out))
    for o, d in zip(offsets, datas):
        out += b"\0" * (o - len(out))
        out += d
    out += b"\0" * (file_size - 4 - len(out))
    out += struct.pack("<I", zlib.crc32(bytes(out)) & 0xFFFFFFFF)
    return bytes(out)


def round_to_fp16(model):
    """Round all weights to float16 values in place (so PyTorch computes with
    exactly the weights an fp16 .mnw file carries)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


# ---- .mnw reader (for the benchmark and round-trip checks) ----

def load_mnw(path):
    """Read a .mnw file into a MatchNet module (tower spec and weights from
    the file). Checks magic, version, size and checksum."""
    import numpy as np
    data = open(path, "rb").read()
    if data[:8] != MAGIC:
        raise ValueError("%s: not a .mnw file" % path)
    version, header, size, nl, nm, nt, flags = struct.unpack_from("<IIQIIII", data, 8)
    if version != FORMAT_VERSION or size != len(data):
        raise ValueError("%s: version %d, size %d/%d" % (path, version, size, len(data)))
    if zlib.crc32(data[:-4]) & 0xFFFFFFFF != struct.unpack_from("<I", data, len(data) - 4)[0]:
        raise ValueError("%s: checksum mismatch" % path)
    name = data[40:104].split(b"\0")[0].decode()
    in_c, patch, mean, divisor = struct.unpack_from("<IIff", data, 104)
    recs = [struct.unpack_from("<8I", data, 128 + 32 * i) for i in range(nl + nm)]
    spec = []
    for r in recs[:nl]:
        if r[0] == LAYER_CONV:
            spec.append(("conv", r[1], r[2], r[3], r[4], bool(r[5])))
        elif r[0] == LAYER_MAXPOOL:
            spec.append(("pool", r[1], r[2], bool(r[4])))
        elif r[0] == LAYER_FC:
            spec.append(("fc", r[1], bool(r[2])))
        elif r[0] == LAYER_L2NORM:
            spec.append(("l2norm",))
    widths = [r[1] for r in recs[nl:]][:-1]
    model = MatchNet("original", patch=patch, mean=mean, divisor=divisor, name=name)
    model.tower = Tower(spec, patch)
    model.metric = Metric(model.tower.feature_dim, widths)
    mods = [m for m in model.tower.net if isinstance(m, (nn.Conv2d, nn.Linear))] + list(model.metric.fcs)
    params = [p for m in mods for p in (m.weight, m.bias)]
    base = 128 + 32 * (nl + nm)
    with torch.no_grad():
        for t, p in enumerate(params):
            dtype, ndim = struct.unpack_from("<II", data, base + 64 * t + 24)
            off, nbytes = struct.unpack_from("<QQ", data, base + 64 * t + 48)
            arr = np.frombuffer(data, "<f2" if dtype == DTYPE_F16 else "<f4", nbytes // (2 if dtype else 4), off)
            p.copy_(torch.from_numpy(arr.astype(np.float32)).reshape(p.shape))
    model.eval()
    return model
