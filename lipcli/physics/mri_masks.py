"""Seeded k-space sampling masks for simulated MRI, one registry entry per `--mask-type`.

Every mask samples the k-space centre (DC at (H // 2, W // 2), as fft2c puts it) fully and about
H*W/acceleration entries in all:
- random, equispaced: fastMRI's Cartesian column masks (whole phase-encoding lines): the central
  `center_fraction` of the columns, and the rest at random (each with the probability that samples
  W/acceleration columns in expectation) or equispaced from a random offset;
- variable-density: single points of the 2-D grid, drawn without replacement with a Gaussian density
  of the distance from DC (the usual 2-D pattern of compressed-sensing MRI, Lustig et al. 2007) beside
  a central block of `center_fraction` of the rows and columns; exactly round(H*W/acceleration) points;
- radial: spokes through DC at golden-angle steps (Winkelmann et al. 2007) from a seeded first angle,
  on the nearest grid points, as many as bring the count nearest to H*W/acceleration (centre block as
  for variable-density). Spokes reach the inscribed ellipse only, pi/4 of the grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .. import seeds
from ..errors import LipError

# Variable density: the Gaussian's standard deviation, in units of the distance from DC to the edge
# along each axis: about half the weight lies in the central tenth of the grid. Not tuned (zero-filled 128x128
# brain at 4x: 23.4 dB, against 25.8 dB with 0.15, 19.6 dB with 0.5 and 18.7 dB for random columns).
VD_SIGMA = 0.3
GOLDEN_ANGLE = math.pi * (math.sqrt(5) - 1) / 2  # ~111.25 degrees: each new spoke falls in one of the widest gaps


@dataclass(frozen=True)
class MaskType:
    """draw(centre, target, gen) -> the sampled entries (the centre may be left out: it is added).

    centre: bool, (W,) when `columns` (whole k-space columns are sampled) or (H, W); target: how many
    entries of that shape the acceleration asks for (a float)."""

    draw: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]
    columns: bool


def _random_columns(centre: torch.Tensor, target: float, gen: torch.Generator) -> torch.Tensor:
    low, width = int(centre.sum()), centre.numel()
    return torch.rand(width, generator=gen) < (target - low) / max(1, width - low)


def _equispaced_columns(centre: torch.Tensor, target: float, gen: torch.Generator) -> torch.Tensor:
    low, width = int(centre.sum()), centre.numel()
    mask = torch.zeros(width, dtype=torch.bool)
    if target > low:
        step = (width - low) / (target - low)
        offset = int(torch.randint(0, max(1, round(step)), (1,), generator=gen))
        mask[torch.arange(float(offset), width, step).round().long().clamp(max=width - 1)] = True
    return mask


def _variable_density(centre: torch.Tensor, target: float, gen: torch.Generator) -> torch.Tensor:
    height, width = centre.shape
    ky = (torch.arange(height, dtype=torch.float64) - height // 2) / (height / 2)  # -1 .. 1, 0 at DC
    kx = (torch.arange(width, dtype=torch.float64) - width // 2) / (width / 2)
    weight = torch.exp(-(ky[:, None] ** 2 + kx ** 2) / (2 * VD_SIGMA ** 2))  # (H, W)
    # A weighted draw without replacement (Efraimidis and Spirakis): the largest log(u) / w; the centre first.
    key = torch.rand(height, width, generator=gen, dtype=torch.float64).log() / weight
    key[centre] = math.inf
    mask = torch.zeros(height * width, dtype=torch.bool)
    mask[key.flatten().topk(round(target)).indices] = True
    return mask.view(height, width)


def _spoke(height: int, width: int, angle: float) -> torch.Tensor:
    """Flat indices of the grid points nearest a diameter of the inscribed ellipse through DC."""
    t = torch.linspace(-1, 1, 4 * max(height, width) + 1, dtype=torch.float64)  # steps of at most 1/4 pixel
    rows = (height // 2 + t * (height / 2) * math.sin(angle)).round().long()
    cols = (width // 2 + t * (width / 2) * math.cos(angle)).round().long()
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    return (rows[inside] * width + cols[inside]).unique()


def _radial(centre: torch.Tensor, target: float, gen: torch.Generator) -> torch.Tensor:
    height, width = centre.shape
    mask, count = centre.flatten().clone(), int(centre.sum())
    first = float(torch.rand(1, generator=gen, dtype=torch.float64)) * math.pi
    for n in range(4 * max(height, width)):  # more spokes than it takes to fill the ellipse
        if count >= target:
            break
        new = _spoke(height, width, first + n * GOLDEN_ANGLE)
        new = new[~mask[new]]
        if count + new.numel() - target > target - count:
            break  # nearer the target without this spoke
        mask[new] = True
        count += new.numel()
    else:
        raise LipError(f"--mask-type radial samples at most {count / mask.numel():.1%} of a {height}x{width} "
                       f"k-space (its spokes stay in the inscribed ellipse): use --acceleration "
                       f"{math.ceil(100 * mask.numel() / count) / 100:g} or more")
    return mask.view(height, width)


MASK_TYPES: dict[str, MaskType] = {
    "random": MaskType(_random_columns, columns=True),
    "equispaced": MaskType(_equispaced_columns, columns=True),
    "variable-density": MaskType(_variable_density, columns=False),
    "radial": MaskType(_radial, columns=False),
}


def _central(n: int, fraction: float) -> slice:
    """The central round(n * fraction) indices (at least 1), with n // 2 (DC after fftshift) inside."""
    low = max(1, round(n * fraction))
    start = (n - low + 1) // 2
    return slice(start, start + low)


def sampling_mask(kind: str, height: int, width: int, acceleration: float, center_fraction: float,
                  seed: int) -> torch.Tensor:
    """A seeded (H, W) bool mask of `kind` sampling about H*W/acceleration entries, the centre always."""
    if kind not in MASK_TYPES:
        *most, last = MASK_TYPES
        raise LipError(f"unknown --mask-type {kind!r}: use {', '.join(most)} or {last}")
    if not acceleration >= 1:
        raise LipError(f"--acceleration {acceleration:g} must be at least 1 (1 = full sampling)")
    if not 0 < center_fraction <= 1:
        raise LipError(f"--center-fraction {center_fraction} must be in (0, 1]")
    mtype = MASK_TYPES[kind]
    size = (width,) if mtype.columns else (height, width)
    centre = torch.zeros(size, dtype=torch.bool)
    centre[tuple(_central(n, center_fraction) for n in size)] = True
    low, target = int(centre.sum()), math.prod(size) / acceleration
    if low > target:
        unit = "columns" if mtype.columns else "k-space points"
        raise LipError(f"--center-fraction {center_fraction} keeps {low} of {math.prod(size)} {unit}, more than "
                       f"the {target:.1f} that --acceleration {acceleration:g} samples in all")
    mask = mtype.draw(centre, target, seeds.generator(seed)) | centre
    return mask.expand(height, width)
