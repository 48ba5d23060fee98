"""The stop on trajectories fitted with the shipped jitter schedule, sigma 50 and 75 (RESULTS-stop-jitter.md).

Two tables from recorded trajectories (es_collect.py), each rule replayed as stop_gate.py replays it:
- per half and noise level, the rule before the switch (window 200, gate 1.05, patience 150, cap 3000) beside
  the candidates that were tested (window 400 where the blind estimate reads above 25, i.e. where the schedule
  gives more jitter than 1/30, or above 37.5, halfway: the shipped switch); sigma-50 runs count only if fitted
  with the schedule (their rows record `reg_noise`); `--seed` keeps one seed's runs;
- with `--switches`, per noise level, half and seed: the gate 1.2 where the estimate reads above each switch point
  and 1.05 below (window as shipped), against 1.05 for all: where the gate's switch belongs;
- with `--relative`, the same per level, half and seed for the shipped rule with a patience that grows with the
  minimum's iteration (max(150, r x it)): whether late-peaking fits need a longer look-ahead than early ones;
- with `--old`, per sigma-50 run the shipped rule on the 1/30 trajectory of the same crop and seed against the
  schedule's: auto-stopped and oracle PSNR (the oracle reads the clean image: reporting only), iterations.

    E=experiments/es_dev; PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_jitter.py \\
        $E/rows-ticket.jsonl.gz $E/rows-ticket-report*.jsonl.gz $E/rows-ticket-s.jsonl.gz \\
        $E/rows-ticket-s15*.jsonl.gz $E/rows-ticket-s50-jitter*.jsonl.gz \\
        --old $E/rows-ticket-s.jsonl.gz $E/rows-ticket-s50.jsonl.gz $E/rows-ticket-s50-more.jsonl.gz \\
        $E/rows-ticket-s50-seed1.jsonl.gz
    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_jitter.py $E/rows-ticket-s50-jitter*.jsonl.gz \\
        $E/rows-ticket-s60-*.jsonl.gz $E/rows-ticket-s75-*.jsonl.gz --switches 45,47.5,48.5,52.5 --tables-only
"""
from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from es_analyze import LAG
from stop_gate import load_runs, oracle, pre_study_iterations, replay

from lipcli import config, library


def estimate(r: dict) -> float:
    """The run's blind noise estimate, 0-255 units: what the entry's schedules are read at."""
    return r["sigma_used"] * 255


RULES: dict[str, Callable[[dict], int]] = {  # name -> the variance window a run is replayed with
    "window 200 (shipped before the switch)": lambda r: 200,
    "window 400 where the estimate > 25": lambda r: 400 if estimate(r) > 25 else 200,
    "window 400 where the estimate > 37.5 (shipped)": lambda r: 400 if estimate(r) > 37.5 else 200,
}
SHIPPED_WINDOW = RULES["window 400 where the estimate > 37.5 (shipped)"]


@functools.cache
def _entry() -> dict:
    """The default denoising ticket's settings over the fast preset, as lipcli reads them (once)."""
    return library.fast_settings("dip-channel-house", "fast", "denoise", named=True)


def shipped(key: str, r: dict) -> float:
    """What the entry's schedule for `key` gives this run, read by lipcli itself so a replay follows the product."""
    return config.at_level(key, _entry()[key], estimate(r))


def shipped_gate(r: dict) -> float:
    """The gate the entry's schedule gives this run (1.2 where the estimate reads above 52.5, else 1.05)."""
    return shipped("es_gate", r)


def gated(r: dict, window: int = 200, tau: float = 1.05, relative: float = 0.0, lag: int = LAG) -> tuple[int, float]:
    """(iterations, auto-stopped PSNR) of the gated rule (patience 150, cap 3000) with this variance window and
    gate (200 and 1.05: the rule before the switches); `relative` and `lag` as in stop_gate.replay."""
    return replay(r, tau, r["sigma_used"], 150, min(3000, r["iters"]), window, relative=relative, lag=lag)


def scheduled(runs: list[dict]) -> list[dict]:
    """The 128x128 runs fitted with the shipped jitter schedule (sigma-50 rows record `reg_noise` if so; the
    sigma-60 and 75 runs all were)."""
    return [r for r in runs if r["size"] == 128 and (r["param"] != "50" or "reg_noise" in r)]


def windows(runs: list[dict]) -> None:
    print("| half | sigma | runs (at 400) | rule | mean gap | p90 gap | max gap | iterations (x pre-study rule) |")
    print("|---|---|---|---|---|---|---|---|")
    for half in ("tune", "report"):
        for sigma in sorted({r["param"] for r in runs}, key=float):
            rows = [r for r in scheduled(runs) if r["half"] == half and r["param"] == sigma]
            if not rows:
                continue
            pre = np.mean([pre_study_iterations(r) for r in rows])
            for name, window in RULES.items():
                got = np.array([gated(r, window(r)) for r in rows])
                gap = np.array([oracle(r) for r in rows]) - got[:, 1]
                print(f"| {half} | {sigma} | {len(rows)} ({sum(window(r) == 400 for r in rows)}) | {name} | "
                      f"{gap.mean():.2f} | {np.percentile(gap, 90):.2f} | {gap.max():.2f} | "
                      f"{got[:, 0].mean():.0f} ({got[:, 0].mean() / pre:.3f}x) |")


def by_group(runs: list[dict], arms: dict[str, Callable[[dict], tuple[int, float]]]) -> None:
    """Per noise level, half and seed: each arm's mean / p90 gap and iterations (x the pre-study rule's); after
    the first arm, on how many runs it is better / worse than the first."""
    print("| sigma | half | seed | runs | estimates | " + " | ".join(arms) + " |")
    print("|---" * (5 + len(arms)) + "|")
    runs = scheduled(runs)
    for sigma, half, seed in sorted({(r["param"], r["half"], r["seed"]) for r in runs},
                                    key=lambda k: (float(k[0]), k[1] != "tune", k[2])):
        rows = [r for r in runs if (r["param"], r["half"], r["seed"]) == (sigma, half, seed)]
        pre = np.mean([pre_study_iterations(r) for r in rows])
        best = np.array([oracle(r) for r in rows])
        cells, first = [], None
        for arm in arms.values():
            got = np.array([arm(r) for r in rows])
            gap = best - got[:, 1]
            cell = f"{gap.mean():.2f} / {np.percentile(gap, 90):.2f} {got[:, 0].mean() / pre:.2f}x"
            if first is None:
                first = gap
            else:
                cell += f" ({int((gap < first - 1e-9).sum())} better, {int((gap > first + 1e-9).sum())} worse)"
            cells.append(cell)
        est = [estimate(r) for r in rows]
        print(f"| {sigma} | {half} | {seed} | {len(rows)} | {min(est):.1f}-{max(est):.1f} | " + " | ".join(cells) + " |")


def switches(points: list[float]) -> dict[str, Callable[[dict], tuple[int, float]]]:
    """Gate 1.2 where the estimate reads above each point, 1.05 below (window as shipped)."""
    return {f"switch {p:g}" if p < math.inf else "1.05 for all":
            lambda r, p=p: gated(r, SHIPPED_WINDOW(r), 1.2 if estimate(r) > p else 1.05)
            for p in (math.inf, *points)}


def relatives(factors: list[float]) -> dict[str, Callable[[dict], tuple[int, float]]]:
    """The shipped rule with patience max(150, r x the minimum's iteration)."""
    return {f"relative {f:g}" if f else "shipped":
            lambda r, f=f: gated(r, SHIPPED_WINDOW(r), shipped_gate(r), f) for f in (0.0, *factors)}


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
    ap.add_argument("--switches", type=lambda t: [float(x) for x in t.split(",")], default=[],
                    help="estimates above which the gate is 1.2: a table per level, half and seed")
    ap.add_argument("--relative", type=lambda t: [float(x) for x in t.split(",")], default=[],
                    help="patience factors r: the shipped rule with patience max(150, r x the minimum's iteration)")
    ap.add_argument("--tables-only", action="store_true", help="print only the --switches / --relative tables")
    ap.add_argument("--old", type=Path, nargs="*", default=[], help="the 1/30 sigma-50 trajectories: a paired table")
    a = ap.parse_args()
    runs = [r for r in load_runs(a.rows) if a.seed in (None, r["seed"])]
    if not a.tables_only:
        windows(runs)
    for arms in (switches(a.switches) if a.switches else None, relatives(a.relative) if a.relative else None):
        if arms:
            print()
            by_group(runs, arms)
    if a.old:
        print()
        paired(runs, load_runs(a.old))


if __name__ == "__main__":
    main()
