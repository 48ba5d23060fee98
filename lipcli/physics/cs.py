"""Compressive-sensing operators: y = A x + noise, with k corrupted measurements (outliers).

`A` maps images (B, C, H, W) to measurements (B, m). Every operator sees an image as numpy sees an
(H, W, C) array flattened in C order (`img.reshape(-1)`), so a user's matrix applies to the image the
user means. The noise model adds Gaussian noise (the paper: std 0.01) and replaces the k corrupted
measurements by `outlier_value` (the paper: 2% of the rows, y = 10000). `lip cs --operator` chooses a
seeded matrix from `CS_OPERATORS` by name; `MatrixCS` applies a given one (`lip cs --matrix A.npy`).

- gaussian: A with i.i.d. N(0, 1/m) entries (Bora et al.; anchors-spec b.7); the corrupted rows are all
  ones. Kept whole up to HOLD_ENTRIES entries, above that regenerated a block of rows at a time from its
  seed in every product (never held whole: the paper's 1000 x 196,608 matrix would be 786 MB).
- dct: matrix-free A = sqrt(n/m) * S C D, with D random signs, C the orthonormal DCT-II of the
  flattened image (computed with an FFT, O(n log n)) and S a random subset of m rows.
  E||A x||^2 = ||x||^2, as for the Gaussian A. The corrupted measurements keep their rows.

An operator describes itself as a small dict (`describe`, `from_description`): what
`lip cs --save-measurements` writes to operator.yaml so the same A can be rebuilt from its seed.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
import torch

from .. import seeds
from ..errors import LipError
from ..images import MAX_PIXELS, as_channels
from ..registry import Registry
from .base import LinearPhysics
from .noise import CorruptedGaussianNoise

AUTO_MAX_ENTRIES = 4_000_000  # --operator auto: the Gaussian matrix up to this many entries
MAX_VALUE = 1e15  # noise and outlier values: squared in float32 losses summed over many rows, they must stay finite
HOLD_ENTRIES = 64_000_000  # a matrix up to this many entries (256 MB of float32) is kept; larger ones streamed
BLOCK_ENTRIES = 4_000_000  # a streamed matrix is made or read this many entries (16 MB) at a time


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
        check_counts(m, outliers)
        if noise < 0:
            raise LipError(f"--noise {noise} must be >= 0")
        perm = torch.randperm(m, generator=seeds.generator(seed + 7919))
        bad = torch.zeros(m, dtype=torch.bool)
        bad[perm[:outliers]] = True
        super().__init__(CorruptedGaussianNoise(noise, bad, outlier_value))
        self.shape = tuple(int(s) for s in shape)  # (C, H, W) of the images it measures
        self.n = math.prod(self.shape)
        self.m, self.k, self.noise, self.outlier_value, self.seed = m, outliers, noise, outlier_value, seed
        self.register_buffer("bad", bad)  # (m,) the corrupted rows
        self.noise_known = True  # False: the measurements are a user's own, whose noise and outliers lip never knew

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Simulate, the noise drawn from a stream apart from the matrix's (both come from --seed)."""
        return super().forward(x, seeds.generator(generator.initial_seed() + seeds.CS_NOISE))

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        if self.shape[0] == 1:  # a net's three channels stand for a gray image
            x = as_channels(x, 1)
        if tuple(x.shape[-3:]) != self.shape:
            raise LipError(f"the image is {tuple(x.shape[-3:])} (C, H, W) but the operator was built for "
                           f"{self.shape}")
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # (B, n): each image as (H, W, C), flattened

    def _unflat(self, v: torch.Tensor) -> torch.Tensor:
        c, h, w = self.shape
        return v.reshape(v.shape[0], h, w, c).permute(0, 3, 1, 2)  # (B, C, H, W)

    def input_shape(self, y_shape: torch.Size) -> tuple[int, ...]:
        return (y_shape[0], *self.shape)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return self.shape[1], self.shape[2]

    def params(self) -> dict[str, Any]:
        known = self.noise_known
        return {"name": self.name, "matrix": self.kind, "measurements": self.m, "outliers": self.k if known else None,
                "noise": self.noise if known else None, "outlier_value": self.outlier_value if known else None,
                "seed": self.seed, "n": self.n}

    def describe(self) -> dict[str, Any]:
        """What rebuilds this operator (`from_description`): its kind, seed, size and noise."""
        c, h, w = self.shape
        return {"kind": self.kind, "seed": self.seed, "m": self.m, "shape": [h, w, c], "noise": self.noise,
                "outliers": self.k, "outlier_value": self.outlier_value}


class _RowBlockProduct(torch.autograd.Function):
    """A v (or A^T v with `adjoint`) a block of rows at a time. The backward pass is the other product,
    also by blocks, so autograd never keeps a block (a streamed matrix is never held whole)."""

    @staticmethod
    def forward(ctx: Any, v: torch.Tensor, op: "RowBlockCS", adjoint: bool) -> torch.Tensor:
        ctx.op, ctx.adjoint = op, adjoint
        return op.rmatvec(v) if adjoint else op.matvec(v)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return (ctx.op.matvec(grad) if ctx.adjoint else ctx.op.rmatvec(grad)), None, None


class RowBlockCS(CompressedSensing):
    """An explicit (m, n) matrix, applied as the blocks of rows `blocks()` yields: one block when the
    matrix is kept in the `matrix` buffer, or many made (or read) in turn when it is too large to keep."""

    matrix: torch.Tensor | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.block_rows = max(16, BLOCK_ENTRIES // self.n // 16 * 16)  # a multiple of 16: see GaussianCS
        self.register_buffer("matrix", None)

    def stream(self) -> Iterator[tuple[slice, torch.Tensor]]:
        """The matrix's rows in order, (rows, (rows, n) float32 block), when it is not kept."""
        raise NotImplementedError

    def blocks(self) -> Iterator[tuple[slice, torch.Tensor]]:
        if self.matrix is not None:
            yield slice(0, self.m), self.matrix
        else:
            yield from self.stream()

    def keep(self) -> None:
        """Keep the whole matrix (in the `matrix` buffer, so it follows `.to(device)`)."""
        matrix = torch.empty((self.m, self.n))  # (m, n), filled in place: one block more, not twice the matrix
        for rows, a in self.stream():
            matrix[rows] = a
        self.register_buffer("matrix", matrix)

    def matvec(self, x: torch.Tensor) -> torch.Tensor:  # (B, n) -> (B, m)
        out = x.new_empty((x.shape[0], self.m))
        for rows, a in self.blocks():
            out[:, rows] = x @ a.to(x.device, x.dtype).T
        return out

    def rmatvec(self, y: torch.Tensor) -> torch.Tensor:  # (B, m) -> (B, n)
        out = y.new_zeros((y.shape[0], self.n))
        for rows, a in self.blocks():
            out.addmm_(y[:, rows], a.to(y.device, y.dtype))
        return out

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return _RowBlockProduct.apply(self._flat(x), self, False)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._unflat(_RowBlockProduct.apply(y, self, True))


CS_OPERATORS: Registry[type[CompressedSensing]] = Registry("CS operator")


@CS_OPERATORS.register("gaussian")
class GaussianCS(RowBlockCS):
    """A ~ N(0, 1/m), drawn from `seed` row by row; the k corrupted rows are all ones (anchors-spec b.7).

    The blocks are consecutive draws of one seeded generator, so kept or streamed it is the same matrix as
    `torch.randn((m, n), generator) / sqrt(m)`: torch's CPU normal sampler fills 16 values at a time,
    so draws of 16k values each continue one stream exactly (tests/test_cs_files.py checks it). `keep`:
    None keeps the matrix up to HOLD_ENTRIES entries and streams it above.
    """

    kind = "gaussian"
    summary = f"N(0,1/m), streamed above {HOLD_ENTRIES // 1_000_000}M entries"

    def __init__(self, shape: tuple[int, int, int], m: int, outliers: int = 0, noise: float = 0.0,
                 outlier_value: float = 10000.0, seed: int = 0, keep: bool | None = None) -> None:
        super().__init__(shape, m, outliers, noise, outlier_value, seed)
        if keep or (keep is None and m * self.n <= HOLD_ENTRIES) or self.n < 16:
            self.keep()  # (below 16 values a row, a block could be shorter than one sampler step)

    def stream(self) -> Iterator[tuple[slice, torch.Tensor]]:
        gen = seeds.generator(self.seed)
        bad = self.bad.cpu()
        for start in range(0, self.m, self.block_rows):
            rows = slice(start, min(start + self.block_rows, self.m))
            a = torch.randn((rows.stop - start, self.n), generator=gen) / math.sqrt(self.m)
            a[bad[rows]] = 1.0
            yield rows, a


class MatrixCS(RowBlockCS):
    """A given matrix (`lip cs --matrix A.npy`): kept up to HOLD_ENTRIES entries, read a block of rows at
    a time above (so a memory-mapped file is never loaded whole). Corrupted measurements keep their rows."""

    kind = "matrix"
    summary = "a given matrix"

    def __init__(self, matrix: np.ndarray, shape: tuple[int, int, int], source: str, outliers: int = 0,
                 noise: float = 0.0, outlier_value: float = 10000.0, seed: int = 0) -> None:
        super().__init__(shape, matrix.shape[0], outliers, noise, outlier_value, seed)
        if matrix.shape[1] != self.n:
            c, h, w = self.shape
            raise LipError(f"{source} has {matrix.shape[1]:,} columns, but the {h}x{w} image it measures has "
                           f"{c} channel{'s' * (c > 1)}: {self.n:,} values")
        self.array: np.ndarray | None = matrix
        self.source = source
        if self.m * self.n <= HOLD_ENTRIES:
            self.keep()
            self.array = None  # kept as float32: the caller's array (perhaps float64) is not needed

    def stream(self) -> Iterator[tuple[slice, torch.Tensor]]:
        assert self.array is not None
        for start in range(0, self.m, self.block_rows):
            rows = slice(start, min(start + self.block_rows, self.m))
            yield rows, torch.from_numpy(np.array(self.array[rows], dtype=np.float32))  # a copy: the file is read-only

    def params(self) -> dict[str, Any]:
        return {**super().params(), "matrix": self.source}

    def describe(self) -> dict[str, Any]:
        raise LipError("a given matrix is its own file: it has no seeded description")


@CS_OPERATORS.register("dct")
class StructuredCS(CompressedSensing):
    """Matrix-free sqrt(n/m) * S DCT D (random signs, orthonormal DCT, random row subset)."""

    kind = "dct"
    summary = "matrix-free signs+DCT+rows"

    def __init__(self, shape: tuple[int, int, int], m: int, outliers: int = 0, noise: float = 0.0,
                 outlier_value: float = 10000.0, seed: int = 0) -> None:
        super().__init__(shape, m, outliers, noise, outlier_value, seed)
        gen = seeds.generator(seed)
        self.register_buffer("signs", torch.randint(0, 2, (self.n,), generator=gen).float() * 2 - 1)  # (n,)
        self.register_buffer("rows", torch.randperm(self.n, generator=gen)[:m].sort().values)  # (m,)
        self.gain = math.sqrt(self.n / m)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        v = self._flat(x) * self.signs.to(x.device, x.dtype)
        return dct_ortho(v)[:, self.rows.to(x.device)] * self.gain


DESCRIPTION_KEYS = {"kind": str, "seed": int, "m": int, "shape": list, "noise": float, "outliers": int,
                    "outlier_value": float}  # what `describe` writes; outlier_value may be left out
_TYPE_NAMES = {str: "a name", int: "an integer", float: "a number", list: "a list"}


def make(kind: str, shape: tuple[int, int, int], m: int, **kw: Any) -> CompressedSensing:
    """The seeded CS operator `kind`, or for "auto" the Gaussian one when it is small enough. It takes at
    most n measurements: compressive sensing measures fewer values than the image has (the DCT has n rows)."""
    if m > math.prod(shape):
        raise LipError(f"m = {m:,} measurements exceed the {math.prod(shape):,} values of the image: use at most "
                       "that many")
    if kind == "auto":
        kind = "gaussian" if m * math.prod(shape) <= AUTO_MAX_ENTRIES else "dct"
    if kind not in CS_OPERATORS:
        raise LipError(f"unknown --operator {kind!r}: use {', '.join(CS_OPERATORS)}, auto or an operator file "
                       "(.yaml)")
    return CS_OPERATORS.get(kind)(shape, m, **kw)


def from_description(d: dict[str, Any]) -> CompressedSensing:
    """The operator a `describe()` dict names (read back from operator.yaml); a wrong key or value is
    a one-line error naming it."""
    unknown = sorted(set(d) - set(DESCRIPTION_KEYS))
    missing = [k for k in DESCRIPTION_KEYS if k not in d and k != "outlier_value"]
    if unknown or missing:
        raise LipError(f"unknown key {unknown[0]!r}" if unknown else f"missing key {missing[0]!r}")
    for key, typ in DESCRIPTION_KEYS.items():
        value = d.get(key, 10000.0 if key == "outlier_value" else None)
        number = typ is float and isinstance(value, int)  # YAML writes 0.0 as 0.0 but a person may write 0
        if isinstance(value, bool) or not (isinstance(value, typ) or number):
            raise LipError(f"{key} must be {_TYPE_NAMES[typ]}, not {value!r}")
    shape = d["shape"]
    if not (len(shape) in (2, 3) and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)):
        raise LipError(f"shape must be [H, W] or [H, W, C] of positive integers, not {shape!r}")
    h, w, c = (*shape, 1) if len(shape) == 2 else shape
    check_image_shape(h, w, c)
    if d["kind"] not in CS_OPERATORS:
        raise LipError(f"unknown kind {d['kind']!r}: use {' or '.join(CS_OPERATORS)}")
    if not 0 <= d["seed"] <= seeds.MAX:  # a CPU generator reads 32 bits of a seed
        raise LipError(f"seed {d['seed']} must be >= 0 and below 2**32")
    check_counts(d["m"], d["outliers"], "")
    check_values(float(d["noise"]), float(d.get("outlier_value", 10000.0)), "")
    return make(d["kind"], (c, h, w), d["m"], outliers=d["outliers"], noise=float(d["noise"]),
                outlier_value=float(d.get("outlier_value", 10000.0)), seed=d["seed"])


def check_counts(m: int, outliers: int, dashes: str = "--") -> None:
    """Measurement and outlier counts as flags (`dashes` "--") or an operator file's keys give them."""
    if not 1 <= m:
        raise LipError(f"{'--measurements' if dashes else 'm'} {m} must be >= 1")
    if not 0 <= outliers < m:
        raise LipError(f"{dashes}outliers {outliers} must be in [0, {m - 1}] (fewer than the measurements)")


def check_values(noise: float | None, outlier_value: float | None, dashes: str = "--") -> None:
    """A simulation's noise level and outlier value as flags (`dashes` "--") or an operator file's keys give them:
    numbers whose squares float32 holds."""
    if noise is not None and not (math.isfinite(noise) and 0 <= noise <= MAX_VALUE):
        raise LipError(f"{dashes}noise {noise}: give the noise's standard deviation, a number from 0 to {MAX_VALUE:g}")
    if outlier_value is not None and not (math.isfinite(outlier_value) and abs(outlier_value) <= MAX_VALUE):
        raise LipError(f"{dashes}{'outlier-value' if dashes else 'outlier_value'} {outlier_value}: give a number "
                       f"from -{MAX_VALUE:g} to {MAX_VALUE:g}")


def check_image_shape(h: int, w: int, c: int) -> None:
    """An image lip can reconstruct and write: 1 or 3 channels, at most MAX_PIXELS pixels."""
    if c not in (1, 3):
        raise LipError(f"an image has 1 (gray) or 3 (RGB) channels, not {c}")
    if h * w > MAX_PIXELS:
        raise LipError(f"a {h}x{w} image has more than {MAX_PIXELS:,} pixels")


def operator_help() -> str:
    """`lip cs --operator` help: every registered matrix, then auto."""
    return " | ".join(f"{name} ({CS_OPERATORS.get(name).summary})" for name in CS_OPERATORS) + \
        f" | auto (gaussian when m*n <= {AUTO_MAX_ENTRIES // 1_000_000}M, else dct) | an operator file " \
        "(operator.yaml, written by --save-measurements)"
