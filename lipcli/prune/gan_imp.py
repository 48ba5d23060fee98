"""GAN IMP (the paper's Section 5 protocol, anchors-spec b.7) on a pretrained generator artifact.

Round t (t = 0, 1, ...): rewind G and D to the pretrained weights, apply G's mask t, fine-tune both
with WGAN-GP on a seeded fraction (`ratio`, the paper: 0.4) of the data for `epochs` epochs, then
prune `rate` (0.2) of G's surviving conv weights by global magnitude of the fine-tuned weights
(exact count round(N * 0.8^(t+1)), ties by position). The linear first layer and D stay dense.
Random baseline ("random"): the same ladder with U(0,1) scores; it needs no fine-tuning to choose,
so it skips it unless `fine_tune_random` is set (the round record then has no losses).

The output is an ordinary lip artifact: theta0 = the pretrained bundle (the rewind point),
prune_round = G's conv masks, one record per round, and finetuned[t+1] = G's weights as round t's
fine-tuning left them with the new mask t+1 applied (the published code's Iter_t_sparse_trained.pth,
the net the paper evaluates; generators.py chooses between them and the rewound ticket). It is
rewritten after every round, so an interrupted search resumes from its last finished round with
identical masks (all randomness of round t is derived from (seed, t)). The rounds run in IMP's session
loop (imp.sessions), without a session on the last mask: what is evaluated there, finetuned[rounds], is
the previous session's G.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import artifact, files, generators, nets, seeds
from ..errors import LipError
from ..gan import GanConfig, train
from ..masks import Masks, apply_masks, check_ladder, top_global
from .imp import Select, Session, sessions
from .scores import SCORES, ScoreContext
from . import search
from .search import Trajectory

METHODS = {"imp": "magnitude", "random": "random"}  # method -> the score that ranks G's weights
G_PREFIX = "g."  # the generator's parameters in a "gan" bundle (nets/dcgan.py): what CS evaluates


@dataclass
class GanImpSettings:
    rounds: int = 6
    rate: float = 0.2
    epochs: int = 2  # fine-tuning epochs per round (the paper: 30 on 40% of CelebA-HQ)
    ratio: float = 0.4
    method: str = "imp"
    batch: int = 32
    lr: float = 2e-4
    seed: int = 0
    fine_tune_random: bool = False

    def __post_init__(self) -> None:
        """Refuse a bad value when the settings are made, before a generator or data are read."""
        if self.method not in METHODS:
            raise LipError(f"unknown GAN pruning method {self.method!r}: use imp or random")
        if not 0 < self.rate < 1:
            raise LipError(f"--rate {self.rate} must be in (0, 1)")
        if not 0 < self.ratio <= 1:
            raise LipError(f"--ratio {self.ratio} must be in (0, 1]")
        if self.fine_tune_random and self.method != "random":
            raise LipError(f"--fine-tune-random is for --method random; --method {self.method} fine-tunes every round")


def _subset(data: torch.Tensor, ratio: float, seed: int, round_: int) -> torch.Tensor:
    gen = seeds.generator(seed * 100_003 + round_)
    n = max(1, int(round(ratio * data.shape[0])))
    return data[torch.randperm(data.shape[0], generator=gen)[:n]]


def start(generator_path: Path, s: GanImpSettings, command: str | None = None,
          spec_file: Path | None = None) -> Trajectory:
    """A new search on a pretrained generator: a lip artifact, or an external state dict with `spec_file`."""
    art = generators.read(generator_path, spec_file)
    if art.spec.get("kind") != "gan":
        raise LipError(f"{generator_path}: GAN pruning fine-tunes the generator with its critic: give a "
                       "generator of kind 'gan' (as lip train-generator writes; an external one: a gan spec "
                       "and g.* and d.* weights)")
    if art.prune_round:
        raise LipError(f"{generator_path}: is already a pruning trajectory; give the dense generator, "
                       "or continue this one with --resume")
    net = nets.build(art.spec)
    net.load_state_dict(art.theta0, strict=True)
    names = nets.conv_weight_names(net)  # the bundle's forward is G's: exactly G's conv weights
    external = {"generator_external": art.meta["external"]} if "external" in art.meta else {}
    return Trajectory.start(net, names, method=f"gan-{s.method}", generator=str(generator_path),
                            generator_command=art.meta.get("command"), **external, rate=s.rate, scope="g-conv",
                            settings={k: v for k, v in vars(s).items()}, command=command)


def resumed(out: Path, s: GanImpSettings) -> Trajectory:
    """The search stored in `out`, to continue with the same settings only."""
    art = artifact.load(out)
    traj = Trajectory.resume(art, nets.conv_weight_names(nets.skeleton(art.spec)))  # the order `start` listed them in
    saved = traj.meta.get("settings")
    if saved is None or not str(traj.meta.get("method", "")).startswith("gan-"):
        raise LipError(f"--resume {out.name}: not a GAN pruning search (lip prune --prior gan writes those)")
    saved = {"fine_tune_random" if k == "train_random" else k: v for k, v in saved.items()}  # its name until 2026-12-08
    search.refuse_changed(out, "the search settings differ", saved, vars(s))
    return traj


def same_generator(traj: Trajectory, path: Path) -> bool:
    """Whether `path` holds the generator the search prunes, wherever the file is now: the same weights (an
    external state dict: the same bytes, whose hash the search recorded)."""
    external = traj.meta.get("generator_external")
    if isinstance(external, dict):
        return files.sha256_of(path) == external.get("sha256")
    given = generators.read(path).theta0
    return all(n in given and torch.equal(given[n].float(), w) for n, w in traj.theta0.items())


def refuse_restart(out: Path, s: GanImpSettings) -> None:
    """A stopped search of these settings at `out` is continued with --resume (search.refuse_restart)."""
    search.refuse_restart(out, lambda meta: meta.get("settings") == vars(s), s.rounds, trains_last=False)


def run(traj: Trajectory, data: torch.Tensor, s: GanImpSettings, out: Path,
        on_round: Callable[[dict[str, Any]], None] = lambda rec: None,
        on_epoch: Callable[[Any], None] = lambda st: None) -> artifact.Artifact:
    """Run (or continue) the search in IMP's session loop (imp.sessions), writing `out` after every round."""
    check_ladder(traj.ladder_total(), s.rate, s.rounds, "weights")  # as the DIP search: never an emptied G
    names = list(traj.prune_round)
    score = SCORES.get(METHODS[s.method])
    trained = s.method == "imp" or s.fine_tune_random
    bundle = nets.build(traj.spec)  # G and D: the session trains both, G's convs are masked

    def fine_tune(session: Session) -> tuple[torch.nn.Module, dict[str, Any]]:
        bundle.load_state_dict(traj.theta0, strict=True)  # rewind to the pretrained weights
        if not trained:
            return bundle, {}
        cfg = GanConfig(epochs=s.epochs, batch=s.batch, lr=s.lr, seed=s.seed * 1_000 + session.index)
        hist = train(bundle, _subset(data, s.ratio, s.seed, session.index), cfg, masks=session.alive,
                     on_epoch=on_epoch)
        return bundle, {"d_loss": round(hist[-1].d_loss, 6), "g_loss": round(hist[-1].g_loss, 6),
                        "wasserstein": round(hist[-1].wasserstein, 6)}

    def select_for(round_: int) -> Select:
        gen = seeds.generator(s.seed * 100_003 + round_)
        return lambda net, alive, n_keep: top_global(score.fn(net, names, ScoreContext(gen=gen)), alive, n_keep)

    def keep_finetuned(net: torch.nn.Module, kept: Masks, round_: int) -> None:
        if trained:  # what the paper evaluates: the fine-tuned G under the mask it chose
            apply_masks(net, kept)
            traj.finetuned[round_] = {n: p.detach().float().cpu().clone() for n, p in net.named_parameters()
                                      if n.startswith(G_PREFIX)}

    def save(t: Trajectory, recommended: int | None) -> None:  # no loss to recommend by: the last round
        artifact.save(out, t.to_artifact(None))

    sessions(traj, s.rounds, s.rate, fine_tune, select_for, save, on_round, train_last=False,
             on_pruned=keep_finetuned)
    return traj.to_artifact(None)
