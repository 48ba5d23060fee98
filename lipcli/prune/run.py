"""One entry point for every pruning method: start or resume a search, save after every round.

Methods are the IMP and OES drivers plus every registered score on the ladder driver (ladder.py).
The artifact is the checkpoint: it is rewritten atomically after each round, and `resume` reads
it back, checks that the search settings are the same, and continues where it stopped.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch

from .. import artifact, nets, seeds
from ..errors import LipError
from ..fit import FitConfig, Step, fit
from ..masks import check_ladder, check_target, record_round
from ..restore import plan_memory
from . import imp, ladder
from .oes import GumbelMasked
from .oes_channels import ChannelGumbelMasked
from .channel_scores import CHANNEL_SCORES, TRAINED_ONLY, bn_after
from .search import (GRANULARITIES, TargetSource, Trajectory, prunable_names, refuse_changed,
                     refuse_restart)


def methods(granularity: str = "element") -> list[str]:
    """Every `--method` choice: the IMP and OES drivers, then the ladder's (read when asked, so a score registered
    later is a choice too); at channel granularity, IMP, OES (one logit per filter) and the channel scores."""
    if granularity == "channel":
        return ["imp", "oes", *ladder.methods(granularity)]
    return ["imp", "oes", *ladder.methods()]


def every_method() -> list[str]:
    """`--method` choices at any granularity (the search checks that one fits its granularity)."""
    return list(dict.fromkeys([*methods(), *methods("channel")]))


@dataclass
class SearchRequest:
    """Everything that defines a search (recorded in the artifact; a resume must match it)."""

    method: str
    task: str
    net: str | dict[str, Any]
    rounds: int
    rate: float
    scope: str
    keep_input_dense: bool
    imp: imp.ImpSettings
    fit: FitConfig
    seed: int
    synflow_iters: int = 100
    oes_lambda: float = 1e-9
    oes_tau: float = 0.2
    target_sparsity: float | None = None
    like: str | None = None
    granularity: str = "element"  # or "channel": whole filters
    channel_score: str | None = None  # channel IMP's score; the ladder's at channel granularity is `method`
    extra: dict[str, Any] = field(default_factory=dict)  # recorded, not compared (threads, preset)

    def __post_init__(self) -> None:
        if self.method == "oes":  # OES learns its mask by Adam on the logits and the KL term alone (anchors-spec
            # c.2): no input jitter, output average or stop, and no kernel decay (it would shrink the logits).
            # Set here, so the artifact records the fit that ran.
            self.fit = replace(self.fit, reg_noise=0.0, ema=0.0, early_stop=False, weight_decay=0.0)

    def identity(self) -> dict[str, Any]:
        """The settings as recorded; element searches omit the granularity keys, so they stay the
        bytes they were before channel pruning existed and old artifacts resume."""
        d = asdict(self)
        d.pop("extra")
        d["fit"] = self.fit.recorded()
        if self.granularity == "element":
            del d["granularity"], d["channel_score"]
        return d


# The search options only one method reads (api.Search's field -> the method): given to another, refused.
METHOD_ONLY = {"rewind": "imp", "stop_when_loss_rises": "imp", "early_bird": "imp", "early_bird_every": "imp",
               "fresh_input": "imp", "shared_input": "imp", "oracle_target": "imp",  # how IMP's sessions fit
               "clean": "imp",  # the per-round PSNR report: only IMP's rounds fit the image
               "like": "random-layerwise", "synflow_iters": "synflow", "oes_lambda": "oes", "oes_tau": "oes"}


def check_method_options(method: str, given: list[str]) -> None:
    """Refuse the options among `given` (field names) that `method` does not read, naming them as flags."""
    unread = [n for n in given if METHOD_ONLY.get(n, method) != method]
    if unread:
        flags = ", ".join("--" + n.replace("_", "-") for n in unread)
        readers = " / ".join(sorted({METHOD_ONLY[n] for n in unread}))
        raise LipError(f"{flags}: --method {method} does not read {'it' if len(unread) == 1 else 'them'} "
                       f"(only --method {readers})")


def rounds_for(target: float, rate: float) -> int:
    """The first ladder round whose sparsity reaches `target`."""
    k = 1
    while 1 - (1 - rate) ** k < target - 1e-12:
        k += 1
    return k


def search(req: SearchRequest, sources: list[TargetSource], provenance: dict[str, Any], dev: torch.device,
           out: Path, resume: bool, on_start: Callable[[], None], on_step: Callable[[Step], None],
           on_round: Callable[[dict[str, Any]], None], slim: bool = False) -> artifact.Artifact:
    """Validate everything, call `on_start`, then run; the artifact is saved after every round.

    `provenance` is what a new artifact records about the data (problem.provenance: the operator,
    each image's name, pixel hash and size). `slim` writes artifact.py's slim encoding."""
    req = replace(req, channel_score=channel_score_for(req.method, req.granularity, req.channel_score))
    spec = nets.resolve_spec(req.net)
    shape = nets.skeleton(spec)  # no weights yet: a net too big for the memory is refused before it is allocated
    largest = max((nets.padded_size(shape, *src.size) for src in sources), key=lambda hw: hw[0] * hw[1])
    plan_memory(spec, largest, req.fit, dev)  # as a restore is refused up front (prune had no such check)
    net = nets.build(spec, req.seed)
    names = prunable_names(net, req.scope, req.keep_input_dense, req.granularity)
    like = artifact.load(Path(req.like)) if req.like else None
    if req.method == "random-layerwise" and like is None:
        raise LipError("--method random-layerwise needs --like MASK.safetensors (whose per-layer ratios to copy)")
    if like is not None:
        if set(like.prune_round) < set(names):  # e.g. a channel ticket, whose head is never masked
            names = [n for n in names if n in like.prune_round]  # the layers it leaves dense stay dense here too
        if set(like.prune_round) != set(names):
            raise LipError(f"--like {req.like} masks other parameters than this search (check --scope / --net)")
        shapes = {n: tuple(p.shape) for n, p in net.named_parameters()}
        other = next((n for n in names if tuple(like.prune_round[n].shape) != shapes[n]), None)
        if other is not None:  # its per-layer counts would be another net's (too many for a narrower one)
            raise LipError(f"--like {req.like} masks another net ({other}: {tuple(like.prune_round[other].shape)}, "
                           f"here {shapes[other]}): give a mask of this --net, or the --net it was found on")
    if resume:
        traj = Trajectory.resume(artifact.load(out), names)
        refuse_changed(out, "the search settings differ", traj.meta.get("search") or {}, req.identity())
        saved = [im.get("sha256") for im in traj.meta.get("images") or []]
        if saved and saved != [im["sha256"] for im in provenance["images"]]:
            searched = [str(im.get("name")) for im in traj.meta["images"]]
            if searched == [str(im["name"]) for im in provenance["images"]]:  # the same files, other pixels
                changed = [n for n, a, b in zip(searched, saved, provenance["images"]) if a != b["sha256"]]
                raise LipError(f"--resume {out.name}: {', '.join(changed)} changed since the search began (other "
                               "pixels); give the images it was searched on, or start a new search")
            raise LipError(f"--resume {out.name}: it was searched on other images ({', '.join(searched)}); rerun "
                           "the same command with --resume, or start a new search")
        if "operator" in traj.meta:  # e.g. --simulate --sigma 25 -> 50; as the artifact stores it (lists, not tuples)
            refuse_changed(out, "the degradation differs", traj.meta["operator"] or {},
                           json.loads(json.dumps(provenance["operator"])))
    else:
        written = 1 if req.method == "oes" else req.rounds  # OES learns one mask, at the target
        refuse_restart(out, lambda meta: meta.get("search") == req.identity(), written)
        traj = Trajectory.start(net, names, method=req.method, task=req.task, seed=req.seed,
                                search=req.identity(), oracle=req.imp.oracle, **provenance, **req.extra)

    channels = traj.granularity == "channel"  # every conv keeps a channel (masks.top_channels)
    what, floor = ("channels", len(traj.prune_round)) if channels else ("weights", None)
    if req.method == "oes":  # one round, at the target
        check_target(traj.ladder_total(), oes_target(req), what, floor, req.target_sparsity is not None)
    elif req.method != ladder.LAYERWISE:  # the methods that walk the ladder with --rate and --rounds
        if req.target_sparsity is not None:  # a target no ladder reaches: say so, not which rate would
            check_target(traj.ladder_total(), req.target_sparsity, what, floor, True)
        check_ladder(traj.ladder_total(), req.rate, req.rounds, what, floor)
    if req.channel_score == "bn":  # it reads the BatchNorm after each pruned conv: a net without one, refused now
        bn_after(shape, names)
    on_start()

    def save(t: Trajectory, recommended: int | None) -> None:
        artifact.save(out, t.to_artifact(recommended), slim)

    if req.method == "imp":
        recommended = imp.run(sources, traj, req.imp, req.fit, dev, req.seed, save, on_step, on_round,
                              req.channel_score)
        return traj.to_artifact(recommended)
    net.to(dev)
    targets = [p.target(net, seeds.generator(req.seed), dev) for p in sources]
    if req.method == "oes":
        _oes(req, net, names, traj, targets, on_step, on_round)
    else:
        ladder.run(req.method, net, traj, targets, req.rounds, req.rate, req.seed, like,
                   req.synflow_iters, on_round, lambda: save(traj, traj.done))
    final = traj.to_artifact(traj.done)
    artifact.save(out, final, slim)
    return final


def channel_score_for(method: str, granularity: str, channel_score: str | None) -> str | None:
    """Check that `method` exists at `granularity` and return the channel score a search records:
    None for element searches, `channel_score` (default l1) for channel IMP, the method itself for
    the ladder's channel scores and channel OES."""
    if granularity not in GRANULARITIES:
        raise LipError(f"unknown --granularity {granularity!r}: use {' or '.join(GRANULARITIES)}")
    choices = methods(granularity)
    if granularity == "channel" and method in TRAINED_ONLY:
        raise LipError(f"--method {method} ranks filters by what training made of them (before it every BatchNorm "
                       f"scale is 1 and the layer order would decide): use it in IMP, --method imp --channel-score "
                       f"{method}")
    if method not in choices:
        at = f" at --granularity {granularity}" if granularity != "element" else ""
        elsewhere = [g for g in GRANULARITIES if g != granularity and method in methods(g)]
        if elsewhere:  # a method of the other granularity: say so rather than call it unknown
            raise LipError(f"--method {method} ranks {'filters' if elsewhere[0] == 'channel' else 'weights'}: "
                           f"add --granularity {elsewhere[0]} (at {granularity}: {', '.join(choices)})")
        raise LipError(f"unknown --method {method!r}{at}: use one of {', '.join(choices)}")
    if granularity != "channel":
        if channel_score is not None:
            raise LipError("--channel-score ranks filters: use it with --granularity channel")
        return None
    if method != "imp":
        if channel_score not in (None, method):
            raise LipError(f"--channel-score is for --method imp; --method {method} at --granularity "
                           f"channel ranks channels by {method} itself")
        return method
    score = channel_score or "l1"
    CHANNEL_SCORES.get(score)  # an unknown name: one line listing the choices
    return score


def oes_target(req: SearchRequest) -> float:
    """The sparsity OES learns its one mask at: --target-sparsity, else the ladder's after --rounds at --rate."""
    return req.target_sparsity if req.target_sparsity is not None else 1 - (1 - req.rate) ** req.rounds


def _oes(req: SearchRequest, net: torch.nn.Module, names: list[str], traj: Trajectory, targets: list,
         on_step: Callable[[Step], None], on_round: Callable[[dict[str, Any]], None]) -> None:
    """Learn the Bernoulli mask, then keep exactly the target count (one round)."""
    rho = 1 - oes_target(req)
    gated = ChannelGumbelMasked if traj.granularity == "channel" else GumbelMasked
    model = gated(net, names, req.oes_tau, req.seed)
    began = time.perf_counter()
    result = fit(model, targets, req.fit, penalty=lambda: req.oes_lambda * model.kl(rho), callbacks=[on_step])
    alive = traj.masks(0)
    record_round(traj.prune_round, alive, model.keep(alive, rho), 1)
    traj.record(0, 0.0)
    on_round(traj.record(1, time.perf_counter() - began, loss=result.tail_loss))
