"""SGLD-DIP against plain dense DIP (issue 14 item 2; LIP paper Fig. 16, GP-DIP's denoising curves).

Per image: a centred crop, Gaussian noise sigma 25 (seeded), the dense DIP net under lip's fast
preset, fitted for --iters iterations without stopping, once per --sgld value (0 = plain DIP).
Each run writes one JSON line to --out as it ends (a re-run skips the runs already there):
  * auto: what `lip restore` would have returned, lip's automatic stop replayed on the run's own
    outputs (fit.py's rule; the run is the same up to that point, only it does not end there);
  * final: the last iterate's EMA (the overfitting the SGLD claim is about);
  * oracle: the best EMA over all iterations (reads the clean image: reporting only);
  * mean: GP-DIP's posterior mean, the plain average of the raw outputs after --burn-in iterations;
  * the EMA's PSNR every 250 iterations.

    nohup nice -n 10 env PYTHONPATH=$PWD OMP_NUM_THREADS=1 python experiments/sgld_study.py \
        --out experiments/sgld/rows.jsonl >> experiments/sgld/run.log 2>&1 &
    PYTHONPATH=$PWD python experiments/sgld_study.py --out experiments/sgld/rows.jsonl --report
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from PIL import Image

from lipcli import config
from lipcli.earlystop import WindowedVariance
from lipcli.fit import FitConfig, Step, ema_lag
from lipcli.problem import load_problem
from lipcli.restore import dense_prior, restore

from es_collect import StopReplay

DATA = Path("/work/shared/data/images")
CPU = torch.device("cpu")


class AutoStop:
    """Where lip's early stop would have ended the run: fit.py's rule (variance minimum, noise gate,
    patience) replayed on the same outputs and losses by es_collect's StopReplay."""

    def __init__(self, cfg: FitConfig, noise_floor: float | None) -> None:
        floor = cfg.es_gate * noise_floor if cfg.es_gate and noise_floor else None
        self.detector = WindowedVariance(cfg.es_window, cfg.es_patience, seed=cfg.seed, floor=floor)
        self.gated = floor is not None
        self.replay = StopReplay(ema_lag(cfg.ema))

    def __call__(self, step: Step) -> None:
        it = step.iteration
        new_min = self.detector.update(it, step.raw[0], step.loss if self.gated else None)
        self.replay.step(it, new_min, self.detector.should_stop(it), lambda: step.metrics[0])


class PosteriorMean:
    """The average of the raw outputs after `burn_in` iterations (GP-DIP's SGLD estimate)."""

    def __init__(self, burn_in: int) -> None:
        self.burn_in, self.total, self.count = burn_in, None, 0

    def __call__(self, step: Step) -> None:
        if step.iteration > self.burn_in:
            x = step.raw[0].double()
            self.total = x.clone() if self.total is None else self.total.add_(x)
            self.count += 1


def crop(image: str, side: int, cache: Path) -> Path:
    path = cache / f"{image}{side}.png"
    with Image.open(DATA / f"{image}.png") as img:
        img = img.convert("RGB")
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img.crop((left, top, left + side, top + side)).save(path)
    return path


def run(image: str, side: int, sgld: float, iters: int, burn_in: int, seed: int, cache: Path) -> dict:
    settings = config.resolve_settings("denoise", "fast", CPU, {"sigma": 25.0, "iters": iters, "sgld": sgld})
    cfg = config.fit_config(settings, False, CPU, seed)
    problem = load_problem(crop(image, side, cache), "denoise", settings, simulate=True, seed=seed)
    sigma = problem.noise_sigma()  # the gate's noise floor, as problem.target sets it
    auto, mean = AutoStop(cfg, None if sigma is None else (sigma / 255) ** 2), PosteriorMean(burn_in)
    began = time.process_time()
    result, report = restore(problem, dense_prior(settings["net"]), cfg, CPU, seed, [auto, mean])
    curve = dict(result.targets[0].curve)  # EMA PSNR at every iteration
    out = auto.replay.out
    ended, reported = out.get("ended", result.iterations), out.get("stopped_at", result.iterations)
    return {"image": image, "side": side, "sgld": sgld, "seed": seed, "iters": iters, "burn_in": burn_in,
            "precision": cfg.precision, "auto_end": ended, "auto_iter": reported, "auto": curve[reported],
            "final": report["psnr_final"], "oracle": report["oracle_best_psnr"],
            "oracle_iter": report["oracle_best_iter"],
            "mean": problem.scores((mean.total / mean.count).float())["psnr"],
            "curve": {it: round(v, 3) for it, v in curve.items() if it % 250 == 0},
            "cpu_seconds": round(time.process_time() - began, 1)}


def report(rows: list[dict]) -> None:
    """A table of runs per run length, then the means over images per noise scale."""
    for iters in sorted({r["iters"] for r in rows}):
        sel = sorted((r for r in rows if r["iters"] == iters), key=lambda r: (r["image"], r["sgld"]))
        marks = sorted(map(int, sel[0]["curve"]))
        print(f"\n{iters} iterations, burn-in {sel[0]['burn_in']}:\n")
        print("| image | sgld | auto-stopped (it) | final | oracle (it) | mean after burn-in | EMA every 250 "
              f"iterations ({marks[0]}..{marks[-1]}) |")
        print("|---|---|---|---|---|---|---|")
        for r in sel:
            curve = " / ".join(f"{r['curve'][str(k)]:.2f}" for k in marks)
            print(f"| {r['image']} {r['side']} | {r['sgld']:g} | {r['auto']:.2f} ({r['auto_iter']}) | "
                  f"{r['final']:.2f} | {r['oracle']:.2f} ({r['oracle_iter']}) | {r['mean']:.2f} | {curve} |")
        print("\n| sgld (runs) | auto-stopped | final | oracle | mean after burn-in | final - oracle |")
        print("|---|---|---|---|---|---|")
        for scale in sorted({r["sgld"] for r in sel}):
            group = [r for r in sel if r["sgld"] == scale]
            m = {k: sum(r[k] for r in group) / len(group) for k in ("auto", "final", "oracle", "mean")}
            print(f"| {scale:g} ({len(group)}) | {m['auto']:.2f} | {m['final']:.2f} | {m['oracle']:.2f} | "
                  f"{m['mean']:.2f} | {m['final'] - m['oracle']:+.2f} |")
    print(f"\nCPU seconds: {sum(r['cpu_seconds'] for r in rows):.0f} in all")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--images", default="baboon,pepper,zebra")
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--sgld", default="0,2", help="noise scales to run, 0 = plain DIP")
    ap.add_argument("--iters", type=int, default=3000)
    ap.add_argument("--burn-in", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    if args.report:
        return report(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cache = Path("/tmp/lip-sgld-study")
    cache.mkdir(exist_ok=True)
    done = {(r["image"], r["side"], r["sgld"], r["seed"], r["iters"]) for r in rows}
    for image in args.images.split(","):
        for sgld in map(float, args.sgld.split(",")):
            if (image, args.side, sgld, args.seed, args.iters) in done:
                continue
            row = run(image, args.side, sgld, args.iters, args.burn_in, args.seed, cache)
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)


if __name__ == "__main__":
    main()
