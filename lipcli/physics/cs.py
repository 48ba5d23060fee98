"""Compressive-sensing operators: y = A x + noise, with k corrupted measurements (outliers).

`A` maps images (B, C, H, W) to measurements (B, m). The noise model adds Gaussian noise
(the paper: std 0.01) and replaces the k corrupted measurements by `outlier_value` (the paper: 2% of
the rows, y = 10000). `lip cs --operator` chooses a matrix from `CS_OPERATORS` by name.

- gaussian: dense A with i.i.d. N(0, 1/m) entries (Bora et al.; anchors-spec b.7); the corrupted rows
  are all ones. Memory m * n floats: for small images (n = 1024 for a 32x32 digit).
- dct: matrix-free A = sqrt(n/m) * S C D, with D random signs, C the orthonormal DCT-II of the
  flattened image (computed with an FFT, O(n log n)) and S a random subset of m rows.
  E||A x||^2 = ||x||^2, as for the Gaussian A. The corrupted measurements keep their rows.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import LipError
from ..registry import Registry
from .base import LinearPhysics
from .noise import CorruptedGaussianNoise

AUTO_MAX_ENTRIES = 4_000_000  # --operator auto: the dense matrix up to this many entries


def dct_ortho(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal DCT-II along the last axis (Makhoul's FFT algorithm; any length)."""
    n = x.shape[-1]
    v = torch.cat([x[..., 0::2], x[..., 1::2].flip(-1)], dim=-1)
    spec = torch.fft.fft(v, dim=-1)
    k = torch.arange(n, device=x.device, dtype=x.dtype)
    angle = -math.pi * k / (2 * n)
    out = spec.real * torch.cos(angle) - spec.imag * torch.sin(angle)
    scale = torch.full((n,), math.sqrt(2.0 / n), device=x.device, dtype=x.dtype)
    scale[0] = math.sqrt(1.0 / n)
    return out * scale


class CompressedSensing(LinearPhysics):
    """Shared parts: the image shape, measurement count, corrupted rows and their noise model."""

    name = "cs"
    kind: str  # the CS_OPERATORS name
    summary: str  # one phrase for `lip cs --help`

    def __init__(self, shape: tuple[int, int, int], m: int, outliers: int = 0, noise: float = 0.0,
                 outlier_value: float = 10000.0, seed: int = 0) -> None:
        if not 1 <= m:
            raise LipError(f"--measurements {m} must be >= 1")
        if not 0 <= outliers < m:
            raise LipError(f"--outliers {outliers} must be in [0, {m - 1}] (fewer than the measurements)")
        if noise < 0:
            raise LipError(f"--noise {noise} must be >= 0")
        perm = torch.randperm(m, generator=torch.Generator().manual_seed(seed + 7919))
        bad = torch.zeros(m, dtype=torch.bool)
        bad[perm[:outliers]] = True
        super().__init__(CorruptedGaussianNoise(noise, bad, outlier_value))
        self.shape = tuple(int(s) for s in shape)  # (C, H, W) of the images it measures
        self.n = math.prod(self.shape)
        self.m, self.k, self.noise, self.outlier_value, self.seed = m, outliers, noise, outlier_value, seed
        self.register_buffer("bad", bad)  # (m,) the corrupted rows

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-3:]) != self.shape:
            raise LipError(f"the image is {tuple(x.shape[-3:])} (C, H, W) but the operator was built for "
                           f"{self.shape}")
        return x.reshape(x.shape[0], -1)  # (B, n)

    def input_shape(self, y_shape: torch.Size) -> tuple[int, ...]:
        return (y_shape[0], *self.shape)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return self.shape[1], self.shape[2]

    def params(self) -> dict[str, Any]:
        return {"name": self.name, "matrix": self.kind, "measurements": self.m, "outliers": self.k,
                "noise": self.noise, "outlier_value": self.outlier_value, "seed": self.seed, "n": self.n}


CS_OPERATORS: Registry[type[CompressedSensing]] = Registry("CS operator")


@CS_OPERATORS.register("gaussian")
class GaussianCS(CompressedSensing):
    """Dense A ~ N(0, 1/m); the k corrupted rows are all ones (anchors-spec b.7)."""

    kind = "gaussian"
    summary = "dense N(0,1/m)"
    MAX_ENTRIES = 100_000_000  # 400 MB of float32: beyond this use the structured operator

    def __init__(self, shape: tuple[int, int, int], m: int, outliers: int = 0, noise: float = 0.0,
                 outlier_value: float = 10000.0, seed: int = 0) -> None:
        super().__init__(shape, m, outliers, noise, outlier_value, seed)
        if m * self.n > self.MAX_ENTRIES:
            raise LipError(f"a dense {m} x {self.n} Gaussian matrix is too large; use --operator dct")
        a = torch.randn((m, self.n), generator=torch.Generator().manual_seed(seed)) / math.sqrt(m)
        a[self.bad] = 1.0
        self.register_buffer("matrix", a)  # (m, n)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return self._flat(x) @ self.matrix.to(x.dtype).T

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return (y @ self.matrix.to(y.dtype)).reshape(self.input_shape(y.shape))


@CS_OPERATORS.register("dct")
class StructuredCS(CompressedSensing):
    """Matrix-free sqrt(n/m) * S DCT D (random signs, orthonormal DCT, random row subset)."""

    kind = "dct"
    summary = "matrix-free signs+DCT+rows"

    def __init__(self, shape: tuple[int, int, int], m: int, outliers: int = 0, noise: float = 0.0,
                 outlier_value: float = 10000.0, seed: int = 0) -> None:
        super().__init__(shape, m, outliers, noise, outlier_value, seed)
        if m > self.n:
            raise LipError(f"--measurements {m} exceeds the {self.n} pixel values: a row subset of the "
                           "DCT has at most n rows")
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("signs", torch.randint(0, 2, (self.n,), generator=gen).float() * 2 - 1)  # (n,)
        self.register_buffer("rows", torch.randperm(self.n, generator=gen)[:m].sort().values)  # (m,)
        self.gain = math.sqrt(self.n / m)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        v = self._flat(x) * self.signs.to(x.device, x.dtype)
        return dct_ortho(v)[:, self.rows.to(x.device)] * self.gain


def make(kind: str, shape: tuple[int, int, int], m: int, **kw: Any) -> CompressedSensing:
    """The CS operator `kind`, or for "auto" the dense one when it is small enough."""
    if kind == "auto":
        kind = "gaussian" if m * math.prod(shape) <= AUTO_MAX_ENTRIES else "dct"
    if kind not in CS_OPERATORS:
        raise LipError(f"unknown --operator {kind!r}: use {', '.join(CS_OPERATORS)} or auto")
    return CS_OPERATORS.get(kind)(shape, m, **kw)


def operator_help() -> str:
    """`lip cs --operator` help: every registered matrix, then auto."""
    return " | ".join(f"{name} ({CS_OPERATORS.get(name).summary})" for name in CS_OPERATORS) + \
        f" | auto (gaussian when m*n <= {AUTO_MAX_ENTRIES // 1_000_000}M)"
