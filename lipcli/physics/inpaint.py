"""Inpainting: a pixel mask, from a mask image or drawn at random (LIP's Bernoulli mask)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import files, images, seeds
from ..errors import LipError
from .base import LinearPhysics, Physics, array_hash
from .task import SIMULATED, Flag, Task, register_task


class Inpaint(LinearPhysics):
    """A(x) = m * x, with m = 1 where observed (self-adjoint); noise-free."""

    name = "inpaint"

    def __init__(self, mask: torch.Tensor, source: str, sha256: str | None = None) -> None:
        super().__init__()
        self.register_buffer("mask", mask.float())  # (1|C, H, W) broadcast over the batch
        self.source = source
        self.sha256 = sha256  # a mask file's pixels (array_hash): its name says nothing of what it held

    @classmethod
    def bernoulli(cls, shape: tuple[int, int, int], keep: float, seed: int) -> "Inpaint":
        """LIP's random mask: every value of the C x H x W array is kept with probability `keep`."""
        if not 0 < keep <= 1:
            raise LipError(f"--keep {keep} must be in (0, 1]: the fraction of pixels observed")
        gen = seeds.generator(seed)
        kept = torch.rand(shape, generator=gen) < keep
        if not kept.any() or kept.all():  # as a mask file that observes no pixel, or every one, is refused
            what = "no value of it: nothing to inpaint from" if not kept.any() else "every value: nothing to inpaint"
            raise LipError(f"--keep {keep} draws a mask of this {shape[-1]}x{shape[-2]} image that observes {what}; "
                           "give a fraction that observes some values and leaves some out")
        return cls(kept, f"bernoulli(keep={keep}, seed={seed})")

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.mask

    def consistent(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The observed pixels as given, the net's only in the holes (what an inpainting tool returns)."""
        return torch.where(self.mask.bool(), y, x)

    def params(self) -> dict[str, Any]:
        return {"name": self.name, "mask": self.source, "observed": round(float(self.mask.mean()), 6),
                **({"mask_sha256": self.sha256} if self.sha256 else {})}


class InpaintTask(Task):
    name = "inpaint"
    options = {"keep": 0.5}  # and --inpaint-mask, which replaces the random mask
    simulated = frozenset({"keep"})
    flags = {"keep": Flag(f"Bernoulli fraction of pixels observed, simulated without a mask ({SIMULATED}) [0.5]")}
    real_hint = " (--inpaint-mask says which pixels are observed)"
    # Still improving at 1.5x the former 1500 on every development crop; 1875 (1.25x) with the EMA output
    # cut the gap to the oracle from 1.6 to 0.2 dB on the tune crops (experiments/RESULTS-stop-tasks.md).
    fast_iters = 1875
    fast_search_iters = 1500
    fast_ema = 0.99
    # No automatic stop: noise-free inpainting has no noise to overfit and peaked at the 2250-iteration
    # horizon on all 14 development crops; the stop only ever fired early (barbara 2.86 dB, face 1.51 dB under
    # the oracle). The EMA at the cap: gap 0.29 / 0.35 dB (tune / report) against the stop's 0.30 / 0.93.
    fast_early_stop = False
    # Still climbing at the cap without it: the kernel decay took the 14 Bernoulli crops +0.78 dB higher there
    # (12 better; 128x128: +1.1 to +2.8) and 6 text and hole masks +0.60 / +0.09 on two seeds; on the text masks
    # alone -0.23 (3 of 8 runs better), where --weight-decay 0 is the better choice
    # (experiments/RESULTS-decay-tasks.md).
    fast_weight_decay = 0.2
    data_consistency = True
    fast_data_consistency = True  # the observed pixels come back as given: a user's photo changes only in its holes

    def build(self, settings: dict[str, Any], height: int, width: int, gray: bool,
              inpaint_mask: Path | None, seed: int) -> Inpaint:
        if inpaint_mask is not None:
            keep = torch.from_numpy(images.load_binary_mask(inpaint_mask, height, width))[None].float()
            return Inpaint(keep, inpaint_mask.name, array_hash(keep.numpy()))
        return Inpaint.bernoulli((1 if gray else 3, height, width), float(settings["keep"]), seed)

    def check_flags(self, given: dict[str, Any], simulate: bool, inpaint_mask: Path | None) -> None:
        super().check_flags(given, simulate, inpaint_mask)
        if inpaint_mask is not None and given.get("keep") is not None:
            raise LipError("--keep draws a random mask, which --inpaint-mask replaces: give one of them")

    def check_real(self, inpaint_mask: Path | None) -> None:
        if inpaint_mask is None:
            raise LipError("inpainting a real image needs --inpaint-mask MASK.png (white = observed); "
                           "use --simulate to test with a random mask")

    def read_real(self, op: Physics, y: torch.Tensor) -> torch.Tensor:
        """Missing pixels of a real file hold arbitrary values: zero them as A does."""
        return op.A(y)

    def degradation(self, settings: dict[str, Any], inpaint_mask: Path | None) -> dict[str, Any]:
        if inpaint_mask is None:
            return {"keep": float(settings["keep"]), "mask": None}
        return {"mask": inpaint_mask.name, "mask_file_sha256": files.sha256_of(inpaint_mask)}  # shards' paths differ


register_task(InpaintTask())
