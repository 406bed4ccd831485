#!/usr/bin/python3
"""Train a MatchNet model on patch sets made by matchnet-patchset.

  /usr/bin/python3 python/train.py --train DATA/train --val DATA/val --out RUN \
      --minutes 100 [--seed 0] [--threads 2] [--device cpu|cuda]

Stages (each logged, checkpointed and resumable: rerunning the same command
continues from RUN/checkpoint.pt):
  1. descriptor: tower + 256-D L2-normalised bottleneck, hardest-in-batch
     triplet loss (margin 1) on batches of corresponding pairs (runs of 32
     from one image pair), Adam, learning rate constant for half the time
     then cosine-decayed to 5%;
  2. metric: the metric network (concat 512 -> 512 -> 512 -> 2, softmax
     cross-entropy, balanced) on the frozen bottleneck, trained on the
     matcher's own candidates: for each training anchor, its true partner
     and its top-k nearest non-matching descriptors (L2);
then RUN/matchnet.mnw is exported. RUN/log.jsonl holds loss and validation
FPR95 (L2 and metric) over time.
"""
import argparse
import json
import os
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from matchnet_torch import MatchNet, init_weights, mnw_bytes  # noqa: E402


# ---- data ----

def load_brown(d):
    """Patches (N x 64 x 64 uint8), point ids, and pairs (if any) of a Brown-layout folder."""
    point = np.loadtxt(os.path.join(d, "info.txt"), dtype=np.int64, usecols=0, ndmin=1)
    n = len(point)
    patches = np.empty((n, 64, 64), np.uint8)
    for s in range((n + 255) // 256):
        sheet = cv2.imread(os.path.join(d, "patches%04d.bmp" % s), cv2.IMREAD_GRAYSCALE)
        if sheet is None:
            raise SystemExit("cannot read %s/patches%04d.bmp" % (d, s))
        tiles = sheet.reshape(16, 64, 16, 64).transpose(0, 2, 1, 3).reshape(256, 64, 64)
        k = min(256, n - 256 * s)
        patches[256 * s:256 * s + k] = tiles[:k]
    pairs, kinds = None, None
    m50 = sorted(f for f in os.listdir(d) if f.startswith("m50_") and f.endswith(".txt"))
    if m50:
        pairs = np.loadtxt(os.path.join(d, m50[0]), dtype=np.int64, ndmin=2)
        kf = os.path.join(d, "negative_kinds.txt")
        if os.path.exists(kf):
            kinds = np.array(open(kf).read().split())
    return patches, point, pairs, kinds


def correspondences(point):
    """(i, j) index pairs of patches with the same point id (first two of each
    point), in point-id order."""
    order = np.argsort(point, kind="stable")
    p = point[order]
    same = np.nonzero(p[1:] == p[:-1])[0]
    first = np.ones(len(same), bool)
    first[1:] = same[1:] != same[:-1] + 1  # only the first pair of longer runs
    same = same[first]
    return np.stack([order[same], order[same + 1]], 1)


def fpr95(scores, labels):
    """False positive rate at 95% recall, and FP / (TP + FP) there. Higher score = match."""
    pos = np.sort(scores[labels])[::-1]
    if len(pos) == 0 or (~labels).sum() == 0:
        return float("nan"), float("nan")
    t = pos[int(np.ceil(0.95 * len(pos))) - 1]
    fp = (scores[~labels] >= t).sum()
    tp = (scores[labels] >= t).sum()
    return fp / (~labels).sum(), fp / max(1, tp + fp)


# ---- model pieces ----

def describe(model, px, batch=256):
    out = []
    with torch.no_grad():
        for i in range(0, len(px), batch):
            out.append(model.describe(torch.from_numpy(px[i:i + batch]).to(model_device(model))).cpu())
    return torch.cat(out)


def model_device(model):
    return next(model.parameters()).device


def validate(model, val):
    patches, point, pairs, kinds = val
    model.eval()
    idx = np.unique(np.concatenate([pairs[:, 0], pairs[:, 3]]))
    desc = torch.zeros(len(point), model.tower.feature_dim)
    desc[idx] = describe(model, patches[idx])
    a, b = desc[pairs[:, 0]], desc[pairs[:, 3]]
    labels = pairs[:, 1] == pairs[:, 4]
    l2 = -(a - b).norm(dim=1).numpy()
    with torch.no_grad():
        dev = model_device(model)
        prob = torch.cat([model.match_prob(a[i:i + 4096].to(dev), b[i:i + 4096].to(dev)).cpu()
                          for i in range(0, len(a), 4096)]).numpy()
    res = {"l2": fpr95(l2, labels)[0], "metric": fpr95(prob, labels)[0]}
    if kinds is not None:
        for k in ("random", "spatial", "appearance"):
            sel = labels | (kinds == k)
            res["metric_" + k] = fpr95(prob[sel], labels[sel])[0]
            res["l2_" + k] = fpr95(l2[sel], labels[sel])[0]
    model.train()
    return res


def triplet_hardest(da, dp, margin=1.0):
    """Hardest-in-batch triplet loss on L2-normalised descriptors (HardNet)."""
    d = torch.cdist(da, dp)
    pos = d.diag()
    eye = torch.eye(len(d), device=d.device, dtype=torch.bool)
    dn = d.masked_fill(eye, 1e6)
    neg = torch.minimum(dn.min(1).values, dn.min(0).values)
    return F.relu(margin + pos - neg).mean(), (pos < neg).float().mean()


# ---- training ----

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True, nargs="+", help="training set folder(s) (matchnet-patchset)")
    ap.add_argument("--val", required=True, help="validation set folder (with pairs and negative kinds)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=100, help="time for stage 1 (stage 2 takes a few more)")
    ap.add_argument("--batch", type=int, default=128, help="corresponding pairs per batch")
    ap.add_argument("--run", type=int, default=32, help="consecutive correspondences per run in a batch")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--bottleneck", type=int, default=256)
    ap.add_argument("--metric-width", type=int, default=512)
    ap.add_argument("--metric-epochs", type=int, default=6)
    ap.add_argument("--candidates", type=int, default=5, help="k nearest non-matches per anchor in stage 2")
    ap.add_argument("--val-every", type=int, default=150, help="steps between validations")
    ap.add_argument("--val-pairs", type=int, default=3000, help="pairs used by the periodic validations")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "log.jsonl"), "a")

    def note(**kw):
        kw["time"] = round(time.time() - t_start + elapsed0, 1)
        print(json.dumps(kw), flush=True)
        log.write(json.dumps(kw) + "\n")
        log.flush()

    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    tr = [load_brown(d) for d in args.train]
    patches = np.concatenate([t[0] for t in tr])
    offsets = np.cumsum([0] + [len(t[0]) for t in tr])
    corr = np.concatenate([correspondences(t[1]) + o for t, o in zip(tr, offsets)])
    val = load_brown(args.val)
    if val[2] is None:
        raise SystemExit("%s has no pair list" % args.val)
    # Periodic validations use a fixed random subset; the final one uses all pairs.
    vsel = np.random.default_rng(12345).permutation(len(val[2]))[:args.val_pairs]
    val_quick = (val[0], val[1], val[2][vsel], None if val[3] is None else val[3][vsel])

    dev = torch.device(args.device)
    model = MatchNet("bottleneck", bottleneck=args.bottleneck, metric_width=args.metric_width, l2norm=True,
                     name="matchnet-b%d-f%d" % (args.bottleneck, args.metric_width))
    init_weights(model, "orthogonal", gain=0.6, bias=0.01)
    model.to(dev)
    opt = torch.optim.Adam(model.tower.parameters(), lr=args.lr)
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    state = {"stage": 1, "step": 0, "elapsed": 0.0, "perm": None, "pos": 0}
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=dev)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        rng = np.random.default_rng(args.seed + state["step"])
    elapsed0 = state["elapsed"]
    t_start = time.time()

    def save():
        state["elapsed"] = time.time() - t_start + elapsed0
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state}, tmp)
        os.replace(tmp, ckpt_path)

    note(event="start", stage=state["stage"], step=state["step"], train_pairs=len(corr),
         val_pairs=len(val[2]), device=str(dev))

    # Stage 1: descriptor.
    if state["stage"] == 1:
        model.train()
        while time.time() - t_start + elapsed0 < args.minutes * 60:
            # A batch is a few runs of consecutive correspondences: matchnet-patchset
            # numbers points view pair by view pair, so each run comes from one
            # image pair and its in-batch negatives include same-image ones.
            nchunk = len(corr) // args.run
            per = max(1, args.batch // args.run)
            if state["perm"] is None or state["pos"] + per > nchunk:
                state["perm"] = rng.permutation(nchunk)
                state["pos"] = 0
            starts = state["perm"][state["pos"]:state["pos"] + per] * args.run
            state["pos"] += per
            sel = corr[(starts[:, None] + np.arange(args.run)[None, :]).ravel()]
            # Random swap of which view is the anchor.
            flip = rng.random(len(sel)) < 0.5
            sel = np.where(flip[:, None], sel[:, ::-1], sel)
            # Learning rate: constant for the first half of the time, then a
            # cosine decay to 5% of it.
            frac = (time.time() - t_start + elapsed0) / (args.minutes * 60)
            decay = 0.5 * (1 + np.cos(np.pi * min(1.0, max(0.0, (frac - 0.5) / 0.5))))
            for g in opt.param_groups:
                g["lr"] = args.lr * (0.05 + 0.95 * decay)
            pa = torch.from_numpy(patches[sel[:, 0]]).to(dev)
            pb = torch.from_numpy(patches[sel[:, 1]]).to(dev)
            d = model.describe(torch.cat([pa, pb]))
            loss, acc = triplet_hardest(d[:len(sel)], d[len(sel):])
            opt.zero_grad()
            loss.backward()
            opt.step()
            state["step"] += 1
            if state["step"] % 10 == 0:
                note(stage=1, step=state["step"], loss=round(loss.item(), 4), batch_acc=round(acc.item(), 3),
                     lr=round(opt.param_groups[0]["lr"], 7))
            if state["step"] % args.val_every == 0:
                note(stage=1, step=state["step"], val=validate(model, val_quick))
                save()
        state["stage"] = 2
        save()

    # Stage 2: metric network on the frozen descriptor, on the matcher's candidates.
    if state["stage"] == 2:
        model.eval()
        nsub = min(len(corr), 24000)
        sub = corr[rng.choice(len(corr), nsub, replace=False)]
        da = describe(model, patches[sub[:, 0]])
        db = describe(model, patches[sub[:, 1]])
        note(stage=2, event="described", pairs=nsub)
        negs = []
        for i in range(0, nsub, 2048):
            dist = torch.cdist(da[i:i + 2048], db)
            dist[torch.arange(dist.shape[0]), torch.arange(i, i + dist.shape[0])] = 1e6
            nn_idx = dist.topk(args.candidates, largest=False).indices
            for k in range(args.candidates):
                negs.append(torch.stack([torch.arange(i, i + dist.shape[0]), nn_idx[:, k]], 1))
        negs = torch.cat(negs)
        posi = torch.stack([torch.arange(nsub), torch.arange(nsub)], 1)
        mopt = torch.optim.Adam(model.metric.parameters(), lr=1e-3)
        for epoch in range(args.metric_epochs):
            # Balanced: every positive once, as many negatives drawn from the candidates.
            nsel = negs[torch.from_numpy(rng.choice(len(negs), nsub, replace=False))]
            pairs = torch.cat([posi, nsel])
            labels = torch.cat([torch.ones(nsub), torch.zeros(nsub)]).long()
            perm = torch.from_numpy(rng.permutation(len(pairs)))
            tot = 0.0
            for j in range(0, len(perm), 512):
                b = perm[j:j + 512]
                logits = model.metric(da[pairs[b, 0]].to(dev), db[pairs[b, 1]].to(dev))
                loss = F.cross_entropy(logits, labels[b].to(dev))
                mopt.zero_grad()
                loss.backward()
                mopt.step()
                tot += loss.item() * len(b)
            note(stage=2, epoch=epoch, loss=round(tot / len(perm), 4), val=validate(model, val_quick))
        state["stage"] = 3
        save()

    final = validate(model, val)
    note(event="done", val=final)
    model.cpu()
    data = mnw_bytes(model)
    path = os.path.join(args.out, "matchnet.mnw")
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    note(event="exported", path=path, bytes=len(data))


if __name__ == "__main__":
    main()
