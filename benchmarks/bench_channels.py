#!/usr/bin/env python
"""Does a channel ticket pay? Per-iteration time of `lip restore` at 128x128: the dense default net vs
a channel ticket from `lip prune --granularity channel`, fitted with `--compact` (issue 12, item 1).

Both are run through the real CLI (one process per restore, this checkout), interleaved: every
repetition runs one dense and one ticket restore in turn, so the slow episodes of a shared machine
hit both; medians over repetitions are reported, plus the median of the per-repetition ratios.
Per-iteration time = the fit's own `seconds` / `iterations` from `--json` (process start-up and
image loading excluded).

Without --ticket the script first makes one with PRUNE (below, on the bundled noisy House crop); the
search's time is reported, not compared. The ticket is restored at its last round (the sparsest): the
IMP recommendation reads the training loss, which a narrower net always raises.

Usage:  python benchmarks/bench_channels.py [--ticket T.safetensors] [--iters 40] [--repeats 5]
                                           [--threads 1] [--out benchmarks/RESULTS-channels.md]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lipcli import artifact

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IMAGE = "sample:house-noisy"
PRUNE = ["prune", IMAGE, "--granularity", "channel", "--rounds", "4", "--rate", "0.5", "--iters", "100",
         "--seed", "0"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def lip(args: list[str]) -> str:
    """Run `python -m lipcli ARGS` from this checkout; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "lipcli", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"lip {shlex.join(args)} failed:\n{done.stderr}")
    return done.stdout


def restore(extra: list[str], iters: int, threads: int, out: Path) -> dict:
    """One restore; its JSON report."""
    args = ["restore", IMAGE, "--iters", str(iters), "--seed", "0", "--threads", str(threads), "--json",
            "-o", str(out), *extra]
    return json.loads(lip(args).splitlines()[-1])


def load() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ticket", type=Path, default=None, help="a channel ticket (default: run PRUNE first)")
    ap.add_argument("--iters", type=int, default=40, help="Adam iterations per timed restore")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per restore (1: steadier when shared)")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-channels.md")
    args = ap.parse_args()
    began, load_start = time.perf_counter(), load()
    tmp = Path(tempfile.mkdtemp(prefix="bench_channels_"))
    prune_cmd, prune_s = None, None
    ticket = args.ticket
    if ticket is None:
        ticket = tmp / "house_channel.safetensors"
        prune_cmd = ["lip", *PRUNE, "--threads", str(args.threads), "-o", str(ticket)]
        log("searching: " + shlex.join(prune_cmd))
        t = time.perf_counter()
        lip([*prune_cmd[1:]])
        prune_s = time.perf_counter() - t
    last = artifact.load(ticket).rounds
    runs: dict[str, list[dict]] = {"dense": [], "ticket": []}
    extras = {"dense": [], "ticket": ["--mask", str(ticket), "--round", str(last), "--compact"]}
    for r in range(args.repeats):
        for name in runs:
            rep = restore(extras[name], args.iters, args.threads, tmp / f"{name}.png")
            runs[name].append(rep)
            log(f"repeat {r + 1}/{args.repeats} {name}: {rep['seconds'] / rep['iterations'] * 1e3:.0f} ms/iter")
    per_iter = {n: [rep["seconds"] / rep["iterations"] for rep in reps] for n, reps in runs.items()}
    ratios = [d / t for d, t in zip(per_iter["dense"], per_iter["ticket"])]
    compact = runs["ticket"][0]["compact"]
    took = (time.perf_counter() - began) / 60
    restore_cmd = (f"lip restore {IMAGE} --iters {args.iters} --seed 0 --threads {args.threads} --json "
                   "-o dense.png"
                   f"  /  ... --mask {ticket.name} --round {last} --compact -o ticket.png")
    lines = [
        "# Channel tickets: per-iteration time of the dense net vs a compacted channel ticket (issue 12.1)",
        "",
        f"Command: `python benchmarks/bench_channels.py {shlex.join(sys.argv[1:])}`".rstrip() + "  ",
        f"Run: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC ({took:.1f} min); "
        f"load average at start {load_start}, at end {load()}  ",
        "Machine: 2 CPU cores **shared with several other agents' jobs** while this ran, so absolute times "
        "are noisy; the two nets were timed interleaved (one restore of each per repetition) and the "
        "ratio is the median of per-repetition ratios.",
        "",
        "Ticket: " + (f"`{shlex.join(prune_cmd)}` (fast preset; search took {prune_s / 60:.1f} min)"
                      if prune_cmd else f"`{ticket}` (given)"),
        f"Timed restores (each {args.iters} Adam iterations at 128x128, fast preset, {args.threads} thread): "
        f"`{restore_cmd}`",
        "",
        "| net | params fitted | channels (conv blocks) | ms/iter per repetition | median ms/iter |",
        "|---|---:|---:|---|---:|",
        f"| dense default `dip` | {runs['dense'][0]['params']:,} | {compact['channels_total']:,} | "
        + ", ".join(f"{v * 1e3:.0f}" for v in per_iter["dense"])
        + f" | {statistics.median(per_iter['dense']) * 1e3:.0f} |",
        f"| channel ticket, `--compact` | {compact['params_after']:,} | "
        f"{compact['channels_total'] - compact['channels_removed']:,} | "
        + ", ".join(f"{v * 1e3:.0f}" for v in per_iter["ticket"])
        + f" | {statistics.median(per_iter['ticket']) * 1e3:.0f} |",
        "",
        "Speed-up per iteration (dense / ticket): median of per-repetition ratios "
        f"**{statistics.median(ratios):.2f}x**"
        f" (ratios {', '.join(f'{v:.2f}' for v in ratios)}); parameters {runs['dense'][0]['params']:,} -> "
        f"{compact['params_after']:,} ({runs['dense'][0]['params'] / compact['params_after']:.1f}x fewer).",
        "",
        f"Precision: {runs['dense'][0]['precision']} (the fast preset's choice on this CPU), both nets. "
        f"The ticket is round {last} at {100 * runs['ticket'][0]['sparsity']:.1f}% sparsity of the conv "
        "weights. Speed only: whether such a ticket restores as well as the dense net is the study's "
        "question (issue 12, item 4); this short search is not claimed to.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    log(f"wrote {args.out}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
