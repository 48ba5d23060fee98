"""Compressive sensing and inpainting with a generator prior: optimise the latent z of G.

Solvers (all Adam on z, lr 0.01, 1500 iterations by default, anchors-spec b.7):
- "ls":  plain least squares, minimise mean_i (a_i G(z) - y_i)^2 (Bora et al. 2017). With a pixel
         mask operator this is GAN inpainting with a correct squared-error loss (the published
         code's loss is effectively quartic, anchors-spec b.7).
- "mom": Median-of-Means min-max of Jalal et al. (NeurIPS 2020): per iteration the rows are randomly
         permuted and split into batches of `batch_size`; the objective is the mean of
         l_f - l_g over the median batch (l = per-row squared error at z_f, z_g); z_f descends
         and z_g ascends, each with its own Adam.
Restarts: each restart draws z ~ N(0, I) (seeded); the best restart is the one with the lowest
MOM loss of G(z_f) against the measurements (a fixed seeded partition), never the ground truth.
The generator is used in eval mode with frozen weights (pixel-norm, no batch statistics).

CS-DIP (Van Veen et al. 2018, `solve_dip`) is the untrained alternative: an (optionally masked) DIP
fitted through the same operator by restore.py, as `lip restore --task cs` fits it. Its "mom" solver fits
through `MedianOfMeans` (physics/cs_task.py), the operator with the median-of-means of its per-row
losses as the loss (MOM minimisation, Lecue & Lerasle 2020: one player, as a DIP has no latent to play
the min-max with). `lip cs`'s inputs are read and measured in cs_problem.py.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import generators, seeds, sharing
from .errors import LipError
from .fit import FitConfig, Step, crop_center
from .images import UINT8, as_channels
from .masks import mask_sparsity
from .metrics import psnr
from .optim import Adam
from .physics import TASKS, Physics
from .physics.cs_task import SOLVERS, MedianOfMeans, mom
from .problem import Problem
from .restore import dense_prior, masked_prior, restore
from .resume import Keeper


def default_solver(task: str) -> str:
    """MOM for measurements that may hold outliers; plain squared error for pixel inpainting, as the paper."""
    return "mom" if task == "cs" else "ls"


@dataclass
class CSConfig:
    solver: str = "mom"
    iters: int = 1500
    lr: float = 0.01
    restarts: int = 1
    batch_size: int = 20  # MOM batch size (the paper: 20 rows per batch, 50 batches for m = 1000)
    average_last: int = 200  # MOM's output averages z_f over this many final iterations
    seed: int = 0


@dataclass
class CSResult:
    image: torch.Tensor  # (1, C, H, W) in [0, 1]
    z: torch.Tensor
    restart: int  # the chosen restart
    selection_losses: list[float]  # MOM loss of each restart's output (what chose the restart)
    losses: list[float] = field(default_factory=list)  # the chosen restart's objective per iteration
    seconds: float = 0.0


def selection_loss(op: Physics, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> float:
    """Robust fit of an output to the measurements: MOM of its per-row losses, one fixed partition."""
    gen = seeds.generator(seed + 1_000_003)
    with torch.no_grad():
        return float(mom(op.row_losses(x, y)[0], batch_size, gen))


def _one_restart(g: nn.Module, op: Physics, y: torch.Tensor, cfg: CSConfig, r: int,
                 on_step: Callable[[int, float], None]) -> tuple[torch.Tensor, list[float]]:
    dev = y.device
    gen = seeds.generator(cfg.seed * 1_000 + r + seeds.CS_LATENT)
    z_f = torch.randn((1, g.nz), generator=gen).to(dev).requires_grad_(True)
    losses: list[float] = []
    if cfg.solver == "ls":
        opt = Adam([z_f], lr=cfg.lr, fused=False)
        for it in range(cfg.iters):
            loss = op.loss(g(z_f), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            on_step(it, losses[-1])
        return z_f.detach(), losses
    z_g = torch.randn((1, g.nz), generator=gen).to(dev).requires_grad_(True)
    opt_f = Adam([z_f], lr=cfg.lr, fused=False)
    opt_g = Adam([z_g], lr=cfg.lr, fused=False)
    perm_gen = seeds.generator(cfg.seed * 1_000 + r + 500_009)
    tail = min(cfg.average_last, cfg.iters)  # Jalal et al. output G(mean of z_f over the last iterations)
    z_sum = torch.zeros_like(z_f)
    for it in range(cfg.iters):
        out = g(torch.cat([z_f, z_g]))  # one batched forward for both players
        rows = op.row_losses(out, y.expand(2, *y.shape[1:]))
        loss = mom(rows[0] - rows[1], cfg.batch_size, perm_gen)
        opt_f.zero_grad()
        opt_g.zero_grad()
        loss.backward()
        z_g.grad.neg_()  # ascent for z_g
        opt_f.step()
        opt_g.step()
        losses.append(float(loss.detach()))
        on_step(it, losses[-1])
        if it >= cfg.iters - tail:
            z_sum += z_f.detach()
    return z_sum / tail, losses


def solve(g: nn.Module, op: Physics, y: torch.Tensor, cfg: CSConfig,
          on_step: Callable[[int, float], None] = lambda it, loss: None) -> CSResult:
    """Recover G(z) from measurements y (1, m) (or an observed masked image) through `op`."""
    if cfg.solver not in SOLVERS:
        raise LipError(f"unknown --solver {cfg.solver!r}: use {' or '.join(SOLVERS)}")
    if cfg.iters < 1 or cfg.restarts < 1 or cfg.batch_size < 1:
        raise LipError("iterations, restarts and the MOM batch size must be >= 1")
    g.eval()
    for p in g.parameters():
        p.requires_grad_(False)
    start = time.perf_counter()
    best: tuple[float, int, torch.Tensor, list[float]] | None = None
    sel: list[float] = []
    share = sharing.Share(y.device.type == "cpu")  # other lip processes running here get their cores

    def step(it: int, loss: float) -> None:
        share.poll(it)
        on_step(it, loss)

    for r in range(cfg.restarts):
        z, losses = _one_restart(g, op, y, cfg, r, step)
        with torch.no_grad():
            x = g(z)
        score = selection_loss(op, x, y, cfg.batch_size, cfg.seed)
        sel.append(score)
        if best is None or score < best[0]:
            best = (score, r, z, losses)
    assert best is not None
    with torch.no_grad():
        image = g(best[2])
    return CSResult(image=image, z=best[2], restart=best[1], selection_losses=sel, losses=best[3],
                    seconds=time.perf_counter() - start)


def mse(x: torch.Tensor, y: torch.Tensor) -> float:
    """Per-pixel MSE in [0, 1] units (the paper reports it in [-1, 1] units: 4x ours)."""
    y = y.detach().to(x.device, torch.float64)  # a reference may wait on the CPU
    return float((x.detach().double().clamp(0, 1) - y.clamp(0, 1)).pow(2).mean())


def report(result: CSResult, clean: torch.Tensor | None) -> dict[str, Any]:
    out: dict[str, Any] = {"restart": result.restart, "selection_losses": result.selection_losses,
                           "final_loss": result.losses[-1] if result.losses else None,
                           "seconds": round(result.seconds, 3)}
    if clean is not None:
        out["mse"] = mse(result.image, clean)
        out["psnr"] = psnr(result.image, clean)
    return out


def solve_generator(g: nn.Module, op: Physics, y: torch.Tensor, ref: torch.Tensor | None, size: tuple[int, int],
                    cfg: CSConfig, on_step: Callable[[int, float], None] = lambda it, loss: None
                    ) -> tuple[torch.Tensor, dict[str, Any]]:
    """`solve`, with G(z) cropped back to the measured image's `size` (a digit padded to the generator's
    side) and scored on that crop: the recovered image and its report, as `solve_dip` returns them."""
    result = solve(g, op, y, cfg, on_step)
    result.image = crop_center(result.image, size)
    return result.image, report(result, None if ref is None else crop_center(ref, size))


def generator_prior(path: Path | str, round_: int | None, weights: str = "auto", spec_file: Path | None = None
                    ) -> tuple[nn.Module, tuple[int, int, int], dict[str, Any]]:
    """The (possibly pruned) generator of an artifact or external file (generators.py), the image shape it
    makes, and its report fields (which weights were used among them; `unfinished`, a stopped training's)."""
    art = generators.read(path, spec_file)
    g, masks, used = generators.frozen(art, path, round_, weights)
    source = {"generator": str(path), "round": art.recommended_round if round_ is None else round_,
              "sparsity": mask_sparsity(masks), "weights": used}
    unfinished = generators.unfinished(art)
    if unfinished:
        source["unfinished"] = unfinished
    if spec_file is not None:
        source["generator_spec"] = str(spec_file)
    return g, (int(g.spec["out_channels"]), int(g.spec["size"]), int(g.spec["size"])), source


def solve_dip(op: Physics, y: torch.Tensor, shape: tuple[int, ...], ref: torch.Tensor | None,
              mask: Path | None, round_: int | None, iters: int, lr: float, seed: int, dev: torch.device,
              on_step: Callable[[Step], None] = lambda step: None,
              notify: Callable[[str], None] = lambda line: None,
              mom_batch: int | None = None, keeper: Keeper | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """CS-DIP (Van Veen et al. 2018): fit an untrained (optionally masked) DIP through the operator as
    restore.py fits every problem (a filter-pruning mask in its compacted form), a gray image included: by
    three channels whose mean stands for it (images.as_channels; a one-channel mask's net fits it directly), so `lip
    cs --prior dip` and `lip restore --task cs` agree and any DIP mask serves. `mom_batch`: fit the
    median-of-means loss with batches of that many rows (None: the mean). `keeper` keeps the fit's state and
    continues a saved one (lipcli/resume.py)."""
    c, h, w = shape
    pri = masked_prior(mask, round_, None, "artifact") if mask else dense_prior("dip")
    k = pri.spec.get("out_channels")
    if k not in (c, 3):
        raise LipError(f"the DIP mask makes {k}-channel images; the input has {c}")
    if y.dim() == 4:  # an observed image (inpainting), seen in every channel of the net, as restore replicates it
        y = as_channels(y, k)
    problem = Problem(name="cs", y=y, task=TASKS.get(op.name), op=MedianOfMeans(op, mom_batch) if mom_batch else op,
                      size=(h, w), gray=c == 1, alpha=None, stored=UINT8, sha256="",
                      clean=None if ref is None else as_channels(ref, k))
    cfg = FitConfig(iters=iters, lr=lr, reg_noise=1 / 30, ema=0.0, early_stop=False, seed=seed)
    res, fitted = restore(problem, pri, cfg, dev, seed, [on_step], notify, keeper)
    img = as_channels(res.targets[0].final, c)
    rep: dict[str, Any] = {"seconds": fitted["seconds"], "final_loss": res.losses[-1],
                           "recoveries": res.recoveries, "sparsity": pri.sparsity,
                           **{k: fitted[k] for k in ("compact", "resumed_from", "mask", "round") if k in fitted}}
    if ref is not None:
        rep["mse"], rep["psnr"] = mse(img, ref), psnr(img, ref)
    return img, rep
