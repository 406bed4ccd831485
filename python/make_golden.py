#!/usr/bin/python3
"""Write the golden fixtures under tests/data/ from PyTorch (python3-torch).

For each architecture: a random-weight model (golden_<arch>.mnw) and
golden_<arch>.bin with inputs and PyTorch's outputs:

  offset  field
  0       magic "MNGOLDEN"
  8       u32 n patches, u32 patch size P, u32 descriptor dim D, u32 0
  24      n*P*P u8 patches
  ...     n*D f32 descriptors (PyTorch tower on the u8 patches)
  ...     n*n f32 match probabilities, [i*n + j] = P(match | a = patch i, b = patch j)

  /usr/bin/python3 python/make_golden.py tests/data
  /usr/bin/python3 python/make_golden.py tests/data models/matchnet.mnw   (golden_shipped.bin only)
"""
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from matchnet_torch import MatchNet, init_weights, mnw_bytes, round_to_fp16  # noqa: E402

N = 13  # not a multiple of any block size in the engine (chunks of 8, pairs of 128)


def patches(rng, n, p):
    """Textured patches: smooth random fields plus edges and noise, so that
    every layer sees structure rather than white noise."""
    out = np.empty((n, p, p), np.uint8)
    yy, xx = np.mgrid[0:p, 0:p].astype(np.float64)
    for i in range(n):
        img = np.zeros((p, p))
        for _ in range(6):
            fx, fy = rng.uniform(-0.4, 0.4, 2)
            img += rng.uniform(10, 60) * np.sin(fx * xx + fy * yy + rng.uniform(0, 6.3))
        img += 40 * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1) > rng.uniform(-30, 30))
        img += rng.normal(0, 8, (p, p)) + 128
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    if n > 1:
        out[1] = out[0]          # identical pair
        out[2] = 0               # black patch
    if n > 3:
        out[3] = 255             # saturated patch
    return out


@torch.no_grad()
def calibrate(model, px):
    """Rescale each layer of the random network so its outputs have unit
    spread on these inputs, and the final logit difference a spread of 3:
    then descriptors are O(1) and probabilities cover (0, 1), so a 1e-4
    tolerance means something. (A network straight from its init shrinks the
    signal layer by layer and scores every pair 0.5.)"""
    x = model.normalize(px)
    for m in model.tower.net:
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            s = m(x).std()
            m.weight.div_(s)
            m.bias.div_(s)
        x = m(x)
    n = x.shape[0]
    ia, ib = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    h = torch.cat([x[ia.reshape(-1)], x[ib.reshape(-1)]], dim=1)
    fcs = model.metric.fcs
    for i, fc in enumerate(fcs):
        if i + 1 < len(fcs):
            s = fc(h).std()
            fc.weight.div_(s)
            fc.bias.div_(s)
            h = torch.relu(fc(h))
        else:
            z = fc(h)
            d = z[:, 1] - z[:, 0]
            k = 3.0 / d.std()
            fc.weight.mul_(k)
            fc.bias.mul_(k)
            fc.bias[1] -= (k * d).median()


def make(arch, outdir, seed, fp16, **kw):
    torch.manual_seed(seed)
    model = MatchNet(arch, name="golden-" + arch, **kw)
    init_weights(model, "orthogonal" if arch == "pytorch" else "kaiming")
    model.eval()
    rng = np.random.default_rng(seed)
    px = patches(rng, N, model.patch)
    calibrate(model, torch.from_numpy(px))
    if fp16:
        round_to_fp16(model)
    with torch.no_grad():
        t = torch.from_numpy(px)
        desc = model.describe(t)
        ia, ib = torch.meshgrid(torch.arange(N), torch.arange(N), indexing="ij")
        prob = model.match_prob(desc[ia.reshape(-1)], desc[ib.reshape(-1)])
    d = desc.shape[1]
    with open(os.path.join(outdir, "golden_%s.mnw" % arch), "wb") as f:
        f.write(mnw_bytes(model, fp16=fp16))
    with open(os.path.join(outdir, "golden_%s.bin" % arch), "wb") as f:
        f.write(b"MNGOLDEN" + struct.pack("<4I", N, model.patch, d, 0))
        f.write(px.tobytes())
        f.write(desc.numpy().astype("<f4").tobytes())
        f.write(prob.numpy().astype("<f4").tobytes())
    p = prob.numpy()
    print("%s: D=%d |desc| max %.3f mean %.3f, prob min %.3f max %.3f mean %.3f" % (
        arch, d, desc.abs().max(), desc.abs().mean(), p.min(), p.max(), p.mean()))


def shipped(model_path, outdir):
    """golden_shipped.bin: PyTorch's outputs for the shipped model file, read
    back from the .mnw, on textured patches (same layout as above)."""
    from matchnet_torch import load_mnw
    model = load_mnw(model_path)
    rng = np.random.default_rng(7)
    px = patches(rng, N, model.patch)
    with torch.no_grad():
        desc = model.describe(torch.from_numpy(px))
        ia, ib = torch.meshgrid(torch.arange(N), torch.arange(N), indexing="ij")
        prob = model.match_prob(desc[ia.reshape(-1)], desc[ib.reshape(-1)])
    with open(os.path.join(outdir, "golden_shipped.bin"), "wb") as f:
        f.write(b"MNGOLDEN" + struct.pack("<4I", N, model.patch, desc.shape[1], 0))
        f.write(px.tobytes())
        f.write(desc.numpy().astype("<f4").tobytes())
        f.write(prob.numpy().astype("<f4").tobytes())
    print("shipped %s: D=%d" % (model_path, desc.shape[1]))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "tests/data"
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(2)
    if len(sys.argv) > 2:
        shipped(sys.argv[2], outdir)
        return
    make("original", outdir, 1, True)
    make("pytorch", outdir, 2, True)
    make("bottleneck", outdir, 3, False, bottleneck=96, metric_width=192, l2norm=True)


if __name__ == "__main__":
    main()
