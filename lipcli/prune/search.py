"""What every pruning method shares: what it fits, the prunable set, the trajectory being built, its
artifact, and the IMP stop rule. Drivers (imp.py, ladder.py, oes.py) fill a Trajectory round by round."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import nn

from .. import artifact, nets
from ..config import differences
from ..errors import LipError
from ..fit import Target
from ..masks import Masks, channel_count, from_rounds, kept_count, sparsity, total_count

SCOPES = ("conv", "all")
GRANULARITIES = ("element", "channel")


class TargetSource(Protocol):
    """One image a driver fits, as a fitting Target for any net (problem.Problem is one): drivers
    build targets per net and seed (IMP draws a new input code per session), never read images."""

    size: tuple[int, int]  # the restored (H, W)

    def target(self, net: nn.Module, gen: torch.Generator, device: torch.device,
               z: torch.Tensor | None = None) -> Target: ...


def prunable_names(net: nn.Module, scope: str, keep_input_dense: bool, granularity: str = "element") -> list[str]:
    """Conv weights (IMP's default) or every parameter (OES); optionally leave the z-facing convs dense.

    Channel granularity prunes conv filters, never the head's: the last conv in forward order writes
    the image's channels, so its filters cannot go."""
    if scope not in SCOPES:
        raise LipError(f"unknown --scope {scope!r}: use conv or all")
    if granularity == "channel" and scope != "conv":
        raise LipError("--granularity channel prunes conv filters: use it with --scope conv")
    names = nets.conv_weight_names(net) if scope == "conv" else [n for n, _ in net.named_parameters()]
    if granularity == "channel":
        names = names[:-1]
    if keep_input_dense:
        names = [n for n in names if n not in net.input_convs()]
    return names


def recommend(losses: list[float | None], rises: int) -> int | None:
    """LIP App. B: the round just before the loss rises in `rises` consecutive rounds.

    None when the pattern has not (yet) appeared.
    """
    for t in range(len(losses) - rises):
        window = losses[t:t + rises + 1]
        if all(v is not None for v in window) and all(b > a for a, b in zip(window, window[1:])):
            return t
    return None


def refuse_changed(out: Path, what: str, saved: dict[str, Any], now: dict[str, Any]) -> None:
    """A stored search is continued with what it was started with only (`what`, e.g. "the search settings
    differ"): continued with anything else, its rounds would come from two searches under one record."""
    if saved != now:
        raise LipError(f"--resume {out.name}: {what} (saved -> now: {', '.join(differences(saved, now))}); rerun "
                       "the command that started it with --resume, or start a new search")


def refuse_restart(out: Path, same: Callable[[dict[str, Any]], bool], rounds: int, trains_last: bool = True) -> None:
    """An interrupted search at `out` whose record is `same` as this one's is continued with --resume, never
    started over in silence: the rounds it holds may have taken hours. Any other file is an ordinary overwrite.
    `trains_last`: the search fits its last mask (GAN IMP does not: its last round's loss is null when done)."""
    try:
        old = artifact.load(out) if out.is_file() else None
    except LipError:  # not an artifact (the CLI has refused inputs and other names)
        return
    if old is None or not same(old.meta) or old.meta.get("stopped_by_rule"):
        return
    # a round recorded untrained (its loss null) was stopped during its training: the last one, too
    untrained = next((r["round"] for r in old.meta.get("rounds", []) if "loss" in r and r["loss"] is None
                      and (trains_last or r["round"] < rounds)), None)
    if old.rounds < rounds or untrained is not None:
        where = f"during round {untrained}" if untrained is not None else f"after round {old.rounds}"
        raise LipError(f"{out} holds this search, stopped {where} of {rounds}: add --resume {out} to continue it (or "
                       "remove the file to start over)")


@dataclass
class Trajectory:
    """The search state: initial weights, per-element prune rounds, per-round records (and the weights
    trained for a round, where the method keeps them: artifact.Artifact.finetuned)."""

    spec: dict[str, Any]
    theta0: dict[str, torch.Tensor]
    prune_round: dict[str, torch.Tensor]
    meta: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    finetuned: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    @classmethod
    def start(cls, net: nn.Module, names: list[str], **meta: Any) -> "Trajectory":
        theta0 = {n: p.detach().float().cpu().clone() for n, p in net.named_parameters()}
        rounds = {n: torch.zeros(theta0[n].shape, dtype=torch.uint8) for n in names}
        return cls(net.spec, theta0, rounds, artifact.new_meta(net.spec, **meta))

    @classmethod
    def resume(cls, art: artifact.Artifact, order: list[str] | None = None) -> "Trajectory":
        """The search stored in `art`, its masks in `order` (the names as the search lists them, forward through
        the net: a random score draws in that order, and a file lists them sorted by name)."""
        meta = dict(art.meta)
        rounds = {n: r.clone() for n, r in art.prune_round.items()}
        if order is not None and set(order) == set(rounds):
            rounds = {n: rounds[n] for n in order}
        return cls(art.spec, art.theta0, rounds, meta, list(meta.get("rounds", [])), dict(art.finetuned))

    @property
    def granularity(self) -> str:
        return artifact.granularity(self.meta)

    @property
    def done(self) -> int:
        """Rounds whose mask exists (the dense round 0 always does)."""
        return max((int(r.max()) for r in self.prune_round.values() if r.numel()), default=0)

    def masks(self, round_: int) -> Masks:
        return from_rounds(self.prune_round, round_)

    def ladder_total(self) -> int:
        """What the sparsity ladder counts down from: masked elements, or channels at channel granularity."""
        return channel_count(self.masks(0)) if self.granularity == "channel" else total_count(self.prune_round)

    def record(self, round_: int, seconds: float, **values: Any) -> dict[str, Any]:
        """Add (or replace) the record of a round: its exact sparsity plus what the method measured."""
        masks = self.masks(round_)
        kept, total = kept_count(masks), total_count(masks)
        rec = {"round": round_, "kept": kept, "total": total, "sparsity": sparsity(kept, total), **values}
        if self.granularity == "channel":
            rec["channels"] = channel_count(masks)
        self.records = [r for r in self.records if r["round"] != round_] + [rec]
        self.records.sort(key=lambda r: r["round"])
        # Timings are reported, not stored: the artifact stays byte-reproducible.
        return {**rec, "seconds": round(seconds, 3)}

    def to_artifact(self, recommended: int | None) -> artifact.Artifact:
        meta = {**self.meta, "rounds": self.records,
                "recommended_round": self.done if recommended is None else recommended,
                "created": artifact.created()}
        return artifact.Artifact(meta, self.theta0, self.prune_round, self.finetuned)
