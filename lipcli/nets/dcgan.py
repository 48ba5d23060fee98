"""A small DCGAN-style generator and discriminator, built from specs like the DIP nets (skip.py).

Generator (kind "dcgan-g"): z in R^nz -> pixel-norm -> linear to (c0, 4, 4) -> [nearest upsample x2,
conv 3x3, LeakyReLU(0.2), pixel-norm] per doubling -> conv 3x3 head -> sigmoid. Output in [0, 1]
(the same range as every image inside lip; the paper's PGGAN works in [-1, 1], so its per-pixel
MSEs are 4x ours). Like PGGAN it normalises with pixel-norm, not BatchNorm: the net has no buffers,
so a lip artifact (parameters only) holds it completely and G(z) does not depend on the batch.
Upsample + Conv2d (not ConvTranspose2d) keeps its prunable weights plain conv weights, which is
what `conv_weight_names` and the pruning code look for; the linear first layer is not pruned
(as PGGAN's equalized-linear first layer in the paper's GAN IMP).

Discriminator (kind "dcgan-d"): stride-2 4x4 convs with LeakyReLU(0.2), no normalisation (WGAN-GP
penalises per-sample gradients, which batch norm would couple), linear critic head.

Kind "gan" bundles both ({"kind": "gan", "g": spec, "d": spec}) so a single artifact can carry the
pretrained generator with its critic (needed to fine-tune during GAN IMP). Its forward is the
generator's, so tracing its convs (conv_weight_names) lists exactly G's conv weights.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import FAMILIES, Net, Spec


def _levels(size: int) -> int:
    n = int(round(math.log2(size / 4)))
    if size < 8 or 4 * 2 ** n != size:
        raise ValueError(f"size must be 4 * 2^k >= 8 (8, 16, 32, 64, ...), not {size}")
    return n


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


@FAMILIES.register("dcgan-g")
class DCGANGenerator(Net):
    image_prior = False
    """z (B, nz) or (B, nz, 1, 1) -> images (B, C, size, size) in [0, 1].

    Its input is a latent vector, not an image: no constraint on the size (Net's defaults)."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        nz, ngf, n = int(spec["nz"]), int(spec["ngf"]), _levels(int(spec["size"]))
        chans = [ngf * 2 ** (n - 1 - i) for i in range(n)]  # e.g. 128, 64, 32 for size 32
        self.c0 = chans[0]
        self.fc = nn.Linear(nz, self.c0 * 16)
        self.blocks = nn.ModuleList()
        cin = self.c0
        for c in chans:
            block = nn.Module()
            block.conv = nn.Conv2d(cin, c, 3, padding=1)
            self.blocks.append(block)
            cin = c
        self.head = nn.Conv2d(cin, int(spec["out_channels"]), 3, padding=1)

    @property
    def nz(self) -> int:
        return int(self.spec["nz"])

    def input_shape(self, height: int = 1, width: int = 1) -> tuple[int, ...]:
        return (self.nz,)

    def input_convs(self) -> list[str]:
        return []  # z enters through the linear layer, which is never masked

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(z.reshape(z.shape[0], -1))
        x = F.leaky_relu(self.fc(x), 0.2).view(-1, self.c0, 4, 4)
        x = pixel_norm(x)
        for block in self.blocks:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = pixel_norm(F.leaky_relu(block.conv(x), 0.2))
        return torch.sigmoid(self.head(x))


@FAMILIES.register("dcgan-d")
class DCGANDiscriminator(Net):
    image_prior = False
    """images (B, C, size, size) -> critic scores (B,)."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        ndf, n = int(spec["ndf"]), _levels(int(spec["size"]))
        self.blocks = nn.ModuleList()
        cin = int(spec["in_channels"])
        for i in range(n):
            block = nn.Module()
            block.conv = nn.Conv2d(cin, ndf * 2 ** i, 4, stride=2, padding=1)
            self.blocks.append(block)
            cin = ndf * 2 ** i
        self.fc = nn.Linear(cin * 16, 1)

    @property
    def multiple(self) -> int:
        return int(self.spec["size"])

    @property
    def min_side(self) -> int:
        return int(self.spec["size"])

    def input_shape(self, height: int, width: int) -> tuple[int, ...]:
        return int(self.spec["in_channels"]), height, width

    def input_convs(self) -> list[str]:
        return ["blocks.0.conv.weight"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = F.leaky_relu(block.conv(x), 0.2)
        return self.fc(x.flatten(1)).squeeze(1)


@FAMILIES.register("gan")
class GAN(Net):
    image_prior = False
    """Generator + critic in one module (one artifact); forward is the generator's."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.g = DCGANGenerator(spec["g"])
        self.d = DCGANDiscriminator(spec["d"])

    @property
    def nz(self) -> int:
        return self.g.nz

    def input_shape(self, height: int = 1, width: int = 1) -> tuple[int, ...]:
        return self.g.input_shape()

    def input_convs(self) -> list[str]:
        return []

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.g(z)


def gan_spec(nz: int = 64, ngf: int = 32, ndf: int = 32, channels: int = 1, size: int = 32) -> Spec:
    return {"kind": "gan",
            "g": {"kind": "dcgan-g", "nz": nz, "ngf": ngf, "out_channels": channels, "size": size},
            "d": {"kind": "dcgan-d", "ndf": ndf, "in_channels": channels, "size": size}}


def generator_of(net: nn.Module) -> DCGANGenerator:
    """The generator inside a "gan" bundle, or the net itself when it is a bare generator."""
    if isinstance(net, GAN):
        return net.g
    if isinstance(net, DCGANGenerator):
        return net
    raise TypeError(f"{type(net).__name__} is not a generator")
