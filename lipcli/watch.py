"""A fit() callback that sees what the fit shows every N iterations: learning-process snapshots (LIP
Fig. 12, `lip restore --snapshots`) and curves of a second metric beside PSNR (SSIM, `lip transfer --curves`).

It hands on fit.Step.shown, the image the fit scores, stops at and returns (the moving average when
`ema` > 0), so what a snapshot or a curve shows is bit for bit what the fit showed at that iteration.
"""
from __future__ import annotations

from typing import Callable

import torch

from .fit import Step


class Watch:
    """Hand `see(iteration, shown)` target `target`'s shown output (1,3,H,W) at every multiple of `every`.

    `shown` is the fit's own image, updated in place later: `see` must copy what it keeps.
    """

    def __init__(self, every: int, see: Callable[[int, torch.Tensor], None], target: int = 0) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        self.every, self.see, self.target = every, see, target
        self.shown: torch.Tensor | None = None

    def __call__(self, step: Step) -> None:
        self.shown = step.shown[self.target]
        if step.iteration % self.every == 0:
            self.see(step.iteration, self.shown)
