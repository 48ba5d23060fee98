"""`lip cs`: compressive sensing (and GAN inpainting) with a generator or an untrained DIP prior."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from .. import config, cs, device as devices, files
from .. import images as images_io
from ..errors import LipError
from ..gan import GENERATOR
from ..physics.cs import operator_help
from .render import check_stdout_free, emit_json, err, fmt, guarded, progress, say
from .options import Device, InpaintMask, Seed, Threads, described_option, json_flag

ResultJson = json_flag("Print one JSON object on stdout", panel=None)


@guarded
def cs_cmd(
    image: str = typer.Argument(..., help="Image (clean with --simulate), or mnist:K = held-back test digit K"),
    simulate: bool = typer.Option(False, help="The input is CLEAN: measure it (seeded) and score against it",
                                  rich_help_panel="Task"),
    task: str = typer.Option("cs", help="cs (linear measurements) | inpaint (pixel mask)", rich_help_panel="Task"),
    measurements: int = typer.Option(200, "--measurements", "-m", help="Number of measurements m",
                                     min=1, rich_help_panel="Task"),
    outliers: int = typer.Option(0, help="Corrupted measurements k (the paper: 2% of m)", min=0,
                                 rich_help_panel="Task"),
    outlier_value: float = typer.Option(10000.0, help="Value of a corrupted measurement (the paper: 10000)",
                                        rich_help_panel="Task"),
    noise: float = typer.Option(0.01, help="Std of the Gaussian measurement noise", rich_help_panel="Task"),
    operator: Annotated[str, described_option(operator_help, "--operator", rich_help_panel="Task")] = "auto",
    keep: float = typer.Option(0.3, help="inpaint with --simulate and no mask: fraction of pixels observed",
                               rich_help_panel="Task"),
    inpaint_mask: InpaintMask = None,
    prior: str = typer.Option("generator", help="generator | dip (CS-DIP: an untrained, optionally masked, DIP)",
                              rich_help_panel="Prior"),
    generator: Path | None = typer.Option(None, help="Generator artifact [the bundled MNIST generator]",
                                             rich_help_panel="Prior"),
    mask: Path | None = typer.Option(None, help="Mask artifact: a GAN-IMP artifact (its weights and "
                                        "masks replace --generator) or, with --prior dip, a DIP mask",
                                        rich_help_panel="Prior"),
    round_: int | None = typer.Option(None, "--round", help="Round of the mask trajectory",
                                         rich_help_panel="Prior"),
    solver: str = typer.Option("mom", help="mom (Median-of-Means min-max, robust to outliers) | ls",
                               rich_help_panel="Solver"),
    iters: int = typer.Option(1500, help="Adam iterations per restart", min=1, rich_help_panel="Solver"),
    lr: float = typer.Option(0.01, help="Adam learning rate for z", rich_help_panel="Solver"),
    restarts: int = typer.Option(2, help="Random restarts; the best by MOM loss is kept", min=1,
                                 rich_help_panel="Solver"),
    mom_batch: int = typer.Option(20, help="Rows per MOM batch", min=1, rich_help_panel="Solver"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Recovered image PNG, or - for stdout [NAME_cs.png]"),
    clean: Path | None = typer.Option(None, help="Clean reference for MSE/PSNR (implied by --simulate)"),
    device: Device = "auto", seed: Seed = 0, threads: Threads = None,
    json_: ResultJson = False,
) -> None:
    """Recover an image from few (possibly corrupted) linear measurements with a generator prior."""
    dev = devices.resolve(device)
    devices.set_threads(threads, say)
    config.check_lr(lr)
    if task not in ("cs", "inpaint"):
        raise LipError(f"unknown --task {task!r}: use cs or inpaint")
    if prior not in ("generator", "dip"):
        raise LipError(f"unknown --prior {prior!r}: use generator or dip")
    if task == "cs" and not simulate:
        raise LipError("lip cs needs --simulate (the input is the clean image, measured by lip); reading "
                       "a measurements file is not supported yet")
    x_in, name = cs.load_input(image)
    dest = out or Path(f"{name}_{task}.png")
    check_stdout_free(dest, json_)
    files.check_writable(dest)
    images_io.check_suffix(dest)
    source: dict[str, Any] = {}
    size = tuple(x_in.shape[-2:])
    if prior == "generator":
        g, shape, source = cs.generator_prior(mask or generator or GENERATOR, round_)
        x_in = cs.fit_shape(x_in, shape, image)
        g = g.to(dev)
        if size != shape[1:]:
            source["padded"] = f"{size[1]}x{size[0]} -> {shape[2]}x{shape[1]}"
            say(f"{image} is {size[1]}x{size[0]}: zero-padded to the generator's {shape[2]}x{shape[1]} "
                "(as its training digits were); the result is cropped back and scored on that crop")
    else:
        shape = tuple(x_in.shape[1:])
    ref = x_in if simulate else None
    if clean is not None:
        ref = cs.fit_shape(images_io.to_tensor(images_io.load_image(clean)), shape, str(clean))
    op = cs.make_operator(task, shape, kind=operator, measurements=measurements, outliers=outliers, noise=noise,
                          outlier_value=outlier_value, keep=keep, inpaint_mask=inpaint_mask, simulate=simulate,
                          seed=seed).to(dev)
    n_batches = max(1, measurements // mom_batch)
    if task == "cs" and solver == "mom" and outliers and 2 * outliers >= n_batches:
        err.print(f"lip: warning: {outliers} outliers and only {n_batches} MOM batches; the median "
                         f"batch is likely corrupted (use fewer rows per batch, --mom-batch)", markup=False)
    y = op(x_in.to(dev), torch.Generator().manual_seed(seed)) if simulate else op.A(x_in.to(dev))
    if task == "inpaint" and solver == "mom":
        solver = "ls"  # pixel inpainting has no outliers: plain (correct) squared error, as the paper
    if prior == "generator":
        cfg = cs.CSConfig(solver=solver, iters=iters, lr=lr, restarts=restarts, batch_size=mom_batch, seed=seed)
        with progress(iters * restarts, f"cs {name}") as advance:
            result = cs.solve(g, op, y, cfg, on_step=lambda it, loss: advance(1, f"loss {loss:.5g}"))
        result.image = cs.crop_to(result.image, size)
        image_out, rep = result.image, cs.report(result, None if ref is None else cs.crop_to(ref, size))
    else:
        with progress(iters, "cs-dip") as advance:
            image_out, rep = cs.solve_dip(op, y, shape, ref, mask, round_, iters, lr, seed, dev,
                                          on_step=lambda loss: advance(1, f"loss {loss:.5g}"), notify=say)
    images_io.save_image(dest, images_io.from_tensor(image_out))
    rep.update(input=image, output=str(dest), task=task, solver=solver if prior == "generator" else "ls",
               prior=prior, operator=op.params(), iterations=iters, restarts=restarts, seed=seed, **source)
    line = f"{image} -> {dest}: {task} with {prior} ({rep['solver']})"
    if rep.get("mse") is not None:
        line += f"; per-pixel MSE {rep['mse']:.5f}, PSNR {fmt(rep['psnr'])} dB"
    say(line)
    if json_:
        emit_json(rep)
