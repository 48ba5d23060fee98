"""`lip cs`: compressive sensing (and GAN inpainting) with a generator or an untrained DIP prior."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import typer

from . import device as devices
from . import files, nets, render
from . import images as images_io
from .cli import DEVICE, INPAINT_MASK, SEED, THREADS, app
from .cs import CSConfig, mse, report, solve
from .errors import LipError
from .gan import GENERATOR, load_generator, load_mnist
from .masks import mask_sparsity
from .metrics import psnr
from .physics import Inpaint
from .physics.cs import make as make_operator, operator_help

MNIST_PREFIX = "mnist:"


def load_input(arg: str) -> tuple[torch.Tensor, str]:
    """An image file, or `mnist:K`: held-back test digit K (0..499, never trained on), 32x32."""
    if arg.startswith(MNIST_PREFIX):
        try:
            k = int(arg[len(MNIST_PREFIX):])
        except ValueError:
            raise LipError(f"{arg}: give a test digit index, e.g. mnist:0") from None
        test = load_mnist("test")[0]
        if not 0 <= k < test.shape[0]:
            raise LipError(f"{arg}: the held-back test digits are mnist:0 .. mnist:{test.shape[0] - 1}")
        return test[k:k + 1].clone(), f"mnist-test-{k}"
    path = images_io.resolve(arg)
    img = images_io.load_image(path, max_pixels=64_000_000)
    return images_io.to_tensor(img), path.stem


def _fit_shape(x: torch.Tensor, shape: tuple[int, ...], what: str) -> torch.Tensor:
    c, h, w = shape
    if x.shape[1] != c:
        if c == 1:
            x = x.mean(dim=1, keepdim=True)
        else:
            x = x.expand(-1, c, -1, -1)
    if tuple(x.shape[-2:]) != (h, w):
        raise LipError(f"{what} is {x.shape[-1]}x{x.shape[-2]} but the generator makes {w}x{h} images "
                       "(crop/resize it, or train a generator of that size)")
    return x


@app.command("cs")
@render.guarded
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
    operator: str = typer.Option("auto", help=operator_help(), rich_help_panel="Task"),
    keep: float = typer.Option(0.3, help="inpaint with --simulate and no mask: fraction of pixels observed",
                               rich_help_panel="Task"),
    inpaint_mask: Path | None = INPAINT_MASK,
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
    device: str = DEVICE, seed: int = SEED, threads: int | None = THREADS,
    json_: bool = typer.Option(False, "--json", help="Print one JSON object on stdout"),
) -> None:
    """Recover an image from few (possibly corrupted) linear measurements with a generator prior."""
    dev = devices.resolve(device)
    devices.set_threads(threads)
    if not lr > 0:
        raise LipError(f"--lr {lr} must be positive")
    if task not in ("cs", "inpaint"):
        raise LipError(f"unknown --task {task!r}: use cs or inpaint")
    if prior not in ("generator", "dip"):
        raise LipError(f"unknown --prior {prior!r}: use generator or dip")
    if task == "cs" and not simulate:
        raise LipError("lip cs needs --simulate (the input is the clean image, measured by lip); reading "
                       "a measurements file is not supported yet")
    x_in, name = load_input(image)
    dest = out or Path(f"{name}_{task}.png")
    render.check_stdout_free(dest, json_)
    files.check_writable(dest)
    images_io.check_suffix(dest)
    g = None
    source: dict[str, Any] = {}
    if prior == "generator":
        art_path = mask or generator or GENERATOR
        g, masks, _ = load_generator(art_path, round_)
        source = {"generator": str(art_path), "round": round_ or 0, "sparsity": mask_sparsity(masks)}
        shape = (int(g.spec["out_channels"]), int(g.spec["size"]), int(g.spec["size"]))
        x_in = _fit_shape(x_in, shape, image)
        g = g.to(dev)
    else:
        shape = tuple(x_in.shape[1:])
    ref = x_in if simulate else None
    if clean is not None:
        ref = _fit_shape(images_io.to_tensor(images_io.load_image(clean)), shape, str(clean))
    gen = torch.Generator().manual_seed(seed)
    if task == "cs":
        op = make_operator(operator, shape, measurements, outliers=outliers, noise=noise,
                           outlier_value=outlier_value, seed=seed)
        n_batches = max(1, measurements // mom_batch)
        if solver == "mom" and outliers and 2 * outliers >= n_batches:
            render.err.print(f"lip: warning: {outliers} outliers and only {n_batches} MOM batches; the median "
                             f"batch is likely corrupted (use fewer rows per batch, --mom-batch)", markup=False)
    else:
        if inpaint_mask is not None:
            keep_mask = torch.tensor(images_io.load_binary_mask(inpaint_mask, shape[1], shape[2]))[None]
            op = Inpaint(keep_mask, str(inpaint_mask))
        elif simulate:
            op = Inpaint.bernoulli((1, shape[1], shape[2]), keep, seed)
        else:
            raise LipError("inpainting a real image needs --inpaint-mask (white = observed)")
    op = op.to(dev)
    y = op(x_in.to(dev), gen) if simulate else op.A(x_in.to(dev))
    if task == "inpaint" and solver == "mom":
        solver = "ls"  # pixel inpainting has no outliers: plain (correct) squared error, as the paper
    if prior == "generator":
        cfg = CSConfig(solver=solver, iters=iters, lr=lr, restarts=restarts, batch_size=mom_batch, seed=seed)
        with render.progress(iters * restarts, f"cs {name}") as advance:
            result = solve(g, op, y, cfg, on_step=lambda it, loss: advance(1, f"loss {loss:.5g}"))
        image_out, rep = result.image, report(result, ref)
    else:
        image_out, rep = _dip(op, y, shape, ref, mask, round_, iters, lr, seed, dev)
    images_io.save_image(dest, images_io.from_tensor(image_out))
    rep.update(input=image, output=str(dest), task=task, solver=solver if prior == "generator" else "ls",
               prior=prior, operator=op.params(), iterations=iters, restarts=restarts, seed=seed, **source)
    line = f"{image} -> {dest}: {task} with {prior} ({rep['solver']})"
    if rep.get("mse") is not None:
        line += f"; per-pixel MSE {rep['mse']:.5f}, PSNR {render.fmt(rep['psnr'])} dB"
    render.err.print(line, markup=False, soft_wrap=True)
    if json_:
        render.emit_json(rep)


def _dip(op, y, shape, ref, mask, round_, iters, lr, seed, dev) -> tuple[torch.Tensor, dict[str, Any]]:
    """CS-DIP (Van Veen et al. 2018): fit an untrained (optionally masked) DIP through the operator."""
    from .fit import FitConfig, Target, fit
    from .restore import dense_prior, masked_prior

    c, h, w = shape
    pri = masked_prior(mask, round_, None, "artifact") if mask else dense_prior("dip", out_channels=c)
    if pri.spec.get("out_channels") != c:
        raise LipError(f"the DIP mask makes {pri.spec.get('out_channels')}-channel images; the input has {c}")
    net = pri.build(seed).to(dev)
    gen = torch.Generator().manual_seed(seed)
    ph, pw = nets.padded_size(net, h, w)
    z = nets.make_input(net, ph, pw, gen).to(dev)
    target = Target(z=z, op=op, y=y, size=(h, w), clean=ref.to(dev) if ref is not None else None)
    cfg = FitConfig(iters=iters, lr=lr, reg_noise=1 / 30, ema=0.0, early_stop=False, seed=seed)
    with render.progress(iters, "cs-dip") as advance:
        res = fit(net, [target], cfg, masks=pri.masks, callbacks=[lambda s: advance(1, f"loss {s.loss:.5g}")])
    img = res.targets[0].final
    rep: dict[str, Any] = {"seconds": round(res.seconds, 3), "final_loss": res.losses[-1],
                           "sparsity": pri.sparsity}
    if ref is not None:
        rep["mse"], rep["psnr"] = mse(img, ref), psnr(img, ref.to(img.device))
    return img, rep
