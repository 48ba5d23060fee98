"""Iterative magnitude pruning for DIPs (LIP Algorithms 1 and 2), blind by default.

Session t trains the net under mask t on the degraded observation(s) and records the loss; then
`rate` of the surviving prunable weights with the smallest trained magnitude are pruned (global
ranking, exact count round(N*(1-rate)^(t+1))) and the survivors are rewound to theta0 (or to the
weights after `rewind` of the first session). After every session the artifact is rewritten
atomically, so an interrupted search resumes from the last finished session with identical masks:
all randomness of session t is derived from (seed, t), never from what ran before.

Channel IMP (`channel_score` set) is the same loop over filters: the ladder counts channels, the
trained net is scored per channel (channel_scores.py) and whole filters are pruned.

`sessions` is that loop for any training: `run` fits DIP targets in it, lipcli/classify.py trains a
classifier on digits in it (the paper's classification tickets), gan_imp.py fine-tunes a generator in it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch

from .. import nets, seeds
from ..fit import FitConfig, FitResult, Step, Target, fit
from ..masks import Masks, ladder_kept, record_round, top_channels, top_global
from ..physics import Identity
from .channel_scores import CHANNEL_SCORES
from .scores import ScoreContext, magnitude
from .search import TargetSource, Trajectory, recommend


@dataclass
class ImpSettings:
    rounds: int
    rate: float = 0.2
    rewind: float = 0.0  # 0 = rewind to init; j in (0,1) = to the weights after j of session 0
    fresh_input: bool = False  # the published code draws a new z every round
    shared_input: bool = False  # Algorithm 2 as published: one z, one output for all images
    rises: int = 2  # stop rule: consecutive loss rises that mark the matching round
    stop_on_rises: bool = False
    oracle: bool = False  # fit the clean images (the paper's protocol), recorded as oracle
    early_bird: float = 0.0  # end a session once its next mask changes less than this (0 = off)
    early_bird_every: int = 50  # iterations between early-bird checks


Select = Callable[[torch.nn.Module, Masks, int], Masks]  # (trained net, alive, n_keep) -> kept


@dataclass
class Session:
    """One IMP session: it trains under `alive`; then `select` keeps `n_next` of the trained net's weights."""

    index: int
    alive: Masks
    n_next: int
    select: Select


def sessions(traj: Trajectory, rounds: int, rate: float,
             train: Callable[[Session], tuple[torch.nn.Module, dict[str, Any]]],
             select_for: Callable[[int], Select], save: Callable[[Trajectory, int | None], None],
             on_round: Callable[[dict[str, Any]], None] = lambda rec: None, rises: int = 2,
             stop_on_rises: bool = False, train_last: bool = True,
             on_pruned: Callable[[torch.nn.Module, Masks, int], None] = lambda net, kept, round_: None) -> int:
    """IMP's loop for any training (a DIP fit, a classifier's epochs, a GAN's fine-tuning): session t
    trains from the rewind point under mask t (`train` returns the trained net and its record, whose
    "loss" the stop rule reads), then prunes to the next ladder count round(N*(1-rate)^(t+1)) and hands
    `on_pruned` the trained net and the new mask. Without `train_last` the last mask gets no session
    (GAN IMP evaluates each round's fine-tuned net, so a session on the last mask would be wasted).
    The artifact is saved after every session and a trajectory resumes after its last recorded loss
    (without `train_last`, whose trainings record none: at its last mask). Returns the recommended round."""
    best = recommend([r.get("loss") for r in traj.records], rises)
    if stop_on_rises and traj.meta.get("stopped_by_rule") and best is not None:  # a search the rule ended: done
        return best
    start = sum(1 for r in traj.records if r.get("loss") is not None) if train_last else traj.done
    total = traj.ladder_total()
    for index in range(start, rounds + 1 if train_last else rounds):
        began = time.perf_counter()
        session = Session(index, traj.masks(index), ladder_kept(total, rate, index + 1), select_for(index))
        net, values = train(session)
        shown = [traj.record(index, time.perf_counter() - began, **values)]
        if index < rounds:
            kept = session.select(net, session.alive, session.n_next)
            record_round(traj.prune_round, session.alive, kept, index + 1)
            on_pruned(net, kept, index + 1)
            last = traj.record(index + 1, 0.0, loss=None)
            if not train_last and index + 1 == rounds:  # the last mask gets no session: shown as it is
                shown.append(last)
        best = recommend([r.get("loss") for r in traj.records], rises)
        save(traj, best if best is not None else index)
        for rec in shown:  # reported once saved: a round said to be finished is kept
            on_round(rec)
        if stop_on_rises and best is not None:
            traj.meta["stopped_by_rule"] = True
            save(traj, best)
            return best
    return best if best is not None else rounds


def _targets(sources: list[TargetSource], net: torch.nn.Module, s: ImpSettings, seed: int, session: int,
             dev: torch.device) -> list[Target]:
    gen = seeds.generator(seed * 100_003 + (session if s.fresh_input else 0))
    shared = None
    if s.shared_input:
        sizes = {p.size for p in sources}
        shared = nets.make_input(net, *nets.padded_size(net, *sources[0].size), gen)
        assert len(sizes) == 1, "checked by the caller"
    targets = [p.target(net, gen, dev, z=shared) for p in sources]
    if s.oracle:  # fit the clean images themselves: through the identity
        for t in targets:
            t.op, t.y = Identity(), t.clean
    return targets


def run(sources: list[TargetSource], traj: Trajectory, s: ImpSettings, cfg: FitConfig, dev: torch.device,
        seed: int, save: Callable[[Trajectory, int | None], None],
        on_step: Callable[[Step], None] = lambda step: None,
        on_round: Callable[[dict[str, Any]], None] = lambda rec: None,
        channel_score: str | None = None) -> int | None:
    """Run (or continue) the search; returns the recommended round. With `channel_score`, prune
    whole filters ranked by that channel score."""

    def train(session: Session) -> tuple[torch.nn.Module, dict[str, Any]]:
        net = nets.build(traj.spec, seed)
        net.load_state_dict(traj.theta0, strict=False)
        net.to(dev)
        targets = _targets(sources, net, s, seed, session.index, dev)
        rewind_at = round(s.rewind * cfg.iters) if s.rewind and session.index == 0 else 0
        snap: dict[str, torch.Tensor] = {}

        def capture(step: Step) -> None:
            on_step(step)
            if step.iteration == rewind_at:
                snap.update({n: p.detach().float().cpu().clone() for n, p in net.named_parameters()})

        callbacks: list[Callable[[Step], bool | None]] = [capture]
        if s.early_bird and session.index < s.rounds:
            callbacks.append(early_bird(session.select, net, session.alive, session.n_next, s.early_bird,
                                        s.early_bird_every, after=rewind_at))
        iters = cfg.iters
        if s.early_bird and session.index == s.rounds and session.index > 0:
            # The last mask has no successor to settle: it trains as long as the round before it did, so that the
            # round losses the recommendation compares come from one budget (in full it always won by length).
            iters = next((r["iterations"] for r in traj.records if r["round"] == session.index - 1
                          and r.get("iterations")), cfg.iters)
        session_cfg = replace(cfg, iters=iters, seed=seed * 100_003 + session.index, early_stop=False)
        result = fit(net, targets, session_cfg, masks=session.alive, callbacks=callbacks)
        if snap:
            traj.theta0 = snap
            traj.meta["rewind_iteration"] = rewind_at
        return net, {"loss": result.tail_loss, "iterations": result.iterations,
                     **_report(targets, result, s.oracle)}

    return sessions(traj, s.rounds, s.rate, train,
                    lambda k: selector(channel_score, seeds.generator(seed * 100_003 + k)),
                    save, on_round, s.rises, s.stop_on_rises)


def next_mask(net: torch.nn.Module, alive: Masks, n_keep: int) -> Masks:
    """IMP's selection: the `n_keep` alive weights of largest trained magnitude, ranked globally."""
    return top_global(magnitude(net, list(alive), ScoreContext()), alive, n_keep)


def selector(channel_score: str | None, gen: torch.Generator) -> Select:
    """Element IMP's `next_mask`, or the channel selection: the `n_keep` alive filters ranked by
    `channel_score` (at least one kept per conv), as element masks."""
    if channel_score is None:
        return next_mask
    score = CHANNEL_SCORES.get(channel_score)

    def select(net: torch.nn.Module, alive: Masks, n_keep: int) -> Masks:
        ctx = ScoreContext(gen=gen, masks=alive)
        return top_channels(score(net, list(alive), ctx), alive, n_keep)

    return select


def mask_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of prune decisions that differ between two pruned sets of equal size (0 = same)."""
    return float((a ^ b).sum()) / max(1, 2 * int(a.sum()))


def early_bird(select: Select, net: torch.nn.Module, alive: Masks, n_keep: int, threshold: float,
               every: int, after: int = 0) -> Callable[[Step], bool]:
    """Early-bird rule (You et al. 2020, for channels; here for weights too): every `every` iterations,
    select as the end of the session would; once the set to be pruned changes by less than
    `threshold` between two checks, the session has found its mask and can end."""
    last: list[torch.Tensor] = []

    def check(step: Step) -> bool:
        if step.iteration % every or step.iteration <= after:
            return False
        keep = select(net, alive, n_keep)
        pruned = torch.cat([(alive[n].cpu() & ~keep[n]).flatten() for n in alive])
        done = bool(last) and mask_distance(pruned, last[0]) < threshold
        last[:] = [pruned]
        return done

    return check


def _report(targets: list[Target], result: FitResult, oracle: bool) -> dict[str, Any]:
    """Per-round PSNR against clean images, only when they were given (reporting, never steering)."""
    if oracle or any(t.clean is None for t in targets):
        return {}
    scores = [t.metric(r.final, t.clean) for t, r in zip(targets, result.targets)]
    return {"psnr_final": sum(scores) / len(scores)}
