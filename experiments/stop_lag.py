"""Which output the stop reports: the EMA at the variance minimum + 99 (shipped) or at the minimum itself, by noise
level (RESULTS-stop-jitter.md, nineteenth session). Replays the shipped rule (window and gate schedules, patience 150,
cap 3000) on recorded trajectories; `--candidate` compares the rule written before the report rows were replayed
(lag 0 where the blind estimate reads in (37.5, 52.5]) with the shipped one, per level, half and seed.

    E=experiments/es_dev; PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_lag.py $E/rows-ticket.jsonl.gz \\
        $E/rows-ticket-s15*.jsonl.gz $E/rows-ticket-s50-jitter*-tune.jsonl.gz $E/rows-ticket-s60-tune-*.jsonl.gz \\
        $E/rows-ticket-s75-tune.jsonl.gz     # the tune halves (and the report runs in these files)
    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_lag.py --candidate $E/rows-ticket-s50-jitter.jsonl.gz \\
        $E/rows-ticket-s50-jitter-seed[23]-report.jsonl.gz $E/rows-ticket-s60-report.jsonl.gz
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from es_analyze import LAG
from stop_gate import load_runs, oracle, replay
from stop_jitter import SHIPPED_WINDOW, estimate, scheduled, shipped_gate


def reported(r: dict, lag: int) -> float:
    """The EMA PSNR the shipped rule reports when it takes the output `lag` iterations after the minimum."""
    return replay(r, shipped_gate(r), r["sigma_used"], 150, min(3000, r["iters"]), SHIPPED_WINDOW(r), lag=lag)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=Path, nargs="+")
    ap.add_argument("--candidate", action="store_true", help="the written candidate against the shipped rule")
    a = ap.parse_args()
    runs = scheduled(load_runs(a.rows))
    for key in sorted({(r["param"], r["half"], r["seed"]) for r in runs}, key=lambda k: (float(k[0]), k[1], k[2])):
        rows = [r for r in runs if (r["param"], r["half"], r["seed"]) == key]
        if a.candidate and key[0] == "60":
            rows = [r for r in rows if estimate(r) <= 52.5]  # the runs the candidate touches
        best = np.array([oracle(r) for r in rows])
        shipped = best - np.array([reported(r, LAG) for r in rows])
        lag = (lambda r: 0 if 37.5 < estimate(r) <= 52.5 else LAG) if a.candidate else (lambda r: 0)
        other = best - np.array([reported(r, lag(r)) for r in rows])
        print(f"sigma {key[0]} {key[1]} seed {key[2]} ({len(rows)} runs): shipped {shipped.mean():.2f} / "
              f"{np.percentile(shipped, 90):.2f}, {'candidate' if a.candidate else 'lag 0'} {other.mean():.2f} / "
              f"{np.percentile(other, 90):.2f} (better on {int((other < shipped - 1e-9).sum())}, "
              f"worse on {int((other > shipped + 1e-9).sum())})")


if __name__ == "__main__":
    main()
