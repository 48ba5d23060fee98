"""Tables of experiments/warm_start.py's rows: per crop, and per arm against `cold` (paired).

    PYTHONPATH=experiments python experiments/warm_report.py experiments/warm/tune.jsonl experiments/warm/report.jsonl
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from es_rows import SAME_PICTURE


def table(path: Path, seed: int = 0) -> str:
    rows = [r for r in map(json.loads, path.read_text().splitlines())
            if r.get("seed", 0) == seed and r["image"] not in SAME_PICTURE]  # a picture counts once
    by = {(r["image"], r["arm"]): r for r in rows}
    images = list(dict.fromkeys(r["image"] for r in rows))
    arms = [a for a in dict.fromkeys(r["arm"] for r in rows) if a != "cold"]
    out = [f"### {path.name}, seed {seed}", "", "| crop | cold: auto-stopped dB (iterations) | "
           + " | ".join(f"{a}: dB vs cold (iterations vs cold)" for a in arms) + " |",
           "|---|---:|" + "---:|" * len(arms)]
    for im in images:
        cold = by.get((im, "cold"))
        if cold is None:
            continue
        cells = [f"{by[im, a]['psnr_stopped'] - cold['psnr_stopped']:+.2f} "
                 f"({by[im, a]['iterations'] / cold['iterations']:.2f}x)" if (im, a) in by else "-" for a in arms]
        out.append(f"| {im} | {cold['psnr_stopped']:.2f} ({cold['iterations']}) | " + " | ".join(cells) + " |")
    out.append("")
    out += ["| arm | crops | mean dB vs cold | std | better on | iterations / cold's (sum) |", "|---|---:|---:|---:|---:|---:|"]
    for a in arms:
        pairs = [(by[im, a], by[im, "cold"]) for im in images if (im, a) in by and (im, "cold") in by]
        if not pairs:
            continue
        d = [w["psnr_stopped"] - c["psnr_stopped"] for w, c in pairs]
        its = sum(w["iterations"] for w, _ in pairs) / sum(c["iterations"] for _, c in pairs)
        out.append(f"| {a} | {len(d)} | {statistics.mean(d):+.2f} | {statistics.pstdev(d):.2f} | "
                   f"{sum(x > 0 for x in d)}/{len(d)} | {its:.2f} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print("\n".join(table(Path(p), seed) for p in sys.argv[1:] for seed in
                    sorted({json.loads(line).get("seed", 0) for line in Path(p).read_text().splitlines()})))
