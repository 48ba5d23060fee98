"""Is it the initialisation scale? A fresh uniform-width net with its weights drawn at the dense net's scale.

The controls of RESULTS-sparse.md ("Controls") found that any 25% channel mask of the dense DIP net, fitted
compacted, beats a fresh net of the same width (w32) by ~0.7 dB. One difference between the two is the scale
of the initial weights: a kept filter was drawn for the dense layer's fan-in (PyTorch's default conv
initialisation bounds weights and biases by 1/sqrt(fan-in)), so it is sqrt(fan-in ratio) smaller than the
same filter drawn fresh for the narrow layer. This writes a mask artifact of `--net` (default dip-w32) that
prunes nothing and whose theta0 is the net's own seeded initialisation with every conv weight and bias
scaled by sqrt(fan-in of the narrow conv / fan-in of the same conv in the dense net): the narrow net at the
compacted ticket's scale, without any removed channel. `lip restore --mask FILE --round 0` fits it.

    PYTHONPATH=$PWD python experiments/scaled_init.py --out experiments/sparse/scaled-w32.safetensors
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torch import nn

from lipcli import artifact, nets


def convs(net: nn.Module) -> dict[str, nn.Conv2d]:
    return {name: m for name, m in net.named_modules() if isinstance(m, nn.Conv2d)}


def fan_in(conv: nn.Conv2d) -> int:
    return conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1] // conv.groups


def dense_scale_theta0(narrow: str, dense: str, seed: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """(spec, theta0): `narrow`'s initialisation at seed `seed`, each conv rescaled to `dense`'s fan-in."""
    spec = nets.preset(narrow)
    torch.manual_seed(seed)
    net, wide = nets.build(spec), convs(nets.build(nets.preset(dense)))
    with torch.no_grad():
        for name, conv in convs(net).items():
            factor = math.sqrt(fan_in(conv) / fan_in(wide[name]))
            conv.weight.mul_(factor)
            if conv.bias is not None:
                conv.bias.mul_(factor)
    return spec, {k: p.detach().clone() for k, p in net.named_parameters()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net", default="dip-w32")
    ap.add_argument("--dense", default="dip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    spec, theta0 = dense_scale_theta0(a.net, a.dense, a.seed)
    template = artifact.load("dip-channel-house")
    prune_round = {k: torch.zeros_like(v, dtype=torch.uint8) for k, v in theta0.items() if k in template.prune_round}
    total = sum(v.numel() for v in prune_round.values())
    meta = {**template.meta, "spec": spec, "method": "none", "recommended_round": 0, "seed": a.seed,
            "rounds": [{"round": 0, "sparsity": 0.0, "kept": total, "total": total}],
            "recommended_by": f"experiments/scaled_init.py: {a.net} at {a.dense}'s initialisation scale (a control)"}
    artifact.save(a.out, artifact.Artifact(meta=meta, theta0=theta0, prune_round=prune_round))
    print(f"{a.out}: {a.net}, {total:,} conv weights, nothing pruned, convs rescaled to {a.dense}'s fan-in")


if __name__ == "__main__":
    main()
