"""How close lipcli/noise_estimate.py gets on the shared photographs (issue 17, item 3).

Every PNG of ../shared/data/images, centred crops of 64 and 128 px, seeded Gaussian noise at sigma
5/15/25/50 (0-255), clipped to [0, 1] and rounded to 8 bits as a saved noisy PNG would be. The clean
crop's own estimate is printed too: grain or texture already in the picture adds to the noise in
quadrature, which is what the sigma-5 estimates see.

    PYTHONPATH=$PWD python experiments/noise_estimate_eval.py > experiments/RESULTS-noise-estimate.md
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lipcli.images import load_image
from lipcli.noise_estimate import estimate_sigma

DATA = Path("/work/shared/data/images")
SIGMAS = (5, 15, 25, 50)


def centre_crop(x: np.ndarray, size: int) -> np.ndarray:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[:, top:top + size, left:left + size]


def noisy_8bit(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.round(np.clip(x + rng.normal(0, sigma / 255, x.shape), 0, 1) * 255) / 255


def main() -> None:
    rng = np.random.default_rng(0)
    paths = sorted(DATA.glob("*.png"))
    print(f"# Noise-level estimate on {len(paths)} shared photographs\n")
    print("`PYTHONPATH=$PWD python experiments/noise_estimate_eval.py` (centred crops, 8-bit clipped noise, "
          "numpy seed 0). Ratio = estimate / true sigma.\n")
    print("| crop | sigma | median ratio | min | max | within 10% | within 15% |")
    print("|---|---|---|---|---|---|---|")
    per_image: dict[str, list[str]] = {}
    for size in (64, 128):
        ratios: dict[int, list[float]] = {s: [] for s in SIGMAS}
        for path in paths:
            clean = centre_crop(load_image(path).pixels.astype(np.float64), size)
            row = per_image.setdefault(path.stem, [f"{estimate_sigma(torch.from_numpy(clean)):.1f}"])
            for s in SIGMAS:
                est = estimate_sigma(torch.from_numpy(noisy_8bit(clean, s, rng)))
                ratios[s].append(est / s)
                if size == 128:
                    row.append(f"{est:.1f}")
        for s, v in ratios.items():
            a = np.array(v)
            print(f"| {size} | {s} | {np.median(a):.2f} | {a.min():.2f} | {a.max():.2f} | "
                  f"{np.mean(abs(a - 1) <= 0.10):.0%} | {np.mean(abs(a - 1) <= 0.15):.0%} |")
    print("\nPer image, 128 px crop: the clean crop's own estimate, then the estimate at each sigma.\n")
    print("| image | clean | " + " | ".join(f"sigma {s}" for s in SIGMAS) + " |")
    print("|---|---|" + "---|" * len(SIGMAS))
    for name, row in per_image.items():
        print(f"| {name} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
