"""The two experiments besides the grid: what they fit and what they measure (report.py draws them).

*Impedance* (LIP Fig. 10, DIP Fig. 2): how readily a prior fits a clean, noisy, pixel-shuffled or
white-noise image through the identity; a good image prior fits natural images fast and noise slowly.
*Spectrum*: which frequencies a restore keeps, measured on every grid run (it is cheap).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from .. import seeds
from ..jsonsafe import finite
from ..physics import Identity
from ..problem import Problem
from .rows import rounded

IMPEDANCE_TARGETS = ("clean", "noisy", "shuffled", "noise")
TARGET_NAMES = {"clean": "clean image", "noisy": "noisy image", "shuffled": "pixel-shuffled image",
                "noise": "U(0,1) noise image"}
LOW_RADIUS = 1 / 8  # low-frequency disk, as a fraction of the Nyquist frequency
RADIAL_BINS = 16


def impedance_problem(denoise: Problem, target: str, seed: int) -> Problem:
    """Fit one of the four targets, made from a simulated denoising problem, through the identity."""
    clean, gen = denoise.clean, seeds.generator(seed)
    if target == "clean":
        y = clean
    elif target == "noisy":
        y = denoise.y
    elif target == "shuffled":  # same pixel values (and histogram), positions permuted
        h, w = clean.shape[-2:]
        y = clean.reshape(1, 3, h * w)[..., torch.randperm(h * w, generator=gen)].reshape(clean.shape)
    else:
        y = torch.rand(clean.shape, generator=gen)
    return replace(denoise, y=y, op=Identity(), clean=y)


def spectrum(restored: torch.Tensor, clean: torch.Tensor) -> dict[str, Any]:
    """How much of the clean image's spectral energy a restore keeps, below and above a low disk.

    Both images are Hann-windowed first (the wrap-around edge of a non-periodic image would add
    false high frequencies); energy is |FFT|^2 summed over channels, DC left out. Energy ratios are
    restored/clean: 1 = as much as the clean image, < 1 = smoothed away, > 1 = extra (noise,
    artefacts). The magnitude error is sum ||F_r| - |F_c|| / sum |F_c| over a band. Frequencies are
    radii as a fraction of Nyquist: the low disk has radius LOW_RADIUS, RADIAL_BINS rings cover 0..1
    (corners beyond Nyquist count as high frequencies but lie in no ring).
    """
    h, w = clean.shape[-2:]
    window = torch.outer(torch.hann_window(h, periodic=False, dtype=torch.float64),
                         torch.hann_window(w, periodic=False, dtype=torch.float64))
    fr, fc = (torch.fft.fft2(x.detach().double().cpu() * window).abs() for x in (restored, clean))
    er, ec = fr.pow(2).sum(dim=(0, 1)), fc.pow(2).sum(dim=(0, 1))
    diff, mag = (fr - fc).abs().sum(dim=(0, 1)), fc.sum(dim=(0, 1))
    rho = torch.sqrt(torch.fft.fftfreq(h, dtype=torch.float64)[:, None] ** 2
                     + torch.fft.fftfreq(w, dtype=torch.float64)[None, :] ** 2) / 0.5
    ac = rho > 0

    def ratio(num: torch.Tensor, den: torch.Tensor, sel: torch.Tensor) -> float | None:
        d = float(den[sel].sum())
        return float(num[sel].sum()) / d if d > 0 else None

    low, high = ac & (rho <= LOW_RADIUS), rho > LOW_RADIUS
    edges = torch.linspace(0, 1, RADIAL_BINS + 1, dtype=torch.float64)
    rings = [ratio(er, ec, ac & (rho > a) & (rho <= b)) for a, b in zip(edges[:-1], edges[1:])]
    return finite({"low_energy_ratio": ratio(er, ec, low), "high_energy_ratio": ratio(er, ec, high),
                   "low_magnitude_error": ratio(diff, mag, low), "high_magnitude_error": ratio(diff, mag, high),
                   "radial_energy_ratio": [rounded(v, 6) for v in rings]})
