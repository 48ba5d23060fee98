"""What putting the observed values back (`--data-consistency`) is worth for inpainting and MRI.

The step changes only what a fit reports, never the fit (tests/test_data_consistency.py checks that the
losses are the same), so one fit per case gives both numbers on the same trajectory: the net's output (the paper's
scoring, `--no-data-consistency`) and `op.consistent(output, y)` (lip's fast preset), each at the reported
iterate (the final one for inpainting, which runs to its cap; the auto-stopped one for MRI) and its oracle
(best over iterations, labelled). The fast preset's other settings, dense net, seed 0 (`--seed`), one thread.

Cases: the DIP inpainting masks (kate text, library and vase holes) on benchmarks/bench_bm3d.py's 64x64
crops, where biharmonic inpainting was the baseline; 50% Bernoulli masks on centred 128x128 crops of two
photographs (the report half of experiments/sparse_study.py); MRI simulated from the bundled brain (4x, 8x)
and phantom (4x) as experiments/RESULTS-mri.md made them. One JSON row per case, appended; resumable.

    nohup env PYTHONPATH=$PWD:$PWD/benchmarks python experiments/data_consistency.py \
        --out experiments/dc/rows.jsonl > experiments/dc/log 2>&1 &
    PYTHONPATH=$PWD:$PWD/benchmarks python experiments/data_consistency.py --out experiments/dc/rows.jsonl --report
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench_bm3d import DATA, crop_box, inpaint_files, pixels_of, save_8bit
from lipcli import config
from lipcli.fit import Step, returned
from lipcli.problem import Problem, load_problem
from lipcli.restore import dense_prior, restore

CPU = torch.device("cpu")
CASES = ["inpaint|kate|64", "inpaint|library|64", "inpaint|vase|64", "bernoulli|baby|128", "bernoulli|bird|128",
         "mri|mri-brain|4", "mri|mri-brain|8", "mri|phantom256|4"]


def problem_of(case: str, work: Path, flags: dict[str, Any], seed: int) -> tuple[Problem, dict[str, Any]]:
    kind, name, arg = case.split("|")
    if kind in ("inpaint", "scribble"):  # the image's own DIP mask, or the scribble-text mask on a 512x512 photo
        scribble = "scribble-text" if kind == "scribble" else None
        clean, mask, observed, _ = inpaint_files(name, int(arg), work, scribble)
        settings = config.resolve_settings("inpaint", None, CPU, flags)
        return load_problem(observed, "inpaint", settings, simulate=False, seed=seed, inpaint_mask=mask,
                            clean=clean), settings
    if kind == "bernoulli":
        side = int(arg)
        with Image.open(DATA / "images" / f"{name}.png") as img:
            img = img.convert("RGB")
            clean = save_8bit(work / f"{name}.png", pixels_of(img.crop(crop_box(img.size, side))))
        settings = config.resolve_settings("inpaint", None, CPU, {"keep": 0.5, **flags})
        return load_problem(clean, "inpaint", settings, simulate=True, seed=seed), settings
    settings = config.resolve_settings("mri", None, CPU, {"acceleration": float(arg), **flags})
    return load_problem(f"sample:{name.replace('256', '')}", "mri", settings, simulate=True, seed=seed), settings


def run(case: str, work: Path, flags: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    problem, settings = problem_of(case, work, flags, seed)
    cfg = config.fit_config({**settings, "data_consistency": False}, settings["early_stop"], CPU, seed)
    op, y = problem.op, problem.y
    best = {"psnr": -np.inf, "iter": 0}

    def watch(step: Step) -> None:  # the oracle of the data-consistent output, against the clean image
        value = problem.metric(op.consistent(step.shown[0], y), problem.clean)
        if value > best["psnr"]:
            best.update(psnr=value, iter=step.iteration)

    result, report = restore(problem, dense_prior(settings["net"]), cfg, CPU, seed, [watch])
    tr = result.targets[0]
    kept = returned(cfg.early_stop)  # what lip returns (api.Restorer)
    consistent = problem.scores(op.consistent(getattr(tr, kept), y))
    return {"case": case, "seed": seed, "iterations": result.iterations,
            "stopped_at": tr.stopped_at if kept == "stopped" else result.iterations,
            "early_stop": cfg.early_stop, "weight_decay": cfg.weight_decay, "seconds": report["seconds"],
            "net": {"psnr": report[f"psnr_{kept}"], "ssim": report[f"ssim_{kept}"],
                    "oracle_psnr": tr.oracle_best, "oracle_iter": tr.oracle_best_iter},
            "consistent": {**consistent, "oracle_psnr": best["psnr"], "oracle_iter": best["iter"]},
            "baseline": report.get("baseline")}


def report(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table: PSNR / SSIM of the net's output and of the consistent one."""
    lines = ["| case | reported iteration | net output PSNR / SSIM (oracle) | consistent PSNR / SSIM (oracle) | "
             "gain dB | zero-filled |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        n, c, b = r["net"], r["consistent"], r["baseline"]
        zero_filled = f"{b['psnr']:.2f}" if b else "-"
        lines.append(f"| {r['case'].replace('|', ' ')} | {r['stopped_at']}/{r['iterations']} | {n['psnr']:.2f} / {n['ssim']:.3f} "
                     f"({n['oracle_psnr']:.2f}) | {c['psnr']:.2f} / {c['ssim']:.3f} ({c['oracle_psnr']:.2f}) | "
                     f"{c['psnr'] - n['psnr']:+.2f} | {zero_filled} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--iters", type=int, help="override the preset's cap (a quick check of the script)")
    ap.add_argument("--weight-decay", type=float, help="another kernel decay than the preset's (its own --out)")
    ap.add_argument("--seed", type=int, default=0, help="the net's initialisation, input code and jitter (and a "
                    "simulated observation's draw)")
    ap.add_argument("--report", action="store_true", help="print the table of the rows in --out")
    a = ap.parse_args()
    if a.report:
        print(report([json.loads(line) for line in a.out.read_text().splitlines()]))
        return
    torch.set_num_threads(1)
    rows = [json.loads(line) for line in a.out.read_text().splitlines()] if a.out.exists() else []
    done = {(r["case"], r.get("seed", 0)) for r in rows}  # rows before --seed were seed 0
    a.out.parent.mkdir(parents=True, exist_ok=True)
    for case in a.cases.split(","):
        if (case, a.seed) in done:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            flags = {"iters": a.iters} if a.iters else {}
            row = run(case, Path(tmp), flags if a.weight_decay is None else {**flags, "weight_decay": a.weight_decay},
                      a.seed)
        with open(a.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
