"""Per conv of the default prior: forward + backward time in bf16 channels-last (what the fast preset runs)
against fp32, one thread (issue 12). Tiny feature maps (16x16 and less) and 1-filter convs run 2-4x slower in
bf16 on this CPU: per-call overhead, not FLOPs. Channel counts rounded up to multiples of 8/16/32 do not help.

    python benchmarks/bench_small_convs.py --size 128
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lipcli import library, nets
from lipcli.nets import compact
from lipcli.restore import fitted_form, masked_prior


def conv_shapes(size: int) -> list[tuple[tuple[int, ...], tuple[int, ...], int]]:
    """(input shape, weight shape, stride) of every conv the compacted default ticket runs on a size^2 input."""
    prior = masked_prior(library.resolve(Path("dip-channel-house")), None, None, "artifact")
    net = prior.build(0)
    model, _, _ = fitted_form(net, prior, lambda line: None)
    shapes = []
    original = compact._Conv.forward

    def record(self, x, consts, batch, size_):
        if x is not None and self.weight is not None:
            shapes.append((tuple(x.shape), tuple(self.weight.shape), self.stride[0]))
        return original(self, x, consts, batch, size_)
    compact._Conv.forward = record
    try:
        with torch.no_grad():
            model(nets.make_input(net, size, size, torch.Generator().manual_seed(0)))
    finally:
        compact._Conv.forward = original
    return shapes


def step_ms(xs: tuple[int, ...], ws: tuple[int, ...], stride: int, dtype: torch.dtype, steps: int = 30) -> float:
    """Median ms of padded conv forward + backward (input and weight gradients), channels-last."""
    x = torch.randn(xs).to(dtype).to(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(ws).to(dtype).to(memory_format=torch.channels_last).requires_grad_()
    p = ws[2] // 2

    def once() -> None:
        y = F.conv2d(F.pad(x, (p,) * 4, mode="reflect") if p else x, w, None, stride)
        y.backward(torch.ones_like(y))
    for _ in range(5):
        once()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, default ticket compacted, {a.size}x{a.size}\n")
    print("| input | weight | stride | bf16 ms | fp32 ms | bf16 / fp32 |")
    print("|---|---|---|---:|---:|---:|")
    rows = [(xs, ws, st, step_ms(xs, ws, st, torch.bfloat16), step_ms(xs, ws, st, torch.float32))
            for xs, ws, st in conv_shapes(a.size)]
    for xs, ws, st, b, f in rows:
        print(f"| {'x'.join(map(str, xs[1:]))} | {'x'.join(map(str, ws))} | {st} | {b:.2f} | {f:.2f} | {b / f:.2f} |")
    b, f = (sum(r[k] for r in rows) for k in (3, 4))
    print(f"| all | | | {b:.1f} | {f:.1f} | {b / f:.2f} |")
    print(f"\nthe faster of the two for every conv: {sum(min(r[3], r[4]) for r in rows):.1f} ms")


if __name__ == "__main__":
    main()
