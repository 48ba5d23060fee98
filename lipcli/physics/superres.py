"""Super-resolution: DIP's Lanczos-2 downsampling by 2, 4 or 8, scored by Y-PSNR for colour images."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import LipError
from ..metrics import psnr_y
from .base import LinearPhysics
from .task import SIMULATED, Flag, Metric, Task, on_mean, register_task

SR_BORDER = 4  # pixels cropped before Y-PSNR (DIP/LIP SR scoring, anchors-spec a.4)


def lanczos2_kernel(factor: int) -> torch.Tensor:
    """DIP's separable Lanczos-2 kernel: phase 0.5, (4f) x (4f) taps, normalised to sum 1."""
    size, support = 4 * factor, 2
    center = (size + 1) / 2
    taps = []
    for i in range(1, size + 1):
        d = (i - center) / factor
        taps.append(1.0 if d == 0 else support * math.sin(math.pi * d) * math.sin(math.pi * d / support)
                    / (math.pi ** 2 * d ** 2))  # |d| < 2 for every tap, so no cut-off is needed
    k1 = torch.tensor(taps, dtype=torch.float64)
    k2 = torch.outer(k1, k1)
    return (k2 / k2.sum()).float()


def pillow_downscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    """DIP's low-resolution image (anchors-spec a.4): Pillow's Lanczos resize of the clean image by 1/factor, per
    channel in float (not rounded to 8 bits), clipped to [0, 1] as an image file's values are."""
    n, c, h, w = x.shape
    size = (w // factor, h // factor)
    planes = [np.asarray(Image.fromarray(plane).resize(size, Image.Resampling.LANCZOS))
              for plane in x.detach().to("cpu", torch.float32).reshape(n * c, h, w).numpy()]
    y = torch.from_numpy(np.stack(planes)).reshape(n, c, size[1], size[0])
    return y.clamp(0, 1).to(x.device, x.dtype)


class SuperResolution(LinearPhysics):
    """A(x) = (k * pad(x))[::f, ::f]: replicate-pad 1.5f, depthwise Lanczos-2 conv, stride f
    (anchors-spec a.4); noise-free. The adjoint is the autograd fallback.

    `downscale` is how --simulate makes the low-resolution image: "pillow", as DIP's protocol does, so the fit
    does not meet the very operator that made its data; "operator", A itself (the inverse crime: an upper bound)."""

    name = "sr"
    FACTORS = (2, 4, 8)
    DOWNSCALES = ("pillow", "operator")

    def __init__(self, factor: int, downscale: str = "pillow") -> None:
        if factor not in self.FACTORS:
            raise LipError(f"--scale {factor} is not supported: use one of 2, 4 or 8")
        if downscale not in self.DOWNSCALES:
            raise LipError(f"--downscale {downscale!r} is not one of {' | '.join(self.DOWNSCALES)}")
        super().__init__()
        self.factor, self.downscale = factor, downscale
        self.register_buffer("kernel", lanczos2_kernel(factor))  # (4f, 4f)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        c, f = x.shape[1], self.factor
        pad = 3 * f // 2  # f is even, so the output is exactly H/f x W/f
        weight = self.kernel.to(x.device, x.dtype).expand(c, 1, -1, -1)
        xp = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        return F.conv2d(xp, weight, stride=f, groups=c)

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Only an image of sides divisible by f has a restored size equal to its own."""
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise LipError(f"--simulate with --scale {self.factor} needs sides divisible by "
                           f"{self.factor}; the image is {w}x{h} (crop it first)")
        return pillow_downscale(x, self.factor) if self.downscale == "pillow" else super().forward(x, generator)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return height * self.factor, width * self.factor

    def params(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.factor, "kernel": "lanczos2", **_downscale(self.downscale)}


class SuperResolutionTask(Task):
    name = "sr"
    options = {"scale": 4, "downscale": "pillow"}
    simulated = frozenset({"downscale"})
    absent = {"downscale": "operator"}
    flags = {"scale": Flag("Super-resolution factor: 2, 4 or 8 [4]", int),
             "downscale": Flag(f"SR, simulated ({SIMULATED}): how the low-resolution image is made: pillow (Pillow's "
                               "Lanczos resize, DIP's protocol) | operator (the Lanczos-2 operator lip fits through: "
                               "the inverse crime, scores an upper bound) [pillow]", str)}
    fitting = {"iters": 2000, "reg_noise": 0.03, "ema": 0.0}
    # The EMA output: +0.1-0.7 dB over the raw one on every development crop; with the cap at 1500 (1.25x)
    # the gap to the oracle fell from 0.75 to 0.43 dB on the tune crops (experiments/RESULTS-stop-tasks.md).
    fast_iters = 1500
    fast_search_iters = 1200
    fast_ema = 0.99
    # SR x4's own ticket: fitted for 3000 iterations, level with or above the dense net's 1500 on report crops
    # at ~2x less CPU (its library entry's `only` keeps it to x4).
    fast_ticket = "dip-channel-house-sr4"
    variant_hint = "give the factor: sr2, sr4 or sr8"

    def build(self, settings: dict[str, Any], height: int, width: int, gray: bool,
              inpaint_mask: Path | None, seed: int) -> SuperResolution:
        return SuperResolution(int(settings["scale"]), str(settings["downscale"]))

    def upscale(self, settings: dict[str, Any]) -> int:
        return int(settings["scale"])

    def metric_name(self, gray: bool) -> str:
        return "psnr" if gray else "psnr_y"

    def metric(self, gray: bool) -> Metric:
        """Colour: Y-PSNR (BT.601), gray: PSNR of the gray image itself (`psnr_y` leaves one channel as it is:
        Y's limited range would cost it 1.3 dB); both without SR's border, as DIP/LIP score SR."""
        without_border: Metric = lambda x, clean: psnr_y(x, clean, _border(x))  # noqa: E731
        return on_mean(without_border) if gray else without_border

    def variants(self) -> dict[str, dict[str, Any]]:
        return {f"sr{f}": {"scale": f} for f in SuperResolution.FACTORS}

    def degradation(self, settings: dict[str, Any], inpaint_mask: Path | None) -> dict[str, Any]:
        return {"scale": int(settings["scale"]), **_downscale(str(settings["downscale"]))}


def _downscale(downscale: str) -> dict[str, str]:
    """How records name the downscale: `operator`, what every SR record before Pillow's was
    (`SuperResolutionTask.absent`), by leaving it out (so that those searches resume and those rows are reused
    with --downscale operator)."""
    return {} if downscale == SuperResolutionTask.absent["downscale"] else {"downscale": downscale}


def _border(x: torch.Tensor) -> int:
    """The border SR scores leave out (DIP/LIP's 4 pixels), or none for an image too small to keep any pixel."""
    return SR_BORDER if min(x.shape[-2:]) > 2 * SR_BORDER else 0


register_task(SuperResolutionTask())
