#!/usr/bin/env python
"""BM3D on exactly the noisy crops lip's prior study restored, beside the study's rows (issue 17, item 4).

experiments/sparse_study.py restores simulated crops (`lip restore --simulate --seed S --sigma s`), so the
noisy image is never written to disk. This rebuilds it the same way (the same crop, `load_problem` with
the same seed) and runs BM3D on it, told the true sigma and, separately, the sigma lip estimates, then
prints one table per noise level: BM3D beside every prior of the rows (mean auto-stopped PSNR/SSIM, and
per crop). lip's columns are the rows' own numbers; nothing is re-fitted.

Benchmark-only dependency: `pip install bm3d`. Usage (from the repository root):

    PYTHONPATH=$PWD python benchmarks/bm3d_vs_priors.py experiments/sparse/rows-gate2.jsonl \
        experiments/sparse/rows-ensemble.jsonl
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "experiments")]
from bench_bm3d import bm3d_cell, scores  # noqa: E402
from sparse_study import crop  # noqa: E402

from lipcli import config  # noqa: E402
from lipcli.noise_estimate import estimate_sigma  # noqa: E402
from lipcli.problem import load_problem  # noqa: E402

CPU = torch.device("cpu")


def label(row: dict[str, Any]) -> str:
    return " ".join(filter(None, (row.get("prior_name", "?"), row.get("extra", ""))))


def bm3d_scores(image: str, size: int, where: str, sigma: float, seed: int) -> dict[str, Any]:
    """BM3D with the true and with lip's estimated sigma on the study's simulated observation."""
    settings = config.resolve_settings("denoise", None, CPU, {"sigma": sigma})
    problem = load_problem(crop(image, size, where, HERE.parent / "experiments" / "sparse" / "crops"), "denoise",
                           settings, simulate=True, seed=seed)
    y = problem.y[0].numpy().astype("float64")
    est = estimate_sigma(problem.y[0])
    out = {"sigma_estimated": est}
    for key, s in (("BM3D", sigma), ("BM3D est. sigma", est)):
        x, seconds = bm3d_cell(y, s)
        out[key] = {**scores(problem, x), **seconds}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="+", type=Path, help="experiments/sparse JSONL rows (denoising)")
    a = ap.parse_args()
    cells: dict[tuple, dict[str, dict[str, float]]] = defaultdict(dict)
    for path in a.rows:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r.get("task") != "denoise":
                continue
            key = (r["operator"]["sigma"], r["image"], r["size"], r["crop"], r["seed"])
            cells[key][label(r)] = {"psnr": r["psnr_stopped"], "ssim": r["ssim_stopped"], "seconds": r["seconds"]}
    for key in sorted(cells):
        sigma, image, size, where, seed = key
        b = bm3d_scores(image, size, where, sigma, seed)
        cells[key].update({k: b[k] for k in ("BM3D", "BM3D est. sigma")})
    for sigma in sorted({k[0] for k in cells}):
        keys = [k for k in sorted(cells) if k[0] == sigma]
        methods = sorted({m for k in keys for m in cells[k]}, key=lambda m: (not m.startswith("BM3D"), m))
        full = [k for k in keys if all(m in cells[k] for m in methods)]
        print(f"\n### sigma {sigma:g}: mean over the {len(full)} crops every method has (auto-stopped for lip)\n")
        print("| method | PSNR dB | SSIM | minus BM3D (true sigma) dB | crops ahead of BM3D |\n|---|---:|---:|---:|---:|")
        for m in methods:
            d = [cells[k][m]["psnr"] - cells[k]["BM3D"]["psnr"] for k in full]
            print(f"| {m} | {statistics.mean(cells[k][m]['psnr'] for k in full):.2f} | "
                  f"{statistics.mean(cells[k][m]['ssim'] for k in full):.3f} | {statistics.mean(d):+.2f} | "
                  f"{sum(x > 0 for x in d)}/{len(d)} |")
        print("\n| crop | " + " | ".join(methods) + " |\n|---|" + "---:|" * len(methods))
        for k in keys:
            print(f"| {k[1]} {k[2]} {k[3]} seed {k[4]} | "
                  + " | ".join(f"{cells[k][m]['psnr']:.2f}" if m in cells[k] else "-" for m in methods) + " |")


if __name__ == "__main__":
    main()
