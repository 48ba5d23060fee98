#!/usr/bin/env python
"""Does an iteration's time scale with the net's width? lip's loop vs the plain reference loop, for the
DIP hourglass at full width and at 1/2, 1/4 and 1/8 of its channels (dip, dip-w64/w32/w16).

The question behind issue 12: a narrow or compacted prior is only worth it if its iterations are
cheap; the part of an iteration that does not shrink with width (BatchNorm, upsampling, Adam,
autograd dispatch, lip's bookkeeping) decides how far that goes. Paths are interleaved per repeat
(ref-w128, lip-w128, ref-w64, ...) and medians reported, because shared machines have noisy
episodes; lip runs its real loop (`fit`, precision "auto" as the fast preset decides it), the
reference is bench_iter.py's plain fp32 loop on the same weights, z and noisy image.

    python benchmarks/bench_widths.py --size 128 --repeats 5 --out benchmarks/RESULTS-widths.md
"""
from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_iter import (auto_path, build_reference, detector_ms, emit, synthetic_problem, time_lip,  # noqa: E402
                        time_ref, timing_parser)

from lipcli import nets  # noqa: E402

WIDTHS = {"dip": 128, "dip-w64": 64, "dip-w32": 32, "dip-w16": 16}


def main() -> None:
    a = timing_parser(__doc__).parse_args()
    torch.set_num_threads(a.threads)
    path = auto_path()
    clean, noisy = synthetic_problem(a.size)
    ms: dict[tuple[str, str], list[float]] = {}
    gflop = {}
    for rep in range(a.repeats):
        for name in WIDTHS:
            spec = nets.preset(name)
            ref, _, _ = build_reference(spec)
            torch.manual_seed(rep)
            lip = nets.build(spec)
            z = nets.make_input(lip, a.size, a.size, torch.Generator().manual_seed(rep))
            gflop[name] = nets.iteration_gflop(lip, z)
            ms.setdefault((name, "ref"), []).append(statistics.median(time_ref(ref, z, noisy, a.steps)) * 1e3)
            ms.setdefault((name, "lip"), []).append(
                statistics.median(time_lip(path, lip, z, noisy, a.steps, rep)[0]) * 1e3)
            print(f"repeat {rep + 1}/{a.repeats} {name}: ref {ms[name, 'ref'][-1]:.1f} ms, "
                  f"lip {ms[name, 'lip'][-1]:.1f} ms", file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in ms.items()}
    det = detector_ms(a.size)
    lines = [
        f"# Iteration time against width ({a.size}x{a.size})", "",
        f"- command: `python benchmarks/bench_widths.py --size {a.size} --repeats {a.repeats} --steps {a.steps} "
        f"--threads {a.threads}`",
        f"- {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, {a.threads} threads, "
        f"load average at the end {os.getloadavg()[0]:.1f}; lip path {path}; medians of {a.repeats} interleaved "
        f"repeats of the median of {a.steps} iterations",
        f"- lip's early-stop detector adds {det:.2f} ms per iteration once its window is full (not in the windows timed)",
        "", "| net | params | GFLOP/iter | ref ms/iter | lip ms/iter | ref / lip | lip vs dense lip | GFLOP vs dense |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in WIDTHS:
        lines.append(
            f"| {name} | {nets.count_params(nets.build(nets.preset(name))):,} | {gflop[name]:.2f} | "
            f"{med[name, 'ref']:.1f} | {med[name, 'lip']:.1f} | {med[name, 'ref'] / med[name, 'lip']:.2f}x | "
            f"{med[name, 'lip'] / med['dip', 'lip']:.3f} | {gflop[name] / gflop['dip']:.3f} |")
    emit("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    main()
