"""The numbers of RESULTS-rollback.md: arms paired by crop and seed, from experiments/rollback/pilot-rows.jsonl and
experiments/fold/pilot-rows.jsonl (whose `base` and `head`, seeds 0-4 at sigma 25, are the same code as this one's).

    python experiments/rollback/report.py base j1.5 5,6,7 [SIGMA]   # the second arm against the first, those seeds
    python experiments/rollback/report.py base head 0,1,2,3,4,5,6,7   # the compaction pooled over both files
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from pilot_runs import paired  # noqa: E402

ROWS = [HERE / "pilot-rows.jsonl", HERE.parent / "fold" / "pilot-rows.jsonl"]


def main() -> None:
    a, b, seeds = sys.argv[1], sys.argv[2], {int(s) for s in sys.argv[3].split(",")}
    runs = paired(ROWS, sys.argv[4] if len(sys.argv) > 4 else "25")
    ps = [(image, seed, arms[a], arms[b]) for (image, seed), arms in sorted(runs.items())
          if seed in seeds and {a, b} <= set(arms)]
    d = [y["psnr_stopped"] - x["psnr_stopped"] for *_, x, y in ps]
    for image, seed, x, y in ps:
        if abs(y["psnr_stopped"] - x["psnr_stopped"]) > 1e-9:
            print(f"| {image} | {seed} | {x['psnr_stopped']:.2f} ({x['iterations']}; {x['recoveries']}) | "
                  f"{y['psnr_stopped']:.2f} ({y['iterations']}; {y['recoveries']}) | "
                  f"{y['psnr_stopped'] - x['psnr_stopped']:+.2f} |")
    its = sum(y["iterations"] for *_, y in ps) / sum(x["iterations"] for *_, x, _ in ps)
    print(f"{b} - {a}, seeds {sorted(seeds)}: {len(ps)} pairs, median {statistics.median(d):+.3f} mean "
          f"{statistics.mean(d):+.3f} ± {statistics.stdev(d):.3f} dB; {sum(x > 0 for x in d)} better, "
          f"{sum(x < 0 for x in d)} worse, {sum(abs(x) > 0.5 for x in d)} apart by > 0.5 dB; iterations {its:.3f}x; "
          f"rollbacks per run {a} {statistics.mean(x['recoveries'] for *_, x, _ in ps):.2f}, "
          f"{b} {statistics.mean(y['recoveries'] for *_, y in ps):.2f}")


if __name__ == "__main__":
    main()
