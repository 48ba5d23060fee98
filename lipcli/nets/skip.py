"""The DIP "skip" hourglass (Ulyanov et al. 2018), exactly as anchors-spec a.1 describes (kind "skip").

Parameter names are stable and readable, e.g. `levels.0.down.conv.weight`; they are the keys of mask
files. Its channel-compacted form lives in compact.py.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .base import FAMILIES, Net, Spec, concat, pad

CHECKPOINT_SAVING = 0.65  # activation memory with checkpointed conv blocks / without (measured)


CHOICES = {"pad": ("reflection", "zero"), "down_mode": ("stride", "avg", "max"), "up_mode": ("nearest", "bilinear")}
POOL_PLACES = ("act", "conv")  # spec "pool_at": after BN + activation (absent = this), or right after the conv


class Conv2d(nn.Conv2d):
    """nn.Conv2d whose reflection padding runs in the input's dtype (`base.pad`: no fp32 round trip under
    CPU autocast). The same parameters, attributes and results as nn.Conv2d."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.padding_mode == "zeros":
            return super()._conv_forward(x, weight, bias)
        return F.conv2d(pad(x, self._reversed_padding_repeated_twice, self.padding_mode), weight, bias,
                        self.stride, 0, self.dilation, self.groups)


class ConvBlock(nn.Module):
    """conv [-> pool] -> BatchNorm -> LeakyReLU(0.2); padding is done inside the conv (one memory pass).

    `pool` (a 2x2 pool) sits where the published DIP `conv()` helper puts it, between the stride-1 conv
    and the BN, so the BN normalises the pooled map (the OES net; anchors-spec a.1, c.1).

    With `checkpointed` set (see `set_checkpointing`), training keeps only the block's input and
    recomputes conv, BN and activation during backward: about a third less memory for big images
    (benchmarks/RESULTS-bigimage.md; at 1024² it was no slower, though every block's forward runs twice).
    """

    checkpointed = False

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, pad: str = "reflection",
                 act: bool = True, pool: nn.Module | None = None) -> None:
        super().__init__()
        mode = "reflect" if pad == "reflection" and k > 1 else "zeros"
        self.conv = Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, padding_mode=mode)
        self.pool = pool
        self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.checkpointed and torch.is_grad_enabled():
            return checkpoint(self._run, x, use_reentrant=False)
        return self._run(x)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.pool is not None:
            x = self.pool(x)
        x = self.bn(x)
        return F.leaky_relu(x, 0.2) if self.act else x


def set_checkpointing(model: nn.Module, on: bool) -> None:
    """Turn activation checkpointing of every conv block on or off (other modules are unaffected)."""
    for m in model.modules():
        if isinstance(m, ConvBlock):
            m.checkpointed = on


def pool_at(spec: Spec) -> str | None:
    """Where a pooled level pools ("act" or "conv"); None when the down conv strides instead."""
    if spec["down_mode"] not in ("avg", "max"):
        return None
    at = spec.get("pool_at", "act")
    if at not in POOL_PLACES:
        raise ValueError(f"pool_at must be one of {', '.join(POOL_PLACES)}, not {at!r}")
    return at


class Level(nn.Module):
    """One scale of the hourglass: optional skip branch, two down convs, merge BN, up conv(s)."""

    def __init__(self, spec: Spec, i: int, cin: int) -> None:
        super().__init__()
        d, u, s = spec["down"][i], spec["up"][i], spec["skip"][i]
        deeper = spec["up"][i + 1] if i + 1 < len(spec["down"]) else d
        pad, at = spec["pad"], pool_at(spec)
        pool = None if at is None else nn.AvgPool2d(2) if spec["down_mode"] == "avg" else nn.MaxPool2d(2)
        self.skip = ConvBlock(cin, s, spec["k_skip"], pad=pad) if s > 0 else None
        self.down = ConvBlock(cin, d, spec["k_down"], stride=2 if at is None else 1, pad=pad,
                              pool=pool if at == "conv" else None)
        self.pool = pool if at == "act" else None  # after the down block's activation
        self.down2 = ConvBlock(d, d, spec["k_down"], pad=pad)
        self.merge_bn = nn.BatchNorm2d(s + deeper)
        self.up = ConvBlock(s + deeper, u, spec["k_up"], pad=pad)
        self.up1x1 = ConvBlock(u, u, 1, pad=pad) if spec["need1x1_up"] else None


class HourglassGeometry:
    """Input geometry of a skip hourglass (shared by SkipNet and its compacted form)."""

    spec: Spec
    levels: nn.ModuleList

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (each level halves the size)."""
        return 2 ** len(self.levels)

    @property
    def min_side(self) -> int:
        """Smallest side whose deepest feature map is still wider than the reflection pad."""
        return self.multiple * ((self.spec["k_down"] - 1) // 2 + 1)

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return self.spec["in_channels"], height, width


@FAMILIES.register("skip")
class SkipNet(HourglassGeometry, Net):
    """The hourglass: per level a skip branch beside a down-deeper-up path, merged by concatenation."""

    compactable = True

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        n = len(spec["down"])
        if not (len(spec["up"]) == len(spec["skip"]) == n) or n == 0:
            raise ValueError("down, up and skip must have one entry per level, and there must be one level at least")
        for field in ("down", "up", "skip", "in_channels", "out_channels", "k_down", "k_up", "k_skip"):
            low = 0 if field == "skip" else 1
            for v in spec[field] if isinstance(spec[field], list) else [spec[field]]:
                if isinstance(v, bool) or not isinstance(v, int) or v < low:
                    raise ValueError(f"{field} must hold whole numbers >= {low}, not {v!r}")
            if field.startswith("k_") and spec[field] % 2 == 0:  # "same" padding keeps a level's size
                raise ValueError(f"{field} must be an odd kernel size, not {spec[field]}")
        for field, allowed in CHOICES.items():  # a misspelt mode would otherwise fall back in silence
            if spec[field] not in allowed:
                raise ValueError(f"{field} must be one of {', '.join(allowed)}, not {spec[field]!r}")
        cins = [spec["in_channels"]] + list(spec["down"][:-1])
        self.levels = nn.ModuleList(Level(spec, i, cins[i]) for i in range(n))
        self.head = nn.Conv2d(spec["up"][0], spec["out_channels"], 1)
        self.up_mode = spec["up_mode"]

    @classmethod
    def activation_floats(cls, spec: Spec, checkpoint: bool) -> float:
        """Per level, each conv block keeps its conv, BN and activation outputs; level i has 4^-i pixels.
        A pooled down block keeps them (or its conv's alone, pooling at the conv) at the full size."""
        at = pool_at(spec)
        floats = 0.0
        for i, (d, u, s) in enumerate(zip(spec["down"], spec["up"], spec["skip"])):
            deeper = spec["up"][i + 1] if i + 1 < len(spec["up"]) else d
            full = 3 * s + 2 * (s + deeper) + deeper + 3 * u * (2 if spec["need1x1_up"] else 1)
            down = {None: 3 * d / 4, "conv": d + 3 * d / 4, "act": 3 * d + d / 4}[at]
            floats += (full + down + 3 * d / 4) / 4 ** i
        if checkpoint:
            floats *= CHECKPOINT_SAVING
        return floats

    def input_convs(self) -> list[str]:
        """Names of the conv weights that read the input code z (LIP keeps these dense)."""
        first = self.levels[0]
        names = ["levels.0.down.conv.weight"]
        if first.skip is not None:
            names.insert(0, "levels.0.skip.conv.weight")
        return names

    def _level(self, i: int, x: torch.Tensor) -> torch.Tensor:
        lv = self.levels[i]
        skip = lv.skip(x) if lv.skip is not None else None  # DIP's Concat runs the skip branch first
        deep = lv.down(x)
        if lv.pool is not None:
            deep = lv.pool(deep)
        deep = lv.down2(deep)
        if i + 1 < len(self.levels):
            deep = self._level(i + 1, deep)
        deep = F.interpolate(deep, scale_factor=2, mode=self.up_mode,
                             **({"align_corners": False} if self.up_mode == "bilinear" else {}))
        if skip is not None:
            deep = concat([skip, deep])
        out = lv.up(lv.merge_bn(deep))
        return lv.up1x1(out) if lv.up1x1 is not None else out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self._level(0, z)))
