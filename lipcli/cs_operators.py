"""Compressive-sensing operators: y = A x + noise, with k corrupted measurements (outliers).

Both follow the Operator interface (operators.py): `forward` maps images (B, C, H, W) to
measurements (B, m), `adjoint` is the exact vector-Jacobian product (A is linear), `observe`
simulates a seeded noisy, corrupted observation, `loss` is the mean squared measurement error.
`row_losses` gives the per-measurement squared errors that the Median-of-Means objective needs.

- GaussianCS: dense A with i.i.d. N(0, 1/m) entries (Bora et al.; anchors-spec b.7). The k corrupted
  rows are all-ones rows whose measurement is replaced by `outlier_value` (the paper: 2% of the
  rows, y = 10000). Memory m * n floats: for small images (n = 1024 for a 32x32 digit).
- StructuredCS: matrix-free A = sqrt(n/m) * S C D, with D random signs, C the orthonormal DCT-II
  of the flattened image (computed with an FFT, O(n log n)) and S a random subset of m rows.
  E||A x||^2 = ||x||^2, as for the Gaussian A. The k corrupted measurements keep their rows; their
  values are replaced by `outlier_value`.
Noise: y_clean_rows += noise * N(0, 1) (the paper: 0.01).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from .errors import LipError
from .operators import Operator


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


class CSOperator(Operator):
    """Shared parts: measurement count, corrupted rows, seeded noisy observation, per-row losses."""

    name = "cs"

    def __init__(self, shape: tuple[int, int, int], m: int, outliers: int = 0, noise: float = 0.0,
                 outlier_value: float = 10000.0, seed: int = 0) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.n = math.prod(self.shape)
        if not 1 <= m:
            raise LipError(f"--measurements {m} must be >= 1")
        if not 0 <= outliers < m:
            raise LipError(f"--outliers {outliers} must be in [0, {m - 1}] (fewer than the measurements)")
        if noise < 0:
            raise LipError(f"--noise {noise} must be >= 0")
        self.m, self.k, self.noise, self.outlier_value, self.seed = m, outliers, noise, outlier_value, seed
        gen = torch.Generator().manual_seed(seed + 7919)
        perm = torch.randperm(m, generator=gen)
        self.bad = torch.zeros(m, dtype=torch.bool)
        self.bad[perm[:outliers]] = True

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-3:]) != self.shape:
            raise LipError(f"the image is {tuple(x.shape[-3:])} (C, H, W) but the operator was built for "
                           f"{self.shape}")
        return x.reshape(x.shape[0], -1)

    def observe(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        y = self.forward(x)
        noise = torch.randn(y.shape, generator=generator).to(y) * self.noise
        y = y + noise
        return torch.where(self.bad.to(y.device), torch.full_like(y, self.outlier_value), y)

    def row_losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-measurement squared errors (B, m)."""
        return (self.forward(x) - y).pow(2)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return self.shape[1], self.shape[2]

    def params(self) -> dict[str, Any]:
        return {"name": self.name, "matrix": self.kind, "measurements": self.m, "outliers": self.k,
                "noise": self.noise, "outlier_value": self.outlier_value, "seed": self.seed, "n": self.n}


class GaussianCS(CSOperator):
    """Dense A ~ N(0, 1/m); the k corrupted rows are all ones (anchors-spec b.7)."""

    kind = "gaussian"
    MAX_ENTRIES = 100_000_000  # 400 MB of float32: beyond this use the structured operator

    def __init__(self, shape: tuple[int, int, int], m: int, outliers: int = 0, noise: float = 0.0,
                 outlier_value: float = 10000.0, seed: int = 0) -> None:
        super().__init__(shape, m, outliers, noise, outlier_value, seed)
        if m * self.n > self.MAX_ENTRIES:
            raise LipError(f"a dense {m} x {self.n} Gaussian matrix is too large; use --operator dct")
        gen = torch.Generator().manual_seed(seed)
        a = torch.randn((m, self.n), generator=gen) / math.sqrt(m)
        a[self.bad] = 1.0
        self.matrix = a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._flat(x) @ self.matrix.to(x.dtype).T

    def adjoint(self, y: torch.Tensor, x_shape: tuple[int, ...]) -> torch.Tensor:
        return (y @ self.matrix.to(y.dtype)).reshape(x_shape)

    def to(self, device: torch.device) -> GaussianCS:
        self.matrix = self.matrix.to(device)
        return self


class StructuredCS(CSOperator):
    """Matrix-free sqrt(n/m) * S DCT D (random signs, orthonormal DCT, random row subset)."""

    kind = "dct"

    def __init__(self, shape: tuple[int, int, int], m: int, outliers: int = 0, noise: float = 0.0,
                 outlier_value: float = 10000.0, seed: int = 0) -> None:
        super().__init__(shape, m, outliers, noise, outlier_value, seed)
        if m > self.n:
            raise LipError(f"--measurements {m} exceeds the {self.n} pixel values: a row subset of the "
                           "DCT has at most n rows")
        gen = torch.Generator().manual_seed(seed)
        self.signs = torch.randint(0, 2, (self.n,), generator=gen).float() * 2 - 1
        self.rows = torch.randperm(self.n, generator=gen)[:m].sort().values
        self.gain = math.sqrt(self.n / m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self._flat(x) * self.signs.to(x.device, x.dtype)
        return dct_ortho(v)[:, self.rows.to(x.device)] * self.gain

    def to(self, device: torch.device) -> StructuredCS:
        self.signs, self.rows = self.signs.to(device), self.rows.to(device)
        return self


OPERATORS = {"gaussian": GaussianCS, "dct": StructuredCS}


def make(kind: str, shape: tuple[int, int, int], m: int, **kw: Any) -> CSOperator:
    if kind == "auto":
        kind = "gaussian" if m * math.prod(shape) <= 4_000_000 else "dct"
    if kind not in OPERATORS:
        raise LipError(f"unknown --operator {kind!r}: use gaussian, dct or auto")
    return OPERATORS[kind](shape, m, **kw)


def mom(rows: torch.Tensor, batch_size: int, gen: torch.Generator) -> torch.Tensor:
    """Median of means of per-row values (m,): rows are randomly permuted and split into
    max(1, m // batch_size) near-equal batches; the mean of the batch whose mean is the median
    (the lower median for an even count) is returned, differentiably. One batch = the plain mean."""
    m = rows.shape[-1]
    n_batches = max(1, m // batch_size)
    perm = torch.randperm(m, generator=gen).to(rows.device)
    means = torch.stack([b.mean() for b in torch.tensor_split(rows[perm], n_batches)])
    idx = torch.argsort(means.detach(), stable=True)[(n_batches - 1) // 2]
    return means[idx]
