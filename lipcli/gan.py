"""Train (or fine-tune) the GAN prior: data loading, WGAN-GP loop, sample grids, generator artifacts.

Recipe (anchors-spec b.7, the paper's GAN fine-tuning): WGAN-GP with Adam lr 2e-4, betas (0, 0.99),
n_critic 1, gradient-penalty weight 10 (target norm 1), drift 1e-3 * E[D(x)^2]. Images are in
[0, 1] (the generator ends in a sigmoid). Data: the bundled 5,000 MNIST digits (500 per class, the
file sorted by class; the last 50 rows of each class are held back as test digits and never trained
on, the other 4,500 train), padded 28 -> 32, or any folder of images (center-cropped to a square and
resized to the generator's size).

A generator artifact is an ordinary lip artifact (artifact.py) whose spec is a "gan" bundle
(nets/dcgan.py): `theta0/` holds the trained G and D weights, `prune_round/` is empty for a dense
generator (GAN IMP fills it for G's conv weights, and `finetuned/` with each round's fine-tuned G),
meta method="gan-train" records the command. generators.py reads generators, lip's or external ones.
"""
from __future__ import annotations

import gzip
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import artifact, nets, seeds, sharing
from .errors import LipError
from .masks import Masks, MaskedParams
from .optim import Adam
from .resume import Keeper, fingerprint

DATA_DIR = Path(__file__).parent / "data"
MNIST = DATA_DIR / "mnist_5k.csv.gz"
GENERATOR = DATA_DIR / "generator-mnist.safetensors"
HELD_PER_CLASS = 50  # the last 50 rows of each class are the held-back test digits (500 of 5,000)
HELD_OUT = f"mnist: the last {HELD_PER_CLASS} rows of each class (mnist:K = digit K % 10)"  # artifact meta
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def class_ranks(labels: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Each digit's position within its class: its order in the file, or a seeded shuffle (`gen`)."""
    rank = torch.empty_like(labels)
    for c in labels.unique().tolist():
        idx = torch.nonzero(labels == c).flatten()
        rank[idx if gen is None else idx[torch.randperm(len(idx), generator=gen)]] = torch.arange(len(idx))
    return rank


def interleaved(labels: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
    """Indices ordered rank 0 of every class (0, 1, ..., 9), then rank 1 of every class, ...: every
    prefix and every suffix is stratified. The one split order of lip's MNIST (GAN, cs, classify)."""
    return torch.argsort(rank * (int(labels.max()) + 1) + labels, stable=True)


def load_mnist(split: str = "train", size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N,1,size,size) in [0,1], labels (N,)) of the bundled MNIST digits, zero-padded.

    "all" is the file's order (sorted by class). "test" is the last HELD_PER_CLASS rows of each class,
    interleaved: test digit K (`mnist:K`) is the digit K % 10, the (K // 10)-th of its class's held-back rows, so
    mnist:0 .. mnist:9 are the digits 0 .. 9. "train" is every other row, interleaved the same way."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be train, test or all, not {split!r}")
    if not MNIST.is_file():
        raise LipError(f"the bundled MNIST digits are missing ({MNIST}); reinstall lip")
    if size < 28:
        raise LipError(f"MNIST digits are 28x28; a generator of size {size} cannot hold them")
    with gzip.open(MNIST, "rt") as fh:
        rows = torch.from_numpy(np.loadtxt(fh, delimiter=",", dtype=np.float32))
    labels = rows[:, 784].long()
    if split != "all":
        rank = class_ranks(labels)
        held = rank >= torch.bincount(labels)[labels] - HELD_PER_CLASS  # the last rows of each class
        order = interleaved(labels, rank)
        rows = rows[order[held[order] == (split == "test")]]
    x = (rows[:, :784] / 255.0).view(-1, 1, 28, 28)
    lo = (size - 28) // 2
    x = F.pad(x, (lo, size - 28 - lo, lo, size - 28 - lo))
    return x.contiguous(), rows[:, 784].long()


def load_folder(folder: Path, size: int, channels: int) -> torch.Tensor:
    """Every image in a folder, center-cropped square and resized (antialiased) to size x size."""
    from . import images as images_io

    if not folder.is_dir():
        what = "is a file, not a folder" if folder.is_file() else "no such folder"
        raise LipError(f"--data {folder}: {what} (give a folder of images, or 'mnist')")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise LipError(f"--data {folder}: no images found (.png, .jpg, .bmp, .tif)")
    out = []
    for p in paths:
        img = images_io.to_tensor(images_io.load_image(p, max_pixels=64_000_000))
        img = images_io.as_channels(img, channels)
        h, w = img.shape[-2:]
        s = min(h, w)
        img = img[..., (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(F.interpolate(img, size=(size, size), mode="bilinear", antialias=True,
                                 align_corners=False).clamp(0, 1))
    return torch.cat(out)


def check_data_name(data: str, typed: bool) -> str | None:
    """`--data mnist` in a folder that holds a folder ./mnist: refused when typed (which did the user mean?); when it
    is the default, the note to say (None: nothing is ambiguous)."""
    if data != "mnist" or not Path("mnist").is_dir():
        return None
    if typed:
        raise LipError("--data mnist names the bundled digits, and ./mnist is a folder here: give --data ./mnist for "
                       "the folder, or leave --data out for the bundled digits")
    return "note: the bundled MNIST digits (--data's default), not the folder ./mnist here (--data ./mnist reads it)"


def load_data(data: str, spec: dict[str, Any]) -> torch.Tensor:
    """Training images for a gan spec: 'mnist' (the bundled train split) or a folder."""
    size, channels = int(spec["g"]["size"]), int(spec["g"]["out_channels"])
    if data == "mnist":
        if channels != 1:
            raise LipError("MNIST is gray, and this generator makes colour images: give --data a folder of colour "
                           "images (or use a gray generator: train-generator --channels 1)")
        return load_mnist("train", size)[0]
    return load_folder(Path(data), size, channels)


@dataclass
class GanConfig:
    epochs: int = 35
    batch: int = 64
    lr: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.99
    gp_weight: float = 10.0
    drift: float = 1e-3
    n_critic: int = 1
    seed: int = 0


@dataclass
class EpochStats:
    epoch: int
    d_loss: float
    g_loss: float
    wasserstein: float  # mean D(real) - D(fake): the critic's distance estimate
    seconds: float

    def record(self) -> dict[str, int | float]:
        """The epoch as a generator artifact's history holds it (losses to 5 decimals; no timing, which
        would make reruns differ)."""
        return {"epoch": self.epoch, "d_loss": round(self.d_loss, 5), "g_loss": round(self.g_loss, 5),
                "wasserstein": round(self.wasserstein, 5)}


def gradient_penalty(d: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     gen: torch.Generator) -> torch.Tensor:
    """E[(||grad D(x_hat)|| - 1)^2] on random interpolates (Gulrajani et al. 2017)."""
    eps = torch.rand((real.shape[0], 1, 1, 1), generator=gen).to(real)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def train(gan: nn.Module, data: torch.Tensor, cfg: GanConfig, *, masks: Masks | None = None,
          on_epoch: Callable[[list[EpochStats]], None] = lambda history: None,
          on_step: Callable[[int], None] = lambda i: None, keeper: Keeper | None = None) -> list[EpochStats]:
    """WGAN-GP training of a "gan" bundle in place; returns every epoch's stats (`on_epoch` sees them after
    each epoch). `masks` (names in the bundle, e.g. g.head.weight) keep pruned weights exactly zero: their
    gradients are zeroed before every Adam step. `keeper` saves the training's whole state between batches
    and continues a saved run of the same training to exactly the uninterrupted run's weights."""
    if cfg.epochs < 1 or cfg.batch < 1 or cfg.n_critic < 1:
        raise LipError("epochs, batch and n-critic must be >= 1")
    g, d = gan.g, gan.d
    dev = next(gan.parameters()).device
    gen = seeds.generator(cfg.seed)
    betas = (cfg.beta1, cfg.beta2)
    opt_g = Adam(g.parameters(), lr=cfg.lr, betas=betas, fused=False)
    opt_d = Adam(d.parameters(), lr=cfg.lr, betas=betas, fused=False)
    masked = MaskedParams(gan, masks)
    masked.zero_weights()
    gan.train()
    n = data.shape[0]
    batch = min(cfg.batch, n)
    per_epoch = n // batch  # the last partial batch is dropped (stable GP statistics)
    history: list[EpochStats] = []
    epoch, order, sums, count, seconds = 1, None, [0.0, 0.0, 0.0], 0, 0.0  # count: batches done this epoch
    key = _identity(cfg, gan, data, masks) if keeper is not None else None
    saved = keeper.load(key, cfg.epochs * per_epoch) if keeper is not None else None
    if saved is not None:
        gan.load_state_dict(saved["gan"])
        opt_g.load_state_dict(saved["opt_g"])
        opt_d.load_state_dict(saved["opt_d"])
        gen.set_state(saved["gen"])
        history = [EpochStats(**h) for h in saved["history"]]
        epoch, order, sums, count, seconds = (saved[k] for k in ("epoch", "order", "sums", "count", "seconds"))

    def state() -> dict[str, Any]:
        return {"gan": gan.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                "gen": gen.get_state(), "history": [asdict(h) for h in history], "epoch": epoch, "order": order,
                "sums": sums, "count": count, "seconds": seconds + time.perf_counter() - start,
                "it": (epoch - 1) * per_epoch + count, "ended": False}

    share = sharing.Share(dev.type == "cpu")  # other lip processes running here get their cores
    with keeper.holding() if keeper is not None else nullcontext():
        while epoch <= cfg.epochs:
            start = time.perf_counter()
            if order is None:
                order = torch.randperm(n, generator=gen)
            while count < per_epoch:
                if keeper is not None and keeper.due():  # before a batch: the epochs before it are written
                    keeper.save(key, state())
                real = data[order[count * batch:(count + 1) * batch]].to(dev)
                d_loss, g_loss, distance = _step(g, d, opt_g, opt_d, masked, real, cfg, gen)
                sums = [a + float(b) for a, b in zip(sums, (d_loss, g_loss, distance))]
                count += 1
                step = (epoch - 1) * per_epoch + count
                on_step(step)
                share.poll(step)
            stats = EpochStats(epoch, *(x / max(count, 1) for x in sums), seconds=seconds + time.perf_counter() - start)
            history.append(stats)
            epoch, order, sums, count, seconds = epoch + 1, None, [0.0, 0.0, 0.0], 0, 0.0
            on_epoch(history)
    return history


def _step(g: nn.Module, d: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
          masked: MaskedParams, real: torch.Tensor, cfg: GanConfig, gen: torch.Generator
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One WGAN-GP iteration on a batch: n_critic critic steps, then one generator step. The last critic
    step's fakes (kept with their graph) feed the G step, which saves one generator forward pass (the G step
    only needs fresh D). Returns the losses and the critic's distance estimate (detached)."""
    batch, dev = real.shape[0], real.device
    for k in range(cfg.n_critic):
        z = torch.randn((batch, g.nz), generator=gen).to(dev)
        fake_g = g(z) if k == cfg.n_critic - 1 else None
        fake = fake_g.detach() if fake_g is not None else g(z).detach()
        d_real, d_fake = d(real), d(fake)
        gp = gradient_penalty(d, real, fake, gen)
        d_loss = d_fake.mean() - d_real.mean() + cfg.gp_weight * gp + cfg.drift * d_real.pow(2).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
    for p in d.parameters():  # generator step, critic frozen
        p.requires_grad_(False)
    g_loss = -d(fake_g).mean()
    opt_g.zero_grad()
    g_loss.backward()
    for p in d.parameters():
        p.requires_grad_(True)
    masked.zero_grads()
    opt_g.step()
    return d_loss.detach(), g_loss.detach(), (d_real - d_fake).mean().detach()


def _identity(cfg: GanConfig, gan: nn.Module, data: torch.Tensor, masks: Masks | None) -> str:
    """Which training this is, for resuming it: every setting but the epoch count (a run may be continued
    further), the initial weights, the data and the masks."""
    settings = {k: v for k, v in asdict(cfg).items() if k != "epochs"}
    return fingerprint(settings, gan, [data, *(masks[k] for k in sorted(masks or {}))])


def new_gan(spec: dict[str, Any], seed: int) -> nn.Module:
    return nets.build(spec, seed)


def trained_artifact(gan: nn.Module, cfg: GanConfig, *, command: str, data: str, train_images: int,
                     epochs_done: int, history: list[dict[str, Any]]) -> artifact.Artifact:
    """What `lip train-generator` writes after every epoch: a dense generator artifact (the bundle's weights
    as theta0, no masks) recording how it was made: the command that reproduces it, the data (and, for
    MNIST, which digits were held back), the training config, the epochs done and their losses so far."""
    theta = {n: p.detach().float().cpu().clone() for n, p in gan.named_parameters()}
    meta = artifact.new_meta(gan.spec, method="gan-train", command=command, data=data, train_images=train_images,
                             held_out=HELD_OUT if data == "mnist" else None, train_config=asdict(cfg),
                             epochs_done=epochs_done, history=history, output_range=[0, 1], latent="N(0, I_nz)",
                             created=artifact.created())
    return artifact.Artifact(meta, theta, {})


def sample_grid(g: nn.Module, path: Path | str, rows: int = 8, cols: int = 8, seed: int = 0,
                scale: int = 2) -> Path:
    """Save a rows x cols grid of G(z), z ~ N(0, I) seeded, as a PNG (upscaled for viewing)."""

    gen = seeds.generator(seed)
    with torch.no_grad():
        z = torch.randn((rows * cols, g.nz), generator=gen)  # drawn on the CPU: one grid on every device
        x = g(z.to(next(g.parameters()).device)).cpu()
    return save_grid(x, path, cols, scale)


def save_grid(x: torch.Tensor, path: Path | str, cols: int = 8, scale: int = 2, pad: int = 2) -> Path:
    """Tile a batch (N,C,H,W) in [0,1] into one PNG with a gray border between tiles."""
    from . import images as images_io

    n, c, h, w = x.shape
    rows = math.ceil(n / cols)
    canvas = torch.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), 0.5)
    for i in range(n):
        r, q = divmod(i, cols)
        canvas[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = x[i]
    if scale > 1:
        canvas = F.interpolate(canvas[None], scale_factor=scale, mode="nearest")[0]
    images_io.save_image(path, canvas.clamp(0, 1).numpy())
    return Path(path)
