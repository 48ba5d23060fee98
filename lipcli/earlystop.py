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

At low noise the loss says little (sigma 15: the variance dips 1000-1400 iterations before a late, flat peak
once the loss gate is open). A second gate reads the residual y - A(x) instead: while the net has not drawn
the image, the residual holds image structure and is spatially correlated; a minimum counts only once its
lag-1 autocorrelation (`lag1_correlation`, trailing mean) is down to `white` (experiments/RESULTS-stop-white.md).
It needs no noise level.

The same signal says when a fit has passed its peak: once the net draws the noise, the residual loses the noise's
smooth part and its autocorrelation falls through 0, while on some fits the outputs' variance goes on falling to the
cap (comic at sigma 50: peak at 1516, still falling at 3000). `close` shuts the stop: once a minimum has counted and
the trailing mean is down to `close`, no later minimum counts (experiments/RESULTS-stop-close.md).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from . import seeds


def lag1_correlation(r: torch.Tensor) -> float:
    """The normalised lag-1 autocorrelation of a residual (..., h, w), across and down averaged, channels
    pooled, each channel centred; circular, so one wrapped column (row) enters: negligible at 64 and above.
    ~0 for white noise, > 0 while the residual holds image structure, < 0 once it is high-passed."""
    r = r.detach().float()
    r = r - r.mean(dim=(-2, -1), keepdim=True)
    pairs = (r * r.roll(1, -1)).sum() + (r * r.roll(1, -2)).sum()
    return float(pairs / (2 * r.square().sum()))


def _trailing_mean(values: list[float], value: float, window: int) -> float:
    """Append `value` to the last `window - 1` `values` (in place); their mean once `window` are there, else inf."""
    values[:] = [*values[1 - window:], value]
    return sum(values) / window if len(values) == window else math.inf


class WindowedVariance:
    """Running VAR_t = mean_w ||x_{t-w} - mean(x_{t-W+1..t})||^2 over a window of W outputs.

    Large images are watched through a fixed random subset of at most `max_values` pixel values,
    which keeps the ring buffer small (the variance estimate is unbiased for the subset).
    """

    def __init__(self, window: int, patience: int, max_values: int = 65536, seed: int = 0,
                 floor: float | None = None, floor_window: int = 50, white: float | None = None,
                 close: float | None = None) -> None:
        if window < 2 or patience < 1:
            raise ValueError("early stopping needs window >= 2 and patience >= 1")
        self.window, self.patience, self.max_values, self.seed = window, patience, max_values, seed
        self.floor, self.floor_window = floor, floor_window
        self.losses: list[float] = []  # the last floor_window losses while the gate is shut
        self.gate_open = floor is None
        self.gate_iter = 0 if floor is None else None
        self.white = white  # the whiteness gate's level (module docstring); None = no such gate
        self.rhos: list[float] = []  # the last floor_window lag-1 autocorrelations while either needs them
        self.white_open = white is None
        self.close = close  # the level that shuts the stop once a minimum has counted; None = never
        self.closed = False
        self.buffer: torch.Tensor | None = None
        self.index: torch.Tensor | None = None
        self.count = 0
        self.best = math.inf
        self.best_iter = -1
        self.fired = False  # the patience ran out after the minimum: the rule's pick is made, later minima are not it

    def _watch(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.detach().reshape(-1).float()
        if self.index is None and flat.numel() > self.max_values:
            gen = seeds.generator(self.seed)
            self.index = torch.randperm(flat.numel(), generator=gen)[: self.max_values].to(flat.device)
        return flat if self.index is None else flat[self.index]

    @property
    def reads_residual(self) -> bool:
        """Whether the next `update` reads a residual: while the whiteness gate is shut or the close may still
        come (the loop computes y - A(x) only then: A may be an FFT or a large matrix)."""
        return not self.fired and (not self.white_open or (self.close is not None and not self.closed))

    def _gate(self, iteration: int, loss: float | None, residual: torch.Tensor | None) -> None:
        """Open each gate (for good) once its trailing mean is at or under its level; shut the stop (for good)
        once a minimum has counted and the residual's is at or under `close`."""
        if not self.gate_open and loss is not None:
            if _trailing_mean(self.losses, loss, self.floor_window) <= self.floor:
                self.gate_open, self.gate_iter = True, iteration
        if residual is not None and self.reads_residual:
            rho = _trailing_mean(self.rhos, lag1_correlation(residual), self.floor_window)
            self.white_open = self.white_open or rho <= self.white
            if self.close is not None and self.best_iter >= 0 and rho <= self.close:
                self.closed = True

    def update(self, iteration: int, x: torch.Tensor, loss: float | None = None,
               residual: torch.Tensor | None = None) -> bool:
        """Add the output of `iteration` (its loss, for the noise gate; its residual y - A(x), for the
        whiteness gate); True if this iteration is the new variance minimum. Without a loss (residual) that
        gate stays as it is.

        O(n) per call: running sums (float64) of the window's vectors and squared norms, so
        VAR = mean ||x||^2 - ||mean x||^2 without re-reading the whole window. Once the rule has fired it reads
        nothing more: a fit that runs on (without the stop, or for an ensemble's other members) reports this pick.
        """
        if self.fired:
            return False
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
        self._gate(iteration, loss, residual)
        if self.count < self.window or not (self.gate_open and self.white_open) or self.closed:
            return False
        mean_sq = float(self.norms.sum()) / self.window
        var = max(0.0, mean_sq - float((self.total / self.window).square().sum())) / v.numel()
        if var < self.best:
            self.best, self.best_iter = var, iteration
            return True
        self.fired = iteration - self.best_iter >= self.patience
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
