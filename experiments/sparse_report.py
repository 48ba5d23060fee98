"""Tables of the issue-12 prior study (experiments/sparse_study.py): per prior, mean +- std of the
auto-stopped, final and oracle PSNR, the paired difference to the dense net on the same crops, the
iterations and seconds; for the tune half, the report half, and both.

    PYTHONPATH=$PWD python experiments/sparse_report.py experiments/sparse/rows*.jsonl
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def load(paths: list[Path]) -> list[dict]:
    """Rows by key (a key run twice counts once); a prior run with extra flags is its own prior."""
    rows = {}
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                row["prior_name"] += f" {row['extra']}" if row.get("extra") else ""
                row["crop_key"] = row["key"].rsplit("|", 2)[0]  # image|size|crop|sigma|seed
                rows[row["key"]] = row
    return list(rows.values())


def mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def table(rows: list[dict], half: str) -> list[str]:
    chosen = [r for r in rows if half == "both" or r["half"] == half]
    by_prior: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in chosen:
        by_prior[r["prior_name"]][r["crop_key"]] = r
    dense = by_prior.get("dense", {})
    out = [f"### {half} half" if half != "both" else "### both halves", "",
           "| prior | params fitted | GFLOP/iter | n | stopped dB | final dB | oracle dB | stopped - dense (paired) | "
           "wins vs dense | iterations | s/restore |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = sorted(by_prior, key=lambda p: -statistics.mean(r["params_fitted"] for r in by_prior[p].values()))
    for prior in order:
        crops = by_prior[prior]
        rs = list(crops.values())
        paired = [crops[c]["psnr_stopped"] - dense[c]["psnr_stopped"] for c in crops if c in dense]
        vs_dense = f"{mean_sd(paired)} ({len(paired)}) | {sum(d > 0 for d in paired)}/{len(paired)}" \
            if prior != "dense" else "- | -"
        out.append(
            f"| {prior} | {rs[0]['params_fitted']:,} | {rs[0]['gflop_per_iter']:.2f} | {len(rs)} | "
            f"{mean_sd([r['psnr_stopped'] for r in rs])} | {mean_sd([r['psnr_final'] for r in rs])} | "
            f"{mean_sd([r['oracle_best_psnr'] for r in rs])} | {vs_dense} | "
            f"{statistics.mean(r['iterations'] for r in rs):.0f} | {statistics.mean(r['seconds'] for r in rs):.0f} |")
    return out + [""]


def per_image(rows: list[dict]) -> list[str]:
    priors = sorted({r["prior_name"] for r in rows})
    crops = sorted({(r["half"], r["image"]) for r in rows})
    by = {(r["image"], r["prior_name"]): r for r in rows}
    out = ["### per crop: auto-stopped dB (oracle dB)", "", "| image | half | " + " | ".join(priors) + " |",
           "|---|---|" + "---:|" * len(priors)]
    for half, image in crops:
        cells = [f"{by[image, p]['psnr_stopped']:.2f} ({by[image, p]['oracle_best_psnr']:.2f})"
                 if (image, p) in by else "-" for p in priors]
        out.append(f"| {image} | {half} | " + " | ".join(cells) + " |")
    return out + [""]


def main() -> None:
    rows = load([Path(p) for p in sys.argv[1:]])
    lines = []
    for half in ("tune", "report", "both"):
        lines += table(rows, half)
    lines += per_image(rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
