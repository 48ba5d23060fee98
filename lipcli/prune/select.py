"""Exact mask selection: keep precisely n elements, ties broken by position (deterministic).

Trajectories are stored as `prune_round` tensors (artifact.py): the round at which each element
was pruned, 0 = never, so every round's mask is recovered exactly and masks are nested.
"""
from __future__ import annotations

import torch

Tensors = dict[str, torch.Tensor]


def ladder_kept(total: int, rate: float, round_: int) -> int:
    """Kept count after `round_` rounds of pruning `rate` of the remainder: round(total*(1-rate)^k)."""
    return int(round(total * (1 - rate) ** round_))


def keep_masks(prune_round: Tensors, round_: int) -> Tensors:
    return {n: (r == 0) | (r > round_) for n, r in prune_round.items()}


def kept_count(masks: Tensors) -> int:
    return sum(int(m.sum()) for m in masks.values())


def top_global(scores: Tensors, alive: Tensors, n_keep: int) -> Tensors:
    """Keep the `n_keep` highest-scoring alive elements across all tensors (global ranking)."""
    names = list(scores)
    flat = torch.cat([scores[n].detach().double().flatten().cpu() for n in names])
    live = torch.cat([alive[n].flatten().cpu() for n in names])
    if n_keep > int(live.sum()):
        raise ValueError(f"cannot keep {n_keep} of {int(live.sum())} alive elements")
    big = torch.finfo(flat.dtype).max  # broken scores rank last among the living, above the dead
    flat = torch.nan_to_num(flat, nan=-big, posinf=big, neginf=-big)
    flat = torch.where(live, flat, torch.tensor(-torch.inf, dtype=flat.dtype))
    order = torch.sort(flat, descending=True, stable=True).indices[:n_keep]
    keep = torch.zeros_like(live)
    keep[order] = True
    out, start = {}, 0
    for n in names:
        size = scores[n].numel()
        out[n] = keep[start:start + size].view(scores[n].shape)
        start += size
    return out


def top_per_layer(scores: Tensors, alive: Tensors, counts: dict[str, int]) -> Tensors:
    """Keep `counts[name]` highest-scoring alive elements in each tensor separately."""
    return {n: top_global({n: scores[n]}, {n: alive[n]}, counts[n])[n] for n in scores}


def record_round(prune_round: Tensors, before: Tensors, after: Tensors, round_: int) -> None:
    """Mark elements alive in `before` but not in `after` as pruned at `round_` (in place)."""
    for n, r in prune_round.items():
        r[before[n].cpu() & ~after[n].cpu()] = round_
