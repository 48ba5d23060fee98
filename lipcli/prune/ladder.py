"""Baselines at initialisation on IMP's sparsity ladder (kept = round(N * 0.8^k)), so every method's
round k has exactly the same number of weights and comparisons line up.

One-shot scores (random, magnitude, SNIP, GraSP) give nested masks by construction (top-k of one
score vector). SynFlow is iterative: from round k-1 to k it re-scores the masked net `iters` times
on an exponential schedule, so its masks are nested too. Random-layerwise copies the per-layer
kept counts of another artifact's rounds (the paper's Fig. 15 ablation).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch

from .. import artifact as artifacts
from ..errors import LipError
from ..fit import Target
from . import scores
from .search import Trajectory
from .select import ladder_kept, record_round, top_global, top_per_layer

METHODS = ("random", "random-layerwise", "magnitude", "snip", "synflow", "grasp")


def run(method: str, net: torch.nn.Module, traj: Trajectory, targets: list[Target], rounds: int,
        rate: float, seed: int, like: artifacts.Artifact | None = None, synflow_iters: int = 100,
        on_round: Callable[[dict[str, Any]], None] = lambda rec: None) -> None:
    """Fill `traj` with rounds 1..`rounds` of `method`'s masks."""
    names = list(traj.prune_round)
    total = sum(traj.prune_round[n].numel() for n in names)
    began = time.perf_counter()
    if method == "random-layerwise":
        assert like is not None, "checked by prune.run.search"
        if set(like.prune_round) != set(names):
            raise LipError("--like mask covers other parameters than this search (check --scope / --net)")
        rounds = like.rounds
    fixed = None
    if method in ("random", "random-layerwise"):
        fixed = scores.random(net, names, torch.Generator().manual_seed(seed))
    elif method == "magnitude":
        fixed = scores.magnitude(net, names)
    elif method == "snip":
        fixed = scores.snip(net, names, targets)
    elif method == "grasp":
        fixed = scores.grasp(net, names, targets)
    elif method != "synflow":
        raise LipError(f"unknown --method {method!r}")
    traj.record(0, 0.0)
    for k in range(1, rounds + 1):
        alive = traj.masks(k - 1)
        if method == "random-layerwise":
            counts = {n: int(m.sum()) for n, m in like.mask(k).items()}
            keep = top_per_layer(fixed, alive, counts)
        elif method == "synflow":
            keep = _synflow_step(net, names, alive, ladder_kept(total, rate, k), synflow_iters)
        else:
            keep = top_global(fixed, alive, ladder_kept(total, rate, k))
        record_round(traj.prune_round, alive, keep, k)
        on_round(traj.record(k, time.perf_counter() - began))
        began = time.perf_counter()


def _synflow_step(net: torch.nn.Module, names: list[str], alive: dict[str, torch.Tensor], n_keep: int,
                  iters: int) -> dict[str, torch.Tensor]:
    """Prune from |alive| to n_keep in `iters` re-scorings, kept count shrinking geometrically."""
    n_alive = sum(int(m.sum()) for m in alive.values())
    shape = net.input_shape(net.min_side, net.min_side)  # data-free: the smallest valid input suffices
    keep = alive
    for i in range(1, iters + 1):
        n_i = n_keep if i == iters else round(n_alive * (n_keep / n_alive) ** (i / iters))
        keep = top_global(scores.synflow(net, names, keep, shape), keep, n_i)
    return keep
