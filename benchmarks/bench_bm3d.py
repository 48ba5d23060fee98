"""lip vs BM3D on the bundled noisy sample (Gaussian denoising, sigma 25): PSNR and wall time.

BM3D is not a lip dependency: `pip install bm3d` first. Usage: python benchmarks/bench_bm3d.py
"""
from __future__ import annotations

import time

import bm3d
import numpy as np
import torch

from lipcli.fit import FitConfig
from lipcli.images import load_image
from lipcli.metrics import psnr, ssim
from lipcli.problem import load_problem
from lipcli.restore import dense_prior, restore


def main() -> None:
    clean = load_image("sample:house").pixels
    noisy = load_image("sample:house-noisy").pixels
    t = time.perf_counter()
    den = bm3d.bm3d_rgb(noisy.transpose(1, 2, 0).astype(np.float64), 25 / 255).clip(0, 1)
    t_bm3d = time.perf_counter() - t
    den_t, clean_t = torch.from_numpy(den.transpose(2, 0, 1)).float(), torch.from_numpy(clean)
    print(f"BM3D        psnr {psnr(den_t, clean_t):.2f}  ssim {ssim(den_t, clean_t):.3f}  {t_bm3d:.1f}s")
    problem = load_problem("sample:house-noisy", "denoise", {"sigma": 25.0}, simulate=False, seed=0,
                           clean="sample:house")
    cfg = FitConfig(iters=1200, es_patience=300, precision="bf16", channels_last=True)  # the fast preset
    t = time.perf_counter()
    _, rep = restore(problem, dense_prior("dip"), cfg, torch.device("cpu"), seed=0)
    print(f"lip (fast)  psnr {rep['psnr_stopped']:.2f}  ssim {rep['ssim_stopped']:.3f}  "
          f"{time.perf_counter() - t:.1f}s  (auto-stopped at {rep['stopped_at']} of {rep['iterations']}; "
          f"oracle best {rep['oracle_best_psnr']:.2f})")


if __name__ == "__main__":
    main()
