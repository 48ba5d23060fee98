"""Would a discrepancy floor fix the early stops at sigma 15 and 50? Replay on recorded trajectories (issue 17).

The shipped rule (gate 1.05, patience 150, cap 2400; stop_gate.py) reports the EMA output 99 iterations after
the gated variance minimum. Variant: never stop before the trailing-50 loss has fallen to c x sigma_hat^2
(sigma_hat estimated blind from the noisy input); if the shipped stop comes earlier, the fit runs on to that
iteration and reports the EMA output there. At the peaks of the recorded runs the loss was 0.86-1.06 x
sigma_hat^2, so c near 1 could only move early stops later. Tune and report halves as in stop_gate.py.

    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_floor.py
"""
from __future__ import annotations


import numpy as np

from stop_gate import HERE, K, load_runs, oracle, replay

ROWS = {  # (sigma, half) -> the trajectory files that hold it
    ("15", "tune"): ["rows-ticket-s", "rows-ticket-s15"],
    ("15", "report"): ["rows-ticket-s", "rows-ticket-s15", "rows-ticket-s15-seed1"],
    ("25", "tune"): ["rows-ticket"],
    ("25", "report"): ["rows-ticket-report", "rows-ticket-report-seed1"],
    ("50", "tune"): ["rows-ticket-s", "rows-ticket-s50"],
    ("50", "report"): ["rows-ticket-s", "rows-ticket-s50", "rows-ticket-s50-seed1"],
}
FLOORS = (None, 1.0, 0.97, 0.95, 0.93, 0.9)  # None: the shipped rule
CAP = 2400


def floored(row: dict, c: float | None, cap: int) -> tuple[int, float]:
    """(iterations used, reported EMA PSNR) of the shipped rule with a discrepancy floor `c`."""
    stop, reported = replay(row, 1.05, row["sigma_used"], 150, cap)
    if c is None:
        return stop, reported
    loss = np.convolve(np.array(row["signals"]["loss"][:cap]), np.ones(K) / K)[:cap]  # trailing mean
    loss[: K - 1] = np.inf
    below = np.nonzero(loss <= c * row["sigma_used"] ** 2)[0]
    floor = int(below[0]) + 1 if below.size else cap
    return (floor, row["signals"]["psnr_ema"][floor - 1]) if floor > stop else (stop, reported)


def main() -> None:
    print("| sigma | half | runs | " + " | ".join("shipped" if c is None else f"floor {c}" for c in FLOORS) + " |")
    print("|---|---|---|" + "---|" * len(FLOORS))
    for (sigma, half), names in ROWS.items():
        runs = [r for r in load_runs([HERE / "es_dev" / f"{n}.jsonl.gz" for n in names])
                if r["param"] == sigma and r["half"] == half]
        cells = []
        for c in FLOORS:
            got = [floored(r, c, min(CAP, r["iters"])) for r in runs]
            gaps = np.array([oracle(r) - p for r, (_, p) in zip(runs, got)])
            cells.append(f"{gaps.mean():.2f} / {np.percentile(gaps, 90):.2f} ({np.mean([i for i, _ in got]):.0f} it)")
        print(f"| {sigma} | {half} | {len(runs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
