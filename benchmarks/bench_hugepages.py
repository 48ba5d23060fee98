#!/usr/bin/env python
"""Huge pages for activations: lip's training step with PyTorch's THP_MEM_ALLOC_ENABLE on vs off.

Why: a DIP step allocates and frees gigabytes of activations that glibc maps fresh each time, so every
iteration page-faults them in 4 KiB pages (3.4 million faults per step at 1024x1024). PyTorch's
allocator madvises huge pages for big tensors when THP_MEM_ALLOC_ENABLE=1 (read once, before its first
allocation); lip leaves it to the user because the gain was not uniform (see RESULTS-hugepages.md).

Each measurement is a fresh process (the allocator reads the variable once) that runs lip's real loop
(`lipcli.fit.fit`, the full DIP net, bf16 + channels_last, sigma-25 denoising of a synthetic image) and
reports the median seconds per iteration after the first two, and the minor page faults per iteration.
Processes alternate off/on, `--repeats` times per size.

    python benchmarks/bench_hugepages.py --sizes 128 256 512 1024 --repeats 2 --out benchmarks/RESULTS-hugepages.md
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ITERS = {128: 24, 256: 12, 512: 6, 1024: 4, 2048: 3}


def child(size: int) -> None:
    import torch

    from lipcli import nets
    from lipcli.fit import FitConfig, Target, fit
    from lipcli.physics import Denoise

    torch.manual_seed(0)
    net = nets.build(nets.preset("dip"))
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(1, 3, size, size, generator=gen)
    z = nets.make_input(net, size, size, gen)
    stamps: list[tuple[float, int]] = []

    def tick(step) -> None:
        stamps.append((time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt))

    cfg = FitConfig(iters=ITERS[size], early_stop=False, precision="bf16", channels_last=True)
    fit(net, [Target(z=z, op=Denoise(25), y=y, size=(size, size))], cfg, callbacks=[tick])
    steps = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps[1:], stamps[2:])]
    print(json.dumps({"s": statistics.median(s for s, _ in steps), "faults": statistics.median(f for _, f in steps)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS-hugepages.md"))
    ap.add_argument("--_child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._child:
        return child(a._child)
    runs: dict[tuple[int, str], list[dict]] = {}
    for size in a.sizes:
        for _ in range(a.repeats):
            for thp in ("0", "1"):
                env = {**os.environ, "THP_MEM_ALLOC_ENABLE": thp}
                out = subprocess.run([sys.executable, __file__, "--_child", str(size)], env=env, check=True,
                                     capture_output=True, text=True).stdout
                rec = json.loads(out.strip().splitlines()[-1])
                runs.setdefault((size, thp), []).append(rec)
                print(f"{size} THP={thp}: {rec['s'] * 1000:.0f} ms/iter, {rec['faults']:.0f} faults/iter", file=sys.stderr)
    lines = ["# Huge pages for activations (THP_MEM_ALLOC_ENABLE)", "",
             f"- command: `python benchmarks/bench_hugepages.py --sizes {' '.join(map(str, a.sizes))} --repeats {a.repeats}`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 2-core AMD EPYC (avx512_bf16), "
             "transparent_hugepage=madvise, torch 2.13.0+cpu, 2 threads; quiet VM",
             "- lip's loop (`fit`), full DIP net, bf16 + channels_last; a fresh process per run, off/on alternating; "
             "ms/iter = median over iterations 3.., then the median over repeats", "",
             "| size | ms/iter off | ms/iter on | speed-up | page faults/iter off | on |", "|---|---|---|---|---|---|"]
    for size in a.sizes:
        off, on = runs[(size, "0")], runs[(size, "1")]
        m_off, m_on = statistics.median(r["s"] for r in off), statistics.median(r["s"] for r in on)
        lines.append(f"| {size}² | {m_off * 1000:.0f} | {m_on * 1000:.0f} | {m_off / m_on:.2f}x | "
                     f"{statistics.median(r['faults'] for r in off):,.0f} | {statistics.median(r['faults'] for r in on):,.0f} |")
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
