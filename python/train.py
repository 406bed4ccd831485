#!/usr/bin/python3
"""Train a MatchNet model on patch sets made by matchnet-patchset.

  /usr/bin/python3 python/train.py --train SET [SET...] [--multiview SET...] \
      --val SET [SET...] --out RUN --minutes 100 [--init MODEL.mnw] [--export PATH]

Sets are matchnet-patchset folders (Brown layout). --train sets are the
synthetic-warp ones (a point id per correspondence), --multiview sets the
real ones (a point id per 3D point, a track of 2+ patches). Rerunning the
same command continues from RUN/checkpoint.pt.

Stages (each logged and checkpointed):
  1. descriptor: tower + 256-D L2-normalised bottleneck. A batch holds
     --batch corresponding pairs, --multiview-fraction of them from the
     multi-view sets; each part is made of runs of --run consecutive point
     ids (matchnet-patchset numbers points view pair by view pair, and
     COLMAP's 3D points near each other in id mostly share images), so the
     in-batch negatives include same-image and same-scene ones. Each point
     appears once per batch; a track gives two of its patches at random.
     Every pair gets one of the eight flips / 90-degree rotations, the same
     for both patches (--augment). Loss: hardest-in-batch triplet (HardNet,
     margin 1) plus --sos times the second-order similarity term of SOSNet
     (distances to the 8 nearest in-batch neighbours should agree between
     the two views). Adam; the learning rate is constant for the first half
     of --minutes, then cosine-decayed to 5%.
  2. metric: the metric network (concat 512 -> 512 -> 512 -> 2, softmax
     cross-entropy, balanced) on the frozen bottleneck, trained on the
     matcher's own candidates: for each training anchor, its true partner
     and its top-k nearest non-matching descriptors (L2).
Then RUN/matchnet.mnw is exported (and copied to --export). RUN/log.jsonl
holds loss and validation FPR95 (L2 and metric, per validation set).

--init MODEL.mnw warm-starts from an exported model (tower, bottleneck and
metric network), so that training time adds up over runs; the chunk script
python/train_chunk.sh uses it. --export PATH also receives the model at
every checkpoint (with the metric network it started from), so an
interrupted run leaves its latest weights there.

Time: --minutes counts training time only; an interval of more than a minute
between steps (the process was stopped with SIGSTOP while CI or a benchmark
ran, see scripts/training.sh) is not counted. Checkpoints every
--checkpoint-minutes of that time.

--bf16 runs the tower under bfloat16 autocast and --channels-last in
channels_last memory format (fast with AMX or AVX512-BF16: see
bench/bench_train.py); the loss is computed in float32.
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
from matchnet_torch import MatchNet, init_weights, load_mnw, mnw_bytes  # noqa: E402


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


class Tracks:
    """The patches of some sets, grouped by point id: track t holds the patch
    indices members[start[t]:start[t] + length[t]], tracks in point-id order
    within each set, sets one after the other. Tracks of one patch are left out."""

    def __init__(self, sets):
        self.patches = np.concatenate([s[0] for s in sets]) if sets else np.empty((0, 64, 64), np.uint8)
        members, lengths, base = [], [], 0
        for s in sets:
            point = s[1]
            order = np.argsort(point, kind="stable")
            p = point[order]
            cut = np.flatnonzero(np.diff(p)) + 1
            starts = np.concatenate([[0], cut])
            lens = np.diff(np.concatenate([starts, [len(p)]]))
            for st, ln in zip(starts[lens >= 2], lens[lens >= 2]):
                members.append(order[st:st + ln] + base)
                lengths.append(ln)
            base += len(point)
        self.length = np.array(lengths, np.int64)
        self.start = np.concatenate([[0], np.cumsum(self.length)[:-1]]).astype(np.int64)
        self.members = np.concatenate(members) if members else np.empty(0, np.int64)

    def __len__(self):
        return len(self.length)

    def sample(self, rng, n, run):
        """n (anchor, positive) patch index pairs: n / run runs of run
        consecutive tracks, two different patches of each track."""
        nrun = max(1, n // run)
        run = min(run, len(self))
        t0 = rng.integers(0, len(self) - run + 1, nrun)
        t = np.unique((t0[:, None] + np.arange(run)[None, :]).ravel())  # each point once
        ln = self.length[t]
        i = rng.integers(0, ln)
        j = (i + 1 + rng.integers(0, ln - 1)) % ln
        return np.stack([self.members[self.start[t] + i], self.members[self.start[t] + j]], 1)


def augment(pa, pb, rng):
    """One of the eight flips / 90-degree rotations per pair, the same for both patches."""
    k = rng.integers(0, 4, len(pa))
    flip = rng.random(len(pa)) < 0.5
    for r in range(1, 4):
        sel = k == r
        pa[sel] = np.rot90(pa[sel], r, axes=(1, 2))
        pb[sel] = np.rot90(pb[sel], r, axes=(1, 2))
    pa[flip] = pa[flip][:, :, ::-1]
    pb[flip] = pb[flip][:, :, ::-1]
    return pa, pb


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

def model_device(model):
    return next(model.parameters()).device


def describe(model, px, batch=256):
    out = []
    with torch.no_grad():
        for i in range(0, len(px), batch):
            out.append(model.describe(torch.from_numpy(np.ascontiguousarray(px[i:i + batch]))
                                      .to(model_device(model))).float().cpu())
    return torch.cat(out)


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
    res = {"l2": round(fpr95(l2, labels)[0], 5), "metric": round(fpr95(prob, labels)[0], 5)}
    if kinds is not None:
        for k in ("random", "spatial", "appearance"):
            sel = labels | (kinds == k)
            res["metric_" + k] = round(fpr95(prob[sel], labels[sel])[0], 5)
            res["l2_" + k] = round(fpr95(l2[sel], labels[sel])[0], 5)
    model.train()
    return res


def pair_distances(x, y):
    """Euclidean distances of L2-normalised rows; the clamp keeps the square
    root's gradient finite at zero distance (a row against itself)."""
    return (2 - 2 * x @ y.t()).clamp_min(1e-8).sqrt()


def descriptor_loss(da, dp, margin=1.0, sos=0.0, k=8):
    """Hardest-in-batch triplet loss (HardNet) plus sos times SOSNet's
    second-order similarity regulariser; returns the loss and the fraction
    of anchors whose partner is nearer than every in-batch negative."""
    d = pair_distances(da, dp)
    pos = d.diag()
    eye = torch.eye(len(d), device=d.device, dtype=torch.bool)
    dn = d.masked_fill(eye, 1e6)
    neg = torch.minimum(dn.min(1).values, dn.min(0).values)
    loss = F.relu(margin + pos - neg).mean()
    if sos > 0:
        daa, dpp = pair_distances(da, da), pair_distances(dp, dp)
        kk = min(k + 1, len(d))
        near = torch.zeros_like(eye)
        near.scatter_(1, daa.detach().topk(kk, largest=False).indices, True)
        near.scatter_(1, dpp.detach().topk(kk, largest=False).indices, True)
        near &= ~eye
        loss = loss + sos * (((daa - dpp) ** 2) * near).sum(1).clamp_min(1e-8).sqrt().mean()
    return loss, (pos < neg).float().mean()


def build_model(args, dev):
    if args.init:
        model = load_mnw(args.init)
        if not model.tower.spec or model.tower.spec[-1][0] != "l2norm":
            raise SystemExit("%s: --init needs a model with an L2-normalised bottleneck" % args.init)
    else:
        model = MatchNet("bottleneck", bottleneck=args.bottleneck, metric_width=args.metric_width, l2norm=True,
                         name="matchnet-b%d-f%d" % (args.bottleneck, args.metric_width))
        init_weights(model, "orthogonal", gain=0.6, bias=0.01)
    model.to(dev)
    if args.channels_last:
        model.tower = model.tower.to(memory_format=torch.channels_last)
    return model


def write_model(model, path):
    """Export model to path atomically (the tower and metric network as they are now)."""
    dev = model_device(model)
    model.cpu()
    data = mnw_bytes(model)
    model.to(dev)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    return len(data)


# ---- training ----

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", nargs="*", default=[], help="synthetic training set folder(s) (matchnet-patchset)")
    ap.add_argument("--multiview", nargs="*", default=[], help="multi-view training set folder(s) (--colmap)")
    ap.add_argument("--val", required=True, nargs="+", help="validation set folder(s) (with pairs and kinds)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", help="warm start from this exported model (.mnw)")
    ap.add_argument("--export", help="also write the model here, at every checkpoint and at the end")
    ap.add_argument("--minutes", type=float, default=100, help="stage-1 training time (stage 2 takes a few more)")
    ap.add_argument("--batch", type=int, default=128, help="corresponding pairs per batch")
    ap.add_argument("--run", type=int, default=32, help="consecutive point ids per run in a batch")
    ap.add_argument("--multiview-fraction", type=float, default=0.5,
                    help="share of each batch from the --multiview sets (when both kinds are given)")
    ap.add_argument("--augment", type=int, default=0, help="1: random flips and 90-degree rotations")
    ap.add_argument("--sos", type=float, default=0.0, help="weight of the second-order similarity term")
    ap.add_argument("--bf16", type=int, default=0, help="1: bfloat16 autocast for the tower (CPU)")
    ap.add_argument("--channels-last", type=int, default=0, help="1: channels_last memory format")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--bottleneck", type=int, default=256)
    ap.add_argument("--metric-width", type=int, default=512)
    ap.add_argument("--metric-epochs", type=int, default=6)
    ap.add_argument("--candidates", type=int, default=5, help="k nearest non-matches per anchor in stage 2")
    ap.add_argument("--val-every", type=int, default=150, help="steps between validations")
    ap.add_argument("--val-pairs", type=int, default=3000, help="pairs used by the periodic validations")
    ap.add_argument("--checkpoint-minutes", type=float, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if not args.train and not args.multiview:
        raise SystemExit("no training sets (--train or --multiview)")

    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "log.jsonl"), "a")
    clock = {"train": 0.0, "last": time.time()}

    def tick():
        """Training time: wall time between steps, leaving out stops of over a minute."""
        now = time.time()
        dt = now - clock["last"]
        clock["last"] = now
        if dt < 60:
            clock["train"] += dt
        return clock["train"]

    def note(**kw):
        kw["time"] = round(clock["train"], 1)
        kw["wall"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        print(json.dumps(kw), flush=True)
        log.write(json.dumps(kw) + "\n")
        log.flush()

    torch.manual_seed(args.seed)
    syn = Tracks([load_brown(d) for d in args.train])
    mv = Tracks([load_brown(d) for d in args.multiview])
    vals = []
    for d in args.val:
        v = load_brown(d)
        if v[2] is None:
            raise SystemExit("%s has no pair list" % d)
        # Periodic validations use a fixed random subset; the final one uses all pairs.
        vsel = np.random.default_rng(12345).permutation(len(v[2]))[:args.val_pairs]
        name = os.path.basename(os.path.dirname(os.path.abspath(d))) + "/" + os.path.basename(os.path.abspath(d))
        vals.append((name, v, (v[0], v[1], v[2][vsel], None if v[3] is None else v[3][vsel])))

    def validate_all(quick=True):
        return {name: validate(model, vq if quick else vf) for name, vf, vq in vals}

    dev = torch.device(args.device)
    model = build_model(args, dev)
    opt = torch.optim.Adam(model.tower.parameters(), lr=args.lr)
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    state = {"stage": 1, "step": 0, "elapsed": 0.0}
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=dev)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
    clock["train"] = state["elapsed"]

    def save():
        state["elapsed"] = clock["train"]
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state}, tmp)
        os.replace(tmp, ckpt_path)
        if args.export:
            write_model(model, args.export)

    note(event="start", stage=state["stage"], step=state["step"], synthetic_tracks=len(syn),
         multiview_tracks=len(mv), init=args.init, args=vars(args), device=str(dev))
    n_mv = 0 if len(mv) == 0 else args.batch if len(syn) == 0 else int(round(args.batch * args.multiview_fraction))

    # Stage 1: descriptor.
    if state["stage"] == 1:
        model.train()
        last_save = clock["train"]
        tick()
        while tick() < args.minutes * 60:
            # Each step's randomness depends only on the seed and the step, so a
            # resumed run draws what the uninterrupted one would have.
            rng = np.random.default_rng([args.seed, state["step"]])
            parts = []
            if n_mv:
                parts.append((mv, mv.sample(rng, n_mv, args.run)))
            if args.batch - n_mv:
                parts.append((syn, syn.sample(rng, args.batch - n_mv, args.run)))
            pa = np.concatenate([t.patches[s[:, 0]] for t, s in parts])
            pb = np.concatenate([t.patches[s[:, 1]] for t, s in parts])
            # Random swap of which view is the anchor.
            swap = rng.random(len(pa)) < 0.5
            pa[swap], pb[swap] = pb[swap], pa[swap].copy()
            if args.augment:
                pa, pb = augment(pa, pb, rng)
            frac = clock["train"] / (args.minutes * 60)
            decay = 0.5 * (1 + np.cos(np.pi * min(1.0, max(0.0, (frac - 0.5) / 0.5))))
            for g in opt.param_groups:
                g["lr"] = args.lr * (0.05 + 0.95 * decay)
            x = model.normalize(torch.from_numpy(np.ascontiguousarray(np.concatenate([pa, pb]))).to(dev))
            if args.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(args.bf16)):
                d = model.tower(x)
            d = d.float()
            loss, acc = descriptor_loss(d[:len(pa)], d[len(pa):], sos=args.sos)
            opt.zero_grad()
            loss.backward()
            opt.step()
            state["step"] += 1
            if state["step"] % 10 == 0:
                note(stage=1, step=state["step"], loss=round(loss.item(), 4), batch_acc=round(acc.item(), 3),
                     lr=round(opt.param_groups[0]["lr"], 7))
            if state["step"] % args.val_every == 0:
                note(stage=1, step=state["step"], val=validate_all())
                tick()
            if clock["train"] - last_save >= args.checkpoint_minutes * 60:
                save()
                last_save = clock["train"]
                tick()
        state["stage"] = 2
        save()

    # Stage 2: metric network on the frozen descriptor, on the matcher's candidates.
    if state["stage"] == 2:
        model.eval()
        rng = np.random.default_rng([args.seed, 1 << 20])
        nsub = 24000
        n2 = 0 if len(mv) == 0 else nsub if len(syn) == 0 else int(round(nsub * args.multiview_fraction))
        parts = []
        if n2:
            parts.append((mv, mv.sample(rng, n2, args.run)))
        if nsub - n2:
            parts.append((syn, syn.sample(rng, nsub - n2, args.run)))
        da = torch.cat([describe(model, t.patches[s[:, 0]]) for t, s in parts])
        db = torch.cat([describe(model, t.patches[s[:, 1]]) for t, s in parts])
        nsub = len(da)
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
        mopt = torch.optim.Adam(model.metric.parameters(), lr=1e-3 if not args.init else 3e-4)
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
            note(stage=2, epoch=epoch, loss=round(tot / len(perm), 4), val=validate_all())
        state["stage"] = 3
        save()

    note(event="done", step=state["step"], val=validate_all(quick=False))
    path = os.path.join(args.out, "matchnet.mnw")
    size = write_model(model, path)
    if args.export:
        write_model(model, args.export)
    note(event="exported", path=path, export=args.export, bytes=size)


if __name__ == "__main__":
    main()
