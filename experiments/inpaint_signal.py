"""Blind hole signals as an inpainting stop, replayed on recorded fits (issue 17; RESULTS-inpaint-signal.md).

Rows: es_dev/run_inpaint128.sh `signal` (the dense net as inpainting's default fits it, to 3750 iterations, no
stop, with es_collect's `nbr_*` and `rough_*`). A rule reads one signal S from iteration START on, tracks its
running minimum and ends PATIENCE iterations after the latest one, or at the cap; it reports the EMA output (observed
values put back) at the minimum or at the end. Rules are picked on TUNE within the issue's iteration budget and read
on REPORT, against references that run to a cap without a stop, and beside a clairvoyant stop that bounds any rule
within the same budget (`ceiling`). `--check` compares the PSNR trajectories with the
long rows of RESULTS-inpaint-cap.md (the same fits).

    PYTHONPATH=$PWD:$PWD/experiments python experiments/inpaint_signal.py \
        experiments/es_dev/rows-inpaint128-signal-[ab].jsonl.gz \
        --check experiments/es_dev/rows-tasks-inpaint128-long-[ab].jsonl.gz
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from inpaint_ticket import DENSE_CAP, oracle, returned, rows_by_crop

START = 300
SIGNALS = ("nbr_ema", "nbr_raw")
PATIENCES = (150, 300, 500, 750, 1000)
CAPS = (1875, 2250, 2500, 3000, 3750)
REFERENCES = (DENSE_CAP, 1950)  # no stop: today's cap, and the budget
BUDGET = 1950  # issue 17: 1.3x the pre-study 1500 iterations, mean per restore
WIDE_BUDGET = 2437  # 1.3x today's DENSE_CAP, written down beside it


@dataclass(frozen=True)
class Rule:
    signal: str | None  # None: no stop, the EMA output at the cap
    patience: int
    cap: int
    at_min: bool  # report the EMA output at the signal's minimum (else at the end)

    def __str__(self) -> str:
        if self.signal is None:
            return f"no stop, cap {self.cap}"
        return f"{self.signal} p{self.patience} cap {self.cap}, output at {'min' if self.at_min else 'end'}"

    def apply(self, row: dict) -> tuple[float, int]:
        """(PSNR reported, iterations run) on one recorded fit."""
        if self.signal is None:
            return returned(row, self.cap), self.cap
        s = row["signals"][self.signal]
        best, best_at = float("inf"), START
        for it in range(START, self.cap + 1):
            if s[it - 1] < best:
                best, best_at = s[it - 1], it
            if it - best_at >= self.patience:
                break
        return returned(row, best_at if self.at_min else it), it


def rules() -> list[Rule]:
    found = [Rule(sig, p, c, m) for sig in SIGNALS for p in PATIENCES for c in CAPS for m in (True, False)]
    return found + [Rule(None, 0, c, False) for c in REFERENCES]


def score(rule: Rule, rows: list[dict]) -> tuple[float, float, float]:
    """(mean gap, p90 gap, mean iterations) of `rule` on `rows`."""
    out = [rule.apply(r) for r in rows]
    gap = np.array([oracle(r)[0] - p for r, (p, _) in zip(rows, out)])
    return float(gap.mean()), float(np.percentile(gap, 90)), float(np.mean([n for _, n in out]))


def pick(candidates: list[Rule], rows: list[dict], budget: float) -> Rule:
    scored = [(score(r, rows), r) for r in candidates if r.signal is not None]
    fits = [(s, r) for s, r in scored if s[2] <= budget]
    return min(fits, key=lambda x: (round(x[0][0], 4), round(x[0][1], 4), x[0][2]))[1]


def check(rows: dict, long: dict) -> None:
    """The recorded PSNR must repeat the long rows' (the same fit): largest difference per crop."""
    for k in sorted(set(rows) & set(long)):
        a, b = (np.array(r["signals"]["psnr_ema_dc"], dtype=float) for r in (rows[k], long[k]))
        n = min(len(a), len(b))
        print(f"check {k[0]}: {n} iterations, largest |PSNR difference| {np.abs(a[:n] - b[:n]).max():.4f} dB")


def diagnostics(rows: list[dict]) -> None:
    print("| crop | half | best PSNR (iteration) | " + " | ".join(f"{s}: minimum from {START} (rank corr. with PSNR)"
                                                           for s in SIGNALS + ("rough_ema",)) + " |")
    print("|---|---|---|" + "---|" * (len(SIGNALS) + 1))
    for r in rows:
        best, at = oracle(r)
        psnr = np.array(r["signals"]["psnr_ema_dc"][START - 1:], dtype=float)
        cells = []
        for name in SIGNALS + ("rough_ema",):
            s = np.array(r["signals"][name][START - 1:], dtype=float)
            cells.append(f"{int(np.argmin(s)) + START} ({spearmanr(s, psnr)[0]:+.2f})")
        print(f"| {r['image']} | {r['half']} | {best:.2f} ({at}) | " + " | ".join(cells) + " |")


def ceiling(halves: dict[str, list[dict]], budgets: tuple[float, ...] = (DENSE_CAP, BUDGET, WIDE_BUDGET, 3750)) -> None:
    """What a clairvoyant stop could reach within a mean iteration budget: each fit stops where PSNR - lam * t
    is highest (it reads the clean image), for the lam of a grid whose mean iterations fit the budget with the
    smallest mean gap.
    Lagrangian, so it reaches the points of the convex hull of (iterations, gap); at a budget between two of
    them the exact optimum may lie a little below. A blind rule within the budget cannot do better than that
    optimum: it is a bound on any stop, not a rule."""
    print("\n| half | mean iteration budget | clairvoyant stop: mean / p90 gap, mean iterations |")
    print("|---|---|---|")
    lams = np.concatenate([[0.0], np.logspace(-7, -1, 400)])
    for half, rs in halves.items():
        psnr = [np.array(r["signals"]["psnr_ema_dc"], dtype=float) for r in rs]
        best = [oracle(r)[0] for r in rs]
        for budget in budgets:
            found = None
            for lam in lams:
                stop = [int(np.argmax(p - lam * np.arange(1, len(p) + 1))) for p in psnr]
                iters = float(np.mean(stop)) + 1
                if iters <= budget:
                    gap = np.array([b - p[i] for b, p, i in zip(best, psnr, stop)])
                    cand = (float(gap.mean()), float(np.percentile(gap, 90)), iters)
                    found = cand if found is None or cand[0] < found[0] else found
            print(f"| {half} ({len(rs)}) | {budget:.0f} | {found[0]:.2f} / {found[1]:.2f}, {found[2]:.0f} |")


SLOPE_SIGNALS = ("loss", "nbr_ema", "nbr_raw", "var_ema_200", "white_ema", "d_raw_ema")


def slopes(rows: list[dict]) -> None:
    """Exploratory: does any recorded signal's trend just before the cap tell the fits that fall after it (PSNR at
    WIDE_BUDGET below that at DENSE_CAP) from the ones that climb? Relative change of each signal's mean over the
    last 125 iterations before the cap against 375 iterations earlier (1751-1875 against 1376-1500; rough_ema:
    the difference, it is a log ratio)."""
    print(f"\n| crop | half | PSNR at {WIDE_BUDGET} - at {DENSE_CAP} | " + " | ".join(SLOPE_SIGNALS) + " | rough_ema |")
    print("|---|---|---|" + "---|" * (len(SLOPE_SIGNALS) + 1))
    for r in rows:
        s = r["signals"]
        cells = []
        for name in SLOPE_SIGNALS + ("rough_ema",):
            v = np.array([np.nan if x is None else x for x in s[name]], dtype=float)
            before, late = np.nanmean(v[DENSE_CAP - 500:DENSE_CAP - 375]), np.nanmean(v[DENSE_CAP - 125:DENSE_CAP])
            cells.append(f"{late - before:+.3f}" if name == "rough_ema" else f"{100 * (late / before - 1):+.1f}%")
        gain = s["psnr_ema_dc"][WIDE_BUDGET - 1] - returned(r, DENSE_CAP)
        print(f"| {r['image']} | {r['half']} | {gain:+.2f} | " + " | ".join(cells) + " |")


def table(named: list[tuple[str, Rule]], halves: dict[str, list[dict]]) -> None:
    print("\n| rule | " + " | ".join(f"{h} ({len(rs)}): mean / p90 gap, mean iterations" for h, rs in halves.items())
          + " |")
    print("|---|" + "---|" * len(halves))
    for name, rule in named:
        cells = [f"{g:.2f} / {p:.2f}, {n:.0f}" for g, p, n in (score(rule, rs) for rs in halves.values())]
        print(f"| {name}{rule} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="+", type=Path)
    ap.add_argument("--check", nargs="+", type=Path, help="the long rows of the same fits")
    a = ap.parse_args()
    by_crop = rows_by_crop(a.rows)
    if a.check:
        check(by_crop, rows_by_crop(a.check))
    rows = sorted(by_crop.values(), key=lambda r: (r["half"] != "tune", r["image"]))
    halves = {h: [r for r in rows if r["half"] == h] for h in ("tune", "report")}
    diagnostics(rows)
    everything = rules()
    refs = [r for r in everything if r.signal is None]
    named = [("reference: ", r) for r in refs]
    named += [(f"pick (tune, <= {b}): ", pick(everything, halves["tune"], b)) for b in (BUDGET, WIDE_BUDGET)]
    named += [("best on tune at any cost: ", pick(everything, halves["tune"], float("inf")))]
    table(named, halves)
    ceiling(halves)
    slopes(rows)


if __name__ == "__main__":
    main()
