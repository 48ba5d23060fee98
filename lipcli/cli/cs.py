"""`lip cs`: compressive sensing (and GAN inpainting) with a generator or an untrained DIP prior, from a
clean image it measures (--simulate) or from measurements files (y.npy with --matrix or --operator FILE)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer

from .. import api, files, resume
from .. import images as images_io
from ..cs_problem import CS_KEEP, CSProblem
from ..errors import LipError, LipRuntimeError
from ..physics.measurements import OPERATOR_NAME, Y_NAME, check_folder, save_measurements
from ..physics.cs import CompressedSensing, operator_help
from .render import (Terminated, check_stdout_free, emit_json, fmt, guarded, progress, say, say_lost, say_state_kept,
                     steps_done, set_threads_quietly, write_then_discard)
from .options import (Device, InpaintMask, ResumeEvery, Seed, Threads, described_option, generator_spec_option,
                      given_flags, json_flag)

ResultJson = json_flag("Print one JSON object on stdout", panel=None)


@guarded
def cs_cmd(
    ctx: typer.Context,
    image: str = typer.Argument(..., help="Measurements y.npy (with --matrix or --operator FILE), or an image "
                                "(clean, with --simulate), or mnist:K = held-back test digit K (a K % 10)"),
    simulate: bool = typer.Option(False, help="The input is CLEAN: measure it (seeded) and score against it",
                                  rich_help_panel="Task"),
    task: str = typer.Option("cs", help="cs (linear measurements) | inpaint (pixel mask)", rich_help_panel="Task"),
    matrix: Optional[Path] = typer.Option(None, help="Measurement matrix A.npy: float (m, n), n = H*W*C, applied "
                                          "to the image as an (H, W, C) array in [0,1] flattened in C order",
                                          rich_help_panel="Task"),
    shape: Optional[str] = typer.Option(None, help="H,W[,C] of the image measured by --matrix [the generator's]",
                                        rich_help_panel="Task"),
    measurements: Optional[int] = typer.Option(None, "--measurements", "-m", help="Number of measurements m "
                                               "[200]", min=1, rich_help_panel="Task"),
    outliers: Optional[int] = typer.Option(None, help="Corrupted measurements k (the paper: 2% of m) [0]", min=0,
                                           rich_help_panel="Task"),
    outlier_value: Optional[float] = typer.Option(None, help="Value of a corrupted measurement (the paper: "
                                                  "10000) [10000]", rich_help_panel="Task"),
    noise: Optional[float] = typer.Option(None, help="Std of the Gaussian measurement noise [0.01]",
                                          rich_help_panel="Task"),
    operator: Annotated[str, described_option(operator_help, "--operator", rich_help_panel="Task")] = "auto",
    save_measurements_: Optional[Path] = typer.Option(None, "--save-measurements", help="With --simulate: write "
                                                      "DIR/y.npy and DIR/operator.yaml, read back by lip cs "
                                                      "DIR/y.npy --operator DIR/operator.yaml",
                                                      rich_help_panel="Task"),
    keep: Optional[float] = typer.Option(None, help="inpaint with --simulate and no mask: fraction of pixels "
                                         f"observed [{CS_KEEP}]", rich_help_panel="Task"),
    inpaint_mask: InpaintMask = None,
    prior: str = typer.Option("generator", help="generator | dip (CS-DIP: an untrained, optionally masked, DIP)",
                              rich_help_panel="Prior"),
    generator: Optional[Path] = typer.Option(None, help="Generator artifact, or an external state dict with "
                                             "--generator-spec [the bundled MNIST generator]",
                                             rich_help_panel="Prior"),
    generator_spec: generator_spec_option("Prior") = None,
    mask: Optional[Path] = typer.Option(None, help="Mask artifact: a GAN-IMP artifact (its weights and "
                                        "masks replace --generator) or, with --prior dip, a DIP mask",
                                        rich_help_panel="Prior"),
    round_: Optional[int] = typer.Option(None, "--round", help="Round of the mask trajectory [its "
                                         "recommended round: a GAN-IMP search's last]", rich_help_panel="Prior"),
    weights: str = typer.Option("auto", help="A GAN-IMP round's generator weights: finetuned (what the round's "
                                "fine-tuning left, under its mask: what the LIP paper evaluates) | rewound (the "
                                "pretrained weights under the mask) | auto: finetuned where the artifact holds "
                                "them, else rewound", rich_help_panel="Prior"),
    solver: Optional[str] = typer.Option(None, help="mom: Median-of-Means, robust to outliers (the generator: "
                                         "min-max on its latent; the DIP: the median-of-means loss) | ls: least "
                                         "squares [mom for cs, ls for inpaint]", rich_help_panel="Solver"),
    iters: int = typer.Option(1500, help="Adam iterations per restart", min=1, rich_help_panel="Solver"),
    lr: float = typer.Option(0.01, help="Adam learning rate (z for the generator, weights for the DIP)",
                             rich_help_panel="Solver"),
    restarts: int = typer.Option(2, help="Random restarts; the best by MOM loss is kept", min=1,
                                 rich_help_panel="Solver"),
    mom_batch: int = typer.Option(20, help="Rows per MOM batch", min=1, rich_help_panel="Solver"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Recovered image: PNG (or another image type), "
                                       "X.npy (float (H, W[, C]) in [0,1]), or - for PNG on stdout "
                                       "[NAME_cs.png, NAME_inpaint.png beside the input]"),
    clean: Optional[Path] = typer.Option(None, help="Clean reference for MSE/PSNR (implied by --simulate)"),
    device: Device = "auto", seed: Seed = 0, threads: Threads = None,
    resume_every: ResumeEvery = 60.0,
    json_: ResultJson = False,
) -> None:
    """Recover an image from few (possibly corrupted) linear measurements with a generator or DIP prior.

    A DIP fit keeps its state beside the output while it runs (--resume-every): stopped, the same command
    continues it. A generator's restarts take seconds and start over."""
    say_threads = set_threads_quietly(threads)
    unread = given_flags(ctx, {"restarts", "generator", "generator_spec"} if prior == "dip" else set())
    if unread:
        raise LipError(f"{', '.join(unread)}: only --prior generator reads {'it' if len(unread) == 1 else 'them'}; "
                       "the DIP fit would not")
    if simulate and clean is not None:
        raise LipError("--clean and --simulate exclude each other: with --simulate the input is the clean image")
    if prior == "dip" and round_ is not None and mask is None:
        raise LipError(f"--round {round_} picks a round of a mask, and the dense DIP has none: add --mask")
    if save_measurements_ is not None and not (simulate and task == "cs" and matrix is None):
        raise LipError("--save-measurements writes what --simulate measured with a seeded operator (--task cs, "
                       "no --matrix)")
    job = api.recoverer(image, task=task, simulate=simulate, prior=prior, generator=generator,
                        generator_spec=generator_spec, mask=mask, round_=round_, weights=weights, solver=solver,
                        iters=iters, lr=lr, restarts=restarts, mom_batch=mom_batch, clean=clean, seed=seed,
                        device=device, resume_every=resume_every or None, operator=operator, matrix=matrix,
                        shape=shape, measurements=measurements, outliers=outliers, noise=noise,
                        outlier_value=outlier_value, keep=keep, inpaint_mask=inpaint_mask)
    if job.solver != "mom" and given_flags(ctx, {"mom_batch"}):
        fit = "DIP fit" if prior == "dip" else "generator's fit"
        raise LipError(f"--mom-batch sets the median-of-means batches; the {fit} with --solver {job.solver} "
                       "has none: drop it")
    problem = job.problem
    beside = Path(image).parent if Path(image).is_file() else Path(".")  # as lip restore's; mnist:K and samples here
    dest = out or beside / f"{problem.name}_{task}.png"
    check_stdout_free(dest, json_, logs=False)
    files.check_writable(dest)
    images_io.check_suffix(dest)
    say_threads()
    alpha, stored = _kept(dest, problem)
    lost = images_io.narrowed(dest, alpha is not None, stored, problem.shape[0])
    if problem.alpha is not None and alpha is None:
        lost.insert(0, "transparency (lip cs writes an .npy of the pixels alone)")
    say_lost(dest, image, lost)
    if save_measurements_ is not None:
        check_folder(save_measurements_)
        files.check_distinct({f"--save-measurements' {name}": save_measurements_ / name
                              for name in (Y_NAME, OPERATOR_NAME)} | {"-o": dest})
    if problem.size != problem.shape[1:]:
        (h, w), (gh, gw) = problem.size, problem.shape[1:]
        say(f"{image}: a {w}x{h} image, zero-padded to the generator's {gw}x{gh} (as its training digits were); "
            "the result is cropped back and scored on that crop")
    if problem.channels_read is not None:  # a colour image for a gray generator, or the other way round
        made = "gray" if problem.shape[0] == 1 else "colour"
        say(f"{image}: a {'colour' if made == 'gray' else 'gray'} image, recovered in {made} (the generator "
            f"makes {made} images)")
    if job.warning:
        say(f"lip: warning: {job.warning}")
    rep: dict[str, Any] = {}
    if save_measurements_ is not None:
        assert isinstance(problem.op, CompressedSensing)
        save_measurements(save_measurements_, problem.y, problem.op, problem.size)
        say(f"wrote {save_measurements_}/y.npy and operator.yaml")
        rep["measurements_saved"] = str(save_measurements_)
    state = resume.state_folder(dest) if prior == "dip" else None  # a generator's restarts take seconds
    last: dict[Any, int] = {}
    try:
        with progress(job.steps, f"cs {problem.name}" if prior == "generator" else "cs-dip") as advance:
            recovered = job(on_step=lambda done, loss: advance(steps_done(last, None, done), f"loss {loss:.5g}"),
                            notify=say, state=state)
    except (KeyboardInterrupt, Terminated):
        say_state_kept(state, output=dest)
        raise
    except api.Diverged as exc:  # keep the last good output, then fail with exit 1 (as lip restore)
        _write(dest, exc.picture.pixels, problem)
        raise LipRuntimeError(f"{exc} was written to {dest}") from None
    write_then_discard(lambda: _write(dest, images_io.from_tensor(recovered.image), problem), state)
    rep.update(recovered.report, input=image, output=str(dest), task=task, solver=job.solver, prior=prior,
               operator=problem.op.params(), iterations=iters, seed=seed, lr=job.cfg.lr,
               **({"mom_batch": job.cfg.batch_size} if job.solver == "mom" else {}))
    masked = f" masked by {rep['mask']} round {rep['round']}" if prior == "dip" and rep.get("mask") else ""
    line = f"{image} -> {dest}: {task} with {prior}{masked} ({job.solver})"
    if rep.get("mse") is not None:
        line += f"; per-pixel MSE {rep['mse']:.5f}, PSNR {fmt(rep['psnr'])} dB"
    say(line)
    if json_:
        emit_json(rep)


def _kept(dest: Path, problem: CSProblem) -> tuple[np.ndarray | None, images_io.Stored]:
    """The alpha and sample type an output keeps: X.npy gets float32 in [0, 1], (H, W) gray or (H, W, 3), no alpha;
    an image keeps the input image's sample type and alpha, as lip restore's do."""
    if dest.suffix.lower() == ".npy":  # with the input's profile, which `narrowed` says an .npy drops
        return None, images_io.Stored("float32", 0.0, 1.0, "HW", problem.stored.icc)
    return (problem.alpha if problem.alpha is not None and problem.alpha.shape == problem.size else None,
            problem.stored)


def _write(dest: Path, pixels: np.ndarray, problem: CSProblem) -> None:
    """The recovered (C, H, W) pixels in [0, 1], as `_kept` says."""
    alpha, stored = _kept(dest, problem)
    images_io.save_image(dest, pixels, alpha=alpha, stored=stored)
