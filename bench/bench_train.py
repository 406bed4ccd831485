#!/usr/bin/python3
"""Training step speed of the descriptor (tower + bottleneck, forward and
backward with the hardest-in-batch loss) under PyTorch's CPU options.

    /usr/bin/python3 bench/bench_train.py [--patches 256] [--reps 5] [--threads 2] [--rounds 3]
        [--model models/matchnet.mnw] [--set PATCHSET]

Variants, measured interleaved in each round so that a noisy shared machine
slows all of them alike: fp32 (the default), channels_last memory format,
bfloat16 autocast, and both. Prints patches/s per variant (median and
min-max over rounds x reps) and the ratio of each to fp32 in the same run;
also the gradient of bfloat16 against fp32 on the same batch (cosine
similarity and relative norm), the accuracy side of the trade. That figure
means something only for a trained model on real corresponding patches
(--model, --set: the first correspondences of a matchnet-patchset folder);
on random weights and noise the hardest negatives are ties that rounding
breaks either way.
bfloat16 is fast only where the CPU has AVX512-BF16 or AMX (oneDNN uses
them); elsewhere PyTorch emulates it and it is slower than fp32.
"""
import argparse
import copy
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from matchnet_torch import MatchNet, init_weights, load_mnw  # noqa: E402
from train import Tracks, descriptor_loss, load_brown  # noqa: E402


def cpu_flags():
    try:
        flags = open("/proc/cpuinfo").read().split("flags", 2)[1].split("\n")[0].split()
    except (OSError, IndexError):
        return []
    return [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patches", type=int, default=256, help="patches per step (half anchors, half positives)")
    ap.add_argument("--reps", type=int, default=5, help="timed steps per variant per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", help="start from this exported model (.mnw) instead of random weights")
    ap.add_argument("--set", help="patch set folder: use its first correspondences instead of noise")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = load_mnw(args.model) if args.model else MatchNet("bottleneck", bottleneck=256, metric_width=512,
                                                             l2norm=True)
    if not args.model:
        init_weights(base, "orthogonal")
    if args.set:
        tracks = Tracks([load_brown(args.set)])
        pairs = tracks.sample(np.random.default_rng(0), args.patches // 2, 32)[:args.patches // 2]
        px = torch.from_numpy(np.concatenate([tracks.patches[pairs[:, 0]], tracks.patches[pairs[:, 1]]])).float()
    else:
        px = (torch.rand(args.patches, 64, 64) * 255).round()
    variants = {"fp32": (False, False), "channels_last": (True, False), "bf16": (False, True),
                "channels_last+bf16": (True, True)}
    models = {}
    for name, (cl, _) in variants.items():
        m = copy.deepcopy(base).train()
        if cl:
            m = m.to(memory_format=torch.channels_last)
        models[name] = m

    def step(name):
        cl, bf16 = variants[name]
        m = models[name]
        x = m.normalize(px)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            d = m.tower(x)
        d = d.float()
        n = len(d) // 2
        loss, _ = descriptor_loss(d[:n], d[n:], sos=1.0)
        m.zero_grad()
        loss.backward()
        return loss

    times = {k: [] for k in variants}
    for name in variants:  # warm-up (oneDNN primitive creation)
        step(name)
    for _ in range(args.rounds):
        for name in variants:
            for _ in range(args.reps):
                t = time.perf_counter()
                step(name)
                times[name].append(time.perf_counter() - t)
    # Gradient agreement on one batch: bf16 (both options) against fp32.
    step("fp32")
    step("channels_last+bf16")
    g32 = torch.cat([p.grad.flatten() for p in models["fp32"].tower.parameters()])
    g16 = torch.cat([p.grad.flatten() for p in models["channels_last+bf16"].tower.parameters()])
    cos = torch.nn.functional.cosine_similarity(g32, g16, dim=0).item()
    rel = ((g16 - g32).norm() / g32.norm()).item()

    print("CPU: %s (%s), PyTorch %s, %d threads, %d patches per step, %d x %d steps per variant, %s, %s"
          % (cpu_name(), " ".join(cpu_flags()) or "no AVX-512", torch.__version__, args.threads, len(px),
             args.rounds, args.reps, args.model or "random weights", args.set or "noise patches"))
    ref = statistics.median(times["fp32"])
    print("%-20s %12s %18s %8s" % ("variant", "patches/s", "min-max", "vs fp32"))
    for name, ts in times.items():
        med = statistics.median(ts)
        print("%-20s %12.0f %8.0f-%-9.0f %7.2fx" % (name, len(px) / med, len(px) / max(ts),
                                                   len(px) / min(ts), ref / med))
    print("bf16+channels_last gradient vs fp32: cosine %.5f, relative difference %.4f" % (cos, rel))


if __name__ == "__main__":
    main()
