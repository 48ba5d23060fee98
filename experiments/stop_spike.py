"""A loss spike between the stop's minimum and its lagged output: replay a guard on recorded trajectories.

Why: the stop reports the EMA output `lag` (99) iterations after the variance minimum, so that the average is
centred on the minimum. A spike of the loss in between (Adam, or a fit with weight decay, jumping out of its
basin for a few dozen iterations, too small for rollback's 5 dB) pollutes that average: f16 at 256x256 with
the decay peaked at 30.63 dB at iteration 2306, the loss rose 35% at 2330 and the stop reported 29.80 at 2416.
The guard: when a loss between the minimum and the lagged output exceeds g x the trailing mean loss at the
minimum, report the EMA output at the minimum instead (it averages the outputs before the minimum, which
the spike has not touched). Blind: it reads the loss only. Chosen on TUNE, reported on REPORT.

    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_spike.py experiments/es_dev/rows-ticket*.jsonl.gz
    PYTHONPATH=$PWD:$PWD/experiments python experiments/stop_spike.py --noise-free \
        experiments/es_dev/rows-tasks-sr.jsonl.gz experiments/es_dev/rows-tasks-inpaint.jsonl.gz
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from es_analyze import load
from stop_gate import load_runs, oracle, replay
from stop_white import replay_gated


def level(row: dict) -> str | None:
    """The whiteness gate as shipped where the run recorded its signal; older runs replay without it."""
    return "shipped" if "white_raw_h" in row["signals"] else None


def noise_free(paths: list[Path], guards: list[float], cap: int) -> None:
    """SR and inpainting runs (dense net, no noise gate, patience 300): the reported PSNR change per guard."""
    for path in paths:
        runs = [r.plain for r in load(path)[0]]
        for g in guards[1:]:
            d = np.array([replay(r, None, 0, 300, min(cap, r["iters"]), guard=g)[1]
                          - replay(r, None, 0, 300, min(cap, r["iters"]))[1] for r in runs])
            ch = d[np.abs(d) > 1e-9]
            print(f"{path.name}, guard {g:g}: {ch.size} of {len(runs)} runs changed, {np.round(np.sort(ch), 3)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=Path, nargs="+")
    ap.add_argument("--guards", default="0,1.1,1.2,1.3,1.5,2", help="comma list; 0 = no guard (shipped)")
    ap.add_argument("--cap", type=int, default=3000)
    ap.add_argument("--per-crop", type=float, help="also list the runs this guard changes")
    ap.add_argument("--noise-free", action="store_true", help="the files hold SR or inpainting runs (noise_free)")
    a = ap.parse_args()
    if a.noise_free:
        noise_free(a.rows, [float(g) for g in a.guards.split(",")], a.cap)
        return
    runs = load_runs(a.rows)
    guards = [float(g) for g in a.guards.split(",")]
    for sigma in sorted({r["param"] for r in runs}, key=float):
        for half in sorted({r["half"] for r in runs}):
            rows = [r for r in runs if r["half"] == half and r["param"] == sigma]
            if not rows:
                continue
            best = np.array([oracle(r) for r in rows])
            out = {g: np.array([replay_gated(r, "white_raw", level(r), "shipped", min(a.cap, r["iters"]), g)
                                for r in rows]).T for g in guards}
            white = sum(level(r) is not None for r in rows)
            print(f"\nsigma {sigma}, {half}: {len(rows)} runs ({white} recorded the whiteness gate's signal)")
            print("| guard | gap mean | gap p90 | changed | better | worse | mean change (changed runs) |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            for g in guards:
                gap, d = best - out[g][1], out[g][1] - out[0][1]
                ch = np.abs(d) > 1e-9
                print(f"| {g:g} | {gap.mean():.3f} | {np.percentile(gap, 90):.3f} | {ch.sum()} | {(d > 1e-9).sum()} | "
                      f"{(d < -1e-9).sum()} | {d[ch].mean() if ch.any() else 0:+.3f} |")
            if a.per_crop is not None:
                d = out[a.per_crop][1] - out[0][1]
                for r, x, b in zip(rows, d, best):
                    if abs(x) > 1e-9:
                        print(f"  {r['key']}: {out[0][1][rows.index(r)]:.2f} -> {out[a.per_crop][1][rows.index(r)]:.2f}"
                              f" (oracle {b:.2f})")


if __name__ == "__main__":
    main()
