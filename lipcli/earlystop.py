"""Automatic early stopping that never reads the clean image.

The windowed-moving-variance rule (ES-WMV) of Wang et al., "Early Stopping for Deep Image Prior"
(TMLR 2023): DIP reconstructions first settle on the image content, then start to wander as they
pick up noise. The variance of the last W reconstructions therefore falls, bottoms out near the
PSNR peak and rises again. The fitting loop keeps the output at the variance minimum (shifted by
the EMA lag when the output is averaged) and stops once the
minimum has not improved for `patience` iterations.

On textured images the variance also dips between two phases of learning the image, long before the
peak (barbara: 4 dB early, experiments/RESULTS-stop-gate.md). A noise gate separates the two: when the
observation's noise level is known (estimated blind, lipcli/noise_estimate.py), a minimum counts only
once the loss, averaged over the last `floor_window` iterations, has come down to `floor` (about the
noise variance: a fit that has not explained the image yet sits above it; the discrepancy principle).
"""
from __future__ import annotations

import math
from typing import Any

import torch


class WindowedVariance:
    """Running VAR_t = mean_w ||x_{t-w} - mean(x_{t-W+1..t})||^2 over a window of W outputs.

    Large images are watched through a fixed random subset of at most `max_values` pixel values,
    which keeps the ring buffer small (the variance estimate is unbiased for the subset).
    """

    def __init__(self, window: int, patience: int, max_values: int = 65536, seed: int = 0,
                 floor: float | None = None, floor_window: int = 50) -> None:
        if window < 2 or patience < 1:
            raise ValueError("early stopping needs window >= 2 and patience >= 1")
        self.window, self.patience, self.max_values, self.seed = window, patience, max_values, seed
        self.floor, self.floor_window = floor, floor_window
        self.losses: list[float] = []  # the last floor_window losses while the gate is shut
        self.gate_open = floor is None
        self.gate_iter = 0 if floor is None else None
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

    def _gate(self, iteration: int, loss: float | None) -> None:
        """Open (for good) once the trailing mean loss is at or under the floor."""
        if self.gate_open or loss is None:
            return
        self.losses = [*self.losses[1 - self.floor_window:], loss]
        if len(self.losses) == self.floor_window and sum(self.losses) / self.floor_window <= self.floor:
            self.gate_open, self.gate_iter = True, iteration

    def update(self, iteration: int, x: torch.Tensor, loss: float | None = None) -> bool:
        """Add the output of `iteration` (and its loss, for the noise gate); True if this iteration is the
        new variance minimum. Without a loss the gate stays as it is.

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
        self._gate(iteration, loss)
        if self.count < self.window or not self.gate_open:
            return False
        mean_sq = float(self.norms.sum()) / self.window
        var = max(0.0, mean_sq - float((self.total / self.window).square().sum())) / v.numel()
        if var < self.best:
            self.best, self.best_iter = var, iteration
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        """Everything it holds, for a resumed fit (lipcli/resume.py). The window holds float32 outputs
        widened to float64, so it is saved in float32 at half the size, exactly."""
        state = dict(vars(self))
        if self.buffer is not None:
            state["buffer"] = self.buffer.float()
        return state

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        """`state_dict`'s, read on the CPU: the watched values go to `device` (the window's norms stay)."""
        vars(self).update(state)
        for name in ("buffer", "total", "index"):
            if getattr(self, name, None) is not None:
                setattr(self, name, getattr(self, name).to(device))
        if self.buffer is not None:
            self.buffer = self.buffer.double()

    def should_stop(self, iteration: int) -> bool:
        return self.best_iter >= 0 and iteration - self.best_iter >= self.patience
