"""A fit() callback that sees what the fit shows every N iterations: learning-process snapshots (LIP
Fig. 12, `lip restore --snapshots`) and curves of a second metric beside PSNR (SSIM, `lip transfer --curves`).

fit.Step carries the raw outputs only, while the fit shows (scores, stops at, returns) their moving
average when `ema` > 0. `Watch` rebuilds that average from the raw outputs with fit's own operations (a
copy at the first step, then `lerp_(raw, 1 - ema)` at every later one; a rolled-back step reaches
neither), so what it hands on is bit for bit the image the fit showed at that iteration.
"""
from __future__ import annotations

from typing import Callable

import torch

from .fit import Step


class Watch:
    """Hand `see(iteration, shown)` target `target`'s shown output (1,3,H,W) at every multiple of `every`.

    `shown` is the watcher's running average: `see` must copy what it keeps.
    """

    def __init__(self, every: int, ema: float, see: Callable[[int, torch.Tensor], None], target: int = 0) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        self.every, self.ema, self.see, self.target = every, ema, see, target
        self.shown: torch.Tensor | None = None

    def __call__(self, step: Step) -> None:
        raw = step.raw[self.target]
        if not self.ema:
            self.shown = raw
        elif self.shown is None or step.iteration == 1:  # a fit's first step (a new fit: ensemble members)
            self.shown = raw.clone()
        else:
            self.shown.lerp_(raw, 1 - self.ema)
        if step.iteration % self.every == 0:
            self.see(step.iteration, self.shown)
