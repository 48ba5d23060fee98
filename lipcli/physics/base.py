"""The operator contract: y = noise(A(x)), with A noise-free and the noise model a module of its own.

Priors (nets) and solvers (the fitting loop, the latent solvers) see a degradation only through this
interface, so every task shares one loss, MSE(A(net(z)), y). Operator state (masks, kernels,
matrices) lives in registered buffers, so `.to(device)` and `state_dict()` need no code here.

>>> op = Identity()
>>> y = op(torch.zeros(1, 3, 4, 4), torch.Generator())  # simulate: noise(A(x)), seeded
>>> op.A_adjoint(y).shape
torch.Size([1, 3, 4, 4])
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .noise import NoiseModel


def array_hash(*arrays: np.ndarray) -> str:
    """SHA-256 over each array's dtype, shape and bytes: what artifacts record of measured inputs."""
    digest = hashlib.sha256(b"lip-arrays v1\n")
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str} {a.shape}\n".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


class Physics(nn.Module):
    """A forward model y = noise(A(x)). Subclasses define `A`; `forward` simulates an observation."""

    name = "physics"  # what `params()` records

    def __init__(self, noise_model: NoiseModel | None = None) -> None:
        super().__init__()
        self.noise_model = noise_model or NoiseModel()

    def A(self, x: torch.Tensor) -> torch.Tensor:
        """The noise-free forward map: images (B, C, H, W) to observations."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Simulate the observation of a clean image, its noise drawn from `generator` (--simulate)."""
        return self.noise_model(self.A(x), generator)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared error in observation space: what DIP fits."""
        return F.mse_loss(self.A(x), y)

    def loss_settings(self) -> dict[str, Any]:
        """What `loss` reads besides A, its buffers and y (a robust loss's batch size): part of what makes a fit
        the fit it is, so that a saved one is continued only under the same loss (lipcli/fit.py `_identity`)."""
        return {}

    def row_losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-measurement squared errors (B, rows): what the Median-of-Means objective splits."""
        return (self.A(x) - y).pow(2).reshape(x.shape[0], -1)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Size (H, W) of the restored image for an observation of the given size."""
        return height, width

    def params(self) -> dict[str, Any]:
        """What the artifact and the reports record about this operator."""
        return {"name": self.name}

    def calibrate(self, y: torch.Tensor) -> float:
        """Adapt to an observation's units; return how many of them a net output of 1 stands for (the
        reference is scored in net units). Observations of images are in image units already: 1."""
        return 1.0

    def baseline(self, y: torch.Tensor) -> tuple[str, torch.Tensor] | None:
        """A reconstruction without any prior, reported beside lip's (MRI: zero-filled), or None."""
        return None

    def warning(self, y: torch.Tensor) -> str | None:
        """Why a fit of this observation will likely fail, said before it starts (None: no reason known)."""
        return None

    def review(self, x: torch.Tensor) -> tuple[dict[str, Any], str | None]:
        """What a restored output `x` (net units) says of this operator's own settings, read blind after the fit:
        fields for the report, and a note for the user (None: nothing to say)."""
        return {}, None

    def generators(self) -> list[torch.Generator]:
        """The random streams `loss` draws from (e.g. a median-of-means partition): a resumed fit restores
        them (lipcli/resume.py). A deterministic loss has none."""
        return []

    # Data consistency: `consistent(x, y)` returns x with what y observes exactly put back (the projection
    # onto the images A maps to y), for operators where that is a cheap exact step: a mask in an orthonormal
    # basis (inpainting's pixels, MRI's k-space). None for the others (blur, noise, random matrices).
    consistent: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None


class LinearPhysics(Physics):
    """A linear A, with its adjoint: <A x, y> = <x, A_adjoint(y)>."""

    def input_shape(self, y_shape: torch.Size) -> tuple[int, ...]:
        """Shape of the x that A maps to an observation of `y_shape` (what the adjoint returns)."""
        return (*y_shape[:-2], *self.output_size(*y_shape[-2:]))

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y as the vector-Jacobian product of A (exact because A is linear); override when
        a closed form is cheaper."""
        x = torch.zeros(self.input_shape(y.shape), dtype=y.dtype, device=y.device, requires_grad=True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.A(x), x, grad_outputs=y)
        return grad


class Identity(LinearPhysics):
    """A(x) = x: fitting a net to a given image (IMP's clean-image search, the impedance experiment)."""

    name = "identity"

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y
