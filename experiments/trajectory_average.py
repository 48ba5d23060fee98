"""Averaging along the trajectory (the output EMA) against no averaging, and a stop at the estimated
noise level, replayed on the early-stopping study's recorded runs (issue 17; no new fitting).

experiments/es_dev/rows.jsonl.gz holds, per iteration of each plain run (dense DIP, fast preset, no early
stop, to 1.5x the preset's iterations), the PSNR of the raw output and of its EMA (0.99) and the loss.
Printed per run and as means: the best raw and best EMA PSNR over the run (oracle; reporting only), the
EMA at lip's automatic stop (`fit_stopped_at`), and a discrepancy-principle stop: the first iteration at
which the loss (mean over 20 iterations) falls to the squared noise level that lipcli/noise_estimate.py
estimates from the same simulated observation (EMA reported 99 iterations later, its lag).

    PYTHONPATH=$PWD python experiments/trajectory_average.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from lipcli import config
from lipcli.problem import load_problem

sys.path.insert(0, str(Path(__file__).parent))
from es_rows import read_rows  # noqa: E402

ROWS = Path(__file__).parent / "es_dev" / "rows.jsonl.gz"
DATA = Path("/work/shared/data/images")
SMOOTH, LAG = 20, 99


def noise_estimate(row: dict, cache: Path) -> float:
    """The estimate on the run's own observation (the crop, degraded with the run's seed)."""
    top, left = row["box"]
    n = row["size"]
    with Image.open(next(DATA.glob(row["image"] + ".*"))) as img:
        img = img.convert("L" if img.mode in ("L", "P", "1") else "RGB")
        path = cache / f"{row['image']}_{n}_{top}_{left}.png"
        img.crop((left, top, left + n, top + n)).save(path)
    settings = config.resolve("denoise", "fast", "fast", {"sigma": float(row["param"])})
    return load_problem(path, "denoise", settings, simulate=True, seed=row["seed"]).noise_sigma()


def main() -> None:
    cache = Path("/tmp/lip-trajectory-average")
    cache.mkdir(exist_ok=True)
    out = []
    print("| run | sigma est. | oracle raw (it) | oracle EMA (it) | EMA at lip's stop (it) | "
          "discrepancy stop: raw / EMA (it) |")
    print("|---|---|---|---|---|---|")
    for row in read_rows(ROWS):
        if row["variant"] != "plain" or row["task"] != "denoise":
            continue
        s = row["signals"]
        raw, ema, loss = (np.array(s[k]) for k in ("psnr_raw", "psnr_ema", "loss"))
        sigma = noise_estimate(row, cache)
        smooth = np.convolve(loss, np.ones(SMOOTH) / SMOOTH)[:len(loss)]
        below = np.nonzero((smooth <= (sigma / 255) ** 2) & (np.arange(len(loss)) >= SMOOTH))[0]
        t = int(below[0]) if len(below) else len(loss) - 1
        stop = row["fit_stopped_at"] - 1
        r = {"raw": raw.max(), "ema": ema.max(), "today": ema[stop], "disc_raw": raw[t],
             "disc_ema": ema[min(t + LAG, len(ema) - 1)]}
        out.append(r)
        print(f"| {row['image']} {row['size']} s{row['param']} | {sigma:.1f} | {r['raw']:.2f} ({raw.argmax() + 1}) "
              f"| {r['ema']:.2f} ({ema.argmax() + 1}) | {r['today']:.2f} ({stop + 1}) | {r['disc_raw']:.2f} / "
              f"{r['disc_ema']:.2f} ({t + 1}) |")
    print(f"\n{len(out)} runs. Mean PSNR (dB), and mean / 90th-percentile gap to the EMA oracle:\n")
    print("| output | mean | gap | p90 gap |")
    print("|---|---|---|---|")
    for key, label in (("raw", "raw, oracle iteration"), ("ema", "EMA, oracle iteration"),
                       ("today", "EMA at lip's automatic stop"), ("disc_raw", "raw at the discrepancy stop"),
                       ("disc_ema", "EMA at the discrepancy stop + lag")):
        gaps = [r["ema"] - r[key] for r in out]
        print(f"| {label} | {np.mean([r[key] for r in out]):.2f} | {np.mean(gaps):.2f} | "
              f"{np.quantile(gaps, 0.9):.2f} |")


if __name__ == "__main__":
    main()
