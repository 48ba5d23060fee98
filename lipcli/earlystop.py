"""Automatic early stopping that never reads the clean image.

The windowed-moving-variance rule (ES-WMV) of Wang et al., "Early Stopping for Deep Image Prior"
(TMLR 2023): DIP reconstructions first settle on the image content, then start to wander as they
pick up noise. The variance of the last W reconstructions therefore falls, bottoms out near the
PSNR peak and rises again. The fitting loop keeps the output at the variance minimum (shifted by
the EMA lag when the output is averaged) and stops once the
minimum has not improved for `patience` iterations.
"""
from __future__ import annotations

import math

import torch


class WindowedVariance:
    """Running VAR_t = mean_w ||x_{t-w} - mean(x_{t-W+1..t})||^2 over a window of W outputs.

    Large images are watched through a fixed random subset of at most `max_values` pixel values,
    which keeps the ring buffer small (the variance estimate is unbiased for the subset).
    """

    def __init__(self, window: int, patience: int, max_values: int = 65536, seed: int = 0) -> None:
        if window < 2 or patience < 1:
            raise ValueError("early stopping needs window >= 2 and patience >= 1")
        self.window, self.patience, self.max_values, self.seed = window, patience, max_values, seed
        self.buffer: torch.Tensor | None = None
        self.index: torch.Tensor | None = None
        self.count = 0
        self.best = math.inf
        self.best_iter = -1

    def _watch(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.detach().reshape(-1).float()
        if self.index is None and flat.numel() > self.max_values:
            gen = torch.Generator().manual_seed(self.seed)
            self.index = torch.randperm(flat.numel(), generator=gen)[: self.max_values].to(flat.device)
        return flat if self.index is None else flat[self.index]

    def update(self, iteration: int, x: torch.Tensor) -> bool:
        """Add the output of `iteration`; True if this iteration is the new variance minimum.

        O(n) per call: running sums (float64) of the window's vectors and squared norms, so
        VAR = mean ||x||^2 - ||mean x||^2 without re-reading the whole window.
        """
        v = self._watch(x).double()
        if self.buffer is None:
            self.buffer = torch.zeros((self.window, v.numel()), dtype=torch.float64, device=v.device)
            self.total = torch.zeros_like(v)
            self.norms = torch.zeros(self.window, dtype=torch.float64)
        slot = self.count % self.window
        self.total += v - self.buffer[slot]
        self.norms[slot] = float(v.square().sum())
        self.buffer[slot] = v
        self.count += 1
        if self.count < self.window:
            return False
        mean_sq = float(self.norms.sum()) / self.window
        var = max(0.0, mean_sq - float((self.total / self.window).square().sum())) / v.numel()
        if var < self.best:
            self.best, self.best_iter = var, iteration
            return True
        return False

    def should_stop(self, iteration: int) -> bool:
        return self.best_iter >= 0 and iteration - self.best_iter >= self.patience
