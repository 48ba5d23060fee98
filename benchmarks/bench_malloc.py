#!/usr/bin/env python
"""Keeping freed memory (lipcli/allocator.py, as `lip` does from its start) against glibc's defaults:
per-iteration time of lip's real loop (`fit`, bf16 autocast + channels_last where the CPU has bf16), page
faults and peak memory.

An allocator setting is per process, so each measurement is a fresh process (`--child`), with LIP_KEEP_MEMORY=0
for glibc's defaults; the two arms alternate (on, off, off, on, ...) so a drift of the machine's speed falls on
both. Ratios are paired per repeat (kept / defaults), then the median.

    python benchmarks/bench_malloc.py --repeats 7 --out benchmarks/RESULTS-malloc.md
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

ROOT = Path(__file__).resolve().parents[1]
CASES = ("ticket:128:2", "dip:128:2", "ticket:256:2", "dip:256:2", "ticket:128:1", "ticket:512:2")
STEPS = {128: 40, 256: 15, 512: 6, 1024: 3, 2048: 2}


def child(net_name: str, size: int, threads: int, steps: int) -> None:
    """Print one JSON line: median ms per step, page faults per step, peak RSS (MB), whether the setting applied."""
    from lipcli import allocator
    kept = allocator.keep_freed_memory()  # before torch allocates anything, as `lip` does
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_iter import auto_path, default_ticket, make_z, synthetic_problem, time_lip
    from lipcli import nets

    torch.set_num_threads(threads)
    if net_name == "ticket":
        _, net = default_ticket(0)
    else:
        torch.manual_seed(0)
        net = nets.build(nets.preset(net_name))
    path = auto_path()
    z, (_, y) = make_z(size, 0), synthetic_problem(size)
    time_lip(path, net, z, y, 3, 0)  # warm-up: oneDNN primitives, the allocator's first growth
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    times, _ = time_lip(path, net, z, y, steps, 0)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (steps + 1)
    print(json.dumps({"ms": 1000 * statistics.median(times), "faults": faults, "path": path, "kept": kept,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(case: str, keep: bool) -> dict:
    net_name, size, threads = case.split(":")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LIP_KEEP_MEMORY", None)
    if not keep:
        env["LIP_KEEP_MEMORY"] = "0"
    out = subprocess.run([sys.executable, __file__, "--child", net_name, size, threads, str(STEPS[int(size)])],
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=4, metavar=("NET", "SIZE", "THREADS", "STEPS"), help=argparse.SUPPRESS)
    ap.add_argument("--cases", default=",".join(CASES), help="NET:SIZE:THREADS, comma separated")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]), int(a.child[2]), int(a.child[3]))
        return
    import torch

    lines = ["# Keeping freed memory against glibc's defaults", "",
             f"- command: `python benchmarks/bench_malloc.py --repeats {a.repeats}`"
             + (f" --cases {a.cases}" if a.cases != ",".join(CASES) else ""),
             f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, "
             f"{os.cpu_count()} CPUs; one fresh process per measurement, the arms alternating; median ms of the "
             "timed steps per process, then medians over repeats; ratio = kept / defaults, paired per repeat", "",
             "| net | size | threads | path | ms/it defaults | ms/it kept | ratio (range) | faults/it defaults | "
             "kept | peak RSS MB defaults | kept |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    med = statistics.median
    for case in a.cases.split(","):
        pairs = []
        for r in range(a.repeats):
            order = (True, False) if r % 2 == 0 else (False, True)
            got = {keep: measure(case, keep) for keep in order}
            pairs.append((got[False], got[True]))
            print(f"{case} repeat {r + 1}: defaults {got[False]['ms']:.1f} ms, kept {got[True]['ms']:.1f} ms",
                  file=sys.stderr, flush=True)
        ratios = [k["ms"] / d["ms"] for d, k in pairs]
        net_name, size, threads = case.split(":")
        cell = lambda arm, key, f: format(med(p[arm][key] for p in pairs), f)  # noqa: E731
        lines.append(f"| {net_name} | {size} | {threads} | {pairs[0][0]['path']} | {cell(0, 'ms', '.1f')} | "
                     f"{cell(1, 'ms', '.1f')} | {med(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f}) | "
                     f"{cell(0, 'faults', '.0f')} | {cell(1, 'faults', '.0f')} | {cell(0, 'rss_mb', '.0f')} | "
                     f"{cell(1, 'rss_mb', '.0f')} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
