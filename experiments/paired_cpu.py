"""Paired PSNR differences and cost ratios of sparse_study.py rows, each prior against one baseline prior.

sparse_report.py prints PSNR per crop; this adds what a choice between priors also needs: the one-thread CPU seconds
per restore summed over the pairs (rows record `cpu_seconds`), the iterations, and the median of the differences.

    python experiments/paired_cpu.py experiments/sparse/rows-levels.jsonl [--against default] [--half report]
"""
from __future__ import annotations

import argparse
import statistics as st
from pathlib import Path

from sparse_report import load  # the rows as the tables read them: priors named with their flags, mixes refused


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", nargs="+", type=Path)
    ap.add_argument("--against", default="default", help="the baseline prior's name")
    ap.add_argument("--half", default=None, help="only rows of this half (tune, report, ...)")
    a = ap.parse_args()
    by: dict[str, dict[tuple, dict]] = {}
    for row in load(a.rows):
        if a.half is None or row["half"] == a.half:  # paired as the tables pair: same task, same crop_key
            by.setdefault(row["prior_name"], {})[(row["task_flags"], row["crop_key"])] = row
    base = by.pop(a.against)
    for name, rows in by.items():
        keys = [k for k in rows if k in base]
        if len(keys) < 2:
            continue
        diffs = [rows[k]["psnr_stopped"] - base[k]["psnr_stopped"] for k in keys]
        cpu = sum(rows[k]["cpu_seconds"] for k in keys) / sum(base[k]["cpu_seconds"] for k in keys)
        its = sum(rows[k]["iterations"] for k in keys) / sum(base[k]["iterations"] for k in keys)
        sd = st.stdev(diffs)
        print(f"{name} vs {a.against}: {len(keys)} pairs, mean {st.mean(diffs):+.3f} ± {sd:.3f} dB (standard error "
              f"{sd / len(keys) ** 0.5:.3f}), median {st.median(diffs):+.3f}, better {sum(d > 0 for d in diffs)}; "
              f"CPU per restore {cpu:.3f}x, iterations {its:.3f}x, CPU per iteration {cpu / its:.3f}x")


if __name__ == "__main__":
    main()
