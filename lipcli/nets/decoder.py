"""Heckel & Hand's deep decoder (kind "decoder"): a small-code prior without skip connections."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import FAMILIES, Net, Spec


@FAMILIES.register("decoder")
class DeepDecoder(Net):
    """1x1 conv -> upsample -> ReLU -> BN per block, no skip, no bias: 6(k^2+2k)+3k params at 6 blocks."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        k, n = spec["k"], spec["blocks"]
        self.blocks = nn.ModuleList()
        for _ in range(n):
            block = nn.Module()
            block.conv = nn.Conv2d(k, k, 1, bias=False)
            block.bn = nn.BatchNorm2d(k)
            self.blocks.append(block)
        self.head = nn.Conv2d(k, spec["out_channels"], 1, bias=False)

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.blocks) - 1)

    @property
    def min_side(self) -> int:
        """A code of at least 2x2: from a 1x1 code every map is constant along that side (upsampling spreads one
        value, BatchNorm zeroes a constant map), so a 32-pixel image came out flat gray."""
        return 2 * self.multiple

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return self.spec["k"], height // self.multiple, width // self.multiple

    def input_convs(self) -> list[str]:
        return ["blocks.0.conv.weight"]

    @classmethod
    def activation_floats(cls, spec: Spec, checkpoint: bool) -> float:
        """About four k-channel maps per block (conv, upsample, ReLU, BN); blocks at 1/4, 1/16, ... of the
        pixels add a third (1 + 1/4 + 1/16 + ... = 4/3)."""
        return 4 * spec["k"] * 4 / 3

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z
        for i, block in enumerate(self.blocks):
            x = block.conv(x)
            if i + 1 < len(self.blocks):
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = block.bn(F.relu(x))
        return torch.sigmoid(self.head(x))


def decoder_k_for_params(target: int, blocks: int = 6, out_channels: int = 3) -> int:
    """The deep-decoder width whose parameter count is closest to `target` (equal-size baseline)."""
    def params(k: int) -> int:
        return blocks * (k * k + 2 * k) + out_channels * k
    k = 1
    while params(k + 1) <= target:
        k += 1
    return min((k, k + 1), key=lambda c: abs(params(c) - target))
