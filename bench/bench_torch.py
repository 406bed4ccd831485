#!/usr/bin/python3
"""PyTorch peer for bench/run.sh: the same network and weights (read from the
.mnw file), 2 threads, tower patches/s at batch 1, 64, 256 and metric
pairs/s on concatenated pairs. Medians of repeated runs; one JSON line.

  /usr/bin/python3 bench/bench_torch.py MODEL.mnw [--threads 2] [--repeats 7]
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from matchnet_torch import load_mnw  # noqa: E402


def rate(fn, items, repeats, iters=1):
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        out.append(items * iters / (time.perf_counter() - t))
    return statistics.median(out), min(out), max(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_mnw(args.model)
    p = model.patch
    g = torch.Generator().manual_seed(1)
    res = {"torch_version": torch.__version__, "torch_threads": args.threads}
    with torch.inference_mode():
        for b in (1, 64, 256):
            px = torch.randint(0, 256, (b, p, p), generator=g, dtype=torch.uint8)
            med, lo, hi = rate(lambda: model.describe(px), b, args.repeats, 32 if b == 1 else 1)
            res["torch_b%d_patches_per_s" % b] = round(med, 1)
            if b == 64:
                res["torch_b64_min"], res["torch_b64_max"] = round(lo, 1), round(hi, 1)
        d = model.describe(torch.randint(0, 256, (256, p, p), generator=g, dtype=torch.uint8))
        ia = torch.arange(256 * 64) // 64
        ib = (torch.arange(256 * 64) * 7919) % 256
        med, _, _ = rate(lambda: model.match_prob(d[ia], d[ib]), len(ia), args.repeats)
        res["torch_metric_pairs_per_s"] = round(med)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
