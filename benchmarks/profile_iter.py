#!/usr/bin/env python
"""Where one DIP training iteration spends its time: torch.profiler breakdown of the reference loop
(fp32) and lip's loop (bf16 + channels_last), plus the conv arithmetic of one iteration.

Answers "how far can per-iteration speed go on this CPU": the convolutions' share is a floor that
only fewer FLOPs (sparsity that removes whole filters, see RESULTS-compact.md) or faster matrix
hardware (AMX) can lower; everything else is the overhead left to cut.

    python benchmarks/profile_iter.py --size 128 --steps 10 --out benchmarks/RESULTS-profile.md
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_iter import RefLoop, build_reference, lip_cfg, make_z, synthetic_problem  # noqa: E402

from lipcli import nets  # noqa: E402
from lipcli.fit import Target, fit  # noqa: E402
from lipcli.physics import Denoise  # noqa: E402

GROUPS = {  # profiler op -> what it is
    "aten::convolution_backward": "conv backward", "aten::mkldnn_convolution": "conv forward",
    "aten::_convolution": "conv forward", "aten::native_batch_norm": "batch norm",
    "aten::native_batch_norm_backward": "batch norm", "aten::upsample_bilinear2d": "upsample",
    "aten::upsample_bilinear2d_backward": "upsample", "aten::leaky_relu": "activation",
    "aten::leaky_relu_backward": "activation", "aten::reflection_pad2d": "padding",
    "aten::reflection_pad2d_backward": "padding", "aten::copy_": "copies / casts", "aten::normal_": "input jitter",
}


def conv_macs(size: int) -> float:
    """Multiply-accumulates of the forward convs at a size x size input (backward costs twice that)."""
    net, total = nets.build(nets.preset("dip")), [0.0]

    def hook(m: nn.Conv2d, inp, out) -> None:
        total[0] += out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1] / m.groups

    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(make_z(size, 0))
    return total[0]


def breakdown(run, steps: int) -> tuple[dict[str, float], float]:
    """Profile `run(steps)` (after a 3-iteration warm-up): ms per iteration by kind, and wall ms."""
    run(3)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        began = time.perf_counter()
        run(steps)
        wall = (time.perf_counter() - began) / steps * 1000
    out: dict[str, float] = defaultdict(float)
    for e in prof.key_averages():
        out[GROUPS.get(e.key, "other (optimizer, autograd, allocation, ...)")] += e.self_cpu_time_total / steps / 1000
    return dict(out), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS-profile.md"))
    a = ap.parse_args()
    z, (_, y) = make_z(a.size, 0), synthetic_problem(a.size)
    torch.manual_seed(0)
    ref = RefLoop(build_reference(nets.preset("dip"))[0], z, y)
    net = nets.build(nets.preset("dip"))
    target = Target(z=z, op=Denoise(25), y=y, size=(a.size, a.size))
    results = {"reference (fp32, NCHW)": breakdown(lambda n: [ref.step() for _ in range(n)], a.steps),
               "lip (bf16 + channels_last)": breakdown(lambda n: fit(net, [target], lip_cfg("lip-bf16-cl", n)),
                                                      a.steps)}
    macs = conv_macs(a.size)
    names = sorted({g for r, _ in results.values() for g in r}, key=lambda g: -results["reference (fp32, NCHW)"][0].get(g, 0))
    lines = ["# Where an iteration's time goes", "",
             f"- command: `python benchmarks/profile_iter.py --size {a.size} --steps {a.steps}`; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads",
             f"- {a.size}x{a.size}, full DIP net: the convolutions do {macs / 1e9:.2f} GMAC forward, so about "
             f"{3 * macs / 1e9:.1f} GMAC ({6 * macs / 1e9:.1f} GFLOP) per training iteration",
             "- ms per iteration, self CPU time of the profiler's ops grouped by kind; lip is profiled through one "
             "fit() call (its whole loop: detector, EMA, snapshots every 10 iterations)", "",
             "| kind | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    for g in names:
        lines.append(f"| {g} | " + " | ".join(f"{r.get(g, 0):.1f}" for r, _ in results.values()) + " |")
    lines.append("| **wall ms/iter (profiled)** | " + " | ".join(f"{w:.1f}" for _, w in results.values()) + " |")
    conv = {k: r.get("conv forward", 0) + r.get("conv backward", 0) for k, (r, _) in results.items()}
    lines += ["", "| | " + " | ".join(results) + " |", "|---|" + "---|" * len(results),
              "| conv GFLOP/s | " + " | ".join(f"{6 * macs / conv[k] / 1e6:.0f}" for k in results) + " |",
              "| conv share of the iteration | " + " | ".join(f"{conv[k] / w:.0%}" for k, (_, w) in results.items())
              + " |"]
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
