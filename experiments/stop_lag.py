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

from stop_gate import load_runs
from es_analyze import LAG
from stop_jitter import SHIPPED_WINDOW, by_group, estimate, gated, shipped_gate


def at_lag(lag: int):
    """The shipped rule taking its output `lag` iterations after the variance minimum (shipped: the EMA's lag)."""
    return lambda r: gated(r, SHIPPED_WINDOW(r), shipped_gate(r), lag=lag)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=Path, nargs="+")
    ap.add_argument("--candidate", action="store_true", help="the written candidate against the shipped rule")
    a = ap.parse_args()
    runs = load_runs(a.rows)
    shipped, lag0 = at_lag(LAG), at_lag(0)
    if a.candidate:  # lag 0 only where the estimate reads in (37.5, 52.5]; at sigma 60 only the runs it touches
        runs = [r for r in runs if r["param"] != "60" or estimate(r) <= 52.5]
        other = {"candidate": lambda r: (lag0 if 37.5 < estimate(r) <= 52.5 else shipped)(r)}
    else:
        other = {"lag 0": lag0}
    by_group(runs, {"shipped (lag 99)": shipped, **other})


if __name__ == "__main__":
    main()
