"""A stop that closes once the residual has turned high-pass: replay on recorded trajectories (issue 17).

Why: at sigma 50 some fits never stop. comic (128x128, seed 6, the compacted ticket) peaked at iteration 1516 and
the variance of its outputs still fell at 3000, so no minimum held for the patience and the cap's output came
back 1.5 dB under the peak (RESULTS-rollback.md); on the recorded tune runs comic seed 0 did the same, and most
of what is left of the gap at 50-75 are stops after the peak. The residual y - x says when the fit has passed
its peak: while the net draws the image the residual is correlated (lag-1 autocorrelation > 0); once it draws the
noise, the residual loses the noise's smooth part and its autocorrelation falls through 0 (comic: -0.02 at the
peak, -0.1 at 3000). The whiteness gate (RESULTS-stop-white.md) opens the stop where it comes down to a level;
this closes it: once a minimum has counted and the trailing mean (over 50 iterations) has come down to `close`,
no later minimum counts, and the stop fires once the patience has passed since the last one.

Groups: the recorded runs of today's default ticket at each noise level (decayed at 15 and 25, as shipped; the
whiteness signals recorded): tune halves choose, report halves (and sigma 10 and 60, not used to choose) judge.
The plan and marks are in RESULTS-stop-close.md. Never reads the clean image (the oracle is for scoring only).

    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_close.py tune      # the grid, tune halves
    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_close.py report --closes 0.015 [--per-crop]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stop_gate import HERE, load_runs, oracle
from stop_white import replay_gated

GROUPS = {"10": ["ticket-cap-s10a", "ticket-cap-s10b"], "15": ["ticket-decay-s15"],
          "25": ["ticket-decay-s25", "ticket-decay-s25-seed1a", "ticket-decay-s25-seed1b"],
          "50": ["white-s50-*"], "60": ["white-s60-*"], "75": ["white-s75-*"]}
DECAY = {"15": 0.1, "25": 0.2}  # the entry's weight decay at these levels (none at the others)
CLOSES = "0.0,0.005,0.01,0.0125,0.015,0.0175,0.02,0.025"


def runs_of(group: str, half: str) -> list[dict]:
    """The group's recorded plain runs with the decay today's default has at that level."""
    paths = sorted(p for pat in GROUPS[group] for p in (HERE / "es_dev").glob(f"rows-{pat}.jsonl.gz"))
    return [r for r in load_runs(paths) if (half == "all" or r["half"] == half)
            and r.get("weight_decay", 0) == DECAY.get(group, 0)]


def rule(r: dict, close: float | None) -> tuple[int, float]:
    """(iterations used, reported PSNR) of the shipped rule, closed at `close` (None: today's)."""
    return replay_gated(r, "white_raw", "shipped", "shipped", min(r["iters"], 5000 if r["param"] == "10" else 3000),
                        close=close)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("half", choices=("tune", "report", "all"))
    ap.add_argument("--closes", default=CLOSES, help="comma list of close levels")
    ap.add_argument("--per-crop", action="store_true", help="one line per run that the first level changes")
    a = ap.parse_args()
    closes = [float(x) for x in a.closes.split(",")]
    print("| sigma | runs | close | mean gap dB | p90 | max | iterations (x today's) | changed: better / worse |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for group in GROUPS:
        runs = runs_of(group, a.half)
        if not runs:
            continue
        best = np.array([oracle(r) for r in runs])
        base = np.array([rule(r, None) for r in runs]).T
        for close in (None, *closes):
            used, psnr = np.array([rule(r, close) for r in runs]).T if close is not None else base
            gap, d = best - psnr, psnr - base[1]
            print(f"| {group} | {len(runs)} | {'today' if close is None else close} | {gap.mean():.3f} | "
                  f"{np.percentile(gap, 90):.2f} | {gap.max():.2f} | {used.mean():.0f} "
                  f"({used.mean() / base[0].mean():.2f}x) | {np.sum(d > 1e-9)} / {np.sum(d < -1e-9)} |")
        if a.per_crop:
            for r, b, g0 in zip(runs, base.T, best - base[1]):
                used, psnr = rule(r, closes[0])
                if abs(psnr - b[1]) > 1e-9:
                    peak = int(np.argmax(r["signals"]["psnr_ema"])) + 1
                    print(f"    {r['image']} s{r['seed']} ({r['half']}) peak {peak}: today {g0:.2f} dB under at "
                          f"{b[0]:.0f} it, closed {oracle(r) - psnr:.2f} at {used:.0f}")


if __name__ == "__main__":
    main()
