#!/usr/bin/python3
"""Export a MatchNet model to libmatchnet's .mnw format (and optionally ONNX).

  /usr/bin/python3 python/export.py --arch original --random --seed 0 -o model.mnw
  /usr/bin/python3 python/export.py --arch bottleneck --bottleneck 256 --metric-width 512 \
      --state-dict trained.pt -o models/matchnet.mnw --onnx tower.onnx

--state-dict loads a state dict saved from tools.matchnet_torch.MatchNet
(keys tower.net.N.weight, metric.fcs.N.weight, ...).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from matchnet_torch import MatchNet, init_weights, mnw_bytes, round_to_fp16  # noqa: E402


def build(args):
    model = MatchNet(args.arch, bottleneck=args.bottleneck, metric_width=args.metric_width,
                     l2norm=args.l2norm, name=args.name)
    if args.state_dict:
        model.load_state_dict(torch.load(args.state_dict, map_location="cpu"))
    else:
        torch.manual_seed(args.seed)
        init_weights(model, "orthogonal" if args.arch == "pytorch" else "kaiming")
    model.eval()
    if args.fp16:
        round_to_fp16(model)
    return model


def export_onnx(model, path):
    """The tower as ONNX: input "patch" N x 1 x P x P (normalised), output
    "descriptor" N x D."""
    class Whole(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m.tower(x)

    x = torch.zeros(1, 1, model.patch, model.patch)
    # PyTorch 1.13 merges equal initializers (e.g. biases all 0.01 at init)
    # into Identity nodes, which OpenCV 4.6's ONNX importer rejects; keep
    # every tensor as its own initializer instead.
    dedup = torch._C._jit_pass_onnx_deduplicate_initializers
    torch._C._jit_pass_onnx_deduplicate_initializers = lambda graph, params, training: params
    try:
        torch.onnx.export(Whole(model), x, path, input_names=["patch"], output_names=["descriptor"],
                          dynamic_axes={"patch": {0: "n"}, "descriptor": {0: "n"}}, opset_version=11)
    finally:
        torch._C._jit_pass_onnx_deduplicate_initializers = dedup


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=["original", "pytorch", "bottleneck"], default="original")
    ap.add_argument("--bottleneck", type=int, default=256, help="B, bottleneck width (arch bottleneck)")
    ap.add_argument("--metric-width", type=int, default=512, help="F, metric width (arch bottleneck)")
    ap.add_argument("--l2norm", action="store_true", help="L2-normalise the bottleneck output")
    ap.add_argument("--state-dict", help="trained weights (torch.save of MatchNet.state_dict())")
    ap.add_argument("--random", action="store_true", help="random weights (the default without --state-dict)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fp16", action="store_true", help="store weights as float16")
    ap.add_argument("--name", help="model name stored in the file")
    ap.add_argument("--onnx", help="also write the tower as ONNX to this path")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    model = build(args)
    data = mnw_bytes(model, fp16=args.fp16)
    tmp = args.output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, args.output)
    if args.onnx:
        export_onnx(model, args.onnx)
    print("%s: %s, %d bytes, descriptor %d" % (args.output, model.name, len(data), model.tower.feature_dim))


if __name__ == "__main__":
    main()
