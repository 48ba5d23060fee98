"""Pruning scores, registered by name: higher score = more worth keeping. Drivers rank them (masks.py).

Every score has one signature, `score(net, names, ctx) -> {name: tensor}`; what it may read besides
the net comes in a `ScoreContext`. A new score is one function with `@register("name")` (here or in
any imported module): the ladder driver and `lip prune --method` pick it up from `SCORES`.

Published definitions (not OES's variants, anchors-spec c.4):
  magnitude  |theta|                               (IMP after training; "magnitude at init" before)
  random     U(0,1), one draw
  SNIP       |theta * dL/dtheta|                   (Lee et al. 2019) on the observation loss
  GraSP      keep-score theta * (H g)              (Wang et al. 2020 prune the largest -theta*Hg)
  SynFlow    |theta * dR/dtheta|, R = 1^T f(1; |theta|)  (Tanaka et al. 2020), data-free
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

from .. import seeds
from ..fit import Target, observation_loss
from ..masks import Masks, apply_masks, top_global
from ..registry import Registry


@dataclass
class ScoreContext:
    """What a score may read besides the net; the driver fills it, each score reads what it needs."""

    targets: list[Target] = field(default_factory=list)  # observations (data-dependent scores)
    gen: torch.Generator | None = None  # the seeded source of random draws
    masks: Masks | None = None  # current keep-masks (an iterative score re-scores the masked net)
    input_shape: tuple[int, ...] | None = None  # one input without batch (data-free scores)


ScoreFn = Callable[[nn.Module, list[str], ScoreContext], Masks]


@dataclass(frozen=True)
class Score:
    fn: ScoreFn
    iterative: bool = False  # re-scored on the masked net as pruning proceeds, not once at init


SCORES: Registry[Score] = Registry("pruning score")


def register(name: str, iterative: bool = False) -> Callable[[ScoreFn], ScoreFn]:
    """Decorator: make `fn` the score `name` (a `lip prune --method` choice)."""
    def add(fn: ScoreFn) -> ScoreFn:
        SCORES.register(name)(Score(fn, iterative))
        return fn
    return add


def _params(net: nn.Module, names: list[str]) -> list[torch.Tensor]:
    named = dict(net.named_parameters())
    return [named[n] for n in names]


@register("random")
def random(net: nn.Module, names: list[str], ctx: ScoreContext) -> Masks:
    return {n: torch.rand(p.shape, generator=ctx.gen) for n, p in zip(names, _params(net, names))}


def random_mask(net: nn.Module, names: Iterable[str], kept: int, seed: int) -> Masks:
    """The random baseline of a ticket: a global unstructured mask over the parameters `names` of `net` keeping
    exactly `kept` entries. Drawn in the net's parameter order whatever the order of `names` (a mask file's is
    alphabetical), so one seed's masks are nested across kept counts and the same for every artifact of a net."""
    wanted = set(names)
    ordered = [n for n, _ in net.named_parameters() if n in wanted]
    drawn = random(net, ordered, ScoreContext(gen=seeds.generator(seed)))
    return top_global(drawn, {n: torch.ones(d.shape, dtype=torch.bool) for n, d in drawn.items()}, kept)


@register("magnitude")
def magnitude(net: nn.Module, names: list[str], ctx: ScoreContext) -> Masks:
    return {n: p.detach().abs().clone() for n, p in zip(names, _params(net, names))}


@register("snip")
def snip(net: nn.Module, names: list[str], ctx: ScoreContext) -> Masks:
    """Connection sensitivity at init: |theta * dL/dtheta| for the task's observation loss."""
    params = _params(net, names)
    loss, *_ = observation_loss(net, ctx.targets)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return {n: (p * (g if g is not None else torch.zeros_like(p))).detach().abs()
            for n, p, g in zip(names, params, grads)}


@register("synflow", iterative=True)
def synflow(net: nn.Module, names: list[str], ctx: ScoreContext) -> Masks:
    """Synaptic flow on the linearised net: all-ones input, |theta| weights, BN as identity (eval).

    R is summed over the head's pre-sigmoid output (the sigmoid would only rescale it). Run in
    float64 on a copy, so the caller's net is untouched.
    """
    assert ctx.input_shape is not None, "synflow is data-free but needs the input shape"
    lin = _linearised_copy(net)
    apply_masks(lin, ctx.masks)
    captured: list[torch.Tensor] = []
    hook = lin.head.register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        lin(torch.ones((1, *ctx.input_shape), dtype=torch.float64))
    finally:
        hook.remove()
    params = _params(lin, names)
    grads = torch.autograd.grad(captured[0].sum(), params, allow_unused=True)
    return {n: (p * (g if g is not None else torch.zeros_like(p))).detach().abs().float()
            for n, p, g in zip(names, params, grads)}


@register("grasp")
def grasp(net: nn.Module, names: list[str], ctx: ScoreContext) -> Masks:
    """Gradient-signal preservation: keep-score theta * Hg (GraSP removes the largest -theta * Hg)."""
    params = _params(net, names)
    loss, *_ = observation_loss(net, ctx.targets)
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    pairs = [(p, g) for p, g in zip(params, grads) if g is not None]
    dot = sum((g * g.detach()).sum() for _, g in pairs)
    hg = torch.autograd.grad(dot, [p for p, _ in pairs], allow_unused=True)
    hg_by_param = {id(p): h for (p, _), h in zip(pairs, hg)}
    out = {}
    for n, p in zip(names, params):
        h = hg_by_param.get(id(p))
        out[n] = (p * h).detach() if h is not None else torch.zeros_like(p)
    return out


def _linearised_copy(net: nn.Module) -> nn.Module:
    lin = copy.deepcopy(net).double().cpu().eval()
    with torch.no_grad():
        for p in lin.parameters():
            p.abs_()
        for m in lin.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
    return lin
