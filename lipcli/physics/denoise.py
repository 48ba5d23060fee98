"""Denoising: A is the identity, the noise additive white Gaussian, clipped to [0, 1] as in the DIP code."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import LipError
from .base import Identity
from .noise import GaussianNoise
from .task import SIMULATED, Flag, Task, register_task


class Denoise(Identity):
    """y = clip(x + sigma/255 * N(0, 1), 0, 1), with sigma in 0-255 units."""

    name = "denoise"

    def __init__(self, sigma: float) -> None:
        if not 0 <= sigma <= 255:
            raise LipError(f"--sigma {sigma} is out of range: give the noise level in 0-255 units")
        super().__init__(GaussianNoise(sigma / 255.0, clip=True))
        self.sigma = sigma

    def params(self) -> dict[str, Any]:
        return {"name": self.name, "sigma": self.sigma}


class DenoiseTask(Task):
    name = "denoise"
    options = {"sigma": 25.0}
    simulated = frozenset({"sigma"})
    flags = {"sigma": Flag(f"Gaussian noise level that lip adds to a clean image, 0-255 units ({SIMULATED}) [25]")}
    real_hint = " (its noise level is estimated: sigma_estimated)"
    fitting = {"iters": 3000, "reg_noise": 1 / 30, "ema": 0.99}
    # A cap, not a budget: the gated stop ends most fits sooner; textured crops peak late (1200 cut them
    # short: experiments/RESULTS-stop-gate.md). IMP rounds keep 1200 (RESULTS-search-budget.md).
    fast_iters = 1800
    fast_search_iters = 1200
    fast_es_patience = 150  # with the noise gate it reports what 300 did, sooner (RESULTS-stop-gate.md)
    fast_ticket = "dip-channel-house"  # faster than the dense net and no worse (README, "Which prior to use")

    def build(self, settings: dict[str, Any], height: int, width: int, gray: bool,
              inpaint_mask: Path | None, seed: int) -> Denoise:
        return Denoise(float(settings["sigma"]))

    def degradation(self, settings: dict[str, Any], inpaint_mask: Path | None) -> dict[str, Any]:
        return {"sigma": float(settings["sigma"])}


register_task(DenoiseTask())
