"""Classification transfer (LIP paper Sec. 4, Observation 2; Figs. 6 and 7): the DIP hourglass as a
digit classifier, trained dense, under a lottery ticket of another task, or pruned by IMP on the
classification loss (a classification ticket, which `lip restore --mask` then fits on images).

The classifier is the DIP net of a spec with a linear layer to 10 classes on top (HourglassClassifier:
the published script's flattened head conv, or the paper's wording, the head conv replaced by pooling).
Its input is the image, not a 32-channel code, so the two convs reading the input are rebuilt for gray
digits from the seed and kept dense, as in the published script. Every other parameter is the DIP's
theta0 under the same name, so a denoising mask applies to those shared convs unchanged, and a
classification ticket is an ordinary artifact of the DIP net (its input convs unmasked).

Data: the 5,000 MNIST digits bundled with lip (500 per class, the file sorted by class). The split is
gan.py's interleaved order (stratified at every prefix) over a seeded shuffle within each class
(SPLIT_SEED, the same for every run), not the GAN's fixed held-back rows: --train and --test choose any
sizes, and the recorded results used this split. Digits are zero-padded to the net's smallest input.
Training: SGD with the published script's lr 0.01, momentum 0.9 and weight decay 2e-4; by default one
epoch at batch 32, a CPU budget (the script: batch 256, 182 epochs per round, decays at 91 and 136). The
held-out accuracy is reported, never used to steer: IMP ranks trained magnitudes and its stop rule reads
the training loss.

A classifier's training loop is not a DIP fit (batches of labelled images, not one observation), so,
like gan.py, this module is a named exception to fit.py.
"""
from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import artifact, nets, seeds, sharing
from .errors import LipError
from .gan import class_ranks, interleaved, load_mnist
from .masks import Masks, MaskedParams, check_ladder, kept_count, mask_sparsity, total_count
from .nets import SkipNet, Spec
from .prune.imp import Session, next_mask, sessions
from .prune.scores import random_mask
from .prune.search import Trajectory, prunable_names

CLASSES = 10
SPLIT_SEED = 0  # the held-out digits are the same whatever --seed says
MOMENTUM, WEIGHT_DECAY = 0.9, 2e-4  # the published classification script's SGD
PRUNE_RATE = 0.36  # per round, as lip prune's fast preset: 4 rounds leave ~17% of the weights
RECALIBRATE = 1024  # training digits that BatchNorm's statistics are recomputed on before scoring
HEADS = ("flatten", "pool")
BUNDLED = 5000  # digits in lipcli/data/mnist_5k.csv.gz


@dataclass
class TrainConfig:
    epochs: int = 1
    batch: int = 32
    lr: float = 0.01
    train: int = 4500  # digits trained on ...
    test: int = 500  # ... and held out (disjoint, both stratified)
    seed: int = 0  # the fresh input convs and linear layer, and the batch order
    head: str = "flatten"  # or "pool" (HourglassClassifier)

    def __post_init__(self) -> None:
        """Refuse bad settings before any work (one line each)."""
        if self.head not in HEADS:
            raise LipError(f"unknown --head {self.head!r}: use {' or '.join(HEADS)}")
        if self.train < 1 or self.test < 1 or self.train + self.test > BUNDLED:
            raise LipError(f"--train {self.train} and --test {self.test}: give at least 1 each, at most "
                           f"{BUNDLED:,} digits together (the bundled MNIST digits)")
        if self.epochs < 1 or self.batch < 1:
            raise LipError("--epochs and --batch must be at least 1")


@dataclass
class Digits:
    x_train: torch.Tensor  # (N, 1, S, S) in [0, 1], zero-padded to the net's side S
    y_train: torch.Tensor  # (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor


@functools.lru_cache(maxsize=2)
def _all_digits(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled file parsed once per process (1-2 s of text parsing; splits index copies of it)."""
    return load_mnist("all", size)


def digits(n_train: int, n_test: int, size: int) -> Digits:
    """A stratified split of the bundled digits: each class shuffled (SPLIT_SEED), the classes
    interleaved, the first `n_test` held out and the next `n_train` trained on (disjoint while
    n_train + n_test <= BUNDLED, which TrainConfig checks)."""
    x, y = _all_digits(size)
    order = interleaved(y, class_ranks(y, seeds.generator(SPLIT_SEED)))
    test, train = order[:n_test], order[n_test:n_test + n_train]
    return Digits(x[train], y[train], x[test], y[test])


# ------------------------------------------------------------------ the net

class HourglassClassifier(SkipNet):
    """The DIP hourglass with a linear classifier on top. `head` "flatten" (the published script's):
    the DIP's head conv is kept and its (out_channels, S, S) output flattened into the linear layer;
    "pool" (the paper's words, "we replace the last convolutional layer of DIP models with the linear
    layer"): the head conv is replaced by global average pooling of its input."""

    def __init__(self, spec: Spec, classes: int, head: str, side: int) -> None:
        super().__init__(spec)
        self.pooled = head == "pool"
        if self.pooled:
            del self.head
        width = spec["up"][0] if self.pooled else spec["out_channels"] * side * side
        self.fc = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self._level(0, x)  # (B, up[0], S, S): what the DIP's head conv reads
        if self.pooled:
            return self.fc(features.mean(dim=(2, 3)))  # (B, classes) logits
        return self.fc(self.head(features).flatten(1))  # (B, out_channels * S * S) -> (B, classes)


def side(spec: Spec) -> int:
    """The side digits are zero-padded to: the smallest the net takes (64 for the 5-level DIP)."""
    with torch.device("meta"):
        return nets.padded_size(nets.build(spec), 28, 28)[0]


def classifier(spec: Spec, theta0: dict[str, torch.Tensor], cfg: TrainConfig) -> HourglassClassifier:
    """The classifier at the DIP's initial weights: every parameter it shares with the DIP net of `spec`
    (same name and shape) is theta0's; the input convs, rebuilt for gray digits, and the linear layer
    are a draw from the seed."""
    if spec.get("kind") != "skip":
        raise LipError(f"classification uses the DIP skip hourglass, not a {spec.get('kind')!r} net")
    gray = {**spec, "in_channels": 1}
    with nets.seeded(cfg.seed):
        net = HourglassClassifier(gray, CLASSES, cfg.head, side(gray))
    own = dict(net.named_parameters())
    net.load_state_dict({n: t for n, t in theta0.items() if n in own and own[n].shape == t.shape}, strict=False)
    return net


def masked_names(net: HourglassClassifier) -> list[str]:
    """What a mask can cover in the classifier: its conv weights but the input convs."""
    return prunable_names(net, "conv", keep_input_dense=True)


def shared_masks(masks: Masks, net: HourglassClassifier) -> tuple[Masks, list[str]]:
    """The part of a DIP mask that applies to the classifier, and the masked layers it has no use for
    (the input convs, and the head conv under the pooling head)."""
    own = dict(net.named_parameters())
    names = set(masked_names(net))
    kept = {n: m for n, m in masks.items() if n in names and own[n].shape == m.shape}
    return kept, [n for n in masks if n not in kept]


# ------------------------------------------------------------------ training

@dataclass
class Trained:
    loss: float  # mean training cross-entropy over the last epoch
    accuracy: float  # on the held-out digits
    test_loss: float
    seconds: float


@torch.no_grad()
def recalibrate(net: nn.Module, x: torch.Tensor, batch: int, dev: torch.device) -> None:
    """Recompute BatchNorm's running statistics as plain averages over training digits: after tens of
    steps the default moving averages still lag the weights (dip-w16, 62 steps: 72% held-out accuracy
    on the moving averages, 88% recomputed)."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average
    net.train()
    for i in range(0, len(x), batch):
        net(x[i:i + batch].to(dev))
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum


@torch.no_grad()
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, dev: torch.device) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on labelled digits, BatchNorm on its running statistics."""
    net.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(y), batch):
        logits, t = net(x[i:i + batch].to(dev)), y[i:i + batch].to(dev)
        loss += float(F.cross_entropy(logits, t, reduction="sum"))
        correct += int((logits.argmax(dim=1) == t).sum())
    return correct / len(y), loss / len(y)


def train(net: nn.Module, data: Digits, cfg: TrainConfig, masks: Masks | None, dev: torch.device,
          on_step: Callable[[], None] = lambda: None) -> Trained:
    """`cfg.epochs` of SGD on the training digits under `masks`, then the held-out score. Pruned weights
    stay exactly zero: their gradients are zeroed before every step, so momentum and weight decay
    (both proportional to what is already there) leave them at 0."""
    began = time.perf_counter()
    net.to(dev).train()
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    masked = MaskedParams(net, masks)
    masked.zero_weights()
    gen = seeds.generator(cfg.seed)
    n = len(data.y_train)
    batch = min(cfg.batch, n)
    losses: list[float] = []
    share = sharing.Share(dev.type == "cpu")  # other lip processes running here get their cores
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        losses = []
        for i in range(n // batch):  # full batches only (BatchNorm statistics), as the published script
            idx = order[i * batch:(i + 1) * batch]
            loss = F.cross_entropy(net(data.x_train[idx].to(dev)), data.y_train[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            masked.zero_grads()
            opt.step()
            losses.append(float(loss.detach()))
            on_step()
            share.poll(len(losses))
    recalibrate(net, data.x_train[:RECALIBRATE], batch, dev)
    accuracy, test_loss = evaluate(net, data.x_test, data.y_test, batch, dev)
    return Trained(sum(losses) / len(losses), accuracy, test_loss, time.perf_counter() - began)


def steps(cfg: TrainConfig) -> int:
    """Optimiser steps of one training run (for progress bars)."""
    return cfg.epochs * (cfg.train // min(cfg.batch, cfg.train))


def _setting(spec: Spec, cfg: TrainConfig) -> tuple[Digits, dict[str, Any]]:
    """The digits at the net's side and what a report or an artifact records about the training."""
    size = side(spec)
    return digits(cfg.train, cfg.test, size), {
        **asdict(cfg), "data": "mnist", "side": size, "split": f"stratified, seed {SPLIT_SEED}",
        "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY}


# ------------------------------------------------------------------ what the command runs

def classify(spec: Spec, theta0: dict[str, torch.Tensor] | None, masks: Masks | None, cfg: TrainConfig,
             dev: torch.device, random: bool = False, on_start: Callable[[], None] = lambda: None,
             on_step: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Train the classifier of a DIP net (theta0: a ticket's, or None for the seeded draw) under the
    part of `masks` it shares, or (`random`) a random mask of the same size over the same convs; the
    report of what was trained and its held-out accuracy. `on_start` runs once everything is checked."""
    if theta0 is None:
        theta0 = artifact.seeded_theta0(spec, cfg.seed)
    net = classifier(spec, theta0, cfg)
    data, setting = _setting(spec, cfg)
    shared, unused = shared_masks(masks or {}, net)
    if random:
        shared = random_mask(net, shared, kept_count(shared), cfg.seed)
    on_start()
    result = train(net, data, cfg, shared, dev, on_step)
    return {"type": "classify", **setting, "accuracy": result.accuracy, "test_loss": result.test_loss,
            "train_loss": result.loss, "seconds": round(result.seconds, 3),
            "params": nets.count_params(net), "masked_params": total_count(shared),
            "kept": kept_count(shared), "sparsity": mask_sparsity(shared), "random_mask": random,
            "mask_layers_unused": unused}


def prune(spec: Spec, rounds: int, rate: float, cfg: TrainConfig, dev: torch.device, out: Path,
          on_start: Callable[[], None] = lambda: None,
          on_round: Callable[[dict[str, Any]], None] = lambda rec: None,
          on_step: Callable[[], None] = lambda: None, **meta: Any) -> artifact.Artifact:
    """Classification IMP: session t trains the classifier from theta0 under mask t, then `rate` of the
    surviving shared conv weights with the smallest trained magnitude are pruned (imp.sessions). The
    artifact (the DIP net's spec and theta0, masks over the shared convs) is rewritten after every
    session; each round records its training loss and held-out accuracy. `on_start` runs once
    everything is checked."""
    if not 0 < rate < 1:
        raise LipError(f"--rate {rate} must be in (0, 1)")
    dip = nets.build(spec, cfg.seed)
    theta0 = {n: p.detach().float().clone() for n, p in dip.named_parameters()}
    data, setting = _setting(spec, cfg)
    traj = Trajectory.start(dip, masked_names(classifier(spec, theta0, cfg)), method="imp", task="classify",
                            seed=cfg.seed, search={"rounds": rounds, "rate": rate, "scope": "conv",
                                                   "keep_input_dense": True, **setting}, **meta)
    check_ladder(total_count(traj.prune_round), rate, rounds, "weights")

    def session(s: Session) -> tuple[nn.Module, dict[str, Any]]:
        net = classifier(traj.spec, traj.theta0, cfg)  # rewound: the same draw for the fresh parts too
        result = train(net, data, cfg, s.alive, dev, on_step)
        return net, {"loss": result.loss, "accuracy": result.accuracy, "test_loss": result.test_loss}

    def save(t: Trajectory, recommended: int | None) -> None:
        artifact.save(out, t.to_artifact(recommended))

    on_start()
    recommended = sessions(traj, rounds, rate, session, lambda k: next_mask, save, on_round)
    return traj.to_artifact(recommended)
