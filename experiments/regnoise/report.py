"""The rule of experiments/RESULTS-reg-noise.md applied to the rows of experiments/regnoise/run.sh: per arm
(reg-noise value, and lr if changed), paired against today's arm on the crops both have, the mean and the worst
difference in auto-stopped PSNR, the crops better, and the iterations (the whole run) summed, as a ratio.

    python experiments/regnoise/report.py --sigma 25 experiments/regnoise/rows-tune.jsonl
    python experiments/regnoise/report.py --sigma 50 --size 256 --base "--reg-noise 0.03333333333333333" ROWS
"""
from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma", required=True, help="the noise level whose rows are compared")
    ap.add_argument("--seed", help="only this seed's rows (default: every seed, each crop and seed a pair)")
    ap.add_argument("--shipped", action="append", default=[],
                    help="rows of the shipped schedule (no flag, after it shipped): an arm of their own")
    ap.add_argument("--size", help="only crops of this side (default: every size in the rows)")
    ap.add_argument("--base", default="today", help="the arm the others are paired against: its extra flags "
                    "(e.g. '--reg-noise 0.03333333333333333'), or today (no flag)")
    ap.add_argument("rows", nargs="+")
    a = ap.parse_args()
    arms: dict[str, dict[str, dict]] = defaultdict(dict)
    for path in a.rows + a.shipped:
        for line in open(path):
            row = json.loads(line)
            _, size, _, sigma, seed = row["key"].split("|")[:5]
            if sigma == a.sigma and a.seed in (None, seed) and a.size in (None, size):
                arm = "shipped schedule" if path in a.shipped else row["extra"] or "today"
                arms[arm][row["image"] + (f" seed {seed}" if seed != "0" else "")] = row
    today = arms.pop(a.base)
    label = "today" if a.base == "today" else a.base.removeprefix("--")
    arms = {("no flag" if name == "today" else name): arm for name, arm in arms.items()}
    print(f"| crop | {label}: dB (iterations) | " + " | ".join(arms) + " |")
    print("|---|---|" + "---|" * len(arms))
    for crop, base in today.items():
        cells = [f"{a[crop]['psnr_stopped'] - base['psnr_stopped']:+.2f} "
                 f"({a[crop]['iterations'] / base['iterations']:.2f}x)" if crop in a else "-" for a in arms.values()]
        print(f"| {crop} | {base['psnr_stopped']:.2f} ({base['iterations']}) | " + " | ".join(cells) + " |")
    print(f"\n| arm | crops | dB vs {label}: mean (worst) | better on | iterations / {label}'s (sum) | "
          f"oracle dB vs {label}: mean |")
    print("|---|---:|---|---:|---:|---:|")
    for name, arm in arms.items():
        crops = [c for c in arm if c in today]
        diff = [arm[c]["psnr_stopped"] - today[c]["psnr_stopped"] for c in crops]
        oracle = [arm[c]["oracle_best_psnr"] - today[c]["oracle_best_psnr"] for c in crops]
        ratio = sum(arm[c]["iterations"] for c in crops) / sum(today[c]["iterations"] for c in crops)
        print(f"| {name} | {len(crops)} | {statistics.mean(diff):+.2f} ({min(diff):+.2f}) | "
              f"{sum(d > 0 for d in diff)}/{len(crops)} | {ratio:.2f} | {statistics.mean(oracle):+.2f} |")


if __name__ == "__main__":
    main()
