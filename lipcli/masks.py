"""Keep-masks: the one place that says what a mask means.

A mask set maps parameter names to boolean tensors of the parameters' shapes (True = kept); a
parameter without a mask is dense. A pruning trajectory stores, per element, the round at which it
was pruned (uint8, 0 = never), so the mask of round k is `r == 0 | r > k` and masks are nested.
Selection keeps an exact count with ties broken by position, so the same scores always give the
same mask, and sparsity is counted over the masked elements only.

Channel granularity is a view of the same element masks, not a second format: a conv weight's output
channel (filter) o is the row `[o, ...]`, a channel is kept iff any weight of its row is, and a channel
mask is an element mask whose zeros cover whole rows. Every mapping between the two views lives in the
"channels" section below, so every consumer of element masks reads channel tickets unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from .errors import LipError

Masks = dict[str, torch.Tensor]


# ------------------------------------------------------------------ trajectories (prune rounds)

def from_rounds(prune_round: Masks, round_: int) -> Masks:
    """The keep-masks after `round_` rounds (0 = dense): never pruned, or pruned later."""
    return {n: (r == 0) | (r > round_) for n, r in prune_round.items()}


def kept_by_round(prune_round: Masks, rounds: int) -> dict[str, list[int]]:
    """Per tensor, the kept count after each round 0..rounds, from one histogram (no mask per round)."""
    out = {}
    for n, r in prune_round.items():
        hist = torch.bincount(r.flatten().long(), minlength=rounds + 1)[: rounds + 1]
        out[n] = [int(hist[0]) + int(hist[k + 1:].sum()) for k in range(rounds + 1)]
    return out


def record_round(prune_round: Masks, before: Masks, after: Masks, round_: int) -> None:
    """Mark elements kept in `before` but not in `after` as pruned at `round_` (in place)."""
    for n, r in prune_round.items():
        r[before[n].cpu() & ~after[n].cpu()] = round_


def ladder_kept(total: int, rate: float, round_: int) -> int:
    """Kept count after `round_` rounds of pruning `rate` of the remainder: round(total*(1-rate)^k)."""
    return int(round(total * (1 - rate) ** round_))


FLOOR = "(one per conv, so that no layer is emptied)"  # why a channel search keeps `floor` channels


def check_ladder(total: int, rate: float, rounds: int, what: str, floor: int | None = None) -> None:
    """Refuse, before any round, a ladder that empties the net (its last rounds would fit nothing) or has a round
    that prunes nothing (its count rounds to the last one's), or, for a search that keeps a `floor` (one channel
    per conv), one that reaches it before its last round: the rounds after would repeat one mask (trained again,
    by IMP); a last round may stop at it (its sparsity is recorded as the masks have it; a --target-sparsity
    below it is refused: `check_target`)."""
    kept = [ladder_kept(total, rate, k) for k in range(rounds + 1)]
    if floor is None:
        empty = next((k for k in range(1, rounds + 1) if kept[k] < 1), None)
        if empty is not None:
            raise LipError(f"--rate {rate:g} keeps none of the {total:,} {what} by round {empty} of {rounds}: "
                           "lower --rate or --rounds")
    stalled = next((k for k in range(1, rounds + 1) if kept[k] == kept[k - 1] > (floor or 0)), None)
    if stalled is not None:
        raise LipError(f"--rate {rate:g} prunes none of the {kept[stalled]:,} {what} left in round {stalled} of "
                       f"{rounds} (its count rounds to the same): raise --rate or lower --rounds")
    if floor is None:
        return
    reached = next((k for k in range(1, rounds) if kept[k] <= floor), None)
    if reached is not None:
        raise LipError(f"--rate {rate:g} comes down to the {floor} {what} a search keeps {FLOOR} by round {reached} "
                       f"of {rounds}: the rounds after it would repeat its mask; lower --rate, --rounds or "
                       "--target-sparsity")


def check_target(total: int, target: float, what: str, floor: int | None, given: bool) -> None:
    """Refuse, before the search, a one-round target (OES) that keeps no element, or fewer channels than the
    `floor` a channel search keeps; `given`: the target is --target-sparsity's (else --rate's and --rounds')."""
    kept, least = round((1 - target) * total), floor or 1
    if kept < least:
        named = (f"--target-sparsity {target:.10g}" if given else
                 f"the target sparsity {target:.10g} that the rounds and rate make")
        below = f", fewer than the {floor} a search keeps {FLOOR}" if floor else ""
        raise LipError(f"{named} keeps {kept:,} of the {total:,} {what}{below}: "
                       + ("lower it" if given else "give a lower --target-sparsity"))


# ------------------------------------------------------------------ counting

def kept_count(masks: Masks, over: dict[str, torch.Tensor] | None = None) -> int:
    """Kept elements of the masked tensors; with `over` (e.g. a net's parameters), every tensor of
    `over` counts, an unmasked one whole."""
    if over is None:
        return sum(int(m.sum()) for m in masks.values())
    return sum(int(masks[n].sum()) if n in masks else t.numel() for n, t in over.items())


def total_count(masks: Masks) -> int:
    return sum(m.numel() for m in masks.values())


def sparsity(kept: int, total: int) -> float:
    """The pruned fraction of `total` elements of which `kept` remain (0 when there are none)."""
    return 1 - kept / total if total else 0.0


def mask_sparsity(masks: Masks | None) -> float:
    """Pruned fraction of the masked elements (0 for no masks)."""
    return sparsity(kept_count(masks or {}), total_count(masks or {}))


# ------------------------------------------------------------------ masks on a net

class MaskedParams:
    """A net's masked parameters, each with its mask cast once to the parameter's device and dtype."""

    def __init__(self, net: nn.Module, masks: Masks | None) -> None:
        named = dict(net.named_parameters())
        self.pairs = [(named[n], m.to(named[n].device, named[n].dtype)) for n, m in (masks or {}).items()]

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def zero_weights(self) -> None:
        """Zero the pruned weights in place (at the start of a fit and after every rewind)."""
        with torch.no_grad():
            for p, m in self.pairs:
                p.mul_(m)

    def zero_grads(self) -> None:
        """Zero the pruned weights' gradients before an optimiser step, so weights and Adam moments stay 0."""
        live = [(p.grad, m) for p, m in self.pairs if p.grad is not None]
        if live:
            torch._foreach_mul_([g for g, _ in live], [m for _, m in live])


def apply_masks(net: nn.Module, masks: Masks | None) -> None:
    """Zero the pruned weights of `net` in place."""
    MaskedParams(net, masks).zero_weights()


# ------------------------------------------------------------------ exact top-k selection

def top_global(scores: Masks, alive: Masks, n_keep: int) -> Masks:
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


def top_per_layer(scores: Masks, alive: Masks, counts: dict[str, int]) -> Masks:
    """Keep `counts[name]` highest-scoring alive elements in each tensor separately."""
    return {n: top_global({n: scores[n]}, {n: alive[n]}, counts[n])[n] for n in scores}


# ------------------------------------------------------------------ channels (whole filters)

def channels_alive(masks: Masks) -> Masks:
    """Per tensor, one flag per output channel: does any weight of its row survive."""
    return {n: m.reshape(m.shape[0], -1).any(dim=1).cpu() for n, m in masks.items()}


def channel_count(masks: Masks) -> int:
    """Kept channels over all tensors."""
    return sum(int(f.sum()) for f in channels_alive(masks).values())


def channel_sums(scores: Masks, alive: Masks) -> Masks:
    """Per-channel reduction of element scores: the sum over each row's alive elements."""
    return {n: (s.detach().cpu().double() * alive[n].cpu()).reshape(s.shape[0], -1).sum(dim=1)
            for n, s in scores.items()}


def expand_channels(flags: Masks, within: Masks) -> Masks:
    """Element masks: the elements of `within` whose channel flag is set (flags broadcast over rows)."""
    return {n: m.cpu() & flags[n].view(-1, *[1] * (m.dim() - 1)) for n, m in within.items()}


def top_channels(scores: Masks, alive: Masks, n_keep: int, floor: int = 1) -> Masks:
    """Element masks keeping the `n_keep` highest-scoring alive channels (one score per channel,
    global ranking), with at least `floor` channels in every tensor, so no layer is ever emptied
    (an emptied conv would cut a branch or a whole deeper level off the hourglass).

    The floor is filled first from each tensor's own best channels; the rest is ranked globally.
    `n_keep` below the sum of the floors is raised to it."""
    ch_alive = channels_alive(alive)
    floors = {n: min(floor, int(f.sum())) for n, f in ch_alive.items()}
    reserved = top_per_layer(scores, ch_alive, floors)
    rest = {n: ch_alive[n] & ~reserved[n] for n in ch_alive}
    n_rest = max(0, n_keep - sum(floors.values()))
    extra = top_global(scores, rest, n_rest)
    return expand_channels({n: reserved[n] | extra[n] for n in ch_alive}, alive)
