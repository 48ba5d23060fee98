"""Networks built from a spec dict: the DIP skip hourglass and the deep decoder.

A spec is a plain JSON-able dict (it is what a mask artifact records), so a net is always rebuilt
from the same numbers that made it. Parameter names are stable and readable, e.g.
`levels.0.down.conv.weight`; they are the keys of mask files.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

Spec = dict[str, Any]

PRESETS: dict[str, Spec] = {
    # LIP / DIP denoising, inpainting and SR net (anchors-spec a.1, a.3 LIP row): 2,217,831 params.
    "dip": dict(
        kind="skip", in_channels=32, out_channels=3, down=[128] * 5, up=[128] * 5, skip=[4] * 5,
        k_down=3, k_up=3, k_skip=1, down_mode="stride", up_mode="bilinear", need1x1_up=True,
        pad="reflection",
    ),
    # DIP text-inpainting variant: 128 skip channels, nearest upsampling.
    "dip-inpaint": dict(
        kind="skip", in_channels=32, out_channels=3, down=[128] * 5, up=[128] * 5, skip=[128] * 5,
        k_down=3, k_up=3, k_skip=1, down_mode="stride", up_mode="nearest", need1x1_up=True,
        pad="reflection",
    ),
    # OES encoder-decoder (anchors-spec c.1): 3,008,867 params.
    "oes": dict(
        kind="skip", in_channels=32, out_channels=3, down=[16, 32, 64, 128, 128, 128],
        up=[16, 32, 64, 128, 128, 128], skip=[0] * 6, k_down=5, k_up=3, k_skip=1, down_mode="avg",
        up_mode="nearest", need1x1_up=False, pad="reflection",
    ),
    # Deep decoder (anchors-spec d): 6(k^2+2k)+3k params, 100,224 for k=128.
    "deep-decoder": dict(kind="decoder", k=128, blocks=6, out_channels=3),
    # GAN prior for 32x32 gray digits (gan_nets.py): generator 373k params, critic 166k.
    "dcgan-g": dict(kind="dcgan-g", nz=64, ngf=32, out_channels=1, size=32),
    "dcgan-d": dict(kind="dcgan-d", ndf=32, in_channels=1, size=32),
    "gan": dict(kind="gan", g=dict(kind="dcgan-g", nz=64, ngf=32, out_channels=1, size=32),
                d=dict(kind="dcgan-d", ndf=32, in_channels=1, size=32)),
}


def preset(name: str, **overrides: Any) -> Spec:
    """A copy of a named spec with fields overridden (e.g. out_channels=1 for gray images)."""
    if name not in PRESETS:
        raise KeyError(f"unknown net preset {name!r}; choose one of {', '.join(PRESETS)}")
    spec = copy.deepcopy(PRESETS[name])
    spec.update(overrides)
    return spec


def resolve_spec(value: str | Spec) -> Spec:
    """A preset name, or a dict {"preset": name, **overrides} (e.g. from a YAML config's `net:`)."""
    if isinstance(value, str):
        return preset(value)
    if isinstance(value, dict):
        fields = dict(value)
        return preset(fields.pop("preset", "dip"), **fields)
    raise KeyError(f"net must be a preset name or a mapping, not {type(value).__name__}")


class ConvBlock(nn.Module):
    """conv -> BatchNorm -> LeakyReLU(0.2); padding is done inside the conv (one memory pass).

    With `checkpointed` set (see `set_checkpointing`), training keeps only the block's input and
    recomputes conv, BN and activation during backward: about a third less memory for big images
    (benchmarks/RESULTS-bigimage.md; at 1024² it was no slower, though every block's forward runs twice).
    """

    checkpointed = False

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, pad: str = "reflection",
                 act: bool = True) -> None:
        super().__init__()
        mode = "reflect" if pad == "reflection" and k > 1 else "zeros"
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, padding_mode=mode)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.checkpointed and torch.is_grad_enabled():
            return checkpoint(self._run, x, use_reentrant=False)
        return self._run(x)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.leaky_relu(x, 0.2) if self.act else x


def set_checkpointing(model: nn.Module, on: bool) -> None:
    """Turn activation checkpointing of every conv block on or off (other modules are unaffected)."""
    for m in model.modules():
        if isinstance(m, ConvBlock):
            m.checkpointed = on


class Level(nn.Module):
    """One scale of the hourglass: optional skip branch, two down convs, merge BN, up conv(s)."""

    def __init__(self, spec: Spec, i: int, cin: int) -> None:
        super().__init__()
        d, u, s = spec["down"][i], spec["up"][i], spec["skip"][i]
        deeper = spec["up"][i + 1] if i + 1 < len(spec["down"]) else d
        pad, pooled = spec["pad"], spec["down_mode"] in ("avg", "max")
        self.skip = ConvBlock(cin, s, spec["k_skip"], pad=pad) if s > 0 else None
        self.down = ConvBlock(cin, d, spec["k_down"], stride=1 if pooled else 2, pad=pad)
        self.pool: nn.Module | None = None
        if pooled:
            self.pool = nn.AvgPool2d(2) if spec["down_mode"] == "avg" else nn.MaxPool2d(2)
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


class SkipNet(HourglassGeometry, nn.Module):
    """The DIP "skip" hourglass (Ulyanov et al. 2018), exactly as anchors-spec a.1 describes."""

    def __init__(self, spec: Spec) -> None:
        super().__init__()
        n = len(spec["down"])
        if not (len(spec["up"]) == len(spec["skip"]) == n):
            raise ValueError("down, up and skip must have one entry per level")
        self.spec = spec
        cins = [spec["in_channels"]] + list(spec["down"][:-1])
        self.levels = nn.ModuleList(Level(spec, i, cins[i]) for i in range(n))
        self.head = nn.Conv2d(spec["up"][0], spec["out_channels"], 1)
        self.up_mode = spec["up_mode"]


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
            deep = torch.cat([skip, deep], dim=1)
        out = lv.up(lv.merge_bn(deep))
        return lv.up1x1(out) if lv.up1x1 is not None else out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self._level(0, z)))


class DeepDecoder(nn.Module):
    """Heckel & Hand's deep decoder: 1x1 conv -> upsample -> ReLU -> BN per block, no skip, no bias."""

    def __init__(self, spec: Spec) -> None:
        super().__init__()
        self.spec = spec
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
        return self.multiple

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return self.spec["k"], height // self.multiple, width // self.multiple

    def input_convs(self) -> list[str]:
        return ["blocks.0.conv.weight"]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z
        for i, block in enumerate(self.blocks):
            x = block.conv(x)
            if i + 1 < len(self.blocks):
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = block.bn(F.relu(x))
        return torch.sigmoid(self.head(x))


BUILDERS: dict[str, Callable[[Spec], nn.Module]] = {"skip": SkipNet, "decoder": DeepDecoder}

from .gan_nets import DCGANDiscriminator, DCGANGenerator, GAN  # noqa: E402  (GAN prior kinds)

BUILDERS.update({"dcgan-g": DCGANGenerator, "dcgan-d": DCGANDiscriminator, "gan": GAN})


def build(spec: Spec) -> nn.Module:
    """Build a net from its spec (the timm-style registry entry point)."""
    kind = spec.get("kind")
    if kind not in BUILDERS:
        raise ValueError(f"unknown net kind {kind!r}; known: {', '.join(BUILDERS)}")
    return BUILDERS[kind](spec)


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def conv_weight_names(net: nn.Module) -> list[str]:
    """Conv weights in forward order (traced once at the smallest valid input): what IMP prunes."""
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, i, o, name=name: order.append(f"{name}.weight"))
             for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            was_training = net.training
            net.eval()
            net(torch.zeros((1, *net.input_shape(net.min_side, net.min_side))))
            net.train(was_training)
    finally:
        for h in hooks:
            h.remove()
    return order


def decoder_k_for_params(target: int, blocks: int = 6, out_channels: int = 3) -> int:
    """The deep-decoder width whose parameter count is closest to `target` (equal-size baseline)."""
    def params(k: int) -> int:
        return blocks * (k * k + 2 * k) + out_channels * k
    k = 1
    while params(k + 1) <= target:
        k += 1
    return min((k, k + 1), key=lambda c: abs(params(c) - target))


def padded_size(net: nn.Module, height: int, width: int) -> tuple[int, int]:
    """The size the net works at: each side rounded up to the net's multiple and minimum."""
    m, lo = net.multiple, net.min_side
    return tuple(max(lo, -(-side // m) * m) for side in (height, width))  # type: ignore[return-value]


def make_input(net: nn.Module, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """The fixed input code z ~ U[0,1) * 0.1 (DIP's `get_noise(..., 'noise')` default)."""
    return torch.rand((1, *net.input_shape(height, width)), generator=generator) * 0.1
