"""Markdown tables of experiments/classify_transfer.sh's results (for RESULTS-classify.md).

    python experiments/classify_report.py experiments/classify

Held-out accuracy per prior and training seed (a classification IMP session is the run of its ticket at
seed 0: same theta0, mask, batch order), the denoising PSNR of the tickets, and their layer-wise sparsity.
"""
from __future__ import annotations

import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ORDER = ["dense", "LIP r2", "random r2", "ticket r2", "LIP r4", "random r4", "ticket r4"]


def label(row: dict) -> str | None:
    """Which prior a classify row or an IMP round trained: dense, LIP rK, random rK or ticket rK."""
    if row.get("tag") == "cls-imp":
        return None if row.get("type") != "round" else "dense" if row["round"] == 0 else f"ticket r{row['round']}"
    if row.get("type") != "classify":
        return None
    if row.get("prior") or row["round"] == 0:
        return "dense"
    if row["random_mask"]:
        return f"random r{row['round']}"
    return f"{'LIP' if 'lip_' in row['mask'] else 'ticket'} r{row['round']}"


def accuracy_table(rows: list[dict]) -> list[str]:
    acc: dict[str, dict[int, float]] = defaultdict(dict)
    sparsity: dict[str, float] = {}
    for r in rows:
        name = label(r)
        if name is None:
            continue
        seed = r.get("seed", 0)  # IMP rounds are seed 0
        acc[name].setdefault(seed, r["accuracy"])  # dense at seed 0 twice (--net, IMP round 0): the same run
        sparsity[name] = r["sparsity"]
    seeds = sorted({s for v in acc.values() for s in v})
    out = ["| prior | sparsity | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | sd |",
           "|---|---|" + "---|" * (len(seeds) + 2)]
    for name in [n for n in ORDER if n in acc]:
        vals = [acc[name].get(s) for s in seeds]
        got = [v for v in vals if v is not None]
        cells = " | ".join("-" if v is None else f"{100 * v:.1f}" for v in vals)
        sd = f"{100 * statistics.stdev(got):.1f}" if len(got) > 1 else "-"
        out.append(f"| {name} | {100 * sparsity[name]:.1f}% | {cells} | {100 * statistics.mean(got):.1f} | {sd} |")
    return out


def psnr_table(rows: list[dict]) -> list[str]:
    out = ["| prior | round | sparsity | image | PSNR auto-stopped | PSNR oracle best |", "|---|---|---|---|---|---|"]
    for r in rows:
        if not str(r.get("tag", "")).startswith("transfer") or "image" not in r:
            continue
        who = {"mask": "LIP" if "lip_" in str(r.get("mask")) else "ticket"}.get(r["method"], r["method"])
        out.append(f"| {who} | {r['round']} | {100 * r.get('sparsity', 0):.1f}% | {r['image']} | "
                   f"{r['psnr_stopped']:.2f} | {r['oracle_best_psnr']:.2f} |")
    return out


def layer_table(folder: Path, k: int) -> list[str]:
    out = [f"| # | layer | shape | LIP r{k} sparsity | ticket r{k} sparsity | Jaccard (kept) |", "|---|---|---|---|---|---|"]
    with open(folder / f"layers-r{k}.csv") as fh:
        for r in csv.DictReader(fh):
            out.append(f"| {r['index']} | {r['name']} | {r['shape']} | {100 * float(r['sparsity_a']):.1f}% | "
                       f"{100 * float(r['sparsity_b']):.1f}% | {float(r['jaccard']):.2f} |")
    return out


def group(name: str) -> str:
    """Where a conv sits: the encoder's 3x3 convs, the skip 1x1s, the decoder's 3x3 (deep levels 4-2 or
    the two next to the output), its 1x1s, the head."""
    level, kind = name.split(".")[1], name.split(".")[-3] if name.startswith("levels") else "head"
    if kind in ("down", "down2"):
        return "encoder 3x3"
    if kind == "up":
        return "decoder 3x3, levels 4-2" if level in "432" else "decoder 3x3, levels 1-0 (output end)"
    return {"skip": "skip 1x1", "up1x1": "decoder 1x1", "head": "head 1x1"}[kind]


def grouped_table(folder: Path, k: int) -> list[str]:
    kept: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # params, kept A, kept B
    with open(folder / f"layers-r{k}.csv") as fh:
        for r in csv.DictReader(fh):
            g = kept[group(r["name"])]
            g[0] += int(r["params"])
            g[1] += int(r["kept_a"])
            g[2] += int(r["kept_b"])
    out = [f"| convs | params | LIP r{k} sparsity | ticket r{k} sparsity |", "|---|---|---|---|"]
    for name, (n, a, b) in kept.items():
        out.append(f"| {name} | {int(n):,} | {100 * (1 - a / n):.1f}% | {100 * (1 - b / n):.1f}% |")
    return out


def main(folder: Path) -> None:
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines() if line.strip()]
    for title, lines in [("Held-out accuracy (%)", accuracy_table(rows)), ("Denoising, sigma 25", psnr_table(rows)),
                         *[(f"Sparsity by part of the net, round {k}", grouped_table(folder, k)) for k in (2, 4)
                           if (folder / f"layers-r{k}.csv").exists()],
                         *[(f"Layer-wise sparsity, round {k}", layer_table(folder, k)) for k in (2, 4)
                           if (folder / f"layers-r{k}.csv").exists()]]:
        print(f"### {title}\n")
        print("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
