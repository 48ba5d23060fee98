"""How long should the default prior (the shipped channel ticket) run? Replay the stop rule's patience and
the iteration cap on recorded ticket trajectories (issue 12: wall time; issue 17: the stop).

The ticket fits slower than the dense net (it hit the fast preset's 1200-iteration cap on 11 of 16 study
crops), so its best patience and cap need not be the dense net's. es_collect.py records each fit without
early stopping to a long horizon (2400 here); lip's rule (windowed variance, window 200) is replayed
exactly as lipcli/earlystop.py runs it (es_analyze.py checks that replay against the live detector),
for every (patience, cap) pair. The pair is chosen on the TUNE half and reported on the REPORT half.

    PYTHONPATH=$PWD python experiments/ticket_stop.py experiments/es_dev/rows-ticket*.jsonl.gz
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from es_analyze import load, min_with_patience, report

PATIENCES = (100, 150, 200, 300)
CAPS = (900, 1000, 1200, 1500, 1800, 2400)
TODAY = (300, 1200)


def replay(row: dict, patience: int, cap: int) -> tuple[int, float, float]:
    """(iterations used, reported PSNR, oracle over the whole horizon) under patience and cap."""
    at, stop = min_with_patience(row["signals"]["var_raw_200"], patience, cap)
    used, psnr, _, _ = report(row, at, stop, "ema+lag", cap)
    return used, psnr, max(row["signals"]["psnr_ema"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=Path, nargs="+")
    a = ap.parse_args()
    runs = [r.plain for path in a.rows for r in load(path)[0]]
    for half in ("tune", "report"):
        rows = [r for r in runs if r["half"] == half]
        if not rows:
            continue
        base = {r["key"]: replay(r, *TODAY) for r in rows}
        print(f"\n{half} half: {len(rows)} crops ({', '.join(sorted(r['image'] for r in rows))})")
        print("| patience | cap | mean PSNR | vs p300/1200 dB | min | mean gap to oracle | p90 gap | iterations | vs p300/1200 |")
        print("|---|---|---|---|---|---|---|---|---|")
        for p in PATIENCES:
            for c in CAPS:
                got = np.array([replay(r, p, c) for r in rows])
                ref = np.array([base[r["key"]] for r in rows])
                d, gap = got[:, 1] - ref[:, 1], got[:, 2] - got[:, 1]
                print(f"| {p} | {c} | {got[:, 1].mean():.2f} | {d.mean():+.3f} | {d.min():+.2f} | {gap.mean():.2f} | "
                      f"{np.percentile(gap, 90):.2f} | {got[:, 0].mean():.0f} | {got[:, 0].mean() / ref[:, 0].mean():.2f} |")


if __name__ == "__main__":
    main()
