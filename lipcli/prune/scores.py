"""Pruning score functions: higher score = more worth keeping. Drivers rank them (select.py).

Published definitions (not OES's variants, anchors-spec c.4):
  magnitude  |theta|                               (IMP after training; "magnitude at init" before)
  random     U(0,1), one draw
  SNIP       |theta * dL/dtheta|                   (Lee et al. 2019) on the observation loss
  GraSP      keep-score theta * (H g)              (Wang et al. 2020 prune the largest -theta*Hg)
  SynFlow    |theta * dR/dtheta|, R = 1^T f(1; |theta|)  (Tanaka et al. 2020), data-free
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..fit import Target, observation_loss

Tensors = dict[str, torch.Tensor]


def _params(net: nn.Module, names: list[str]) -> list[torch.Tensor]:
    named = dict(net.named_parameters())
    return [named[n] for n in names]


def magnitude(net: nn.Module, names: list[str]) -> Tensors:
    return {n: p.detach().abs().clone() for n, p in zip(names, _params(net, names))}


def random(net: nn.Module, names: list[str], gen: torch.Generator) -> Tensors:
    return {n: torch.rand(p.shape, generator=gen) for n, p in zip(names, _params(net, names))}


def _masked_copy(net: nn.Module, masks: Tensors | None) -> None:
    if masks:
        named = dict(net.named_parameters())
        with torch.no_grad():
            for n, m in masks.items():
                named[n].mul_(m.to(named[n].device, named[n].dtype))


def snip(net: nn.Module, names: list[str], targets: list[Target]) -> Tensors:
    """Connection sensitivity at init: |theta * dL/dtheta| for the task's observation loss."""
    params = _params(net, names)
    loss, _ = observation_loss(net, targets)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return {n: (p * (g if g is not None else torch.zeros_like(p))).detach().abs()
            for n, p, g in zip(names, params, grads)}


def grasp(net: nn.Module, names: list[str], targets: list[Target]) -> Tensors:
    """Gradient-signal preservation: keep-score theta * Hg (GraSP removes the largest -theta * Hg)."""
    params = _params(net, names)
    loss, _ = observation_loss(net, targets)
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


def synflow(net: nn.Module, names: list[str], masks: Tensors, input_shape: tuple[int, ...]) -> Tensors:
    """Synaptic flow on the linearised net: all-ones input, |theta| weights, BN as identity (eval).

    R is summed over the head's pre-sigmoid output (the sigmoid would only rescale it). Run in
    float64 on a copy, so the caller's net is untouched.
    """
    lin = _linearised_copy(net)
    _masked_copy(lin, masks)
    captured: list[torch.Tensor] = []
    hook = lin.head.register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        lin(torch.ones((1, *input_shape), dtype=torch.float64))
    finally:
        hook.remove()
    params = _params(lin, names)
    grads = torch.autograd.grad(captured[0].sum(), params, allow_unused=True)
    return {n: (p * (g if g is not None else torch.zeros_like(p))).detach().abs().float()
            for n, p, g in zip(names, params, grads)}


def _linearised_copy(net: nn.Module) -> nn.Module:
    lin = copy.deepcopy(net).double().cpu().eval()
    with torch.no_grad():
        for p in lin.parameters():
            p.abs_()
        for m in lin.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
    return lin
