"""Channel scores, registered by name: one value per conv output channel (filter), higher = keep.

They share the element scores' signature, `score(net, names, ctx) -> {name: tensor}`, but each tensor
has one entry per output channel of the conv weight `name`; masks.top_channels ranks them (with a
per-layer floor) and turns the kept channels back into element masks. Channel IMP (imp.py) scores the
trained net; the ladder driver scores the net at init (`lip prune --granularity channel --method NAME`).

  l1      sum of |w| over the filter's kept weights / sqrt(fan_in)   (Li et al. 2017, normalised)
  l1-layer  l1 / the mean l1 of the layer's alive filters: each filter against its own layer
  bn      |gamma| of the BatchNorm reading the conv's output     (network slimming, Liu et al. 2017)
  random  U(0,1), one draw per filter
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import LipError
from ..masks import Masks, channel_sums
from ..nets import probe
from ..registry import Registry
from .scores import ScoreContext, ScoreFn, magnitude

CHANNEL_SCORES: Registry[ScoreFn] = Registry("channel score")
# Scores that only rank what training made: before it every BatchNorm scale is 1, every filter ties and the
# layer order decides (a one-shot `--method bn` gave the same mask for any seed and image). IMP's only.
TRAINED_ONLY = ("bn",)


@CHANNEL_SCORES.register("l1")
def l1(net: nn.Module, names: list[str], ctx: ScoreContext) -> Masks:
    """The filter's L1 norm divided by sqrt(fan_in). PyTorch's default init draws each weight with a
    scale of 1/sqrt(fan_in), so a raw L1 norm grows like sqrt(fan_in) and would rank a 3x3 conv's
    filters (fan-in 1152) 3x above a 1x1 skip conv's (fan-in 128) before any training; in these units
    every filter scores alike at init, and the global ranking across layers reflects what training
    did. Only kept weights count (the sum runs over `ctx.masks`)."""
    mags = magnitude(net, names, ctx)
    alive = ctx.masks or {n: torch.ones_like(m, dtype=torch.bool) for n, m in mags.items()}
    sums = channel_sums(mags, alive)
    return {n: s / math.sqrt(mags[n][0].numel()) for n, s in sums.items()}


@CHANNEL_SCORES.register("l1-layer")
def l1_layer(net: nn.Module, names: list[str], ctx: ScoreContext) -> Masks:
    """`l1` relative to its layer's alive filters (mean 1 in every layer). With plain `l1`, trained
    layers do not score on one scale: a first channel search on House gave one level the whole budget
    and left 22 of 25 convs at one filter (experiments/RESULTS-channel-ticket-prelim.md). Ranking
    filters against their own layer prunes every layer's weakest filters first, as Li et al. prune
    per layer, while the global ranking still decides how much each layer keeps."""
    scores = l1(net, names, ctx)
    alive = {n: s > 0 for n, s in scores.items()}  # a pruned filter has no kept weight, so l1 = 0
    return {n: s / s[alive[n]].mean().clamp_min(1e-30) if alive[n].any() else s for n, s in scores.items()}


@CHANNEL_SCORES.register("bn")
def bn(net: nn.Module, names: list[str], ctx: ScoreContext) -> Masks:
    """|gamma| of the BatchNorm that normalises the conv's output: its scale is what the channel
    contributes downstream (a channel with gamma ~ 0 emits only its beta)."""
    norms = bn_after(net, names)
    return {n: norms[n].weight.detach().abs().cpu().double() for n in names}


@CHANNEL_SCORES.register("random")
def random(net: nn.Module, names: list[str], ctx: ScoreContext) -> Masks:
    """The random score at channel granularity: one draw per filter (a per-filter sum of element
    draws would favour filters with a large fan-in)."""
    params = dict(net.named_parameters())
    return {n: torch.rand(params[n].shape[0], generator=ctx.gen).double() for n in names}


def bn_after(net: nn.Module, names: list[str]) -> dict[str, nn.BatchNorm2d]:
    """The BatchNorm that reads each conv's output directly, found by tracing one forward pass at the
    smallest valid input (structure, not module names, says which norm follows which conv)."""
    produced: dict[int, tuple[str, torch.Tensor]] = {}  # holds the outputs, so ids stay unique
    found: dict[str, nn.BatchNorm2d] = {}

    def on_conv(weight: str):
        return lambda mod, inp, out: produced.__setitem__(id(out), (weight, out))

    def on_norm(mod: nn.Module, inp: tuple[torch.Tensor, ...]) -> None:
        if id(inp[0]) in produced:
            found.setdefault(produced[id(inp[0])][0], mod)

    hooks = []
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d) and f"{name}.weight" in names:
            hooks.append(m.register_forward_hook(on_conv(f"{name}.weight")))
        elif isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_pre_hook(on_norm))
    probe(net, hooks)
    missing = [n for n in names if n not in found]
    if missing:
        raise LipError(f"the bn channel score needs a BatchNorm right after every pruned conv; "
                       f"{missing[0]} has none (use --channel-score l1)")
    return found
