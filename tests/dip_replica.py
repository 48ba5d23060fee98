"""The published DIP `skip()` net's module layout, rebuilt for the tests from anchors-spec a.1 (not copied):
nested nn.Sequentials, a level's skip branch and deeper branch side by side in a Concat, each conv a
Sequential(pad, conv[, pool]), the next level inside the deeper branch before its upsampling, the merge
BatchNorm and up convs after the Concat, the head last. Its module names (`0.0.0.1.weight`) are those
the LIP and OES code save their masks under, so the tests make "their" files with torch's own pruning
utilities on it, and check that lip's net with its weights (matched by order) computes the same image.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Concat(nn.Module):
    """Channel concatenation of the children's outputs (sizes are equal at multiples of 2^levels)."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        for i, branch in enumerate(branches):
            self.add_module(str(i), branch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=1)


def _conv(cin: int, cout: int, k: int, spec: dict[str, Any], stride: int = 1) -> nn.Sequential:
    pooled = stride == 2 and spec["down_mode"] in ("avg", "max")
    layers: list[nn.Module] = [nn.ReflectionPad2d((k - 1) // 2) if spec["pad"] == "reflection" else nn.Identity(),
                               nn.Conv2d(cin, cout, k, 1 if pooled else stride,
                                         padding=0 if spec["pad"] == "reflection" else (k - 1) // 2)]
    if pooled:
        layers.append(nn.AvgPool2d(2) if spec["down_mode"] == "avg" else nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def _block(cin: int, cout: int, k: int, spec: dict[str, Any], stride: int = 1) -> list[nn.Module]:
    return [_conv(cin, cout, k, spec, stride), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]


def dip_skip(spec: dict[str, Any]) -> nn.Sequential:
    """The published layout of a lip "skip" spec."""
    n, model = len(spec["down"]), nn.Sequential()
    here, cin = model, spec["in_channels"]
    for i in range(n):
        d, u, s = spec["down"][i], spec["up"][i], spec["skip"][i]
        k = spec["up"][i + 1] if i + 1 < n else d
        deeper, inner = nn.Sequential(*_block(cin, d, spec["k_down"], spec, 2), *_block(d, d, spec["k_down"], spec)), \
            nn.Sequential()
        if i + 1 < n:
            deeper.append(inner)
        deeper.append(nn.Upsample(scale_factor=2, mode=spec["up_mode"]))
        here.append(Concat(nn.Sequential(*_block(cin, s, spec["k_skip"], spec)), deeper) if s else deeper)
        here.append(nn.BatchNorm2d(s + k))
        here.extend(_block(s + k, u, spec["k_up"], spec))
        if spec["need1x1_up"]:
            here.extend(_block(u, u, 1, spec))
        here, cin = inner, d
    model.extend([_conv(spec["up"][0], spec["out_channels"], 1, spec), nn.Sigmoid()])
    return model
