"""Replay the twin-SURE stop on sure_twin.py's rows, against the shipped rule on the same fit.

Gap = oracle (best EMA PSNR over the recorded iterates; reads the clean image, reporting only) - PSNR of the
reported iterate. Rules:
- shipped: the variance rule with the noise gate, as restore runs it (replayed online by sure_twin.py);
- sure: the running SURE minimum with the blind sigma estimate, ended `--patience` iterations after it (or at
  the recorded horizon);
- sure-true: the same with the simulated sigma (a bound: a user does not know it);
- later: whichever of shipped and sure reports the later iterate (exploratory: chosen after seeing rows).
Cost: iterations each rule runs (the shipped rule ends `patience` after its variance minimum); SURE also
fits the twin, so its CPU is twice its iterations.

    python experiments/sure_report.py experiments/sure/rows-s*.jsonl.gz --patience 150
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from es_analyze import min_with_patience
from es_collect import TUNE
from es_rows import read_rows


def psnr(mse: float) -> float:
    return 10 * math.log10(1 / mse)


def summary(gaps: list[float]) -> str:
    """"mean / p90"; the p90 is the nearest-rank one (es_analyze.py interpolates: np.percentile)."""
    s = sorted(gaps)
    p90 = s[min(len(s) - 1, math.ceil(0.9 * len(s)) - 1)]
    return f"{sum(s) / len(s):.2f} / {p90:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="+", type=Path)
    ap.add_argument("--patience", type=int, default=150, help="iterations")
    a = ap.parse_args()
    table: dict[tuple[str, str], dict[str, list[float]]] = {}
    print("| sigma | image | half | oracle (it) | shipped gap (it) | sure gap (it) | sure-true gap (it) | later gap |")
    print("|---|---|---|---|---|---|---|---|")
    for path in a.rows:
        for r in read_rows(path):
            c, every = r["ema"], r["every"]
            mse, res, div = c["mse"], c["res"], c["div"]
            it = lambda i: (i + 1) * every  # noqa: E731
            sig_hat = r["sigma_hat"] / 255
            sure_est = [rs - sig_hat ** 2 + 2 * sig_hat ** 2 * d for rs, d in zip(res, div)]
            o = min(range(len(mse)), key=mse.__getitem__)
            # the loop's running minimum with patience, on the recorded entries (1-based: entry k is iterate k*every)
            e, e_end = min_with_patience(sure_est, a.patience // every, len(mse))
            t, _ = min_with_patience(c["sure"], a.patience // every, len(mse))
            e, t = e - 1, t - 1
            ship = r["shipped"]
            ship_psnr = ship.get("psnr", ship["final_psnr"]) if "ended" in ship else ship["final_psnr"]
            ship_it = ship.get("stopped_at", r["iters"]) if "ended" in ship else r["iters"]
            later = ship_psnr if ship_it >= it(e) else psnr(mse[e])
            gaps = {"shipped": psnr(mse[o]) - ship_psnr, "sure": psnr(mse[o]) - psnr(mse[e]),
                    "sure-true": psnr(mse[o]) - psnr(mse[t]), "later": psnr(mse[o]) - later}
            costs = {"shipped": ship.get("ended", r["iters"]),
                     "sure": e_end * every}
            half = "tune" if r["image"] in TUNE else "report"
            cell = table.setdefault((r["sigma"], half), {k: [] for k in [*gaps, "cost-shipped", "cost-sure"]})
            for k, v in gaps.items():
                cell[k].append(v)
            cell["cost-shipped"].append(costs["shipped"])
            cell["cost-sure"].append(costs["sure"])
            print(f"| {r['sigma']} | {r['image']} | {half} | {psnr(mse[o]):.2f} ({it(o)}) | {gaps['shipped']:.2f} "
                  f"({ship_it}) | {gaps['sure']:.2f} ({it(e)}) | {gaps['sure-true']:.2f} ({it(t)}) | "
                  f"{gaps['later']:.2f} |")
    print("\n| sigma | half | runs | shipped | sure | sure-true | later | iterations shipped / sure (x2 CPU) |")
    print("|---|---|---|---|---|---|---|---|")
    for (sigma, half), cell in sorted(table.items()):
        n = len(cell["shipped"])
        print(f"| {sigma} | {half} | {n} | {summary(cell['shipped'])} | {summary(cell['sure'])} | "
              f"{summary(cell['sure-true'])} | {summary(cell['later'])} | {sum(cell['cost-shipped']) / n:.0f} / "
              f"{sum(cell['cost-sure']) / n:.0f} |")


if __name__ == "__main__":
    main()
