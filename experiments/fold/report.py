"""The numbers of RESULTS-fold.md's second check: today's compact fit (`base`) against only the head folding
(`head`), paired by crop and seed, from experiments/fold/pilot-rows.jsonl.

    python experiments/fold/report.py 2,3,4      # the seeds the mark counts (0 and 1 are printed beside)
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pilot_runs import paired  # noqa: E402

ROWS = Path(__file__).resolve().parent / "pilot-rows.jsonl"
FAILED = 1.0  # an auto-stopped PSNR this far under the run's own oracle counts as a failed stop


def load() -> dict[tuple[str, int], dict[str, dict]]:
    """(image, seed) -> arm -> row (every row here is at sigma 25)."""
    return paired([ROWS], "25")


def pairs(runs: dict, seeds: set[int]) -> list[tuple[str, int, dict, dict]]:
    return [(image, seed, arms["base"], arms["head"]) for (image, seed), arms in sorted(runs.items())
            if seed in seeds and {"base", "head"} <= set(arms)]


def summary(runs: dict, seeds: set[int]) -> str:
    ps = pairs(runs, seeds)
    if not ps:
        return f"seeds {sorted(seeds)}: no pairs"
    d = [h["psnr_stopped"] - b["psnr_stopped"] for _, _, b, h in ps]
    fails = [sum(r["oracle_best_psnr"] - r["psnr_stopped"] > FAILED for _, _, *arms in ps for r in [arms[k]])
             for k in (0, 1)]
    its = sum(h["iterations"] for *_, h in ps) / sum(b["iterations"] for _, _, b, _ in ps)
    return (f"seeds {sorted(seeds)}: {len(ps)} pairs, difference (head - base) median {statistics.median(d):+.3f} "
            f"mean {statistics.mean(d):+.3f} ± {statistics.stdev(d) if len(d) > 1 else 0:.3f} dB, "
            f"{sum(x > 0 for x in d)} better; stops > {FAILED} dB under their oracle: base {fails[0]}, head "
            f"{fails[1]}; iterations {its:.3f}x")


def main() -> None:
    counted = {int(s) for s in sys.argv[1].split(",")}
    runs = load()
    for image, seed, b, h in pairs(runs, counted):
        print(f"| {image} | {seed} | {b['psnr_stopped']:.2f} ({b['iterations']}) | {h['psnr_stopped']:.2f} "
              f"({h['iterations']}) | {h['psnr_stopped'] - b['psnr_stopped']:+.2f} |")
    print(summary(runs, counted))
    for s in sorted({seed for _, seed in runs}):
        print(summary(runs, {s}))


if __name__ == "__main__":
    main()
