"""Degradation operators: forward operator A, simulated observation y = A(x) + n, and adjoint.

Priors (nets) and solvers (the fitting loop) only ever see an operator through this interface,
so every task and every command share one loss: MSE(A(net(z)), y).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .errors import LipError


class Operator:
    """A linear degradation. Subclasses define `forward`; `adjoint` defaults to the exact VJP."""

    name = "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def adjoint(self, y: torch.Tensor, x_shape: tuple[int, ...]) -> torch.Tensor:
        """A^T y, computed by autograd (exact for a linear A)."""
        x = torch.zeros(x_shape, dtype=y.dtype, device=y.device, requires_grad=True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.forward(x), x, grad_outputs=y)
        return grad

    def observe(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Simulate the degraded observation of a clean image (used only with --simulate)."""
        return self.forward(x)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Size of the restored image for an observation of the given size."""
        return height, width

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared error in observation space: what DIP fits."""
        return F.mse_loss(self.forward(x), y)

    def to(self, device: torch.device) -> "Operator":
        return self

    def params(self) -> dict[str, Any]:
        """What the artifact records about this operator."""
        return {"name": self.name}


class Denoise(Operator):
    """Additive white Gaussian noise, clipped to [0,1] as in the DIP code; A is the identity."""

    name = "denoise"

    def __init__(self, sigma: float) -> None:
        if not 0 <= sigma <= 255:
            raise LipError(f"--sigma {sigma} is out of range: give the noise level in 0-255 units")
        self.sigma = sigma

    def observe(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=generator) * (self.sigma / 255.0)
        return (x + noise.to(x.device)).clamp(0, 1)

    def params(self) -> dict[str, Any]:
        return {"name": self.name, "sigma": self.sigma}


class Inpaint(Operator):
    """Pixel mask: A(x) = m * x, with m = 1 where observed (self-adjoint)."""

    name = "inpaint"

    def __init__(self, mask: torch.Tensor, source: str) -> None:
        self.mask = mask.float()  # (1|C, H, W) broadcast over the batch
        self.source = source

    @classmethod
    def bernoulli(cls, shape: tuple[int, int, int], keep: float, seed: int) -> "Inpaint":
        """LIP's random mask: every value of the C x H x W array is kept with probability `keep`."""
        if not 0 < keep <= 1:
            raise LipError(f"--keep {keep} must be in (0, 1]: the fraction of pixels observed")
        gen = torch.Generator().manual_seed(seed)
        return cls(torch.rand(shape, generator=gen) < keep, f"bernoulli(keep={keep}, seed={seed})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask

    def adjoint(self, y: torch.Tensor, x_shape: tuple[int, ...]) -> torch.Tensor:
        return y * self.mask

    def to(self, device: torch.device) -> "Inpaint":
        self.mask = self.mask.to(device)
        return self

    def params(self) -> dict[str, Any]:
        return {"name": self.name, "mask": self.source, "observed": round(float(self.mask.mean()), 6)}


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


class SuperResolution(Operator):
    """Lanczos-2 downsampling by `factor` (anchors-spec a.4): replicate-pad 1.5f, depthwise conv, stride f."""

    name = "sr"
    FACTORS = (2, 4, 8)

    def __init__(self, factor: int) -> None:
        if factor not in self.FACTORS:
            raise LipError(f"--scale {factor} is not supported: use one of 2, 4 or 8")
        self.factor = factor
        self.kernel = lanczos2_kernel(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, f = x.shape[1], self.factor
        pad = 3 * f // 2  # f is even, so the output is exactly H/f x W/f
        weight = self.kernel.to(x.device, x.dtype).expand(c, 1, -1, -1)
        xp = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        return F.conv2d(xp, weight, stride=f, groups=c)

    def observe(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise LipError(f"--simulate with --scale {self.factor} needs sides divisible by "
                           f"{self.factor}; the image is {w}x{h} (crop it first)")
        return self.forward(x)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return height * self.factor, width * self.factor

    def params(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.factor, "kernel": "lanczos2"}
