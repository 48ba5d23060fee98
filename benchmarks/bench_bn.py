"""What BatchNorm costs the default prior, and what channel counts in multiples of 16 would save (issue 12).

PyTorch's CPU BatchNorm has a fast channels-last kernel only when the channel count is a multiple of the fp32
vector width (16 with AVX-512); the compacted ticket's counts are odd (1-47). This times forward + backward of a
train-mode `F.batch_norm` on every BN input the ticket sees at the given size (bf16, channels-last, as lip fits
it), at its own channel count and rounded up to 16, and prints the per-BN and summed medians.

    python benchmarks/bench_bn.py [--size 128] [--threads 2] [--repeats 40]
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from lipcli import library
from lipcli.nets.compact import compact
from lipcli.restore import masked_prior


def ticket_bn_shapes(size: int) -> list[tuple[str, tuple[int, ...]]]:
    """(name, input shape) of every BatchNorm of the compacted default ticket in one forward pass."""
    prior = masked_prior(library.entry_file("dip-channel-house"), None, None, "artifact")
    net = compact(prior.build(0), prior.masks)
    shapes: list[tuple[str, tuple[int, ...]]] = []
    for name, m in net.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_hook(lambda mod, i, o, name=name: shapes.append((name, tuple(i[0].shape))))
    with torch.no_grad():
        net(torch.rand(1, net.spec["in_channels"], size, size))
    return shapes


def bn_ms(shape: tuple[int, ...], repeats: int) -> float:
    """Median ms of forward + backward of a train-mode BN of a bf16 channels-last map of `shape`."""
    x = torch.randn(shape).to(torch.bfloat16).contiguous(memory_format=torch.channels_last).requires_grad_()
    w, b = torch.rand(shape[1], requires_grad=True), torch.randn(shape[1], requires_grad=True)
    g = torch.randn_like(x)
    times = []
    for i in range(repeats + 5):
        start = time.perf_counter()
        F.batch_norm(x, None, None, w, b, training=True).backward(g)
        if i >= 5:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    total = [0.0, 0.0]
    print(f"{'BatchNorm':<22}{'input':>18}{'ms':>8}{'x16':>6}{'ms':>8}")
    for name, shape in ticket_bn_shapes(args.size):
        padded = (shape[0], -(-shape[1] // 16) * 16, *shape[2:])
        own, up = bn_ms(shape, args.repeats), bn_ms(padded, args.repeats)
        total[0] += own
        total[1] += up
        print(f"{name:<22}{'x'.join(map(str, shape[1:])):>18}{own:8.3f}{padded[1]:6d}{up:8.3f}")
    print(f"{'sum':<40}{total[0]:8.3f}{'':6}{total[1]:8.3f}")


if __name__ == "__main__":
    main()
