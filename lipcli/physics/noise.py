"""Noise models: how a simulated observation departs from A(x).

Noise is drawn on the CPU from the caller's generator, so one seed gives the same observation on any
device and the global RNG is never touched.
"""
from __future__ import annotations

import torch
from torch import nn


class NoiseModel(nn.Module):
    """No noise: y = A(x)."""

    def forward(self, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return y


class GaussianNoise(NoiseModel):
    """y = A(x) + std * N(0, 1), clipped to [0, 1] when `clip` (as the DIP code makes noisy images)."""

    def __init__(self, std: float, clip: bool = False) -> None:
        super().__init__()
        self.std, self.clip = std, clip

    def forward(self, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        y = y + torch.randn(y.shape, generator=generator).to(y) * self.std
        return y.clamp(0, 1) if self.clip else y


class CorruptedGaussianNoise(GaussianNoise):
    """Gaussian noise, then the rows flagged in `bad` replaced by `value` (outliers, Jalal et al.)."""

    def __init__(self, std: float, bad: torch.Tensor, value: float) -> None:
        super().__init__(std)
        self.value = value
        self.register_buffer("bad", bad)  # (m,) bool

    def forward(self, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        y = super().forward(y, generator)
        return torch.where(self.bad, torch.full_like(y, self.value), y)
