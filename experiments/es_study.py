"""Experiment: how close does automatic early stopping get to the (oracle) PSNR peak?

One dense DIP denoising run per image records every raw output; detectors are then replayed
offline on the same trajectory: the windowed-moving-variance rule (Wang et al. 2023) on the raw
outputs or on the EMA outputs, for several windows, with the patience used by the presets. The
clean image only scores the outcome. Results: experiments/RESULTS-es.md.

    python experiments/es_study.py --images house,bird,butterfly --size 64 --iters 1500
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lipcli.earlystop import WindowedVariance
from lipcli.fit import FitConfig, Step
from lipcli.metrics import psnr
from lipcli.problem import load_problem
from lipcli.restore import dense_prior, restore

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


def replay(outputs: list[torch.Tensor], window: int, patience: int) -> int:
    """The iteration (1-based) the rule would report, given every output in order."""
    det = WindowedVariance(window, patience)
    for i, x in enumerate(outputs, start=1):
        det.update(i, x)
        if det.should_stop(i):
            break
    return det.best_iter if det.best_iter > 0 else len(outputs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="house,bird,butterfly")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--out", default="experiments/RESULTS-es.md")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from PIL import Image
    lines = [f"# Early stopping vs the oracle peak (dense DIP, sigma 25, {a.size}x{a.size} centre crops,"
             f" {a.iters} iterations, bf16)", "",
             f"Command: `python experiments/es_study.py --images {a.images} --size {a.size} --iters {a.iters}`",
             "", "| image | oracle peak (iter) | final | rule | window | patience | stop iter | PSNR at stop |",
             "|---|---|---|---|---|---|---|---|"]
    for name in a.images.split(","):
        img = Image.open(SHARED / f"{name}.png").convert("RGB")
        w, h = img.size
        path = Path(f"/tmp/es_{name}{a.size}.png")
        img.crop((w // 2 - a.size // 2, h // 2 - a.size // 2, w // 2 + a.size // 2,
                  h // 2 + a.size // 2)).save(path)
        problem = load_problem(path, "denoise", {"sigma": 25.0}, simulate=True, seed=0)
        raws: list[torch.Tensor] = []

        def keep(step: Step) -> None:
            raws.append(step.raw[0].detach().clone())

        cfg = FitConfig(iters=a.iters, early_stop=False, precision="bf16", channels_last=True)
        restore(problem, dense_prior("dip"), cfg, torch.device("cpu"), 0, [keep])
        emas, e = [], None
        for x in raws:
            e = x.clone() if e is None else e.lerp(x, 0.01)
            emas.append(e)
        scores = [psnr(x, problem.clean) for x in emas]
        peak = max(range(len(scores)), key=scores.__getitem__)
        raw_scores = [psnr(x, problem.clean) for x in raws]
        lag = 99  # the EMA (0.99) at t+99 is centred near t
        for window in (100, 200):
            t = replay(raws, window, 300)
            for rule, value in (("raw variance -> EMA output at t", scores[t - 1]),
                                ("raw variance -> raw output at t", raw_scores[t - 1]),
                                ("raw variance -> EMA output at t+99", scores[min(t + lag, len(scores)) - 1])):
                lines.append(f"| {name} | {scores[peak]:.2f} ({peak + 1}) | {scores[-1]:.2f} | {rule} | "
                             f"{window} | 300 | {t} | {value:.2f} |")
        t = replay(emas, 100, 300)
        lines.append(f"| {name} | {scores[peak]:.2f} ({peak + 1}) | {scores[-1]:.2f} | EMA variance -> EMA "
                     f"output at t | 100 | 300 | {t} | {scores[t - 1]:.2f} |")
        Path(a.out).write_text("\n".join(lines) + "\n")
        print("\n".join(lines[-7:]), flush=True)


if __name__ == "__main__":
    main()
