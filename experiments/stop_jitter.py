"""The stop on trajectories fitted with the shipped jitter schedule, sigma 50 and 75 (RESULTS-stop-jitter.md).

Two tables from recorded trajectories (es_collect.py), each rule replayed as stop_gate.py replays it:
- per half and noise level, the rule before the switch (window 200, gate 1.05, patience 150, cap 3000) beside
  the candidates that were tested (window 400 where the blind estimate reads above 25, i.e. where the schedule
  gives more jitter than 1/30, or above 37.5, halfway: the shipped switch); sigma-50 runs count only if fitted
  with the schedule (their rows record `reg_noise`); `--seed` keeps one seed's runs;
- with `--old`, per sigma-50 run the shipped rule on the 1/30 trajectory of the same crop and seed against the
  schedule's: auto-stopped and oracle PSNR (the oracle reads the clean image: reporting only), iterations.

    E=experiments/es_dev; PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_jitter.py \\
        $E/rows-ticket.jsonl.gz $E/rows-ticket-report*.jsonl.gz $E/rows-ticket-s.jsonl.gz \\
        $E/rows-ticket-s15*.jsonl.gz $E/rows-ticket-s50-jitter*.jsonl.gz \\
        --old $E/rows-ticket-s.jsonl.gz $E/rows-ticket-s50.jsonl.gz $E/rows-ticket-s50-more.jsonl.gz \\
        $E/rows-ticket-s50-seed1.jsonl.gz
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stop_gate import load_runs, oracle, pre_study_iterations, replay

RULES: dict[str, Callable[[dict], int]] = {  # name -> the variance window a run is replayed with
    "window 200 (shipped before the switch)": lambda r: 200,
    "window 400 where the estimate > 25": lambda r: 400 if r["sigma_used"] * 255 > 25 else 200,
    "window 400 where the estimate > 37.5 (shipped)": lambda r: 400 if r["sigma_used"] * 255 > 37.5 else 200,
}


def gated(r: dict, window: int = 200) -> tuple[int, float]:
    """(iterations, auto-stopped PSNR) of the shipped gated rule (gate 1.05, patience 150, cap 3000) with this
    variance window (200: the shipped rule itself)."""
    return replay(r, 1.05, r["sigma_used"], 150, min(3000, r["iters"]), window)


def windows(runs: list[dict]) -> None:
    print("| half | sigma | runs (at 400) | rule | mean gap | p90 gap | max gap | iterations (x pre-study rule) |")
    print("|---|---|---|---|---|---|---|---|")
    for half in ("tune", "report"):
        for sigma in sorted({r["param"] for r in runs}, key=float):
            rows = [r for r in runs if r["half"] == half and r["param"] == sigma and r["size"] == 128
                    and (sigma != "50" or "reg_noise" in r)]
            if not rows:
                continue
            pre = np.mean([pre_study_iterations(r) for r in rows])
            for name, window in RULES.items():
                got = np.array([gated(r, window(r)) for r in rows])
                gap = np.array([oracle(r) for r in rows]) - got[:, 1]
                print(f"| {half} | {sigma} | {len(rows)} ({sum(window(r) == 400 for r in rows)}) | {name} | "
                      f"{gap.mean():.2f} | {np.percentile(gap, 90):.2f} | {gap.max():.2f} | "
                      f"{got[:, 0].mean():.0f} ({got[:, 0].mean() / pre:.3f}x) |")


def paired(new: list[dict], old: list[dict]) -> None:
    before = {r["key"]: r for r in old if r["param"] == "50"}
    print("| half | crop | seed | jitter | auto-stopped: 1/30 -> schedule | oracle | iterations |")
    print("|---|---|---|---|---|---|---|")
    for half in ("tune", "report"):
        diff, up, used, gaps = [], [], [], []
        for r in sorted((r for r in new if r["half"] == half and "reg_noise" in r and r["key"] in before),
                        key=lambda r: (r["image"], r["seed"])):
            o = before[r["key"]]
            (un, pn), (uo, po) = gated(r), gated(o)
            diff.append(pn - po)
            up.append(oracle(r) - oracle(o))
            used.append((un, uo))
            gaps.append(oracle(r) - pn)
            print(f"| {half} | {r['image']} | {r['seed']} | {r['reg_noise']:.4f} | "
                  f"{po:.2f} -> {pn:.2f} ({pn - po:+.2f}) | {oracle(o):.2f} -> {oracle(r):.2f} | "
                  f"{uo:.0f} -> {un:.0f} |")
        if diff:
            u = np.array(used)
            print(f"\n{half}: {len(diff)} runs, auto-stopped {np.mean(diff):+.2f} dB (worst {min(diff):+.2f}, "
                  f"better on {sum(d > 0 for d in diff)}), oracle {np.mean(up):+.2f}, "
                  f"iterations {u[:, 0].sum() / u[:, 1].sum():.2f}x; "
                  f"schedule's gap {np.mean(gaps):.2f} / p90 {np.percentile(gaps, 90):.2f}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=Path, nargs="+")
    ap.add_argument("--seed", type=int, help="only this seed's runs (e.g. 2: the fresh runs of the window test)")
    ap.add_argument("--old", type=Path, nargs="*", default=[], help="the 1/30 sigma-50 trajectories: a paired table")
    a = ap.parse_args()
    runs = [r for r in load_runs(a.rows) if a.seed in (None, r["seed"])]
    windows(runs)
    if a.old:
        print()
        paired(runs, load_runs(a.old))


if __name__ == "__main__":
    main()
