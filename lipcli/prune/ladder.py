"""The ladder driver: any registered score at initialisation on IMP's sparsity ladder
(kept = round(N * (1 - rate)^k)), so every method's round k has exactly the same number of weights and
comparisons line up.

One-shot scores (random, magnitude, SNIP, GraSP) give nested masks by construction (top-k of one
score vector). An iterative score (SynFlow) re-scores the masked net `iters` times from round k-1
to k on an exponential schedule, so its masks are nested too. Random-layerwise is a driver of its
own over the random score: it copies the per-layer kept counts of another artifact's rounds (the
paper's Fig. 15 ablation).

At channel granularity the method names a channel score (channel_scores.py: random channels, or l1 /
bn at init), the ladder counts channels, and whole filters are pruned.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable

import torch

from .. import artifact as artifacts, seeds
from ..fit import Target
from ..masks import Masks, kept_count, ladder_kept, record_round, top_channels, top_global, top_per_layer
from .channel_scores import CHANNEL_SCORES, TRAINED_ONLY
from .scores import SCORES, Score, ScoreContext, ScoreFn
from .search import Trajectory

LAYERWISE = "random-layerwise"


def methods(granularity: str = "element") -> list[str]:
    """Every registered score, with random-layerwise right after the random score it draws from; at
    channel granularity, every channel score."""
    if granularity == "channel":
        return [name for name in CHANNEL_SCORES.names() if name not in TRAINED_ONLY]
    return [m for name in SCORES.names() for m in ((name, LAYERWISE) if name == "random" else (name,))]


def run(method: str, net: torch.nn.Module, traj: Trajectory, targets: list[Target], rounds: int,
        rate: float, seed: int, like: artifacts.Artifact | None = None, iters: int = 100,
        on_round: Callable[[dict[str, Any]], None] = lambda rec: None,
        save: Callable[[], None] = lambda: None) -> None:
    """Fill `traj` with rounds 1..`rounds` of `method`'s masks (`iters`: re-scorings of an iterative score),
    calling `save` after each (a stopped search keeps its finished rounds) and continuing after the rounds a
    resumed `traj` holds: every round is a function of the seeded scores and the round before it."""
    names = list(traj.prune_round)
    channels = traj.granularity == "channel"
    total = traj.ladder_total()
    began = time.perf_counter()
    if method == LAYERWISE:
        assert like is not None, "checked by prune.run.search, as its parameters and shapes"
        rounds = like.rounds
    if channels:
        score = Score(CHANNEL_SCORES.get(method))
    else:
        score = SCORES.get("random" if method == LAYERWISE else method)
    ctx = ScoreContext(targets=targets, gen=seeds.generator(seed), masks=traj.masks(0),
                       input_shape=net.input_shape(net.min_side, net.min_side))  # the smallest valid input
    fixed = None if score.iterative else score.fn(net, names, ctx)
    if traj.done == 0:
        traj.record(0, 0.0)
    for k in range(traj.done + 1, rounds + 1):
        alive = traj.masks(k - 1)
        if method == LAYERWISE:
            counts = {n: int(m.sum()) for n, m in like.mask(k).items()}
            keep = top_per_layer(fixed, alive, counts)
        elif channels:
            keep = top_channels(fixed, alive, ladder_kept(total, rate, k))
        elif fixed is None:
            keep = _iterative_step(score.fn, net, names, ctx, alive, ladder_kept(total, rate, k), iters)
        else:
            keep = top_global(fixed, alive, ladder_kept(total, rate, k))
        record_round(traj.prune_round, alive, keep, k)
        rec = traj.record(k, time.perf_counter() - began)
        save()
        on_round(rec)  # reported once saved
        began = time.perf_counter()


def _iterative_step(score: ScoreFn, net: torch.nn.Module, names: list[str], ctx: ScoreContext, alive: Masks,
                    n_keep: int, iters: int) -> Masks:
    """Prune from |alive| to n_keep in `iters` re-scorings, kept count shrinking geometrically."""
    n_alive = kept_count(alive)
    keep = alive
    for i in range(1, iters + 1):
        n_i = n_keep if i == iters else round(n_alive * (n_keep / n_alive) ** (i / iters))
        keep = top_global(score(net, names, replace(ctx, masks=keep)), keep, n_i)
    return keep
