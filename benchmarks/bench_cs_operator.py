"""Peak memory and time of the paper's CS operator: m = 1000 Gaussian rows of a 256x256x3 image.

Each mode runs in a fresh process (so its peak resident memory is its own): it builds the operator, takes
one forward product A x, one adjoint A^T y, and one backward pass of |A x - y|^2 through autograd (what a
fit does per step), and prints one JSON line: the process's peak RSS (resource.getrusage), the peak of a
process that only imported torch and lipcli (the baseline, measured the same way), and the seconds.

- streamed: `GaussianCS` as lip builds it at this size (blocks of rows regenerated from the seed).
- kept: the same matrix held whole (what lip did below 100M entries before, and refused above).

    python benchmarks/bench_cs_operator.py [--size 256] [--m 1000]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def run(mode: str, size: int, m: int) -> dict:
    import torch

    from lipcli.physics.cs import GaussianCS

    torch.set_num_threads(1)
    base = _peak_mb()
    if mode == "baseline":
        return {"mode": mode, "peak_mb": round(base)}
    start = time.perf_counter()
    op = GaussianCS((3, size, size), m, outliers=m // 50, noise=0.01, seed=0, keep=mode == "kept")
    built = time.perf_counter()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1), requires_grad=True)
    y = op(x.detach(), torch.Generator().manual_seed(2))
    forward = time.perf_counter()
    op.A_adjoint(y)
    adjoint = time.perf_counter()
    (op.A(x) - y).pow(2).sum().backward()
    step = time.perf_counter()
    return {"mode": mode, "size": size, "m": m, "n": op.n, "kept": op.matrix is not None,
            "peak_mb": round(_peak_mb()), "build_s": round(built - start, 2), "forward_s": round(forward - built, 2),
            "adjoint_s": round(adjoint - forward, 2), "forward_backward_s": round(step - adjoint, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--m", type=int, default=1000)
    ap.add_argument("--mode", help=argparse.SUPPRESS)  # one mode, in this process
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(run(args.mode, args.size, args.m)))
        return
    for mode in ("baseline", "streamed", "kept"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--size", str(args.size), "--m", str(args.m)],
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
